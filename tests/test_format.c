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
#include <time.h>
#include <unistd.h>

#include "format/container.h"
#include "base/json.h"
#include "format/manifest.h"
#include "format/path.h"
#include "format/skel.h"
#include "tests/seed.h"
#define XXH_INLINE_ALL
#include <xxhash.h>

/* The id and size of the manifest write_simple() makes (see golden test). */
#define GOLDEN_ID "96dfbbe3de7c6310a8e6ebc4d2b88e1c"
#define GOLDEN_SIZE 405

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

static uint64_t rng; /* xorshift64: set from test_seed() by the test that uses it */
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

enum { RT_N = 20000 }; /* files: several blocks */

/* Sets every field of e that its type t has at random, within its range. */
static void random_fields(fmt_entry *e, unsigned t)
{
	e->mode = (uint32_t)(rnd() & 07777);
	e->uid = (uint32_t)rnd();
	e->gid = (uint32_t)rnd();
	e->nlink = (uint32_t)(rnd() % 5 + 1);
	e->dev = rnd() % 3;
	e->ino = rnd();
	e->size = rnd() >> (rnd() % 64);
	e->mtime_ns = (int64_t)(rnd() % 4000000000000000000ull) - 1000000000000000000ll;
	e->ctime_ns = (int64_t)(rnd() % 4000000000000000000ull);
	if (t == FMT_T_CHR || t == FMT_T_BLK)
		e->rdev = rnd();
	if (t == FMT_T_FILE && rnd() % 2) {
		e->flags |= FMT_E_HASH;
		for (int k = 0; k < 16; k++)
			e->hash[k] = (uint8_t)rnd();
	}
	if (rnd() % 7 == 0)
		e->flags |= FMT_E_CARRIED;
}

/* Writes the root, RT_N - 1 files of random types and fields and their
 * directories (d000 before its files) to w, keeping each entry in v (paths
 * in paths[] and a, owned by the caller).  Returns how many. */
static int add_random_entries(fmt_mwriter *w, fmt_entry *v, char (*paths)[64], cut_arena *a)
{
	snprintf(paths[0], 64, "%s", "");
	for (int i = 1; i < RT_N; i++)
		snprintf(paths[i], 64, "d%03d/%010d.M%uP%u,S=%u:2,S", i / 1000, i, (unsigned)(rnd() % 999999),
			 (unsigned)(rnd() % 99999), (unsigned)(rnd() % 100000));
	int n = 0;
	for (int i = 0; i < RT_N; i++) {
		if (i > 0 && (i == 1 || i / 1000 != (i - 1) / 1000)) {
			v[n] = mk(cut_arena_strndup(a, paths[i], 4), FMT_T_DIR);
			assert_int_equal(fmt_mwriter_add(w, &v[n]), 0);
			n++;
		}
		unsigned t = i == 0 ? FMT_T_DIR : (unsigned)(1 + rnd() % FMT_T_MAX);
		if (t == FMT_T_DIR && i > 0)
			t = FMT_T_FILE;
		v[n] = mk(paths[i], t);
		random_fields(&v[n], t);
		assert_int_equal(fmt_mwriter_add(w, &v[n]), 0);
		n++;
	}
	return n;
}

static void assert_same_entry(const fmt_entry *e, const fmt_entry *v, int i)
{
	if (strcmp(e->path, v->path) != 0)
		fail_msg("entry %d: read '%s', wrote '%s'", i, e->path, v->path);
	assert_int_equal(e->type, v->type);
	assert_int_equal(e->flags, v->flags);
	assert_int_equal(e->mode, v->mode);
	assert_int_equal(e->uid, v->uid);
	assert_int_equal(e->gid, v->gid);
	assert_int_equal(e->nlink, v->nlink);
	assert_true(e->dev == v->dev && e->ino == v->ino && e->size == v->size);
	assert_true(e->rdev == v->rdev);
	assert_true(e->mtime_ns == v->mtime_ns && e->ctime_ns == v->ctime_ns);
	if (e->type == FMT_T_SYMLINK)
		assert_string_equal(e->target, "../target");
	if (e->flags & FMT_E_HASH)
		assert_memory_equal(e->hash, v->hash, 16);
}

/* Random access: every 97th path found exactly, with the one after it; a
 * missing one not. */
static void assert_cursor_finds(fmt_mreader *r, const fmt_entry *v, int n)
{
	fmt_entry e;
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
}

/* Skimming every block gives each entry's type, flags, dev, ino and nlink,
 * and uses up exactly the block's entries. */
static void assert_skims(fmt_mreader *r, const fmt_entry *v, int n)
{
	cut_buf raw = {0};
	fmt_dec dec = {0};
	fmt_entry e;
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
}

static void manifest__round_trips_every_field(void **state)
{
	(void)state;
	rng = (test_seed("manifest__round_trips_every_field") + 1) * 0x9E3779B97F4A7C15ull; /* never 0 */
	char (*paths)[64] = calloc(RT_N, 64);
	fmt_entry *v = calloc(RT_N + RT_N / 1000 + 2, sizeof *v); /* files plus their directories */
	cut_arena a = {0};
	fmt_mwriter *w = fmt_mwriter_create(file);
	assert_non_null(w);
	int n = add_random_entries(w, v, paths, &a);
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
		assert_same_entry(&e, &v[i], i);
	}
	assert_int_equal(fmt_mreader_next(r, &e), 0); /* end, id verified */
	assert_cursor_finds(r, v, n);
	assert_skims(r, v, n);
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
	cut_hex(hex, p + n - FMT_FOOTER_LEN + FMT_FT_ID, 16);
	assert_string_equal(hex, GOLDEN_ID);
	assert_int_equal(n, GOLDEN_SIZE);
	assert_memory_equal(p, "CUTOVMF1\x02\0\0\0\0\0\0\0", 16);
	assert_memory_equal(p + n - FMT_FOOTER_LEN + FMT_FT_MAGIC, FMT_MAGIC_END, 8);
	free(p);
}

/* ------------------------------------------------------ version 1 files */

/* A manifest written by cutover's version 1 writer (the build before the
 * cut rule: `cutover scan` of a five-entry tree).  Version 2 readers read
 * it (FORMAT.md 5). */
