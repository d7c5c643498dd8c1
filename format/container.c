/*
 * container.c - writes and reads the block container (see container.h and
 * FORMAT.md).  All multi-byte fields are little-endian and read with
 * cut_get_le*() at fixed offsets: no struct is ever cast onto file bytes.
 */
#include "container.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <lz4.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>
#define XXH_INLINE_ALL
#include <xxhash.h>

#include "path.h"

/* A checksum that does not match.  Fuzzing builds (tests/fuzz, `make fuzz`)
 * accept every checksum so that mutated inputs reach the decoders behind
 * them; no other build defines the macro. */
#ifdef FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION
#define SUM_BAD(got, want) ((void)(got), (void)(want), 0)
#else
#define SUM_BAD(got, want) ((got) != (want))
#endif

/* An index entry's fixed part: offset, count, key length, and from version
 * 2 on the block's checksum. */
#define FMT_INDEX_ENTRY_LEN 24
#define FMT_INDEX_ENTRY_LEN_V1 16

/* ---------------------------------------------------------------- writer */

struct fmt_cw {
	char *path, *tmp;
	int fd;
	uint64_t off;          /* bytes written so far */
	cut_buf out;           /* pending output, flushed at 1 MiB */
	/* The index entries, built as blocks are added: the last of them in
	 * index, the ones before spilled (at IX_SPILL) to ixfd, an unlinked
	 * file beside the temporary, so that a writer's memory does not grow
	 * with the blocks either.  fmt_cw_finish copies them into place. */
	cut_buf index;
	int ixfd;              /* -1 until the first spill */
	uint64_t ixlen;        /* bytes spilled */
	uint32_t nblocks;
	cut_buf comp;          /* compression scratch */
	XXH3_state_t *id;      /* XXH3-128 over every byte before the footer */
	bool scratch;          /* no fsync at the finish (fmt_cw_scratch) */
};

static int cw_flush(fmt_cw *w)
{
	if (!w->out.len)
		return 0;
	int rc = cut_write_all(w->fd, w->out.p, w->out.len);
	if (rc < 0) {
		errno = -rc;
		CUT_SYSERR("%s: write failed", w->tmp);
		return -1;
	}
	w->out.len = 0;
	return 0;
}

static int cw_put(fmt_cw *w, const void *p, size_t n)
{
	XXH3_128bits_update(w->id, p, n);
	cut_buf_put(&w->out, p, n);
	w->off += n;
	return w->out.len >= (1u << 20) ? cw_flush(w) : 0;
}

