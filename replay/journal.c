/*
 * journal.c - the replay journal: which records of one change log are
 * finished on the target, so that a killed replay resumes where it stopped.
 *
 * Append-only, little-endian, every piece checksummed with XXH3-64
 * (docs/REPLAY.md, "Journal"):
 *
 *   header  (40 bytes)  "CUTOVRJ1" | u32 version (1) | u32 flags (0)
 *                       | change log id (16) | u64 XXH3-64 of bytes 0..31
 *   record  (24+8n)     u32 type | u32 n | u64 w | n x u64 v | u64 XXH3-64 of
 *                       the record's bytes before it
 *     type 1 PROGRESS   every record index < w is finished; each of the n
 *                       values is a finished index (low 56 bits) and its
 *                       outcome (high 8 bits: 0 applied, 1 drifted,
 *                       2 vanished, 3 skipped, 4 conflict left as it was);
 *                       indices < w are written only with an outcome != 0
 *     type 2 COMPLETE   the log is applied (w = number of records); the n
 *                       values are the counters of the completing run
 *     type 3 START      written with the header: n = 1, w = 0, the value is
 *                       when the first run of the log began (ns since the
 *                       epoch): a file at a destination changed since then
 *                       is that run's own (apply.c, own_earlier_copy)
 *
 * A torn or corrupt record can only be the tail of an append-only file (a
 * crash while appending): the reader keeps the records before it and
 * truncates the file there.  Losing records is safe: the operations they
 * named are redone, and every operation is idempotent (apply.c).
 *
 * The journal file is locked (flock) for the whole run: a second replay with
 * the same journal gets CUT_EXIT_LOCKED.
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
#define J_VERSION 1
#define J_HDR 40
#define J_REC_MIN 24
#define J_PROGRESS 1
#define J_COMPLETE 2
#define J_START 3
#define J_MAX_N (1u << 24)
#define RP_J_IDX_MASK ((1ull << 56) - 1)
#define J_MAX_VANISHED 65536

struct rp_journal {
	int fd;
	char *path;
	bool fsync, read_only;
	uint64_t off;         /* end of the last good record */
	uint64_t w;           /* highest watermark read or written */
	uint64_t *done;       /* sorted finished indices >= w (as loaded) */
	size_t ndone;
	bool complete, existed;
	int64_t start_ns;     /* the START record's value, or 0 (none) */
	rp_stats cstats;      /* counters of the COMPLETE record */
	uint64_t earlier;     /* records with an outcome != 0 in PROGRESS records */
	uint64_t *vanished;   /* sorted indices noted RP_J_VANISHED (as loaded), at most
				 J_MAX_VANISHED: apply.c's links whose file vanished */
	size_t nvanished;
	cut_buf pending;      /* u64 indices noted since the last flush */
};

/* The counters a COMPLETE record keeps, in order. */
#define J_STAT_FIELDS(X) \
	X(created) X(updated) X(renamed) X(linked) X(deleted) X(mkdirs) X(rmdirs) X(symlinks) \
	X(specials) X(metas) X(noop) X(bytes_copied) X(drifted) X(vanished) X(skipped) \
	X(conflicts) X(conflicts_skipped) X(conflicts_overwritten) X(racy)
#define J_COUNT(f) +1
#define J_NSTATS (0 J_STAT_FIELDS(J_COUNT))

