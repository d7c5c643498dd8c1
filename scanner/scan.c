/*
 * scan.c - the scan engine: worker threads list directories, the calling
 * thread writes the manifest in canonical order.
 *
 * Order.  Canonical order is a depth-first walk that visits siblings in byte
 * order of their names (path.h).  Each directory job yields its children
 * sorted; the writer emits a child, and when the child is a directory, waits
 * for that directory's listing and descends into it.  The output is therefore
 * the same whatever the number of threads or their timing.
 *
 * Scheduling and memory.  Pending jobs sit in a priority queue keyed by
 * canonical path, and workers always take the smallest, so they work just
 * ahead of the writer.  Finished listings wait for the writer; their bytes are
 * counted, and once they reach the budget the engine pauses until the writer
 * has brought them down to half of it.  Paused, workers take only jobs that
 * sort before the frontier (the greatest path listed so far), and those only
 * while the bytes stay under twice the budget, or the job the writer waits
 * for.  Jobs before the frontier fill gaps: a directory's job exists only
 * once its parent is listed, so when one slow parent (a domain of 500 users
 * whose previous entries must be walked) holds the writer, the other workers
 * run on into later subtrees and fill the budget there; the writer must pass
 * the gap before it can release any of that.  Taking gap jobs never moves the
 * frontier.  Past twice the budget the writer would cross the rest of the gap
 * alone, a directory at a time, and behind NAS latency a big domain (its user
 * directories stat'ed while later domains fill the budget) would be walked
 * by the writer alone.  So past it, workers still take the
 * smallest pending job when it sorts before every finished listing the
 * writer has yet to reach (e->finished: it lies in the gap, the writer needs
 * it next), but no more than one such look-ahead job per thread until the
 * writer takes their listings (e->ahead).  The job the writer waits for is
 * always the smallest pending one (every directory that sorts before it has
 * been emitted, hence listed), and when no worker has taken it the writer
 * lists it itself rather than wake a worker and sleep (a hand-off per
 * directory was most of a paused engine's time).  So the writer can always
 * progress, and memory stays under twice the budget plus two listings per
 * thread (in flight, and look-ahead), however large the tree.
 *
 * Tasks.  On a network file system a job may split the stats of a big
 * directory into pieces (list.c, fan-out) and hand them to the engine
 * (scan_fanout): idle workers take pieces before new jobs, the job's own
 * thread takes them too, and waits until all are done.  A piece never waits
 * for anything, so the job cannot wait forever; its listing is the job's, as
 * before.
 *
 * Ownership.  A child's job belongs to the listing that holds it until the
 * writer descends into it; then the writer owns the job's listing as a stack
 * frame and frees the job.  The queue only borrows jobs.
 */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <unistd.h>

#include "format/path.h"
#include "base/limits.h"
#include "scanner/internal.h"

typedef struct engine {
	scan_ctx ctx;
	pthread_mutex_t mu;
	pthread_cond_t work_cv; /* workers: a job is pending or the budget moved */
	pthread_cond_t done_cv; /* the writer: a job finished */
	pthread_cond_t task_cv; /* a task's last piece finished */
	scan_task *tasks;       /* tasks with pieces nobody has taken yet */
	cut_heap pending;       /* jobs nobody has taken, by canonical path (job_before) */
	cut_heap finished;      /* finished, not look-ahead, not yet taken by the writer */
	size_t ahead;           /* look-ahead jobs the writer has not taken */
	scan_job *awaited;      /* the job the writer waits for, or NULL */
	size_t buffered, budget, peak;
	bool paused;            /* buffered reached the budget; until it falls to half */
	cut_buf frontier;       /* the greatest path of a job finished so far */
	bool stop;
	int nthreads;
	scan_counters *counters; /* one per worker */
} engine;

/* ------------------------------------------------------------ the queue */

static bool job_less(const scan_job *a, const scan_job *b)
{
	return fmt_path_cmp(a->path, a->path_len, b->path, b->path_len) < 0;
}

static bool job_before(const void *a, const void *b, void *ctx)
{
	(void)ctx;
	return job_less(a, b);
}

/* ------------------------------------------------------------ the workers */

typedef struct worker_arg {
	engine *e;
	int id;
} worker_arg;

