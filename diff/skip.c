/*
 * skip.c - block skip: the first join steps over a pair of blocks, one of
 * OLD and one of NEW, that the indexes show to hold the same entries (same
 * first key, count, length and checksum: fmt_mreader_same_block), without
 * decoding either (docs/DIFF.md, "Block skip").
 *
 * The plan pairs such blocks by a merge of the two indexes and marks them;
 * the sequential readers then hand a marked block out as a marker (an entry
 * of type 0: its first key and index, fmt_mreader_next) instead of its
 * entries.  The join (diff.c) skips a pair when both sides stand on its
 * markers and nothing in it could matter to the log, and otherwise expands
 * a marker: the side decodes that block itself (diff_side_expand).
 */
#include "diff/diff_ctx.h"

#include <stdlib.h>

#include "format/path.h"

/* What the plan holds grows with the blocks only by bits: one mark per
 * block of each side, and per 64 blocks a count of the marks before them
 * (rank), ~2.5 bits a block in all (~30 KiB for two manifests of 100 M
 * entries).  The indexes themselves are read as a stream as the merge
 * advances (fmt_mreader_block_info reads them a segment at a time), never
 * held.  Pairs increase on both sides (keys increase strictly and a pair
 * has equal keys), so the k-th marked block of OLD is the twin of the k-th
 * marked block of NEW: ranks stand for a table of partners. */
struct diff_skip {
	uint8_t *old_bits, *new_bits;
	uint32_t *old_rank, *new_rank; /* marks before each run of 64 blocks */
	uint64_t pairs;
};

static uint32_t popcount8(uint8_t v)
{
	v = (uint8_t)(v - ((v >> 1) & 0x55));
	v = (uint8_t)((v & 0x33) + ((v >> 2) & 0x33));
	return (v + (v >> 4)) & 0x0f;
}

static uint32_t *rank_build(const uint8_t *bits, uint32_t n)
{
	uint32_t *rank = cut_malloc(cut_size_mul(n / 64 + 1, sizeof *rank));
	uint32_t total = 0;
	for (uint32_t i = 0; i < n / 8 + 1; i++) {
		if (i % 8 == 0)
			rank[i / 8] = total;
		total += popcount8(bits[i]);
	}
	return rank;
}

/* Marks before block b. */
static uint32_t rank_of(const uint8_t *bits, const uint32_t *rank, uint32_t b)
{
	uint32_t k = rank[b / 64];
	for (uint32_t i = b / 64 * 8; i < b / 8; i++)
		k += popcount8(bits[i]);
	return k + popcount8((uint8_t)(bits[b / 8] & ((1u << (b % 8)) - 1)));
}

static bool bit(const uint8_t *bits, uint32_t b) { return bits[b / 8] >> (b % 8) & 1; }

/* Block i's index entry of r into *b (its key in key), after checking that
 * its key follows the one before (prev, the key of block i - 1): a marker
 * stands for its block's place in the order only if the keys increase
 * strictly, and readers check the entries, not the keys.  0 or -1. */
static int ix_next(fmt_mreader *r, uint32_t i, fmt_block_info *b, cut_buf *key, cut_buf *prev)
{
	prev->len = 0;
	cut_buf_put(prev, key->p, key->len);
	if (fmt_mreader_block_info(r, i, b, key) < 0)
		return -1;
	if (i > 0 && fmt_path_cmp((const char *)prev->p, prev->len, (const char *)b->key, b->key_len) >= 0) {
		fmt_mreader_corrupt(r, i, "index keys out of canonical order");
		return -1;
	}
	return 0;
}

/* The merge of the two indexes: marks each pair of equal blocks.  0 or -1. */
static int plan_merge(diff_skip *s, fmt_mreader *old, fmt_mreader *nw)
{
	uint32_t no = fmt_mreader_nblocks(old), nn = fmt_mreader_nblocks(nw), j = 0;
	cut_buf ka = {0}, pa = {0}, kb = {0}, pb = {0};
	fmt_block_info a, b;
	bool have_b = false; /* b holds block j of NEW */
	int rc = -1;
	for (uint32_t i = 0; i < no; i++) {
		if (ix_next(old, i, &a, &ka, &pa) < 0)
			goto out;
		int c = -1;
		for (; j < nn; j++, have_b = false) {
			if (!have_b && ix_next(nw, j, &b, &kb, &pb) < 0)
				goto out;
			have_b = true;
			c = fmt_path_cmp((const char *)b.key, b.key_len, (const char *)a.key, a.key_len);
			if (c >= 0)
				break;
		}
		if (c == 0 && fmt_cr_same_block(&a, &b)) {
			s->old_bits[i / 8] |= (uint8_t)(1u << (i % 8));
			s->new_bits[j / 8] |= (uint8_t)(1u << (j % 8));
			s->pairs++;
		}
	}
	for (; j < nn; j++, have_b = false) /* the rest of NEW's keys, checked */
		if (!have_b && ix_next(nw, j, &b, &kb, &pb) < 0)
			goto out;
	rc = 0;
out:
	cut_buf_free(&ka);
	cut_buf_free(&pa);
	cut_buf_free(&kb);
	cut_buf_free(&pb);
	return rc;
}

