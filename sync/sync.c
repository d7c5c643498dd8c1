/*
 * sync.c - one pass of `cutover sync` over a state directory, and `init`.
 *
 * The chain (docs/SYNC.md): DIR/target-state says the target matches
 * base manifest B_k (the source manifest M_k of pass k, or one derived from
 * it).  A pass scans the source into M_{k+1} (incrementally against the last
 * source manifest), diffs B_k -> M_{k+1}, records DIR/pending, replays, and
 * only then writes target-state = k+1.  So:
 *   - an interrupted replay leaves pending: the next pass resumes that log
 *     (replay's journal) before anything else;
 *   - a log is only replayed onto the base it was made from: the pending log's
 *     OLD id is checked against target-state, and the target itself is checked
 *     before each pass, cheaply (DIR/target-marks: the stat of the root, the
 *     top two levels of directories and a sample, taken after the last replay)
 *     and, when that shows a difference or with --check-target, by a scan of
 *     the target reported against B_k.  A target that differs is refused with
 *     the differences named; `sync --rebase` re-bases on a scan of the target.
 */
#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "diff/diff.h"
#include "diff/report.h"
#include "base/budget.h"
#include "format/changes.h"
#include "format/manifest.h"
#include "format/path.h"
#include "replay/replay.h"
#include "scanner/scan.h"
#include "sync/sync.h"

#define MARKS_SAMPLE 4096   /* manifest entries sampled for the cheap check */
#define MARKS_LOG_SAMPLE 256 /* paths of the last log */
#define MARKS_DIRS_MAX 4096  /* directories at depth 1 and 2 */
#define FINAL_MAX_SUBTREES 32 /* beyond this, --final verifies the whole tree */

static double secs_since(int64_t t0) { return cut_secs(cut_mono_ns() - t0); }

/* ---- small helpers ------------------------------------------------------ */

static char *norm_path(const char *p)
{
	return cut_strndup(p, cut_path_trimmed_len(p));
}

/* Absolute form of p whose parent exists (p itself need not). */
static char *abs_path(const char *p)
{
	char *n = norm_path(p);
	char buf[PATH_MAX];
	if (realpath(n, buf)) {
		free(n);
		return cut_strndup(buf, strlen(buf));
	}
	const char *slash = strrchr(n, '/');
	char *parent = slash ? cut_strndup(n, slash == n ? 1 : (size_t)(slash - n)) : cut_strndup(".", 1);
	const char *base = slash ? slash + 1 : n;
	char *out = NULL;
	if (realpath(parent, buf)) {
		out = sync_path(buf, base);
		if (strcmp(buf, "/") == 0) {
			free(out);
			size_t bl = strlen(base);
			out = cut_malloc(bl + 2);
			out[0] = '/';
			memcpy(out + 1, base, bl + 1);
		}
	}
	free(parent);
	free(n);
	return out;
}

static int manifest_id(const char *path, uint8_t id[FMT_ID_LEN])
{
	fmt_mreader *r = fmt_mreader_open(path);
	if (!r)
		return -1;
	memcpy(id, fmt_mreader_id(r), FMT_ID_LEN);
	fmt_mreader_close(r);
	return 0;
}

static void id16(char out[17], const uint8_t id[FMT_ID_LEN])
{
	char h[2 * FMT_ID_LEN + 1];
	cut_hex(h, id, FMT_ID_LEN);
	memcpy(out, h, 16);
	out[16] = 0;
}

/* Is dir absent or empty?  1 yes, 0 no, -1 error. */
static int dir_empty(const char *p)
{
	DIR *d = opendir(p);
	if (!d) {
		if (errno == ENOENT)
			return 1;
		CUT_SYSERR("%s: cannot open", p);
		return -1;
	}
	struct dirent *de;
	int r = 1;
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..")) {
			r = 0;
			break;
		}
	closedir(d);
	return r;
}

void sync_policy_of(const sync_config *c, sync_scan_policy *p, int threads)
{
	memset(p, 0, sizeof *p);
	p->maildir = c->maildir;
	p->one_fs = c->one_fs;
	p->excludes = (const char *const *)c->excludes;
	p->nexcludes = c->nexcludes;
	p->immutable = (const char *const *)c->immutable;
	p->nimmutable = c->nimmutable;
	p->threads = threads;
}

void sync_scan_opts_of(const sync_config *c, scan_opts *so, int threads)
{
	memset(so, 0, sizeof *so);
	so->threads = threads;
	so->excludes = (const char *const *)c->excludes;
	so->nexcludes = c->nexcludes;
	so->one_fs = c->one_fs;
	so->maildir = c->maildir;
	so->immutable = (const char *const *)c->immutable;
	so->nimmutable = c->nimmutable;
}

/* ---- init --------------------------------------------------------------- */

int sync_init(const char *dir, const sync_config *in, bool force, char *fix, size_t fixcap)
{
	sync_config c = *in;
	struct stat st;
	char *src = abs_path(in->source), *dst = abs_path(in->target), *cfg = NULL;
	int rc = CUT_FAILED;
	if (!src || stat(src, &st) < 0 || !S_ISDIR(st.st_mode)) {
		CUT_ERR("%s: the source is not a directory", in->source);
		goto out;
	}
	if (!dst) {
		CUT_ERR("%s: the target's parent directory does not exist", in->target);
		goto out;
	}
	if (strchr(src, '\n') || strchr(dst, '\n')) {
		CUT_ERR("paths with a newline cannot be recorded");
		goto out;
	}
	size_t sl = strlen(src), dl = strlen(dst);
	if (strcmp(src, dst) == 0 || (dl > sl && strncmp(dst, src, sl) == 0 && dst[sl] == '/') ||
	    (sl > dl && strncmp(src, dst, dl) == 0 && src[dl] == '/')) {
		CUT_ERR("the source %s and the target %s must not contain one another", src, dst);
		goto out;
	}
	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		CUT_SYSERR("%s: cannot create the state directory", dir);
		goto out;
	}
	char *sdir = abs_path(dir);
	bool inside = sdir && ((strncmp(sdir, src, sl) == 0 && (sdir[sl] == '/' || !sdir[sl])) ||
			       (strncmp(sdir, dst, dl) == 0 && (sdir[dl] == '/' || !sdir[dl])));
	free(sdir);
	if (inside) {
		CUT_ERR("%s: the state directory must not be inside the source or the target", dir);
		goto out;
	}
	cfg = sync_path(dir, "config");
	if (!force && access(cfg, F_OK) == 0) {
		CUT_ERR("%s: already initialised (the config exists); use --force to rewrite the config "
			"(manifests and target-state are kept)", dir);
		snprintf(fix, fixcap, "run the same `cutover init` with --force to change the pair or "
			 "the policy, or give another --state");
		goto out;
	}
	c.source = src;
	c.target = dst;
	c.created = (int64_t)time(NULL);
	char host[256];
	if (gethostname(host, sizeof host - 1) < 0)
		strcpy(host, "localhost");
	host[sizeof host - 1] = 0;
	c.host = host;
	cut_buf b = {0};
	sync_config_format(&c, &b);
	int w = sync_write_atomic(cfg, b.p, b.len);
	cut_buf_free(&b);
	if (w < 0 || sync_dirs_create(dir) < 0)
		goto out;
	rc = CUT_OK;
out:
	free(src);
	free(dst);
	free(cfg);
	return rc;
}

/* ---- target marks (the cheap check) ------------------------------------ */

static void mark_escape(cut_buf *b, const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)p[i];
		if (ch <= ' ' || ch == '%' || ch >= 0x7f)
			cut_buf_printf(b, "%%%02X", ch);
		else
			cut_buf_putc(b, ch);
	}
}

static int mark_unescape(char *s)
{
	char *o = s;
	for (char *p = s; *p; p++) {
		if (*p == '%') {
			unsigned v;
			if (!p[1] || !p[2] || sscanf(p + 1, "%2X", &v) != 1)
				return -1;
			*o++ = (char)v;
			p += 2;
		} else {
			*o++ = *p;
		}
	}
	*o = 0;
	return 0;
}

typedef struct pathset {
	char **v;
	size_t n, cap;
} pathset;

static void ps_add(pathset *s, const char *p, size_t n)
{
	if (s->n == s->cap) {
		s->cap = s->cap ? 2 * s->cap : 64;
		s->v = cut_realloc(s->v, cut_size_mul(s->cap, sizeof *s->v));
	}
	s->v[s->n++] = cut_strndup(p, n);
}

