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

static int run(int argc, char **argv)
{
	enum { O_CONTENT = 256, O_JSON, O_STATE, O_MAILDIR, O_EXCL, O_ONEFS, O_EXAMPLES };
	static const struct option lo[] = {
		{"content", no_argument, NULL, O_CONTENT}, {"json", no_argument, NULL, O_JSON},
		{"state", required_argument, NULL, O_STATE}, {"maildir", no_argument, NULL, O_MAILDIR},
		{"exclude", required_argument, NULL, O_EXCL}, {"one-file-system", no_argument, NULL, O_ONEFS},
		{"threads", required_argument, NULL, 'j'}, {"examples", required_argument, NULL, O_EXAMPLES},
		{NULL, 0, NULL, 0}};
	sync_verify_opts o = {.out = stdout};
	const char *dir = NULL;
	const char **ex = cut_calloc((size_t)argc + 1, sizeof *ex);
	size_t nex = 0;
	bool maildir = false, onefs = false;
	int threads = 0, ch, rc = CLI_EXIT_USAGE;
	uint64_t v;
	sync_config cfg = {0};
	sync_globs globs = {0};
	bool have_cfg = false;
	char *work = NULL;
	while ((ch = getopt_long(argc, argv, "j:", lo, NULL)) != -1) {
		switch (ch) {
		case O_CONTENT: o.content = true; break;
		case O_JSON: o.json = true; break;
		case O_STATE: dir = optarg; break;
		case O_MAILDIR: maildir = true; break;
		case O_ONEFS: onefs = true; break;
		case O_EXCL: ex[nex++] = optarg; break;
		case 'j':
		case O_EXAMPLES:
			if (cli_parse_u64(optarg, &v) < 0 || v > (ch == 'j' ? SCAN_THREADS_MAX : EXAMPLES_MAX) || (ch == 'j' && !v))
				goto usage;
			if (ch == 'j')
				threads = (int)v;
			else
				o.examples = (unsigned)v;
			break;
		default: goto usage;
		}
	}
	int nargs = argc - optind;
	if (dir) {
		if (nargs != 0 && nargs != 2)
			goto usage;
		if (sync_config_read(dir, &cfg) < 0) {
			rc = CLI_EXIT_ERROR;
			goto out;
		}
		have_cfg = true;
		o.source = nargs ? argv[optind] : cfg.source;
		o.target = nargs ? argv[optind + 1] : cfg.target;
		o.pol.maildir = cfg.maildir;
		o.pol.one_fs = cfg.one_fs;
		if (state_excludes(dir, &cfg, &globs, &o.pol) < 0) {
			rc = CLI_EXIT_ERROR;
			goto out;
		}
	} else {
		if (nargs != 2)
			goto usage;
		o.source = argv[optind];
		o.target = argv[optind + 1];
		o.pol.maildir = maildir;
		o.pol.one_fs = onefs;
		o.pol.excludes = ex;
		o.pol.nexcludes = nex;
	}
	o.pol.threads = threads;
	const char *tmp = getenv("TMPDIR");
	char tmpl[4096];
	snprintf(tmpl, sizeof tmpl, "%s/cutover-verify.XXXXXX", tmp && *tmp ? tmp : "/tmp");
	work = mkdtemp(tmpl) ? tmpl : NULL;
	if (!work) {
		CUT_SYSERR("%s: cannot create a work directory", tmpl);
		rc = CLI_EXIT_ERROR;
		goto out;
	}
	o.workdir = work;
	uint64_t entries, ndiffer;
	int r = sync_verify(&o, &entries, &ndiffer);
	rmdir(work);
	if (fflush(stdout) != 0)
		r = -1;
	rc = r < 0 ? CLI_EXIT_ERROR : r > 0 ? CLI_EXIT_DIFFER : CLI_EXIT_OK;
	if (r > 0 && dir)
		cli_fix("on a live store the source runs ahead until the final pass; with the services "
			"stopped, `cutover sync --state %s --final` copies the changes and repairs what "
			"still differs (or now: `cutover sync --state %s --rebase`)", dir, dir);
	else if (r > 0)
		cli_fix("`cutover init --source %s --target %s --state DIR` (with the policy used here), "
			"then `cutover sync --state DIR --rebase`, brings DST to SRC", o.source, o.target);
	goto out;
usage:
	rc = cli_usage(&cmd_verify);
out:
	if (have_cfg)
		sync_config_free(&cfg);
	sync_globs_free(&globs);
	free(ex);
	return rc;
}

const cli_cmd cmd_verify = {"verify", "scan two trees in parallel and report parity (exit 1 if they differ)",
			    usage, run};