int diff_skip_plan(fmt_mreader *old, fmt_mreader *nw, diff_skip **out)
{
	*out = NULL;
	if (getenv("CUTOVER_DIFF_DECODE_ALL"))
		return 0;
	uint32_t no = fmt_mreader_nblocks(old), nn = fmt_mreader_nblocks(nw);
	diff_skip *s = cut_calloc(1, sizeof *s);
	s->old_bits = cut_calloc(no / 8 + 1, 1);
	s->new_bits = cut_calloc(nn / 8 + 1, 1);
	int rc = plan_merge(s, old, nw);
	if (rc < 0 || !s->pairs) {
		diff_skip_free(s);
		return rc;
	}
	s->old_rank = rank_build(s->old_bits, no);
	s->new_rank = rank_build(s->new_bits, nn);
	fmt_mreader_set_marks(old, s->old_bits);
	fmt_mreader_set_marks(nw, s->new_bits);
	*out = s;
	return 0;
}

bool diff_skip_pair(const diff_skip *s, uint32_t old_block, uint32_t new_block)
{
	return s && bit(s->old_bits, old_block) && bit(s->new_bits, new_block) &&
	       rank_of(s->old_bits, s->old_rank, old_block) ==
		       rank_of(s->new_bits, s->new_rank, new_block);
}

void diff_skip_free(diff_skip *s)
{
	if (!s)
		return;
	free(s->old_bits);
	free(s->new_bits);
	free(s->old_rank);
	free(s->new_rank);
	free(s);
}

int diff_side_next(diff_side *d)
{
	if (d->exp) {
		int rc = fmt_dec_next(&d->dec, &d->e);
		if (rc > 0)
			return d->h = 1;
		if (rc < 0) {
			fmt_mreader_corrupt(d->r, d->blk, d->dec.err);
			return d->h = -1;
		}
		d->exp = false;
	}
	return d->h = d->src(d->arg, &d->e);
}

int diff_side_expand(diff_side *d)
{
	/* The marker's path is its block's key; kept, as the reader may
	 * reuse its buffer. */
	d->key.len = 0;
	cut_buf_put(&d->key, d->e.path, d->e.path_len);
	d->blk = (uint32_t)d->e.ino;
	d->dec.check_order = true;
	if (fmt_mreader_load_block(d->r, d->blk, &d->raw, &d->dec) < 0)
		return d->h = -1;
	d->exp = true;
	if (diff_side_next(d) <= 0 || d->e.path_len != d->key.len ||
	    (d->key.len && memcmp(d->e.path, d->key.p, d->key.len) != 0)) {
		if (d->h >= 0)
			fmt_mreader_corrupt(d->r, d->blk, "block's first path differs from the index");
		return d->h = -1;
	}
	return 1;
}

void diff_side_free(diff_side *d)
{
	cut_buf_free(&d->raw);
	cut_buf_free(&d->key);
	fmt_dec_free(&d->dec);
}

bool diff_skip_safe(diff_ctx *x, fmt_mreader *nw, uint32_t b)
{
	if (!x->cand.n && !x->cand_all)
		return true;
	/* An unchanged multi-link file whose inode a changed file had before
	 * it is noted for the link groups (both(), diff.c): such a block is
	 * joined entry by entry. */
	cut_buf raw = {0};
	fmt_dec dec = {0};
	bool safe = fmt_mreader_load_block(nw, b, &raw, &dec) == 0;
	fmt_entry e;
	int rc;
	while (safe && (rc = fmt_dec_skim(&dec, &e)) > 0)
		if (e.type == FMT_T_FILE && e.nlink > 1 &&
		    (x->cand_all || diff_iset_has(&x->cand, e.dev, e.ino)))
			safe = false;
	cut_buf_free(&raw);
	fmt_dec_free(&dec);
	return safe; /* a damaged block is decoded in the join, which reports it */
}