fmt_cw *fmt_cw_create(const char *path, const char *magic)
{
	fmt_cw *w = cut_calloc(1, sizeof *w);
	w->path = cut_strndup(path, strlen(path));
	size_t n = strlen(path) + 64;
	w->tmp = cut_malloc(n);
	snprintf(w->tmp, n, "%s.tmp.%ld.%" PRIx64, path, (long)getpid(), (uint64_t)cut_mono_ns());
	w->ixfd = -1;
	w->fd = open(w->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (w->fd < 0) {
		CUT_SYSERR("%s: cannot create", w->tmp);
		free(w->path);
		free(w->tmp);
		free(w);
		return NULL;
	}
	w->id = XXH3_createState();
	if (!w->id)
		abort();
	XXH3_128bits_reset(w->id);
	uint8_t h[FMT_FILE_HEADER_LEN];
	memcpy(h, magic, FMT_MAGIC_LEN);
	cut_put_le32(h + 8, FMT_VERSION);
	cut_put_le32(h + 12, 0); /* flags: none defined */
	cw_put(w, h, sizeof h);
	return w;
}

#define IX_SPILL (64u << 10)

/* Moves the index entries held in memory to the spill file.  0 or -1. */
static int cw_spill(fmt_cw *w)
{
	if (w->ixfd < 0) {
		size_t n = strlen(w->tmp) + 4;
		char *p = cut_malloc(n);
		snprintf(p, n, "%s.ix", w->tmp);
		w->ixfd = open(p, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (w->ixfd < 0)
			CUT_SYSERR("%s: cannot create", p);
		else
			unlink(p); /* nobody else needs it: gone when closed */
		free(p);
		if (w->ixfd < 0)
			return -1;
	}
	int rc = cut_write_all(w->ixfd, w->index.p, w->index.len);
	if (rc < 0) {
		errno = -rc;
		CUT_SYSERR("%s.ix: write failed", w->tmp);
		return -1;
	}
	w->ixlen += w->index.len;
	w->index.len = 0;
	return 0;
}

/* The index entry of the block about to be written at w->off (FORMAT.md
 * 2.4): offset, count, key length, checksum, key.  0 or -1. */
static int cw_index(fmt_cw *w, uint32_t count, uint64_t sum, const void *key, size_t keylen)
{
	uint8_t ie[FMT_INDEX_ENTRY_LEN];
	cut_put_le64(ie, w->off);
	cut_put_le32(ie + 8, count);
	cut_put_le32(ie + 12, (uint32_t)keylen);
	cut_put_le64(ie + 16, sum);
	cut_buf_put(&w->index, ie, sizeof ie);
	cut_buf_put(&w->index, key, keylen);
	w->nblocks++;
	return w->index.len >= IX_SPILL ? cw_spill(w) : 0;
}

int fmt_cw_block(fmt_cw *w, const uint8_t *raw, size_t len, uint32_t count, const void *key,
		 size_t keylen)
{
	if (len > FMT_BLOCK_MAX_RAW || keylen > FMT_KEY_MAX) {
		CUT_ERR("%s: internal: block of %zu bytes or key of %zu bytes is too large", w->tmp,
			len, keylen);
		return -1;
	}
	int bound = LZ4_compressBound((int)len);
	cut_buf_reserve(&w->comp, FMT_BLOCK_HEADER_LEN + (size_t)bound + 8);
	uint8_t *h = w->comp.p;
	int clen = LZ4_compress_default((const char *)raw, (char *)h + FMT_BLOCK_HEADER_LEN,
					(int)len, bound);
	uint32_t flags = 1;
	if (clen <= 0 || (size_t)clen >= len) { /* incompressible: store as is */
		memcpy(h + FMT_BLOCK_HEADER_LEN, raw, len);
		clen = (int)len;
		flags = 0;
	}
	cut_put_le32(h, (uint32_t)len);
	cut_put_le32(h + 4, (uint32_t)clen);
	cut_put_le32(h + 8, count);
	cut_put_le32(h + 12, flags);
	size_t total = FMT_BLOCK_HEADER_LEN + (size_t)clen;

	uint64_t sum = XXH3_64bits(h, total);
	cut_put_le64(h + total, sum);
	if (cw_index(w, count, sum, key, keylen) < 0)
		return -1;
	return cw_put(w, h, total + 8);
}

int fmt_cw_copy_block(fmt_cw *w, const uint8_t *disk, size_t total, uint32_t count,
		      const void *key, size_t keylen)
{
	if (total < FMT_BLOCK_HEADER_LEN + 8 || keylen > FMT_KEY_MAX ||
	    cut_get_le32(disk + 8) != count) {
		CUT_ERR("%s: internal: a copied block does not match its index entry", w->tmp);
		return -1;
	}
	if (cw_index(w, count, cut_get_le64(disk + total - 8), key, keylen) < 0)
		return -1;
	return cw_put(w, disk, total);
}

void fmt_meta_put(cut_buf *m, uint16_t tag, const void *v, size_t len)
{
	uint8_t h[8];
	cut_put_le16(h, tag);
	cut_put_le16(h + 2, 0);
	cut_put_le32(h + 4, (uint32_t)len);
	cut_buf_put(m, h, sizeof h);
	cut_buf_put(m, v, len);
}

void fmt_meta_put_u64(cut_buf *m, uint16_t tag, uint64_t v)
{
	uint8_t b[8];
	cut_put_le64(b, v);
	fmt_meta_put(m, tag, b, 8);
}

void fmt_meta_put_str(cut_buf *m, uint16_t tag, const char *s)
{
	fmt_meta_put(m, tag, s ? s : "", s ? strlen(s) : 0);
}

/* A section: u32 length L, L bytes, u64 XXH3-64 of the length and bytes. */
static int cw_section(fmt_cw *w, const uint8_t *p, size_t len, uint32_t lead)
{
	cut_buf s = {0};
	uint8_t b[8];
	cut_put_le32(b, lead);
	cut_buf_put(&s, b, 4);
	cut_buf_put(&s, p, len);
	cut_put_le64(b, XXH3_64bits(s.p, s.len));
	cut_buf_put(&s, b, 8);
	int rc = cw_put(w, s.p, s.len);
	cut_buf_free(&s);
	return rc;
}

/* The index section: u32 block count, the entries (those spilled first,
 * read back through a bounded buffer, then those held), u64 XXH3-64 of
 * both.  0 or -1. */
static int cw_index_section(fmt_cw *w)
{
	XXH3_state_t *s = XXH3_createState();
	if (!s)
		abort();
	XXH3_64bits_reset(s);
	uint8_t b[8];
	cut_put_le32(b, w->nblocks);
	XXH3_64bits_update(s, b, 4);
	int rc = cw_put(w, b, 4);
	uint8_t *chunk = w->ixlen ? cut_malloc(IX_SPILL) : NULL;
	for (uint64_t off = 0; rc == 0 && off < w->ixlen;) {
		size_t n = w->ixlen - off < IX_SPILL ? (size_t)(w->ixlen - off) : IX_SPILL;
		if (cut_pread_all(w->ixfd, chunk, n, off) != (long long)n) {
			CUT_SYSERR("%s.ix: read failed", w->tmp);
			rc = -1;
			break;
		}
		XXH3_64bits_update(s, chunk, n);
		rc = cw_put(w, chunk, n);
		off += n;
	}
	free(chunk);
	if (rc == 0) {
		XXH3_64bits_update(s, w->index.p, w->index.len);
		rc = cw_put(w, w->index.p, w->index.len);
	}
	cut_put_le64(b, XXH3_64bits_digest(s));
	XXH3_freeState(s);
	return rc == 0 ? cw_put(w, b, 8) : -1;
}

static void cw_free(fmt_cw *w)
{
	if (w->fd >= 0)
		close(w->fd);
	if (w->ixfd >= 0)
		close(w->ixfd);
	XXH3_freeState(w->id);
	cut_buf_free(&w->out);
	cut_buf_free(&w->index);
	cut_buf_free(&w->comp);
	free(w->path);
	free(w->tmp);
	free(w);
}

int fmt_cw_finish(fmt_cw *w, const cut_buf *meta, uint64_t records, uint8_t id[FMT_ID_LEN])
{
	uint64_t meta_off = w->off;
	if (cw_section(w, meta->p, meta->len, (uint32_t)meta->len) < 0)
		goto fail;
	uint64_t index_off = w->off;
	/* The index's lead word is its block count; its length follows from it. */
	if (cw_index_section(w) < 0)
		goto fail;
	XXH128_hash_t h = XXH3_128bits_digest(w->id);
	XXH128_canonical_t canon;
	XXH128_canonicalFromHash(&canon, h);
	uint8_t f[FMT_FOOTER_LEN];
	cut_put_le64(f + FMT_FT_META, meta_off);
	cut_put_le64(f + FMT_FT_INDEX, index_off);
	cut_put_le64(f + FMT_FT_RECORDS, records);
	cut_put_le64(f + FMT_FT_SIZE, w->off + FMT_FOOTER_LEN);
	memcpy(f + FMT_FT_ID, canon.digest, FMT_ID_LEN);
	cut_put_le32(f + FMT_FT_VERSION, FMT_VERSION);
	cut_put_le32(f + FMT_FT_FLAGS, 0);
	cut_put_le64(f + FMT_FT_SUM, XXH3_64bits(f, FMT_FT_SUM));
	memcpy(f + FMT_FT_MAGIC, FMT_MAGIC_END, 8);
	cut_buf_put(&w->out, f, sizeof f);
	if (cw_flush(w) < 0)
		goto fail;
	if (!w->scratch && fsync(w->fd) < 0) {
		CUT_SYSERR("%s: fsync failed", w->tmp);
		goto fail;
	}
	if (close(w->fd) < 0) {
		w->fd = -1;
		CUT_SYSERR("%s: close failed", w->tmp);
		goto fail;
	}
	w->fd = -1;
	if (rename(w->tmp, w->path) < 0) {
		CUT_SYSERR("%s: cannot rename to %s", w->tmp, w->path);
		goto fail;
	}
	if (id)
		memcpy(id, canon.digest, FMT_ID_LEN);
	cw_free(w);
	return 0;
fail:
	fmt_cw_abort(w);
	return -1;
}

void fmt_cw_scratch(fmt_cw *w) { w->scratch = true; }

void fmt_cw_abort(fmt_cw *w)
{
	if (!w)
		return;
	unlink(w->tmp);
	cw_free(w);
}

/* ---------------------------------------------------------------- reader */

/* The index is not held in memory, so that a reader's memory does not grow
 * with the file (a manifest of 100 M entries has ~95,000 blocks).  The
 * reader owns a sample of it: the index cut into segments of seg_len
 * consecutive entries, and for each segment where it lies, its first key
 * (for binary searches) and the XXH3-64 of its bytes.  fmt_cr_open reads the
 * whole index once to check it (its checksum, offsets, counts) and to take
 * the sample; afterwards a segment is read again when an entry of it is
 * asked for and is checked against its sum, so that an index that changed
 * since the open is refused as it is reached.  seg_len grows with the index
 * so that there are at most IX_SAMPLES_MAX segments: with keys of ~60 bytes
 * the sample stays below ~0.5 MiB at any size, 1,500 segments (~110 KiB) for
 * 100 M entries.  A few read segments are kept (IX_CACHE, shared by the
 * reader's threads under its lock): readers ask for blocks mostly in order. */
#define IX_SEG_MIN 64
#define IX_SAMPLES_MAX 4096
#define IX_CACHE 8
#define IX_CHUNK (64u << 10) /* reads of the index at open */

typedef struct cr_sample {
	uint64_t pos;       /* file offset of the segment's first index entry */
	uint64_t block_off; /* that entry's block offset */
	uint64_t sum;       /* XXH3-64 of the segment's entries */
	size_t len;         /* their length in bytes */
	uint32_t key_len;
	size_t key_at;      /* the first entry's key, in fmt_cr.keys */
} cr_sample;

typedef struct cr_seg {
	uint32_t seg;   /* UINT32_MAX: empty slot */
	uint32_t n;     /* entries */
	uint64_t used;  /* clock of the last use, for eviction */
	cut_buf bytes;  /* the segment's entries as on disk */
	size_t *at;     /* where each entry starts in bytes */
} cr_seg;

struct fmt_cr {
	char *path;
	int fd;
	uint64_t size;
	uint64_t meta_off, index_off, records;
	uint32_t version;
	uint8_t id[FMT_ID_LEN];
	uint8_t *meta;      /* the whole metadata section, as on disk */
	size_t meta_len;    /* its TLV bytes: meta + 4 .. meta + 4 + meta_len */
	size_t index_len;   /* the index's entries, between its lead and sum */
	size_t ielen;       /* an index entry's fixed part in this version */
	uint32_t nblocks, seg_len, nsamples;
	cr_sample *samples;
	cut_buf keys;       /* the samples' keys */
	pthread_mutex_t mu; /* guards cache and tick */
	cr_seg cache[IX_CACHE];
	uint64_t tick;
};

void fmt_cr_corrupt(const fmt_cr *r, uint64_t off, const char *what)
{
	CUT_ERR("%s: corrupt file: %s (offset %" PRIu64 ")", r->path, what, off);
}

/* Reads a section at off that must end at or before limit: returns its bytes
 * (u32 lead, body, u64 checksum) or NULL (logged). */
static uint8_t *cr_section(fmt_cr *r, uint64_t off, uint64_t limit, uint64_t body_len,
			   const char *name)
{
	char what[96];
	if (off + 4 + body_len + 8 > limit || body_len > limit) {
		snprintf(what, sizeof what, "%s section runs past its end", name);
		fmt_cr_corrupt(r, off, what);
		return NULL;
	}
	size_t n = (size_t)(4 + body_len + 8);
	uint8_t *p = cut_malloc(n);
	long long got = cut_pread_all(r->fd, p, n, off);
	if (got != (long long)n) {
		errno = got < 0 ? (int)-got : EIO;
		CUT_SYSERR("%s: cannot read %s section at offset %" PRIu64, r->path, name, off);
		free(p);
		return NULL;
	}
	if (SUM_BAD(XXH3_64bits(p, n - 8), cut_get_le64(p + n - 8))) {
		snprintf(what, sizeof what, "%s section checksum mismatch", name);
		fmt_cr_corrupt(r, off, what);
		free(p);
		return NULL;
	}
	return p;
}

/* Reads n bytes at off into p; 0, or -1 logged as a read of the index. */
static int cr_pread(fmt_cr *r, void *p, size_t n, uint64_t off)
{
	long long got = cut_pread_all(r->fd, p, n, off);
	if (got == (long long)n)
		return 0;
	errno = got < 0 ? (int)-got : EIO;
	CUT_SYSERR("%s: cannot read the index at offset %" PRIu64, r->path, off);
	return -1;
}

/* Feeds the index section's bytes from..to of the file to a streaming
 * XXH3 state (64- or 128-bit), through a bounded buffer.  0 or -1. */
static int cr_hash_range(fmt_cr *r, uint64_t from, uint64_t to, XXH3_state_t *s, bool wide)
{
	uint8_t *b = cut_malloc(IX_CHUNK);
	int rc = 0;
	for (uint64_t off = from; off < to && rc == 0;) {
		size_t n = to - off < IX_CHUNK ? (size_t)(to - off) : IX_CHUNK;
		rc = cr_pread(r, b, n, off);
		if (rc == 0 && wide)
			XXH3_128bits_update(s, b, n);
		else if (rc == 0)
			XXH3_64bits_update(s, b, n);
		off += n;
	}
	free(b);
	return rc;
}

/* A forward reader of the index's entries at open, through a bounded
 * window: need() makes n bytes available at p. */
typedef struct ix_stream {
	fmt_cr *r;
	uint64_t next, end; /* file offset of the window's end, of the entries' end */
	cut_buf buf;
	size_t at;          /* the current entry's start in buf */
} ix_stream;

/* 1 when n bytes are available at ixs_p, 0 when the entries end first,
 * -1 on a read error (logged). */
static int ixs_need(ix_stream *s, size_t n)
{
	size_t have = s->buf.len - s->at;
	if (have >= n)
		return 1;
	if (n - have > s->end - s->next)
		return 0;
	if (have) /* the buffer is NULL before the first read */
		memmove(s->buf.p, s->buf.p + s->at, have);
	s->buf.len = have;
	s->at = 0;
	size_t want = n - have < IX_CHUNK ? IX_CHUNK : n - have;
	if (want > s->end - s->next)
		want = (size_t)(s->end - s->next);
	cut_buf_reserve(&s->buf, want);
	if (cr_pread(s->r, s->buf.p + have, want, s->next) < 0)
		return -1;
	s->buf.len += want;
	s->next += want;
	return 1;
}

static const uint8_t *ixs_p(const ix_stream *s) { return s->buf.p + s->at; }

/* The file offset of the stream's current entry. */
static uint64_t ixs_pos(const ix_stream *s) { return s->next - (s->buf.len - s->at); }

/* Starts sample k at the stream's current entry, whose block is at boff. */
static void cr_sample_begin(fmt_cr *r, uint32_t k, const ix_stream *s, uint64_t boff,
			    const uint8_t *key, uint32_t key_len)
{
	cr_sample *m = &r->samples[k];
	m->pos = ixs_pos(s);
	m->block_off = boff;
	m->key_len = key_len;
	m->key_at = r->keys.len;
	cut_buf_put(&r->keys, key, key_len);
}

/* Walks the index's entries once (its checksum was checked): their offsets
 * must follow one another (MUST 5), their counts sum to the records, and
 * the sample is taken.  0, or -1 logged. */
static int cr_walk_index(fmt_cr *r)
{
	ix_stream s = {.r = r, .next = r->index_off + 4, .end = r->index_off + 4 + r->index_len};
	XXH3_state_t *seg = XXH3_createState();
	if (!seg)
		abort();
	uint64_t prev_end = FMT_FILE_HEADER_LEN, total = 0;
	int rc = -1, got = 1;
	for (uint32_t i = 0; i < r->nblocks; i++) {
		if ((got = ixs_need(&s, r->ielen)) <= 0)
			goto out;
		const uint8_t *p = ixs_p(&s);
		uint64_t off = cut_get_le64(p);
		uint32_t count = cut_get_le32(p + 8), key_len = cut_get_le32(p + 12);
		if ((got = ixs_need(&s, r->ielen + (size_t)key_len)) <= 0)
			goto out;
		p = ixs_p(&s);
		/* Each block's extent is up to the next one's offset;
		 * fmt_cr_read_disk checks that its header's length fills it
		 * exactly (MUST 5) when the block is read: reading every block
		 * header here would cost a read per block at each open. */
		if (i == 0 ? off != FMT_FILE_HEADER_LEN : off < prev_end ||
		    off + FMT_BLOCK_HEADER_LEN + 8 > r->meta_off)
			goto out;
		prev_end = off + FMT_BLOCK_HEADER_LEN + 8;
		total += count;
		uint32_t k = i / r->seg_len;
		if (i % r->seg_len == 0) {
			if (k > 0) {
				r->samples[k - 1].sum = XXH3_64bits_digest(seg);
				r->samples[k - 1].len = (size_t)(ixs_pos(&s) - r->samples[k - 1].pos);
			}
			XXH3_64bits_reset(seg);
			cr_sample_begin(r, k, &s, off, p + r->ielen, key_len);
		}
		XXH3_64bits_update(seg, p, r->ielen + key_len);
		s.at += r->ielen + key_len;
	}
	if (ixs_pos(&s) != s.end || (r->nblocks == 0 && r->meta_off != FMT_FILE_HEADER_LEN))
		goto out;
	if (r->nsamples) {
		cr_sample *m = &r->samples[r->nsamples - 1];
		m->sum = XXH3_64bits_digest(seg);
		m->len = (size_t)(s.end - m->pos);
	}
	if (total != r->records) {
		fmt_cr_corrupt(r, r->size - FMT_FOOTER_LEN + FMT_FT_RECORDS,
			       "record count differs from the sum over the index");
		got = -1;
		goto out;
	}
	rc = 0;
out:
	if (rc < 0 && got >= 0)
		fmt_cr_corrupt(r, r->index_off, "index does not match the blocks");
	XXH3_freeState(seg);
	cut_buf_free(&s.buf);
	return rc;
}

/* Checks the index section (lead, checksum, entries) and takes its sample,
 * reading it through a bounded buffer.  0, or -1 logged. */
static int cr_open_index(fmt_cr *r, uint64_t foff)
{
	r->index_len = (size_t)(foff - r->index_off - 12);
	uint8_t b[8];
	if (cr_pread(r, b, 4, r->index_off) < 0)
		return -1;
	r->nblocks = cut_get_le32(b);
	XXH3_state_t *s = XXH3_createState();
	if (!s)
		abort();
	XXH3_64bits_reset(s);
	int rc = cr_hash_range(r, r->index_off, foff - 8, s, false);
	uint64_t sum = XXH3_64bits_digest(s);
	XXH3_freeState(s);
	if (rc < 0 || cr_pread(r, b, 8, foff - 8) < 0)
		return -1;
	if (SUM_BAD(sum, cut_get_le64(b))) {
		fmt_cr_corrupt(r, r->index_off, "index section checksum mismatch");
		return -1;
	}
	r->ielen = r->version >= 2 ? FMT_INDEX_ENTRY_LEN : FMT_INDEX_ENTRY_LEN_V1;
	if (r->nblocks > r->index_len / r->ielen) {
		fmt_cr_corrupt(r, r->index_off, "index block count too large");
		return -1;
	}
	r->seg_len = (r->nblocks + IX_SAMPLES_MAX - 1) / IX_SAMPLES_MAX;
	if (r->seg_len < IX_SEG_MIN)
		r->seg_len = IX_SEG_MIN;
	r->nsamples = (r->nblocks + r->seg_len - 1) / r->seg_len;
	r->samples = cut_calloc(r->nsamples ? r->nsamples : 1, sizeof *r->samples);
	return cr_walk_index(r);
}

/* What a container of this magic is called, or NULL for a magic cutover does
 * not write; and which command makes one (for the wrong-type message). */
static const char *cr_kind_name(const char *magic)
{
	if (memcmp(magic, FMT_MAGIC_MANIFEST, FMT_MAGIC_LEN) == 0)
		return "manifest";
	if (memcmp(magic, FMT_MAGIC_CHANGES, FMT_MAGIC_LEN) == 0)
		return "change log";
	return NULL;
}

static const char *cr_kind_hint(const char *magic)
{
	return memcmp(magic, FMT_MAGIC_MANIFEST, FMT_MAGIC_LEN) == 0
		       ? "`cutover scan` writes manifests"
		       : "`cutover diff OLD NEW -o LOG` writes a change log from two manifests";
}
/* A reader of path with nothing read yet (fmt_cr_close frees it). */
static fmt_cr *cr_new(const char *path)
{
	fmt_cr *r = cut_calloc(1, sizeof *r);
	r->path = cut_strndup(path, strlen(path));
	pthread_mutex_init(&r->mu, NULL);
	for (int k = 0; k < IX_CACHE; k++)
		r->cache[k].seg = UINT32_MAX;
	r->fd = -1;
	return r;
}

/* Opens the file and takes its size.  0 or -1 (logged). */
static int cr_open_file(fmt_cr *r)
{
	r->fd = open(r->path, O_RDONLY | O_CLOEXEC);
	if (r->fd < 0) {
		CUT_SYSERR("%s: cannot open", r->path);
		return -1;
	}
	struct stat st;
	if (fstat(r->fd, &st) < 0) {
		CUT_SYSERR("%s: cannot stat", r->path);
		return -1;
	}
	r->size = (uint64_t)st.st_size;
	return 0;
}

/* Checks the file header: the magic expected here (naming the other kind
 * of cutover file when it is one), a version this build reads, no flags.
 * 0 or -1 (logged). */
static int cr_check_header(fmt_cr *r, const char *magic)
{
	uint8_t h[FMT_FILE_HEADER_LEN];
	if (r->size < FMT_FILE_HEADER_LEN ||
	    cut_pread_all(r->fd, h, sizeof h, 0) != (long long)sizeof h) {
		fmt_cr_corrupt(r, 0, "too short to be a cutover file");
		return -1;
	}
	if (memcmp(h, magic, FMT_MAGIC_LEN) != 0) {
		const char *is = cr_kind_name((const char *)h), *want = cr_kind_name(magic);
		if (is && want)
			CUT_ERR("%s: is a cutover %s, but a %s is expected here (%s)", r->path, is, want,
				cr_kind_hint(magic));
		else
			fmt_cr_corrupt(r, 0, "bad magic, not a cutover file");
		return -1;
	}
	r->version = cut_get_le32(h + 8);
	if (r->version < FMT_VERSION_MIN || r->version > FMT_VERSION) {
		CUT_ERR("%s: format version %u is not supported (this cutover reads versions %u to %u)",
			r->path, r->version, FMT_VERSION_MIN, FMT_VERSION);
		return -1;
	}
	if (cut_get_le32(h + 12) != 0) {
		fmt_cr_corrupt(r, 12, "unknown file flags");
		return -1;
	}
	return 0;
}

/* Reads and checks the footer (checksum, version, size, section offsets in
 * order) and takes the sections' offsets, the record count and the file's
 * id from it; *foff: where it starts.  0 or -1 (logged). */
static int cr_read_footer(fmt_cr *r, uint64_t *foff)
{
	uint8_t f[FMT_FOOTER_LEN];
	*foff = r->size - FMT_FOOTER_LEN;
	if (r->size < FMT_FILE_HEADER_LEN + FMT_FOOTER_LEN ||
	    cut_pread_all(r->fd, f, sizeof f, *foff) != (long long)sizeof f ||
	    memcmp(f + FMT_FT_MAGIC, FMT_MAGIC_END, 8) != 0) {
		fmt_cr_corrupt(r, r->size, "no footer: the file is truncated or was not finished");
		return -1;
	}
	if (SUM_BAD(XXH3_64bits(f, FMT_FT_SUM), cut_get_le64(f + FMT_FT_SUM))) {
		fmt_cr_corrupt(r, *foff, "footer checksum mismatch");
		return -1;
	}
	if (cut_get_le32(f + FMT_FT_VERSION) != r->version || cut_get_le32(f + FMT_FT_FLAGS) != 0) {
		fmt_cr_corrupt(r, *foff + FMT_FT_VERSION, "footer version or flags differ from the header");
		return -1;
	}
	if (cut_get_le64(f + FMT_FT_SIZE) != r->size) {
		fmt_cr_corrupt(r, *foff + FMT_FT_SIZE, "file size differs from the size the footer records");
		return -1;
	}
	r->meta_off = cut_get_le64(f + FMT_FT_META);
	r->index_off = cut_get_le64(f + FMT_FT_INDEX);
	r->records = cut_get_le64(f + FMT_FT_RECORDS);
	memcpy(r->id, f + FMT_FT_ID, FMT_ID_LEN);
	if (r->meta_off < FMT_FILE_HEADER_LEN || r->meta_off + 12 > r->index_off ||
	    r->index_off + 12 > *foff) {
		fmt_cr_corrupt(r, *foff, "section offsets out of order");
		return -1;
	}
	return 0;
}

/* Reads the metadata section, which must reach the index exactly, and
 * checks that its fields tile it (fmt_cr_meta_next relies on that).
 * 0 or -1 (logged). */
static int cr_read_meta(fmt_cr *r)
{
	uint8_t lead[4];
	if (cut_pread_all(r->fd, lead, 4, r->meta_off) != 4) {
		fmt_cr_corrupt(r, r->size, "file ends early");
		return -1;
	}
	r->meta_len = cut_get_le32(lead);
	if (r->meta_off + 4 + r->meta_len + 8 != r->index_off) {
		fmt_cr_corrupt(r, r->meta_off, "metadata section length does not reach the index");
		return -1;
	}
	r->meta = cr_section(r, r->meta_off, r->index_off, r->meta_len, "metadata");
	if (!r->meta)
		return -1;
	for (size_t pos = 0; pos < r->meta_len;) {
		const uint8_t *t = r->meta + 4 + pos;
		if (r->meta_len - pos < 8 || cut_get_le16(t + 2) != 0 ||
		    cut_get_le32(t + 4) > r->meta_len - pos - 8) {
			fmt_cr_corrupt(r, r->meta_off + 4 + pos, "malformed metadata field");
			return -1;
		}
		pos += 8 + cut_get_le32(t + 4);
	}
	return 0;
}

fmt_cr *fmt_cr_open(const char *path, const char *magic)
{
	fmt_cr *r = cr_new(path);
	uint64_t foff;
	if (cr_open_file(r) < 0 || cr_check_header(r, magic) < 0 || cr_read_footer(r, &foff) < 0 ||
	    cr_read_meta(r) < 0 || cr_open_index(r, foff) < 0) {
		fmt_cr_close(r);
		return NULL;
	}
	return r;
}

void fmt_cr_close(fmt_cr *r)
{
	if (!r)
		return;
	if (r->fd >= 0)
		close(r->fd);
	for (int k = 0; k < IX_CACHE; k++) {
		cut_buf_free(&r->cache[k].bytes);
		free(r->cache[k].at);
	}
	pthread_mutex_destroy(&r->mu);
	free(r->meta);
	free(r->samples);
	cut_buf_free(&r->keys);
	free(r->path);
	free(r);
}

const char *fmt_cr_path(const fmt_cr *r) { return r->path; }
const uint8_t *fmt_cr_id(const fmt_cr *r) { return r->id; }
uint64_t fmt_cr_records(const fmt_cr *r) { return r->records; }
uint32_t fmt_cr_nblocks(const fmt_cr *r) { return r->nblocks; }

int fmt_cr_meta_next(const fmt_cr *r, size_t *pos, uint16_t *tag, const uint8_t **v, uint32_t *len)
{
	const uint8_t *base = r->meta + 4;
	if (*pos + 8 > r->meta_len)
		return 0;
	const uint8_t *p = base + *pos;
	uint32_t l = cut_get_le32(p + 4);
	if (l > r->meta_len - *pos - 8)
		return 0; /* cannot happen: fmt_cr_open checked the fields tile the section */
	*tag = cut_get_le16(p);
	*v = p + 8;
	*len = l;
	*pos += 8 + l;
	return 1;
}

uint32_t fmt_cr_version(const fmt_cr *r) { return r->version; }

/* Reads segment k into slot g and checks it against its sample: the index
 * may have changed since the open.  0, or -1 logged.  Lock held. */
static int cr_seg_load(fmt_cr *r, cr_seg *g, uint32_t k)
{
	const cr_sample *m = &r->samples[k];
	g->seg = UINT32_MAX;
	g->bytes.len = 0;
	cut_buf_reserve(&g->bytes, m->len);
	if (cr_pread(r, g->bytes.p, m->len, m->pos) < 0)
		return -1;
	g->bytes.len = m->len;
	if (SUM_BAD(XXH3_64bits(g->bytes.p, m->len), m->sum)) {
		fmt_cr_corrupt(r, m->pos, "index changed since the file was opened");
		return -1;
	}
	uint32_t first = k * r->seg_len, n = r->nblocks - first;
	g->n = n < r->seg_len ? n : r->seg_len;
	g->at = cut_realloc(g->at, cut_size_mul(g->n, sizeof *g->at));
	size_t at = 0;
	for (uint32_t i = 0; i < g->n; i++) {
		/* cr_walk_index parsed these bytes; their sum says they are
		 * the same, so the lengths hold (checked all the same). */
		if (m->len - at < r->ielen ||
		    m->len - at - r->ielen < cut_get_le32(g->bytes.p + at + 12)) {
			fmt_cr_corrupt(r, m->pos + at, "index does not match the blocks");
			return -1;
		}
		g->at[i] = at;
		at += r->ielen + cut_get_le32(g->bytes.p + at + 12);
	}
	g->seg = k;
	return 0;
}

/* The cached segment k, read when it is not.  NULL on error (logged).
 * Lock held. */
static cr_seg *cr_seg_get(fmt_cr *r, uint32_t k)
{
	cr_seg *victim = &r->cache[0];
	for (int s = 0; s < IX_CACHE; s++) {
		cr_seg *g = &r->cache[s];
		if (g->seg == k) {
			g->used = ++r->tick;
			return g;
		}
		if (g->used < victim->used)
			victim = g;
	}
	if (cr_seg_load(r, victim, k) < 0)
		return NULL;
	victim->used = ++r->tick;
	return victim;
}

/* Entry k of segment g, into b (b->key points into g: lock held). */
static void cr_seg_info(const fmt_cr *r, const cr_seg *g, uint32_t k, fmt_block_info *b)
{
	const uint8_t *p = g->bytes.p + g->at[k];
	b->off = cut_get_le64(p);
	b->count = cut_get_le32(p + 8);
	b->key_len = cut_get_le32(p + 12);
	b->has_sum = r->version >= 2;
	b->sum = b->has_sum ? cut_get_le64(p + 16) : 0;
	b->key = p + r->ielen;
	if (k + 1 < g->n)
		b->end = cut_get_le64(g->bytes.p + g->at[k + 1]);
	else if (g->seg + 1 < r->nsamples)
		b->end = r->samples[g->seg + 1].block_off;
	else
		b->end = r->meta_off;
}

/* The segment cache is shared by the reader's cursors: the entry is read
 * under the lock, and nothing of the cache's is handed out. */
int fmt_cr_block(fmt_cr *r, uint32_t i, fmt_block_info *b, cut_buf *key)
{
	if (i >= r->nblocks) {
		CUT_ERR("%s: internal: block %u of %u asked for", r->path, i, r->nblocks);
		return -1;
	}
	pthread_mutex_lock(&r->mu);
	cr_seg *g = cr_seg_get(r, i / r->seg_len);
	if (g) {
		cr_seg_info(r, g, i % r->seg_len, b);
		if (key) {
			key->len = 0;
			cut_buf_reserve(key, b->key_len + 1); /* b->key is never NULL */
			memcpy(key->p, b->key, b->key_len);
			key->len = b->key_len;
		}
		b->key = key ? key->p : NULL;
	}
	pthread_mutex_unlock(&r->mu);
	return g ? 0 : -1;
}

static int cr_info(fmt_cr *r, uint32_t i, fmt_block_info *b) { return fmt_cr_block(r, i, b, NULL); }

/* The last of blocks lo.. of segment g whose key is <= key, or lo. */
static uint32_t cr_seg_find(const fmt_cr *r, const cr_seg *g, uint32_t lo, const char *key,
			    size_t len)
{
	uint32_t hi = g->n;
	while (hi - lo > 1) {
		uint32_t mid = lo + (hi - lo) / 2;
		const uint8_t *p = g->bytes.p + g->at[mid];
		if (fmt_path_cmp((const char *)p + r->ielen, cut_get_le32(p + 12), key, len) <= 0)
			lo = mid;
		else
			hi = mid;
	}
	return lo;
}

int fmt_cr_find(fmt_cr *r, const char *key, size_t len, uint32_t *out)
{
	*out = 0;
	if (r->nblocks == 0)
		return 0;
	/* The last segment whose first key is <= key (or the first). */
	uint32_t lo = 0, hi = r->nsamples;
	while (hi - lo > 1) {
		uint32_t mid = lo + (hi - lo) / 2;
		const cr_sample *m = &r->samples[mid];
		if (fmt_path_cmp((const char *)r->keys.p + m->key_at, m->key_len, key, len) <= 0)
			lo = mid;
		else
			hi = mid;
	}
	pthread_mutex_lock(&r->mu);
	cr_seg *g = cr_seg_get(r, lo);
	if (g)
		*out = lo * r->seg_len + cr_seg_find(r, g, 0, key, len);
	pthread_mutex_unlock(&r->mu);
	return g ? 0 : -1;
}

bool fmt_cr_same_block(const fmt_block_info *x, const fmt_block_info *y)
{
	return x->has_sum && y->has_sum && x->sum == y->sum && x->count == y->count &&
	       x->key_len == y->key_len && memcmp(x->key, y->key, x->key_len) == 0 &&
	       x->end - x->off == y->end - y->off;
}

void fmt_cr_corrupt_block(fmt_cr *r, uint32_t i, const char *what)
{
	fmt_block_info b;
	if (cr_info(r, i, &b) == 0)
		fmt_cr_corrupt(r, b.off, what);
	else
		CUT_ERR("%s: corrupt file: %s (block %u)", r->path, what, i);
}

/* Reads and checks the block b describes into disk (its on-disk bytes). */
static int cr_read_disk(fmt_cr *r, const fmt_block_info *b, cut_buf *disk)
{
	/* One read: the block's extent is known from the index (fmt_cr_open). */
	uint64_t total = b->end - b->off;
	if (total > FMT_BLOCK_HEADER_LEN + (uint64_t)LZ4_COMPRESSBOUND(FMT_BLOCK_MAX_RAW) + 8) {
		fmt_cr_corrupt(r, b->off, "block longer than any block can be");
		return -1;
	}
	disk->len = 0;
	cut_buf_reserve(disk, (size_t)total);
	long long got = cut_pread_all(r->fd, disk->p, (size_t)total, b->off);
	if (got != (long long)total) {
		fmt_cr_corrupt(r, b->off, "block cut short");
		return -1;
	}
	disk->len = (size_t)total;
	const uint8_t *bh = disk->p;
	uint32_t rawlen = cut_get_le32(bh), slen = cut_get_le32(bh + 4);
	uint32_t flags = cut_get_le32(bh + 12);
	if (rawlen > FMT_BLOCK_MAX_RAW || flags > 1 || (flags == 0 && slen != rawlen) ||
	    cut_get_le32(bh + 8) != b->count) {
		fmt_cr_corrupt(r, b->off, "bad block header");
		return -1;
	}
	if ((uint64_t)FMT_BLOCK_HEADER_LEN + slen + 8 != total) {
		fmt_cr_corrupt(r, b->off, "block length differs from its extent in the index");
		return -1;
	}
	uint64_t sum = cut_get_le64(disk->p + total - 8);
	if (SUM_BAD(XXH3_64bits(disk->p, (size_t)total - 8), sum)) {
		fmt_cr_corrupt(r, b->off, "block checksum mismatch");
		return -1;
	}
	if (b->has_sum && SUM_BAD(sum, b->sum)) {
		fmt_cr_corrupt(r, b->off, "block checksum differs from the index");
		return -1;
	}
	return 0;
}

int fmt_cr_read_disk(fmt_cr *r, uint32_t i, cut_buf *disk)
{
	fmt_block_info b;
	if (cr_info(r, i, &b) < 0)
		return -1;
	return cr_read_disk(r, &b, disk);
}

int fmt_cr_read_block(fmt_cr *r, uint32_t i, cut_buf *raw, uint32_t *count, void *idstate)
{
	fmt_block_info b;
	cut_buf disk = {0};
	int rc = -1;
	if (cr_info(r, i, &b) < 0 || cr_read_disk(r, &b, &disk) < 0)
		goto out;
	if (idstate)
		XXH3_128bits_update(idstate, disk.p, disk.len);
	uint32_t rawlen = cut_get_le32(disk.p), slen = cut_get_le32(disk.p + 4);
	raw->len = 0;
	cut_buf_reserve(raw, rawlen);
	if (cut_get_le32(disk.p + 12) & 1) {
		int n = LZ4_decompress_safe((const char *)disk.p + FMT_BLOCK_HEADER_LEN,
					    (char *)raw->p, (int)slen, (int)rawlen);
		if (n != (int)rawlen) {
			fmt_cr_corrupt(r, b.off, "block does not decompress to its recorded size");
			goto out;
		}
	} else {
		memcpy(raw->p, disk.p + FMT_BLOCK_HEADER_LEN, rawlen);
	}
	raw->len = rawlen;
	*count = b.count;
	rc = 0;
out:
	cut_buf_free(&disk);
	return rc;
}

void *fmt_cr_id_begin(fmt_cr *r)
{
	XXH3_state_t *s = XXH3_createState();
	if (!s)
		abort();
	XXH3_128bits_reset(s);
	uint8_t h[FMT_FILE_HEADER_LEN];
	if (cut_pread_all(r->fd, h, sizeof h, 0) == (long long)sizeof h)
		XXH3_128bits_update(s, h, sizeof h);
	return s;
}

int fmt_cr_id_end(fmt_cr *r, void *idstate)
{
	XXH3_state_t *s = idstate;
	XXH3_128bits_update(s, r->meta, 4 + r->meta_len + 8);
	/* The index is read again (it is not held): the id covers it. */
	if (cr_hash_range(r, r->index_off, r->index_off + 4 + r->index_len + 8, s, true) < 0) {
		XXH3_freeState(s);
		return -1;
	}
	XXH128_canonical_t canon;
	XXH128_canonicalFromHash(&canon, XXH3_128bits_digest(s));
	XXH3_freeState(s);
	if (SUM_BAD(memcmp(canon.digest, r->id, FMT_ID_LEN), 0)) {
		fmt_cr_corrupt(r, r->size - FMT_FOOTER_LEN + FMT_FT_ID, "file id does not match the content");
		return -1;
	}
	return 0;
}

void fmt_cr_id_feed(void *idstate, const uint8_t *p, size_t n)
{
	XXH3_128bits_update(idstate, p, n);
}

void fmt_cr_id_abort(void *idstate)
{
	XXH3_freeState(idstate);
}
