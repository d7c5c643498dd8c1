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

bool fmt_entry_same(const fmt_entry *a, const fmt_entry *b)
{
	if (a->path_len != b->path_len || a->type != b->type || a->flags != b->flags ||
	    a->mode != b->mode || a->uid != b->uid || a->gid != b->gid || a->nlink != b->nlink ||
	    a->dev != b->dev || a->ino != b->ino || a->size != b->size ||
	    a->mtime_ns != b->mtime_ns || a->ctime_ns != b->ctime_ns)
		return false;
	bool dev = a->type == FMT_T_CHR || a->type == FMT_T_BLK;
	if ((dev && a->rdev != b->rdev) ||
	    ((a->flags & FMT_E_HASH) && memcmp(a->hash, b->hash, sizeof a->hash) != 0))
		return false;
	if (a->type == FMT_T_SYMLINK &&
	    (a->target_len != b->target_len || memcmp(a->target, b->target, a->target_len) != 0))
		return false;
	return memcmp(a->path, b->path, a->path_len) == 0;
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

/* Names.  Maildir names are mostly runs of decimal digits (time, microseconds,
 * pid, size), which LZ4 can only store as literals.  So a path's suffix is
 * written as text in which each number token (a run of 1-18 decimal digits
 * that does not start with '0' unless it is "0", and that touches no hex
 * digit or letter on either side) is replaced by a NUL byte (never part of a
 * path), and the number goes to the nums stream as a varint: the zigzag
 * difference to the number at the same token index of the previous suffix or
 * to the previous number of this suffix, whichever is smaller, shifted left
 * one bit with the choice in the low bit.  The text then repeats from name to
 * name and LZ4 removes it; the numbers cost about their entropy. */
static bool is_digit(uint8_t c) { return c >= '0' && c <= '9'; }
static bool is_hexish(uint8_t c)
{
	return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* Writes the varint of a name number (see above) at o; returns the end. */
static uint8_t *enc_number(const fmt_enc *e, uint8_t *o, unsigned idx, uint64_t v,
			   uint64_t last_in_name, bool has_last)
{
	int64_t d1 = (int64_t)(v - (idx < e->prev_nnums ? e->prev_nums[idx] : 0));
	int64_t d2 = has_last ? (int64_t)(v - last_in_name) : d1;
	uint64_t z1 = cut_zigzag(d1), z2 = cut_zigzag(d2);
	/* Values are below 10^18 < 2^60, so the shift cannot overflow. */
	return o + cut_varint_put(o, z2 < z1 ? z2 << 1 | 1 : z1 << 1);
}

/* The most bytes one entry adds to the meta stream: the fmask byte and at
 * most eleven varints. */
#define META_MAX (1 + 11 * CUT_VARINT_MAX)

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define WORD_COPY 1
/* Name text is copied eight bytes at a time up to the first stop byte: one
 * whose value XOR pat is below lim (a digit: '0', 10; a NUL: 0, 1).  The
 * has-less-than test flags the lowest such byte exactly on a little-endian
 * machine.  The stop byte is not copied; *dst must have 8 bytes of slack. */
static inline void copy_words_until(const uint8_t **src, const uint8_t *end, uint8_t **dst,
				    uint8_t pat, uint8_t lim)
{
	const uint64_t ones = 0x0101010101010101ull;
	const uint8_t *p = *src;
	uint8_t *o = *dst;
	while (end - p >= 8) {
		uint64_t w;
		memcpy(&w, p, 8);
		memcpy(o, &w, 8);
		uint64_t x = w ^ (ones * pat);
		uint64_t z = (x - ones * lim) & ~x & (ones * 0x80);
		if (z) {
			unsigned k = (unsigned)__builtin_ctzll(z) >> 3;
			p += k;
			o += k;
			break;
		}
		p += 8;
		o += 8;
	}
	*src = p;
	*dst = o;
}
#else
#define WORD_COPY 0
#endif

/* Front coding: the shared prefix with the previous path stops at the start
 * of the last component, so that every suffix holds a whole name and number
 * tokens line up with the previous name's. */
static inline size_t enc_shared_len(const fmt_enc *e, const fmt_entry *en)
{
	size_t shared = 0, lim = e->prev_path.len < en->path_len ? e->prev_path.len : en->path_len;
	size_t plen = fmt_path_parent_len(en->path, en->path_len);
	size_t name_start = plen ? plen + 1 : 0;
	if (lim > name_start)
		lim = name_start;
	while (shared < lim && e->prev_path.p[shared] == (uint8_t)en->path[shared])
		shared++;
	return shared;
}

/* Writes the text of the suffix p..end of path at *op, each number token as
 * a NUL with its varint at *nop (see Names above), and its numbers in nums.
 * Returns how many numbers; *op and *nop are moved to their ends. */
static inline unsigned enc_name_text(const fmt_enc *e, const char *path, const uint8_t *p,
				     const uint8_t *end, uint8_t **op, uint8_t **nop,
				     uint64_t nums[FMT_NAME_NUMS])
{
	uint8_t *o = *op, *no = *nop;
	unsigned nn = 0;
	while (p < end) {
#if WORD_COPY
		/* Up to the first digit.  The room the caller reserved has the
		 * slack: suffix + 2 varints >= 8. */
		copy_words_until(&p, end, &o, '0', 10);
		if (p == end)
			break;
#endif
		if (!is_digit(*p)) {
			*o++ = *p++;
			continue;
		}
		const uint8_t *q = p;
		while (q < end && is_digit(*q))
			q++;
		size_t dl = (size_t)(q - p);
		bool token = dl <= 18 && (*p != '0' || dl == 1) && nn < FMT_NAME_NUMS &&
			     !(p > (const uint8_t *)path && is_hexish(p[-1])) &&
			     !(q < end && is_hexish(*q));
		if (token) {
			uint64_t v = 0;
			for (const uint8_t *k = p; k < q; k++)
				v = v * 10 + (uint64_t)(*k - '0');
			no = enc_number(e, no, nn, v, nn ? nums[nn - 1] : 0, nn > 0);
			nums[nn++] = v;
			*o++ = 0;
		} else {
			memcpy(o, p, dl);
			o += dl;
		}
		p = q;
	}
	*op = o;
	*nop = no;
	return nn;
}

/* Stores the length of the text text..o in the one byte at lenp that was
 * left for it, moving the text up when its varint needs more.  Returns the
 * text's new end. */
static inline uint8_t *enc_text_length(uint8_t *lenp, uint8_t *text, uint8_t *o)
{
	size_t tl = (size_t)(o - text);
	if (tl < 0x80) {
		*lenp = (uint8_t)tl;
		return o;
	}
	uint8_t v[CUT_VARINT_MAX];
	size_t vl = cut_varint_put(v, tl);
	memmove(lenp + vl, text, tl);
	memcpy(lenp, v, vl);
	return lenp + vl + tl;
}

/* Adds en's path to the names and nums streams and makes it the previous
 * path. */
static inline void enc_path(fmt_enc *e, const fmt_entry *en)
{
	size_t shared = enc_shared_len(e, en);
	const uint8_t *p = (const uint8_t *)en->path + shared, *end = (const uint8_t *)en->path + en->path_len;
	/* The text is never longer than the suffix (a token shrinks to one
	 * byte), so its length varint takes at most CUT_VARINT_MAX bytes. */
	cut_buf_reserve(&e->names, 2 * CUT_VARINT_MAX + (size_t)(end - p));
	cut_buf_reserve(&e->nums, FMT_NAME_NUMS * CUT_VARINT_MAX);
	uint8_t *o = e->names.p + e->names.len;
	o += cut_varint_put(o, shared);
	uint8_t *lenp = o++; /* one byte for the text's length; moved if longer */
	uint8_t *text = o, *no = e->nums.p + e->nums.len;
	uint64_t nums[FMT_NAME_NUMS];
	unsigned nn = enc_name_text(e, en->path, p, end, &o, &no, nums);
	o = enc_text_length(lenp, text, o);
	e->names.len = (size_t)(o - e->names.p);
	e->nums.len = (size_t)(no - e->nums.p);
	memcpy(e->prev_nums, nums, nn * sizeof *nums);
	e->prev_nnums = nn;
	e->prev_path.len = 0;
	cut_buf_put(&e->prev_path, en->path, en->path_len);
}

/* The fmask byte of en: its type, flags, and which attributes equal the
 * previous entry's (and so are not written). */
static inline uint8_t enc_fmask(const fmt_enc *e, const fmt_entry *en)
{
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
	return m;
}

/* Adds the fmask byte m and en's attributes to the meta stream.  Returns
 * en's mtime in whole seconds (the next entry's delta base). */
static inline int64_t enc_meta(fmt_enc *e, const fmt_entry *en, uint8_t m)
{
	cut_buf_reserve(&e->meta, META_MAX);
	uint8_t *o = e->meta.p + e->meta.len;
	*o++ = m;
	if (!(m & M_SAME_MODE))
		o += cut_varint_put(o, en->mode);
	if (!(m & M_SAME_OWNER)) {
		o += cut_varint_put(o, en->uid);
		o += cut_varint_put(o, en->gid);
	}
	if (!(m & M_SAME_DEV))
		o += cut_varint_put(o, en->dev);
	o += cut_varint_put(o, en->size);
	/* mtime as seconds (delta) and nanoseconds: mail stores whole seconds.
	 * ctime as one nanosecond delta: files are created in sequence. */
	int64_t mns;
	int64_t ms = floor_div(en->mtime_ns, CUT_NS_PER_S, &mns);
	o += cut_varint_put(o, cut_zigzag(ms - e->prev_mtime_s));
	o += cut_varint_put(o, (uint64_t)mns);
	o += cut_varint_put(o, cut_zigzag((int64_t)((uint64_t)en->ctime_ns - (uint64_t)e->prev_ctime_ns)));
	o += cut_varint_put(o, cut_zigzag((int64_t)(en->ino - e->prev_ino)));
	o += cut_varint_put(o, en->nlink);
	if (en->type == FMT_T_CHR || en->type == FMT_T_BLK)
		o += cut_varint_put(o, en->rdev);
	e->meta.len = (size_t)(o - e->meta.p);
	return ms;
}

/* Adds a symlink's target and a file's content hash to their streams. */
static inline void enc_target_and_hash(fmt_enc *e, const fmt_entry *en)
{
	if (en->type == FMT_T_SYMLINK) {
		cut_buf_varint(&e->targets, en->target_len);
		cut_buf_put(&e->targets, en->target, en->target_len);
	}
	if (en->flags & FMT_E_HASH)
		cut_buf_put(&e->hashes, en->hash, 16);
}

/* Keeps what the next entry's attributes are written against. */
static inline void enc_keep_prev(fmt_enc *e, const fmt_entry *en, int64_t mtime_s)
{
	e->prev_mtime_s = mtime_s;
	e->prev_ctime_ns = en->ctime_ns;
	e->prev_ino = en->ino;
	e->prev_dev = en->dev;
	e->prev_mode = en->mode;
	e->prev_uid = en->uid;
	e->prev_gid = en->gid;
	e->count++;
}

/* Each stream's room is reserved once per entry and written through a
 * pointer: this runs once per entry of every scan, the hottest loop after
 * the kernel's. */
void fmt_enc_add(fmt_enc *e, const fmt_entry *en)
{
	enc_path(e, en);
	uint8_t m = enc_fmask(e, en);
	int64_t mtime_s = enc_meta(e, en, m);
	enc_target_and_hash(e, en);
	enc_keep_prev(e, en, mtime_s);
}

#define ENC_HEAD 24 /* u32 flags, then u32 length of each of the five streams */

size_t fmt_enc_size(const fmt_enc *e)
{
	return ENC_HEAD + e->names.len + e->nums.len + e->meta.len + e->targets.len + e->hashes.len;
}

void fmt_enc_finish(fmt_enc *e, cut_buf *out)
{
	uint8_t h[ENC_HEAD];
	cut_put_le32(h, 0);
	cut_put_le32(h + 4, (uint32_t)e->names.len);
	cut_put_le32(h + 8, (uint32_t)e->nums.len);
	cut_put_le32(h + 12, (uint32_t)e->meta.len);
	cut_put_le32(h + 16, (uint32_t)e->targets.len);
	cut_put_le32(h + 20, (uint32_t)e->hashes.len);
	cut_buf_put(out, h, sizeof h);
	cut_buf_put(out, e->names.p, e->names.len);
	cut_buf_put(out, e->nums.p, e->nums.len);
	cut_buf_put(out, e->meta.p, e->meta.len);
	cut_buf_put(out, e->targets.p, e->targets.len);
	cut_buf_put(out, e->hashes.p, e->hashes.len);
	e->names.len = e->nums.len = e->meta.len = e->targets.len = e->hashes.len = 0;
	e->prev_path.len = 0;
	e->prev_nnums = 0;
	e->prev_mtime_s = e->prev_ctime_ns = 0;
	e->prev_ino = e->prev_dev = 0;
	e->prev_mode = e->prev_uid = e->prev_gid = 0;
	e->count = 0;
}

void fmt_enc_free(fmt_enc *e)
{
	cut_buf_free(&e->names);
	cut_buf_free(&e->nums);
	cut_buf_free(&e->meta);
	cut_buf_free(&e->targets);
	cut_buf_free(&e->hashes);
	cut_buf_free(&e->prev_path);
}

int fmt_dec_init(fmt_dec *d, const uint8_t *raw, size_t len, uint32_t count)
{
	cut_buf p0 = d->paths[0], p1 = d->paths[1], target = d->target;
	bool check = d->check_order;
	memset(d, 0, sizeof *d);
	d->paths[0] = p0;
	d->paths[1] = p1;
	d->target = target;
	d->paths[0].len = d->paths[1].len = 0;
	d->check_order = check;
	if (len < ENC_HEAD) {
		d->err = "entry block shorter than its header";
		return -1;
	}
	if (cut_get_le32(raw) != 0) {
		d->err = "entry block flags set that this version does not know";
		return -1;
	}
	uint64_t ln = cut_get_le32(raw + 4), lu = cut_get_le32(raw + 8), lm = cut_get_le32(raw + 12);
	uint64_t lt = cut_get_le32(raw + 16), lh = cut_get_le32(raw + 20);
	if (ENC_HEAD + ln + lu + lm + lt + lh != len) {
		d->err = "entry block stream lengths do not add up to the block";
		return -1;
	}
	d->names = raw + ENC_HEAD;
	d->names_end = d->nums = d->names + ln;
	d->nums_end = d->meta = d->nums + lu;
	d->meta_end = d->targets = d->meta + lm;
	d->targets_end = d->hashes = d->targets + lt;
	d->hashes_end = d->hashes + lh;
	d->left = d->count = count;
	return 0;
}

#define NEED(cond, msg)            \
	do {                       \
		if (!(cond)) {     \
			d->err = msg; \
			return -1; \
		}                  \
	} while (0)

/* Most varints here are one byte: take those inline. */
static inline int get_varint(const uint8_t **pp, const uint8_t *end, uint64_t *out)
{
	const uint8_t *p = *pp;
	if (p < end && *p < 0x80) {
		*out = *p;
		*pp = p + 1;
		return 0;
	}
	return cut_get_varint(pp, end, out);
}

/* Writes v (< 10^18) in decimal at o; returns the end.  Two digits a step,
 * written in place: a memcpy of a variable length would be a libc call. */
static uint8_t *put_decimal(uint8_t *o, uint64_t v)
{
	static const char pairs[] = "00010203040506070809101112131415161718192021222324"
				    "25262728293031323334353637383940414243444546474849"
				    "50515253545556575859606162636465666768697071727374"
				    "75767778798081828384858687888990919293949596979899";
	unsigned n = 1;
	for (uint64_t p10 = 10; n < 19 && v >= p10; p10 *= 10)
		n++;
	uint8_t *end = o + n, *q = end;
	while (v >= 100) {
		const char *d = pairs + (v % 100) * 2;
		q -= 2;
		q[0] = (uint8_t)d[0];
		q[1] = (uint8_t)d[1];
		v /= 100;
	}
	if (v >= 10) {
		q[-2] = (uint8_t)pairs[v * 2];
		q[-1] = (uint8_t)pairs[v * 2 + 1];
	} else {
		q[-1] = (uint8_t)('0' + v);
	}
	return end;
}

/* Reads a varint of the meta stream into dst, or fails with what's name;
 * v keeps the value for range checks. */
#define GETV(dst, what)                                                             \
	do {                                                                        \
		NEED(get_varint(&d->meta, d->meta_end, &v) == 0, what " cut short"); \
		dst = v;                                                            \
	} while (0)

/* At the end of the block: every stream must be used up.  0 or -1. */
static int dec_block_end(fmt_dec *d)
{
	NEED(d->names == d->names_end && d->nums == d->nums_end && d->meta == d->meta_end &&
		     d->targets == d->targets_end && d->hashes == d->hashes_end,
	     "entry block has bytes after its last entry");
	return 0;
}

/* Writes the text t..tend at *op, each NUL (a number token, see the
 * encoder) as the decimal number its varint in the nums stream gives, and
 * those numbers in nums.  Returns how many numbers, or -1; *op is moved to
 * the end. */
static inline int dec_name_text(fmt_dec *d, const uint8_t *t, const uint8_t *tend, uint8_t **op,
				uint64_t nums[FMT_NAME_NUMS])
{
	uint8_t *o = *op;
	unsigned nn = 0;
	for (; t < tend; t++) {
#if WORD_COPY
		/* Up to the first NUL (a number token). */
		copy_words_until(&t, tend, &o, 0, 1);
		if (t == tend)
			break;
#endif
		if (*t) {
			*o++ = *t;
			continue;
		}
		uint64_t z;
		NEED(nn < FMT_NAME_NUMS, "too many numbers in a name");
		NEED(get_varint(&d->nums, d->nums_end, &z) == 0, "name number cut short");
		NEED(!(z & 1) || nn > 0, "name number refers to no previous number");
		uint64_t base = (z & 1) ? nums[nn - 1] : (nn < d->prev_nnums ? d->prev_nums[nn] : 0);
		uint64_t val = base + (uint64_t)cut_unzigzag(z >> 1);
		NEED(val < 1000000000000000000ull, "name number out of range");
		o = put_decimal(o, val);
		nums[nn++] = val;
	}
	*op = o;
	return (int)nn;
}

/* Builds the next path in d->paths[d->cur ^ 1] from the previous one and
 * the names and nums streams; *shared: the bytes it shares with the
 * previous path.  0 or -1. */
static inline int dec_path(fmt_dec *d, uint64_t *shared)
{
	uint64_t slen;
	NEED(get_varint(&d->names, d->names_end, shared) == 0 &&
		     get_varint(&d->names, d->names_end, &slen) == 0,
	     "path length cut short");
	cut_buf *prev = &d->paths[d->cur], *cur = &d->paths[d->cur ^ 1];
	NEED(*shared <= prev->len, "path shares more bytes than the previous path has");
	NEED(slen <= (uint64_t)(d->names_end - d->names), "path runs past its stream");
	/* Each text byte becomes one byte, or at most 18 digits; 8 bytes of
	 * slack let literal runs be copied a word at a time. */
	cur->len = 0;
	cut_buf_reserve(cur, (size_t)*shared + 18 * (size_t)slen + 8);
	if (*shared) /* prev->p is NULL before the first path */
		memcpy(cur->p, prev->p, (size_t)*shared);
	uint8_t *o = cur->p + *shared;
	uint64_t nums[FMT_NAME_NUMS];
	int nn = dec_name_text(d, d->names, d->names + slen, &o, nums);
	if (nn < 0)
		return -1;
	d->names += slen;
	size_t len = (size_t)(o - cur->p);
	NEED(len <= UINT32_MAX, "path too long");
	*o = 0;
	cur->len = len;
	memcpy(d->prev_nums, nums, (size_t)nn * sizeof *nums);
	d->prev_nnums = (unsigned)nn;
	return 0;
}

/* Checks the path just built: valid, and (when asked) after the previous
 * one in canonical order.  0 or -1. */
static inline int dec_check_path(fmt_dec *d, uint64_t shared)
{
	const cut_buf *prev = &d->paths[d->cur], *cur = &d->paths[d->cur ^ 1];
	const char *cp = (const char *)cur->p;
	size_t len = cur->len;
	/* The previous path was valid, so when the shared prefix ends at a '/'
	 * only the new components need checking (no text byte is NUL). */
	if (shared && cp[shared - 1] == '/')
		NEED(len > shared && fmt_path_valid(cp + shared, len - shared),
		     "path has an empty, '.', '..' or NUL component");
	else
		NEED(fmt_path_valid(cp, len), "path has an empty, '.', '..' or NUL component");
	/* The first `shared` bytes are equal: compare what follows. */
	if (d->check_order && d->left < d->count)
		NEED(fmt_path_cmp((const char *)prev->p + shared, prev->len - (size_t)shared,
				  cp + shared, len - (size_t)shared) < 0,
		     "entries out of canonical order");
	return 0;
}

/* Reads the fmask byte into en's type and flags; *m: the byte.  0 or -1. */
static inline int dec_fmask(fmt_dec *d, fmt_entry *en, uint8_t *m)
{
	NEED(d->meta < d->meta_end, "attributes cut short");
	*m = *d->meta++;
	en->type = *m & 7;
	NEED(en->type >= 1, "entry type 0 is not defined");
	if (*m & M_HASH) {
		NEED(en->type == FMT_T_FILE, "hash on an entry that is not a file");
		en->flags |= FMT_E_HASH;
	}
	if (*m & M_CARRIED)
		en->flags |= FMT_E_CARRIED;
	return 0;
}

/* Reads the attributes the fmask byte m says follow (the others are the
 * previous entry's) into en; *mtime_s: its mtime in whole seconds (the next
 * entry's delta base).  0 or -1. */
static inline int dec_meta(fmt_dec *d, fmt_entry *en, uint8_t m, int64_t *mtime_s)
{
	uint64_t v;
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
	uint64_t dms, mns, dcn, dino;
	GETV(dms, "mtime");
	GETV(mns, "mtime nanoseconds");
	GETV(dcn, "ctime");
	NEED(mns < CUT_NS_PER_S, "nanoseconds out of range");
	int64_t ms = d->prev_mtime_s + cut_unzigzag(dms);
	NEED(ms > INT64_MIN / CUT_NS_PER_S + 1 && ms < INT64_MAX / CUT_NS_PER_S - 1, "mtime out of range");
	en->mtime_ns = ms * CUT_NS_PER_S + (int64_t)mns;
	en->ctime_ns = (int64_t)((uint64_t)d->prev_ctime_ns + (uint64_t)cut_unzigzag(dcn));
	GETV(dino, "inode");
	en->ino = d->prev_ino + (uint64_t)cut_unzigzag(dino);
	GETV(en->nlink, "link count");
	NEED(v <= UINT32_MAX, "link count too large");
	if (en->type == FMT_T_CHR || en->type == FMT_T_BLK)
		GETV(en->rdev, "device number");
	*mtime_s = ms;
	return 0;
}

/* Reads a symlink's target (kept in d->target) and a file's content hash
 * from their streams.  0 or -1. */
static inline int dec_target_and_hash(fmt_dec *d, fmt_entry *en)
{
	if (en->type == FMT_T_SYMLINK) {
		uint64_t tl;
		NEED(get_varint(&d->targets, d->targets_end, &tl) == 0, "symlink target cut short");
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
	return 0;
}

/* Keeps what the next entry's attributes are read against. */
static inline void dec_keep_prev(fmt_dec *d, const fmt_entry *en, int64_t mtime_s)
{
	d->prev_mtime_s = mtime_s;
	d->prev_ctime_ns = en->ctime_ns;
	d->prev_ino = en->ino;
	d->prev_dev = en->dev;
	d->prev_mode = en->mode;
	d->prev_uid = en->uid;
	d->prev_gid = en->gid;
}

int fmt_dec_next(fmt_dec *d, fmt_entry *en)
{
	if (d->left == 0)
		return dec_block_end(d);
	uint64_t shared;
	if (dec_path(d, &shared) < 0 || dec_check_path(d, shared) < 0)
		return -1;
	d->cur ^= 1;
	memset(en, 0, sizeof *en);
	en->path = (const char *)d->paths[d->cur].p;
	en->path_len = (uint32_t)d->paths[d->cur].len;
	uint8_t m;
	int64_t mtime_s;
	if (dec_fmask(d, en, &m) < 0 || dec_meta(d, en, m, &mtime_s) < 0 ||
	    dec_target_and_hash(d, en) < 0)
		return -1;
	dec_keep_prev(d, en, mtime_s);
	d->left--;
	return 1;
}

int fmt_dec_skim(fmt_dec *d, fmt_entry *en)
{
	if (!d->left)
		return 0;
	uint64_t v;
	memset(en, 0, sizeof *en);
	NEED(d->meta < d->meta_end, "attributes cut short");
	uint8_t m = *d->meta++;
	en->type = m & 7;
	NEED(en->type >= 1, "entry type 0 is not defined");
	if (m & M_HASH)
		en->flags |= FMT_E_HASH;
	if (m & M_CARRIED)
		en->flags |= FMT_E_CARRIED;
	/* Fields this pass does not keep are read past, in format order. */
#define SKIPV(what) NEED(get_varint(&d->meta, d->meta_end, &v) == 0, what " cut short")
	if (!(m & M_SAME_MODE))
		SKIPV("mode");
	if (!(m & M_SAME_OWNER)) {
		SKIPV("uid");
		SKIPV("gid");
	}
	if (m & M_SAME_DEV)
		en->dev = d->prev_dev;
	else
		GETV(en->dev, "device");
	SKIPV("size");
	SKIPV("mtime");
	SKIPV("mtime nanoseconds");
	SKIPV("ctime");
	GETV(v, "inode");
	en->ino = d->prev_ino + (uint64_t)cut_unzigzag(v);
	GETV(en->nlink, "link count");
	if (en->type == FMT_T_CHR || en->type == FMT_T_BLK)
		SKIPV("device number");
#undef SKIPV
	d->prev_ino = en->ino;
	d->prev_dev = en->dev;
	d->left--;
	return 1;
}

void fmt_dec_free(fmt_dec *d)
{
	cut_buf_free(&d->paths[0]);
	cut_buf_free(&d->paths[1]);
	cut_buf_free(&d->target);
}
