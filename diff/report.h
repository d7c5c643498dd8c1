/*
 * report.h - `cutover report`: a parity audit of two manifests (typically a
 * scan of the source and a scan of the target), in one streaming merge-join
 * plus a bounded-memory comparison of hard-link structure.
 */
#ifndef CUTOVER_REPORT_H
#define CUTOVER_REPORT_H

#include <stdio.h>

#include "base/util.h"

/* Fields that can be compared (bit masks for diff_report_opts.ignore). */
enum {
	RF_TYPE = 1 << 0, RF_SIZE = 1 << 1, RF_HASH = 1 << 2, RF_TARGET = 1 << 3,
	RF_MODE = 1 << 4, RF_UID = 1 << 5, RF_GID = 1 << 6, RF_MTIME = 1 << 7,
	RF_DIRMTIME = 1 << 8, RF_NLINK = 1 << 9, RF_LINKS = 1 << 10, RF_CTIME = 1 << 11,
	RF_INO = 1 << 12, RF_DEV = 1 << 13, RF_RDEV = 1 << 14, RF_ATIME = 1 << 15,
};
/* Ignored unless asked for: they cannot match on a copy. */
#define RF_DEFAULT_IGNORE (RF_CTIME | RF_INO | RF_DEV | RF_NLINK | RF_ATIME)

typedef struct diff_report_opts {
	const char *a, *b;          /* manifests */
	unsigned ignore;            /* RF_* */
	int64_t mtime_gran_ns;      /* times equal when truncated to this (<=1: exact) */
	unsigned by_depth;          /* 0: no groups */
	unsigned max_examples;      /* per kind */
	bool json;
	size_t mem_limit;           /* for the link-structure lists (0: DIFF_MEM_LIMIT_DEFAULT) */
	const char *tmpdir;
	FILE *out;
} diff_report_opts;

/* Parses "ctime,uid,..." into a mask (added to *mask).  0, or -1 with the
 * unknown name logged. */
int diff_report_parse_fields(const char *list, unsigned *mask);

/* Prints the report.  0 parity, 1 differ, -1 error (logged). */
int diff_report(const diff_report_opts *o);

#endif
