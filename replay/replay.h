/*
 * replay.h - `cutover replay`: applies a change log (format/changes.h) to a
 * target tree, built like a database's recovery path rather than a copy loop.
 *
 * The files of this module, one role each:
 *   replay.c   the engine: validates the log, opens source, target and
 *              journal, runs the two phases, decides the outcome
 *   sched.c    the parallel scheduler: a worker pool and a dispatcher that
 *              runs independent operations at once and orders dependent ones
 *   apply.c    one function per operation: target preconditions, atomic
 *              writes through temporaries, attributes, idempotent redo
 *   journal.c  the append-only, checksummed record of finished operations
 *   srcdir.c   source directories looked up once and shared by the workers
 *
 * docs/REPLAY.md states the guarantees, the journal format, the
 * temporary-name pattern and the exit codes.
 */
#ifndef CUTOVER_REPLAY_H
#define CUTOVER_REPLAY_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

/* Replay's temporaries are named FMT_RESERVED_REPLAY (format/path.h)
 * followed by 16 lower-case hex digits (the index of the log record that
 * made it) in the directory of the record's destination.  The name is
 * reserved: a log naming such a path is refused, and the scanner skips it. */

/* The workers' default and cap (RP_JOBS_DEFAULT, RP_JOBS_MAX): base/limits.h. */

/* A file whose mtime is less than this before the moment it is put in place
 * on the target is racy (rp_stats.racy): a later change of the source in the
 * same timestamp tick (up to a second on some file systems and NFS servers,
 * the scanner's racy guard allows 2 s) keeps its size and mtime.  Generous,
 * to cover the copy's own duration. */
#define RP_RACY_NS (5 * CUT_NS_PER_S)

/* Whether a file whose mtime is mtime_ns, put in place at put_ns (the
 * moment of the copy, or the target file's ctime), is racy. */
static inline bool rp_racy(int64_t mtime_ns, int64_t put_ns)
{
	return mtime_ns >= put_ns - RP_RACY_NS;
}

enum rp_conflict { RP_CONFLICT_STOP = 0, RP_CONFLICT_OVERWRITE = 1, RP_CONFLICT_SKIP = 2 };

/* Counters of a run; every field is a count of log records unless named
 * bytes.  Filled by rp_run, also passed to the progress callback. */
typedef struct rp_stats {
	uint64_t total;        /* records in the log */
	uint64_t bytes_total;  /* bytes of files the log creates or updates */
	uint64_t done;         /* records finished in this run (any outcome) */
	uint64_t journaled;    /* records found finished in the journal: not redone */
	uint64_t created, updated, renamed, linked, deleted;
	uint64_t mkdirs, rmdirs, symlinks, specials, metas;
	uint64_t noop;         /* already as the log wants on the target (redo) */
	uint64_t bytes_copied;
	uint64_t drifted;      /* source differed from the log: copied as it is now */
	uint64_t racy;         /* files put in place (or found in place) less than
				  RP_RACY_NS after their last change: the source
				  may change again within the same timestamp tick,
				  unseen by size and mtime; sync copies them again
				  next pass (sync/base.c).  Not drift: no exit 3 */
	uint64_t vanished;     /* source gone: skipped */
	uint64_t skipped;      /* not applied for another reason (device nodes when
				  not root, source unreadable), listed on stderr */
	uint64_t conflicts;            /* target not as the log expects */
	uint64_t conflicts_skipped;    /* ... of which left as they were (skip) */
	uint64_t conflicts_overwritten;/* ... of which overwritten (overwrite) */
	uint64_t earlier;      /* drifted, vanished or skipped in earlier, interrupted
				  runs of this log (from the journal) */
	uint64_t dirattrs;     /* directory attributes set in the final phase */
	uint64_t retried;      /* source lookups that answered ESTALE, made again */
	uint64_t retried_target; /* operations the target answered ESTALE, made again */
	int64_t start_ns;      /* cut_mono_ns() at the start */
	bool finished_before;  /* the journal said the log was already applied */
} rp_stats;

typedef struct rp_opts {
	const char *log;      /* the change log */
	const char *source;   /* SRC root */
	const char *target;   /* DST root */
	const char *journal;  /* NULL: rp_journal_default_path(target) */
	unsigned jobs;        /* 0: RP_JOBS_DEFAULT */
	bool dry_run;         /* validate and print the plan to dry_out; change nothing */
	bool fsync;           /* each file and directory durable before it counts */
	bool maildir;         /* the log is of maildir-policy scans: a directory it
				 removes goes with the transients the policy leaves
				 out (tmp/ contents, *.lock; format/path.h) */
	int on_conflict;      /* enum rp_conflict */
	FILE *dry_out;        /* NULL: stdout */
	/* Called by the dispatcher thread about ten times a second. */
	void (*progress)(void *ctx, const rp_stats *st);
	void *progress_ctx;
} rp_opts;

/* Runs a replay.  Returns a cut_outcome (util.h): CUT_OK, CUT_FAILED (bad
 * log, journal of another unfinished log, I/O error), CUT_INCOMPLETE
 * (finished but something was drifted, vanished or skipped), CUT_CONFLICT
 * (stopped), CUT_NOSPACE, CUT_LOCKED.  Every failure is logged once before it returns. */
int rp_run(const rp_opts *o, rp_stats *st);

/* The journal path used when opts.journal is NULL: "<target>.cutover-journal"
 * beside the target (trailing slashes removed).  Caller frees. */
char *rp_journal_default_path(const char *target);


#endif
