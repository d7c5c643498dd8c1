/*
 * cmd_scan.c - `cutover scan`: builds a manifest of a tree (scanner/).
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "cli/cli.h"
#include "base/limits.h"
#include "base/budget.h"
#include "scanner/scan.h"

static const char usage[] =
	"usage: cutover scan ROOT -o OUT [-j THREADS] [--hash none|changed|all]\n"
	"                    [--exclude GLOB]... [--one-file-system]\n"
	"                    [--prev OLD [--maildir] [--immutable GLOB]... [--full]\n"
	"                     [--granularity NS]] [--max-ops N] [--bwlimit RATE] [--mem BYTES]\n"
	"                    [--adaptive] [--max-latency DUR]\n"
	"\n"
	"Writes the manifest of ROOT to OUT (written under a temporary name and\n"
	"renamed when complete).\n"
	"  -j N               threads (default: 32 on a network file system such as NFS,\n"
	"                     SMB or FUSE, where requests in flight hide the latency;\n"
	"                     4 on a local one, where more only take turns on the cores)\n"
	"  --hash MODE        none (default), all files, or only new and changed files\n"
	"                     (needs --prev; unchanged files keep the previous hash)\n"
	"  --exclude GLOB     leave out matching entries: a glob without '/' matches\n"
	"                     names, one with '/' the relative path\n"
	"  --one-file-system  do not descend into other file systems\n"
	"  --prev OLD         incremental scan against the previous manifest of ROOT\n"
	"  --maildir          policy: messages under cur/ and new/ never change in place;\n"
	"                     leaves out tmp/ contents and *.lock files\n"
	"  --immutable GLOB   policy: matching files never change in place\n"
	"  --full             stat everything (no directory shortcut); hashes still carry\n"
	"  --granularity NS   timestamps within NS of the previous scan's start are not\n"
	"                     trusted (default 2000000000: whole-second file systems plus\n"
	"                     clock skew)\n"
	"  --max-ops N        at most N operations a second on ROOT (stat, lookup, open,\n"
	"                     directory batch, read), all threads together; 0: no limit\n"
	"  --bwlimit RATE     at most RATE bytes a second read from ROOT (hashing); k, M, G\n"
	"                     are 1000, 10^6, 10^9\n"
	CLI_USAGE_GATE
	"  --mem BYTES        directory listings buffered ahead of the writer (default\n"
	"                     24M; K, M, G are KiB, MiB, GiB); the scan's memory follows\n"
	"Exit: 0 complete, 3 written but some paths unreadable (listed), 2 error, 64 usage.\n";

static void progress(const scan_progress *p, void *arg)
{
	(void)arg;
	char b[32];
	double s = cut_secs(p->elapsed_ns);
	char src[160];
	cli_source_part(src, sizeof src);
	cli_progress("scan: %" PRIu64 " entries  %s  %.0f entries/s  %" PRIu64 " dirs pending%s",
		     p->entries, cut_bytes_human(b, p->bytes), s > 0 ? (double)p->entries / s : 0.0,
		     p->dirs_pending, src);
}

static const struct option opts[] = {
	{"output", required_argument, NULL, 'o'},
	{"threads", required_argument, NULL, 'j'},
	{"hash", required_argument, NULL, 'H'},
	{"exclude", required_argument, NULL, 'x'},
	{"one-file-system", no_argument, NULL, 'X'},
	{"prev", required_argument, NULL, 'p'},
	{"maildir", no_argument, NULL, 'm'},
	{"immutable", required_argument, NULL, 'i'},
	{"full", no_argument, NULL, 'F'},
	{"granularity", required_argument, NULL, 'g'},
	{"mem", required_argument, NULL, 'M'},
	{"max-ops", required_argument, NULL, 'O'},
	{"bwlimit", required_argument, NULL, 'B'},
	{"adaptive", no_argument, NULL, 'A'},
	{"max-latency", required_argument, NULL, 'L'},
	{NULL, 0, NULL, 0},
};

/* What the command line says: the scan's options, the globs they point
 * to (argc each: never more), and the source's limits (base/budget.h). */
typedef struct scan_args {
	scan_opts o;
	const char **ex, **im;
	uint64_t max_ops, bwlimit;
	bool adaptive;
	int64_t max_latency;
} scan_args;

/* --hash MODE into o.  0, or -1 for an unknown mode. */
static int parse_hash(const char *arg, scan_opts *o)
{
	if (strcmp(arg, "none") == 0)
		o->hash = SCAN_HASH_NONE;
	else if (strcmp(arg, "all") == 0)
		o->hash = SCAN_HASH_ALL;
	else if (strcmp(arg, "changed") == 0)
		o->hash = SCAN_HASH_CHANGED;
	else
		return -1;
	return 0;
}

