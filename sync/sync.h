/*
 * sync.h - the state directory and the nightly/final pass (`cutover init`,
 * `sync`, `verify`, `status`): scan -> diff -> replay chained so that a change
 * log is only ever replayed onto a target at its base state.
 *
 * The files of this module, one role each:
 *   state.c   the state directory: layout, config, target-state, pending
 *             pass, history, rotation; every write atomic (temp, fsync, rename)
 *   lock.c    the run lock (DIR/lock): one pass at a time, stale locks recovered
 *   progress.c what the running pass is doing (DIR/progress): written by the
 *             pass at most once a second, read by `status`, alive or dead
 *   base.c    manifests derived from others: a base patched with what replay
 *             really left (drift), and a target scan re-based on the source
 *   verify.c  two scans in parallel and a parity report (verify, sync --final)
 *   switch.c  switched subtrees: `cutover switch`, the base spliced, later
 *             logs filtered, late writes
 *   heal.c    the final pass's repair of a subtree its verification found
 *             different (a --rebase confined to that subtree)
 *   sync.c    the pass itself and the chain check
 *
 * docs/SYNC.md describes the layout and the chain.  Functions return
 * 0 or -1 (logged) unless said otherwise; those whose callers must tell
 * outcomes apart (sync_lock_take, sync_heal, sync_run, sync_init,
 * sync_switch) return a cut_outcome (util.h), never an exit code.  Only
 * cli/ prints summaries, chooses exit codes and writes to syslog.
 */
#ifndef CUTOVER_SYNC_H
#define CUTOVER_SYNC_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "base/budget.h"
#include "format/container.h"
#include "base/util.h"
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
	uint64_t max_ops, bwlimit; /* the source budget of a pass (base/budget.h); 0: none */
	bool adaptive;         /* the source's gate (base/budget.h) */
	int64_t max_latency_ns; /* 0: none */
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
/* Makes a file written without fsync (a scratch scan) durable before it is
 * kept.  0 or -1 (logged). */
int sync_fsync_file(const char *path);
/* Appends len bytes to path (created if missing) and fsyncs it.  0 or -1
 * (logged). */
int sync_append_durable(const char *path, const void *data, size_t len);
/* Reads a small text file (at most 1 MiB) into *out (NUL-terminated).
 * 1, 0 when it does not exist, -1 on error (logged). */
int sync_read_file(const char *path, cut_buf *out);

/* "DIR/manifests/000012.cmf" etc.; caller frees. */
char *sync_path(const char *dir, const char *rel);
void sync_rel_manifest(char out[64], unsigned seq, const char *suffix);
void sync_rel_log(char out[64], unsigned seq);
/* A switched subtree's record, "switch/000012-3.cmf" (pass 12, subtree 3),
 * and the scratch files of subtree i's switch, "switch/3.WHAT". */
void sync_rel_switch_record(char out[64], unsigned seq, size_t i);
void sync_rel_switch_scratch(char out[64], size_t i, const char *what);
/* True when the target's base is not its pass's own source manifest (a
 * drift patch, a rebase, a switch's splice). */
bool sync_base_derived(const sync_tstate *t);
/* The highest pass number with a source manifest (0: none) and its
 * relative path. */
unsigned sync_last_manifest(const char *dir, char rel[64]);
/* Creates DIR/manifests and DIR/logs.  0 or -1. */
int sync_dirs_create(const char *dir);
/* Removes manifests and logs of passes older than the last keep ones, never
 * one that target-state or pending names.  Returns files removed. */
int sync_rotate(const char *dir, unsigned keep, unsigned newest, const sync_tstate *t,
		const sync_pending *p);

/* DIR/progress: the phase and counters of the pass that runs now, rewritten
 * (temp + rename, no fsync: it is a view, not a record) at most once a second
 * by that pass and removed when it ends; one left behind belongs to a pass
 * that died.  Format and parse here, the writer and readers in progress.c. */
