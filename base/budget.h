/*
 * budget.h - what a pass asks of the source, and how the source answers:
 * the limits (--max-ops, --bwlimit), the latency of each request, and the
 * adaptive gate on requests in flight (--adaptive, --max-latency); all
 * shared by every thread of the process.
 *
 * An operation is one request the source's server answers: a stat or name
 * lookup, an open, a batch of directory entries, a read.  The call sites
 * (scanner/, replay/, base/sys.c) open each system call on the source
 * with budget_src() and close it with budget_src_done() (or
 * budget_src_after() when its cost is known only once it answered); what
 * one system call costs in requests is said where it is charged.
 *
 * The files, one role each:
 *   budget.c  the limits: token buckets by virtual scheduling (GCRA), the
 *             process's source budget and its entry points
 *   hist.c    the latency histogram (log-linear buckets, atomics) and the
 *             views of a window (rates, median, p99, held back)
 *   adapt.c   the controller that moves the gate's limit (docs/BENCHMARKS.md
 *             section 7 shows what it does)
 *
 * The bucket is virtual scheduling (GCRA): each charge reserves the next
 * slot of the rate and the caller sleeps until its slot starts, so a large
 * charge (a 10 MB read against 1 MB/s) goes out at once and is paid for by
 * the charges after it, threads are served in the order they asked, and
 * what goes out over any window of T seconds is at most rate * (T + burst)
 * plus one charge.  The burst (100 ms of the rate) lets a pass that was
 * idle start without a wait.
 *
 * Without limits a request costs two clock reads and three relaxed atomic
 * adds (counts and its latency bucket).  The process's source budget is set
 * once before a pass by the command (cli/) or by sync from the pair's
 * config; scan, replay and sync's two halves then share it.
 */
#ifndef CUTOVER_BUDGET_H
#define CUTOVER_BUDGET_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BUDGET_BURST_NS 100000000.0 /* 100 ms of the rate */

/* ---- hist.c: latency ---------------------------------------------------- */

/* Log-linear buckets of nanoseconds: 8 a power of two (12% wide), from
 * 8 ns to 2^40 ns (18 minutes); one more lands in the last. */
#define BUDGET_HIST_SUB_BITS 3
#define BUDGET_HIST_BUCKETS ((1 << BUDGET_HIST_SUB_BITS) * 38)

typedef struct budget_hist {
	atomic_uint_least64_t n[BUDGET_HIST_BUCKETS];
} budget_hist;

unsigned budget_hist_bucket(int64_t ns);
/* The middle of a bucket, in ns: what a quantile in it reports. */
int64_t budget_hist_mid(unsigned bucket);
/* The q-quantile (0 < q <= 1) of counts n (a window: the difference of two
 * snapshots); 0 when n is empty. */
int64_t budget_hist_quantile(const uint64_t n[BUDGET_HIST_BUCKETS], double q);

/* What the source did up to one moment: a copy of the budget's counters. */
typedef struct budget_snap {
	int64_t at;                     /* the budget's clock */
	uint64_t ops, bytes, reqs, held; /* reqs: measured requests; held: of them, made to wait */
	unsigned limit;                 /* the gate's limit then; 0: no gate */
	uint64_t n[BUDGET_HIST_BUCKETS];
} budget_snap;

/* The source over a window, for the progress line, status and history. */
typedef struct budget_view {
	double secs, ops_s, bytes_s;
	int64_t p50_ns, p99_ns;          /* 0: no request measured */
	uint64_t ops, bytes, reqs;
	double held;                     /* share of requests that waited for a limit or the gate */
	unsigned limit;                  /* the gate's limit at its end; 0: no gate */
} budget_view;

/* The view from snapshot a to the later b. */
void budget_view_of(const budget_snap *a, const budget_snap *b, budget_view *v);
/* "812 ops/s, 3.1 MiB/s, p50 240us p99 1.9ms, 6 in flight, held back 35%"
 * (the last two when they apply). */
void budget_view_line(const budget_view *v, char *buf, size_t cap);

/* ---- adapt.c: the controller of the gate --------------------------------- */

#define BUDGET_GATE_MAX 4096u /* more in flight than any pass has threads */

/* The controller's state; pure logic, fed one window at a time. */
typedef struct budget_ctl {
	int64_t max_latency_ns;   /* --max-latency; 0: none */
	bool relative;            /* --adaptive: hold the latency near the baseline */
	double baseline_ns;       /* the unloaded latency learnt; 0: none yet */
	unsigned limit;
	bool cooling;             /* the window after a cut is not judged */
} budget_ctl;

void budget_ctl_init(budget_ctl *c, bool relative, int64_t max_latency_ns);
/* One window: its median latency, its number of requests, and the most that
 * were in flight in it.  Returns the new limit. */
