/*
 * test_diff.c - cutover diff on real trees: each case builds a tree in a
 * temporary directory, takes its manifest (an nftw walk here, so the test does
 * not depend on the scanner), changes the tree, takes a second manifest, runs
 * diff_run, applies the change log with a small applier written in plain
 * POSIX calls to a copy of the first tree (copying created files from the
 * changed tree), and checks that the copy now equals the changed tree: the
 * same paths, types, modes, sizes, times, contents, symlink targets and
 * hard-link structure.  The applier also checks every `old` the log carries,
 * and that a rename never lands on an existing path.
 *
 * Golden cases check the operations too (a swap is three renames, a folder
 * rename is one); the randomized rounds mutate a small Dovecot-like store the
 * way a mail day does.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "diff/diff.h"
#include "diff/diff_ctx.h" /* diff_skip_plan */
#include "format/path.h"
#include "tests/seed.h"

#include <xxhash.h>

/* ------------------------------------------------------------ the fixture */

static char base[256];  /* temporary directory of the test */
static char src[300], dst[300], mold[300], mnew[300], chlog[300];
static bool walk_hash; /* the walk gives files a content hash (FMT_E_HASH) */

static void sh(const char *fmt, ...)
{
	char cmd[2048];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(cmd, sizeof cmd, fmt, ap);
	va_end(ap);
	int rc = system(cmd);
	if (rc != 0)
		fail_msg("command failed (%d): %s", rc, cmd);
}

static int setup(void **state)
{
	(void)state;
	const char *t = getenv("TMPDIR");
	snprintf(base, sizeof base, "%s/cutover-tdiff.XXXXXX", t && *t ? t : "/tmp");
	if (!mkdtemp(base))
		return -1;
	snprintf(src, sizeof src, "%s/src", base);
	snprintf(dst, sizeof dst, "%s/dst", base);
	snprintf(mold, sizeof mold, "%s/old.mf", base);
	snprintf(mnew, sizeof mnew, "%s/new.mf", base);
	snprintf(chlog, sizeof chlog, "%s/changes", base);
	mkdir(src, 0755);
	walk_hash = false;
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	char cmd[512];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", base);
	return system(cmd) == 0 ? 0 : -1;
}

/* ------------------------------------------------ manifests by nftw walk */

static fmt_entry *walk_v;
static size_t walk_n, walk_cap;
static size_t walk_rootlen;
static cut_arena walk_arena;

static const char *stale_path;   /* this entry is written as carried, nlink 1 */
static const char *carried_path; /* this one as carried, its nlink as found */

/* The content hash a scan records (XXH3-128, canonical bytes), of the whole
 * file read at once: the walk's files are small. */
static void hash_file(const char *p, uint8_t out[16])
{
	FILE *f = fopen(p, "rb");
	assert_non_null(f);
	cut_buf b = {0};
	uint8_t chunk[4096];
	size_t n;
	while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
		cut_buf_put(&b, chunk, n);
	fclose(f);
	XXH128_canonical_t c;
	XXH128_canonicalFromHash(&c, XXH3_128bits(b.p, b.len));
	memcpy(out, c.digest, 16);
	cut_buf_free(&b);
}

static int walk_cb(const char *p, const struct stat *st, int flag, struct FTW *f)
{
	(void)flag;
	(void)f;
	const char *rel = p + walk_rootlen;
	if (*rel == '/')
		rel++;
	if (walk_n == walk_cap) {
		walk_cap = walk_cap ? 2 * walk_cap : 256;
		walk_v = realloc(walk_v, walk_cap * sizeof *walk_v);
	}
	fmt_entry *e = &walk_v[walk_n++];
	memset(e, 0, sizeof *e);
	e->path = cut_arena_strndup(&walk_arena, rel, strlen(rel));
	e->path_len = (uint32_t)strlen(rel);
	e->type = (uint8_t)fmt_type_from_mode(st->st_mode);
	e->mode = st->st_mode & 07777;
	e->uid = st->st_uid;
	e->gid = st->st_gid;
	e->nlink = (uint32_t)st->st_nlink;
	e->dev = st->st_dev;
	e->ino = st->st_ino;
	e->size = e->type == FMT_T_DIR ? 0 : (uint64_t)st->st_size;
	e->mtime_ns = (int64_t)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec;
	e->ctime_ns = (int64_t)st->st_ctim.tv_sec * 1000000000 + st->st_ctim.tv_nsec;
	if (walk_hash && e->type == FMT_T_FILE) {
		hash_file(p, e->hash);
		e->flags |= FMT_E_HASH;
	}
	if (stale_path && strcmp(rel, stale_path) == 0) {
		e->nlink = 1;
		e->flags |= FMT_E_CARRIED;
	}
	if (carried_path && strcmp(rel, carried_path) == 0)
		e->flags |= FMT_E_CARRIED;
	if (e->type == FMT_T_SYMLINK) {
		char t[4096];
		ssize_t n = readlink(p, t, sizeof t);
		assert_true(n > 0);
		e->target = cut_arena_strndup(&walk_arena, t, (size_t)n);
		e->target_len = (uint32_t)n;
	}
	return 0;
}

static int cmp_entry(const void *a, const void *b)
{
	const fmt_entry *x = a, *y = b;
	return fmt_path_cmp(x->path, x->path_len, y->path, y->path_len);
}

/* Writes the manifest of tree root to out. */
static void manifest_of(const char *root, const char *out)
{
	walk_n = 0;
	walk_rootlen = strlen(root);
	assert_int_equal(nftw(root, walk_cb, 64, FTW_PHYS), 0);
	qsort(walk_v, walk_n, sizeof *walk_v, cmp_entry);
	fmt_mwriter *w = fmt_mwriter_create(out);
	assert_non_null(w);
	for (size_t i = 0; i < walk_n; i++)
		assert_int_equal(fmt_mwriter_add(w, &walk_v[i]), 0);
	fmt_mheader h = {.root = (char *)"/srv/mail", .host = (char *)"test", .options = (char *)"",
			 .policy = (char *)""};
	uint8_t id[FMT_ID_LEN];
	assert_int_equal(fmt_mwriter_finish(w, &h, id), 0);
	cut_arena_free(&walk_arena);
}

/* A manifest of dirs directories of 100 files each, written directly (no
 * tree): file f of directory d has mtime d*1000+f, plus bump in directory
 * bumped. */
