/*
 * sched.c - the parallel scheduler of replay: a pool of worker threads that
 * apply operations, and a dispatcher (the calling thread) that decides which
 * operations may run at the same time.
 *
 * The rule that keeps a parallel replay equal to applying the log in order:
 * two operations conflict when a path of one (path, or `to` for rename and
 * link) equals a path of the other or lies beneath it.  An operation is
 * started only when no earlier, unfinished operation conflicts with it.  So
 * a directory is made before anything in it, a rename finishes before its
 * name is reused, an rmdir waits for everything beneath it, and a link waits
 * for the file it names; operations in different directories, or on
 * different files of one directory, run at once.  Operations of the final
 * phase (directory attributes) conflict only on the same path.
 *
 * Only the dispatcher touches the conflict tables, the blocked list and the
 * watermark; workers only take from the work queue and put on the done
 * queue, under one mutex.  The window of admitted operations is bounded in
 * bytes: the records admitted (queued, running, blocked) and their entries
 * in the conflict tables hold at most RP_WINDOW_BYTES, whatever their paths;
 * the span between the watermark and the newest is RP_SPAN records, kept
 * in a bitmap.  So memory stays flat whatever the size and mix of the log.
 * (The counts of records in flight and blocked are kept too: they bound the
 * work of a rescan, not memory.)
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#include <xxhash.h>

#include "format/path.h"
#include "replay/internal.h"

#define MAX_BLOCKED 4096
#define TICK_NS 100000000

/* ------------------------------------------------ path conflict table */

/* A count of admitted operations at each path (exact) and beneath it
 * (under), in a chained hash table keyed by the path bytes. */
typedef struct ph_node {
	struct ph_node *next;
	uint64_t hash;
	uint32_t exact, under;
	size_t len;
	char key[];
} ph_node;

typedef struct ph {
	ph_node **b;
	size_t nb, n;
	size_t bytes;   /* nodes' allocations */
} ph;

static uint64_t ph_hash(const char *p, size_t len) { return XXH3_64bits(p, len); }

static void ph_init(ph *t)
{
	t->nb = 1024;
	t->n = 0;
	t->b = cut_calloc(t->nb, sizeof *t->b);
}

static void ph_clear(ph *t)
{
	for (size_t i = 0; i < t->nb; i++) {
		ph_node *n = t->b[i];
		while (n) {
			ph_node *nx = n->next;
			free(n);
			n = nx;
		}
		t->b[i] = NULL;
	}
	t->n = 0;
	t->bytes = 0;
}

static void ph_free(ph *t)
{
	ph_clear(t);
	free(t->b);
}

static ph_node *ph_find(const ph *t, const char *p, size_t len, uint64_t h)
{
	for (ph_node *n = t->b[h & (t->nb - 1)]; n; n = n->next)
		if (n->hash == h && n->len == len && memcmp(n->key, p, len) == 0)
			return n;
	return NULL;
}

static void ph_grow(ph *t)
{
	size_t nb = t->nb * 2;
	ph_node **b = cut_calloc(nb, sizeof *b);
	for (size_t i = 0; i < t->nb; i++) {
		ph_node *n = t->b[i];
		while (n) {
			ph_node *nx = n->next;
			n->next = b[n->hash & (nb - 1)];
			b[n->hash & (nb - 1)] = n;
			n = nx;
		}
	}
	free(t->b);
	t->b = b;
	t->nb = nb;
}

/* Adds delta (+1/-1) to the exact or under count of one path's node,
 * creating it or removing it when both counts reach zero. */
static void ph_bump(ph *t, const char *p, size_t len, bool exact, int delta)
{
	uint64_t h = ph_hash(p, len);
	ph_node *n = ph_find(t, p, len, h);
	if (!n) {
		if (delta < 0)
			return; /* cannot happen: every -1 follows its +1 */
		if (t->n >= t->nb)
			ph_grow(t);
		n = cut_malloc(sizeof *n + len + 1);
		t->bytes += sizeof *n + len + 1;
		n->hash = h;
		n->len = len;
		n->exact = n->under = 0;
		memcpy(n->key, p, len);
		n->key[len] = 0;
		size_t bi = h & (t->nb - 1);
		n->next = t->b[bi];
		t->b[bi] = n;
		t->n++;
	}
	if (exact)
		n->exact = (uint32_t)((int64_t)n->exact + delta);
	else
		n->under = (uint32_t)((int64_t)n->under + delta);
	if (n->exact == 0 && n->under == 0) {
		ph_node **pp = &t->b[h & (t->nb - 1)];
		while (*pp != n)
			pp = &(*pp)->next;
		*pp = n->next;
		t->bytes -= sizeof *n + n->len + 1;
		free(n);
		t->n--;
	}
}

