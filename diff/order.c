/*
 * order.c - from the classified lists of the join to the ordered change log:
 * rename matching (a path that leaves and a path that arrives holding the same
 * file), hard-link groups (every further name of an inode becomes `link`), and
 * the phases that let replay apply the log in one streaming pass
 * (docs/DIFF.md, "Ordering rules").
 *
 * Each stage reads sorted lists and writes new ones (spill.c), so memory stays
 * within the sorters' limits; a link group is held whole while it is decided.
 */
#include "diff/diff_ctx.h"

#include <stdio.h>
#include <stdlib.h>

#include "format/path.h"

static bool matchable(const diff_item *it)
{
	return it->c.e.ino != 0 && it->c.e.type != FMT_T_DIR && !(it->flags & DI_F_FROMDIR);
}

static bool same_key(const diff_item *a, const diff_item *b)
{
	if (a->c.e.type != b->c.e.type || a->c.e.ino != b->c.e.ino || a->c.e.size != b->c.e.size ||
	    a->c.e.mtime_ns != b->c.e.mtime_ns)
		return false;
	/* A reused inode number with the same size and mtime: the hashes,
	 * when both scans took them, tell whether it is the same file. */
	return !((a->c.e.flags & b->c.e.flags & FMT_E_HASH) &&
		 memcmp(a->c.e.hash, b->c.e.hash, sizeof a->c.e.hash));
}

/* Emits the rename(s) for leaving l and arriving a.  0 or -1. */
static int pair(diff_ctx *x, diff_item *l, diff_item *a)
{
	fmt_change c = {.op = FMT_OP_RENAME, .flags = FMT_C_OLD, .e = a->c.e};
	c.old = diff_old_of(&l->c.e);
	c.e.path = l->c.e.path;
	c.e.path_len = l->c.e.path_len;
	c.to = a->c.e.path;
	c.to_len = a->c.e.path_len;
	char tmp[4096];
	if (l->flags & DI_F_INBOTH) {
		/* The source path is also a destination: move it out of the way
		 * first, into the same directory under a reserved name. */
		size_t pl = fmt_path_parent_len(l->c.e.path, l->c.e.path_len);
		int n = snprintf(tmp, sizeof tmp, "%.*s%s%s%02x%02x%02x%02x.%llx", (int)pl,
				 l->c.e.path, pl ? "/" : "", FMT_RESERVED_DIFF, x->new_id[0],
				 x->new_id[1], x->new_id[2], x->new_id[3],
				 (unsigned long long)x->tmp_seq++);
		if (n < 0 || (size_t)n >= sizeof tmp) {
			CUT_ERR("'%s': path too long for a temporary name", l->c.e.path);
			return -1;
		}
		fmt_change ev = c;
		ev.to = tmp;
		ev.to_len = (uint32_t)n;
		if (diff_op(x, PH_EVAC, &ev) < 0)
			return -1;
		c.e.path = tmp;
		c.e.path_len = (uint32_t)n;
		x->st->evacuations++;
	}
	if (diff_op(x, PH_RENAME, &c) < 0)
		return -1;
	x->st->file_renames++;
	const fmt_entry *o = &l->c.e, *n = &a->c.e;
	/* rename(2) keeps the file's times: a content match (match_hash)
	 * may join files whose mtimes differ, and meta sets NEW's. */
	if (o->mode != n->mode || o->uid != n->uid || o->gid != n->gid ||
	    o->mtime_ns != n->mtime_ns) {
		fmt_change m = {.op = FMT_OP_META, .e = *n};
		if (diff_op(x, PH_CREATE, &m) < 0)
			return -1;
	}
	l->flags |= DI_F_MATCHED;
	l->p2 = a->c.e.path;
	l->p2_len = a->c.e.path_len;
	a->flags |= DI_F_MATCHED;
	a->p2 = o->path;
	a->p2_len = o->path_len;
	return 0;
}

/* A file still unmatched after the inode pass that a content match may
 * take: it carries a hash, is not empty (empty files all share one hash and
 * creating one copies nothing), and, when leaving, is the only name of its
 * inode (renaming one name of a linked file would link the destination to
 * the names that stay). */
