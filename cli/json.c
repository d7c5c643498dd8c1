/*
 * json.c - JSON strings for jsonl output.  Paths are raw bytes; a name that
 * is not valid UTF-8 is written reversibly: each byte b that is not part of a
 * valid UTF-8 sequence becomes the lone surrogate \udcXX (XX = b), as
 * Python's "surrogateescape" does.  Valid UTF-8 never contains a lone
 * surrogate, so decoding is unambiguous:
 *   json.loads(line)["path"].encode("utf-8", "surrogateescape")
 * gives back the exact bytes.
 */
#include <stdio.h>

#include "cli/json.h"

/* Length of the valid UTF-8 sequence at p (1-4), or 0 if invalid. */
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
	unsigned cp = c & (0xff >> (len + 1));
	for (size_t i = 1; i < len; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (p[i] & 0x3f);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return len;
}

void cli_json_str(FILE *f, const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	putc('"', f);
	for (size_t i = 0; i < n;) {
		unsigned c = p[i];
		size_t l = utf8_len(p + i, n - i);
		if (l == 0) {
			fprintf(f, "\\udc%02x", c);
			i++;
			continue;
		}
		if (l > 1) {
			fwrite(p + i, 1, l, f);
			i += l;
			continue;
		}
		switch (c) {
		case '"': fputs("\\\"", f); break;
		case '\\': fputs("\\\\", f); break;
		case '\n': fputs("\\n", f); break;
		case '\t': fputs("\\t", f); break;
		case '\r': fputs("\\r", f); break;
		default:
			if (c < 0x20 || c == 0x7f)
				fprintf(f, "\\u%04x", c);
			else
				putc((int)c, f);
		}
		i++;
	}
	putc('"', f);
}
