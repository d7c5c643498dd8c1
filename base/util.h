/*
 * util.h - the bottom layer every cutover module shares: logging, outcomes,
 * growable buffers, little-endian and varint codecs.
 *
 * Error convention (see README "Conventions"): a function that fails logs the
 * root cause once, here through CUT_ERR (or CUT_SYSERR when errno holds the
 * cause), naming the file or path, and returns -1, or -errno where callers
 * tell errors apart, or a cut_outcome where they must tell outcomes apart;
 * callers add nothing or a short breadcrumb and pass the failure upward.
 * Only cli/ chooses an exit code, and only cli/main.c exits.
 */
#ifndef CUTOVER_UTIL_H
#define CUTOVER_UTIL_H

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>
#include <string.h>
#include <time.h>

#define CUTOVER_VERSION "0.1.0"

/* The outcome of a library operation whose callers must tell more than
 * success from failure apart (sync_run, sync_switch, sync_heal, sync_init,
 * sync_lock_take, rp_run: each header says which it returns).  Only what
 * happened, not a process exit status: cli/ alone turns an outcome into
 * an exit code (cli_exit_code in cli/cli.h).  Every other library
 * function returns 0 or -1, or -errno where callers tell errors apart. */
typedef enum cut_outcome {
	CUT_OK = 0,     /* done, nothing to report */
	CUT_DIFFER,     /* the two sides differ */
	CUT_FAILED,     /* bad or corrupt input, I/O error: nothing (more) done; logged */
	CUT_INCOMPLETE, /* finished, but some paths were skipped (listed on stderr) */
	CUT_CONFLICT,   /* replay stopped at a target that is not as the log expects */
	CUT_NOSPACE,    /* the target ran out of space; running again resumes */
	CUT_LOCKED,     /* another cutover run holds the state lock or the journal */
	CUT_LATE,       /* a switched subtree changed on the source (late writes) */
	CUT_INVALID,    /* the caller's options do not fit the request or the state; logged */
} cut_outcome;

/* Logging.  Messages go to stderr, one line each, prefixed "cutover: ".
 * cut_verbosity: 0 = errors and warnings, 1 = -v, 2 = -vv (debug, adds file:line). */
extern int cut_verbosity;
enum { CUT_LOG_ERR, CUT_LOG_WARN, CUT_LOG_INFO, CUT_LOG_DEBUG };
void cut_log(int level, const char *file, int line, int err, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));
#define CUT_ERR(...) cut_log(CUT_LOG_ERR, __FILE__, __LINE__, 0, __VA_ARGS__)
#define CUT_SYSERR(...) cut_log(CUT_LOG_ERR, __FILE__, __LINE__, errno, __VA_ARGS__)
#define CUT_WARN(...) cut_log(CUT_LOG_WARN, __FILE__, __LINE__, 0, __VA_ARGS__)
#define CUT_SYSWARN(...) cut_log(CUT_LOG_WARN, __FILE__, __LINE__, errno, __VA_ARGS__)
#define CUT_INFO(...) cut_log(CUT_LOG_INFO, __FILE__, __LINE__, 0, __VA_ARGS__)
#define CUT_DEBUG(...) cut_log(CUT_LOG_DEBUG, __FILE__, __LINE__, 0, __VA_ARGS__)

/* Allocation that cannot fail: out of memory aborts with a message (as git's
 * xmalloc does); every size is checked for overflow before it is used. */
void *cut_malloc(size_t n);
void *cut_calloc(size_t n, size_t size);
void *cut_realloc(void *p, size_t n);
char *cut_strndup(const char *s, size_t n);
/* The length of a path given by a user without its trailing slashes ("/"
 * stays "/"): "/srv/mail/" and "/srv/mail" name one directory. */
size_t cut_path_trimmed_len(const char *p);
size_t cut_size_mul(size_t a, size_t b); /* aborts on overflow */

/* A growable byte buffer.  p may move on every append: pointers into it stop
 * being valid after any call that grows it. */
