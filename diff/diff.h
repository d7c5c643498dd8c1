/*
 * diff.h - `cutover diff`: the ordered change log that turns a tree in the
 * state of manifest OLD into the state of manifest NEW (docs/DIFF.md
 * states the ordering rules replay relies on).
 */
#ifndef CUTOVER_DIFF_H
#define CUTOVER_DIFF_H

#include "format/changes.h"
#include "format/manifest.h"

/* A rename that must wait for its destination goes first to a parking name,
 * DIR/FMT_RESERVED_DIFF<hex> (format/path.h), in the directory of its
 * source.  Scanners exclude it, replay recognises it. */

typedef struct diff_opts {
	const char *old_path;  /* OLD manifest, NULL for --from-empty */
	const char *new_path;  /* NEW manifest */
	const char *out_path;  /* change log to write */
	bool force;            /* accept different roots and an incomplete NEW scan */
	size_t mem_limit;      /* per intermediate list before spilling (0: DIFF_MEM_LIMIT_DEFAULT) */
	const char *tmpdir;    /* for spilled runs (NULL: $TMPDIR or /tmp) */
	/* Called from the diff's thread as the join moves through NEW: entries
	 * of NEW joined so far, and NEW's entries in all (every
	 * DIFF_PROGRESS_EVERY entries, and once at the end of the join). */
	void (*progress)(uint64_t done, uint64_t total, void *arg);
	void *progress_arg;
} diff_opts;

#define DIFF_PROGRESS_EVERY 65536

typedef struct diff_stats {
	uint64_t old_entries, new_entries;
	uint64_t ops[FMT_OP_MAX + 1], bytes[FMT_OP_MAX + 1], records;
	uint64_t dir_renames, file_renames, evacuations, links, passes;
	uint64_t skipped_blocks; /* pairs of equal blocks stepped over undecoded */
	uint64_t joined_pairs;   /* equal pairs joined all the same: a link candidate in them */
	unsigned spilled_runs;
	size_t peak_list_mem;
	bool dir_lists_dropped; /* too many one-side directories: no directory renames */
} diff_stats;

/* Writes the change log.  0, or -1 after logging (input corrupt, roots
 * differ without force, I/O error); then no log is left at out_path. */
int diff_run(const diff_opts *o, diff_stats *st);

/* ---- internal, shared by the diff_*.c files ---- */

/* A directory rename OLD src -> NEW dst (paths in their own manifest). */
typedef struct diff_pair {
	char *src, *dst;
	uint32_t src_len, dst_len;
} diff_pair;

typedef struct diff_map {
	diff_pair *v;  /* sorted by src in canonical order */
	size_t n;
} diff_map;

/* Index of the pair whose src is exactly path, or -1. */
long diff_map_find_src(const diff_map *m, const char *path, size_t len);

/* The OLD manifest as seen after the directory renames of map: entries under
 * a renamed directory appear under its new name, still in canonical order. */
typedef struct diff_view diff_view;
/* map must outlive the view.  With only_moved, the view yields just the
 * entries under renamed directories (at their new names).  NULL on error
 * (logged). */
diff_view *diff_view_open(fmt_mreader *old, const diff_map *map, bool only_moved);
/* 1 with *e (path mapped; strings valid until the next call), 0 at the end,
 * -1 on corruption (logged). */
int diff_view_next(diff_view *v, fmt_entry *e);
void diff_view_close(diff_view *v);

/* prefetch.c: the view read ahead in a second thread (it owns v until
 * diff_pf_stop; close v after).  diff_pf_next is like diff_view_next. */
typedef struct diff_pf diff_pf;
diff_pf *diff_pf_start(diff_view *v);
int diff_pf_next(diff_pf *p, fmt_entry *e);
void diff_pf_stop(diff_pf *p);

#endif
