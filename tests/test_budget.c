/*
 * test_budget.c - cmocka tests of base/budget.c, the --max-ops/--bwlimit
 * token buckets, on a fake clock: a sleep moves the clock to the wake-up
 * time, so the tests are exact and take no time.  The threaded test shares
 * one fake clock between the threads (each sleep moves it forward, never
 * back, and really sleeps 20 us so that the threads interleave) and checks
 * the bound that a lost or doubled reservation would break.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/budget.h"
#include "tests/seed.h"

typedef struct fake {
	atomic_int_least64_t now; /* ns */
	atomic_int sleeps;
	bool yield;               /* sleep a little for real: let the other threads in */
} fake;

static int64_t fake_now(void *arg)
{
	return atomic_load(&((fake *)arg)->now);
}

static void fake_sleep(void *arg, int64_t t)
{
	fake *f = arg;
	atomic_fetch_add(&f->sleeps, 1);
	if (f->yield)
		usleep(20);
	int64_t cur = atomic_load(&f->now);
	while (cur < t && !atomic_compare_exchange_weak(&f->now, &cur, t))
		;
}

static budget *mk(fake *f, uint64_t ops, uint64_t bytes, int64_t t0)
{
	static budget b;
	atomic_init(&f->now, t0);
	atomic_init(&f->sleeps, 0);
	f->yield = false;
	budget_clock c = {fake_now, fake_sleep, f};
	budget_init(&b, ops, bytes, &c);
	return &b;
}

#define SEC 1000000000LL

/* One thread charging one op at a time for 20 s at 2000/s: every 5 s window
 * after the first burst holds exactly the rate (one op either way). */
static void budget__holds_the_op_rate_in_every_window(void **state)
{
	(void)state;
	fake f;
	budget *b = mk(&f, 2000, 0, 1000 * SEC);
	int64_t t0 = fake_now(&f);
	enum { WIN = 4 };
	uint64_t count[WIN] = {0};
	for (;;) {
		budget_take(b, 1, 0);
		int64_t t = fake_now(&f) - t0;
		if (t >= WIN * 5 * SEC)
			break;
		count[t / (5 * SEC)]++;
	}
	/* the first window also gets the burst: 100 ms of the rate */
	assert_in_range(count[0], 10000, 10000 + 200 + 1);
	for (int i = 1; i < WIN; i++)
		assert_in_range(count[i], 10000 - 1, 10000 + 1);
	budget_destroy(b);
}

/* Bytes in 64 KiB reads at 1 MB/s: each 5 s window holds 5 MB to one read. */
static void budget__holds_the_byte_rate_in_every_window(void **state)
{
	(void)state;
	fake f;
	budget *b = mk(&f, 0, 1000000, 0);
	uint64_t bytes[4] = {0};
	for (;;) {
		budget_take(b, 1, 65536);
		int64_t t = fake_now(&f);
		if (t >= 4 * 5 * SEC)
			break;
		bytes[t / (5 * SEC)] += 65536;
	}
	assert_in_range(bytes[0], 5000000 - 65536, 5000000 + 100000 + 2 * 65536);
	for (int i = 1; i < 4; i++)
		assert_in_range(bytes[i], 5000000 - 2 * 65536, 5000000 + 2 * 65536);
	budget_destroy(b);
}

/* After a long idle time, what goes out without a wait is the burst (100 ms
 * of the rate) and one charge, never the idle time's worth. */
static void budget__bounds_the_burst_after_idle(void **state)
{
	(void)state;
	fake f;
	budget *b = mk(&f, 1000, 0, 0);
	for (int i = 0; i < 50; i++)
		budget_take(b, 1, 0);
	atomic_fetch_add(&f.now, 3600 * SEC); /* an hour idle */
	int64_t t = fake_now(&f);
	int free_ops = 0;
	while (free_ops < 10000) {
		budget_take(b, 1, 0);
		if (fake_now(&f) != t)
			break;
		free_ops++;
	}
	assert_in_range(free_ops, 100, 101);
	budget_destroy(b);
}

/* A charge larger than a second's rate goes out and is paid by the wait of
 * the charge after it. */
static void budget__pays_a_large_charge_afterwards(void **state)
{
	(void)state;
	fake f;
	budget *b = mk(&f, 0, 1000000, 0);
	budget_take(b, 1, 10000000); /* 10 s worth */
	assert_int_equal(fake_now(&f), 0);
	budget_take(b, 1, 1);
	assert_in_range(fake_now(&f), 10 * SEC - 100000000 - 1000, 10 * SEC - 100000000 + 1000);
	budget_destroy(b);
}