unsigned budget_ctl_window(budget_ctl *c, int64_t p50_ns, uint64_t reqs, unsigned peak);

/* ---- budget.c ------------------------------------------------------------ */

/* Where a budget gets its time and how it waits: the monotonic clock and
 * clock_nanosleep, or a test's fake clock. */
typedef struct budget_clock {
	int64_t (*now_ns)(void *arg);
	void (*sleep_until_ns)(void *arg, int64_t t);
	void *arg;
} budget_clock;

typedef struct budget {
	pthread_mutex_t mu;
	double op_ns, byte_ns;        /* ns per operation / per byte; 0: no limit */
	double next_op, next_byte;    /* the theoretical time of the next unit */
	budget_clock clock;
	atomic_uint_least64_t ops, bytes; /* charged so far */
	atomic_int_least64_t waited_ns;   /* summed over the threads that waited */
	atomic_bool limited;              /* a rate is set */
	atomic_uint_least64_t reqs, held; /* requests measured; of them, made to wait */
	budget_hist lat;                  /* each request's latency */
	int64_t set_ns;                   /* when the counters were cleared */
	/* The gate (mu guards it): at most limit requests in flight. */
	atomic_bool gated;
	pthread_cond_t gate_cv;
	unsigned inflight, limit, peak;   /* peak: the most in flight since the last window */
	/* The controller's windows (ctl_mu guards them). */
	pthread_mutex_t ctl_mu;
	atomic_int_least64_t window_ns;   /* when the next window closes */
	budget_snap last;                 /* the counters when the window opened */
	budget_ctl ctl;
	int trace_fd;                     /* CUTOVER_BUDGET_TRACE's file; -1: none */
} budget;

/* A request in flight: when it went out, and whether it holds a gate slot. */
typedef struct budget_req {
	int64_t t0;
	bool slot;
} budget_req;

/* ops_per_s, bytes_per_s: 0 for no limit.  clock NULL: the real one. */
void budget_init(budget *b, uint64_t ops_per_s, uint64_t bytes_per_s, const budget_clock *clock);
void budget_destroy(budget *b);
/* Charges ops operations and bytes bytes; returns once they may go out. */
void budget_take(budget *b, uint64_t ops, uint64_t bytes);
/* Puts a gate before every request: relative (--adaptive) and/or
 * max_latency_ns (--max-latency; 0 none); both off: no gate. */
void budget_gate_set(budget *b, bool relative, int64_t max_latency_ns);
/* A request: charged, through the gate, timed.  Every begin has its end,
 * and no other begin comes between them on the same thread (it could wait
 * for a slot its own thread holds). */
budget_req budget_begin(budget *b, uint64_t ops, uint64_t bytes);
/* Its end: its latency recorded as that of k requests (the mean of a copy
 * of k pieces; 0: it asked the server nothing), its slot freed; then ops and
 * bytes charged (known only now: a read's length), which may wait. */
void budget_end(budget *b, budget_req r, uint64_t k, uint64_t ops, uint64_t bytes);
/* The counters now. */
void budget_snap_take(budget *b, budget_snap *s);
/* The gate's limit now; 0: no gate. */
unsigned budget_limit(budget *b);

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
/* Sets its limits (0: none) and its gate, and clears its counters.  Call
 * between passes, never while threads charge it.  With CUTOVER_BUDGET_TRACE
 * set to a file, each window of the gate's controller appends a line to it
 * (docs/cutover.1, ENVIRONMENT); a file that cannot be opened is warned of. */
void budget_source_set(uint64_t ops_per_s, uint64_t bytes_per_s, bool adaptive,
		      int64_t max_latency_ns);
static inline budget_req budget_src(uint64_t ops, uint64_t bytes)
{
	return budget_begin(&budget_source, ops, bytes);
}
static inline void budget_src_done(budget_req r)
{
	budget_end(&budget_source, r, 1, 0, 0);
}
/* The end of a request whose cost is known once it answered. */
static inline void budget_src_after(budget_req r, uint64_t ops, uint64_t bytes)
{
	budget_end(&budget_source, r, 1, ops, bytes);
}
/* The end of a request that turned out to ask the server nothing. */
static inline void budget_src_none(budget_req r)
{
	budget_end(&budget_source, r, 0, 0, 0);
}
/* sys_copy from a source file (base/sys.h), a request a piece: a big file
 * is spread over its time instead of sent as one burst, and holds a gate
 * slot a piece at a time.  Unlimited and ungated, one copy charged as
 * its pieces, each with the copy's mean latency. */
int64_t budget_src_copy(int in, int out, uint64_t len, bool *in_failed);

#endif