static bool hashable(const diff_item *it)
{
	if ((it->flags & (DI_F_MATCHED | DI_F_FROMDIR)) || it->c.e.type != FMT_T_FILE ||
	    !(it->c.e.flags & FMT_E_HASH) || it->c.e.size == 0)
		return false;
	return it->kind != DI_LEAVE || it->c.e.nlink <= 1;
}

static bool same_content(const diff_item *a, const diff_item *b)
{
	return a->c.e.size == b->c.e.size && !memcmp(a->c.e.hash, b->c.e.hash, sizeof a->c.e.hash);
}

/* The second matching pass: a leaving and an arriving file with the same
 * content hash and size become a rename (a tree restored from a backup has
 * new inode numbers).  hl and ha hold the candidates; both are sorted by
 * (hash, size, path) and joined, pairing one to one in that order.  A path
 * that both leaves and arrives with the same content is left alone (no
 * rename onto itself).  Everything ends in leave2/arrive2.  0 or -1. */
static int match_hash(diff_ctx *x, diff_sorter *hl, diff_sorter *ha)
{
	if (diff_sorter_sort(hl) < 0 || diff_sorter_sort(ha) < 0)
		return -1;
	diff_item l, a;
	int nl = diff_sorter_next(hl, &l), na = diff_sorter_next(ha, &a);
	while (nl > 0 || na > 0) {
		if (nl > 0 && na > 0 && same_content(&l, &a)) {
			bool self = l.c.e.path_len == a.c.e.path_len &&
				    !memcmp(l.c.e.path, a.c.e.path, l.c.e.path_len);
			if (!self && pair(x, &l, &a) < 0)
				return -1;
			if (diff_sorter_add(x->leave2, &l) < 0 || diff_sorter_add(x->arrive2, &a) < 0)
				return -1;
			nl = diff_sorter_next(hl, &l);
			na = diff_sorter_next(ha, &a);
		} else if (na <= 0 || (nl > 0 && diff_cmp_hash(&l, &a) < 0)) {
			if (diff_sorter_add(x->leave2, &l) < 0)
				return -1;
			nl = diff_sorter_next(hl, &l);
		} else {
			if (diff_sorter_add(x->arrive2, &a) < 0)
				return -1;
			na = diff_sorter_next(ha, &a);
		}
		if (nl < 0 || na < 0)
			return -1;
	}
	return 0;
}

static int match_inode(diff_ctx *x, diff_sorter *hl, diff_sorter *ha);

/* The hash lists are filled next to leave2/arrive2 (which get fewer items
 * for it): limit/8 each keeps the added memory small. */
int diff_match(diff_ctx *x)
{
	int rc = -1;
	diff_sorter *hl = diff_sorter_new("leave-hash", diff_cmp_hash, x->limit / 8, x->o->tmpdir);
	diff_sorter *ha = diff_sorter_new("arrive-hash", diff_cmp_hash, x->limit / 8, x->o->tmpdir);
	if (!hl || !ha)
		goto out;
	if (match_inode(x, hl, ha) < 0 || match_hash(x, hl, ha) < 0)
		goto out;
	rc = diff_sorter_sort(x->leave2) < 0 || diff_sorter_sort(x->arrive2) < 0 ||
			     diff_sorter_sort(x->upd) < 0
		     ? -1
		     : 0;
out:
	diff_sorter_free(hl);
	diff_sorter_free(ha);
	return rc;
}

/* The first matching pass: same type, inode, size and mtime.  Unmatched
 * items go to leave2/arrive2, or to hl/ha when a content match may take
 * them.  0 or -1. */
static int match_inode(diff_ctx *x, diff_sorter *hl, diff_sorter *ha)
{
	if (diff_sorter_sort(x->leave) < 0 || diff_sorter_sort(x->arrive) < 0)
		return -1;
	diff_item l, a;
	int nl = diff_sorter_next(x->leave, &l), na = diff_sorter_next(x->arrive, &a);
	while (nl > 0 || na > 0) {
		if (nl > 0 && na > 0 && matchable(&l) && matchable(&a) && same_key(&l, &a)) {
			if (pair(x, &l, &a) < 0 || diff_sorter_add(x->leave2, &l) < 0 ||
			    diff_sorter_add(x->arrive2, &a) < 0)
				return -1;
			nl = diff_sorter_next(x->leave, &l);
			na = diff_sorter_next(x->arrive, &a);
		} else if (na <= 0 || (nl > 0 && diff_cmp_match(&l, &a) < 0)) {
			if (diff_sorter_add(hashable(&l) ? hl : x->leave2, &l) < 0)
				return -1;
			nl = diff_sorter_next(x->leave, &l);
		} else {
			if (diff_sorter_add(hashable(&a) ? ha : x->arrive2, &a) < 0)
				return -1;
			na = diff_sorter_next(x->arrive, &a);
		}
		if (nl < 0 || na < 0)
			return -1;
	}
	diff_sorter_reset(x->leave);
	diff_sorter_reset(x->arrive);
	return 0;
}

