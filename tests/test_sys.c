/*
 * test_sys.c - cmocka tests of base/sys.c, the portability layer, on real
 * temporary trees: confined opens against planted symlinks and escapes,
 * stat, directory reading and copies.  Built as it is and, by `make
 * portable`, against the POSIX fallbacks.  Also the shared binary heap of
 * base/util.c (cut_heap).
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
#include <sys/stat.h>
#include <unistd.h>

#include "base/sys.h"
#include "base/util.h"
#include "tests/seed.h"

typedef struct fx {
	char dir[64];   /* temporary top: holds root/ and outside/ */
	char root[96], outside[96];
	int rootfd;
} fx;

static void put(const char *path, const char *content)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(content, f);
	fclose(f);
}

static int setup(void **state)
{
	fx *x = cut_calloc(1, sizeof *x);
	snprintf(x->dir, sizeof x->dir, "/tmp/cutover-test-sys.XXXXXX");
	if (!mkdtemp(x->dir))
		return -1;
	snprintf(x->root, sizeof x->root, "%s/root", x->dir);
	snprintf(x->outside, sizeof x->outside, "%s/outside", x->dir);
	char p[256];
	mkdir(x->root, 0755);
	mkdir(x->outside, 0755);
	snprintf(p, sizeof p, "%s/a", x->root);
	mkdir(p, 0755);
	snprintf(p, sizeof p, "%s/a/b", x->root);
	mkdir(p, 0755);
	snprintf(p, sizeof p, "%s/a/b/file", x->root);
	put(p, "inside\n");
	snprintf(p, sizeof p, "%s/secret", x->outside);
	put(p, "outside\n");
	/* Planted symlinks: to a directory outside (absolute and relative),
	 * to a file outside, and to a directory inside. */
	snprintf(p, sizeof p, "%s/abs", x->root);
	if (symlink(x->outside, p) < 0)
		return -1;
	snprintf(p, sizeof p, "%s/a/rel", x->root);
	if (symlink("../../outside", p) < 0)
		return -1;
	snprintf(p, sizeof p, "%s/a/filelink", x->root);
	if (symlink("../../outside/secret", p) < 0)
		return -1;
	snprintf(p, sizeof p, "%s/inlink", x->root);
	if (symlink("a", p) < 0)
		return -1;
	x->rootfd = open(x->root, O_RDONLY | O_DIRECTORY);
	if (x->rootfd < 0)
		return -1;
	*state = x;
	return 0;
}

static int teardown(void **state)
{
	fx *x = *state;
	close(x->rootfd);
	char cmd[160];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", x->dir);
	int rc = system(cmd);
	free(x);
	return rc == 0 ? 0 : -1;
}

static bool refused(int r) { return r == -ELOOP || r == -EXDEV || r == -EMLINK || r == -ENOTDIR; }

static void sys_open_beneath__opens_a_nested_file(void **state)
{
	fx *x = *state;
	int fd = sys_open_beneath(x->rootfd, "a/b/file", O_RDONLY, 0);
	assert_true(fd >= 0);
	char buf[16] = {0};
	assert_int_equal(read(fd, buf, sizeof buf - 1), 7);
	assert_string_equal(buf, "inside\n");
	close(fd);
}

static void sys_open_beneath__empty_path_is_the_root(void **state)
{
	fx *x = *state;
	int fd = sys_open_beneath(x->rootfd, "", O_RDONLY | O_DIRECTORY, 0);
	assert_true(fd >= 0);
	sys_stat a, b;
	assert_int_equal(sys_fstat(fd, &a), 0);
	assert_int_equal(sys_fstat(x->rootfd, &b), 0);
	assert_true(a.ino == b.ino && a.dev == b.dev);
	close(fd);
}

static void sys_open_beneath__refuses_absolute_symlink_component(void **state)
{
	fx *x = *state;
	int r = sys_open_beneath(x->rootfd, "abs/secret", O_RDONLY, 0);
	assert_true(refused(r));
	/* and does not create anything outside through it */
	r = sys_open_beneath(x->rootfd, "abs/new", O_WRONLY | O_CREAT, 0644);
	assert_true(refused(r));
	char p[256];
	snprintf(p, sizeof p, "%s/new", x->outside);
	assert_int_equal(access(p, F_OK), -1);
}

