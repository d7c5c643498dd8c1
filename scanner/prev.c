/*
 * prev.c - the previous manifest, as the incremental scanner reads it.
 *
 * Workers ask for the children of directories in roughly canonical order
 * (the job queue is ordered so), from several threads at once.  Decoding a
 * block is the cost, so decoded blocks are shared in a small cache (entries
 * as an array, so a position is a block and an index), and a directory's
 * children are found by walking from the directory's own position, jumping
 * over each child directory's subtree by binary search instead of reading it.
 * Positions of child directories are handed to their jobs, so no directory is
 * ever looked up by path except the root.
 *
 * With the manifest's skeleton (format/skel.h), an unchanged directory's
 * children come from it instead: the skeleton's records of a block are what
 * the scan stats (directories, files not declared immutable) and runs of
 * carried files, each run one child, so a block of messages is never
 * decoded.  A directory that changed needs every name, and is read from
 * the manifest as before.
 *
 * Nothing here grows with the manifest: the cache is a list of the cached
 * blocks (a few dozen, CACHE_BYTES), searched by block index, not an array
 * over all blocks; and the binary search over blocks is the reader's
 * (fmt_mreader_find_block), which holds a bounded sample of the index and
 * reads the segment it lands in (format/container.c says how).
 */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "format/path.h"
#include "format/skel.h"
#include "scanner/internal.h"

/* The cache is held to a size in bytes, not in blocks: blocks are cut where
 * the paths say (FORMAT.md 3.5), and a run of a large maildir's messages
 * makes blocks of several thousand entries. */
#define CACHE_BYTES (8u << 20)
#define CACHE_BLOCKS 64 /* the lru array's first size */

/* The cache holds decoded blocks of the manifest and of its skeleton (the
 * records of block i under key i | SKEL_KEY). */
#define SKEL_KEY (1ull << 32)

typedef struct pblock {
	uint64_t idx;  /* its block index, | SKEL_KEY for a skeleton's */
	fmt_skel_group g; /* a skeleton's records (v and n unused) */
	fmt_entry *v;
	uint32_t n;
	cut_arena arena;
	size_t bytes;  /* what it takes decoded, for the cache's size */
	int refs;
	uint64_t used; /* clock tick of the last use, for eviction */
} pblock;

struct scan_prev {
	fmt_mreader *r;
	fmt_skel *sk;     /* its skeleton, or NULL */
	atomic_bool sk_off; /* set at the skeleton's first damage: not used after */
	pthread_mutex_t mu;
	pblock **lru;     /* the cached blocks (cached of them) */
	size_t lru_cap;
	uint32_t nblocks, cached;
	size_t cached_bytes;
	uint64_t tick;
};

scan_prev *scan_prev_open(const char *path)
{
	fmt_mreader *r = fmt_mreader_open(path);
	if (!r)
		return NULL;
	scan_prev *p = cut_calloc(1, sizeof *p);
	p->r = r;
	p->nblocks = fmt_mreader_nblocks(r);
	pthread_mutex_init(&p->mu, NULL);
	return p;
}

static void pblock_free(pblock *b)
{
	fmt_skel_group_free(&b->g);
	cut_arena_free(&b->arena);
	free(b->v);
	free(b);
}

void scan_prev_close(scan_prev *p)
{
	if (!p)
		return;
	for (uint32_t k = 0; k < p->cached; k++)
		pblock_free(p->lru[k]);
	free(p->lru);
	pthread_mutex_destroy(&p->mu);
	fmt_skel_close(p->sk);
	fmt_mreader_close(p->r);
	free(p);
}

const fmt_mheader *scan_prev_header(const scan_prev *p) { return fmt_mreader_header(p->r); }
const uint8_t *scan_prev_id(const scan_prev *p) { return fmt_mreader_id(p->r); }
fmt_mreader *scan_prev_reader(scan_prev *p) { return p->r; }
fmt_skel *scan_prev_skel(scan_prev *p) { return p->sk; }

