/*
 * internal.h - what the files of replay/ share and nothing outside uses: the
 * in-memory operation, the apply context, the scheduler and journal APIs.
 */
#ifndef CUTOVER_REPLAY_INTERNAL_H
#define CUTOVER_REPLAY_INTERNAL_H

#include "format/changes.h"
#include "base/sys.h"
#include "replay/replay.h"

/* Outcome of applying one record (rp_op.res). */
enum rp_res {
	RP_R_DONE = 0,   /* applied (see rp_op.drifted, rp_op.overwrote) */
	RP_R_NOOP,       /* the target already was as the log wants (redo after a crash) */
	RP_R_VANISHED,   /* source gone: nothing done */
	RP_R_SKIPPED,    /* not applicable here (msg says why): nothing done */
	RP_R_CONFLICT,   /* target not as expected (msg): nothing done */
	RP_R_NOSPACE,    /* ENOSPC/EDQUOT on the target (msg): nothing done, temporary removed */
	RP_R_ERROR,      /* other I/O error (msg): nothing done */
};

/* Kinds of work: a log record, or the final phase's directory attributes. */
enum rp_kind { RP_K_RECORD = 0, RP_K_DIRATTR = 1 };

/* One record of the log, copied out of the reader (whose strings live only
 * until its next call).  Owned by the dispatcher; a worker owns it between
 * taking it from the work queue and putting it on the done queue. */
typedef struct rp_op {
	struct rp_op *next;   /* queue link */
	uint64_t idx;         /* record number in the log, from 0 */
	uint8_t kind, op, flags;
	fmt_entry e;          /* e.path, e.target point into str */
	fmt_old old;
	const char *to;       /* rename, link: into str; else NULL */
	uint32_t to_len;
	/* set by the worker */
	uint8_t res;
	bool drifted;         /* DONE, but the source differed from the log */
	bool racy;            /* DONE or NOOP, and the file is racy (RP_RACY_NS) */
	bool overwrote;       /* DONE over a conflicting target (--on-conflict overwrite) */
	bool retried;         /* made again once after the target answered ESTALE */
	int err;              /* the errno of an ERROR or NOSPACE on the target, else 0 */
	uint64_t copied;      /* bytes written to the target */
	char *msg;            /* malloc'd explanation for CONFLICT/SKIPPED/ERROR/... */
	char str[];
} rp_op;

/* Copies c into a new rp_op (kind RP_K_RECORD).  Free with rp_op_free. */
rp_op *rp_op_new(const fmt_change *c, uint64_t idx);
void rp_op_free(rp_op *op);
/* The bytes rp_op_new allocated for op. */
size_t rp_op_bytes(const rp_op *op);

/* Directories whose mtime apply.c restores around replacements (apply.c). */
typedef struct rp_dirkeep rp_dirkeep;
rp_dirkeep *rp_dirkeep_new(void);
void rp_dirkeep_free(rp_dirkeep *k);

/* The names that stand in on the target for files whose link records
 * found them vanished (apply.c). */
typedef struct rp_orphans rp_orphans;
rp_orphans *rp_orphans_new(void);
void rp_orphans_free(rp_orphans *o);
/* Notes that the create of path found it gone from the source (in this run,
 * or in an earlier run of the same log, from the journal). */
void rp_orphans_vanished(rp_orphans *o, const char *path);

/* The source's directories, looked up once and shared by the workers for a
 * moment (srcdir.c): one round trip per file instead of one per component. */
typedef struct rp_srcdirs rp_srcdirs;
rp_srcdirs *rp_srcdirs_new(int srcfd);
void rp_srcdirs_free(rp_srcdirs *d);
typedef struct rp_srcdir {
	int fd;   /* the parent directory: borrowed, do not close */
	int slot;
} rp_srcdir;
/* The parent directory of path (relative, not empty) beneath the source
 * root, from the cache or looked up; *base points at path's last component.
 * 0, or -errno of the lookup.  Thread-safe. */
int rp_srcdir_get(rp_srcdirs *d, const char *path, const char **base, rp_srcdir *out);
/* Gives it back; stale: a call through it failed with ESTALE, so it is not
 * used again. */
void rp_srcdir_put(rp_srcdirs *d, rp_srcdir *h, bool stale);
/* Counts a source lookup made again after ESTALE (rp_stats.retried), and
 * reads the count. */
void rp_srcdirs_retry(rp_srcdirs *d);
uint64_t rp_srcdirs_retries(rp_srcdirs *d);
/* Read-only during a run; shared by all workers. */
typedef struct rp_ctx {
	rp_dirkeep *keep;  /* thread-safe itself */
	rp_orphans *orphans; /* thread-safe itself */
	rp_srcdirs *srcdirs; /* thread-safe itself; NULL in a dry run */
	int srcfd, dstfd;  /* O_DIRECTORY roots */
	bool fsync, root, dry_run;
	bool maildir;      /* rp_opts.maildir */
	bool redo;         /* an earlier run of this log may have left temporaries */
	int64_t first_ns;  /* when the first run of this log began (journal), or 0 */
	int on_conflict;
} rp_ctx;

/* apply.c: applies op to the target (confined beneath cx->dstfd), sets
 * op->res, op->copied and op->msg; an operation the target answered ESTALE
 * is made again once (op->retried).  Thread-safe; never logs. */