char *rp_journal_default_path(const char *target)
{
	size_t n = strlen(target);
	while (n > 1 && target[n - 1] == '/')
		n--;
	cut_buf b = {0};
	cut_buf_put(&b, target, n);
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

/* Writes a fresh header and START record over whatever the file held.
 * 0 or -errno. */
static int j_reset(rp_journal *j, const uint8_t id[FMT_ID_LEN])
{
	uint8_t h[J_HDR + J_REC_MIN + 8];
	make_header(h, id);
	j->start_ns = cut_now_ns();
	uint8_t *r = h + J_HDR;
	cut_put_le32(r, J_START);
	cut_put_le32(r + 4, 1);
	cut_put_le64(r + 8, 0);
	cut_put_le64(r + 16, (uint64_t)j->start_ns);
	cut_put_le64(r + 24, XXH3_64bits(r, 24));
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

/* Parses the records after the header.  Sets j->w, done, complete, off. */
static void j_parse(rp_journal *j, const uint8_t *p, size_t len)
{
	cut_buf all = {0}; /* every value of PROGRESS records, filtered below */
	size_t off = J_HDR;
	while (off + J_REC_MIN <= len) {
		uint32_t type = cut_get_le32(p + off), n = cut_get_le32(p + off + 4);
		if ((type != J_PROGRESS && type != J_COMPLETE && type != J_START) || n > J_MAX_N)
			break;
		size_t rl = J_REC_MIN + 8 * (size_t)n;
		if (rl > len - off)
			break;
		if (XXH3_64bits(p + off, rl - 8) != cut_get_le64(p + off + rl - 8))
			break;
		uint64_t w = cut_get_le64(p + off + 8);
		if (w > j->w)
			j->w = w;
		if (type == J_PROGRESS) {
			cut_buf_put(&all, p + off + 16, 8 * (size_t)n);
		} else if (type == J_START) {
			if (n >= 1 && !j->start_ns)
				j->start_ns = (int64_t)cut_get_le64(p + off + 16);
		} else {
			j->complete = true;
			uint64_t v[J_NSTATS] = {0};
			for (uint32_t i = 0; i < n && i < J_NSTATS; i++)
				v[i] = cut_get_le64(p + off + 16 + 8 * (size_t)i);
			size_t k = 0;
#define J_GET(f) j->cstats.f = v[k++];
			J_STAT_FIELDS(J_GET)
#undef J_GET
		}
		off += rl;
	}
	j->off = off;
	size_t nv = all.len / 8, nd = 0;
	j->done = cut_malloc(cut_size_mul(nv ? nv : 1, 8));
	for (size_t i = 0; i < nv; i++) {
		uint64_t v = cut_get_le64(all.p + 8 * i), idx = v & RP_J_IDX_MASK;
		if (v >> 56)
			j->earlier++;
		if (v >> 56 == RP_J_VANISHED && j->nvanished < J_MAX_VANISHED) {
			if (!j->vanished)
				j->vanished = cut_malloc(8 * (nv < J_MAX_VANISHED ? nv : J_MAX_VANISHED));
			j->vanished[j->nvanished++] = idx;
		}
		if (idx >= j->w)
			j->done[nd++] = idx;
	}
	qsort(j->done, nd, 8, u64cmp);
	if (j->nvanished)
		qsort(j->vanished, j->nvanished, 8, u64cmp);
	size_t u = 0;
	for (size_t i = 0; i < nd; i++)
		if (u == 0 || j->done[u - 1] != j->done[i])
			j->done[u++] = j->done[i];
	j->ndone = u;
	cut_buf_free(&all);
}

int rp_journal_open(const char *path, const uint8_t log_id[FMT_ID_LEN], bool read_only,
		    bool fsync, rp_journal **out)
{
	rp_journal *j = cut_calloc(1, sizeof *j);
	j->fd = -1;
	j->path = cut_strndup(path, strlen(path));
	j->fsync = fsync;
	j->read_only = read_only;
	int rc = CUT_EXIT_ERROR;
	uint8_t *data = NULL;
	*out = NULL;

	j->fd = open(path, (read_only ? O_RDONLY : O_RDWR | O_CREAT) | O_CLOEXEC, 0600);
	if (j->fd < 0) {
		if (read_only && errno == ENOENT) {
			*out = j;
			return 0;
		}
		CUT_SYSERR("%s: cannot open the replay journal", path);
		goto fail;
	}
	if (flock(j->fd, (read_only ? LOCK_SH : LOCK_EX) | LOCK_NB) < 0) {
		if (errno == EWOULDBLOCK) {
			CUT_ERR("%s: another replay holds this journal; wait for it to end", path);
			rc = CUT_EXIT_LOCKED;
		} else {
			CUT_SYSERR("%s: cannot lock the replay journal", path);
		}
		goto fail;
	}
	struct stat st;
	if (fstat(j->fd, &st) < 0) {
		CUT_SYSERR("%s: cannot stat the replay journal", path);
		goto fail;
	}
	size_t len = (size_t)st.st_size;
	data = cut_malloc(len ? len : 1);
	long long got = cut_pread_all(j->fd, data, len, 0);
	if (got < 0 || (size_t)got != len) {
		errno = got < 0 ? (int)-got : EIO;
		CUT_SYSERR("%s: cannot read the replay journal", path);
		goto fail;
	}
	if (len < J_HDR) {
		/* Empty, or a crash while the header was being written: nothing
		 * was recorded yet. */
		if (!read_only && j_reset(j, log_id) < 0) {
			CUT_SYSERR("%s: cannot write the replay journal", path);
			goto fail;
		}
		j->done = cut_malloc(8);
		free(data);
		*out = j;
		return 0;
	}
	if (memcmp(data, J_MAGIC, 8) != 0 || XXH3_64bits(data, 32) != cut_get_le64(data + 32) ||
	    cut_get_le32(data + 8) != J_VERSION || cut_get_le32(data + 12) != 0) {
		CUT_ERR("%s: not a replay journal of this version, or its header is corrupt; "
			"refusing to use it (remove it to start over)", path);
		goto fail;
	}
	j_parse(j, data, len);
	j->existed = true;
	if (memcmp(data + 16, log_id, FMT_ID_LEN) != 0) {
		char a[2 * FMT_ID_LEN + 1], b[2 * FMT_ID_LEN + 1];
		cut_hex(a, data + 16, FMT_ID_LEN);
		cut_hex(b, log_id, FMT_ID_LEN);
		if (!j->complete) {
			CUT_ERR("%s: journal of change log %s, which was not applied to the end; "
				"finish that log first, or remove the journal (this log is %s)",
				path, a, b);
			goto fail;
		}
		/* The journal of a finished earlier log: start this log's. */
		CUT_DEBUG("%s: journal of finished log %s replaced for log %s", path, a, b);
		free(j->done);
		j->done = cut_malloc(8);
		j->ndone = 0;
		free(j->vanished);
		j->vanished = NULL;
		j->nvanished = 0;
		j->w = 0;
		j->earlier = 0;
		j->existed = false;
		j->complete = false;
		memset(&j->cstats, 0, sizeof j->cstats);
		if (!read_only && j_reset(j, log_id) < 0) {
			CUT_SYSERR("%s: cannot write the replay journal", path);
			goto fail;
		}
	} else if (j->off < len) {
		CUT_WARN("%s: discarding %llu bytes of a torn journal record at offset %llu "
			 "(a crash while writing it); those operations are redone", path,
			 (unsigned long long)(len - j->off), (unsigned long long)j->off);
		if (!read_only && ftruncate(j->fd, (off_t)j->off) < 0) {
			CUT_SYSERR("%s: cannot truncate the replay journal", path);
			goto fail;
		}
	}
	free(data);
	*out = j;
	return 0;
fail:
	free(data);
	rp_journal_close(j);
	return rc;
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
	return idx < j->w || u64_has(j->done, j->ndone, idx);
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
	cut_buf r = {0};
	uint8_t h[16];
	cut_put_le32(h, type);
	cut_put_le32(h + 4, (uint32_t)n);
	cut_put_le64(h + 8, w);
	cut_buf_put(&r, h, 16);
	cut_buf_put(&r, vals, 8 * n);
	uint8_t sum[8];
	cut_put_le64(sum, XXH3_64bits(r.p, r.len));
	cut_buf_put(&r, sum, 8);
	ssize_t wr;
	size_t done = 0;
	int rc = 0;
	/* pwrite at the known end: a failed partial append is overwritten by the
	 * next one instead of leaving garbage in the middle. */
	while (done < r.len) {
		wr = pwrite(j->fd, r.p + done, r.len - done, (off_t)(j->off + done));
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
		j->off += r.len;
	else
		CUT_ERR("%s: cannot append to the replay journal: %s", j->path, strerror(-rc));
	cut_buf_free(&r);
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
	if (k > 0 || watermark > j->w || sync)
		rc = j_append(j, J_PROGRESS, watermark, j->pending.p, k, sync || j->fsync);
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
	if (rc == 0)
		j->complete = true;
	return rc;
}

void rp_journal_close(rp_journal *j)
{
	if (!j)
		return;
	if (j->fd >= 0)
		close(j->fd);
	free(j->path);
	free(j->done);
	free(j->vanished);
	cut_buf_free(&j->pending);
	free(j);
}
