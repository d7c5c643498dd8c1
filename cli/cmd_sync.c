/*
 * cmd_sync.c - `cutover sync`: one pass of scan -> diff -> replay over a state
 * directory (sync/sync.c), for cron: silent on success unless -v, one line
 * to syslog (or --log FILE), a non-zero exit and a message on any problem.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "base/limits.h"
#include "replay/replay.h"
#include "sync/sync.h"

static const char usage[] =
	"usage: cutover sync --state DIR [--source SRC --target DST] [-j N] [--keep N]\n"
	"                    [--full] [--check-target] [--rebase] [--log FILE] [--fsync]\n"
	"                    [--max-ops N] [--bwlimit RATE] [--[no-]adaptive]\n"
	"                    [--max-latency DUR]\n"
	"       cutover sync --state DIR --final [--max-age DURATION] [--force]\n"
	"                    [--attr-cache-expired] [--verify-depth N]\n"
	"\n"
	"One pass: scans SRC incrementally against the last manifest in DIR (with the\n"
	"policy recorded by `cutover init`), diffs it against the manifest the target\n"
	"matches, replays the change log onto DST, records the new state and keeps the\n"
	"last N manifests and logs.  The first pass is the initial full copy.  A pass\n"
	"interrupted during replay is resumed by the next one.  Before each pass the\n"
	"target is checked (a stat sample; a scan when in doubt or with --check-target):\n"
	"a target changed outside cutover is refused with the differences named.\n"
	"\n"
	"  --state DIR           the state directory made by `cutover init`\n"
	"  --source, --target    optional: must match the pair recorded in DIR\n"
	"  -j, --jobs N          replay workers (default 16)\n"
	"  --scan-threads N      scanner threads (default: 32 on a network file system,\n"
	"                        4 on a local one; see cutover scan)\n"
	"  --keep N              manifests and logs kept (default: init's, 7)\n"
	"  --full                stat every entry of the source (no directory shortcut)\n"
	"  --check-target        scan the whole target and compare it with its recorded\n"
	"                        manifest before the pass\n"
	"  --rebase              re-base on a fresh scan of the target: copy, delete and\n"
	"                        fix only what differs (after the target was changed by\n"
	"                        hand or restored, or to adopt a copy made by another tool)\n"
	"  --log FILE            append the summary line to FILE instead of syslog\n"
	"  --no-syslog           no summary line at all\n"
	"  --fsync               replay makes each file durable before it counts\n"
	"  --max-ops N           at most N operations a second on SRC, scan and replay\n"
	"                        (default: init's; 0: no limit for this pass)\n"
	"  --bwlimit RATE        at most RATE bytes a second read from SRC (default:\n"
	"                        init's; 0: no limit; k, M, G: 1000, 10^6, 10^9)\n"
	CLI_USAGE_GATE
	"                        (default: init's; --no-adaptive, --max-latency 0: off)\n"
	"  -v                    print the summary line on stdout too\n"
	"final pass (mail services stopped):\n"
	"  --final               refuses unless the last sync finished within --max-age;\n"
	"                        scans with --full unless --attr-cache-expired; after the\n"
	"                        replay verifies the changed subtrees, repairs from the\n"
	"                        source those that differ, verifies them again and prints\n"
	"                        the verdict (PARITY: ... or DIFFERENCES: ...) on stdout\n"
	"  --max-age DURATION    default 24h (s, m, h, d suffixes)\n"
	"  --force               run --final even if the last sync is older\n"
	"  --attr-cache-expired  the NFS attribute cache has expired since writers stopped\n"
	"                        (acdirmax, 60 s by default): trust directory mtimes\n"
	"  --verify-depth N      changed subtrees = first N path components (default 2)\n"
	"\n"
	"exit: 0 done (--final: and parity); 1 --final: differences left after the\n"
	"repair; 2 error (nothing more done; message says what to do); 3 some source\n"
	"paths unreadable or skipped, or --final: the source is still changing; 4 the\n"
	"target is not in the recorded state (see --rebase); 5 target full (free space\n"
	"and rerun); 6 another run holds DIR's lock; 7 late writes: a switched subtree\n"
	"changed on the source (see cutover switch); 64 usage.  The last line on stderr\n"
	"names the command that fixes a non-zero exit.\n";

/* The same line `status` shows of a running pass (sync/progress.c). */
static void show_progress(const sync_running *r, void *arg)
{
	(void)arg;
	char line[256];
	sync_running_line(r, line, sizeof line);
	cli_progress("%s", line);
}

