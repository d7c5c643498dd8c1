/*
 * prefetch.c - reads the OLD side of the join in a second thread, so that
 * decoding OLD and decoding NEW (plus the join itself) use two cores.
 *
 * The producer thread runs diff_view_next and copies entries into a ring of
 * batches; the consumer (the join) takes whole batches.  The thread owns the
 * view until diff_pf_stop, which also serves to abandon the read early.
 * Errors are logged by the view, in the producer thread, and returned to the
 * consumer after the entries before them.
 */
#include "diff/diff.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>

#define PF_SLOTS 4
#define PF_BATCH 1024

typedef struct slot {
	fmt_entry e[PF_BATCH];
	size_t poff[PF_BATCH], toff[PF_BATCH];
	cut_buf strs;
	unsigned n;
	int end;     /* 0: more follow; 1: the view ended; -1: it failed */
	bool full;
} slot;

struct diff_pf {
	diff_view *v;
	pthread_t th;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool quit;
	slot s[PF_SLOTS];
	unsigned prod, cons, pos; /* slot being filled / read, position in it */
	bool done;
};

static void *producer(void *arg)
{
	diff_pf *p = arg;
	for (unsigned k = 0;; k = (k + 1) % PF_SLOTS) {
		slot *s = &p->s[k];
		pthread_mutex_lock(&p->mu);
		while (s->full && !p->quit)
			pthread_cond_wait(&p->cv, &p->mu);
		bool quit = p->quit;
		pthread_mutex_unlock(&p->mu);
		if (quit)
			return NULL;
		s->n = 0;
		s->strs.len = 0;
		s->end = 0;
		while (s->n < PF_BATCH) {
			fmt_entry e;
			int rc = diff_view_next(p->v, &e);
			if (rc <= 0) {
				s->end = rc == 0 ? 1 : -1;
				break;
			}
			s->e[s->n] = e;
			s->poff[s->n] = s->strs.len;
			cut_buf_put(&s->strs, e.path, e.path_len + 1);
			s->toff[s->n] = s->strs.len;
			if (e.target)
				cut_buf_put(&s->strs, e.target, e.target_len + 1);
			s->n++;
		}
		pthread_mutex_lock(&p->mu);
		s->full = true;
		pthread_cond_broadcast(&p->cv);
		pthread_mutex_unlock(&p->mu);
		if (s->end)
			return NULL;
	}
}

diff_pf *diff_pf_start(diff_view *v)
{
	diff_pf *p = cut_calloc(1, sizeof *p);
	p->v = v;
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->cv, NULL);
	int err = pthread_create(&p->th, NULL, producer, p);
	if (err != 0) {
		CUT_ERR("cannot start the reading thread: %s", strerror(err));
		pthread_mutex_destroy(&p->mu);
		pthread_cond_destroy(&p->cv);
		free(p);
		return NULL;
	}
	return p;
}

int diff_pf_next(diff_pf *p, fmt_entry *e)
{
	for (;;) {
		if (p->done)
			return 0;
		slot *s = &p->s[p->cons];
		if (p->pos == 0) {
			pthread_mutex_lock(&p->mu);
			while (!s->full)
				pthread_cond_wait(&p->cv, &p->mu);
			pthread_mutex_unlock(&p->mu);
		}
		if (p->pos < s->n) {
			unsigned i = p->pos++;
			*e = s->e[i];
			e->path = (const char *)s->strs.p + s->poff[i];
			if (e->target)
				e->target = (const char *)s->strs.p + s->toff[i];
			return 1;
		}
		if (s->end) {
			p->done = true;
			return s->end < 0 ? -1 : 0;
		}
		/* Batch used up: hand the slot back.  The entry returned last
		 * stays valid: its strings are in this slot, which the producer
		 * refills only after PF_SLOTS - 1 other batches. */
		pthread_mutex_lock(&p->mu);
		s->full = false;
		pthread_cond_broadcast(&p->cv);
		pthread_mutex_unlock(&p->mu);
		p->cons = (p->cons + 1) % PF_SLOTS;
		p->pos = 0;
	}
}

void diff_pf_stop(diff_pf *p)
{
	if (!p)
		return;
	pthread_mutex_lock(&p->mu);
	p->quit = true;
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mu);
	pthread_join(p->th, NULL);
	pthread_mutex_destroy(&p->mu);
	pthread_cond_destroy(&p->cv);
	for (unsigned i = 0; i < PF_SLOTS; i++)
		cut_buf_free(&p->s[i].strs);
	free(p);
}
