/*
 * manifest.c - manifest writer, sequential reader and random-access cursors,
 * on top of the container (container.c) and the entry codec (entry.c).
 */
#include "manifest.h"

#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include "path.h"
#include "skel.h"

#define XXH_INLINE_ALL
#include <xxhash.h>

/* The cut rule (FORMAT.md 3.5): where a block ends depends on the paths
 * alone (and on which entries are directories), never on what came before
 * in the manifest, so that a run of unchanged directories gives the same
 * blocks in every manifest of the tree and a change moves no cut but its
 * own.  A block ends before a directory whose path hash has its
 * CUT_DIR_BITS low bits zero, before any entry whose hash has its
 * CUT_ANY_BITS high bits zero (so that a large directory is cut too), and
 * before an entry that would take the block's weight (CUT_ENTRY_WEIGHT plus
 * the lengths of path and symlink target per entry: more than an entry can
 * take encoded) past CUT_WEIGHT_MAX, far below the 16 MiB limit. */
#define CUT_DIR_BITS 6
#define CUT_ANY_BITS 11
#define CUT_ENTRY_WEIGHT 512
#define CUT_WEIGHT_MAX (4u << 20)

/* ---------------------------------------------------------------- writer */

struct fmt_mwriter {
	fmt_cw *cw;
	fmt_enc enc;
	cut_buf raw, first_key, last_path;
	uint64_t entries, bytes;
	char *path;
	uint32_t bcount;   /* entries in the block being built */
	uint64_t bweight;  /* and their weight, for the cut rule */
	/* Block copy: while every entry of the block being built equals the
	 * entry at the same index of prev's block mblock (the caller says so,
	 * fmt_mwriter_add_from), nothing is encoded; a block that ends equal
	 * to it whole is copied as prev stores it. */
	fmt_mreader *prev;
	uint32_t mblock, midx, mcount; /* mcount: mblock's entries */
	uint64_t copied;
	/* The skeleton (skel.h), when asked for: its container beside the
	 * manifest, the block's builder, what says a file is immutable, and
	 * prev's skeleton, whose records a copied block copies. */
	fmt_cw *sk;
	fmt_skel_build skb;
	fmt_mwriter_imm_fn imm;
	void *imm_arg;
	char *policy;
	fmt_skel *prev_sk;
	cut_buf skraw;
	uint64_t sk_records;
	/* prev's block eblock, decoded up to entry enext: the runs of one
	 * block that is not copied (at the edge of a change) ask for its
	 * entries in order, and each would otherwise decode the block again
	 * from its start.  ebusy: in use by the mw_each below on the stack. */
	cut_buf eraw;
	fmt_dec edec;
	uint32_t eblock, enext;
	bool ebusy;
};

fmt_mwriter *fmt_mwriter_create(const char *path)
{
	fmt_cw *cw = fmt_cw_create(path, FMT_MAGIC_MANIFEST);
	if (!cw)
		return NULL;
	fmt_mwriter *w = cut_calloc(1, sizeof *w);
	w->cw = cw;
	w->path = cut_strndup(path, strlen(path));
	w->mblock = UINT32_MAX;
	w->eblock = UINT32_MAX;
	w->edec.check_order = true;
	return w;
}

void fmt_mwriter_set_prev(fmt_mwriter *w, fmt_mreader *prev) { w->prev = prev; }
void fmt_mwriter_scratch(fmt_mwriter *w) { fmt_cw_scratch(w->cw); }
uint64_t fmt_mwriter_copied(const fmt_mwriter *w)
{
	/* The block being built counts when it will be copied as it stands
	 * (at finish: the caller reads this before, for the header). */
	bool pending = w->mblock != UINT32_MAX && w->midx == w->mcount;
	return w->copied + pending;
}

static uint64_t cut_weight(const fmt_entry *e)
{
	return CUT_ENTRY_WEIGHT + (uint64_t)e->path_len + e->target_len;
}

