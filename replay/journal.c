/*
 * journal.c - the replay journal: which records of one change log are
 * finished on the target, so that a killed replay resumes where it stopped.
 *
 * Append-only, little-endian, every piece checksummed with XXH3-64
 * (docs/REPLAY.md §3, the format and the reading rule):
 *
 *   header  (40 bytes)  "CUTOVRJ1" | u32 version (2; 1 is read too)
 *                       | u32 flags (0) | change log id (16)
 *                       | u64 XXH3-64 of bytes 0..31
 *   record  (24+8n)     u32 type | u32 n | u64 w | n x u64 v | u64 XXH3-64 of
 *                       the record's bytes before it
 *     type 1 PROGRESS   every record index < w is finished; each of the n
 *                       values is a finished index (low 56 bits) and its
 *                       outcome (high 8 bits: 0 applied, 1 drifted,
 *                       2 vanished, 3 skipped, 4 conflict left as it was);
 *                       indices < w are written only with an outcome != 0
 *     type 2 COMPLETE   the log is applied (w = number of records); the n
 *                       values are the counters of the completing run, the
 *                       20th (version 2) the outcomes earlier runs noted
 *     type 3 START      written with the header: n = 1, w = 0, the value is
 *                       when the first run of the log began (ns since the
 *                       epoch): a file at a destination changed since then
 *                       is that run's own (apply.c, own_earlier_copy)
 *
 * A finished log's journal is closed out: once its COMPLETE record is
 * appended and synced, the file is rewritten to header, START and COMPLETE
 * (256 bytes).  A reader looks at the header and the last record first: a
 * journal of another log is never read further, and a finished one needs
 * nothing more.  Only the journal of this log, left by a killed run, is read
 * through, in a fixed buffer, into a fixed-size state: the watermark, a
 * bitmap of the finished records above it (they lie within RP_SPAN of it:
 * the scheduler never admits further), and at most J_MAX_VANISHED vanished
 * indices.  So a resume of a 100 M-record log holds well under a megabyte.
 *
 * A torn or corrupt record can only be the tail of an append-only file (a
 * crash while appending): the reader keeps the records before it and
 * truncates the file there.  Losing records is safe: the operations they
 * named are redone, and every operation is idempotent (apply.c).
 *
 * The journal file is locked (flock) for the whole run: a second replay with
 * the same journal gets CUT_LOCKED.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "replay/internal.h"

#define J_MAGIC "CUTOVRJ1"
#define J_VERSION 2
#define J_HDR 40
#define J_REC_MIN 24
#define J_PROGRESS 1
#define J_COMPLETE 2
#define J_START 3
/* Values in one record.  A writer's record holds one batch of completions,
 * at most the scheduler's 4 * RP_JOBS_MAX + 16 records in flight. */
#define J_MAX_N (1u << 16)
#define J_TAIL_N 64          /* the longest COMPLETE record looked for at the end */
#define J_BUF (64u << 10)    /* the reader's buffer; grows to one record at most */
#define J_START_LEN (J_REC_MIN + 8)
#define RP_J_IDX_MASK ((1ull << 56) - 1)
#define J_MAX_VANISHED 65536

struct rp_journal {
	int fd;
	char *path;
	uint8_t id[FMT_ID_LEN];  /* the log's */
	bool fsync, read_only;
	uint64_t off;         /* end of the last good record */
	uint64_t w;           /* highest watermark read or written */
	uint64_t lw;          /* the watermark as loaded */
	uint64_t *above;      /* NULL, or RP_SPAN bits: bit i % RP_SPAN set when record
				 i >= w is finished (while reading), i >= lw (after) */
	uint64_t nabove;      /* bits set in above, as loaded */
	bool complete, existed;
	int64_t start_ns;     /* the START record's value, or 0 (none) */
	rp_stats cstats;      /* counters of the COMPLETE record */
	uint32_t cstats_n;    /* how many it holds */
	uint64_t ctotal;      /* its w: the number of records of the log */
	uint64_t earlier;     /* records with an outcome != 0 in PROGRESS records */
	uint64_t *vanished;   /* sorted indices noted RP_J_VANISHED (as loaded), at most
				 J_MAX_VANISHED: apply.c's links whose file vanished */
	size_t nvanished, cvanished;
	uint64_t records;     /* records read when opened */
	cut_buf pending;      /* u64 indices noted since the last flush */
};

