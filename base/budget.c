/*
 * budget.c - the source budget: token buckets for the source's operations
 * and bytes (budget.h says why virtual scheduling), the gate on requests in
 * flight, and the windows that feed the gate's controller (adapt.c).
 *
 * Who owns what: b->mu guards the buckets' next slots and the gate (in
 * flight, limit, peak); b->ctl_mu guards the open window (last, ctl) and is
 * only tried, so one thread closes a window while the others go on.  The
 * counters and the histogram are atomics, read without a lock.
 */
#include "base/budget.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/sys.h"
#include "base/util.h"

#define COPY_PIECE BUDGET_READ_SIZE
#define WINDOW_NS 200000000     /* the controller judges 5 windows a second */
#define WINDOW_MAX_NS CUT_NS_PER_S /* or fewer, when requests are few */
#define WINDOW_MIN_REQS 20      /* a median of fewer is noise */

static int64_t real_now(void *arg)
{
	(void)arg;
	return cut_mono_ns();
}

static void real_sleep_until(void *arg, int64_t t)
{
	(void)arg;
	struct timespec ts = cut_ns_ts(t);
	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
		;
}

/* Counting before any limit is set: a command that never sets one (a test)
 * still measures its requests. */
budget budget_source = {.mu = PTHREAD_MUTEX_INITIALIZER,
			.gate_cv = PTHREAD_COND_INITIALIZER,
			.ctl_mu = PTHREAD_MUTEX_INITIALIZER,
			.clock = {real_now, real_sleep_until, NULL},
			.trace_fd = -1};

static void set_limits(budget *b, uint64_t ops_per_s, uint64_t bytes_per_s)
{
	b->op_ns = ops_per_s ? (double)CUT_NS_PER_S / (double)ops_per_s : 0;
	b->byte_ns = bytes_per_s ? (double)CUT_NS_PER_S / (double)bytes_per_s : 0;
	b->next_op = b->next_byte = -1e18; /* idle since ever */
	atomic_store(&b->limited, ops_per_s != 0 || bytes_per_s != 0);
	atomic_store(&b->ops, 0);
	atomic_store(&b->bytes, 0);
	atomic_store(&b->waited_ns, 0);
	atomic_store(&b->reqs, 0);
	atomic_store(&b->held, 0);
	for (unsigned i = 0; i < BUDGET_HIST_BUCKETS; i++)
		atomic_store(&b->lat.n[i], 0);
	b->set_ns = b->clock.now_ns(b->clock.arg);
	memset(&b->last, 0, sizeof b->last);
	b->last.at = b->set_ns;
	atomic_store(&b->window_ns, b->set_ns + WINDOW_NS);
}

void budget_init(budget *b, uint64_t ops_per_s, uint64_t bytes_per_s, const budget_clock *clock)
{
	memset(b, 0, sizeof *b);
	pthread_mutex_init(&b->mu, NULL);
	pthread_mutex_init(&b->ctl_mu, NULL);
	pthread_cond_init(&b->gate_cv, NULL);
	b->trace_fd = -1;
	b->clock = clock ? *clock : (budget_clock){real_now, real_sleep_until, NULL};
	set_limits(b, ops_per_s, bytes_per_s);
}

void budget_destroy(budget *b)
{
	pthread_mutex_destroy(&b->mu);
	pthread_mutex_destroy(&b->ctl_mu);
	pthread_cond_destroy(&b->gate_cv);
}

/* Reserves n units of one bucket; returns when they may go out: the start
 * of their slot, which an idle bucket lets lie up to one burst in the past. */
static double reserve(double *next, double unit_ns, double now, uint64_t n)
{
	if (unit_ns == 0 || n == 0)
		return now;
	double start = *next > now - BUDGET_BURST_NS ? *next : now - BUDGET_BURST_NS;
	*next = start + unit_ns * (double)n;
	return start;
}

