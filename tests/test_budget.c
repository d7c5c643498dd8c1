/*
 * test_budget.c - cmocka tests of format/budget.c, the --max-ops/--bwlimit
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

#include "format/budget.h"

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

/* The process's source budget: off until limits are set, off again at 0. */
static void budget_source__switches_on_and_off(void **state)
{
	(void)state;
	assert_false(atomic_load(&budget_source_on));
	budget_source_set(2000, 0);
	assert_true(atomic_load(&budget_source_on));
	budget_src(1, 0);
	assert_int_equal(atomic_load(&budget_source.ops), 1);
	budget_source_set(0, 0);
	assert_false(atomic_load(&budget_source_on));
	budget_src(1, 0);
	assert_int_equal(atomic_load(&budget_source.ops), 0);
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
		cmocka_unit_test(budget_source__switches_on_and_off),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
