/*
 * entry.c - the columnar entry block codec (see entry.h, FORMAT.md).
 */
#include "entry.h"

#include <stdlib.h>
#include <sys/stat.h>

#include "path.h"

static const char *const type_names[] = {NULL,   "file", "dir",     "symlink",
					 "fifo", "socket", "chardev", "blockdev"};

const char *fmt_type_name(unsigned type)
{
	return type >= 1 && type <= FMT_T_MAX ? type_names[type] : "unknown";
}

int fmt_type_parse(const char *name)
{
	for (int t = 1; t <= FMT_T_MAX; t++)
		if (strcmp(name, type_names[t]) == 0)
			return t;
	return -1;
}

unsigned fmt_type_from_mode(unsigned mode)
{
	switch (mode & S_IFMT) {
	case S_IFREG: return FMT_T_FILE;
	case S_IFDIR: return FMT_T_DIR;
	case S_IFLNK: return FMT_T_SYMLINK;
	case S_IFIFO: return FMT_T_FIFO;
	case S_IFSOCK: return FMT_T_SOCK;
	case S_IFCHR: return FMT_T_CHR;
	case S_IFBLK: return FMT_T_BLK;
	}
	return 0;
}

void fmt_entry_copy(fmt_entry *dst, const fmt_entry *src, cut_arena *a)
{
	*dst = *src;
	dst->path = cut_arena_strndup(a, src->path, src->path_len);
	dst->target = src->target ? cut_arena_strndup(a, src->target, src->target_len) : NULL;
}

/* fmask byte: bits 0-2 type, 3 hash present, 4 carried, 5 same mode, 6 same
 * owner, 7 same device. */
#define M_HASH 0x08
#define M_CARRIED 0x10
#define M_SAME_MODE 0x20
#define M_SAME_OWNER 0x40
#define M_SAME_DEV 0x80

static int64_t floor_div(int64_t a, int64_t b, int64_t *rem)
{
	int64_t q = a / b, r = a % b;
	if (r < 0) {
		q--;
		r += b;
	}
	*rem = r;
	return q;
}

void fmt_enc_add(fmt_enc *e, const fmt_entry *en)
{
	/* Path, front-coded against the previous one in the block. */
	size_t shared = 0, lim = e->prev_path.len < en->path_len ? e->prev_path.len : en->path_len;
	while (shared < lim && e->prev_path.p[shared] == (uint8_t)en->path[shared])
		shared++;
	cut_buf_varint(&e->names, shared);
	cut_buf_varint(&e->names, en->path_len - shared);
	cut_buf_put(&e->names, en->path + shared, en->path_len - shared);
	e->prev_path.len = 0;
	cut_buf_put(&e->prev_path, en->path, en->path_len);

	bool first = e->count == 0;
	uint8_t m = en->type & 7;
	if (en->flags & FMT_E_HASH)
		m |= M_HASH;
	if (en->flags & FMT_E_CARRIED)
		m |= M_CARRIED;
	if (!first && en->mode == e->prev_mode)
		m |= M_SAME_MODE;
	if (!first && en->uid == e->prev_uid && en->gid == e->prev_gid)
		m |= M_SAME_OWNER;
	if (!first && en->dev == e->prev_dev)
		m |= M_SAME_DEV;
	cut_buf_putc(&e->meta, m);
	if (!(m & M_SAME_MODE))
		cut_buf_varint(&e->meta, en->mode);
	if (!(m & M_SAME_OWNER)) {
		cut_buf_varint(&e->meta, en->uid);
		cut_buf_varint(&e->meta, en->gid);
	}
	if (!(m & M_SAME_DEV))
		cut_buf_varint(&e->meta, en->dev);
	cut_buf_varint(&e->meta, en->size);
	int64_t mns, cns;
	int64_t ms = floor_div(en->mtime_ns, 1000000000, &mns);
	int64_t cs = floor_div(en->ctime_ns, 1000000000, &cns);
	cut_buf_varint(&e->meta, cut_zigzag(ms - e->prev_mtime_s));
	cut_buf_varint(&e->meta, (uint64_t)mns);
	cut_buf_varint(&e->meta, cut_zigzag(cs - ms));
	cut_buf_varint(&e->meta, (uint64_t)cns);
	cut_buf_varint(&e->meta, cut_zigzag((int64_t)(en->ino - e->prev_ino)));
	cut_buf_varint(&e->meta, en->nlink);
	if (en->type == FMT_T_CHR || en->type == FMT_T_BLK)
		cut_buf_varint(&e->meta, en->rdev);
	if (en->type == FMT_T_SYMLINK) {
		cut_buf_varint(&e->targets, en->target_len);
		cut_buf_put(&e->targets, en->target, en->target_len);
	}
	if (en->flags & FMT_E_HASH)
		cut_buf_put(&e->hashes, en->hash, 16);

	e->prev_mtime_s = ms;
	e->prev_ino = en->ino;
	e->prev_dev = en->dev;
	e->prev_mode = en->mode;
	e->prev_uid = en->uid;
	e->prev_gid = en->gid;
	e->count++;
}