/* Counts a charge and waits for its slot; true when it waited. */
static bool take(budget *b, uint64_t ops, uint64_t bytes)
{
	atomic_fetch_add_explicit(&b->ops, ops, memory_order_relaxed);
	atomic_fetch_add_explicit(&b->bytes, bytes, memory_order_relaxed);
	if (!atomic_load_explicit(&b->limited, memory_order_relaxed))
		return false;
	pthread_mutex_lock(&b->mu);
	double now = (double)b->clock.now_ns(b->clock.arg);
	double at = reserve(&b->next_op, b->op_ns, now, ops);
	double at2 = reserve(&b->next_byte, b->byte_ns, now, bytes);
	pthread_mutex_unlock(&b->mu);
	if (at2 > at)
		at = at2;
	if (at <= now)
		return false;
	atomic_fetch_add_explicit(&b->waited_ns, (int64_t)(at - now), memory_order_relaxed);
	b->clock.sleep_until_ns(b->clock.arg, (int64_t)at);
	return true;
}

void budget_take(budget *b, uint64_t ops, uint64_t bytes)
{
	take(b, ops, bytes);
}

void budget_gate_set(budget *b, bool relative, int64_t max_latency_ns)
{
	pthread_mutex_lock(&b->ctl_mu);
	budget_ctl_init(&b->ctl, relative, max_latency_ns);
	pthread_mutex_lock(&b->mu);
	b->limit = b->ctl.limit;
	b->peak = b->inflight;
	pthread_mutex_unlock(&b->mu);
	atomic_store(&b->gated, relative || max_latency_ns > 0);
	pthread_mutex_unlock(&b->ctl_mu);
}

unsigned budget_limit(budget *b)
{
	if (!atomic_load(&b->gated))
		return 0;
	pthread_mutex_lock(&b->mu);
	unsigned l = b->limit;
	pthread_mutex_unlock(&b->mu);
	return l;
}

/* Waits for a slot of the gate; true when it waited. */
static bool gate_enter(budget *b)
{
	bool waited = false;
	pthread_mutex_lock(&b->mu);
	while (b->inflight >= b->limit) {
		waited = true;
		pthread_cond_wait(&b->gate_cv, &b->mu);
	}
	if (++b->inflight > b->peak)
		b->peak = b->inflight;
	pthread_mutex_unlock(&b->mu);
	return waited;
}

static void gate_leave(budget *b)
{
	pthread_mutex_lock(&b->mu);
	b->inflight--;
	pthread_cond_signal(&b->gate_cv);
	pthread_mutex_unlock(&b->mu);
}

budget_req budget_begin(budget *b, uint64_t ops, uint64_t bytes)
{
	budget_req r = {0, false};
	bool waited = (ops || bytes) && take(b, ops, bytes);
	if (atomic_load_explicit(&b->gated, memory_order_relaxed)) {
		waited |= gate_enter(b);
		r.slot = true;
	}
	if (waited)
		atomic_fetch_add_explicit(&b->held, 1, memory_order_relaxed);
	r.t0 = b->clock.now_ns(b->clock.arg);
	return r;
}

void budget_snap_take(budget *b, budget_snap *s)
{
	s->at = b->clock.now_ns(b->clock.arg);
	s->ops = atomic_load_explicit(&b->ops, memory_order_relaxed);
	s->bytes = atomic_load_explicit(&b->bytes, memory_order_relaxed);
	s->reqs = atomic_load_explicit(&b->reqs, memory_order_relaxed);
	s->held = atomic_load_explicit(&b->held, memory_order_relaxed);
	for (unsigned i = 0; i < BUDGET_HIST_BUCKETS; i++)
		s->n[i] = atomic_load_explicit(&b->lat.n[i], memory_order_relaxed);
	s->limit = budget_limit(b);
}

/* One line a window to the trace: what a benchmark plots and a test checks. */
static void trace_window(budget *b, const budget_view *v, unsigned peak)
{
	char line[256];
	int n = snprintf(line, sizeof line,
			 "%.3f limit=%u peak=%u reqs=%" PRIu64 " ops_s=%.0f bytes_s=%.0f p50_us=%.1f "
			 "p99_us=%.1f base_us=%.1f held=%.3f\n",
			 cut_secs(b->last.at - b->set_ns) + v->secs, budget_limit(b), peak, v->reqs,
			 v->ops_s, v->bytes_s, (double)v->p50_ns / CUT_NS_PER_US, (double)v->p99_ns / CUT_NS_PER_US,
			 b->ctl.baseline_ns / CUT_NS_PER_US, v->held);
	/* a diagnostic only: a failed write loses its line, the pass goes on */
	if (n > 0 && write(b->trace_fd, line, (size_t)n) < 0)
		return;
}

