/*
 * verify.c - parity of two live trees: both are scanned at once (one thread
 * each calling scan_run, each with its own worker pool), then diff_report
 * compares the two manifests.  Used by `cutover verify` and by the last step
 * of `cutover sync --final`, which verifies only the changed subtrees.
 *
 * Fields that cannot match on a copy are not compared (ctime, inode, device,
 * atime; nlink is compared as hard-link structure by the report).
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "diff/report.h"
#include "scanner/scan.h"
#include "sync/sync.h"

typedef struct side {
	scan_opts so;
	scan_stats st;
	uint8_t id[FMT_ID_LEN];
	int rc;
	_Atomic uint64_t listed;     /* entries so far, read by the other side's thread */
	const struct side *other;
	const sync_scan_watch *watch; /* on the caller's side only */
	uint64_t before;             /* the entries of the pairs scanned before */
} side;

static void side_moved(const scan_progress *sp, void *arg)
{
	side *s = arg;
	atomic_store(&s->listed, sp->entries);
	if (s->watch)
		s->watch->fn(s->before + sp->entries + atomic_load(&s->other->listed), s->watch->arg);
}

static void *side_run(void *arg)
{
	side *s = arg;
	s->rc = scan_run(&s->so, &s->st, s->id);
	return NULL;
}

/* prev: NULL for a full scan; else the side's scan made earlier in the same
 * pass, whose unchanged directories' immutable files are carried. */
static void side_init(side *s, const sync_scan_policy *p, const char *root, const char *prev,
		      const char *out, bool content)
{
	memset(s, 0, sizeof *s);
	atomic_init(&s->listed, 0);
	s->so.root = root;
	s->so.out = out;
	s->so.threads = p->threads;
	s->so.hash = content ? SCAN_HASH_ALL : SCAN_HASH_NONE;
	s->so.excludes = p->excludes;
	s->so.nexcludes = p->nexcludes;
	s->so.one_fs = p->one_fs;
	s->so.maildir = p->maildir; /* without prev: leaves out tmp/ contents and locks */
	s->so.immutable = p->immutable;
	s->so.nimmutable = p->nimmutable;
	s->so.prev = prev;
	s->so.full = !prev;
	s->so.scratch = true; /* compared, then removed or kept by a caller that syncs it */
	s->so.progress = side_moved;
	s->so.progress_arg = s;
}

static int scan_pair(const sync_scan_policy *pol, bool content, const char *a, const char *a_prev,
		     const char *b, const char *ma, const char *mb, uint64_t *entries,
		     const sync_scan_watch *watch)
{
	side sa, sb;
	side_init(&sa, pol, a, a_prev, ma, content);
	side_init(&sb, pol, b, NULL, mb, content);
	sa.other = &sb;
	sb.other = &sa;
	sa.watch = watch;
	sa.before = *entries;
	pthread_t th;
	bool threaded = pthread_create(&th, NULL, side_run, &sb) == 0;
	side_run(&sa);
	if (threaded)
		pthread_join(th, NULL);
	else
		side_run(&sb);
	if (sa.rc < 0 || sb.rc < 0)
		return -1;
	if (sa.rc > 0 || sb.rc > 0) {
		CUT_ERR("verify: %llu paths of %s and %llu of %s could not be read (listed above): "
			"parity cannot be established", (unsigned long long)sa.st.errors, a,
			(unsigned long long)sb.st.errors, b);
		return -1;
	}
	*entries += sa.st.entries + sb.st.entries;
	return 0;
}

int sync_scan_pair(const sync_scan_policy *pol, bool content, const char *a, const char *b,
		   const char *ma, const char *mb, uint64_t *entries, const sync_scan_watch *watch)
{
	return scan_pair(pol, content, a, NULL, b, ma, mb, entries, watch);
}

int sync_scan_pair_since(const sync_scan_policy *pol, const char *a, const char *a_prev, const char *b,
			 const char *ma, const char *mb, uint64_t *entries)
{
	return scan_pair(pol, false, a, a_prev, b, ma, mb, entries, NULL);
}

static int report(const sync_verify_opts *o, const char *ma, const char *mb, FILE *out)
{
	diff_report_opts ro = {.a = ma, .b = mb, .ignore = RF_DEFAULT_IGNORE,
			       .max_examples = o->examples ? o->examples : 10, .json = o->json,
			       .tmpdir = o->workdir, .out = out};
	if (!o->content)
		ro.ignore |= RF_HASH;
	return diff_report(&ro);
}

static char *join(const char *root, const char *rel)
{
	if (!*rel)
		return cut_strndup(root, strlen(root));
	return sync_path(root, rel);
}

int sync_verify(const sync_verify_opts *o, uint64_t *entries, uint64_t *ndiffer)
{
	*entries = 0;
	*ndiffer = 0;
	char *ma = sync_path(o->workdir, "verify-source.cmf");
	char *mb = sync_path(o->workdir, "verify-target.cmf");
	int rc = -1;
	if (!o->subtrees) {
		if (sync_scan_pair(&o->pol, o->content, o->source, o->target, ma, mb, entries, o->watch) == 0) {
			char *buf = NULL;
			size_t blen = 0;
			FILE *mem = NULL;
			if (!o->out || o->only_differences)
				mem = open_memstream(&buf, &blen);
			FILE *out = mem ? mem : o->out;
			rc = out ? report(o, ma, mb, out) : -1;
			if (mem)
				fclose(mem);
			if (rc > 0 && mem && o->out)
				fputs(buf ? buf : "", o->out);
			free(buf);
			if (rc > 0) {
				*ndiffer = 1;
				if (o->on_differ)
					o->on_differ(o->arg, "", ma, mb);
			}
		}
		goto out;
	}
	rc = 0;
	for (size_t i = 0; i < o->nsubtrees; i++) {
		char *a = join(o->source, o->subtrees[i]), *b = join(o->target, o->subtrees[i]);
		struct stat sta, stb;
		bool ha = lstat(a, &sta) == 0, hb = lstat(b, &stb) == 0, scanned = false;
		int r;
		if (!ha && !hb) {
			r = 0; /* removed on both sides */
		} else if (ha != hb || !S_ISDIR(sta.st_mode) || !S_ISDIR(stb.st_mode)) {
			/* The parent's listing is verified with the parent. */
			r = (ha != hb) ? 1 : 0;
			if (r && o->out)
				fprintf(o->out, "%s: %s\n", o->subtrees[i][0] ? o->subtrees[i] : ".",
					ha ? "missing on the target" : "extra on the target");
		} else if (sync_scan_pair(&o->pol, o->content, a, b, ma, mb, entries, o->watch) < 0) {
			r = -1;
		} else {
			char *buf = NULL;
			size_t blen = 0;
			FILE *mem = open_memstream(&buf, &blen);
			scanned = true;
			r = mem ? report(o, ma, mb, mem) : -1;
			if (mem)
				fclose(mem);
			if (r > 0 && o->out)
				fprintf(o->out, "subtree %s:\n%s", o->subtrees[i], buf ? buf : "");
			free(buf);
		}
		free(a);
		free(b);
		if (r < 0) {
			rc = -1;
			break;
		}
		if (r > 0) {
			(*ndiffer)++;
			rc = 1;
			if (o->on_differ)
				o->on_differ(o->arg, o->subtrees[i], scanned ? ma : NULL, scanned ? mb : NULL);
		}
	}
out:
	unlink(ma);
	unlink(mb);
	free(ma);
	free(mb);
	return rc;
}
