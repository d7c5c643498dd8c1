/*
 * diff.c - `cutover diff`: the merge-join of two manifests and the directory
 * renames.  The stages after the join (rename matching, hard-link groups, the
 * phased output order) are in order.c; docs/DIFF.md states the rules.
 *
 * Passes: (1) a merge-join of OLD and NEW that classifies every path and, at
 * the same time, collects the directories found on one side only; when some
 * of those pair up by inode (a renamed folder), the renames are decided and
 * (2) the join is run again over the OLD view in which those folders already
 * carry their new names (view.c), so their children compare as unchanged or
 * as file renames inside.  (3) One more streaming pass over NEW finds every
 * path sharing an inode with a changed file (order.c).
 *
 * Memory: the lists of the join are external sorters (spill.c); the
 * directories on one side only and the accepted directory renames are held in
 * memory (they are folders, not messages).
 */
#include "diff/diff_ctx.h"
#include "base/limits.h"

#include <stdio.h>
#include <stdlib.h>

#include "format/path.h"

/* -------------------------------------------------------------- inode set */

static size_t iset_slot(const diff_iset *s, uint64_t dev, uint64_t ino)
{
	uint64_t h = (ino * 0x9E3779B97F4A7C15ull) ^ (dev * 0xC2B2AE3D27D4EB4Full);
	h ^= h >> 29;
	size_t i = (size_t)h & (s->cap - 1);
	while (s->k[2 * i + 1] && (s->k[2 * i] != dev || s->k[2 * i + 1] != ino))
		i = (i + 1) & (s->cap - 1);
	return i;
}

void diff_iset_add(diff_iset *s, uint64_t dev, uint64_t ino)
{
	if (!ino)
		return;
	if ((s->n + 1) * 2 > s->cap) {
		diff_iset old = *s;
		s->cap = s->cap ? s->cap * 2 : 1024;
		s->k = cut_calloc(s->cap, 2 * sizeof *s->k);
		s->n = 0;
		for (size_t i = 0; i < old.cap; i++)
			if (old.k[2 * i + 1])
				diff_iset_add(s, old.k[2 * i], old.k[2 * i + 1]);
		free(old.k);
	}
	size_t i = iset_slot(s, dev, ino);
	if (!s->k[2 * i + 1]) {
		s->k[2 * i] = dev;
		s->k[2 * i + 1] = ino;
		s->n++;
	}
}

bool diff_iset_has(const diff_iset *s, uint64_t dev, uint64_t ino)
{
	if (!s->n || !ino)
		return false;
	return s->k[2 * iset_slot(s, dev, ino) + 1] != 0;
}

void diff_iset_free(diff_iset *s)
{
	free(s->k);
	memset(s, 0, sizeof *s);
}

/* ---------------------------------------------------------------- helpers */

fmt_old diff_old_of(const fmt_entry *e)
{
	fmt_old o = {.type = e->type, .size = e->type == FMT_T_DIR ? 0 : e->size, .mtime_ns = e->mtime_ns};
	return o;
}

static diff_cmp_fn phase_cmp(int ph)
{
	switch (ph) {
	case PH_DIRMV:
	case PH_RENAME: return diff_cmp_seq;
	case PH_RMDIR:
	case PH_DIRMETA: return diff_cmp_path_rev;
	case PH_LINK: return diff_cmp_p2;
	default: return diff_cmp_path;
	}
}

int diff_op(diff_ctx *x, int ph, const fmt_change *c)
{
	diff_item it = {.c = *c, .kind = DI_OP, .seq = x->seq++};
	if (c->op == FMT_OP_LINK) {
		it.p2 = c->to;
		it.p2_len = c->to_len;
	}
	return diff_sorter_add(x->ph[ph], &it);
}

static int op_simple(diff_ctx *x, int ph, int op, const fmt_entry *e, const fmt_entry *old)
{
	fmt_change c = {.op = (uint8_t)op, .e = *e};
	if (old) {
		c.flags = FMT_C_OLD;
		c.old = diff_old_of(old);
	}
	return diff_op(x, ph, &c);
}

static int item_add(diff_ctx *x, diff_sorter *s, int kind, int flags, const fmt_entry *e,
		    const fmt_entry *old)
{
	diff_item it = {.kind = (uint8_t)kind, .flags = (uint8_t)flags, .seq = x->seq++};
	it.c.e = *e;
	if (old) {
		it.c.flags = FMT_C_OLD;
		it.c.old = diff_old_of(old);
	}
	return diff_sorter_add(s, &it);
}

static bool attrs_differ(const fmt_entry *a, const fmt_entry *b)
{
	return a->mode != b->mode || a->uid != b->uid || a->gid != b->gid || a->mtime_ns != b->mtime_ns;
}

static bool content_differs(const fmt_entry *a, const fmt_entry *b)
{
	if (a->size != b->size || a->mtime_ns != b->mtime_ns)
		return true;
	return (a->flags & FMT_E_HASH) && (b->flags & FMT_E_HASH) && memcmp(a->hash, b->hash, 16);
}

bool diff_maybe_linked(const fmt_entry *e)
{
	/* A changed entry was stat'ed by the scan that made NEW, so its nlink is
	 * current: nlink 1 means no other name at that moment.  Only its
	 * partners can be carried with a stale nlink, and the group pass finds
	 * those by inode, whatever their nlink. */
	return e->type == FMT_T_FILE && (e->nlink != 1 || (e->flags & FMT_E_CARRIED));
}