static void sys_open_beneath__refuses_relative_symlink_component(void **state)
{
	fx *x = *state;
	assert_true(refused(sys_open_beneath(x->rootfd, "a/rel/secret", O_RDONLY, 0)));
}

static void sys_open_beneath__refuses_symlink_inside_the_tree_too(void **state)
{
	fx *x = *state;
	/* RESOLVE_NO_SYMLINKS: even a symlink that stays inside is refused. */
	assert_true(refused(sys_open_beneath(x->rootfd, "inlink/b/file", O_RDONLY, 0)));
}

static void sys_open_beneath__refuses_final_symlink(void **state)
{
	fx *x = *state;
	int r = sys_open_beneath(x->rootfd, "a/filelink", O_RDONLY, 0);
	assert_true(r == -ELOOP || r == -EMLINK);
	/* O_WRONLY|O_TRUNC through the final symlink must not touch the file */
	r = sys_open_beneath(x->rootfd, "a/filelink", O_WRONLY | O_TRUNC, 0);
	assert_true(r == -ELOOP || r == -EMLINK);
	sys_stat st;
	char p[256];
	snprintf(p, sizeof p, "%s/secret", x->outside);
	assert_int_equal(sys_statat(AT_FDCWD, p, false, &st), 0);
	assert_int_equal(st.size, 8);
}

static void sys_open_beneath__refuses_dotdot_and_absolute(void **state)
{
	fx *x = *state;
	assert_true(refused(sys_open_beneath(x->rootfd, "..", O_RDONLY, 0)));
	assert_true(refused(sys_open_beneath(x->rootfd, "../outside/secret", O_RDONLY, 0)));
	assert_true(refused(sys_open_beneath(x->rootfd, "a/../../outside/secret", O_RDONLY, 0)));
	assert_true(refused(sys_open_beneath(x->rootfd, "a/..", O_RDONLY, 0)));
	assert_true(refused(sys_open_beneath(x->rootfd, "/etc/passwd", O_RDONLY, 0)));
	assert_true(refused(sys_open_beneath(x->rootfd, "a/.", O_RDONLY, 0)));
}

static void sys_open_beneath__missing_component_is_enoent(void **state)
{
	fx *x = *state;
	assert_int_equal(sys_open_beneath(x->rootfd, "a/nope/file", O_RDONLY, 0), -ENOENT);
	assert_int_equal(sys_open_beneath(x->rootfd, "a/b/nope", O_RDONLY, 0), -ENOENT);
}

static void sys_open_beneath__file_as_directory_is_enotdir(void **state)
{
	fx *x = *state;
	assert_int_equal(sys_open_beneath(x->rootfd, "a/b/file/x", O_RDONLY, 0), -ENOTDIR);
}

static void sys_open_parent_beneath__returns_the_last_component(void **state)
{
	fx *x = *state;
	const char *base = NULL;
	int fd = sys_open_parent_beneath(x->rootfd, "a/b/file", &base);
	assert_true(fd >= 0);
	assert_string_equal(base, "file");
	sys_stat st;
	assert_int_equal(sys_statat(fd, base, false, &st), 0);
	assert_int_equal(st.size, 7);
	close(fd);
	fd = sys_open_parent_beneath(x->rootfd, "top", &base);
	assert_true(fd >= 0);
	assert_string_equal(base, "top");
	close(fd);
	assert_true(refused(sys_open_parent_beneath(x->rootfd, "abs/x", &base)));
	assert_true(refused(sys_open_parent_beneath(x->rootfd, "a/rel/x", &base)));
}