bool fmt_mcut_before(uint32_t count, uint64_t weight, const fmt_entry *e)
{
	if (count == 0)
		return false;
	if (weight + cut_weight(e) > CUT_WEIGHT_MAX)
		return true;
	uint64_t h = XXH3_64bits(e->path, e->path_len);
	if (e->type == FMT_T_DIR && (h & ((1u << CUT_DIR_BITS) - 1)) == 0)
		return true;
	return (h >> (64 - CUT_ANY_BITS)) == 0;
}

/* Encodes e, the entry at index idx of the block being built, and gives it
 * to the skeleton's builder. */
static void mw_encode(fmt_mwriter *w, const fmt_entry *e, uint32_t idx)
{
	fmt_enc_add(&w->enc, e);
	if (w->sk)
		fmt_skel_add(&w->skb, e, idx, w->imm(w->imm_arg, e->path, e->path_len),
			     cut_weight(e));
}

typedef int (*mw_each_fn)(fmt_mwriter *w, const fmt_entry *e, uint32_t b, uint32_t i);

/* Calls fn on the entries [from, from + n) of prev's block b, decoded by
 * dec, which has decoded *next of them so far.  0 or -1 (logged; fn's own -1
 * is logged by fn). */
static int mw_decode(fmt_mwriter *w, fmt_dec *dec, uint32_t *next, uint32_t b, uint32_t from,
		     uint32_t n, mw_each_fn fn)
{
	fmt_entry e;
	int rc = 0;
	while (rc == 0 && *next < from + n) {
		int d = fmt_dec_next(dec, &e);
		if (d <= 0) {
			fmt_mreader_corrupt(w->prev, b, d < 0 ? dec->err : "block holds fewer entries");
			return -1;
		}
		uint32_t i = (*next)++;
		if (i >= from)
			rc = fn(w, &e, b, i);
	}
	return rc;
}

/* Decodes prev's block b and calls fn on its entries from index from, n of
 * them: with the writer's positioned decoder when it is free (it goes on
 * where the last call stopped when that lies before from), else with one of
 * its own (fn may come back here).  0 or -1, as mw_decode. */
static int mw_each(fmt_mwriter *w, uint32_t b, uint32_t from, uint32_t n, mw_each_fn fn)
{
	if (w->ebusy) {
		cut_buf raw = {0};
		fmt_dec dec = {.check_order = true};
		uint32_t next = 0;
		int rc = fmt_mreader_load_block(w->prev, b, &raw, &dec);
		if (rc == 0)
			rc = mw_decode(w, &dec, &next, b, from, n, fn);
		cut_buf_free(&raw);
		fmt_dec_free(&dec);
		return rc;
	}
	if (w->eblock != b || w->enext > from) {
		w->eblock = UINT32_MAX;
		if (fmt_mreader_load_block(w->prev, b, &w->eraw, &w->edec) < 0)
			return -1;
		w->eblock = b;
		w->enext = 0;
	}
	w->ebusy = true;
	int rc = mw_decode(w, &w->edec, &w->enext, b, from, n, fn);
	w->ebusy = false;
	if (rc < 0)
		w->eblock = UINT32_MAX;
	return rc;
}

static int each_encode(fmt_mwriter *w, const fmt_entry *e, uint32_t b, uint32_t i)
{
	(void)b;
	mw_encode(w, e, i);
	return 0;
}

static int each_skel(fmt_mwriter *w, const fmt_entry *e, uint32_t b, uint32_t i)
{
	(void)b;
	fmt_skel_add(&w->skb, e, i, w->imm(w->imm_arg, e->path, e->path_len), cut_weight(e));
	return 0;
}

static int each_add(fmt_mwriter *w, const fmt_entry *e, uint32_t b, uint32_t i)
{
	return fmt_mwriter_add_from(w, e, b, i);
}

/* The block matched so far turned out different from prev's: its entries
 * are encoded from prev's block after all (they are equal to it). */
