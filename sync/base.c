/*
 * base.c - manifests derived from others, for the base of the next diff.
 *
 * sync_base_patch: a replay copies a file as the source holds it when the
 * copy is made ("drifted" when that is no longer what the scan saw).  The
 * target then matches the scan except at those paths, and the next diff must
 * start from what the target really holds, or replay would find the target
 * "not as the log expects".  The patch stats, on the target, every path the
 * log created, updated or linked (only these can drift or be missing) and writes the manifest with
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
#include "base/limits.h"
#include "format/manifest.h"
#include "diff/diff_item.h"
#include "format/path.h"
#include "replay/replay.h"
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

/* Adds to copied the paths a replay of log created, updated or linked, as
 * prefix/path (prefix "" for a log of the whole tree).  0 or -1. */
static int copied_paths_add(diff_sorter *copied, const char *log, const char *prefix)
{
	fmt_creader *cr = fmt_creader_open(log);
	if (!cr)
		return -1;
	size_t pl = strlen(prefix);
	cut_buf full = {0};
	fmt_change c;
	int r;
	while ((r = fmt_creader_next(cr, &c)) > 0) {
		/* A link's name is made only if its anchor was: an anchor whose
		 * create vanished leaves the link's name absent too. */
		if (c.op != FMT_OP_CREATE && c.op != FMT_OP_UPDATE && c.op != FMT_OP_LINK)
			continue;
		const char *path = c.op == FMT_OP_LINK ? c.to : c.e.path;
		size_t len = c.op == FMT_OP_LINK ? c.to_len : c.e.path_len;
		full.len = 0;
		if (pl) {
			cut_buf_put(&full, prefix, pl);
			if (len)
				cut_buf_putc(&full, '/');
		}
		cut_buf_put(&full, path, len);
		diff_item it = {0};
		it.c.e.path = pl ? (const char *)full.p : path;
		it.c.e.path_len = pl ? full.len : len;
		if (diff_sorter_add(copied, &it) < 0) {
			r = -1;
			break;
		}
	}
	fmt_creader_close(cr);
	cut_buf_free(&full);
	return r < 0 ? -1 : 0;
}

int sync_base_patch(const char *manifest, const char *log, const char *target, const char *out,
		    const char *tmpdir, uint64_t *patched)
{
	const char *prefix = "";
	return sync_base_patch_logs(manifest, &log, &prefix, 1, target, out, tmpdir, patched);
}

