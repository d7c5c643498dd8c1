/*
 * test_replay.c - cmocka tests of replay/: every operation, target
 * preconditions and conflicts, source drift, idempotent redo after a lost
 * journal, the journal's own checks, confinement against planted symlinks
 * and hostile logs, and a parallel run.  Logs are built with fmt_cwriter (or
 * by hand, for the invalid ones the writer refuses); trees are real
 * temporary directories, compared with `rsync -anc --delete -i`.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <xxhash.h>

#include "format/changes.h"
#include "format/path.h"
#include "base/sys.h"
#include "replay/internal.h"
#include "replay/replay.h"

typedef struct fx {
	char dir[64];
	char src[96], dst[96], log[96], jn[96], out[96];
	fmt_cwriter *w;
	int on_conflict;
	unsigned jobs;
	rp_stats st;
} fx;

static int64_t T0 = 1600000000LL * 1000000000LL + 123456789;

/* ------------------------------------------------------------ helpers */

static void pathf(char *out, size_t n, const char *root, const char *rel)
{
	snprintf(out, n, "%s%s%s", root, *rel ? "/" : "", rel);
}

static void wfile(const char *root, const char *rel, const char *content, int64_t mtime)
{
	char p[512];
	pathf(p, sizeof p, root, rel);
	FILE *f = fopen(p, "w");
	assert_non_null(f);
	fputs(content, f);
	fclose(f);
	struct timespec ts[2] = {{mtime / 1000000000, mtime % 1000000000},
				 {mtime / 1000000000, mtime % 1000000000}};
	assert_int_equal(utimensat(AT_FDCWD, p, ts, AT_SYMLINK_NOFOLLOW), 0);
}

static void mkd(const char *root, const char *rel)
{
	char p[512];
	pathf(p, sizeof p, root, rel);
	assert_int_equal(mkdir(p, 0755), 0);
}

static void settime(const char *root, const char *rel, int64_t mtime)
{
	char p[512];
	pathf(p, sizeof p, root, rel);
	struct timespec ts[2] = {{mtime / 1000000000, mtime % 1000000000},
				 {mtime / 1000000000, mtime % 1000000000}};
	assert_int_equal(utimensat(AT_FDCWD, p, ts, AT_SYMLINK_NOFOLLOW), 0);
}

static bool exists(const char *root, const char *rel)
{
	char p[512];
	struct stat st;
	pathf(p, sizeof p, root, rel);
	return lstat(p, &st) == 0;
}

static struct stat lst(const char *root, const char *rel)
{
	char p[512];
	struct stat st;
	pathf(p, sizeof p, root, rel);
	assert_int_equal(lstat(p, &st), 0);
	return st;
}

static char *slurp(const char *root, const char *rel)
{
	char p[512];
	pathf(p, sizeof p, root, rel);
	FILE *f = fopen(p, "r");
	if (!f)
		return NULL;
	static char buf[4096];
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	buf[n] = 0;
	fclose(f);
	return buf;
}

/* The entry of rel in the source, as a scan would record it. */
static fmt_entry ent(fx *x, const char *rel)
{
	static char tbuf[4][512];
	static int ti;
	char p[512];
	pathf(p, sizeof p, x->src, rel);
	sys_stat st;
	assert_int_equal(sys_statat(AT_FDCWD, p, false, &st), 0);
	fmt_entry e = {0};
	e.path = rel;
	e.path_len = (uint32_t)strlen(rel);
	e.type = (uint8_t)fmt_type_from_mode(st.mode);
	e.mode = st.mode & 07777;
	e.uid = st.uid;
	e.gid = st.gid;
	e.nlink = st.nlink;
	e.dev = st.dev;
	e.ino = st.ino;
	e.size = e.type == FMT_T_DIR ? 0 : st.size;
	e.rdev = st.rdev;
	e.mtime_ns = st.mtime_ns;
	e.ctime_ns = st.ctime_ns;
	if (e.type == FMT_T_SYMLINK) {
		char *t = tbuf[ti++ & 3];
		ssize_t n = readlink(p, t, 511);
		assert_true(n >= 0);
		t[n] = 0;
		e.target = t;
		e.target_len = (uint32_t)n;
	}
	return e;
}

static void lw_begin(fx *x) { x->w = fmt_cwriter_create(x->log); assert_non_null(x->w); }

static void lw_add(fx *x, int op, fmt_entry e, const char *to, const fmt_old *old)
{
	fmt_change c = {.op = (uint8_t)op, .e = e};
	if (to) {
		c.to = to;
		c.to_len = (uint32_t)strlen(to);
	}
	if (old) {
		c.flags = FMT_C_OLD;
		c.old = *old;
	}
	assert_int_equal(fmt_cwriter_add(x->w, &c), 0);
}

/* Adds op on rel with the source's entry. */
static void lw(fx *x, int op, const char *rel) { lw_add(x, op, ent(x, rel), NULL, NULL); }

static void lw_finish(fx *x)
{
	fmt_cheader h = {0};
	h.source = x->src;
	h.created_ns = T0;
	uint8_t id[FMT_ID_LEN];
	assert_int_equal(fmt_cwriter_finish(x->w, &h, id), 0);
	x->w = NULL;
}

static fmt_old old_of(const struct stat *st)
{
	fmt_old o = {.type = (uint8_t)fmt_type_from_mode(st->st_mode),
		     .size = S_ISDIR(st->st_mode) ? 0 : (uint64_t)st->st_size,
		     .mtime_ns = (int64_t)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec};
	return o;
}

static int replay(fx *x)
{
	rp_opts o = {.log = x->log, .source = x->src, .target = x->dst, .journal = x->jn,
		     .jobs = x->jobs ? x->jobs : 4, .on_conflict = x->on_conflict};
	return rp_run(&o, &x->st);
}

/* rsync's verdict on src vs dst: "" when identical (content, types,
 * perms, owner, times, links, devices). */
/* What rsync sees differ between the two trees.  Not the roots' own times:
 * a log carries the root only when a test puts it there (and then checks its
 * time itself); otherwise the roots' times are the wall clock's when each
 * side was last written, a second apart whenever the test straddles one. */
static char *rsync_diff(fx *x)
{
	char cmd[600];
	snprintf(cmd, sizeof cmd,
		 "rsync -anc --delete --itemize-changes '%s/' '%s/' 2>&1 | grep -Fvx '.d..t...... ./'",
		 x->src, x->dst);
	FILE *p = popen(cmd, "r");
	assert_non_null(p);
	static char buf[8192];
	size_t n = fread(buf, 1, sizeof buf - 1, p);
	buf[n] = 0;
	pclose(p);
	return buf;
}

#define assert_parity(x)                                   \
	do {                                               \
		char *d_ = rsync_diff(x);                  \
		if (*d_)                                   \
			fprintf(stderr, "rsync says:\n%s", d_); \
		assert_string_equal(d_, "");               \
	} while (0)

static int setup(void **state)
{
	fx *x = cut_calloc(1, sizeof *x);
	snprintf(x->dir, sizeof x->dir, "/tmp/cutover-test-replay.XXXXXX");
	if (!mkdtemp(x->dir))
		return -1;
	snprintf(x->src, sizeof x->src, "%s/src", x->dir);
	snprintf(x->dst, sizeof x->dst, "%s/dst", x->dir);
	snprintf(x->log, sizeof x->log, "%s/changes", x->dir);
	snprintf(x->jn, sizeof x->jn, "%s/journal", x->dir);
	snprintf(x->out, sizeof x->out, "%s/outside", x->dir);
	mkdir(x->src, 0755);
	mkdir(x->dst, 0755);
	mkdir(x->out, 0755);
	*state = x;
	return 0;
}

static int teardown(void **state)
{
	fx *x = *state;
	if (x->w)
		fmt_cwriter_abort(x->w);
	char cmd[160];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", x->dir);
	int rc = system(cmd);
	free(x);
	return rc == 0 ? 0 : -1;
}

