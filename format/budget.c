/*
 * budget.c - token buckets for the source's operations and bytes
 * (budget.h says why virtual scheduling).
 */
#include "format/budget.h"

#include <errno.h>
#include <time.h>

#include "format/sys.h"
#include "format/util.h"

#define COPY_PIECE BUDGET_READ_SIZE

budget budget_source = {.mu = PTHREAD_MUTEX_INITIALIZER};
atomic_bool budget_source_on;

static int64_t real_now(void *arg)
{
	(void)arg;
	return cut_mono_ns();
}

static void real_sleep_until(void *arg, int64_t t)
{
	(void)arg;
	struct timespec ts = {.tv_sec = (time_t)(t / 1000000000), .tv_nsec = (long)(t % 1000000000)};
	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
		;
}

static void set_limits(budget *b, uint64_t ops_per_s, uint64_t bytes_per_s)
{
	b->op_ns = ops_per_s ? 1e9 / (double)ops_per_s : 0;
	b->byte_ns = bytes_per_s ? 1e9 / (double)bytes_per_s : 0;
	b->next_op = b->next_byte = -1e18; /* idle since ever */
	atomic_store(&b->ops, 0);
	atomic_store(&b->bytes, 0);
	atomic_store(&b->waited_ns, 0);
}

void budget_init(budget *b, uint64_t ops_per_s, uint64_t bytes_per_s, const budget_clock *clock)
{
	pthread_mutex_init(&b->mu, NULL);
	b->clock = clock ? *clock : (budget_clock){real_now, real_sleep_until, NULL};
	set_limits(b, ops_per_s, bytes_per_s);
}

void budget_destroy(budget *b)
{
	pthread_mutex_destroy(&b->mu);
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

void budget_take(budget *b, uint64_t ops, uint64_t bytes)
{
	atomic_fetch_add_explicit(&b->ops, ops, memory_order_relaxed);
	atomic_fetch_add_explicit(&b->bytes, bytes, memory_order_relaxed);
	pthread_mutex_lock(&b->mu);
	double now = (double)b->clock.now_ns(b->clock.arg);
	double at = reserve(&b->next_op, b->op_ns, now, ops);
	double at2 = reserve(&b->next_byte, b->byte_ns, now, bytes);
	pthread_mutex_unlock(&b->mu);
	if (at2 > at)
		at = at2;
	if (at > now) {
		atomic_fetch_add_explicit(&b->waited_ns, (int64_t)(at - now), memory_order_relaxed);
		b->clock.sleep_until_ns(b->clock.arg, (int64_t)at);
	}
}

void budget_source_set(uint64_t ops_per_s, uint64_t bytes_per_s)
{
	if (!budget_source.clock.now_ns)
		budget_source.clock = (budget_clock){real_now, real_sleep_until, NULL};
	set_limits(&budget_source, ops_per_s, bytes_per_s);
	atomic_store(&budget_source_on, ops_per_s != 0 || bytes_per_s != 0);
}

int64_t budget_src_copy(int in, int out, uint64_t len, bool *in_failed)
{
	if (!atomic_load_explicit(&budget_source_on, memory_order_relaxed))
		return sys_copy(in, out, len, in_failed);
	uint64_t done = 0;
	while (done < len) {
		uint64_t want = len - done < COPY_PIECE ? len - done : COPY_PIECE;
		budget_src(budget_reads(want), want);
		int64_t n = sys_copy(in, out, want, in_failed);
		if (n < 0)
			return n;
		done += (uint64_t)n;
		if ((uint64_t)n < want)
			break;
	}
	return (int64_t)done;
}
