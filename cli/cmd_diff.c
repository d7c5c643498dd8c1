/*
 * cmd_diff.c - `cutover diff`: command line of diff/diff.c.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "diff/diff.h"

static const char usage[] =
	"usage: cutover diff [options] OLD NEW -o CHANGES\n"
	"       cutover diff [options] --from-empty NEW -o CHANGES\n"
	"Writes the change log that turns a tree in the state of manifest OLD into\n"
	"the state of manifest NEW (replay applies it in one pass).\n"
	"  -o, --output FILE      the change log to write (required)\n"
	"      --from-empty       OLD is an empty tree: the initial full copy\n"
	"      --force            accept manifests of different roots, and a NEW scan\n"
	"                         that could not read some paths (they would be deleted)\n"
	"      --mem-limit BYTES  memory for the change lists before they spill to\n"
	"                         temporary files (default 32M; K/M/G are KiB/MiB/GiB)\n"
	"      --tmpdir DIR       where spilled lists go (default $TMPDIR or /tmp)\n"
	"  -q                     no summary line on stderr\n"
	"exit: 0 written, 2 bad or corrupt input or I/O error, 64 usage\n";

static int run(int argc, char **argv)
{
	static const struct option lo[] = {
		{"output", required_argument, NULL, 'o'}, {"from-empty", no_argument, NULL, 'E'},
		{"force", no_argument, NULL, 'F'},        {"mem-limit", required_argument, NULL, 'M'},
		{"tmpdir", required_argument, NULL, 'T'}, {"quiet", no_argument, NULL, 'q'},
		{NULL, 0, NULL, 0}};
	diff_opts o = {0};
	bool empty = false;
	int c;
	while ((c = getopt_long(argc, argv, "o:q", lo, NULL)) != -1) {
		switch (c) {
		case 'o': o.out_path = optarg; break;
		case 'E': empty = true; break;
		case 'F': o.force = true; break;
		case 'T': o.tmpdir = optarg; break;
		case 'q': cli_quiet = true; break;
		case 'M': {
			uint64_t v;
			if (cli_parse_mem(optarg, &v) < 0 || v == 0 || v > SIZE_MAX) {
				fprintf(stderr, "cutover: diff: bad --mem-limit '%s'\n", optarg);
				return cli_usage(&cmd_diff);
			}
			o.mem_limit = (size_t)v;
			break;
		}
		default: return cli_usage(&cmd_diff);
		}
	}
	int nargs = argc - optind;
	if (!o.out_path || nargs != (empty ? 1 : 2))
		return cli_usage(&cmd_diff);
	o.old_path = empty ? NULL : argv[optind];
	o.new_path = argv[optind + (empty ? 0 : 1)];
	diff_stats st;
	int64_t t0 = cut_mono_ns();
	if (diff_run(&o, &st) < 0)
		return CLI_EXIT_ERROR;
	if (!cli_quiet) {
		double secs = cut_secs(cut_mono_ns() - t0);
		char line[1024], b[32];
		size_t n = 0;
		n += (size_t)snprintf(line + n, sizeof line - n, "diff: %llu ops",
				      (unsigned long long)st.records);
		for (int i = 1; i <= FMT_OP_MAX; i++) {
			if (!st.ops[i])
				continue;
			n += (size_t)snprintf(line + n, sizeof line - n, ", %s %llu", fmt_op_name((unsigned)i),
					      (unsigned long long)st.ops[i]);
			if (st.bytes[i] && n < sizeof line)
				n += (size_t)snprintf(line + n, sizeof line - n, " (%s)", cut_bytes_human(b, st.bytes[i]));
			if (n >= sizeof line)
				break;
		}
		fprintf(stderr, "%s; %llu+%llu entries in %.2fs, %llu equal block pairs skipped (%llu joined: link candidates)\n",
			line, (unsigned long long)st.old_entries, (unsigned long long)st.new_entries, secs,
			(unsigned long long)st.skipped_blocks, (unsigned long long)st.joined_pairs);
		if (cut_verbosity > 0)
			fprintf(stderr,
				"diff: %llu directory renames, %llu file renames (%llu through a temporary "
				"name), %llu links; %llu passes, %u spilled runs, list memory peak %s%s\n",
				(unsigned long long)st.dir_renames, (unsigned long long)st.file_renames,
				(unsigned long long)st.evacuations, (unsigned long long)st.links,
				(unsigned long long)st.passes, st.spilled_runs, cut_bytes_human(b, st.peak_list_mem),
				st.dir_lists_dropped ? "; too many directories created and deleted for "
						       "--mem-limit: directory renames not looked for"
						     : "");
	}
	return CLI_EXIT_OK;
}

const cli_cmd cmd_diff = {"diff", "change log from two manifests (OLD -> NEW)", usage, run};