static int mw_unmatch(fmt_mwriter *w)
{
	uint32_t b = w->mblock;
	w->mblock = UINT32_MAX;
	return mw_each(w, b, 0, w->midx, each_encode);
}

/* Writes the skeleton of the block just built from its builder. */
static int sk_built(fmt_mwriter *w)
{
	uint32_t n;
	w->skraw.len = 0;
	fmt_skel_finish(&w->skb, &w->skraw, &n);
	w->sk_records += n;
	return fmt_cw_block(w->sk, w->skraw.p, w->skraw.len, n, w->first_key.p, w->first_key.len);
}

/* The skeleton of a block copied whole from prev's block b: prev's as
 * stored, or built from the block when prev has none. */
static int sk_copied(fmt_mwriter *w, uint32_t b, uint32_t count)
{
	uint32_t n;
	/* A damaged record of prev's (logged) is built again, as without one. */
	if (!w->prev_sk || fmt_skel_read_disk(w->prev_sk, b, &w->skraw, &n) < 0)
		return mw_each(w, b, 0, count, each_skel) < 0 ? -1 : sk_built(w);
	w->sk_records += n;
	return fmt_cw_copy_block(w->sk, w->skraw.p, w->skraw.len, n, w->first_key.p,
				 w->first_key.len);
}

static int mw_flush(fmt_mwriter *w)
{
	if (!w->bcount)
		return 0;
	uint32_t count = w->bcount;
	w->bcount = 0;
	w->bweight = 0;
	if (w->mblock != UINT32_MAX) {
		uint32_t b = w->mblock;
		if (w->midx == w->mcount) {
			w->mblock = UINT32_MAX;
			if (fmt_mreader_read_disk(w->prev, b, &w->raw) < 0)
				return -1;
			w->copied++;
			if (fmt_cw_copy_block(w->cw, w->raw.p, w->raw.len, count, w->first_key.p,
					      w->first_key.len) < 0)
				return -1;
			return w->sk ? sk_copied(w, b, count) : 0;
		}
		if (mw_unmatch(w) < 0)
			return -1;
	}
	w->raw.len = 0;
	fmt_enc_finish(&w->enc, &w->raw);
	if (fmt_cw_block(w->cw, w->raw.p, w->raw.len, count, w->first_key.p, w->first_key.len) < 0)
		return -1;
	return w->sk ? sk_built(w) : 0;
}

int fmt_mwriter_add_from(fmt_mwriter *w, const fmt_entry *e, uint32_t pblock, uint32_t pidx)
{
	if (w->entries > 0 &&
	    fmt_path_cmp((const char *)w->last_path.p, w->last_path.len, e->path, e->path_len) >= 0) {
		CUT_ERR("%s: internal: entry '%s' is out of canonical order", w->path, e->path);
		return -1;
	}
	if (!fmt_path_valid(e->path, e->path_len) || e->type < 1 || e->type > FMT_T_MAX) {
		CUT_ERR("%s: internal: invalid entry '%s'", w->path, e->path);
		return -1;
	}
	if (fmt_mcut_before(w->bcount, w->bweight, e) && mw_flush(w) < 0)
		return -1;
	if (w->bcount == 0) {
		w->first_key.len = 0;
		cut_buf_put(&w->first_key, e->path, e->path_len);
		if (w->prev && pblock != UINT32_MAX && pidx == 0) {
			fmt_block_info bi; /* its key into raw, free between blocks */
			if (fmt_mreader_block_info(w->prev, pblock, &bi, &w->raw) < 0)
				return -1;
			w->mblock = pblock;
			w->midx = 0;
			w->mcount = bi.count;
		}
	}
	if (w->mblock != UINT32_MAX && pblock == w->mblock && pidx == w->midx && pidx < w->mcount)
		w->midx++;
	else if (w->mblock != UINT32_MAX && mw_unmatch(w) < 0)
		return -1;
	if (w->mblock == UINT32_MAX)
		mw_encode(w, e, w->bcount);
	w->bcount++;
	w->bweight += cut_weight(e);
	w->last_path.len = 0;
	cut_buf_put(&w->last_path, e->path, e->path_len);
	w->entries++;
	if (e->type == FMT_T_FILE)
		w->bytes += e->size;
	return 0;
}

