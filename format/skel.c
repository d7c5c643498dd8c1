/*
 * skel.c - a manifest's skeleton: the per-block builder, the record codec
 * and the reader (FORMAT.md, "Skeleton").
 */
#include "skel.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "path.h"

/* ---------------------------------------------------------------- builder */

static bool runs_with(const fmt_entry *e, bool imm)
{
	return imm && e->type == FMT_T_FILE && (e->flags & FMT_E_CARRIED);
}

static bool hashed(const fmt_entry *e) { return (e->flags & FMT_E_HASH) != 0; }

static void keep_last(fmt_skel_build *b, const fmt_entry *e)
{
	b->last = *e;
	b->last_path.len = 0;
	cut_buf_put(&b->last_path, e->path, e->path_len);
	b->last.path = (const char *)b->last_path.p;
}

static void close_run(fmt_skel_build *b)
{
	if (!b->open)
		return;
	const fmt_skel_el *r = &b->run;
	cut_buf_varint(&b->side, r->idx);
	cut_buf_varint(&b->side, r->n);
	cut_buf_varint(&b->side, r->bytes);
	cut_buf_varint(&b->side, r->weight);
	cut_buf_putc(&b->side, r->hashed);
	if (r->n >= 2)
		fmt_enc_add(&b->enc, &b->last);
	b->nel++;
	b->open = false;
}

/* Does e, at idx, carry the open run on: the next index, a file of the same
 * directory, hashed alike? */
static bool extends(const fmt_skel_build *b, const fmt_entry *e, uint32_t idx, bool imm)
{
	if (!b->open || !runs_with(e, imm) || idx != b->run.idx + b->run.n ||
	    hashed(e) != b->run.hashed)
		return false;
	size_t pl = fmt_path_parent_len(e->path, e->path_len);
	return pl == fmt_path_parent_len(b->last.path, b->last.path_len) &&
	       memcmp(e->path, b->last.path, pl) == 0;
}

void fmt_skel_add(fmt_skel_build *b, const fmt_entry *e, uint32_t idx, bool imm, uint64_t weight)
{
	if (extends(b, e, idx, imm)) {
		b->run.n++;
		b->run.bytes += e->size;
		b->run.weight += weight;
		keep_last(b, e);
		return;
	}
	close_run(b);
	fmt_enc_add(&b->enc, e);
	if (runs_with(e, imm)) {
		b->open = true;
		b->run = (fmt_skel_el){.idx = idx, .n = 1, .bytes = e->size, .weight = weight,
				       .hashed = hashed(e)};
		keep_last(b, e);
		return;
	}
	cut_buf_varint(&b->side, idx);
	cut_buf_varint(&b->side, 0);
	b->nel++;
}

void fmt_skel_finish(fmt_skel_build *b, cut_buf *out, uint32_t *count)
{
	close_run(b);
	cut_buf_varint(out, b->nel);
	cut_buf_put(out, b->side.p, b->side.len);
	cut_buf_varint(out, b->enc.count);
	fmt_enc_finish(&b->enc, out);
	*count = b->nel;
	b->side.len = 0;
	b->nel = 0;
}

void fmt_skel_build_free(fmt_skel_build *b)
{
	cut_buf_free(&b->side);
	cut_buf_free(&b->last_path);
	fmt_enc_free(&b->enc);
}

/* ------------------------------------------------------------------ codec */

void fmt_skel_group_free(fmt_skel_group *g)
{
	free(g->el);
	free(g->v);
	cut_arena_free(&g->arena);
	memset(g, 0, sizeof *g);
}

size_t fmt_skel_group_bytes(const fmt_skel_group *g)
{
	return sizeof *g + (size_t)g->nel * sizeof *g->el + (size_t)g->nv * sizeof *g->v +
	       g->arena.reserved;
}

/* Reads the records' fixed part; *nenc: the entries they refer to. */
static int decode_side(const uint8_t **pp, const uint8_t *end, uint32_t count, fmt_skel_group *g,
		       uint64_t *nenc, const char **err)
{
	uint64_t nel, next = 0;
	if (cut_get_varint(pp, end, &nel) < 0 || nel != count) {
		*err = "skeleton record count does not match the index";
		return -1;
	}
	/* A manifest block has an entry, so its skeleton a record; and each
	 * record takes at least two bytes, which bounds the allocation. */
	if (nel == 0 || nel > (uint64_t)(end - *pp) / 2) {
		*err = "skeleton record count does not fit the block";
		return -1;
	}
	g->el = cut_calloc(nel ? nel : 1, sizeof *g->el);
	for (uint64_t k = 0; k < nel; k++) {
		fmt_skel_el *x = &g->el[k];
		uint64_t idx, n, bytes = 0, weight = 0;
		if (cut_get_varint(pp, end, &idx) < 0 || cut_get_varint(pp, end, &n) < 0 ||
		    (n && (cut_get_varint(pp, end, &bytes) < 0 ||
			   cut_get_varint(pp, end, &weight) < 0 || *pp >= end || **pp > 1))) {
			*err = "truncated skeleton record";
			return -1;
		}
		if (idx < next || idx > UINT32_MAX || n > UINT32_MAX - idx) {
			*err = "skeleton records overlap or are out of order";
			return -1;
		}
		*x = (fmt_skel_el){.idx = (uint32_t)idx, .n = (uint32_t)n, .bytes = bytes,
				   .weight = weight};
		if (n)
			x->hashed = *(*pp)++;
		x->first = (uint32_t)*nenc;
		*nenc += n >= 2 ? 2 : 1;
		x->last = (uint32_t)*nenc - 1;
		next = idx + (n ? n : 1);
	}
	g->nel = (uint32_t)nel;
	return 0;
}