/* A source tree with every kind of entry; its --from-empty log. */
static void build_tree(fx *x)
{
	mkd(x->src, "a");
	mkd(x->src, "a/cur");
	mkd(x->src, "b");
	wfile(x->src, "a/cur/1:2,S", "message one\n", T0 + 1);
	wfile(x->src, "a/cur/empty", "", T0 + 2);
	char *big = cut_malloc(3 << 20);
	for (size_t i = 0; i < (3u << 20); i++)
		big[i] = (char)('a' + i % 23);
	big[(3 << 20) - 1] = 0;
	wfile(x->src, "a/big", big, T0 + 3);
	free(big);
	char p[512], q[512];
	pathf(p, sizeof p, x->src, "a/cur/1:2,S");
	pathf(q, sizeof q, x->src, "b/linked");
	assert_int_equal(link(p, q), 0);
	pathf(p, sizeof p, x->src, "b/sym");
	assert_int_equal(symlink("../a/cur/1:2,S", p), 0);
	pathf(p, sizeof p, x->src, "b/fifo");
	assert_int_equal(mkfifo(p, 0640), 0);
	chmod(p, 0640);
	pathf(p, sizeof p, x->src, "a/cur/1:2,S");
	chmod(p, 0600);
	settime(x->src, "b/sym", T0 + 4);
	settime(x->src, "b/fifo", T0 + 5);
	settime(x->src, "a/cur", T0 + 6);
	settime(x->src, "a", T0 + 7);
	settime(x->src, "b", T0 + 8);
	settime(x->src, "", T0 + 9);

	lw_begin(x);
	lw(x, FMT_OP_MKDIR, "");
	lw(x, FMT_OP_MKDIR, "a");
	lw(x, FMT_OP_MKDIR, "a/cur");
	lw(x, FMT_OP_MKDIR, "b");
	lw(x, FMT_OP_CREATE, "a/big");
	lw(x, FMT_OP_CREATE, "a/cur/1:2,S");
	lw(x, FMT_OP_CREATE, "a/cur/empty");
	lw(x, FMT_OP_SYMLINK, "b/sym");
	lw(x, FMT_OP_SPECIAL, "b/fifo");
	lw_add(x, FMT_OP_LINK, ent(x, "a/cur/1:2,S"), "b/linked", NULL);
	lw(x, FMT_OP_META, "a/cur");
	lw(x, FMT_OP_META, "a");
	lw(x, FMT_OP_META, "b");
	lw_finish(x);
}

/* ------------------------------------------------------------- tests */

static void rp_run__from_empty_copies_every_kind_exactly(void **state)
{
	fx *x = *state;
	build_tree(x);
	assert_int_equal(replay(x), CUT_OK);
	assert_parity(x);
	assert_int_equal(x->st.created, 3);
	assert_int_equal(x->st.linked, 1);
	assert_int_equal(x->st.symlinks, 1);
	assert_int_equal(x->st.specials, 1);
	assert_int_equal(x->st.bytes_copied, (3u << 20) - 1 + 12);
	/* hard link kept, times to the nanosecond, directory times after contents */
	struct stat a = lst(x->dst, "a/cur/1:2,S"), b = lst(x->dst, "b/linked");
	assert_int_equal(a.st_ino, b.st_ino);
	assert_int_equal(a.st_nlink, 2);
	assert_int_equal(a.st_mtim.tv_nsec, (T0 + 1) % 1000000000);
	assert_int_equal(a.st_mode & 07777, 0600);
	assert_int_equal(lst(x->dst, "a/cur").st_mtim.tv_nsec, (T0 + 6) % 1000000000);
	assert_int_equal(lst(x->dst, "").st_mtim.tv_nsec, (T0 + 9) % 1000000000);
	assert_int_equal(lst(x->dst, "b/sym").st_mtim.tv_nsec, (T0 + 4) % 1000000000);
	assert_true(S_ISFIFO(lst(x->dst, "b/fifo").st_mode));
	assert_false(exists(x->dst, "a/" FMT_RESERVED_REPLAY "0000000000000004"));
}

static void rp_run__rerun_of_a_finished_log_does_nothing(void **state)
{
	fx *x = *state;
	build_tree(x);
	assert_int_equal(replay(x), CUT_OK);
	struct stat before = lst(x->dst, "a/big");
	assert_int_equal(replay(x), CUT_OK);
	assert_true(x->st.finished_before);
	assert_int_equal(x->st.bytes_copied, 0);
	struct stat after = lst(x->dst, "a/big");
	assert_int_equal(before.st_ino, after.st_ino);
	assert_int_equal(before.st_ctim.tv_nsec, after.st_ctim.tv_nsec);
}

static void rp_run__lost_journal_redo_is_idempotent(void **state)
{
	fx *x = *state;
	build_tree(x);
	assert_int_equal(replay(x), CUT_OK);
	/* A crash after everything was applied but before any journal record
	 * reached the disk: only the header is left. */
	assert_int_equal(truncate(x->jn, 40), 0);
	/* and a leftover temporary of an interrupted copy */
	char tmp[32];
	rp_tmp_name(tmp, 5);
	char rel[64];
	snprintf(rel, sizeof rel, "a/cur/%s", tmp);
	wfile(x->dst, rel, "partial", T0);
	assert_int_equal(replay(x), CUT_OK);
	assert_int_equal(x->st.journaled, 0);
	assert_int_equal(x->st.noop, 10);
	assert_int_equal(x->st.metas, 3); /* directory metadata is simply set again */
	assert_int_equal(x->st.bytes_copied, 0);
	assert_parity(x);
}

/* The journal an earlier run of the log left when it began: its START. */
static rp_journal *journal_of_an_earlier_run(fx *x)
{
	fmt_creader *r = fmt_creader_open(x->log);
	assert_non_null(r);
	rp_journal *j;
	assert_int_equal(rp_journal_open(x->jn, fmt_creader_id(r), false, false, &j), 0);
	fmt_creader_close(r);
	return j;
}

static off_t fsize(const char *p)
{
	struct stat st;
	assert_int_equal(stat(p, &st), 0);
	return st.st_size;
}

/* Header, START and COMPLETE (20 counters): what a finished log leaves. */
#define J_CLOSED_OUT (40 + 32 + 24 + 8 * 20)

static void rp_run__resume_skips_what_the_journal_lists(void **state)
{
	fx *x = *state;
	build_tree(x);
	assert_int_equal(replay(x), CUT_OK);
	assert_int_equal(fsize(x->jn), J_CLOSED_OUT); /* closed out */
	/* A run killed with records 0..9, 11 and 12 journaled (two batches),
	 * 10 (a directory meta) not. */
	unlink(x->jn);
	rp_journal *j = journal_of_an_earlier_run(x);
	rp_journal_note(j, 6, RP_J_APPLIED);
	rp_journal_note(j, 9, RP_J_APPLIED);
	assert_int_equal(rp_journal_flush(j, 4, false), 0);
	rp_journal_note(j, 11, RP_J_APPLIED);
	rp_journal_note(j, 12, RP_J_APPLIED);
	assert_int_equal(rp_journal_flush(j, 10, false), 0);
	rp_journal_close(j);
	assert_int_equal(replay(x), CUT_OK);
	assert_false(x->st.finished_before);
	assert_int_equal(x->st.journaled, 12);
	assert_int_equal(x->st.done, 1);
	assert_int_equal(x->st.metas, 1);
	assert_parity(x);
	assert_int_equal(fsize(x->jn), J_CLOSED_OUT);
	/* now complete again */
	assert_int_equal(replay(x), CUT_OK);
	assert_true(x->st.finished_before);
}

/* A version-1 journal, as an older cutover leaves it: header, START,
 * PROGRESS records listing records 0..n-1 as finished one by one (with
 * outcome 1, drifted, for record 0), and, when complete, a COMPLETE record
 * with version 1's 19 counters.  corrupt: the checksum of the record in the
 * middle is wrong. */
static void write_v1_journal(const char *path, const uint8_t id[FMT_ID_LEN], uint64_t n,
			     bool complete, bool corrupt)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	uint8_t h[40];
	memcpy(h, "CUTOVRJ1", 8);
	cut_put_le32(h + 8, 1);
	cut_put_le32(h + 12, 0);
	memcpy(h + 16, id, FMT_ID_LEN);
	cut_put_le64(h + 32, XXH3_64bits(h, 32));
	fwrite(h, 1, sizeof h, f);
	uint8_t r[24 + 8 * 19];
	for (uint64_t i = 0; i <= n + 1; i++) {
		uint32_t type = i == 0 ? 3 : i <= n ? 1 : 2, k = i == 0 || i <= n ? 1 : 19;
		if (i == n + 1 && !complete)
			break;
		cut_put_le32(r, type);
		cut_put_le32(r + 4, k);
		cut_put_le64(r + 8, i == 0 ? 0 : i <= n ? i - 1 : n);
		memset(r + 16, 0, 8 * k);
		if (type == 3)
			cut_put_le64(r + 16, (uint64_t)T0);
		if (type == 1)
			cut_put_le64(r + 16, (i - 1) | (i == 1 ? 1ull << 56 : 0));
		if (type == 2)
			cut_put_le64(r + 16 + 8 * 12, 1); /* drifted */
		cut_put_le64(r + 16 + 8 * k, XXH3_64bits(r, 16 + 8 * k));
		if (corrupt && i == n / 2)
			r[16 + 8 * k] ^= 1;
		fwrite(r, 1, 24 + 8 * k, f);
	}
	assert_int_equal(fclose(f), 0);
}

