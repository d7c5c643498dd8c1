/*
 * main.c -- gen_maildir's command line: usage text, option parsing, and the
 * dispatch to gen_create or gen_mutate.  The only place that decides on the
 * options' defaults and limits.
 */
#include "gen.h"

/* ------------------------------------------------------------------ */
/* usage                                                               */

static const char usage_text[] =
"usage: gen_maildir create ROOT [--users N] [--domains D] [--msgs M] [--seed S]\n"
"                               [--size-scale F] [--time T0]\n"
"       gen_maildir mutate ROOT --seed S [--percent P] [--time T] [--size-scale F]\n"
"                               [--same-second]\n"
"       gen_maildir --help\n"
"\n"
"Builds (create) or changes (mutate) a synthetic Dovecot 2.3 maildir store laid\n"
"out as ROOT/<domain>/<user>/Maildir/, for cutover tests and benchmarks.\n"
"Output depends only on the options (and, for mutate, on the tree), never on\n"
"the platform: a private PRNG is used and directory listings are sorted.\n"
"\n"
"create  ROOT may exist but must not contain the domains generated.\n"
"  --users N       users (default 20)\n"
"  --domains D     domains, users spread Zipf-like over them (default 3)\n"
"  --msgs M        mean messages per user; users vary ~0.02x..7x, INBOX gets\n"
"                  the most; ~5%% of messages are also hard-linked into another\n"
"                  folder of the same user (IMAP COPY), ~2%% into another user's\n"
"                  INBOX (LMTP multi-recipient); the total of messages\n"
"                  before links is exactly N*M (default 35)\n"
"  --seed S        PRNG seed (default 1)\n"
"  --size-scale F  multiply message sizes (median ~4 KB, mean ~10 KB, up to\n"
"                  6 MB) by F; a message never gets smaller than its headers\n"
"                  (~250 bytes) (default 1.0)\n"
"  --time T0       \"now\" of the store in unix seconds; messages are spread over\n"
"                  the ~0.5..6.5 years before it (default %u = 2025-01-01)\n"
"  The defaults give ~20 users and ~2,000 entries (1,923 with seed 1).\n"
"  About 1,000,000 entries (~1.07 names per message, ~70 other entries\n"
"  per user):\n"
"      gen_maildir create ROOT --users 1000 --msgs 870 --size-scale 0.1\n"
"  (seed 1: 998,815 entries, 930,723 message names, 1.2 GB of data, 4.3 GB\n"
"  on disk with 4 KB blocks; bound by file creation in the kernel).\n"
"  Prints: users= domains= folders= messages= (message names, links included)\n"
"  files= (regular-file names) links= (extra names made by link()) dirs=\n"
"  symlinks= bytes= (data written, each inode once) entries= (files+dirs+\n"
"  symlinks below ROOT = `find ROOT -mindepth 1 | wc -l`).\n"
"\n";

static const char usage_text2[] =
"mutate  simulates one mail day: P percent (default 1.0) of the existing\n"
"  messages are affected (25% new->cur moves, ~45% flag renames, 20%\n"
"  expunges, 10% COPY by hard link of which 30% are MOVEs), and 0.6*P percent\n"
"  new messages are delivered (tmp/ then rename into new/, or cur/ for Sent\n"
"  and Drafts; 3% of INBOX deliveries are hard-linked to 1-3 more users).\n"
"  Each touched folder: dovecot-uidlist appended in place under\n"
"  dovecot-uidlist.lock, or rewritten into the .lock and renamed over (always\n"
"  when something was expunged, else 5%); dovecot.index.log appended in place,\n"
"  rotated 3% (unlink .log.2, link .log -> .log.2, rename .log.newlock ->\n"
"  .log); dovecot.index replaced by rename 20%; dovecot.index.cache appended\n"
"  30%; tmp/ files with mtime older than T-36h removed; 5% leave a partial\n"
"  file in tmp/.  Then folders are created, renamed (with their subfolders)\n"
"  and deleted (renamed to .DOVECOT-TRASHED, then removed); subscriptions is\n"
"  rewritten and renamed.  About 0.02*P*users creations and 0.005*P*users\n"
"  renames and deletions, at least one each when P > 0.\n"
"  --seed S        required\n"
"  --percent P     float, default 1.0\n"
"  --time T        timestamp for new messages (names and mtimes); default:\n"
"                  the current time.  The result is a pure function of\n"
"                  (tree, seed, T): give --time to get identical trees.\n"
"                  Control files written or appended (uidlist, index files,\n"
"                  subscriptions ...) and directories keep the real mtime\n"
"                  of the run, as Dovecot's would.\n"
"  --size-scale F  as for create, for delivered messages (default 1.0)\n"
"  --same-second   after reading and planning, sleep until a wall-clock second\n"
"                  S starts; then do the main round, then at once an extra\n"
"                  small round (in up to 8 folders the main round touched: one\n"
"                  delivery each, a flag rename and a new->cur move where\n"
"                  possible, one expunge), then print the summary and flush\n"
"                  stdout.  Without --time, T = S.  The summary ends with\n"
"                  second=S done_ms=X, X = ms after the start of S when the\n"
"                  summary was printed: if X < 1000 every change of the run\n"
"                  happened within second S, and a caller that scans right\n"
"                  after reading the summary line scans within S too.\n"
"  Prints one line of counts per operation and bytes_written=.\n"
"\n"
"Exit status: 0 ok, 1 I/O error (message names the path), 2 bad usage.\n";