void rp_apply(const rp_ctx *cx, rp_op *op);
/* The temporary name of record idx: FMT_RESERVED_REPLAY + 16 hex digits. */
void rp_tmp_name(char out[32], uint64_t idx);

/* sched.c: the parallel scheduler. */
typedef struct rp_sched rp_sched;
/* The most records between the watermark (lowest unfinished) and the newest
 * admitted one.  The journal relies on it: a finished record above the
 * watermark lies within RP_SPAN of it (journal.c keeps them in a bitmap of
 * RP_SPAN bits).  Version-1 writers used the same span. */
#define RP_SPAN (1u << 20)
/* The bytes the admitted records (queued, running, blocked) and their
 * entries in the conflict tables may hold; past it, nothing more is admitted
 * until some finish (one record is always admitted). */
#define RP_WINDOW_BYTES (16u << 20)
/* Pulls the next op in log order: 1 with *op, 0 at the end, -1 on error
 * (logged). */
typedef int (*rp_pull_fn)(void *ctx, rp_op **op);
/* Told of every finished op in the dispatcher thread, in completion order.
 * Returns CUT_OK to go on, or another cut_outcome (logged) to stop admitting
 * work (in-flight ops still finish and are reported). */
typedef int (*rp_done_fn)(void *ctx, rp_op *op);
/* Tells whether op's record is already finished (journal): it is then not
 * dispatched. */
typedef bool (*rp_skip_fn)(void *ctx, const rp_op *op);
/* Called after each batch of done_fn calls, before any op waiting for the
 * batch's paths may start (the journal flush).  CUT_OK, or another
 * cut_outcome (logged) to stop. */
typedef int (*rp_flush_fn)(void *ctx);
/* Called by the dispatcher ~10 times a second and at the end. */
typedef void (*rp_tick_fn)(void *ctx);

rp_sched *rp_sched_new(const rp_ctx *cx, unsigned jobs);
/* Runs every op pull returns through the pool, each after every earlier op
 * whose paths conflict with its own (same path, or one beneath the other)
 * has finished and been flushed (flush_fn, may be NULL).  Ops are freed
 * after done_fn.  Returns a cut_outcome: CUT_OK, CUT_FAILED when pull
 * failed, or the first outcome other than CUT_OK that done_fn or flush_fn
 * returned. */
int rp_sched_run(rp_sched *s, rp_pull_fn pull, rp_skip_fn skip, rp_done_fn done,
		 rp_flush_fn flush, rp_tick_fn tick, void *ctx);
/* The done callback calls this for an op that counts as finished (it will
 * be journaled): advances the watermark.  Ops skipped by skip_fn count as
 * finished without it. */
void rp_sched_finished(rp_sched *s, uint64_t idx);
/* Lowest record index not yet finished (every lower one is): the journal's
 * watermark.  Valid in the callbacks and after rp_sched_run. */
uint64_t rp_sched_watermark(const rp_sched *s);
void rp_sched_free(rp_sched *s);

/* journal.c */
typedef struct rp_journal rp_journal;
/* Opens (creating when absent, unless read_only) and locks the journal of
 * the log with id log_id.  Returns CUT_OK and *out, or a cut_outcome (logged):
 * CUT_LOCKED, CUT_FAILED (corrupt, or it belongs to another log that
 * is not finished).  With read_only and no file, *out is an empty journal. */
int rp_journal_open(const char *path, const uint8_t log_id[FMT_ID_LEN], bool read_only,
		    bool fsync, rp_journal **out);
/* True when the journal says record idx is finished. */
bool rp_journal_done(const rp_journal *j, uint64_t idx);
/* What was read when opened: the number of journal records; *w the
 * watermark, *above the finished records listed above it. */
uint64_t rp_journal_progress(const rp_journal *j, uint64_t *w, uint64_t *above);
/* True when an earlier run noted record idx as vanished. */
bool rp_journal_vanished(const rp_journal *j, uint64_t idx);
/* True when the journal holds the completion record; *st then receives the
 * counters of the run that completed it. */
bool rp_journal_complete(const rp_journal *j, rp_stats *st);
/* Outcomes kept in the journal, so that a later run still knows that an
 * earlier, killed one left something incomplete. */
enum { RP_J_APPLIED = 0, RP_J_DRIFTED, RP_J_VANISHED, RP_J_SKIPPED, RP_J_CONFLICT_SKIPPED };
/* Notes record idx finished with an outcome (buffered until the next flush). */
void rp_journal_note(rp_journal *j, uint64_t idx, unsigned outcome);
/* Records that earlier runs of this log noted with an outcome other than
 * RP_J_APPLIED. */
uint64_t rp_journal_earlier(const rp_journal *j);
/* True when an earlier run of this same log started (the journal held its
 * header before this run). */
bool rp_journal_resumed(const rp_journal *j);
/* When the first run of this log began (its START record), or 0 when the
 * journal has none. */
int64_t rp_journal_started(const rp_journal *j);
/* Appends one record: watermark and the noted indices at or above it; fsyncs
 * when opened with fsync or when sync is true.  0 or -errno (logged). */
int rp_journal_flush(rp_journal *j, uint64_t watermark, bool sync);
/* Appends the completion record with the run's counters and fsyncs.  0 or
 * -errno (logged). */
int rp_journal_finish(rp_journal *j, uint64_t records, const rp_stats *st);
void rp_journal_close(rp_journal *j);

#endif
