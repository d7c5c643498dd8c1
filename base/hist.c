/*
 * hist.c - the latency histogram of the source's requests and the views of
 * a window of the budget's counters (budget.h).
 *
 * Buckets are log-linear: the power of two of a latency, then its next
 * three bits, so every bucket is an eighth of its power wide and a quantile
 * is known to 12% whatever the scale (a 100 us stat and a 2 s read alike).
 * A bucket is one atomic counter: threads record without a lock, and a
 * window is the difference of two snapshots, so any number of readers (the
 * progress file, the controller, the summary) keep their own windows.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "base/budget.h"
#include "base/util.h"

#define SUB (1u << BUDGET_HIST_SUB_BITS)

unsigned budget_hist_bucket(int64_t ns)
{
	if (ns < (int64_t)SUB)
		return ns < 0 ? 0 : (unsigned)ns;
	uint64_t x = (uint64_t)ns;
	unsigned e = 63u - (unsigned)__builtin_clzll(x); /* >= SUB_BITS */
	unsigned m = (unsigned)(x >> (e - BUDGET_HIST_SUB_BITS)) & (SUB - 1);
	unsigned b = SUB * (e - BUDGET_HIST_SUB_BITS + 1) + m;
	return b < BUDGET_HIST_BUCKETS ? b : BUDGET_HIST_BUCKETS - 1;
}

int64_t budget_hist_mid(unsigned b)
{
	if (b < SUB)
		return (int64_t)b;
	unsigned e = b / SUB + BUDGET_HIST_SUB_BITS - 1, m = b % SUB;
	uint64_t width = (uint64_t)1 << (e - BUDGET_HIST_SUB_BITS);
	return (int64_t)((SUB + m) * width + width / 2);
}

int64_t budget_hist_quantile(const uint64_t n[BUDGET_HIST_BUCKETS], double q)
{
	uint64_t total = 0;
	for (unsigned i = 0; i < BUDGET_HIST_BUCKETS; i++)
		total += n[i];
	if (!total)
		return 0;
	/* the rank of the quantile, 1-based: the median of 3 is the 2nd */
	uint64_t rank = (uint64_t)(q * (double)total + 0.999999), seen = 0;
	if (rank < 1)
		rank = 1;
	for (unsigned i = 0; i < BUDGET_HIST_BUCKETS; i++) {
		seen += n[i];
		if (seen >= rank)
			return budget_hist_mid(i);
	}
	return budget_hist_mid(BUDGET_HIST_BUCKETS - 1);
}

void budget_view_of(const budget_snap *a, const budget_snap *b, budget_view *v)
{
	memset(v, 0, sizeof *v);
	uint64_t n[BUDGET_HIST_BUCKETS];
	for (unsigned i = 0; i < BUDGET_HIST_BUCKETS; i++)
		n[i] = b->n[i] - a->n[i];
	v->secs = cut_secs(b->at - a->at);
	v->ops = b->ops - a->ops;
	v->bytes = b->bytes - a->bytes;
	v->reqs = b->reqs - a->reqs;
	if (v->secs > 0) {
		v->ops_s = (double)v->ops / v->secs;
		v->bytes_s = (double)v->bytes / v->secs;
	}
	v->p50_ns = budget_hist_quantile(n, 0.5);
	v->p99_ns = budget_hist_quantile(n, 0.99);
	v->held = v->reqs ? (double)(b->held - a->held) / (double)v->reqs : 0;
	if (v->held > 1)
		v->held = 1; /* a request counts as held when it begins, measured when it ends */
	v->limit = b->limit;
}

/* "240us", "1.9ms", "2.0s" */
static void put_lat(char *b, size_t cap, int64_t ns)
{
	if (ns < 10000)
		snprintf(b, cap, "%.1fus", (double)ns / CUT_NS_PER_US);
	else if (ns < 1000000)
		snprintf(b, cap, "%.0fus", (double)ns / CUT_NS_PER_US);
	else if (ns < CUT_NS_PER_S)
		snprintf(b, cap, "%.1fms", (double)ns / CUT_NS_PER_MS);
	else
		snprintf(b, cap, "%.1fs", cut_secs(ns));
}

void budget_view_line(const budget_view *v, char *buf, size_t cap)
{
	char by[32], p50[24], p99[24], gate[32] = "", held[32] = "";
	put_lat(p50, sizeof p50, v->p50_ns);
	put_lat(p99, sizeof p99, v->p99_ns);
	if (v->limit)
		snprintf(gate, sizeof gate, ", %u in flight", v->limit);
	if (v->held >= 0.005)
		snprintf(held, sizeof held, ", held back %.0f%%", v->held * 100);
	snprintf(buf, cap, "%.0f ops/s, %s/s, p50 %s p99 %s%s%s", v->ops_s,
		 cut_bytes_human(by, (uint64_t)v->bytes_s), p50, p99, gate, held);
}