/* Publishes a finished listing, with the engine's lock held: queues the
 * child directories and wakes the threads that may want them.  taker: the
 * caller will take one new job itself, so one wake-up fewer is needed. */
static void job_done(engine *e, scan_job *j, scan_listing *l, bool taker)
{
	/* Wake one idle worker per new job (but the one the caller takes):
	 * with many threads on few cores a broadcast is a thundering herd. */
	bool mine = taker;
	for (size_t i = 0; i < l->n; i++)
		if (l->v[i].job) {
			cut_heap_push(&e->pending, l->v[i].job);
			if (!mine)
				pthread_cond_signal(&e->work_cv);
			mine = false;
		}
	size_t bytes = scan_listing_bytes(l);
	if (fmt_path_cmp(j->path, j->path_len, (const char *)e->frontier.p, e->frontier.len) > 0) {
		e->frontier.len = 0;
		cut_buf_put(&e->frontier, j->path, j->path_len);
	}
	j->out = l;
	j->done = true;
	if (!j->ahead && j != e->awaited) {
		cut_heap_push(&e->finished, j);
		j->in_finished = true;
	}
	e->buffered += bytes;
	if (e->buffered > e->peak)
		e->peak = e->buffered;
	if (e->buffered >= e->budget)
		e->paused = true;
	if (j == e->awaited)
		pthread_cond_signal(&e->done_cv); /* only the writer waits there */
}

/* j lies in the gap before the frontier, and memory is under twice the
 * budget. */
static bool gap_job(const engine *e, const scan_job *j)
{
	return e->buffered < 2 * e->budget &&
	       fmt_path_cmp(j->path, j->path_len, (const char *)e->frontier.p, e->frontier.len) < 0;
}

/* j sorts before every finished listing the writer has yet to take, and a
 * look-ahead slot is free. */
static bool lookahead_job(const engine *e, const scan_job *j)
{
	return e->ahead < (size_t)e->nthreads && (e->finished.n == 0 || job_less(j, e->finished.v[0]));
}

/* Whether a worker may take the smallest pending job while the engine is
 * paused (see Scheduling and memory above). */
static bool may_take_paused(const engine *e)
{
	const scan_job *j = e->pending.v[0];
	return j == e->awaited || gap_job(e, j) || lookahead_job(e, j);
}

/* Takes the smallest pending job (a worker), marking it look-ahead when
 * only that rule let it be taken. */
static scan_job *take_job(engine *e)
{
	scan_job *j = cut_heap_pop(&e->pending);
	j->ahead = e->paused && j != e->awaited && !gap_job(e, j);
	e->ahead += j->ahead;
	return j;
}

/* Takes the next piece of t, with the engine's lock held; a task whose last
 * piece is taken leaves the list. */
static size_t task_take(engine *e, scan_task *t)
{
	size_t i = t->next++;
	if (t->next == t->n)
		for (scan_task **p = &e->tasks; *p; p = &(*p)->link)
			if (*p == t) {
				*p = t->link;
				break;
			}
	return i;
}

/* Runs piece i of t, called and returning with the engine's lock held. */
static void task_run(engine *e, scan_task *t, size_t i, scan_counters *c)
{
	pthread_mutex_unlock(&e->mu);
	t->fn(t->arg, i, c);
	pthread_mutex_lock(&e->mu);
	if (++t->done == t->n)
		pthread_cond_broadcast(&e->task_cv);
}

/* A task's pieces come before new jobs: the job that split its work waits
 * for them, and the writer may be waiting for that job. */
void scan_fanout(scan_ctx *ctx, scan_task *t, scan_counters *c)
{
	engine *e = (engine *)ctx; /* ctx is the engine's first member */
	pthread_mutex_lock(&e->mu);
	t->next = t->done = 0;
	t->link = e->tasks;
	e->tasks = t;
	for (size_t i = 1; i < t->n && i < (size_t)e->nthreads; i++)
		pthread_cond_signal(&e->work_cv);
	while (t->next < t->n)
		task_run(e, t, task_take(e, t), c);
	while (t->done < t->n)
		pthread_cond_wait(&e->task_cv, &e->mu);
	pthread_mutex_unlock(&e->mu);
}