/* Notes a changed file that may be linked.  The set is held to an eighth of
 * the memory limit: past that (the initial copy of a large store made from
 * an incremental manifest, where every carried file counts), it is dropped,
 * and the slow path of the link groups (order.c) takes every file of NEW
 * that may be linked: a superset, as right and slower, in bounded memory. */
static void cand_note(diff_ctx *x, const fmt_entry *n)
{
	if (!diff_maybe_linked(n) || x->cand_all)
		return;
	diff_iset *c = &x->cand;
	size_t next = c->cap ? 2 * c->cap : 1024; /* slots after the set's next growth */
	if ((c->n + 1) * 2 > c->cap && next * 2 * sizeof(uint64_t) > x->limit / 8) {
		CUT_DEBUG("diff: %zu candidate inodes fill an eighth of --mem-limit: "
			  "all multi-link files are candidates",
			  c->n);
		diff_iset_free(c);
		x->cand_all = true;
		return;
	}
	diff_iset_add(c, n->dev, n->ino);
}

/* Keeps a directory found on one side only, for dir_renames.  These lists
 * grow with the directories created and deleted (a domain of 10,000 users
 * moved away is 300,000 of them), so they are held to an eighth of the memory
 * limit: past that they are dropped and no directory rename is looked for.
 * The log stays right: each file under a renamed directory becomes its own
 * rename (matched by inode in the spilling lists), the directory an rmdir
 * and a mkdir. */
static void dir_keep(diff_ctx *x, fmt_entry **v, size_t *n, size_t *cap, const fmt_entry *e)
{
	x->dir_bytes += sizeof(fmt_entry) + e->path_len + 1;
	if (x->dir_bytes > x->limit / 8) {
		CUT_INFO("diff: more directories created and deleted than an eighth of --mem-limit "
			 "holds (%zu bytes): directory renames are sent as renames of their files",
			 x->dir_bytes);
		free(x->odirs);
		free(x->ndirs);
		x->odirs = x->ndirs = NULL;
		x->nod = x->cod = x->nnd = x->cnd = 0;
		cut_arena_free(&x->darena);
		x->collect_dirs = false;
		x->st->dir_lists_dropped = true;
		return;
	}
	if (*n == *cap) {
		*cap = *cap ? *cap * 2 : 64;
		*v = cut_realloc(*v, cut_size_mul(*cap, sizeof **v));
	}
	fmt_entry_copy(&(*v)[(*n)++], e, &x->darena);
}

static bool premade(const diff_ctx *x, const char *p, size_t len)
{
	size_t lo = 0, hi = x->npremade;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = fmt_path_cmp(x->premade[mid], strlen(x->premade[mid]), p, len);
		if (!c)
			return true;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return false;
}

/* ------------------------------------------------------------------- join */

/* A directory's times are set in phase 9 when NEW's differ from OLD's.  But
 * the log's own changes of names in a directory (a file created, linked,
 * renamed in or out, replaced or deleted, a subdirectory made or removed)
 * move its mtime on the target, and NEW may give it OLD's mtime all the
 * same: after a change in the same timestamp tick as the previous scan, or
 * against a base that sync patched after drift (entries the target lacked
 * dropped, their directory's time kept).  So the join keeps the directories
 * of NEW above its current entry (as deep as the tree, no more), and the
 * first change of a name in one adds its phase-9 meta if it has none. */
static void dstk_to(diff_ctx *x, const char *p, size_t len)
{
	while (x->ndstk) {
		diff_dstk *t = &x->dstk[x->ndstk - 1];
		if (fmt_path_is_under(p, len, t->e.path, t->e.path_len))
			break;
		free((char *)t->e.path);
		x->ndstk--;
	}
}

static void dstk_push(diff_ctx *x, const fmt_entry *n, bool meta)
{
	if (x->ndstk == x->cdstk) {
		x->cdstk = x->cdstk ? 2 * x->cdstk : 16;
		x->dstk = cut_realloc(x->dstk, cut_size_mul(x->cdstk, sizeof *x->dstk));
	}
	diff_dstk *t = &x->dstk[x->ndstk++];
	t->e = *n;
	t->e.path = cut_strndup(n->path, n->path_len);
	t->e.target = NULL;
	t->meta = meta;
	t->lazy = false;
}

/* After blocks were skipped, the directories above the entry at p that lie
 * in them: they would have been pushed unchanged (meta false) as the join
 * went through them.  Those before the skipped blocks are on the stack. */
static void dstk_resume(diff_ctx *x, const char *p, size_t len)
{
	if (!x->skipped)
		return;
	x->skipped = false;
	const char *from = (const char *)x->skip_from.p;
	size_t fl = x->skip_from.len;
	for (size_t i = 0; i < len; i++) {
		if ((i && p[i] != '/') || fmt_path_cmp(p, i, from, fl) < 0)
			continue;
		fmt_entry d = {.path = p, .path_len = (uint32_t)i, .type = FMT_T_DIR};
		dstk_push(x, &d, false);
		x->dstk[x->ndstk - 1].lazy = true;
	}
}

