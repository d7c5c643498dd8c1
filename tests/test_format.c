/*
 * test_format.c - the manifest format: codecs, round trips, golden bytes,
 * and one corrupt-input test for each MUST of format/FORMAT.md.
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

#include "format/container.h"
#include "format/manifest.h"
#include "format/path.h"
#define XXH_INLINE_ALL
#include <xxhash.h>

/* The id and size of the manifest write_simple() makes (see golden test). */
#define GOLDEN_ID "05127d9c2ef72d8e50eaa27b598d904a"
#define GOLDEN_SIZE 397

static char dir[256];
static char file[300];

static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof dir, "/tmp/cutover-tf.XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	snprintf(file, sizeof file, "%s/m", dir);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	unlink(file);
	return rmdir(dir);
}

/* ------------------------------------------------------------- helpers */

static uint64_t rng = 88172645463325252ull;
static uint64_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static fmt_entry mk(const char *path, unsigned type)
{
	fmt_entry e;
	memset(&e, 0, sizeof e);
	e.path = path;
	e.path_len = (uint32_t)strlen(path);
	e.type = (uint8_t)type;
	e.mode = type == FMT_T_DIR ? 0755 : 0644;
	e.uid = 1000;
	e.gid = 1000;
	e.nlink = 1;
	e.dev = 2049;
	e.ino = 1000 + e.path_len;
	e.size = type == FMT_T_FILE ? 1234 : 4096;
	e.mtime_ns = 1491941793000000000ll;
	e.ctime_ns = 1491941793123456789ll;
	if (type == FMT_T_SYMLINK) {
		e.target = "../target";
		e.target_len = 9;
		e.size = 9;
	}
	return e;
}

static fmt_mheader hdr(void)
{
	fmt_mheader h;
	memset(&h, 0, sizeof h);
	h.root = "/srv/mail";
	h.host = "mx1";
	h.start_ns = 1700000000000000000ll;
	h.end_ns = 1700000001000000000ll;
	h.options = "hash=none";
	h.policy = "";
	return h;
}

static void write_simple(const char *path)
{
	fmt_mwriter *w = fmt_mwriter_create(path);
	assert_non_null(w);
	const char *paths[] = {"", "a", "a/b", "a/b/c", "a!", "b"};
	unsigned types[] = {FMT_T_DIR, FMT_T_DIR, FMT_T_DIR, FMT_T_FILE, FMT_T_SYMLINK, FMT_T_FILE};
	for (int i = 0; i < 6; i++) {
		fmt_entry e = mk(paths[i], types[i]);
		assert_int_equal(fmt_mwriter_add(w, &e), 0);
	}
	fmt_mheader h = hdr();
	uint8_t id[16];
	assert_int_equal(fmt_mwriter_finish(w, &h, id), 0);
}

static int read_all(const char *path, uint64_t *n)
{
	fmt_mreader *r = fmt_mreader_open(path);
	if (!r)
		return -1;
	fmt_entry e;
	int rc;
	*n = 0;
	while ((rc = fmt_mreader_next(r, &e)) > 0)
		(*n)++;
	fmt_mreader_close(r);
	return rc;
}

static size_t file_size(const char *path)
{
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	return (size_t)st.st_size;
}

static uint8_t *slurp(const char *path, size_t *n)
{
	*n = file_size(path);
	uint8_t *p = malloc(*n);
	int fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(read(fd, p, *n), (ssize_t)*n);
	close(fd);
	return p;
}

static void spit(const char *path, const uint8_t *p, size_t n)
{
	int fd = open(path, O_WRONLY | O_TRUNC | O_CREAT, 0644);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, p, n), (ssize_t)n);
	close(fd);
}

/* ---------------------------------------------------------------- codecs */

