/*
 * cmd_replay.c - `cutover replay`: options, progress line and summary around
 * rp_run (replay/replay.h).
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "base/limits.h"
#include "base/budget.h"
#include "format/path.h"
#include "replay/replay.h"

static const char usage[] =
	"usage: cutover replay CHANGES --source SRC --target DST [-j N] [--dry-run] [--fsync]\n"
	"                      [--on-conflict stop|overwrite|skip] [--journal FILE]\n"
	"                      [--max-ops N] [--bwlimit RATE] [--adaptive] [--max-latency DUR]\n"
	"                      [--maildir]\n"
	"\n"
	"Applies the change log CHANGES (from `cutover diff`) to DST, copying file\n"
	"contents from SRC.  Every file is written under a temporary name\n"
	"(" FMT_RESERVED_REPLAY "<hex>) in its directory and renamed into place; renames move;\n"
	"hard links are linked.  Killed at any point, the same command resumes.\n"
	"\n"
	"  --source SRC          the tree the log was made from (contents are read here)\n"
	"  --target DST          the tree to change (created when absent)\n"
	"  -j, --jobs N          parallel workers (default 16, suits an NFS target)\n"
	"  -n, --dry-run         validate the log, print what would be applied; change nothing\n"
	"  --fsync               make each file and its directory durable before it counts\n"
	"                        as done (survives power loss, slower)\n"
	"  --on-conflict MODE    when DST is not as the log expects: stop (default, exit 4),\n"
	"                        skip (leave it, exit 3) or overwrite (replace non-directories)\n"
	"  --journal FILE        progress journal (default: DST.cutover-journal beside DST)\n"
	"  --max-ops N           at most N operations a second on SRC (stat, lookup, open,\n"
	"                        read), all workers together; 0: no limit\n"
	"  --bwlimit RATE        at most RATE bytes a second read from SRC; k, M, G are\n"
	"                        1000, 10^6, 10^9 (50M: 50 MB/s)\n"
	CLI_USAGE_GATE
	"  --maildir             the log is of --maildir scans: a directory it removes goes\n"
	"                        with the transients they leave out (files in tmp/, *.lock)\n"
	"\n"
	"exit: 0 done; 2 bad or corrupt log, another log's unfinished journal, I/O error;\n"
	"3 done but something drifted, vanished or was skipped (listed on stderr; the next\n"
	"pass reconciles it); 4 stopped at a conflict; 5 target full (free space, rerun);\n"
	"6 another replay holds the journal; 64 usage.\n";

static void progress(void *ctx, const rp_stats *st)
{
	(void)ctx;
	if (!cli_progress_enabled())
		return;
	double secs = cut_secs(cut_mono_ns() - st->start_ns);
	uint64_t finished = st->done + st->journaled;
	double rate = secs > 0 ? (double)st->bytes_copied / secs : 0;
	char b1[32], b2[32];
	char eta[32] = "";
	if (st->total && finished > st->journaled && finished < st->total) {
		double per = secs / (double)(finished - st->journaled);
		double left = per * (double)(st->total - finished);
		snprintf(eta, sizeof eta, " ETA %.0fs", left);
	}
	char src[160];
	cli_source_part(src, sizeof src);
	cli_progress("replay %llu/%llu ops (%.0f%%) %s at %s/s%s%s", (unsigned long long)finished,
		     (unsigned long long)st->total,
		     st->total ? 100.0 * (double)finished / (double)st->total : 100.0,
		     cut_bytes_human(b1, st->bytes_copied), cut_bytes_human(b2, (uint64_t)rate), eta, src);
}

static void summary(const rp_stats *st, int outcome)
{
	char b[32];
	double secs = cut_secs(cut_mono_ns() - st->start_ns);
	if (st->finished_before) {
		fprintf(stderr, "cutover: replay: this log was already applied; nothing done\n");
		return;
	}
	fprintf(stderr,
		"cutover: replay: %llu created, %llu renamed, %llu linked, %llu updated, "
		"%llu deleted, %llu mkdir, %llu rmdir, %llu symlinks, %llu special, %llu meta; "
		"%s copied in %.1fs\n",
		(unsigned long long)st->created, (unsigned long long)st->renamed,
		(unsigned long long)st->linked, (unsigned long long)st->updated,
		(unsigned long long)st->deleted, (unsigned long long)st->mkdirs,
		(unsigned long long)st->rmdirs, (unsigned long long)st->symlinks,
		(unsigned long long)st->specials, (unsigned long long)st->metas,
		cut_bytes_human(b, st->bytes_copied), secs);
	fprintf(stderr,
		"cutover: replay: %llu already done (journal), %llu already in place, "
		"%llu drifted, %llu vanished, %llu skipped, %llu conflicts "
		"(%llu skipped, %llu overwritten)%s\n",
		(unsigned long long)st->journaled, (unsigned long long)st->noop,
		(unsigned long long)st->drifted, (unsigned long long)st->vanished,
		(unsigned long long)st->skipped, (unsigned long long)st->conflicts,
		(unsigned long long)st->conflicts_skipped,
		(unsigned long long)st->conflicts_overwritten,
		outcome == CUT_CONFLICT  ? "; STOPPED at a conflict"
		: outcome == CUT_NOSPACE ? "; STOPPED: target full, rerun to resume"
		: outcome == CUT_FAILED  ? "; STOPPED by an error"
					 : "");
	if (st->retried)
		fprintf(stderr, "cutover: replay: %llu source lookups answered ESTALE (a stale NFS "
			"handle) and were made again\n", (unsigned long long)st->retried);
	if (st->retried_target)
		fprintf(stderr, "cutover: replay: %llu operations on the target answered ESTALE (a stale "
			"NFS handle) and were made again\n", (unsigned long long)st->retried_target);
	if (st->earlier)
		fprintf(stderr, "cutover: replay: %llu paths drifted, vanished or were skipped in "
			"earlier runs of this log\n", (unsigned long long)st->earlier);
	if (st->racy)
		fprintf(stderr, "cutover: replay: %llu files were copied within %llds of their last "
			"change (racy: a change in the same timestamp tick would look the same); "
			"`cutover sync` copies them again on its next pass\n",
			(unsigned long long)st->racy, RP_RACY_NS / CUT_NS_PER_S);
}

static int run(int argc, char **argv)
{
	enum { O_SOURCE = 256, O_TARGET, O_FSYNC, O_CONFLICT, O_JOURNAL, O_MAXOPS, O_BWLIMIT, O_MAILDIR,
	       O_ADAPTIVE, O_MAXLAT };
	static const struct option longopts[] = {
		{"source", required_argument, NULL, O_SOURCE},
		{"target", required_argument, NULL, O_TARGET},
		{"jobs", required_argument, NULL, 'j'},
		{"dry-run", no_argument, NULL, 'n'},
		{"fsync", no_argument, NULL, O_FSYNC},
		{"on-conflict", required_argument, NULL, O_CONFLICT},
		{"journal", required_argument, NULL, O_JOURNAL},
		{"max-ops", required_argument, NULL, O_MAXOPS},
		{"bwlimit", required_argument, NULL, O_BWLIMIT},
		{"maildir", no_argument, NULL, O_MAILDIR},
		{"adaptive", no_argument, NULL, O_ADAPTIVE},
		{"max-latency", required_argument, NULL, O_MAXLAT},
		{NULL, 0, NULL, 0},
	};
	rp_opts o = {.progress = progress};
	int ch;
	uint64_t v, max_ops = 0, bwlimit = 0;
	bool adaptive = false;
	int64_t max_latency = 0;
	while ((ch = getopt_long(argc, argv, "j:n", longopts, NULL)) != -1) {
		switch (ch) {
		case O_SOURCE: o.source = optarg; break;
		case O_TARGET: o.target = optarg; break;
		case 'j':
			if (cli_parse_count("replay", "-j", optarg, 1, RP_JOBS_MAX, &v) < 0)
				return cli_usage(&cmd_replay);
			o.jobs = (unsigned)v;
			break;
		case 'n': o.dry_run = true; break;
		case O_FSYNC: o.fsync = true; break;
		case O_MAILDIR: o.maildir = true; break;
		case O_CONFLICT:
			if (strcmp(optarg, "stop") == 0)
				o.on_conflict = RP_CONFLICT_STOP;
			else if (strcmp(optarg, "skip") == 0)
				o.on_conflict = RP_CONFLICT_SKIP;
			else if (strcmp(optarg, "overwrite") == 0)
				o.on_conflict = RP_CONFLICT_OVERWRITE;
			else {
				fprintf(stderr, "cutover: replay: --on-conflict wants stop, skip or "
						"overwrite\n");
				return cli_usage(&cmd_replay);
			}
			break;
		case O_JOURNAL: o.journal = optarg; break;
		case O_ADAPTIVE: adaptive = true; break;
		case O_MAXLAT:
			if (cli_parse_latency(optarg, &max_latency) < 0) {
				fprintf(stderr, "cutover: replay: bad --max-latency '%s' (e.g. 2ms, 500us)\n", optarg);
				return cli_usage(&cmd_replay);
			}
			break;
		case O_MAXOPS:
		case O_BWLIMIT:
			if (cli_parse_count("replay", ch == O_MAXOPS ? "--max-ops" : "--bwlimit", optarg, 0,
					    INT64_MAX, ch == O_MAXOPS ? &max_ops : &bwlimit) < 0)
				return cli_usage(&cmd_replay);
			break;
		default: return cli_usage(&cmd_replay);
		}
	}
	if (optind + 1 != argc || !o.source || !o.target) {
		fprintf(stderr, "cutover: replay: needs CHANGES, --source and --target\n");
		return cli_usage(&cmd_replay);
	}
	o.log = argv[optind];
	rp_stats st;
	budget_source_set(max_ops, bwlimit, adaptive, max_latency);
	cli_source_begin();
	int outcome = rp_run(&o, &st);
	cli_progress_done();
	if (!cli_quiet && !o.dry_run && (st.total || st.finished_before) &&
	    (outcome == CUT_OK || outcome == CUT_INCOMPLETE || outcome == CUT_CONFLICT ||
	     outcome == CUT_NOSPACE || outcome == CUT_FAILED)) {
		summary(&st, outcome);
		cli_source_summary("replay");
	}
	return cli_exit_code(outcome);
}

const cli_cmd cmd_replay = {"replay", "apply a change log to the target: atomic, parallel, resumable",
			    usage, run};
