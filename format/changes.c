/*
 * changes.c - change log writer and reader (see changes.h, FORMAT.md).
 * A block's raw bytes are: u32 flags (0), u32 length of the op stream, the op
 * stream, then an entry block (entry.c) holding each record's entry.
 */
#include "changes.h"

#include <stdlib.h>

#include "path.h"

#define BLOCK_TARGET (64u << 10)
#define OP_HAS_OLD 0x80

static const char *const op_names[] = {NULL,   "mkdir", "create", "update", "link",
				       "symlink", "rename", "meta", "delete", "rmdir", "special"};

const char *fmt_op_name(unsigned op) { return op >= 1 && op <= FMT_OP_MAX ? op_names[op] : "unknown"; }

int fmt_op_parse(const char *name)
{
	for (int i = 1; i <= FMT_OP_MAX; i++)
		if (strcmp(name, op_names[i]) == 0)
			return i;
	return -1;
}

static bool has_to(unsigned op) { return op == FMT_OP_RENAME || op == FMT_OP_LINK; }

/* Checks what a record must satisfy in the file and in memory alike. */
static const char *change_check(const fmt_change *c)
{
	if (c->op < 1 || c->op > FMT_OP_MAX)
		return "unknown operation";
	if (!fmt_path_valid(c->e.path, c->e.path_len))
		return "path has an empty, '.', '..' or NUL component, or is absolute";
	if (c->e.path_len == 0 && c->op != FMT_OP_META && c->op != FMT_OP_MKDIR)
		return "operation on the root itself";
	if (has_to(c->op) != (c->to != NULL))
		return "'to' path present on the wrong operation";
	if (c->to && (c->to_len == 0 || !fmt_path_valid(c->to, c->to_len)))
		return "'to' path has an empty, '.', '..' or NUL component, or is absolute";
	if (c->e.type < 1 || c->e.type > FMT_T_MAX)
		return "unknown entry type";
	if ((c->op == FMT_OP_MKDIR || c->op == FMT_OP_RMDIR) && c->e.type != FMT_T_DIR)
		return "mkdir or rmdir of something that is not a directory";
	if ((c->op == FMT_OP_CREATE || c->op == FMT_OP_UPDATE || c->op == FMT_OP_LINK) &&
	    c->e.type != FMT_T_FILE)
		return "file operation on something that is not a file";
	if (c->op == FMT_OP_SYMLINK && c->e.type != FMT_T_SYMLINK)
		return "symlink operation on something that is not a symlink";
	if ((c->flags & FMT_C_OLD) && (c->old.type < 1 || c->old.type > FMT_T_MAX))
		return "unknown type of the expected old entry";
	return NULL;
}

/* ---------------------------------------------------------------- writer */

struct fmt_cwriter {
	fmt_cw *cw;
	fmt_enc enc;
	cut_buf ops, raw, key;
	uint64_t ops_count[FMT_OP_MAX + 1], ops_bytes[FMT_OP_MAX + 1], records;
	char *path;
};

fmt_cwriter *fmt_cwriter_create(const char *path)
{
	fmt_cw *cw = fmt_cw_create(path, FMT_MAGIC_CHANGES);
	if (!cw)
		return NULL;
	fmt_cwriter *w = cut_calloc(1, sizeof *w);
	w->cw = cw;
	w->path = cut_strndup(path, strlen(path));
	return w;
}

static int cwr_flush(fmt_cwriter *w)
{
	if (!w->enc.count)
		return 0;
	uint32_t count = w->enc.count;
	uint8_t h[8];
	cut_put_le32(h, 0);
	cut_put_le32(h + 4, (uint32_t)w->ops.len);
	w->raw.len = 0;
	cut_buf_put(&w->raw, h, 8);
	cut_buf_put(&w->raw, w->ops.p, w->ops.len);
	fmt_enc_finish(&w->enc, &w->raw);
	w->ops.len = 0;
	return fmt_cw_block(w->cw, w->raw.p, w->raw.len, count, w->key.p, w->key.len);
}

int fmt_cwriter_add(fmt_cwriter *w, const fmt_change *c)
{
	const char *bad = change_check(c);
	if (bad) {
		CUT_ERR("%s: internal: invalid %s record for '%s': %s", w->path, fmt_op_name(c->op),
			c->e.path, bad);
		return -1;
	}
	if (w->enc.count == 0) {
		w->key.len = 0;
		cut_buf_put(&w->key, c->e.path, c->e.path_len);
	}
	cut_buf_putc(&w->ops, (uint8_t)(c->op | ((c->flags & FMT_C_OLD) ? OP_HAS_OLD : 0)));
	if (c->to) {
		cut_buf_varint(&w->ops, c->to_len);
		cut_buf_put(&w->ops, c->to, c->to_len);
	}
	if (c->flags & FMT_C_OLD) {
		cut_buf_putc(&w->ops, c->old.type);
		cut_buf_varint(&w->ops, c->old.size);
		cut_buf_varint(&w->ops, cut_zigzag(c->old.mtime_ns));
	}
	fmt_enc_add(&w->enc, &c->e);
	w->ops_count[c->op]++;
	if (c->e.type == FMT_T_FILE)
		w->ops_bytes[c->op] += c->e.size;
	w->records++;
	if (fmt_enc_size(&w->enc) + w->ops.len >= BLOCK_TARGET)
		return cwr_flush(w);
	return 0;
}

