/*
 * progress.c - DIR/progress: what the running pass is doing, for `status`
 * from any terminal and for `sync`'s own line on a TTY (docs/SYNC.md, §1 and
 * §8).
 *
 * The pass (sync.c, switch.c) calls sync_progress_phase at each phase
 * boundary and sync_progress_count from the progress callbacks the scanner
 * and replay already make (a few times a second, one thread at a time: the
 * switch's pool counts under its own mutex); the file is rewritten
 * (temp + rename) at most once a second, and when a count reaches its
 * total, so the cost per entry is nil.
 * Each write records the source's recent window too (base/budget.h): the
 * writer keeps the budget's counters of its last writes and takes the view
 * from the oldest of them within SYNC_SRC_WINDOW_NS.
 * A reader tells a live pass from a dead one by the run lock (lock.c), not by
 * the file's age: a pass stopped by SIGSTOP or stuck on NFS is alive.
 */
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sync/sync.h"

#define PROGRESS_WRITE_NS CUT_NS_PER_S /* the file at most once a second */

/* The source's view from the oldest snapshot within the window to now. */
static void src_window(sync_progress_w *w)
{
	budget_snap *now = &w->src[w->nsrc % SYNC_SRC_SNAPS];
	budget_snap_take(&budget_source, now);
	const budget_snap *from = NULL;
	for (unsigned i = w->nsrc > SYNC_SRC_SNAPS - 1 ? w->nsrc - (SYNC_SRC_SNAPS - 1) : 0; i < w->nsrc; i++) {
		const budget_snap *s = &w->src[i % SYNC_SRC_SNAPS];
		if (now->at - s->at <= SYNC_SRC_WINDOW_NS) {
			from = s;
			break;
		}
	}
	w->nsrc++;
	sync_progress *p = &w->p;
	if (!from) /* the first write, or a pass that wrote nothing for long */
		return;
	budget_view v;
	budget_view_of(from, now, &v);
	p->src_ops_s = (uint64_t)(v.ops_s + 0.5);
	p->src_bytes_s = (uint64_t)(v.bytes_s + 0.5);
	p->src_p50_ns = (uint64_t)v.p50_ns;
	p->src_p99_ns = (uint64_t)v.p99_ns;
	p->src_limit = v.limit;
	p->src_held_pm = (uint64_t)(v.held * 1000 + 0.5);
}

bool sync_progress_src(const sync_progress *p, budget_view *v)
{
	memset(v, 0, sizeof *v);
	v->ops_s = (double)p->src_ops_s;
	v->bytes_s = (double)p->src_bytes_s;
	v->p50_ns = (int64_t)p->src_p50_ns;
	v->p99_ns = (int64_t)p->src_p99_ns;
	v->limit = (unsigned)p->src_limit;
	v->held = (double)p->src_held_pm / 1000;
	return p->src_p50_ns > 0;
}

void sync_hist_src(sync_hist *h)
{
	budget_snap now, from = {0};
	budget_snap_take(&budget_source, &now);
	from.at = budget_source.set_ns;
	budget_view v;
	budget_view_of(&from, &now, &v);
	h->src_ops = v.ops;
	h->src_bytes = v.bytes;
	h->src_ops_s = v.ops_s;
	h->src_bytes_s = v.bytes_s;
	h->src_p50_us = (double)v.p50_ns / CUT_NS_PER_US;
	h->src_p99_us = (double)v.p99_ns / CUT_NS_PER_US;
	h->src_held = v.held;
}

void sync_hist_src_line(const sync_hist *h, char *buf, size_t cap)
{
	budget_view v = {.ops_s = h->src_ops_s, .bytes_s = h->src_bytes_s,
			 .p50_ns = (int64_t)(h->src_p50_us * CUT_NS_PER_US), .p99_ns = (int64_t)(h->src_p99_us * CUT_NS_PER_US),
			 .held = h->src_held};
	budget_view_line(&v, buf, cap);
}