/* A name of NEW or OLD at p comes or goes: its directory's times are set. */
static int dstk_touch(diff_ctx *x, const char *p, size_t len)
{
	if (!x->ndstk || !len)
		return 0;
	diff_dstk *t = &x->dstk[x->ndstk - 1];
	if (t->meta || t->e.path_len != fmt_path_parent_len(p, len))
		return 0;
	if (t->lazy) { /* its entry was in a skipped block */
		fmt_entry e;
		int rc = fmt_mcursor_find(x->ncur, t->e.path, t->e.path_len, &e);
		if (rc <= 0) {
			if (rc == 0)
				CUT_ERR("%s: internal: directory '%s' of a skipped block not found",
					x->o->new_path, t->e.path);
			return -1;
		}
		const char *keep = t->e.path;
		t->e = e;
		t->e.path = keep;
		t->e.target = NULL;
		t->lazy = false;
	}
	t->meta = true;
	return op_simple(x, PH_DIRMETA, FMT_OP_META, &t->e, NULL);
}

static int only_old(diff_ctx *x, const fmt_entry *o)
{
	if (dstk_touch(x, o->path, o->path_len) < 0)
		return -1;
	if (o->type == FMT_T_DIR) {
		if (x->collect_dirs)
			dir_keep(x, &x->odirs, &x->nod, &x->cod, o);
		return op_simple(x, PH_RMDIR, FMT_OP_RMDIR, o, o);
	}
	return item_add(x, x->leave, DI_LEAVE, 0, o, NULL);
}

static int new_dir(diff_ctx *x, const fmt_entry *n)
{
	dstk_push(x, n, true);
	if (x->collect_dirs)
		dir_keep(x, &x->ndirs, &x->nnd, &x->cnd, n);
	if (!premade(x, n->path, n->path_len) && op_simple(x, PH_MKDIR, FMT_OP_MKDIR, n, NULL) < 0)
		return -1;
	/* Times last: what is created inside changes them. */
	return op_simple(x, PH_DIRMETA, FMT_OP_META, n, NULL);
}

/* Multi-link files of NEW, for the link groups (order.c): st is the
 * member status (0 existing, 1 arriving, 3 updated, as in order.c); old is
 * what an arriving file replaces at its path, if anything.  A changed file
 * the scan carried is noted whatever its nlink, which may be stale: it
 * arrives only against a base that is not the previous scan (a re-based or
 * patched base), and its partners must be found by inode (order.c,
 * group_complete). */
static int link_note(diff_ctx *x, const fmt_entry *n, int st, const fmt_entry *old)
{
	if (n->type != FMT_T_FILE || (st == 0 ? n->nlink <= 1 : !diff_maybe_linked(n)))
		return 0;
	diff_item it = {.kind = DI_MEMBER, .flags = (uint8_t)st, .seq = x->seq++};
	it.c.e = *n;
	it.c.e.target = NULL;
	if (old) {
		it.c.flags = FMT_C_OLD;
		it.c.old = diff_old_of(old);
	}
	return diff_sorter_add(st == 1 ? x->lnka : x->groups, &it);
}

static int only_new(diff_ctx *x, const fmt_entry *n)
{
	if (dstk_touch(x, n->path, n->path_len) < 0)
		return -1;
	if (n->type == FMT_T_DIR)
		return new_dir(x, n);
	cand_note(x, n);
	if (link_note(x, n, 1, NULL) < 0)
		return -1;
	return item_add(x, x->arrive, DI_ARRIVE, 0, n, NULL);
}

/* The old entry leaves and the new one arrives at the same path. */
static int replace(diff_ctx *x, const fmt_entry *o, const fmt_entry *n)
{
	if (dstk_touch(x, n->path, n->path_len) < 0 ||
	    item_add(x, x->leave, DI_LEAVE, DI_F_INBOTH, o, NULL) < 0)
		return -1;
	cand_note(x, n);
	if (link_note(x, n, 1, o) < 0)
		return -1;
	return item_add(x, x->arrive, DI_ARRIVE, DI_F_INBOTH, n, o);
}

static int both(diff_ctx *x, const fmt_entry *o, const fmt_entry *n)
{
	if (o->type != n->type) {
		if (o->type == FMT_T_DIR) {
			if (dstk_touch(x, n->path, n->path_len) < 0 ||
			    op_simple(x, PH_RMDIR, FMT_OP_RMDIR, o, o) < 0)
				return -1;
			cand_note(x, n);
			if (link_note(x, n, 1, o) < 0)
				return -1;
			return item_add(x, x->arrive, DI_ARRIVE, DI_F_INBOTH | DI_F_FROMDIR, n, o);
		}
		if (n->type == FMT_T_DIR) {
			if (dstk_touch(x, n->path, n->path_len) < 0 ||
			    item_add(x, x->leave, DI_LEAVE, DI_F_INBOTH, o, NULL) < 0)
				return -1;
			return new_dir(x, n);
		}
		return replace(x, o, n);
	}
	switch (n->type) {
	case FMT_T_DIR: {
		/* A directory at the same path is the same directory, whatever its
		 * inode: its contents are compared one by one. */
		bool d = attrs_differ(o, n);
		dstk_push(x, n, d);
		return d ? op_simple(x, PH_DIRMETA, FMT_OP_META, n, NULL) : 0;
	}
	case FMT_T_FILE:
		if (o->ino != n->ino)
			return replace(x, o, n);
		if (content_differs(o, n)) {
			cand_note(x, n);
			if (link_note(x, n, 3, o) < 0)
				return -1;
			return item_add(x, x->upd, DI_UPDATE, 0, n, o);
		}
		/* An unchanged name matters only to a changed group: noted when a
		 * changed name of its inode came before it; one that came after
		 * leaves the group short of a name, and the group pass reads NEW
		 * again for it (order.c, group_complete). */
		if ((x->cand_all || diff_iset_has(&x->cand, n->dev, n->ino)) &&
		    link_note(x, n, 0, NULL) < 0)
			return -1;
		break;
	case FMT_T_SYMLINK:
		if (o->target_len != n->target_len || memcmp(o->target, n->target, n->target_len))
			return replace(x, o, n);
		break;
	default:
		if (o->rdev != n->rdev)
			return replace(x, o, n);
		break;
	}
	if (o->mode != n->mode || o->uid != n->uid || o->gid != n->gid || o->mtime_ns != n->mtime_ns)
		return op_simple(x, PH_CREATE, FMT_OP_META, n, NULL);
	return 0;
}