static int ps_cmp(const void *a, const void *b)
{
	const char *x = *(char *const *)a, *y = *(char *const *)b;
	return fmt_path_cmp(x, strlen(x), y, strlen(y));
}

static void ps_sort_unique(pathset *s)
{
	if (!s->n)
		return;
	qsort(s->v, s->n, sizeof *s->v, ps_cmp);
	size_t o = 1;
	for (size_t i = 1; i < s->n; i++) {
		if (strcmp(s->v[i], s->v[o - 1]) == 0)
			free(s->v[i]);
		else
			s->v[o++] = s->v[i];
	}
	s->n = o;
}

static void ps_free(pathset *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->v[i]);
	free(s->v);
	memset(s, 0, sizeof *s);
}

static size_t depth_of(const char *p, size_t n)
{
	if (!n)
		return 0;
	size_t d = 1;
	for (size_t i = 0; i < n; i++)
		d += p[i] == '/';
	return d;
}

/* Collects the paths whose stat is recorded: the root, directories at depth
 * 1 and 2, a spread of the base manifest, and the destinations of the log. */
static int marks_paths(const char *base, const char *log, pathset *ps)
{
	fmt_mreader *m = fmt_mreader_open(base);
	if (!m)
		return -1;
	uint64_t total = fmt_mreader_header(m)->entries, step = total / MARKS_SAMPLE + 1, i = 0;
	size_t dirs = 0;
	fmt_entry e;
	int r;
	while ((r = fmt_mreader_next(m, &e)) > 0) {
		size_t d = depth_of(e.path, e.path_len);
		if ((e.type == FMT_T_DIR && d <= 2 && dirs++ < MARKS_DIRS_MAX) || d == 0 || i % step == 0)
			ps_add(ps, e.path, e.path_len);
		i++;
	}
	fmt_mreader_close(m);
	if (r < 0)
		return -1;
	if (log) {
		fmt_creader *cr = fmt_creader_open(log);
		if (!cr)
			return -1;
		fmt_change c;
		size_t taken = 0;
		/* Read to the end: closing a reader half way logs a false
		 * corruption (fmt_creader_close checks the whole-file id). */
		while ((r = fmt_creader_next(cr, &c)) > 0) {
			if (taken >= MARKS_LOG_SAMPLE)
				continue;
			if (c.op == FMT_OP_CREATE || c.op == FMT_OP_UPDATE || c.op == FMT_OP_MKDIR ||
			    c.op == FMT_OP_SYMLINK)
				ps_add(ps, c.e.path, c.e.path_len), taken++;
			else if ((c.op == FMT_OP_RENAME || c.op == FMT_OP_LINK) && c.to)
				ps_add(ps, c.to, c.to_len), taken++;
		}
		fmt_creader_close(cr);
		if (r < 0)
			return -1;
	}
	ps_sort_unique(ps);
	return 0;
}

static void mark_line(cut_buf *b, int tfd, const char *path)
{
	struct stat st;
	int r = fstatat(tfd, *path ? path : ".", &st, AT_SYMLINK_NOFOLLOW);
	if (r < 0)
		cut_buf_printf(b, "absent");
	else
		cut_buf_printf(b, "%llu %lld %llu %o", (unsigned long long)st.st_ino,
			       (long long)cut_ts_ns(st.st_mtim),
			       (unsigned long long)st.st_size, (unsigned)st.st_mode);
}