int fmt_mwriter_add(fmt_mwriter *w, const fmt_entry *e)
{
	return fmt_mwriter_add_from(w, e, UINT32_MAX, 0);
}

int fmt_mwriter_add_run(fmt_mwriter *w, const fmt_mrun *r)
{
	/* The first entry goes the usual way: it may end the block before it,
	 * or start a copy of prev's block. */
	if (fmt_mwriter_add_from(w, r->first, r->block, r->idx) < 0)
		return -1;
	uint32_t rest = r->n - 1;
	if (rest == 0)
		return 0;
	if (w->mblock != r->block || w->midx != r->idx + 1 || w->mcount - w->midx < rest)
		return mw_each(w, r->block, r->idx + 1, rest, each_add);
	/* The rest are prev's entries following prev's, from the same block
	 * state: the cut rule ends no block among them (FORMAT.md 3.5). */
	w->midx += rest;
	w->bcount += rest;
	w->bweight += r->weight - cut_weight(r->first);
	w->entries += rest;
	w->bytes += r->bytes - r->first->size;
	w->last_path.len = 0;
	cut_buf_put(&w->last_path, r->last->path, r->last->path_len);
	return 0;
}

int fmt_mwriter_skeleton(fmt_mwriter *w, fmt_mwriter_imm_fn imm, void *arg, const char *policy)
{
	char *sp = fmt_skel_path(w->path);
	w->sk = fmt_cw_create(sp, FMT_MAGIC_SKELETON);
	free(sp);
	if (!w->sk)
		return -1;
	w->imm = imm;
	w->imm_arg = arg;
	w->policy = cut_strndup(policy, strlen(policy));
	return 0;
}

void fmt_mwriter_set_prev_skeleton(fmt_mwriter *w, fmt_skel *s) { w->prev_sk = s; }

/* Finishes the skeleton as the one of the manifest id.  A manifest is
 * whole without it, so a failure is a warning: the next scan reads the
 * manifest instead. */
static void sk_finish(fmt_mwriter *w, const uint8_t id[FMT_ID_LEN])
{
	cut_buf m = {0};
	fmt_meta_put(&m, FMT_ST_MANIFEST_ID, id, FMT_ID_LEN);
	fmt_meta_put_str(&m, FMT_ST_POLICY, w->policy);
	uint8_t skid[FMT_ID_LEN];
	if (fmt_cw_finish(w->sk, &m, w->sk_records, skid) < 0)
		CUT_WARN("%s: written without its skeleton", w->path);
	w->sk = NULL;
	cut_buf_free(&m);
}

static void mw_free(fmt_mwriter *w)
{
	fmt_cw_abort(w->sk);
	fmt_skel_build_free(&w->skb);
	cut_buf_free(&w->skraw);
	cut_buf_free(&w->eraw);
	fmt_dec_free(&w->edec);
	free(w->policy);
	fmt_enc_free(&w->enc);
	cut_buf_free(&w->raw);
	cut_buf_free(&w->first_key);
	cut_buf_free(&w->last_path);
	free(w->path);
	free(w);
}