/* Registers (delta +1) or unregisters (-1) one path: exact at the path,
 * under at every proper ancestor ("" included) when tree is true. */
static void ph_path(ph *t, const char *p, size_t len, bool tree, int delta)
{
	ph_bump(t, p, len, true, delta);
	if (!tree || len == 0)
		return;
	for (size_t l = len; l > 0;) {
		l = fmt_path_parent_len(p, l);
		ph_bump(t, p, l, false, delta);
	}
}

/* True when something registered is at p, beneath p (tree), or at an
 * ancestor of p (tree). */
static bool ph_conflict_path(const ph *t, const char *p, size_t len, bool tree)
{
	if (t->n == 0)
		return false;
	ph_node *n = ph_find(t, p, len, ph_hash(p, len));
	if (n && (n->exact || (tree && n->under)))
		return true;
	if (!tree || len == 0)
		return false;
	for (size_t l = len; l > 0;) {
		l = fmt_path_parent_len(p, l);
		n = ph_find(t, p, l, ph_hash(p, l));
		if (n && n->exact)
			return true;
	}
	return false;
}

static void ph_op(ph *t, const rp_op *op, int delta)
{
	bool tree = op->kind == RP_K_RECORD;
	ph_path(t, op->e.path, op->e.path_len, tree, delta);
	if (op->to)
		ph_path(t, op->to, op->to_len, tree, delta);
}

static bool ph_conflict(const ph *t, const rp_op *op)
{
	bool tree = op->kind == RP_K_RECORD;
	return ph_conflict_path(t, op->e.path, op->e.path_len, tree) ||
	       (op->to && ph_conflict_path(t, op->to, op->to_len, tree));
}

/* ------------------------------------------------------------ the pool */

struct rp_sched {
	const rp_ctx *cx;
	unsigned nth;
	pthread_t *th;
	pthread_mutex_t mu;
	pthread_cond_t work_cv, done_cv;
	rp_op *wq_head, *wq_tail; /* to do, in order */
	rp_op *dq;                /* done, newest first */
	bool quit;
	/* dispatcher only */
	ph run, blk;
	rp_op *bl_head, *bl_tail; /* blocked, in log order */
	size_t nblocked, inflight, max_inflight;
	size_t op_bytes;          /* rp_op_bytes of the admitted ops */
	uint64_t *ring;           /* RP_SPAN bits: finished flags of [w, next) */
	uint64_t w, next;
};

static void *worker(void *arg)
{
	rp_sched *s = arg;
	pthread_mutex_lock(&s->mu);
	for (;;) {
		while (!s->wq_head && !s->quit)
			pthread_cond_wait(&s->work_cv, &s->mu);
		if (!s->wq_head)
			break;
		rp_op *op = s->wq_head;
		s->wq_head = op->next;
		if (!s->wq_head)
			s->wq_tail = NULL;
		pthread_mutex_unlock(&s->mu);
		rp_apply(s->cx, op);
		pthread_mutex_lock(&s->mu);
		op->next = s->dq;
		s->dq = op;
		pthread_cond_signal(&s->done_cv);
	}
	pthread_mutex_unlock(&s->mu);
	return NULL;
}

rp_sched *rp_sched_new(const rp_ctx *cx, unsigned jobs)
{
	rp_sched *s = cut_calloc(1, sizeof *s);
	s->cx = cx;
	if (jobs < 1)
		jobs = 1;
	s->max_inflight = (size_t)jobs * 4 + 16;
	pthread_mutex_init(&s->mu, NULL);
	pthread_cond_init(&s->work_cv, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&s->done_cv, &ca);
	pthread_condattr_destroy(&ca);
	ph_init(&s->run);
	ph_init(&s->blk);
	s->ring = cut_calloc(RP_SPAN / 64, 8);
	s->th = cut_calloc(jobs, sizeof *s->th);
	int err = 0;
	for (unsigned i = 0; i < jobs; i++) {
		err = pthread_create(&s->th[i], NULL, worker, s);
		if (err != 0)
			break; /* fewer workers: slower, still correct */
		s->nth++;
	}
	if (s->nth == 0) {
		/* pthread_create returns its error; errno does not hold it. */
		CUT_ERR("cannot start any worker thread: %s", strerror(err));
		rp_sched_free(s);
		return NULL;
	}
	return s;
}

