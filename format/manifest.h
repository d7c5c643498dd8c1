/*
 * manifest.h - a manifest: every entry of a tree, in canonical order, with a
 * header saying what was scanned, when and how (FORMAT.md, "Manifest").
 *
 * Writers take entries in strictly increasing canonical order and refuse
 * anything else; readers check the order again, so a merge-join over two
 * manifests can trust it.
 */
#ifndef CUTOVER_MANIFEST_H
#define CUTOVER_MANIFEST_H

#include "container.h"
#include "entry.h"

/* Metadata tags of a manifest (FORMAT.md lists their encodings). */
enum {
	FMT_MT_ROOT = 1,        /* bytes: the scanned root, as given */
	FMT_MT_HOST = 2,        /* bytes: host name */
	FMT_MT_START_NS = 3,    /* i64: wall clock when the scan started */
	FMT_MT_END_NS = 4,      /* i64: when it ended */
	FMT_MT_OPTIONS = 5,     /* text: scan options, "key=value" words */
	FMT_MT_POLICY = 6,      /* text: incremental policy, "" for none */
	FMT_MT_ENTRIES = 7,     /* u64 */
	FMT_MT_BYTES = 8,       /* u64: sum of sizes of regular files */
	FMT_MT_PREV_ID = 9,     /* 16 bytes: id of the manifest it was built against */
	FMT_MT_ERRORS = 10,     /* u64: paths that could not be read (incomplete if > 0) */
	FMT_MT_STATS = 0x8001,  /* optional text: "key=value" counters of the scan */
};

typedef struct fmt_mheader {
	char *root, *host, *options, *policy, *stats;
	int64_t start_ns, end_ns;
	uint64_t entries, bytes, errors;
	bool has_prev;
	uint8_t prev_id[FMT_ID_LEN];
} fmt_mheader;

void fmt_mheader_free(fmt_mheader *h);

typedef struct fmt_mwriter fmt_mwriter;
typedef struct fmt_mreader fmt_mreader;

/* Starts a manifest at path (written under a temporary name until finished). */
fmt_mwriter *fmt_mwriter_create(const char *path);
/* The manifest is a scratch file (fmt_cw_scratch): not fsync'ed. */
void fmt_mwriter_scratch(fmt_mwriter *w);
/* Adds the next entry; it must sort strictly after the previous one, and
 * only the first may be the root "".  0, or -1 (logged) on error. */
int fmt_mwriter_add(fmt_mwriter *w, const fmt_entry *e);
/* Adds the next entry, which the caller knows to equal (fmt_entry_same) the
 * entry at index pidx of block pblock of the manifest given to
 * fmt_mwriter_set_prev (pblock UINT32_MAX: no such entry).  A block whose
 * entries all equal one of prev's whole is copied from prev as it is stored:
 * neither decoded nor encoded (FORMAT.md 3.5).  0 or -1. */
int fmt_mwriter_add_from(fmt_mwriter *w, const fmt_entry *e, uint32_t pblock, uint32_t pidx);
/* A run of n entries of prev's block block, from index idx: first and last
 * are its first and last entries, bytes the sum of its files' sizes and
 * weight of their cut weights (a skeleton's run record, skel.h). */
typedef struct fmt_mrun {
	const fmt_entry *first, *last;
	uint32_t block, idx, n;
	uint64_t bytes, weight;
} fmt_mrun;
/* Adds the n entries of the run, which the caller knows to equal prev's
 * (fmt_entry_same), without being given them: when the block being built
 * is prev's so far, they are counted, not decoded; otherwise they are
 * decoded from prev and added one by one.  0 or -1. */
int fmt_mwriter_add_run(fmt_mwriter *w, const fmt_mrun *r);
/* Writes the manifest's skeleton (skel.h) beside it: imm(arg, path, len)
 * says whether the policy declares a file immutable; policy is the policy's
 * description, recorded for readers to compare.  0 or -1 (logged). */
typedef bool (*fmt_mwriter_imm_fn)(void *arg, const char *path, size_t len);
int fmt_mwriter_skeleton(fmt_mwriter *w, fmt_mwriter_imm_fn imm, void *arg, const char *policy);
/* prev's skeleton, for a copied block's records; it must stay open until
 * the writer is finished or aborted.  Without it they are built from the
 * block. */
struct fmt_skel;
void fmt_mwriter_set_prev_skeleton(fmt_mwriter *w, struct fmt_skel *s);
/* The manifest that fmt_mwriter_add_from's positions refer to; it must stay
 * open until the writer is finished or aborted. */
