/*
 * main.c - the cutover program: global options and the subcommand table.
 * This is the only place that exits.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <syslog.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/budget.h"

#include "cli/cli.h"

static const cli_cmd *const commands[] = {
	&cmd_scan, &cmd_show, &cmd_diff, &cmd_report, &cmd_replay,
	&cmd_init, &cmd_sync, &cmd_switch, &cmd_verify, &cmd_status,
};
#define NCOMMANDS (sizeof commands / sizeof commands[0])

bool cli_quiet;

static void main_usage(FILE *f)
{
	fprintf(f, "usage: cutover [-v|-q] COMMAND [ARGS]\n"
		   "       cutover --version | --help | help COMMAND\n\n"
		   "Moves very large live file trees (maildir stores) to new storage:\n"
		   "scan -> diff -> replay, each pass costing what changed.\n\ncommands:\n");
	for (size_t i = 0; i < NCOMMANDS; i++)
		fprintf(f, "  %-8s %s\n", commands[i]->name, commands[i]->summary);
	fprintf(f, "\nexit codes: 0 ok, 1 differences found, 2 error (bad or corrupt input, I/O),\n"
		   "3 incomplete (some paths skipped), 4 replay conflict, 5 target full,\n"
		   "6 locked by another run, 7 late writes after a switch, 64 usage.  After a non-zero exit, the last line on\n"
		   "stderr names the command that fixes it.  See cutover(1).\n");
}

static const cli_cmd *find_cmd(const char *name)
{
	for (size_t i = 0; i < NCOMMANDS; i++)
		if (strcmp(commands[i]->name, name) == 0)
			return commands[i];
	return NULL;
}

int cli_usage(const cli_cmd *cmd)
{
	fprintf(stderr, "%s", cmd->usage);
	return CLI_EXIT_USAGE;
}

bool cli_help_requested(const cli_cmd *cmd, int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--") == 0)
			break;
		if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
			fputs(cmd->usage, stdout);
			return true;
		}
	}
	return false;
}

static int parse_suffixed(const char *s, uint64_t k, uint64_t *out)
{
	char *end;
	errno = 0;
	if (!s || !*s || *s == '-')
		return -1;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || end == s)
		return -1;
	uint64_t mul = 1;
	if (*end == 'k' || *end == 'K')
		mul = k, end++;
	else if (*end == 'M')
		mul = k * k, end++;
	else if (*end == 'G')
		mul = k * k * k, end++;
	if (*end || (mul > 1 && v > UINT64_MAX / mul))
		return -1;
	*out = v * mul;
	return 0;
}

int cli_parse_u64(const char *s, uint64_t *out) { return parse_suffixed(s, 1000, out); }
int cli_parse_mem(const char *s, uint64_t *out) { return parse_suffixed(s, 1024, out); }

int cli_parse_count(const char *cmd, const char *opt, const char *arg, uint64_t lo, uint64_t hi,
		    uint64_t *out)
{
	uint64_t v;
	if (cli_parse_u64(arg, &v) == 0 && v >= lo && v <= hi) {
		*out = v;
		return 0;
	}
	if (hi >= INT64_MAX) /* a limit, from 0 */
		fprintf(stderr, "cutover: %s: %s takes a number (with k, M or G for 10^3, 10^6, 10^9), not '%s'\n",
			cmd, opt, arg);
	else
		fprintf(stderr, "cutover: %s: %s takes %" PRIu64 " to %" PRIu64 ", not '%s'\n", cmd, opt, lo, hi, arg);
	return -1;
}

int cli_parse_latency(const char *s, int64_t *ns)
{
	static const struct { const char *unit; double ns; } units[] = {
		{"us", CUT_NS_PER_US}, {"ms", CUT_NS_PER_MS}, {"s", CUT_NS_PER_S}};
	char *end;
	errno = 0;
	double v = s && *s != '-' ? strtod(s, &end) : -1;
	if (!s || errno || end == s || v < 0)
		return -1;
	if (v == 0 && !*end) {
		*ns = 0;
		return 0;
	}
	for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
		if (strcmp(end, units[i].unit) == 0 && v * units[i].ns < 3.6e12) {
			*ns = (int64_t)(v * units[i].ns);
			return 0;
		}
	}
	return -1;
}

bool cli_progress_enabled(void) { return !cli_quiet && isatty(2); }