void rp_sched_free(rp_sched *s)
{
	if (!s)
		return;
	pthread_mutex_lock(&s->mu);
	s->quit = true;
	pthread_cond_broadcast(&s->work_cv);
	pthread_mutex_unlock(&s->mu);
	for (unsigned i = 0; i < s->nth; i++)
		pthread_join(s->th[i], NULL);
	free(s->th);
	pthread_mutex_destroy(&s->mu);
	pthread_cond_destroy(&s->work_cv);
	pthread_cond_destroy(&s->done_cv);
	ph_free(&s->run);
	ph_free(&s->blk);
	free(s->ring);
	free(s);
}

uint64_t rp_sched_watermark(const rp_sched *s) { return s->w; }

static void mark_finished(rp_sched *s, uint64_t idx)
{
	uint64_t i = idx % RP_SPAN;
	s->ring[i / 64] |= 1ull << (i % 64);
	for (;;) {
		i = s->w % RP_SPAN;
		if (s->w == s->next || !(s->ring[i / 64] >> (i % 64) & 1))
			break;
		s->ring[i / 64] &= ~(1ull << (i % 64));
		s->w++;
	}
}

/* Clears what a previous run left in the ring: after a run that stopped
 * early, the ops finished above the watermark (the dropped ones never were).
 * Only [w, next) can hold a bit, so a run that ended at its watermark costs
 * nothing, where clearing the whole ring touched RP_SPAN / 8 bytes a run. */
static void ring_reset(rp_sched *s)
{
	for (uint64_t idx = s->w; idx < s->next; idx++) {
		uint64_t i = idx % RP_SPAN;
		s->ring[i / 64] &= ~(1ull << (i % 64));
	}
	s->w = s->next = 0;
}

/* The bytes the admitted ops and the conflict tables hold. */
static size_t window_bytes(const rp_sched *s)
{
	return s->op_bytes + s->run.bytes + s->blk.bytes +
	       (s->run.nb + s->blk.nb) * sizeof(ph_node *);
}

/* Whether one more op may be admitted. */
static bool may_admit(const rp_sched *s)
{
	if (s->inflight == 0 && s->nblocked == 0)
		return true;
	return s->inflight < s->max_inflight && s->nblocked < MAX_BLOCKED &&
	       s->next - s->w < RP_SPAN && window_bytes(s) < RP_WINDOW_BYTES;
}

static void dispatch(rp_sched *s, rp_op *op)
{
	ph_op(&s->run, op, +1);
	s->inflight++;
	op->next = NULL;
	pthread_mutex_lock(&s->mu);
	if (s->wq_tail)
		s->wq_tail->next = op;
	else
		s->wq_head = op;
	s->wq_tail = op;
	pthread_cond_signal(&s->work_cv);
	pthread_mutex_unlock(&s->mu);
}

/* Starts every blocked op that no longer waits for an earlier one, and
 * rebuilds the table of those still blocked. */
static void rescan(rp_sched *s)
{
	ph_clear(&s->blk);
	rp_op **pp = &s->bl_head, *last = NULL;
	while (*pp) {
		rp_op *op = *pp;
		if (!ph_conflict(&s->run, op) && !ph_conflict(&s->blk, op)) {
			*pp = op->next;
			s->nblocked--;
			dispatch(s, op);
		} else {
			ph_op(&s->blk, op, +1);
			last = op;
			pp = &op->next;
		}
	}
	s->bl_tail = last;
}

/* One rp_sched_run: its callbacks and where it stands. */
typedef struct sched_run {
	rp_pull_fn pull;
	rp_skip_fn skip;
	rp_done_fn done;
	rp_flush_fn flush;
	rp_tick_fn tick;
	void *ctx;
	int rc;         /* the first outcome that stopped the run; CUT_OK */
	bool eof, stopping;
	int64_t last_tick;
} sched_run;

/* Stops admitting work with outcome rc, unless already stopping. */
static void run_stop(sched_run *r, int rc)
{
	if (rc != CUT_OK && !r->stopping) {
		r->stopping = true;
		r->rc = rc;
	}
}

/* Puts op at the end of the blocked list. */
static void block(rp_sched *s, rp_op *op)
{
	op->next = NULL;
	if (s->bl_tail)
		s->bl_tail->next = op;
	else
		s->bl_head = op;
	s->bl_tail = op;
	s->nblocked++;
	ph_op(&s->blk, op, +1);
}

