/*
 * budget.h - the limits on what a pass asks of the source (--max-ops,
 * --bwlimit): a token bucket of operations per second and one of bytes per
 * second, shared by every thread of the process.
 *
 * An operation is one request the source's server answers: a stat or name
 * lookup, an open, a batch of directory entries, a read.  The call sites
 * (scanner/, replay/) charge each one with budget_src() just before making
 * it; what one system call costs in requests is said where it is charged.
 *
 * The bucket is virtual scheduling (GCRA): each charge reserves the next
 * slot of the rate and the caller sleeps until its slot starts, so a large
 * charge (a 10 MB read against 1 MB/s) goes out at once and is paid for by
 * the charges after it, threads are served in the order they asked, and
 * what goes out over any window of T seconds is at most rate * (T + burst)
 * plus one charge.  The burst (100 ms of the rate) lets a pass that was
 * idle start without a wait.
 *
 * Unlimited (the default) costs one relaxed atomic load and a branch per
 * charge.  The process's source budget is set once before a pass by the
 * command (cli/) or by sync from the pair's config; scan, replay and sync's
 * two halves then share it.
 */
#ifndef CUTOVER_BUDGET_H
#define CUTOVER_BUDGET_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

/* Where a budget gets its time and how it waits: the monotonic clock and
 * clock_nanosleep, or a test's fake clock. */
typedef struct budget_clock {
	int64_t (*now_ns)(void *arg);
	void (*sleep_until_ns)(void *arg, int64_t t);
	void *arg;
} budget_clock;

#define BUDGET_BURST_NS 100000000.0 /* 100 ms of the rate */

typedef struct budget {
	pthread_mutex_t mu;
	double op_ns, byte_ns;        /* ns per operation / per byte; 0: no limit */
	double next_op, next_byte;    /* the theoretical time of the next unit */
	budget_clock clock;
	atomic_uint_least64_t ops, bytes; /* charged so far */
	atomic_int_least64_t waited_ns;   /* summed over the threads that waited */
} budget;

/* ops_per_s, bytes_per_s: 0 for no limit.  clock NULL: the real one. */
void budget_init(budget *b, uint64_t ops_per_s, uint64_t bytes_per_s, const budget_clock *clock);
void budget_destroy(budget *b);
/* Charges ops operations and bytes bytes; returns once they may go out. */
void budget_take(budget *b, uint64_t ops, uint64_t bytes);

/* What one read request of the server carries: FUSE's default max_read
 * (NFS's rsize is often larger; then reads are overcharged, never under). */
#define BUDGET_READ_SIZE (128u << 10)
static inline uint64_t budget_reads(uint64_t bytes)
{
	return (bytes + BUDGET_READ_SIZE - 1) / BUDGET_READ_SIZE;
}

/* The lookups of a walk of path from a directory fd: one per component. */
static inline uint64_t budget_lookups(const char *path)
{
	uint64_t n = 1;
	for (; *path; path++)
		n += *path == '/';
	return n;
}

/* The process's source budget. */
extern budget budget_source;
extern atomic_bool budget_source_on;
/* Sets its limits (0: none) and clears its counters.  Call between passes,
 * never while threads charge it. */
void budget_source_set(uint64_t ops_per_s, uint64_t bytes_per_s);
static inline void budget_src(uint64_t ops, uint64_t bytes)
{
	if (atomic_load_explicit(&budget_source_on, memory_order_relaxed))
		budget_take(&budget_source, ops, bytes);
}
/* sys_copy from a source file (format/sys.h), charged a piece at a time
 * so that a big file is spread over its time instead of sent as one burst. */
int64_t budget_src_copy(int in, int out, uint64_t len, bool *in_failed);

#endif