/* Closes the open window when it has enough requests or has lasted long
 * enough; the controller moves the gate's limit. */
static void window_close(budget *b, int64_t now)
{
	budget_snap s;
	budget_snap_take(b, &s);
	budget_view v;
	budget_view_of(&b->last, &s, &v);
	if (v.reqs < WINDOW_MIN_REQS && now - b->last.at < WINDOW_MAX_NS) {
		atomic_store(&b->window_ns, now + WINDOW_NS / 4);
		return;
	}
	pthread_mutex_lock(&b->mu);
	unsigned peak = b->peak;
	b->peak = b->inflight;
	pthread_mutex_unlock(&b->mu);
	if (atomic_load(&b->gated)) {
		unsigned l = budget_ctl_window(&b->ctl, v.p50_ns, v.reqs, peak);
		pthread_mutex_lock(&b->mu);
		b->limit = l;
		pthread_cond_broadcast(&b->gate_cv);
		pthread_mutex_unlock(&b->mu);
	}
	if (b->trace_fd >= 0)
		trace_window(b, &v, peak);
	b->last = s;
	atomic_store(&b->window_ns, now + WINDOW_NS);
}

/* Closes the window when it is due. */
void budget_end(budget *b, budget_req r, uint64_t k, uint64_t ops, uint64_t bytes)
{
	int64_t now = b->clock.now_ns(b->clock.arg);
	if (k) {
		int64_t ns = (now - r.t0) / (int64_t)k;
		atomic_fetch_add_explicit(&b->lat.n[budget_hist_bucket(ns)], k, memory_order_relaxed);
		atomic_fetch_add_explicit(&b->reqs, k, memory_order_relaxed);
	}
	if (r.slot)
		gate_leave(b);
	if ((ops || bytes) && take(b, ops, bytes))
		atomic_fetch_add_explicit(&b->held, 1, memory_order_relaxed);
	if ((atomic_load_explicit(&b->gated, memory_order_relaxed) || b->trace_fd >= 0) &&
	    now >= atomic_load_explicit(&b->window_ns, memory_order_relaxed) &&
	    pthread_mutex_trylock(&b->ctl_mu) == 0) {
		if (now >= atomic_load(&b->window_ns))
			window_close(b, now);
		pthread_mutex_unlock(&b->ctl_mu);
	}
}

/* CUTOVER_BUDGET_TRACE: opened once, for the life of the process. */
static void trace_open(budget *b)
{
	const char *path = getenv("CUTOVER_BUDGET_TRACE");
	if (b->trace_fd >= 0 || !path || !*path)
		return;
	b->trace_fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	if (b->trace_fd < 0)
		CUT_SYSWARN("%s: cannot open CUTOVER_BUDGET_TRACE (no trace is written)", path);
}

void budget_source_set(uint64_t ops_per_s, uint64_t bytes_per_s, bool adaptive, int64_t max_latency_ns)
{
	budget *b = &budget_source;
	trace_open(b);
	set_limits(b, ops_per_s, bytes_per_s);
	budget_gate_set(b, adaptive, max_latency_ns);
}

int64_t budget_src_copy(int in, int out, uint64_t len, bool *in_failed)
{
	budget *b = &budget_source;
	if (len == 0) /* no request to make */
		return sys_copy(in, out, len, in_failed);
	if (!atomic_load_explicit(&b->limited, memory_order_relaxed) &&
	    !atomic_load_explicit(&b->gated, memory_order_relaxed)) {
		budget_req r = budget_begin(b, 0, 0);
		int64_t n = sys_copy(in, out, len, in_failed);
		uint64_t got = n > 0 ? (uint64_t)n : 0, k = budget_reads(got);
		budget_end(b, r, k ? k : 1, k, got);
		return n;
	}
	uint64_t done = 0;
	while (done < len) {
		uint64_t want = len - done < COPY_PIECE ? len - done : COPY_PIECE;
		budget_req r = budget_src(budget_reads(want), want);
		int64_t n = sys_copy(in, out, want, in_failed);
		budget_src_done(r);
		if (n < 0)
			return n;
		done += (uint64_t)n;
		if ((uint64_t)n < want)
			break;
	}
	return (int64_t)done;
}