/* The journal the previous log left beside the target is not read: its
 * header names another log and its last record says that log is finished.
 * Here its records are many and one in the middle is corrupt; reading them
 * (as a replay did before) refused the new log. */
static void rp_run__journal_of_a_finished_earlier_log_is_not_read(void **state)
{
	fx *x = *state;
	build_tree(x);
	const uint8_t other[FMT_ID_LEN] = {1, 2, 3};
	write_v1_journal(x->jn, other, 100000, true, true);
	fmt_creader *r = fmt_creader_open(x->log);
	assert_non_null(r);
	rp_journal *j;
	assert_int_equal(rp_journal_open(x->jn, fmt_creader_id(r), true, false, &j), 0);
	fmt_creader_close(r);
	uint64_t w, above;
	assert_int_equal(rp_journal_progress(j, &w, &above), 1); /* the COMPLETE record */
	assert_false(rp_journal_resumed(j));
	assert_false(rp_journal_complete(j, NULL));
	assert_false(rp_journal_done(j, 0));
	assert_int_equal(rp_journal_earlier(j), 0);
	rp_journal_close(j);
	assert_int_equal(replay(x), CUT_OK);
	assert_int_equal(x->st.journaled, 0);
	assert_int_equal(x->st.earlier, 0);
	assert_parity(x);
	assert_int_equal(fsize(x->jn), J_CLOSED_OUT);
	/* the same journal unfinished: still refused, as before */
	write_v1_journal(x->jn, other, 1000, false, false);
	assert_int_equal(replay(x), CUT_FAILED);
}

/* A finished log's version-1 journal (an older cutover's), rerun: its
 * earlier runs' outcomes still give exit 3; it is closed out, and says so
 * from then on. */
static void rp_run__finished_version_1_journal_is_closed_out_keeping_its_outcomes(void **state)
{
	fx *x = *state;
	build_tree(x);
	assert_int_equal(replay(x), CUT_OK);
	fmt_creader *r = fmt_creader_open(x->log);
	assert_non_null(r);
	write_v1_journal(x->jn, fmt_creader_id(r), 13, true, false);
	fmt_creader_close(r);
	assert_int_equal(replay(x), CUT_INCOMPLETE);
	assert_true(x->st.finished_before);
	assert_int_equal(fsize(x->jn), J_CLOSED_OUT);
	assert_int_equal(replay(x), CUT_INCOMPLETE);
	assert_true(x->st.finished_before);
}

/* A finished log's exit code still counts what its killed runs left
 * (their PROGRESS records are gone once it is closed out). */
static void rp_run__closed_out_journal_keeps_the_earlier_runs_outcomes(void **state)
{
	fx *x = *state;
	build_tree(x);
	rp_journal *j = journal_of_an_earlier_run(x);
	rp_journal_note(j, 4, RP_J_DRIFTED); /* a/big, copied as it was then */
	assert_int_equal(rp_journal_flush(j, 0, false), 0);
	rp_journal_close(j);
	assert_int_equal(replay(x), CUT_INCOMPLETE);
	assert_int_equal(x->st.earlier, 1);
	assert_int_equal(x->st.journaled, 1);
	assert_int_equal(fsize(x->jn), J_CLOSED_OUT);
	assert_int_equal(replay(x), CUT_INCOMPLETE);
	assert_true(x->st.finished_before);
}

/* What a resume finds, across runs and around the bitmap's wrap: records
 * below the watermark, the ones listed above it (and not their aliases one
 * span further), the outcomes, a torn tail; and a journal listing a record
 * beyond the span the scheduler admits is refused, not misread. */
static void rp_journal__resume_finds_the_progress_of_every_earlier_run(void **state)
{
	fx *x = *state;
	const uint8_t id[FMT_ID_LEN] = {9, 9, 9};
	const uint64_t S = RP_SPAN, w1 = S - 3, w2 = S + 2;
	rp_journal *j;
	assert_int_equal(rp_journal_open(x->jn, id, false, false, &j), 0);
	rp_journal_note(j, S - 1, RP_J_APPLIED);
	rp_journal_note(j, S + 1, RP_J_APPLIED);
	rp_journal_note(j, S + 5, RP_J_DRIFTED);
	assert_int_equal(rp_journal_flush(j, w1, false), 0);
	rp_journal_close(j); /* killed */
	assert_int_equal(rp_journal_open(x->jn, id, false, false, &j), 0);
	uint64_t w, above;
	assert_int_equal(rp_journal_progress(j, &w, &above), 2); /* START, PROGRESS */
	assert_int_equal(w, w1);
	assert_int_equal(above, 3);
	assert_true(rp_journal_resumed(j));
	assert_int_equal(rp_journal_earlier(j), 1);
	const uint64_t yes1[] = {0, w1 - 1, S - 1, S + 1, S + 5};
	const uint64_t no1[] = {w1, S - 2, S, S + 2, S + 4, S + 6, 2 * S - 1, 2 * S + 1};
	for (size_t i = 0; i < sizeof yes1 / 8; i++)
		assert_true(rp_journal_done(j, yes1[i]));
	for (size_t i = 0; i < sizeof no1 / 8; i++)
		assert_false(rp_journal_done(j, no1[i]));
	/* the second run finishes up to w2 and one more, and is killed */
	rp_journal_note(j, S + 3, RP_J_VANISHED);
	assert_int_equal(rp_journal_flush(j, w2, false), 0);
	rp_journal_close(j);
	FILE *f = fopen(x->jn, "a"); /* and a record torn by the crash */
	assert_non_null(f);
	fwrite("\1\0\0\0\7\0\0\0torn", 1, 12, f);
	fclose(f);
	off_t whole = fsize(x->jn) - 12;
	assert_int_equal(rp_journal_open(x->jn, id, false, false, &j), 0);
	assert_int_equal(fsize(x->jn), whole);
	assert_int_equal(rp_journal_progress(j, &w, &above), 3);
	assert_int_equal(w, w2);
	assert_int_equal(above, 2);
	assert_int_equal(rp_journal_earlier(j), 2);
	assert_true(rp_journal_vanished(j, S + 3));
	assert_false(rp_journal_vanished(j, S + 5));
	const uint64_t yes2[] = {S - 1, S, S + 1, S + 3, S + 5};
	const uint64_t no2[] = {w2, S + 4, S + 6, 2 * S - 1, 2 * S + 3, 2 * S + 5};
	for (size_t i = 0; i < sizeof yes2 / 8; i++)
		assert_true(rp_journal_done(j, yes2[i]));
	for (size_t i = 0; i < sizeof no2 / 8; i++)
		assert_false(rp_journal_done(j, no2[i]));
	/* a record no scheduler could have finished yet */
	rp_journal_note(j, w2 + S, RP_J_APPLIED);
	assert_int_equal(rp_journal_flush(j, w2, false), 0);
	rp_journal_close(j);
	assert_int_equal(rp_journal_open(x->jn, id, false, false, &j), CUT_FAILED);
}

static void rp_run__leftover_temporary_is_cleaned_on_redo(void **state)
{
	fx *x = *state;
	wfile(x->src, "f", "new content\n", T0);
	lw_begin(x);
	lw(x, FMT_OP_CREATE, "f");
	lw_finish(x);
	char tmp[32];
	rp_tmp_name(tmp, 0);
	wfile(x->dst, tmp, "half a mess", T0);
	assert_int_equal(replay(x), CUT_OK);
	assert_false(exists(x->dst, tmp));
	assert_string_equal(slurp(x->dst, "f"), "new content\n");
}

