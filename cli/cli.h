/*
 * cli.h - what the subcommands of the cutover program share: the command
 * table entry, progress lines on a TTY, and small parsers.
 *
 * Each subcommand lives in cli/cmd_<name>.c, parses its own options with
 * getopt_long, calls into scanner/, diff/ or replay/, and returns an exit code
 * (enum cli_exit); only main() exits.  The library reports outcomes
 * (cut_outcome, base/util.h), never exit codes: cli_exit_code is the one
 * place that turns one into the other.
 */
#ifndef CUTOVER_CLI_H
#define CUTOVER_CLI_H

#include <stdbool.h>
#include <stdint.h>

#include "base/util.h"

/* Exit codes of the cutover program, documented in docs/cutover.1 and the
 * table of docs/RUNBOOK.md section 3. */
enum cli_exit {
	CLI_EXIT_OK = 0,         /* done, nothing to report */
	CLI_EXIT_DIFFER = 1,     /* report/verify/status: the two sides differ */
	CLI_EXIT_ERROR = 2,      /* bad or corrupt input, I/O error: nothing (more) done */
	CLI_EXIT_INCOMPLETE = 3, /* finished, but some paths were skipped (listed on stderr) */
	CLI_EXIT_CONFLICT = 4,   /* replay stopped at a target that is not as the log expects */
	CLI_EXIT_NOSPACE = 5,    /* the target ran out of space; rerun to resume */
	CLI_EXIT_LOCKED = 6,     /* another cutover run holds the state lock */
	CLI_EXIT_LATE = 7,       /* sync: a switched subtree changed on the source (late writes) */
	CLI_EXIT_USAGE = 64,     /* bad command line (sysexits EX_USAGE) */
};

/* The exit code of a library outcome (cut_outcome); a value that is not one
 * is an error (CLI_EXIT_ERROR). */
int cli_exit_code(int outcome);

typedef struct cli_cmd {
	const char *name;
	const char *summary; /* one line, for `cutover --help` */
	const char *usage;   /* full help text, for `cutover help NAME` and --help */
	int (*run)(int argc, char **argv); /* argv[0] is the subcommand name */
} cli_cmd;

extern const cli_cmd cmd_scan, cmd_show, cmd_diff, cmd_report, cmd_replay, cmd_init, cmd_sync,
	cmd_verify, cmd_status, cmd_switch;

/* Prints cmd's usage to stderr and returns CLI_EXIT_USAGE. */
int cli_usage(const cli_cmd *cmd);
/* Handles -h/--help for a subcommand: prints usage to stdout, returns true. */
bool cli_help_requested(const cli_cmd *cmd, int argc, char **argv);

/* Parses a decimal count or rate, with an optional k/K, M or G suffix of
 * 10^3, 10^6, 10^9.  0 or -1. */
int cli_parse_u64(const char *s, uint64_t *out);
/* Parses arg, the value of option opt ("-j", "--keep") of command cmd, into
 * *out: cli_parse_u64's syntax, from lo to hi.  0, or -1 after saying on
 * stderr what the option takes.  Every count and limit of the command line
 * goes through it, so that each refusal names the option and its range. */
int cli_parse_count(const char *cmd, const char *opt, const char *arg, uint64_t lo, uint64_t hi,
		    uint64_t *out);
/* Parses an amount of memory: k/K, M, G are 2^10, 2^20, 2^30 (32M is the
 * 32 MiB of the defaults).  0 or -1. */
int cli_parse_mem(const char *s, uint64_t *out);
/* Parses a latency of --max-latency: a number with us, ms or s (2ms, 1.5s),
 * up to an hour; 0 alone is none.  0 or -1. */
int cli_parse_latency(const char *s, int64_t *ns);
/* The usage lines of --adaptive and --max-latency, which every command that
 * reads the source shares. */
#define CLI_USAGE_GATE                                                                     \
	"  --adaptive            hold back when SRC's latency rises: requests in flight\n"   \
	"                        are halved when their median passes twice the unloaded\n"  \
	"                        latency, and climb again one by one when it falls\n"       \
	"  --max-latency DUR     the same, against a fixed median latency (2ms, 500us)\n"

/* Progress on stderr, only when stderr is a TTY and not -q: a single line
 * rewritten at most ten times a second. */
extern bool cli_quiet;
bool cli_progress_enabled(void);
void cli_progress(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void cli_progress_done(void);
/* "; source 812 ops/s, ..." (base/budget.h) over the last 2 to 4 s, for
 * the progress lines of scan and replay; "" before a request was measured.
 * One caller at a time (the progress callback). */
void cli_source_part(char *buf, size_t cap);
/* A pass's summary line: appended to log_file (with the time and pid) when
 * set, else sent to syslog (LOG_DAEMON; LOG_ERR when exit_code is not 0)
 * when use_syslog.  The one place cutover talks to syslog. */
void cli_log_line(const char *log_file, bool use_syslog, int exit_code, const char *line);
/* The source over the whole command, from cli_source_begin (called once
 * its limits are set) to cli_source_summary: "cutover: CMD: source: 812
 * ops/s, ..." on stderr; nothing when no request was measured. */
void cli_source_begin(void);
void cli_source_summary(const char *cmd);

/* The command that fixes a non-zero exit, set by a subcommand that knows it
 * better than the exit code alone (fmt names it in backquotes).  main()
 * prints it as the last line on stderr ("cutover: to fix: ..."); without
 * it, main() names the fix for the exit code (cli_fix_default). */
void cli_fix(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Human-readable byte counts: cut_bytes_human() in base/util.h. */

#endif