/* NEW in canonical order: all of it, or (moved) only the subtrees of the
 * top-level destinations of directory renames, one after the other. */
typedef struct nsrc {
	fmt_mreader *r;
	fmt_mcursor *cur;
	const diff_map *map;
	size_t *tops, ntops, next; /* indexes into map, sorted by dst */
	const diff_pair *top;      /* the subtree being read, or NULL */
} nsrc;

static bool path_at_or_under(const char *p, size_t len, const char *d, size_t dl)
{
	return (len == dl && !memcmp(p, d, dl)) || fmt_path_is_under(p, len, d, dl);
}

static int nsrc_next(void *arg, fmt_entry *e)
{
	nsrc *s = arg;
	if (!s->cur) {
		int rc = fmt_mreader_next(s->r, e);
		return rc == 2 ? 1 : rc; /* a marker: type 0 */
	}
	for (;;) {
		if (!s->top) {
			if (s->next >= s->ntops)
				return 0;
			s->top = &s->map->v[s->tops[s->next++]];
			if (fmt_mcursor_seek(s->cur, s->top->dst, s->top->dst_len) < 0)
				return -1;
		}
		int rc = fmt_mcursor_next(s->cur, e);
		if (rc < 0)
			return -1;
		if (rc > 0 && path_at_or_under(e->path, e->path_len, s->top->dst, s->top->dst_len))
			return 1;
		s->top = NULL;
	}
}

static _Thread_local const diff_map *cmp_map; /* qsort has no context argument */
static int cmp_top_dst(const void *pa, const void *pb)
{
	const diff_pair *a = &cmp_map->v[*(const size_t *)pa], *b = &cmp_map->v[*(const size_t *)pb];
	return fmt_path_cmp(a->dst, a->dst_len, b->dst, b->dst_len);
}

static int pf_src(void *arg, fmt_entry *e)
{
	return arg ? diff_pf_next(arg, e) : 0;
}

/* The first join's share of the diff's progress (the later steps work on
 * the changes alone, which are few on a nightly pass). */
static void join_moved(const diff_ctx *x, fmt_mreader *n, uint64_t done, uint64_t *last, bool end)
{
	if (!x->o->progress || (!end && done - *last < DIFF_PROGRESS_EVERY))
		return;
	*last = done;
	x->o->progress(done, fmt_mreader_header(n)->entries, x->o->progress_arg);
}

/* Fills s->tops with the renames whose destination is under no other's,
 * sorted by destination, and opens the cursor that reads their subtrees. */
static void nsrc_tops(nsrc *s)
{
	const diff_map *m = s->map;
	s->cur = fmt_mcursor_new(s->r);
	s->tops = cut_calloc(m->n, sizeof *s->tops);
	for (size_t i = 0; i < m->n; i++) {
		bool top = true;
		for (size_t j = 0; j < m->n && top; j++)
			top = !fmt_path_is_under(m->v[i].dst, m->v[i].dst_len, m->v[j].dst,
						 m->v[j].dst_len);
		if (top)
			s->tops[s->ntops++] = i;
	}
	cmp_map = m;
	qsort(s->tops, s->ntops, sizeof *s->tops, cmp_top_dst);
}

/* One join's readers and sides, and the entries it has passed on each side
 * (no, nn; a skipped block counts all of its entries).  It owns all it
 * points to but ns.map; join_close frees that. */
typedef struct jst {
	fmt_mreader *old;
	diff_view *v;
	nsrc ns;
	diff_pf *pf;
	diff_skip *sk;
	diff_side so, sn;
	uint64_t no, nn, shown;
} jst;

/* Opens OLD's view and NEW (with moved, only the renamed subtrees), plans
 * the block skip (first join only), and reads each side's first entry or
 * marker.  0 or -1; what was opened is left in j for join_close. */
static int join_open(diff_ctx *x, jst *j, bool moved)
{
	if (x->o->old_path) {
		if (!(j->old = fmt_mreader_open(x->o->old_path)) ||
		    !(j->v = diff_view_open(j->old, &x->map, moved)))
			return -1;
	}
	if (!(j->ns.r = fmt_mreader_open(x->o->new_path)))
		return -1;
	if (moved)
		nsrc_tops(&j->ns);
	if (!moved && j->old && diff_skip_plan(j->old, j->ns.r, &j->sk) < 0)
		return -1;
	x->ncur = fmt_mcursor_new(j->ns.r);
	if (j->v && !(j->pf = diff_pf_start(j->v)))
		return -1;
	j->so.arg = j->pf;
	j->so.r = j->old;
	j->sn.r = j->ns.r;
	if (j->pf)
		diff_side_next(&j->so);
	diff_side_next(&j->sn);
	return 0;
}

/* When the markers in front (c: their order) are a pair of equal blocks
 * that is safe to step over, steps over both and notes where the skipped
 * run began.  1 when it did, 0 when they are no such pair, -1 on error. */