static void varint__round_trips_and_rejects_overlong(void **state)
{
	(void)state;
	uint64_t vals[] = {0, 1, 127, 128, 300, 1ull << 35, UINT64_MAX};
	for (size_t i = 0; i < sizeof vals / sizeof *vals; i++) {
		cut_buf b = {0};
		cut_buf_varint(&b, vals[i]);
		const uint8_t *p = b.p;
		uint64_t v;
		assert_int_equal(cut_get_varint(&p, b.p + b.len, &v), 0);
		assert_true(v == vals[i]);
		assert_ptr_equal(p, b.p + b.len);
		/* cut short by one byte: refused */
		p = b.p;
		assert_int_equal(cut_get_varint(&p, b.p + b.len - 1, &v), -1);
		cut_buf_free(&b);
	}
	uint8_t eleven[11] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01};
	const uint8_t *p = eleven;
	uint64_t v;
	assert_int_equal(cut_get_varint(&p, eleven + 11, &v), -1);
	for (int64_t s = -5; s <= 5; s++)
		assert_true(cut_unzigzag(cut_zigzag(s)) == s);
}

static void path_cmp__slash_sorts_below_every_byte(void **state)
{
	(void)state;
	/* a directory, its contents, then names that extend it */
	assert_true(fmt_path_cmp("a", 1, "a/b", 3) < 0);
	assert_true(fmt_path_cmp("a/b", 3, "a!", 2) < 0);
	assert_true(fmt_path_cmp("a/zzz", 5, "a\x01", 2) < 0);
	assert_true(fmt_path_cmp("", 0, "a", 1) < 0);
	assert_true(fmt_path_cmp("a\xff", 2, "b", 1) < 0); /* unsigned bytes */
	assert_int_equal(fmt_path_cmp("x/y", 3, "x/y", 3), 0);
	assert_true(fmt_path_cmp("cur/1", 5, "cur.x", 5) < 0);
}

static void path_valid__rejects_traversal_and_empty_components(void **state)
{
	(void)state;
	assert_true(fmt_path_valid("", 0));
	assert_true(fmt_path_valid("a/b.c/..d", 9));
	assert_false(fmt_path_valid("/a", 2));
	assert_false(fmt_path_valid("a/", 2));
	assert_false(fmt_path_valid("a//b", 4));
	assert_false(fmt_path_valid("..", 2));
	assert_false(fmt_path_valid("a/../b", 6));
	assert_false(fmt_path_valid("./a", 3));
	assert_false(fmt_path_valid("a\0b", 3));
	assert_int_equal(fmt_path_parent_len("a/b/c", 5), 3);
	assert_int_equal(fmt_path_parent_len("a", 1), 0);
	assert_true(fmt_path_is_under("a/b", 3, "a", 1));
	assert_false(fmt_path_is_under("ab", 2, "a", 1));
	assert_true(fmt_path_is_under("a", 1, "", 0));
}

/* ------------------------------------------------------------ round trips */

