/*
 * spill.c - the external sorter of diff records (see diff_item.h).
 *
 * Records are serialized (the struct, then its strings) into an arena; past
 * the memory limit the arena is sorted and written to an unlinked temporary
 * file as one run, and emptied.  Reading back either walks the in-memory
 * array (no run was written) or merges all runs through a binary heap.
 * Temporary files are unlinked at creation, so nothing is left behind even
 * when the process dies.
 */
#include "diff/diff_item.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "format/path.h"

_Thread_local size_t diff_sorter_peak_mem; /* each diff runs in one thread, several may run at once (switch) */
static _Thread_local size_t sorters_mem; /* bytes held by this thread's live sorters */

/* ------------------------------------------------------------ comparators */

int diff_cmp_path(const diff_item *a, const diff_item *b)
{
	int r = fmt_path_cmp(a->c.e.path, a->c.e.path_len, b->c.e.path, b->c.e.path_len);
	return r ? r : (a->seq > b->seq) - (a->seq < b->seq);
}

int diff_cmp_path_rev(const diff_item *a, const diff_item *b) { return -diff_cmp_path(a, b); }

int diff_cmp_p2(const diff_item *a, const diff_item *b)
{
	int r = fmt_path_cmp(a->p2 ? a->p2 : "", a->p2_len, b->p2 ? b->p2 : "", b->p2_len);
	return r ? r : diff_cmp_path(a, b);
}

int diff_cmp_seq(const diff_item *a, const diff_item *b) { return (a->seq > b->seq) - (a->seq < b->seq); }

#define CMP3(x, y) do { if ((x) != (y)) return (x) < (y) ? -1 : 1; } while (0)

int diff_cmp_match(const diff_item *a, const diff_item *b)
{
	CMP3(a->c.e.type, b->c.e.type);
	CMP3(a->c.e.ino, b->c.e.ino);
	CMP3(a->c.e.size, b->c.e.size);
	CMP3(a->c.e.mtime_ns, b->c.e.mtime_ns);
	return diff_cmp_path(a, b);
}

int diff_cmp_hash(const diff_item *a, const diff_item *b)
{
	int r = memcmp(a->c.e.hash, b->c.e.hash, sizeof a->c.e.hash);
	if (r)
		return r < 0 ? -1 : 1;
	CMP3(a->c.e.size, b->c.e.size);
	return diff_cmp_path(a, b);
}

int diff_cmp_inode(const diff_item *a, const diff_item *b)
{
	CMP3(a->c.e.dev, b->c.e.dev);
	CMP3(a->c.e.ino, b->c.e.ino);
	return diff_cmp_path(a, b);
}

/* ---------------------------------------------------------- serialization */

/* Layout: u32 total length, u32 zero, the diff_item struct (8-aligned: arena
 * records and read buffers are), then path, target, to, p2 bytes (lengths are
 * in the struct).  In memory the struct's pointers point at its own strings,
 * so a record compares in place, without a copy; in a run file they mean
 * nothing but "present or not", and deser points them again. */
#define REC_HDR 8

static size_t ser_len(const diff_item *it)
{
	return REC_HDR + sizeof *it + it->c.e.path_len + (it->c.e.target ? it->c.e.target_len : 0) +
	       (it->c.to ? it->c.to_len : 0) + (it->p2 ? it->p2_len : 0);
}

static void ser(uint8_t *p, const diff_item *it, size_t len)
{
	uint32_t l32 = (uint32_t)len;
	memcpy(p, &l32, 4);
	memset(p + 4, 0, REC_HDR - 4);
	diff_item *t = (diff_item *)(void *)(p + REC_HDR);
	*t = *it;
	char *q = (char *)(t + 1);
	memcpy(q, it->c.e.path, it->c.e.path_len);
	t->c.e.path = q;
	q += it->c.e.path_len;
	if (it->c.e.target) {
		memcpy(q, it->c.e.target, it->c.e.target_len);
		t->c.e.target = q;
		q += it->c.e.target_len;
	}
	if (it->c.to) {
		memcpy(q, it->c.to, it->c.to_len);
		t->c.to = q;
		q += it->c.to_len;
	}
	if (it->p2) {
		memcpy(q, it->p2, it->p2_len);
		t->p2 = q;
	}
}

/* The record at p, compared in place (its strings are not NUL-terminated;
 * comparators use the lengths). */
static const diff_item *rec_item(const uint8_t *p)
{
	return (const diff_item *)(const void *)(p + REC_HDR);
}

/* Decodes the record at p into *it; strings point into buf, which gets NUL
 * terminators (so buf is rebuilt here: the strings are copied). */
