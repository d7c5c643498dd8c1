/*
 * test_scan.c - the scanner's racy guard and its memory budget, on real
 * temporary trees (scan_run called directly).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "format/manifest.h"
#include "scanner/scan.h"

static char dir[256], tree[300], full[300], prev[300], out[300];

static void touch(const char *rel)
{
	char p[600];
	snprintf(p, sizeof p, "%s/%s", tree, rel);
	int fd = open(p, O_WRONLY | O_CREAT, 0644);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "x", 1), 1);
	close(fd);
}

static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof dir, "/tmp/cutover-ts.XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	snprintf(tree, sizeof tree, "%s/t", dir);
	snprintf(full, sizeof full, "%s/full", dir);
	snprintf(prev, sizeof prev, "%s/prev", dir);
	snprintf(out, sizeof out, "%s/out", dir);
	char p[600];
	mkdir(tree, 0755);
	snprintf(p, sizeof p, "%s/u", tree);
	mkdir(p, 0755);
	snprintf(p, sizeof p, "%s/u/cur", tree);
	mkdir(p, 0755);
	touch("u/cur/1.M1P1:2,S");
	touch("u/cur/2.M1P1:2,S");
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	char cmd[400];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	return system(cmd);
}

static int scan(const char *o, const char *p, bool maildir)
{
	scan_opts so = {.root = tree, .out = o, .threads = 2, .prev = p, .maildir = maildir};
	scan_stats st;
	uint8_t id[FMT_ID_LEN];
	return scan_run(&so, &st, id);
}

/* Copies full to prev, leaving out `drop` and recording start_ns as the
 * scan start: a previous scan that "missed" a change made within the same
 * timestamp tick. */
static void forge_prev(const char *drop, int64_t start_ns)
{
	fmt_mreader *r = fmt_mreader_open(full);
	assert_non_null(r);
	fmt_mwriter *w = fmt_mwriter_create(prev);
	assert_non_null(w);
	fmt_entry e;
	while (fmt_mreader_next(r, &e) > 0)
		if (strcmp(e.path, drop) != 0)
			assert_int_equal(fmt_mwriter_add(w, &e), 0);
	const fmt_mheader *h = fmt_mreader_header(r);
	fmt_mheader copy = {0};
	copy.root = h->root;
	copy.host = h->host;
	copy.options = h->options;
	copy.policy = h->policy;
	copy.start_ns = start_ns;
	copy.end_ns = start_ns;
	assert_int_equal(fmt_mwriter_finish(w, &copy, NULL), 0);
	fmt_mreader_close(r);
}

static bool has(const char *manifest, const char *path)
{
	fmt_mreader *r = fmt_mreader_open(manifest);
	assert_non_null(r);
	fmt_entry e;
	bool found = false;
	while (fmt_mreader_next(r, &e) > 0)
		found |= strcmp(e.path, path) == 0;
	fmt_mreader_close(r);
	return found;
}

static int64_t ctime_of(const char *rel)
{
	char p[600];
	struct stat st;
	snprintf(p, sizeof p, "%s/%s", tree, rel);
	assert_int_equal(stat(p, &st), 0);
	return (int64_t)st.st_ctim.tv_sec * 1000000000 + st.st_ctim.tv_nsec;
}

/* The directory's times equal the previous scan's but are not safely older
 * than its start: the directory must be read again. */
static void racy_directory__is_listed_again(void **state)
{
	(void)state;
	assert_int_equal(scan(full, NULL, true), 0);
	forge_prev("u/cur/2.M1P1:2,S", ctime_of("u/cur") + 500000000);
	assert_int_equal(scan(out, prev, true), 0);
	assert_true(has(out, "u/cur/2.M1P1:2,S"));
}

/* The control: with the previous scan safely later than the directory's
 * times, the shortcut trusts the previous listing.  This shows the test
 * above passes because of the guard, not by accident. */
static void settled_directory__is_trusted(void **state)
{
	(void)state;
	assert_int_equal(scan(full, NULL, true), 0);
	forge_prev("u/cur/2.M1P1:2,S", ctime_of("u/cur") + 10000000000ll);
	assert_int_equal(scan(out, prev, true), 0);
	assert_false(has(out, "u/cur/2.M1P1:2,S"));
}

/* Without a policy there is no shortcut at all: the listing is always read. */
static void no_policy__never_takes_the_shortcut(void **state)
{
	(void)state;
	assert_int_equal(scan(full, NULL, false), 0);
	forge_prev("u/cur/2.M1P1:2,S", ctime_of("u/cur") + 10000000000ll);
	assert_int_equal(scan(out, prev, false), 0);
	assert_true(has(out, "u/cur/2.M1P1:2,S"));
}

/* A tiny budget still completes (the writer's job may always run). */
static void tiny_memory_budget__still_completes(void **state)
{
	(void)state;
	char p[600];
	for (int i = 0; i < 50; i++) {
		snprintf(p, sizeof p, "%s/d%02d", tree, i);
		mkdir(p, 0755);
		snprintf(p, sizeof p, "d%02d/f", i);
		touch(p);
	}
	scan_opts so = {.root = tree, .out = out, .threads = 8, .mem_budget = 1};
	scan_stats st;
	uint8_t id[FMT_ID_LEN];
	assert_int_equal(scan_run(&so, &st, id), 0);
	assert_int_equal(st.entries, 1 + 1 + 1 + 2 + 50 * 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(racy_directory__is_listed_again, setup, teardown),
		cmocka_unit_test_setup_teardown(settled_directory__is_trusted, setup, teardown),
		cmocka_unit_test_setup_teardown(no_policy__never_takes_the_shortcut, setup, teardown),
		cmocka_unit_test_setup_teardown(tiny_memory_budget__still_completes, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