static void manifest__round_trips_every_field(void **state)
{
	(void)state;
	enum { N = 20000 }; /* several blocks */
	char (*paths)[64] = calloc(N, 64);
	fmt_entry *v = calloc(N + N / 1000 + 2, sizeof *v); /* files plus their directories */
	uint8_t hashes[N][16];
	snprintf(paths[0], 64, "%s", "");
	for (int i = 1; i < N; i++)
		snprintf(paths[i], 64, "d%03d/%010d.M%uP%u,S=%u:2,S", i / 1000, i, (unsigned)(rnd() % 999999),
			 (unsigned)(rnd() % 99999), (unsigned)(rnd() % 100000));
	fmt_mwriter *w = fmt_mwriter_create(file);
	assert_non_null(w);
	/* Entries: root, then for each i a dir when i%1000==1 (its first file)... keep
	 * canonical order simple: directory d%03d precedes its files. */
	int n = 0;
	cut_arena a = {0};
	for (int i = 0; i < N; i++) {
		if (i > 0 && (i == 1 || i / 1000 != (i - 1) / 1000)) {
			char *d = cut_arena_strndup(&a, paths[i], 4);
			v[n] = mk(d, FMT_T_DIR);
			assert_int_equal(fmt_mwriter_add(w, &v[n]), 0);
			n++;
		}
		unsigned t = i == 0 ? FMT_T_DIR : (unsigned)(1 + rnd() % FMT_T_MAX);
		if (t == FMT_T_DIR && i > 0)
			t = FMT_T_FILE;
		v[n] = mk(paths[i], t);
		v[n].mode = (uint32_t)(rnd() & 07777);
		v[n].uid = (uint32_t)rnd();
		v[n].gid = (uint32_t)rnd();
		v[n].nlink = (uint32_t)(rnd() % 5 + 1);
		v[n].dev = rnd() % 3;
		v[n].ino = rnd();
		v[n].size = rnd() >> (rnd() % 64);
		v[n].mtime_ns = (int64_t)(rnd() % 4000000000000000000ull) - 1000000000000000000ll;
		v[n].ctime_ns = (int64_t)(rnd() % 4000000000000000000ull);
		if (t == FMT_T_CHR || t == FMT_T_BLK)
			v[n].rdev = rnd();
		if (t == FMT_T_FILE && rnd() % 2) {
			v[n].flags |= FMT_E_HASH;
			for (int k = 0; k < 16; k++)
				hashes[i][k] = (uint8_t)rnd();
			memcpy(v[n].hash, hashes[i], 16);
		}
		if (rnd() % 7 == 0)
			v[n].flags |= FMT_E_CARRIED;
		assert_int_equal(fmt_mwriter_add(w, &v[n]), 0);
		n++;
	}
	fmt_mheader h = hdr();
	h.has_prev = true;
	memset(h.prev_id, 0xab, 16);
	h.errors = 3;
	h.stats = "listed=1";
	uint8_t id[16];
	assert_int_equal(fmt_mwriter_finish(w, &h, id), 0);

	fmt_mreader *r = fmt_mreader_open(file);
	assert_non_null(r);
	const fmt_mheader *rh = fmt_mreader_header(r);
	assert_string_equal(rh->root, "/srv/mail");
	assert_string_equal(rh->host, "mx1");
	assert_string_equal(rh->options, "hash=none");
	assert_string_equal(rh->stats, "listed=1");
	assert_true(rh->start_ns == h.start_ns && rh->end_ns == h.end_ns);
	assert_int_equal(rh->entries, (uint64_t)n);
	assert_int_equal(rh->errors, 3);
	assert_true(rh->has_prev && rh->prev_id[5] == 0xab);
	assert_memory_equal(fmt_mreader_id(r), id, 16);
	fmt_entry e;
	for (int i = 0; i < n; i++) {
		assert_int_equal(fmt_mreader_next(r, &e), 1);
		if (strcmp(e.path, v[i].path) != 0)
			fail_msg("entry %d: read '%s' (%d), wrote '%s' (%d)", i, e.path, e.path[0], v[i].path, v[i].path[0]);
		assert_int_equal(e.type, v[i].type);
		assert_int_equal(e.flags, v[i].flags);
		assert_int_equal(e.mode, v[i].mode);
		assert_int_equal(e.uid, v[i].uid);
		assert_int_equal(e.gid, v[i].gid);
		assert_int_equal(e.nlink, v[i].nlink);
		assert_true(e.dev == v[i].dev && e.ino == v[i].ino && e.size == v[i].size);
		assert_true(e.rdev == v[i].rdev);
		assert_true(e.mtime_ns == v[i].mtime_ns && e.ctime_ns == v[i].ctime_ns);
		if (e.type == FMT_T_SYMLINK)
			assert_string_equal(e.target, "../target");
		if (e.flags & FMT_E_HASH)
			assert_memory_equal(e.hash, v[i].hash, 16);
	}
	assert_int_equal(fmt_mreader_next(r, &e), 0); /* end, id verified */

	/* Random access: every 97th path found exactly; a missing one not. */
	fmt_mcursor *c = fmt_mcursor_new(r);
	for (int i = 0; i < n; i += 97) {
		assert_int_equal(fmt_mcursor_find(c, v[i].path, v[i].path_len, &e), 1);
		assert_string_equal(e.path, v[i].path);
		assert_int_equal(fmt_mcursor_next(c, &e), 1);
		assert_string_equal(e.path, v[i].path);
		if (i + 1 < n) {
			assert_int_equal(fmt_mcursor_next(c, &e), 1);
			assert_string_equal(e.path, v[i + 1].path);
		}
	}
	assert_int_equal(fmt_mcursor_find(c, "d000/zzz", 8, &e), 0);
	fmt_mcursor_free(c);

	/* Skimming every block gives each entry's type, flags, dev, ino and
	 * nlink, and uses up exactly the block's entries. */
	cut_buf raw = {0};
	fmt_dec dec = {0};
	int k = 0;
	for (uint32_t b = 0; b < fmt_mreader_nblocks(r); b++) {
		assert_int_equal(fmt_mreader_load_block(r, b, &raw, &dec), 0);
		int x;
		while ((x = fmt_dec_skim(&dec, &e)) > 0) {
			assert_true(k < n);
			if (e.type != v[k].type || e.flags != v[k].flags || e.dev != v[k].dev ||
			    e.ino != v[k].ino || e.nlink != v[k].nlink)
				fail_msg("skim of entry %d (%s) differs", k, v[k].path);
			assert_null(e.path);
			k++;
		}
		assert_int_equal(x, 0);
	}
	assert_true(fmt_mreader_nblocks(r) > 1);
	assert_int_equal(k, n);
	cut_buf_free(&raw);
	fmt_dec_free(&dec);
	fmt_mreader_close(r);
	cut_arena_free(&a);
	free(paths);
	free(v);
}

