/*
 * replay.c - the replay engine: the order of a run and its guarantees.
 *
 *  1. The whole change log is validated before anything is changed: block
 *     and file checksums, record and path validity (fmt_creader_validate),
 *     then replay's own rules (rp_check_record): no path under a reserved
 *     temporary name, operation and type consistent.  A corrupt, truncated
 *     or hostile log is refused with nothing applied.
 *  2. The journal of this log is opened and locked; a journal of another,
 *     unfinished log is refused; a finished log is not applied again.
 *  3. Phase 1: every record not yet journaled goes through the scheduler
 *     (sched.c) to apply.c.  Finished records are journaled in batches.  A
 *     conflict (with --on-conflict stop), a full target or an I/O error
 *     stops admitting work; what is in flight finishes; the journal is
 *     flushed and synced; the run ends with the matching outcome.
 *  4. Phase 2: the owner, mode and times of every directory the log makes
 *     or changes, after everything inside is done.
 *  5. The target file system is synced (syncfs) before the journal's
 *     completion record is written and synced.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "format/path.h"
#include "base/limits.h"
#include "replay/internal.h"

/* Replay's own rules for a record the format layer already accepted.
 * NULL, or what is wrong. */
static const char *rp_check_record(const fmt_change *c)
{
	if (fmt_path_names_replay_temp(c->e.path, c->e.path_len) ||
	    (c->to && fmt_path_names_replay_temp(c->to, c->to_len)))
		return "names a path reserved for replay's temporary files (" FMT_RESERVED_REPLAY "*)";
	switch (c->op) {
	case FMT_OP_SPECIAL:
		if (c->e.type != FMT_T_FIFO && c->e.type != FMT_T_SOCK && c->e.type != FMT_T_CHR &&
		    c->e.type != FMT_T_BLK)
			return "special operation on something that is not a fifo, socket or device";
		break;
	case FMT_OP_DELETE:
		if (c->e.type == FMT_T_DIR)
			return "delete of a directory (directories are removed by rmdir)";
		break;
	case FMT_OP_RENAME:
	case FMT_OP_LINK:
		if (fmt_path_cmp(c->e.path, c->e.path_len, c->to, c->to_len) == 0)
			return "'to' is the path itself";
		if (fmt_path_is_under(c->to, c->to_len, c->e.path, c->e.path_len))
			return "'to' lies beneath the path it moves";
		break;
	default:
		break;
	}
	return NULL;
}

typedef struct rp_engine {
	const rp_opts *o;
	rp_stats *st;
	fmt_creader *r;
	rp_journal *j;
	rp_sched *s;
	rp_orphans *orphans;
	uint64_t next_idx;
} rp_engine;

static int pull_record(void *ctx, rp_op **out)
{
	rp_engine *E = ctx;
	fmt_change c;
	int r = fmt_creader_next(E->r, &c);
	if (r <= 0)
		return r;
	*out = rp_op_new(&c, E->next_idx++);
	return 1;
}

static bool skip_journaled(void *ctx, const rp_op *op)
{
	rp_engine *E = ctx;
	if (!rp_journal_done(E->j, op->idx))
		return false;
	/* A link to the file this create did not find is drift, not a
	 * conflict, in this run too (apply.c, rp_orphans). */
	if (op->op == FMT_OP_CREATE && rp_journal_vanished(E->j, op->idx))
		rp_orphans_vanished(E->orphans, op->e.path);
	E->st->journaled++;
	return true;
}

static int flush_journal(rp_engine *E, bool sync)
{
	int r = rp_journal_flush(E->j, rp_sched_watermark(E->s), sync);
	if (r == -ENOSPC || r == -EDQUOT)
		return CUT_NOSPACE;
	return r < 0 ? CUT_FAILED : 0;
}

