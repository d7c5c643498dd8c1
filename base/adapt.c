/*
 * adapt.c - the controller of the source's gate (--adaptive, --max-latency):
 * how many requests may be in flight, moved one window of requests at a
 * time by what their latency says of the source's load.
 *
 * AIMD on a baseline.  The baseline is the unloaded latency: the lowest
 * window median seen.  A window whose median is above twice the baseline
 * (or above --max-latency) halves the limit; one below 1.5 times it (and
 * 0.75 of --max-latency), in which the limit was reached, raises it by one.
 * Between the two the limit holds, so the pass settles where its requests
 * take 1.5 to 2 times the unloaded latency: a server that queues them is
 * kept just past the point where more in flight buys no more throughput.
 * After a cut one window is not judged: it still holds the requests sent
 * under the old limit.
 *
 * The baseline forgets only at the floor of one request in flight: there
 * the latency cannot be the pass's own doing, so a source that became
 * lastingly slower (another load, a new route) is learnt, at 1% a window
 * (ten times in some 50 s of 200 ms windows), and the pass climbs back.
 * Above the floor it never forgets: a baseline that crept up with the
 * pass's own load would let the pass load the source more and more.
 *
 * Who calls it: budget.c, under its controller mutex, once a window.
 */
#include "base/budget.h"

#define CTL_START 2        /* a pass starts gently and climbs */
#define CTL_FLOOR 1
#define CTL_HIGH 2.0       /* a cut above this times the baseline */
#define CTL_LOW 1.5        /* a raise below this times the baseline */
#define CTL_ABS_LOW 0.75   /* a raise below this times --max-latency */
#define CTL_FORGET 1.01    /* the baseline's rise a window, at the floor */

void budget_ctl_init(budget_ctl *c, bool relative, int64_t max_latency_ns)
{
	*c = (budget_ctl){.relative = relative, .max_latency_ns = max_latency_ns, .limit = CTL_START};
}

/* Learns the baseline from a window's median. */
static void learn(budget_ctl *c, double lat)
{
	if (c->baseline_ns == 0 || lat < c->baseline_ns)
		c->baseline_ns = lat;
	else if (c->limit <= CTL_FLOOR)
		c->baseline_ns = lat < c->baseline_ns * CTL_FORGET ? lat : c->baseline_ns * CTL_FORGET;
}

unsigned budget_ctl_window(budget_ctl *c, int64_t p50_ns, uint64_t reqs, unsigned peak)
{
	if (!reqs || p50_ns <= 0)
		return c->limit;
	double lat = (double)p50_ns, high = 1e300, low = 1e300;
	if (c->relative) {
		learn(c, lat);
		high = c->baseline_ns * CTL_HIGH;
		low = c->baseline_ns * CTL_LOW;
	}
	if (c->max_latency_ns > 0) {
		double m = (double)c->max_latency_ns;
		high = m < high ? m : high;
		low = m * CTL_ABS_LOW < low ? m * CTL_ABS_LOW : low;
	}
	if (c->cooling) {
		c->cooling = false;
	} else if (lat > high) {
		c->limit = c->limit / 2 > CTL_FLOOR ? c->limit / 2 : CTL_FLOOR;
		c->cooling = true;
	} else if (lat < low && peak >= c->limit && c->limit < BUDGET_GATE_MAX) {
		c->limit++;
	}
	return c->limit;
}