static void writer__refuses_out_of_order_and_invalid_paths(void **state)
{
	(void)state;
	fmt_mwriter *w = fmt_mwriter_create(file);
	fmt_entry e = mk("b", FMT_T_FILE);
	assert_int_equal(fmt_mwriter_add(w, &e), 0);
	e = mk("a", FMT_T_FILE);
	assert_int_equal(fmt_mwriter_add(w, &e), -1);
	e = mk("b", FMT_T_FILE);
	assert_int_equal(fmt_mwriter_add(w, &e), -1); /* duplicate */
	e = mk("c/../d", FMT_T_FILE);
	assert_int_equal(fmt_mwriter_add(w, &e), -1);
	fmt_mwriter_abort(w);
	assert_int_equal(access(file, F_OK), -1); /* nothing left under the final name */
}

/* Golden bytes: the format of a fixed manifest must not drift.  If this
 * fails after an intended format change, the version number must change
 * too (FORMAT.md, Versioning). */
static void manifest__golden_bytes(void **state)
{
	(void)state;
	write_simple(file);
	size_t n;
	uint8_t *p = slurp(file, &n);
	char hex[33];
	cut_hex(hex, p + n - FMT_FOOTER_LEN + 32, 16);
	assert_string_equal(hex, GOLDEN_ID);
	assert_int_equal(n, GOLDEN_SIZE);
	assert_memory_equal(p, "CUTOVMF1\x01\0\0\0\0\0\0\0", 16);
	assert_memory_equal(p + n - 8, "CUTOVEND", 8);
	free(p);
}

/* ---------------------------------------------------------- corruption */

/* Applies f to the bytes of a valid manifest and expects the reader to refuse. */
static void expect_refused(void (*f)(uint8_t *p, size_t *n))
{
	write_simple(file);
	size_t n;
	uint8_t *p = slurp(file, &n);
	p = realloc(p, n + 16);
	f(p, &n);
	spit(file, p, n);
	free(p);
	uint64_t cnt;
	assert_int_equal(read_all(file, &cnt), -1);
}

static void flip_magic(uint8_t *p, size_t *n) { (void)n; p[0] ^= 1; }
static void future_version(uint8_t *p, size_t *n) { (void)n; p[8] = 2; }
static void header_flags(uint8_t *p, size_t *n) { (void)n; p[12] = 1; }
static void truncate_tail(uint8_t *p, size_t *n) { (void)p; *n -= 5; }
static void truncate_half(uint8_t *p, size_t *n) { (void)p; *n /= 2; }
static void append_byte(uint8_t *p, size_t *n) { p[(*n)++] = 0; }
static void flip_block(uint8_t *p, size_t *n) { (void)n; p[FMT_FILE_HEADER_LEN + FMT_BLOCK_HEADER_LEN + 3] ^= 0x10; }
static void flip_block_header(uint8_t *p, size_t *n) { (void)n; p[FMT_FILE_HEADER_LEN + 8] ^= 1; }
static void flip_footer(uint8_t *p, size_t *n) { p[*n - FMT_FOOTER_LEN + 20] ^= 1; }
static void flip_id(uint8_t *p, size_t *n)
{
	/* Change the id and re-seal the footer's checksum: only the whole-file
	 * id check can catch it. */
	uint8_t *f = p + *n - FMT_FOOTER_LEN;
	f[33] ^= 1;
	cut_put_le64(f + 56, XXH3_64bits(f, 56));
}
static void flip_meta(uint8_t *p, size_t *n)
{
	uint64_t meta = cut_get_le64(p + *n - FMT_FOOTER_LEN);
	p[meta + 6] ^= 1;
}
static void flip_index(uint8_t *p, size_t *n)
{
	uint64_t idx = cut_get_le64(p + *n - FMT_FOOTER_LEN + 8);
	p[idx + 6] ^= 1;
}