/* The counters a COMPLETE record keeps, in order (earlier: since version 2). */
#define J_STAT_FIELDS(X) \
	X(created) X(updated) X(renamed) X(linked) X(deleted) X(mkdirs) X(rmdirs) X(symlinks) \
	X(specials) X(metas) X(noop) X(bytes_copied) X(drifted) X(vanished) X(skipped) \
	X(conflicts) X(conflicts_skipped) X(conflicts_overwritten) X(racy) X(earlier)
#define J_COUNT(f) +1
#define J_NSTATS (0 J_STAT_FIELDS(J_COUNT))
#define J_NSTATS_V1 (J_NSTATS - 1)  /* a version-1 writer's: no earlier */
#define J_COMPLETE_LEN (J_REC_MIN + 8 * J_NSTATS)
#define J_CLOSED (J_HDR + J_START_LEN + J_COMPLETE_LEN)  /* a closed-out journal */

char *rp_journal_default_path(const char *target)
{
	cut_buf b = {0};
	cut_buf_put(&b, target, cut_path_trimmed_len(target));
	cut_buf_printf(&b, ".cutover-journal");
	cut_buf_putc(&b, 0);
	return (char *)b.p;
}

static int u64cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static void make_header(uint8_t h[J_HDR], const uint8_t id[FMT_ID_LEN])
{
	memcpy(h, J_MAGIC, 8);
	cut_put_le32(h + 8, J_VERSION);
	cut_put_le32(h + 12, 0);
	memcpy(h + 16, id, FMT_ID_LEN);
	cut_put_le64(h + 32, XXH3_64bits(h, 32));
}

/* Lays out one record of n values at r (24 + 8n bytes). */
static void make_record(uint8_t *r, uint32_t type, uint64_t w, const uint8_t *vals, size_t n)
{
	cut_put_le32(r, type);
	cut_put_le32(r + 4, (uint32_t)n);
	cut_put_le64(r + 8, w);
	if (n)
		memcpy(r + 16, vals, 8 * n);
	cut_put_le64(r + 16 + 8 * n, XXH3_64bits(r, 16 + 8 * n));
}

static void make_start(uint8_t r[J_START_LEN], int64_t start_ns)
{
	uint8_t v[8];
	cut_put_le64(v, (uint64_t)start_ns);
	make_record(r, J_START, 0, v, 1);
}

/* Forgets what was read (the journal of another, finished log). */
static void j_forget(rp_journal *j)
{
	free(j->above);
	j->above = NULL;
	j->nabove = 0;
	free(j->vanished);
	j->vanished = NULL;
	j->nvanished = j->cvanished = 0;
	j->w = j->lw = 0;
	j->earlier = 0;
	j->start_ns = 0;
	j->existed = false;
	j->complete = false;
	j->cstats_n = 0;
	memset(&j->cstats, 0, sizeof j->cstats);
}

/* Writes a fresh header and START record over whatever the file held.
 * 0 or -errno. */
static int j_reset(rp_journal *j)
{
	uint8_t h[J_HDR + J_START_LEN];
	make_header(h, j->id);
	j->start_ns = cut_now_ns();
	make_start(h + J_HDR, j->start_ns);
	if (ftruncate(j->fd, 0) < 0)
		return -errno;
	int rc = cut_write_all(j->fd, h, sizeof h);
	if (rc < 0)
		return rc;
	if (fsync(j->fd) < 0)
		return -errno;
	j->off = sizeof h;
	return 0;
}