int fmt_mwriter_finish(fmt_mwriter *w, fmt_mheader *h, uint8_t id[FMT_ID_LEN])
{
	if (mw_flush(w) < 0) {
		fmt_mwriter_abort(w);
		return -1;
	}
	h->entries = w->entries;
	h->bytes = w->bytes;
	cut_buf m = {0};
	fmt_meta_put_str(&m, FMT_MT_ROOT, h->root);
	fmt_meta_put_str(&m, FMT_MT_HOST, h->host);
	fmt_meta_put_u64(&m, FMT_MT_START_NS, (uint64_t)h->start_ns);
	fmt_meta_put_u64(&m, FMT_MT_END_NS, (uint64_t)h->end_ns);
	fmt_meta_put_str(&m, FMT_MT_OPTIONS, h->options);
	fmt_meta_put_str(&m, FMT_MT_POLICY, h->policy);
	fmt_meta_put_u64(&m, FMT_MT_ENTRIES, h->entries);
	fmt_meta_put_u64(&m, FMT_MT_BYTES, h->bytes);
	fmt_meta_put_u64(&m, FMT_MT_ERRORS, h->errors);
	if (h->has_prev)
		fmt_meta_put(&m, FMT_MT_PREV_ID, h->prev_id, FMT_ID_LEN);
	if (h->stats)
		fmt_meta_put_str(&m, FMT_MT_STATS, h->stats);
	uint8_t own[FMT_ID_LEN]; /* the skeleton records the id, wanted or not */
	int rc = fmt_cw_finish(w->cw, &m, w->entries, id ? id : own);
	cut_buf_free(&m);
	w->cw = NULL;
	if (rc == 0 && w->sk)
		sk_finish(w, id ? id : own);
	mw_free(w);
	return rc;
}

void fmt_mwriter_abort(fmt_mwriter *w)
{
	if (!w)
		return;
	fmt_cw_abort(w->cw);
	mw_free(w);
}

int fmt_manifest_unlink(const char *path)
{
	char *sp = fmt_skel_path(path);
	int rc = 0;
	if (unlink(path) < 0 && errno != ENOENT) {
		CUT_SYSERR("%s: cannot remove", path);
		rc = -1;
	}
	if (unlink(sp) < 0 && errno != ENOENT) {
		CUT_SYSERR("%s: cannot remove", sp);
		rc = -1;
	}
	free(sp);
	return rc;
}

void fmt_mheader_free(fmt_mheader *h)
{
	free(h->root);
	free(h->host);
	free(h->options);
	free(h->policy);
	free(h->stats);
	memset(h, 0, sizeof *h);
}

/* ---------------------------------------------------------------- reader */

struct fmt_mcursor {
	fmt_mreader *r;
	uint32_t block;      /* block loaded in raw, or UINT32_MAX */
	cut_buf raw;
	fmt_dec dec;
	bool pending;        /* the entry in pend is the next to return */
	fmt_entry pend;
	void *idstate;       /* sequential reading only */
	cut_buf prev;        /* previous path, for the order check */
	bool have_prev;
	uint32_t marked;     /* a marked block handed out, not read, or UINT32_MAX */
	fmt_block_info bi;   /* the index entry of block (or marked) */
	cut_buf key;         /* its key */
};

struct fmt_mreader {
	fmt_cr *cr;
	fmt_mheader h;
	fmt_mcursor *seq;
	const uint8_t *marks; /* fmt_mreader_set_marks: one bit per block */
};

static bool mr_marked(const fmt_mreader *r, uint32_t b)
{
	return r->marks && (r->marks[b / 8] >> (b % 8) & 1);
}

