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

struct diff_skip {
	uint8_t *old_bits, *new_bits;
	uint32_t *partner; /* by OLD block: its NEW twin, or UINT32_MAX */
	uint64_t pairs;
};

/* The index keys must increase strictly for a marker to stand for its
 * block's place in the order; readers check the entries, not the keys. */
static bool keys_increase(const fmt_mreader *r)
{
	uint32_t n = fmt_mreader_nblocks(r);
	for (uint32_t i = 1; i < n; i++) {
		const fmt_block_info *a = fmt_mreader_block_info(r, i - 1), *b = fmt_mreader_block_info(r, i);
		if (fmt_path_cmp((const char *)a->key, a->key_len, (const char *)b->key, b->key_len) >= 0) {
			fmt_mreader_corrupt(r, i, "index keys out of canonical order");
			return false;
		}
	}
	return true;
}

int diff_skip_plan(fmt_mreader *old, fmt_mreader *nw, diff_skip **out)
{
	*out = NULL;
	if (getenv("CUTOVER_DIFF_DECODE_ALL"))
		return 0;
	if (!keys_increase(old) || !keys_increase(nw))
		return -1;
	uint32_t no = fmt_mreader_nblocks(old), nn = fmt_mreader_nblocks(nw);
	diff_skip *s = cut_calloc(1, sizeof *s);
	s->old_bits = cut_calloc(no / 8 + 1, 1);
	s->new_bits = cut_calloc(nn / 8 + 1, 1);
	s->partner = cut_malloc(cut_size_mul(no ? no : 1, sizeof *s->partner));
	for (uint32_t i = 0, j = 0; i < no; i++) {
		s->partner[i] = UINT32_MAX;
		const fmt_block_info *a = fmt_mreader_block_info(old, i);
		int c = -1;
		for (; j < nn; j++) {
			const fmt_block_info *b = fmt_mreader_block_info(nw, j);
			c = fmt_path_cmp((const char *)b->key, b->key_len, (const char *)a->key, a->key_len);
			if (c >= 0)
				break;
		}
		if (c == 0 && fmt_mreader_same_block(old, i, nw, j)) {
			s->partner[i] = j;
			s->old_bits[i / 8] |= (uint8_t)(1u << (i % 8));
			s->new_bits[j / 8] |= (uint8_t)(1u << (j % 8));
			s->pairs++;
		}
	}
	if (!s->pairs) {
		diff_skip_free(s);
		return 0;
	}
	fmt_mreader_set_marks(old, s->old_bits);
	fmt_mreader_set_marks(nw, s->new_bits);
	*out = s;
	return 0;
}

bool diff_skip_pair(const diff_skip *s, uint32_t old_block, uint32_t new_block)
{
	return s && s->partner[old_block] == new_block;
}

void diff_skip_free(diff_skip *s)
{
	if (!s)
		return;
	free(s->old_bits);
	free(s->new_bits);
	free(s->partner);
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
	const fmt_block_info *b = fmt_mreader_block_info(d->r, (uint32_t)d->e.ino);
	d->blk = (uint32_t)d->e.ino;
	d->dec.check_order = true;
	if (fmt_mreader_load_block(d->r, d->blk, &d->raw, &d->dec) < 0)
		return d->h = -1;
	d->exp = true;
	if (diff_side_next(d) <= 0 || d->e.path_len != b->key_len ||
	    memcmp(d->e.path, b->key, b->key_len) != 0) {
		if (d->h >= 0)
			fmt_mreader_corrupt(d->r, d->blk, "block's first path differs from the index");
		return d->h = -1;
	}
	return 1;
}

void diff_side_free(diff_side *d)
{
	cut_buf_free(&d->raw);
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
