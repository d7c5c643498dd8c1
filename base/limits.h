/*
 * limits.h - the limits and defaults of cutover in one place: thread counts,
 * memory budgets and the bounds the command line accepts.  Each is defined
 * here only; the modules and cli/ use these names.  Constants only, so any
 * layer may include it.
 */
#ifndef CUTOVER_BASE_LIMITS_H
#define CUTOVER_BASE_LIMITS_H

#include <stddef.h>

/* The scan's default thread counts.  On a network file system each stat is
 * a round trip, and many requests in flight hide the server's latency; on a
 * local disk a few threads per core keep the disk and the cores busy, and
 * more only take turns on the cores, hot cache or cold (docs/BENCHMARKS.md
 * has the curves).  The root's file system decides (sys_fs_remote); when it
 * cannot be told, the network count is used. */
#define SCAN_THREADS_REMOTE 32
#define SCAN_THREADS_LOCAL 4
/* The most scan threads -j / --scan-threads accept: far past where more
 * requests in flight stop paying off, low enough that the threads' stacks
 * and listing buffers stay a small part of memory. */
#define SCAN_THREADS_MAX 1024

/* The scan's memory for directory listings held at once, when the caller
 * gives none (scan_opts.mem_budget 0): enough for thousands of
 * directories of a maildir in flight, a small part of a server's memory. */
#define SCAN_BUDGET_DEFAULT (24u << 20)

/* Replay's default number of workers: target operations on NFS are round
 * trips, so more threads than cores pay off. */
#define RP_JOBS_DEFAULT 16
/* The most replay workers -j accepts; it also sizes the scheduler's records
 * in flight (4 * RP_JOBS_MAX + 16, replay/journal.c). */
#define RP_JOBS_MAX 256

/* The memory the diff and the report share out among their lists when the
 * user gives no limit (diff_opts, diff_report_opts: mem_limit 0); past it
 * the lists spill to temporary files. */
#define DIFF_MEM_LIMIT_DEFAULT ((size_t)32 << 20)

/* The memory of each of the rebase check's sorters (sync/base.c) before it
 * spills: the check runs beside a pass's other lists, and its items are
 * only the files that may be linked. */
#define REBASE_SORT_MEM (8u << 20)

/* The most leading path components a subtree prefix counts (sync
 * --verify-depth, report --by-depth): deeper than any real mail store, and
 * it keeps the prefixes' table small. */
#define SUBTREE_DEPTH_MAX 64

/* The most passes whose manifests and logs are kept (init --keep, sync
 * --keep, the config's keep), and listed (status -n): each kept pass is two
 * files in the state directory, and more than this is an error of units. */
#define SYNC_KEEP_MAX 100000

/* The most differences listed per kind (verify --examples, report
 * --examples): examples are for reading; the counts are always whole. */
#define EXAMPLES_MAX 1000000

#endif
