/*
 * test_changes.c - the change log codec (format/changes.c): round trips of
 * every operation, golden bytes of a tiny log, and one refused input for each
 * way a log can be damaged or hostile (flipped bit, truncation, bad magic,
 * future version, unknown operation, a record path escaping the root).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "format/changes.h"

static char dir[256], path[300];

static int setup(void **state)
{
	(void)state;
	const char *t = getenv("TMPDIR");
	snprintf(dir, sizeof dir, "%s/cutover-tchg.XXXXXX", t && *t ? t : "/tmp");
	if (!mkdtemp(dir))
		return -1;
	snprintf(path, sizeof path, "%s/log", dir);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	char cmd[400];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static fmt_entry ent(const char *p, int type)
{
	fmt_entry e = {.path = p, .path_len = (uint32_t)strlen(p), .type = (uint8_t)type,
		       .mode = 0644, .uid = 1000, .gid = 100, .nlink = 1, .dev = 42, .ino = 7,
		       .mtime_ns = 1700000000123456789ll, .ctime_ns = 1700000001000000000ll};
	if (type == FMT_T_FILE)
		e.size = 1234;
	return e;
}

/* The ten records of the round trip, one per operation. */
static fmt_change recs[FMT_OP_MAX];

static void make_recs(void)
{
	static const char *const paths[] = {"d", "d/new", "d/upd", "d/upd", "d/sym",
					    "d/a:2,", "d/meta", "d/gone", "old", "d/fifo"};
	static const int types[] = {FMT_T_DIR, FMT_T_FILE, FMT_T_FILE, FMT_T_FILE, FMT_T_SYMLINK,
				    FMT_T_FILE, FMT_T_FILE, FMT_T_FILE, FMT_T_DIR, FMT_T_FIFO};
	for (int i = 0; i < FMT_OP_MAX; i++) {
		fmt_change *c = &recs[i];
		memset(c, 0, sizeof *c);
		c->op = (uint8_t)(i + 1);
		c->e = ent(paths[i], types[i]);
		c->e.ino = 100 + (uint64_t)i;
	}
	recs[FMT_OP_CREATE - 1].e.flags = FMT_E_HASH;
	memset(recs[FMT_OP_CREATE - 1].e.hash, 0xab, 16);
	recs[FMT_OP_UPDATE - 1].flags = FMT_C_OLD;
	recs[FMT_OP_UPDATE - 1].old = (fmt_old){.type = FMT_T_FILE, .size = 99, .mtime_ns = -5};
	recs[FMT_OP_LINK - 1].to = "e/upd-link";
	recs[FMT_OP_LINK - 1].to_len = 10;
	recs[FMT_OP_SYMLINK - 1].e.target = "../target";
	recs[FMT_OP_SYMLINK - 1].e.target_len = 9;
	recs[FMT_OP_RENAME - 1].to = "d/a:2,S";
	recs[FMT_OP_RENAME - 1].to_len = 7;
	recs[FMT_OP_RENAME - 1].flags = FMT_C_OLD;
	recs[FMT_OP_RENAME - 1].old = (fmt_old){.type = FMT_T_FILE, .size = 1234, .mtime_ns = 1};
	recs[FMT_OP_DELETE - 1].flags = FMT_C_OLD;
	recs[FMT_OP_DELETE - 1].old = (fmt_old){.type = FMT_T_FILE, .size = 1234, .mtime_ns = 2};
	recs[FMT_OP_RMDIR - 1].flags = FMT_C_OLD;
	recs[FMT_OP_RMDIR - 1].old = (fmt_old){.type = FMT_T_DIR};
}

static fmt_cheader header(void)
{
	fmt_cheader h = {.source = (char *)"/srv/mail", .has_old = true, .created_ns = 1700000000000000000ll};
	memset(h.old_id, 0x11, FMT_ID_LEN);
	memset(h.new_id, 0x22, FMT_ID_LEN);
	return h;
}