static void rp_run__rename_moves_without_copying(void **state)
{
	fx *x = *state;
	mkd(x->src, "cur");
	wfile(x->src, "cur/m:2,S", "mail\n", T0);
	mkd(x->dst, "cur");
	wfile(x->dst, "cur/m:2,", "mail\n", T0);
	struct stat before = lst(x->dst, "cur/m:2,");
	fmt_old o = old_of(&before);
	fmt_entry e = ent(x, "cur/m:2,S");
	e.path = "cur/m:2,";
	e.path_len = (uint32_t)strlen(e.path);
	lw_begin(x);
	lw_add(x, FMT_OP_RENAME, e, "cur/m:2,S", &o);
	lw_finish(x);
	assert_int_equal(replay(x), CUT_OK);
	assert_int_equal(x->st.renamed, 1);
	assert_int_equal(x->st.bytes_copied, 0);
	assert_false(exists(x->dst, "cur/m:2,"));
	assert_int_equal(lst(x->dst, "cur/m:2,S").st_ino, before.st_ino);
	/* redo after a lost journal: source gone, destination as expected */
	assert_int_equal(unlink(x->jn), 0);
	assert_int_equal(replay(x), CUT_OK);
	assert_int_equal(x->st.noop, 1);
}

static void rp_run__rename_onto_an_existing_name_is_a_conflict(void **state)
{
	fx *x = *state;
	wfile(x->src, "b", "x\n", T0);
	wfile(x->dst, "a", "x\n", T0);
	wfile(x->dst, "b", "other\n", T0);
	fmt_entry e = ent(x, "b");
	e.path = "a";
	e.path_len = 1;
	lw_begin(x);
	lw_add(x, FMT_OP_RENAME, e, "b", NULL);
	lw_finish(x);
	assert_int_equal(replay(x), CUT_CONFLICT);
	assert_string_equal(slurp(x->dst, "b"), "other\n");
	assert_true(exists(x->dst, "a"));
}

static void rp_run__create_over_a_different_file_stops(void **state)
{
	fx *x = *state;
	wfile(x->src, "f", "from the log\n", T0);
	wfile(x->dst, "f", "precious\n", T0 + 5);
	wfile(x->src, "g", "g\n", T0);
	lw_begin(x);
	lw(x, FMT_OP_CREATE, "f");
	lw_finish(x);
	assert_int_equal(replay(x), CUT_CONFLICT);
	assert_string_equal(slurp(x->dst, "f"), "precious\n");
	assert_int_equal(x->st.conflicts, 1);
	/* still stopped on a rerun: the journal does not list it */
	assert_int_equal(replay(x), CUT_CONFLICT);
}

static void rp_run__conflict_skip_leaves_it_and_says_incomplete(void **state)
{
	fx *x = *state;
	wfile(x->src, "f", "from the log\n", T0);
	wfile(x->src, "g", "g\n", T0);
	wfile(x->dst, "f", "precious\n", T0 + 5);
	lw_begin(x);
	lw(x, FMT_OP_CREATE, "f");
	lw(x, FMT_OP_CREATE, "g");
	lw_finish(x);
	x->on_conflict = RP_CONFLICT_SKIP;
	assert_int_equal(replay(x), CUT_INCOMPLETE);
	assert_string_equal(slurp(x->dst, "f"), "precious\n");
	assert_string_equal(slurp(x->dst, "g"), "g\n");
	assert_int_equal(x->st.conflicts_skipped, 1);
	/* the finished log still reports what it skipped */
	assert_int_equal(replay(x), CUT_INCOMPLETE);
}

static void rp_run__conflict_overwrite_replaces_files_not_dirs(void **state)
{
	fx *x = *state;
	wfile(x->src, "f", "from the log\n", T0);
	wfile(x->src, "d", "a file\n", T0);
	wfile(x->dst, "f", "stale\n", T0 + 5);
	mkd(x->dst, "d");
	lw_begin(x);
	lw(x, FMT_OP_CREATE, "f");
	lw(x, FMT_OP_CREATE, "d");
	lw_finish(x);
	x->on_conflict = RP_CONFLICT_OVERWRITE;
	assert_int_equal(replay(x), CUT_CONFLICT);
	assert_string_equal(slurp(x->dst, "f"), "from the log\n");
	assert_true(S_ISDIR(lst(x->dst, "d").st_mode));
}

static void rp_run__update_needs_the_old_file(void **state)
{
	fx *x = *state;
	wfile(x->src, "uidlist", "3 V1 N3\n1 :a\n2 :b\n", T0 + 10);
	wfile(x->dst, "uidlist", "3 V1 N2\n1 :a\n", T0);
	struct stat before = lst(x->dst, "uidlist");
	fmt_old o = old_of(&before);
	lw_begin(x);
	lw_add(x, FMT_OP_UPDATE, ent(x, "uidlist"), NULL, &o);
	lw_finish(x);
	assert_int_equal(replay(x), CUT_OK);
	assert_string_equal(slurp(x->dst, "uidlist"), "3 V1 N3\n1 :a\n2 :b\n");
	assert_int_equal(x->st.updated, 1);
	assert_true(lst(x->dst, "uidlist").st_ino != before.st_ino); /* replaced by rename */
	assert_parity(x);
	/* the same update on a target that changed meanwhile: conflict */
	unlink(x->jn);
	wfile(x->dst, "uidlist", "someone else\n", T0 + 99);
	assert_int_equal(replay(x), CUT_CONFLICT);
	assert_string_equal(slurp(x->dst, "uidlist"), "someone else\n");
}

static void rp_run__in_place_update_keeps_the_directory_mtime(void **state)
{
	fx *x = *state;
	/* dovecot.index.log appended in place: the source directory's mtime
	 * does not move, so the log has no meta for it; the target's must not
	 * move either, though replay replaces the file by rename. */
	mkd(x->src, "M");
	mkd(x->dst, "M");
	wfile(x->dst, "M/dovecot.index.log", "rec1\n", T0);
	wfile(x->dst, "M/dovecot.index.cache", "c1\n", T0);
	wfile(x->src, "M/dovecot.index.log", "rec1\nrec2\n", T0 + 100);
	wfile(x->src, "M/dovecot.index.cache", "c1\nc2\n", T0 + 101);
	settime(x->src, "M", T0 + 7);
	settime(x->dst, "M", T0 + 7);
	settime(x->src, "", T0 + 8);
	settime(x->dst, "", T0 + 8);
	struct stat a = lst(x->dst, "M/dovecot.index.log"), b = lst(x->dst, "M/dovecot.index.cache");
	fmt_old oa = old_of(&a), ob = old_of(&b);
	lw_begin(x);
	lw_add(x, FMT_OP_UPDATE, ent(x, "M/dovecot.index.log"), NULL, &oa);
	lw_add(x, FMT_OP_UPDATE, ent(x, "M/dovecot.index.cache"), NULL, &ob);
	lw_finish(x);
	x->jobs = 2;
	assert_int_equal(replay(x), CUT_OK);
	assert_int_equal(lst(x->dst, "M").st_mtim.tv_nsec, (T0 + 7) % 1000000000);
	assert_parity(x);
}

static void rp_run__delete_checks_its_victim(void **state)
{
	fx *x = *state;
	wfile(x->dst, "gone", "bye\n", T0);
	wfile(x->dst, "keep", "changed on the target\n", T0 + 7);
	struct stat g = lst(x->dst, "gone");
	fmt_old og = old_of(&g);
	fmt_old ok = og; /* what the log thinks "keep" is */
	fmt_entry e = {.path = "gone", .path_len = 4, .type = FMT_T_FILE, .size = 4, .mtime_ns = T0};
	lw_begin(x);
	lw_add(x, FMT_OP_DELETE, e, NULL, &og);
	e.path = "absent";
	e.path_len = 6;
	lw_add(x, FMT_OP_DELETE, e, NULL, &og);
	e.path = "keep";
	e.path_len = 4;
	lw_add(x, FMT_OP_DELETE, e, NULL, &ok);
	lw_finish(x);
	assert_int_equal(replay(x), CUT_CONFLICT);
	assert_false(exists(x->dst, "gone"));
	assert_true(exists(x->dst, "keep"));
	assert_int_equal(x->st.deleted, 1);
	assert_int_equal(x->st.noop, 1);
}

