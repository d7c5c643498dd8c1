/*
 * policy.c - what a scan leaves out (--exclude, the maildir preset) and what
 * it may trust without looking (--immutable, the maildir preset).
 *
 * Glob rules, as in rsync: a pattern without '/' is matched against the
 * entry's name, a pattern with '/' against its whole relative path (a leading
 * '/' is ignored); '*' also crosses '/' in path patterns.
 */
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>

#include "format/path.h"
#include "scanner/internal.h"

static bool glob_match(const char *pat, const char *path, const char *name)
{
	if (strchr(pat, '/')) {
		while (*pat == '/')
			pat++;
		return fnmatch(pat, path, 0) == 0;
	}
	return fnmatch(pat, name, 0) == 0;
}

static bool base_is(const char *path, size_t len, const char *want)
{
	size_t bl;
	const char *b = fmt_path_base(path, len, &bl);
	return bl == strlen(want) && memcmp(b, want, bl) == 0;
}

bool scan_excluded(const scan_policy *p, const char *path, size_t len, const char *name,
		   unsigned type)
{
	(void)len;
	if (fmt_name_reserved(name, strlen(name)))
		return true;
	for (size_t i = 0; i < p->nexcludes; i++)
		if (glob_match(p->excludes[i], path, name))
			return true;
	/* Dovecot's lock files are transient and meaningless on the target. */
	return p->maildir && type != FMT_T_DIR && fmt_maildir_lock_name(name, strlen(name));
}

bool scan_contents_excluded(const scan_policy *p, const char *path, size_t len)
{
	/* tmp/ holds partial deliveries: Dovecot renames them into new/ or cur/
	 * when complete, and the next pass copies them from there. */
	return p->maildir && fmt_maildir_tmp_dir(path, len);
}

bool scan_immutable(const scan_policy *p, const char *path, size_t len)
{
	if (p->maildir) {
		size_t pl = fmt_path_parent_len(path, len);
		if (pl > 0 && (base_is(path, pl, "cur") || base_is(path, pl, "new")))
			return true;
	}
	if (p->nimmutable) {
		size_t bl;
		const char *b = fmt_path_base(path, len, &bl);
		for (size_t i = 0; i < p->nimmutable; i++)
			if (glob_match(p->immutable[i], path, b))
				return true;
	}
	return false;
}

bool scan_policy_any(const scan_policy *p) { return p->maildir || p->nimmutable > 0; }

char *scan_policy_describe(const scan_policy *p, int64_t granularity_ns)
{
	cut_buf b = {0};
	if (p->maildir)
		cut_buf_printf(&b, "maildir");
	for (size_t i = 0; i < p->nimmutable; i++)
		cut_buf_printf(&b, "%simmutable=%s", b.len ? " " : "", p->immutable[i]);
	if (b.len)
		cut_buf_printf(&b, " granularity_ns=%lld", (long long)granularity_ns);
	cut_buf_putc(&b, 0);
	return (char *)b.p;
}