static int parse_duration(const char *s, int64_t *out)
{
	char *end;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (errno || end == s || v < 0)
		return -1;
	long long mul = 1;
	if (*end == 's')
		end++;
	else if (*end == 'm')
		mul = 60, end++;
	else if (*end == 'h')
		mul = 3600, end++;
	else if (*end == 'd')
		mul = 86400, end++;
	if (*end || v > INT64_MAX / mul)
		return -1;
	*out = v * mul;
	return 0;
}

enum { O_STATE = 256, O_SOURCE, O_TARGET, O_FINAL, O_KEEP, O_FULL, O_CHECK, O_REBASE, O_LOG,
       O_NOSYSLOG, O_FSYNC, O_MAXAGE, O_FORCE, O_ATTR, O_VDEPTH, O_SCANTH, O_MAXOPS, O_BWLIMIT,
       O_ADAPTIVE, O_NOADAPTIVE, O_MAXLAT };
static const struct option lo[] = {
	{"state", required_argument, NULL, O_STATE},
	{"source", required_argument, NULL, O_SOURCE},
	{"target", required_argument, NULL, O_TARGET},
	{"final", no_argument, NULL, O_FINAL},
	{"keep", required_argument, NULL, O_KEEP},
	{"jobs", required_argument, NULL, 'j'},
	{"scan-threads", required_argument, NULL, O_SCANTH},
	{"full", no_argument, NULL, O_FULL},
	{"check-target", no_argument, NULL, O_CHECK},
	{"rebase", no_argument, NULL, O_REBASE},
	{"log", required_argument, NULL, O_LOG},
	{"no-syslog", no_argument, NULL, O_NOSYSLOG},
	{"fsync", no_argument, NULL, O_FSYNC},
	{"max-age", required_argument, NULL, O_MAXAGE},
	{"force", no_argument, NULL, O_FORCE},
	{"attr-cache-expired", no_argument, NULL, O_ATTR},
	{"verify-depth", required_argument, NULL, O_VDEPTH},
	{"verbose", no_argument, NULL, 'v'},
	{"max-ops", required_argument, NULL, O_MAXOPS},
	{"bwlimit", required_argument, NULL, O_BWLIMIT},
	{"adaptive", no_argument, NULL, O_ADAPTIVE},
	{"no-adaptive", no_argument, NULL, O_NOADAPTIVE},
	{"max-latency", required_argument, NULL, O_MAXLAT},
	{NULL, 0, NULL, 0}};

/* Where the summary line goes (cli_log_line). */
typedef struct summary_to {
	const char *log_file;
	bool no_syslog;
} summary_to;

/* A count option (--keep, -j, --scan-threads, --verify-depth) or a limit
 * (--max-ops, --bwlimit) into o.  0, or -1 (said on stderr). */
static int parse_number(int ch, const char *arg, sync_opts *o)
{
	if (ch == O_MAXOPS || ch == O_BWLIMIT) {
		if (cli_parse_count("sync", ch == O_MAXOPS ? "--max-ops" : "--bwlimit", arg, 0, INT64_MAX,
				    ch == O_MAXOPS ? &o->max_ops : &o->bwlimit) < 0)
			return -1;
		*(ch == O_MAXOPS ? &o->has_max_ops : &o->has_bwlimit) = true;
		return 0;
	}
	uint64_t v;
	switch (ch) {
	case O_KEEP:
		if (cli_parse_count("sync", "--keep", arg, 1, SYNC_KEEP_MAX, &v) < 0)
			return -1;
		o->keep = (unsigned)v;
		break;
	case 'j':
		if (cli_parse_count("sync", "-j", arg, 1, RP_JOBS_MAX, &v) < 0)
			return -1;
		o->jobs = (unsigned)v;
		break;
	case O_SCANTH:
		if (cli_parse_count("sync", "--scan-threads", arg, 1, SCAN_THREADS_MAX, &v) < 0)
			return -1;
		o->scan_threads = (int)v;
		break;
	default: /* O_VDEPTH */
		if (cli_parse_count("sync", "--verify-depth", arg, 1, SUBTREE_DEPTH_MAX, &v) < 0)
			return -1;
		o->verify_depth = (unsigned)v;
	}
	return 0;
}