static void rp_run__rmdir_after_contents_and_refuses_unknown_contents(void **state)
{
	fx *x = *state;
	mkd(x->dst, "d");
	mkd(x->dst, "d/sub");
	wfile(x->dst, "d/sub/f", "f\n", T0);
	mkd(x->dst, "e");
	wfile(x->dst, "e/unknown", "u\n", T0);
	struct stat f = lst(x->dst, "d/sub/f");
	fmt_old of = old_of(&f);
	fmt_entry fe = {.path = "d/sub/f", .path_len = 7, .type = FMT_T_FILE, .size = 2, .mtime_ns = T0};
	fmt_entry de = {.path = "d/sub", .path_len = 5, .type = FMT_T_DIR};
	lw_begin(x);
	lw_add(x, FMT_OP_DELETE, fe, NULL, &of);
	lw_add(x, FMT_OP_RMDIR, de, NULL, NULL);
	de.path = "d";
	de.path_len = 1;
	lw_add(x, FMT_OP_RMDIR, de, NULL, NULL);
	de.path = "e";
	lw_add(x, FMT_OP_RMDIR, de, NULL, NULL);
	lw_finish(x);
	x->jobs = 8;
	x->on_conflict = RP_CONFLICT_SKIP;
	assert_int_equal(replay(x), CUT_INCOMPLETE);
	assert_int_equal(x->st.rmdirs, 2);
	assert_false(exists(x->dst, "d"));
	assert_true(exists(x->dst, "e/unknown"));
}

static void rp_run__source_drift_is_copied_and_counted(void **state)
{
	fx *x = *state;
	wfile(x->src, "log", "first\n", T0);
	fmt_entry e = ent(x, "log");
	wfile(x->src, "log", "first\nsecond\n", T0 + 50); /* appended after the scan */
	wfile(x->src, "gone", "x", T0);
	fmt_entry g = ent(x, "gone");
	char p[512];
	pathf(p, sizeof p, x->src, "gone");
	unlink(p);
	lw_begin(x);
	lw_add(x, FMT_OP_CREATE, e, NULL, NULL);
	lw_add(x, FMT_OP_CREATE, g, NULL, NULL);
	lw_finish(x);
	assert_int_equal(replay(x), CUT_INCOMPLETE);
	assert_int_equal(x->st.drifted, 1);
	assert_int_equal(x->st.vanished, 1);
	assert_string_equal(slurp(x->dst, "log"), "first\nsecond\n");
	assert_int_equal(lst(x->dst, "log").st_mtim.tv_nsec, (T0 + 50) % 1000000000);
	assert_false(exists(x->dst, "gone"));
	/* the drifted copy counts as in place on a redo */
	assert_int_equal(truncate(x->jn, 40), 0);
	assert_int_equal(replay(x), CUT_INCOMPLETE); /* "gone" vanished again */
	assert_int_equal(x->st.noop, 1);
}

/* A message in a/m and, hard-linked, in b/m, and its log: the two folders,
 * the create of a/m and the link a/m -> b/m.  Its source paths in p and q. */
static void linked_pair_log(fx *x, const char *content, char p[512], char q[512])
{
	mkd(x->src, "a");
	mkd(x->src, "b");
	wfile(x->src, "a/m", content, T0);
	pathf(p, 512, x->src, "a/m");
	pathf(q, 512, x->src, "b/m");
	assert_int_equal(link(p, q), 0);
	settime(x->src, "a", T0);
	settime(x->src, "b", T0);
	lw_begin(x);
	lw(x, FMT_OP_MKDIR, "a");
	lw(x, FMT_OP_MKDIR, "b");
	lw(x, FMT_OP_CREATE, "a/m");
	lw_add(x, FMT_OP_LINK, ent(x, "a/m"), "b/m", NULL);
	lw_finish(x);
}

static void rp_run__link_to_a_vanished_file_is_vanished_not_a_conflict(void **state)
{
	fx *x = *state;
	char p[512], q[512];
	linked_pair_log(x, "mail\n", p, q);
	unlink(p); /* expunged after the scan */
	unlink(q);
	assert_int_equal(replay(x), CUT_INCOMPLETE);
	assert_int_equal(x->st.vanished, 2);
	assert_int_equal(x->st.conflicts, 0);
}

/* A message delivered to three folders, expunged from the first between
 * scan and replay: the other two names are still mail, and a bare replay
 * must make them (linked), since the next diff sees no change there. */
static void rp_run__link_whose_file_vanished_makes_the_names_left_in_the_source(void **state)
{
	fx *x = *state;
	const char *dirs[] = {"a", "b", "c"};
	char p[3][512];
	for (int i = 0; i < 3; i++) {
		mkd(x->src, dirs[i]);
		pathf(p[i], sizeof p[i], x->src, i == 0 ? "a/m" : i == 1 ? "b/m" : "c/m");
	}
	wfile(x->src, "a/m", "mail to three\n", T0);
	assert_int_equal(link(p[0], p[1]), 0);
	assert_int_equal(link(p[0], p[2]), 0);
	for (int i = 0; i < 3; i++)
		settime(x->src, dirs[i], T0);
	lw_begin(x);
	for (int i = 0; i < 3; i++)
		lw(x, FMT_OP_MKDIR, dirs[i]);
	lw(x, FMT_OP_CREATE, "a/m");
	lw_add(x, FMT_OP_LINK, ent(x, "a/m"), "b/m", NULL);
	lw_add(x, FMT_OP_LINK, ent(x, "a/m"), "c/m", NULL);
	lw_finish(x);
	unlink(p[0]); /* expunged from a/ after the scan */
	settime(x->src, "a", T0); /* (the next pass would bring a/'s new time) */
	assert_int_equal(replay(x), CUT_INCOMPLETE);
	assert_int_equal(x->st.vanished, 1);
	assert_int_equal(x->st.drifted, 2);
	assert_int_equal(x->st.conflicts, 0);
	assert_false(exists(x->dst, "a/m"));
	assert_string_equal(slurp(x->dst, "b/m"), "mail to three\n");
	struct stat b = lst(x->dst, "b/m"), c = lst(x->dst, "c/m");
	assert_int_equal(b.st_ino, c.st_ino);
	assert_int_equal(b.st_nlink, 2);
	assert_int_equal(b.st_mtim.tv_nsec, T0 % 1000000000);
	assert_parity(x);
	/* a redo after a lost journal finds both names in place */
	assert_int_equal(truncate(x->jn, 40), 0);
	assert_int_equal(replay(x), CUT_INCOMPLETE);
	assert_int_equal(x->st.noop, 5); /* 3 mkdirs, 2 names */
	assert_int_equal(x->st.vanished, 1);
	assert_int_equal(lst(x->dst, "c/m").st_ino, b.st_ino);
	assert_parity(x);
}

/* The file a link names vanished under its create, and is back in the
 * source (renamed back) when the link runs, in a resumed run that knows the
 * create vanished only from the journal: drift, not a conflict that would
 * stop every later run of this log. */
static void rp_run__link_whose_file_came_back_is_drift_after_a_resume(void **state)
{
	fx *x = *state;
	char p[512], q[512];
	linked_pair_log(x, "mail to two\n", p, q);
	/* The earlier run: both directories made, the create vanished. */
	mkd(x->dst, "a");
	mkd(x->dst, "b");
	rp_journal *j = journal_of_an_earlier_run(x);
	rp_journal_note(j, 2, RP_J_VANISHED);
	assert_int_equal(rp_journal_flush(j, 3, true), 0);
	rp_journal_close(j);
	assert_int_equal(replay(x), CUT_INCOMPLETE);
	assert_int_equal(x->st.conflicts, 0);
	assert_int_equal(x->st.drifted, 1);
	assert_string_equal(slurp(x->dst, "a/m"), "mail to two\n");
	assert_int_equal(lst(x->dst, "a/m").st_ino, lst(x->dst, "b/m").st_ino);
	assert_parity(x);
}

/* A run killed after putting a drifted copy in place, before its journal
 * said so; the source changed again since (an index file Dovecot writes all
 * day): the resumed run knows the file for its own copy and copies the
 * source again.  The same file without an earlier run is a conflict. */
