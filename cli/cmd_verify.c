/*
 * cmd_verify.c - `cutover verify`: scans two live trees at once and reports
 * their parity (sync/verify.c, diff/report.c).
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "base/limits.h"
#include "sync/sync.h"

static const char usage[] =
	"usage: cutover verify SRC DST [--content] [--json] [--state DIR | --maildir\n"
	"                      [--exclude GLOB]... [--one-file-system]] [-j N] [--examples N]\n"
	"       cutover verify --state DIR [--content] [--json]\n"
	"\n"
	"Scans SRC and DST in parallel (full scans, nothing cached) and prints the\n"
	"parity report of `cutover report`: entries missing from DST, extra in DST,\n"
	"differing in content or in metadata, and hard-link structure.  ctime, inode,\n"
	"device and atime are not compared (they cannot match on a copy); nlink is\n"
	"compared as link structure.\n"
	"  --content         also hash every file on both sides and compare contents\n"
	"  --json            the report as one JSON object\n"
	"  --state DIR       take SRC, DST and the policy from DIR (`cutover init`)\n"
	"  --maildir, --exclude, --one-file-system   the scan policy (as for scan)\n"
	"  -j N              scanner threads per side (default 32)\n"
	"  --examples N      differences listed per kind (default 10)\n"
	"exit: 0 parity, 1 the trees differ, 2 error (unreadable paths, I/O), 64 usage\n";

/* DIR's exclusions, and its switched subtrees (the new side's: not
 * compared), into pol; g owns them.  0 or -1 (logged). */
static int state_excludes(const char *dir, const sync_config *cfg, sync_globs *g, sync_scan_policy *pol)
{
	sync_switched sw;
	if (sync_switched_read(dir, &sw) < 0)
		return -1;
	sync_switched_excludes(&sw, cfg, g);
	if (sw.n)
		fprintf(stderr, "cutover: verify: %zu switched subtrees left out (the new side's)\n", sw.n);
	sync_switched_free(&sw);
	pol->excludes = (const char *const *)g->v;
	pol->nexcludes = g->n;
	return 0;
}

enum { O_CONTENT = 256, O_JSON, O_STATE, O_MAILDIR, O_EXCL, O_ONEFS, O_EXAMPLES };
static const struct option lo[] = {
	{"content", no_argument, NULL, O_CONTENT}, {"json", no_argument, NULL, O_JSON},
	{"state", required_argument, NULL, O_STATE}, {"maildir", no_argument, NULL, O_MAILDIR},
	{"exclude", required_argument, NULL, O_EXCL}, {"one-file-system", no_argument, NULL, O_ONEFS},
	{"threads", required_argument, NULL, 'j'}, {"examples", required_argument, NULL, O_EXAMPLES},
	{NULL, 0, NULL, 0}};

/* The command line, and what run() frees: the --exclude list (the
 * arguments themselves are argv's), DIR's config and its exclusions. */
typedef struct verify_args {
	sync_verify_opts o;
	const char *dir;                /* --state, or NULL */
	char **trees;                   /* SRC DST, when given */
	int ntrees;
	const char **ex;
	size_t nex;
	bool maildir, onefs;
	int threads;
	sync_config cfg;
	sync_globs globs;
	bool have_cfg;
} verify_args;

/* One option of getopt_long into a.  0, or -1 (a usage error). */
static int parse_opt(int ch, const char *arg, verify_args *a)
{
	uint64_t v;
	switch (ch) {
	case O_CONTENT: a->o.content = true; break;
	case O_JSON: a->o.json = true; break;
	case O_STATE: a->dir = arg; break;
	case O_MAILDIR: a->maildir = true; break;
	case O_ONEFS: a->onefs = true; break;
	case O_EXCL: a->ex[a->nex++] = arg; break;
	case 'j':
	case O_EXAMPLES:
		if (ch == 'j' ? cli_parse_count("verify", "-j", arg, 1, SCAN_THREADS_MAX, &v) < 0
			      : cli_parse_count("verify", "--examples", arg, 0, EXAMPLES_MAX, &v) < 0)
			return -1;
		if (ch == 'j')
			a->threads = (int)v;
		else
			a->o.examples = (unsigned)v;
		break;
	default: return -1;
	}
	return 0;
}

