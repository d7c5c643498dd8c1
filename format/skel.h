/*
 * skel.h - a manifest's skeleton (FORMAT.md, "Skeleton"): for each block of
 * the manifest, the entries an incremental scan must look at (directories,
 * and every entry that is not an immutable file carried as it was) and, in
 * one record each, the runs of immutable carried files of one directory.
 *
 * It lets the incremental scanner learn an unchanged directory's children
 * without decoding the blocks that hold them, and give the manifest writer
 * a run of carried files as one unit (fmt_mwriter_add_run): a pass over an
 * unchanged tree then costs the stats of its directories, not a decode of
 * every entry.  It is an accelerator: a manifest without one, or with one
 * that does not match it, is read the slow way, with the same result.
 *
 * The manifest writer builds it (manifest.c) beside the manifest, as
 * MANIFEST.skel, in the container format; readers are the scanner's
 * (scanner/prev.c).
 */
#ifndef CUTOVER_SKEL_H
#define CUTOVER_SKEL_H

#include "container.h"
#include "entry.h"

#define FMT_MAGIC_SKELETON "CUTOVSK1"
#define FMT_SKEL_SUFFIX ".skel"

/* Metadata tags of a skeleton. */
enum {
	FMT_ST_MANIFEST_ID = 1, /* 16 bytes: the id of the manifest it describes */
	FMT_ST_POLICY = 2,      /* text: the policy that said which files are immutable */
};

/* One record of a block's skeleton. */
typedef struct fmt_skel_el {
	uint32_t idx;           /* its first entry's index in the manifest block */
	uint32_t n;             /* 0: one entry; >= 1: a run of n carried immutable files */
	uint64_t bytes, weight; /* a run's sum of sizes, and of cut weights (manifest.c) */
	bool hashed;            /* every file of the run has a hash */
	uint32_t first, last;   /* its first and last entries, in the group's v */
} fmt_skel_el;

/* A block's skeleton, decoded. */
typedef struct fmt_skel_group {
	fmt_skel_el *el;
	uint32_t nel;
	fmt_entry *v; /* strings in arena */
	uint32_t nv;
	cut_arena arena;
} fmt_skel_group;

void fmt_skel_group_free(fmt_skel_group *g);
/* Bytes g takes in memory (for a cache's size). */
size_t fmt_skel_group_bytes(const fmt_skel_group *g);

/* Builds one block's skeleton from the block's entries, in order. */
typedef struct fmt_skel_build {
	cut_buf side;
	fmt_enc enc;
	uint32_t nel;
	/* The run being built, closed by an entry that does not extend it. */
	bool open;
	fmt_skel_el run;
	fmt_entry last;  /* its last entry so far; path in last_path */
	cut_buf last_path;
} fmt_skel_build;

/* Adds the entry at index idx of the block; imm: the policy declares it
 * immutable; weight: its cut weight. */
void fmt_skel_add(fmt_skel_build *b, const fmt_entry *e, uint32_t idx, bool imm, uint64_t weight);
/* Appends the block's skeleton to out, sets *count to its records, and
 * resets b for the next block. */
void fmt_skel_finish(fmt_skel_build *b, cut_buf *out, uint32_t *count);
void fmt_skel_build_free(fmt_skel_build *b);

/* Decodes a block's skeleton (raw, count records) into g.  0, or -1 with
 * *err set. */
int fmt_skel_decode(const uint8_t *raw, size_t len, uint32_t count, fmt_skel_group *g,
		    const char **err);

typedef struct fmt_skel fmt_skel;
/* Opens path's skeleton, for the manifest of the given id and block count
 * made under the given policy.  NULL when there is none, or when it belongs
 * to another manifest or policy (not an error: the caller reads the
 * manifest), or when it is damaged (a warning names it). */
fmt_skel *fmt_skel_open(const char *manifest_path, const uint8_t id[FMT_ID_LEN],
			uint32_t nblocks, const char *policy);
void fmt_skel_close(fmt_skel *s);
/* Reads and decodes block i's skeleton.  0, or -1 (logged). */
int fmt_skel_load(fmt_skel *s, uint32_t i, fmt_skel_group *g);
/* Block i's skeleton as stored, checked, for fmt_cw_copy_block; *count its
 * records.  0 or -1 (logged). */
int fmt_skel_read_disk(fmt_skel *s, uint32_t i, cut_buf *disk, uint32_t *count);
/* The skeleton's file name for a manifest path (caller frees). */
char *fmt_skel_path(const char *manifest_path);

#endif