/* Pulls ops while the window has room: skipped ones count as finished,
 * the others start or wait behind the earlier ops they conflict with. */
static void admit(rp_sched *s, sched_run *r)
{
	while (!r->stopping && !r->eof && may_admit(s)) {
		rp_op *op;
		int p = r->pull(r->ctx, &op);
		if (p < 0) {
			run_stop(r, CUT_FAILED);
			return;
		}
		if (p == 0) {
			r->eof = true;
			return;
		}
		s->next = op->idx + 1;
		if (r->skip && r->skip(r->ctx, op)) {
			mark_finished(s, op->idx);
			rp_op_free(op);
			continue;
		}
		s->op_bytes += rp_op_bytes(op);
		if (ph_conflict(&s->run, op) || ph_conflict(&s->blk, op))
			block(s, op);
		else
			dispatch(s, op);
	}
}

/* Waits up to a tick for ops to finish; returns those that did, in
 * completion order (NULL: none yet). */
static rp_op *collect(rp_sched *s)
{
	pthread_mutex_lock(&s->mu);
	if (s->inflight > 0 && !s->dq) {
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_nsec += TICK_NS;
		if (ts.tv_nsec >= CUT_NS_PER_S) {
			ts.tv_sec++;
			ts.tv_nsec -= CUT_NS_PER_S;
		}
		while (!s->dq) {
			if (pthread_cond_timedwait(&s->done_cv, &s->mu, &ts) == ETIMEDOUT)
				break;
		}
	}
	rp_op *fin = s->dq;
	s->dq = NULL;
	pthread_mutex_unlock(&s->mu);

	/* Newest first on the list: reverse to report in completion order. */
	rp_op *rev = NULL;
	while (fin) {
		rp_op *nx = fin->next;
		fin->next = rev;
		rev = fin;
		fin = nx;
	}
	return rev;
}

/* Reports a batch of finished ops and makes it durable in the journal;
 * only then may the ops that wait for these paths start (settle): a later
 * op on the same path never runs before an earlier one is journaled, so a
 * redo after a crash never sees a later op's effect (apply.c relies on it
 * for idempotence). */
static void report(rp_sched *s, sched_run *r, rp_op *batch)
{
	int nfin = 0;
	for (rp_op *op = batch; op; op = op->next) {
		s->inflight--;
		run_stop(r, r->done(r->ctx, op));
		nfin++;
	}
	if (nfin && r->flush)
		run_stop(r, r->flush(r->ctx));
}

/* Frees a reported batch, its paths no longer held, and starts the blocked
 * ops that no longer wait. */
static void settle(rp_sched *s, sched_run *r, rp_op *batch)
{
	while (batch) {
		rp_op *op = batch;
		batch = op->next;
		ph_op(&s->run, op, -1);
		s->op_bytes -= rp_op_bytes(op);
		rp_op_free(op);
	}
	if (!r->stopping && s->nblocked)
		rescan(s);
}

/* Calls tick when a tick has passed since the last call. */
static void maybe_tick(sched_run *r)
{
	int64_t now = cut_mono_ns();
	if (r->tick && now - r->last_tick >= TICK_NS) {
		r->tick(r->ctx);
		r->last_tick = now;
	}
}

/* Frees the ops still blocked when the run stops. */
static void drop_blocked(rp_sched *s)
{
	while (s->bl_head) {
		rp_op *op = s->bl_head;
		s->bl_head = op->next;
		rp_op_free(op);
	}
	s->bl_tail = NULL;
	s->nblocked = 0;
	ph_clear(&s->blk);
}

int rp_sched_run(rp_sched *s, rp_pull_fn pull, rp_skip_fn skip, rp_done_fn done,
		 rp_flush_fn flush, rp_tick_fn tick, void *ctx)
{
	sched_run r = {.pull = pull, .skip = skip, .done = done, .flush = flush, .tick = tick,
		       .ctx = ctx, .rc = CUT_OK};
	ring_reset(s);
	s->op_bytes = 0;
	for (;;) {
		admit(s, &r);
		if (s->inflight == 0 && (r.stopping || (r.eof && s->nblocked == 0)))
			break;
		rp_op *batch = collect(s);
		report(s, &r, batch);
		settle(s, &r, batch);
		maybe_tick(&r);
	}
	drop_blocked(s);
	if (tick)
		tick(ctx);
	return r.rc;
}

void rp_sched_finished(rp_sched *s, uint64_t idx) { mark_finished(s, idx); }
