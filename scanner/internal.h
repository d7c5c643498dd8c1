/*
 * internal.h - what the scanner's files share (not for other modules).
 *
 *   scan.c    the engine: job queue, worker threads, the ordered writer
 *   list.c    one directory job: list, stat, hash, carry from the previous scan
 *   prev.c    the previous manifest and its skeleton: a shared cache of
 *             decoded blocks, and the walks that yield a directory's children
 *             without a syscall
 *   policy.c  excludes, immutable globs and the maildir preset
 *   hash.c    content hashes (XXH3-128)
 */
#ifndef CUTOVER_SCAN_INTERNAL_H
#define CUTOVER_SCAN_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>

#include "format/entry.h"
#include "format/manifest.h"
#include "base/sys.h"
#include "scanner/scan.h"

/* ------------------------------------------------------------ policy.c */

typedef struct scan_policy {
	const char *const *excludes;
	size_t nexcludes;
	const char *const *immutable;
	size_t nimmutable;
	bool maildir;
} scan_policy;

/* True when the entry is left out of the manifest entirely. */
bool scan_excluded(const scan_policy *p, const char *path, size_t len, const char *name,
		   unsigned type);
/* True when a directory's contents are left out (maildir tmp/). */
bool scan_contents_excluded(const scan_policy *p, const char *path, size_t len);
/* True when the file at path is declared never to change in place. */
bool scan_immutable(const scan_policy *p, const char *path, size_t len);
/* True when any shortcut policy is in force. */
bool scan_policy_any(const scan_policy *p);
/* The policy as recorded in the manifest header ("" for none). */
char *scan_policy_describe(const scan_policy *p, int64_t granularity_ns);

/* ------------------------------------------------------------- prev.c */

typedef struct prev_pos {
	uint32_t block, idx;
} prev_pos;
#define PREV_NONE ((prev_pos){UINT32_MAX, 0})

typedef struct scan_prev scan_prev;
/* Opens the previous manifest (validated; NULL logged on error). */
scan_prev *scan_prev_open(const char *path);
void scan_prev_close(scan_prev *p);
const fmt_mheader *scan_prev_header(const scan_prev *p);
const uint8_t *scan_prev_id(const scan_prev *p);
/* The reader underneath, for the writer's block copies (thread-safe reads). */
fmt_mreader *scan_prev_reader(scan_prev *p);
/* The root entry's position, copied into *root.  0 (found), 1 (absent), -1. */
int scan_prev_root(scan_prev *p, fmt_entry *root, cut_arena *a, prev_pos *pos);

typedef struct prev_child {
	fmt_entry e;  /* strings in the caller's arena */
	prev_pos pos;
	/* From a skeleton (scan_prev_skel_children): run > 0 when e is the
	 * first of run carried immutable files, last the last of them. */
	uint32_t run;
	fmt_entry last;
	uint64_t run_bytes, run_weight;
	bool run_hashed;
} prev_child;
/* The children of the directory whose own entry is at pos, in canonical
 * order, copied into arena a; *v is allocated with cut_malloc (caller frees).
 * 0, or -1 on corruption (logged). */
int scan_prev_children(scan_prev *p, prev_pos pos, cut_arena *a, prev_child **v, size_t *n);
/* Opens the manifest path's skeleton (format/skel.h) when it matches the
 * manifest and the policy described by policy; without one, nothing. */
void scan_prev_open_skel(scan_prev *p, const char *path, const char *policy);
/* The open skeleton, or NULL, for the writer's copied blocks. */
struct fmt_skel *scan_prev_skel(scan_prev *p);
/* The same children as scan_prev_children, from the skeleton: the
 * directory's subdirectories and the entries a scan stats one by one, and
 * its carried immutable files as runs.  1 (done), 0 (no skeleton, or it
 * does not hold the directory: use scan_prev_children), -1 (corrupt,
 * logged). */
int scan_prev_skel_children(scan_prev *p, prev_pos pos, cut_arena *a, prev_child **v, size_t *n);

/* ------------------------------------------------------------- hash.c */

/* XXH3-128 (canonical bytes) of the file name relative to dirfd; the open
 * does not follow symlinks.  0 or -errno. */
int scan_hash_file(int dirfd, const char *name, uint8_t out[16], uint64_t *bytes);

/* ------------------------------------------------------ scan.c / list.c */

typedef struct scan_job scan_job;

/* A directory's open fd, shared by the jobs of its subdirectories so that
 * each opens its own directory with one lookup relative to it instead of a
 * walk from the root (a round trip per component on FUSE and NFS).  The last
 * holder closes it. */
