/*
 * changes.h - a change log: the ordered operations that turn a tree in the
 * state of one manifest (OLD) into the state of another (NEW), as written by
 * `cutover diff` and applied by `cutover replay` (FORMAT.md, "Change log").
 *
 * Records are applied in file order.  Each record is an operation, the path
 * it applies to, for rename and link a second path `to`, the entry's
 * attributes, and for operations that replace or remove something the
 * attributes the log expects to find there (`old`), so that replay can check
 * the target before it touches it.
 */
#ifndef CUTOVER_CHANGES_H
#define CUTOVER_CHANGES_H

#include "container.h"
#include "entry.h"

enum fmt_op {
	FMT_OP_MKDIR = 1,   /* create directory path with e's attributes */
	FMT_OP_CREATE = 2,  /* copy file path from the source (e: size, mtime, hash) */
	FMT_OP_UPDATE = 3,  /* replace file path's content by the source's */
	FMT_OP_LINK = 4,    /* make `to` another name of the file already at path */
	FMT_OP_SYMLINK = 5, /* create symlink path -> e.target */
	FMT_OP_RENAME = 6,  /* move path to `to` (file or whole directory) */
	FMT_OP_META = 7,    /* set mode, owner or times of path to e's */
	FMT_OP_DELETE = 8,  /* remove the non-directory at path (old says what it is) */
	FMT_OP_RMDIR = 9,   /* remove the (by then empty) directory at path */
	FMT_OP_SPECIAL = 10,/* create a fifo, socket or device node path */
};
#define FMT_OP_MAX 10

const char *fmt_op_name(unsigned op);
int fmt_op_parse(const char *name);

/* What the log expects at path before the operation (FMT_C_OLD set). */
typedef struct fmt_old {
	uint8_t type;
	uint64_t size;
	int64_t mtime_ns;
} fmt_old;

#define FMT_C_OLD 0x01 /* fmt_change.old is present */

typedef struct fmt_change {
	uint8_t op, flags;
	const char *to;   /* rename, link: the new path; else NULL */
	uint32_t to_len;
	fmt_entry e;      /* e.path is the path the op applies to; the attributes
			     are the state after the op (delete, rmdir: before) */
	fmt_old old;
} fmt_change;

/* Change log metadata tags. */
enum {
	FMT_CT_SOURCE = 1,     /* bytes: the source root the log was made from */
	FMT_CT_OLD_ID = 2,     /* 16 bytes: OLD manifest's id; absent for --from-empty */
	FMT_CT_NEW_ID = 3,     /* 16 bytes: NEW manifest's id */
	FMT_CT_CREATED_NS = 4, /* i64 */
	FMT_CT_OPS = 5,        /* (FMT_OP_MAX+1) u64 counts, indexed by op (0 unused) */
	FMT_CT_OP_BYTES = 6,   /* (FMT_OP_MAX+1) u64 byte totals (file sizes), by op */
	FMT_CT_TARGET_ID = 7,  /* optional... not used: reserved */
};

typedef struct fmt_cheader {
	char *source;
	bool has_old;
	uint8_t old_id[FMT_ID_LEN], new_id[FMT_ID_LEN];
	int64_t created_ns;
	uint64_t ops[FMT_OP_MAX + 1], bytes[FMT_OP_MAX + 1]; /* filled by the writer */
	uint64_t records;
} fmt_cheader;

void fmt_cheader_free(fmt_cheader *h);

typedef struct fmt_cwriter fmt_cwriter;
fmt_cwriter *fmt_cwriter_create(const char *path);
/* Appends a record.  0, or -1 (logged) when the record is invalid. */
int fmt_cwriter_add(fmt_cwriter *w, const fmt_change *c);
/* Writes the header (ops, bytes and records filled in), completes the file,
 * frees w.  0 or -1. */
int fmt_cwriter_finish(fmt_cwriter *w, fmt_cheader *h, uint8_t id[FMT_ID_LEN]);
void fmt_cwriter_abort(fmt_cwriter *w);

typedef struct fmt_creader fmt_creader;
/* Opens a change log; NULL (logged, with file and offset) if invalid. */
fmt_creader *fmt_creader_open(const char *path);
void fmt_creader_close(fmt_creader *r);
const fmt_cheader *fmt_creader_header(const fmt_creader *r);
const uint8_t *fmt_creader_id(const fmt_creader *r);
/* Next record: 1 (strings valid until the next call), 0 at the end (after the
 * whole-file id check), -1 on corruption (logged). */
int fmt_creader_next(fmt_creader *r, fmt_change *c);
/* Reads the whole log once to validate every block, record and path (replay
 * calls this before changing anything).  0 or -1 (logged).  Rewinds. */
int fmt_creader_validate(fmt_creader *r);
/* Starts again from the first record. */
void fmt_creader_rewind(fmt_creader *r);

#endif
