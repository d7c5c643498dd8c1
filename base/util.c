/*
 * util.c - logging, allocation, buffers and clocks shared by every module.
 * See util.h for the conventions.
 */
#include "util.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

int cut_verbosity;

void cut_log(int level, const char *file, int line, int err, const char *fmt, ...)
{
	static const char *const tag[] = {"error: ", "warning: ", "", ""};
	if (level > CUT_LOG_WARN && level - CUT_LOG_WARN > cut_verbosity)
		return;
	char msg[4096];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	/* One fprintf per line so that lines of concurrent threads never interleave. */
	if (cut_verbosity >= 2)
		fprintf(stderr, "cutover: %s%s%s%s (%s:%d)\n", tag[level], msg, err ? ": " : "",
			err ? strerror(err) : "", file, line);
	else
		fprintf(stderr, "cutover: %s%s%s%s\n", tag[level], msg, err ? ": " : "",
			err ? strerror(err) : "");
}

static void cut_oom(size_t n)
{
	fprintf(stderr, "cutover: error: out of memory allocating %zu bytes\n", n);
	abort();
}

void *cut_malloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (!p)
		cut_oom(n);
	return p;
}

void *cut_calloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size ? size : 1);
	if (!p)
		cut_oom(n * size);
	return p;
}

void *cut_realloc(void *p, size_t n)
{
	p = realloc(p, n ? n : 1);
	if (!p)
		cut_oom(n);
	return p;
}

char *cut_strndup(const char *s, size_t n)
{
	char *p = cut_malloc(n + 1);
	memcpy(p, s, n);
	p[n] = 0;
	return p;
}

size_t cut_path_trimmed_len(const char *p)
{
	size_t n = strlen(p);
	while (n > 1 && p[n - 1] == '/')
		n--;
	return n;
}

size_t cut_size_mul(size_t a, size_t b)
{
	if (b && a > SIZE_MAX / b) {
		fprintf(stderr, "cutover: error: size overflow (%zu * %zu)\n", a, b);
		abort();
	}
	return a * b;
}

void cut_buf_grow(cut_buf *b, size_t extra)
{
	if (b->cap - b->len >= extra)
		return;
	if (extra > SIZE_MAX / 2 - b->len)
		cut_oom(extra);
	size_t cap = b->cap ? b->cap : 256;
	while (cap - b->len < extra)
		cap *= 2;
	b->p = cut_realloc(b->p, cap);
	b->cap = cap;
}

