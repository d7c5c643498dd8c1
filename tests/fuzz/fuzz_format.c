/*
 * fuzz_format.c - libFuzzer target for the readers of manifests, their
 * skeletons and change logs (format/): whatever bytes a file holds, opening, reading, seeking and
 * validating it must end in data or a clean "corrupt" error, never a crash,
 * a hang or an out-of-bounds access.
 *
 * The readers take paths, so each input is written to one temporary file,
 * on tmpfs where there is one: on a disk file system, rewriting the file
 * flushes it (ext4's replace-by-truncate rule) and that cost most of each
 * execution.
 * Built by `make fuzz` with -DFUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION, which
 * makes the container accept any checksum (format/container.c): otherwise
 * almost every mutation would stop at a checksum and the decoders behind it
 * would never be reached.  Seeds: tests/fuzz/corpus/fuzz_format/, made by
 * tests/fuzz/seed.sh.  The readers log each corruption on stderr: run with
 * -close_fd_mask=2 (libFuzzer keeps its own reports).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "format/changes.h"
#include "format/manifest.h"
#include "format/skel.h"

static char path[64];

static void remove_input(void) { unlink(path); }

static void write_input(const uint8_t *d, size_t n)
{
	if (!path[0]) {
		snprintf(path, sizeof path, "%s/cutover-fuzz.%ld",
			 access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp", (long)getpid());
		atexit(remove_input);
	}
	FILE *f = fopen(path, "wb");
	if (!f || fwrite(d, 1, n, f) != n || fclose(f) != 0)
		abort();
}

static void manifest(void)
{
	fmt_mreader *r = fmt_mreader_open(path);
	if (!r)
		return;
	fmt_entry e, first = {0};
	char keep[256] = "";
	int n = 0, rc;
	while ((rc = fmt_mreader_next(r, &e)) > 0) {
		if (n++ == 1 && e.path_len < sizeof keep) {
			memcpy(keep, e.path, e.path_len);
			first.path_len = e.path_len;
		}
	}
	cut_buf raw = {0};
	fmt_dec dec = {0};
	for (uint32_t b = 0; b < fmt_mreader_nblocks(r); b++) {
		if (fmt_mreader_load_block(r, b, &raw, &dec) < 0)
			continue;
		fmt_entry s;
		while (fmt_dec_skim(&dec, &s) > 0)
			;
	}
	cut_buf_free(&raw);
	fmt_dec_free(&dec);
	fmt_mcursor *c = fmt_mcursor_new(r);
	if (c) {
		fmt_entry f;
		if (fmt_mcursor_find(c, keep, first.path_len, &f) >= 0 &&
		    fmt_mcursor_seek(c, "", 0) >= 0)
			while (fmt_mcursor_next(c, &f) > 0)
				;
		fmt_mcursor_free(c);
	}
	fmt_mreader_close(r);
}

static void changes(void)
{
	fmt_creader *r = fmt_creader_open(path);
	if (!r)
		return;
	fmt_change c;
	while (fmt_creader_next(r, &c) > 0)
		;
	fmt_creader_close(r);
	if ((r = fmt_creader_open(path))) {
		(void)fmt_creader_validate(r);
		fmt_creader_close(r);
	}
}

/* A skeleton's blocks through the container reader and the record decoder
 * (fmt_skel_open would first want the manifest it belongs to). */
static void skeleton(void)
{
	fmt_cr *r = fmt_cr_open(path, FMT_MAGIC_SKELETON);
	if (!r)
		return;
	cut_buf raw = {0};
	for (uint32_t b = 0; b < fmt_cr_nblocks(r); b++) {
		uint32_t count;
		fmt_skel_group g;
		const char *err;
		if (fmt_cr_read_block(r, b, &raw, &count, NULL) == 0 &&
		    fmt_skel_decode(raw.p, raw.len, count, &g, &err) == 0)
			fmt_skel_group_free(&g);
	}
	cut_buf_free(&raw);
	fmt_cr_close(r);
}

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);
int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
	write_input(d, n);
	manifest();
	skeleton();
	changes();
	return 0;
}
