/*
 * json.c - JSON strings with reversible escaping of non-UTF-8 bytes (the
 * rules are in json.h).  One escaper, two sinks: a cut_buf (report builds its
 * output in buffers that may spill) and a FILE (show streams entries).
 */
#include <math.h>
#include <stdio.h>

#include "base/json.h"

/* Length of the valid UTF-8 sequence at p (1-4), or 0 if invalid: overlong
 * forms, surrogates and code points past U+10FFFF are invalid. */
static size_t utf8_len(const unsigned char *p, size_t n)
{
	unsigned c = p[0];
	size_t len;
	unsigned min;
	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		len = 2, min = 0x80;
	else if (c >= 0xe0 && c <= 0xef)
		len = 3, min = 0x800;
	else if (c >= 0xf0 && c <= 0xf4)
		len = 4, min = 0x10000;
	else
		return 0;
	if (n < len)
		return 0;
	unsigned cp = c & (0xffu >> (len + 1));
	for (size_t i = 1; i < len; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (p[i] & 0x3f);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return len;
}

/* The escape of the byte or sequence at p, or 0 when it is written as it is
 * (a run of such bytes is copied in one piece).  *used: bytes consumed. */
static size_t escape_at(const unsigned char *p, size_t n, char out[8], size_t *used)
{
	size_t l = utf8_len(p, n);
	*used = l ? l : 1;
	if (l == 0)
		return (size_t)snprintf(out, 8, "\\udc%02x", p[0]);
	if (l > 1)
		return 0;
	switch (p[0]) {
	case '"': return (size_t)snprintf(out, 8, "\\\"");
	case '\\': return (size_t)snprintf(out, 8, "\\\\");
	case '\n': return (size_t)snprintf(out, 8, "\\n");
	case '\t': return (size_t)snprintf(out, 8, "\\t");
	case '\r': return (size_t)snprintf(out, 8, "\\r");
	default:
		if (p[0] < 0x20 || p[0] == 0x7f)
			return (size_t)snprintf(out, 8, "\\u%04x", p[0]);
		return 0;
	}
}

typedef void (*put_fn)(void *sink, const void *p, size_t n);

static void json_escape(put_fn put, void *sink, const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t run = 0; /* start of the bytes not yet written */
	put(sink, "\"", 1);
	for (size_t i = 0; i < n;) {
		char esc[8];
		size_t used, el = escape_at(p + i, n - i, esc, &used);
		if (el) {
			put(sink, p + run, i - run);
			put(sink, esc, el);
			run = i + used;
		}
		i += used;
	}
	put(sink, p + run, n - run);
	put(sink, "\"", 1);
}

static void put_buf(void *sink, const void *p, size_t n) { cut_buf_put(sink, p, n); }

static void put_file(void *sink, const void *p, size_t n)
{
	if (n)
		fwrite(p, 1, n, sink);
}

void cut_json_str(cut_buf *b, const char *s, size_t n) { json_escape(put_buf, b, s, n); }

void cut_json_fstr(FILE *f, const char *s, size_t n) { json_escape(put_file, f, s, n); }

void cut_json_fnum(FILE *f, double v)
{
	if (isfinite(v))
		fprintf(f, "%.3f", v);
	else
		fputs("null", f);
}