static void sys_open_parent_beneath__symlink_swapped_in_is_refused(void **state)
{
	fx *x = *state;
	/* A directory replaced by a symlink to the outside between two
	 * operations: the next open through it is refused. */
	char p[256], q[256];
	snprintf(p, sizeof p, "%s/a/b", x->root);
	snprintf(q, sizeof q, "%s/a/b.moved", x->root);
	assert_int_equal(rename(p, q), 0);
	assert_int_equal(symlink(x->outside, p), 0);
	const char *base;
	assert_true(refused(sys_open_parent_beneath(x->rootfd, "a/b/secret", &base)));
	unlink(p);
	assert_int_equal(rename(q, p), 0);
}

static void sys_statat__nofollow_and_follow(void **state)
{
	fx *x = *state;
	sys_stat st;
	assert_int_equal(sys_statat(x->rootfd, "a/filelink", false, &st), 0);
	assert_true(S_ISLNK(st.mode));
	assert_int_equal(sys_statat(x->rootfd, "a/filelink", true, &st), 0);
	assert_true(S_ISREG(st.mode));
	assert_int_equal(st.size, 8);
	assert_int_equal(sys_statat(x->rootfd, "nope", false, &st), -ENOENT);
	assert_int_equal(sys_statat(x->rootfd, "a/b/file", false, &st), 0);
	assert_true(st.mtime_ns > 0 && st.ino > 0 && st.nlink == 1);
}

static void sys_dir__lists_names_without_dot_entries(void **state)
{
	fx *x = *state;
	int fd = sys_open_beneath(x->rootfd, "a", O_RDONLY | O_DIRECTORY, 0);
	assert_true(fd >= 0);
	sys_dir *d = sys_dir_open(fd);
	assert_non_null(d);
	const char *n;
	size_t len;
	unsigned t;
	int seen = 0, r;
	while ((r = sys_dir_next(d, &n, &len, &t)) > 0) {
		assert_int_equal(len, strlen(n));
		assert_true(strcmp(n, ".") && strcmp(n, ".."));
		seen |= strcmp(n, "b") == 0 ? 1 : strcmp(n, "rel") == 0 ? 2 : strcmp(n, "filelink") == 0 ? 4 : 8;
	}
	assert_int_equal(r, 0);
	assert_int_equal(seen, 7);
	sys_dir_close(d);
}

static void copy_case(fx *x, size_t size, uint64_t ask, int64_t want)
{
	char p[256], q[256];
	snprintf(p, sizeof p, "%s/big", x->outside);
	snprintf(q, sizeof q, "%s/big.copy", x->outside);
	uint8_t *buf = cut_malloc(size ? size : 1);
	for (size_t i = 0; i < size; i++)
		buf[i] = (uint8_t)(i * 2654435761u >> 13);
	int in = open(p, O_RDWR | O_CREAT | O_TRUNC, 0644);
	assert_true(in >= 0);
	assert_int_equal(cut_write_all(in, buf, size), 0);
	lseek(in, 0, SEEK_SET);
	int out = open(q, O_RDWR | O_CREAT | O_TRUNC, 0644);
	assert_true(out >= 0);
	assert_int_equal(sys_copy(in, out, ask, NULL), want);
	uint8_t *got = cut_malloc(size ? size : 1);
	assert_int_equal(cut_pread_all(out, got, size, 0), want);
	assert_memory_equal(got, buf, (size_t)want);
	close(in);
	close(out);
	free(buf);
	free(got);
	unlink(p);
	unlink(q);
}

static void sys_copy__copies_exactly(void **state)
{
	fx *x = *state;
	copy_case(x, 0, 0, 0);
	copy_case(x, 1, 1, 1);
	copy_case(x, (3u << 20) + 12345, (3u << 20) + 12345, (3u << 20) + 12345);
}

static void sys_copy__stops_at_eof_of_a_shorter_file(void **state)
{
	fx *x = *state;
	copy_case(x, 5000, 9000, 5000);
}

static void sys_copy__copies_a_prefix(void **state)
{
	fx *x = *state;
	copy_case(x, 100000, 4096, 4096);
}

/* A failed copy says which side failed: the replay skips a file whose
 * source cannot be read, and stops at a target that cannot be written. */