static const char v1_manifest_hex[] =
	"4355544f564d46310100000000000000a6000000a30000000500000001000000f0060000000027000000090000004a00"
	"000004000000101500f4450000016101042f63757205142f002e4d0050002e686f73742c533d003a002c5302046c696e"
	"6b8088bfaa190405050302ed03000080fc03802080c49fd50c00cc889ff3e39aa2ee31e482c70a03e280200000002008"
	"005002c9a403031100f01901c3ff0303a0c0fd5bd1e3a071a9c1a805a0030103637572f4d0497cf9394caab34d1a3ab2"
	"bece70ce04cd81b7388e12ff000000010000000f0000002f746d702f69313576312f747265650200000002000000766d"
	"0300000008000000fc7ae7206b44ee180400000008000000e17d67216b44ee180500000008000000686173683d616c6c"
	"060000000000000007000000080000000500000000000000080000000800000003000000000000000a00000008000000"
	"0000000000000000018000006e0000006c69737465643d3320736b69707065645f646972733d302073746174733d3420"
	"636172726965643d302076616e69736865643d30206861736865643d31206861736865645f62797465733d3320686173"
	"685f636172726965643d30207065616b5f62756666657265643d38393736dc0b6e49346449ea01000000100000000000"
	"00000500000000000000589000d0f7f7340ccb00000000000000d60100000000000005000000000000003a0200000000"
	"0000146d03698af4d491b937cef4f8d524e401000000000000000d47fc7035799ade4355544f56454e44";

static void reader__reads_a_version_1_manifest(void **state)
{
	(void)state;
	size_t n = strlen(v1_manifest_hex) / 2;
	uint8_t *p = malloc(n);
	for (size_t i = 0; i < n; i++) {
		unsigned b;
		assert_int_equal(sscanf(v1_manifest_hex + 2 * i, "%2x", &b), 1);
		p[i] = (uint8_t)b;
	}
	assert_int_equal(p[8], 1);
	spit(file, p, n);
	free(p);
	fmt_mreader *r = fmt_mreader_open(file);
	assert_non_null(r);
	cut_buf key = {0};
	fmt_block_info b0;
	assert_int_equal(fmt_mreader_block_info(r, 0, &b0, &key), 0);
	assert_false(b0.has_sum);
	cut_buf_free(&key);
	const char *want[] = {"", "a", "a/cur", "a/cur/1700000000.M1P2.host,S=3:2,S", "a/link"};
	fmt_entry e;
	int k = 0, rc;
	while ((rc = fmt_mreader_next(r, &e)) > 0) {
		assert_true(k < 5);
		assert_string_equal(e.path, want[k]);
		if (k == 4)
			assert_string_equal(e.target, "cur");
		k++;
	}
	assert_int_equal(rc, 0); /* the whole-file id checked too */
	assert_int_equal(k, 5);
	fmt_mreader_close(r);
}

/* ------------------------------------------------------------ cut rule */

/* A synthetic store: users with maildir folders of random sizes, in
 * canonical order.  CUTOVER_SEED picks the seed (printed). */
typedef struct store {
	char **paths;
	fmt_entry *v;
	size_t n, cap;
} store;

static int cmp_paths(const void *a, const void *b)
{
	const char *x = *(char *const *)a, *y = *(char *const *)b;
	return fmt_path_cmp(x, strlen(x), y, strlen(y));
}

static void store_add(store *st, const char *path)
{
	if (st->n == st->cap) {
		st->cap = st->cap ? 2 * st->cap : 1024;
		st->paths = realloc(st->paths, st->cap * sizeof *st->paths);
	}
	st->paths[st->n++] = strdup(path);
}

static void store_make(store *st, uint64_t seed)
{
	rng = seed | 1;
	static const char *const folders[] = {"", ".Sent/", ".Trash/", ".Archive/"};
	char b[256];
	store_add(st, "");
	for (int u = 0; u < 120; u++) {
		snprintf(b, sizeof b, "u%03d", u);
		store_add(st, b);
		snprintf(b, sizeof b, "u%03d/Maildir", u);
		store_add(st, b);
		for (int f = 0; f < 4; f++) {
			if (f) {
				snprintf(b, sizeof b, "u%03d/Maildir/%.*s", u, (int)strlen(folders[f]) - 1,
					 folders[f]);
				store_add(st, b);
			}
			for (int d = 0; d < 2; d++) {
				const char *sub = d ? "new" : "cur";
				snprintf(b, sizeof b, "u%03d/Maildir/%s%s", u, folders[f], sub);
				store_add(st, b);
				int files = (int)(rnd() % 90);
				for (int i = 0; i < files; i++) {
					snprintf(b, sizeof b, "u%03d/Maildir/%s%s/%u.M%uP%u.mx,S=%u:2,S", u,
						 folders[f], sub, 1491941793u + (unsigned)(rnd() % 99999999),
						 (unsigned)(rnd() % 999999), (unsigned)(rnd() % 99999),
						 (unsigned)(rnd() % 100000));
					store_add(st, b);
				}
			}
		}
	}
	qsort(st->paths, st->n, sizeof *st->paths, cmp_paths);
	size_t k = 0; /* random names may repeat */
	for (size_t i = 0; i < st->n; i++)
		if (!k || strcmp(st->paths[k - 1], st->paths[i]) != 0)
			st->paths[k++] = st->paths[i];
		else
			free(st->paths[i]);
	st->n = k;
	st->v = calloc(st->n, sizeof *st->v);
	for (size_t i = 0; i < st->n; i++) {
		const char *p = st->paths[i];
		bool isdir = !strstr(p, ",S=");
		st->v[i] = mk(p, isdir ? FMT_T_DIR : FMT_T_FILE);
		st->v[i].ino = 5000 + i;
	}
}

static void store_free(store *st)
{
	for (size_t i = 0; i < st->n; i++)
		free(st->paths[i]);
	free(st->paths);
	free(st->v);
	memset(st, 0, sizeof *st);
}

/* Writes v[0..n) to path; with prev, entries tell where prev holds them
 * (pos[i], UINT32_MAX block: nowhere). */
static uint64_t store_write(const char *path, const fmt_entry *v, size_t n, fmt_mreader *prev,
			    const uint32_t (*pos)[2])
{
	fmt_mwriter *w = fmt_mwriter_create(path);
	assert_non_null(w);
	if (prev)
		fmt_mwriter_set_prev(w, prev);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(fmt_mwriter_add_from(w, &v[i], pos ? pos[i][0] : UINT32_MAX,
						      pos ? pos[i][1] : 0), 0);
	uint64_t copied = fmt_mwriter_copied(w);
	fmt_mheader h = hdr();
	assert_int_equal(fmt_mwriter_finish(w, &h, NULL), 0);
	return copied;
}