/* No limit: no sleep, however much is charged. */
static void budget__unlimited_never_waits(void **state)
{
	(void)state;
	fake f;
	budget *b = mk(&f, 0, 0, 0);
	for (int i = 0; i < 100000; i++)
		budget_take(b, 3, 1 << 20);
	assert_int_equal(atomic_load(&f.sleeps), 0);
	assert_int_equal(atomic_load(&b->ops), 300000);
	budget_destroy(b);
}

typedef struct worker {
	budget *b;
	fake *f;
	pthread_barrier_t *start;
	int64_t end;
	uint64_t ops;
} worker;

static void *work(void *arg)
{
	worker *w = arg;
	pthread_barrier_wait(w->start);
	while (fake_now(w->f) < w->end) {
		budget_take(w->b, 1, 0);
		w->ops++;
	}
	return NULL;
}

/* Eight threads share one budget: together they get the rate, not eight
 * times it, and not less (each sleep ends at a reserved slot). */
static void budget__is_shared_by_threads(void **state)
{
	(void)state;
	fake f;
	budget *b = mk(&f, 5000, 0, 0);
	f.yield = true;
	enum { N = 8 };
	pthread_t t[N];
	worker w[N];
	pthread_barrier_t start;
	pthread_barrier_init(&start, NULL, N);
	for (int i = 0; i < N; i++) {
		w[i] = (worker){b, &f, &start, 10 * SEC, 0};
		assert_int_equal(pthread_create(&t[i], NULL, work, &w[i]), 0);
	}
	uint64_t total = 0;
	int busy = 0;
	for (int i = 0; i < N; i++) {
		pthread_join(t[i], NULL);
		total += w[i].ops;
		busy += w[i].ops > 0;
	}
	pthread_barrier_destroy(&start);
	int64_t end = fake_now(&f);
	/* what went out by the clock's last value, plus the burst and one
	 * reservation per thread */
	double allowed = 5000.0 * ((double)end / SEC + 0.1) + N;
	assert_true((double)total <= allowed);
	assert_true((double)total >= 5000.0 * ((double)end / SEC) - N);
	assert_true(total >= 50000 - N);
	assert_int_equal(atomic_load(&b->ops), total);
	printf("threads that took part: %d of %d\n", busy, N);
	assert_true(busy > 1); /* they raced for the budget */
	budget_destroy(b);
}

/* The process's source budget: limited and gated only when set so, and
 * counting either way (the progress line shows an unlimited pass too). */
static void budget_source__counts_with_and_without_limits(void **state)
{
	(void)state;
	assert_false(atomic_load(&budget_source.limited));
	budget_source_set(2000, 0, false, 0);
	assert_true(atomic_load(&budget_source.limited));
	budget_src_done(budget_src(1, 0));
	assert_int_equal(atomic_load(&budget_source.ops), 1);
	budget_source_set(0, 0, false, 0);
	assert_false(atomic_load(&budget_source.limited));
	assert_int_equal(budget_limit(&budget_source), 0);
	budget_src_done(budget_src(3, 10));
	budget_src_after(budget_src(0, 0), 1, 5);
	budget_src_none(budget_src(0, 0));
	assert_int_equal(atomic_load(&budget_source.ops), 4);
	assert_int_equal(atomic_load(&budget_source.bytes), 15);
	assert_int_equal(atomic_load(&budget_source.reqs), 2);
	budget_source_set(0, 0, true, 0);
	assert_true(budget_limit(&budget_source) > 0);
	budget_source_set(0, 0, false, 0);
	assert_int_equal(budget_limit(&budget_source), 0);
}

/* Every latency lands in a bucket whose middle is within its eighth of a
 * power of two, and buckets follow the order of latencies. */
static void budget_hist__buckets_are_within_an_eighth(void **state)
{
	(void)state;
	uint64_t rng = test_seed("budget_hist__buckets_are_within_an_eighth") | 1;
	unsigned prev = 0;
	for (int64_t ns = 0; ns < 100000; ns++) {
		unsigned b = budget_hist_bucket(ns);
		assert_true(b >= prev);
		prev = b;
	}
	for (int i = 0; i < 100000; i++) {
		rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
		int64_t ns = (int64_t)(rng % (1ull << (rng % 39 + 1)));
		int64_t mid = budget_hist_mid(budget_hist_bucket(ns));
		double err = ns ? (double)(mid - ns) / (double)ns : 0;
		if (err < -0.125 || err > 0.125)
			fail_msg("%lld ns reported as %lld", (long long)ns, (long long)mid);
	}
	assert_int_equal(budget_hist_bucket(INT64_MAX), BUDGET_HIST_BUCKETS - 1);
	assert_int_equal(budget_hist_bucket(-5), 0);
}