static int join_skip(diff_ctx *x, jst *j, int c)
{
	const fmt_entry *o = &j->so.e, *n = &j->sn.e;
	bool pair = c == 0 && !o->type && !n->type &&
		    diff_skip_pair(j->sk, (uint32_t)o->ino, (uint32_t)n->ino);
	if (pair && !diff_skip_safe(x, j->ns.r, (uint32_t)n->ino)) {
		x->st->joined_pairs++;
		pair = false;
	}
	if (!pair)
		return 0;
	if (!x->skipped) {
		x->skip_from.len = 0;
		cut_buf_put(&x->skip_from, n->path, n->path_len);
		x->skipped = true;
	}
	j->no += n->size; /* a marker's size is its block's count */
	j->nn += n->size;
	x->st->skipped_blocks++;
	if (diff_side_next(&j->so) < 0 || diff_side_next(&j->sn) < 0)
		return -1;
	return 1;
}

/* Classifies the entry in front (c < 0: only in OLD, c > 0: only in NEW,
 * 0: on both sides) and moves past it.  0 or -1. */
static int join_entry(diff_ctx *x, jst *j, int c)
{
	const fmt_entry *o = &j->so.e, *n = &j->sn.e;
	int r;
	const fmt_entry *cur = c < 0 ? o : n;
	dstk_to(x, cur->path, cur->path_len);
	dstk_resume(x, cur->path, cur->path_len);
	if (c < 0)
		r = only_old(x, o);
	else if (c > 0)
		r = only_new(x, n);
	else
		r = both(x, o, n);
	if (r < 0)
		return -1;
	if (c <= 0)
		diff_side_next(&j->so), j->no++;
	if (c >= 0)
		diff_side_next(&j->sn), j->nn++;
	if (j->so.h < 0 || j->sn.h < 0)
		return -1;
	return 0;
}

/* One step of the join: steps over a pair of equal blocks, has a side
 * decode a marked block, or classifies the entry in front.  0 or -1. */
static int join_step(diff_ctx *x, jst *j)
{
	const fmt_entry *o = &j->so.e, *n = &j->sn.e;
	int c = j->so.h <= 0 ? 1 : j->sn.h <= 0 ? -1 :
		fmt_path_cmp(o->path, o->path_len, n->path, n->path_len);
	int r = join_skip(x, j, c);
	if (r != 0)
		return r < 0 ? -1 : 0;
	/* A marker whose twin is not beside it, or a pair that must be
	 * joined entry by entry: its side decodes the block. */
	if (!o->type && c <= 0)
		return diff_side_expand(&j->so) < 0 ? -1 : 0;
	if (!n->type && c >= 0)
		return diff_side_expand(&j->sn) < 0 ? -1 : 0;
	return join_entry(x, j, c);
}

/* Empties the join's directory stack and frees what join_open opened. */
static void join_close(diff_ctx *x, jst *j)
{
	dstk_to(x, "", 0);
	x->skipped = false;
	diff_side_free(&j->so);
	diff_side_free(&j->sn);
	diff_skip_free(j->sk);
	fmt_mcursor_free(x->ncur);
	x->ncur = NULL;
	free(j->ns.tops);
	fmt_mcursor_free(j->ns.cur);
	diff_pf_stop(j->pf);
	diff_view_close(j->v);
	fmt_mreader_close(j->old);
	fmt_mreader_close(j->ns.r);
}

/* One merge-join of (the view of) OLD with NEW; with moved, only of the
 * renamed subtrees.  The first join steps over pairs of equal blocks
 * (skip.c).  0 or -1. */
static int join(diff_ctx *x, bool moved)
{
	int rc = -1;
	jst j = {.ns = {.map = &x->map}, .so = {.src = pf_src}, .sn = {.src = nsrc_next}};
	j.sn.arg = &j.ns;
	x->st->passes++;
	if (join_open(x, &j, moved) < 0)
		goto out;
	while (j.so.h > 0 || j.sn.h > 0) {
		if (!moved)
			join_moved(x, j.ns.r, j.nn, &j.shown, false);
		if (join_step(x, &j) < 0)
			goto out;
	}
	if (j.so.h < 0 || j.sn.h < 0)
		goto out;
	if (!moved) {
		x->st->old_entries = j.no;
		x->st->new_entries = j.nn;
		join_moved(x, j.ns.r, j.nn, &j.shown, true);
	}
	rc = 0;
out:
	join_close(x, &j);
	return rc;
}

/* True when path lies at or under the source (old side) or destination of
 * a directory rename: the first join's verdict on it is replaced. */
static bool moved_path(const diff_ctx *x, const char *p, size_t len, bool old_side)
{
	for (size_t i = 0; i < x->map.n; i++) {
		const diff_pair *q = &x->map.v[i];
		if (old_side ? path_at_or_under(p, len, q->src, q->src_len)
			     : path_at_or_under(p, len, q->dst, q->dst_len))
			return true;
	}
	return false;
}

/* Replaces *sp by a copy without the items of renamed subtrees.  0 or -1. */
static int drop_moved(diff_ctx *x, diff_sorter **sp, const char *name, diff_cmp_fn cmp, bool old_side)
{
	diff_sorter *in = *sp, *out = diff_sorter_new(name, cmp, x->limit / 4, x->o->tmpdir);
	if (!out)
		return -1;
	diff_item it;
	int r = diff_sorter_sort(in);
	while (r == 0 && (r = diff_sorter_next(in, &it)) > 0) {
		if (moved_path(x, it.c.e.path, it.c.e.path_len, old_side) ||
		    (cmp == diff_cmp_path && it.c.op == FMT_OP_MKDIR && premade(x, it.c.e.path, it.c.e.path_len)))
			r = 0;
		else
			r = diff_sorter_add(out, &it);
	}
	diff_sorter_free(in);
	*sp = out;
	return r < 0 ? -1 : 0;
}