/* Block i's index entry (its key in k). */
static fmt_block_info bi_of(fmt_mreader *r, uint32_t i, cut_buf *k)
{
	fmt_block_info b;
	assert_int_equal(fmt_mreader_block_info(r, i, &b, k), 0);
	return b;
}

/* The blocks of a that b holds byte for byte (same key, count, length,
 * checksum), by a merge of the two indexes; unmatched[] flags b's others. */
static uint32_t shared_blocks(fmt_mreader *a, fmt_mreader *b, bool *unmatched)
{
	uint32_t na = fmt_mreader_nblocks(a), nb = fmt_mreader_nblocks(b), shared = 0;
	for (uint32_t j = 0; j < nb; j++)
		unmatched[j] = true;
	cut_buf kx = {0}, ky = {0};
	for (uint32_t i = 0, j = 0; i < na && j < nb;) {
		fmt_block_info x = bi_of(a, i, &kx), y = bi_of(b, j, &ky);
		int c = fmt_path_cmp((const char *)x.key, x.key_len, (const char *)y.key, y.key_len);
		if (c == 0 && fmt_cr_same_block(&x, &y)) {
			unmatched[j] = false;
			shared++;
		}
		if (c <= 0)
			i++;
		if (c >= 0)
			j++;
	}
	cut_buf_free(&kx);
	cut_buf_free(&ky);
	return shared;
}

/* Two manifests of a store in which one folder got one message (and its
 * directory a new mtime): every block away from the change is the same in
 * both, and the blocks that differ are a short run around it. */
static void cut__a_change_inside_a_run_changes_only_the_blocks_around_it(void **state)
{
	(void)state;
	uint64_t seed = test_seed("cut__a_change_inside_a_run_changes_only_the_blocks_around_it");
	for (int round = 0; round < 4; round++) {
		store a = {0};
		store_make(&a, seed + (uint64_t)round);
		size_t d;
		do /* a folder's cur/ in the middle third */
			d = a.n / 3 + (size_t)(rnd() % (a.n / 3));
		while (a.v[d].type != FMT_T_DIR || !strstr(a.paths[d], "cur"));
		char path2[300];
		snprintf(path2, sizeof path2, "%s/1", a.paths[d]); /* sorts first in the folder */
		fmt_entry *bv = calloc(a.n + 1, sizeof *bv);
		memcpy(bv, a.v, (d + 1) * sizeof *bv);
		bv[d].mtime_ns += 1000000000;
		bv[d + 1] = mk(path2, FMT_T_FILE);
		memcpy(bv + d + 2, a.v + d + 1, (a.n - d - 1) * sizeof *bv);
		char fa[320], fb[320];
		snprintf(fa, sizeof fa, "%s/a", dir);
		snprintf(fb, sizeof fb, "%s/b", dir);
		store_write(fa, a.v, a.n, NULL, NULL);
		store_write(fb, bv, a.n + 1, NULL, NULL);
		fmt_mreader *ra = fmt_mreader_open(fa), *rb = fmt_mreader_open(fb);
		assert_non_null(ra);
		assert_non_null(rb);
		uint32_t na = fmt_mreader_nblocks(ra), nb = fmt_mreader_nblocks(rb);
		assert_true(na >= 8); /* the store spans many blocks */
		bool *un = calloc(nb, sizeof *un);
		uint32_t shared = shared_blocks(ra, rb, un);
		/* The unmatched blocks of b are one run, and it holds the change. */
		uint32_t first = UINT32_MAX, last = 0;
		for (uint32_t j = 0; j < nb; j++)
			if (un[j]) {
				if (first == UINT32_MAX)
					first = j;
				last = j;
			}
		assert_true(first != UINT32_MAX);
		for (uint32_t j = first; j <= last; j++)
			assert_true(un[j]);
		cut_buf k = {0};
		fmt_block_info fb0 = bi_of(rb, first, &k);
		assert_true(fmt_path_cmp((const char *)fb0.key, fb0.key_len, a.paths[d],
					 strlen(a.paths[d])) <= 0);
		if (last + 1 < nb) {
			fmt_block_info nx = bi_of(rb, last + 1, &k);
			assert_true(fmt_path_cmp((const char *)nx.key, nx.key_len, path2, strlen(path2)) > 0);
		}
		cut_buf_free(&k);
		assert_true(last - first + 1 <= 2);
		assert_true(shared + 2 >= na);
		free(un);
		free(bv);
		fmt_mreader_close(ra);
		fmt_mreader_close(rb);
		unlink(fa);
		unlink(fb);
		store_free(&a);
	}
}

/* A manifest written with its unchanged blocks copied from the previous one
 * is the same file, byte for byte, as one encoded entry by entry. */
static void writer__copied_blocks_equal_encoded_ones(void **state)
{
	(void)state;
	uint64_t seed = test_seed("writer__copied_blocks_equal_encoded_ones");
	store a = {0};
	store_make(&a, seed);
	char fa[320], f1[320], f2[320];
	snprintf(fa, sizeof fa, "%s/a", dir);
	snprintf(f1, sizeof f1, "%s/b1", dir);
	snprintf(f2, sizeof f2, "%s/b2", dir);
	store_write(fa, a.v, a.n, NULL, NULL);
	fmt_mreader *ra = fmt_mreader_open(fa);
	assert_non_null(ra);
	/* Where each entry of a lies in ra. */
	uint32_t (*apos)[2] = calloc(a.n, sizeof *apos);
	cut_buf key = {0};
	for (uint32_t b = 0, k = 0; b < fmt_mreader_nblocks(ra); b++)
		for (uint32_t i = 0; i < bi_of(ra, b, &key).count; i++, k++)
			apos[k][0] = b, apos[k][1] = i;
	cut_buf_free(&key);
	/* b: a few files changed in size (no longer equal to a's), one
	 * entry removed. */
	fmt_entry *bv = calloc(a.n, sizeof *bv);
	uint32_t (*bpos)[2] = calloc(a.n, sizeof *bpos);
	size_t n = 0, gone = a.n / 2 + rnd() % (a.n / 4);
	for (size_t i = 0; i < a.n; i++) {
		if (i == gone && a.v[i].type == FMT_T_FILE)
			continue;
		bv[n] = a.v[i];
		bpos[n][0] = apos[i][0];
		bpos[n][1] = apos[i][1];
		if (a.v[i].type == FMT_T_FILE && rnd() % 1000 == 0) {
			bv[n].size++;
			bpos[n][0] = UINT32_MAX;
		}
		n++;
	}
	uint64_t copied = store_write(f1, bv, n, ra, (const uint32_t(*)[2])bpos);
	assert_int_equal(store_write(f2, bv, n, NULL, NULL), 0);
	size_t n1, n2;
	uint8_t *p1 = slurp(f1, &n1), *p2 = slurp(f2, &n2);
	assert_int_equal(n1, n2);
	assert_memory_equal(p1, p2, n1);
	assert_true(copied > 0);
	assert_true(copied < fmt_mreader_nblocks(ra)); /* some were encoded */
	uint64_t cnt;
	assert_int_equal(read_all(f1, &cnt), 0);
	assert_int_equal(cnt, n);
	free(p1);
	free(p2);
	free(apos);
	free(bpos);
	free(bv);
	fmt_mreader_close(ra);
	unlink(fa);
	unlink(f1);
	unlink(f2);
	store_free(&a);
}


