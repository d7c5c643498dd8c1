/*
 * sync.h - the state directory and the nightly/final pass (`cutover init`,
 * `sync`, `verify`, `status`): scan -> diff -> replay chained so that a change
 * log is only ever replayed onto a target at its base state.
 *
 * The files of this module, one role each:
 *   state.c   the state directory: layout, config, target-state, pending
 *             pass, history, rotation; every write atomic (temp, fsync, rename)
 *   lock.c    the run lock (DIR/lock): one pass at a time, stale locks recovered
 *   base.c    manifests derived from others: a base patched with what replay
 *             really left (drift), and a target scan re-based on the source
 *   verify.c  two scans in parallel and a parity report (verify, sync --final)
 *   sync.c    the pass itself and the chain check
 *
 * docs/SYNC.md describes the layout and the chain.  Functions return
 * an enum cut_exit (util.h) unless said otherwise; only cli/ prints summaries.
 */
#ifndef CUTOVER_SYNC_H
#define CUTOVER_SYNC_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "format/container.h"
#include "format/util.h"
#include "replay/replay.h"
#include "scanner/scan.h"

/* ---- state.c ---------------------------------------------------------- */

#define SYNC_STATE_VERSION 1
#define SYNC_KEEP_DEFAULT 7
#define SYNC_MAX_GLOBS 64

/* DIR/config: written once by init, read by every other command. */
typedef struct sync_config {
	char *source, *target;
	bool maildir, one_fs;
	char *immutable[SYNC_MAX_GLOBS], *excludes[SYNC_MAX_GLOBS];
	size_t nimmutable, nexcludes;
	unsigned keep;         /* manifests and logs kept (default SYNC_KEEP_DEFAULT) */
	int64_t created;       /* unix seconds */
	char *host;            /* where init ran */
} sync_config;

void sync_config_free(sync_config *c);
/* Parses the text of a config file.  0, or -1 with *err set to a static
 * message and *line to the bad line (1-based). */
int sync_config_parse(const char *text, size_t len, sync_config *c, const char **err, int *line);
/* Reads DIR/config.  0 or -1 (logged). */
int sync_config_read(const char *dir, sync_config *c);
/* Serialises c (caller frees the buffer). */
void sync_config_format(const sync_config *c, cut_buf *out);

/* DIR/target-state: which manifest the target matches, written atomically
 * after a replay finished.  `base` is the manifest the next diff starts from:
 * the source manifest itself, or a derived one (drift patch, rebase). */
typedef struct sync_tstate {
	unsigned seq;                 /* the pass that brought the target there */
	uint8_t manifest_id[FMT_ID_LEN]; /* source manifest manifests/<seq>.cmf */
	char base[64];                /* base manifest, relative to DIR */
	uint8_t base_id[FMT_ID_LEN];
	int64_t time;                 /* unix seconds when it was written */
	char kind[16];                /* the pass kind that wrote it */
} sync_tstate;

/* DIR/pending: a replay started and not yet recorded as finished. */
typedef struct sync_pending {
	unsigned seq;
	char log[64], manifest[64], base[64]; /* relative to DIR */
	uint8_t log_id[FMT_ID_LEN];
	bool has_old;
	uint8_t old_id[FMT_ID_LEN];   /* base id the log starts from */
	char kind[16];
} sync_pending;

/* Parsers of the key=value files, exposed for the unit tests.  0 or -1
 * (*err: what is wrong). */
int sync_tstate_parse(const char *text, size_t len, sync_tstate *t, const char **err);
int sync_pending_parse(const char *text, size_t len, sync_pending *p, const char **err);
void sync_tstate_format(const sync_tstate *t, cut_buf *out);
void sync_pending_format(const sync_pending *p, cut_buf *out);

/* 1 and *t when DIR/target-state exists, 0 when not, -1 on error (logged). */
int sync_tstate_read(const char *dir, sync_tstate *t);
int sync_tstate_write(const char *dir, const sync_tstate *t);
int sync_pending_read(const char *dir, sync_pending *p);
int sync_pending_write(const char *dir, const sync_pending *p);
int sync_pending_remove(const char *dir);

/* Writes len bytes to path atomically and durably: path.tmp, fsync, rename,
 * fsync of the directory.  0 or -1 (logged). */
int sync_write_atomic(const char *path, const void *data, size_t len);
/* Reads a small text file (at most 1 MiB) into *out (NUL-terminated).
 * 1, 0 when it does not exist, -1 on error (logged). */
int sync_read_file(const char *path, cut_buf *out);

/* "DIR/manifests/000012.cmf" etc.; caller frees. */
char *sync_path(const char *dir, const char *rel);
void sync_rel_manifest(char out[64], unsigned seq, const char *suffix);
void sync_rel_log(char out[64], unsigned seq);
/* The highest pass number with a source manifest (0: none) and its
 * relative path. */
unsigned sync_last_manifest(const char *dir, char rel[64]);
/* Creates DIR/manifests and DIR/logs.  0 or -1. */
int sync_dirs_create(const char *dir);
/* Removes manifests and logs of passes older than the last keep ones, never
 * one that target-state or pending names.  Returns files removed. */
int sync_rotate(const char *dir, unsigned keep, unsigned newest, const sync_tstate *t,
		const sync_pending *p);