static void write_log(const fmt_change *v, size_t n)
{
	fmt_cwriter *w = fmt_cwriter_create(path);
	assert_non_null(w);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(fmt_cwriter_add(w, &v[i]), 0);
	fmt_cheader h = header();
	uint8_t id[FMT_ID_LEN];
	assert_int_equal(fmt_cwriter_finish(w, &h, id), 0);
}

static void changes__round_trip_of_every_op(void **state)
{
	(void)state;
	make_recs();
	write_log(recs, FMT_OP_MAX);
	fmt_creader *r = fmt_creader_open(path);
	assert_non_null(r);
	const fmt_cheader *h = fmt_creader_header(r);
	assert_string_equal(h->source, "/srv/mail");
	assert_true(h->has_old);
	assert_int_equal(h->old_id[0], 0x11);
	assert_int_equal(h->new_id[15], 0x22);
	assert_int_equal(h->records, FMT_OP_MAX);
	for (int i = 1; i <= FMT_OP_MAX; i++)
		assert_int_equal(h->ops[i], 1);
	assert_int_equal(h->bytes[FMT_OP_CREATE], 1234);
	assert_int_equal(h->bytes[FMT_OP_MKDIR], 0);
	assert_int_equal(fmt_creader_validate(r), 0);
	fmt_change c;
	for (int i = 0; i < FMT_OP_MAX; i++) {
		const fmt_change *w = &recs[i];
		assert_int_equal(fmt_creader_next(r, &c), 1);
		assert_int_equal(c.op, w->op);
		assert_int_equal(c.flags, w->flags);
		assert_string_equal(c.e.path, w->e.path);
		assert_int_equal(c.e.type, w->e.type);
		assert_int_equal(c.e.size, w->e.size);
		assert_int_equal(c.e.mode, w->e.mode);
		assert_int_equal(c.e.uid, w->e.uid);
		assert_int_equal(c.e.gid, w->e.gid);
		assert_int_equal(c.e.ino, w->e.ino);
		assert_true(c.e.mtime_ns == w->e.mtime_ns);
		assert_int_equal(c.e.flags & FMT_E_HASH, w->e.flags & FMT_E_HASH);
		if (w->e.flags & FMT_E_HASH)
			assert_memory_equal(c.e.hash, w->e.hash, 16);
		if (w->to)
			assert_string_equal(c.to, w->to);
		else
			assert_null(c.to);
		if (w->e.target)
			assert_string_equal(c.e.target, w->e.target);
		if (w->flags & FMT_C_OLD) {
			assert_int_equal(c.old.type, w->old.type);
			assert_int_equal(c.old.size, w->old.size);
			assert_true(c.old.mtime_ns == w->old.mtime_ns);
		}
	}
	assert_int_equal(fmt_creader_next(r, &c), 0);
	fmt_creader_rewind(r);
	assert_int_equal(fmt_creader_next(r, &c), 1);
	assert_string_equal(c.e.path, "d");
	fmt_creader_close(r);
}

static void changes__many_records_span_blocks(void **state)
{
	(void)state;
	fmt_cwriter *w = fmt_cwriter_create(path);
	char p[64];
	for (int i = 0; i < 20000; i++) {
		snprintf(p, sizeof p, "u%d/Maildir/cur/%d.M%dP9.host,S=1:2,S", i % 7, 1700000000 + i, i);
		fmt_change c = {.op = FMT_OP_CREATE, .e = ent(p, FMT_T_FILE)};
		assert_int_equal(fmt_cwriter_add(w, &c), 0);
	}
	fmt_cheader h = header();
	uint8_t id[FMT_ID_LEN];
	assert_int_equal(fmt_cwriter_finish(w, &h, id), 0);
	fmt_creader *r = fmt_creader_open(path);
	assert_non_null(r);
	assert_int_equal(fmt_creader_header(r)->ops[FMT_OP_CREATE], 20000);
	assert_int_equal(fmt_creader_validate(r), 0);
	fmt_creader_close(r);
}