/* ------------------------------------------------------------ skeleton */

static bool imm_cur_new(void *arg, const char *path, size_t len)
{
	(void)arg;
	(void)len;
	return strstr(path, "/cur/") || strstr(path, "/new/");
}

#define SK_POLICY "test cur/ new/"

/* Writes v[0..n) with a skeleton; with prev (and its skeleton), the runs
 * of prev's skeleton whose entries v holds unchanged (orig[i]: v[i] is
 * prev's entry orig[i], unchanged; -1 otherwise) go as runs. */
static void sk_write(const char *path, const fmt_entry *v, size_t n, fmt_mreader *prev,
		     fmt_skel *psk, const long *orig, const uint32_t (*apos)[2], uint8_t id[FMT_ID_LEN],
		     uint64_t *runs)
{
	fmt_mwriter *w = fmt_mwriter_create(path);
	assert_non_null(w);
	assert_int_equal(fmt_mwriter_skeleton(w, imm_cur_new, NULL, SK_POLICY), 0);
	if (prev) {
		fmt_mwriter_set_prev(w, prev);
		fmt_mwriter_set_prev_skeleton(w, psk);
	}
	fmt_skel_group g = {0};
	uint32_t gblock = UINT32_MAX;
	*runs = 0;
	for (size_t i = 0; i < n;) {
		long k = orig ? orig[i] : -1;
		if (k < 0) {
			assert_int_equal(fmt_mwriter_add_from(w, &v[i], UINT32_MAX, 0), 0);
			i++;
			continue;
		}
		uint32_t b = apos[k][0], idx = apos[k][1];
		if (b != gblock) {
			fmt_skel_group_free(&g);
			assert_int_equal(fmt_skel_load(psk, b, &g), 0);
			gblock = b;
		}
		/* A run of prev's starting at k, held whole and unchanged by v? */
		const fmt_skel_el *r = NULL;
		for (uint32_t e = 0; e < g.nel; e++)
			if (g.el[e].idx == idx && g.el[e].n)
				r = &g.el[e];
		bool whole = r && i + r->n <= n;
		for (uint32_t j = 0; whole && j < (r ? r->n : 0); j++)
			whole = orig[i + j] == k + (long)j;
		if (whole) {
			fmt_mrun mr = {&g.v[r->first], &g.v[r->last], b, idx, r->n, r->bytes, r->weight};
			assert_int_equal(fmt_mwriter_add_run(w, &mr), 0);
			i += r->n;
			(*runs)++;
			continue;
		}
		assert_int_equal(fmt_mwriter_add_from(w, &v[i], b, idx), 0);
		i++;
	}
	fmt_skel_group_free(&g);
	fmt_mheader h = hdr();
	assert_int_equal(fmt_mwriter_finish(w, &h, id), 0);
}

static void expect_same_file(const char *a, const char *b)
{
	size_t na, nb;
	uint8_t *pa = slurp(a, &na), *pb = slurp(b, &nb);
	assert_int_equal(na, nb);
	assert_memory_equal(pa, pb, na);
	free(pa);
	free(pb);
}

/* b: a's entries, files changed at random (one in rate), one removed, one
 * added, written with a's runs and entry by entry: the same files. */
static void runs_as_entries(const store *a, fmt_mreader *ra, fmt_skel *ska,
			    const uint32_t (*apos)[2], unsigned rate, const char *f1, const char *f2)
{
	char s1[330], s2[330];
	snprintf(s1, sizeof s1, "%s.skel", f1);
	snprintf(s2, sizeof s2, "%s.skel", f2);
	uint8_t id1[FMT_ID_LEN], id2[FMT_ID_LEN];
	uint64_t runs;
	fmt_entry *bv = calloc(a->n + 1, sizeof *bv);
	long *orig = calloc(a->n + 1, sizeof *orig);
	size_t n = 0, gone = a->n / 3 + rnd() % (a->n / 3), added = 0;
	char extra[320] = "";
	for (size_t i = 0; i < a->n; i++) {
		if (i == gone && a->v[i].type == FMT_T_FILE)
			continue;
		bv[n] = a->v[i];
		orig[n] = (long)i;
		if (a->v[i].type == FMT_T_FILE && rnd() % rate == 0) {
			bv[n].size++;
			orig[n] = -1;
		}
		n++;
		if (!added && i > 2 * a->n / 3 && a->v[i].type == FMT_T_DIR && strstr(a->paths[i], "cur")) {
			snprintf(extra, sizeof extra, "%s/0", a->paths[i]); /* first in the folder */
			bv[n] = mk(extra, FMT_T_FILE);
			orig[n++] = -1;
			added = 1;
		}
	}
	sk_write(f1, bv, n, ra, ska, orig, apos, id1, &runs);
	uint64_t none;
	sk_write(f2, bv, n, NULL, NULL, NULL, NULL, id2, &none);
	expect_same_file(f1, f2);
	expect_same_file(s1, s2);
	assert_true(runs > 10);
	uint64_t cnt;
	assert_int_equal(read_all(f1, &cnt), 0);
	assert_int_equal(cnt, n);
	free(orig);
	free(bv);
	unlink(f1);
	unlink(f2);
	unlink(s1);
	unlink(s2);
}

/* A manifest written from the previous one's skeleton, its unchanged runs
 * added as units, is the same file byte for byte as one written entry by
 * entry; so is its skeleton, though the unchanged blocks' records were
 * copied from the previous skeleton. */