static int done_record(void *ctx, rp_op *op)
{
	rp_engine *E = ctx;
	rp_stats *st = E->st;
	unsigned outcome = RP_J_APPLIED;
	st->retried_target += op->retried;
	switch (op->res) {
	case RP_R_DONE:
		switch (op->op) {
		case FMT_OP_MKDIR: st->mkdirs++; break;
		case FMT_OP_CREATE: st->created++; break;
		case FMT_OP_UPDATE: st->updated++; break;
		case FMT_OP_LINK: st->linked++; break;
		case FMT_OP_SYMLINK: st->symlinks++; break;
		case FMT_OP_RENAME: st->renamed++; break;
		case FMT_OP_META: st->metas++; break;
		case FMT_OP_DELETE: st->deleted++; break;
		case FMT_OP_RMDIR: st->rmdirs++; break;
		case FMT_OP_SPECIAL: st->specials++; break;
		}
		st->bytes_copied += op->copied;
		st->racy += op->racy;
		if (op->drifted) {
			st->drifted++;
			outcome = RP_J_DRIFTED;
			CUT_INFO("drifted: %s (the source changed since the scan; copied as it is now)",
				 op->e.path);
		}
		if (op->overwrote) {
			st->conflicts++;
			st->conflicts_overwritten++;
			CUT_WARN("conflict overwritten: %s", op->msg ? op->msg : op->e.path);
		}
		break;
	case RP_R_NOOP:
		st->noop++;
		st->racy += op->racy;
		break;
	case RP_R_VANISHED:
		st->vanished++;
		outcome = RP_J_VANISHED;
		/* Normal on a live store (Dovecot renamed or expunged it since
		 * the scan): counted in the summary, listed with -v, and the
		 * next pass reconciles it.  Not a warning: cron would mail it. */
		CUT_INFO("vanished: %s", op->msg ? op->msg : op->e.path);
		break;
	case RP_R_SKIPPED:
		st->skipped++;
		outcome = RP_J_SKIPPED;
		CUT_WARN("skipped: %s", op->msg ? op->msg : op->e.path);
		break;
	case RP_R_CONFLICT:
		st->conflicts++;
		if (E->o->on_conflict != RP_CONFLICT_SKIP) {
			/* stop, or overwrite that cannot (a directory in the way) */
			CUT_ERR("conflict: %s; stopping (see --on-conflict)", op->msg);
			return CUT_CONFLICT;
		}
		st->conflicts_skipped++;
		outcome = RP_J_CONFLICT_SKIPPED;
		CUT_WARN("conflict left as it is: %s", op->msg);
		break;
	case RP_R_NOSPACE:
		CUT_ERR("%s; free space on the target and run the same command again to resume",
			op->msg);
		return CUT_NOSPACE;
	default:
		CUT_ERR("%s", op->msg ? op->msg : "internal error");
		return CUT_FAILED;
	}
	st->done++;
	rp_sched_finished(E->s, op->idx);
	rp_journal_note(E->j, op->idx, outcome);
	return 0;
}

static int flush_batch(void *ctx) { return flush_journal(ctx, false); }

/* Phase 2: the directory records again, as attribute work. */
static int pull_dirattr(void *ctx, rp_op **out)
{
	rp_engine *E = ctx;
	fmt_change c;
	for (;;) {
		int r = fmt_creader_next(E->r, &c);
		if (r <= 0)
			return r;
		if (c.e.type != FMT_T_DIR || (c.op != FMT_OP_MKDIR && c.op != FMT_OP_META))
			continue;
		rp_op *op = rp_op_new(&c, E->next_idx++);
		op->kind = RP_K_DIRATTR;
		*out = op;
		return 1;
	}
}

static int done_dirattr(void *ctx, rp_op *op)
{
	rp_engine *E = ctx;
	E->st->retried_target += op->retried;
	if (op->res == RP_R_DONE || op->res == RP_R_NOOP) {
		/* Advances the watermark: past RP_SPAN directories, the
		 * scheduler would otherwise admit nothing more. */
		rp_sched_finished(E->s, op->idx);
		E->st->dirattrs += op->res == RP_R_DONE;
		return 0;
	}
	CUT_ERR("%s", op->msg ? op->msg : "internal error");
	return op->res == RP_R_NOSPACE ? CUT_NOSPACE : CUT_FAILED;
}

static void tick(void *ctx)
{
	rp_engine *E = ctx;
	if (E->o->progress)
		E->o->progress(E->o->progress_ctx, E->st);
}

/* Prints the plan of a --dry-run: every record the journal does not list. */
static int dry_run(rp_engine *E)
{
	FILE *f = E->o->dry_out ? E->o->dry_out : stdout;
	fmt_change c;
	int r;
	uint64_t idx = 0;
	while ((r = fmt_creader_next(E->r, &c)) > 0) {
		if (rp_journal_done(E->j, idx++)) {
			E->st->journaled++;
			continue;
		}
		fprintf(f, "%-7s %s", fmt_op_name(c.op), c.e.path_len ? c.e.path : ".");
		if (c.to)
			fprintf(f, " -> %s", c.to);
		if (c.op == FMT_OP_SYMLINK && c.e.target)
			fprintf(f, " (-> %s)", c.e.target);
		if (c.op == FMT_OP_CREATE || c.op == FMT_OP_UPDATE)
			fprintf(f, " (%llu bytes)", (unsigned long long)c.e.size);
		fputc('\n', f);
		E->st->done++;
	}
	return r < 0 ? CUT_FAILED : CUT_OK;
}