static void deser(const uint8_t *p, diff_item *it, cut_buf *strs)
{
	memcpy(it, p + REC_HDR, sizeof *it);
	const char *q = (const char *)p + REC_HDR + sizeof *it;
	size_t need = it->c.e.path_len + it->c.e.target_len + it->c.to_len + it->p2_len + 4;
	strs->len = 0;
	cut_buf_reserve(strs, need);
	char *o = (char *)strs->p;
#define TAKE(ptr, len, present)                    \
	do {                                       \
		if (present) {                     \
			memcpy(o, q, (len));       \
			o[(len)] = 0;              \
			(ptr) = o;                 \
			q += (len), o += (len) + 1; \
		} else {                           \
			(ptr) = NULL;              \
		}                                  \
	} while (0)
	TAKE(it->c.e.path, it->c.e.path_len, 1);
	TAKE(it->c.e.target, it->c.e.target_len, it->c.e.target != NULL);
	TAKE(it->c.to, it->c.to_len, it->c.to != NULL);
	TAKE(it->p2, it->p2_len, it->p2 != NULL);
#undef TAKE
}

/* ------------------------------------------------------------------ sorter */

typedef struct run {
	FILE *f;
	cut_buf rec, strs;
	diff_item cur;
	bool have;
} run;

struct diff_sorter {
	char *name, *tmpdir;
	diff_cmp_fn cmp;
	size_t limit;
	cut_arena arena;       /* serialized records in memory */
	uint8_t **recs;        /* pointers into arena */
	size_t nrecs, caprecs;
	uint64_t count;
	run *runs;
	unsigned nruns;
	/* reading */
	bool sorted;
	size_t pos;            /* in-memory reading position */
	cut_heap heap;         /* the runs with a record, by cur (run_before) */
	cut_buf strs;
	size_t held;           /* bytes accounted in sorters_mem */
};

static void account(diff_sorter *s)
{
	size_t now = s->arena.used + s->caprecs * sizeof *s->recs;
	sorters_mem = sorters_mem - s->held + now;
	s->held = now;
	if (sorters_mem > diff_sorter_peak_mem)
		diff_sorter_peak_mem = sorters_mem;
}

diff_sorter *diff_sorter_new(const char *name, diff_cmp_fn cmp, size_t mem_limit,
			     const char *tmpdir)
{
	diff_sorter *s = cut_calloc(1, sizeof *s);
	s->name = cut_strndup(name, strlen(name));
	if (!tmpdir)
		tmpdir = getenv("TMPDIR");
	if (!tmpdir || !*tmpdir)
		tmpdir = "/tmp";
	s->tmpdir = cut_strndup(tmpdir, strlen(tmpdir));
	s->cmp = cmp;
	s->limit = mem_limit < (1u << 16) ? (1u << 16) : mem_limit;
	return s;
}

static _Thread_local diff_cmp_fn qsort_cmp; /* qsort has no context argument */
static int cmp_recs(const void *a, const void *b)
{
	return qsort_cmp(rec_item(*(uint8_t *const *)a), rec_item(*(uint8_t *const *)b));
}

/* Sorts the in-memory records.  Not reentrant (qsort has no context
 * argument in C11); the diff is single-threaded. */
static void sort_mem(diff_sorter *s)
{
	qsort_cmp = s->cmp;
	if (s->nrecs > 1)
		qsort(s->recs, s->nrecs, sizeof *s->recs, cmp_recs);
}

/* Writes the in-memory records as one sorted run.  0 or -1 (logged). */
static int spill(diff_sorter *s)
{
	sort_mem(s);
	char tmpl[4096];
	snprintf(tmpl, sizeof tmpl, "%s/cutover-diff-%s.XXXXXX", s->tmpdir, s->name);
	int fd = mkstemp(tmpl);
	if (fd < 0) {
		CUT_SYSERR("%s: cannot create a temporary file for the %s list", tmpl, s->name);
		return -1;
	}
	unlink(tmpl);
	FILE *f = fdopen(fd, "w+");
	if (!f) {
		CUT_SYSERR("%s: fdopen", tmpl);
		close(fd);
		return -1;
	}
	for (size_t i = 0; i < s->nrecs; i++) {
		uint32_t l;
		memcpy(&l, s->recs[i], 4);
		if (fwrite(s->recs[i], 1, l, f) != l) {
			CUT_SYSERR("%s: cannot write a sorted run of the %s list", s->tmpdir, s->name);
			fclose(f);
			return -1;
		}
	}
	if (fflush(f) != 0) {
		CUT_SYSERR("%s: cannot write a sorted run of the %s list", s->tmpdir, s->name);
		fclose(f);
		return -1;
	}
	s->runs = cut_realloc(s->runs, cut_size_mul(s->nruns + 1, sizeof *s->runs));
	memset(&s->runs[s->nruns], 0, sizeof s->runs[0]);
	s->runs[s->nruns++].f = f;
	cut_arena_free(&s->arena);
	s->nrecs = 0;
	account(s);
	CUT_DEBUG("diff: %s list spilled run %u", s->name, s->nruns);
	return 0;
}