typedef struct sync_progress {
	unsigned seq;          /* the pass's number; 0 before it has one */
	char kind[16];         /* initial, nightly, final, rebase */
	char phase[16];        /* start, check, scan, diff, replay, commit, verify */
	long pid;
	char host[256];
	int64_t start_ns;      /* unix ns: the pass started */
	int64_t phase_ns;      /* unix ns: this phase started */
	int64_t written_ns;    /* unix ns: this record was written */
	uint64_t done, total;  /* the phase's units (scan: entries, replay: operations);
				  total 0: unknown (scan: the last pass's count) */
	/* The source over the last seconds (base/budget.h): its rates, median
	 * and p99 latency (0: no request measured), the gate's limit (0: no
	 * gate), and the requests a limit or the gate held back, per mille. */
	uint64_t src_ops_s, src_bytes_s, src_p50_ns, src_p99_ns, src_limit, src_held_pm;
	uint64_t bytes, bytes_total; /* scan: bytes of files seen; replay: copied */
} sync_progress;
int sync_progress_parse(const char *text, size_t len, sync_progress *p, const char **err);
void sync_progress_format(const sync_progress *p, cut_buf *out);

/* One line of DIR/history per pass: "key=value" words, space separated. */
typedef struct sync_hist {
	unsigned seq;
	char kind[16];        /* initial, nightly, final, rebase, resume, check */
	int64_t start, end;   /* unix ns */
	double scan_s, diff_s, replay_s, check_s;
	uint64_t entries, ops, created, updated, renamed, linked, deleted, meta, bytes;
	uint64_t drifted, vanished, skipped, conflicts;
	uint64_t retried;     /* requests that answered ESTALE and were made again (source, target) */
	/* The source over the whole pass (base/budget.h): operations, bytes,
	 * their rates, the median and p99 latency of its requests, and the
	 * share of them a limit or the gate held back. */
	uint64_t src_ops, src_bytes;
	double src_ops_s, src_bytes_s, src_p50_us, src_p99_us, src_held;
	int exit;
	char verdict[16];     /* final: parity, differ; else "-" */
} sync_hist;
void sync_hist_format(const sync_hist *h, cut_buf *out); /* no newline */
int sync_hist_parse(const char *line, size_t len, sync_hist *h);
int sync_hist_append(const char *dir, const sync_hist *h);
/* Appends the line of a pass that has done its work.  Its failure is the
 * pass's: the work is committed but `status` will not show it, and a cron
 * job that watches exit codes must hear of it.  0, or -1 (logged, saying
 * so). */
int sync_hist_record(const char *dir, const sync_hist *h);
/* Reads the last max lines (oldest first) into *v (caller frees). -1 on error. */
int sync_hist_read(const char *dir, size_t max, sync_hist **v, size_t *n);
/* The exit code that exit_code (sync_opts, sync_switch_opts) gives an
 * outcome, or -1 without one. */
static inline int sync_exit_of(int (*exit_code)(int), int outcome)
{
	return exit_code ? exit_code(outcome) : -1;
}

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

/* Takes DIR/lock.  CUT_OK, CUT_LOCKED (another live run; *holder
 * filled and logged), or CUT_FAILED (logged).  A lock left by a run that
 * is dead (this host, pid gone, no flock held) is taken over atomically. */
int sync_lock_take(const char *dir, sync_lock *l, sync_lock_holder *holder);
void sync_lock_release(sync_lock *l);
/* Whether a live run holds DIR/lock, without taking it: 1 (and *holder), 0
 * when there is no lock or its run is dead (*holder: what the file says, pid
 * 0 when no file), -1 on error (logged). */
int sync_lock_probe(const char *dir, sync_lock_holder *holder);
int sync_lock_parse(const char *text, size_t len, sync_lock_holder *h);

/* ---- base.c ------------------------------------------------------------ */

/* Writes out: manifest m with the entries of the files a replay of log
 * created or updated replaced by what the target holds now (after drift),
 * and entries the target lacks dropped.  The log's paths are sorted in
 * bounded memory, spilling to tmpdir (NULL: $TMPDIR).  0 or -1 (logged). */
int sync_base_patch(const char *manifest, const char *log, const char *target, const char *out,
		    const char *tmpdir, uint64_t *patched);
/* The same for several logs, each replayed onto the subtree prefixes[i] of
 * the target (its paths relative to it; "" for the whole tree): the final
 * pass's repairs (heal.c). */
int sync_base_patch_logs(const char *manifest, const char *const *logs, const char *const *prefixes,
			 size_t nlogs, const char *target, const char *out, const char *tmpdir,
			 uint64_t *patched);
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

