/*
 * switch.c - `cutover switch`: moves subtrees (users) to the new side a few
 * at a time, and keeps every later pass off them.
 *
 * A switch of subtree X is a final pass of X alone: X is scanned in full on
 * both sides, the target's scan is re-based on the source's (sync_base_rebase:
 * what already matches is kept), the difference is replayed into DST/X and
 * both sides of X are verified.  Only the operator's hooks around it (hold
 * X's mail, kick its sessions; then route X to the new backend) make it a
 * switch, and mail stops for X's users alone.
 *
 * From then on X on the target is the new side's live data.  The chain keeps
 * two promises about it (docs/SYNC.md, "Switched subtrees"):
 *   - the base manifest holds, for X, the source as it was at the switch
 *     (DIR/switch/N.cmf spliced in, sync_switched_splice), so a later diff's
 *     operations inside X are exactly the source's changes since: late
 *     writes, mail that reached the old store after its users moved;
 *   - a later pass's log loses every operation inside X before replay
 *     (sync_switched_filter), and each one is recorded in DIR/late-writes
 *     and makes the pass end with CUT_LATE until the operator acknowledges
 *     them (`switch --ack-late-writes`).  Nothing is ever replayed over X.
 *
 * DIR/switched, one line per subtree: "switching|switched RECORD SUBTREE",
 * RECORD the manifest relative to DIR.  "switching" says the base has not
 * been spliced yet (the run was killed after --after); any later run of
 * sync or switch splices it first.
 */
#include <dirent.h>
#include <pthread.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base/budget.h"
#include "format/changes.h"
#include "format/manifest.h"
#include "format/path.h"
#include "replay/replay.h"
#include "scanner/scan.h"
#include "sync/sync.h"

#define LATE_SHOWN 20 /* late writes named on stderr per pass; all go to the file */
#define SWITCH_PARALLEL 8 /* subtrees switched at once */

/* ---- DIR/switched ------------------------------------------------------- */

void sync_switched_free(sync_switched *s)
{
	for (size_t i = 0; i < s->n; i++) {
		free(s->path[i]);
		free(s->record[i]);
	}
	free(s->path);
	free(s->record);
	free(s->done);
	memset(s, 0, sizeof *s);
}

static void sw_add(sync_switched *s, const char *path, size_t pl, const char *rec, bool done)
{
	s->path = cut_realloc(s->path, cut_size_mul(s->n + 1, sizeof *s->path));
	s->record = cut_realloc(s->record, cut_size_mul(s->n + 1, sizeof *s->record));
	s->done = cut_realloc(s->done, cut_size_mul(s->n + 1, sizeof *s->done));
	s->path[s->n] = cut_strndup(path, pl);
	s->record[s->n] = cut_strndup(rec, strlen(rec));
	s->done[s->n] = done;
	s->n++;
}

static int sw_cmp_idx(const sync_switched *s, size_t a, size_t b)
{
	return fmt_path_cmp(s->path[a], strlen(s->path[a]), s->path[b], strlen(s->path[b]));
}

/* Canonical order (insertion sort: a handful of calls add a few each). */
static void sw_sort(sync_switched *s)
{
	for (size_t i = 1; i < s->n; i++)
		for (size_t j = i; j > 0 && sw_cmp_idx(s, j - 1, j) > 0; j--) {
			char *p = s->path[j], *r = s->record[j];
			bool d = s->done[j];
			s->path[j] = s->path[j - 1], s->record[j] = s->record[j - 1], s->done[j] = s->done[j - 1];
			s->path[j - 1] = p, s->record[j - 1] = r, s->done[j - 1] = d;
		}
}

int sync_switched_read(const char *dir, sync_switched *s)
{
	memset(s, 0, sizeof *s);
	char *p = sync_path(dir, "switched");
	cut_buf b = {0};
	int r = sync_read_file(p, &b);
	int rc = r < 0 ? -1 : 0;
	int line = 0;
	char *save = NULL;
	for (char *l = r > 0 ? strtok_r((char *)b.p, "\n", &save) : NULL; l && rc == 0;
	     l = strtok_r(NULL, "\n", &save)) {
		line++;
		char *rec = strchr(l, ' '), *sub = rec ? strchr(rec + 1, ' ') : NULL;
		if (!sub) {
			CUT_ERR("%s:%d: not \"switched|switching RECORD SUBTREE\"", p, line);
			rc = -1;
			break;
		}
		*rec++ = 0;
		*sub++ = 0;
		bool done = strcmp(l, "switched") == 0;
		if ((!done && strcmp(l, "switching") != 0) || !fmt_path_valid(sub, strlen(sub)) || !*sub) {
			CUT_ERR("%s:%d: bad state or subtree", p, line);
			rc = -1;
			break;
		}
		sw_add(s, sub, strlen(sub), rec, done);
	}
	if (rc == 0)
		sw_sort(s);
	else
		sync_switched_free(s);
	free(p);
	cut_buf_free(&b);
	return rc;
}

static int sw_write(const char *dir, const sync_switched *s)
{
	cut_buf b = {0};
	for (size_t i = 0; i < s->n; i++)
		cut_buf_printf(&b, "%s %s %s\n", s->done[i] ? "switched" : "switching", s->record[i],
			       s->path[i]);
	char *p = sync_path(dir, "switched");
	int r = sync_write_atomic(p, b.p ? (const char *)b.p : "", b.len);
	free(p);
	cut_buf_free(&b);
	return r;
}