static void *worker(void *arg)
{
	worker_arg *wa = arg;
	engine *e = wa->e;
	scan_counters *c = &e->counters[wa->id];
	pthread_mutex_lock(&e->mu);
	for (;;) {
		while (!e->stop && !e->tasks &&
		       (e->pending.n == 0 || (e->paused && !may_take_paused(e))))
			pthread_cond_wait(&e->work_cv, &e->mu);
		if (e->stop)
			break;
		if (e->tasks) {
			scan_task *t = e->tasks;
			task_run(e, t, task_take(e, t), c);
			continue;
		}
		scan_job *j = take_job(e);
		pthread_mutex_unlock(&e->mu);
		scan_listing *l = scan_list_dir(&e->ctx, j, c);
		pthread_mutex_lock(&e->mu);
		job_done(e, j, l, true);
	}
	pthread_mutex_unlock(&e->mu);
	return NULL;
}

/* ------------------------------------------------------------ the writer */

typedef struct frame {
	scan_listing *l;
	size_t next;
} frame;

/* Frees a listing and everything it still owns (see Ownership above). */
static void listing_free_rec(scan_listing *l)
{
	if (!l)
		return;
	for (size_t i = 0; i < l->n; i++) {
		scan_job *j = l->v[i].job;
		if (!j)
			continue;
		if (j->done)
			listing_free_rec(j->out);
		scan_job_free(j);
	}
	scan_listing_free(l);
}

static scan_listing *wait_job(engine *e, scan_job *j)
{
	pthread_mutex_lock(&e->mu);
	if (!j->done && e->paused && e->pending.n && e->pending.v[0] == j) {
		/* No worker has taken it yet (a job not taken is the smallest
		 * pending one, see the top of this file).  The writer would
		 * only sleep until one does, so it lists the directory itself:
		 * handing jobs over one at a time would otherwise be most of a
		 * paused engine's time. */
		cut_heap_pop(&e->pending);
		pthread_mutex_unlock(&e->mu);
		scan_listing *l = scan_list_dir(&e->ctx, j, &e->counters[e->nthreads]);
		pthread_mutex_lock(&e->mu);
		job_done(e, j, l, false);
	}
	if (!j->done) {
		e->awaited = j;
		while (!j->done)
			pthread_cond_wait(&e->done_cv, &e->mu);
		e->awaited = NULL;
	}
	/* The writer reaches listings in canonical order, so a finished one
	 * it takes is the smallest left.  Were it not, the heap would keep a
	 * job the writer is about to free: stop here rather than later. */
	if (j->in_finished) {
		assert(e->finished.v[0] == j);
		cut_heap_pop(&e->finished);
		j->in_finished = false;
	}
	if (j->ahead) {
		j->ahead = false;
		e->ahead--;
	}
	if (e->paused && e->pending.n && may_take_paused(e))
		pthread_cond_signal(&e->work_cv); /* a look-ahead slot, or the gap moved */
	scan_listing *l = j->out;
	pthread_mutex_unlock(&e->mu);
	return l;
}

static void release(engine *e, scan_listing *l)
{
	size_t bytes = scan_listing_bytes(l);
	pthread_mutex_lock(&e->mu);
	e->buffered -= bytes;
	/* Resume at half the budget, not just below it: waking every worker
	 * each time one listing is written would be a thundering herd. */
	if (e->paused && e->buffered <= e->budget / 2) {
		e->paused = false;
		pthread_cond_broadcast(&e->work_cv);
	} else if (e->paused && e->buffered < 2 * e->budget && e->buffered + bytes >= 2 * e->budget) {
		pthread_cond_broadcast(&e->work_cv); /* gap jobs may go again */
	}
	pthread_mutex_unlock(&e->mu);
	scan_listing_free(l);
}

/* Whether the root is on a network (or FUSE) file system: the kernel says,
 * unless CUTOVER_FS says "local" or "network" (cutover(1), ENVIRONMENT);
 * when the kernel cannot tell, as if remote. */
static bool fs_remote(int rootfd)
{
	const char *v = getenv("CUTOVER_FS");
	if (v && strcmp(v, "network") == 0)
		return true;
	if (v && strcmp(v, "local") == 0)
		return false;
	return sys_fs_remote(rootfd) != 0;
}