/* XXH-free golden check: the exact bytes of a one-record log with a fixed
 * header.  If this changes, the on-disk format changed: bump FMT_VERSION and
 * update FORMAT.md, then the constant. */
static const char golden_hex[] =
	"4355544f56434c3102000000000000005f000000580000000100000001000000f010000000001700000086096375722f"
	"613a322c5301d209aab4aed8c7bfce972f1f00900a000000010000001d0d0004020012082f00f011002c0801a403e807"
	"642ad20980c49fd50c959aef3a80a8a69ccebfce972f0e01a91f3aca6efe94ce1101000001000000090000002f737276"
	"2f6d61696c02000000100000001111111111111111111111111111111103000000100000002222222222222222222222"
	"2222222222040000000800000000002a36fe9c9717050000005800000000000000000000000000000000000000000000"
	"000000000000000000000000000000000000000000000000000000000001000000000000000000000000000000000000"
	"000000000000000000000000000000000000000000060000005800000000000000000000000000000000000000000000"
	"0000000000000000000000000000000000000000000000000000000000d2040000000000000000000000000000000000"
	"0000000000000000000000000000000000000000005b8acf1d4070d89c01000000100000000000000001000000080000"
	"00a91f3aca6efe94ce6375722f613a322ca02a3a1bfac8843c80000000000000009d0100000000000001000000000000"
	"001102000000000000e0398faa8929d3a9fefc56811e14fc1f020000000000000039a7ab77d1d506e14355544f56454e"
	"44";

/* The same log as cutover's version 1 writer made it (no block checksums
 * in the index): still read (FORMAT.md 5). */
static const char golden_v1_hex[] =
	"4355544f56434c3101000000000000005f000000580000000100000001000000f010000000001700000086096375722f"
	"613a322c5301d209aab4aed8c7bfce972f1f00900a000000010000001d0d0004020012082f00f011002c0801a403e807"
	"642ad20980c49fd50c959aef3a80a8a69ccebfce972f0e01a91f3aca6efe94ce1101000001000000090000002f737276"
	"2f6d61696c02000000100000001111111111111111111111111111111103000000100000002222222222222222222222"
	"2222222222040000000800000000002a36fe9c9717050000005800000000000000000000000000000000000000000000"
	"000000000000000000000000000000000000000000000000000000000001000000000000000000000000000000000000"
	"000000000000000000000000000000000000000000060000005800000000000000000000000000000000000000000000"
	"0000000000000000000000000000000000000000000000000000000000d2040000000000000000000000000000000000"
	"0000000000000000000000000000000000000000005b8acf1d4070d89c01000000100000000000000001000000080000"
	"006375722f613a322cb49dedf1ffcc219480000000000000009d01000000000000010000000000000009020000000000"
	"00d9b7704af69cc137bd1457fa0d12630701000000000000008cc1cee842e87b0a4355544f56454e44";

static void changes__golden_bytes_of_a_tiny_log(void **state)
{
	(void)state;
	fmt_change c = {.op = FMT_OP_RENAME, .flags = FMT_C_OLD, .e = ent("cur/a:2,", FMT_T_FILE),
			.to = "cur/a:2,S", .to_len = 9,
			.old = {.type = FMT_T_FILE, .size = 1234, .mtime_ns = 1700000000123456789ll}};
	write_log(&c, 1);
	FILE *f = fopen(path, "rb");
	assert_non_null(f);
	char hex[4096] = "";
	size_t n = 0;
	int ch;
	while ((ch = fgetc(f)) != EOF && n + 3 < sizeof hex)
		n += (size_t)snprintf(hex + n, sizeof hex - n, "%02x", ch);
	fclose(f);
	if (getenv("CUTOVER_GOLDEN_PRINT"))
		printf("\"%s\"\n", hex);
	assert_string_equal(hex, golden_hex);
}