static void skeleton__runs_give_the_same_manifest_and_skeleton(void **state)
{
	(void)state;
	uint64_t seed = test_seed("skeleton__runs_give_the_same_manifest_and_skeleton");
	store a = {0};
	store_make(&a, seed);
	for (size_t i = 0; i < a.n; i++)
		if (a.v[i].type == FMT_T_FILE)
			a.v[i].flags |= FMT_E_CARRIED;
	char fa[320], f1[320], f2[320], sa[330];
	snprintf(fa, sizeof fa, "%s/sa", dir);
	snprintf(f1, sizeof f1, "%s/sb1", dir);
	snprintf(f2, sizeof f2, "%s/sb2", dir);
	uint8_t ida[FMT_ID_LEN];
	uint64_t runs;
	sk_write(fa, a.v, a.n, NULL, NULL, NULL, NULL, ida, &runs);
	fmt_mreader *ra = fmt_mreader_open(fa);
	assert_non_null(ra);
	fmt_skel *ska = fmt_skel_open(fa, ida, fmt_mreader_nblocks(ra), SK_POLICY);
	assert_non_null(ska);
	assert_null(fmt_skel_open(fa, ida, fmt_mreader_nblocks(ra), "another policy"));
	uint32_t (*apos)[2] = calloc(a.n, sizeof *apos);
	cut_buf key = {0};
	for (uint32_t b = 0, k = 0; b < fmt_mreader_nblocks(ra); b++)
		for (uint32_t i = 0; i < bi_of(ra, b, &key).count; i++, k++)
			apos[k][0] = b, apos[k][1] = i;
	cut_buf_free(&key);
	/* Few changes, so that most blocks are copied; then many, so that most
	 * are not and their runs are added entry by entry, block after block. */
	for (unsigned rate = 500; rate >= 7; rate /= 8)
		runs_as_entries(&a, ra, ska, (const uint32_t(*)[2])apos, rate, f1, f2);
	fmt_skel_close(ska);
	fmt_mreader_close(ra);
	free(apos);
	unlink(fa);
	snprintf(sa, sizeof sa, "%s.skel", fa);
	unlink(sa);
	store_free(&a);
}

/* One folder so large that its blocks end only where their weight would
 * pass the limit (names the hash rules would cut at are left out): a run
 * added as a unit must carry its weight exactly, or the next block ends
 * elsewhere. */
static void skeleton__runs_carry_the_weight_that_ends_large_blocks(void **state)
{
	(void)state;
	uint64_t seed = test_seed("skeleton__runs_carry_the_weight_that_ends_large_blocks");
	rng = seed | 1;
	size_t cap = 14000, n = 0;
	fmt_entry *v = calloc(cap, sizeof *v);
	char **names = calloc(cap, sizeof *names);
	const char *dirs[] = {"", "z", "z/cur"};
	for (size_t i = 0; i < 3; i++) {
		names[n] = strdup(dirs[i]);
		v[n] = mk(names[n], FMT_T_DIR);
		n++;
	}
	char b[400];
	for (uint32_t i = 0; n < cap; i++) {
		snprintf(b, sizeof b, "z/cur/%08u.%0180u.mx,S=%u:2,S", i, 0u, (unsigned)(rnd() % 9999));
		fmt_entry e = mk(b, FMT_T_FILE);
		if (fmt_mcut_before(1, 0, &e))
			continue; /* a hash rule would end a block here */
		names[n] = strdup(b);
		v[n] = mk(names[n], FMT_T_FILE);
		v[n].flags |= FMT_E_CARRIED;
		v[n].ino = 9000 + n;
		n++;
	}
	char fa[320], f1[320], f2[320], s1[330], s2[330];
	snprintf(fa, sizeof fa, "%s/wa", dir);
	snprintf(f1, sizeof f1, "%s/wb1", dir);
	snprintf(f2, sizeof f2, "%s/wb2", dir);
	snprintf(s1, sizeof s1, "%s.skel", f1);
	snprintf(s2, sizeof s2, "%s.skel", f2);
	uint8_t ida[FMT_ID_LEN], id1[FMT_ID_LEN], id2[FMT_ID_LEN];
	uint64_t runs;
	sk_write(fa, v, n, NULL, NULL, NULL, NULL, ida, &runs);
	fmt_mreader *ra = fmt_mreader_open(fa);
	assert_non_null(ra);
	assert_true(fmt_mreader_nblocks(ra) >= 3); /* cut by weight alone */
	fmt_skel *ska = fmt_skel_open(fa, ida, fmt_mreader_nblocks(ra), SK_POLICY);
	assert_non_null(ska);
	uint32_t (*apos)[2] = calloc(n, sizeof *apos);
	cut_buf key = {0};
	for (uint32_t bl = 0, k = 0; bl < fmt_mreader_nblocks(ra); bl++)
		for (uint32_t i = 0; i < bi_of(ra, bl, &key).count; i++, k++)
			apos[k][0] = bl, apos[k][1] = i;
	cut_buf_free(&key);
	/* b: one file of the first block changed; the blocks after it are
	 * added as runs. */
	long *orig = calloc(n, sizeof *orig);
	for (size_t i = 0; i < n; i++)
		orig[i] = (long)i;
	v[10].size++;
	orig[10] = -1;
	sk_write(f1, v, n, ra, ska, orig, (const uint32_t(*)[2])apos, id1, &runs);
	uint64_t none;
	sk_write(f2, v, n, NULL, NULL, NULL, NULL, id2, &none);
	expect_same_file(f1, f2);
	expect_same_file(s1, s2);
	assert_true(runs >= 2);
	fmt_skel_close(ska);
	fmt_mreader_close(ra);
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	free(v);
	free(apos);
	free(orig);
	unlink(fa);
	unlink(f1);
	unlink(f2);
	unlink(s2);
	unlink(s1);
	snprintf(s1, sizeof s1, "%s.skel", fa);
	unlink(s1);
}

/* A skeleton's records that do not hold together are refused, whatever
 * the bytes (the container's checksums aside). */