/* ------------------------------------------------------------ link groups */

/* A member's status, from the lists it is in. */
#define ST_EXISTING 0
#define ST_FRESH 1    /* arrives by create/update */
#define ST_RENAMED 2  /* arrives by rename */
#define ST_UPDATED 3  /* same inode, content changed */

typedef struct member {
	fmt_entry e;
	fmt_old old;
	bool has_old;
	int st;
} member;

/* Member m becomes a link from the anchor, but whether something is then at
 * its path to be replaced (`old`) is known only when the leaving lists are
 * joined by path (diff_emit): so the link waits in x->suppress, by path. */
static int suppress(diff_ctx *x, const fmt_change *link)
{
	diff_item it = {.kind = DI_OP, .seq = x->seq++, .c = *link};
	it.p2 = link->to;
	it.p2_len = link->to_len;
	return diff_sorter_add(x->suppress, &it);
}

/* Decides one group of NEW paths sharing an inode (sorted by path).
 * 0 or -1. */
static int group(diff_ctx *x, member *m, size_t n)
{
	if (n < 2)
		return 0;
	size_t anchor = n;
	for (size_t i = 0; i < n && anchor == n; i++)
		if (m[i].st == ST_UPDATED)
			anchor = i;
	bool upd = anchor < n;
	for (size_t i = 0; i < n && anchor == n; i++)
		if (m[i].st == ST_EXISTING || m[i].st == ST_RENAMED)
			anchor = i;
	for (size_t i = 0; i < n && anchor == n; i++)
		if (m[i].st == ST_FRESH)
			anchor = i;
	for (size_t i = 0; i < n; i++) {
		if (i == anchor)
			continue;
		/* Without a content update, names already in place stay. */
		if (!upd && m[i].st != ST_FRESH)
			continue;
		fmt_change c = {.op = FMT_OP_LINK, .e = m[anchor].e};
		c.to = m[i].e.path;
		c.to_len = m[i].e.path_len;
		x->st->links++;
		if (m[i].st == ST_FRESH || m[i].st == ST_UPDATED) {
			if (suppress(x, &c) < 0)
				return -1;
			continue;
		}
		/* A name in place, replaced by the link.  It still holds the
		 * group's old content, which is what the updated anchor held
		 * before the update (they were one inode on the target). */
		c.flags = FMT_C_OLD;
		c.old = upd && m[anchor].has_old ? m[anchor].old : diff_old_of(&m[i].e);
		if (diff_op(x, PH_LINK, &c) < 0)
			return -1;
	}
	return 0;
}

/* Advances sorted list s (current item *it, state *h) to the first item at
 * or after path p; returns true when it is at p. */
static int seek_path(diff_sorter *s, diff_item *it, int *h, const fmt_entry *p)
{
	while (*h > 0) {
		int c = fmt_path_cmp(it->c.e.path, it->c.e.path_len, p->path, p->path_len);
		if (c >= 0)
			return c == 0;
		*h = diff_sorter_next(s, it);
	}
	return *h < 0 ? -1 : 0;
}

/* A group can be decided from the join's list when every member stat'ed by
 * the scan (not carried) counts exactly the names found.  Otherwise a name
 * may be missing from the list (a partner carried with a stale nlink of 1, or
 * a name outside the tree) and the slow path reads NEW again.  So it must
 * when a changed member was carried: its nlink says nothing, and a group of
 * carried names only may lack the partner that is already in place. */
static bool group_complete(const member *m, size_t n)
{
	bool changed = false;
	for (size_t i = 0; i < n; i++) {
		if (m[i].st == ST_EXISTING)
			continue;
		if (m[i].e.flags & FMT_E_CARRIED)
			return false;
		changed = true;
	}
	if (!changed)
		return true;
	for (size_t i = 0; i < n; i++)
		if (!(m[i].e.flags & FMT_E_CARRIED) && m[i].e.nlink != n)
			return false;
	return true;
}