/* Takes a COMPLETE record's w and the counters of its n values at v. */
static void j_take_stats(rp_journal *j, uint64_t w, const uint8_t *v, uint32_t n)
{
	j->ctotal = w;
	uint64_t c[J_NSTATS] = {0};
	for (uint32_t i = 0; i < n && i < J_NSTATS; i++)
		c[i] = cut_get_le64(v + 8 * (size_t)i);
	size_t k = 0;
#define J_GET(f) j->cstats.f = c[k++];
	J_STAT_FIELDS(J_GET)
#undef J_GET
	j->cstats_n = n;
	j->complete = true;
}

/* Whether the journal (len bytes) ends with a whole COMPLETE record: the
 * last thing a finished log's journal holds.  1 (counters taken), 0, or -1
 * on a read error (logged). */
static int j_tail(rp_journal *j, uint64_t len)
{
	uint8_t b[J_REC_MIN + 8 * J_TAIL_N];
	size_t n = len - J_HDR < sizeof b ? (size_t)(len - J_HDR) : sizeof b;
	long long got = cut_pread_all(j->fd, b, n, len - n);
	if (got < 0 || (size_t)got != n) {
		errno = got < 0 ? (int)-got : EIO;
		CUT_SYSERR("%s: cannot read the replay journal", j->path);
		return -1;
	}
	for (uint32_t k = 0; k <= J_TAIL_N; k++) {
		size_t rl = J_REC_MIN + 8 * (size_t)k;
		if (rl > n)
			break;
		const uint8_t *r = b + n - rl;
		if (cut_get_le32(r) == J_COMPLETE && cut_get_le32(r + 4) == k &&
		    XXH3_64bits(r, rl - 8) == cut_get_le64(r + rl - 8)) {
			j->records++;
			uint64_t w = cut_get_le64(r + 8);
			j->w = j->lw = w;
			j_take_stats(j, w, r + 16, k);
			return 1;
		}
	}
	return 0;
}

/* Clears bits [from, to) of the ring of RP_SPAN bits. */
static void ring_clear(uint64_t *bits, uint64_t from, uint64_t to)
{
	if (to - from >= RP_SPAN) {
		memset(bits, 0, RP_SPAN / 8);
		return;
	}
	while (from < to) {
		uint64_t i = from % RP_SPAN, word = i / 64, bit = i % 64;
		uint64_t n = 64 - bit < to - from ? 64 - bit : to - from;
		bits[word] &= ~((n == 64 ? ~0ull : ((1ull << n) - 1)) << bit);
		from += n;
	}
}

static void j_note_vanished(rp_journal *j, uint64_t idx)
{
	if (j->nvanished == j->cvanished) {
		if (j->cvanished == J_MAX_VANISHED)
			return;
		j->cvanished = j->cvanished ? 2 * j->cvanished : 64;
		j->vanished = cut_realloc(j->vanished, 8 * j->cvanished);
	}
	j->vanished[j->nvanished++] = idx;
}

/* One record's watermark w and n values v (PROGRESS).  0, or -1 when it
 * lists a record the scheduler could not have finished (logged). */
static int j_progress(rp_journal *j, uint64_t w, const uint8_t *v, uint32_t n)
{
	if (w > j->w) {
		if (j->above)
			ring_clear(j->above, j->w, w);
		j->w = w;
	}
	for (uint32_t i = 0; i < n; i++) {
		uint64_t x = cut_get_le64(v + 8 * (size_t)i), idx = x & RP_J_IDX_MASK;
		if (x >> 56)
			j->earlier++;
		if (x >> 56 == RP_J_VANISHED)
			j_note_vanished(j, idx);
		if (idx < j->w)
			continue;
		if (idx - j->w >= RP_SPAN) {
			CUT_ERR("%s: the replay journal lists record %llu as finished, more than %u "
				"records past its watermark %llu: it is corrupt; remove it to redo the "
				"log from the start (every record is idempotent)", j->path,
				(unsigned long long)idx, RP_SPAN, (unsigned long long)j->w);
			return -1;
		}
		if (!j->above)
			j->above = cut_calloc(RP_SPAN / 64, 8);
		j->above[idx % RP_SPAN / 64] |= 1ull << (idx % 64);
	}
	return 0;
}