int sync_base_patch_logs(const char *manifest, const char *const *logs, const char *const *prefixes,
			 size_t nlogs, const char *target, const char *out, const char *tmpdir,
			 uint64_t *patched)
{
	*patched = 0;
	int rc = -1;
	fmt_mreader *m = NULL;
	fmt_mwriter *w = NULL;
	fmt_mheader h = {0};
	int tfd = -1;
	int r;
	/* The paths the logs copied, by path: as many as the logs' creates and
	 * updates (all of the tree for an initial copy), so in the spilling
	 * sorter, not in memory. */
	diff_sorter *copied = diff_sorter_new("patched-paths", diff_cmp_path, 8u << 20, tmpdir);
	for (size_t i = 0; i < nlogs; i++)
		if (copied_paths_add(copied, logs[i], prefixes[i]) < 0)
			goto out;
	if (diff_sorter_sort(copied) < 0)
		goto out;
	tfd = open(target, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (tfd < 0) {
		CUT_SYSERR("%s: cannot open the target", target);
		goto out;
	}
	if (!(m = fmt_mreader_open(manifest)) || !(w = fmt_mwriter_create(out)))
		goto out;
	diff_item cp;
	int hc = diff_sorter_next(copied, &cp);
	fmt_entry e;
	while ((r = fmt_mreader_next(m, &e)) > 0) {
		while (hc > 0 && fmt_path_cmp(cp.c.e.path, cp.c.e.path_len, e.path, e.path_len) < 0)
			hc = diff_sorter_next(copied, &cp);
		if (hc < 0)
			goto out;
		if (hc > 0 && fmt_path_cmp(cp.c.e.path, cp.c.e.path_len, e.path, e.path_len) == 0) {
			struct stat st;
			if (fstatat(tfd, cp.c.e.path, &st, AT_SYMLINK_NOFOLLOW) < 0) {
				if (errno != ENOENT && errno != ENOTDIR) {
					CUT_SYSERR("%s/%s: cannot stat", target, cp.c.e.path);
					goto out;
				}
				(*patched)++;
				continue; /* vanished before the copy */
			}
			int64_t mt = cut_ts_ns(st.st_mtim),
				ct = cut_ts_ns(st.st_ctim);
			unsigned ty = fmt_type_from_mode(st.st_mode);
			if (ty == FMT_T_FILE && rp_racy(mt, ct) && e.ino) {
				/* Racy: copied within a tick or so of the source's
				 * last change, which a later change in the same tick
				 * would leave looking the same.  Inode 0 makes the
				 * next diff send an update with old = new, which
				 * replay copies whatever the target holds. */
				e.ino = 0;
				e.flags &= (uint8_t)~FMT_E_HASH;
				(*patched)++;
			}
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
	diff_sorter_free(copied);
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

/* Link structure.  A target entry may take the source's inode only if the
 * two trees group it alike: every target name given source inode I must
 * share one target inode, and every name of a target inode must be given
 * one source inode.  Otherwise diff would take names as linked (or as
 * separate) on the target when they are not, and leave them so: a target
 * seeded by `rsync -a` without -H, or a name of a group deleted by hand.
 * nlink cannot tell it, as a source entry the scan carried holds a stale one.
 *
 * The check sorts, in bounded memory (diff's spilling sorter), the matched
 * files that may be linked on either side, once by source inode and once
 * by target inode; the names of an inconsistent group go to a third list,
 * by path, and the writing pass gives them inode 0: diff then copies them
 * again and links them as the source has them.  An item holds its key
 * inode in c.e.dev/ino and the other side's in c.e.rdev/seq.  Each sorter
 * keeps REBASE_SORT_MEM (base/limits.h) in memory. */

static bool may_be_linked(const fmt_entry *t, const fmt_entry *s)
{
	return t->type == FMT_T_FILE &&
	       (t->nlink > 1 || s->nlink > 1 || (s->flags & FMT_E_CARRIED));
}

static int note_pair(diff_sorter *by, const fmt_entry *path, uint64_t kdev, uint64_t kino,
		     uint64_t odev, uint64_t oino)
{
	diff_item it = {0};
	it.c.e.path = path->path;
	it.c.e.path_len = path->path_len;
	it.c.e.dev = kdev;
	it.c.e.ino = kino;
	it.c.e.rdev = odev;
	it.seq = oino;
	return diff_sorter_add(by, &it);
}

/* Reads a list sorted by key inode; adds to bad every name of a group whose
 * names do not all map to one other inode.  0 or -1 (logged). */
static int split_groups(diff_sorter *by, diff_sorter *bad, const char *tmpdir)
{
	if (diff_sorter_sort(by) < 0)
		return -1;
	diff_sorter *grp = diff_sorter_new("rebase-group", diff_cmp_path, REBASE_SORT_MEM, tmpdir);
	diff_item it, first = {0};
	int h;
	bool mixed = false, have = false;
	for (;;) {
		h = diff_sorter_next(by, &it);
		if (h < 0)
			break;
		if (have && (h == 0 || it.c.e.dev != first.c.e.dev || it.c.e.ino != first.c.e.ino)) {
			if (mixed) {
				diff_item g;
				int hg;
				if (diff_sorter_sort(grp) < 0) {
					h = -1;
					break;
				}
				while ((hg = diff_sorter_next(grp, &g)) > 0) {
					if (diff_sorter_add(bad, &g) < 0) {
						hg = -1;
						break;
					}
				}
				if (hg < 0) {
					h = -1;
					break;
				}
			}
			diff_sorter_reset(grp);
			have = mixed = false;
		}
		if (h == 0)
			break;
		if (!have) {
			first = it;
			have = true;
		} else if (it.c.e.rdev != first.c.e.rdev || it.seq != first.seq) {
			mixed = true;
		}
		if (diff_sorter_add(grp, &it) < 0) {
			h = -1;
			break;
		}
	}
	diff_sorter_free(grp);
	return h < 0 ? -1 : 0;
}

/* One merge-join of the target and source scans by path.  Without w, it
 * fills by_src and by_tgt; with w, it writes the rebased manifest, giving
 * inode 0 to the names listed in bad (sorted by path), counted in
 * *relinked, and counting the others that keep the source's identity in
 * *matched. */
static int rebase_join(const char *tpath, const char *spath, fmt_mwriter *w, diff_sorter *by_src,
		       diff_sorter *by_tgt, diff_sorter *bad, uint64_t *matched, uint64_t *relinked,
		       fmt_mheader *h)
{
	int rc = -1;
	fmt_mreader *t = fmt_mreader_open(tpath), *s = NULL;
	if (!t || !(s = fmt_mreader_open(spath)))
		goto out;
	if (fmt_mreader_header(t)->errors) {
		CUT_ERR("%s: the target scan could not read %llu paths (listed above): cannot re-base "
			"on it", tpath, (unsigned long long)fmt_mreader_header(t)->errors);
		goto out;
	}
	diff_item b;
	int hb = w ? diff_sorter_next(bad, &b) : 0;
	fmt_entry x, y;
	int hx = fmt_mreader_next(t, &x), hy = fmt_mreader_next(s, &y);
	while (hx > 0) {
		int c = hy <= 0 ? -1 : fmt_path_cmp(x.path, x.path_len, y.path, y.path_len);
		if (c > 0) {
			if ((hy = fmt_mreader_next(s, &y)) < 0)
				goto out;
			continue;
		}
		bool same = c == 0 && same_content(&x, &y);
		if (!w) {
			if (same && may_be_linked(&x, &y) &&
			    (note_pair(by_src, &x, y.dev, y.ino, x.dev, x.ino) < 0 ||
			     note_pair(by_tgt, &x, x.dev, x.ino, y.dev, y.ino) < 0))
				goto out;
		} else {
			while (hb > 0 && fmt_path_cmp(b.c.e.path, b.c.e.path_len, x.path, x.path_len) < 0)
				hb = diff_sorter_next(bad, &b);
			if (hb < 0)
				goto out;
			if (same && hb > 0 && b.c.e.path_len == x.path_len &&
			    !memcmp(b.c.e.path, x.path, x.path_len)) {
				same = false; /* linked otherwise than on the source */
				(*relinked)++;
			}
			fmt_entry e = x;
			if (same) {
				e.dev = y.dev;
				e.ino = y.ino;
				if (x.type == FMT_T_FILE) {
					/* Same data: take the source's hash too (the
					 * target scan may not have one). */
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
		}
		if ((hx = fmt_mreader_next(t, &x)) < 0)
			goto out;
		if (c == 0 && (hy = fmt_mreader_next(s, &y)) < 0)
			goto out;
	}
	if (hx < 0 || hy < 0)
		goto out;
	if (w) {
		/* The rebased manifest is "of" the source root, so diff accepts
		 * the pair without --force; everything else says where it came
		 * from. */
		header_copy(h, fmt_mreader_header(t));
		free(h->root);
		h->root = cut_strndup(fmt_mreader_header(s)->root, strlen(fmt_mreader_header(s)->root));
		h->has_prev = false;
	}
	rc = 0;
out:
	if (t)
		fmt_mreader_close(t);
	if (s)
		fmt_mreader_close(s);
	return rc;
}

int sync_base_rebase(const char *tpath, const char *spath, const char *out, const char *tmpdir,
		     uint64_t *matched)
{
	*matched = 0;
	int rc = -1;
	fmt_mwriter *w = NULL;
	fmt_mheader h = {0};
	diff_sorter *by_src = diff_sorter_new("rebase-by-source", diff_cmp_inode, REBASE_SORT_MEM, tmpdir);
	diff_sorter *by_tgt = diff_sorter_new("rebase-by-target", diff_cmp_inode, REBASE_SORT_MEM, tmpdir);
	diff_sorter *bad = diff_sorter_new("rebase-unlinked", diff_cmp_path, REBASE_SORT_MEM, tmpdir);
	uint64_t relinked = 0;
	if (rebase_join(tpath, spath, NULL, by_src, by_tgt, NULL, matched, &relinked, NULL) < 0 ||
	    split_groups(by_src, bad, tmpdir) < 0 || split_groups(by_tgt, bad, tmpdir) < 0 ||
	    diff_sorter_sort(bad) < 0)
		goto out;
	diff_sorter_free(by_src);
	diff_sorter_free(by_tgt);
	by_src = by_tgt = NULL;
	if (!(w = fmt_mwriter_create(out)) ||
	    rebase_join(tpath, spath, w, NULL, NULL, bad, matched, &relinked, &h) < 0)
		goto out;
	if (relinked)
		CUT_INFO("sync --rebase: %llu target paths are linked otherwise than on the source: "
			 "they will be copied and linked again", (unsigned long long)relinked);
	uint8_t id[FMT_ID_LEN];
	int r = fmt_mwriter_finish(w, &h, id);
	w = NULL;
	rc = r < 0 ? -1 : 0;
out:
	if (w)
		fmt_mwriter_abort(w);
	diff_sorter_free(by_src);
	diff_sorter_free(by_tgt);
	diff_sorter_free(bad);
	fmt_mheader_free(&h);
	return rc;
}
