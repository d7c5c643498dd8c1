/*
 * diff_ctx.h - the state shared by the stages of one `cutover diff` run
 * (diff.c: passes and directory renames; order.c: rename matching, link
 * groups and the phased output).  Internal to diff/.
 */
#ifndef CUTOVER_DIFF_CTX_H
#define CUTOVER_DIFF_CTX_H

#include "diff/diff.h"
#include "diff/diff_item.h"

/* The phases of a change log, in file order (docs/DIFF.md). */
enum {
	PH_DIRMV,   /* directory renames and the mkdirs their destinations need */
	PH_DELETE,  /* non-directories that go away */
	PH_EVAC,    /* rename sources that are also destinations, to a temporary name */
	PH_MKDIR,   /* new directories, parents first */
	PH_RENAME,  /* renames of non-directories (from their path or temporary name) */
	PH_RMDIR,   /* directories that go away, children first */
	PH_CREATE,  /* create, update, symlink, special, meta of non-directories */
	PH_LINK,    /* link: further names of inodes placed above */
	PH_DIRMETA, /* directory attributes and times, children first */
	PH_N
};

/* An open-addressing set of (dev, ino) keys (link-group candidates). */
typedef struct diff_iset {
	uint64_t *k;   /* pairs dev, ino; ino 0 = empty slot */
	size_t cap, n;
} diff_iset;
void diff_iset_add(diff_iset *s, uint64_t dev, uint64_t ino);
bool diff_iset_has(const diff_iset *s, uint64_t dev, uint64_t ino);
void diff_iset_free(diff_iset *s);

/* A directory of NEW above the join's current entry (diff.c, dstk_*). */
typedef struct diff_dstk {
	fmt_entry e;  /* e.path malloc'd */
	bool meta;    /* its phase-9 meta is in the log */
	bool lazy;    /* in a skipped block: only e.path is set, the rest is read
			 from NEW when needed (dstk_touch) */
} diff_dstk;

typedef struct diff_ctx {
	const diff_opts *o;
	diff_stats *st;
	uint8_t new_id[FMT_ID_LEN];
	size_t limit;
	uint64_t seq;        /* insertion order of list items (a tie breaker) */
	uint64_t tmp_seq;    /* numbers of temporary names: counts evacuations only, so
				that a log does not depend on how lists were filled */
	/* pass 1: directories only on one side, for directory renames */
	bool collect_dirs;
	cut_arena darena;
	fmt_entry *odirs, *ndirs;
	size_t nod, cod, nnd, cnd;
	size_t dir_bytes;    /* what they take, held to limit/8 (dir_keep) */
	diff_map map;        /* accepted directory renames (the view uses it) */
	diff_dstk *dstk;     /* the join's directories above its current entry */
	size_t ndstk, cdstk;
	cut_buf skip_from;   /* first key of the blocks skipped since the last
				entry joined (diff.c, dstk_resume); len 0: none */
	bool skipped;
	fmt_mcursor *ncur;   /* NEW, for the lazy directories */
	char **premade;      /* directories made in PH_DIRMV, sorted */
	size_t npremade;
	/* lists */
	diff_sorter *ph[PH_N];
	diff_sorter *leave, *arrive, *upd;  /* from the join */
	diff_sorter *leave2, *arrive2;      /* after matching, by path */
	diff_sorter *groups, *suppress;     /* link groups, paths whose op a link replaces */
	diff_sorter *lnka;                  /* arrivals with nlink > 1, by path */
	diff_iset cand;                     /* inodes of changed files: group candidates */
	bool cand_all;                      /* cand outgrew its share of the memory limit and
					       was dropped: every file of NEW that may be
					       linked counts as a candidate (diff_maybe_linked) */
	diff_iset short_set;                /* inodes of changed groups the join's list
					       could not decide (order.c, short_note) */
	bool short_all;                     /* short_set outgrew its share: the slow path
					       rebuilds every candidate's group */
} diff_ctx;

/* Whether a file of NEW may share its inode with another path (its nlink is
 * not 1, or it was carried by an incremental scan and its nlink may be
 * stale). */
bool diff_maybe_linked(const fmt_entry *e);

/* skip.c: block skip in the first join (docs/DIFF.md, "Block skip"). */
typedef struct diff_skip diff_skip;
/* Pairs OLD's and NEW's blocks that the indexes show equal and marks them on
 * both readers (before their first read).  *out NULL when no pair (or when
 * CUTOVER_DIFF_DECODE_ALL is set).  0, or -1 when an index is out of order. */
int diff_skip_plan(fmt_mreader *old, fmt_mreader *nw, diff_skip **out);
/* Whether OLD's block old_block and NEW's new_block are a pair. */
bool diff_skip_pair(const diff_skip *s, uint32_t old_block, uint32_t new_block);
/* Whether stepping over NEW's block b leaves the log as it would be: no
 * entry of it is one the join notes for the link groups.  Decodes the
 * block's attributes only when there are candidates. */
bool diff_skip_safe(diff_ctx *x, fmt_mreader *nw, uint32_t b);
void diff_skip_free(diff_skip *s);

/* One side of the join: its source's entries and markers (h: 1 entry or
 * marker, 0 end, -1 error), and a marked block it decodes itself when the
 * pair is not skipped. */
typedef struct diff_side {
	int (*src)(void *arg, fmt_entry *e);
	void *arg;
	fmt_mreader *r;  /* the file, for block reads (thread-safe) */
	int h;
	fmt_entry e;     /* type 0: a marker (e.path its block's first key, e.ino its index, e.size its count) */
	bool exp;        /* entries come from dec */
	uint32_t blk;
	cut_buf raw, key; /* key: the expanded marker's */
	fmt_dec dec;
} diff_side;
int diff_side_next(diff_side *d);
/* Replaces the marker in d->e by its block's first entry.  1 or -1. */
int diff_side_expand(diff_side *d);
void diff_side_free(diff_side *d);

/* Adds change c to phase ph.  0 or -1. */
int diff_op(diff_ctx *x, int ph, const fmt_change *c);
/* fmt_old of an entry. */
fmt_old diff_old_of(const fmt_entry *e);

/* order.c */
int diff_match(diff_ctx *x);
int diff_groups(diff_ctx *x);
int diff_emit(diff_ctx *x);
int diff_write(diff_ctx *x, fmt_cwriter *w);

#endif