/* A window on the journal file: buf holds its bytes [at, at + have). */
typedef struct j_in {
	int fd;
	uint64_t len, at;
	uint8_t *buf;
	size_t cap, have;
	int err;       /* errno of a failed read */
} j_in;

/* The n bytes at off, or NULL when the file ends before them (or a read
 * failed: in->err). */
static const uint8_t *j_get(j_in *in, uint64_t off, size_t n)
{
	if (n > in->len || off > in->len - n)
		return NULL;
	if (off >= in->at && off + n <= in->at + in->have)
		return in->buf + (off - in->at);
	if (n > in->cap) {
		in->cap = n;
		in->buf = cut_realloc(in->buf, n);
	}
	size_t want = in->len - off < in->cap ? (size_t)(in->len - off) : in->cap;
	long long got = cut_pread_all(in->fd, in->buf, want, off);
	if (got < 0 || (size_t)got < n) {
		in->err = got < 0 ? (int)-got : EIO;
		in->have = 0;
		return NULL;
	}
	in->at = off;
	in->have = (size_t)got;
	return in->buf;
}

/* Reads the records after the header, up to the first COMPLETE or the first
 * that is short, unknown, too long or fails its checksum (a torn tail).
 * Sets w, above, complete, off...  0, or -1 (logged). */
static int j_read(rp_journal *j, uint64_t len)
{
	j_in in = {.fd = j->fd, .len = len, .cap = J_BUF, .buf = cut_malloc(J_BUF)};
	uint64_t off = J_HDR;
	int rc = 0;
	j->w = 0;
	for (;;) {
		const uint8_t *p = j_get(&in, off, J_REC_MIN);
		if (!p)
			break;
		uint32_t type = cut_get_le32(p), n = cut_get_le32(p + 4);
		if ((type != J_PROGRESS && type != J_COMPLETE && type != J_START) || n > J_MAX_N)
			break;
		size_t rl = J_REC_MIN + 8 * (size_t)n;
		p = j_get(&in, off, rl);
		if (!p || XXH3_64bits(p, rl - 8) != cut_get_le64(p + rl - 8))
			break;
		j->records++;
		off += rl;
		uint64_t w = cut_get_le64(p + 8);
		if (type == J_PROGRESS) {
			if (j_progress(j, w, p + 16, n) < 0) {
				rc = -1;
				break;
			}
		} else if (type == J_START) {
			if (n >= 1 && !j->start_ns)
				j->start_ns = (int64_t)cut_get_le64(p + 16);
		} else {
			j_progress(j, w, NULL, 0);
			j_take_stats(j, w, p + 16, n);
			break;
		}
	}
	if (in.err) {
		errno = in.err;
		CUT_SYSERR("%s: cannot read the replay journal", j->path);
		rc = -1;
	}
	free(in.buf);
	j->off = off;
	j->lw = j->w;
	if (j->above)
		for (size_t i = 0; i < RP_SPAN / 64; i++)
			j->nabove += (uint64_t)__builtin_popcountll(j->above[i]);
	if (j->nvanished) {
		qsort(j->vanished, j->nvanished, 8, u64cmp);
		size_t u = 0;
		for (size_t i = 0; i < j->nvanished; i++)
			if (u == 0 || j->vanished[u - 1] != j->vanished[i])
				j->vanished[u++] = j->vanished[i];
		j->nvanished = u;
	}
	return rc;
}

/* Rewrites a finished journal to its header, START and COMPLETE records.
 * The COMPLETE record is already the file's last: every state a crash can
 * leave still ends with one.  0 or -errno. */