void scan_prev_open_skel(scan_prev *p, const char *path, const char *policy)
{
	p->sk = fmt_skel_open(path, fmt_mreader_id(p->r), p->nblocks, policy);
}

/* Decodes block i's skeleton records.  NULL on corruption (logged). */
static pblock *decode_skel(scan_prev *p, uint32_t i)
{
	pblock *b = cut_calloc(1, sizeof *b);
	b->idx = i | SKEL_KEY;
	if (fmt_skel_load(p->sk, i, &b->g) < 0) {
		free(b);
		return NULL;
	}
	b->bytes = sizeof *b + fmt_skel_group_bytes(&b->g);
	return b;
}

/* Decodes block i whole (the decoder checks the order within it).  NULL on
 * corruption. */
static pblock *decode(scan_prev *p, uint32_t i)
{
	cut_buf raw = {0};
	fmt_dec dec = {.check_order = true};
	pblock *b = NULL;
	if (fmt_mreader_load_block(p->r, i, &raw, &dec) < 0)
		goto out;
	b = cut_calloc(1, sizeof *b);
	b->idx = i;
	uint32_t cap = dec.count;
	b->v = cut_calloc(cap ? cap : 1, sizeof *b->v);
	fmt_entry e;
	int rc;
	while ((rc = fmt_dec_next(&dec, &e)) > 0) /* the decoder checks the order */
		fmt_entry_copy(&b->v[b->n++], &e, &b->arena);
	if (rc < 0) {
		if (dec.err)
			fmt_mreader_corrupt(p->r, i, dec.err);
		pblock_free(b);
		b = NULL;
	} else {
		b->bytes = sizeof *b + (size_t)cap * sizeof *b->v + b->arena.reserved;
	}
out:
	cut_buf_free(&raw);
	fmt_dec_free(&dec);
	return b;
}

/* Evicts least recently used idle blocks until at most CACHE_BYTES remain
 * (keep: a block that must stay).  Called with the lock held; scans only the
 * cached blocks, so its cost does not grow with the manifest. */
static void evict(scan_prev *p, uint64_t keep)
{
	while (p->cached_bytes > CACHE_BYTES && p->cached > 1) {
		size_t victim = SIZE_MAX;
		uint64_t oldest = UINT64_MAX;
		for (size_t k = 0; k < p->cached; k++) {
			pblock *c = p->lru[k];
			if (c->refs == 0 && c->idx != keep && c->used < oldest) {
				oldest = c->used;
				victim = k;
			}
		}
		if (victim == SIZE_MAX)
			return; /* all in use: the cache grows past its size for a while */
		p->cached_bytes -= p->lru[victim]->bytes;
		pblock_free(p->lru[victim]);
		p->lru[victim] = p->lru[--p->cached];
	}
}

/* Cached block i, or NULL.  Lock held. */
static pblock *cached(const scan_prev *p, uint64_t i)
{
	for (uint32_t k = 0; k < p->cached; k++)
		if (p->lru[k]->idx == i)
			return p->lru[k];
	return NULL;
}

/* Returns block i (a skeleton's with SKEL_KEY) with a reference held, or
 * NULL on corruption. */
static pblock *get(scan_prev *p, uint64_t i)
{
	pthread_mutex_lock(&p->mu);
	pblock *b = cached(p, i);
	if (b) {
		b->refs++;
		b->used = ++p->tick;
		pthread_mutex_unlock(&p->mu);
		return b;
	}
	pthread_mutex_unlock(&p->mu);
	/* Decode outside the lock; if another worker decoded the same block
	 * meanwhile, keep theirs (rare: workers move through the tree in
	 * canonical order, mostly on different blocks). */
	pblock *nb = i & SKEL_KEY ? decode_skel(p, (uint32_t)i) : decode(p, (uint32_t)i);
	if (!nb)
		return NULL;
	pthread_mutex_lock(&p->mu);
	b = cached(p, i);
	if (!b) {
		b = nb;
		nb = NULL;
		if (p->cached == p->lru_cap) {
			p->lru_cap = p->lru_cap ? 2 * p->lru_cap : 2 * CACHE_BLOCKS;
			p->lru = cut_realloc(p->lru, cut_size_mul(p->lru_cap, sizeof *p->lru));
		}
		p->lru[p->cached++] = b;
		p->cached_bytes += b->bytes;
		evict(p, i);
	}
	b->refs++;
	b->used = ++p->tick;
	pthread_mutex_unlock(&p->mu);
	if (nb)
		pblock_free(nb);
	return b;
}