static void synth_manifest(const char *out, unsigned dirs, unsigned bumped, int64_t bump)
{
	fmt_mwriter *w = fmt_mwriter_create(out);
	assert_non_null(w);
	fmt_entry e = {.path = "", .type = FMT_T_DIR, .mode = 0755, .nlink = 2};
	assert_int_equal(fmt_mwriter_add(w, &e), 0);
	char p[64];
	for (unsigned d = 0; d < dirs; d++) {
		e = (fmt_entry){.path = p, .type = FMT_T_DIR, .mode = 0700, .nlink = 2, .ino = d + 1};
		e.path_len = (uint32_t)snprintf(p, sizeof p, "d%05u", d);
		assert_int_equal(fmt_mwriter_add(w, &e), 0);
		for (unsigned f = 0; f < 100; f++) {
			e = (fmt_entry){.path = p, .type = FMT_T_FILE, .mode = 0600, .nlink = 1, .size = f,
					.ino = 1000000 + d * 100 + f};
			e.path_len = (uint32_t)snprintf(p, sizeof p, "d%05u/f%03u", d, f);
			e.mtime_ns = (int64_t)(d * 1000 + f) * 1000000000 + (d == bumped ? bump : 0);
			assert_int_equal(fmt_mwriter_add(w, &e), 0);
		}
	}
	fmt_mheader h = {.root = (char *)"/srv/mail", .host = (char *)"test", .options = (char *)"",
			 .policy = (char *)""};
	uint8_t id[FMT_ID_LEN];
	assert_int_equal(fmt_mwriter_finish(w, &h, id), 0);
}

typedef struct progress_calls {
	uint64_t done[64], total[64];
	unsigned n;
} progress_calls;

static void diff_moved(uint64_t done, uint64_t total, void *arg)
{
	progress_calls *m = arg;
	if (m->n < 64) {
		m->done[m->n] = done;
		m->total[m->n] = total;
	}
	m->n++;
}

/* The progress a sync pass shows for its diff: NEW's entries joined, of
 * NEW's total, rising, through skipped blocks and decoded ones alike. */
static void diff_run__reports_its_progress_through_new(void **state)
{
	(void)state;
	synth_manifest(mold, 2000, 0, 0);
	synth_manifest(mnew, 2000, 1500, 1000000000); /* one folder's mail day */
	progress_calls m = {0};
	diff_stats st;
	diff_opts o = {.old_path = mold, .new_path = mnew, .out_path = chlog, .progress = diff_moved,
		       .progress_arg = &m};
	assert_int_equal(diff_run(&o, &st), 0);
	assert_int_equal(st.new_entries, 2000 * 101 + 1);
	assert_true(st.skipped_blocks > 0); /* the calls came through both kinds */
	assert_int_equal(st.ops[FMT_OP_UPDATE], 100); /* a new mtime: copied again */
	assert_true(m.n >= 3 && m.n <= 64);
	for (unsigned i = 0; i < m.n; i++) {
		assert_int_equal(m.total[i], st.new_entries);
		if (i)
			assert_true(m.done[i] > m.done[i - 1]);
	}
	assert_int_equal(m.done[m.n - 1], st.new_entries); /* the last call: all of NEW */
	for (unsigned i = 0; i + 1 < m.n; i++)
		assert_true(m.done[i] < st.new_entries);
}

/* ------------------------------------------------------------ the applier */

static uint64_t nops[FMT_OP_MAX + 1];

static void jp(char *out, size_t n, const char *root, const char *rel)
{
	snprintf(out, n, "%s%s%s", root, *rel ? "/" : "", rel);
}

static void check_old(const char *p, const fmt_change *c)
{
	struct stat st;
	if (lstat(p, &st) != 0)
		fail_msg("%s %s: expected a %s there, found nothing", fmt_op_name(c->op), p,
			 fmt_type_name(c->old.type));
	if (fmt_type_from_mode(st.st_mode) != c->old.type)
		fail_msg("%s %s: expected a %s there", fmt_op_name(c->op), p, fmt_type_name(c->old.type));
	if (c->old.type == FMT_T_FILE) {
		int64_t m = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
		if ((uint64_t)st.st_size != c->old.size || m != c->old.mtime_ns)
			fail_msg("%s %s: size/mtime not as expected", fmt_op_name(c->op), p);
	}
}

static void must_be_free(const char *p, const fmt_change *c)
{
	struct stat st;
	if (lstat(p, &st) == 0)
		fail_msg("%s: destination %s exists", fmt_op_name(c->op), p);
}

static void set_times(const char *p, const fmt_entry *e)
{
	struct timespec ts[2] = {{0, UTIME_OMIT},
				 {(time_t)(e->mtime_ns / 1000000000), (long)(e->mtime_ns % 1000000000)}};
	assert_int_equal(utimensat(AT_FDCWD, p, ts, AT_SYMLINK_NOFOLLOW), 0);
}

static void copy_file(const char *from, const char *to, const fmt_entry *e)
{
	int in = open(from, O_RDONLY), out = open(to, O_WRONLY | O_CREAT | O_EXCL, 0600);
	if (in < 0 || out < 0)
		fail_msg("copy %s -> %s: %s", from, to, strerror(errno));
	char buf[65536];
	ssize_t n;
	while ((n = read(in, buf, sizeof buf)) > 0)
		assert_int_equal(write(out, buf, (size_t)n), n);
	close(in);
	close(out);
	assert_int_equal(chmod(to, e->mode), 0);
	set_times(to, e);
}

/* Replacing a file (update, link over an existing name) goes through a
 * temporary name, which changes the parent's times: put them back, as replay
 * must (docs/DIFF.md). */
static void parent_of(char *out, size_t n, const char *p)
{
	snprintf(out, n, "%s", p);
	*strrchr(out, '/') = 0;
}

static void save_parent_times(const char *p, struct timespec ts[2])
{
	char parent[4096];
	parent_of(parent, sizeof parent, p);
	struct stat st;
	assert_int_equal(stat(parent, &st), 0);
	ts[0] = st.st_atim;
	ts[1] = st.st_mtim;
}

static void replace_keeping_parent_times(const char *tmp, const char *p, struct timespec ts[2])
{
	char parent[4096];
	parent_of(parent, sizeof parent, p);
	assert_int_equal(rename(tmp, p), 0);
	assert_int_equal(utimensat(AT_FDCWD, parent, ts, 0), 0);
}

