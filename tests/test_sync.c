/*
 * test_sync.c - cmocka tests of sync/: the run lock (taken, refused while a
 * run holds it, stale locks recovered, other hosts refused), the parsers of
 * the state files (config, target-state, pending, history) with their
 * refusals, rotation, and the drift patch of a base manifest on a real tree.
 * Each test works in its own temporary directory, removed by the teardown.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "diff/diff.h"
#include "format/manifest.h"
#include "scanner/scan.h"
#include "sync/sync.h"

typedef struct fx {
	char dir[64];
} fx;

static int setup(void **state)
{
	fx *f = calloc(1, sizeof *f);
	snprintf(f->dir, sizeof f->dir, "/tmp/cutover-test-sync.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	fx *f = *state;
	char cmd[128];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->dir);
	int r = system(cmd);
	(void)r;
	free(f);
	return 0;
}

static void write_file(const char *dir, const char *name, const char *text)
{
	char *p = sync_path(dir, name);
	FILE *fp = fopen(p, "w");
	assert_non_null(fp);
	fputs(text, fp);
	fclose(fp);
	free(p);
}

static bool exists(const char *dir, const char *name)
{
	char *p = sync_path(dir, name);
	bool e = access(p, F_OK) == 0;
	free(p);
	return e;
}

static long dead_pid(void)
{
	pid_t p = fork();
	if (p == 0)
		_exit(0);
	waitpid(p, NULL, 0);
	return (long)p;
}

static void my_host(char *h, size_t n)
{
	gethostname(h, n - 1);
	h[n - 1] = 0;
}

/* ---------------------------------------------------------------- lock */

static void sync_lock_take__then_a_second_take_is_refused_until_released(void **state)
{
	fx *f = *state;
	sync_lock a, b;
	sync_lock_holder h;
	assert_int_equal(sync_lock_take(f->dir, &a, &h), CUT_OK);
	assert_true(exists(f->dir, "lock"));
	/* flock is per open file: a second take in this process is a contender. */
	assert_int_equal(sync_lock_take(f->dir, &b, &h), CUT_LOCKED);
	assert_int_equal(h.pid, (long)getpid());
	sync_lock_release(&a);
	assert_false(exists(f->dir, "lock"));
	assert_int_equal(sync_lock_take(f->dir, &b, &h), CUT_OK);
	sync_lock_release(&b);
	assert_false(exists(f->dir, "lock.tmp"));
}

static void sync_lock_take__takes_over_the_lock_of_a_dead_pid(void **state)
{
	fx *f = *state;
	char host[256], text[512];
	my_host(host, sizeof host);
	snprintf(text, sizeof text, "pid=%ld\nhost=%s\nstart=1\n", dead_pid(), host);
	write_file(f->dir, "lock", text);
	sync_lock l;
	sync_lock_holder h;
	assert_int_equal(sync_lock_take(f->dir, &l, &h), CUT_OK);
	char *p = sync_path(f->dir, "lock");
	cut_buf b = {0};
	assert_int_equal(sync_read_file(p, &b), 1);
	sync_lock_holder now;
	assert_int_equal(sync_lock_parse((const char *)b.p, b.len, &now), 0);
	assert_int_equal(now.pid, (long)getpid());
	cut_buf_free(&b);
	free(p);
	sync_lock_release(&l);
}

static void sync_lock_take__refuses_a_live_pid_and_another_host(void **state)
{
	fx *f = *state;
	char host[256], text[512];
	my_host(host, sizeof host);
	sync_lock l;
	sync_lock_holder h;
	snprintf(text, sizeof text, "pid=%ld\nhost=%s\nstart=1\n", (long)getppid(), host);
	write_file(f->dir, "lock", text);
	assert_int_equal(sync_lock_take(f->dir, &l, &h), CUT_LOCKED);
	write_file(f->dir, "lock", "pid=1\nhost=elsewhere.example\nstart=1\n");
	assert_int_equal(sync_lock_take(f->dir, &l, &h), CUT_LOCKED);
	assert_string_equal(h.host, "elsewhere.example");
	/* Neither refusal touched the lock. */
	char *p = sync_path(f->dir, "lock");
	cut_buf b = {0};
	assert_int_equal(sync_read_file(p, &b), 1);
	assert_non_null(strstr((const char *)b.p, "elsewhere.example"));
	cut_buf_free(&b);
	free(p);
}