/* Who hears how far a verification's scans are: fn is called from the
 * thread that called sync_verify or sync_scan_pair, a few times a second,
 * with the entries both sides have listed since the call began. */
typedef struct sync_scan_watch {
	void (*fn)(uint64_t entries, void *arg);
	void *arg;
} sync_scan_watch;

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
	/* Called with each subtree that differs ("" for the whole tree) and its
	 * two scans, which it may rename to keep them (NULL when the subtree
	 * was not scanned: missing, or not a directory, on one side). */
	void (*on_differ)(void *arg, const char *subtree, const char *ma, const char *mb);
	void *arg;
	const sync_scan_watch *watch; /* NULL: none */
} sync_verify_opts;

/* Scans both sides in parallel and reports.  0 parity, 1 differ, -1 error
 * (logged).  With subtrees, each is scanned and reported on its own;
 * *ndiffer counts the subtrees that differ. */
int sync_verify(const sync_verify_opts *o, uint64_t *entries, uint64_t *ndiffer);
/* Scans a into ma and b into mb at once (full scans with pol; content:
 * hash every file), as scratch files (not fsync'ed: sync_fsync_file one
 * before keeping it); adds the entries scanned to *entries, and tells watch
 * (NULL: none) *entries as it was plus the entries listed so far.  0, or -1
 * when a side could not be scanned or read whole (logged). */
int sync_scan_pair(const sync_scan_policy *pol, bool content, const char *a, const char *b,
		   const char *ma, const char *mb, uint64_t *entries, const sync_scan_watch *watch);
/* The same without content hashes, where a's scan is incremental on a_prev,
 * a scan of a made earlier in the same pass: the policy's immutable files of
 * a's unchanged directories are carried from it, not stat'ed again
 * (docs/INCREMENTAL.md says what that trusts).  b is scanned in full. */
int sync_scan_pair_since(const sync_scan_policy *pol, const char *a, const char *a_prev, const char *b,
			 const char *ma, const char *mb, uint64_t *entries);

/* ---- heal.c ------------------------------------------------------------ */

typedef struct sync_heal_opts {
	const char *source, *target; /* the whole trees */
	const char *workdir;         /* the state directory: the repair's temporaries */
	sync_scan_policy pol;
	unsigned jobs;               /* replay workers; 0: default */
	bool fsync;
	FILE *out;                   /* what still differs after a repair, and why */
	const char *keep_source;     /* when set and healed: the source's scan of the
					verification moved there (switch's record) */
	bool recheck_since;          /* the source's scan after the replay is incremental
					on its scan before (sync_scan_pair_since) */
} sync_heal_opts;

enum sync_heal_outcome {
	SYNC_HEALED = 0,             /* both sides match after the repair */
	SYNC_HEAL_SOURCE_CHANGING,   /* the source changed while it was repaired */
	SYNC_HEAL_STILL_DIFFERS,     /* the source held still, the target still differs */
};

typedef struct sync_heal_result {
	rp_stats st;                 /* the repair's replay */
	bool replayed;               /* the target may have been changed */
	uint64_t entries;            /* scanned, both sides, both rounds */
	enum sync_heal_outcome outcome;
} sync_heal_result;

/* Repairs the subtree rel of the target ("" the whole tree; a directory on
 * both sides) from the source: scans (or takes the scans s1 and t1 of a
 * verification just made, which it removes), re-bases, diffs into log_out
 * (kept for the caller's base patch), replays, scans again.  CUT_OK
 * with r->outcome, or the cut_outcome that stopped it (logged). */
int sync_heal(const sync_heal_opts *o, const char *rel, const char *s1, const char *t1,
	      const char *log_out, sync_heal_result *r);
/* Appends the text of a report to out, each line after indent, without the
 * lines that name its (temporary) manifests. */
void sync_report_excerpt(cut_buf *out, const char *text, const char *indent);

/* ---- progress.c -------------------------------------------------------- */

/* The source's recent window: from a snapshot at most SYNC_SRC_WINDOW_NS
 * old, of the last SYNC_SRC_SNAPS the writer took (about one a second). */