const char *sync_switched_find(const sync_switched *s, const char *path, size_t len)
{
	/* The subtrees are sorted and none holds another, so the only one that
	 * can hold path is the greatest that sorts at or before it: a log of a
	 * million operations against ten thousand switched users stays cheap. */
	size_t lo = 0, hi = s->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (fmt_path_cmp(s->path[mid], strlen(s->path[mid]), path, len) <= 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (!lo)
		return NULL;
	const char *x = s->path[lo - 1];
	size_t l = strlen(x);
	return (len == l && memcmp(path, x, l) == 0) || fmt_path_is_under(path, len, x, l) ? x : NULL;
}

/* ---- the base: records spliced in --------------------------------------- */

/* Writes one record's entries under its subtree's path. */
static int splice_record(fmt_mwriter *w, const char *dir, const char *sub, const char *rec)
{
	char *rp = sync_path(dir, rec);
	fmt_mreader *r = fmt_mreader_open(rp);
	free(rp);
	if (!r)
		return -1;
	size_t sl = strlen(sub);
	cut_buf path = {0};
	fmt_entry e;
	int n;
	while ((n = fmt_mreader_next(r, &e)) > 0) {
		path.len = 0;
		cut_buf_put(&path, sub, sl);
		if (e.path_len) {
			cut_buf_putc(&path, '/');
			cut_buf_put(&path, e.path, e.path_len);
		}
		cut_buf_putc(&path, 0);
		e.path = (const char *)path.p;
		e.path_len = (uint32_t)(path.len - 1);
		if (fmt_mwriter_add(w, &e) < 0) {
			n = -1;
			break;
		}
	}
	fmt_mreader_close(r);
	cut_buf_free(&path);
	return n < 0 ? -1 : 0;
}

/* Copies the entries of manifest `from` inside subtree sub (sub itself
 * included): a range, since a subtree is contiguous in canonical order. */
static int graft_range(fmt_mwriter *w, fmt_mcursor *c, const char *sub)
{
	size_t sl = strlen(sub);
	if (fmt_mcursor_seek(c, sub, sl) < 0)
		return -1;
	fmt_entry e;
	int n;
	while ((n = fmt_mcursor_next(c, &e)) > 0) {
		if (!(e.path_len == sl && memcmp(e.path, sub, sl) == 0) && !fmt_path_is_under(e.path, e.path_len, sub, sl))
			break;
		if (fmt_mwriter_add(w, &e) < 0)
			return -1;
	}
	return n < 0 ? -1 : 0;
}

/* Where a switched subtree's entries come from when a base is rewritten:
 * its record (dir set), another manifest (from set), or nowhere. */
typedef struct graft {
	const char *dir;
	fmt_mcursor *from;
} graft;

static int graft_one(fmt_mwriter *w, const graft *g, const sync_switched *s, size_t i)
{
	if (g->dir)
		return splice_record(w, g->dir, s->path[i], s->record[i]);
	return g->from ? graft_range(w, g->from, s->path[i]) : 0;
}

/* Writes out: base with each switched subtree's entries replaced as g says.
 * The base's own entries are added with their place in it, so that a block
 * no subtree falls in is copied as stored, neither encoded nor compressed
 * (fmt_mwriter_add_from): a commit at 100 M entries then costs the reading
 * of the base, not its writing. */
static int splice_base(const graft *g, const sync_switched *s, const char *base, const char *out)
{
	fmt_mreader *r = fmt_mreader_open(base);
	if (!r)
		return -1;
	fmt_mwriter *w = fmt_mwriter_create(out);
	int n = w ? 1 : -1;
	if (w)
		fmt_mwriter_set_prev(w, r);
	uint32_t pb, pi;
	size_t next = 0; /* the next subtree whose entries are due */
	fmt_entry e;
	while (n > 0 && (n = fmt_mreader_next(r, &e)) > 0) {
		/* A subtree's entries go where its range ends: before the first
		 * entry that sorts after the subtree and is not inside it. */
		while (n > 0 && next < s->n &&
		       fmt_path_cmp(s->path[next], strlen(s->path[next]), e.path, e.path_len) < 0 &&
		       !fmt_path_is_under(e.path, e.path_len, s->path[next], strlen(s->path[next])))
			n = graft_one(w, g, s, next++) < 0 ? -1 : 1;
		if (n > 0 && !sync_switched_find(s, e.path, e.path_len)) {
			fmt_mreader_pos(r, &pb, &pi);
			if (fmt_mwriter_add_from(w, &e, pb, pi) < 0)
				n = -1;
		}
	}
	for (; n == 0 && next < s->n; next++)
		n = graft_one(w, g, s, next) < 0 ? -1 : 0;
	fmt_mheader h = {0};
	if (n == 0 && w) {
		const fmt_mheader *bh = fmt_mreader_header(r);
		h.root = bh->root, h.host = bh->host, h.options = bh->options, h.policy = bh->policy;
		h.start_ns = bh->start_ns, h.end_ns = bh->end_ns;
		uint8_t id[FMT_ID_LEN];
		n = fmt_mwriter_finish(w, &h, id);
		w = NULL;
	}
	if (w)
		fmt_mwriter_abort(w);
	fmt_mreader_close(r);
	return n < 0 ? -1 : 0;
}

int sync_switched_splice(const char *dir, const sync_switched *s, const char *base, const char *out)
{
	graft g = {.dir = dir};
	return splice_base(&g, s, base, out);
}

int sync_switched_drop(const sync_switched *s, const char *base, const char *out)
{
	graft g = {0};
	return splice_base(&g, s, base, out);
}

int sync_switched_graft(const sync_switched *s, const char *base, const char *from, const char *out)
{
	fmt_mreader *r = fmt_mreader_open(from);
	graft g = {.from = r ? fmt_mcursor_new(r) : NULL};
	int rc = g.from ? splice_base(&g, s, base, out) : -1;
	if (g.from)
		fmt_mcursor_free(g.from);
	if (r)
		fmt_mreader_close(r);
	return rc;
}

/* ---- a later pass's log: nothing replayed inside a switched subtree ---- */

typedef struct late {
	const char *dir;
	unsigned seq;
	uint64_t n;
	cut_buf lines;
} late;

static void late_note(late *l, unsigned op, const char *path, size_t len)
{
	if (l->n < LATE_SHOWN)
		CUT_WARN("late write in a switched subtree: %s %.*s", fmt_op_name(op), (int)len, path);
	cut_buf_printf(&l->lines, "%u %s %.*s\n", l->seq, fmt_op_name(op), (int)len, path);
	l->n++;
}

/* Rewrites one record that crosses a switched subtree's edge as what must
 * still happen outside it.  1 written, 0 nothing to write, -1 error. */
static int cross(fmt_cwriter *w, const fmt_change *c, bool from_in, cut_buf *to)
{
	fmt_change n = *c;
	if (c->e.type == FMT_T_DIR) {
		CUT_ERR("%.*s -> %.*s: a directory moved across the edge of a switched subtree; cutover "
			"cannot move it on the target without touching the new side's data: run `cutover "
			"sync --rebase`, which copies what the unswitched side lacks",
			(int)c->e.path_len, c->e.path, (int)c->to_len, c->to);
		return -1;
	}
	n.to = NULL;
	n.to_len = 0;
	if (from_in) {
		/* A name leaving the subtree (or a link to a file inside it): the
		 * name outside is copied from the source. */
		to->len = 0;
		cut_buf_put(to, c->to, c->to_len);
		cut_buf_putc(to, 0);
		n.e.path = (const char *)to->p;
		n.e.path_len = c->to_len;
		n.op = c->e.type == FMT_T_SYMLINK ? FMT_OP_SYMLINK : c->e.type == FMT_T_FILE ? FMT_OP_CREATE : FMT_OP_SPECIAL;
		n.flags = 0;
	} else {
		if (c->op == FMT_OP_LINK)
			return 0; /* the new name is inside: nothing outside changes */
		n.op = FMT_OP_DELETE; /* a name moving in: it leaves the outside */
	}
	return fmt_cwriter_add(w, &n) < 0 ? -1 : 1;
}

static int filter_records(fmt_creader *cr, fmt_cwriter *w, const sync_switched *s, late *l)
{
	fmt_change c;
	cut_buf to = {0};
	int r;
	while ((r = fmt_creader_next(cr, &c)) > 0) {
		bool a = sync_switched_find(s, c.e.path, c.e.path_len) != NULL;
		bool b = c.to && sync_switched_find(s, c.to, c.to_len) != NULL;
		if (!a && !b) {
			if (fmt_cwriter_add(w, &c) < 0)
				r = -1;
		} else if (a && (!c.to || b)) {
			late_note(l, c.op, c.to && c.op != FMT_OP_LINK ? c.to : c.e.path,
				  c.to && c.op != FMT_OP_LINK ? c.to_len : c.e.path_len);
		} else {
			/* Across the edge.  A link from a name inside to a new name
			 * outside changes nothing inside (the name inside was there
			 * at the switch); a rename out of it, or any new name in it,
			 * does. */
			if (c.op != FMT_OP_LINK || b)
				late_note(l, c.op, a ? c.e.path : c.to, a ? c.e.path_len : c.to_len);
			if (cross(w, &c, a, &to) < 0)
				r = -1;
		}
		if (r < 0)
			break;
	}
	cut_buf_free(&to);
	return r;
}

static int late_append(const char *dir, const cut_buf *lines)
{
	char *p = sync_path(dir, "late-writes");
	int rc = sync_append_durable(p, lines->p, lines->len);
	free(p);
	return rc;
}

int sync_switched_filter(const char *dir, const sync_switched *s, const char *log, unsigned seq,
			 uint64_t *nlate)
{
	*nlate = 0;
	fmt_creader *cr = fmt_creader_open(log);
	if (!cr)
		return -1;
	cut_buf tmp = {0};
	cut_buf_printf(&tmp, "%s.filtered", log);
	cut_buf_putc(&tmp, 0);
	const char *tp = (const char *)tmp.p;
	fmt_cwriter *w = fmt_cwriter_create(tp);
	late l = {.dir = dir, .seq = seq};
	int r = w ? filter_records(cr, w, s, &l) : -1;
	if (r == 0) {
		const fmt_cheader *ih = fmt_creader_header(cr);
		fmt_cheader h = {.source = ih->source, .has_old = ih->has_old, .created_ns = ih->created_ns};
		memcpy(h.old_id, ih->old_id, FMT_ID_LEN);
		memcpy(h.new_id, ih->new_id, FMT_ID_LEN);
		uint8_t id[FMT_ID_LEN];
		r = fmt_cwriter_finish(w, &h, id);
		w = NULL;
		if (r == 0 && rename(tp, log) < 0) {
			CUT_SYSERR("%s: cannot replace the log with its filtered copy", log);
			r = -1;
		}
	}
	if (w)
		fmt_cwriter_abort(w);
	fmt_creader_close(cr);
	if (r == 0 && l.n)
		r = late_append(dir, &l.lines);
	*nlate = l.n;
	cut_buf_free(&l.lines);
	cut_buf_free(&tmp);
	return r < 0 ? -1 : 0;
}

uint64_t sync_late_count(const char *dir)
{
	char *p = sync_path(dir, "late-writes");
	FILE *f = fopen(p, "r");
	free(p);
	uint64_t n = 0;
	int ch;
	while (f && (ch = getc(f)) != EOF)
		n += ch == '\n';
	if (f)
		fclose(f);
	return n;
}

int sync_late_ack(const char *dir)
{
	char *p = sync_path(dir, "late-writes");
	char rel[64];
	snprintf(rel, sizeof rel, "late-writes.acked.%lld", (long long)time(NULL));
	char *q = sync_path(dir, rel);
	int rc = 0;
	if (rename(p, q) < 0 && errno != ENOENT) {
		CUT_SYSERR("%s: cannot acknowledge the late writes", p);
		rc = -1;
	}
	free(p);
	free(q);
	return rc;
}

/* ---- `cutover switch` ----------------------------------------------------- */

typedef struct swrun {
	const sync_switch_opts *o;
	sync_config cfg;
	sync_tstate ts;
	sync_switched sw;
	unsigned seq;
	sync_hist *h;
	sync_progress_w prog;   /* DIR/progress: subtrees finished, of all */
	pthread_mutex_t prog_mu; /* the pool's threads count into prog */
	uint64_t finished, bytes;
} swrun;

/* Runs a hook with the subtrees in the environment.  Its exit status, or -1. */
static int run_hook(const swrun *x, const char *what, const char *cmd, const char *const *subs, size_t n)
{
	cut_buf list = {0};
	for (size_t i = 0; i < n; i++)
		cut_buf_printf(&list, "%s%s", i ? "\n" : "", subs[i]);
	cut_buf_putc(&list, 0);
	pid_t pid = fork();
	if (pid < 0) {
		CUT_SYSERR("%s: cannot fork", what);
		cut_buf_free(&list);
		return -1;
	}
	if (pid == 0) {
		setenv("CUTOVER_SUBTREES", (const char *)list.p, 1);
		setenv("CUTOVER_STATE", x->o->dir, 1);
		setenv("CUTOVER_SOURCE", x->cfg.source, 1);
		setenv("CUTOVER_TARGET", x->cfg.target, 1);
		execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
		_exit(127);
	}
	cut_buf_free(&list);
	int st;
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR) {
			CUT_SYSERR("%s: cannot wait for the command", what);
			return -1;
		}
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static char *join2(const char *a, const char *b)
{
	cut_buf p = {0};
	cut_buf_printf(&p, "%s/%s", a, b);
	cut_buf_putc(&p, 0);
	return (char *)p.p;
}

/* Creates a subtree the target lacks, its parent's times kept: the parent
 * is outside the switch, and the chain's record of it must stay true. */
static int make_subtree(const char *dst)
{
	size_t pl = strlen(dst);
	while (pl > 1 && dst[pl - 1] != '/')
		pl--;
	char *parent = cut_strndup(dst, pl > 1 ? pl - 1 : 1);
	struct stat st;
	int rc = -1;
	if (stat(parent, &st) < 0)
		CUT_SYSERR("%s: cannot stat the subtree's parent on the target", parent);
	else if (mkdir(dst, 0700) < 0)
		CUT_SYSERR("%s: cannot create the subtree on the target", dst);
	else if (utimensat(AT_FDCWD, parent, (struct timespec[2]){st.st_atim, st.st_mtim}, AT_SYMLINK_NOFOLLOW) < 0)
		CUT_SYSERR("%s: cannot restore the parent's times", parent);
	else
		rc = 0;
	free(parent);
	return rc;
}

/* One subtree's pass and verification, run by a pool thread.  Its files are
 * DIR/switch/<i>.*, its times and counts its own until the pool is done. */
typedef struct swjob {
	swrun *x;
	const char *sub;
	size_t i;
	char rec[64];
	int rc;                 /* a cut_outcome; CUT_DIFFER: still differs after its pass */
	double secs;            /* its pass and verification */
	bool settled;           /* DIFFER with a source that held still */
	uint64_t entries, ops, bytes;
	char *report;           /* the differences, printed once all are done */
	size_t report_len;
} swjob;

static char *job_path(const swjob *j, const char *what)
{
	char rel[64];
	sync_rel_switch_scratch(rel, j->i, what);
	return sync_path(j->x->o->dir, rel);
}

static double since(int64_t t0) { return cut_secs(cut_mono_ns() - t0); }

/* The pass of one subtree is the final pass's repair (heal.c) of that
 * subtree: both sides scanned in full, the target's scan re-based on the
 * source's, the difference replayed into DST/sub, both sides scanned again:
 * the target in full, the source incrementally on its first scan, seconds
 * old (its directories and control files stat'ed, its changed directories
 * listed: what a held user's source can have changed by under the policy),
 * which halves what the pass asks of the NAS.  The source's scan of that
 * verification is kept as the record.  An exit
 * code: OK, DIFFER (its source changed during the pass, or the target still
 * differs), or what stopped it. */
static int switch_one(swjob *j)
{
	swrun *x = j->x;
	char *work = job_path(j, "work"), *lp = job_path(j, "log.ccl");
	char *rp = sync_path(x->o->dir, j->rec);
	int rc = CUT_FAILED;
	FILE *mem = NULL;
	if (mkdir(work, 0700) < 0 && errno != EEXIST)
		CUT_SYSERR("%s: cannot create", work);
	else if (!(mem = open_memstream(&j->report, &j->report_len)))
		CUT_SYSERR("%s: cannot buffer a report", work);
	if (mem) {
		sync_heal_opts ho = {.source = x->cfg.source, .target = x->cfg.target, .workdir = work,
				     .jobs = x->o->jobs, .fsync = x->o->fsync, .out = mem, .keep_source = rp,
				     .recheck_since = true};
		sync_policy_of(&x->cfg, &ho.pol, x->o->scan_threads);
		sync_heal_result r;
		int64_t t0 = cut_mono_ns();
		rc = sync_heal(&ho, j->sub, NULL, NULL, lp, &r);
		j->secs = since(t0);
		j->entries = r.entries, j->ops = r.st.total, j->bytes = r.st.bytes_copied;
		if (rc == CUT_OK && r.outcome != SYNC_HEALED)
			rc = CUT_DIFFER;
		j->settled = r.outcome == SYNC_HEAL_STILL_DIFFERS;
		fclose(mem);
	}
	unlink(lp);
	rmdir(work);
	free(work), free(lp), free(rp);
	return rc;
}

/* One more subtree through its pass, into DIR/progress. */
static void job_counted(const swjob *j)
{
	swrun *x = j->x;
	pthread_mutex_lock(&x->prog_mu);
	x->finished++;
	x->bytes += j->bytes;
	sync_progress_count(&x->prog, x->finished, 0, x->bytes, 0);
	pthread_mutex_unlock(&x->prog_mu);
}

typedef struct swpool {
	swjob *jobs;
	size_t n, next;
	pthread_mutex_t mu;
} swpool;

static void *pool_thread(void *arg)
{
	swpool *p = arg;
	for (;;) {
		pthread_mutex_lock(&p->mu);
		size_t i = p->next < p->n ? p->next++ : p->n;
		pthread_mutex_unlock(&p->mu);
		if (i == p->n)
			return NULL;
		swjob *j = &p->jobs[i];
		j->rc = switch_one(j);
		job_counted(j);
	}
}

/* Runs the jobs, SWITCH_PARALLEL at a time: behind NAS latency a subtree's
 * pass waits on round trips, not on the cores.  The calling thread works too. */
static void pool_run(swjob *jobs, size_t n)
{
	swpool p = {.jobs = jobs, .n = n};
	pthread_mutex_init(&p.mu, NULL);
	pthread_t t[SWITCH_PARALLEL - 1];
	size_t nt = 0;
	while (nt + 1 < SWITCH_PARALLEL && nt + 1 < n && pthread_create(&t[nt], NULL, pool_thread, &p) == 0)
		nt++;
	pool_thread(&p);
	for (size_t k = 0; k < nt; k++)
		pthread_join(t[k], NULL);
	pthread_mutex_destroy(&p.mu);
	/* A subtree whose files are hard-linked to names outside it (a message
	 * delivered to several users) can seem to differ while another job
	 * replays those names: its verification saw a link count in motion.
	 * Such a subtree gets its pass again, alone. */
	for (size_t i = 0; i < n; i++)
		if (jobs[i].rc == CUT_DIFFER && jobs[i].settled) {
			free(jobs[i].report);
			jobs[i].report = NULL, jobs[i].report_len = 0;
			jobs[i].rc = switch_one(&jobs[i]);
		}
}

/* Sums the jobs into the switch's history line and prints what differs.
 * The worst outcome. */
static int pool_result(swrun *x, swjob *jobs, size_t n)
{
	int rc = CUT_OK;
	size_t ndiffer = 0;
	for (size_t i = 0; i < n; i++) {
		swjob *j = &jobs[i];
		x->h->replay_s += j->secs, x->h->entries += j->entries, x->h->ops += j->ops;
		x->h->bytes += j->bytes;
		if (j->report_len)
			fprintf(stderr, "subtree %s:\n%s", j->sub, j->report);
		if (j->rc == CUT_DIFFER)
			ndiffer++;
		else if (j->rc != CUT_OK)
			CUT_ERR("switch: the pass of %s stopped (exit %d); nothing was switched and "
				"--after was not run; fix the error above and run the same switch again",
				j->sub, sync_exit_of(x->o->exit_code, j->rc));
		if (j->rc != CUT_OK && (rc == CUT_OK || rc == CUT_DIFFER))
			rc = j->rc;
	}
	if (ndiffer)
		CUT_ERR("switch: %zu of %zu subtrees still differ from the source after their pass "
			"(listed above): their source is still being written (is their mail held, their "
			"sessions kicked?); none was switched, --after was not run; stop what writes "
			"them and run the same switch again", ndiffer, n);
	return rc;
}

/* The subtrees of s not spliced into the base yet, borrowing s's strings. */
static sync_switched fresh_of(const sync_switched *s)
{
	sync_switched f = {.path = cut_calloc(s->n + 1, sizeof *f.path),
			   .record = cut_calloc(s->n + 1, sizeof *f.record)};
	for (size_t i = 0; i < s->n; i++)
		if (!s->done[i]) {
			f.path[f.n] = s->path[i];
			f.record[f.n++] = s->record[i];
		}
	return f;
}

/* Writes the base that target-state names again with the fresh subtrees'
 * records in it, and records it.  0 or -1. */
static int splice_into_base(swrun *x, const sync_switched *fresh)
{
	const char *dir = x->o->dir;
	sync_tstate t = x->ts;
	sync_rel_manifest(t.base, x->seq, ".base");
	char *bp = sync_path(dir, x->ts.base), *np = sync_path(dir, t.base);
	int rc = sync_switched_splice(dir, fresh, bp, np);
	fmt_mreader *r = rc == 0 ? fmt_mreader_open(np) : NULL;
	if (r) {
		memcpy(t.base_id, fmt_mreader_id(r), FMT_ID_LEN);
		fmt_mreader_close(r);
		t.seq = x->seq;
		t.time = (int64_t)time(NULL);
		snprintf(t.kind, sizeof t.kind, "switch");
		rc = sync_tstate_write(dir, &t);
		if (rc == 0)
			x->ts = t;
	}
	free(bp);
	free(np);
	return r ? rc : -1;
}

/* The commit: the new subtrees' records spliced into the base (the others
 * are there already, as the last pass saw them), then marked switched; a
 * record is not needed once it is in the base.  0 or -1. */
static int switch_commit(swrun *x)
{
	sync_switched fresh = fresh_of(&x->sw);
	int rc = splice_into_base(x, &fresh);
	if (rc == 0) {
		for (size_t i = 0; i < x->sw.n; i++)
			x->sw.done[i] = true;
		rc = sw_write(x->o->dir, &x->sw);
	}
	for (size_t i = 0; rc == 0 && i < fresh.n; i++) {
		char *p = sync_path(x->o->dir, fresh.record[i]);
		unlink(p);
		free(p);
	}
	free(fresh.path);
	free(fresh.record);
	return rc;
}

unsigned sync_next_seq(const char *dir, const sync_tstate *t)
{
	char prev[64];
	unsigned seq = sync_last_manifest(dir, prev);
	return (t && t->seq > seq ? t->seq : seq) + 1;
}

/* A switch killed after --after left subtrees "switching": splice them now. */
int sync_switched_settle(const char *dir, const sync_config *cfg, sync_tstate *t)
{
	sync_switch_opts o = {.dir = dir};
	sync_hist h = {0};
	swrun x = {.o = &o, .cfg = *cfg, .ts = *t, .h = &h};
	if (sync_switched_read(dir, &x.sw) < 0)
		return -1;
	bool pending = false;
	for (size_t i = 0; i < x.sw.n; i++)
		pending |= !x.sw.done[i];
	int rc = 0;
	if (pending) {
		CUT_INFO("switch: finishing the record of subtrees switched by an interrupted run");
		x.seq = sync_next_seq(dir, t);
		rc = switch_commit(&x);
		*t = x.ts;
	}
	sync_switched_free(&x.sw);
	return rc;
}

static bool subtree_ok(const swrun *x, const char *sub, fmt_mcursor *cur)
{
	size_t l = strlen(sub);
	if (!l || !fmt_path_valid(sub, l) || strchr(sub, '\n')) {
		CUT_ERR("%s: not a subtree of the source (a relative path such as example.org/alice)", sub);
		return false;
	}
	for (size_t i = 0; i < x->sw.n; i++)
		if (fmt_path_is_under(x->sw.path[i], strlen(x->sw.path[i]), sub, l) ||
		    sync_switched_find(&x->sw, sub, l)) {
			CUT_ERR("%s: already switched (or holds %s, which is): `cutover status` lists the "
				"switched subtrees", sub, x->sw.path[i]);
			return false;
		}
	char *src = join2(x->cfg.source, sub);
	struct stat st;
	bool dir = lstat(src, &st) == 0 && S_ISDIR(st.st_mode);
	if (!dir)
		CUT_ERR("%s: not a directory on the source", src);
	free(src);
	size_t pl = fmt_path_parent_len(sub, l);
	fmt_entry e;
	if (dir && pl && fmt_mcursor_find(cur, sub, pl, &e) != 1) {
		CUT_ERR("%.*s: not on the target yet (not in the manifest it matches): run `cutover sync "
			"--state %s` first", (int)pl, sub, x->o->dir);
		return false;
	}
	return dir;
}

/* The given subtrees, sorted and checked.  0, or -1 (logged). */
static int subtrees_check(swrun *x, const char *const *subs, size_t n)
{
	char *bp = sync_path(x->o->dir, x->ts.base);
	fmt_mreader *r = fmt_mreader_open(bp);
	free(bp);
	fmt_mcursor *cur = r ? fmt_mcursor_new(r) : NULL;
	int rc = cur ? 0 : -1;
	sync_switched given = {0};
	for (size_t i = 0; i < n && rc == 0; i++) {
		if (!subtree_ok(x, subs[i], cur))
			rc = -1;
		else if (sync_switched_find(&given, subs[i], strlen(subs[i]))) {
			CUT_ERR("%s: given twice, or inside another subtree given", subs[i]);
			rc = -1;
		} else {
			sw_add(&given, subs[i], strlen(subs[i]), "", false);
			sw_sort(&given);
		}
	}
	for (size_t i = 0; i < given.n && rc == 0; i++)
		for (size_t j = 0; j < given.n; j++)
			if (i != j && fmt_path_is_under(given.path[j], strlen(given.path[j]), given.path[i],
							strlen(given.path[i]))) {
				CUT_ERR("%s: inside %s, also given", given.path[j], given.path[i]);
				rc = -1;
				break;
			}
	sync_switched_free(&given);
	if (cur)
		fmt_mcursor_free(cur);
	if (r)
		fmt_mreader_close(r);
	return rc;
}

/* The passes of the subtrees and their verification.  A cut_outcome; the
 * records are named in recs. */
static int switch_pass(swrun *x, const char *const *subs, size_t n, char (*recs)[64])
{
	char *sd = sync_path(x->o->dir, "switch");
	bool made = mkdir(sd, 0700) == 0 || errno == EEXIST;
	if (!made)
		CUT_SYSERR("%s: cannot create", sd);
	free(sd);
	if (!made)
		return CUT_FAILED;
	/* Subtrees the target lacks are made first, one at a time: each
	 * restores its parent's times, and siblings share a parent. */
	for (size_t i = 0; i < n; i++) {
		char *dst = join2(x->cfg.target, subs[i]);
		struct stat st;
		int r = lstat(dst, &st) < 0 ? make_subtree(dst) : S_ISDIR(st.st_mode) ? 0 : -1;
		if (r < 0 && lstat(dst, &st) == 0 && !S_ISDIR(st.st_mode))
			CUT_ERR("%s: not a directory on the target", dst);
		free(dst);
		if (r < 0)
			return CUT_FAILED;
	}
	swjob *jobs = cut_calloc(n, sizeof *jobs);
	for (size_t i = 0; i < n; i++) {
		jobs[i] = (swjob){.x = x, .sub = subs[i], .i = i};
		sync_rel_switch_record(jobs[i].rec, x->seq, i);
		snprintf(recs[i], 64, "%s", jobs[i].rec);
	}
	pool_run(jobs, n);
	int rc = pool_result(x, jobs, n);
	for (size_t i = 0; i < n; i++)
		free(jobs[i].report);
	free(jobs);
	return rc;
}

static int switch_body(swrun *x, sync_result *res)
{
	const sync_switch_opts *o = x->o;
	if (subtrees_check(x, o->subtrees, o->n) < 0)
		return CUT_INVALID;
	if (o->before) {
		sync_progress_phase(&x->prog, 0, "before", 0);
		int r = run_hook(x, "--before", o->before, o->subtrees, o->n);
		if (r != 0) {
			CUT_ERR("switch: the --before command exited %d: nothing was switched", r);
			return CUT_FAILED;
		}
	}
	x->seq = sync_next_seq(o->dir, &x->ts);
	x->h->seq = x->seq;
	sync_progress_phase(&x->prog, x->seq, "switch", o->n);
	char (*recs)[64] = cut_calloc(o->n, 64);
	int rc = switch_pass(x, o->subtrees, o->n, recs);
	if (rc != CUT_OK) {
		for (size_t i = 0; i < o->n; i++)
			if (recs[i][0]) {
				char *p = sync_path(o->dir, recs[i]);
				unlink(p);
				free(p);
			}
		free(recs);
		return rc;
	}
	for (size_t i = 0; i < o->n; i++)
		sw_add(&x->sw, o->subtrees[i], strlen(o->subtrees[i]), recs[i], false);
	free(recs);
	sw_sort(&x->sw);
	if (sw_write(o->dir, &x->sw) < 0)
		return CUT_FAILED;
	/* --after runs in the switch phase: status shows all subtrees done. */
	int after = o->after ? run_hook(x, "--after", o->after, o->subtrees, o->n) : 0;
	sync_progress_phase(&x->prog, 0, "commit", 0);
	if (switch_commit(x) < 0)
		return CUT_FAILED;
	for (size_t i = 0; i < o->n; i++)
		fprintf(o->out, "SWITCHED %s\n", o->subtrees[i]);
	snprintf(res->verdict_line, sizeof res->verdict_line,
		 "PARITY: %zu subtree%s switched (%llu entries verified on both sides); later passes "
		 "leave %s to the new side", o->n, o->n == 1 ? "" : "s",
		 (unsigned long long)x->h->entries, o->n == 1 ? "it" : "them");
	snprintf(x->h->verdict, sizeof x->h->verdict, "parity");
	if (after != 0) {
		CUT_ERR("switch: the --after command exited %d: the subtrees are switched (their copy "
			"is in parity, and later passes leave them alone) but whatever --after does "
			"(routing their users to the new side) may not have happened: do it by hand", after);
		return CUT_FAILED;
	}
	return CUT_OK;
}

static int switch_locked(swrun *x, sync_result *res)
{
	const sync_switch_opts *o = x->o;
	int r = sync_tstate_read(o->dir, &x->ts);
	sync_pending pd;
	int r2 = r <= 0 ? 0 : sync_pending_read(o->dir, &pd);
	if (r < 0 || r2 < 0)
		return CUT_FAILED;
	if (r == 0 || r2 > 0) {
		CUT_ERR("switch: %s: run `cutover sync --state %s` first", r == 0 ? "the target was "
			"never synced" : "a pass was interrupted", o->dir);
		return CUT_FAILED;
	}
	if (sync_switched_settle(o->dir, &x->cfg, &x->ts) < 0 || sync_switched_read(o->dir, &x->sw) < 0)
		return CUT_FAILED;
	if (o->ack_late)
		return sync_late_ack(o->dir) < 0 ? CUT_FAILED : CUT_OK;
	return switch_body(x, res);
}

int sync_switch(const sync_switch_opts *o, sync_result *res)
{
	memset(res, 0, sizeof *res);
	sync_hist *h = &res->h;
	h->start = cut_now_ns();
	snprintf(h->kind, sizeof h->kind, "switch");
	swrun x = {.o = o, .h = h};
	if (sync_config_read(o->dir, &x.cfg) < 0)
		return CUT_FAILED;
	/* The pair's limits on the source hold for a switch as for a pass,
	 * unless the call gives its own. */
	budget_source_set(o->has_max_ops ? o->max_ops : x.cfg.max_ops,
			  o->has_bwlimit ? o->bwlimit : x.cfg.bwlimit, o->adaptive || x.cfg.adaptive,
			  o->max_latency_ns ? o->max_latency_ns : x.cfg.max_latency_ns);
	sync_lock lk = {.fd = -1};
	sync_lock_holder holder;
	int rc = sync_lock_take(o->dir, &lk, &holder);
	if (rc == CUT_OK) {
		pthread_mutex_init(&x.prog_mu, NULL);
		sync_progress_start(&x.prog, o->dir, "switch");
		rc = switch_locked(&x, res);
		sync_progress_end(&x.prog);
		pthread_mutex_destroy(&x.prog_mu);
		h->end = cut_now_ns();
		h->exit = sync_exit_of(o->exit_code, rc);
		sync_hist_src(h);
		if (h->seq) {
			if (!h->verdict[0])
				snprintf(h->verdict, sizeof h->verdict, "-");
			if (sync_hist_record(o->dir, h) < 0 && rc == CUT_OK)
				rc = CUT_FAILED;
		}
		char src[160];
		sync_hist_src_line(h, src, sizeof src);
		snprintf(res->message, sizeof res->message,
			 "switch of %zu subtree%s %s (exit %d): %llu ops, scan %.1fs diff %.1fs replay "
			 "%.1fs verify %.1fs; source %s", o->n, o->n == 1 ? "" : "s",
			 rc == CUT_OK ? "ok" : "FAILED", sync_exit_of(o->exit_code, rc),
			 (unsigned long long)h->ops, h->scan_s, h->diff_s,
			 h->replay_s, h->check_s, src);
		sync_lock_release(&lk);
	}
	sync_switched_free(&x.sw);
	sync_config_free(&x.cfg);
	return rc;
}

/* ---- what other commands leave out ---------------------------------------- */

void sync_switched_excludes(const sync_switched *s, const sync_config *c, sync_globs *g)
{
	g->n = c->nexcludes + s->n;
	g->v = cut_calloc(g->n ? g->n : 1, sizeof *g->v);
	for (size_t i = 0; i < c->nexcludes; i++)
		g->v[i] = cut_strndup(c->excludes[i], strlen(c->excludes[i]));
	for (size_t i = 0; i < s->n; i++) {
		/* A path pattern (the leading '/'), its glob characters escaped. */
		cut_buf b = {0};
		cut_buf_putc(&b, '/');
		for (const char *p = s->path[i]; *p; p++) {
			if (strchr("*?[\\", *p))
				cut_buf_putc(&b, '\\');
			cut_buf_putc(&b, (uint8_t)*p);
		}
		cut_buf_putc(&b, 0);
		g->v[c->nexcludes + i] = (char *)b.p;
	}
}

void sync_globs_free(sync_globs *g)
{
	for (size_t i = 0; i < g->n; i++)
		free(g->v[i]);
	free(g->v);
	memset(g, 0, sizeof *g);
}

size_t sync_switch_left(const char *source, const sync_switched *s, cut_buf *first, size_t nfirst)
{
	size_t left = 0, shown = 0;
	DIR *top = opendir(source);
	struct dirent *d;
	while (top && (d = readdir(top))) {
		if (d->d_name[0] == '.' || fmt_name_reserved(d->d_name, strlen(d->d_name)))
			continue;
		char *p = join2(source, d->d_name);
		DIR *sub = opendir(p);
		free(p);
		struct dirent *u;
		while (sub && (u = readdir(sub))) {
			if (u->d_name[0] == '.' || (u->d_type != DT_DIR && u->d_type != DT_UNKNOWN))
				continue;
			char *rel = join2(d->d_name, u->d_name);
			if (!sync_switched_find(s, rel, strlen(rel))) {
				left++;
				if (shown++ < nfirst)
					cut_buf_printf(first, "%s%s", shown > 1 ? " " : "", rel);
			}
			free(rel);
		}
		if (sub)
			closedir(sub);
	}
	if (top)
		closedir(top);
	cut_buf_putc(first, 0);
	return left;
}