/* The command line into a: the options, then SRC DST (which --state makes
 * optional).  0, or -1 (a usage error). */
static int parse_args(int argc, char **argv, verify_args *a)
{
	int ch;
	while ((ch = getopt_long(argc, argv, "j:", lo, NULL)) != -1)
		if (parse_opt(ch, optarg, a) < 0)
			return -1;
	a->trees = argv + optind;
	a->ntrees = argc - optind;
	if (a->dir ? a->ntrees != 0 && a->ntrees != 2 : a->ntrees != 2)
		return -1;
	return 0;
}

/* The trees and the scan policy into a->o: from DIR's config (the trees
 * given override its pair), or from the command line.  0, or -1 (logged). */
static int set_trees_and_policy(verify_args *a)
{
	sync_verify_opts *o = &a->o;
	o->pol.threads = a->threads;
	if (!a->dir) {
		o->source = a->trees[0];
		o->target = a->trees[1];
		o->pol.maildir = a->maildir;
		o->pol.one_fs = a->onefs;
		o->pol.excludes = a->ex;
		o->pol.nexcludes = a->nex;
		return 0;
	}
	if (sync_config_read(a->dir, &a->cfg) < 0)
		return -1;
	a->have_cfg = true;
	o->source = a->ntrees ? a->trees[0] : a->cfg.source;
	o->target = a->ntrees ? a->trees[1] : a->cfg.target;
	o->pol.maildir = a->cfg.maildir;
	o->pol.one_fs = a->cfg.one_fs;
	return state_excludes(a->dir, &a->cfg, &a->globs, &o->pol);
}

/* What brings the trees to parity, when they differ: a sync over DIR, or
 * one set up for this pair. */
static void say_fix(const verify_args *a)
{
	if (a->dir)
		cli_fix("on a live store the source runs ahead until the final pass; with the services "
			"stopped, `cutover sync --state %s --final` copies the changes and repairs what "
			"still differs (or now: `cutover sync --state %s --rebase`)", a->dir, a->dir);
	else
		cli_fix("`cutover init --source %s --target %s --state DIR` (with the policy used here), "
			"then `cutover sync --state DIR --rebase`, brings DST to SRC", a->o.source, a->o.target);
}

/* Compares the trees, in a work directory of its own under $TMPDIR, and
 * prints the report.  The exit code. */
static int verify(verify_args *a)
{
	const char *tmp = getenv("TMPDIR");
	char tmpl[4096];
	snprintf(tmpl, sizeof tmpl, "%s/cutover-verify.XXXXXX", tmp && *tmp ? tmp : "/tmp");
	char *work = mkdtemp(tmpl) ? tmpl : NULL;
	if (!work) {
		CUT_SYSERR("%s: cannot create a work directory", tmpl);
		return CLI_EXIT_ERROR;
	}
	a->o.workdir = work;
	uint64_t entries, ndiffer;
	int r = sync_verify(&a->o, &entries, &ndiffer);
	rmdir(work);
	if (fflush(stdout) != 0)
		r = -1;
	if (r > 0)
		say_fix(a);
	return r < 0 ? CLI_EXIT_ERROR : r > 0 ? CLI_EXIT_DIFFER : CLI_EXIT_OK;
}

static int run(int argc, char **argv)
{
	verify_args a = {.o = {.out = stdout}};
	a.ex = cut_calloc((size_t)argc + 1, sizeof *a.ex);
	int rc;
	if (parse_args(argc, argv, &a) < 0)
		rc = cli_usage(&cmd_verify);
	else if (set_trees_and_policy(&a) < 0)
		rc = CLI_EXIT_ERROR;
	else
		rc = verify(&a);
	if (a.have_cfg)
		sync_config_free(&a.cfg);
	sync_globs_free(&a.globs);
	free(a.ex);
	return rc;
}

const cli_cmd cmd_verify = {"verify", "scan two trees in parallel and report parity (exit 1 if they differ)",
			    usage, run};