static void usage(FILE *f)
{
	fprintf(f, usage_text, DEFAULT_T0);
	fputs(usage_text2, f);
}

static uint64_t parse_u64(const char *opt, const char *s, uint64_t max)
{
	char *end;
	errno = 0;
	if (!s || !*s || *s == '-')
		gen_die_usage("%s needs a non-negative integer", opt);
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || *end || v > max)
		gen_die_usage("bad value for %s: %s", opt, s);
	return v;
}

static double parse_double(const char *opt, const char *s, double min,
			   double max)
{
	char *end;
	errno = 0;
	if (!s || !*s)
		gen_die_usage("%s needs a number", opt);
	double v = strtod(s, &end);
	if (errno || *end || !(v >= min && v <= max))
		gen_die_usage("bad value for %s: %s", opt, s);
	return v;
}

static char *root_path(const char *s)
{
	char *r = gen_xstrdup(s);
	size_t n = strlen(r);
	while (n > 1 && r[n - 1] == '/')
		r[--n] = 0;
	if (n == 0)
		gen_die_usage("empty ROOT");
	return r;
}

/* ------------------------------------------------------------------ */

int main(int argc, char **argv)
{
	if (argc < 2)
		gen_die_usage("missing command");
	for (int i = 1; i < argc; i++)
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			usage(stdout);
			return 0;
		}
	const char *cmd = argv[1];
	int create = strcmp(cmd, "create") == 0;
	if (!create && strcmp(cmd, "mutate") != 0)
		gen_die_usage("unknown command '%s'", cmd);
	const char *root = NULL;
	uint64_t users = 20, domains = 3, msgs = 35, seed = 1, t = DEFAULT_T0;
	double scale = 1.0, percent = 1.0;
	int have_seed = 0, have_time = 0, same_second = 0;
	for (int i = 2; i < argc; i++) {
		const char *a = argv[i], *v = NULL;
		char opt[64];
		if (strncmp(a, "--", 2) != 0) {
			if (root)
				gen_die_usage("unexpected argument '%s'", a);
			root = a;
			continue;
		}
		const char *eq = strchr(a, '=');
		if (eq) {
			snprintf(opt, sizeof opt, "%.*s", (int)(eq - a), a);
			v = eq + 1;
		} else {
			snprintf(opt, sizeof opt, "%s", a);
		}
		if (strcmp(opt, "--same-second") == 0 && !create) {
			if (v)
				gen_die_usage("--same-second takes no value");
			same_second = 1;
			continue;
		}
		int known = (create && (strcmp(opt, "--users") == 0 ||
					strcmp(opt, "--domains") == 0 ||
					strcmp(opt, "--msgs") == 0)) ||
			    (!create && strcmp(opt, "--percent") == 0) ||
			    strcmp(opt, "--seed") == 0 ||
			    strcmp(opt, "--size-scale") == 0 ||
			    strcmp(opt, "--time") == 0;
		if (!known)
			gen_die_usage("unknown option '%s' for %s", opt, cmd);
		if (!v) {
			if (i + 1 >= argc)
				gen_die_usage("%s needs a value", opt);
			v = argv[++i];
		}
		if (strcmp(opt, "--users") == 0)
			users = parse_u64(opt, v, 10000000);
		else if (strcmp(opt, "--domains") == 0)
			domains = parse_u64(opt, v, 1000000);
		else if (strcmp(opt, "--msgs") == 0)
			msgs = parse_u64(opt, v, 10000000);
		else if (strcmp(opt, "--seed") == 0) {
			seed = parse_u64(opt, v, UINT64_MAX);
			have_seed = 1;
		} else if (strcmp(opt, "--size-scale") == 0)
			scale = parse_double(opt, v, 0.0, 1000.0);
		else if (strcmp(opt, "--percent") == 0)
			percent = parse_double(opt, v, 0.0, 100.0);
		else if (strcmp(opt, "--time") == 0) {
			t = parse_u64(opt, v, 0xFFFFFFF0u - 400u * 86400u);
			have_time = 1;
		}
	}
	if (!root)
		gen_die_usage("missing ROOT");
	if (domains == 0)
		gen_die_usage("--domains must be at least 1");
	gen_scale_ppm = (uint64_t)(scale * 1000000.0 + 0.5);
	gen_init_pools();
	char *r = root_path(root);
	int rc;
	if (create) {
		rc = gen_create(r, (uint32_t)users, (uint32_t)domains, (uint32_t)msgs,
				seed, (uint32_t)t);
	} else {
		if (!have_seed)
			gen_die_usage("mutate needs --seed");
		rc = gen_mutate(r, seed, percent, have_time, (int64_t)t, same_second);
	}
	free(r);
	if (fflush(stdout) != 0)
		gen_die_path("write", "stdout");
	return rc;
}