static int mr_meta(fmt_mreader *r)
{
	size_t pos = 0;
	uint16_t tag;
	const uint8_t *v;
	uint32_t len;
	bool seen_root = false, seen_entries = false;
	while (fmt_cr_meta_next(r->cr, &pos, &tag, &v, &len)) {
		char **str = NULL;
		int64_t *i64 = NULL;
		uint64_t *u64 = NULL;
		switch (tag) {
		case FMT_MT_ROOT: str = &r->h.root; seen_root = true; break;
		case FMT_MT_HOST: str = &r->h.host; break;
		case FMT_MT_OPTIONS: str = &r->h.options; break;
		case FMT_MT_POLICY: str = &r->h.policy; break;
		case FMT_MT_STATS: str = &r->h.stats; break;
		case FMT_MT_START_NS: i64 = &r->h.start_ns; break;
		case FMT_MT_END_NS: i64 = &r->h.end_ns; break;
		case FMT_MT_ENTRIES: u64 = &r->h.entries; seen_entries = true; break;
		case FMT_MT_BYTES: u64 = &r->h.bytes; break;
		case FMT_MT_ERRORS: u64 = &r->h.errors; break;
		case FMT_MT_PREV_ID:
			if (len != FMT_ID_LEN)
				goto bad;
			memcpy(r->h.prev_id, v, FMT_ID_LEN);
			r->h.has_prev = true;
			continue;
		default:
			if (tag & FMT_TAG_OPTIONAL)
				continue;
			CUT_ERR("%s: header field %u is unknown to this version of cutover; "
				"refusing to guess its meaning", fmt_cr_path(r->cr), tag);
			return -1;
		}
		if (str) {
			free(*str);
			*str = cut_strndup((const char *)v, len);
		} else {
			if (len != 8)
				goto bad;
			if (i64)
				*i64 = (int64_t)cut_get_le64(v);
			else
				*u64 = cut_get_le64(v);
		}
	}
	if (!seen_root || !seen_entries || r->h.entries != fmt_cr_records(r->cr))
		goto bad;
	if (!r->h.host)
		r->h.host = cut_strndup("", 0);
	if (!r->h.options)
		r->h.options = cut_strndup("", 0);
	if (!r->h.policy)
		r->h.policy = cut_strndup("", 0);
	return 0;
bad:
	CUT_ERR("%s: corrupt file: manifest header fields are missing or malformed",
		fmt_cr_path(r->cr));
	return -1;
}

fmt_mreader *fmt_mreader_open(const char *path)
{
	fmt_cr *cr = fmt_cr_open(path, FMT_MAGIC_MANIFEST);
	if (!cr)
		return NULL;
	fmt_mreader *r = cut_calloc(1, sizeof *r);
	r->cr = cr;
	if (mr_meta(r) < 0) {
		fmt_mreader_close(r);
		return NULL;
	}
	return r;
}

void fmt_mreader_close(fmt_mreader *r)
{
	if (!r)
		return;
	fmt_mcursor_free(r->seq);
	fmt_cr_close(r->cr);
	fmt_mheader_free(&r->h);
	free(r);
}

const fmt_mheader *fmt_mreader_header(const fmt_mreader *r) { return &r->h; }
const uint8_t *fmt_mreader_id(const fmt_mreader *r) { return fmt_cr_id(r->cr); }
const char *fmt_mreader_path(const fmt_mreader *r) { return fmt_cr_path(r->cr); }

fmt_mcursor *fmt_mcursor_new(fmt_mreader *r)
{
	fmt_mcursor *c = cut_calloc(1, sizeof *c);
	c->r = r;
	c->block = UINT32_MAX;
	c->marked = UINT32_MAX;
	c->dec.check_order = true; /* within a block; fmt_mreader_next checks across */
	return c;
}

void fmt_mcursor_free(fmt_mcursor *c)
{
	if (!c)
		return;
	cut_buf_free(&c->raw);
	fmt_dec_free(&c->dec);
	cut_buf_free(&c->prev);
	cut_buf_free(&c->key);
	if (c->idstate)
		fmt_cr_id_abort(c->idstate); /* stopped before the end: nothing to check */
	free(c);
}

static int mc_load(fmt_mcursor *c, uint32_t b)
{
	fmt_cr *cr = c->r->cr;
	uint32_t count;
	if (c->block != b) {
		c->block = UINT32_MAX;
		if (fmt_cr_block(cr, b, &c->bi, &c->key) < 0 ||
		    fmt_cr_read_block(cr, b, &c->raw, &count, c->idstate) < 0)
			return -1;
		c->block = b;
	}
	if (fmt_dec_init(&c->dec, c->raw.p, c->raw.len, c->bi.count) < 0) {
		fmt_cr_corrupt(cr, c->bi.off, c->dec.err);
		c->block = UINT32_MAX;
		return -1;
	}
	c->pending = false;
	return 0;
}