static void sync_lock_take__refuses_while_a_flock_is_held_whatever_the_file_says(void **state)
{
	fx *f = *state;
	write_file(f->dir, "lock", "garbage\n");
	char *p = sync_path(f->dir, "lock");
	int fd = open(p, O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(flock(fd, LOCK_EX), 0);
	sync_lock l;
	sync_lock_holder h;
	assert_int_equal(sync_lock_take(f->dir, &l, &h), CUT_LOCKED);
	close(fd);
	/* Unheld garbage: a run that died while writing it. */
	assert_int_equal(sync_lock_take(f->dir, &l, &h), CUT_OK);
	sync_lock_release(&l);
	free(p);
}

static void sync_lock_parse__needs_pid_and_host(void **state)
{
	(void)state;
	sync_lock_holder h;
	assert_int_equal(sync_lock_parse("pid=12\nhost=a\nstart=5\n", 22, &h), 0);
	assert_int_equal(h.pid, 12);
	assert_int_equal(h.start, 5);
	assert_int_equal(sync_lock_parse("host=a\n", 7, &h), -1);
	assert_int_equal(sync_lock_parse("pid=-3\nhost=a\n", 14, &h), -1);
	assert_int_equal(sync_lock_parse("pid=12\n", 7, &h), -1);
}

/* --------------------------------------------------------- state files */

static void sync_config_parse__round_trips_and_ignores_unknown_keys(void **state)
{
	(void)state;
	sync_config c = {.source = "/s", .target = "/t x", .maildir = true, .keep = 4, .created = 9,
			 .adaptive = true, .max_latency_ns = 1500000};
	c.immutable[c.nimmutable++] = "archive/*";
	c.excludes[c.nexcludes++] = "*.bak";
	cut_buf b = {0};
	sync_config_format(&c, &b);
	cut_buf_printf(&b, "future_key=whatever\n");
	sync_config r;
	const char *err = NULL;
	int line;
	assert_int_equal(sync_config_parse((const char *)b.p, b.len, &r, &err, &line), 0);
	assert_string_equal(r.source, "/s");
	assert_string_equal(r.target, "/t x");
	assert_true(r.maildir);
	assert_int_equal(r.keep, 4);
	assert_true(r.adaptive);
	assert_int_equal(r.max_latency_ns, 1500000);
	assert_int_equal(r.nimmutable, 1);
	assert_string_equal(r.immutable[0], "archive/*");
	assert_string_equal(r.excludes[0], "*.bak");
	sync_config_free(&r);
	cut_buf_free(&b);
}

static void sync_config_parse__rejects_bad_files(void **state)
{
	(void)state;
	static const char *const bad[] = {
		"source=/s\ntarget=/t\n",                          /* no version */
		"version=2\nsource=/s\ntarget=/t\n",               /* unknown version */
		"version=1\nsource=/s\n",                          /* no target */
		"version=1\nsource=/s\ntarget=/t\npolicy=fast\n",  /* bad policy */
		"version=1\nsource=/s\ntarget=/t\nkeep=0\n",       /* keep out of range */
		"version=1\nsource=/s\nsource=/x\ntarget=/t\n",    /* twice */
		"version=1\njust words\n",                         /* not key=value */
		"version=1\nsource=/s\ntarget=/t\nadaptive=yes\n", /* not 0 or 1 */
		"version=1\nsource=/s\ntarget=/t\nmax_latency_ns=-5\n",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		sync_config c;
		const char *err = NULL;
		int line;
		assert_int_equal(sync_config_parse(bad[i], strlen(bad[i]), &c, &err, &line), -1);
		assert_non_null(err);
	}
}

static void sync_tstate_parse__round_trips_and_refuses_escapes(void **state)
{
	(void)state;
	sync_tstate t = {.seq = 42, .time = 7};
	memset(t.manifest_id, 0xab, FMT_ID_LEN);
	memset(t.base_id, 0x12, FMT_ID_LEN);
	snprintf(t.base, sizeof t.base, "manifests/000042.base.cmf");
	snprintf(t.kind, sizeof t.kind, "nightly");
	cut_buf b = {0};
	sync_tstate_format(&t, &b);
	sync_tstate r;
	const char *err;
	assert_int_equal(sync_tstate_parse((const char *)b.p, b.len, &r, &err), 0);
	assert_int_equal(r.seq, 42);
	assert_memory_equal(r.manifest_id, t.manifest_id, FMT_ID_LEN);
	assert_memory_equal(r.base_id, t.base_id, FMT_ID_LEN);
	assert_string_equal(r.base, t.base);
	assert_string_equal(r.kind, "nightly");
	cut_buf_free(&b);
	static const char *const bad[] = {
		"seq=1\nmanifest_id=00\nbase=manifests/1.cmf\nbase_id=00\n", /* short ids */
		"seq=1\nmanifest_id=0000000000000000000000000000000g\nbase=manifests/1.cmf\n"
		"base_id=00000000000000000000000000000000\n",
		"seq=1\nmanifest_id=00000000000000000000000000000000\nbase=manifests/../../etc/x\n"
		"base_id=00000000000000000000000000000000\n",
		"seq=1\nmanifest_id=00000000000000000000000000000000\nbase=/etc/passwd\n"
		"base_id=00000000000000000000000000000000\n",
		"seq=0\nmanifest_id=00000000000000000000000000000000\nbase=manifests/1.cmf\n"
		"base_id=00000000000000000000000000000000\n",
		"manifest_id=00000000000000000000000000000000\nbase=manifests/1.cmf\n"
		"base_id=00000000000000000000000000000000\n",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		assert_int_equal(sync_tstate_parse(bad[i], strlen(bad[i]), &r, &err), -1);
}

static void sync_pending_parse__round_trips_with_and_without_old(void **state)
{
	(void)state;
	sync_pending p = {.seq = 3, .has_old = true};
	snprintf(p.log, sizeof p.log, "logs/000003.ccl");
	snprintf(p.manifest, sizeof p.manifest, "manifests/000003.cmf");
	snprintf(p.kind, sizeof p.kind, "rebase");
	memset(p.log_id, 1, FMT_ID_LEN);
	memset(p.old_id, 2, FMT_ID_LEN);
	for (int k = 0; k < 2; k++) {
		p.has_old = k == 0;
		cut_buf b = {0};
		sync_pending_format(&p, &b);
		sync_pending r;
		const char *err;
		assert_int_equal(sync_pending_parse((const char *)b.p, b.len, &r, &err), 0);
		assert_int_equal(r.seq, 3);
		assert_string_equal(r.log, p.log);
		assert_string_equal(r.kind, "rebase");
		assert_int_equal(r.has_old, p.has_old);
		if (p.has_old)
			assert_memory_equal(r.old_id, p.old_id, FMT_ID_LEN);
		cut_buf_free(&b);
	}
}

static void sync_progress_parse__round_trips_and_needs_pid_and_phase(void **state)
{
	(void)state;
	sync_progress p = {.seq = 12, .pid = 4242, .start_ns = 1000, .phase_ns = 2000,
			   .written_ns = 3000, .done = 7, .total = 9, .bytes = 11, .bytes_total = 13,
			   .src_ops_s = 812, .src_bytes_s = 3000000, .src_p50_ns = 240000,
			   .src_p99_ns = 1900000, .src_limit = 6, .src_held_pm = 350};
	snprintf(p.kind, sizeof p.kind, "nightly");
	snprintf(p.phase, sizeof p.phase, "replay");
	snprintf(p.host, sizeof p.host, "mx1.example.org");
	cut_buf b = {0};
	sync_progress_format(&p, &b);
	sync_progress r;
	const char *err = NULL;
	assert_int_equal(sync_progress_parse((const char *)b.p, b.len, &r, &err), 0);
	assert_int_equal(r.seq, 12);
	assert_int_equal(r.pid, 4242);
	assert_string_equal(r.kind, "nightly");
	assert_string_equal(r.phase, "replay");
	assert_string_equal(r.host, "mx1.example.org");
	assert_int_equal(r.start_ns, 1000);
	assert_int_equal(r.phase_ns, 2000);
	assert_int_equal(r.written_ns, 3000);
	assert_int_equal(r.done, 7);
	assert_int_equal(r.total, 9);
	assert_int_equal(r.bytes, 11);
	assert_int_equal(r.bytes_total, 13);
	assert_int_equal(r.src_ops_s, 812);
	assert_int_equal(r.src_bytes_s, 3000000);
	assert_int_equal(r.src_p50_ns, 240000);
	assert_int_equal(r.src_p99_ns, 1900000);
	assert_int_equal(r.src_limit, 6);
	assert_int_equal(r.src_held_pm, 350);
	/* the line a terminal and status show */
	sync_running run;
	sync_running_of(&r, 4000, &run);
	char line[512];
	sync_running_line(&run, line, sizeof line);
	printf("%s\n", line);
	assert_non_null(strstr(line, "; source 812 ops/s, 2.9 MiB/s, p50 240us p99 1.9ms, 6 in flight, "
				     "held back 35%"));
	cut_buf_free(&b);
	static const char *const bad[] = {
		"phase=scan\n",                /* no pid */
		"pid=12\n",                    /* no phase */
		"pid=12\nphase=sc an\n",       /* not a word */
		"pid=-3\nphase=scan\n",
		"pid=12\nphase=scan\ndone=x\n",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		assert_int_equal(sync_progress_parse(bad[i], strlen(bad[i]), &r, &err), -1);
}

/* Rates are of the counts up to the record; the ETA is the later of the
 * operations' and the bytes' estimates. */
static void sync_running_of__rates_and_the_later_eta(void **state)
{
	(void)state;
	sync_progress p = {.phase_ns = 0, .written_ns = 10000000000, .done = 100, .total = 1000,
			   .bytes = 1000, .bytes_total = 100000};
	snprintf(p.phase, sizeof p.phase, "replay");
	sync_running r;
	sync_running_of(&p, 20000000000, &r);
	assert_true(r.alive);
	assert_true(r.secs > 19.9 && r.secs < 20.1);   /* to now */
	assert_true(r.rate > 9.9 && r.rate < 10.1);    /* 100 ops in 10 s */
	assert_int_equal(r.eta_s, 990);                /* bytes: 99000 at 100/s */
	p.bytes_total = 0;
	sync_running_of(&p, 20000000000, &r);
	assert_int_equal(r.eta_s, 90);                 /* ops: 900 at 10/s */
	p.total = 0;
	sync_running_of(&p, 20000000000, &r);
	assert_int_equal(r.eta_s, -1);                 /* nothing to go by */
	char line[256];
	sync_running_line(&r, line, sizeof line);
	assert_non_null(strstr(line, "next pass replay: 100 ops")); /* no number yet */
	assert_non_null(strstr(line, "ETA unknown"));
	p.seq = 7;
	snprintf(p.phase, sizeof p.phase, "commit");
	p.done = p.bytes = 0; /* a new phase starts at zero */
	sync_running_of(&p, 20000000000, &r);
	sync_running_line(&r, line, sizeof line);
	assert_string_equal(line, "pass 7 commit: 20s"); /* no counts: its time only */
	snprintf(p.phase, sizeof p.phase, "diff"); /* counts entries, moves no bytes */
	p.done = 50000;
	p.total = 150000;
	sync_running_of(&p, 20000000000, &r);
	sync_running_line(&r, line, sizeof line);
	assert_string_equal(line, "pass 7 diff: 50000/150000 entries in 20s; 5000/s; ETA 20s");
}

/* A probe never takes the lock from its holder, and tells a dead one. */
static void sync_lock_probe__tells_a_live_holder_from_a_dead_one(void **state)
{
	fx *f = *state;
	sync_lock a;
	sync_lock_holder h;
	assert_int_equal(sync_lock_probe(f->dir, &h), 0);
	assert_int_equal(h.pid, 0);
	assert_int_equal(sync_lock_take(f->dir, &a, &h), CUT_OK);
	assert_int_equal(sync_lock_probe(f->dir, &h), 1);
	assert_int_equal(h.pid, (long)getpid());
	assert_int_equal(sync_lock_probe(f->dir, &h), 1); /* still held */
	sync_lock_release(&a);
	assert_int_equal(sync_lock_probe(f->dir, &h), 0);
	/* A lock file whose run died: its pid is gone, nobody holds the flock. */
	char host[256], text[400];
	my_host(host, sizeof host);
	long pid = dead_pid();
	snprintf(text, sizeof text, "pid=%ld\nhost=%s\nstart=1\n", pid, host);
	write_file(f->dir, "lock", text);
	assert_int_equal(sync_lock_probe(f->dir, &h), 0);
	assert_int_equal(h.pid, pid);
	/* A live pid that does not hold the flock (a reused pid): dead too. */
	snprintf(text, sizeof text, "pid=%ld\nhost=%s\nstart=1\n", (long)getpid(), host);
	write_file(f->dir, "lock", text);
	assert_int_equal(sync_lock_probe(f->dir, &h), 0);
}

static void sync_hist__lines_round_trip_and_the_last_n_are_read(void **state)
{
	fx *f = *state;
	for (unsigned i = 1; i <= 5; i++) {
		sync_hist h = {.seq = i, .start = 100 * i, .end = 100 * i + 50, .scan_s = 1.5,
			       .ops = 10 * i, .bytes = 1ull << 40, .drifted = i, .exit = i == 5 ? 4 : 0};
		snprintf(h.kind, sizeof h.kind, "%s", i == 1 ? "initial" : "nightly");
		snprintf(h.verdict, sizeof h.verdict, "-");
		assert_int_equal(sync_hist_append(f->dir, &h), 0);
	}
	sync_hist *v;
	size_t n;
	assert_int_equal(sync_hist_read(f->dir, 3, &v, &n), 0);
	assert_int_equal(n, 3);
	assert_int_equal(v[0].seq, 3);
	assert_int_equal(v[2].seq, 5);
	assert_int_equal(v[2].exit, 4);
	assert_int_equal(v[2].bytes, 1ull << 40);
	assert_string_equal(v[1].kind, "nightly");
	assert_true(v[0].scan_s > 1.49 && v[0].scan_s < 1.51);
	free(v);
}

static void sync_rotate__keeps_the_last_n_and_what_the_state_names(void **state)
{
	fx *f = *state;
	assert_int_equal(sync_dirs_create(f->dir), 0);
	char rel[64];
	for (unsigned s = 1; s <= 6; s++) {
		sync_rel_manifest(rel, s, NULL);
		write_file(f->dir, rel, "x");
		sync_rel_log(rel, s);
		write_file(f->dir, rel, "x");
	}
	write_file(f->dir, "manifests/000002.base.cmf", "x");
	sync_tstate t = {.seq = 2};
	snprintf(t.base, sizeof t.base, "manifests/000002.base.cmf");
	sync_rotate(f->dir, 2, 6, &t, NULL);
	assert_true(exists(f->dir, "manifests/000006.cmf"));
	assert_true(exists(f->dir, "manifests/000005.cmf"));
	assert_false(exists(f->dir, "manifests/000004.cmf"));
	assert_false(exists(f->dir, "manifests/000001.cmf"));
	assert_true(exists(f->dir, "manifests/000002.base.cmf"));
	assert_true(exists(f->dir, "manifests/000002.cmf"));
	assert_false(exists(f->dir, "logs/000004.ccl"));
	assert_true(exists(f->dir, "logs/000005.ccl"));
	assert_int_equal(sync_last_manifest(f->dir, rel), 6);
	assert_string_equal(rel, "manifests/000006.cmf");
}

static void sync_write_atomic__replaces_whole_files(void **state)
{
	fx *f = *state;
	char *p = sync_path(f->dir, "x");
	assert_int_equal(sync_write_atomic(p, "one\n", 4), 0);
	assert_int_equal(sync_write_atomic(p, "two\n", 4), 0);
	cut_buf b = {0};
	assert_int_equal(sync_read_file(p, &b), 1);
	assert_string_equal((const char *)b.p, "two\n");
	assert_false(exists(f->dir, "x.tmp"));
	cut_buf_free(&b);
	free(p);
}

/* ------------------------------------------------------------- bases */

static void put(const char *dir, const char *rel, const char *text, time_t mtime)
{
	char *p = sync_path(dir, rel);
	FILE *fp = fopen(p, "w");
	assert_non_null(fp);
	fputs(text, fp);
	fclose(fp);
	struct timespec ts[2] = {{mtime, 0}, {mtime, 0}};
	utimensat(AT_FDCWD, p, ts, 0);
	free(p);
}

static void link_in(const char *dir, const char *from, const char *to)
{
	char *a = sync_path(dir, from), *b = sync_path(dir, to);
	assert_int_equal(link(a, b), 0);
	free(a), free(b);
}

static int find_entry(const char *m, const char *path, fmt_entry *out)
{
	fmt_mreader *r = fmt_mreader_open(m);
	assert_non_null(r);
	fmt_entry e;
	int found = 0, x;
	while ((x = fmt_mreader_next(r, &e)) > 0)
		if (!found && e.path_len == strlen(path) && memcmp(e.path, path, e.path_len) == 0) {
			*out = e;
			out->path = NULL;
			out->target = NULL;
			found = 1;
		}
	fmt_mreader_close(r);
	return found;
}

static void sync_base_patch__records_what_a_drifted_copy_left(void **state)
{
	fx *f = *state;
	char *src = sync_path(f->dir, "src"), *dst = sync_path(f->dir, "dst");
	char *m = sync_path(f->dir, "m"), *lg = sync_path(f->dir, "log"), *out = sync_path(f->dir, "b");
	mkdir(src, 0755);
	mkdir(dst, 0755);
	put(src, "a", "aaaa", 1000000);
	put(src, "b", "bbbb", 1000000);
	put(src, "c", "cccc", 1000000);
	link_in(src, "a", "l"); /* the log links l to a */
	scan_opts so = {.root = src, .out = m, .threads = 2};
	scan_stats st;
	uint8_t id[FMT_ID_LEN];
	assert_int_equal(scan_run(&so, &st, id), 0);
	diff_opts d = {.new_path = m, .out_path = lg};
	diff_stats ds;
	assert_int_equal(diff_run(&d, &ds), 0);
	/* The replay copied "a" as scanned, "b" after it grew, and "c" had
	 * vanished. */
	put(dst, "a", "aaaa", 1000000);
	put(dst, "b", "bbbbbb", 2000000);
	uint64_t patched;
	assert_int_equal(sync_base_patch(m, lg, dst, out, f->dir, &patched), 0);
	assert_int_equal(patched, 3); /* b, c, and l: its link was never made */
	fmt_entry e;
	assert_true(find_entry(out, "a", &e));
	assert_int_equal(e.size, 4);
	assert_true(find_entry(out, "b", &e));
	assert_int_equal(e.size, 6);
	assert_int_equal(e.mtime_ns, 2000000LL * 1000000000LL);
	assert_false(find_entry(out, "c", &e));
	assert_false(find_entry(out, "l", &e));
	free(src), free(dst), free(m), free(lg), free(out);
}

/* The final pass's repairs replay logs made in subtrees (paths relative to
 * each): the patch finds their entries in the whole manifest under each
 * prefix, and nowhere else. */
/* The switched subtree that holds a path: found by its place in canonical
 * order, with names that share a prefix but not a component, and a path
 * between two switched siblings. */
static void sync_switched_find__by_component_in_canonical_order(void **state)
{
	(void)state;
	char *paths[] = {"example.org/ann", "example.org/ann.x", "example.org/bob", "z"};
	char *recs[] = {"r0", "r1", "r2", "r3"};
	bool done[] = {true, true, true, true};
	sync_switched s = {.n = 4, .path = paths, .record = recs, .done = done};
	struct {
		const char *path, *want;
	} cases[] = {
		{"example.org/ann", "example.org/ann"},
		{"example.org/ann/Maildir/cur/1.M1", "example.org/ann"},
		{"example.org/ann.x/Maildir", "example.org/ann.x"},
		{"example.org/ann.y", NULL},
		{"example.org/anna/Maildir", NULL},
		{"example.org/bo", NULL},
		{"example.org/bob/Maildir/.Sent/new", "example.org/bob"},
		{"example.org", NULL},
		{"", NULL},
		{"y/z", NULL},
		{"z/a/b", "z"},
		{"za", NULL},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		const char *got = sync_switched_find(&s, cases[i].path, strlen(cases[i].path));
		if (cases[i].want)
			assert_non_null(got), assert_string_equal(got, cases[i].want);
		else
			assert_null(got);
	}
}

static void sync_base_patch_logs__patches_each_subtree_at_its_prefix(void **state)
{
	fx *f = *state;
	char *src = sync_path(f->dir, "src"), *dst = sync_path(f->dir, "dst");
	char *m = sync_path(f->dir, "m"), *out = sync_path(f->dir, "b");
	const char *subs[] = {"u1", "u2"};
	char *logs[2];
	mkdir(src, 0755);
	mkdir(dst, 0755);
	for (int i = 0; i < 2; i++) {
		char *s = sync_path(src, subs[i]), *t = sync_path(dst, subs[i]);
		mkdir(s, 0755);
		mkdir(t, 0755);
		put(s, "a", "aaaa", 1000000);
		free(s), free(t);
	}
	char *x = sync_path(src, "u2x");
	mkdir(x, 0755);
	put(x, "a", "aaaa", 1000000);
	free(x);
	scan_opts so = {.root = src, .out = m, .threads = 2};
	scan_stats st;
	uint8_t id[FMT_ID_LEN];
	assert_int_equal(scan_run(&so, &st, id), 0);
	for (int i = 0; i < 2; i++) {
		char name[16], *root = sync_path(src, subs[i]), *sm = sync_path(f->dir, "sm");
		snprintf(name, sizeof name, "log%d", i);
		logs[i] = sync_path(f->dir, name);
		scan_opts ss = {.root = root, .out = sm, .threads = 1};
		assert_int_equal(scan_run(&ss, &st, id), 0);
		diff_opts d = {.new_path = sm, .out_path = logs[i]};
		diff_stats ds;
		assert_int_equal(diff_run(&d, &ds), 0);
		free(root), free(sm);
	}
	/* The repair of u1 left a longer a; that of u2 never made its a. */
	char *t1 = sync_path(dst, "u1");
	put(t1, "a", "aaaaaa", 2000000);
	free(t1);
	uint64_t patched;
	assert_int_equal(sync_base_patch_logs(m, (const char *const *)logs, subs, 2, dst, out, f->dir,
					      &patched), 0);
	fmt_entry e;
	assert_true(find_entry(out, "u1/a", &e));
	assert_int_equal(e.size, 6);
	assert_false(find_entry(out, "u2/a", &e));
	assert_true(find_entry(out, "u2x/a", &e)); /* not in a repaired subtree */
	assert_int_equal(e.size, 4);
	assert_true(find_entry(out, "u1", &e));
	free(src), free(dst), free(m), free(out), free(logs[0]), free(logs[1]);
}

static void sync_base_rebase__takes_the_source_identity_only_where_entries_match(void **state)
{
	fx *f = *state;
	char *src = sync_path(f->dir, "src"), *dst = sync_path(f->dir, "dst");
	char *ms = sync_path(f->dir, "ms"), *mt = sync_path(f->dir, "mt"), *out = sync_path(f->dir, "b");
	mkdir(src, 0755);
	mkdir(dst, 0755);
	put(src, "same", "1111", 1000000);
	put(dst, "same", "1111", 1000000);
	put(src, "changed", "2222", 1000000);
	put(dst, "changed", "22", 1000000);
	put(dst, "extra", "3", 1000000);
	scan_stats st;
	uint8_t id[FMT_ID_LEN];
	scan_opts a = {.root = src, .out = ms, .threads = 2}, b = {.root = dst, .out = mt, .threads = 2};
	assert_int_equal(scan_run(&a, &st, id), 0);
	assert_int_equal(scan_run(&b, &st, id), 0);
	uint64_t matched;
	assert_int_equal(sync_base_rebase(mt, ms, out, f->dir, &matched), 0);
	assert_int_equal(matched, 2); /* the root and "same" */
	fmt_entry e, s;
	assert_true(find_entry(out, "same", &e));
	assert_true(find_entry(ms, "same", &s));
	assert_int_equal(e.ino, s.ino);
	assert_true(find_entry(out, "changed", &e));
	assert_int_equal(e.ino, 0);
	assert_int_equal(e.size, 2);
	assert_true(find_entry(out, "extra", &e));
	assert_int_equal(e.ino, 0);
	fmt_mreader *r = fmt_mreader_open(out);
	assert_string_equal(fmt_mreader_header(r)->root, fmt_mreader_header(r)->root);
	fmt_mreader *rs = fmt_mreader_open(ms);
	assert_string_equal(fmt_mreader_header(r)->root, fmt_mreader_header(rs)->root);
	fmt_mreader_close(r);
	fmt_mreader_close(rs);
	free(src), free(dst), free(ms), free(mt), free(out);
}

/* Rewrites manifest in as an incremental scan could have left it: every
 * file carried, and "a" with the nlink it had before it was linked. */
static void as_carried(const char *in, const char *out)
{
	fmt_mreader *r = fmt_mreader_open(in);
	fmt_mwriter *w = fmt_mwriter_create(out);
	assert_non_null(r);
	assert_non_null(w);
	fmt_entry e;
	int x;
	while ((x = fmt_mreader_next(r, &e)) > 0) {
		if (e.type == FMT_T_FILE)
			e.flags |= FMT_E_CARRIED;
		if (e.path_len == 1 && e.path[0] == 'a')
			e.nlink = 1;
		assert_int_equal(fmt_mwriter_add(w, &e), 0);
	}
	assert_int_equal(x, 0);
	const fmt_mheader *h = fmt_mreader_header(r);
	fmt_mheader nh = {.root = h->root, .host = h->host, .options = h->options, .policy = h->policy};
	uint8_t id[FMT_ID_LEN];
	assert_int_equal(fmt_mwriter_finish(w, &nh, id), 0);
	fmt_mreader_close(r);
}


/* blocks: how many of the blocks of manifest a are in b as they are (same
 * first key, count and checksum: copied, or encoded to the same bytes). */
static uint32_t blocks_kept(const char *a, const char *b, uint32_t *na)
{
	fmt_mreader *ra = fmt_mreader_open(a), *rb = fmt_mreader_open(b);
	assert_non_null(ra);
	assert_non_null(rb);
	*na = fmt_mreader_nblocks(ra);
	uint32_t kept = 0, nb = fmt_mreader_nblocks(rb);
	cut_buf ka = {0}, kb = {0};
	for (uint32_t i = 0; i < *na; i++)
		for (uint32_t j = 0; j < nb; j++) {
			fmt_block_info x, y;
			assert_int_equal(fmt_mreader_block_info(ra, i, &x, &ka), 0);
			assert_int_equal(fmt_mreader_block_info(rb, j, &y, &kb), 0);
			if (x.count == y.count && x.sum == y.sum && x.key_len == y.key_len &&
			    memcmp(x.key, y.key, x.key_len) == 0)
				kept++;
		}
	cut_buf_free(&ka), cut_buf_free(&kb);
	fmt_mreader_close(ra), fmt_mreader_close(rb);
	return kept;
}

/* A switch's commit splices a subtree's record into the base: the result
 * must hold what a full scan of the tree holds, entry for entry, and every
 * block the subtree is not in must be the base's own (the commit copies
 * them, FORMAT.md 3.5). */
static void sync_switched_splice__equals_a_full_scan_and_keeps_the_other_blocks(void **state)
{
	fx *f = *state;
	char *src = sync_path(f->dir, "src"), *m = sync_path(f->dir, "m"), *out = sync_path(f->dir, "b");
	char *full = sync_path(f->dir, "full"), *rec = sync_path(f->dir, "rec");
	mkdir(src, 0755);
	char name[64];
	for (int u = 0; u < 60; u++) { /* 60 users of 80 files: several blocks */
		snprintf(name, sizeof name, "u%03d", u);
		char *d = sync_path(src, name);
		mkdir(d, 0755);
		for (int k = 0; k < 80; k++) {
			snprintf(name, sizeof name, "%d.M%dP1.host,S=4:2,S", 1700000000 + k, k);
			put(d, name, "mail", 1000000);
		}
		free(d);
	}
	scan_opts so = {.root = src, .out = m, .threads = 2};
	scan_stats st;
	uint8_t id[FMT_ID_LEN];
	assert_int_equal(scan_run(&so, &st, id), 0);
	/* u031 gets mail after the base was made; its record is its scan. */
	char *u = sync_path(src, "u031");
	put(u, "1800000000.M1P1.host,S=7", "newmail", 2000000);
	scan_opts su = {.root = u, .out = rec, .threads = 1};
	assert_int_equal(scan_run(&su, &st, id), 0);
	char *path[] = {"u031"}, *record[] = {"rec"};
	bool done[] = {false};
	sync_switched s = {.n = 1, .path = path, .record = record, .done = done};
	assert_int_equal(sync_switched_splice(f->dir, &s, m, out), 0);
	scan_opts sf = {.root = src, .out = full, .threads = 2};
	assert_int_equal(scan_run(&sf, &st, id), 0);

	fmt_mreader *ro = fmt_mreader_open(out), *rf = fmt_mreader_open(full);
	assert_non_null(ro);
	assert_non_null(rf);
	fmt_entry eo, ef;
	int xo, xf;
	uint64_t n = 0;
	while ((xo = fmt_mreader_next(ro, &eo)) > 0) {
		xf = fmt_mreader_next(rf, &ef);
		assert_int_equal(xf, 1);
		assert_true(fmt_entry_same(&eo, &ef));
		n++;
	}
	assert_int_equal(xo, 0);
	assert_int_equal(fmt_mreader_next(rf, &ef), 0);
	assert_int_equal(n, 60 * 81 + 2);
	fmt_mreader_close(ro), fmt_mreader_close(rf);
	uint32_t nbase, kept = blocks_kept(m, out, &nbase);
	print_message("blocks: %u in the base, %u kept\n", nbase, kept);
	assert_true(nbase >= 3);
	/* The one or two blocks that u031 lies in are new, the rest kept. */
	assert_true(kept + 2 >= nbase && kept < nbase);
	free(src), free(m), free(out), free(full), free(rec), free(u);
}

/* Carried entries hold stale nlinks, so only the grouping of names by inode
 * on both sides tells whether the target is linked as the source is. */
static void sync_base_rebase__keeps_the_source_identity_only_where_linked_alike(void **state)
{
	fx *f = *state;
	char *src = sync_path(f->dir, "src"), *dst = sync_path(f->dir, "dst");
	char *ms = sync_path(f->dir, "ms"), *mc = sync_path(f->dir, "mc");
	char *mt = sync_path(f->dir, "mt"), *out = sync_path(f->dir, "b");
	mkdir(src, 0755);
	mkdir(dst, 0755);
	const char *names[] = {"a", "c", "e", "g"};
	for (int i = 0; i < 4; i++) {
		put(src, names[i], names[i], 1000000);
		put(dst, names[i], names[i], 1000000);
	}
	link_in(src, "a", "b"); /* linked on the source, two copies on the target */
	put(dst, "b", "a", 1000000);
	put(src, "d", "c", 1000000); /* two copies on the source, linked on the target */
	link_in(dst, "c", "d");
	link_in(src, "e", "f"); /* linked alike */
	link_in(dst, "e", "f");
	link_in(src, "g", "h"); /* the target lacks one name: what it has is right */
	scan_stats st;
	uint8_t id[FMT_ID_LEN];
	scan_opts a = {.root = src, .out = ms, .threads = 2}, b = {.root = dst, .out = mt, .threads = 2};
	assert_int_equal(scan_run(&a, &st, id), 0);
	assert_int_equal(scan_run(&b, &st, id), 0);
	as_carried(ms, mc);
	uint64_t matched;
	assert_int_equal(sync_base_rebase(mt, mc, out, f->dir, &matched), 0);
	const char *zero[] = {"a", "b", "c", "d"}, *kept[] = {"e", "f", "g"};
	fmt_entry e, s;
	for (int i = 0; i < 4; i++) {
		assert_true(find_entry(out, zero[i], &e));
		if (e.ino != 0)
			fail_msg("'%s' keeps the source's inode though it is linked otherwise", zero[i]);
	}
	for (int i = 0; i < 3; i++) {
		assert_true(find_entry(out, kept[i], &e));
		assert_true(find_entry(mc, kept[i], &s));
		if (e.ino != s.ino)
			fail_msg("'%s' lost the source's inode though it is linked alike", kept[i]);
	}
	assert_int_equal(matched, 4); /* the root, e, f, g */
	free(src), free(dst), free(ms), free(mc), free(mt), free(out);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(sync_lock_take__then_a_second_take_is_refused_until_released),
		T(sync_lock_take__takes_over_the_lock_of_a_dead_pid),
		T(sync_lock_take__refuses_a_live_pid_and_another_host),
		T(sync_lock_take__refuses_while_a_flock_is_held_whatever_the_file_says),
		cmocka_unit_test(sync_lock_parse__needs_pid_and_host),
		cmocka_unit_test(sync_config_parse__round_trips_and_ignores_unknown_keys),
		cmocka_unit_test(sync_config_parse__rejects_bad_files),
		cmocka_unit_test(sync_tstate_parse__round_trips_and_refuses_escapes),
		cmocka_unit_test(sync_pending_parse__round_trips_with_and_without_old),
		cmocka_unit_test(sync_progress_parse__round_trips_and_needs_pid_and_phase),
		cmocka_unit_test(sync_running_of__rates_and_the_later_eta),
		cmocka_unit_test(sync_switched_find__by_component_in_canonical_order),
		T(sync_lock_probe__tells_a_live_holder_from_a_dead_one),
		T(sync_hist__lines_round_trip_and_the_last_n_are_read),
		T(sync_rotate__keeps_the_last_n_and_what_the_state_names),
		T(sync_write_atomic__replaces_whole_files),
		T(sync_base_patch__records_what_a_drifted_copy_left),
		T(sync_base_patch_logs__patches_each_subtree_at_its_prefix),
		T(sync_base_rebase__takes_the_source_identity_only_where_entries_match),
		T(sync_base_rebase__keeps_the_source_identity_only_where_linked_alike),
		T(sync_switched_splice__equals_a_full_scan_and_keeps_the_other_blocks),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