/* One option of getopt_long into o or to.  0, or -1 (a usage error, said
 * on stderr unless getopt said it). */
static int parse_opt(int ch, const char *arg, sync_opts *o, summary_to *to)
{
	switch (ch) {
	case O_STATE: o->dir = arg; break;
	case O_SOURCE: o->source = arg; break;
	case O_TARGET: o->target = arg; break;
	case O_FINAL: o->final = true; break;
	case O_FULL: o->full = true; break;
	case O_CHECK: o->check_target = true; break;
	case O_REBASE: o->rebase = true; break;
	case O_LOG: to->log_file = arg; break;
	case O_NOSYSLOG: to->no_syslog = true; break;
	case O_FSYNC: o->fsync = true; break;
	case O_FORCE: o->force = true; break;
	case O_ATTR: o->attr_cache_expired = true; break;
	case O_ADAPTIVE:
	case O_NOADAPTIVE:
		o->has_adaptive = true;
		o->adaptive = ch == O_ADAPTIVE;
		break;
	case O_MAXLAT:
		if (cli_parse_latency(arg, &o->max_latency_ns) < 0) {
			fprintf(stderr, "cutover: sync: bad --max-latency '%s' (e.g. 2ms, 500us)\n", arg);
			return -1;
		}
		o->has_max_latency = true;
		break;
	case 'v': cut_verbosity++; break;
	case O_KEEP:
	case 'j':
	case O_SCANTH:
	case O_VDEPTH:
	case O_MAXOPS:
	case O_BWLIMIT:
		return parse_number(ch, arg, o);
	case O_MAXAGE:
		if (parse_duration(arg, &o->max_age_s) < 0) {
			fprintf(stderr, "cutover: sync: bad --max-age '%s' (e.g. 24h, 90m, 3600)\n", arg);
			return -1;
		}
		break;
	default: return -1;
	}
	return 0;
}

/* The command line into o and to.  0, or -1 (a usage error, said on
 * stderr). */
static int parse_args(int argc, char **argv, sync_opts *o, summary_to *to)
{
	int ch;
	while ((ch = getopt_long(argc, argv, "j:v", lo, NULL)) != -1)
		if (parse_opt(ch, optarg, o, to) < 0)
			return -1;
	if (optind != argc || !o->dir) {
		fprintf(stderr, "cutover: sync: needs --state DIR\n");
		return -1;
	}
	if (o->rebase && o->final) {
		fprintf(stderr, "cutover: sync: --rebase and --final do not go together: rebase first\n");
		return -1;
	}
	return 0;
}

/* Says what the pass did: its summary line to the log or syslog (and
 * stdout with -v), the verdict of --final, the fix of a failure.  The exit
 * code: rc, or CLI_EXIT_ERROR when stdout cannot be written. */
static int report(const sync_opts *o, const sync_result *r, const summary_to *to, int rc)
{
	if (r->message[0])
		cli_log_line(to->log_file, !to->no_syslog, rc, r->message);
	if (cut_verbosity > 0 && r->message[0])
		printf("cutover: %s\n", r->message);
	if (o->final && r->verdict_line[0])
		printf("%s\n", r->verdict_line);
	if (fflush(stdout) != 0 && rc == CLI_EXIT_OK)
		rc = CLI_EXIT_ERROR;
	if (rc != CLI_EXIT_OK && r->fix[0])
		cli_fix("%s", r->fix);
	return rc;
}

static int run(int argc, char **argv)
{
	sync_opts o = {.max_age_s = 24 * 3600};
	summary_to to = {0};
	if (parse_args(argc, argv, &o, &to) < 0)
		return cli_usage(&cmd_sync);
	if (cli_progress_enabled())
		o.progress = show_progress;
	o.exit_code = cli_exit_code;
	sync_result r;
	int rc = cli_exit_code(sync_run(&o, &r));
	cli_progress_done();
	return report(&o, &r, &to, rc);
}

const cli_cmd cmd_sync = {"sync", "one pass of scan, diff and replay over a state directory (cron)",
			  usage, run};