static void changes__a_version_1_log_is_still_read(void **state)
{
	(void)state;
	FILE *f = fopen(path, "wb");
	assert_non_null(f);
	for (const char *h = golden_v1_hex; h[0] && h[1]; h += 2) {
		unsigned b;
		assert_int_equal(sscanf(h, "%2x", &b), 1);
		fputc((int)b, f);
	}
	fclose(f);
	fmt_creader *r = fmt_creader_open(path);
	assert_non_null(r);
	assert_int_equal(fmt_creader_header(r)->ops[FMT_OP_RENAME], 1);
	assert_int_equal(fmt_creader_validate(r), 0);
	fmt_creader_close(r);
}

/* ---------------------------------------------------------- corruptions */

static long file_size(void)
{
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	return (long)st.st_size;
}

static void poke(long off, uint8_t v)
{
	FILE *f = fopen(path, "r+b");
	assert_non_null(f);
	fseek(f, off, SEEK_SET);
	fputc(v, f);
	fclose(f);
}

static int peek(long off)
{
	FILE *f = fopen(path, "rb");
	fseek(f, off, SEEK_SET);
	int c = fgetc(f);
	fclose(f);
	return c;
}

/* 0 when the log opens and validates, -1 when refused. */
static int readable(void)
{
	fmt_creader *r = fmt_creader_open(path);
	if (!r)
		return -1;
	int rc = fmt_creader_validate(r);
	fmt_creader_close(r);
	return rc;
}

static void changes__flipped_bit_anywhere_is_refused(void **state)
{
	(void)state;
	make_recs();
	write_log(recs, FMT_OP_MAX);
	long n = file_size();
	for (long off = 0; off < n; off++) {
		int b = peek(off);
		poke(off, (uint8_t)(b ^ 0x10));
		if (readable() == 0)
			fail_msg("flipped bit at offset %ld of %ld went unnoticed", off, n);
		poke(off, (uint8_t)b);
	}
	assert_int_equal(readable(), 0);
}

static void changes__truncation_is_refused(void **state)
{
	(void)state;
	make_recs();
	write_log(recs, FMT_OP_MAX);
	long n = file_size();
	for (long len = 0; len < n; len += 7) {
		assert_int_equal(truncate(path, len), 0);
		assert_int_equal(readable(), -1);
		write_log(recs, FMT_OP_MAX);
	}
}

static void changes__bad_magic_and_future_version_are_refused(void **state)
{
	(void)state;
	make_recs();
	write_log(recs, FMT_OP_MAX);
	poke(0, 'X');
	assert_int_equal(readable(), -1);
	write_log(recs, FMT_OP_MAX);
	poke(8, FMT_VERSION + 1);
	assert_int_equal(readable(), -1);
	/* a manifest is not a change log */
	write_log(recs, FMT_OP_MAX);
	FILE *f = fopen(path, "r+b");
	fwrite(FMT_MAGIC_MANIFEST, 1, 8, f);
	fclose(f);
	assert_int_equal(readable(), -1);
}

/* Writes a log whose single block holds the given op byte, `to` and entry
 * path, bypassing the writer's checks (as a hostile file would). */