void cli_source_part(char *buf, size_t cap)
{
	static budget_snap from, mid, now;
	static bool have;
	budget_snap_take(&budget_source, &now);
	if (!have)
		from = mid = now, have = true;
	if (now.at - mid.at >= 2000000000) /* the window slides by halves */
		from = mid, mid = now;
	budget_view v;
	budget_view_of(&from, &now, &v);
	buf[0] = 0;
	if (v.reqs && cap > 9) {
		memcpy(buf, "; source ", 10);
		budget_view_line(&v, buf + 9, cap - 9);
	}
}

void cli_log_line(const char *log_file, bool use_syslog, int exit_code, const char *line)
{
	if (log_file) {
		FILE *f = fopen(log_file, "a");
		if (!f) {
			CUT_SYSWARN("%s: cannot append the summary line", log_file);
			return;
		}
		char when[64];
		time_t t = time(NULL);
		struct tm tm;
		localtime_r(&t, &tm);
		strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S%z", &tm);
		fprintf(f, "%s cutover[%ld]: %s\n", when, (long)getpid(), line);
		fclose(f);
	} else if (use_syslog) {
		openlog("cutover", LOG_PID, LOG_DAEMON);
		syslog(exit_code == 0 ? LOG_INFO : LOG_ERR, "%s", line);
		closelog();
	}
}

static budget_snap source_start;

void cli_source_begin(void) { budget_snap_take(&budget_source, &source_start); }

void cli_source_summary(const char *cmd)
{
	budget_snap now;
	budget_snap_take(&budget_source, &now);
	budget_view v;
	budget_view_of(&source_start, &now, &v);
	if (!v.reqs)
		return;
	char line[192];
	budget_view_line(&v, line, sizeof line);
	fprintf(stderr, "cutover: %s: source: %s\n", cmd, line);
}

static int64_t progress_last;
static bool progress_shown;

void cli_progress(const char *fmt, ...)
{
	if (!cli_progress_enabled())
		return;
	int64_t now = cut_mono_ns();
	if (now - progress_last < 100000000)
		return;
	progress_last = now;
	char line[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\r%-79s", line);
	progress_shown = true;
}

void cli_progress_done(void)
{
	if (progress_shown)
		fprintf(stderr, "\r%-79s\r", "");
	progress_shown = false;
	progress_last = 0;
}

static char fix_text[1024];

void cli_fix(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(fix_text, sizeof fix_text, fmt, ap);
	va_end(ap);
}

/* The command line as typed (each argument quoted when the shell would
 * need it), for "run ... again". */
static void command_line(char *out, size_t cap, int argc, char **argv)
{
	size_t l = (size_t)snprintf(out, cap, "cutover");
	for (int i = 0; i < argc && l < cap; i++) {
		const char *a = argv[i];
		bool plain = *a && strspn(a, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
					   "0123456789-_./=,:+%@") == strlen(a);
		l += (size_t)snprintf(out + l, cap - l, plain ? " %s" : " '%s'", a);
	}
}

/* The value of --state in argv, or "DIR". */
static const char *state_arg(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--state") == 0 && i + 1 < argc)
			return argv[i + 1];
		if (strncmp(argv[i], "--state=", 8) == 0)
			return argv[i] + 8;
	}
	return "DIR";
}

/* The one table from outcomes to exit codes. */
static const int exit_of_outcome[] = {
	[CUT_OK] = CLI_EXIT_OK,
	[CUT_DIFFER] = CLI_EXIT_DIFFER,
	[CUT_FAILED] = CLI_EXIT_ERROR,
	[CUT_INCOMPLETE] = CLI_EXIT_INCOMPLETE,
	[CUT_CONFLICT] = CLI_EXIT_CONFLICT,
	[CUT_NOSPACE] = CLI_EXIT_NOSPACE,
	[CUT_LOCKED] = CLI_EXIT_LOCKED,
	[CUT_LATE] = CLI_EXIT_LATE,
	[CUT_INVALID] = CLI_EXIT_USAGE,
};

int cli_exit_code(int outcome)
{
	if (outcome < 0 || (size_t)outcome >= sizeof exit_of_outcome / sizeof exit_of_outcome[0])
		return CLI_EXIT_ERROR;
	return exit_of_outcome[outcome];
}

/* What fixes exit code rc of command c when c did not say (cli_fix): the
 * runbook's table of exit codes (docs/RUNBOOK.md section 3) in one line. */
