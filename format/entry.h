/*
 * entry.h - one file-system entry as manifests and change logs record it, and
 * the block codec that packs a run of entries (FORMAT.md, "Entry block").
 *
 * The codec is columnar: paths (front-coded against the previous entry),
 * attributes (varints, deltas against the previous entry), symlink targets and
 * hashes go to separate streams, so that LZ4 finds the repeats of each kind.
 * Every block starts from a zero state, so blocks decode independently.
 */
#ifndef CUTOVER_ENTRY_H
#define CUTOVER_ENTRY_H

#include "base/util.h"

enum fmt_type {
	FMT_T_FILE = 1,
	FMT_T_DIR = 2,
	FMT_T_SYMLINK = 3,
	FMT_T_FIFO = 4,
	FMT_T_SOCK = 5,
	FMT_T_CHR = 6,
	FMT_T_BLK = 7,
};
#define FMT_T_MAX 7

/* fmt_entry.flags */
#define FMT_E_HASH 0x01    /* hash holds the XXH3-128 of the content (files only) */
#define FMT_E_CARRIED 0x02 /* copied from the previous manifest without a stat:
			      nlink and ctime may be stale (FORMAT.md) */

typedef struct fmt_entry {
	const char *path;   /* relative path, NUL-terminated; owner: see the producer */
	const char *target; /* symlink target, NUL-terminated, or NULL */
	uint32_t path_len, target_len;
	uint8_t type, flags;
	uint32_t mode;      /* permission bits, st_mode & 07777 */
	uint32_t uid, gid, nlink;
	uint64_t dev, ino, size, rdev;
	int64_t mtime_ns, ctime_ns;
	uint8_t hash[16];   /* canonical (big-endian) XXH3-128 when FMT_E_HASH */
} fmt_entry;

const char *fmt_type_name(unsigned type); /* "file", "dir", "symlink", "fifo", ... */
int fmt_type_parse(const char *name);     /* inverse, or -1 */
/* The type of a st_mode, or 0 when it is none of ours. */
unsigned fmt_type_from_mode(unsigned mode);

/* Copies e's strings into arena a and points the copy at them. */
void fmt_entry_copy(fmt_entry *dst, const fmt_entry *src, cut_arena *a);
/* True when a and b hold the same value in every field an entry block
 * records (FORMAT.md 3.3), so that both encode to the same bytes. */
bool fmt_entry_same(const fmt_entry *a, const fmt_entry *b);

/* Numbers within names (FORMAT.md, "Names"): at most this many per path
 * suffix are coded against the previous path's. */
#define FMT_NAME_NUMS 32

/* Encoder: add entries, then finish into raw bytes for one container block. */
typedef struct fmt_enc {
	cut_buf names, nums, meta, targets, hashes;
	cut_buf prev_path;
	uint64_t prev_nums[FMT_NAME_NUMS];
	unsigned prev_nnums;
	int64_t prev_mtime_s, prev_ctime_ns;
	uint64_t prev_ino, prev_dev;
	uint32_t prev_mode, prev_uid, prev_gid;
	uint32_t count;
} fmt_enc;

void fmt_enc_add(fmt_enc *e, const fmt_entry *en);
/* Bytes the block would take uncompressed. */
size_t fmt_enc_size(const fmt_enc *e);
/* Appends the block's raw bytes to out and resets e for the next block. */
void fmt_enc_finish(fmt_enc *e, cut_buf *out);
void fmt_enc_free(fmt_enc *e);

/* Decoder over one block's raw bytes (which must outlive it).  It keeps the
 * previous path beside the current one, so that a reader of a manifest can
 * have the canonical order checked here at the cost of comparing suffixes. */
typedef struct fmt_dec {
	const uint8_t *names, *names_end, *nums, *nums_end, *meta, *meta_end;
	const uint8_t *targets, *targets_end, *hashes, *hashes_end;
	cut_buf paths[2], target; /* paths[cur] is the last path decoded */
	unsigned cur;
	uint64_t prev_nums[FMT_NAME_NUMS];
	unsigned prev_nnums;
	int64_t prev_mtime_s, prev_ctime_ns;
	uint64_t prev_ino, prev_dev;
	uint32_t prev_mode, prev_uid, prev_gid;
	uint32_t left, count;
	bool check_order; /* set by the caller: entries must be in strictly
			     increasing canonical order within the block */
	const char *err;  /* what was wrong, after -1 */
} fmt_dec;

/* Prepares to decode count entries from raw (check_order is kept).  0, or -1
 * with d->err set. */
int fmt_dec_init(fmt_dec *d, const uint8_t *raw, size_t len, uint32_t count);
/* Decodes the next entry into *en; its strings stay valid until the next call.
 * Returns 1, 0 after the last entry (when all streams must be used up), or -1
 * with d->err set. */
int fmt_dec_next(fmt_dec *d, fmt_entry *en);
/* Skims the next entry: only its type, flags, dev, ino and nlink are filled
 * in (no path, no other field), reading the attribute stream alone.  For a
 * pass that looks for inodes in a block and decodes it fully (with a fresh
 * fmt_dec_init) only where it finds one.  Once skimmed, a decoder can only
 * skim on.  Returns 1, 0 after the last entry, or -1 with d->err set. */
int fmt_dec_skim(fmt_dec *d, fmt_entry *en);
void fmt_dec_free(fmt_dec *d);

#endif