int fmt_skel_decode(const uint8_t *raw, size_t len, uint32_t count, fmt_skel_group *g,
		    const char **err)
{
	memset(g, 0, sizeof *g);
	const uint8_t *p = raw, *end = raw + len;
	uint64_t nenc = 0, stored;
	if (decode_side(&p, end, count, g, &nenc, err) < 0)
		goto bad;
	if (cut_get_varint(&p, end, &stored) < 0 || stored != nenc) {
		*err = "skeleton entry count does not match its records";
		goto bad;
	}
	fmt_dec dec = {.check_order = true};
	if (fmt_dec_init(&dec, p, (size_t)(end - p), (uint32_t)nenc) < 0) {
		*err = dec.err;
		fmt_dec_free(&dec);
		goto bad;
	}
	g->v = cut_calloc(nenc ? nenc : 1, sizeof *g->v);
	fmt_entry e;
	int rc;
	while ((rc = fmt_dec_next(&dec, &e)) > 0)
		fmt_entry_copy(&g->v[g->nv++], &e, &g->arena);
	if (rc < 0)
		*err = dec.err;
	fmt_dec_free(&dec);
	if (rc < 0)
		goto bad;
	if (g->nv != nenc) {
		*err = "skeleton entry count does not match its records";
		goto bad;
	}
	for (uint32_t k = 0; k < g->nel; k++)
		if (g->el[k].n && g->v[g->el[k].first].type != FMT_T_FILE) {
			*err = "a skeleton run holds a non-file";
			goto bad;
		}
	return 0;
bad:
	fmt_skel_group_free(g);
	return -1;
}

/* ----------------------------------------------------------------- reader */

struct fmt_skel {
	fmt_cr *cr;
};

char *fmt_skel_path(const char *manifest_path)
{
	size_t n = strlen(manifest_path);
	char *p = cut_malloc(n + sizeof FMT_SKEL_SUFFIX);
	memcpy(p, manifest_path, n);
	memcpy(p + n, FMT_SKEL_SUFFIX, sizeof FMT_SKEL_SUFFIX);
	return p;
}

/* Does the skeleton's metadata name this manifest and policy? */
static bool skel_matches(const fmt_cr *cr, const uint8_t id[FMT_ID_LEN], const char *policy)
{
	size_t pos = 0;
	uint16_t tag;
	const uint8_t *v;
	uint32_t len;
	bool id_ok = false, pol_ok = false;
	while (fmt_cr_meta_next(cr, &pos, &tag, &v, &len) > 0) {
		if (tag == FMT_ST_MANIFEST_ID)
			id_ok = len == FMT_ID_LEN && memcmp(v, id, FMT_ID_LEN) == 0;
		else if (tag == FMT_ST_POLICY)
			pol_ok = len == strlen(policy) && memcmp(v, policy, len) == 0;
	}
	return id_ok && pol_ok;
}

fmt_skel *fmt_skel_open(const char *manifest_path, const uint8_t id[FMT_ID_LEN],
			uint32_t nblocks, const char *policy)
{
	char *path = fmt_skel_path(manifest_path);
	fmt_skel *s = NULL;
	if (access(path, F_OK) < 0) {
		free(path);
		return NULL;
	}
	fmt_cr *cr = fmt_cr_open(path, FMT_MAGIC_SKELETON);
	if (!cr) {
		CUT_WARN("%s: not used: the scan reads %s instead", path, manifest_path);
	} else if (fmt_cr_nblocks(cr) != nblocks || !skel_matches(cr, id, policy)) {
		fmt_cr_close(cr); /* another manifest's or policy's: not an error */
	} else {
		s = cut_calloc(1, sizeof *s);
		s->cr = cr;
	}
	free(path);
	return s;
}

void fmt_skel_close(fmt_skel *s)
{
	if (!s)
		return;
	fmt_cr_close(s->cr);
	free(s);
}

int fmt_skel_load(fmt_skel *s, uint32_t i, fmt_skel_group *g)
{
	cut_buf raw = {0};
	uint32_t count;
	const char *err = NULL;
	int rc = fmt_cr_read_block(s->cr, i, &raw, &count, NULL);
	if (rc == 0 && fmt_skel_decode(raw.p, raw.len, count, g, &err) < 0) {
		fmt_cr_corrupt_block(s->cr, i, err);
		rc = -1;
	}
	cut_buf_free(&raw);
	return rc;
}

int fmt_skel_read_disk(fmt_skel *s, uint32_t i, cut_buf *disk, uint32_t *count)
{
	fmt_block_info bi;
	if (fmt_cr_block(s->cr, i, &bi, NULL) < 0 || fmt_cr_read_disk(s->cr, i, disk) < 0)
		return -1;
	*count = bi.count;
	return 0;
}