static void cli_fix_default(const cli_cmd *c, int rc, int argc, char **argv)
{
	char again[768];
	command_line(again, sizeof again, argc, argv);
	const char *dir = state_arg(argc, argv);
	bool state = c == &cmd_sync || c == &cmd_status;
	switch (rc) {
	case CLI_EXIT_USAGE:
		cli_fix("see `cutover help %s`", c->name);
		break;
	case CLI_EXIT_DIFFER:
		if (c == &cmd_status)
			cli_fix("run `cutover sync --state %s`: it finishes an interrupted pass, brings the "
				"target to the newest source and checks it first", dir);
		else if (c == &cmd_switch)
			cli_fix("stop what writes to the subtrees listed above on the source (hold their "
				"mail, end their sessions: what --before does), then run `%s` again", again);
		break;
	case CLI_EXIT_INCOMPLETE:
		if (c == &cmd_replay)
			cli_fix("the next scan, diff and replay reconcile what drifted or vanished; for "
				"what was skipped, fix it and run `%s` again", again);
		else
			cli_fix("make the paths listed above readable, then run `%s` again", again);
		break;
	case CLI_EXIT_CONFLICT:
		if (c == &cmd_sync)
			cli_fix("if the changes on the target are wanted, move them to the source; then "
				"run `cutover sync --state %s --rebase`", dir);
		else
			cli_fix("put the target path named above back as the log expects (or choose "
				"--on-conflict skip|overwrite), then run `%s` again: it resumes", again);
		break;
	case CLI_EXIT_NOSPACE:
		cli_fix("free space on the target, then run `%s` again: it resumes", again);
		break;
	case CLI_EXIT_LATE:
		cli_fix("recover the messages listed in %s/late-writes into the new side (docs/RUNBOOK.md, "
			"\"Late writes\"), then run `cutover switch --state %s --ack-late-writes`", dir, dir);
		break;
	case CLI_EXIT_LOCKED:
		if (state)
			cli_fix("wait for the run that holds the lock (`cutover status --state %s` names "
				"it), then run `%s`", dir, again);
		else
			cli_fix("wait for the replay that holds the journal, then run `%s` again", again);
		break;
	default:
		cli_fix("fix what the message above names, then run `%s` again", again);
		break;
	}
}

/* A command line that names no command cutover has: the usage error's fix. */
static int main_usage_error(void)
{
	fprintf(stderr, "cutover: to fix: see `cutover help` for the commands and `cutover help "
			"COMMAND` for one of them\n");
	return CLI_EXIT_USAGE;
}

int main(int argc, char **argv)
{
	/* A closed pipe (cutover show | head) ends output quietly. */
	signal(SIGPIPE, SIG_DFL);
#ifdef __GLIBC__
	/* glibc gives every thread its own malloc arena, and memory freed by
	 * another thread (listings are made by scan workers, freed by the
	 * writer) lingers in them: a few arenas keep the footprint flat. */
	mallopt(M_ARENA_MAX, 2);
#endif
	int i = 1;
	for (; i < argc && argv[i][0] == '-'; i++) {
		const char *a = argv[i];
		if (strcmp(a, "--version") == 0) {
			printf("cutover %s\n", CUTOVER_VERSION);
			return CLI_EXIT_OK;
		} else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			main_usage(stdout);
			return CLI_EXIT_OK;
		} else if (strcmp(a, "-v") == 0 || strcmp(a, "--verbose") == 0) {
			cut_verbosity++;
		} else if (strcmp(a, "-vv") == 0) {
			cut_verbosity += 2;
		} else if (strcmp(a, "-q") == 0 || strcmp(a, "--quiet") == 0) {
			cli_quiet = true;
		} else {
			fprintf(stderr, "cutover: unknown option %s\n", a);
			main_usage(stderr);
			return main_usage_error();
		}
	}
	if (i >= argc) {
		main_usage(stderr);
		return main_usage_error();
	}
	if (strcmp(argv[i], "help") == 0) {
		if (i + 1 >= argc) {
			main_usage(stdout);
			return CLI_EXIT_OK;
		}
		const cli_cmd *c = find_cmd(argv[i + 1]);
		if (!c) {
			fprintf(stderr, "cutover: no such command: %s\n", argv[i + 1]);
			return main_usage_error();
		}
		fputs(c->usage, stdout);
		return CLI_EXIT_OK;
	}
	const cli_cmd *c = find_cmd(argv[i]);
	if (!c) {
		fprintf(stderr, "cutover: no such command: %s\n", argv[i]);
		return main_usage_error();
	}
	if (cli_help_requested(c, argc - i, argv + i))
		return CLI_EXIT_OK;
	optind = 1;
	int rc = c->run(argc - i, argv + i);
	if (rc != CLI_EXIT_OK) {
		if (!fix_text[0])
			cli_fix_default(c, rc, argc - i, argv + i);
		if (fix_text[0])
			fprintf(stderr, "cutover: to fix: %s\n", fix_text);
	}
	return rc;
}