/* How many directory fds may be kept open for the children's opens
 * (scan_dirref): half of what the open-file limit leaves after each thread's
 * few, the soft limit raised to the hard one first (the kernel's default
 * soft limit, 1024, is a historical accident; the hard one is the policy). */
static int dirref_limit(int nthreads)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return 0;
	if (rl.rlim_cur < rl.rlim_max && rl.rlim_cur < 65536) {
		struct rlimit want = rl;
		want.rlim_cur = rl.rlim_max < 65536 ? rl.rlim_max : 65536;
		if (setrlimit(RLIMIT_NOFILE, &want) == 0)
			rl = want;
	}
	long spare = ((long)rl.rlim_cur - 64 - 4L * nthreads) / 2;
	return spare <= 0 ? 0 : spare > 4096 ? 4096 : (int)spare;
}

static const char *hash_name(enum scan_hash h)
{
	return h == SCAN_HASH_ALL ? "all" : h == SCAN_HASH_CHANGED ? "changed" : "none";
}

static char *describe_options(const scan_opts *o)
{
	cut_buf b = {0};
	cut_buf_printf(&b, "hash=%s", hash_name(o->hash));
	if (o->one_fs)
		cut_buf_printf(&b, " one-file-system");
	if (o->full)
		cut_buf_printf(&b, " full");
	for (size_t i = 0; i < o->nexcludes; i++)
		cut_buf_printf(&b, " exclude=%s", o->excludes[i]);
	cut_buf_putc(&b, 0);
	return (char *)b.p;
}

/* Sets up an engine for the options o, before the root is known: nothing
 * is allocated and the root's fd is -1. */
static void engine_init(engine *e, const scan_opts *o)
{
	memset(e, 0, sizeof *e);
	e->pending.less = e->finished.less = job_before;
	e->ctx.o = o;
	e->ctx.policy = (scan_policy){o->excludes, o->nexcludes, o->immutable, o->nimmutable, o->maildir};
	e->ctx.rootfd = -1;
	e->budget = o->mem_budget ? o->mem_budget : SCAN_BUDGET_DEFAULT;
}

/* Resolves, opens and stats the root, and sizes the engine for its file
 * system; h->root takes the resolved path (h owns it), the engine the fd.
 * Returns 0, or -1 (logged). */