/* After the directory renames: forgets what the first join said about the
 * renamed subtrees and joins just those again, through the view.  0 or -1. */
static int rejoin_moved(diff_ctx *x)
{
	if (drop_moved(x, &x->leave, "leave", diff_cmp_match, true) < 0 ||
	    drop_moved(x, &x->arrive, "arrive", diff_cmp_match, false) < 0 ||
	    drop_moved(x, &x->ph[PH_RMDIR], "rmdir", diff_cmp_path_rev, true) < 0 ||
	    drop_moved(x, &x->ph[PH_MKDIR], "mkdir", diff_cmp_path, false) < 0 ||
	    drop_moved(x, &x->ph[PH_DIRMETA], "dirmeta", diff_cmp_path_rev, false) < 0 ||
	    drop_moved(x, &x->groups, "groups", diff_cmp_inode, false) < 0 ||
	    drop_moved(x, &x->lnka, "lnka", diff_cmp_path, false) < 0)
		return -1;
	return join(x, true);
}

/* ------------------------------------------------------ directory renames */

typedef struct dr {
	diff_ctx *x;
	fmt_mreader *old;
	fmt_mcursor *cur;
	diff_pair *done;     /* emitted renames, in emission order */
	size_t ndone, cdone;
	cut_buf a, b;
} dr;

static int cmp_dev_ino(const void *pa, const void *pb)
{
	const fmt_entry *a = pa, *b = pb;
	if (a->dev != b->dev)
		return a->dev < b->dev ? -1 : 1;
	if (a->ino != b->ino)
		return a->ino < b->ino ? -1 : 1;
	return fmt_path_cmp(a->path, a->path_len, b->path, b->path_len);
}

/* Where OLD path p is now, after the renames emitted so far, into out. */
static void cur_loc(dr *d, const char *p, size_t len, cut_buf *out)
{
	const diff_pair *best = NULL;
	for (size_t i = 0; i < d->ndone; i++) {
		const diff_pair *q = &d->done[i];
		if ((q->src_len == len && !memcmp(q->src, p, len)) ||
		    fmt_path_is_under(p, len, q->src, q->src_len))
			if (!best || q->src_len > best->src_len)
				best = q;
	}
	out->len = 0;
	if (best) {
		cut_buf_put(out, best->dst, best->dst_len);
		cut_buf_put(out, p + best->src_len, len - best->src_len);
	} else {
		cut_buf_put(out, p, len);
	}
	cut_buf_putc(out, 0);
	out->len--;
}

/* The OLD path whose current place is p, or p itself, into out. */
static void inv_loc(dr *d, const char *p, size_t len, cut_buf *out)
{
	const diff_pair *best = NULL;
	for (size_t i = 0; i < d->ndone; i++) {
		const diff_pair *q = &d->done[i];
		if ((q->dst_len == len && !memcmp(q->dst, p, len)) ||
		    fmt_path_is_under(p, len, q->dst, q->dst_len))
			if (!best || q->dst_len > best->dst_len)
				best = q;
	}
	out->len = 0;
	if (best) {
		cut_buf_put(out, best->src, best->src_len);
		cut_buf_put(out, p + best->dst_len, len - best->dst_len);
	} else {
		cut_buf_put(out, p, len);
	}
	cut_buf_putc(out, 0);
	out->len--;
}

/* 1 when something of OLD is now at path p, 0 when not, -1 on error.
 * *type receives its type. */
static int occupied(dr *d, const char *p, size_t len, unsigned *type)
{
	cut_buf q = {0}, l = {0};
	inv_loc(d, p, len, &q);
	fmt_entry e;
	int rc = fmt_mcursor_find(d->cur, (const char *)q.p, q.len, &e);
	if (rc > 0) {
		*type = e.type;
		cur_loc(d, (const char *)q.p, q.len, &l);
		rc = l.len == len && !memcmp(l.p, p, len);
	}
	cut_buf_free(&q);
	cut_buf_free(&l);
	return rc;
}

