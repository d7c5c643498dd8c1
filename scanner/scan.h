/*
 * scan.h - builds the manifest of a tree (`cutover scan`).
 *
 * The walk is parallel and its output deterministic: worker threads list
 * directories (readdir, then a stat of each entry relative to the directory
 * fd, which keeps NFS READDIRPLUS useful) in the order of a priority queue
 * keyed by canonical path, and the calling thread stitches the listings into
 * the one depth-first, canonical order that the manifest requires.  Memory is
 * bounded by a budget on listings finished ahead of the writer, never by the
 * size of the tree (scan.c explains why this cannot deadlock).
 *
 * The files of this module, one role each:
 *   scan.c     the engine: job queue by canonical path, workers, the writer
 *   list.c     one directory: readdir, stats, hashes, carry from --prev
 *   prev.c     the previous manifest and its skeleton: a shared cache of
 *              decoded blocks
 *   policy.c   excludes, immutable globs, the maildir preset
 *   hash.c     XXH3-128 content hashes
 *
 * With a previous manifest (--prev) the scan is incremental (list.c, prev.c): hashes
 * are carried forward for unchanged files, and under an immutability policy
 * (--maildir, --immutable) unchanged directories are not listed again.
 */
#ifndef CUTOVER_SCAN_H
#define CUTOVER_SCAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "format/container.h"

enum scan_hash { SCAN_HASH_NONE = 0, SCAN_HASH_CHANGED = 1, SCAN_HASH_ALL = 2 };

/* The thread counts (SCAN_THREADS_*) are in base/limits.h. */

typedef struct scan_progress {
	uint64_t entries, bytes, dirs_pending;
	int64_t elapsed_ns;
} scan_progress;

typedef struct scan_opts {
	const char *root;           /* the tree to scan */
	const char *out;            /* the manifest to write */
	int threads;                /* 0: by the root's file system (above) */
	enum scan_hash hash;
	const char *const *excludes; /* globs: without '/' against names, with '/' against paths */
	size_t nexcludes;
	bool one_fs;                /* do not descend into other file systems */
	const char *prev;           /* previous manifest, or NULL */
	bool maildir;               /* the maildir policy preset */
	const char *const *immutable; /* globs of files that never change in place */
	size_t nimmutable;
	bool full;                  /* ignore the directory shortcut */
	int64_t granularity_ns;     /* timestamp granularity assumed for the racy guard */
	size_t mem_budget;          /* bytes of listings buffered ahead; 0: default */
	bool scratch;               /* out is read by this process only: not fsync'ed */
	void (*progress)(const scan_progress *p, void *arg);
	void *progress_arg;
} scan_opts;

typedef struct scan_stats {
	uint64_t entries, dirs, files, bytes;
	uint64_t errors;       /* paths that could not be read (listed on stderr) */
	uint64_t vanished;     /* entries gone between readdir and stat */
	uint64_t retried;      /* stats and opens that answered ESTALE, made again */
	uint64_t listed;       /* directories read with readdir */
	uint64_t skipped_dirs; /* unchanged directories not listed again (incremental) */
	uint64_t stats;        /* stat calls */
	uint64_t carried;      /* entries carried from the previous manifest without a stat */
	uint64_t hashed, hashed_bytes, hash_carried;
	uint64_t peak_buffered; /* most listing bytes buffered ahead of the writer */
	uint64_t copied_blocks; /* blocks copied from the previous manifest as stored */
	uint64_t skel_dirs;     /* unchanged directories read from its skeleton */
	int threads;            /* worker threads used */
} scan_stats;

/* Scans o->root into o->out.  Returns 0 when complete, 1 when the manifest
 * was written but some paths could not be read (stats->errors > 0), -1 on a
 * failure that left no manifest (logged). */
int scan_run(const scan_opts *o, scan_stats *stats, uint8_t id[FMT_ID_LEN]);

#endif