static void skeleton__decoder_refuses_bad_records(void **state)
{
	(void)state;
	static const uint8_t bad[][8] = {
		{0},                /* no record: a manifest block has an entry */
		{2, 0, 0},          /* two records announced, the first of them alone */
		{1, 5, 1, 0, 0},    /* a run cut short */
		{2, 3, 0, 2, 0, 0}, /* the second record before the first */
		{1, 0, 0, 2},       /* one record, two entries */
		{120, 0, 0},        /* more records than the bytes could hold */
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		fmt_skel_group g;
		const char *err = NULL;
		assert_int_equal(fmt_skel_decode(bad[i], sizeof bad[i], bad[i][0], &g, &err), -1);
		assert_non_null(err);
	}
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
static void future_version(uint8_t *p, size_t *n) { (void)n; p[8] = 3; }
static void header_flags(uint8_t *p, size_t *n) { (void)n; p[12] = 1; }
static void truncate_tail(uint8_t *p, size_t *n) { (void)p; *n -= 5; }
static void truncate_half(uint8_t *p, size_t *n) { (void)p; *n /= 2; }
static void append_byte(uint8_t *p, size_t *n) { p[(*n)++] = 0; }
static void flip_block(uint8_t *p, size_t *n) { (void)n; p[FMT_FILE_HEADER_LEN + FMT_BLOCK_HEADER_LEN + 3] ^= 0x10; }
static void flip_block_header(uint8_t *p, size_t *n) { (void)n; p[FMT_FILE_HEADER_LEN + 8] ^= 1; }
static void flip_footer(uint8_t *p, size_t *n) { p[*n - FMT_FOOTER_LEN + FMT_FT_RECORDS + 4] ^= 1; }
static void flip_id(uint8_t *p, size_t *n)
{
	/* Change the id and re-seal the footer's checksum: only the whole-file
	 * id check can catch it. */
	uint8_t *f = p + *n - FMT_FOOTER_LEN;
	f[33] ^= 1;
	cut_put_le64(f + FMT_FT_SUM, XXH3_64bits(f, FMT_FT_SUM));
}
static void flip_meta(uint8_t *p, size_t *n)
{
	uint64_t meta = cut_get_le64(p + *n - FMT_FOOTER_LEN + FMT_FT_META);
	p[meta + 6] ^= 1;
}
static void flip_index(uint8_t *p, size_t *n)
{
	uint64_t idx = cut_get_le64(p + *n - FMT_FOOTER_LEN + FMT_FT_INDEX);
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

/* Seals one entry block (raw, count entries, first path key) in a manifest
 * and reads it back: the number of entries read, or -1 when refused. */
static int read_block(const uint8_t *raw, size_t len, uint32_t count, const char *key)
{
	fmt_cw *w = fmt_cw_create(file, FMT_MAGIC_MANIFEST);
	assert_non_null(w);
	assert_int_equal(fmt_cw_block(w, raw, len, count, key, strlen(key)), 0);
	cut_buf m = {0};
	fmt_meta_put_str(&m, FMT_MT_ROOT, "/r");
	fmt_meta_put_u64(&m, FMT_MT_ENTRIES, count);
	assert_int_equal(fmt_cw_finish(w, &m, count, NULL), 0);
	cut_buf_free(&m);
	uint64_t n;
	return read_all(file, &n) < 0 ? -1 : (int)n;
}

/* The entry block of one entry e, as the encoder writes it. */
static int read_entry(const fmt_entry *e)
{
	fmt_enc enc = {0};
	fmt_enc_add(&enc, e);
	cut_buf raw = {0};
	fmt_enc_finish(&enc, &raw);
	int r = read_block(raw.p, raw.len, 1, e->path);
	cut_buf_free(&raw);
	fmt_enc_free(&enc);
	return r;
}

/* FORMAT.md 3.3: mode MUST be <= 07777 (the encoder writes what it is given). */
static void reader__refuses_a_mode_above_07777(void **state)
{
	(void)state;
	fmt_entry e = mk("a", FMT_T_FILE);
	e.mode = 07777;
	assert_int_equal(read_entry(&e), 1);
	e.mode = 010000;
	assert_int_equal(read_entry(&e), -1);
	e.mode = 0100644; /* a whole st_mode */
	assert_int_equal(read_entry(&e), -1);
}

/* FORMAT.md 3.3: the HASH bit on a type other than a file MUST be refused. */
static void reader__refuses_a_hash_on_a_non_file(void **state)
{
	(void)state;
	unsigned types[] = {FMT_T_DIR, FMT_T_SYMLINK, FMT_T_FIFO};
	fmt_entry e = mk("a", FMT_T_FILE);
	e.flags = FMT_E_HASH;
	memset(e.hash, 0x42, sizeof e.hash);
	assert_int_equal(read_entry(&e), 1);
	for (size_t i = 0; i < sizeof types / sizeof *types; i++) {
		e = mk("a", types[i]);
		e.flags = FMT_E_HASH;
		assert_int_equal(read_entry(&e), -1);
	}
}

/* One entry whose NAMES text is `text` (tlen bytes, NUL = a number token)
 * and whose NUMS stream holds the zigzag-coded values z[0..nz), with the
 * attributes of mk(key, FMT_T_FILE); key is the path the block claims. */
static int read_names(const char *text, size_t tlen, const uint64_t *z, size_t nz, const char *key)
{
	fmt_enc enc = {0};
	fmt_entry e = mk(key, FMT_T_FILE);
	fmt_enc_add(&enc, &e); /* only its ATTRS stream is used */
	cut_buf names = {0}, nums = {0}, raw = {0};
	cut_buf_varint(&names, 0);
	cut_buf_varint(&names, tlen);
	cut_buf_put(&names, text, tlen);
	for (size_t i = 0; i < nz; i++)
		cut_buf_varint(&nums, z[i]);
	uint8_t h[24] = {0};
	cut_put_le32(h + 4, (uint32_t)names.len);
	cut_put_le32(h + 8, (uint32_t)nums.len);
	cut_put_le32(h + 12, (uint32_t)enc.meta.len);
	cut_buf_put(&raw, h, sizeof h);
	cut_buf_put(&raw, names.p, names.len);
	cut_buf_put(&raw, nums.p, nums.len);
	cut_buf_put(&raw, enc.meta.p, enc.meta.len);
	int r = read_block(raw.p, raw.len, 1, key);
	cut_buf_free(&names);
	cut_buf_free(&nums);
	cut_buf_free(&raw);
	fmt_enc_free(&enc);
	return r;
}

/* FORMAT.md 3.3: at most 32 numbers in one text; a 33rd MUST be refused.
 * The block claims the path the numbers would give, so that only the count
 * can refuse it. */
static void reader__refuses_a_33rd_number_in_a_name(void **state)
{
	(void)state;
	char text[80], path[120];
	uint64_t z[33];
	for (int k = 0; k < 33; k++) {
		text[2 * k] = 0; /* token: value 7, as zigzag(7) << 1 (base 0 for k = 0 */
		text[2 * k + 1] = '.'; /* and the previous number 7 + 0 for the others) */
		path[2 * k] = '7';
		path[2 * k + 1] = '.';
		z[k] = k == 0 ? cut_zigzag(7) << 1 : (cut_zigzag(0) << 1) | 1;
	}
	text[63] = 'x', path[63] = 'x', path[64] = 0; /* 32 tokens, then "x" */
	assert_int_equal(read_names(text, 64, z, 32, path), 1);
	text[65] = 'x', path[64] = '7', path[65] = 'x', path[66] = 0; /* 33 tokens */
	assert_int_equal(read_names(text, 66, z, 33, path), -1);
	/* The writer keeps the runs of digits after the 32nd as text: 40
	 * numbers round trip. */
	size_t n = 0;
	for (int k = 1; k <= 40; k++)
		n += (size_t)snprintf(path + n, sizeof path - n, k < 40 ? "%d." : "%d", k);
	fmt_mwriter *w = fmt_mwriter_create(file);
	fmt_entry e = mk(path, FMT_T_FILE);
	assert_int_equal(fmt_mwriter_add(w, &e), 0);
	fmt_mheader h = hdr();
	uint8_t id[16];
	assert_int_equal(fmt_mwriter_finish(w, &h, id), 0);
	fmt_mreader *r = fmt_mreader_open(file);
	assert_non_null(r);
	assert_int_equal(fmt_mreader_next(r, &e), 1);
	assert_string_equal(e.path, path);
	fmt_mreader_close(r);
}

/* FORMAT.md 3.3: a number of 10^18 or more MUST be refused (a token has at
 * most 18 digits); a low bit of 1 on the first token too. */
static void reader__refuses_name_numbers_of_10_18_and_more(void **state)
{
	(void)state;
	const char text[] = {'m', 0};
	uint64_t z = cut_zigzag(999999999999999999ll) << 1;
	assert_int_equal(read_names(text, 2, &z, 1, "m999999999999999999"), 1);
	z = cut_zigzag(1000000000000000000ll) << 1;
	assert_int_equal(read_names(text, 2, &z, 1, "m1000000000000000000"), -1);
	z = cut_zigzag(INT64_MAX / 2) << 1;
	assert_int_equal(read_names(text, 2, &z, 1, "m4611686018427387903"), -1);
	z = (cut_zigzag(5) << 1) | 1; /* relative to a previous number of this text: none */
	assert_int_equal(read_names(text, 2, &z, 1, "m5"), -1);
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

/* The one JSON string escaping (base/json.h), on both sinks. */
/* ------------------------------------------- the index, read by segments */

/* Flips a byte in the middle of path's index section (found from the
 * footer), where a file of many blocks has neither its first nor its last
 * segment; returns its offset. */
static uint64_t flip_mid_index(const char *path)
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
	return at;
}

/* Block i's key in the containers many_blocks() writes: "" for block 0,
 * then increasing digits and a suffix of 0 to 149 letters. */
static size_t many_key(char *k, uint32_t i, uint64_t seed)
{
	if (i == 0)
		return 0;
	size_t n = (size_t)snprintf(k, 16, "%08u", 2 * i);
	size_t extra = (size_t)((seed ^ (i * 2654435761u)) % 150);
	for (size_t j = 0; j < extra; j++)
		k[n++] = (char)('a' + (i + j) % 26);
	return n;
}

/* A change-log container of n blocks (the container does not look inside
 * them): block i holds its key and i, and counts i % 7 + 1 records. */
static void many_blocks(const char *path, uint32_t n, uint64_t seed)
{
	fmt_cw *w = fmt_cw_create(path, FMT_MAGIC_CHANGES);
	assert_non_null(w);
	char k[200], raw[220];
	uint64_t records = 0;
	for (uint32_t i = 0; i < n; i++) {
		size_t kl = many_key(k, i, seed);
		int rl = snprintf(raw, sizeof raw, "%.*s#%u", (int)kl, k, i);
		assert_int_equal(fmt_cw_block(w, (const uint8_t *)raw, (size_t)rl, i % 7 + 1, k, kl), 0);
		records += i % 7 + 1;
	}
	cut_buf m = {0};
	fmt_meta_put_str(&m, 1, "x");
	assert_int_equal(fmt_cw_finish(w, &m, records, NULL), 0);
	cut_buf_free(&m);
}

/* Every block's index entry, asked for in order and at random (segments
 * loaded and evicted), is the one written; a search finds each block by its
 * key and a key between two blocks in the first of them; each block reads
 * back.  The number of blocks is random: one segment, several, a last one
 * part full. */
static void container__index_read_by_segments_gives_every_entry(void **state)
{
	(void)state;
	uint64_t seed = test_seed("container__index_read_by_segments_gives_every_entry");
	rng = seed | 1;
	uint32_t n = 1 + (uint32_t)(rnd() % 3000);
	many_blocks(file, n, seed);
	fmt_cr *r = fmt_cr_open(file, FMT_MAGIC_CHANGES);
	assert_non_null(r);
	assert_int_equal(fmt_cr_nblocks(r), n);
	cut_buf key = {0}, raw = {0};
	char k[200], want[220];
	uint64_t end = FMT_FILE_HEADER_LEN;
	for (uint32_t t = 0; t < 2 * n; t++) {
		uint32_t i = t < n ? t : (uint32_t)(rnd() % n);
		fmt_block_info b;
		assert_int_equal(fmt_cr_block(r, i, &b, &key), 0);
		size_t kl = many_key(k, i, seed);
		assert_int_equal(b.count, i % 7 + 1);
		assert_int_equal(b.key_len, kl);
		assert_memory_equal(b.key, k, kl);
		assert_true(b.has_sum);
		if (t < n) { /* in order: the extents tile the blocks */
			assert_int_equal(b.off, end);
			end = b.end;
		}
		uint32_t at, cnt;
		assert_int_equal(fmt_cr_find(r, k, kl, &at), 0);
		assert_int_equal(at, i);
		k[kl] = '~'; /* after block i's key, before block i + 1's (not after "") */
		assert_int_equal(fmt_cr_find(r, k, kl + 1, &at), 0);
		assert_int_equal(at, i ? i : n - 1);
		if (rnd() % 8 == 0 || i + 1 == n) {
			assert_int_equal(fmt_cr_read_block(r, i, &raw, &cnt, NULL), 0);
			int wl = snprintf(want, sizeof want, "%.*s#%u", (int)kl, k, i);
			assert_int_equal(raw.len, (size_t)wl);
			assert_memory_equal(raw.p, want, raw.len);
		}
	}
	uint32_t at;
	assert_int_equal(fmt_cr_find(r, "\xff", 1, &at), 0);
	assert_int_equal(at, n - 1);
	cut_buf_free(&key);
	cut_buf_free(&raw);
	fmt_cr_close(r);
}

/* An index damaged in the middle is refused at open (its checksum); one
 * damaged after the open is refused when a reader reaches the damaged
 * segment, not before: what precedes it reads, nothing of it or after it. */
static void container__index_damaged_after_open_is_refused_where_reached(void **state)
{
	(void)state;
	uint32_t n = 1000; /* 16 segments */
	many_blocks(file, n, 7);
	fmt_cr *r = fmt_cr_open(file, FMT_MAGIC_CHANGES);
	assert_non_null(r);
	flip_mid_index(file);
	cut_buf key = {0};
	fmt_block_info b;
	uint32_t i = 0;
	while (i < n && fmt_cr_block(r, i, &b, &key) == 0)
		i++;
	assert_true(i >= 64 && i < n - 64); /* in a middle segment */
	assert_int_equal(i % 64, 0);        /* at its first entry */
	assert_int_equal(fmt_cr_block(r, i + 1, &b, &key), -1);
	assert_int_equal(fmt_cr_block(r, 0, &b, &key), 0); /* segment 0 is whole */
	cut_buf_free(&key);
	fmt_cr_close(r);
	assert_null(fmt_cr_open(file, FMT_MAGIC_CHANGES)); /* and at open, at once */
}

/* A manifest of many blocks read in order by fmt_mreader_next, whose index
 * is damaged while it is read: the reader fails at the damaged segment
 * (-1, never 0: no consumer takes the entries before it for the whole). */
static void reader__index_damaged_while_reading_fails_there(void **state)
{
	(void)state;
	fmt_mwriter *w = fmt_mwriter_create(file);
	assert_non_null(w);
	char p[32];
	fmt_entry e = mk("", FMT_T_DIR);
	assert_int_equal(fmt_mwriter_add(w, &e), 0);
	for (unsigned d = 0; d < 20000; d++) { /* one directory in 64 starts a block */
		snprintf(p, sizeof p, "d%05u", d);
		e = mk(p, FMT_T_DIR);
		assert_int_equal(fmt_mwriter_add(w, &e), 0);
	}
	fmt_mheader h = {.root = (char *)"/r"};
	assert_int_equal(fmt_mwriter_finish(w, &h, NULL), 0);
	fmt_mreader *r = fmt_mreader_open(file);
	assert_non_null(r);
	uint32_t nb = fmt_mreader_nblocks(r);
	assert_true(nb > 3 * 64);
	unsigned k = 0;
	int rc;
	while ((rc = fmt_mreader_next(r, &e)) > 0 && ++k < 64)
		; /* into the first segment */
	assert_int_equal(rc, 1);
	flip_mid_index(file);
	while ((rc = fmt_mreader_next(r, &e)) > 0)
		k++;
	assert_int_equal(rc, -1);
	assert_true(k > 64 && k < 20001 - 64);
	fmt_mreader_close(r);
}

static void cut_json_str__utf8_as_is_controls_and_bad_bytes_escaped(void **state)
{
	(void)state;
	static const struct { const char *in; size_t n; const char *out; } cases[] = {
		{"plain", 5, "\"plain\""},
		{"caf\xc3\xa9", 5, "\"caf\xc3\xa9\""},              /* UTF-8 stays UTF-8 */
		{"\xe6\x97\xa5", 3, "\"\xe6\x97\xa5\""},
		{"\xf0\x9f\x93\xa7", 4, "\"\xf0\x9f\x93\xa7\""},   /* 4 bytes */
		{"lat\xe9n", 5, "\"lat\\udce9n\""},                 /* latin-1 */
		{"\xff", 1, "\"\\udcff\""},
		{"\xc3", 1, "\"\\udcc3\""},                         /* truncated */
		{"\xc0\xaf", 2, "\"\\udcc0\\udcaf\""},              /* overlong */
		{"\xed\xa0\x80", 3, "\"\\udced\\udca0\\udc80\""},  /* a surrogate */
		{"q\"b\\", 4, "\"q\\\"b\\\\\""},
		{"a\nb\tc\rd", 7, "\"a\\nb\\tc\\rd\""},
		{"\x01\x7f", 2, "\"\\u0001\\u007f\""},
		{"nul\0x", 5, "\"nul\\u0000x\""},
		{"", 0, "\"\""},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		cut_buf b = {0};
		cut_json_str(&b, cases[i].in, cases[i].n);
		cut_buf_putc(&b, 0);
		assert_string_equal((const char *)b.p, cases[i].out);
		char *mem = NULL;
		size_t ml = 0;
		FILE *f = open_memstream(&mem, &ml);
		cut_json_fstr(f, cases[i].in, cases[i].n);
		fclose(f);
		assert_string_equal(mem, cases[i].out);
		free(mem);
		cut_buf_free(&b);
	}
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
		cmocka_unit_test_setup_teardown(reader__reads_a_version_1_manifest, setup, teardown),
		cmocka_unit_test_setup_teardown(cut__a_change_inside_a_run_changes_only_the_blocks_around_it, setup, teardown),
		cmocka_unit_test_setup_teardown(writer__copied_blocks_equal_encoded_ones, setup, teardown),
		cmocka_unit_test_setup_teardown(skeleton__runs_give_the_same_manifest_and_skeleton, setup, teardown),
		cmocka_unit_test_setup_teardown(skeleton__runs_carry_the_weight_that_ends_large_blocks, setup, teardown),
		cmocka_unit_test(skeleton__decoder_refuses_bad_records),
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
		cmocka_unit_test_setup_teardown(container__index_read_by_segments_gives_every_entry, setup, teardown),
		cmocka_unit_test_setup_teardown(container__index_damaged_after_open_is_refused_where_reached, setup, teardown),
		cmocka_unit_test_setup_teardown(reader__index_damaged_while_reading_fails_there, setup, teardown),
		cmocka_unit_test(cut_json_str__utf8_as_is_controls_and_bad_bytes_escaped),
		cmocka_unit_test_setup_teardown(reader__refuses_a_mode_above_07777, setup, teardown),
		cmocka_unit_test_setup_teardown(reader__refuses_a_hash_on_a_non_file, setup, teardown),
		cmocka_unit_test_setup_teardown(reader__refuses_a_33rd_number_in_a_name, setup, teardown),
		cmocka_unit_test_setup_teardown(reader__refuses_name_numbers_of_10_18_and_more, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
