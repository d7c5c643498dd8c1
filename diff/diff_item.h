/*
 * diff_item.h - the one record type that flows between the stages of
 * `cutover diff` (join, rename matching, link groups, ordering), and the
 * external sorter that holds lists of them in bounded memory.
 *
 * Every intermediate list of the diff is "append records, then read them back
 * in some order"; the sorter keeps records in memory up to a limit, past it
 * writes sorted runs to unlinked temporary files and merges the runs when read
 * back.  So the diff never holds more than its lists' limits, whatever the
 * size of the manifests.
 */
#ifndef CUTOVER_DIFF_ITEM_H
#define CUTOVER_DIFF_ITEM_H

#include "format/changes.h"

/* diff_item.kind: what a record means in the list it is in (see diff.c). */
enum {
	DI_LEAVE = 1,   /* a non-directory of OLD that is not at its path in NEW */
	DI_ARRIVE = 2,  /* a non-directory of NEW that is not at its path in OLD */
	DI_UPDATE = 3,  /* a file at the same path and inode whose content changed */
	DI_MEMBER = 4,  /* a path of NEW sharing an inode with a changed entry */
	DI_OP = 5,      /* a finished change record (c) waiting for its phase */
};

/* diff_item.flags */
#define DI_F_INBOTH 0x01   /* the path exists on both sides (inode or type changed) */
#define DI_F_FROMDIR 0x02  /* ARRIVE at a path that was a directory in OLD */
#define DI_F_MATCHED 0x04  /* LEAVE moved / ARRIVE renamed (p2 = other end) */
#define DI_F_EVAC 0x08     /* the rename goes through a temporary name */
#define DI_F_LINK 0x10     /* ARRIVE or member: becomes `link` from p2 */
#define DI_F_ANCHOR 0x20   /* member: the group's anchor (placed by another op) */
#define DI_F_RELINK 0x40   /* member: an existing path to be replaced by a link */
#define DI_F_UPDATED 0x80  /* member: it is a DI_UPDATE path */

typedef struct diff_item {
	fmt_change c;      /* c.e: the entry (LEAVE: OLD's; others: NEW's); c.to/p2 */
	uint8_t kind, flags;
	uint16_t pad;
	uint32_t p2_len;
	const char *p2;    /* a second path: the other end of a rename, a link anchor */
	uint64_t seq;      /* tie breaker and temporary-name number */
} diff_item;

/* Comparators (<0, 0, >0). */
typedef int (*diff_cmp_fn)(const diff_item *a, const diff_item *b);
int diff_cmp_path(const diff_item *a, const diff_item *b);      /* canonical c.e.path */
int diff_cmp_path_rev(const diff_item *a, const diff_item *b);  /* reverse canonical */
int diff_cmp_p2(const diff_item *a, const diff_item *b);        /* canonical p2, then path */
int diff_cmp_seq(const diff_item *a, const diff_item *b);       /* insertion order */
/* Rename matching: type, ino, size, mtime, then path. */
int diff_cmp_match(const diff_item *a, const diff_item *b);
/* Rename matching by content: hash, size, then path. */
int diff_cmp_hash(const diff_item *a, const diff_item *b);
/* Link groups: dev, ino, then path. */
int diff_cmp_inode(const diff_item *a, const diff_item *b);

typedef struct diff_sorter diff_sorter;

/* DIFF_MEM_LIMIT_DEFAULT, the lists' memory when none is given: base/limits.h. */

/* A sorter ordering by cmp, keeping at most mem_limit bytes in memory before
 * writing a run to an unlinked temporary file in tmpdir (NULL: $TMPDIR or
 * /tmp).  name is used in messages.  NULL when it cannot be made (logged
 * here): callers pass the failure up without logging it again. */
diff_sorter *diff_sorter_new(const char *name, diff_cmp_fn cmp, size_t mem_limit,
			     const char *tmpdir);
/* Copies it (and its strings) into the sorter.  0, or -1 (logged) when a run
 * cannot be written. */
int diff_sorter_add(diff_sorter *s, const diff_item *it);
/* Ends adding and starts reading in order.  0 or -1 (logged). */
int diff_sorter_sort(diff_sorter *s);
/* Next record in order: 1 with *it (strings valid until the next call), 0 at
 * the end, -1 on a read error (logged). */
int diff_sorter_next(diff_sorter *s, diff_item *it);
/* Starts reading again from the first record (after diff_sorter_sort).
 * 0 or -1 (logged). */
int diff_sorter_rewind(diff_sorter *s);
/* Empties the sorter (adding may start again); keeps cmp and limit. */
void diff_sorter_reset(diff_sorter *s);
uint64_t diff_sorter_count(const diff_sorter *s);
unsigned diff_sorter_runs(const diff_sorter *s); /* runs spilled so far */
void diff_sorter_free(diff_sorter *s);

/* Peak bytes held in memory by all sorters together (for the summary). */
extern _Thread_local size_t diff_sorter_peak_mem;

#endif