static void rp_run__resume_replaces_its_own_drifted_copy(void **state)
{
	fx *x = *state;
	wfile(x->src, "dovecot.index.log", "v1\n", T0);
	lw_begin(x);
	lw(x, FMT_OP_CREATE, "dovecot.index.log");
	lw_finish(x);
	wfile(x->dst, "dovecot.index.log", "v1\nv2\n", T0 + 10); /* before any run */
	wfile(x->src, "dovecot.index.log", "v1\nv2\nv3\n", T0 + 20);
	assert_int_equal(replay(x), CUT_CONFLICT);
	assert_int_equal(replay(x), CUT_CONFLICT); /* a rerun: still not ours */
	assert_string_equal(slurp(x->dst, "dovecot.index.log"), "v1\nv2\n");
	unlink(x->jn);
	rp_journal_close(journal_of_an_earlier_run(x)); /* nothing journaled ... */
	usleep(20000);       /* (file times come from the kernel's coarse clock) */
	wfile(x->dst, "dovecot.index.log", "v1\nv2\n", T0 + 10); /* ... but its copy */
	settime(x->src, "", T0 + 8); /* (the roots' times: set apart from the wall clock's second) */
	settime(x->dst, "", T0 + 8);
	assert_int_equal(replay(x), CUT_INCOMPLETE);
	assert_int_equal(x->st.conflicts, 0);
	assert_int_equal(x->st.drifted, 1);
	assert_string_equal(slurp(x->dst, "dovecot.index.log"), "v1\nv2\nv3\n");
	assert_parity(x);
}

/* A copy made within RP_RACY_NS of the file's last change is counted racy
 * (sync copies it again next pass); neither drift nor a change of the exit
 * code. */
static void rp_run__copies_of_files_changed_just_now_are_racy(void **state)
{
	fx *x = *state;
	wfile(x->src, "old", "written long ago\n", T0);
	wfile(x->src, "new", "written just now\n", cut_now_ns());
	lw_begin(x);
	lw(x, FMT_OP_CREATE, "old");
	lw(x, FMT_OP_CREATE, "new");
	lw_finish(x);
	assert_int_equal(replay(x), CUT_OK);
	assert_int_equal(x->st.created, 2);
	assert_int_equal(x->st.racy, 1);
	assert_int_equal(x->st.drifted, 0);
}

static void rp_run__planted_symlink_never_leads_outside(void **state)
{
	fx *x = *state;
	/* The target's directory d is a symlink to a directory outside. */
	wfile(x->out, "victim", "outside\n", T0);
	chmod(x->out, 0755);
	char p[512];
	pathf(p, sizeof p, x->dst, "d");
	assert_int_equal(symlink(x->out, p), 0);
	pathf(p, sizeof p, x->dst, "f");
	char v[512];
	pathf(v, sizeof v, x->out, "victim");
	assert_int_equal(symlink(v, p), 0);
	mkd(x->src, "d");
	wfile(x->src, "d/new", "new\n", T0);
	wfile(x->src, "d/victim", "replacement\n", T0);
	wfile(x->src, "f", "f\n", T0);
	struct stat vs = lst(x->out, "victim");
	fmt_old ov = old_of(&vs);
	lw_begin(x);
	lw(x, FMT_OP_CREATE, "d/new");
	lw_add(x, FMT_OP_UPDATE, ent(x, "d/victim"), NULL, &ov);
	lw_add(x, FMT_OP_DELETE, (fmt_entry){.path = "d/victim", .path_len = 8, .type = FMT_T_FILE,
					     .size = 8, .mtime_ns = T0}, NULL, &ov);
	fmt_entry m = ent(x, "f");
	m.mode = 0777;
	lw_add(x, FMT_OP_META, m, NULL, NULL);
	lw_add(x, FMT_OP_UPDATE, ent(x, "f"), NULL, &ov);
	lw_add(x, FMT_OP_DELETE, (fmt_entry){.path = "f", .path_len = 1, .type = FMT_T_FILE,
					     .size = 8, .mtime_ns = T0}, NULL, &ov);
	lw_finish(x);
	x->on_conflict = RP_CONFLICT_SKIP;
	assert_int_equal(replay(x), CUT_INCOMPLETE);
	assert_int_equal(x->st.conflicts, 6);
	assert_string_equal(slurp(x->out, "victim"), "outside\n");
	assert_false(exists(x->out, "new"));
	struct stat after = lst(x->out, "victim");
	assert_int_equal(after.st_mode & 07777, vs.st_mode & 07777);
	assert_int_equal(after.st_mtim.tv_nsec, vs.st_mtim.tv_nsec);
	assert_true(S_ISLNK(lst(x->dst, "f").st_mode));
	/* overwrite does not follow them either */
	unlink(x->jn);
	x->on_conflict = RP_CONFLICT_OVERWRITE;
	replay(x);
	assert_string_equal(slurp(x->out, "victim"), "outside\n");
	assert_false(exists(x->out, "new"));
}

static void rp_run__refuses_reserved_temporary_names(void **state)
{
	fx *x = *state;
	mkd(x->src, "a");
	wfile(x->src, "a/" FMT_RESERVED_REPLAY "0000000000000001", "x", T0);
	lw_begin(x);
	lw(x, FMT_OP_MKDIR, "a");
	lw(x, FMT_OP_CREATE, "a/" FMT_RESERVED_REPLAY "0000000000000001");
	lw_finish(x);
	assert_int_equal(replay(x), CUT_FAILED);
	assert_false(exists(x->dst, "a"));
	assert_false(exists(x->jn, ""));
}

/* Writes a change log whose single record has a path the writer would
 * refuse, through the container API, as a hostile log would be made. */
static void write_raw_log(fx *x, int op, const char *path, size_t len, const char *to)
{
	fmt_cw *cw = fmt_cw_create(x->log, FMT_MAGIC_CHANGES);
	assert_non_null(cw);
	cut_buf ops = {0}, raw = {0};
	/* a valid first record, so that "nothing applied" means something */
	cut_buf_putc(&ops, FMT_OP_MKDIR);
	cut_buf_putc(&ops, (uint8_t)op);
	if (to) {
		cut_buf_varint(&ops, strlen(to));
		cut_buf_put(&ops, to, strlen(to));
	}
	fmt_enc enc = {0};
	fmt_entry d = {.path = "ok", .path_len = 2, .type = FMT_T_DIR, .mode = 0755, .mtime_ns = T0};
	fmt_enc_add(&enc, &d);
	fmt_entry e = {.path = path, .path_len = (uint32_t)len, .type = op == FMT_OP_MKDIR ? FMT_T_DIR : FMT_T_FILE,
		       .mode = 0644, .size = 1, .mtime_ns = T0};
	fmt_enc_add(&enc, &e);
	uint8_t h[8];
	cut_put_le32(h, 0);
	cut_put_le32(h + 4, (uint32_t)ops.len);
	cut_buf_put(&raw, h, 8);
	cut_buf_put(&raw, ops.p, ops.len);
	fmt_enc_finish(&enc, &raw);
	assert_int_equal(fmt_cw_block(cw, raw.p, raw.len, 2, "ok", 2), 0);
	cut_buf m = {0};
	fmt_meta_put_str(&m, FMT_CT_SOURCE, x->src);
	uint8_t id[FMT_ID_LEN] = {0};
	fmt_meta_put(&m, FMT_CT_NEW_ID, id, FMT_ID_LEN);
	fmt_meta_put_u64(&m, FMT_CT_CREATED_NS, (uint64_t)T0);
	uint8_t v[8 * (FMT_OP_MAX + 1)] = {0};
	cut_put_le64(v + 8 * FMT_OP_MKDIR, op == FMT_OP_MKDIR ? 2 : 1);
	if (op != FMT_OP_MKDIR)
		cut_put_le64(v + 8 * op, 1);
	fmt_meta_put(&m, FMT_CT_OPS, v, sizeof v);
	memset(v, 0, sizeof v);
	fmt_meta_put(&m, FMT_CT_OP_BYTES, v, sizeof v);
	assert_int_equal(fmt_cw_finish(cw, &m, 2, id), 0);
	cut_buf_free(&m);
	cut_buf_free(&ops);
	cut_buf_free(&raw);
	fmt_enc_free(&enc);
}