static void reader__refuses_bad_magic(void **s) { (void)s; expect_refused(flip_magic); }
static void reader__refuses_future_version(void **s) { (void)s; expect_refused(future_version); }
static void reader__refuses_unknown_flags(void **s) { (void)s; expect_refused(header_flags); }
static void reader__refuses_truncation(void **s) { (void)s; expect_refused(truncate_tail); expect_refused(truncate_half); }
static void reader__refuses_trailing_bytes(void **s) { (void)s; expect_refused(append_byte); }
static void reader__refuses_bad_block_checksum(void **s) { (void)s; expect_refused(flip_block); expect_refused(flip_block_header); }
static void reader__refuses_bad_footer(void **s) { (void)s; expect_refused(flip_footer); }
static void reader__refuses_bad_metadata(void **s) { (void)s; expect_refused(flip_meta); }
static void reader__refuses_bad_index(void **s) { (void)s; expect_refused(flip_index); }
static void reader__refuses_wrong_file_id(void **s) { (void)s; expect_refused(flip_id); }

static void reader__every_single_bit_flip_is_detected(void **state)
{
	(void)state;
	write_simple(file);
	size_t n;
	uint8_t *orig = slurp(file, &n);
	for (size_t i = 0; i < n; i++) {
		for (int bit = 0; bit < 8; bit += 3) {
			orig[i] ^= (uint8_t)(1 << bit);
			spit(file, orig, n);
			orig[i] ^= (uint8_t)(1 << bit);
			uint64_t cnt;
			int rc = read_all(file, &cnt);
			if (rc != -1)
				fail_msg("flip of bit %d at offset %zu went unnoticed", bit, i);
		}
	}
	free(orig);
}

/* A writer that emits a required metadata tag this version does not know. */
static void reader__refuses_unknown_required_tag_and_skips_optional(void **state)
{
	(void)state;
	for (int optional = 0; optional < 2; optional++) {
		fmt_cw *w = fmt_cw_create(file, FMT_MAGIC_MANIFEST);
		cut_buf m = {0};
		fmt_meta_put_str(&m, FMT_MT_ROOT, "/r");
		fmt_meta_put_u64(&m, FMT_MT_ENTRIES, 0);
		fmt_meta_put_str(&m, optional ? 0x8123 : 0x0123, "future");
		assert_int_equal(fmt_cw_finish(w, &m, 0, NULL), 0);
		cut_buf_free(&m);
		fmt_mreader *r = fmt_mreader_open(file);
		if (optional) {
			assert_non_null(r);
			fmt_entry e;
			assert_int_equal(fmt_mreader_next(r, &e), 0);
			fmt_mreader_close(r);
		} else {
			assert_null(r);
		}
	}
}

/* Blocks written through the container directly, out of canonical order. */
static void reader__refuses_entries_out_of_order(void **state)
{
	(void)state;
	fmt_cw *w = fmt_cw_create(file, FMT_MAGIC_MANIFEST);
	fmt_enc enc = {0};
	fmt_entry a = mk("b", FMT_T_FILE), b = mk("a", FMT_T_FILE);
	fmt_enc_add(&enc, &a);
	fmt_enc_add(&enc, &b);
	cut_buf raw = {0};
	fmt_enc_finish(&enc, &raw);
	assert_int_equal(fmt_cw_block(w, raw.p, raw.len, 2, "b", 1), 0);
	cut_buf m = {0};
	fmt_meta_put_str(&m, FMT_MT_ROOT, "/r");
	fmt_meta_put_u64(&m, FMT_MT_ENTRIES, 2);
	assert_int_equal(fmt_cw_finish(w, &m, 2, NULL), 0);
	uint64_t cnt;
	assert_int_equal(read_all(file, &cnt), -1);
	cut_buf_free(&m);
	cut_buf_free(&raw);
	fmt_enc_free(&enc);
}