static int j_close_out(rp_journal *j)
{
	uint8_t b[J_CLOSED], v[8 * J_NSTATS];
	make_header(b, j->id);
	make_start(b + J_HDR, j->start_ns);
	size_t k = 0;
#define J_PUT(f) cut_put_le64(v + 8 * k++, j->cstats.f);
	J_STAT_FIELDS(J_PUT)
#undef J_PUT
	make_record(b + J_HDR + J_START_LEN, J_COMPLETE, j->ctotal, v, J_NSTATS);
	size_t done = 0;
	while (done < sizeof b) {
		ssize_t wr = pwrite(j->fd, b + done, sizeof b - done, (off_t)done);
		if (wr < 0 && errno == EINTR)
			continue;
		if (wr < 0)
			return -errno;
		done += (size_t)wr;
	}
	if (fsync(j->fd) < 0 || ftruncate(j->fd, (off_t)sizeof b) < 0 || fsync(j->fd) < 0)
		return -errno;
	j->off = sizeof b;
	j->cstats_n = J_NSTATS;
	return 0;
}

/* The journal of another log (header id other): reset when that log is
 * finished, else refused.  0 or -1 (logged). */
static int j_other_log(rp_journal *j, const uint8_t *other, int finished)
{
	char a[2 * FMT_ID_LEN + 1], b[2 * FMT_ID_LEN + 1];
	cut_hex(a, other, FMT_ID_LEN);
	cut_hex(b, j->id, FMT_ID_LEN);
	if (!finished) {
		CUT_ERR("%s: journal of change log %s, which was not applied to the end; "
			"finish that log first, or remove the journal (this log is %s)",
			j->path, a, b);
		return -1;
	}
	/* The journal of a finished earlier log: start this log's, without
	 * reading the old one's records. */
	CUT_INFO("%s: journal of finished log %s (not read) %s log %s", j->path, a,
		 j->read_only ? "ignored by a dry run of" : "replaced for", b);
	j_forget(j);
	if (!j->read_only && j_reset(j) < 0) {
		CUT_SYSERR("%s: cannot write the replay journal", j->path);
		return -1;
	}
	return 0;
}

/* This log's journal (len bytes, header checked): read as far as needed.
 * 0 or -1 (logged). */
static int j_this_log(rp_journal *j, uint64_t len, int finished)
{
	j->existed = true;
	if (finished) {
		if (j->cstats_n > J_NSTATS_V1) {
			j->earlier = j->cstats.earlier;
		} else {
			/* Written by version 1: the earlier runs' outcomes are
			 * only in its PROGRESS records. */
			j->records = 0;
			if (j_read(j, len) < 0)
				return -1;
		}
		if (!j->read_only && len > J_CLOSED) {
			j->cstats.earlier = j->earlier;
			int r = j_close_out(j);
			if (r < 0) {
				errno = -r;
				CUT_SYSERR("%s: cannot close out the replay journal", j->path);
				return -1;
			}
		}
		return 0;
	}
	if (j_read(j, len) < 0)
		return -1;
	if (j->off < len) {
		CUT_WARN("%s: discarding %llu bytes of a torn journal record at offset %llu "
			 "(a crash while writing it); those operations are redone", j->path,
			 (unsigned long long)(len - j->off), (unsigned long long)j->off);
		if (!j->read_only && ftruncate(j->fd, (off_t)j->off) < 0) {
			CUT_SYSERR("%s: cannot truncate the replay journal", j->path);
			return -1;
		}
	}
	return 0;
}