static void apply(const char *log, const char *srcroot, const char *root)
{
	fmt_creader *r = fmt_creader_open(log);
	assert_non_null(r);
	assert_int_equal(fmt_creader_validate(r), 0);
	memset(nops, 0, sizeof nops);
	fmt_change c;
	int rc;
	char p[4096], q[4096], s[4096];
	while ((rc = fmt_creader_next(r, &c)) > 0) {
		nops[c.op]++;
		if (getenv("CUTOVER_TEST_DUMP"))
			fprintf(stderr, "  %s %s%s%s%s\n", fmt_op_name(c.op), c.e.path, c.to ? " -> " : "",
				c.to ? c.to : "", (c.flags & FMT_C_OLD) ? " (old)" : "");
		jp(p, sizeof p, root, c.e.path);
		if (c.to)
			jp(q, sizeof q, root, c.to);
		jp(s, sizeof s, srcroot, c.e.path);
		if ((c.flags & FMT_C_OLD) && c.op != FMT_OP_LINK)
			check_old(p, &c);
		switch (c.op) {
		case FMT_OP_MKDIR:
			if (c.e.path_len == 0)
				break;
			if (mkdir(p, 0700) != 0)
				fail_msg("mkdir %s: %s", p, strerror(errno));
			break;
		case FMT_OP_CREATE:
			copy_file(s, p, &c.e);
			break;
		case FMT_OP_UPDATE: {
			char t[4200];
			snprintf(t, sizeof t, "%s.applier-tmp", p);
			struct timespec ts[2];
			save_parent_times(p, ts);
			copy_file(s, t, &c.e);
			replace_keeping_parent_times(t, p, ts);
			break;
		}
		case FMT_OP_LINK:
			if (c.flags & FMT_C_OLD) {
				check_old(q, &c);
				char t[4200];
				snprintf(t, sizeof t, "%s.applier-tmp", q);
				struct timespec ts[2];
				save_parent_times(q, ts);
				assert_int_equal(link(p, t), 0);
				replace_keeping_parent_times(t, q, ts);
			} else {
				must_be_free(q, &c);
				if (link(p, q) != 0)
					fail_msg("link %s %s: %s", p, q, strerror(errno));
			}
			break;
		case FMT_OP_SYMLINK:
			assert_int_equal(symlink(c.e.target, p), 0);
			set_times(p, &c.e);
			break;
		case FMT_OP_RENAME:
			must_be_free(q, &c);
			if (rename(p, q) != 0)
				fail_msg("rename %s %s: %s", p, q, strerror(errno));
			break;
		case FMT_OP_META:
			if (c.e.type != FMT_T_SYMLINK)
				assert_int_equal(chmod(p, c.e.mode), 0);
			set_times(p, &c.e);
			break;
		case FMT_OP_DELETE:
			if (unlink(p) != 0)
				fail_msg("delete %s: %s", p, strerror(errno));
			break;
		case FMT_OP_RMDIR:
			if (rmdir(p) != 0)
				fail_msg("rmdir %s: %s", p, strerror(errno));
			break;
		case FMT_OP_SPECIAL:
			assert_int_equal(c.e.type, FMT_T_FIFO);
			assert_int_equal(mkfifo(p, c.e.mode), 0);
			set_times(p, &c.e);
			break;
		}
	}
	assert_int_equal(rc, 0);
	fmt_creader_close(r);
}

/* ----------------------------------------------------------- comparison */

/* A canonical listing of a tree: one line per path with type, mode, size,
 * mtime, content hash or target, and the first path of its inode. */
static char *listing(const char *root)
{
	walk_n = 0;
	walk_rootlen = strlen(root);
	assert_int_equal(nftw(root, walk_cb, 64, FTW_PHYS), 0);
	qsort(walk_v, walk_n, sizeof *walk_v, cmp_entry);
	cut_buf b = {0};
	for (size_t i = 0; i < walk_n; i++) {
		const fmt_entry *e = &walk_v[i];
		const char *first = e->path;
		if (e->type == FMT_T_FILE && e->nlink > 1)
			for (size_t j = 0; j < i; j++)
				if (walk_v[j].ino == e->ino && walk_v[j].dev == e->dev) {
					first = walk_v[j].path;
					break;
				}
		uint64_t h = 1469598103934665603ull;
		if (e->type == FMT_T_FILE) {
			char p[4096];
			jp(p, sizeof p, root, e->path);
			FILE *f = fopen(p, "rb");
			assert_non_null(f);
			int ch;
			while ((ch = fgetc(f)) != EOF)
				h = (h ^ (unsigned)ch) * 1099511628211ull;
			fclose(f);
		}
		cut_buf_printf(&b, "%s %s %o %llu %lld %llx %s %s\n", e->path, fmt_type_name(e->type),
			       e->mode, (unsigned long long)e->size, (long long)e->mtime_ns,
			       (unsigned long long)h, e->target ? e->target : "-", first);
	}
	cut_buf_putc(&b, 0);
	cut_arena_free(&walk_arena);
	return (char *)b.p;
}

static void expect_same_trees(const char *a, const char *b)
{
	char *la = listing(a), *lb = listing(b);
	if (strcmp(la, lb) != 0) {
		FILE *f1 = fopen("/tmp/cutover-tdiff-a.txt", "w"), *f2 = fopen("/tmp/cutover-tdiff-b.txt", "w");
		fputs(la, f1);
		fputs(lb, f2);
		fclose(f1);
		fclose(f2);
		fail_msg("trees differ: diff /tmp/cutover-tdiff-a.txt /tmp/cutover-tdiff-b.txt");
	}
	free(la);
	free(lb);
}

/* ------------------------------------------------------------ scenario */

/* Takes OLD of src, copies src to dst. */
static void before(void)
{
	manifest_of(src, mold);
	sh("rm -rf '%s' && cp -a '%s' '%s'", dst, src, dst);
}

/* Takes NEW of src, diffs, applies to dst, compares. */
static diff_stats last_st; /* of the last after() */

static void after_with(size_t limit)
{
	manifest_of(src, mnew);
	diff_opts o = {.old_path = mold, .new_path = mnew, .out_path = chlog, .mem_limit = limit};
	assert_int_equal(diff_run(&o, &last_st), 0);
	apply(chlog, src, dst);
	expect_same_trees(src, dst);
}

static void after(void) { after_with(0); }

static void put(const char *rel, const char *content, int64_t mtime_s)
{
	char p[4096];
	jp(p, sizeof p, src, rel);
	FILE *f = fopen(p, "w");
	if (!f)
		fail_msg("create %s: %s", p, strerror(errno));
	fputs(content, f);
	fclose(f);
	struct timespec ts[2] = {{mtime_s, 0}, {mtime_s, 123}};
	utimensat(AT_FDCWD, p, ts, 0);
}

static void in(const char *fmt, ...)
{
	char cmd[2048];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(cmd, sizeof cmd, fmt, ap);
	va_end(ap);
	sh("cd '%s' && %s", src, cmd);
}

/* ----------------------------------------------------------- golden cases */

static void diff_run__swap_goes_through_a_temporary_name(void **state)
{
	(void)state;
	put("a", "AAAA", 1000);
	put("b", "BBBBBB", 2000);
	before();
	in("mv a t && mv b a && mv t b");
	after();
	assert_int_equal(nops[FMT_OP_RENAME], 4); /* a->tmp, b->tmp, tmp->b, tmp->a */
	assert_int_equal(nops[FMT_OP_CREATE] + nops[FMT_OP_UPDATE], 0);
}

