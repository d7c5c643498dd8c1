/*
 * cmd_switch.c - `cutover switch`: a final pass limited to some subtrees
 * (users), after which later passes leave them to the new side
 * (sync/switch.c).
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "base/limits.h"
#include "replay/replay.h"
#include "sync/sync.h"

static const char usage[] =
	"usage: cutover switch --state DIR [--before CMD] [--after CMD] [-j N]\n"
	"                      [--scan-threads N] [--fsync] [--log FILE] [--max-ops N]\n"
	"                      [--bwlimit RATE] [--adaptive] [--max-latency DUR] SUBTREE...\n"
	"       cutover switch --state DIR --from FILE ...\n"
	"       cutover switch --state DIR --ack-late-writes\n"
	"\n"
	"Moves the given subtrees of the source (users: example.org/alice) to the new\n"
	"side while the rest of the store keeps running.  Each is scanned in full on\n"
	"both sides, what differs is copied, deleted or fixed on the target, and both\n"
	"sides are verified (the target in full, the source's directories and control\n"
	"files again); only when all are in parity are they recorded as switched.\n"
	"From then on later `cutover sync` passes leave them alone on the target: a\n"
	"change on the source inside a switched subtree (mail delivered to the old\n"
	"store after the switch) is never replayed over the new side's data but\n"
	"reported as a late write (exit 7 on every pass until acknowledged).\n"
	"\n"
	"  --state DIR        the state directory made by `cutover init`\n"
	"  --from FILE        the subtrees, one per line (- for stdin), besides any given\n"
	"  --before CMD       run by sh first: hold the users' mail (4xx) and end their\n"
	"                     sessions; the switch does not start if it fails\n"
	"  --after CMD        run by sh once they are switched: route the users to the\n"
	"                     new side; not run if the pass failed\n"
	"                     Both get CUTOVER_SUBTREES (one per line), CUTOVER_STATE,\n"
	"                     CUTOVER_SOURCE and CUTOVER_TARGET in the environment.\n"
	"  -j, --jobs N       replay workers (default 16)\n"
	"  --scan-threads N   scanner threads (default as cutover scan)\n"
	"  --fsync            replay makes each file durable before it counts\n"
	"  --log FILE         append the summary line to FILE instead of syslog\n"
	"  --no-syslog        no summary line at all\n"
	"  --max-ops N, --bwlimit RATE\n"
	"                     at most N operations, RATE bytes a second on SRC, instead\n"
	"                     of init's (0: none; as cutover sync)\n"
	"  --adaptive, --max-latency DUR\n"
	"                     hold back when SRC's latency rises (as cutover sync; init's\n"
	"                     limits and gate apply too)\n"
	"  --ack-late-writes  the late writes listed in DIR/late-writes were recovered:\n"
	"                     set the list aside (late-writes.acked.TIME)\n"
	"\n"
	"Prints SWITCHED SUBTREE per subtree and a PARITY line.\n"
	"exit: 0 switched; 1 a subtree still differs after its pass (its source is still\n"
	"written: nothing switched, --after not run); 2 error (also: --before or --after\n"
	"failed); 4 the target is not as expected; 5 target full; 6 locked; 64 usage.\n";

/* Appends the lines of FILE to *v. */
static int read_list(const char *file, char ***v, size_t *n)
{
	FILE *f = strcmp(file, "-") == 0 ? stdin : fopen(file, "r");
	if (!f) {
		CUT_SYSERR("%s: cannot open the list of subtrees", file);
		return -1;
	}
	char *line = NULL;
	size_t cap = 0;
	ssize_t l;
	while ((l = getline(&line, &cap, f)) > 0) {
		while (l > 0 && (line[l - 1] == '\n' || line[l - 1] == '\r'))
			line[--l] = 0;
		if (!l || line[0] == '#')
			continue;
		*v = cut_realloc(*v, cut_size_mul(*n + 1, sizeof **v));
		(*v)[(*n)++] = cut_strndup(line, (size_t)l);
	}
	free(line);
	if (f != stdin)
		fclose(f);
	return 0;
}

enum { O_STATE = 256, O_FROM, O_BEFORE, O_AFTER, O_SCANTH, O_FSYNC, O_LOG, O_NOSYSLOG, O_ACK, O_ADAPTIVE, O_MAXLAT,
       O_MAXOPS, O_BWLIMIT };
static const struct option lo[] = {
	{"state", required_argument, NULL, O_STATE},
	{"from", required_argument, NULL, O_FROM},
	{"before", required_argument, NULL, O_BEFORE},
	{"after", required_argument, NULL, O_AFTER},
	{"jobs", required_argument, NULL, 'j'},
	{"scan-threads", required_argument, NULL, O_SCANTH},
	{"fsync", no_argument, NULL, O_FSYNC},
	{"log", required_argument, NULL, O_LOG},
	{"no-syslog", no_argument, NULL, O_NOSYSLOG},
	{"ack-late-writes", no_argument, NULL, O_ACK},
	{"adaptive", no_argument, NULL, O_ADAPTIVE},
	{"max-latency", required_argument, NULL, O_MAXLAT},
	{"max-ops", required_argument, NULL, O_MAXOPS},
	{"bwlimit", required_argument, NULL, O_BWLIMIT},
	{"verbose", no_argument, NULL, 'v'},
	{NULL, 0, NULL, 0}};

/* The command line: the switch's options, where the summary line goes
 * (cli_log_line), and the subtrees, which run() owns and frees. */