/* One line of DIR/history per pass: "key=value" words, space separated. */
typedef struct sync_hist {
	unsigned seq;
	char kind[16];        /* initial, nightly, final, rebase, resume, check */
	int64_t start, end;   /* unix ns */
	double scan_s, diff_s, replay_s, check_s;
	uint64_t entries, ops, created, updated, renamed, linked, deleted, meta, bytes;
	uint64_t drifted, vanished, skipped, conflicts;
	int exit;
	char verdict[16];     /* final: parity, differ; else "-" */
} sync_hist;
void sync_hist_format(const sync_hist *h, cut_buf *out); /* no newline */
int sync_hist_parse(const char *line, size_t len, sync_hist *h);
int sync_hist_append(const char *dir, const sync_hist *h);
/* Reads the last max lines (oldest first) into *v (caller frees). -1 on error. */
int sync_hist_read(const char *dir, size_t max, sync_hist **v, size_t *n);

/* ---- lock.c ------------------------------------------------------------ */

typedef struct sync_lock {
	int fd;
	char *path;
} sync_lock;

typedef struct sync_lock_holder {
	long pid;
	char host[256];
	int64_t start;        /* unix seconds */
} sync_lock_holder;

/* Takes DIR/lock.  CUT_EXIT_OK, CUT_EXIT_LOCKED (another live run; *holder
 * filled and logged), or CUT_EXIT_ERROR (logged).  A lock left by a run that
 * is dead (this host, pid gone, no flock held) is taken over atomically. */
int sync_lock_take(const char *dir, sync_lock *l, sync_lock_holder *holder);
void sync_lock_release(sync_lock *l);
int sync_lock_parse(const char *text, size_t len, sync_lock_holder *h);

/* ---- base.c ------------------------------------------------------------ */

/* Writes out: manifest m with the entries of the files a replay of log
 * created or updated replaced by what the target holds now (after drift),
 * and entries the target lacks dropped.  The log's paths are sorted in
 * bounded memory, spilling to tmpdir (NULL: $TMPDIR).  0 or -1 (logged). */
int sync_base_patch(const char *manifest, const char *log, const char *target, const char *out,
		    const char *tmpdir, uint64_t *patched);
/* Writes out: the target scan t expressed in the identity (dev, inode) of
 * the source scan s wherever the target's entry matches the source's (and is
 * linked as on the source), so that diff out -> s copies only what differs.
 * Sorting spills to tmpdir (NULL: $TMPDIR).  0 or -1 (logged). */
int sync_base_rebase(const char *t, const char *s, const char *out, const char *tmpdir,
		     uint64_t *matched);

/* ---- verify.c ---------------------------------------------------------- */

typedef struct sync_scan_policy {
	bool maildir, one_fs;
	const char *const *excludes;
	size_t nexcludes;
	const char *const *immutable;
	size_t nimmutable;
	int threads;
} sync_scan_policy;

typedef struct sync_verify_opts {
	const char *source, *target;
	const char *workdir;    /* where the two manifests go (removed after) */
	sync_scan_policy pol;
	bool content;           /* hash both sides and compare contents */
	bool json;
	unsigned examples;
	FILE *out;              /* the report; NULL: none */
	bool only_differences;  /* print a report only when the sides differ */
	const char *const *subtrees; /* relative roots to verify; NULL: the whole tree */
	size_t nsubtrees;
} sync_verify_opts;

/* Scans both sides in parallel and reports.  0 parity, 1 differ, -1 error
 * (logged).  With subtrees, each is scanned and reported on its own;
 * *ndiffer counts the subtrees that differ. */
int sync_verify(const sync_verify_opts *o, uint64_t *entries, uint64_t *ndiffer);

/* ---- sync.c ------------------------------------------------------------ */

typedef struct sync_opts {
	const char *dir;
	const char *source, *target; /* from the command line: must match config */
	unsigned keep;          /* 0: config's */
	unsigned jobs;          /* replay workers; 0: default */
	int scan_threads;       /* 0: default */
	bool final, force, attr_cache_expired, full, rebase, check_target;
	int64_t max_age_s;      /* --final: newest successful sync at most this old */
	unsigned verify_depth;  /* --final: changed subtrees = first N components */
	const char *log_file;   /* NULL: syslog */
	bool no_syslog;
	bool fsync;
	/* Progress (the CLI shows it on a TTY only); NULL: none. */
	void (*scan_progress)(const scan_progress *p, void *arg);
	void (*replay_progress)(void *ctx, const rp_stats *st);
} sync_opts;

typedef struct sync_result {
	sync_hist h;
	char verdict_line[512];
	char message[1024];     /* one-line summary (the syslog line) */
} sync_result;

/* One pass.  Returns an enum cut_exit; every problem is logged with what to
 * do.  r is filled as far as the pass went. */
int sync_run(const sync_opts *o, sync_result *r);

/* `cutover init`: creates DIR and its config.  CUT_EXIT_OK/ERROR/USAGE. */
int sync_init(const char *dir, const sync_config *c, bool force);

/* The cheap check of the target against DIR/target-marks: 0 when every
 * recorded stat matches, 1 when one differs (*what says which), -1 error. */
int sync_marks_check(const char *dir, const char *target, char *what, size_t wcap);

/* The syslog line (or --log FILE line) of a pass. */
void sync_log_line(const char *log_file, bool use_syslog, int exit_code, const char *line);

#endif