static void progress_write(sync_progress_w *w)
{
	if (w->failed)
		return;
	src_window(w);
	w->written = cut_mono_ns();
	w->p.written_ns = cut_now_ns();
	cut_buf b = {0};
	sync_progress_format(&w->p, &b);
	char *path = sync_path(w->dir, "progress"), *tmp = sync_path(w->dir, "progress.tmp");
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	int e = fd < 0 ? -errno : cut_write_all(fd, b.p, b.len);
	if (fd >= 0 && close(fd) < 0 && e == 0)
		e = -errno;
	if (e == 0 && rename(tmp, path) < 0)
		e = -errno;
	if (e < 0) {
		errno = -e;
		CUT_SYSWARN("%s: cannot write the pass's progress (status will not show it)", path);
		unlink(tmp);
		w->failed = true;
	}
	free(path);
	free(tmp);
	cut_buf_free(&b);
}

static void progress_show(sync_progress_w *w)
{
	if (!w->show)
		return;
	sync_running r;
	sync_running_of(&w->p, w->p.written_ns, &r);
	w->show(&r, w->show_arg);
}

void sync_progress_start(sync_progress_w *w, const char *dir, const char *kind)
{
	w->dir = dir;
	w->failed = false;
	w->nsrc = 0;
	memset(&w->p, 0, sizeof w->p);
	w->p.pid = (long)getpid();
	if (gethostname(w->p.host, sizeof w->p.host - 1) < 0)
		strcpy(w->p.host, "localhost");
	snprintf(w->p.kind, sizeof w->p.kind, "%s", kind);
	w->p.start_ns = cut_now_ns();
	sync_progress_phase(w, 0, "start", 0);
}

void sync_progress_phase(sync_progress_w *w, unsigned seq, const char *phase, uint64_t total)
{
	if (!w->dir)
		return;
	if (seq)
		w->p.seq = seq;
	snprintf(w->p.phase, sizeof w->p.phase, "%s", phase);
	w->p.phase_ns = cut_now_ns();
	w->p.done = w->p.bytes = w->p.bytes_total = 0;
	w->p.total = total;
	progress_write(w);
	progress_show(w);
}

void sync_progress_count(sync_progress_w *w, uint64_t done, uint64_t total, uint64_t bytes,
			 uint64_t bytes_total)
{
	if (!w->dir)
		return;
	w->p.done = done;
	w->p.bytes = bytes;
	if (total)
		w->p.total = total;
	if (bytes_total)
		w->p.bytes_total = bytes_total;
	w->p.written_ns = cut_now_ns();
	/* The count that reaches the total is written at once: status may read
	 * it while the pass waits on something else (switch's --after). */
	if (cut_mono_ns() - w->written >= PROGRESS_WRITE_NS || (w->p.total && done == w->p.total))
		progress_write(w);
	progress_show(w);
}

void sync_progress_end(sync_progress_w *w)
{
	if (!w->dir)
		return;
	char *path = sync_path(w->dir, "progress");
	if (unlink(path) < 0 && errno != ENOENT)
		CUT_SYSWARN("%s: cannot remove (status will call the pass dead)", path);
	free(path);
	w->dir = NULL;
}

/* ---- readers ------------------------------------------------------------ */

const char *sync_progress_unit(const char *phase)
{
	return strcmp(phase, "replay") == 0   ? "ops"
	       : strcmp(phase, "switch") == 0 ? "subtrees"
					      : "entries";
}

static int64_t eta_of(uint64_t done, uint64_t total, double rate)
{
	if (!total || done >= total || rate <= 0)
		return -1;
	return (int64_t)((double)(total - done) / rate + 0.5);
}

void sync_running_of(const sync_progress *p, int64_t now_ns, sync_running *r)
{
	memset(r, 0, sizeof *r);
	r->p = *p;
	r->alive = true;
	int64_t ns = now_ns - p->phase_ns;
	r->secs = ns > 0 ? cut_secs(ns) : 0;
	/* The rates are of the counts, so up to the time they were taken. */
	double cs = cut_secs(p->written_ns - p->phase_ns);
	r->rate = cs > 0 ? (double)p->done / cs : 0;
	r->byte_rate = cs > 0 ? (double)p->bytes / cs : 0;
	/* The later of the two estimates: a replay of many small files is
	 * bound by operations, one of a few big ones by bytes. */
	int64_t a = eta_of(p->done, p->total, r->rate), b = eta_of(p->bytes, p->bytes_total, r->byte_rate);
	r->eta_s = a > b ? a : b;
}