#define ENC_HEAD 20 /* u32 flags, then u32 length of each of the four streams */

size_t fmt_enc_size(const fmt_enc *e)
{
	return ENC_HEAD + e->names.len + e->meta.len + e->targets.len + e->hashes.len;
}

void fmt_enc_finish(fmt_enc *e, cut_buf *out)
{
	uint8_t h[ENC_HEAD];
	cut_put_le32(h, 0);
	cut_put_le32(h + 4, (uint32_t)e->names.len);
	cut_put_le32(h + 8, (uint32_t)e->meta.len);
	cut_put_le32(h + 12, (uint32_t)e->targets.len);
	cut_put_le32(h + 16, (uint32_t)e->hashes.len);
	cut_buf_put(out, h, sizeof h);
	cut_buf_put(out, e->names.p, e->names.len);
	cut_buf_put(out, e->meta.p, e->meta.len);
	cut_buf_put(out, e->targets.p, e->targets.len);
	cut_buf_put(out, e->hashes.p, e->hashes.len);
	e->names.len = e->meta.len = e->targets.len = e->hashes.len = e->prev_path.len = 0;
	e->prev_mtime_s = 0;
	e->prev_ino = e->prev_dev = 0;
	e->prev_mode = e->prev_uid = e->prev_gid = 0;
	e->count = 0;
}

void fmt_enc_free(fmt_enc *e)
{
	cut_buf_free(&e->names);
	cut_buf_free(&e->meta);
	cut_buf_free(&e->targets);
	cut_buf_free(&e->hashes);
	cut_buf_free(&e->prev_path);
}

int fmt_dec_init(fmt_dec *d, const uint8_t *raw, size_t len, uint32_t count)
{
	cut_buf path = d->path, target = d->target;
	memset(d, 0, sizeof *d);
	d->path = path;
	d->target = target;
	d->path.len = 0;
	if (len < ENC_HEAD) {
		d->err = "entry block shorter than its header";
		return -1;
	}
	if (cut_get_le32(raw) != 0) {
		d->err = "entry block flags set that this version does not know";
		return -1;
	}
	uint64_t ln = cut_get_le32(raw + 4), lm = cut_get_le32(raw + 8);
	uint64_t lt = cut_get_le32(raw + 12), lh = cut_get_le32(raw + 16);
	if (ENC_HEAD + ln + lm + lt + lh != len) {
		d->err = "entry block stream lengths do not add up to the block";
		return -1;
	}
	d->names = raw + ENC_HEAD;
	d->names_end = d->meta = d->names + ln;
	d->meta_end = d->targets = d->meta + lm;
	d->targets_end = d->hashes = d->targets + lt;
	d->hashes_end = d->hashes + lh;
	d->left = count;
	return 0;
}

#define NEED(cond, msg)            \
	do {                       \
		if (!(cond)) {     \
			d->err = msg; \
			return -1; \
		}                  \
	} while (0)