/* A block whose decoded paths hold a traversal component. */
static void reader__refuses_traversal_paths(void **state)
{
	(void)state;
	const char *bad[] = {"../x", "a/../b", "a//b", "/abs", "a/"};
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		fmt_cw *w = fmt_cw_create(file, FMT_MAGIC_MANIFEST);
		fmt_enc enc = {0};
		fmt_entry a = mk(bad[i], FMT_T_FILE);
		fmt_enc_add(&enc, &a);
		cut_buf raw = {0};
		fmt_enc_finish(&enc, &raw);
		assert_int_equal(fmt_cw_block(w, raw.p, raw.len, 1, bad[i], strlen(bad[i])), 0);
		cut_buf m = {0};
		fmt_meta_put_str(&m, FMT_MT_ROOT, "/r");
		fmt_meta_put_u64(&m, FMT_MT_ENTRIES, 1);
		assert_int_equal(fmt_cw_finish(w, &m, 1, NULL), 0);
		uint64_t cnt;
		assert_int_equal(read_all(file, &cnt), -1);
		cut_buf_free(&m);
		cut_buf_free(&raw);
		fmt_enc_free(&enc);
	}
}

static void reader__refuses_a_change_log_as_manifest(void **state)
{
	(void)state;
	fmt_cw *w = fmt_cw_create(file, FMT_MAGIC_CHANGES);
	cut_buf m = {0};
	assert_int_equal(fmt_cw_finish(w, &m, 0, NULL), 0);
	assert_null(fmt_mreader_open(file));
	cut_buf_free(&m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(varint__round_trips_and_rejects_overlong),
		cmocka_unit_test(path_cmp__slash_sorts_below_every_byte),
		cmocka_unit_test(path_valid__rejects_traversal_and_empty_components),
		cmocka_unit_test_setup_teardown(manifest__round_trips_every_field, setup, teardown),
		cmocka_unit_test_setup_teardown(writer__refuses_out_of_order_and_invalid_paths, setup, teardown),
		cmocka_unit_test_setup_teardown(manifest__golden_bytes, setup, teardown),
		cmocka_unit_test_setup_teardown(reader__refuses_bad_magic, setup, teardown),
		cmocka_unit_test_setup_teardown(reader__refuses_future_version, setup, teardown),
		cmocka_unit_test_setup_teardown(reader__refuses_unknown_flags, setup, teardown),
		cmocka_unit_test_setup_teardown(reader__refuses_truncation, setup, teardown),
		cmocka_unit_test_setup_teardown(reader__refuses_trailing_bytes, setup, teardown),
		cmocka_unit_test_setup_teardown(reader__refuses_bad_block_checksum, setup, teardown),
		cmocka_unit_test_setup_teardown(reader__refuses_bad_footer, setup, teardown),
		cmocka_unit_test_setup_teardown(reader__refuses_bad_metadata, setup, teardown),
		cmocka_unit_test_setup_teardown(reader__refuses_bad_index, setup, teardown),
		cmocka_unit_test_setup_teardown(reader__refuses_wrong_file_id, setup, teardown),
		cmocka_unit_test_setup_teardown(reader__every_single_bit_flip_is_detected, setup, teardown),
		cmocka_unit_test_setup_teardown(reader__refuses_unknown_required_tag_and_skips_optional, setup, teardown),
		cmocka_unit_test_setup_teardown(reader__refuses_entries_out_of_order, setup, teardown),
		cmocka_unit_test_setup_teardown(reader__refuses_traversal_paths, setup, teardown),
		cmocka_unit_test_setup_teardown(reader__refuses_a_change_log_as_manifest, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
