/*
 * container.h - the block container shared by manifests and change logs
 * (FORMAT.md, "Container").  It knows nothing of entries: it stores opaque
 * blocks of records, compressed with the LZ4 block API and checksummed with
 * XXH3, a metadata section of tagged fields, an index of blocks with each
 * block's first key, and a footer that locates them and names the file by an
 * XXH3-128 id of everything before it.
 *
 * A writer builds the file under a temporary name beside the final one and
 * renames it into place only when complete, so a reader never sees half a
 * file under the final name.
 */
#ifndef CUTOVER_CONTAINER_H
#define CUTOVER_CONTAINER_H

#include "base/util.h"

#define FMT_MAGIC_LEN 8
#define FMT_MAGIC_MANIFEST "CUTOVMF1"
#define FMT_MAGIC_CHANGES "CUTOVCL1"
#define FMT_VERSION 2     /* what writers write (FORMAT.md, "Versioning") */
#define FMT_VERSION_MIN 1 /* the oldest a reader still reads */
#define FMT_FILE_HEADER_LEN 16
#define FMT_BLOCK_HEADER_LEN 16
#define FMT_FOOTER_LEN 72
/* The footer's fields, by offset (FORMAT.md 2.5): u64 metadata offset, u64
 * index offset, u64 records, u64 file size, 16-byte file id, u32 version,
 * u32 flags, u64 XXH3-64 of the 56 bytes before it, 8-byte end magic. */
enum fmt_footer_off {
	FMT_FT_META = 0,
	FMT_FT_INDEX = 8,
	FMT_FT_RECORDS = 16,
	FMT_FT_SIZE = 24,
	FMT_FT_ID = 32,
	FMT_FT_VERSION = 48,
	FMT_FT_FLAGS = 52,
	FMT_FT_SUM = 56, /* also the length the sum covers */
	FMT_FT_MAGIC = 64,
};
#define FMT_MAGIC_END "CUTOVEND"
#define FMT_ID_LEN 16
#define FMT_BLOCK_MAX_RAW (16u << 20) /* a reader refuses larger blocks */
#define FMT_KEY_MAX 65535

/* Metadata tags: bit 15 set = optional, a reader that does not know it skips
 * it; an unknown tag without bit 15 makes the reader refuse the file. */
#define FMT_TAG_OPTIONAL 0x8000u

typedef struct fmt_cw fmt_cw;

/* Starts writing a container of the given magic to a temporary file beside
 * path.  Returns NULL (logged) on error. */
fmt_cw *fmt_cw_create(const char *path, const char *magic);
/* Appends one block of raw record bytes holding count records; key is the
 * block's first key (for the index), at most FMT_KEY_MAX bytes.  0 or -1. */
int fmt_cw_block(fmt_cw *w, const uint8_t *raw, size_t len, uint32_t count, const void *key,
		 size_t keylen);
/* A scratch file: finished without an fsync.  For files that only the
 * process writing them reads, and removes (or fsyncs itself before it keeps
 * one): a crash loses nothing they hold, and an fsync each would be most of
 * the cost of a small one (a verification's scans of one user). */
void fmt_cw_scratch(fmt_cw *w);
/* Writes the metadata section (TLV bytes built with fmt_meta_*), index and
 * footer, fsyncs (unless scratch), renames into place, and frees w.  id receives the file id.
 * 0 or -1 (then the temporary is removed). */
int fmt_cw_finish(fmt_cw *w, const cut_buf *meta, uint64_t records, uint8_t id[FMT_ID_LEN]);
/* Appends a block exactly as another container holds it: disk is its
 * on-disk bytes (header, payload, checksum), as fmt_cr_read_disk returns
 * them, already checked.  No decompression, no compression.  0 or -1. */
int fmt_cw_copy_block(fmt_cw *w, const uint8_t *disk, size_t total, uint32_t count,
		      const void *key, size_t keylen);
/* Removes the temporary file and frees w. */
void fmt_cw_abort(fmt_cw *w);

/* Metadata TLV helpers: tag u16, flags u16 (0), length u32, value. */
void fmt_meta_put(cut_buf *m, uint16_t tag, const void *v, size_t len);
void fmt_meta_put_u64(cut_buf *m, uint16_t tag, uint64_t v);
void fmt_meta_put_str(cut_buf *m, uint16_t tag, const char *s);