typedef struct switch_args {
	sync_switch_opts o;
	const char *log_file;
	bool no_syslog;
	char **subs;
	size_t n;
} switch_args;

/* A count option (-j, --scan-threads) or a limit (--max-ops, --bwlimit)
 * into o.  0, or -1 (said on stderr). */
static int parse_number(int ch, const char *arg, sync_switch_opts *o)
{
	if (ch == O_MAXOPS || ch == O_BWLIMIT) {
		if (cli_parse_count("switch", ch == O_MAXOPS ? "--max-ops" : "--bwlimit", arg, 0, INT64_MAX,
				    ch == O_MAXOPS ? &o->max_ops : &o->bwlimit) < 0)
			return -1;
		*(ch == O_MAXOPS ? &o->has_max_ops : &o->has_bwlimit) = true;
		return 0;
	}
	uint64_t v;
	if (ch == 'j' ? cli_parse_count("switch", "-j", arg, 1, RP_JOBS_MAX, &v) < 0
		      : cli_parse_count("switch", "--scan-threads", arg, 1, SCAN_THREADS_MAX, &v) < 0)
		return -1;
	if (ch == 'j')
		o->jobs = (unsigned)v;
	else
		o->scan_threads = (int)v;
	return 0;
}

/* One option of getopt_long into a.  CLI_EXIT_OK, CLI_EXIT_USAGE (said on
 * stderr unless getopt said it) or CLI_EXIT_ERROR (the --from list cannot
 * be read; logged). */
static int parse_opt(int ch, const char *arg, switch_args *a)
{
	switch (ch) {
	case O_STATE: a->o.dir = arg; break;
	case O_BEFORE: a->o.before = arg; break;
	case O_AFTER: a->o.after = arg; break;
	case O_FSYNC: a->o.fsync = true; break;
	case O_LOG: a->log_file = arg; break;
	case O_NOSYSLOG: a->no_syslog = true; break;
	case O_ACK: a->o.ack_late = true; break;
	case O_ADAPTIVE: a->o.adaptive = true; break;
	case O_MAXLAT:
		if (cli_parse_latency(arg, &a->o.max_latency_ns) < 0)
			return CLI_EXIT_USAGE;
		break;
	case 'v': cut_verbosity++; break;
	case O_FROM:
		if (read_list(arg, &a->subs, &a->n) < 0)
			return CLI_EXIT_ERROR;
		break;
	case 'j':
	case O_SCANTH:
	case O_MAXOPS:
	case O_BWLIMIT:
		if (parse_number(ch, arg, &a->o) < 0)
			return CLI_EXIT_USAGE;
		break;
	default: return CLI_EXIT_USAGE;
	}
	return CLI_EXIT_OK;
}

/* The command line into a: the options, then the subtrees named after them
 * (added to those of --from).  CLI_EXIT_OK, or as parse_opt. */
static int parse_args(int argc, char **argv, switch_args *a)
{
	int ch, rc;
	while ((ch = getopt_long(argc, argv, "j:v", lo, NULL)) != -1)
		if ((rc = parse_opt(ch, optarg, a)) != CLI_EXIT_OK)
			return rc;
	for (int i = optind; i < argc; i++) {
		a->subs = cut_realloc(a->subs, cut_size_mul(a->n + 1, sizeof *a->subs));
		/* Trailing slashes are a shell's habit, not part of the subtree. */
		a->subs[a->n++] = cut_strndup(argv[i], cut_path_trimmed_len(argv[i]));
	}
	if (!a->o.dir || (!a->n && !a->o.ack_late) || (a->n && a->o.ack_late)) {
		fprintf(stderr, "cutover: switch: needs --state DIR and the subtrees (or --ack-late-writes alone)\n");
		return CLI_EXIT_USAGE;
	}
	return CLI_EXIT_OK;
}

/* Says what the switch did: its summary line to the log or syslog when a
 * switch ran (and stdout with -v), and the PARITY verdict.  The exit code:
 * rc, or CLI_EXIT_ERROR when stdout cannot be written. */
static int report(const switch_args *a, const sync_result *r, int rc)
{
	if (r->h.seq && r->message[0]) /* a switch that ran */
		cli_log_line(a->log_file, !a->no_syslog, rc, r->message);
	if (cut_verbosity > 0 && r->message[0])
		printf("cutover: %s\n", r->message);
	if (r->verdict_line[0])
		printf("%s\n", r->verdict_line);
	if (fflush(stdout) != 0 && rc == CLI_EXIT_OK)
		rc = CLI_EXIT_ERROR;
	return rc;
}

/* Switches the subtrees of a and reports.  The exit code. */
static int do_switch(switch_args *a)
{
	a->o.subtrees = (const char *const *)a->subs;
	a->o.n = a->n;
	a->o.exit_code = cli_exit_code;
	sync_result r;
	int rc = cli_exit_code(sync_switch(&a->o, &r));
	return report(a, &r, rc);
}

static int run(int argc, char **argv)
{
	switch_args a = {.o = {.out = stdout}};
	int rc = parse_args(argc, argv, &a);
	if (rc == CLI_EXIT_USAGE)
		rc = cli_usage(&cmd_switch);
	else if (rc == CLI_EXIT_OK)
		rc = do_switch(&a);
	for (size_t i = 0; i < a.n; i++)
		free(a.subs[i]);
	free(a.subs);
	return rc;
}

const cli_cmd cmd_switch = {"switch", "move some subtrees (users) to the new side; later passes leave them alone",
			    usage, run};