/* One option of getopt_long into a.  0, or -1 (a usage error). */
static int parse_opt(int c, const char *arg, scan_args *a)
{
	scan_opts *o = &a->o;
	uint64_t v;
	switch (c) {
	case 'o': o->out = arg; break;
	case 'j':
		if (cli_parse_count("scan", "-j", arg, 1, SCAN_THREADS_MAX, &v) < 0)
			return -1;
		o->threads = (int)v;
		break;
	case 'H': return parse_hash(arg, o);
	case 'x': a->ex[o->nexcludes++] = arg; break;
	case 'X': o->one_fs = true; break;
	case 'p': o->prev = arg; break;
	case 'm': o->maildir = true; break;
	case 'i': a->im[o->nimmutable++] = arg; break;
	case 'F': o->full = true; break;
	case 'g':
		if (cli_parse_count("scan", "--granularity", arg, 0, INT64_MAX, &v) < 0)
			return -1;
		o->granularity_ns = (int64_t)v;
		break;
	case 'M':
		if (cli_parse_mem(arg, &v) < 0 || v < 1 || v > SIZE_MAX)
			return -1;
		o->mem_budget = (size_t)v;
		break;
	case 'O':
	case 'B':
		return cli_parse_count("scan", c == 'O' ? "--max-ops" : "--bwlimit", arg, 0, INT64_MAX,
				       c == 'O' ? &a->max_ops : &a->bwlimit);
	case 'A': a->adaptive = true; break;
	case 'L': return cli_parse_latency(arg, &a->max_latency);
	default: return -1;
	}
	return 0;
}

/* The command line into a.  0, or -1 (a usage error). */
static int parse_args(int argc, char **argv, scan_args *a)
{
	int c;
	while ((c = getopt_long(argc, argv, "o:j:x:", opts, NULL)) != -1)
		if (parse_opt(c, optarg, a) < 0)
			return -1;
	if (optind != argc - 1 || !a->o.out)
		return -1;
	if (a->o.hash == SCAN_HASH_CHANGED && !a->o.prev) {
		fprintf(stderr, "cutover: scan: --hash changed needs --prev\n");
		return -1;
	}
	/* --maildir, --immutable and --full without --prev: the policy is
	 * recorded so that the next incremental scan can use it; on a first
	 * scan it only leaves out tmp/ and locks. */
	a->o.root = argv[optind];
	return 0;
}

/* The summary of a finished scan on stderr (not with -q). */
static void summary(const scan_stats *st, const uint8_t id[FMT_ID_LEN], double secs)
{
	if (!cli_quiet) {
		char b[32], hex[2 * FMT_ID_LEN + 1];
		cut_hex(hex, id, FMT_ID_LEN);
		fprintf(stderr,
			"cutover: scan: %" PRIu64 " entries (%" PRIu64 " files, %" PRIu64
			" dirs, %s) in %.2fs, %.0f entries/s, %d threads; listed %" PRIu64 " dirs, skipped %" PRIu64
			", %" PRIu64 " stats, %" PRIu64 " carried, %" PRIu64 " blocks copied, %" PRIu64
			" hashed, %" PRIu64 " vanished, %" PRIu64 " errors; id %.16s\n",
			st->entries, st->files, st->dirs, cut_bytes_human(b, st->bytes), secs,
			secs > 0 ? (double)st->entries / secs : 0.0, st->threads, st->listed, st->skipped_dirs,
			st->stats, st->carried, st->copied_blocks, st->hashed, st->vanished, st->errors, hex);
		cli_source_summary("scan");
	}
	if (st->retried && !cli_quiet)
		fprintf(stderr, "cutover: scan: %" PRIu64 " stats or opens answered ESTALE (a stale NFS "
			"handle) and were made again\n", st->retried);
}

/* Runs the scan of a.o.  The exit code. */
static int scan(scan_args *a)
{
	if (cli_progress_enabled())
		a->o.progress = progress;
	scan_stats st;
	uint8_t id[FMT_ID_LEN];
	budget_source_set(a->max_ops, a->bwlimit, a->adaptive, a->max_latency);
	cli_source_begin();
	int64_t t0 = cut_mono_ns();
	int r = scan_run(&a->o, &st, id);
	cli_progress_done();
	if (r < 0)
		return CLI_EXIT_ERROR;
	summary(&st, id, cut_secs(cut_mono_ns() - t0));
	if (r == 0)
		return CLI_EXIT_OK;
	fprintf(stderr, "cutover: scan: incomplete: %" PRIu64
			" paths could not be read (see above); the manifest records them as missing (a "
			"file it could not read to hash: without a hash)\n",
		st.errors);
	return CLI_EXIT_INCOMPLETE;
}

static int run(int argc, char **argv)
{
	scan_args a = {.ex = cut_calloc((size_t)argc, sizeof *a.ex),
		       .im = cut_calloc((size_t)argc, sizeof *a.im)};
	a.o.excludes = a.ex;
	a.o.immutable = a.im;
	int rc = parse_args(argc, argv, &a) < 0 ? cli_usage(&cmd_scan) : scan(&a);
	free(a.ex);
	free(a.im);
	return rc;
}

const cli_cmd cmd_scan = {"scan", "build the manifest of a tree (full or incremental)", usage, run};