static void diff_run__rename_chain_and_cycle(void **state)
{
	(void)state;
	in("mkdir d");
	put("d/a", "1", 1001);
	put("d/b", "22", 1002);
	put("d/c", "333", 1003);
	put("x", "x", 1004);
	put("y", "yy", 1005);
	put("z", "zzz", 1006);
	before();
	in("mv d/c d/d && mv d/b d/c && mv d/a d/b"); /* chain a->b->c->d */
	in("mv x t && mv z x && mv y z && mv t y");   /* cycle x->y->z->x */
	after();
	assert_int_equal(nops[FMT_OP_CREATE] + nops[FMT_OP_UPDATE] + nops[FMT_OP_DELETE], 0);
}

/* A folder of 20 messages, renamed .Old -> .New after OLD was taken, with one
 * message flagged in it since. */
static void rename_a_folder_of_20(void)
{
	in("mkdir -p Maildir/.Old/cur Maildir/.Old/new Maildir/.Old/tmp Maildir/cur");
	char name[128];
	for (int i = 0; i < 20; i++) {
		snprintf(name, sizeof name, "Maildir/.Old/cur/%d.M%dP1.host,S=5:2,", 1000 + i, i);
		put(name, "hello", 1000 + i);
	}
	before();
	in("mv Maildir/.Old Maildir/.New");
	in("mv 'Maildir/.New/cur/1003.M3P1.host,S=5:2,' 'Maildir/.New/cur/1003.M3P1.host,S=5:2,S'");
}

static void diff_run__folder_rename_with_flag_renames_inside(void **state)
{
	(void)state;
	rename_a_folder_of_20();
	in("mv 'Maildir/.New/cur/1004.M4P1.host,S=5:2,' 'Maildir/.New/cur/1004.M4P1.host,S=5:2,FS'");
	after();
	assert_false(last_st.dir_lists_dropped);
	assert_int_equal(last_st.dir_renames, 1);
	assert_int_equal(nops[FMT_OP_RENAME], 3); /* the folder, then two flag changes */
	assert_int_equal(nops[FMT_OP_CREATE] + nops[FMT_OP_DELETE] + nops[FMT_OP_RMDIR], 0);
}

/* Past its share of the memory limit, the list of directories found on one
 * side is dropped: the folder's files are renamed one by one instead. */
static void diff_run__folder_rename_past_the_memory_limit_renames_the_files(void **state)
{
	(void)state;
	rename_a_folder_of_20();
	after_with(1024);
	assert_true(last_st.dir_lists_dropped);
	assert_int_equal(last_st.dir_renames, 0);
	assert_int_equal(nops[FMT_OP_RENAME], 20);
	assert_int_equal(nops[FMT_OP_MKDIR], 4);
	assert_int_equal(nops[FMT_OP_RMDIR], 4);
	assert_int_equal(nops[FMT_OP_CREATE] + nops[FMT_OP_DELETE], 0);
}

static void diff_run__nested_folder_renames(void **state)
{
	(void)state;
	in("mkdir -p a/b/c z && echo 1 > a/b/c/f && echo 2 > a/g && echo 3 > z/h");
	before();
	in("mv a/b q && mv a q/a && mv z q/a/z"); /* a/b -> q, a -> q/a, z -> q/a/z */
	after();
	assert_int_equal(nops[FMT_OP_CREATE], 0);
}

static void diff_run__type_changes(void **state)
{
	(void)state;
	in("mkdir -p d1/sub && echo x > d1/sub/f && echo y > f1 && echo z > f2 && ln -s f1 s1");
	before();
	in("rm -rf d1 && echo now-a-file > d1");     /* dir -> file */
	in("rm f1 && mkdir -p f1/in && echo q > f1/in/g"); /* file -> dir */
	in("rm s1 && mkdir s1");                       /* symlink -> dir */
	in("rm f2 && ln -s d1 f2");                    /* file -> symlink */
	after();
}

static void diff_run__hard_link_groups_change(void **state)
{
	(void)state;
	in("mkdir -p u1/cur u2/cur u3/cur && echo m1 > u1/cur/m1 && echo m2 > u1/cur/m2");
	in("ln u1/cur/m2 u2/cur/m2 && echo m3 > u1/cur/m3 && ln u1/cur/m3 u2/cur/m3");
	before();
	in("ln u1/cur/m1 u2/cur/m1 && ln u1/cur/m1 u3/cur/m1");  /* group gains members */
	in("rm u2/cur/m2");                                      /* group loses one */
	in("cp -p u1/cur/m3 u2/cur/t && mv u2/cur/t u2/cur/m3"); /* a link becomes a copy */
	in("echo new > u1/cur/n && ln u1/cur/n u2/cur/n && ln u1/cur/n u3/cur/n"); /* new group */
	after();
	assert_int_equal(nops[FMT_OP_LINK], 4);
	assert_int_equal(nops[FMT_OP_CREATE], 1);
}

static void diff_run__link_to_a_carried_entry_with_stale_nlink(void **state)
{
	(void)state;
	in("mkdir -p u1/cur u2/cur && echo m > u1/cur/m && echo n > u1/cur/n");
	before();
	in("ln u1/cur/m u2/cur/m");
	stale_path = "u1/cur/m"; /* an incremental scan carried it: nlink still 1 */
	after();
	stale_path = NULL;
	assert_int_equal(nops[FMT_OP_LINK], 1);
	assert_int_equal(nops[FMT_OP_CREATE], 0);
}

/* Against a base that is not the previous scan (a re-based target lacking a
 * name), a carried file with a stale nlink of 1 arrives while its partner,
 * also carried, is already in place: the arrival must become a link, not a
 * copy (every carried name has to be found by inode). */
static void diff_run__carried_arrival_links_to_a_carried_partner(void **state)
{
	(void)state;
	in("mkdir -p u1/cur u2/cur && echo m > u2/cur/m && echo n > u1/cur/n");
	before();
	in("ln u2/cur/m u1/cur/m");
	stale_path = "u1/cur/m";
	carried_path = "u2/cur/m";
	after();
	stale_path = carried_path = NULL;
	assert_int_equal(nops[FMT_OP_LINK], 1);
	assert_int_equal(nops[FMT_OP_CREATE], 0);
}

static void diff_run__in_place_update_of_a_linked_file(void **state)
{
	(void)state;
	in("echo log1 > idx.log && ln idx.log idx.log.2 && echo c > cache");
	before();
	in("echo more >> idx.log && echo d >> cache");
	after();
	assert_int_equal(nops[FMT_OP_UPDATE], 2);
	assert_int_equal(nops[FMT_OP_LINK], 1);
}