typedef struct cut_buf {
	uint8_t *p;
	size_t len, cap;
} cut_buf;
void cut_buf_grow(cut_buf *b, size_t extra);
static inline void cut_buf_reserve(cut_buf *b, size_t extra)
{
	if (b->cap - b->len < extra)
		cut_buf_grow(b, extra);
}
static inline void cut_buf_put(cut_buf *b, const void *data, size_t n)
{
	cut_buf_reserve(b, n);
	if (n)
		memcpy(b->p + b->len, data, n);
	b->len += n;
}
static inline void cut_buf_putc(cut_buf *b, uint8_t c)
{
	if (b->len == b->cap)
		cut_buf_reserve(b, 1);
	b->p[b->len++] = c;
}
void cut_buf_printf(cut_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void cut_buf_free(cut_buf *b);
/* A new string formatted as by vsprintf (caller frees), or NULL if the
 * format fails. */
char *cut_vasprintf(const char *fmt, va_list ap) __attribute__((format(printf, 1, 0)));
/* A byte count for people ("1.5 GiB") into buf. */
const char *cut_bytes_human(char buf[32], uint64_t n);

/* A chunked arena: allocations never move, and are freed all at once. */
/* A binary min-heap of pointers, ordered by less(a, b, ctx): the scanner's
 * job queues, the diff's merge of spilled runs.  Zero-initialise with less
 * and ctx set. */
typedef struct cut_heap {
	void **v;
	size_t n, cap;
	bool (*less)(const void *a, const void *b, void *ctx);
	void *ctx;
} cut_heap;
void cut_heap_push(cut_heap *h, void *x);
/* Removes and returns the least; h must not be empty. */
void *cut_heap_pop(cut_heap *h);
/* Restores the order after the top's key grew in place. */
void cut_heap_fix_top(cut_heap *h);
void cut_heap_free(cut_heap *h);
static inline void *cut_heap_top(const cut_heap *h) { return h->n ? h->v[0] : NULL; }

typedef struct cut_arena {
	struct cut_arena_chunk *head;
	size_t used;     /* bytes handed out */
	size_t reserved; /* bytes allocated from malloc, for memory accounting */
} cut_arena;
void *cut_arena_alloc(cut_arena *a, size_t n);
char *cut_arena_strndup(cut_arena *a, const char *s, size_t n);
void cut_arena_free(cut_arena *a);
/* Moves every chunk of src into dst (what src handed out stays valid, now
 * owned by dst); src is left empty.  New allocations still come from dst's
 * current chunk. */
void cut_arena_absorb(cut_arena *dst, cut_arena *src);

/* Little-endian fixed-width fields (the whole on-disk format is little-endian). */
static inline void cut_put_le16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static inline void cut_put_le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}
static inline void cut_put_le64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}
static inline uint16_t cut_get_le16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }
static inline uint32_t cut_get_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static inline uint64_t cut_get_le64(const uint8_t *p)
{
	return (uint64_t)cut_get_le32(p) | (uint64_t)cut_get_le32(p + 4) << 32;
}

/* LEB128 varints: 7 bits a byte, low group first, high bit = more follows.
 * At most 10 bytes for a uint64_t. */
#define CUT_VARINT_MAX 10
/* Writes v at p (CUT_VARINT_MAX bytes of room); returns its length. */
static inline size_t cut_varint_put(uint8_t *p, uint64_t v)
{
	size_t n = 0;
	while (v >= 0x80) {
		p[n++] = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	p[n++] = (uint8_t)v;
	return n;
}
static inline void cut_buf_varint(cut_buf *b, uint64_t v)
{
	cut_buf_reserve(b, CUT_VARINT_MAX);
	b->len += cut_varint_put(b->p + b->len, v);
}
/* Reads a varint from [*pp, end).  Returns 0 and advances *pp, or -1 when the
 * input ends inside the varint or the value does not fit 64 bits. */
static inline int cut_get_varint(const uint8_t **pp, const uint8_t *end, uint64_t *out)
{
	const uint8_t *p = *pp;
	uint64_t v = 0;
	for (unsigned shift = 0; p < end; shift += 7) {
		uint8_t c = *p++;
		if (shift == 63 && c > 1)
			return -1;
		v |= (uint64_t)(c & 0x7f) << shift;
		if (!(c & 0x80)) {
			*pp = p;
			*out = v;
			return 0;
		}
		if (shift == 63)
			return -1;
	}
	return -1;
}
static inline uint64_t cut_zigzag(int64_t v) { return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63); }
static inline int64_t cut_unzigzag(uint64_t v) { return (int64_t)(v >> 1) ^ -(int64_t)(v & 1); }

/* Every time in cutover is an int64_t of nanoseconds: since the epoch
 * (file times, the wall clock) or since some start (the monotonic clock). */
#define CUT_NS_PER_S 1000000000LL
#define CUT_NS_PER_MS 1000000LL
#define CUT_NS_PER_US 1000LL
static inline int64_t cut_ts_ns(struct timespec ts) { return (int64_t)ts.tv_sec * CUT_NS_PER_S + ts.tv_nsec; }
/* A time as a timespec, tv_nsec in [0, 1 s) for times before the epoch too. */
static inline struct timespec cut_ns_ts(int64_t ns)
{
	struct timespec t = {.tv_sec = (time_t)(ns / CUT_NS_PER_S), .tv_nsec = (long)(ns % CUT_NS_PER_S)};
	if (t.tv_nsec < 0) {
		t.tv_sec--;
		t.tv_nsec += CUT_NS_PER_S;
	}
	return t;
}
static inline double cut_secs(int64_t ns) { return (double)ns / (double)CUT_NS_PER_S; }

/* Wall clock in nanoseconds since the epoch, and a monotonic clock. */
int64_t cut_now_ns(void);
int64_t cut_mono_ns(void);

/* Hex of n bytes into out (2n+1 bytes). */
void cut_hex(char *out, const uint8_t *in, size_t n);
/* Parses 2n hex digits; returns 0, or -1 if s is not exactly that. */
int cut_unhex(uint8_t *out, size_t n, const char *s);

/* Writes all of buf to fd (retrying short writes and EINTR).  Returns 0 or -errno. */
int cut_write_all(int fd, const void *buf, size_t n);
/* pread that loops until n bytes or EOF.  Returns bytes read or -errno. */
long long cut_pread_all(int fd, void *buf, size_t n, uint64_t off);

#endif
