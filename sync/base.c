/*
 * base.c - manifests derived from others, for the base of the next diff.
 *
 * sync_base_patch: a replay copies a file as the source holds it when the
 * copy is made ("drifted" when that is no longer what the scan saw).  The
 * target then matches the scan except at those paths, and the next diff must
 * start from what the target really holds, or replay would find the target
 * "not as the log expects".  The patch stats, on the target, every path the
 * log created or updated (only these can drift) and writes the manifest with
 * those entries as found (dropped when absent).  Cost: one lstat per copied
 * file, and a sequential rewrite of the manifest.
 *
 * sync_base_rebase: after the target was changed behind cutover's back (or
 * was seeded by another tool), the safe base is a scan of the target.  But a
 * diff of a target scan against a source scan would see every file as
 * replaced: inode numbers differ between the two trees, and diff keys files
 * by inode.  So each target entry that matches the source's at the same path
 * (type, size, mtime, and hash when both have one; hard-link count equal) is
 * written with the source's dev and inode, and every other entry with inode
 * 0 (never a rename candidate).  diff(rebased, source) then copies only what
 * differs, and replay checks each record against the target as scanned.
 */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "format/changes.h"
#include "format/manifest.h"
#include "format/path.h"
#include "sync/sync.h"

static void header_copy(fmt_mheader *dst, const fmt_mheader *src)
{
	memset(dst, 0, sizeof *dst);
	dst->root = cut_strndup(src->root, strlen(src->root));
	dst->host = cut_strndup(src->host ? src->host : "", src->host ? strlen(src->host) : 0);
	dst->options = cut_strndup(src->options ? src->options : "", src->options ? strlen(src->options) : 0);
	dst->policy = cut_strndup(src->policy ? src->policy : "", src->policy ? strlen(src->policy) : 0);
	dst->stats = NULL;
	dst->start_ns = src->start_ns;
	dst->end_ns = src->end_ns;
	dst->errors = src->errors;
	dst->has_prev = src->has_prev;
	memcpy(dst->prev_id, src->prev_id, FMT_ID_LEN);
}

typedef struct pathv {
	char **v;
	size_t n, cap;
} pathv;

static int pathv_cmp(const void *a, const void *b)
{
	const char *x = *(char *const *)a, *y = *(char *const *)b;
	return fmt_path_cmp(x, strlen(x), y, strlen(y));
}

static void pathv_free(pathv *p)
{
	for (size_t i = 0; i < p->n; i++)
		free(p->v[i]);
	free(p->v);
}