static const fmt_entry *ndir_find(diff_ctx *x, const char *p, size_t len)
{
	size_t lo = 0, hi = x->nnd;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = fmt_path_cmp(x->ndirs[mid].path, x->ndirs[mid].path_len, p, len);
		if (!c)
			return &x->ndirs[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

static void premade_add(diff_ctx *x, const char *p, size_t len)
{
	x->premade = cut_realloc(x->premade, cut_size_mul(x->npremade + 1, sizeof *x->premade));
	x->premade[x->npremade++] = cut_strndup(p, len);
}

static bool premade_lin(const diff_ctx *x, const char *p, size_t len)
{
	for (size_t i = 0; i < x->npremade; i++)
		if (strlen(x->premade[i]) == len && !memcmp(x->premade[i], p, len))
			return true;
	return false;
}

/* Makes sure directory p of NEW exists now, emitting mkdirs of missing
 * ancestors.  1 when it does (or was made), 0 when it cannot be (something
 * that is not a directory is there), -1 on error. */
static int ensure_dir(dr *d, const char *p, size_t len)
{
	diff_ctx *x = d->x;
	if (len == 0)
		return 1;
	const fmt_entry *ne = ndir_find(x, p, len);
	if (!ne) {
		/* At this path in OLD too: there unless it is not a directory. */
		fmt_entry e;
		int rc = fmt_mcursor_find(d->cur, p, len, &e);
		if (rc < 0)
			return -1;
		return rc > 0 && e.type == FMT_T_DIR;
	}
	if (premade_lin(x, p, len))
		return 1;
	unsigned type = 0;
	int rc = occupied(d, p, len, &type);
	if (rc < 0)
		return -1;
	if (rc > 0)
		return type == FMT_T_DIR;
	rc = ensure_dir(d, p, fmt_path_parent_len(p, len));
	if (rc <= 0)
		return rc;
	fmt_change c = {.op = FMT_OP_MKDIR, .e = *ne};
	if (diff_op(x, PH_DIRMV, &c) < 0)
		return -1;
	premade_add(x, p, len);
	return 1;
}

static int cmp_pair_src(const void *pa, const void *pb)
{
	const diff_pair *a = pa, *b = pb;
	return fmt_path_cmp(a->src, a->src_len, b->src, b->src_len);
}

static int cmp_str(const void *pa, const void *pb)
{
	const char *a = *(char *const *)pa, *b = *(char *const *)pb;
	return fmt_path_cmp(a, strlen(a), b, strlen(b));
}

/* Decides the directory renames from the directories found on one side
 * only, emits them (PH_DIRMV) and fills x->map.  0 or -1. */
static int dir_renames(diff_ctx *x)
{
	if (!x->nod || !x->nnd)
		return 0;
	dr d = {.x = x};
	int rc = -1;
	qsort(x->odirs, x->nod, sizeof *x->odirs, cmp_dev_ino);
	if (!(d.old = fmt_mreader_open(x->o->old_path)))
		return -1;
	d.cur = fmt_mcursor_new(d.old);
	for (size_t i = 0; i < x->nnd; i++) {
		const fmt_entry *n = &x->ndirs[i];
		if (!n->ino)
			continue;
		fmt_entry key = {.dev = n->dev, .ino = n->ino, .path = "", .path_len = 0};
		/* first OLD-only directory with this inode */
		size_t lo = 0, hi = x->nod;
		while (lo < hi) {
			size_t mid = lo + (hi - lo) / 2;
			if (cmp_dev_ino(&x->odirs[mid], &key) < 0)
				lo = mid + 1;
			else
				hi = mid;
		}
		if (lo >= x->nod || x->odirs[lo].dev != n->dev || x->odirs[lo].ino != n->ino)
			continue;
		const fmt_entry *s = &x->odirs[lo];
		cur_loc(&d, s->path, s->path_len, &d.a);
		if (d.a.len == n->path_len && !memcmp(d.a.p, n->path, n->path_len))
			continue; /* already there through a parent's rename */
		unsigned type;
		int r = occupied(&d, n->path, n->path_len, &type);
		if (r < 0)
			goto out;
		if (r > 0)
			continue; /* something else is there: compare entry by entry */
		/* The source's current place must still hold it (not a dir whose
		 * parent moved it into a place we do not know). */
		r = ensure_dir(&d, n->path, fmt_path_parent_len(n->path, n->path_len));
		if (r < 0)
			goto out;
		if (r == 0)
			continue;
		fmt_change c = {.op = FMT_OP_RENAME, .flags = FMT_C_OLD, .e = *n};
		c.e.path = (const char *)d.a.p;
		c.e.path_len = (uint32_t)d.a.len;
		c.to = n->path;
		c.to_len = n->path_len;
		c.old = diff_old_of(s);
		if (diff_op(x, PH_DIRMV, &c) < 0)
			goto out;
		if (d.ndone == d.cdone) {
			d.cdone = d.cdone ? 2 * d.cdone : 16;
			d.done = cut_realloc(d.done, cut_size_mul(d.cdone, sizeof *d.done));
		}
		diff_pair *p = &d.done[d.ndone++];
		p->src = cut_strndup(s->path, s->path_len);
		p->src_len = s->path_len;
		p->dst = cut_strndup(n->path, n->path_len);
		p->dst_len = n->path_len;
		x->st->dir_renames++;
	}
	if (d.ndone)
		qsort(d.done, d.ndone, sizeof *d.done, cmp_pair_src);
	x->map.v = d.done;
	x->map.n = d.ndone;
	d.done = NULL;
	d.ndone = 0;
	if (x->npremade)
		qsort(x->premade, x->npremade, sizeof *x->premade, cmp_str);
	rc = 0;
out:
	for (size_t i = 0; i < d.ndone; i++) {
		free(d.done[i].src);
		free(d.done[i].dst);
	}
	free(d.done);
	cut_buf_free(&d.a);
	cut_buf_free(&d.b);
	fmt_mcursor_free(d.cur);
	fmt_mreader_close(d.old);
	return rc;
}

/* -------------------------------------------------------------------- run */

static char *root_norm(const char *r)
{
	return cut_strndup(r, cut_path_trimmed_len(r));
}

/* Checks the headers: same root, complete NEW scan.  0 or -1 (logged). */
static int check_headers(diff_ctx *x, char **source)
{
	int rc = -1;
	fmt_mreader *nw = fmt_mreader_open(x->o->new_path), *old = NULL;
	if (!nw)
		return -1;
	const fmt_mheader *nh = fmt_mreader_header(nw);
	memcpy(x->new_id, fmt_mreader_id(nw), FMT_ID_LEN);
	*source = cut_strndup(nh->root, strlen(nh->root));
	if (nh->errors && !x->o->force) {
		CUT_ERR("%s: the scan could not read %llu paths; a change log from it would delete "
			"them on the target (use --force to accept)", x->o->new_path,
			(unsigned long long)nh->errors);
		goto out;
	}
	if (x->o->old_path) {
		if (!(old = fmt_mreader_open(x->o->old_path)))
			goto out;
		char *a = root_norm(fmt_mreader_header(old)->root), *b = root_norm(nh->root);
		bool same = strcmp(a, b) == 0;
		free(a);
		free(b);
		if (!same && !x->o->force) {
			CUT_ERR("%s and %s are scans of different roots ('%s' and '%s'); use --force "
				"if the tree moved", x->o->old_path, x->o->new_path,
				fmt_mreader_header(old)->root, nh->root);
			goto out;
		}
	}
	rc = 0;
out:
	fmt_mreader_close(old);
	fmt_mreader_close(nw);
	return rc;
}

int diff_run(const diff_opts *o, diff_stats *st)
{
	diff_ctx x = {.o = o, .st = st};
	memset(st, 0, sizeof *st);
	diff_sorter_peak_mem = 0;
	x.limit = o->mem_limit ? o->mem_limit : DIFF_MEM_LIMIT_DEFAULT;
	/* Each list may take limit/4: at most a few are being filled at once. */
	size_t lim = x.limit / 4;
	static const char *const phn[PH_N] = {"dirmv", "delete", "evac", "mkdir", "rename",
					     "rmdir", "create", "link", "dirmeta"};
	for (int i = 0; i < PH_N; i++)
		x.ph[i] = diff_sorter_new(phn[i], phase_cmp(i), lim, o->tmpdir);
	x.leave = diff_sorter_new("leave", diff_cmp_match, lim, o->tmpdir);
	x.arrive = diff_sorter_new("arrive", diff_cmp_match, lim, o->tmpdir);
	x.upd = diff_sorter_new("update", diff_cmp_path, lim, o->tmpdir);
	x.leave2 = diff_sorter_new("leave2", diff_cmp_path, lim, o->tmpdir);
	x.arrive2 = diff_sorter_new("arrive2", diff_cmp_path, lim, o->tmpdir);
	x.groups = diff_sorter_new("groups", diff_cmp_inode, lim, o->tmpdir);
	x.suppress = diff_sorter_new("suppress", diff_cmp_p2, lim, o->tmpdir);
	x.lnka = diff_sorter_new("lnka", diff_cmp_path, lim, o->tmpdir);
	char *source = NULL;
	fmt_cwriter *w = NULL;
	int rc = -1;
	bool lists_made = x.leave && x.arrive && x.upd && x.leave2 && x.arrive2 && x.groups &&
			  x.suppress && x.lnka;
	for (int i = 0; i < PH_N; i++)
		lists_made &= x.ph[i] != NULL;
	if (!lists_made)
		goto out;
	if (check_headers(&x, &source) < 0)
		goto out;
	if (!(w = fmt_cwriter_create(o->out_path)))
		goto out;
	x.collect_dirs = o->old_path != NULL;
	if (join(&x, false) < 0)
		goto out;
	x.collect_dirs = false;
	if (dir_renames(&x) < 0)
		goto out;
	if (x.map.n && rejoin_moved(&x) < 0)
		goto out;
	if (diff_match(&x) < 0 || diff_groups(&x) < 0 || diff_emit(&x) < 0 || diff_write(&x, w) < 0)
		goto out;
	fmt_cheader h = {.source = source, .created_ns = cut_now_ns()};
	memcpy(h.new_id, x.new_id, FMT_ID_LEN);
	if (o->old_path) {
		fmt_mreader *old = fmt_mreader_open(o->old_path);
		if (!old)
			goto out;
		h.has_old = true;
		memcpy(h.old_id, fmt_mreader_id(old), FMT_ID_LEN);
		fmt_mreader_close(old);
	}
	uint8_t id[FMT_ID_LEN];
	fmt_cwriter *ww = w;
	w = NULL;
	if (fmt_cwriter_finish(ww, &h, id) < 0)
		goto out;
	memcpy(st->ops, h.ops, sizeof st->ops);
	memcpy(st->bytes, h.bytes, sizeof st->bytes);
	st->records = h.records;
	rc = 0;
out:
	fmt_cwriter_abort(w);
	free(source);
	for (int i = 0; i < PH_N; i++) {
		st->spilled_runs += diff_sorter_runs(x.ph[i]);
		diff_sorter_free(x.ph[i]);
	}
	diff_sorter *lists[] = {x.leave, x.arrive, x.upd, x.leave2, x.arrive2, x.groups, x.suppress, x.lnka};
	for (size_t i = 0; i < sizeof lists / sizeof lists[0]; i++) {
		st->spilled_runs += diff_sorter_runs(lists[i]);
		diff_sorter_free(lists[i]);
	}
	st->peak_list_mem = diff_sorter_peak_mem;
	diff_iset_free(&x.cand);
	diff_iset_free(&x.short_set);
	cut_arena_free(&x.darena);
	free(x.odirs);
	free(x.ndirs);
	free(x.dstk);
	cut_buf_free(&x.skip_from);
	for (size_t i = 0; i < x.map.n; i++) {
		free(x.map.v[i].src);
		free(x.map.v[i].dst);
	}
	free(x.map.v);
	for (size_t i = 0; i < x.npremade; i++)
		free(x.premade[i]);
	free(x.premade);
	return rc;
}