/* Notes an incomplete group's inode in x->short_set, which the slow path
 * reads NEW for.  The set is held to an eighth of the memory limit (16 B a
 * group): past it, the slow path takes every candidate (short_all). */
static void short_note(diff_ctx *x, uint64_t dev, uint64_t ino)
{
	diff_iset *s = &x->short_set;
	if (x->short_all)
		return;
	if ((s->n + 1) * 2 > s->cap && (s->cap ? 4 * s->cap : 2048) * sizeof(uint64_t) > x->limit / 8) {
		diff_iset_free(s);
		x->short_all = true;
		return;
	}
	diff_iset_add(s, dev, ino);
}

/* Walks x->groups (sorted by inode).  With check, notes the changed groups
 * that are not complete (short_note) and returns 1 when there is none, 0
 * otherwise; else decides each group (0).  -1 on error. */
static int walk_groups(diff_ctx *x, bool check)
{
	cut_arena ar = {0};
	member *m = NULL;
	size_t n = 0, cap = 0;
	diff_item g;
	int hg, rc = 1;
	for (;;) {
		hg = diff_sorter_next(x->groups, &g);
		if (hg < 0)
			break;
		if (n && (hg == 0 || m[0].e.dev != g.c.e.dev || m[0].e.ino != g.c.e.ino)) {
			if (check && !group_complete(m, n)) {
				rc = 0;
				short_note(x, m[0].e.dev, m[0].e.ino);
			}
			if (!check && group(x, m, n) < 0) {
				hg = -1;
				break;
			}
			n = 0;
			cut_arena_free(&ar);
		}
		if (hg == 0)
			break;
		if (n == cap) {
			cap = cap ? 2 * cap : 16;
			m = cut_realloc(m, cut_size_mul(cap, sizeof *m));
		}
		fmt_entry_copy(&m[n].e, &g.c.e, &ar);
		m[n].old = g.c.old;
		m[n].has_old = g.c.flags & FMT_C_OLD;
		m[n].st = g.flags;
		n++;
	}
	cut_arena_free(&ar);
	free(m);
	if (hg < 0)
		return -1;
	return check ? rc : 0;
}

/* Whether entry e of NEW (only type, flags, dev, ino and nlink are needed)
 * belongs to a group the slow path rebuilds. */
static bool wanted(const diff_ctx *x, const fmt_entry *e)
{
	if (e->type != FMT_T_FILE)
		return false;
	if (!x->short_all)
		return diff_iset_has(&x->short_set, e->dev, e->ino);
	return x->cand_all ? diff_maybe_linked(e) : diff_iset_has(&x->cand, e->dev, e->ino);
}

/* The slow path: the groups the join's list could not decide are rebuilt
 * from every path of NEW with their inodes; the others are kept as they
 * are.  NEW is skimmed block by block (attributes only, fmt_dec_skim) and a
 * block is decoded only where it holds such an inode, so the pass costs a
 * fraction of a full read.  Then every group is decided.  0 or -1. */