void fmt_mwriter_set_prev(fmt_mwriter *w, fmt_mreader *prev);
/* Blocks copied from prev so far, the one being built included when it is
 * whole and equal to prev's (so that a caller may read it before finish). */
uint64_t fmt_mwriter_copied(const fmt_mwriter *w);
/* The cut rule (FORMAT.md 3.5): whether a block holding count entries of
 * the given weight ends before e.  Exposed for the tests. */
bool fmt_mcut_before(uint32_t count, uint64_t weight, const fmt_entry *e);
/* Writes header h (entries and bytes are filled in from what was added),
 * completes the file and frees w.  0 or -1. */
int fmt_mwriter_finish(fmt_mwriter *w, fmt_mheader *h, uint8_t id[FMT_ID_LEN]);
void fmt_mwriter_abort(fmt_mwriter *w);
/* Removes the manifest at path and its skeleton, if any (ENOENT is no
 * error).  0, or -1 (logged). */
int fmt_manifest_unlink(const char *path);

/* Opens a manifest and reads its header.  NULL (logged, naming the file and
 * offset) when it is not a valid manifest. */
fmt_mreader *fmt_mreader_open(const char *path);
void fmt_mreader_close(fmt_mreader *r);
const fmt_mheader *fmt_mreader_header(const fmt_mreader *r);
const uint8_t *fmt_mreader_id(const fmt_mreader *r);
const char *fmt_mreader_path(const fmt_mreader *r);
/* Sequential reading from the first entry: 1 with *e (valid until the next
 * call), 0 at the end (after checking the whole-file id), -1 on corruption
 * (logged).  Also checks the canonical order.  With marks set
 * (fmt_mreader_set_marks), a marked block is not read: 2 is returned in
 * place of its entries, with only e->path and e->path_len (the block's first
 * key), e->ino (its index) and e->size (its count) set, type 0; the next call goes on after it.
 * A marked block is read and its checksums checked, not decompressed. */
int fmt_mreader_next(fmt_mreader *r, fmt_entry *e);
/* bits: one per block (bit b % 8 of byte b / 8), owned by the caller, set
 * before the first fmt_mreader_next; NULL for none. */
void fmt_mreader_set_marks(fmt_mreader *r, const uint8_t *bits);
/* Where the entry that fmt_mreader_next last returned (1) lies: its block and
 * its index in the block, as fmt_mwriter_add_from takes them. */
void fmt_mreader_pos(const fmt_mreader *r, uint32_t *block, uint32_t *idx);

/* Block-level access, for readers that cache decoded blocks themselves (the
 * incremental scanner).  fmt_mreader_load_block reads and checks block i and
 * prepares dec over raw (which must outlive dec).  0 or -1 (logged). */
uint32_t fmt_mreader_nblocks(const fmt_mreader *r);
/* Block i's index entry, its key copied into key (fmt_cr_block): the index
 * is read on demand, so this may fail.  0 or -1 (logged). */
int fmt_mreader_block_info(fmt_mreader *r, uint32_t i, fmt_block_info *b, cut_buf *key);
/* The last block whose first key is <= path, or 0 (fmt_cr_find).  0 or -1. */
int fmt_mreader_find_block(fmt_mreader *r, const char *path, size_t len, uint32_t *b);
int fmt_mreader_load_block(fmt_mreader *r, uint32_t i, cut_buf *raw, fmt_dec *dec);
/* Reads block i's on-disk bytes, checked, not decompressed.  0 or -1. */
int fmt_mreader_read_disk(fmt_mreader *r, uint32_t i, cut_buf *disk);
/* Two blocks whose index entries fmt_cr_same_block finds equal hold the same
 * entries: a merge-join of two manifests may step over both without
 * decoding them. */
/* Logs a corruption found by such a reader in block i. */
void fmt_mreader_corrupt(fmt_mreader *r, uint32_t i, const char *what);

/* A cursor for random access; several cursors on one reader may be used from
 * different threads at once. */
typedef struct fmt_mcursor fmt_mcursor;
fmt_mcursor *fmt_mcursor_new(fmt_mreader *r);
void fmt_mcursor_free(fmt_mcursor *c);
/* Positions c so that the next fmt_mcursor_next returns the first entry at or
 * after path in canonical order.  0 or -1 (corrupt). */
int fmt_mcursor_seek(fmt_mcursor *c, const char *path, size_t len);
/* 1 with *e, 0 at the end, -1 on corruption. */
int fmt_mcursor_next(fmt_mcursor *c, fmt_entry *e);
/* Finds path exactly: 1 and *e when present, 0 when absent, -1 on error. */
int fmt_mcursor_find(fmt_mcursor *c, const char *path, size_t len, fmt_entry *e);

#endif