typedef struct fmt_block_info {
	uint64_t off;       /* file offset of the block header */
	uint64_t end;       /* where its extent ends: the next block's offset, or the metadata's */
	uint32_t count;     /* records in the block */
	uint32_t key_len;
	const uint8_t *key; /* first key, in the buffer the caller gave */
	uint64_t sum;       /* the block's checksum, from the index (version 2) */
	bool has_sum;       /* false in a version 1 file, whose index has none */
} fmt_block_info;

typedef struct fmt_cr fmt_cr;

/* Opens and validates a container: magic, version, footer, metadata and index
 * checksums, offsets.  Returns NULL after logging "FILE: what (offset N)".
 * The reader holds a bounded sample of the index, not the index (the
 * comment above fmt_cr's definition says how): an index entry is read
 * again when asked for, and may then fail. */
fmt_cr *fmt_cr_open(const char *path, const char *magic);
void fmt_cr_close(fmt_cr *r);
const char *fmt_cr_path(const fmt_cr *r);
const uint8_t *fmt_cr_id(const fmt_cr *r);
uint64_t fmt_cr_records(const fmt_cr *r);
uint32_t fmt_cr_nblocks(const fmt_cr *r);
/* Block i's index entry into *b, its key copied into key (b->key points
 * there; key NULL: no key, b->key NULL).  Safe from several threads.  0, or -1 (logged: a read error, or
 * an index that changed since the open). */
int fmt_cr_block(fmt_cr *r, uint32_t i, fmt_block_info *b, cut_buf *key);
/* The last block whose key is <= key in canonical order (fmt_path_cmp), or
 * block 0 when none is: a binary search for readers whose keys increase
 * (manifests).  0, or -1 (logged). */
int fmt_cr_find(fmt_cr *r, const char *key, size_t len, uint32_t *out);
/* Iterates the metadata: *pos starts at 0.  Returns 1 with tag/value, 0 at
 * the end. */
int fmt_cr_meta_next(const fmt_cr *r, size_t *pos, uint16_t *tag, const uint8_t **v, uint32_t *len);

/* Reads, checks and decompresses block i into raw (replacing its contents).
 * Safe to call from several threads at once (pread).  Returns 0, or -1 after
 * logging the file name and offset of the damage.  When idstate is not NULL
 * the block's on-disk bytes are also fed to it (sequential id check). */
int fmt_cr_read_block(fmt_cr *r, uint32_t i, cut_buf *raw, uint32_t *count, void *idstate);
/* Reads and checks block i's on-disk bytes (header, payload, checksum) into
 * disk without decompressing them, for fmt_cw_copy_block.  0 or -1 (logged). */
int fmt_cr_read_disk(fmt_cr *r, uint32_t i, cut_buf *disk);
/* The version the file was written in (FMT_VERSION_MIN .. FMT_VERSION). */
uint32_t fmt_cr_version(const fmt_cr *r);
/* True when the blocks two index entries describe (of one file or two) hold
 * the same bytes, known from the indexes alone: same record count, same
 * first key, same checksum and the same stored length (both files of
 * version 2).  A reader that skips such a pair without reading it relies on
 * the index checksum (2.4) and on the XXH3-64 of the bytes; FORMAT.md 2.4
 * says what that means. */
bool fmt_cr_same_block(const fmt_block_info *x, const fmt_block_info *y);

/* For a reader that read every block in order with an idstate: feeds the
 * trailing sections and compares the id.  0 or -1 (logged). */
void *fmt_cr_id_begin(fmt_cr *r);
int fmt_cr_id_end(fmt_cr *r, void *idstate);
/* Feeds bytes read otherwise (fmt_cr_read_disk) to an idstate. */
void fmt_cr_id_feed(void *idstate, const uint8_t *p, size_t n);
/* Frees an idstate without checking (a reader that stops early). */
void fmt_cr_id_abort(void *idstate);

/* Logs a corruption at offset off of the reader's file (shared wording). */
void fmt_cr_corrupt(const fmt_cr *r, uint64_t off, const char *what);
/* The same, at block i's offset. */
void fmt_cr_corrupt_block(fmt_cr *r, uint32_t i, const char *what);

#endif