static int groups_from_new(diff_ctx *x)
{
	int rc = -1;
	fmt_mreader *nw = fmt_mreader_open(x->o->new_path);
	if (!nw)
		return -1;
	x->st->passes++;
	diff_sorter *out = diff_sorter_new("groups", diff_cmp_inode, x->limit / 4, x->o->tmpdir);
	if (!out) {
		fmt_mreader_close(nw);
		return -1;
	}
	cut_buf raw = {0};
	fmt_dec dec = {0};
	diff_item a, u, g;
	int ha = diff_sorter_next(x->arrive2, &a), hu = diff_sorter_next(x->upd, &u), hg;
	/* The decided groups, as they are. */
	if (!x->short_all) {
		if (diff_sorter_rewind(x->groups) < 0)
			goto out;
		while ((hg = diff_sorter_next(x->groups, &g)) > 0)
			if (!diff_iset_has(&x->short_set, g.c.e.dev, g.c.e.ino) &&
			    diff_sorter_add(out, &g) < 0)
				goto out;
		if (hg < 0)
			goto out;
	}
	uint32_t nb = fmt_mreader_nblocks(nw), decoded = 0;
	for (uint32_t b = 0; b < nb; b++) {
		if (fmt_mreader_load_block(nw, b, &raw, &dec) < 0)
			goto out;
		fmt_entry e;
		int r;
		while ((r = fmt_dec_skim(&dec, &e)) > 0 && !wanted(x, &e))
			;
		if (r == 0)
			continue;
		if (r < 0 || fmt_dec_init(&dec, raw.p, raw.len, dec.count) < 0) {
			fmt_mreader_corrupt(nw, b, dec.err);
			goto out;
		}
		decoded++;
		while ((r = fmt_dec_next(&dec, &e)) > 0) {
			if (!wanted(x, &e))
				continue;
			diff_item it = {.kind = DI_MEMBER, .seq = x->seq++};
			it.c.e = e;
			int sa = seek_path(x->arrive2, &a, &ha, &e), su = seek_path(x->upd, &u, &hu, &e);
			if (sa < 0 || su < 0)
				goto out;
			if (sa) {
				it.flags = (a.flags & DI_F_MATCHED) ? ST_RENAMED : ST_FRESH;
				it.c.flags = a.c.flags;
				it.c.old = a.c.old;
			} else if (su) {
				it.flags = ST_UPDATED;
				it.c.flags = u.c.flags;
				it.c.old = u.c.old;
			} else {
				it.flags = ST_EXISTING;
			}
			if (diff_sorter_add(out, &it) < 0)
				goto out;
		}
		if (r < 0) {
			fmt_mreader_corrupt(nw, b, dec.err);
			goto out;
		}
	}
	CUT_DEBUG("diff: link groups rebuilt from NEW (%s): %u of %u blocks decoded",
		  x->short_all ? "every candidate" : "the undecided groups", decoded, nb);
	if (diff_sorter_rewind(x->arrive2) < 0 || diff_sorter_rewind(x->upd) < 0 ||
	    diff_sorter_sort(out) < 0)
		goto out;
	diff_sorter_free(x->groups);
	x->groups = out;
	out = NULL;
	rc = walk_groups(x, false);
out:
	diff_sorter_free(out);
	cut_buf_free(&raw);
	fmt_dec_free(&dec);
	fmt_mreader_close(nw);
	return rc;
}

int diff_groups(diff_ctx *x)
{
	int rc = 0;
	if (!x->cand.n && !x->cand_all)
		goto done;
	/* The arrivals among the join's multi-link files learn whether they
	 * were renamed. */
	if (diff_sorter_sort(x->lnka) < 0)
		return -1;
	diff_item a, l;
	int ha = diff_sorter_next(x->arrive2, &a), hl;
	while ((hl = diff_sorter_next(x->lnka, &l)) > 0) {
		int sa = seek_path(x->arrive2, &a, &ha, &l.c.e);
		if (sa < 0)
			return -1;
		l.flags = sa && (a.flags & DI_F_MATCHED) ? ST_RENAMED : ST_FRESH;
		if (diff_sorter_add(x->groups, &l) < 0)
			return -1;
	}
	if (hl < 0 || diff_sorter_rewind(x->arrive2) < 0 || diff_sorter_sort(x->groups) < 0)
		return -1;
	diff_sorter_reset(x->lnka);
	rc = walk_groups(x, true);
	if (rc < 0)
		return -1;
	if (rc == 1) {
		rc = diff_sorter_rewind(x->groups) < 0 ? -1 : walk_groups(x, false);
	} else {
		CUT_DEBUG("diff: a link group may have names the scan carried; reading NEW again");
		rc = groups_from_new(x);
	}
	if (rc < 0)
		return -1;
done:
	diff_sorter_reset(x->groups);
	return diff_sorter_sort(x->suppress);
}

/* ------------------------------------------------------------------- emit */

/* The next path in canonical order among the lists' current items. */
static const diff_item *least(const diff_item *a, const diff_item *b)
{
	if (!a)
		return b;
	if (!b)
		return a;
	return fmt_path_cmp(a->c.e.path, a->c.e.path_len, b->c.e.path, b->c.e.path_len) <= 0 ? a : b;
}

static bool at(const diff_item *it, int h, const diff_item *p)
{
	return h > 0 && it->c.e.path_len == p->c.e.path_len &&
	       !memcmp(it->c.e.path, p->c.e.path, p->c.e.path_len);
}

