/*
 * cmd_init.c - `cutover init`: records a source/target pair and its scan
 * policy in a state directory (sync/state.c) once; sync, status and verify
 * read them from there.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "base/limits.h"
#include "sync/sync.h"

static const char usage[] =
	"usage: cutover init --source SRC --target DST --state DIR [--maildir]\n"
	"                    [--immutable GLOB]... [--exclude GLOB]... [--one-file-system]\n"
	"                    [--keep N] [--max-ops N] [--bwlimit RATE] [--adaptive]\n"
	"                    [--max-latency DUR] [--force]\n"
	"\n"
	"Creates the state directory DIR for copying SRC to DST with `cutover sync`,\n"
	"and records the pair and the scan policy there.  Nothing is copied yet.\n"
	"  --source SRC        the live tree (must exist)\n"
	"  --target DST        the copy (created by the first sync; must then be empty\n"
	"                      or absent, else use `sync --rebase` to adopt it)\n"
	"  --state DIR         the state directory (outside SRC and DST; local disk)\n"
	"  --maildir           policy: messages in cur/ and new/ never change in place;\n"
	"                      tmp/ contents and *.lock files are not copied\n"
	"  --immutable GLOB    policy: matching files never change in place\n"
	"  --exclude GLOB      never copy matching entries\n"
	"  --one-file-system   do not descend into other file systems\n"
	"  --keep N            manifests and change logs kept in DIR (default 7)\n"
	"  --max-ops N         sync's default limit of operations a second on SRC (stat,\n"
	"                      lookup, open, directory batch, read); each sync may\n"
	"                      override it; 0 (default): no limit\n"
	"  --bwlimit RATE      sync's default limit of bytes a second read from SRC\n"
	"                      (k, M, G: 1000, 10^6, 10^9); 0 (default): no limit\n"
	"  --adaptive          sync's default: hold back when SRC's latency rises above\n"
	"                      twice its unloaded latency (each sync may override it)\n"
	"  --max-latency DUR   sync's default: hold back when SRC's median latency passes\n"
	"                      DUR (2ms, 500us); 0 (default): none\n"
	"  --force             rewrite the config of an existing DIR\n"
	"exit: 0 done, 2 error, 64 usage\n";

static int run(int argc, char **argv)
{
	enum { O_SOURCE = 256, O_TARGET, O_STATE, O_MAILDIR, O_IMM, O_EXCL, O_ONEFS, O_KEEP, O_FORCE,
	       O_MAXOPS, O_BWLIMIT, O_ADAPTIVE, O_MAXLAT };
	static const struct option lo[] = {
		{"source", required_argument, NULL, O_SOURCE}, {"target", required_argument, NULL, O_TARGET},
		{"state", required_argument, NULL, O_STATE},   {"maildir", no_argument, NULL, O_MAILDIR},
		{"immutable", required_argument, NULL, O_IMM}, {"exclude", required_argument, NULL, O_EXCL},
		{"one-file-system", no_argument, NULL, O_ONEFS}, {"keep", required_argument, NULL, O_KEEP},
		{"force", no_argument, NULL, O_FORCE},         {"max-ops", required_argument, NULL, O_MAXOPS},
		{"bwlimit", required_argument, NULL, O_BWLIMIT}, {"adaptive", no_argument, NULL, O_ADAPTIVE},
		{"max-latency", required_argument, NULL, O_MAXLAT}, {NULL, 0, NULL, 0}};
	sync_config c = {.keep = SYNC_KEEP_DEFAULT};
	const char *dir = NULL;
	bool force = false;
	int ch;
	uint64_t v;
	while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (ch) {
		case O_SOURCE: c.source = optarg; break;
		case O_TARGET: c.target = optarg; break;
		case O_STATE: dir = optarg; break;
		case O_MAILDIR: c.maildir = true; break;
		case O_ONEFS: c.one_fs = true; break;
		case O_FORCE: force = true; break;
		case O_ADAPTIVE: c.adaptive = true; break;
		case O_MAXLAT:
			if (cli_parse_latency(optarg, &c.max_latency_ns) < 0) {
				fprintf(stderr, "cutover: init: bad --max-latency '%s' (e.g. 2ms, 500us)\n", optarg);
				return cli_usage(&cmd_init);
			}
			break;
		case O_IMM:
		case O_EXCL: {
			size_t *n = ch == O_IMM ? &c.nimmutable : &c.nexcludes;
			if (*n >= SYNC_MAX_GLOBS || strchr(optarg, '\n')) {
				fprintf(stderr, "cutover: init: too many globs, or a newline in one\n");
				return cli_usage(&cmd_init);
			}
			(ch == O_IMM ? c.immutable : c.excludes)[(*n)++] = optarg;
			break;
		}
		case O_KEEP:
			if (cli_parse_count("init", "--keep", optarg, 1, SYNC_KEEP_MAX, &v) < 0)
				return cli_usage(&cmd_init);
			c.keep = (unsigned)v;
			break;
		case O_MAXOPS:
		case O_BWLIMIT:
			if (cli_parse_count("init", ch == O_MAXOPS ? "--max-ops" : "--bwlimit", optarg, 0, INT64_MAX,
					    ch == O_MAXOPS ? &c.max_ops : &c.bwlimit) < 0)
				return cli_usage(&cmd_init);
			break;
		default: return cli_usage(&cmd_init);
		}
	}
	if (optind != argc || !c.source || !c.target || !dir) {
		fprintf(stderr, "cutover: init: needs --source, --target and --state\n");
		return cli_usage(&cmd_init);
	}
	char fix[512] = "";
	int rc = cli_exit_code(sync_init(dir, &c, force, fix, sizeof fix));
	if (rc != CLI_EXIT_OK && fix[0])
		cli_fix("%s", fix);
	if (rc == CLI_EXIT_OK && cut_verbosity > 0)
		printf("cutover: init: %s ready for %s -> %s\n", dir, c.source, c.target);
	return rc;
}

const cli_cmd cmd_init = {"init", "record a source/target pair and its policy in a state directory",
			  usage, run};