void cut_buf_printf(cut_buf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	cut_buf_reserve(b, (size_t)n + 1);
	va_start(ap, fmt);
	vsnprintf((char *)b->p + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

char *cut_vasprintf(const char *fmt, va_list ap)
{
	va_list again;
	va_copy(again, ap);
	int n = vsnprintf(NULL, 0, fmt, ap);
	char *p = NULL;
	if (n >= 0) {
		p = cut_malloc((size_t)n + 1);
		vsnprintf(p, (size_t)n + 1, fmt, again);
	}
	va_end(again);
	return p;
}

const char *cut_bytes_human(char buf[32], uint64_t n)
{
	static const char *const unit[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
	double v = (double)n;
	int u = 0;
	while (v >= 1024 && u < 5)
		v /= 1024, u++;
	if (u == 0)
		snprintf(buf, 32, "%llu B", (unsigned long long)n);
	else
		snprintf(buf, 32, "%.1f %s", v, unit[u]);
	return buf;
}

void cut_buf_free(cut_buf *b)
{
	free(b->p);
	b->p = NULL;
	b->len = b->cap = 0;
}

struct cut_arena_chunk {
	struct cut_arena_chunk *next;
	size_t cap, len;
	max_align_t data[];
};

void *cut_arena_alloc(cut_arena *a, size_t n)
{
	n = (n + 15) & ~(size_t)15;
	struct cut_arena_chunk *c = a->head;
	if (!c || c->cap - c->len < n) {
		/* Chunks start small and double up to 64 KiB, so that many small
		 * arenas (one per directory listing) stay small. */
		size_t cap = c ? 2 * c->cap : 1024 - sizeof *c;
		if (cap > (64u << 10))
			cap = 64u << 10;
		if (cap < n)
			cap = n;
		c = cut_malloc(sizeof *c + cap);
		c->cap = cap;
		c->len = 0;
		c->next = a->head;
		a->head = c;
		a->reserved += sizeof *c + cap;
	}
	void *p = (char *)c->data + c->len;
	c->len += n;
	a->used += n;
	return p;
}

char *cut_arena_strndup(cut_arena *a, const char *s, size_t n)
{
	char *p = cut_arena_alloc(a, n + 1);
	if (n)
		memcpy(p, s, n);
	p[n] = 0;
	return p;
}

void cut_arena_free(cut_arena *a)
{
	struct cut_arena_chunk *c = a->head;
	while (c) {
		struct cut_arena_chunk *n = c->next;
		free(c);
		c = n;
	}
	a->head = NULL;
	a->used = 0;
	a->reserved = 0;
}

void cut_arena_absorb(cut_arena *dst, cut_arena *src)
{
	struct cut_arena_chunk *tail = src->head;
	if (!tail)
		return;
	while (tail->next)
		tail = tail->next;
	if (dst->head) { /* behind dst's current chunk, which keeps serving */
		tail->next = dst->head->next;
		dst->head->next = src->head;
	} else {
		dst->head = src->head;
	}
	dst->used += src->used;
	dst->reserved += src->reserved;
	src->head = NULL;
	src->used = src->reserved = 0;
}

int64_t cut_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return cut_ts_ns(ts);
}

int64_t cut_mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return cut_ts_ns(ts);
}

void cut_hex(char *out, const uint8_t *in, size_t n)
{
	static const char d[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = d[in[i] >> 4];
		out[2 * i + 1] = d[in[i] & 15];
	}
	out[2 * n] = 0;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int cut_unhex(uint8_t *out, size_t n, const char *s)
{
	if (strlen(s) != 2 * n)
		return -1;
	for (size_t i = 0; i < n; i++) {
		int hi = hexval(s[2 * i]), lo = hexval(s[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return -1;
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return 0;
}

int cut_write_all(int fd, const void *buf, size_t n)
{
	const uint8_t *p = buf;
	while (n) {
		ssize_t w = write(fd, p, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

long long cut_pread_all(int fd, void *buf, size_t n, uint64_t off)
{
	size_t got = 0;
	while (got < n) {
		ssize_t r = pread(fd, (uint8_t *)buf + got, n - got, (off_t)(off + got));
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (r == 0)
			break;
		got += (size_t)r;
	}
	return (long long)got;
}

/* ---- heap --------------------------------------------------------------- */

void cut_heap_push(cut_heap *h, void *x)
{
	if (h->n == h->cap) {
		h->cap = h->cap ? 2 * h->cap : 64;
		h->v = cut_realloc(h->v, cut_size_mul(h->cap, sizeof *h->v));
	}
	size_t i = h->n++;
	while (i > 0) {
		size_t parent = (i - 1) / 2;
		if (!h->less(x, h->v[parent], h->ctx))
			break;
		h->v[i] = h->v[parent];
		i = parent;
	}
	h->v[i] = x;
}

/* Puts x at hole i and sifts it down to its place. */
static void heap_sift_down(cut_heap *h, size_t i, void *x)
{
	for (;;) {
		size_t l = 2 * i + 1, m = i;
		void *best = x;
		if (l < h->n && h->less(h->v[l], best, h->ctx))
			m = l, best = h->v[l];
		if (l + 1 < h->n && h->less(h->v[l + 1], best, h->ctx))
			m = l + 1;
		if (m == i)
			break;
		h->v[i] = h->v[m];
		i = m;
	}
	h->v[i] = x;
}

void *cut_heap_pop(cut_heap *h)
{
	void *top = h->v[0], *last = h->v[--h->n];
	if (h->n)
		heap_sift_down(h, 0, last);
	return top;
}

void cut_heap_fix_top(cut_heap *h)
{
	if (h->n)
		heap_sift_down(h, 0, h->v[0]);
}

void cut_heap_free(cut_heap *h)
{
	free(h->v);
	h->v = NULL;
	h->n = h->cap = 0;
}