int diff_emit(diff_ctx *x)
{
	diff_item l, a, u, s;
	int hl = diff_sorter_next(x->leave2, &l), ha = diff_sorter_next(x->arrive2, &a);
	int hu = diff_sorter_next(x->upd, &u), hs = diff_sorter_next(x->suppress, &s);
	cut_buf cur = {0};
	int rc = -1;
	while (hl > 0 || ha > 0 || hu > 0) {
		if (hl < 0 || ha < 0 || hu < 0 || hs < 0)
			goto out;
		const diff_item *p = least(least(hl > 0 ? &l : NULL, ha > 0 ? &a : NULL), hu > 0 ? &u : NULL);
		cur.len = 0;
		cut_buf_put(&cur, p->c.e.path, p->c.e.path_len);
		diff_item key = {0};
		key.c.e.path = (const char *)cur.p;
		key.c.e.path_len = (uint32_t)cur.len;
		bool il = at(&l, hl, &key), ia = at(&a, ha, &key), iu = at(&u, hu, &key);
		while (hs > 0 && fmt_path_cmp(s.p2, s.p2_len, key.c.e.path, key.c.e.path_len) < 0)
			hs = diff_sorter_next(x->suppress, &s);
		if (hs < 0)
			goto out;
		bool sup = hs > 0 && s.p2_len == key.c.e.path_len && !memcmp(s.p2, key.c.e.path, s.p2_len);
		bool gone = il && !(l.flags & DI_F_MATCHED);
		bool fresh = ia && !(a.flags & DI_F_MATCHED);
		/* The arrival replaces the leaving file in place (update, or a
		 * link that carries `old`): no delete before it. */
		bool replaced = gone && fresh && a.c.e.type == FMT_T_FILE &&
				(sup || l.c.e.type == FMT_T_FILE);
		if (gone && !replaced) {
			fmt_change c = {.op = FMT_OP_DELETE, .flags = FMT_C_OLD, .e = l.c.e};
			c.old = diff_old_of(&l.c.e);
			if (diff_op(x, PH_DELETE, &c) < 0)
				goto out;
		}
		if (fresh && !sup) {
			fmt_change c = {.e = a.c.e};
			switch (a.c.e.type) {
			case FMT_T_FILE:
				c.op = replaced ? FMT_OP_UPDATE : FMT_OP_CREATE;
				if (replaced) {
					c.flags = FMT_C_OLD;
					c.old = diff_old_of(&l.c.e);
				}
				break;
			case FMT_T_SYMLINK: c.op = FMT_OP_SYMLINK; break;
			default: c.op = FMT_OP_SPECIAL; break;
			}
			if (diff_op(x, PH_CREATE, &c) < 0)
				goto out;
		}
		if (sup) {
			/* The link from the group's anchor, replacing what is there. */
			fmt_change c = s.c;
			if (iu) {
				c.flags = FMT_C_OLD;
				c.old = u.c.old;
			} else if (gone) {
				c.flags = FMT_C_OLD;
				c.old = diff_old_of(&l.c.e);
			}
			if (diff_op(x, PH_LINK, &c) < 0)
				goto out;
		}
		if (iu && !sup) {
			fmt_change c = {.op = FMT_OP_UPDATE, .flags = FMT_C_OLD, .e = u.c.e, .old = u.c.old};
			if (diff_op(x, PH_CREATE, &c) < 0)
				goto out;
		}
		if (il)
			hl = diff_sorter_next(x->leave2, &l);
		if (ia)
			ha = diff_sorter_next(x->arrive2, &a);
		if (iu)
			hu = diff_sorter_next(x->upd, &u);
	}
	rc = hl < 0 || ha < 0 || hu < 0 ? -1 : 0;
out:
	cut_buf_free(&cur);
	return rc;
}

int diff_write(diff_ctx *x, fmt_cwriter *w)
{
	for (int ph = 0; ph < PH_N; ph++) {
		if (diff_sorter_sort(x->ph[ph]) < 0)
			return -1;
		diff_item it;
		int r;
		while ((r = diff_sorter_next(x->ph[ph], &it)) > 0)
			if (fmt_cwriter_add(w, &it.c) < 0)
				return -1;
		if (r < 0)
			return -1;
		diff_sorter_reset(x->ph[ph]);
	}
	return 0;
}