int sync_base_patch(const char *manifest, const char *log, const char *target, const char *out,
		    uint64_t *patched)
{
	*patched = 0;
	int rc = -1;
	pathv pv = {0};
	fmt_mreader *m = NULL;
	fmt_mwriter *w = NULL;
	fmt_mheader h = {0};
	int tfd = -1;
	fmt_creader *cr = fmt_creader_open(log);
	if (!cr)
		goto out;
	fmt_change c;
	int r;
	while ((r = fmt_creader_next(cr, &c)) > 0) {
		if (c.op != FMT_OP_CREATE && c.op != FMT_OP_UPDATE)
			continue;
		if (pv.n == pv.cap) {
			pv.cap = pv.cap ? 2 * pv.cap : 256;
			pv.v = cut_realloc(pv.v, cut_size_mul(pv.cap, sizeof *pv.v));
		}
		pv.v[pv.n++] = cut_strndup(c.e.path, c.e.path_len);
	}
	fmt_creader_close(cr);
	if (r < 0)
		goto out;
	qsort(pv.v, pv.n, sizeof *pv.v, pathv_cmp);
	tfd = open(target, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (tfd < 0) {
		CUT_SYSERR("%s: cannot open the target", target);
		goto out;
	}
	if (!(m = fmt_mreader_open(manifest)) || !(w = fmt_mwriter_create(out)))
		goto out;
	size_t i = 0;
	fmt_entry e;
	while ((r = fmt_mreader_next(m, &e)) > 0) {
		while (i < pv.n && fmt_path_cmp(pv.v[i], strlen(pv.v[i]), e.path, e.path_len) < 0)
			i++;
		if (i < pv.n && fmt_path_cmp(pv.v[i], strlen(pv.v[i]), e.path, e.path_len) == 0) {
			struct stat st;
			if (fstatat(tfd, pv.v[i], &st, AT_SYMLINK_NOFOLLOW) < 0) {
				if (errno != ENOENT && errno != ENOTDIR) {
					CUT_SYSERR("%s/%s: cannot stat", target, pv.v[i]);
					goto out;
				}
				(*patched)++;
				continue; /* vanished before the copy */
			}
			int64_t mt = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
			unsigned ty = fmt_type_from_mode(st.st_mode);
			if (ty != e.type || (uint64_t)st.st_size != e.size || mt != e.mtime_ns ||
			    (st.st_mode & 07777) != e.mode || st.st_uid != e.uid || st.st_gid != e.gid) {
				e.type = (uint8_t)ty;
				e.size = (uint64_t)st.st_size;
				e.mtime_ns = mt;
				e.mode = st.st_mode & 07777;
				e.uid = st.st_uid;
				e.gid = st.st_gid;
				e.flags &= (uint8_t)~FMT_E_HASH;
				if (ty != FMT_T_FILE)
					e.ino = 0;
				(*patched)++;
			}
		}
		if (fmt_mwriter_add(w, &e) < 0)
			goto out;
	}
	if (r < 0)
		goto out;
	header_copy(&h, fmt_mreader_header(m));
	uint8_t id[FMT_ID_LEN];
	r = fmt_mwriter_finish(w, &h, id);
	w = NULL;
	rc = r < 0 ? -1 : 0;
out:
	if (w)
		fmt_mwriter_abort(w);
	if (m)
		fmt_mreader_close(m);
	if (tfd >= 0)
		close(tfd);
	fmt_mheader_free(&h);
	pathv_free(&pv);
	return rc;
}

static bool same_content(const fmt_entry *t, const fmt_entry *s)
{
	if (t->type != s->type)
		return false;
	switch (t->type) {
	case FMT_T_FILE:
		if (t->size != s->size || t->mtime_ns != s->mtime_ns)
			return false;
		if ((t->flags & FMT_E_HASH) && (s->flags & FMT_E_HASH) && memcmp(t->hash, s->hash, 16))
			return false;
		/* Carried entries may have a stale nlink: trust fresh ones only. */
		if (!(s->flags & FMT_E_CARRIED) && t->nlink != s->nlink)
			return false;
		return true;
	case FMT_T_DIR:
		return true; /* a directory at the same path is the same directory */
	case FMT_T_SYMLINK:
		return t->target_len == s->target_len && memcmp(t->target, s->target, t->target_len) == 0;
	default:
		return t->rdev == s->rdev;
	}
}

int sync_base_rebase(const char *tpath, const char *spath, const char *out, uint64_t *matched)
{
	*matched = 0;
	int rc = -1;
	fmt_mreader *t = fmt_mreader_open(tpath), *s = NULL;
	fmt_mwriter *w = NULL;
	fmt_mheader h = {0};
	if (!t || !(s = fmt_mreader_open(spath)))
		goto out;
	if (fmt_mreader_header(t)->errors) {
		CUT_ERR("%s: the target scan could not read %llu paths (listed above): cannot re-base "
			"on it", tpath, (unsigned long long)fmt_mreader_header(t)->errors);
		goto out;
	}
	if (!(w = fmt_mwriter_create(out)))
		goto out;
	fmt_entry x, y;
	int hx = fmt_mreader_next(t, &x), hy = fmt_mreader_next(s, &y);
	while (hx > 0) {
		int c = hy <= 0 ? -1 : fmt_path_cmp(x.path, x.path_len, y.path, y.path_len);
		if (c > 0) {
			if ((hy = fmt_mreader_next(s, &y)) < 0)
				goto out;
			continue;
		}
		fmt_entry e = x;
		if (c == 0 && same_content(&x, &y)) {
			e.dev = y.dev;
			e.ino = y.ino;
			if (x.type == FMT_T_FILE) {
				/* Same data: take the source's hash too (the target
				 * scan may not have one). */
				memcpy(e.hash, y.hash, 16);
				e.flags = (uint8_t)((e.flags & ~FMT_E_HASH) | (y.flags & FMT_E_HASH));
				e.nlink = y.nlink;
			}
			(*matched)++;
		} else {
			e.dev = 0;
			e.ino = 0;
		}
		e.flags &= (uint8_t)~FMT_E_CARRIED;
		if (fmt_mwriter_add(w, &e) < 0)
			goto out;
		if ((hx = fmt_mreader_next(t, &x)) < 0)
			goto out;
		if (c == 0 && (hy = fmt_mreader_next(s, &y)) < 0)
			goto out;
	}
	if (hx < 0 || hy < 0)
		goto out;
	/* The rebased manifest is "of" the source root, so diff accepts the
	 * pair without --force; everything else says where it came from. */
	header_copy(&h, fmt_mreader_header(t));
	free(h.root);
	h.root = cut_strndup(fmt_mreader_header(s)->root, strlen(fmt_mreader_header(s)->root));
	h.has_prev = false;
	uint8_t id[FMT_ID_LEN];
	int r = fmt_mwriter_finish(w, &h, id);
	w = NULL;
	rc = r < 0 ? -1 : 0;
out:
	if (w)
		fmt_mwriter_abort(w);
	if (t)
		fmt_mreader_close(t);
	if (s)
		fmt_mreader_close(s);
	fmt_mheader_free(&h);
	return rc;
}
