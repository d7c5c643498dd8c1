/*
 * view.c - the OLD manifest re-addressed through the directory renames found
 * by the diff (see diff.h), so that children of a renamed folder are compared
 * with NEW under the folder's new name.
 *
 * The view is a merge of segments, each already in canonical order: the main
 * sequential reader of OLD, which skips the subtrees of renamed directories,
 * and one cursor per renamed directory, which yields that subtree with its
 * prefix replaced (replacing a common prefix keeps the canonical order) and
 * skips nested renamed subtrees.  Memory: one decoded block per segment.
 */
#include "diff/diff.h"

#include <stdlib.h>

#include "format/path.h"

long diff_map_find_src(const diff_map *m, const char *path, size_t len)
{
	size_t lo = 0, hi = m->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = fmt_path_cmp(m->v[mid].src, m->v[mid].src_len, path, len);
		if (c == 0)
			return (long)mid;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

typedef struct seg {
	fmt_mcursor *cur;  /* NULL: the main sequential reader */
	long pair;         /* -1 for main */
	bool have, done;
	fmt_entry e;       /* current entry, path rewritten into mapped */
	cut_buf mapped;
	cut_buf skip;      /* subtree being skipped */
} seg;

struct diff_view {
	fmt_mreader *r;
	const diff_map *map;
	seg *s;
	size_t ns;
	long last;         /* segment handed out last, to advance on the next call */
};

diff_view *diff_view_open(fmt_mreader *old, const diff_map *map, bool only_moved)
{
	diff_view *v = cut_calloc(1, sizeof *v);
	v->r = old;
	v->map = map;
	v->ns = 1 + map->n;
	v->s = cut_calloc(v->ns, sizeof *v->s);
	v->last = -1;
	v->s[0].pair = -1;
	v->s[0].done = only_moved;
	for (size_t i = 0; i < map->n; i++) {
		seg *g = &v->s[i + 1];
		g->pair = (long)i;
		g->cur = fmt_mcursor_new(old);
		if (fmt_mcursor_seek(g->cur, map->v[i].src, map->v[i].src_len) < 0) {
			diff_view_close(v);
			return NULL;
		}
	}
	return v;
}

void diff_view_close(diff_view *v)
{
	if (!v)
		return;
	for (size_t i = 0; i < v->ns; i++) {
		fmt_mcursor_free(v->s[i].cur);
		cut_buf_free(&v->s[i].mapped);
		cut_buf_free(&v->s[i].skip);
	}
	free(v->s);
	free(v);
}

/* Loads the next entry of segment g.  0 or -1. */
static int seg_advance(diff_view *v, seg *g)
{
	g->have = false;
	if (g->done)
		return 0;
	for (;;) {
		fmt_entry e;
		int rc = g->cur ? fmt_mcursor_next(g->cur, &e) : fmt_mreader_next(v->r, &e);
		if (rc < 0)
			return -1;
		if (rc == 2) { /* a marker (skip.c): only with no renames, passed on */
			g->e = e;
			g->have = true;
			return 0;
		}
		if (rc == 0) {
			g->done = true;
			return 0;
		}
		if (g->skip.len && fmt_path_is_under(e.path, e.path_len, (const char *)g->skip.p,
						     g->skip.len - 1))
			continue;
		g->skip.len = 0;
		if (g->pair >= 0) {
			const diff_pair *p = &v->map->v[g->pair];
			bool self = e.path_len == p->src_len && !memcmp(e.path, p->src, p->src_len);
			if (!self && !fmt_path_is_under(e.path, e.path_len, p->src, p->src_len)) {
				g->done = true; /* past the subtree */
				return 0;
			}
			if (!self && e.type == FMT_T_DIR && diff_map_find_src(v->map, e.path, e.path_len) >= 0) {
				cut_buf_put(&g->skip, e.path, e.path_len);
				cut_buf_putc(&g->skip, 0);
				continue;
			}
			g->mapped.len = 0;
			cut_buf_put(&g->mapped, p->dst, p->dst_len);
			cut_buf_put(&g->mapped, e.path + p->src_len, e.path_len - p->src_len);
			cut_buf_putc(&g->mapped, 0);
			g->e = e;
			g->e.path = (const char *)g->mapped.p;
			g->e.path_len = (uint32_t)(g->mapped.len - 1);
			g->have = true;
			return 0;
		}
		if (e.type == FMT_T_DIR && v->map->n && diff_map_find_src(v->map, e.path, e.path_len) >= 0) {
			cut_buf_put(&g->skip, e.path, e.path_len);
			cut_buf_putc(&g->skip, 0);
			continue;
		}
		g->e = e;
		g->have = true;
		return 0;
	}
}

int diff_view_next(diff_view *v, fmt_entry *e)
{
	if (v->last == -2)
		return 0;
	if (v->last == -1) {
		for (size_t i = 0; i < v->ns; i++)
			if (seg_advance(v, &v->s[i]) < 0)
				return -1;
	} else if (seg_advance(v, &v->s[v->last]) < 0) {
		return -1;
	}
	long best = -1;
	for (size_t i = 0; i < v->ns; i++) {
		seg *g = &v->s[i];
		if (!g->have)
			continue;
		if (best < 0 || fmt_path_cmp(g->e.path, g->e.path_len, v->s[best].e.path,
					     v->s[best].e.path_len) < 0)
			best = (long)i;
	}
	if (best < 0) {
		v->last = -2; /* finished: nothing to advance */
		for (size_t i = 0; i < v->ns; i++)
			v->s[i].done = true;
		return 0;
	}
	v->last = best;
	*e = v->s[best].e;
	return 1;
}