static void rp_run__refuses_traversal_paths_before_any_change(void **state)
{
	fx *x = *state;
	wfile(x->src, "x", "x", T0);
	static const struct {
		int op;
		const char *path;
		size_t len;
		const char *to;
	} bad[] = {
		{FMT_OP_MKDIR, "../escape", 9, NULL},
		{FMT_OP_CREATE, "/etc/evil", 9, NULL},
		{FMT_OP_CREATE, "a//b", 4, NULL},
		{FMT_OP_CREATE, "a/./b", 5, NULL},
		{FMT_OP_CREATE, "a/..", 4, NULL},
		{FMT_OP_CREATE, "a/\0b", 4, NULL},
		{FMT_OP_CREATE, "a/", 2, NULL},
		{FMT_OP_RENAME, "x", 1, "../../outside/x"},
		{FMT_OP_LINK, "x", 1, "/tmp/evil"},
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		write_raw_log(x, bad[i].op, bad[i].path, bad[i].len, bad[i].to);
		assert_int_equal(replay(x), CUT_FAILED);
		assert_false(exists(x->dst, "ok"));
		assert_false(exists(x->dir, "escape"));
		assert_false(exists(x->out, "x"));
	}
	/* the same shape with a good path is applied: the test is sound */
	write_raw_log(x, FMT_OP_MKDIR, "fine", 4, NULL);
	assert_int_equal(replay(x), CUT_OK);
	assert_true(exists(x->dst, "ok") && exists(x->dst, "fine"));
}

static void rp_run__corrupt_or_truncated_log_is_refused(void **state)
{
	fx *x = *state;
	build_tree(x);
	struct stat st;
	assert_int_equal(stat(x->log, &st), 0);
	int fd = open(x->log, O_RDWR);
	assert_true(fd >= 0);
	uint8_t b;
	assert_int_equal(pread(fd, &b, 1, 40), 1);
	b ^= 0x10;
	assert_int_equal(pwrite(fd, &b, 1, 40), 1);
	assert_int_equal(replay(x), CUT_FAILED);
	assert_false(exists(x->dst, "a"));
	b ^= 0x10;
	assert_int_equal(pwrite(fd, &b, 1, 40), 1);
	close(fd);
	assert_int_equal(truncate(x->log, st.st_size - 10), 0);
	assert_int_equal(replay(x), CUT_FAILED);
	assert_false(exists(x->dst, "a"));
}

static void rp_run__journal_of_another_unfinished_log_is_refused(void **state)
{
	fx *x = *state;
	wfile(x->src, "f", "log\n", T0);
	wfile(x->dst, "f", "precious\n", T0 + 1);
	lw_begin(x);
	lw(x, FMT_OP_CREATE, "f");
	lw_finish(x);
	assert_int_equal(replay(x), CUT_CONFLICT); /* log A stays unfinished */
	wfile(x->src, "g", "g\n", T0);
	lw_begin(x);
	lw(x, FMT_OP_CREATE, "g");
	lw_finish(x); /* log B */
	assert_int_equal(replay(x), CUT_FAILED);
	assert_false(exists(x->dst, "g"));
	/* after a finished log, the next log starts a fresh journal */
	unlink(x->jn);
	assert_int_equal(replay(x), CUT_OK);
	wfile(x->src, "h", "h\n", T0);
	lw_begin(x);
	lw(x, FMT_OP_CREATE, "h");
	lw_finish(x);
	assert_int_equal(replay(x), CUT_OK);
	assert_true(exists(x->dst, "h"));
}

static void rp_run__locked_journal_is_refused(void **state)
{
	fx *x = *state;
	build_tree(x);
	int fd = open(x->jn, O_RDWR | O_CREAT, 0600);
	assert_true(fd >= 0);
	assert_int_equal(flock(fd, LOCK_EX), 0);
	assert_int_equal(replay(x), CUT_LOCKED);
	close(fd);
	assert_false(exists(x->dst, "a"));
}

static void rp_run__dry_run_changes_nothing(void **state)
{
	fx *x = *state;
	build_tree(x);
	char p[512];
	pathf(p, sizeof p, x->dir, "plan");
	FILE *f = fopen(p, "w");
	rp_opts o = {.log = x->log, .source = x->src, .target = x->dst, .journal = x->jn,
		     .dry_run = true, .dry_out = f};
	assert_int_equal(rp_run(&o, &x->st), CUT_OK);
	fclose(f);
	assert_int_equal(x->st.done, 13);
	assert_false(exists(x->dst, "a"));
	assert_false(exists(x->jn, ""));
	struct stat st;
	assert_int_equal(stat(p, &st), 0);
	assert_true(st.st_size > 100);
}

static void rp_run__parallel_mail_day(void **state)
{
	fx *x = *state;
	/* 16 folders x 40 messages, then a "day": flag renames, deletes,
	 * deliveries, links across folders; applied with 16 workers. */
	char rel[128], rel2[160];
	mkd(x->src, "u");
	mkd(x->dst, "u");
	for (int d = 0; d < 16; d++) {
		snprintf(rel, sizeof rel, "u/f%02d", d);
		mkd(x->src, rel);
		mkd(x->dst, rel);
		for (int i = 0; i < 40; i++) {
			snprintf(rel, sizeof rel, "u/f%02d/%d.M%dP1:2,", d, i, d);
			wfile(x->src, rel, "body body body\n", T0 + i);
			wfile(x->dst, rel, "body body body\n", T0 + i);
		}
	}
	lw_begin(x);
	for (int d = 0; d < 16; d++) {
		for (int i = 0; i < 40; i++) {
			snprintf(rel, sizeof rel, "u/f%02d/%d.M%dP1:2,", d, i, d);
			struct stat st = lst(x->src, rel);
			fmt_old o = old_of(&st);
			char p[512];
			pathf(p, sizeof p, x->src, rel);
			if (i % 3 == 0) { /* flag change */
				snprintf(rel2, sizeof rel2, "%sS", rel);
				char q[512];
				pathf(q, sizeof q, x->src, rel2);
				assert_int_equal(rename(p, q), 0);
				fmt_entry e = ent(x, rel2);
				e.path = rel;
				e.path_len = (uint32_t)strlen(rel);
				lw_add(x, FMT_OP_RENAME, e, rel2, &o);
			} else if (i % 7 == 0) { /* expunge */
				fmt_entry e = {.path = rel, .path_len = (uint32_t)strlen(rel),
					       .type = FMT_T_FILE, .size = o.size, .mtime_ns = o.mtime_ns};
				assert_int_equal(unlink(p), 0);
				lw_add(x, FMT_OP_DELETE, e, NULL, &o);
			}
		}
		for (int i = 0; i < 10; i++) { /* deliveries */
			snprintf(rel, sizeof rel, "u/f%02d/new%d.M%dP2:2,", d, i, d);
			wfile(x->src, rel, "fresh mail\n", T0 + 1000 + i);
			lw(x, FMT_OP_CREATE, rel);
		}
	}
	for (int d = 1; d < 16; d++) { /* copies by hard link to the previous folder */
		snprintf(rel, sizeof rel, "u/f%02d/new0.M%dP2:2,", d, d);
		snprintf(rel2, sizeof rel2, "u/f%02d/copy.M%dP2:2,", d - 1, d);
		char p[512], q[512];
		pathf(p, sizeof p, x->src, rel);
		pathf(q, sizeof q, x->src, rel2);
		assert_int_equal(link(p, q), 0);
		lw_add(x, FMT_OP_LINK, ent(x, rel), rel2, NULL);
	}
	for (int d = 0; d < 16; d++) {
		snprintf(rel, sizeof rel, "u/f%02d", d);
		settime(x->src, rel, T0 + 5000 + d);
	}
	settime(x->src, "u", T0 + 6000);
	for (int d = 0; d < 16; d++) {
		snprintf(rel, sizeof rel, "u/f%02d", d);
		lw(x, FMT_OP_META, rel);
	}
	lw(x, FMT_OP_META, "u");
	lw_finish(x);
	settime(x->src, "", lst(x->dst, "").st_mtim.tv_sec * 1000000000LL +
				    lst(x->dst, "").st_mtim.tv_nsec);
	x->jobs = 16;
	assert_int_equal(replay(x), CUT_OK);
	assert_parity(x);
	assert_int_equal(x->st.linked, 15);
	assert_int_equal(x->st.bytes_copied, 16 * 10 * 11);
	for (int d = 1; d < 16; d++) {
		snprintf(rel, sizeof rel, "u/f%02d/new0.M%dP2:2,", d, d);
		snprintf(rel2, sizeof rel2, "u/f%02d/copy.M%dP2:2,", d - 1, d);
		assert_int_equal(lst(x->dst, rel).st_ino, lst(x->dst, rel2).st_ino);
	}
}