static void write_raw(uint8_t opbyte, const char *to, const char *p)
{
	fmt_cw *w = fmt_cw_create(path, FMT_MAGIC_CHANGES);
	assert_non_null(w);
	cut_buf ops = {0}, raw = {0};
	cut_buf_putc(&ops, opbyte);
	if (to) {
		cut_buf_varint(&ops, strlen(to));
		cut_buf_put(&ops, to, strlen(to));
	}
	uint8_t h[8];
	cut_put_le32(h, 0);
	cut_put_le32(h + 4, (uint32_t)ops.len);
	cut_buf_put(&raw, h, 8);
	cut_buf_put(&raw, ops.p, ops.len);
	fmt_enc enc = {0};
	fmt_entry e = ent(p, FMT_T_FILE);
	fmt_enc_add(&enc, &e);
	fmt_enc_finish(&enc, &raw);
	fmt_enc_free(&enc);
	assert_int_equal(fmt_cw_block(w, raw.p, raw.len, 1, p, strlen(p)), 0);
	cut_buf m = {0};
	fmt_meta_put_str(&m, FMT_CT_SOURCE, "/srv/mail");
	uint8_t id[FMT_ID_LEN] = {0};
	fmt_meta_put(&m, FMT_CT_NEW_ID, id, FMT_ID_LEN);
	fmt_meta_put_u64(&m, FMT_CT_CREATED_NS, 1);
	uint8_t v[8 * (FMT_OP_MAX + 1)] = {0};
	cut_put_le64(v + 8 * FMT_OP_CREATE, 1); /* counts sum to the one record */
	fmt_meta_put(&m, FMT_CT_OPS, v, sizeof v);
	memset(v, 0, sizeof v);
	fmt_meta_put(&m, FMT_CT_OP_BYTES, v, sizeof v);
	assert_int_equal(fmt_cw_finish(w, &m, 1, id), 0);
	cut_buf_free(&m);
	cut_buf_free(&ops);
	cut_buf_free(&raw);
}

static void changes__unknown_op_is_refused(void **state)
{
	(void)state;
	write_raw(FMT_OP_CREATE, NULL, "a/b");
	assert_int_equal(readable(), 0); /* the crafted file itself is sound */
	write_raw(FMT_OP_MAX + 1, NULL, "a/b");
	assert_int_equal(readable(), -1);
	write_raw(0, NULL, "a/b");
	assert_int_equal(readable(), -1);
}

static void changes__paths_escaping_the_root_are_refused(void **state)
{
	(void)state;
	static const char *const bad[] = {"../x", "/abs", "a/../../x", "a//b", "a/./b", "a/"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		write_raw(FMT_OP_CREATE, NULL, bad[i]);
		if (readable() != -1)
			fail_msg("record path '%s' was accepted", bad[i]);
		write_raw(FMT_OP_RENAME, bad[i], "a/b");
		if (readable() != -1)
			fail_msg("rename to '%s' was accepted", bad[i]);
	}
	write_raw(FMT_OP_DELETE, NULL, ""); /* an op on the root itself */
	assert_int_equal(readable(), -1);
}

static void changes__writer_refuses_invalid_records(void **state)
{
	(void)state;
	fmt_cwriter *w = fmt_cwriter_create(path);
	fmt_change c = {.op = FMT_OP_RENAME, .e = ent("a", FMT_T_FILE)}; /* no `to` */
	assert_int_equal(fmt_cwriter_add(w, &c), -1);
	c = (fmt_change){.op = FMT_OP_CREATE, .e = ent("../a", FMT_T_FILE)};
	assert_int_equal(fmt_cwriter_add(w, &c), -1);
	c = (fmt_change){.op = FMT_OP_MKDIR, .e = ent("a", FMT_T_FILE)};
	assert_int_equal(fmt_cwriter_add(w, &c), -1);
	c = (fmt_change){.op = FMT_OP_LINK, .e = ent("a", FMT_T_FILE), .to = "/etc/passwd", .to_len = 11};
	assert_int_equal(fmt_cwriter_add(w, &c), -1);
	fmt_cwriter_abort(w);
	assert_int_not_equal(access(path, F_OK), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(changes__round_trip_of_every_op, setup, teardown),
		cmocka_unit_test_setup_teardown(changes__many_records_span_blocks, setup, teardown),
		cmocka_unit_test_setup_teardown(changes__golden_bytes_of_a_tiny_log, setup, teardown),
		cmocka_unit_test_setup_teardown(changes__a_version_1_log_is_still_read, setup, teardown),
		cmocka_unit_test_setup_teardown(changes__flipped_bit_anywhere_is_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(changes__truncation_is_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(changes__bad_magic_and_future_version_are_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(changes__unknown_op_is_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(changes__paths_escaping_the_root_are_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(changes__writer_refuses_invalid_records, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