int fmt_dec_next(fmt_dec *d, fmt_entry *en)
{
	if (d->left == 0) {
		NEED(d->names == d->names_end && d->meta == d->meta_end &&
			     d->targets == d->targets_end && d->hashes == d->hashes_end,
		     "entry block has bytes after its last entry");
		return 0;
	}
	uint64_t shared, slen, v;
	NEED(cut_get_varint(&d->names, d->names_end, &shared) == 0 &&
		     cut_get_varint(&d->names, d->names_end, &slen) == 0,
	     "path length cut short");
	NEED(shared <= d->path.len, "path shares more bytes than the previous path has");
	NEED(slen <= (uint64_t)(d->names_end - d->names), "path runs past its stream");
	NEED(shared + slen <= UINT32_MAX, "path too long");
	d->path.len = (size_t)shared;
	cut_buf_put(&d->path, d->names, (size_t)slen);
	cut_buf_putc(&d->path, 0);
	d->path.len--;
	d->names += slen;
	NEED(fmt_path_valid((const char *)d->path.p, d->path.len),
	     "path has an empty, '.', '..' or NUL component");

	memset(en, 0, sizeof *en);
	en->path = (const char *)d->path.p;
	en->path_len = (uint32_t)d->path.len;
	NEED(d->meta < d->meta_end, "attributes cut short");
	uint8_t m = *d->meta++;
	en->type = m & 7;
	NEED(en->type >= 1, "entry type 0 is not defined");
	if (m & M_HASH) {
		NEED(en->type == FMT_T_FILE, "hash on an entry that is not a file");
		en->flags |= FMT_E_HASH;
	}
	if (m & M_CARRIED)
		en->flags |= FMT_E_CARRIED;
#define GETV(dst, what)                                                                 \
	do {                                                                            \
		NEED(cut_get_varint(&d->meta, d->meta_end, &v) == 0, what " cut short"); \
		dst = v;                                                                \
	} while (0)
	if (m & M_SAME_MODE) {
		en->mode = d->prev_mode;
	} else {
		GETV(en->mode, "mode");
		NEED(v <= 07777, "mode has bits beyond 07777");
	}
	if (m & M_SAME_OWNER) {
		en->uid = d->prev_uid;
		en->gid = d->prev_gid;
	} else {
		GETV(en->uid, "uid");
		NEED(v <= UINT32_MAX, "uid too large");
		GETV(en->gid, "gid");
		NEED(v <= UINT32_MAX, "gid too large");
	}
	if (m & M_SAME_DEV)
		en->dev = d->prev_dev;
	else
		GETV(en->dev, "device");
	GETV(en->size, "size");
	uint64_t dms, mns, dcs, cns, dino;
	GETV(dms, "mtime");
	GETV(mns, "mtime nanoseconds");
	GETV(dcs, "ctime");
	GETV(cns, "ctime nanoseconds");
	NEED(mns < 1000000000 && cns < 1000000000, "nanoseconds out of range");
	int64_t ms = d->prev_mtime_s + cut_unzigzag(dms);
	int64_t cs = ms + cut_unzigzag(dcs);
	en->mtime_ns = ms * 1000000000 + (int64_t)mns;
	en->ctime_ns = cs * 1000000000 + (int64_t)cns;
	GETV(dino, "inode");
	en->ino = d->prev_ino + (uint64_t)cut_unzigzag(dino);
	GETV(en->nlink, "link count");
	NEED(v <= UINT32_MAX, "link count too large");
	if (en->type == FMT_T_CHR || en->type == FMT_T_BLK)
		GETV(en->rdev, "device number");
	if (en->type == FMT_T_SYMLINK) {
		uint64_t tl;
		NEED(cut_get_varint(&d->targets, d->targets_end, &tl) == 0, "symlink target cut short");
		NEED(tl <= (uint64_t)(d->targets_end - d->targets) && tl > 0 && tl < UINT32_MAX,
		     "symlink target runs past its stream");
		NEED(!memchr(d->targets, 0, (size_t)tl), "symlink target holds a NUL");
		d->target.len = 0;
		cut_buf_put(&d->target, d->targets, (size_t)tl);
		cut_buf_putc(&d->target, 0);
		d->targets += tl;
		en->target = (const char *)d->target.p;
		en->target_len = (uint32_t)tl;
	}
	if (en->flags & FMT_E_HASH) {
		NEED(d->hashes_end - d->hashes >= 16, "hash cut short");
		memcpy(en->hash, d->hashes, 16);
		d->hashes += 16;
	}
	d->prev_mtime_s = ms;
	d->prev_ino = en->ino;
	d->prev_dev = en->dev;
	d->prev_mode = en->mode;
	d->prev_uid = en->uid;
	d->prev_gid = en->gid;
	d->left--;
	return 1;
}

void fmt_dec_free(fmt_dec *d)
{
	cut_buf_free(&d->path);
	cut_buf_free(&d->target);
}