static int root_open(engine *e, const scan_opts *o, fmt_mheader *h, sys_stat *rst)
{
	char *real = realpath(o->root, NULL);
	if (!real) {
		CUT_SYSERR("%s: cannot resolve the root", o->root);
		return -1;
	}
	h->root = real;
	e->ctx.rootfd = open(real, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (e->ctx.rootfd < 0) {
		CUT_SYSERR("%s: cannot open the root directory", o->root);
		return -1;
	}
	int rc = sys_fstat(e->ctx.rootfd, rst);
	if (rc < 0) {
		errno = -rc;
		CUT_SYSERR("%s: cannot stat the root", o->root);
		return -1;
	}
	e->ctx.root_dev = rst->dev;
	e->ctx.remote = fs_remote(e->ctx.rootfd);
	atomic_init(&e->ctx.dirrefs, 0);
	e->nthreads = o->threads;
	if (e->nthreads <= 0)
		e->nthreads = e->ctx.remote ? SCAN_THREADS_REMOTE : SCAN_THREADS_LOCAL;
	e->ctx.max_dirrefs = dirref_limit(e->nthreads);
	return 0;
}

/* Opens the previous scan o->prev for the engine (which then owns it),
 * records it in h and gives the root job its previous entry (its strings
 * in arena).  Returns 0, or -1 (logged). */
static int prev_attach(engine *e, const scan_opts *o, fmt_mheader *h, scan_job *rootjob,
		       cut_arena *arena, int64_t gran)
{
	e->ctx.prev = scan_prev_open(o->prev);
	if (!e->ctx.prev)
		return -1;
	const fmt_mheader *ph = scan_prev_header(e->ctx.prev);
	if (strcmp(ph->root, h->root) != 0) {
		CUT_ERR("%s: was made of %s, not of %s; refusing to use it as the previous scan",
			o->prev, ph->root, h->root);
		return -1;
	}
	e->ctx.racy_limit_ns = ph->start_ns - gran;
	scan_prev_open_skel(e->ctx.prev, o->prev, h->policy);
	h->has_prev = true;
	memcpy(h->prev_id, scan_prev_id(e->ctx.prev), FMT_ID_LEN);
	fmt_entry pr;
	prev_pos pp;
	int r = scan_prev_root(e->ctx.prev, &pr, arena, &pp);
	if (r < 0)
		return -1;
	if (r == 0) {
		rootjob->prev = pp;
		rootjob->have_prev = true;
		rootjob->prev_self = pr;
	}
	return 0;
}

/* Creates the manifest's writer in *wp (the caller's, to abort or finish,
 * as soon as it exists) and writes the root's entry, carried from the
 * previous scan when unchanged.  Returns 0, or -1 (logged). */
static bool immutable_cb(void *policy, const char *path, size_t len)
{
	return scan_immutable(policy, path, len);
}

static int writer_start(engine *e, const scan_opts *o, const char *policy, const fmt_entry *rootent,
			const scan_job *rootjob, fmt_mwriter **wp)
{
	fmt_mwriter *w = fmt_mwriter_create(o->out);
	*wp = w;
	if (!w)
		return -1;
	if (o->scratch)
		fmt_mwriter_scratch(w);
	else if (e->ctx.prev && !o->full && scan_policy_any(&e->ctx.policy) &&
		 fmt_mwriter_skeleton(w, immutable_cb, &e->ctx.policy, policy) < 0)
		return -1; /* only an incremental scan carries files, which make its runs */
	prev_pos rootsrc = PREV_NONE;
	if (e->ctx.prev) {
		fmt_mwriter_set_prev(w, scan_prev_reader(e->ctx.prev));
		fmt_mwriter_set_prev_skeleton(w, scan_prev_skel(e->ctx.prev));
		if (rootjob->have_prev && fmt_entry_same(rootent, &rootjob->prev_self))
			rootsrc = rootjob->prev;
	}
	return fmt_mwriter_add_from(w, rootent, rootsrc.block, rootsrc.idx) < 0 ? -1 : 0;
}

/* Initialises the engine's lock and conditions, queues the root job and
 * starts the workers (*threads and *wargs are the caller's to free, once
 * the *started ones are joined).  Returns 0, or -1 when a thread would not
 * start (logged). */
static int engine_start(engine *e, scan_job *rootjob, pthread_t **threads, worker_arg **wargs,
			int *started)
{
	pthread_mutexattr_t ma;
	pthread_mutexattr_init(&ma);
#ifdef PTHREAD_ADAPTIVE_MUTEX_INITIALIZER_NP
	/* Short critical sections, many threads: spin a little before sleeping
	 * in the kernel (glibc). */
	pthread_mutexattr_settype(&ma, PTHREAD_MUTEX_ADAPTIVE_NP);
#endif
	pthread_mutex_init(&e->mu, &ma);
	pthread_mutexattr_destroy(&ma);
	pthread_cond_init(&e->work_cv, NULL);
	pthread_cond_init(&e->done_cv, NULL);
	pthread_cond_init(&e->task_cv, NULL);
	e->counters = cut_calloc((size_t)e->nthreads + 1, sizeof *e->counters); /* + the writer's */
	*threads = cut_calloc((size_t)e->nthreads, sizeof **threads);
	*wargs = cut_calloc((size_t)e->nthreads, sizeof **wargs);
	cut_heap_push(&e->pending, rootjob);
	for (int i = 0; i < e->nthreads; i++) {
		(*wargs)[i] = (worker_arg){e, i};
		int err = pthread_create(&(*threads)[i], NULL, worker, &(*wargs)[i]);
		if (err != 0) { /* it returns the error; errno is not set */
			CUT_ERR("cannot start scan thread %d: %s", i, strerror(err));
			return -1;
		}
		(*started)++;
	}
	return 0;
}

/* The writer's descent: a frame per directory being written, each owning
 * its listing (see Ownership above). */
typedef struct walk_stack {
	frame *v;
	size_t n, cap;
} walk_stack;

/* Calls o->progress at most every 100 ms (checked every 4096 children). */
static void walk_progress(engine *e, const scan_opts *o, const scan_stats *stats, int64_t t0,
			  int64_t *last, uint64_t ticks)
{
	if (!o->progress || (ticks & 4095) != 0)
		return;
	int64_t now = cut_mono_ns();
	if (now - *last > 100000000) {
		*last = now;
		pthread_mutex_lock(&e->mu);
		scan_progress p = {stats->entries, stats->bytes, e->pending.n, now - t0};
		pthread_mutex_unlock(&e->mu);
		o->progress(&p, o->progress_arg);
	}
}

/* Writes one child of a listing (a run of carried files as one) and counts
 * it.  0 or -1 (logged). */
static int walk_child(fmt_mwriter *w, const scan_child *ch, scan_stats *stats)
{
	if (ch->run) {
		const scan_carry *r = ch->run;
		fmt_mrun mr = {&ch->e, &r->last, ch->src.block, ch->src.idx, r->n, r->bytes, r->weight};
		if (fmt_mwriter_add_run(w, &mr) < 0)
			return -1;
		stats->entries += r->n;
		stats->files += r->n;
		stats->bytes += r->bytes;
		return 0;
	}
	if (fmt_mwriter_add_from(w, &ch->e, ch->src.block, ch->src.idx) < 0)
		return -1;
	stats->entries++;
	if (ch->e.type == FMT_T_FILE) {
		stats->files++;
		stats->bytes += ch->e.size;
	} else if (ch->e.type == FMT_T_DIR) {
		stats->dirs++;
	}
	return 0;
}

/* Writes every entry below the root to w in canonical order, descending
 * into each directory's listing as the workers finish it; takes and frees
 * *rootjob.  Returns 0, or -1 when w fails (logged); the listings left on
 * s are the caller's to free once the workers are stopped. */
static int walk(engine *e, const scan_opts *o, fmt_mwriter *w, scan_job **rootjob,
		walk_stack *s, scan_stats *stats)
{
	s->cap = 64;
	s->v = cut_malloc(s->cap * sizeof *s->v);
	s->v[s->n++] = (frame){wait_job(e, *rootjob), 0};
	scan_job_free(*rootjob);
	*rootjob = NULL;
	int64_t t0 = cut_mono_ns(), last = 0;
	uint64_t ticks = 0;
	while (s->n > 0) {
		frame *f = &s->v[s->n - 1];
		if (f->next == f->l->n) {
			release(e, f->l);
			s->n--;
			continue;
		}
		scan_child *ch = &f->l->v[f->next++];
		if (walk_child(w, ch, stats) < 0)
			return -1;
		walk_progress(e, o, stats, t0, &last, ++ticks);
		if (!ch->job)
			continue;
		scan_job *j = ch->job;
		ch->job = NULL;
		scan_listing *l = wait_job(e, j);
		scan_job_free(j);
		if (s->n == s->cap) {
			s->cap *= 2;
			s->v = cut_realloc(s->v, cut_size_mul(s->cap, sizeof *s->v));
		}
		s->v[s->n++] = (frame){l, 0};
	}
	return 0;
}

/* Stops the workers and joins the started ones. */
static void engine_stop(engine *e, pthread_t *threads, int started)
{
	pthread_mutex_lock(&e->mu);
	e->stop = true;
	pthread_cond_broadcast(&e->work_cv);
	pthread_mutex_unlock(&e->mu);
	for (int i = 0; i < started; i++)
		pthread_join(threads[i], NULL);
}

/* Adds the workers' and the writer's counters, and the peak of buffered
 * bytes, to stats. */
static void stats_collect(const engine *e, scan_stats *stats)
{
	for (int i = 0; i <= e->nthreads; i++) {
		const scan_counters *c = &e->counters[i];
		stats->errors += c->errors;
		stats->vanished += c->vanished;
		stats->retried += c->retried;
		stats->listed += c->listed;
		stats->skipped_dirs += c->skipped_dirs;
		stats->skel_dirs += c->skel_dirs;
		stats->stats += c->stats;
		stats->carried += c->carried;
		stats->hashed += c->hashed;
		stats->hashed_bytes += c->hashed_bytes;
		stats->hash_carried += c->hash_carried;
	}
	stats->peak_buffered = e->peak;
}

/* Destroys the engine's lock and conditions (the workers are joined). */
static void engine_destroy(engine *e)
{
	pthread_cond_destroy(&e->work_cv);
	pthread_cond_destroy(&e->done_cv);
	pthread_cond_destroy(&e->task_cv);
	pthread_mutex_destroy(&e->mu);
}

/* Fills the header's summary (host, options, policy, errors, end, stats)
 * and finishes the manifest *wp, taking it (*wp becomes NULL) and writing
 * its id.  Returns 1 when entries had errors, 0, or -1 (logged). */
static int manifest_finish(const scan_opts *o, scan_stats *stats, fmt_mheader *h,
			   fmt_mwriter **wp, uint8_t id[FMT_ID_LEN])
{
	char host[256] = "";
	gethostname(host, sizeof host - 1);
	h->host = cut_strndup(host, strlen(host));
	h->options = describe_options(o);
	h->errors = stats->errors;
	h->end_ns = cut_now_ns();
	cut_buf sb = {0};
	cut_buf_printf(&sb,
		       "listed=%" PRIu64 " skipped_dirs=%" PRIu64 " stats=%" PRIu64
		       " carried=%" PRIu64 " vanished=%" PRIu64 " hashed=%" PRIu64
		       " hashed_bytes=%" PRIu64 " hash_carried=%" PRIu64 " peak_buffered=%" PRIu64,
		       stats->listed, stats->skipped_dirs, stats->stats, stats->carried,
		       stats->vanished, stats->hashed, stats->hashed_bytes, stats->hash_carried,
		       stats->peak_buffered);
	stats->copied_blocks = fmt_mwriter_copied(*wp);
	cut_buf_printf(&sb, " copied_blocks=%" PRIu64 " skel_dirs=%" PRIu64, stats->copied_blocks,
		       stats->skel_dirs);
	cut_buf_putc(&sb, 0);
	h->stats = (char *)sb.p;
	fmt_mwriter *wd = *wp;
	*wp = NULL;
	if (fmt_mwriter_finish(wd, h, id) < 0)
		return -1;
	return stats->errors ? 1 : 0;
}

int scan_run(const scan_opts *o, scan_stats *stats, uint8_t id[FMT_ID_LEN])
{
	memset(stats, 0, sizeof *stats);
	engine e;
	engine_init(&e, o);
	int64_t gran = o->granularity_ns > 0 ? o->granularity_ns : 2000000000;
	fmt_mheader h;
	memset(&h, 0, sizeof h);
	h.start_ns = cut_now_ns();
	int ret = -1;
	fmt_mwriter *w = NULL;
	scan_job *rootjob = NULL;
	walk_stack stack = {0};
	pthread_t *threads = NULL;
	worker_arg *wargs = NULL;
	int started = 0;
	cut_arena rootarena = {0};
	sys_stat rst;
	fmt_entry rootent;

	if (root_open(&e, o, &h, &rst) < 0)
		goto out;
	h.policy = scan_policy_describe(&e.ctx.policy, gran);
	stats->threads = e.nthreads;
	memset(&rootent, 0, sizeof rootent);
	scan_entry_from_stat(&rootent, &rst);
	rootent.path = "";
	rootjob = scan_job_new(&rootent);
	if (o->prev && prev_attach(&e, o, &h, rootjob, &rootarena, gran) < 0)
		goto out;
	if (writer_start(&e, o, h.policy, &rootent, rootjob, &w) < 0)
		goto out;
	stats->entries = 1;
	stats->dirs = 1;

	if (engine_start(&e, rootjob, &threads, &wargs, &started) == 0 &&
	    walk(&e, o, w, &rootjob, &stack, stats) == 0)
		ret = 0;
	engine_stop(&e, threads, started);
	while (stack.n > 0)
		listing_free_rec(stack.v[--stack.n].l);
	stats_collect(&e, stats);
	engine_destroy(&e);
	if (ret == 0)
		ret = manifest_finish(o, stats, &h, &w, id);
out:
	fmt_mwriter_abort(w);
	if (rootjob)
		scan_job_free(rootjob);
	free(stack.v);
	free(threads);
	free(wargs);
	free(e.counters);
	cut_heap_free(&e.pending);
	cut_heap_free(&e.finished);
	cut_buf_free(&e.frontier);
	scan_prev_close(e.ctx.prev);
	cut_arena_free(&rootarena);
	if (e.ctx.rootfd >= 0)
		close(e.ctx.rootfd);
	fmt_mheader_free(&h);
	return ret;
}