int diff_sorter_add(diff_sorter *s, const diff_item *it)
{
	size_t len = ser_len(it);
	if (s->nrecs && s->arena.used + len + s->caprecs * sizeof *s->recs > s->limit &&
	    spill(s) < 0)
		return -1;
	uint8_t *p = cut_arena_alloc(&s->arena, len);
	ser(p, it, len);
	if (s->nrecs == s->caprecs) {
		s->caprecs = s->caprecs ? s->caprecs * 2 : 256;
		s->recs = cut_realloc(s->recs, cut_size_mul(s->caprecs, sizeof *s->recs));
	}
	s->recs[s->nrecs++] = p;
	s->count++;
	account(s);
	return 0;
}

/* Reads the next record of run r into r->cur.  0 (r->have says whether there
 * was one) or -1. */
static int run_read(diff_sorter *s, run *r)
{
	uint32_t l;
	size_t n = fread(&l, 1, 4, r->f);
	if (n == 0 && feof(r->f)) {
		r->have = false;
		return 0;
	}
	if (n != 4 || l < REC_HDR + sizeof(diff_item)) {
		CUT_ERR("%s: temporary run of the %s list is damaged", s->tmpdir, s->name);
		return -1;
	}
	r->rec.len = 0;
	cut_buf_reserve(&r->rec, l);
	memcpy(r->rec.p, &l, 4);
	if (fread(r->rec.p + 4, 1, l - 4, r->f) != l - 4) {
		CUT_SYSERR("%s: cannot read back a run of the %s list", s->tmpdir, s->name);
		return -1;
	}
	deser(r->rec.p, &r->cur, &r->strs);
	r->have = true;
	return 0;
}

static bool run_before(const void *a, const void *b, void *ctx)
{
	const diff_sorter *s = ctx;
	return s->cmp(&((const run *)a)->cur, &((const run *)b)->cur) < 0;
}

int diff_sorter_sort(diff_sorter *s)
{
	s->sorted = true;
	s->pos = 0;
	if (s->nruns == 0) {
		sort_mem(s);
		return 0;
	}
	if (s->nrecs && spill(s) < 0)
		return -1;
	cut_heap_free(&s->heap);
	s->heap = (cut_heap){.less = run_before, .ctx = s};
	s->pos = 0;
	for (unsigned i = 0; i < s->nruns; i++) {
		run *r = &s->runs[i];
		if (fseeko(r->f, 0, SEEK_SET) != 0) {
			CUT_SYSERR("%s: cannot rewind a run of the %s list", s->tmpdir, s->name);
			return -1;
		}
		if (run_read(s, r) < 0)
			return -1;
		if (r->have)
			cut_heap_push(&s->heap, r);
	}
	return 0;
}

int diff_sorter_rewind(diff_sorter *s)
{
	if (s->nruns == 0) {
		s->pos = 0;
		return 0;
	}
	cut_heap_free(&s->heap);
	return diff_sorter_sort(s);
}

int diff_sorter_next(diff_sorter *s, diff_item *it)
{
	if (s->nruns == 0) {
		if (s->pos >= s->nrecs)
			return 0;
		deser(s->recs[s->pos++], it, &s->strs);
		return 1;
	}
	/* The heap top's record was handed out last time: advance it now, so the
	 * strings given before stayed valid until this call. */
	if (s->pos) {
		run *r = cut_heap_top(&s->heap);
		if (run_read(s, r) < 0)
			return -1;
		if (r->have)
			cut_heap_fix_top(&s->heap);
		else
			cut_heap_pop(&s->heap);
	}
	run *r = cut_heap_top(&s->heap);
	if (!r)
		return 0;
	s->pos = 1;
	*it = r->cur;
	/* Copy the strings out: the heap may reorder before the next call. */
	deser(r->rec.p, it, &s->strs);
	return 1;
}

void diff_sorter_reset(diff_sorter *s)
{
	for (unsigned i = 0; i < s->nruns; i++) {
		fclose(s->runs[i].f);
		cut_buf_free(&s->runs[i].rec);
		cut_buf_free(&s->runs[i].strs);
	}
	free(s->runs);
	s->runs = NULL;
	s->nruns = 0;
	cut_heap_free(&s->heap);
	cut_arena_free(&s->arena);
	free(s->recs);
	s->recs = NULL;
	s->nrecs = s->caprecs = 0;
	s->count = 0;
	s->sorted = false;
	s->pos = 0;
	account(s);
}

uint64_t diff_sorter_count(const diff_sorter *s) { return s->count; }
unsigned diff_sorter_runs(const diff_sorter *s) { return s ? s->nruns : 0; }

void diff_sorter_free(diff_sorter *s)
{
	if (!s)
		return;
	diff_sorter_reset(s);
	cut_buf_free(&s->strs);
	free(s->name);
	free(s->tmpdir);
	free(s);
}