static void fmt_path_names_replay_temp__finds_the_prefix_in_any_component(void **state)
{
	(void)state;
	assert_true(fmt_path_names_replay_temp(FMT_RESERVED_REPLAY "1", 14));
	assert_true(fmt_path_names_replay_temp("a/" FMT_RESERVED_REPLAY "x/b", 18));
	assert_false(fmt_path_names_replay_temp("a/.cutover-tm/b", 15));
	assert_false(fmt_path_names_replay_temp("a/x.cutover-tmp.1", 17));
	assert_false(fmt_path_names_replay_temp("a/" FMT_RESERVED_DIFF "1f", 14)); /* the log's own */
	char *j = rp_journal_default_path("/srv/new//");
	assert_string_equal(j, "/srv/new.cutover-journal");
	free(j);
}

static ino_t fd_ino(int fd)
{
	struct stat st;
	assert_int_equal(fstat(fd, &st), 0);
	return st.st_ino;
}

static ino_t path_ino(const char *root, const char *rel)
{
	char p[512];
	struct stat st;
	pathf(p, sizeof p, root, rel);
	assert_int_equal(lstat(p, &st), 0);
	return st.st_ino;
}

/* Replay opens source files through their parent directory, looked up once
 * and shared (srcdir.c): on NFS each component of a path is a round trip. */
static void rp_srcdirs__a_directory_is_looked_up_once_beneath_its_parent_and_forgotten_when_stale(void **state)
{
	fx *x = *state;
	mkd(x->src, "a");
	mkd(x->src, "a/b");
	wfile(x->src, "a/b/f1", "1", T0);
	wfile(x->src, "a/b/f2", "2", T0);
	wfile(x->src, "top", "t", T0);
	int srcfd = open(x->src, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_true(srcfd >= 0);
	rp_srcdirs *d = rp_srcdirs_new(srcfd);
	const char *base;
	rp_srcdir h1, h2, h3;
	/* A name at the root: the root itself, never closed by put. */
	assert_int_equal(rp_srcdir_get(d, "top", &base, &h1), 0);
	assert_int_equal(h1.fd, srcfd);
	assert_string_equal(base, "top");
	rp_srcdir_put(d, &h1, false);
	assert_int_equal(fd_ino(srcfd), path_ino(x->src, ""));
	/* Two files of one directory: one lookup, one fd, borrowed by both. */
	assert_int_equal(rp_srcdir_get(d, "a/b/f1", &base, &h1), 0);
	assert_string_equal(base, "f1");
	assert_int_equal(rp_srcdir_get(d, "a/b/f2", &base, &h2), 0);
	assert_string_equal(base, "f2");
	assert_int_equal(h2.fd, h1.fd);
	assert_int_equal(fd_ino(h1.fd), path_ino(x->src, "a/b"));
	rp_srcdir_put(d, &h1, false);
	assert_int_equal(fd_ino(h2.fd), path_ino(x->src, "a/b")); /* still open for h2 */
	rp_srcdir_put(d, &h2, false);
	/* Kept after its last borrower gave it back. */
	assert_int_equal(rp_srcdir_get(d, "a/b/f1", &base, &h3), 0);
	assert_int_equal(h3.fd, h1.fd);
	/* The directory replaced (NFS answers ESTALE through the old handle):
	 * given back as stale, it is looked up again by the next get. */
	char p[512], q[512];
	pathf(p, sizeof p, x->src, "a/b");
	pathf(q, sizeof q, x->src, "a/old");
	assert_int_equal(rename(p, q), 0);
	mkd(x->src, "a/b");
	rp_srcdir_put(d, &h3, true);
	assert_int_equal(rp_srcdir_get(d, "a/b/f1", &base, &h1), 0);
	assert_int_equal(fd_ino(h1.fd), path_ino(x->src, "a/b"));
	assert_int_not_equal(fd_ino(h1.fd), path_ino(x->src, "a/old"));
	rp_srcdir_put(d, &h1, false);
	/* A lookup that fails says why; nothing is cached. */
	assert_int_equal(rp_srcdir_get(d, "nope/f", &base, &h1), -ENOENT);
	/* Directories are opened one component at a time beneath their
	 * parents: never through a symlink, never up. */
	char l[512];
	pathf(l, sizeof l, x->src, "a/lnk");
	assert_int_equal(symlink(x->out, l), 0);
	pathf(l, sizeof l, x->src, "top-lnk");
	assert_int_equal(symlink("a", l), 0);
	wfile(x->out, "secret", "s", T0);
	assert_true(rp_srcdir_get(d, "a/lnk/secret", &base, &h1) < 0);
	assert_true(rp_srcdir_get(d, "top-lnk/b/f1", &base, &h1) < 0);
	assert_int_equal(rp_srcdir_get(d, "a/../a/b/f1", &base, &h1), -EXDEV);
	assert_int_equal(rp_srcdir_get(d, "a/./b/f1", &base, &h1), -EXDEV);
	/* A new directory beside a known one: found beneath the known parent. */
	mkd(x->src, "a/c");
	assert_int_equal(rp_srcdir_get(d, "a/c/g", &base, &h1), 0);
	assert_int_equal(fd_ino(h1.fd), path_ino(x->src, "a/c"));
	rp_srcdir_put(d, &h1, false);
	rp_srcdirs_free(d);
	close(srcfd);
}

static int pull_fails(void *ctx, rp_op **op)
{
	(void)ctx;
	(void)op;
	return -1;
}

static int done_never(void *ctx, rp_op *op)
{
	(void)ctx;
	(void)op;
	return CUT_FAILED;
}

/* rp_sched_run returns outcomes only: a pull that fails is CUT_FAILED. */
static void rp_sched_run__a_failed_pull_is_an_outcome(void **state)
{
	(void)state;
	rp_ctx cx = {.srcfd = -1, .dstfd = -1};
	rp_sched *s = rp_sched_new(&cx, 2);
	assert_non_null(s);
	assert_int_equal(rp_sched_run(s, pull_fails, NULL, done_never, NULL, NULL, NULL), CUT_FAILED);
	rp_sched_free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
		T(rp_run__from_empty_copies_every_kind_exactly),
		T(rp_run__rerun_of_a_finished_log_does_nothing),
		T(rp_run__lost_journal_redo_is_idempotent),
		T(rp_run__resume_skips_what_the_journal_lists),
		T(rp_run__journal_of_a_finished_earlier_log_is_not_read),
		T(rp_run__finished_version_1_journal_is_closed_out_keeping_its_outcomes),
		T(rp_run__closed_out_journal_keeps_the_earlier_runs_outcomes),
		T(rp_journal__resume_finds_the_progress_of_every_earlier_run),
		T(rp_run__leftover_temporary_is_cleaned_on_redo),
		T(rp_run__rename_moves_without_copying),
		T(rp_run__rename_onto_an_existing_name_is_a_conflict),
		T(rp_run__create_over_a_different_file_stops),
		T(rp_run__conflict_skip_leaves_it_and_says_incomplete),
		T(rp_run__conflict_overwrite_replaces_files_not_dirs),
		T(rp_run__update_needs_the_old_file),
		T(rp_run__in_place_update_keeps_the_directory_mtime),
		T(rp_run__delete_checks_its_victim),
		T(rp_run__rmdir_after_contents_and_refuses_unknown_contents),
		T(rp_run__source_drift_is_copied_and_counted),
		T(rp_run__link_to_a_vanished_file_is_vanished_not_a_conflict),
		T(rp_run__link_whose_file_vanished_makes_the_names_left_in_the_source),
		T(rp_run__link_whose_file_came_back_is_drift_after_a_resume),
		T(rp_run__resume_replaces_its_own_drifted_copy),
		T(rp_run__copies_of_files_changed_just_now_are_racy),
		T(rp_run__planted_symlink_never_leads_outside),
		T(rp_run__refuses_reserved_temporary_names),
		T(rp_run__refuses_traversal_paths_before_any_change),
		T(rp_run__corrupt_or_truncated_log_is_refused),
		T(rp_run__journal_of_another_unfinished_log_is_refused),
		T(rp_run__locked_journal_is_refused),
		T(rp_run__dry_run_changes_nothing),
		T(rp_run__parallel_mail_day),
		T(rp_srcdirs__a_directory_is_looked_up_once_beneath_its_parent_and_forgotten_when_stale),
		cmocka_unit_test(rp_sched_run__a_failed_pull_is_an_outcome),
		cmocka_unit_test(fmt_path_names_replay_temp__finds_the_prefix_in_any_component),
#undef T
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