/* A median and a p99 of a known mix: 98 fast requests and 2 slow ones. */
static void budget_hist__quantiles_of_a_window(void **state)
{
	(void)state;
	uint64_t n[BUDGET_HIST_BUCKETS] = {0};
	assert_int_equal(budget_hist_quantile(n, 0.5), 0);
	n[budget_hist_bucket(200000)] = 98;
	n[budget_hist_bucket(9000000)] = 2;
	int64_t p50 = budget_hist_quantile(n, 0.5), p99 = budget_hist_quantile(n, 0.99);
	assert_true(p50 > 175000 && p50 < 225000);
	assert_true(p99 > 7900000 && p99 < 10100000);
	n[budget_hist_bucket(9000000)] = 0;
	p99 = budget_hist_quantile(n, 0.99);
	assert_true(p99 > 175000 && p99 < 225000);
}

/* ---- the gate and its controller, on a simulated server ---------------- */

/* A server answering k requests in flight: each takes base_ns, times k/slots
 * once more than slots are in flight (a queue), times jitter. */
typedef struct server {
	int64_t base_ns;
	unsigned slots;   /* 0: no queue */
	unsigned threads; /* the pass's: never more in flight */
	uint64_t rng;
} server;

static int64_t server_latency(server *s, unsigned k)
{
	double l = (double)s->base_ns;
	if (s->slots && k > s->slots)
		l *= (double)k / s->slots;
	s->rng ^= s->rng << 13, s->rng ^= s->rng >> 7, s->rng ^= s->rng << 17;
	return (int64_t)(l * (0.9 + 0.2 * (double)(s->rng % 1000) / 1000.0));
}

/* One round: as many requests as the gate and the threads allow go out
 * together and come back after the server's latency.  Returns how many. */
static unsigned round_trip(budget *b, fake *f, server *s)
{
	unsigned k = budget_limit(b);
	if (k > s->threads)
		k = s->threads;
	budget_req r[64];
	for (unsigned i = 0; i < k; i++)
		r[i] = budget_begin(b, 1, 0);
	atomic_fetch_add(&f->now, server_latency(s, k));
	for (unsigned i = 0; i < k; i++)
		budget_end(b, r[i], 1, 0, 0);
	return k;
}

/* Runs rounds until the fake clock reaches t (s); the lowest and highest
 * limit seen, and the first time the limit was at most `at_most` (-1: never). */
typedef struct span {
	unsigned lo, hi;
	double first_at_most;
	uint64_t reqs;
} span;

static span run_until(budget *b, fake *f, server *s, double t, unsigned at_most)
{
	span sp = {UINT32_MAX, 0, -1, 0};
	while (atomic_load(&f->now) < (int64_t)(t * SEC)) {
		sp.reqs += round_trip(b, f, s);
		unsigned l = budget_limit(b);
		sp.lo = l < sp.lo ? l : sp.lo;
		sp.hi = l > sp.hi ? l : sp.hi;
		if (sp.first_at_most < 0 && l <= at_most)
			sp.first_at_most = (double)atomic_load(&f->now) / SEC;
	}
	return sp;
}

static budget *mk_gated(fake *f, server *s, const char *test, bool relative, int64_t max_lat)
{
	budget *b = mk(f, 0, 0, 0);
	budget_gate_set(b, relative, max_lat);
	s->rng = test_seed(test) | 1;
	return b;
}

/* A latency step (200 us to 2 ms, not caused by the pass) cuts the
 * requests in flight at least four times within 5 s; once it is gone they
 * climb back within 30 s. */
static void budget_ctl__cuts_on_a_latency_step_and_recovers(void **state)
{
	(void)state;
	fake f;
	server s = {200000, 0, 16, 0};
	budget *b = mk_gated(&f, &s, "budget_ctl__cuts_on_a_latency_step_and_recovers", true, 0);
	span up = run_until(b, &f, &s, 10, 0);
	unsigned before = budget_limit(b);
	printf("before the step: limit %u (climbed from %u)\n", before, up.lo);
	assert_true(before >= 16); /* the threads, and one that is never reached */
	s.base_ns = 2000000;
	span step = run_until(b, &f, &s, 20, before / 4);
	printf("step at 10 s: limit down to %u, at most %u at %.2f s; baseline %.0f us\n", step.lo,
	       before / 4, step.first_at_most, b->ctl.baseline_ns / 1e3);
	assert_true(step.first_at_most >= 10 && step.first_at_most <= 15);
	s.base_ns = 200000;
	unsigned target = before * 9 / 10;
	double back = -1;
	while (atomic_load(&f.now) < 50 * SEC && back < 0) {
		round_trip(b, &f, &s);
		if (budget_limit(b) >= target)
			back = (double)atomic_load(&f.now) / SEC;
	}
	printf("step back at 20 s: limit at %u or more at %.2f s\n", target, back);
	assert_true(back >= 20 && back <= 50);
	budget_destroy(b);
}