static int open_root(const char *path, const char *what, bool create)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT && create) {
		if (mkdir(path, 0700) < 0 && errno != EEXIST) {
			CUT_SYSERR("%s: cannot create the %s directory", path, what);
			return -1;
		}
		fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	}
	if (fd < 0)
		CUT_SYSERR("%s: cannot open the %s directory", path, what);
	return fd;
}

static int incomplete_code(const rp_stats *st)
{
	return st->drifted || st->vanished || st->skipped || st->conflicts_skipped || st->earlier
		       ? CUT_INCOMPLETE
		       : CUT_OK;
}

/* Opens the log into E->r and checks all of it, before anything is touched:
 * what fmt_creader_validate does (every block, record, path and the
 * whole-file id), with replay's own checks in the same pass; then sets the
 * totals of E->st.  Returns 0, or -1 (logged). */
static int log_check(rp_engine *E)
{
	const rp_opts *o = E->o;
	E->r = fmt_creader_open(o->log);
	if (!E->r)
		return -1;
	fmt_creader_rewind(E->r);
	fmt_change c;
	int r;
	uint64_t n = 0;
	while ((r = fmt_creader_next(E->r, &c)) > 0) {
		const char *bad = rp_check_record(&c);
		if (bad) {
			CUT_ERR("%s: record %llu (%s '%s'): %s; refusing the whole log, nothing was "
				"changed", o->log, (unsigned long long)n, fmt_op_name(c.op), c.e.path, bad);
			return -1;
		}
		n++;
	}
	if (r < 0) {
		CUT_ERR("%s: refusing to apply a damaged change log; nothing was changed", o->log);
		return -1;
	}
	fmt_creader_rewind(E->r);
	const fmt_cheader *h = fmt_creader_header(E->r);
	E->st->total = h->records;
	E->st->bytes_total = h->bytes[FMT_OP_CREATE] + h->bytes[FMT_OP_UPDATE];
	return 0;
}

/* Opens the roots into cx (but for a dry run), then chooses the journal's
 * path, *jpath (the caller's to free): beside the target's real path, so
 * that "DST/." or a relative DST never puts it inside the target.  Returns
 * 0, or -1 (logged). */
static int roots_open(const rp_opts *o, rp_ctx *cx, char **jpath)
{
	if (!o->dry_run) {
		cx->srcfd = open_root(o->source, "source", false);
		if (cx->srcfd < 0)
			return -1;
		cx->dstfd = open_root(o->target, "target", true);
		if (cx->dstfd < 0)
			return -1;
	}
	if (o->journal) {
		*jpath = cut_strndup(o->journal, strlen(o->journal));
		return 0;
	}
	char *real = realpath(o->target, NULL);
	if (real && strcmp(real, "/") == 0) {
		CUT_ERR("%s: the target is the root directory: give --journal FILE outside it",
			o->target);
		free(real);
		return -1;
	}
	*jpath = rp_journal_default_path(real ? real : o->target);
	free(real);
	return 0;
}

/* Opens the journal at jpath into E->j and says what an earlier run of the
 * log left.  Returns true to replay; false to stop with the outcome *rc (an
 * error, logged, or the log was applied before). */
static bool journal_start(rp_engine *E, const char *jpath, int *rc)
{
	const rp_opts *o = E->o;
	rp_stats *st = E->st;
	*rc = rp_journal_open(jpath, fmt_creader_id(E->r), o->dry_run, o->fsync, &E->j);
	if (*rc != 0)
		return false;
	st->earlier = rp_journal_earlier(E->j);
	rp_stats prev = {0};
	if (rp_journal_complete(E->j, &prev)) {
		/* The outcome of a finished log keeps saying what it left. */
		st->earlier += prev.drifted + prev.vanished + prev.skipped + prev.conflicts_skipped;
		st->finished_before = true;
		st->journaled = st->total;
		CUT_INFO("%s: already applied to %s (journal %s); nothing to do", o->log, o->target,
			 jpath);
		*rc = incomplete_code(st);
		return false;
	}
	if (rp_journal_resumed(E->j)) {
		uint64_t w, above, nrec = rp_journal_progress(E->j, &w, &above);
		CUT_INFO("%s: resuming: %llu records finished (%llu below the watermark, %llu above "
			 "it), from %llu journal records", jpath, (unsigned long long)(w + above),
			 (unsigned long long)w, (unsigned long long)above, (unsigned long long)nrec);
	}
	return true;
}