static void diff_run__rewrite_and_rename_over(void **state)
{
	(void)state;
	in("mkdir cur && echo 'line 1' > dovecot-uidlist && echo a > 'cur/m:2,'");
	before();
	in("echo 'line 2' > dovecot-uidlist.tmp && mv dovecot-uidlist.tmp dovecot-uidlist");
	in("mv 'cur/m:2,' 'cur/m:2,S' && chmod 600 'cur/m:2,S'");
	after();
	assert_int_equal(nops[FMT_OP_UPDATE], 1);
	assert_int_equal(nops[FMT_OP_RENAME], 1);
}

/* Names change in a directory whose mtime NEW gives as OLD's: a change in
 * the same timestamp tick as the scan, or a base that sync patched after
 * drift (its entries dropped, the directory's time kept).  Applying the log
 * changes the target directory's mtime, so the log must set it again. */
static void diff_run__names_changed_under_an_unchanged_directory_time(void **state)
{
	(void)state;
	in("mkdir -p a b c d && echo 1 > a/x && echo 2 > c/y && echo 3 > d/z");
	in("touch -d @7000 a b c d");
	before();
	in("echo new > a/n && mv c/y b/y && rm d/z && touch -d @7000 a b c d");
	after();
	assert_int_equal(nops[FMT_OP_META], 4);
}

static void diff_run__from_empty(void **state)
{
	(void)state;
	in("mkdir -p a/b c && echo 1 > a/b/f && ln a/b/f c/f && ln -s ../a c/s && mkfifo c/p");
	manifest_of(src, mnew);
	diff_opts o = {.new_path = mnew, .out_path = chlog};
	diff_stats st;
	assert_int_equal(diff_run(&o, &st), 0);
	sh("mkdir '%s'", dst);
	apply(chlog, src, dst);
	expect_same_trees(src, dst);
	assert_int_equal(nops[FMT_OP_CREATE], 1);
	assert_int_equal(nops[FMT_OP_LINK], 1);
}

static void diff_run__refuses_other_root_and_corrupt_input(void **state)
{
	(void)state;
	put("a", "a", 1);
	manifest_of(src, mold);
	manifest_of(src, mnew);
	/* a manifest of another root */
	char other[400];
	snprintf(other, sizeof other, "%s/other.mf", base);
	fmt_mwriter *w = fmt_mwriter_create(other);
	fmt_entry root = {.path = "", .type = FMT_T_DIR, .mode = 0755};
	assert_int_equal(fmt_mwriter_add(w, &root), 0);
	fmt_mheader h = {.root = (char *)"/elsewhere", .host = (char *)"", .options = (char *)"",
			 .policy = (char *)""};
	uint8_t id[FMT_ID_LEN];
	assert_int_equal(fmt_mwriter_finish(w, &h, id), 0);
	diff_opts o = {.old_path = other, .new_path = mnew, .out_path = chlog};
	diff_stats st;
	assert_int_equal(diff_run(&o, &st), -1);
	assert_int_not_equal(access(chlog, F_OK), 0);
	o.force = true;
	assert_int_equal(diff_run(&o, &st), 0);
	/* a flipped byte in NEW */
	sh("printf '\\377' | dd of='%s' bs=1 seek=40 conv=notrunc status=none", mnew);
	o = (diff_opts){.old_path = mold, .new_path = mnew, .out_path = chlog};
	assert_int_equal(diff_run(&o, &st), -1);
}

static void diff_run__same_content_with_a_new_inode_is_a_rename(void **state)
{
	(void)state;
	walk_hash = true;
	in("mkdir a b");
	put("a/x", "message body", 1000);
	put("a/keep", "stays", 1000);
	before();
	/* A copy (new inode, new mtime) and the original gone: as after a
	 * restore from a backup. */
	in("cp a/x b/y && rm a/x && touch -d @5000 b/y");
	after();
	assert_int_equal(nops[FMT_OP_RENAME], 1);
	assert_int_equal(nops[FMT_OP_CREATE] + nops[FMT_OP_UPDATE] + nops[FMT_OP_DELETE], 0);
	assert_int_equal(nops[FMT_OP_META], 3); /* b/y's new mtime; directories a and b */
}

static void diff_run__same_size_other_content_is_not_a_rename(void **state)
{
	(void)state;
	walk_hash = true;
	in("mkdir a b");
	put("a/x", "message body", 1000);
	before();
	put("b/y", "MESSAGE BODY", 2000); /* same size, other hash */
	in("rm a/x"); /* after the create: no reuse of a/x's inode */
	after();
	assert_int_equal(nops[FMT_OP_RENAME], 0);
	assert_int_equal(nops[FMT_OP_DELETE], 1);
	assert_int_equal(nops[FMT_OP_CREATE], 1);
}

static void diff_run__reused_inode_with_other_content_is_not_a_rename(void **state)
{
	(void)state;
	walk_hash = true;
	in("mkdir a b");
	put("a/x", "message body", 1000);
	before();
	/* The freed inode number is likely reused, with the same size and
	 * mtime: the hashes tell the files apart. */
	in("rm a/x");
	put("b/y", "MESSAGE BODY", 1000);
	after();
	assert_int_equal(nops[FMT_OP_RENAME], 0);
	assert_int_equal(nops[FMT_OP_DELETE], 1);
	assert_int_equal(nops[FMT_OP_CREATE], 1);
}

static void diff_run__swap_by_content_goes_through_temporary_names(void **state)
{
	(void)state;
	walk_hash = true;
	put("a", "AAAA", 1000);
	put("b", "BBBBBB", 2000);
	before();
	/* new inodes for both: only the hashes match them */
	in("cp a t1 && cp b t2 && rm a b && mv t2 a && mv t1 b");
	after();
	assert_int_equal(nops[FMT_OP_RENAME], 4); /* a->tmp, b->tmp, tmp->b, tmp->a */
	assert_int_equal(nops[FMT_OP_CREATE] + nops[FMT_OP_UPDATE] + nops[FMT_OP_DELETE], 0);
}

/* ------------------------------------------------------- random mail days */

static unsigned rnd_state;
static unsigned rnd(unsigned n)
{
	rnd_state = rnd_state * 1103515245u + 12345u;
	return (rnd_state >> 8) % n;
}

/* Lists regular files under src/rel (relative names) into v. */
static size_t files_in(const char *rel, char v[][512], size_t max)
{
	char p[4096];
	jp(p, sizeof p, src, rel);
	DIR *d = opendir(p);
	if (!d)
		return 0;
	size_t n = 0;
	struct dirent *de;
	while ((de = readdir(d)) && n < max) {
		if (de->d_name[0] == '.' || de->d_type != DT_REG)
			continue;
		snprintf(v[n++], 512, "%s/%s", rel, de->d_name);
	}
	closedir(d);
	return n;
}