typedef struct scan_dirref {
	int fd;
	atomic_int refs;
	atomic_int *live; /* the engine's count of open references */
} scan_dirref;
void scan_dirref_put(scan_dirref *r);
/* Takes the fd out of a reference held by one holder only (a job's own,
 * see scan_job.self_ref); the reference is freed, the fd is the caller's. */
int scan_dirref_take(scan_dirref *r);

typedef struct scan_child {
	fmt_entry e;   /* strings in the listing's arena */
	scan_job *job; /* directory to descend into, or NULL */
	prev_pos src;  /* the previous manifest's entry that e equals in every
			  field (fmt_entry_same), or PREV_NONE: the writer
			  copies a block of such entries (fmt_mwriter_add_from) */
	struct scan_carry *run; /* a run of carried files, e its first (in the
				 listing's arena), or NULL */
} scan_child;

/* A run of carried immutable files from the skeleton, which the writer
 * takes as one unit (fmt_mwriter_add_run). */
typedef struct scan_carry {
	fmt_entry last;
	uint32_t n;
	uint64_t bytes, weight;
} scan_carry;

typedef struct scan_listing {
	cut_arena arena;
	scan_child *v;
	size_t n, cap;
} scan_listing;

struct scan_job {
	char *path;          /* relative path of the directory ("" root) */
	size_t path_len;
	fmt_entry self;      /* its own entry as the parent recorded it */
	prev_pos prev;       /* its entry in the previous manifest, or PREV_NONE */
	bool have_prev;      /* prev_self is valid */
	scan_dirref *parent; /* the parent's fd while it is open (network file
				systems only), or NULL; the job holds a reference */
	scan_dirref *self_ref; /* the directory itself, opened (lookup only) by
				  the parent's job when it stat'ed it through
				  that fd (network file systems only), or NULL */
	fmt_entry prev_self; /* strings owned by the parent's listing arena */
	bool done;
	bool ahead;          /* taken past the budget as the writer's look-ahead
				(scan.c), until the writer takes its listing */
	bool in_finished;    /* in the engine's heap of finished listings
				(scan.c), until the writer takes it */
	scan_listing *out;   /* set when done */
};

/* Per-thread counters, summed into scan_stats at the end. */
typedef struct scan_counters {
	uint64_t errors, vanished, listed, skipped_dirs, stats, carried;
	uint64_t skel_dirs; /* unchanged directories whose children came from
			       the skeleton (prev_children) */
	uint64_t hashed, hashed_bytes, hash_carried;
	uint64_t retried;
} scan_counters;

typedef struct scan_ctx {
	const scan_opts *o;
	scan_policy policy;
	int rootfd;
	uint64_t root_dev;
	bool remote;               /* the root is on a network or FUSE file system */
	atomic_int dirrefs;        /* directory fds kept open for children ... */
	int max_dirrefs;           /* ... at most this many (from RLIMIT_NOFILE) */
	scan_prev *prev;           /* NULL without --prev */
	int64_t racy_limit_ns;     /* times at or after this are not trusted */
} scan_ctx;

/* Work split into n pieces that idle workers help with (scan.c): fn runs
 * once for each i in [0, n), in any thread, with that thread's counters. */
typedef struct scan_task {
	void (*fn)(void *arg, size_t i, scan_counters *c);
	void *arg;
	size_t n;
	size_t next, done;      /* the engine's, under its lock */
	struct scan_task *link; /* the engine's list of tasks with pieces left */
} scan_task;
/* Runs every piece of t, the calling thread taking pieces too, and returns
 * when all are done.  ctx must be the engine's (scan_list_dir's). */
void scan_fanout(scan_ctx *ctx, scan_task *t, scan_counters *c);

/* Lists one directory into a new listing (children sorted, child jobs
 * created for directories to descend into).  Never fails as a whole: what
 * cannot be read is logged with its path and counted in c->errors. */
scan_listing *scan_list_dir(scan_ctx *ctx, scan_job *job, scan_counters *c);
void scan_listing_free(scan_listing *l);
size_t scan_listing_bytes(const scan_listing *l);
/* Makes a job for a child directory (path in fresh memory). */
scan_job *scan_job_new(const fmt_entry *self);
void scan_job_free(scan_job *j);
/* Fills e (strings not set) from a stat. */
void scan_entry_from_stat(fmt_entry *e, const sys_stat *st);

#endif