static void cwr_free(fmt_cwriter *w)
{
	fmt_enc_free(&w->enc);
	cut_buf_free(&w->ops);
	cut_buf_free(&w->raw);
	cut_buf_free(&w->key);
	free(w->path);
	free(w);
}

int fmt_cwriter_finish(fmt_cwriter *w, fmt_cheader *h, uint8_t id[FMT_ID_LEN])
{
	if (cwr_flush(w) < 0) {
		fmt_cwriter_abort(w);
		return -1;
	}
	memcpy(h->ops, w->ops_count, sizeof h->ops);
	memcpy(h->bytes, w->ops_bytes, sizeof h->bytes);
	h->records = w->records;
	cut_buf m = {0};
	fmt_meta_put_str(&m, FMT_CT_SOURCE, h->source);
	if (h->has_old)
		fmt_meta_put(&m, FMT_CT_OLD_ID, h->old_id, FMT_ID_LEN);
	fmt_meta_put(&m, FMT_CT_NEW_ID, h->new_id, FMT_ID_LEN);
	fmt_meta_put_u64(&m, FMT_CT_CREATED_NS, (uint64_t)h->created_ns);
	uint8_t v[8 * (FMT_OP_MAX + 1)];
	for (int i = 0; i <= FMT_OP_MAX; i++)
		cut_put_le64(v + 8 * i, h->ops[i]);
	fmt_meta_put(&m, FMT_CT_OPS, v, sizeof v);
	for (int i = 0; i <= FMT_OP_MAX; i++)
		cut_put_le64(v + 8 * i, h->bytes[i]);
	fmt_meta_put(&m, FMT_CT_OP_BYTES, v, sizeof v);
	int rc = fmt_cw_finish(w->cw, &m, w->records, id);
	cut_buf_free(&m);
	w->cw = NULL;
	cwr_free(w);
	return rc;
}

void fmt_cwriter_abort(fmt_cwriter *w)
{
	if (!w)
		return;
	fmt_cw_abort(w->cw);
	cwr_free(w);
}

void fmt_cheader_free(fmt_cheader *h)
{
	free(h->source);
	memset(h, 0, sizeof *h);
}

/* ---------------------------------------------------------------- reader */

struct fmt_creader {
	fmt_cr *cr;
	fmt_cheader h;
	uint32_t block;       /* next block to load */
	bool loaded;
	cut_buf raw, to;
	const uint8_t *ops, *ops_end;
	fmt_dec dec;
	void *idstate;
};

static int crd_meta(fmt_creader *r)
{
	size_t pos = 0;
	uint16_t tag;
	const uint8_t *v;
	uint32_t len;
	bool seen_new = false, seen_ops = false;
	while (fmt_cr_meta_next(r->cr, &pos, &tag, &v, &len)) {
		switch (tag) {
		case FMT_CT_SOURCE:
			free(r->h.source);
			r->h.source = cut_strndup((const char *)v, len);
			break;
		case FMT_CT_OLD_ID:
		case FMT_CT_NEW_ID:
			if (len != FMT_ID_LEN)
				goto bad;
			memcpy(tag == FMT_CT_OLD_ID ? r->h.old_id : r->h.new_id, v, FMT_ID_LEN);
			if (tag == FMT_CT_OLD_ID)
				r->h.has_old = true;
			else
				seen_new = true;
			break;
		case FMT_CT_CREATED_NS:
			if (len != 8)
				goto bad;
			r->h.created_ns = (int64_t)cut_get_le64(v);
			break;
		case FMT_CT_OPS:
		case FMT_CT_OP_BYTES:
			if (len != 8 * (FMT_OP_MAX + 1))
				goto bad;
			for (int i = 0; i <= FMT_OP_MAX; i++)
				(tag == FMT_CT_OPS ? r->h.ops : r->h.bytes)[i] = cut_get_le64(v + 8 * i);
			seen_ops |= tag == FMT_CT_OPS;
			break;
		default:
			if (tag & FMT_TAG_OPTIONAL)
				break;
			CUT_ERR("%s: header field %u is unknown to this version of cutover; "
				"refusing to guess its meaning", fmt_cr_path(r->cr), tag);
			return -1;
		}
	}
	if (!seen_new || !seen_ops || !r->h.source)
		goto bad;
	r->h.records = fmt_cr_records(r->cr);
	uint64_t sum = 0;
	for (int i = 0; i <= FMT_OP_MAX; i++)
		sum += r->h.ops[i];
	if (sum != r->h.records)
		goto bad;
	return 0;
bad:
	CUT_ERR("%s: corrupt file: change log header fields are missing or malformed",
		fmt_cr_path(r->cr));
	return -1;
}