static unsigned msgno;

static void deliver(const char *folder, unsigned user)
{
	char rel[512], body[64];
	unsigned id = msgno++;
	snprintf(body, sizeof body, "message %u %u\n", id, rnd(1000000));
	snprintf(rel, sizeof rel, "u%u/Maildir/%s/new/%u.M%uP1.mx,S=%zu", user, folder, 1700000000 + id,
		 id, strlen(body));
	char p[4096];
	jp(p, sizeof p, src, rel);
	*strrchr(p, '/') = 0;
	if (access(p, F_OK) != 0)
		return; /* the folder was renamed or deleted today */
	put(rel, body, 1700000000 + id);
	if (rnd(4) == 0) { /* delivered to two users: one file, two names */
		unsigned u2 = (user + 1 + rnd(3)) % 4;
		in("ln '%s' 'u%u/Maildir/new/%u.M%uP1.mx,S=%zu'", rel, u2, 1700000000 + id, id,
		   strlen(body));
	}
}

static const char *const folders[] = {".", ".Sent", ".Trash", ".Work", ".Work.Old"};

static void make_store(void)
{
	for (unsigned u = 0; u < 4; u++)
		for (size_t f = 0; f < 5; f++) {
			if (f == 4 && u % 2)
				continue;
			in("mkdir -p u%u/Maildir/%s/cur u%u/Maildir/%s/new u%u/Maildir/%s/tmp", u,
			   folders[f], u, folders[f], u, folders[f]);
		}
	for (unsigned u = 0; u < 4; u++)
		for (size_t f = 0; f < 5; f++) {
			if (f == 4 && u % 2)
				continue;
			for (unsigned i = 0; i < 6; i++)
				deliver(folders[f], u);
		}
	for (unsigned u = 0; u < 4; u++) {
		in("echo '3 V1 N1' > u%u/Maildir/dovecot-uidlist && echo x > u%u/Maildir/dovecot.index.log",
		   u, u);
		in("ln -s Maildir u%u/mail", u);
	}
}

static void mail_day(unsigned events)
{
	char v[64][512];
	for (unsigned k = 0; k < events; k++) {
		unsigned u = rnd(4);
		const char *f = folders[rnd(4)];
		char dir[300];
		snprintf(dir, sizeof dir, "u%u/Maildir/%s", u, f);
		char cur[400], nw[400];
		snprintf(cur, sizeof cur, "%s/cur", dir);
		snprintf(nw, sizeof nw, "%s/new", dir);
		size_t n;
		switch (rnd(13)) {
		case 0: case 1: /* flag change */
			if ((n = files_in(cur, v, 64)))
				in("f='%s'; mv \"$f\" \"${f%%%%:2,*}:2,$(echo FRS | cut -c%u-)\" 2>/dev/null || true",
				   v[rnd((unsigned)n)], 1 + rnd(3));
			break;
		case 2: /* seen: new -> cur */
			if ((n = files_in(nw, v, 64)) && files_in(cur, v + 32, 1) < 2) {
				const char *p = v[rnd((unsigned)n)];
				in("mv '%s' '%s/%s:2,S'", p, cur, strrchr(p, '/') + 1);
			}
			break;
		case 3: case 4:
			deliver(f, u);
			break;
		case 5: /* expunge */
			if ((n = files_in(cur, v, 64)))
				in("rm -f '%s'", v[rnd((unsigned)n)]);
			break;
		case 6: { /* copy to another folder: a hard link */
			if ((n = files_in(cur, v, 64))) {
				const char *p = v[rnd((unsigned)n)];
				in("[ -d u%u/Maildir/.Trash/cur ] && ln -f '%s' 'u%u/Maildir/.Trash/cur/%s' 2>/dev/null || true",
				   u, p, u, strrchr(p, '/') + 1);
			}
			break;
		}
		case 7: /* uidlist rewritten and renamed over, index appended */
			in("echo '%u' >> u%u/Maildir/dovecot.index.log && echo '3 V1 N%u' > u%u/Maildir/t && "
			   "mv u%u/Maildir/t u%u/Maildir/dovecot-uidlist", k, u, k, u, u, u);
			break;
		case 8: /* folder rename */
			if (rnd(3) == 0)
				in("[ -d u%u/Maildir/.Work ] && mv u%u/Maildir/.Work u%u/Maildir/.Project%u || true",
				   u, u, u, k);
			break;
		case 9: /* folder delete */
			if (rnd(4) == 0)
				in("rm -rf u%u/Maildir/.Trash && mkdir -p u%u/Maildir/.Trash/cur "
				   "u%u/Maildir/.Trash/new u%u/Maildir/.Trash/tmp", u, u, u, u);
			break;
		case 10: /* swap two messages' names */
			if ((n = files_in(cur, v, 64)) >= 2) {
				unsigned i = rnd((unsigned)n), j = rnd((unsigned)n);
				if (i != j)
					in("mv '%s' x.swap && mv '%s' '%s' && mv x.swap '%s'", v[i], v[j], v[i], v[j]);
			}
			break;
		case 11: /* chmod, or a message replaced by a different file */
			if ((n = files_in(cur, v, 64)))
				in("chmod 0%o '%s'", rnd(2) ? 0600 : 0640, v[rnd((unsigned)n)]);
			break;
		case 12: /* type changes, rarely */
			if (rnd(6) == 0)
				in("if [ -d u%u/mail ]; then rm -rf u%u/mail && echo f > u%u/mail; "
				   "else rm -f u%u/mail && mkdir -p u%u/mail/x && echo y > u%u/mail/x/y; fi",
				   u, u, u, u, u, u);
			break;
		}
	}
}

/* What a mail day did, by the identity of what it touched rather than by
 * what the diff made of it: a file (one link at both ends, same inode, size
 * and mtime) or a directory (same inode and mtime) under another parent or
 * name is a move, which the log must do as a rename; a file whose identity
 * OLD does not hold is new, the only thing the log may create, unless it
 * replaces a file of OLD that NEW no longer holds (an update).
 * tests/day_counts.py applies the same rule to the integration tests.  A rename turned into delete + create breaks both counts. */
typedef struct ident {
	char *path;
	uint64_t ino, size, parent;
	int64_t mtime_ns;
	uint32_t nlink;
	uint8_t type;
} ident;

static int cmp_ident(const void *a, const void *b)
{
	const ident *x = a, *y = b;
	if (x->ino != y->ino)
		return x->ino < y->ino ? -1 : 1;
	return x->mtime_ns < y->mtime_ns ? -1 : x->mtime_ns > y->mtime_ns;
}

/* The entries of manifest m, each with its parent's inode, sorted by
 * (inode, mtime). */
