/*
 * cmd_report.c - `cutover report`: command line of diff/report.c.
 */
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "cli/cli.h"
#include "base/limits.h"
#include "diff/report.h"

static const char usage[] =
	"usage: cutover report A B [--json] [--ignore FIELD,...] [--mtime-granularity NS]\n"
	"                          [--by-depth N] [--examples N] [--mem-limit BYTES]\n"
	"A parity audit of two manifests (typically the source and a scan of the target):\n"
	"entries missing from B, extra in B, differing in content, differing only in\n"
	"metadata, and paths whose hard-link structure differs; overall and per group.\n"
	"  --json                  one JSON object on stdout, for monitoring\n"
	"  --ignore FIELD,...      also ignore these fields: type size hash target mode uid\n"
	"                          gid owner mtime dir-mtime nlink links ctime ino dev rdev\n"
	"                          atime (ctime, ino, dev, nlink, atime are always ignored;\n"
	"                          link structure is compared instead of nlink)\n"
	"  --compare FIELD,...     compare a field that is ignored by default (e.g. nlink)\n"
	"  --mtime-granularity NS  times are equal when truncated to NS nanoseconds\n"
	"                          (1000000000 for a target that keeps whole seconds)\n"
	"  --by-depth N            counts per group of the first N path components\n"
	"                          (2 = domain/user of a mail store)\n"
	"  --examples N            first differences listed per kind (default 10)\n"
	"  --mem-limit BYTES       memory for the link-structure and group lists before\n"
	"                          they spill to temporary files (default 32M; K/M/G are\n"
	"                          KiB/MiB/GiB)\n"
	"  --tmpdir DIR            where spilled lists go (default $TMPDIR or /tmp)\n"
	"exit: 0 parity, 1 differ, 2 error, 64 usage\n";

static int run(int argc, char **argv)
{
	static const struct option lo[] = {
		{"json", no_argument, NULL, 'j'},
		{"ignore", required_argument, NULL, 'i'},
		{"compare", required_argument, NULL, 'c'},
		{"mtime-granularity", required_argument, NULL, 'g'},
		{"by-depth", required_argument, NULL, 'd'},
		{"examples", required_argument, NULL, 'e'},
		{"mem-limit", required_argument, NULL, 'M'},
		{"tmpdir", required_argument, NULL, 'T'},
		{NULL, 0, NULL, 0}};
	diff_report_opts o = {.ignore = RF_DEFAULT_IGNORE, .max_examples = 10, .out = stdout};
	int c;
	uint64_t v;
	while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (c) {
		case 'j': o.json = true; break;
		case 'i':
			if (diff_report_parse_fields(optarg, &o.ignore) < 0)
				return cli_usage(&cmd_report);
			break;
		case 'c': {
			unsigned m = 0;
			if (diff_report_parse_fields(optarg, &m) < 0)
				return cli_usage(&cmd_report);
			o.ignore &= ~m;
			break;
		}
		case 'g':
			if (cli_parse_count("report", "--mtime-granularity", optarg, 0, INT64_MAX, &v) < 0)
				return cli_usage(&cmd_report);
			o.mtime_gran_ns = (int64_t)v;
			break;
		case 'd':
			if (cli_parse_count("report", "--by-depth", optarg, 0, SUBTREE_DEPTH_MAX, &v) < 0)
				return cli_usage(&cmd_report);
			o.by_depth = (unsigned)v;
			break;
		case 'e':
			if (cli_parse_count("report", "--examples", optarg, 0, EXAMPLES_MAX, &v) < 0)
				return cli_usage(&cmd_report);
			o.max_examples = (unsigned)v;
			break;
		case 'M':
			if (cli_parse_mem(optarg, &v) < 0 || v == 0 || v > SIZE_MAX) {
				fprintf(stderr, "cutover: report: bad --mem-limit '%s'\n", optarg);
				return cli_usage(&cmd_report);
			}
			o.mem_limit = (size_t)v;
			break;
		case 'T': o.tmpdir = optarg; break;
		default: return cli_usage(&cmd_report);
		}
	}
	if (argc - optind != 2)
		return cli_usage(&cmd_report);
	o.a = argv[optind];
	o.b = argv[optind + 1];
	int rc = diff_report(&o);
	if (fflush(stdout) != 0)
		return CLI_EXIT_ERROR;
	if (rc > 0)
		cli_fix("`cutover diff %s %s -o LOG` writes what turns B's tree into A's, and `cutover "
			"replay LOG --source A_ROOT --target B_ROOT` applies it (`cutover show FILE | head -2` "
			"names a manifest's root)", o.b, o.a);
	return rc < 0 ? CLI_EXIT_ERROR : rc ? CLI_EXIT_DIFFER : CLI_EXIT_OK;
}

const cli_cmd cmd_report = {"report", "parity audit of two manifests (exit 1 if they differ)", usage,
			    run};