/* Next entry regardless of pending state; crosses blocks. */
static int mc_raw_next(fmt_mcursor *c, fmt_entry *e)
{
	fmt_cr *cr = c->r->cr;
	for (;;) {
		if (c->block == UINT32_MAX)
			return 0;
		int rc = fmt_dec_next(&c->dec, e);
		if (rc > 0) {
			const fmt_block_info *b = &c->bi;
			/* The index's key of a block is its first path. */
			if (c->dec.left + 1 == b->count &&
			    (b->key_len != e->path_len || memcmp(b->key, e->path, e->path_len))) {
				fmt_cr_corrupt(cr, b->off, "block's first path differs from the index");
				return -1;
			}
			return 1;
		}
		if (rc < 0) {
			fmt_cr_corrupt(cr, c->bi.off, c->dec.err);
			return -1;
		}
		uint32_t nb = c->block + 1;
		if (nb >= fmt_cr_nblocks(cr)) {
			c->block = UINT32_MAX;
			return 0;
		}
		if (mc_load(c, nb) < 0)
			return -1;
	}
}

int fmt_mcursor_next(fmt_mcursor *c, fmt_entry *e)
{
	if (c->pending) {
		c->pending = false;
		*e = c->pend;
		return 1;
	}
	return mc_raw_next(c, e);
}

int fmt_mcursor_seek(fmt_mcursor *c, const char *path, size_t len)
{
	fmt_cr *cr = c->r->cr;
	uint32_t n = fmt_cr_nblocks(cr);
	c->pending = false;
	if (n == 0) {
		c->block = UINT32_MAX;
		return 0;
	}
	/* Last block whose first key is <= path (or block 0). */
	uint32_t lo;
	if (fmt_cr_find(cr, path, len, &lo) < 0 || mc_load(c, lo) < 0)
		return -1;
	fmt_entry e;
	for (;;) {
		int rc = mc_raw_next(c, &e);
		if (rc <= 0)
			return rc;
		if (fmt_path_cmp(e.path, e.path_len, path, len) >= 0) {
			c->pend = e;
			c->pending = true;
			return 0;
		}
	}
}

int fmt_mcursor_find(fmt_mcursor *c, const char *path, size_t len, fmt_entry *e)
{
	if (fmt_mcursor_seek(c, path, len) < 0)
		return -1;
	if (!c->pending)
		return 0;
	if (c->pend.path_len == len && memcmp(c->pend.path, path, len) == 0) {
		*e = c->pend;
		return 1;
	}
	return 0;
}

void fmt_mreader_set_marks(fmt_mreader *r, const uint8_t *bits) { r->marks = bits; }

/* Hands out marked block b instead of decoding it (see fmt_mreader_next).
 * Its stored bytes are still read and checked against their checksum and
 * the index's, and go to the whole-file id: a damaged block is found even
 * when nothing needs its entries, for the cost of a read and a hash. */
static int mr_mark(fmt_mreader *r, uint32_t b, fmt_entry *e)
{
	fmt_mcursor *c = r->seq;
	c->block = UINT32_MAX; /* c->raw is scratch now */
	if (fmt_cr_block(r->cr, b, &c->bi, &c->key) < 0 || fmt_cr_read_disk(r->cr, b, &c->raw) < 0)
		return -1;
	if (c->idstate)
		fmt_cr_id_feed(c->idstate, c->raw.p, c->raw.len);
	c->marked = b;
	memset(e, 0, sizeof *e);
	e->path = (const char *)c->bi.key;
	e->path_len = c->bi.key_len;
	e->ino = b;
	e->size = c->bi.count;
	return 2;
}

/* For a reader with marks: the block to read next once the current one is
 * used up (its end checked), UINT32_MAX while it still has entries or at
 * the end.  *err on corruption. */