static void put(scan_prev *p, pblock *b)
{
	pthread_mutex_lock(&p->mu);
	b->refs--;
	pthread_mutex_unlock(&p->mu);
}

int scan_prev_root(scan_prev *p, fmt_entry *root, cut_arena *a, prev_pos *pos)
{
	if (p->nblocks == 0)
		return 1;
	pblock *b = get(p, 0);
	if (!b)
		return -1;
	int rc = 1;
	if (b->n && b->v[0].path_len == 0 && b->v[0].type == FMT_T_DIR) {
		fmt_entry_copy(root, &b->v[0], a);
		*pos = (prev_pos){0, 0};
		rc = 0;
	}
	put(p, b);
	return rc;
}

/* First index in b with path >= key (b->n if none). */
static uint32_t lower_bound(const pblock *b, const char *key, size_t klen)
{
	uint32_t lo = 0, hi = b->n;
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		if (fmt_path_cmp(b->v[mid].path, b->v[mid].path_len, key, klen) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* Moves the block and position to the first entry >= key, at or after the current block.
 * Returns 0, 1 at the end of the manifest, -1 on corruption. */
static int seek_forward(scan_prev *p, pblock **bp, prev_pos *pos, const char *key, size_t klen)
{
	pblock *b = *bp;
	if (b->n && fmt_path_cmp(b->v[b->n - 1].path, b->v[b->n - 1].path_len, key, klen) >= 0) {
		pos->idx = lower_bound(b, key, klen);
		return 0;
	}
	/* Not in this block: the last block whose first key is <= key. */
	uint32_t lo = pos->block + 1, at;
	if (lo >= p->nblocks)
		return 1;
	if (fmt_mreader_find_block(p->r, key, klen, &at) < 0)
		return -1;
	if (at > lo)
		lo = at;
	put(p, b);
	*bp = NULL;
	for (uint32_t i = lo; i < p->nblocks; i++) {
		b = get(p, i);
		if (!b)
			return -1;
		uint32_t k = lower_bound(b, key, klen);
		if (k < b->n) {
			*bp = b;
			*pos = (prev_pos){i, k};
			return 0;
		}
		put(p, b);
	}
	return 1;
}

/* The key past a subdirectory's subtree: its descendants sort below
 * path + "\x01" (canonical order puts '/' lowest), every later sibling at
 * or above it. */
static void subtree_end(cut_buf *key, const fmt_entry *e)
{
	key->len = 0;
	cut_buf_put(key, e->path, e->path_len);
	cut_buf_putc(key, 1);
}

/* Ends a children walk: releases its block and key, and hands the children
 * over (0), or frees them (-1, when failed). */
static int walk_done(scan_prev *p, pblock *b, cut_buf *key, prev_child *v, size_t n, bool failed,
		     prev_child **vp, size_t *np)
{
	if (b)
		put(p, b);
	cut_buf_free(key);
	if (failed) {
		free(v);
		return -1;
	}
	*vp = v;
	*np = n;
	return 0;
}

int scan_prev_children(scan_prev *p, prev_pos pos, cut_arena *a, prev_child **vp, size_t *np)
{
	*vp = NULL;
	*np = 0;
	pblock *b = get(p, pos.block);
	if (!b)
		return -1;
	if (pos.idx >= b->n) {
		put(p, b);
		return 0;
	}
	/* The directory's path, kept in the arena: b may be released below. */
	const fmt_entry *d = &b->v[pos.idx];
	size_t dlen = d->path_len;
	char *dir = cut_arena_strndup(a, d->path, dlen);
	size_t n = 0, cap = 0;
	prev_child *v = NULL;
	cut_buf key = {0};
	int rc = 0;
	pos.idx++;
	for (;;) {
		if (pos.idx >= b->n) { /* next block */
			if (pos.block + 1 >= p->nblocks)
				break;
			put(p, b);
			b = NULL;
			pos = (prev_pos){pos.block + 1, 0};
			b = get(p, pos.block);
			if (!b) {
				rc = -1;
				break;
			}
			continue;
		}
		const fmt_entry *e = &b->v[pos.idx];
		if (!fmt_path_is_under(e->path, e->path_len, dir, dlen))
			break;
		if (n == cap) {
			cap = cap ? 2 * cap : 64;
			v = cut_realloc(v, cut_size_mul(cap, sizeof *v));
		}
		memset(&v[n], 0, sizeof v[n]);
		fmt_entry_copy(&v[n].e, e, a);
		v[n].pos = pos;
		n++;
		if (e->type != FMT_T_DIR) {
			pos.idx++;
			continue;
		}
		subtree_end(&key, e); /* jump over the subdirectory's subtree */
		int s = seek_forward(p, &b, &pos, (const char *)key.p, key.len);
		if (s < 0) {
			rc = -1;
			break;
		}
		if (s > 0)
			break;
	}
	return walk_done(p, b, &key, v, n, rc < 0, vp, np);
}

/* ------------------------------------------------- children by skeleton */

/* The record of g whose first entry is at index idx, or g->nel. */
static uint32_t rec_at(const fmt_skel_group *g, uint32_t idx)
{
	uint32_t lo = 0, hi = g->nel;
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		if (g->el[mid].idx < idx)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < g->nel && g->el[lo].idx == idx ? lo : g->nel;
}

static const fmt_entry *rec_first(const fmt_skel_group *g, uint32_t k)
{
	return &g->v[g->el[k].first];
}

/* The first record of g whose first path is >= key (g->nel if none).  A
 * run never straddles key: its files are consecutive entries of one
 * directory, and key ends a directory's subtree. */
static uint32_t rec_lower(const fmt_skel_group *g, const char *key, size_t klen)
{
	uint32_t lo = 0, hi = g->nel;
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		const fmt_entry *e = rec_first(g, mid);
		if (fmt_path_cmp(e->path, e->path_len, key, klen) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* Moves (*bp, *blk, *k) to the first record >= key at or after the current
 * group.  0, 1 at the end of the skeleton, -1 on corruption. */
static int skel_seek(scan_prev *p, pblock **bp, uint32_t *blk, uint32_t *k, const char *key,
		     size_t klen)
{
	const fmt_skel_group *g = &(*bp)->g;
	const fmt_entry *last = rec_first(g, g->nel - 1); /* nel >= 1 (fmt_skel_decode) */
	if (fmt_path_cmp(last->path, last->path_len, key, klen) >= 0) {
		*k = rec_lower(g, key, klen);
		return 0;
	}
	uint32_t lo = *blk + 1, at;
	if (lo >= p->nblocks)
		return 1;
	if (fmt_mreader_find_block(p->r, key, klen, &at) < 0)
		return -1;
	if (at > lo)
		lo = at;
	put(p, *bp);
	*bp = NULL;
	for (uint32_t i = lo; i < p->nblocks; i++) {
		pblock *b = get(p, i | SKEL_KEY);
		if (!b)
			return -1;
		uint32_t kk = rec_lower(&b->g, key, klen);
		if (kk < b->g.nel) {
			*bp = b;
			*blk = i;
			*k = kk;
			return 0;
		}
		put(p, b);
	}
	return 1;
}

/* Appends record k of b (in block blk) to the children. */
static void rec_child(const pblock *b, uint32_t blk, uint32_t k, cut_arena *a, prev_child **vp,
		      size_t *np, size_t *cap)
{
	if (*np == *cap) {
		*cap = *cap ? 2 * *cap : 64;
		*vp = cut_realloc(*vp, cut_size_mul(*cap, sizeof **vp));
	}
	const fmt_skel_el *r = &b->g.el[k];
	prev_child *c = &(*vp)[(*np)++];
	memset(c, 0, sizeof *c);
	fmt_entry_copy(&c->e, &b->g.v[r->first], a);
	c->pos = (prev_pos){blk, r->idx};
	c->run = r->n;
	if (r->n) {
		fmt_entry_copy(&c->last, &b->g.v[r->last], a);
		c->run_bytes = r->bytes;
		c->run_weight = r->weight;
		c->run_hashed = r->hashed;
	}
}

/* scan_prev_skel_children's walk: 1, 0 (not a directory's record), -1. */
static int skel_children(scan_prev *p, prev_pos pos, cut_arena *a, prev_child **vp, size_t *np)
{
	uint32_t blk = pos.block;
	pblock *b = get(p, blk | SKEL_KEY);
	if (!b)
		return -1;
	uint32_t k = rec_at(&b->g, pos.idx);
	if (k == b->g.nel || b->g.el[k].n || rec_first(&b->g, k)->type != FMT_T_DIR) {
		put(p, b);
		return 0; /* not a directory's record: the caller reads the manifest */
	}
	const fmt_entry *d = rec_first(&b->g, k);
	size_t dlen = d->path_len;
	char *dir = cut_arena_strndup(a, d->path, dlen);
	size_t n = 0, cap = 0;
	prev_child *v = NULL;
	cut_buf key = {0};
	int rc = 1;
	for (k++;;) {
		if (k >= b->g.nel) { /* the next block's records */
			if (blk + 1 >= p->nblocks)
				break;
			put(p, b);
			b = get(p, ++blk | SKEL_KEY);
			if (!b) {
				rc = -1;
				break;
			}
			k = 0;
			continue;
		}
		const fmt_entry *e = rec_first(&b->g, k);
		if (!fmt_path_is_under(e->path, e->path_len, dir, dlen))
			break;
		if (fmt_path_parent_len(e->path, e->path_len) != dlen) {
			fmt_mreader_corrupt(p->r, blk, "its skeleton skips a directory");
			rc = -1;
			break;
		}
		rec_child(b, blk, k, a, &v, &n, &cap);
		if (e->type != FMT_T_DIR) {
			k++;
			continue;
		}
		subtree_end(&key, e); /* past the subdirectory's subtree */
		int s = skel_seek(p, &b, &blk, &k, (const char *)key.p, key.len);
		if (s != 0) {
			rc = s < 0 ? -1 : 1;
			break;
		}
	}
	return walk_done(p, b, &key, v, n, rc < 0, vp, np) < 0 ? -1 : 1;
}

/* The skeleton is damaged (logged where found): the scan goes on without
 * it, reading the manifest, which answers for the same entries. */
static void skel_damaged(scan_prev *p)
{
	if (!atomic_exchange(&p->sk_off, true))
		CUT_WARN("%s%s: damaged: not used; the scan reads the manifest instead",
			 fmt_mreader_path(p->r), FMT_SKEL_SUFFIX);
}

int scan_prev_skel_children(scan_prev *p, prev_pos pos, cut_arena *a, prev_child **vp, size_t *np)
{
	*vp = NULL;
	*np = 0;
	if (!p->sk || atomic_load(&p->sk_off))
		return 0;
	int rc = skel_children(p, pos, a, vp, np);
	if (rc < 0)
		skel_damaged(p);
	return rc;
}