#define SYNC_SRC_SNAPS 6
#define SYNC_SRC_WINDOW_NS 5000000000LL

/* What `status` shows of DIR's running pass. */
typedef struct sync_running {
	sync_progress p;
	bool alive;          /* false: it died (its lock is free or stale) */
	double secs;         /* in the phase: up to now, or to its last record if dead */
	double rate, byte_rate; /* per second in the phase */
	int64_t eta_s;       /* -1: unknown */
} sync_running;
/* The running pass's side: it owns DIR/progress from sync_progress_start
 * (after the lock is taken) to sync_progress_end (before it is released). */
typedef struct sync_progress_w {
	const char *dir;
	sync_progress p;
	int64_t written;     /* cut_mono_ns() of the last write of the file */
	bool failed;         /* a write failed (warned once): no more writes */
	void (*show)(const sync_running *r, void *arg); /* the TTY line, or NULL */
	void *show_arg;
	budget_snap src[SYNC_SRC_SNAPS]; /* the source's counters at the last writes */
	unsigned nsrc;
} sync_progress_w;

void sync_progress_start(sync_progress_w *w, const char *dir, const char *kind);
/* A new phase: counters reset, total (0: unknown) set, the file rewritten. */
void sync_progress_phase(sync_progress_w *w, unsigned seq, const char *phase, uint64_t total);
/* New counters of the phase; the file is rewritten when a second has
 * passed.  total/bytes_total 0: keep what is known. */
void sync_progress_count(sync_progress_w *w, uint64_t done, uint64_t total, uint64_t bytes,
			 uint64_t bytes_total);
/* The pass ends: the file goes. */
void sync_progress_end(sync_progress_w *w);

/* The rates and ETA of p (as of its counts) and its time in the phase up to
 * now_ns (unix ns); r->alive set true. */
void sync_running_of(const sync_progress *p, int64_t now_ns, sync_running *r);
/* 1 and *r when DIR has a progress file (a running pass or one that died),
 * 0 when not, -1 on error (logged). */
int sync_running_read(const char *dir, sync_running *r);
/* The one-line view, as `sync` shows it on a TTY and `status` prints it. */
void sync_running_line(const sync_running *r, char *buf, size_t cap);
/* The phase's unit ("entries", "ops"), for the line and for JSON. */
const char *sync_progress_unit(const char *phase);
/* The source's view as the progress file records it; false when it records
 * no measured request. */
bool sync_progress_src(const sync_progress *p, budget_view *v);
/* The source over the pass so far, into h's src_ fields. */
void sync_hist_src(sync_hist *h);
/* h's src_ fields as the summary line says them ("812 ops/s, ..."). */
void sync_hist_src_line(const sync_hist *h, char *buf, size_t cap);

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
	bool fsync;
	bool has_max_ops, has_bwlimit; /* override the config's limits (0: none) */
	uint64_t max_ops, bwlimit;
	bool has_adaptive, adaptive, has_max_latency; /* override the config's gate */
	int64_t max_latency_ns;
	/* The running pass's line (the CLI shows it on a TTY only), called as
	 * the counters move; NULL: none.  DIR/progress is written regardless. */
	void (*progress)(const sync_running *r, void *arg);
	void *progress_arg;
	/* How the caller reports an outcome (the CLI: cli_exit_code).  The
	 * history's exit field and the "(exit N)" of messages and the summary
	 * hold what it answers; NULL: -1 there. */
	int (*exit_code)(int outcome);
} sync_opts;

typedef struct sync_result {
	sync_hist h;
	char verdict_line[512];
	char message[1024];     /* one-line summary: the CLI sends it to syslog or --log */
	char fix[512];          /* what fixes a non-zero exit, when its code alone does not
				 * tell (the CLI prints it last); "" otherwise */
} sync_result;

/* One pass.  Returns a cut_outcome (CUT_INVALID: --source or --target is
 * not the pair of DIR); every problem is logged with what to
 * do.  r is filled as far as the pass went. */
int sync_run(const sync_opts *o, sync_result *r);

/* `cutover init`: creates DIR and its config.  A cut_outcome: CUT_OK or
 * CUT_FAILED (logged);
 * when what fixes an error is not a rerun, fix says what does. */