/* A lasting shift not of the pass's making is learnt: after a minute at
 * the floor the pass climbs again at the new latency. */
static void budget_ctl__learns_a_lasting_shift(void **state)
{
	(void)state;
	fake f;
	server s = {200000, 0, 16, 0};
	budget *b = mk_gated(&f, &s, "budget_ctl__learns_a_lasting_shift", true, 0);
	run_until(b, &f, &s, 10, 0);
	s.base_ns = 2000000;
	span low = run_until(b, &f, &s, 15, 0);
	assert_int_equal(low.lo, 1);
	span later = run_until(b, &f, &s, 120, 0);
	unsigned end = budget_limit(b);
	printf("2 ms for 110 s: limit %u at the end (most %u), baseline %.0f us\n", end, later.hi,
	       b->ctl.baseline_ns / 1e3);
	assert_true(end >= 8);
	budget_destroy(b);
}

/* A server that queues past 8 requests in flight, a pass of 32 threads: the
 * limit settles past the knee, the median latency within twice the
 * unloaded one, the throughput at least 70% of the server's best. */
static void budget_ctl__settles_past_the_knee(void **state)
{
	(void)state;
	fake f;
	server s = {500000, 8, 32, 0};
	budget *b = mk_gated(&f, &s, "budget_ctl__settles_past_the_knee", true, 0);
	run_until(b, &f, &s, 20, 0);
	budget_snap a, z;
	budget_snap_take(b, &a);
	span sp = run_until(b, &f, &s, 60, 0);
	budget_snap_take(b, &z);
	budget_view v;
	budget_view_of(&a, &z, &v);
	double best = 8 / 0.0005; /* slots / base latency */
	printf("settled: limit %u..%u, %.0f ops/s (%.0f%% of the best), p50 %.0f us (%.2fx unloaded)\n",
	       sp.lo, sp.hi, v.ops_s, 100 * v.ops_s / best, (double)v.p50_ns / 1e3,
	       (double)v.p50_ns / 500000);
	assert_true(sp.lo >= 4 && sp.hi <= 20);
	assert_true(v.ops_s >= 0.7 * best);
	assert_true(v.p50_ns <= 2 * 500000);
	budget_destroy(b);
}

/* --max-latency alone: the median is held under the given latency. */
static void budget_ctl__holds_a_max_latency(void **state)
{
	(void)state;
	fake f;
	server s = {500000, 8, 32, 0};
	budget *b = mk_gated(&f, &s, "budget_ctl__holds_a_max_latency", false, 800000);
	run_until(b, &f, &s, 20, 0);
	budget_snap a, z;
	budget_snap_take(b, &a);
	span sp = run_until(b, &f, &s, 60, 0);
	budget_snap_take(b, &z);
	budget_view v;
	budget_view_of(&a, &z, &v);
	printf("--max-latency 800us: limit %u..%u, p50 %.0f us\n", sp.lo, sp.hi, (double)v.p50_ns / 1e3);
	assert_true(v.p50_ns <= 800000 * 1.125);
	assert_true(sp.hi <= 14);
	assert_true(v.ops_s >= 0.7 * 8 / 0.0005);
	budget_destroy(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(budget__holds_the_op_rate_in_every_window),
		cmocka_unit_test(budget__holds_the_byte_rate_in_every_window),
		cmocka_unit_test(budget__bounds_the_burst_after_idle),
		cmocka_unit_test(budget__pays_a_large_charge_afterwards),
		cmocka_unit_test(budget__unlimited_never_waits),
		cmocka_unit_test(budget__is_shared_by_threads),
		cmocka_unit_test(budget_source__counts_with_and_without_limits),
		cmocka_unit_test(budget_hist__buckets_are_within_an_eighth),
		cmocka_unit_test(budget_hist__quantiles_of_a_window),
		cmocka_unit_test(budget_ctl__cuts_on_a_latency_step_and_recovers),
		cmocka_unit_test(budget_ctl__learns_a_lasting_shift),
		cmocka_unit_test(budget_ctl__settles_past_the_knee),
		cmocka_unit_test(budget_ctl__holds_a_max_latency),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