int sync_running_read(const char *dir, sync_running *r)
{
	char *path = sync_path(dir, "progress");
	cut_buf b = {0};
	int rc = sync_read_file(path, &b);
	if (rc > 0) {
		sync_progress p;
		const char *err = "";
		if (sync_progress_parse((const char *)b.p, b.len, &p, &err) < 0) {
			CUT_ERR("%s: %s (a pass may be writing a damaged file; it is rewritten every "
				"second, and removed by the next pass)", path, err);
			rc = -1;
		} else {
			sync_lock_holder h;
			int live = sync_lock_probe(dir, &h);
			if (live < 0)
				rc = -1;
			bool alive = live > 0 && h.pid == p.pid && strcmp(h.host, p.host) == 0;
			/* A dead pass's phase lasted until its last record. */
			sync_running_of(&p, alive ? cut_now_ns() : p.written_ns, r);
			r->alive = alive;
			/* The pass may have ended between the two reads: it removes
			 * the file before it releases the lock. */
			if (rc > 0 && !r->alive && access(path, F_OK) < 0)
				rc = 0;
		}
	}
	cut_buf_free(&b);
	free(path);
	return rc;
}

static void put_secs(char *b, size_t cap, int64_t s)
{
	if (s >= 3600)
		snprintf(b, cap, "%" PRId64 "h%02" PRId64 "m", s / 3600, s / 60 % 60);
	else if (s >= 60)
		snprintf(b, cap, "%" PRId64 "m%02" PRId64 "s", s / 60, s % 60);
	else
		snprintf(b, cap, "%" PRId64 "s", s);
}

/* Phases that count entries or operations (scan, diff, replay, verify);
 * the others (check, commit) show their time only. */
static bool counted(const sync_progress *p)
{
	static const char *const phases[] = {"scan", "diff", "replay", "verify", "switch"};
	for (size_t i = 0; i < sizeof phases / sizeof phases[0]; i++)
		if (strcmp(p->phase, phases[i]) == 0)
			return true;
	return p->done > 0;
}

void sync_running_line(const sync_running *r, char *buf, size_t cap)
{
	const sync_progress *p = &r->p;
	char who[32], done[48], bytes[80], t[32], b1[32], b2[32], b3[32], eta[32] = "unknown";
	/* Before its scan a pass has no number yet (it checks the target). */
	if (p->seq)
		snprintf(who, sizeof who, "pass %u", p->seq);
	else
		snprintf(who, sizeof who, "next pass");
	put_secs(t, sizeof t, (int64_t)r->secs);
	if (!counted(p)) {
		snprintf(buf, cap, "%s %s: %s", who, p->phase, t);
		return;
	}
	if (p->total)
		snprintf(done, sizeof done, "%" PRIu64 "/%" PRIu64, p->done, p->total);
	else
		snprintf(done, sizeof done, "%" PRIu64, p->done);
	if (r->eta_s >= 0)
		put_secs(eta, sizeof eta, r->eta_s);
	char src[160] = "";
	budget_view v;
	if (sync_progress_src(p, &v)) {
		memcpy(src, "; source ", 10);
		budget_view_line(&v, src + 9, sizeof src - 9);
	}
	if (!p->bytes && !p->bytes_total) { /* diff and verify move no data */
		snprintf(buf, cap, "%s %s: %s %s in %s; %.0f/s; ETA %s%s", who, p->phase, done,
			 sync_progress_unit(p->phase), t, r->rate, eta, src);
		return;
	}
	snprintf(bytes, sizeof bytes, "%s%s%s", cut_bytes_human(b1, p->bytes), p->bytes_total ? "/" : "",
		 p->bytes_total ? cut_bytes_human(b2, p->bytes_total) : "");
	snprintf(buf, cap, "%s %s: %s %s, %s in %s; %.0f/s, %s/s; ETA %s%s", who, p->phase, done,
		 sync_progress_unit(p->phase), bytes, t, r->rate,
		 cut_bytes_human(b3, (uint64_t)r->byte_rate), eta, src);
}