/* Opens and locks the file.  CUT_OK, or a cut_outcome (logged). */
static int j_lock(rp_journal *j)
{
	j->fd = open(j->path, (j->read_only ? O_RDONLY : O_RDWR | O_CREAT) | O_CLOEXEC, 0600);
	if (j->fd < 0) {
		if (j->read_only && errno == ENOENT)
			return 0;
		CUT_SYSERR("%s: cannot open the replay journal", j->path);
		return CUT_FAILED;
	}
	if (flock(j->fd, (j->read_only ? LOCK_SH : LOCK_EX) | LOCK_NB) < 0) {
		if (errno == EWOULDBLOCK) {
			CUT_ERR("%s: another replay holds this journal; wait for it to end", j->path);
			return CUT_LOCKED;
		}
		CUT_SYSERR("%s: cannot lock the replay journal", j->path);
		return CUT_FAILED;
	}
	return 0;
}

int rp_journal_open(const char *path, const uint8_t log_id[FMT_ID_LEN], bool read_only,
		    bool fsync, rp_journal **out)
{
	rp_journal *j = cut_calloc(1, sizeof *j);
	j->fd = -1;
	j->path = cut_strndup(path, strlen(path));
	memcpy(j->id, log_id, FMT_ID_LEN);
	j->fsync = fsync;
	j->read_only = read_only;
	*out = NULL;
	int rc = j_lock(j);
	if (rc != 0 || j->fd < 0)
		goto done;
	rc = CUT_FAILED;
	struct stat st;
	if (fstat(j->fd, &st) < 0) {
		CUT_SYSERR("%s: cannot stat the replay journal", path);
		goto done;
	}
	uint64_t len = (uint64_t)st.st_size;
	uint8_t h[J_HDR];
	if (len < J_HDR) {
		/* Empty, or a crash while the header was being written: nothing
		 * was recorded yet. */
		if (!read_only && j_reset(j) < 0) {
			CUT_SYSERR("%s: cannot write the replay journal", path);
			goto done;
		}
		rc = 0;
		goto done;
	}
	long long got = cut_pread_all(j->fd, h, J_HDR, 0);
	if (got != J_HDR) {
		errno = got < 0 ? (int)-got : EIO;
		CUT_SYSERR("%s: cannot read the replay journal", path);
		goto done;
	}
	uint32_t ver = cut_get_le32(h + 8);
	if (memcmp(h, J_MAGIC, 8) != 0 || XXH3_64bits(h, 32) != cut_get_le64(h + 32) ||
	    ver < 1 || ver > J_VERSION || cut_get_le32(h + 12) != 0) {
		CUT_ERR("%s: not a replay journal of version 1 or %u, or its header is corrupt; "
			"refusing to use it (remove it to start over)", path, J_VERSION);
		goto done;
	}
	int finished = j_tail(j, len);
	if (finished < 0)
		goto done;
	bool ours = memcmp(h + 16, log_id, FMT_ID_LEN) == 0;
	if ((ours ? j_this_log(j, len, finished) : j_other_log(j, h + 16, finished)) < 0)
		goto done;
	rc = 0;
done:
	if (rc != 0) {
		rp_journal_close(j);
		return rc;
	}
	*out = j;
	return 0;
}

/* Whether the sorted v[0..n) holds x. */
static bool u64_has(const uint64_t *v, size_t n, uint64_t x)
{
	size_t lo = 0, hi = n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (v[mid] < x)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < n && v[lo] == x;
}

bool rp_journal_done(const rp_journal *j, uint64_t idx)
{
	if (idx < j->w)
		return true;
	return j->above && idx - j->lw < RP_SPAN &&
	       (j->above[idx % RP_SPAN / 64] >> (idx % 64) & 1);
}

uint64_t rp_journal_progress(const rp_journal *j, uint64_t *w, uint64_t *above)
{
	*w = j->lw;
	*above = j->nabove;
	return j->records;
}

bool rp_journal_vanished(const rp_journal *j, uint64_t idx)
{
	return u64_has(j->vanished, j->nvanished, idx);
}

bool rp_journal_complete(const rp_journal *j, rp_stats *st)
{
	if (j->complete && st) {
#define J_CP(f) st->f = j->cstats.f;
		J_STAT_FIELDS(J_CP)
#undef J_CP
	}
	return j->complete;
}

