/*
 * dovecot.c -- the bytes of Dovecot's binary control files that both create
 * and mutate write: an index log (dovecot.index.log) of plausible records.
 */
#include "gen.h"

void gen_write_log_blob(buf_t *b, rng_t *r, uint32_t indexid, uint32_t seq,
			size_t total)
{
	b->len = 0;
	gen_buf_reserve(b, 40);
	memset(b->p, 0, 40);
	b->len = 40;
	b->p[0] = 1;  /* major */
	b->p[1] = 3;  /* minor */
	b->p[2] = 40; /* hdr_size */
	gen_put_le32(b, 4, indexid);
	gen_put_le32(b, 8, seq);
	gen_put_le32(b, 12, seq ? seq - 1 : 0);
	gen_put_le32(b, 20, indexid + seq * 1000);
	while (b->len + 16 < total) {
		uint32_t sz = (uint32_t)(8 + 4 * gen_rng_range(r, 2, 30));
		size_t off = b->len;
		gen_buf_rand(b, r, sz);
		gen_put_le32(b, off, sz);
		gen_put_le32(b, off + 4, (uint32_t)(1u << gen_rng_below(r, 12)));
	}
}
