/*
 * path.c - validation and canonical ordering of stored paths (see path.h).
 */
#include "path.h"

#include <stdint.h>
#include <string.h>

int fmt_path_cmp(const char *a, size_t al, const char *b, size_t bl)
{
	size_t n = al < bl ? al : bl, i = 0;
	/* Skip the common prefix eight bytes at a time (paths in a manifest
	 * share long prefixes), then decide on the first differing byte. */
	while (i + 8 <= n) {
		uint64_t x, y;
		memcpy(&x, a + i, 8);
		memcpy(&y, b + i, 8);
		if (x != y)
			break;
		i += 8;
	}
	for (; i < n; i++) {
		unsigned ca = (unsigned char)a[i], cb = (unsigned char)b[i];
		if (ca == cb)
			continue;
		/* '/' sorts below every other byte (NUL never occurs in a path). */
		ca = ca == '/' ? 0 : ca;
		cb = cb == '/' ? 0 : cb;
		return ca < cb ? -1 : 1;
	}
	return al < bl ? -1 : al > bl;
}

bool fmt_path_valid(const char *p, size_t len)
{
	if (len == 0)
		return true;
	if (memchr(p, 0, len))
		return false;
	const char *end = p + len;
	for (const char *c = p;;) {
		const char *slash = memchr(c, '/', (size_t)(end - c));
		size_t cl = (size_t)((slash ? slash : end) - c);
		if (cl == 0)
			return false; /* leading, trailing or doubled '/' */
		if (c[0] == '.' && (cl == 1 || (cl == 2 && c[1] == '.')))
			return false;
		if (!slash)
			return true;
		c = slash + 1;
	}
}

size_t fmt_path_parent_len(const char *p, size_t len)
{
	const char *slash = len ? memrchr(p, '/', len) : NULL;
	return slash ? (size_t)(slash - p) : 0;
}

const char *fmt_path_base(const char *p, size_t len, size_t *base_len)
{
	size_t pl = fmt_path_parent_len(p, len);
	size_t off = pl ? pl + 1 : 0;
	*base_len = len - off;
	return p + off;
}

bool fmt_path_is_under(const char *p, size_t len, const char *dir, size_t dlen)
{
	if (dlen == 0)
		return len > 0;
	return len > dlen && p[dlen] == '/' && memcmp(p, dir, dlen) == 0;
}

bool fmt_path_names_replay_temp(const char *path, size_t len)
{
	size_t start = 0;
	for (size_t i = 0; i <= len; i++) {
		if (i < len && path[i] != '/')
			continue;
		if (i - start >= FMT_RESERVED_REPLAY_LEN &&
		    memcmp(path + start, FMT_RESERVED_REPLAY, FMT_RESERVED_REPLAY_LEN) == 0)
			return true;
		start = i + 1;
	}
	return false;
}

bool fmt_maildir_lock_name(const char *name, size_t len)
{
	return len > 5 && memcmp(name + len - 5, ".lock", 5) == 0;
}

bool fmt_maildir_tmp_dir(const char *path, size_t len)
{
	size_t bl;
	const char *b = fmt_path_base(path, len, &bl);
	return len > 0 && bl == 3 && memcmp(b, "tmp", 3) == 0;
}

bool fmt_name_reserved(const char *name, size_t len)
{
	static const char *const pre[] = {FMT_RESERVED_REPLAY, FMT_RESERVED_DIFF};
	for (size_t i = 0; i < sizeof pre / sizeof *pre; i++) {
		size_t pl = strlen(pre[i]);
		if (len >= pl && memcmp(name, pre[i], pl) == 0)
			return true;
	}
	return false;
}