uint64_t rp_journal_earlier(const rp_journal *j) { return j->earlier; }
bool rp_journal_resumed(const rp_journal *j) { return j->existed; }

int64_t rp_journal_started(const rp_journal *j) { return j->start_ns; }

void rp_journal_note(rp_journal *j, uint64_t idx, unsigned outcome)
{
	uint8_t b[8];
	cut_put_le64(b, (idx & RP_J_IDX_MASK) | (uint64_t)outcome << 56);
	cut_buf_put(&j->pending, b, 8);
}

/* Appends one record of type with watermark w and n values.  0 or -errno. */
static int j_append(rp_journal *j, uint32_t type, uint64_t w, const uint8_t *vals, size_t n,
		    bool sync)
{
	if (j->read_only || j->fd < 0)
		return 0;
	size_t len = J_REC_MIN + 8 * n, done = 0;
	uint8_t *r = cut_malloc(len);
	make_record(r, type, w, vals, n);
	int rc = 0;
	/* pwrite at the known end: a failed partial append is overwritten by the
	 * next one instead of leaving garbage in the middle. */
	while (done < len) {
		ssize_t wr = pwrite(j->fd, r + done, len - done, (off_t)(j->off + done));
		if (wr < 0) {
			if (errno == EINTR)
				continue;
			rc = -errno;
			break;
		}
		done += (size_t)wr;
	}
	if (rc == 0 && sync && fsync(j->fd) < 0)
		rc = -errno;
	if (rc == 0)
		j->off += len;
	else
		CUT_ERR("%s: cannot append to the replay journal: %s", j->path, strerror(-rc));
	free(r);
	return rc;
}

int rp_journal_flush(rp_journal *j, uint64_t watermark, bool sync)
{
	/* Keep only the indices the watermark does not already cover. */
	size_t n = j->pending.len / 8, k = 0;
	for (size_t i = 0; i < n; i++) {
		uint64_t v = cut_get_le64(j->pending.p + 8 * i);
		if ((v & RP_J_IDX_MASK) >= watermark || (v >> 56))
			cut_put_le64(j->pending.p + 8 * k++, v);
	}
	int rc = 0;
	size_t at = 0;
	do {
		size_t m = k - at < J_MAX_N ? k - at : J_MAX_N;
		if (m > 0 || watermark > j->w || sync)
			rc = j_append(j, J_PROGRESS, watermark, m ? j->pending.p + 8 * at : NULL, m,
				      sync || j->fsync);
		at += m;
	} while (rc == 0 && at < k);
	if (rc == 0) {
		if (watermark > j->w)
			j->w = watermark;
		j->pending.len = 0;
	}
	return rc;
}

int rp_journal_finish(rp_journal *j, uint64_t records, const rp_stats *st)
{
	uint8_t v[8 * J_NSTATS];
	size_t k = 0;
#define J_PUT(f) cut_put_le64(v + 8 * k++, st->f);
	J_STAT_FIELDS(J_PUT)
#undef J_PUT
	int rc = j_append(j, J_COMPLETE, records, v, J_NSTATS, true);
	if (rc != 0 || j->read_only || j->fd < 0)
		return rc;
	j->complete = true;
	j->w = records;
	j_take_stats(j, records, v, J_NSTATS);
	/* The log is applied (the record is synced); closing out only spares
	 * the next reader. */
	rc = j_close_out(j);
	if (rc < 0)
		CUT_WARN("%s: cannot close out the finished replay journal (%s); it stays as "
			 "it is", j->path, strerror(-rc));
	return 0;
}

void rp_journal_close(rp_journal *j)
{
	if (!j)
		return;
	if (j->fd >= 0)
		close(j->fd);
	free(j->path);
	free(j->above);
	free(j->vanished);
	cut_buf_free(&j->pending);
	free(j);
}