static ident *idents_of(const char *m, size_t *n)
{
	fmt_mreader *r = fmt_mreader_open(m);
	assert_non_null(r);
	size_t cap = 1024;
	ident *v = malloc(cap * sizeof *v);
	fmt_entry e;
	*n = 0;
	while (fmt_mreader_next(r, &e) > 0) {
		if (*n == cap)
			v = realloc(v, (cap *= 2) * sizeof *v);
		v[(*n)++] = (ident){strdup(e.path), e.ino, e.size, 0, e.mtime_ns, e.nlink, e.type};
	}
	fmt_mreader_close(r);
	for (size_t i = 0; i < *n; i++) { /* canonical order: the parent is before, by path */
		size_t pl = fmt_path_parent_len(v[i].path, strlen(v[i].path));
		for (size_t j = i; j-- > 0;)
			if (strlen(v[j].path) == pl && memcmp(v[j].path, v[i].path, pl) == 0) {
				v[i].parent = v[j].ino;
				break;
			}
	}
	qsort(v, *n, sizeof *v, cmp_ident);
	return v;
}

static const char *base_of(const char *p)
{
	const char *s = strrchr(p, '/');
	return s ? s + 1 : p;
}

/* Counts the moves and the new files between OLD and NEW (see ident). */
static void day_counts(const char *old, const char *new, unsigned *moves, unsigned *fresh)
{
	size_t no, nn;
	ident *o = idents_of(old, &no), *w = idents_of(new, &nn);
	*moves = *fresh = 0;
	for (size_t i = 0; i < nn; i++) {
		ident *b = &w[i];
		if (b->type != FMT_T_FILE && b->type != FMT_T_DIR)
			continue;
		ident *a = bsearch(b, o, no, sizeof *o, cmp_ident);
		bool same = a && a->type == b->type &&
			    (b->type == FMT_T_DIR || (a->size == b->size && a->nlink == 1 && b->nlink == 1));
		if (same && *b->path && (a->parent != b->parent || strcmp(base_of(a->path), base_of(b->path))))
			(*moves)++;
		/* New content: no file of OLD with its identity, counted once
		 * for all its names, unless it replaces a file of OLD at its
		 * path that NEW no longer holds (an update). */
		if (b->type != FMT_T_FILE || (a && a->type == FMT_T_FILE && a->size == b->size) ||
		    (i > 0 && cmp_ident(&w[i - 1], b) == 0))
			continue;
		bool update = false;
		for (size_t j = 0; j < no && !update; j++)
			update = o[j].type == FMT_T_FILE && strcmp(o[j].path, b->path) == 0 &&
				 !bsearch(&o[j], w, nn, sizeof *w, cmp_ident);
		if (!update)
			(*fresh)++;
	}
	for (size_t i = 0; i < no; i++)
		free(o[i].path);
	for (size_t i = 0; i < nn; i++)
		free(w[i].path);
	free(o);
	free(w);
}

static void diff_run__random_mail_days(void **state)
{
	(void)state;
	rnd_state = (unsigned)test_seed("diff_run__random_mail_days");
	msgno = 0;
	make_store();
	unsigned all_moves = 0, all_renames = 0;
	for (unsigned round = 0; round < 12; round++) {
		before();
		mail_day(10 + rnd(60));
		/* every other round with a tiny list limit, so everything spills */
		after_with(round % 2 ? 1 : 0);
		unsigned moves, fresh;
		day_counts(mold, mnew, &moves, &fresh);
		if (nops[FMT_OP_RENAME] < moves || nops[FMT_OP_CREATE] > fresh)
			fail_msg("round %u: the day moved %u entries and made %u new files; the log has "
				 "%llu renames and %llu creates", round, moves, fresh,
				 (unsigned long long)nops[FMT_OP_RENAME], (unsigned long long)nops[FMT_OP_CREATE]);
		all_moves += moves;
		all_renames += (unsigned)nops[FMT_OP_RENAME];
	}
	print_message("%u moves, %u renames over 12 days\n", all_moves, all_renames);
	assert_true(all_moves > 0); /* else the counts above proved nothing */
}

/* ------------------------------------------------------------ block skip */

/* Entries of a directory D with 300 subdirectories (so that the block cut
 * rule ends D's block before its files) and 50 files, plus extra. */
static void skip_manifest(const char *out, const char *extra)
{
	fmt_mwriter *w = fmt_mwriter_create(out);
	assert_non_null(w);
	char p[64];
	fmt_entry e = {.type = FMT_T_DIR, .mode = 0755, .nlink = 2, .dev = 1, .ino = 1,
		       .mtime_ns = 1700000000000000000ll, .ctime_ns = 1700000000000000000ll};
	const char *names[360];
	int n = 0;
	names[n++] = "";
	names[n++] = "D";
	static char buf[360][64];
	for (int i = 0; i < 300; i++, n++) {
		snprintf(buf[n], sizeof buf[n], "D/s%04d", i);
		names[n] = buf[n];
	}
	for (int i = 0; i < 50; i++, n++) {
		snprintf(buf[n], sizeof buf[n], "D/z%04d", i);
		names[n] = buf[n];
	}
	for (int i = 0; i < n; i++) {
		bool file = strncmp(names[i], "D/z", 3) == 0;
		e.path = names[i];
		e.path_len = (uint32_t)strlen(names[i]);
		e.type = file ? FMT_T_FILE : FMT_T_DIR;
		e.size = file ? 10 : 0;
		e.ino = 100 + (uint64_t)i;
		e.nlink = file ? 1 : 2;
		assert_int_equal(fmt_mwriter_add(w, &e), 0);
		if (extra && strcmp(names[i], "D/z0024") == 0) {
			snprintf(p, sizeof p, "%s", extra);
			e.path = p;
			e.path_len = (uint32_t)strlen(p);
			e.ino = 99;
			assert_int_equal(fmt_mwriter_add(w, &e), 0);
		}
	}
	fmt_mheader h = {.root = (char *)"/srv/mail", .host = (char *)"test", .options = (char *)"",
			 .policy = (char *)""};
	assert_int_equal(fmt_mwriter_finish(w, &h, NULL), 0);
}

/* The records of a change log as text lines. */
static char *log_text(const char *log)
{
	fmt_creader *r = fmt_creader_open(log);
	assert_non_null(r);
	cut_buf b = {0};
	fmt_change c;
	int rc;
	while ((rc = fmt_creader_next(r, &c)) > 0)
		cut_buf_printf(&b, "%s %s %s %lld\n", fmt_op_name(c.op), c.e.path, c.to ? c.to : "",
			       (long long)c.e.mtime_ns);
	assert_int_equal(rc, 0);
	fmt_creader_close(r);
	cut_buf_putc(&b, 0);
	return (char *)b.p;
}