/* Gives cx what a replay needs besides the roots: the journal's resume
 * state, and the directory, orphan and source caches (cx owns them; E
 * borrows the orphans). */
static void ctx_start(rp_engine *E, rp_ctx *cx)
{
	cx->redo = rp_journal_resumed(E->j);
	cx->first_ns = rp_journal_started(E->j);
	cx->keep = rp_dirkeep_new();
	cx->orphans = E->orphans = rp_orphans_new();
	cx->srcdirs = rp_srcdirs_new(cx->srcfd);
}

/* Phase 1: creates the scheduler (E->s) and applies the records, the
 * journal flushed at the end whatever happened.  Returns CUT_OK, or
 * the outcome that stopped it (logged). */
static int phase_records(rp_engine *E, rp_ctx *cx)
{
	E->s = rp_sched_new(cx, E->o->jobs ? E->o->jobs : RP_JOBS_DEFAULT);
	if (!E->s)
		return CUT_FAILED;
	int sr = rp_sched_run(E->s, pull_record, skip_journaled, done_record, flush_batch, tick, E);
	int fr = flush_journal(E, true);
	return sr != CUT_OK ? sr : fr;
}

/* Phase 2: directory attributes, after their contents.  Returns
 * CUT_OK, or the outcome that stopped it (logged). */
static int phase_dirattrs(rp_engine *E)
{
	fmt_creader_rewind(E->r);
	E->next_idx = 0;
	return rp_sched_run(E->s, pull_dirattr, NULL, done_dirattr, NULL, tick, E);
}

/* Makes the target durable, then the journal complete (with --fsync too:
 * phase 2's attribute changes were not synced one by one); t2: when phase 2
 * ended.  Returns the replay's outcome (logged). */
static int target_finish(rp_engine *E, const rp_ctx *cx, int64_t t2)
{
#if defined(__linux__) && !defined(CUTOVER_PORTABLE)
	if (syncfs(cx->dstfd) < 0) {
		CUT_SYSERR("%s: cannot sync the target file system", E->o->target);
		return errno == ENOSPC || errno == EDQUOT ? CUT_NOSPACE : CUT_FAILED;
	}
#else
	(void)cx;
	sync();
#endif
	CUT_INFO("replay: target synced in %.2fs", cut_secs(cut_mono_ns() - t2));
	int r = rp_journal_finish(E->j, E->st->total, E->st);
	if (r < 0)
		return r == -ENOSPC || r == -EDQUOT ? CUT_NOSPACE : CUT_FAILED;
	return incomplete_code(E->st);
}

int rp_run(const rp_opts *o, rp_stats *st)
{
	memset(st, 0, sizeof *st);
	st->start_ns = cut_mono_ns();
	rp_engine E = {.o = o, .st = st};
	rp_ctx cx = {.srcfd = -1, .dstfd = -1, .fsync = o->fsync, .maildir = o->maildir,
		     .root = geteuid() == 0, .dry_run = o->dry_run, .on_conflict = o->on_conflict};
	char *jpath = NULL;
	int rc = CUT_FAILED;

	if (log_check(&E) < 0 || roots_open(o, &cx, &jpath) < 0)
		goto out;
	if (!journal_start(&E, jpath, &rc))
		goto out;
	if (o->dry_run) {
		rc = dry_run(&E);
		goto out;
	}
	ctx_start(&E, &cx);
	rc = phase_records(&E, &cx);
	if (rc != CUT_OK)
		goto out;
	int64_t t1 = cut_mono_ns();
	CUT_INFO("replay: phase 1 (records) done in %.2fs", cut_secs(t1 - st->start_ns));
	rc = phase_dirattrs(&E);
	if (rc != CUT_OK)
		goto out;
	int64_t t2 = cut_mono_ns();
	CUT_INFO("replay: phase 2 (directory attributes) done in %.2fs", cut_secs(t2 - t1));
	rc = target_finish(&E, &cx, t2);
out:
	rp_sched_free(E.s);
	rp_dirkeep_free(cx.keep);
	rp_orphans_free(cx.orphans);
	if (cx.srcdirs)
		st->retried = rp_srcdirs_retries(cx.srcdirs);
	rp_srcdirs_free(cx.srcdirs);
	rp_journal_close(E.j);
	fmt_creader_close(E.r);
	if (cx.srcfd >= 0)
		close(cx.srcfd);
	if (cx.dstfd >= 0)
		close(cx.dstfd);
	free(jpath);
	return rc;
}