fmt_creader *fmt_creader_open(const char *path)
{
	fmt_cr *cr = fmt_cr_open(path, FMT_MAGIC_CHANGES);
	if (!cr)
		return NULL;
	fmt_creader *r = cut_calloc(1, sizeof *r);
	r->cr = cr;
	if (crd_meta(r) < 0) {
		fmt_creader_close(r);
		return NULL;
	}
	return r;
}

void fmt_creader_rewind(fmt_creader *r)
{
	r->block = 0;
	r->loaded = false;
	if (r->idstate)
		fmt_cr_id_abort(r->idstate); /* stopped before the end: nothing to check */
	r->idstate = NULL;
}

void fmt_creader_close(fmt_creader *r)
{
	if (!r)
		return;
	fmt_creader_rewind(r);
	cut_buf_free(&r->raw);
	cut_buf_free(&r->to);
	fmt_dec_free(&r->dec);
	fmt_cr_close(r->cr);
	fmt_cheader_free(&r->h);
	free(r);
}

const fmt_cheader *fmt_creader_header(const fmt_creader *r) { return &r->h; }
const uint8_t *fmt_creader_id(const fmt_creader *r) { return fmt_cr_id(r->cr); }

#define BAD(what)                                                                 \
	do {                                                                      \
		fmt_cr_corrupt_block(r->cr, r->block - 1, what);                 \
		return -1;                                                        \
	} while (0)

int fmt_creader_next(fmt_creader *r, fmt_change *c)
{
	if (r->block == 0 && !r->loaded && !r->idstate)
		r->idstate = fmt_cr_id_begin(r->cr);
	for (;;) {
		if (!r->loaded) {
			if (r->block >= fmt_cr_nblocks(r->cr)) {
				void *s = r->idstate;
				r->idstate = NULL;
				return s && fmt_cr_id_end(r->cr, s) < 0 ? -1 : 0;
			}
			uint32_t count;
			if (fmt_cr_read_block(r->cr, r->block, &r->raw, &count, r->idstate) < 0)
				return -1;
			r->block++;
			if (r->raw.len < 8 || cut_get_le32(r->raw.p) != 0)
				BAD("change block header malformed or has unknown flags");
			uint32_t ol = cut_get_le32(r->raw.p + 4);
			if (ol > r->raw.len - 8)
				BAD("change block op stream runs past the block");
			r->ops = r->raw.p + 8;
			r->ops_end = r->ops + ol;
			if (fmt_dec_init(&r->dec, r->ops_end, r->raw.len - 8 - ol, count) < 0)
				BAD(r->dec.err);
			r->loaded = true;
		}
		memset(c, 0, sizeof *c);
		int rc = fmt_dec_next(&r->dec, &c->e);
		if (rc < 0)
			BAD(r->dec.err);
		if (rc == 0) {
			if (r->ops != r->ops_end)
				BAD("change block has operations without entries");
			r->loaded = false;
			continue;
		}
		if (r->ops >= r->ops_end)
			BAD("change block has entries without operations");
		uint8_t ob = *r->ops++;
		c->op = ob & 0x7f;
		if (c->op < 1 || c->op > FMT_OP_MAX)
			BAD("unknown operation");
		uint64_t v;
		if (has_to(c->op)) {
			if (cut_get_varint(&r->ops, r->ops_end, &v) < 0 ||
			    v > (uint64_t)(r->ops_end - r->ops))
				BAD("'to' path cut short");
			r->to.len = 0;
			cut_buf_put(&r->to, r->ops, (size_t)v);
			cut_buf_putc(&r->to, 0);
			c->to = (const char *)r->to.p;
			c->to_len = (uint32_t)v;
			r->ops += v;
		}
		if (ob & OP_HAS_OLD) {
			c->flags |= FMT_C_OLD;
			if (r->ops >= r->ops_end)
				BAD("expected old entry cut short");
			c->old.type = *r->ops++;
			if (cut_get_varint(&r->ops, r->ops_end, &c->old.size) < 0 ||
			    cut_get_varint(&r->ops, r->ops_end, &v) < 0)
				BAD("expected old entry cut short");
			c->old.mtime_ns = cut_unzigzag(v);
		}
		const char *bad = change_check(c);
		if (bad)
			BAD(bad);
		return 1;
	}
}

int fmt_creader_validate(fmt_creader *r)
{
	fmt_creader_rewind(r);
	fmt_change c;
	int rc;
	while ((rc = fmt_creader_next(r, &c)) > 0)
		;
	fmt_creader_rewind(r);
	return rc;
}