static int marks_write(const char *dir, const char *target, const char *base, const char *log)
{
	pathset ps = {0};
	int rc = -1;
	int tfd = open(target, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (tfd < 0) {
		CUT_SYSERR("%s: cannot open the target", target);
		return -1;
	}
	if (marks_paths(base, log, &ps) == 0) {
		cut_buf b = {0};
		cut_buf_printf(&b, "# the target as the last replay left it (ino mtime_ns size mode path)\n");
		for (size_t i = 0; i < ps.n; i++) {
			mark_line(&b, tfd, ps.v[i]);
			cut_buf_putc(&b, ' ');
			mark_escape(&b, ps.v[i], strlen(ps.v[i]));
			if (!ps.v[i][0])
				cut_buf_printf(&b, ".");
			cut_buf_putc(&b, '\n');
		}
		char *p = sync_path(dir, "target-marks");
		rc = sync_write_atomic(p, b.p, b.len);
		free(p);
		cut_buf_free(&b);
	}
	close(tfd);
	ps_free(&ps);
	return rc;
}

/* Replaces the marks with a record of doubt: the next check finds it and
 * scans the whole target (a final pass that changes the target after its
 * commit, or could not repair what it found).  0 or -1. */
static int marks_doubt(const char *dir, const char *why)
{
	cut_buf b = {0};
	cut_buf_printf(&b, "# the target is in doubt: the next pass scans it\ndoubt %s\n", why);
	char *p = sync_path(dir, "target-marks");
	int rc = sync_write_atomic(p, b.p, b.len);
	free(p);
	cut_buf_free(&b);
	return rc;
}

/* 0 when every mark matches, 1 when one differs (*what names it), -1 error. */
int sync_marks_check(const char *dir, const char *target, char *what, size_t wcap)
{
	char *p = sync_path(dir, "target-marks");
	cut_buf b = {0};
	int r = sync_read_file(p, &b);
	free(p);
	if (r <= 0) {
		cut_buf_free(&b);
		if (r == 0)
			snprintf(what, wcap, "no record of the target's state (target-marks)");
		return r < 0 ? -1 : 1;
	}
	int tfd = open(target, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (tfd < 0) {
		snprintf(what, wcap, "the target %s cannot be opened (%s)", target, strerror(errno));
		cut_buf_free(&b);
		return 1;
	}
	/* Switched subtrees are the new side's to change. */
	sync_switched sw;
	if (sync_switched_read(dir, &sw) < 0) {
		close(tfd);
		cut_buf_free(&b);
		return -1;
	}
	int rc = 0;
	char *save = NULL;
	for (char *line = strtok_r((char *)b.p, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		if (line[0] == '#')
			continue;
		if (strncmp(line, "doubt ", 6) == 0) {
			snprintf(what, wcap, "%s", line + 6);
			rc = 1;
			break;
		}
		char *sp = strrchr(line, ' ');
		if (!sp)
			continue;
		*sp = 0;
		char *path = sp + 1;
		if (mark_unescape(path) < 0)
			continue;
		const char *rel = strcmp(path, ".") == 0 ? "" : path;
		if (*rel && sync_switched_find(&sw, rel, strlen(rel)))
			continue;
		cut_buf now = {0};
		mark_line(&now, tfd, rel);
		cut_buf_putc(&now, 0);
		if (strcmp((const char *)now.p, line) != 0) {
			snprintf(what, wcap, "%s%s changed (recorded: %s; now: %s)", *rel ? "" : "the root ",
				 *rel ? rel : "", line, (const char *)now.p);
			rc = 1;
		}
		cut_buf_free(&now);
		if (rc)
			break;
	}
	sync_switched_free(&sw);
	close(tfd);
	cut_buf_free(&b);
	return rc;
}

/* ---- the pass ----------------------------------------------------------- */

typedef struct pass {
	const sync_opts *o;
	sync_config cfg;
	sync_result *res;
	sync_tstate ts;
	bool have_ts;
	sync_pending pd;
	bool have_pd;
	int threads;
	sync_switched sw;       /* DIR/switched: never replayed into */
	sync_globs excludes;    /* the config's, and the switched subtrees */
	uint64_t late;          /* this pass's late writes */
	sync_progress_w prog;   /* DIR/progress, from the lock to its release */
} pass;

/* The scanner's and replay's progress callbacks, into DIR/progress. */
static void scan_moved(const scan_progress *sp, void *arg)
{
	sync_progress_count(arg, sp->entries, 0, sp->bytes, 0);
}

static void replay_moved(void *ctx, const rp_stats *st)
{
	sync_progress_count(ctx, st->done + st->journaled, st->total, st->bytes_copied, st->bytes_total);
}

static void diff_moved(uint64_t done, uint64_t total, void *arg)
{
	sync_progress_count(arg, done, total, 0, 0);
}

static void verify_moved(uint64_t entries, void *arg)
{
	sync_progress_count(arg, entries, 0, 0, 0);
}

/* The source entries of the newest pass that scanned it (the scan phase's
 * expected total), or 0. */
static uint64_t last_entries(const char *dir)
{
	sync_hist *v = NULL;
	size_t n = 0;
	uint64_t e = 0;
	if (sync_hist_read(dir, 16, &v, &n) == 0)
		for (size_t i = n; i-- > 0 && !e;)
			e = v[i].entries;
	free(v);
	return e;
}

static void fix(pass *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fix(pass *p, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(p->res->fix, sizeof p->res->fix, fmt, ap);
	va_end(ap);
}

/* The fix of a chain that cannot be followed (CUT_FAILED) or a target changed
 * outside cutover. */
static void fix_rebase(pass *p)
{
	fix(p, "run `cutover sync --state %s --rebase`: it scans the target and copies, deletes "
	       "and fixes only what differs from the source", p->o->dir);
}

static void add_replay_stats(sync_hist *h, const rp_stats *st)
{
	h->created += st->created;
	h->updated += st->updated;
	h->renamed += st->renamed;
	h->linked += st->linked;
	h->deleted += st->deleted + st->rmdirs;
	h->meta += st->metas;
	h->bytes += st->bytes_copied;
	h->drifted += st->drifted;
	h->vanished += st->vanished;
	h->skipped += st->skipped;
	h->conflicts += st->conflicts;
	h->retried += st->retried + st->retried_target;
	h->ops += st->done;
}

/* A full scan of the target into out, with the config's policy and the
 * pass's excludes. */
static void target_scan_opts(const pass *p, scan_opts *so, const char *out)
{
	sync_scan_opts_of(&p->cfg, so, p->threads);
	so->root = p->cfg.target;
	so->out = out;
	so->full = true;
	so->excludes = (const char *const *)p->excludes.v;
	so->nexcludes = p->excludes.n;
}

/* Scans the target (full, with the config's policy) into rel and reports it
 * against base; h counts the target's stats and opens made again after
 * ESTALE.  0 parity, 1 differ (report text in *text), -1 error. */
static int target_vs(pass *p, const char *rel, const char *base, char **text, uint64_t *entries,
		     sync_hist *h)
{
	char *out = sync_path(p->o->dir, rel);
	scan_opts so;
	target_scan_opts(p, &so, out);
	scan_stats st;
	uint8_t id[FMT_ID_LEN];
	int rc = -1;
	char *bp = sync_path(p->o->dir, base), *dp = NULL;
	int r = scan_run(&so, &st, id);
	if (r < 0)
		goto out;
	*entries = st.entries;
	h->retried += st.retried;
	if (r > 0) {
		CUT_ERR("%s: %llu paths of the target could not be read (listed above): its state is "
			"unknown, nothing was changed", p->cfg.target,
			(unsigned long long)st.errors);
		goto out;
	}
	if (p->sw.n) {
		/* The switched subtrees are the new side's: compared with nothing. */
		dp = cut_strndup(out, strlen(out));
		dp = cut_realloc(dp, strlen(out) + 6);
		strcat(dp, ".base");
		if (sync_switched_drop(&p->sw, bp, dp) < 0)
			goto out;
	}
	size_t tl = 0;
	FILE *mem = open_memstream(text, &tl);
	diff_report_opts ro = {.a = dp ? dp : bp, .b = out, .ignore = RF_DEFAULT_IGNORE | RF_HASH,
			       .max_examples = 5, .tmpdir = p->o->dir, .out = mem};
	rc = mem ? diff_report(&ro) : -1;
	if (mem)
		fclose(mem);
out:
	if (dp)
		unlink(dp);
	free(dp);
	free(bp);
	free(out);
	return rc;
}

/* The chain check before a pass.  OK, or CONFLICT/ERROR (logged). */
static int chain_check(pass *p, sync_hist *h)
{
	int64_t t0 = cut_mono_ns();
	char *bp = sync_path(p->o->dir, p->ts.base);
	uint8_t id[FMT_ID_LEN];
	int r = manifest_id(bp, id);
	free(bp);
	if (r < 0) {
		CUT_ERR("%s: the base manifest %s named by target-state cannot be read: the record of "
			"what the target holds is lost; run `cutover sync --state %s --rebase` to re-base "
			"on a scan of the target", p->o->dir, p->ts.base, p->o->dir);
		fix_rebase(p);
		return CUT_FAILED;
	}
	if (memcmp(id, p->ts.base_id, FMT_ID_LEN) != 0) {
		CUT_ERR("%s/%s is not the manifest target-state names (its id differs): the state "
			"directory was changed by hand; run `cutover sync --state %s --rebase`",
			p->o->dir, p->ts.base, p->o->dir);
		fix_rebase(p);
		return CUT_FAILED;
	}
	char what[1024] = "";
	bool scan = p->o->check_target;
	if (!scan) {
		r = sync_marks_check(p->o->dir, p->cfg.target, what, sizeof what);
		if (r < 0)
			return CUT_FAILED;
		if (r > 0) {
			CUT_INFO("sync: the target differs from its record (%s): scanning it to compare "
				 "with manifest %s", what, p->ts.base);
			scan = true;
		}
	}
	if (scan) {
		char rel[64];
		sync_rel_manifest(rel, p->ts.seq, ".check");
		char *text = NULL;
		uint64_t n = 0;
		r = target_vs(p, rel, p->ts.base, &text, &n, h);
		char *cp = sync_path(p->o->dir, rel);
		unlink(cp);
		free(cp);
		if (r > 0) {
			cut_buf msg = {0};
			sync_report_excerpt(&msg, text, "  ");
			cut_buf_putc(&msg, 0);
			CUT_ERR("sync: the target %s was changed outside cutover since pass %u: a scan of "
				"the whole target (%llu entries) no longer matches manifest %s%s%s.  Nothing "
				"was changed.\n%s"
				"cutover: what to do: if these changes on the target are wanted, move them "
				"to the source first; then run `cutover sync --state %s --rebase`, which "
				"scans the target and copies, deletes and fixes only what differs from the "
				"source (use --check-target on later runs to verify the whole target)",
				p->cfg.target, p->ts.seq, (unsigned long long)n, p->ts.base,
				what[0] ? "; first sign: " : "", what, (const char *)msg.p, p->o->dir);
			cut_buf_free(&msg);
			free(text);
			h->check_s = secs_since(t0);
			return CUT_CONFLICT;
		}
		free(text);
		if (r < 0)
			return CUT_FAILED;
		if (what[0])
			CUT_WARN("sync: %s, but a scan of the whole target (%llu entries) matches "
				 "manifest %s: continuing", what, (unsigned long long)n, p->ts.base);
	}
	h->check_s = secs_since(t0);
	return CUT_OK;
}

/* After a replay of log finished (OK or INCOMPLETE): works out the base,
 * records target-state and marks, removes pending.  0 or -1. */
static int commit(pass *p, unsigned seq, const char *manifest_rel, const char *log_rel,
		  const rp_stats *st, const char *kind)
{
	sync_tstate t = {.seq = seq, .time = (int64_t)time(NULL)};
	snprintf(t.kind, sizeof t.kind, "%s", kind);
	char *mp = sync_path(p->o->dir, manifest_rel), *lp = sync_path(p->o->dir, log_rel);
	char *bp = NULL;
	int rc = -1;
	if (manifest_id(mp, t.manifest_id) < 0)
		goto out;
	if (st->drifted || st->vanished || st->skipped || st->conflicts_skipped || st->earlier ||
	    st->racy) {
		/* The target is not exactly M, or may not be (racy copies):
		 * record what it holds. */
		sync_rel_manifest(t.base, seq, ".base");
		bp = sync_path(p->o->dir, t.base);
		uint64_t patched;
		if (sync_base_patch(mp, lp, p->cfg.target, bp, p->o->dir, &patched) < 0 ||
		    manifest_id(bp, t.base_id) < 0)
			goto out;
		CUT_INFO("sync: %llu paths drifted, vanished or were skipped during the copy; the next "
			 "pass starts from what the target holds (%s)", (unsigned long long)patched, t.base);
	} else {
		snprintf(t.base, sizeof t.base, "%s", manifest_rel);
		memcpy(t.base_id, t.manifest_id, FMT_ID_LEN);
		bp = cut_strndup(mp, strlen(mp));
	}
	if (sync_tstate_write(p->o->dir, &t) < 0)
		goto out;
	p->ts = t;
	p->have_ts = true;
	if (sync_pending_remove(p->o->dir) < 0)
		goto out;
	p->have_pd = false;
	if (marks_write(p->o->dir, p->cfg.target, bp, lp) < 0)
		CUT_WARN("sync: the target's marks could not be recorded: the next pass scans the target");
	rc = 0;
out:
	free(mp);
	free(lp);
	free(bp);
	return rc;
}

static int replay(pass *p, const char *log_rel, rp_stats *st, int64_t *t)
{
	char *lp = sync_path(p->o->dir, log_rel), *jp = sync_path(p->o->dir, "journal");
	rp_opts ro = {.log = lp, .source = p->cfg.source, .target = p->cfg.target, .journal = jp,
		      .jobs = p->o->jobs, .fsync = p->o->fsync, .maildir = p->cfg.maildir,
		      .on_conflict = RP_CONFLICT_STOP, .progress = replay_moved, .progress_ctx = &p->prog};
	sync_progress_phase(&p->prog, 0, "replay", 0);
	int64_t t0 = cut_mono_ns();
	int rc = rp_run(&ro, st);
	*t = cut_mono_ns() - t0;
	free(lp);
	free(jp);
	return rc;
}

static const char *replay_advice(int rc)
{
	switch (rc) {
	case CUT_CONFLICT:
		return "the target is not as the change log expects (changed outside cutover?); "
		       "run `cutover sync --rebase` to re-base on a scan of the target";
	case CUT_NOSPACE:
		return "the target is full: free space, then run the same sync again to resume";
	case CUT_LOCKED:
		return "another replay holds the journal";
	default:
		return "fix the error above, then run the same sync again to resume";
	}
}

/* True when target-state already records pending's pass: commit() writes
 * target-state and then removes pending, and a kill between the two leaves
 * both.  Only the pass's manifest can be recorded with its sequence number. */
static bool pending_committed(const pass *p)
{
	const sync_pending *pd = &p->pd;
	if (!p->have_ts || p->ts.seq != pd->seq)
		return false;
	uint8_t id[FMT_ID_LEN];
	char *mp = sync_path(p->o->dir, pd->manifest);
	bool same = manifest_id(mp, id) == 0 && memcmp(id, p->ts.manifest_id, FMT_ID_LEN) == 0;
	free(mp);
	return same;
}

/* Finishes what commit() left when it was killed after recording
 * target-state: removes pending and writes the target's marks.  CUT_OK or a
 * cut_outcome. */
static int finish_commit(pass *p)
{
	CUT_INFO("sync: pass %u was recorded as done when it was interrupted; removing what it "
		 "left", p->pd.seq);
	if (sync_pending_remove(p->o->dir) < 0)
		return CUT_FAILED;
	p->have_pd = false;
	char *bp = sync_path(p->o->dir, p->ts.base), *lp = sync_path(p->o->dir, p->pd.log);
	if (marks_write(p->o->dir, p->cfg.target, bp, lp) < 0)
		CUT_WARN("sync: the target's marks could not be recorded: the next pass scans the target");
	free(bp);
	free(lp);
	return CUT_OK;
}

/* Finishes an interrupted replay (DIR/pending).  CUT_OK or a cut_outcome. */
static int resume(pass *p, sync_hist *h)
{
	sync_pending *pd = &p->pd;
	if (pending_committed(p))
		return finish_commit(p);
	char *lp = sync_path(p->o->dir, pd->log);
	fmt_creader *cr = fmt_creader_open(lp);
	free(lp);
	if (!cr) {
		CUT_ERR("%s: the log of the interrupted pass %u cannot be read; run `cutover sync "
			"--state %s --rebase`", pd->log, pd->seq, p->o->dir);
		fix_rebase(p);
		return CUT_FAILED;
	}
	const fmt_cheader *ch = fmt_creader_header(cr);
	bool id_ok = memcmp(fmt_creader_id(cr), pd->log_id, FMT_ID_LEN) == 0;
	bool old_ok = ch->has_old == pd->has_old && (!ch->has_old || memcmp(ch->old_id, pd->old_id, FMT_ID_LEN) == 0);
	fmt_creader_close(cr);
	/* A log made on a rebase starts from the rebase manifest; any other from
	 * the base target-state names. */
	bool chain_ok = strcmp(pd->kind, "rebase") == 0 ||
			(p->have_ts ? pd->has_old && memcmp(pd->old_id, p->ts.base_id, FMT_ID_LEN) == 0
				    : !pd->has_old);
	if (!id_ok || !old_ok || !chain_ok) {
		CUT_ERR("%s: the interrupted pass %u does not follow from the state the target is "
			"recorded in (%s): it will not be replayed; run `cutover sync --state %s --rebase`",
			p->o->dir, pd->seq, !id_ok ? "its log was replaced" : "manifest ids differ",
			p->o->dir);
		fix_rebase(p);
		return CUT_FAILED;
	}
	CUT_INFO("sync: resuming the interrupted replay of pass %u (%s)", pd->seq, pd->log);
	/* The resumed pass gets its own history line (kind resume); h is then
	 * the new pass's. */
	sync_hist rh = {.seq = pd->seq, .start = cut_now_ns()};
	snprintf(rh.kind, sizeof rh.kind, "resume");
	rp_stats st;
	int64_t t;
	p->prog.p.seq = pd->seq;
	int rc = replay(p, pd->log, &st, &t);
	rh.replay_s = cut_secs(t);
	add_replay_stats(&rh, &st);
	if (rc != CUT_OK && rc != CUT_INCOMPLETE) {
		CUT_ERR("sync: the interrupted replay of pass %u stopped again (exit %d): %s", pd->seq,
			sync_exit_of(p->o->exit_code, rc), replay_advice(rc));
		add_replay_stats(h, &st);
		h->replay_s = rh.replay_s;
		h->seq = pd->seq;
		snprintf(h->kind, sizeof h->kind, "resume");
		return rc;
	}
	char kind[16];
	snprintf(kind, sizeof kind, "%s", pd->kind[0] ? pd->kind : "resume");
	char manifest[64];
	snprintf(manifest, sizeof manifest, "%s", pd->manifest);
	char log[64];
	snprintf(log, sizeof log, "%s", pd->log);
	rc = commit(p, pd->seq, manifest, log, &st, kind) < 0 ? CUT_FAILED : CUT_OK;
	rh.end = cut_now_ns();
	rh.exit = sync_exit_of(p->o->exit_code, rc);
	snprintf(rh.verdict, sizeof rh.verdict, "-");
	sync_hist_append(p->o->dir, &rh);
	return rc;
}

/* Sorts ps and keeps each subtree once, dropping those inside another. */
static void subtrees_compact(pathset *ps)
{
	ps_sort_unique(ps);
	size_t o = 0;
	for (size_t i = 0; i < ps->n; i++) {
		if (o && (ps->v[o - 1][0] == 0 ||
			  fmt_path_is_under(ps->v[i], strlen(ps->v[i]), ps->v[o - 1], strlen(ps->v[o - 1])))) {
			free(ps->v[i]);
			continue;
		}
		ps->v[o++] = ps->v[i];
	}
	ps->n = o;
}

/* The changed subtrees of a log: the first depth components of each path
 * (and of each rename/link destination), less for shallower paths.  The
 * list is compacted every SUBTREES_BATCH paths, and once it holds more than
 * FINAL_MAX_SUBTREES (the caller then verifies the whole tree) no more are
 * taken: memory stays small whatever the log's length. */
#define SUBTREES_BATCH 1024
static int changed_subtrees(const char *log, unsigned depth, pathset *ps)
{
	fmt_creader *cr = fmt_creader_open(log);
	if (!cr)
		return -1;
	fmt_change c;
	int r = 0;
	bool full = false;
	while (!full && (r = fmt_creader_next(cr, &c)) > 0) {
		for (int k = 0; k < 2 && !full; k++) {
			const char *p = k ? c.to : c.e.path;
			size_t n = k ? c.to_len : c.e.path_len;
			if (!p)
				continue;
			size_t comps = depth_of(p, n), keep = comps > depth ? depth : comps ? comps - 1 : 0;
			size_t l = 0, seen = 0;
			if (keep)
				for (l = 0; l < n; l++)
					if (p[l] == '/' && ++seen == keep)
						break;
			ps_add(ps, p, keep ? l : 0);
			if (ps->n >= SUBTREES_BATCH) {
				subtrees_compact(ps);
				full = ps->n > FINAL_MAX_SUBTREES;
			}
		}
	}
	fmt_creader_close(cr);
	if (r < 0)
		return -1;
	subtrees_compact(ps);
	return 0;
}

/* The subtrees a final pass's verification found different, in the order
 * found, and which of them have their two scans kept for the repair. */
typedef struct differ_set {
	const char *dir;
	pathset paths;
	bool kept[FINAL_MAX_SUBTREES + 1];
} differ_set;

static char *kept_scan(const char *dir, size_t i, bool target)
{
	char rel[64];
	snprintf(rel, sizeof rel, "heal-kept-%zu-%s.cmf", i, target ? "target" : "source");
	return sync_path(dir, rel);
}

static void note_differ(void *arg, const char *subtree, const char *ma, const char *mb)
{
	differ_set *d = arg;
	size_t i = d->paths.n;
	ps_add(&d->paths, subtree, strlen(subtree));
	if (!ma || !mb || i > FINAL_MAX_SUBTREES)
		return;
	char *ks = kept_scan(d->dir, i, false), *kt = kept_scan(d->dir, i, true);
	d->kept[i] = rename(ma, ks) == 0 && rename(mb, kt) == 0;
	free(ks);
	free(kt);
}

/* Removes the kept scans no repair took (and half of a pair kept). */
static void kept_scans_remove(differ_set *d)
{
	for (size_t i = 0; i < d->paths.n && i <= FINAL_MAX_SUBTREES; i++) {
		char *ks = kept_scan(d->dir, i, false), *kt = kept_scan(d->dir, i, true);
		unlink(ks);
		unlink(kt);
		free(ks);
		free(kt);
	}
}

/* A subtree is repaired from the nearest directory, itself or an ancestor,
 * that is a directory on both sides (one missing on a side is made or
 * removed by the repair of its parent). */
static void heal_roots(const pass *p, pathset *ps)
{
	for (size_t i = 0; i < ps->n; i++) {
		char *v = ps->v[i];
		while (*v) {
			struct stat a, b;
			char *sa = sync_path(p->cfg.source, v), *ta = sync_path(p->cfg.target, v);
			bool dirs = lstat(sa, &a) == 0 && lstat(ta, &b) == 0 && S_ISDIR(a.st_mode) &&
				    S_ISDIR(b.st_mode);
			free(sa);
			free(ta);
			if (dirs)
				break;
			char *slash = strrchr(v, '/');
			*(slash ? slash : v) = 0;
		}
	}
	subtrees_compact(ps);
}

/* The repairs changed the target after the pass's commit: target-state's
 * base gets what they left (base.c), so that the next pass's log starts
 * from it.  0 or -1. */
static int record_repairs(pass *p, char **logs, char **prefixes, size_t n)
{
	const char **l = cut_calloc(n + 1, sizeof *l), **pre = cut_calloc(n + 1, sizeof *pre);
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		if (access(logs[i], F_OK) == 0) {
			l[k] = logs[i];
			pre[k++] = prefixes[i];
		}
	sync_tstate t = p->ts;
	t.time = (int64_t)time(NULL);
	sync_rel_manifest(t.base, t.seq, ".repaired");
	char *in = sync_path(p->o->dir, p->ts.base), *out = sync_path(p->o->dir, t.base);
	uint64_t patched = 0;
	int rc = -1;
	if (sync_base_patch_logs(in, l, pre, k, p->cfg.target, out, p->o->dir, &patched) == 0 &&
	    manifest_id(out, t.base_id) == 0 && sync_tstate_write(p->o->dir, &t) == 0) {
		p->ts = t;
		rc = 0;
	}
	free(in);
	free(out);
	free(l);
	free(pre);
	return rc;
}

/* Repairs the subtrees of d (sync_heal; ps gets the roots repaired: d's,
 * or ancestors of those missing on a side) and records what the target then
 * holds.  Until that is recorded the marks say the target is in
 * doubt, and they stay so when a difference is left that the source does
 * not explain: the next pass then scans the whole target.  OK with *outcome
 * the worst of the subtrees', or the outcome that stopped a repair. */
static int final_heal(pass *p, differ_set *d, pathset *ps, sync_hist *h, uint64_t *ops,
		      uint64_t *entries, int *outcome)
{
	for (size_t i = 0; i < d->paths.n; i++)
		ps_add(ps, d->paths.v[i], strlen(d->paths.v[i]));
	heal_roots(p, ps);
	char why[160];
	snprintf(why, sizeof why, "the final pass %u found differences it had not repaired", h->seq);
	if (marks_doubt(p->o->dir, why) < 0)
		return CUT_FAILED;
	sync_heal_opts ho = {.source = p->cfg.source, .target = p->cfg.target, .workdir = p->o->dir,
			     .jobs = p->o->jobs, .fsync = p->o->fsync, .out = stderr};
	sync_policy_of(&p->cfg, &ho.pol, p->threads);
	/* Switched subtrees are the new side's: never repaired from the source. */
	ho.pol.excludes = (const char *const *)p->excludes.v;
	ho.pol.nexcludes = p->excludes.n;
	char **logs = cut_calloc(ps->n + 1, sizeof *logs);
	size_t n = 0;
	int rc = CUT_OK;
	*outcome = SYNC_HEALED;
	for (; n < ps->n && rc == CUT_OK; n++) {
		char name[64];
		snprintf(name, sizeof name, "heal-%zu.ccl", n);
		logs[n] = sync_path(p->o->dir, name);
		/* The verification's scans serve the repair of the same subtree. */
		char *ks = NULL, *kt = NULL;
		for (size_t j = 0; j < d->paths.n && j <= FINAL_MAX_SUBTREES && !ks; j++)
			if (d->kept[j] && strcmp(d->paths.v[j], ps->v[n]) == 0) {
				ks = kept_scan(d->dir, j, false);
				kt = kept_scan(d->dir, j, true);
				d->kept[j] = false;
			}
		sync_heal_result hr;
		rc = sync_heal(&ho, ps->v[n], ks, kt, logs[n], &hr);
		free(ks);
		free(kt);
		add_replay_stats(h, &hr.st);
		*ops += hr.st.done;
		*entries += hr.entries;
		if (rc == CUT_OK && (int)hr.outcome > *outcome)
			*outcome = (int)hr.outcome;
		else if (rc != CUT_OK && hr.replayed)
			CUT_ERR("sync --final: the repair of %s stopped (exit %d): %s",
				ps->v[n][0] ? ps->v[n] : "the target", sync_exit_of(p->o->exit_code, rc),
				replay_advice(rc));
	}
	if (record_repairs(p, logs, ps->v, n) < 0)
		rc = CUT_FAILED;
	else if (rc == CUT_OK && *outcome != SYNC_HEAL_STILL_DIFFERS) {
		char *bp = sync_path(p->o->dir, p->ts.base);
		if (marks_write(p->o->dir, p->cfg.target, bp, NULL) < 0)
			CUT_WARN("sync: the target's marks could not be recorded: the next pass scans the "
				 "target");
		free(bp);
	}
	for (size_t i = 0; i < n; i++) {
		unlink(logs[i]);
		free(logs[i]);
	}
	free(logs);
	return rc;
}

/* The verdict of a final pass on stdout (res->verdict_line); what covers
 * names what was verified, never more.  Returns the pass's outcome. */
static int final_verdict(pass *p, sync_result *res, const char *what, bool one, int r, int heal_rc,
			 int outcome, uint64_t ops, size_t nheal, uint64_t ndiffer, uint64_t entries,
			 double secs)
{
	char *v = res->verdict_line;
	size_t cap = sizeof res->verdict_line;
	const char *d = p->o->dir;
	if (r == 0 || (heal_rc == CUT_OK && outcome == SYNC_HEALED)) {
		int l = snprintf(v, cap, "PARITY: %s match%s the source (%llu entries scanned on both "
				 "sides in %.1fs)", what, one ? "es" : "", (unsigned long long)entries, secs);
		if (r > 0 && nheal)
			snprintf(v + l, cap - (size_t)l, ", after repairing %zu subtree%s that differed (%llu "
				 "operations)", nheal, nheal == 1 ? "" : "s", (unsigned long long)ops);
		else if (r > 0)
			snprintf(v + l, cap - (size_t)l, ", after repairing what differed (%llu operations)",
				 (unsigned long long)ops);
		return CUT_OK;
	}
	/* Not "the N subtrees differ": only those that did. */
	char where[160];
	if (one)
		snprintf(where, sizeof where, "%s differs", what);
	else
		snprintf(where, sizeof where, "%llu of %s differ", (unsigned long long)ndiffer, what);
	if (heal_rc != CUT_OK) {
		snprintf(v, cap, "DIFFERENCES: %s from the source and the repair stopped (exit %d, on "
			 "stderr); do not switch: fix what stderr names, then run `cutover sync --state %s "
			 "--final` again", where, sync_exit_of(p->o->exit_code, heal_rc), d);
		fix(p, "fix what the messages above name, then run `cutover sync --state %s --final` "
		       "again", d);
		return heal_rc;
	}
	if (outcome == SYNC_HEAL_SOURCE_CHANGING) {
		snprintf(v, cap, "DIFFERENCES: %s from the source and the source is still changing: "
			 "paths changed again while they were repaired (listed on stderr); do not "
			 "switch: stop every service that writes to %s, then run `cutover sync --state %s "
			 "--final` again", where, p->cfg.source, d);
		fix(p, "stop every service that writes to %s, then run `cutover sync --state %s "
		       "--final` again", p->cfg.source, d);
		return CUT_INCOMPLETE;
	}
	snprintf(v, cap, "DIFFERENCES: %s from the source, still after a repair (listed on stderr); "
		 "do not switch: run `cutover sync --state %s --rebase`, then `cutover sync --state %s "
		 "--final`", where, d, d);
	fix(p, "run `cutover sync --state %s --rebase`, then `cutover sync --state %s --final`", d, d);
	return CUT_DIFFER;
}

/* The end of a final pass: verifies the changed subtrees (or the whole
 * target), repairs those that differ, and says what it covered. */
static int final_verify(pass *p, const char *log_rel, sync_result *res, sync_hist *h)
{
	int64_t t0 = cut_mono_ns();
	pathset ps = {0}, roots = {0};
	differ_set differ = {.dir = p->o->dir};
	sync_scan_watch watch = {.fn = verify_moved, .arg = &p->prog};
	char *lp = sync_path(p->o->dir, log_rel);
	int r = changed_subtrees(lp, p->o->verify_depth ? p->o->verify_depth : 2, &ps);
	free(lp);
	if (r < 0)
		return CUT_FAILED;
	sync_verify_opts vo = {.source = p->cfg.source, .target = p->cfg.target, .workdir = p->o->dir,
			       .out = stderr, .only_differences = true, .examples = 10,
			       .subtrees = (const char *const *)ps.v, .nsubtrees = ps.n,
			       .on_differ = note_differ, .arg = &differ, .watch = &watch};
	sync_policy_of(&p->cfg, &vo.pol, p->threads);
	vo.pol.excludes = (const char *const *)p->excludes.v;
	vo.pol.nexcludes = p->excludes.n;
	/* Nothing changed, or so many subtrees that one scan of each whole tree
	 * costs less than a pair of scans per subtree: verify everything. */
	if (ps.n == 0 || ps.n > FINAL_MAX_SUBTREES)
		vo.subtrees = NULL;
	bool whole = vo.subtrees == NULL || (ps.n == 1 && ps.v[0][0] == 0);
	if (!vo.subtrees) /* both trees, each about the source's last count */
		sync_progress_count(&p->prog, 0, 2 * last_entries(p->o->dir), 0, 0);
	char what[96];
	if (whole)
		snprintf(what, sizeof what, "the whole target");
	else
		snprintf(what, sizeof what, "the %zu changed subtree%s of the target", ps.n,
			 ps.n == 1 ? "" : "s");
	uint64_t entries = 0, ndiffer = 0, ops = 0;
	r = sync_verify(&vo, &entries, &ndiffer);
	int heal_rc = CUT_OK, outcome = SYNC_HEALED;
	if (r > 0) {
		CUT_WARN("sync --final: %s differ%s from the source (above): repairing %s from the "
			 "source", whole ? "the target" : "changed subtrees of the target",
			 whole ? "s" : "", differ.paths.n == 1 && !differ.paths.v[0][0] ? "it" : "them");
		heal_rc = final_heal(p, &differ, &roots, h, &ops, &entries, &outcome);
	}
	kept_scans_remove(&differ);
	h->check_s = secs_since(t0);
	int rc = r < 0 ? CUT_FAILED
		       : final_verdict(p, res, what, whole || ps.n == 1, r, heal_rc,
				       outcome, ops, roots.n == 1 && !roots.v[0][0] ? 0 : roots.n, ndiffer,
				       entries, h->check_s);
	snprintf(h->verdict, sizeof h->verdict, "%s",
		 rc == CUT_OK ? "parity" : r < 0 ? "error" : "differ");
	ps_free(&ps);
	ps_free(&roots);
	ps_free(&differ.paths);
	return rc;
}

/* A rebase's base holds no switched subtree (the target's scan left them
 * out): they get what the recorded base says the source held there, so the
 * diff's operations inside them are the source's changes since.  0 or -1. */
static int graft_switched(pass *p, const char *path)
{
	cut_buf tmp = {0};
	cut_buf_printf(&tmp, "%s.grafted", path);
	cut_buf_putc(&tmp, 0);
	char *from = sync_path(p->o->dir, p->ts.base);
	int r = sync_switched_graft(&p->sw, path, from, (const char *)tmp.p);
	free(from);
	if (r == 0 && rename((const char *)tmp.p, path) < 0) {
		CUT_SYSERR("%s: cannot replace it", path);
		r = -1;
	}
	cut_buf_free(&tmp);
	return r;
}

/* A pass that did its work but knows of late writes says so, every time,
 * until they are acknowledged. */
static int late_verdict(const pass *p)
{
	uint64_t n = sync_late_count(p->o->dir);
	if (!n)
		return CUT_OK;
	CUT_ERR("sync: %llu late write%s (%llu in this pass) in switched subtrees: the source changed "
		"there after their users moved to the new side (mail delivered to the old store?); "
		"nothing was replayed over the new side.  The paths are in %s/late-writes; recover "
		"those messages into the new side (docs/RUNBOOK.md, \"Late writes\"), then run "
		"`cutover switch --state %s --ack-late-writes`", (unsigned long long)n, n == 1 ? "" : "s",
		(unsigned long long)p->late, p->o->dir, p->o->dir);
	return CUT_LATE;
}

/* A final pass (but --force) needs a target synced, and recently: with the
 * services stopped it must be short.  Returns CUT_OK, or the outcome
 * (logged, with its fix). */
static int final_guard(pass *p)
{
	const sync_opts *o = p->o;
	if (!p->have_ts) {
		CUT_ERR("sync --final: the target has never been synced from %s: run the initial "
			"copy (`cutover sync`) with the services running first (or --force)", o->dir);
		fix(p, "run `cutover sync --state %s` with the services running, then the final "
		       "pass", o->dir);
		return CUT_FAILED;
	}
	int64_t age = (int64_t)time(NULL) - p->ts.time;
	if (age > o->max_age_s) {
		CUT_ERR("sync --final: the last sync finished %lldh%02lldm ago (more than "
			"--max-age %llds): the final pass could be long and the services are "
			"stopped; start them again, run `cutover sync` first, then the final "
			"pass (or --force)", (long long)(age / 3600), (long long)(age % 3600 / 60),
			(long long)o->max_age_s);
		fix(p, "start the services, run `cutover sync --state %s`, stop them, then run "
		       "`cutover sync --state %s --final` (or add --force to run it now)", o->dir,
		    o->dir);
		return CUT_FAILED;
	}
	return CUT_OK;
}

/* The check phase: a rebase drops an interrupted replay; otherwise that
 * replay is resumed, or the target's chain checked, or a target never
 * synced must be empty.  Returns CUT_OK to go on, or the outcome
 * (logged). */
static int pass_check(pass *p, sync_hist *h)
{
	const sync_opts *o = p->o;
	int rc;
	if (p->have_pd && o->rebase) {
		CUT_WARN("sync --rebase: abandoning the interrupted replay of pass %u", p->pd.seq);
		char *jp = sync_path(o->dir, "journal");
		unlink(jp);
		free(jp);
		if (sync_pending_remove(o->dir) < 0)
			return CUT_FAILED;
		p->have_pd = false;
	}
	sync_progress_phase(&p->prog, 0, "check", 0);
	if (p->have_pd) {
		rc = resume(p, h);
		if (rc != CUT_OK)
			return rc;
		if (!o->final && !o->rebase)
			snprintf(h->kind, sizeof h->kind, "nightly");
	} else if (p->have_ts && !o->rebase) {
		rc = chain_check(p, h);
		if (rc != CUT_OK)
			return rc;
	} else if (!p->have_ts && !o->rebase) {
		int e = dir_empty(p->cfg.target);
		if (e < 0)
			return CUT_FAILED;
		if (e == 0) {
			CUT_ERR("sync: the target %s is not empty and was never synced from %s: cutover "
				"will not guess what it holds; to adopt it (e.g. a copy made by rsync), run "
				"`cutover sync --state %s --rebase`, which scans it and copies only what "
				"differs", p->cfg.target, o->dir, o->dir);
			fix_rebase(p);
			return CUT_FAILED;
		}
	}
	return CUT_OK;
}

/* Scans the source into the manifest mp, incremental on the state
 * directory's manifest prev (or NULL).  Returns CUT_OK, or the outcome
 * (logged; a scan with unreadable paths leaves no manifest). */
static int source_scan(pass *p, sync_hist *h, unsigned seq, const char *mp, const char *prev)
{
	const sync_opts *o = p->o;
	char *pp = NULL;
	scan_opts so;
	sync_scan_opts_of(&p->cfg, &so, p->threads);
	so.root = p->cfg.source;
	so.out = mp;
	so.full = o->full || (o->final && !o->attr_cache_expired);
	if (prev) {
		pp = sync_path(o->dir, prev);
		so.prev = pp;
	}
	so.progress = scan_moved;
	so.progress_arg = &p->prog;
	sync_progress_phase(&p->prog, seq, "scan", last_entries(o->dir));
	scan_stats sst;
	uint8_t mid[FMT_ID_LEN];
	int64_t t0 = cut_mono_ns();
	int r = scan_run(&so, &sst, mid);
	h->scan_s = secs_since(t0);
	h->entries = sst.entries;
	h->retried += sst.retried;
	free(pp);
	if (r == 0)
		return CUT_OK;
	if (r > 0) {
		CUT_ERR("sync: %llu paths of the source could not be read (listed above): nothing "
			"was replayed (they would be deleted on the target); fix their permissions "
			"and run sync again", (unsigned long long)sst.errors);
		fmt_manifest_unlink(mp);
	}
	return r > 0 ? CUT_INCOMPLETE : CUT_FAILED;
}

/* A rebase's base: the target as it is, scanned and matched to the source's
 * manifest mp, written to brel (left "" when the target does not exist).
 * Returns CUT_OK, or CUT_FAILED (logged). */
static int rebase_base(pass *p, sync_hist *h, unsigned seq, const char *mp, char brel[64])
{
	const sync_opts *o = p->o;
	struct stat st;
	if (stat(p->cfg.target, &st) != 0)
		return CUT_OK;
	char trel[64];
	sync_rel_manifest(trel, seq, ".target");
	sync_rel_manifest(brel, seq, ".base");
	char *tp = sync_path(o->dir, trel), *bp = sync_path(o->dir, brel);
	scan_opts to;
	target_scan_opts(p, &to, tp);
	to.progress = scan_moved;
	to.progress_arg = &p->prog;
	sync_progress_phase(&p->prog, seq, "check", 0);
	scan_stats tst;
	uint8_t tid[FMT_ID_LEN];
	int64_t t0 = cut_mono_ns();
	int r = scan_run(&to, &tst, tid);
	uint64_t matched = 0;
	if (r == 0)
		r = sync_base_rebase(tp, mp, bp, o->dir, &matched);
	if (r == 0 && p->sw.n && p->have_ts)
		r = graft_switched(p, bp);
	else if (r > 0)
		CUT_ERR("sync --rebase: %llu paths of the target could not be read (listed "
			"above)", (unsigned long long)tst.errors);
	h->check_s = secs_since(t0);
	unlink(tp);
	free(tp);
	free(bp);
	if (r != 0)
		return CUT_FAILED;
	CUT_INFO("sync --rebase: %llu of %llu target entries already match the source",
		 (unsigned long long)matched, (unsigned long long)tst.entries);
	return CUT_OK;
}

/* Diffs the base brel ("" for none) against the manifest mp into the log
 * lp, and drops the switched subtrees' operations.  Returns CUT_OK,
 * or CUT_FAILED (logged). */
static int pass_diff(pass *p, sync_hist *h, unsigned seq, const char *brel, const char *mp,
		     const char *lp)
{
	const sync_opts *o = p->o;
	char *bp = brel[0] ? sync_path(o->dir, brel) : NULL;
	diff_opts dopt = {.old_path = bp, .new_path = mp, .out_path = lp, .tmpdir = o->dir,
			  .progress = diff_moved, .progress_arg = &p->prog};
	diff_stats dst;
	sync_progress_phase(&p->prog, seq, "diff", 0);
	int64_t t0 = cut_mono_ns();
	int r = diff_run(&dopt, &dst);
	if (r == 0 && p->sw.n)
		r = sync_switched_filter(o->dir, &p->sw, lp, seq, &p->late);
	h->diff_s = secs_since(t0);
	free(bp);
	return r < 0 ? CUT_FAILED : CUT_OK;
}

/* Records the pass as pending (DIR/pending, and p->pd) before the target is
 * touched, so that an interrupted replay is resumed.  Returns 0, or -1
 * (logged). */
static int pass_record(pass *p, sync_hist *h, unsigned seq, const char *mrel, const char *lrel,
		       const char *brel, const char *lp)
{
	sync_pending pd = {.seq = seq};
	snprintf(pd.log, sizeof pd.log, "%s", lrel);
	snprintf(pd.manifest, sizeof pd.manifest, "%s", mrel);
	snprintf(pd.base, sizeof pd.base, "%s", brel);
	snprintf(pd.kind, sizeof pd.kind, "%s", h->kind);
	fmt_creader *cr = fmt_creader_open(lp);
	if (!cr)
		return -1;
	memcpy(pd.log_id, fmt_creader_id(cr), FMT_ID_LEN);
	pd.has_old = fmt_creader_header(cr)->has_old;
	memcpy(pd.old_id, fmt_creader_header(cr)->old_id, FMT_ID_LEN);
	fmt_creader_close(cr);
	if (sync_pending_write(p->o->dir, &pd) < 0)
		return -1;
	p->pd = pd;
	p->have_pd = true;
	return 0;
}

/* Replays the recorded pass's log lrel, commits the manifest mrel, and, in
 * a final pass, verifies the target.  Returns the pass's outcome (logged). */
static int pass_replay(pass *p, sync_hist *h, unsigned seq, const char *mrel, const char *lrel)
{
	rp_stats rst;
	int64_t rt;
	int rc = replay(p, lrel, &rst, &rt);
	h->replay_s += cut_secs(rt);
	add_replay_stats(h, &rst);
	if (rc != CUT_OK && rc != CUT_INCOMPLETE) {
		CUT_ERR("sync: the replay of pass %u stopped (exit %d): %s", seq,
			sync_exit_of(p->o->exit_code, rc), replay_advice(rc));
		return rc;
	}
	int irc = rc;
	sync_progress_phase(&p->prog, seq, "commit", 0);
	if (commit(p, seq, mrel, lrel, &rst, h->kind) < 0)
		return CUT_FAILED;
	/* Drift and vanished sources are reconciled by the next pass; only
	 * what was skipped for another reason is worth a non-zero exit. */
	rc = (irc == CUT_INCOMPLETE && (rst.skipped || rst.conflicts_skipped)) ? CUT_INCOMPLETE
										    : CUT_OK;
	if (p->o->final) {
		sync_progress_phase(&p->prog, seq, "verify", 0);
		int v = final_verify(p, lrel, p->res, h);
		if (v != CUT_OK)
			rc = v;
	}
	return rc;
}

static int pass_body(pass *p, sync_hist *h)
{
	const sync_opts *o = p->o;
	int rc;

	if (o->final && !o->force) {
		rc = final_guard(p);
		if (rc != CUT_OK)
			return rc;
	}
	rc = pass_check(p, h);
	if (rc != CUT_OK)
		return rc;

	/* This pass's number, manifest and log. */
	char prev[64] = "";
	unsigned last = sync_last_manifest(o->dir, prev);
	unsigned seq = last;
	if (p->have_ts && p->ts.seq > seq)
		seq = p->ts.seq;
	seq++;
	h->seq = seq;
	char mrel[64], lrel[64], brel[64] = "";
	sync_rel_manifest(mrel, seq, NULL);
	sync_rel_log(lrel, seq);
	char *mp = sync_path(o->dir, mrel), *lp = sync_path(o->dir, lrel);

	rc = source_scan(p, h, seq, mp, last ? prev : NULL);
	if (rc != CUT_OK)
		goto out;
	/* The base of the diff. */
	if (o->rebase) {
		rc = rebase_base(p, h, seq, mp, brel);
		if (rc != CUT_OK)
			goto out;
	} else if (p->have_ts) {
		snprintf(brel, sizeof brel, "%s", p->ts.base);
	}
	rc = pass_diff(p, h, seq, brel, mp, lp);
	if (rc != CUT_OK)
		goto out;
	if (pass_record(p, h, seq, mrel, lrel, brel, lp) < 0) {
		rc = CUT_FAILED;
		goto out;
	}
	rc = pass_replay(p, h, seq, mrel, lrel);
out:
	free(mp);
	free(lp);
	return rc;
}

/* Reads DIR/config into p->cfg and sets the source's limits.  CUT_OK, or
 * CUT_FAILED (logged, with its fix). */
static int pass_config(pass *p)
{
	const sync_opts *o = p->o;
	if (sync_config_read(o->dir, &p->cfg) < 0) {
		char *cp = sync_path(o->dir, "config");
		if (access(cp, F_OK) == 0)
			fix(p, "correct the line of %s named above, or write it again with `cutover init "
			       "--force --source SRC --target DST --state %s`", cp, o->dir);
		else
			fix(p, "create the state directory with `cutover init --source SRC --target DST "
			       "--state %s` (add --maildir for a mail store)", o->dir);
		free(cp);
		return CUT_FAILED;
	}
	/* target checks share it: they go slower, the source sees no more */
	budget_source_set(o->has_max_ops ? o->max_ops : p->cfg.max_ops,
			  o->has_bwlimit ? o->bwlimit : p->cfg.bwlimit,
			  o->has_adaptive ? o->adaptive : p->cfg.adaptive,
			  o->has_max_latency ? o->max_latency_ns : p->cfg.max_latency_ns);
	return CUT_OK;
}

/* Whether --source and --target, when given, are the pair of DIR.  CUT_OK,
 * or CUT_INVALID (logged, with its fix). */
static int pair_check(pass *p)
{
	const sync_opts *o = p->o;
	for (int k = 0; k < 2; k++) {
		const char *given = k ? o->target : o->source;
		const char *have = k ? p->cfg.target : p->cfg.source;
		if (!given)
			continue;
		char *a = abs_path(given);
		bool same = a && strcmp(a, have) == 0;
		free(a);
		if (!same) {
			CUT_ERR("%s: this state directory is for %s -> %s; --%s %s does not match (use "
				"another --state, or `cutover init --force` to change the pair)",
				o->dir, p->cfg.source, p->cfg.target, k ? "target" : "source", given);
			fix(p, "run with the --state of that pair, or leave out --source and --target");
			return CUT_INVALID;
		}
	}
	return CUT_OK;
}

/* Under the lock: reads the target's state, the interrupted pass and the
 * switched subtrees.  CUT_OK, or CUT_FAILED (logged). */
static int pass_state(pass *p)
{
	const char *dir = p->o->dir;
	int r = sync_tstate_read(dir, &p->ts);
	int r2 = r < 0 ? -1 : sync_pending_read(dir, &p->pd);
	if (r < 0 || r2 < 0 || sync_dirs_create(dir) < 0)
		return CUT_FAILED;
	p->have_ts = r > 0;
	p->have_pd = r2 > 0;
	if ((p->have_ts && sync_switched_settle(dir, &p->cfg, &p->ts) < 0) ||
	    sync_switched_read(dir, &p->sw) < 0)
		return CUT_FAILED;
	sync_switched_excludes(&p->sw, &p->cfg, &p->excludes);
	return CUT_OK;
}

/* The pass proper, under the lock: its kind, its work, the late writes,
 * the rotation of old manifests and logs. */
static int pass_locked(pass *p, sync_hist *h)
{
	const sync_opts *o = p->o;
	snprintf(h->kind, sizeof h->kind, "%s",
		 o->rebase ? "rebase" : o->final ? "final" : !p->have_ts ? "initial" : "nightly");
	p->prog.show = o->progress;
	p->prog.show_arg = o->progress_arg;
	sync_progress_start(&p->prog, o->dir, h->kind);
	int rc = pass_body(p, h);
	if (rc == CUT_OK)
		rc = late_verdict(p);
	unsigned keep = o->keep ? o->keep : p->cfg.keep;
	if (h->seq)
		sync_rotate(o->dir, keep, h->seq, p->have_ts ? &p->ts : NULL, p->have_pd ? &p->pd : NULL);
	return rc;
}

/* Ends h and, for a pass that ran under the lock, appends it to the
 * history.  The pass's outcome: rc, or CUT_FAILED when an otherwise
 * successful pass cannot be recorded. */
static int pass_history(pass *p, sync_hist *h, bool locked, int rc)
{
	const sync_opts *o = p->o;
	h->end = cut_now_ns();
	h->exit = sync_exit_of(o->exit_code, rc);
	sync_hist_src(h);
	if (locked && h->seq) {
		if (!h->verdict[0])
			snprintf(h->verdict, sizeof h->verdict, "-");
		if (sync_hist_record(o->dir, h) < 0 && rc == CUT_OK) {
			fix(p, "free space on the disk of %s; the next pass records itself", o->dir);
			rc = CUT_FAILED;
		}
	}
	return rc;
}

/* The pass's one-line summary into res->message. */
static void pass_message(const pass *p, const sync_hist *h, int rc)
{
	char b[32], tid[17] = "-", src[160];
	if (p->have_ts)
		id16(tid, p->ts.manifest_id);
	sync_hist_src_line(h, src, sizeof src);
	snprintf(p->res->message, sizeof p->res->message,
		 "sync %s pass %u %s (exit %d): %" PRIu64 " ops, %" PRIu64 " created, %" PRIu64
		 " updated, %" PRIu64 " renamed, %" PRIu64 " deleted, %s copied; scan %.1fs diff %.1fs "
		 "replay %.1fs check %.1fs; drift %" PRIu64 ", vanished %" PRIu64 ", conflicts %" PRIu64
		 "; source %s; target at manifest %s%s%s",
		 h->kind[0] ? h->kind : "-", h->seq, rc == CUT_OK ? "ok" : "FAILED",
		 sync_exit_of(p->o->exit_code, rc), h->ops, h->created,
		 h->updated, h->renamed, h->deleted, cut_bytes_human(b, h->bytes), h->scan_s, h->diff_s,
		 h->replay_s, h->check_s, h->drifted, h->vanished, h->conflicts, src, tid,
		 h->verdict[0] && strcmp(h->verdict, "-") ? "; verdict " : "",
		 h->verdict[0] && strcmp(h->verdict, "-") ? h->verdict : "");
}

int sync_run(const sync_opts *o, sync_result *res)
{
	memset(res, 0, sizeof *res);
	sync_hist *h = &res->h;
	h->start = cut_now_ns();
	pass p = {.o = o, .res = res, .threads = o->scan_threads};
	bool locked = false;
	sync_lock lk = {.fd = -1};
	if (pass_config(&p) != CUT_OK)
		return CUT_FAILED;
	int rc = pair_check(&p);
	if (rc == CUT_OK) {
		sync_lock_holder holder;
		rc = sync_lock_take(o->dir, &lk, &holder);
		locked = rc == CUT_OK;
	}
	if (rc == CUT_OK)
		rc = pass_state(&p);
	if (rc == CUT_OK)
		rc = pass_locked(&p, h);
	rc = pass_history(&p, h, locked, rc);
	pass_message(&p, h, rc);
	sync_progress_end(&p.prog);
	if (locked)
		sync_lock_release(&lk);
	sync_switched_free(&p.sw);
	sync_globs_free(&p.excludes);
	sync_config_free(&p.cfg);
	return rc;
}