/* Flips a byte in the middle of path's index section (found from the
 * footer): in a manifest of many blocks, neither its first nor its last
 * segment. */
static void flip_mid_index(const char *path)
{
	int fd = open(path, O_RDWR);
	assert_true(fd >= 0);
	struct stat st;
	assert_int_equal(fstat(fd, &st), 0);
	uint64_t foot = (uint64_t)st.st_size - FMT_FOOTER_LEN;
	uint8_t b[8];
	assert_int_equal(pread(fd, b, 8, (off_t)(foot + FMT_FT_INDEX)), 8);
	uint64_t ix = cut_get_le64(b), at = ix + (foot - ix) / 2;
	assert_int_equal(pread(fd, b, 1, (off_t)at), 1);
	b[0] ^= 0x5a;
	assert_int_equal(pwrite(fd, b, 1, (off_t)at), 1);
	close(fd);
}

/* The skip plan reads the two indexes as a stream.  NEW's index damaged
 * after both were opened: the plan fails when the merge reaches the damage,
 * and marks nothing (the readers hand out entries, no markers).  Damaged
 * before: the diff refuses NEW at open and writes no log. */
static void diff_skip__index_damaged_midway_marks_nothing_and_writes_no_log(void **state)
{
	(void)state;
	synth_manifest(mold, 4000, 4000, 0); /* no directory bumped */
	synth_manifest(mnew, 4000, 3000, 5);
	fmt_mreader *old = fmt_mreader_open(mold), *nw = fmt_mreader_open(mnew);
	assert_non_null(old);
	assert_non_null(nw);
	assert_true(fmt_mreader_nblocks(nw) > 3 * 64); /* several index segments */
	flip_mid_index(mnew);
	diff_skip *sk = (diff_skip *)&sk;
	assert_int_equal(diff_skip_plan(old, nw, &sk), -1);
	assert_null(sk);
	fmt_entry e;
	for (int k = 0; k < 200; k++) {
		assert_int_equal(fmt_mreader_next(old, &e), 1);
		assert_int_not_equal(e.type, 0);
	}
	fmt_mreader_close(old);
	fmt_mreader_close(nw);
	diff_opts o = {.old_path = mold, .new_path = mnew, .out_path = chlog};
	diff_stats st;
	assert_int_equal(diff_run(&o, &st), -1);
	assert_int_equal(access(chlog, F_OK), -1);
	unlink(mold);
	unlink(mnew);
}

/* A file appears in a directory whose own entry is unchanged (a change in
 * the timestamp tick of the previous scan, or a base that sync patched),
 * and that entry lies in a block equal in both manifests, which diff skips:
 * the directory's times are still set after the new name (DIFF.md), as
 * when every block is decoded. */
static void diff_run__block_skip_keeps_the_directory_times_of_a_skipped_block(void **state)
{
	(void)state;
	skip_manifest(mold, NULL);
	skip_manifest(mnew, "D/z0024x");
	fmt_mreader *r = fmt_mreader_open(mnew);
	assert_non_null(r);
	assert_true(fmt_mreader_nblocks(r) > 1); /* D and its files are apart */
	fmt_block_info b0;
	cut_buf key = {0};
	assert_int_equal(fmt_mreader_block_info(r, 0, &b0, &key), 0);
	assert_int_equal(b0.count < 300, 1);
	cut_buf_free(&key);
	fmt_mreader_close(r);
	diff_opts o = {.old_path = mold, .new_path = mnew, .out_path = chlog};
	diff_stats st;
	setenv("CUTOVER_DIFF_DECODE_ALL", "1", 1);
	assert_int_equal(diff_run(&o, &st), 0);
	unsetenv("CUTOVER_DIFF_DECODE_ALL");
	assert_int_equal(st.skipped_blocks, 0);
	char *decoded = log_text(chlog);
	assert_int_equal(diff_run(&o, &st), 0);
	assert_true(st.skipped_blocks > 0);
	char *skipped = log_text(chlog);
	assert_non_null(strstr(decoded, "meta D "));
	assert_string_equal(skipped, decoded);
	free(decoded);
	free(skipped);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(diff_run__block_skip_keeps_the_directory_times_of_a_skipped_block, setup, teardown),
		cmocka_unit_test_setup_teardown(diff_skip__index_damaged_midway_marks_nothing_and_writes_no_log, setup, teardown),
		cmocka_unit_test_setup_teardown(diff_run__swap_goes_through_a_temporary_name, setup, teardown),
		cmocka_unit_test_setup_teardown(diff_run__rename_chain_and_cycle, setup, teardown),
		cmocka_unit_test_setup_teardown(diff_run__folder_rename_with_flag_renames_inside, setup, teardown),
		cmocka_unit_test_setup_teardown(diff_run__folder_rename_past_the_memory_limit_renames_the_files, setup, teardown),
		cmocka_unit_test_setup_teardown(diff_run__nested_folder_renames, setup, teardown),
		cmocka_unit_test_setup_teardown(diff_run__type_changes, setup, teardown),
		cmocka_unit_test_setup_teardown(diff_run__hard_link_groups_change, setup, teardown),
		cmocka_unit_test_setup_teardown(diff_run__link_to_a_carried_entry_with_stale_nlink, setup, teardown),
		cmocka_unit_test_setup_teardown(diff_run__carried_arrival_links_to_a_carried_partner, setup, teardown),
		cmocka_unit_test_setup_teardown(diff_run__in_place_update_of_a_linked_file, setup, teardown),
		cmocka_unit_test_setup_teardown(diff_run__rewrite_and_rename_over, setup, teardown),
		cmocka_unit_test_setup_teardown(diff_run__names_changed_under_an_unchanged_directory_time, setup,
						teardown),
		cmocka_unit_test_setup_teardown(diff_run__from_empty, setup, teardown),
		cmocka_unit_test_setup_teardown(diff_run__refuses_other_root_and_corrupt_input, setup, teardown),
		cmocka_unit_test_setup_teardown(diff_run__same_content_with_a_new_inode_is_a_rename, setup, teardown),
		cmocka_unit_test_setup_teardown(diff_run__same_size_other_content_is_not_a_rename, setup, teardown),
		cmocka_unit_test_setup_teardown(diff_run__reused_inode_with_other_content_is_not_a_rename, setup, teardown),
		cmocka_unit_test_setup_teardown(diff_run__swap_by_content_goes_through_temporary_names, setup, teardown),
		cmocka_unit_test_setup_teardown(diff_run__random_mail_days, setup, teardown),
		cmocka_unit_test_setup_teardown(diff_run__reports_its_progress_through_new, setup, teardown),
	};
	cut_verbosity = -1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