static uint32_t mr_next_block(fmt_mreader *r, bool *err)
{
	fmt_mcursor *c = r->seq;
	if (c->marked != UINT32_MAX)
		return c->marked + 1;
	if (c->block == UINT32_MAX || c->dec.left > 0)
		return UINT32_MAX;
	fmt_entry end;
	int rc = fmt_dec_next(&c->dec, &end); /* every stream used up */
	if (rc != 0) {
		fmt_cr_corrupt(r->cr, c->bi.off, rc < 0 ? c->dec.err : "more entries than the block's count");
		*err = true;
	}
	return c->block + 1;
}

void fmt_mreader_pos(const fmt_mreader *r, uint32_t *block, uint32_t *idx)
{
	const fmt_mcursor *c = r->seq;
	*block = c ? c->block : UINT32_MAX;
	*idx = c && c->block != UINT32_MAX ? c->dec.count - c->dec.left - 1 : 0;
}

int fmt_mreader_next(fmt_mreader *r, fmt_entry *e)
{
	if (!r->seq) {
		r->seq = fmt_mcursor_new(r);
		r->seq->idstate = fmt_cr_id_begin(r->cr);
		if (fmt_cr_nblocks(r->cr) > 0) {
			if (mr_marked(r, 0))
				return mr_mark(r, 0, e);
			if (mc_load(r->seq, 0) < 0)
				return -1;
		}
	}
	fmt_mcursor *c = r->seq;
	if (r->marks) {
		/* The next block is read here, not in mc_raw_next, so that a
		 * marked one can be handed out instead. */
		bool err = false;
		uint32_t nb = mr_next_block(r, &err);
		if (err)
			return -1;
		if (nb != UINT32_MAX) {
			c->marked = UINT32_MAX;
			if (nb >= fmt_cr_nblocks(r->cr)) {
				c->block = UINT32_MAX;
			} else if (mr_marked(r, nb)) {
				return mr_mark(r, nb, e);
			} else if (mc_load(c, nb) < 0) {
				return -1;
			}
		}
	}
	int rc = mc_raw_next(c, e);
	if (rc == 0 && c->idstate) {
		void *s = c->idstate;
		c->idstate = NULL;
		return fmt_cr_id_end(r->cr, s) < 0 ? -1 : 0;
	}
	if (rc <= 0)
		return rc;
	/* The decoder checked the order within the block; here the first
	 * entry of a block is checked against the last of the one before. */
	if (c->dec.left + 1 == c->dec.count && c->have_prev &&
	    fmt_path_cmp((const char *)c->prev.p, c->prev.len, e->path, e->path_len) >= 0) {
		fmt_cr_corrupt(r->cr, c->bi.off, "entries out of canonical order");
		return -1;
	}
	if (c->dec.left == 0) {
		c->prev.len = 0;
		cut_buf_put(&c->prev, e->path, e->path_len);
		c->have_prev = true;
	}
	return 1;
}

uint32_t fmt_mreader_nblocks(const fmt_mreader *r) { return fmt_cr_nblocks(r->cr); }

int fmt_mreader_block_info(fmt_mreader *r, uint32_t i, fmt_block_info *b, cut_buf *key)
{
	return fmt_cr_block(r->cr, i, b, key);
}

int fmt_mreader_find_block(fmt_mreader *r, const char *path, size_t len, uint32_t *b)
{
	return fmt_cr_find(r->cr, path, len, b);
}

int fmt_mreader_load_block(fmt_mreader *r, uint32_t i, cut_buf *raw, fmt_dec *dec)
{
	uint32_t count;
	if (fmt_cr_read_block(r->cr, i, raw, &count, NULL) < 0)
		return -1;
	if (fmt_dec_init(dec, raw->p, raw->len, count) < 0) {
		fmt_cr_corrupt_block(r->cr, i, dec->err);
		return -1;
	}
	return 0;
}

int fmt_mreader_read_disk(fmt_mreader *r, uint32_t i, cut_buf *disk)
{
	return fmt_cr_read_disk(r->cr, i, disk);
}

void fmt_mreader_corrupt(fmt_mreader *r, uint32_t i, const char *what)
{
	fmt_cr_corrupt_block(r->cr, i, what);
}