int sync_init(const char *dir, const sync_config *c, bool force, char *fix, size_t fixcap);

/* The cheap check of the target against DIR/target-marks: 0 when every
 * recorded stat matches, 1 when one differs (*what says which), -1 error. */
int sync_marks_check(const char *dir, const char *target, char *what, size_t wcap);

/* The scan options and verification policy of DIR's config, for `threads`
 * scanner threads (0: the default). */
void sync_scan_opts_of(const sync_config *c, scan_opts *so, int threads);
void sync_policy_of(const sync_config *c, sync_scan_policy *p, int threads);
/* The number the next pass (or switch) of DIR takes. */
unsigned sync_next_seq(const char *dir, const sync_tstate *t);

/* ---- switch.c ----------------------------------------------------------- */

/* DIR/switched: the subtrees whose copy on the target belongs to the new
 * side (docs/SYNC.md, "Switched subtrees"), in canonical order. */
typedef struct sync_switched {
	size_t n;
	char **path;    /* relative to the roots */
	char **record;  /* the source subtree at its switch, a manifest relative to DIR */
	bool *done;     /* false: switched, but not yet spliced into the base */
} sync_switched;
int sync_switched_read(const char *dir, sync_switched *s); /* 0 or -1 (logged) */
void sync_switched_free(sync_switched *s);
/* The switched subtree that is path or holds it, or NULL. */
const char *sync_switched_find(const sync_switched *s, const char *path, size_t len);
/* Writes out: manifest base with every switched subtree's entries replaced
 * by its record.  0 or -1 (logged). */
int sync_switched_splice(const char *dir, const sync_switched *s, const char *base, const char *out);
/* The same with their entries taken from manifest `from` instead. */
int sync_switched_graft(const sync_switched *s, const char *base, const char *from, const char *out);
/* The same with the switched subtrees' entries left out. */
int sync_switched_drop(const sync_switched *s, const char *base, const char *out);
/* Rewrites change log `log` in place without what it would do inside a
 * switched subtree; each such record is a late write, appended to
 * DIR/late-writes and counted in *nlate.  0 or -1 (logged). */
int sync_switched_filter(const char *dir, const sync_switched *s, const char *log, unsigned seq,
			 uint64_t *nlate);
/* Splices the records of subtrees a killed switch left "switching" into the
 * base, updating *t.  0 or -1. */
int sync_switched_settle(const char *dir, const sync_config *cfg, sync_tstate *t);
/* Exclusion globs: config c's, and one per switched subtree (its contents on
 * the target are the new side's, so audits and target checks leave them out). */
typedef struct sync_globs {
	char **v;
	size_t n;
} sync_globs;
void sync_switched_excludes(const sync_switched *s, const sync_config *c, sync_globs *g);
void sync_globs_free(sync_globs *g);
/* Late writes not yet acknowledged (lines of DIR/late-writes). */
uint64_t sync_late_count(const char *dir);
/* Moves DIR/late-writes aside (late-writes.acked.TIME).  0 or -1. */
int sync_late_ack(const char *dir);

/* The subtrees at depth 2 of the source (domain/user) not switched yet;
 * the first nfirst are named in *first, space separated. */
size_t sync_switch_left(const char *source, const sync_switched *s, cut_buf *first, size_t nfirst);

typedef struct sync_switch_opts {
	const char *dir;
	const char *const *subtrees;
	size_t n;
	const char *before, *after; /* shell commands; NULL: none */
	unsigned jobs;
	int scan_threads;
	bool fsync, ack_late;
	bool has_max_ops, has_bwlimit; /* override the config's limits (0: none) */
	uint64_t max_ops, bwlimit;
	bool adaptive;          /* the source's gate, besides the config's */
	int64_t max_latency_ns; /* 0: the config's */
	FILE *out;              /* the per-subtree verdicts */
	/* How the caller reports an outcome (the CLI: cli_exit_code).  The
	 * history's exit field and the "(exit N)" of messages and the summary
	 * hold what it answers; NULL: -1 there. */
	int (*exit_code)(int outcome);
} sync_switch_opts;
/* `cutover switch`.  A cut_outcome; CUT_INVALID when a subtree given
 * cannot be switched. */
int sync_switch(const sync_switch_opts *o, sync_result *r);

#endif