static void sys_copy__tells_a_read_error_from_a_write_error(void **state)
{
	fx *x = *state;
	char p[256], q[256];
	snprintf(p, sizeof p, "%s/side", x->outside);
	snprintf(q, sizeof q, "%s/side.copy", x->outside);
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(cut_write_all(fd, "0123456789", 10), 0);
	close(fd);
	int in = open(p, O_WRONLY), out = open(q, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	bool in_failed = false;
	assert_int_equal(sys_copy(in, out, 10, &in_failed), -EBADF);
	assert_true(in_failed);
	close(in);
	close(out);
	in = open(p, O_RDONLY);
	out = open(q, O_RDONLY);
	in_failed = true;
	assert_int_equal(sys_copy(in, out, 10, &in_failed), -EBADF);
	assert_false(in_failed);
	close(in);
	close(out);
	unlink(p);
	unlink(q);
}

static void sys_flavour__names_the_build(void **state)
{
	(void)state;
#ifdef CUTOVER_PORTABLE
	assert_string_equal(sys_flavour(), "posix");
#else
	assert_string_equal(sys_flavour(), "linux");
#endif
}

static bool int_before(const void *a, const void *b, void *ctx)
{
	(void)ctx;
	return *(const int *)a < *(const int *)b;
}

/* Random keys come out in order, through pops and through a top whose key
 * grew in place (the diff's merge advancing a run). */
static void cut_heap__pops_in_order_and_fixes_a_grown_top(void **state)
{
	(void)state;
	srand((unsigned)test_seed("cut_heap__pops_in_order_and_fixes_a_grown_top"));
	enum { N = 5000 };
	static int v[N];
	cut_heap h = {.less = int_before};
	for (int i = 0; i < N; i++) {
		v[i] = rand() % 1000;
		cut_heap_push(&h, &v[i]);
	}
	int last = -1, grown = 0;
	size_t out = 0;
	while (h.n) {
		int *t = cut_heap_top(&h);
		assert_true(*t >= last);
		last = *t;
		if (rand() % 4 == 0 && *t < 900) { /* grows: it must sink below smaller ones */
			*t += 1 + rand() % 100;
			cut_heap_fix_top(&h);
			grown++;
			continue;
		}
		assert_ptr_equal(cut_heap_pop(&h), t);
		out++;
	}
	assert_int_equal(out, N);
	assert_true(grown > 0);
	assert_null(cut_heap_top(&h));
	cut_heap_free(&h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(sys_open_beneath__opens_a_nested_file),
		cmocka_unit_test(sys_open_beneath__empty_path_is_the_root),
		cmocka_unit_test(sys_open_beneath__refuses_absolute_symlink_component),
		cmocka_unit_test(sys_open_beneath__refuses_relative_symlink_component),
		cmocka_unit_test(sys_open_beneath__refuses_symlink_inside_the_tree_too),
		cmocka_unit_test(sys_open_beneath__refuses_final_symlink),
		cmocka_unit_test(sys_open_beneath__refuses_dotdot_and_absolute),
		cmocka_unit_test(sys_open_beneath__missing_component_is_enoent),
		cmocka_unit_test(sys_open_beneath__file_as_directory_is_enotdir),
		cmocka_unit_test(sys_open_parent_beneath__returns_the_last_component),
		cmocka_unit_test(sys_open_parent_beneath__symlink_swapped_in_is_refused),
		cmocka_unit_test(sys_statat__nofollow_and_follow),
		cmocka_unit_test(sys_dir__lists_names_without_dot_entries),
		cmocka_unit_test(sys_copy__copies_exactly),
		cmocka_unit_test(sys_copy__stops_at_eof_of_a_shorter_file),
		cmocka_unit_test(sys_copy__copies_a_prefix),
		cmocka_unit_test(sys_copy__tells_a_read_error_from_a_write_error),
		cmocka_unit_test(sys_flavour__names_the_build),
		cmocka_unit_test(cut_heap__pops_in_order_and_fixes_a_grown_top),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
