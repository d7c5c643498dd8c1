/*
 * gen_maildir -- build and mutate a synthetic, Dovecot-like maildir store.
 *
 * Why this exists
 *   cutover has to replicate huge Dovecot maildir trees (millions of small
 *   files, hard links spanning folders and users, control files that are
 *   appended in place or replaced by rename).  Benchmarks and tests need such
 *   trees of any size, identical on every run and every platform, plus a way
 *   to change them the way a day of real mail traffic does.  Real stores
 *   cannot be shipped, and driving a real Dovecot to build a million-entry
 *   tree takes hours, so this program imitates what Dovecot writes.
 *
 * What it imitates (see shared/MAILDIR.md, Dovecot 2.3):
 *   - layout ROOT/<domain>/<user>/Maildir/ with INBOX cur/ new/ tmp/ and
 *     Maildir++ folders .Sent .Trash .Drafts .Archive .Archive.2023 ...,
 *     names in modified UTF-7 (&AOQ- ...), an empty maildirfolder file each;
 *   - message names <sec>.M<usec>P<pid>V<dev>I<ino>_<n>.<host>,S=,W=:2,<flags>
 *     (old style) and <sec>.M<usec>P<pid>.<host>,S=,W=:2,<flags> (new style),
 *     S= the file size, W= the size with CRLF line ends, flags in ASCII order,
 *     no ":2," in new/; mtime = INTERNALDATE (received time);
 *   - dovecot-uidlist "3 V<uidvalidity> N<nextuid> G<guid>" + "<uid> :<name>",
 *     dovecot.index, dovecot.index.log (+ .log.2, sometimes hard-linked to
 *     .log mid-rotation), dovecot.index.cache, dovecot-keywords,
 *     subscriptions, dovecot-uidvalidity(.<hex>), list index, sieve symlink;
 *   - hard links: IMAP COPY (maildir_copy_with_hardlinks) within a user and
 *     LMTP multi-recipient delivery across users;
 *   - partial deliveries left in tmp/;
 *   - mutate: delivery via tmp/ + rename, new/ -> cur/ rename, flag rename,
 *     expunge (unlink + uidlist rewritten to dovecot-uidlist.lock and renamed
 *     over), COPY/MOVE by hard link, uidlist appended in place, index log
 *     appended in place and rotated (link .log -> .log.2, rename new log in),
 *     dovecot.index replaced by rename, folder create/rename/delete (delete
 *     goes through .DOVECOT-TRASHED), tmp/ files older than 36 h removed.
 *
 * Reproducibility: everything random comes from a private xoshiro256**
 * generator seeded from --seed, and only integer arithmetic decides sizes and
 * choices, so a given seed gives the same tree on every platform.  Directory
 * listings are always sorted before use.
 *
 * Build: cc -std=c11 -O2 -Wall -Wextra -Werror -D_GNU_SOURCE -o gen_maildir
 *        gen_maildir.c      (libc + POSIX.1-2008 only; Linux and FreeBSD)
 */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#define DAY 86400u
#define YEAR (365u * DAY)
#define PATHMAX 4096
#define DEFAULT_T0 1735689600u /* 2025-01-01 00:00:00 UTC */

static const char *prog = "gen_maildir";

/* ------------------------------------------------------------------ */
/* usage                                                               */

static const char usage_text[] =
"usage: gen_maildir create ROOT [--users N] [--domains D] [--msgs M] [--seed S]\n"
"                               [--size-scale F] [--time T0]\n"
"       gen_maildir mutate ROOT --seed S [--percent P] [--time T] [--size-scale F]\n"
"                               [--same-second]\n"
"       gen_maildir --help\n"
"\n"
"Builds (create) or changes (mutate) a synthetic Dovecot 2.3 maildir store laid\n"
"out as ROOT/<domain>/<user>/Maildir/, for cutover tests and benchmarks.\n"
"Output depends only on the options (and, for mutate, on the tree), never on\n"
"the platform: a private PRNG is used and directory listings are sorted.\n"
"\n"
"create  ROOT may exist but must not contain the domains generated.\n"
"  --users N       users (default 20)\n"
"  --domains D     domains, users spread Zipf-like over them (default 3)\n"
"  --msgs M        mean messages per user; users vary ~0.02x..7x, INBOX gets\n"
"                  the most; ~5%% of messages are also hard-linked into another\n"
"                  folder of the same user (IMAP COPY), ~2%% into another user's\n"
"                  INBOX (LMTP multi-recipient); the total of messages\n"
"                  before links is exactly N*M (default 35)\n"
"  --seed S        PRNG seed (default 1)\n"
"  --size-scale F  multiply message sizes (median ~4 KB, mean ~10 KB, up to\n"
"                  6 MB) by F; a message never gets smaller than its headers\n"
"                  (~250 bytes) (default 1.0)\n"
"  --time T0       \"now\" of the store in unix seconds; messages are spread over\n"
"                  the ~0.5..6.5 years before it (default %u = 2025-01-01)\n"
"  The defaults give ~20 users and ~2,000 entries (1,923 with seed 1).\n"
"  About 1,000,000 entries (~1.07 names per message, ~70 other entries\n"
"  per user):\n"
"      gen_maildir create ROOT --users 1000 --msgs 870 --size-scale 0.1\n"
"  (seed 1: 998,815 entries, 930,723 message names, 1.2 GB of data, 4.3 GB\n"
"  on disk with 4 KB blocks; bound by file creation in the kernel).\n"
"  Prints: users= domains= folders= messages= (message names, links included)\n"
"  files= (regular-file names) links= (extra names made by link()) dirs=\n"
"  symlinks= bytes= (data written, each inode once) entries= (files+dirs+\n"
"  symlinks below ROOT = `find ROOT -mindepth 1 | wc -l`).\n"
"\n";

static const char usage_text2[] =
"mutate  simulates one mail day: P percent (default 1.0) of the existing\n"
"  messages are affected (25% new->cur moves, ~45% flag renames, 20%\n"
"  expunges, 10% COPY by hard link of which 30% are MOVEs), and 0.6*P percent\n"
"  new messages are delivered (tmp/ then rename into new/, or cur/ for Sent\n"
"  and Drafts; 3% of INBOX deliveries are hard-linked to 1-3 more users).\n"
"  Each touched folder: dovecot-uidlist appended in place under\n"
"  dovecot-uidlist.lock, or rewritten into the .lock and renamed over (always\n"
"  when something was expunged, else 5%); dovecot.index.log appended in place,\n"
"  rotated 3% (unlink .log.2, link .log -> .log.2, rename .log.newlock ->\n"
"  .log); dovecot.index replaced by rename 20%; dovecot.index.cache appended\n"
"  30%; tmp/ files with mtime older than T-36h removed; 5% leave a partial\n"
"  file in tmp/.  Then folders are created, renamed (with their subfolders)\n"
"  and deleted (renamed to .DOVECOT-TRASHED, then removed); subscriptions is\n"
"  rewritten and renamed.  About 0.02*P*users creations and 0.005*P*users\n"
"  renames and deletions, at least one each when P > 0.\n"
"  --seed S        required\n"
"  --percent P     float, default 1.0\n"
"  --time T        timestamp for new messages (names and mtimes); default:\n"
"                  the current time.  The result is a pure function of\n"
"                  (tree, seed, T): give --time to get identical trees.\n"
"                  Control files written or appended (uidlist, index files,\n"
"                  subscriptions ...) and directories keep the real mtime\n"
"                  of the run, as Dovecot's would.\n"
"  --size-scale F  as for create, for delivered messages (default 1.0)\n"
"  --same-second   after reading and planning, sleep until a wall-clock second\n"
"                  S starts; then do the main round, then at once an extra\n"
"                  small round (in up to 8 folders the main round touched: one\n"
"                  delivery each, a flag rename and a new->cur move where\n"
"                  possible, one expunge), then print the summary and flush\n"
"                  stdout.  Without --time, T = S.  The summary ends with\n"
"                  second=S done_ms=X, X = ms after the start of S when the\n"
"                  summary was printed: if X < 1000 every change of the run\n"
"                  happened within second S, and a caller that scans right\n"
"                  after reading the summary line scans within S too.\n"
"  Prints one line of counts per operation and bytes_written=.\n"
"\n"
"Exit status: 0 ok, 1 I/O error (message names the path), 2 bad usage.\n";

static void usage(FILE *f)
{
	fprintf(f, usage_text, DEFAULT_T0);
	fputs(usage_text2, f);
}

static void die_usage(const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "%s: ", prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n(try %s --help)\n", prog);
	exit(2);
}

static void die_path(const char *what, const char *path)
{
	fprintf(stderr, "%s: %s %s: %s\n", prog, what, path, strerror(errno));
	exit(1);
}

static void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (!p) {
		fprintf(stderr, "%s: out of memory\n", prog);
		exit(1);
	}
	return p;
}

static void *xrealloc(void *p, size_t n)
{
	p = realloc(p, n ? n : 1);
	if (!p) {
		fprintf(stderr, "%s: out of memory\n", prog);
		exit(1);
	}
	return p;
}

static char *xstrdup(const char *s)
{
	size_t n = strlen(s) + 1;
	char *p = xmalloc(n);
	memcpy(p, s, n);
	return p;
}

#define GROW(arr, n, cap)                                                   \
	do {                                                                \
		if ((n) >= (cap)) {                                         \
			(cap) = (cap) ? (cap) * 2 : 8;                      \
			(arr) = xrealloc((arr), (size_t)(cap) * sizeof(*(arr))); \
		}                                                           \
	} while (0)

/* ------------------------------------------------------------------ */
/* PRNG: splitmix64 seeding xoshiro256**                              */

typedef struct {
	uint64_t s[4];
} rng_t;

static uint64_t splitmix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9E3779B97F4A7C15ULL);
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
	return z ^ (z >> 31);
}

static void rng_seed(rng_t *r, uint64_t seed)
{
	uint64_t x = seed;
	for (int i = 0; i < 4; i++)
		r->s[i] = splitmix64(&x);
}

static inline uint64_t rotl64(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

static uint64_t rng_next(rng_t *r)
{
	uint64_t *s = r->s;
	uint64_t res = rotl64(s[1] * 5, 7) * 9;
	uint64_t t = s[1] << 17;
	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl64(s[3], 45);
	return res;
}

/* uniform in [0, n) */
static uint64_t rng_below(rng_t *r, uint64_t n)
{
	if (n <= 1)
		return 0;
	uint64_t lim = UINT64_MAX - UINT64_MAX % n;
	uint64_t v;
	do
		v = rng_next(r);
	while (v >= lim);
	return v % n;
}

/* uniform in [lo, hi] */
static uint64_t rng_range(rng_t *r, uint64_t lo, uint64_t hi)
{
	if (hi <= lo)
		return lo;
	return lo + rng_below(r, hi - lo + 1);
}

/* true with probability ppm / 1e6 */
static int rng_ppm(rng_t *r, uint32_t ppm)
{
	return rng_below(r, 1000000) < ppm;
}

/* in [0, range], skewed towards 0 (product of two uniforms) */
static uint64_t rng_skew(rng_t *r, uint64_t range)
{
	if (range == 0)
		return 0;
	uint64_t a = rng_below(r, range + 1), b = rng_below(r, range + 1);
	return a * b / range;
}

/* ------------------------------------------------------------------ */
/* growable buffer                                                     */

typedef struct {
	char *p;
	size_t len, cap;
} buf_t;

static void buf_reserve(buf_t *b, size_t extra)
{
	if (b->len + extra + 1 > b->cap) {
		size_t nc = b->cap ? b->cap : 4096;
		while (nc < b->len + extra + 1)
			nc *= 2;
		b->p = xrealloc(b->p, nc);
		b->cap = nc;
	}
}

static void buf_add(buf_t *b, const void *p, size_t n)
{
	buf_reserve(b, n);
	memcpy(b->p + b->len, p, n);
	b->len += n;
	b->p[b->len] = 0;
}

static void buf_adds(buf_t *b, const char *s)
{
	buf_add(b, s, strlen(s));
}

static void buf_printf(buf_t *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	buf_reserve(b, (size_t)n);
	va_start(ap, fmt);
	vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

static void buf_rand(buf_t *b, rng_t *r, size_t n)
{
	buf_reserve(b, n + 8);
	for (size_t i = 0; i < n; i += 8) {
		uint64_t v = rng_next(r);
		memcpy(b->p + b->len + i, &v, 8);
	}
	b->len += n;
	b->p[b->len] = 0;
}

static void put_le32(buf_t *b, size_t off, uint32_t v)
{
	unsigned char *p = (unsigned char *)b->p + off;
	p[0] = (unsigned char)v;
	p[1] = (unsigned char)(v >> 8);
	p[2] = (unsigned char)(v >> 16);
	p[3] = (unsigned char)(v >> 24);
}

/* ------------------------------------------------------------------ */
/* statistics                                                          */

static struct {
	uint64_t files, links, dirs, symlinks, bytes;
} st;

/* ------------------------------------------------------------------ */
/* file system helpers                                                 */

static void pjoin(char *out, const char *a, const char *b)
{
	int n = snprintf(out, PATHMAX, "%s/%s", a, b);
	if (n < 0 || n >= PATHMAX) {
		errno = ENAMETOOLONG;
		die_path("cannot build path", a);
	}
}

static void pjoin3(char *out, const char *a, const char *b, const char *c)
{
	int n = snprintf(out, PATHMAX, "%s/%s/%s", a, b, c);
	if (n < 0 || n >= PATHMAX) {
		errno = ENAMETOOLONG;
		die_path("cannot build path", a);
	}
}

static void xmkdir(const char *path)
{
	if (mkdir(path, 0700) < 0)
		die_path("mkdir", path);
	st.dirs++;
}

static void write_all(int fd, const void *p, size_t n, const char *path)
{
	const char *c = p;
	while (n > 0) {
		ssize_t w = write(fd, c, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			die_path("write", path);
		}
		c += w;
		n -= (size_t)w;
	}
}

static void set_fd_mtime(int fd, int64_t mtime, const char *path)
{
	struct timespec ts[2];
	ts[0].tv_sec = (time_t)mtime;
	ts[0].tv_nsec = 0;
	ts[1] = ts[0];
	if (futimens(fd, ts) < 0)
		die_path("futimens", path);
}

/* Create a new file (O_EXCL) holding data; mtime < 0 leaves it alone.
 * Returns 0, or -1 with errno EEXIST when allow_exist is set. */
static int write_new_file(const char *path, const void *data, size_t len,
			  int64_t mtime, int allow_exist)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
	if (fd < 0) {
		if (allow_exist && errno == EEXIST)
			return -1;
		die_path("create", path);
	}
	write_all(fd, data, len, path);
	if (mtime >= 0)
		set_fd_mtime(fd, mtime, path);
	if (close(fd) < 0)
		die_path("close", path);
	st.files++;
	st.bytes += len;
	return 0;
}

static void append_file(const char *path, const void *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_APPEND | O_CREAT, 0600);
	if (fd < 0)
		die_path("open for append", path);
	write_all(fd, data, len, path);
	if (close(fd) < 0)
		die_path("close", path);
	st.bytes += len;
}

static void xrename(const char *from, const char *to)
{
	if (rename(from, to) < 0) {
		int e = errno;
		fprintf(stderr, "%s: rename %s -> %s: %s\n", prog, from, to,
			strerror(e));
		exit(1);
	}
}

static void xlink(const char *from, const char *to)
{
	if (link(from, to) < 0) {
		int e = errno;
		fprintf(stderr, "%s: link %s -> %s: %s\n", prog, from, to,
			strerror(e));
		exit(1);
	}
	st.links++;
	st.files++;
}

static void xunlink(const char *path)
{
	if (unlink(path) < 0)
		die_path("unlink", path);
}

static int path_exists(const char *path)
{
	struct stat sb;
	if (lstat(path, &sb) == 0)
		return 1;
	if (errno != ENOENT && errno != ENOTDIR)
		die_path("lstat", path);
	return 0;
}

static int is_dir(const char *path)
{
	struct stat sb;
	if (lstat(path, &sb) == 0)
		return S_ISDIR(sb.st_mode);
	if (errno != ENOENT && errno != ENOTDIR)
		die_path("lstat", path);
	return 0;
}

/* whole file into b (b->len reset); returns 0, or -1 if it does not exist */
static int read_file(const char *path, buf_t *b)
{
	b->len = 0;
	int fd = open(path, O_RDONLY);
	if (fd < 0) {
		if (errno == ENOENT)
			return -1;
		die_path("open", path);
	}
	for (;;) {
		buf_reserve(b, 65536);
		ssize_t n = read(fd, b->p + b->len, b->cap - b->len - 1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			die_path("read", path);
		}
		if (n == 0)
			break;
		b->len += (size_t)n;
	}
	b->p[b->len] = 0;
	close(fd);
	return 0;
}

static int cmp_strp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

typedef struct {
	char **v;
	size_t n, cap;
} strv_t;

static void strv_free(strv_t *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->v[i]);
	free(s->v);
	s->v = NULL;
	s->n = s->cap = 0;
}

static void strv_push(strv_t *s, const char *str)
{
	GROW(s->v, s->n, s->cap);
	s->v[s->n++] = xstrdup(str);
}

/* sorted names of path (no "." ".."); skip_dot also drops names starting
 * with '.'.  A missing directory gives an empty list. */
static void list_dir(const char *path, strv_t *out, int skip_dot)
{
	out->n = 0;
	DIR *d = opendir(path);
	if (!d) {
		if (errno == ENOENT)
			return;
		die_path("opendir", path);
	}
	struct dirent *de;
	errno = 0;
	while ((de = readdir(d)) != NULL) {
		const char *n = de->d_name;
		if (n[0] == '.' && (skip_dot || n[1] == 0 ||
				    (n[1] == '.' && n[2] == 0)))
			continue;
		strv_push(out, n);
		errno = 0;
	}
	if (errno)
		die_path("readdir", path);
	closedir(d);
	if (out->n > 1)
		qsort(out->v, out->n, sizeof(char *), cmp_strp);
}

static uint32_t count_dir(const char *path)
{
	uint32_t c = 0;
	DIR *d = opendir(path);
	if (!d) {
		if (errno == ENOENT)
			return 0;
		die_path("opendir", path);
	}
	struct dirent *de;
	errno = 0;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] != '.')
			c++;
		errno = 0;
	}
	if (errno)
		die_path("readdir", path);
	closedir(d);
	return c;
}

/* recursive delete; returns the number of names removed from cur/ and new/ */
static uint64_t rm_rf(const char *path, int in_msgdir)
{
	struct stat sb;
	uint64_t msgs = 0;
	if (lstat(path, &sb) < 0) {
		if (errno == ENOENT)
			return 0;
		die_path("lstat", path);
	}
	if (S_ISDIR(sb.st_mode)) {
		strv_t names = {0};
		list_dir(path, &names, 0);
		const char *base = strrchr(path, '/');
		base = base ? base + 1 : path;
		int msgdir = strcmp(base, "cur") == 0 || strcmp(base, "new") == 0;
		for (size_t i = 0; i < names.n; i++) {
			char p[PATHMAX];
			pjoin(p, path, names.v[i]);
			msgs += rm_rf(p, msgdir);
		}
		strv_free(&names);
		if (rmdir(path) < 0)
			die_path("rmdir", path);
	} else {
		if (unlink(path) < 0)
			die_path("unlink", path);
		if (in_msgdir)
			msgs++;
	}
	return msgs;
}

/* ------------------------------------------------------------------ */
/* tables                                                              */

/* message size distribution: {lo, hi, ppm}; a mixture of a log-normal
 * (median 3.8 KB, sigma 0.95) for plain mail and 1.8% log-normal
 * attachments (median 130 KB, sigma 1.15), cut at 6 MB; median ~4 KB,
 * mean ~10.5 KB.  Uniform within a bucket. */
static const uint32_t size_tab[][3] = {
	{300, 390, 4450}, {390, 507, 8589}, {507, 659, 15358},
	{659, 856, 25389}, {856, 1112, 39017}, {1112, 1445, 55665},
	{1445, 1878, 73616}, {1878, 2441, 90259}, {2441, 3173, 102592},
	{3173, 4124, 108032}, {4124, 5361, 105593}, {5361, 6969, 95625},
	{6969, 9059, 80297}, {9059, 11776, 62563}, {11776, 15308, 45260},
	{15308, 19900, 30470}, {19900, 25870, 19186}, {25870, 33631, 11442},
	{33631, 43720, 6649}, {43720, 56836, 3982}, {56836, 73886, 2658},
	{73886, 96051, 2076}, {96051, 124866, 1838}, {124866, 162325, 1714},
	{162325, 211022, 1592}, {211022, 274328, 1431}, {274328, 356626, 1230},
	{356626, 463613, 1006}, {463613, 602696, 782}, {602696, 783504, 578},
	{783504, 1018555, 405}, {1018555, 1324121, 270},
	{1324121, 1721357, 171}, {1721357, 2237764, 102},
	{2237764, 2909093, 58}, {2909093, 3781820, 32},
	{3781820, 4916366, 16}, {4916366, 6000000, 7},
};

/* per-user message count multiplier in per mille: {lo, hi, ppm} */
static const uint32_t mult_tab[][3] = {
	{20, 200, 100000}, {200, 500, 180000}, {500, 1000, 280000},
	{1000, 2000, 260000}, {2000, 4000, 130000}, {4000, 10000, 50000},
};

static uint32_t table_pick(rng_t *r, const uint32_t (*tab)[3], size_t n)
{
	uint64_t x = rng_below(r, 1000000);
	for (size_t i = 0; i < n; i++) {
		if (x < tab[i][2])
			return (uint32_t)rng_range(r, tab[i][0], tab[i][1] - 1);
		x -= tab[i][2];
	}
	return tab[n - 1][0];
}

static uint64_t scale_ppm = 1000000; /* --size-scale as parts per million */

/* returns the scaled target size; *attach says whether the unscaled size
 * is attachment-sized */
static uint32_t pick_size(rng_t *r, int *attach)
{
	uint32_t s = table_pick(r, size_tab, sizeof size_tab / sizeof size_tab[0]);
	*attach = s >= 100000;
	uint64_t v = (uint64_t)s * scale_ppm / 1000000;
	if (v > 0xFFFFFFF0u)
		v = 0xFFFFFFF0u;
	return (uint32_t)v;
}

static const char *hosts[] = {
	"mx1.mail.example.net",   "mx2.mail.example.net",
	"mx3.mail.example.net",   "imap1.mail.example.net",
	"imap2.mail.example.net", "mailhost",
};
static const uint64_t host_dev[] = {0x803, 0x803, 0xFD01, 0x811, 0x811, 0x802};
enum { H_MX1, H_MX2, H_MX3, H_IMAP1, H_IMAP2, H_OLD };

static const char *first_names[] = {
	"anna", "john", "maria", "peter", "sophie", "michael", "laura", "thomas",
	"julia", "david", "emma", "lukas", "sarah", "daniel", "lisa", "paul",
	"claire", "marc", "elena", "jan", "nina", "oliver", "ines", "felix",
	"hannah", "robert", "lea", "stefan", "chloe", "martin", "zoe", "kevin",
	"olga", "ivan", "yuki", "kenji", "fatima", "omar", "lucia", "pablo",
};
static const char *last_names[] = {
	"schmidt", "smith", "mueller", "dupont", "garcia", "rossi", "novak",
	"jones", "weber", "martin", "bernard", "fischer", "lopez", "brown",
	"wagner", "kowalski", "nielsen", "tanaka", "ivanova", "silva", "meyer",
	"becker", "moreau", "costa", "jensen", "hoffmann", "schulz", "keller",
};
static const char *domain_names[] = {
	"example.com",       "example.org",        "example.net",
	"mail.example",      "kunde-gmbh.example", "universidad.example",
	"shop.example",      "family.example",
};
static const char *sender_domains[] = {
	"gmail.example", "outlook.example", "newsletter.shop.example",
	"github.example", "bank.example", "airline.example", "gmx.example",
	"web.example", "lists.example.org", "university.example",
};
static const char *words[] = {
	"the", "meeting", "invoice", "please", "attached", "regards", "tomorrow",
	"project", "update", "thanks", "schedule", "review", "der", "und",
	"Rechnung", "für", "Grüße", "bonjour", "réunion", "merci", "order",
	"shipping", "account", "password", "newsletter", "offer", "price",
	"team", "report", "quarter", "budget", "draft", "final", "version",
	"server", "backup", "migration", "mailbox", "deadline", "customer",
	"support", "ticket", "holiday", "family", "photos", "weekend", "dinner",
	"flight", "hotel", "booking", "confirmation", "payment", "received",
	"contract", "signature", "document", "question", "answer", "problem",
	"solution", "agenda", "minutes", "notes", "call", "phone", "office",
	"Monday", "Friday", "January", "June", "September", "December", "€",
	"café", "naïve", "Straße", "ok", "yes", "no", "maybe", "we", "you",
	"they", "I", "is", "are", "was", "will", "can", "should", "could",
	"would", "have", "has", "not", "a", "an", "of", "to", "in", "on", "for",
	"with", "at", "by", "from", "about", "as", "it", "this", "that", "and",
	"or", "but", "if", "so", "all", "new", "our", "your", "their", "more",
};
#define NWORDS (sizeof words / sizeof words[0])

/* user folder names, UTF-8; encoded to modified UTF-7 on disk.  No '.' or
 * '/' (the Maildir++ hierarchy separator is '.'). */
static const char *ufolder_pool[] = {
	"Work", "Projects", "Receipts", "Family", "Newsletters", "Travel",
	"Invoices", "Orders", "Friends", "Notes", "Clients", "Reports",
	"Rechnungen", "Steuer", "Reisen", "Fotos", "Réunions", "Reçus",
	"Família", "Ärger", "Müller GmbH", "Kündigung", "日本語", "Заказы",
	"Banco & Seguros", "Old Mail", "Lists", "GitHub", "Bank", "Insurance",
	"School", "Kids", "Car", "House", "Recipes", "Jobs", "Bewerbungen",
	"Verträge", "Συνταγές", "Ofertas", "Facturas", "Proveedores", "Sport",
	"Health", "Taxes 2022", "Vacation Photos", "Misc", "To Do", "Later",
	"Äpfel & Birnen",
};
static const char *subfolder_pool[] = {
	"2021", "2022", "2024", "Done", "Pending", "Team", "Private", "Älteres",
	"Clients", "Misc",
};
static const char *kw_names[] = {
	"$Forwarded", "Junk", "NonJunk", "$label1", "$label2", "$MDNSent",
	"$NotJunk", "$label3",
};

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

/* ------------------------------------------------------------------ */
/* modified UTF-7 (RFC 3501 5.1.3) as Dovecot writes folder names      */

static void mutf7_encode(const char *in, char *out, size_t outsz)
{
	static const char b64[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";
	const unsigned char *p = (const unsigned char *)in;
	size_t o = 0;
#define OUTC(c)                                   \
	do {                                      \
		if (o + 1 < outsz)                \
			out[o++] = (char)(c);     \
	} while (0)
	while (*p) {
		if (*p >= 0x20 && *p < 0x7f) {
			OUTC(*p);
			if (*p == '&')
				OUTC('-');
			p++;
			continue;
		}
		uint32_t bits = 0;
		int nbits = 0;
		OUTC('&');
		while (*p && !(*p >= 0x20 && *p < 0x7f)) {
			uint32_t cp;
			int extra;
			if (*p >= 0xF0) {
				cp = *p & 0x07;
				extra = 3;
			} else if (*p >= 0xE0) {
				cp = *p & 0x0F;
				extra = 2;
			} else if (*p >= 0xC0) {
				cp = *p & 0x1F;
				extra = 1;
			} else {
				cp = *p;
				extra = 0;
			}
			p++;
			while (extra-- > 0 && (*p & 0xC0) == 0x80)
				cp = (cp << 6) | (*p++ & 0x3F);
			uint16_t u[2];
			int nu = 0;
			if (cp >= 0x10000) {
				cp -= 0x10000;
				u[nu++] = (uint16_t)(0xD800 + (cp >> 10));
				u[nu++] = (uint16_t)(0xDC00 + (cp & 0x3FF));
			} else {
				u[nu++] = (uint16_t)cp;
			}
			for (int i = 0; i < nu; i++) {
				bits = (bits << 16) | u[i];
				nbits += 16;
				while (nbits >= 6) {
					nbits -= 6;
					OUTC(b64[(bits >> nbits) & 0x3F]);
				}
			}
		}
		if (nbits > 0)
			OUTC(b64[(bits << (6 - nbits)) & 0x3F]);
		OUTC('-');
	}
	out[o] = 0;
#undef OUTC
}

/* ------------------------------------------------------------------ */
/* message content                                                     */

#define TEXT_POOL_SIZE (512 * 1024)
#define B64_LINE 77
#define B64_POOL_LINES 4096
static char *text_pool;
static size_t text_pool_len;
static char *b64_pool;

static void init_pools(void)
{
	rng_t r;
	rng_seed(&r, 0x6D61696C64697221ULL);
	buf_t b = {0};
	while (b.len < TEXT_POOL_SIZE) {
		int lines = (int)rng_range(&r, 1, 7);
		int quoted = rng_ppm(&r, 120000);
		for (int l = 0; l < lines; l++) {
			size_t want = (size_t)rng_range(&r, 40, 72), col = 0;
			if (quoted) {
				buf_adds(&b, "> ");
				col = 2;
			}
			int first = 1;
			while (col < want) {
				const char *w = words[rng_below(&r, NWORDS)];
				if (!first) {
					buf_add(&b, " ", 1);
					col++;
				}
				buf_adds(&b, w);
				col += strlen(w);
				first = 0;
			}
			if (rng_ppm(&r, 150000))
				buf_add(&b, ".", 1);
			buf_add(&b, "\n", 1);
		}
		buf_add(&b, "\n", 1);
	}
	text_pool = b.p;
	text_pool_len = b.len;

	static const char a64[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	b64_pool = xmalloc((size_t)B64_POOL_LINES * B64_LINE);
	for (size_t i = 0; i < (size_t)B64_POOL_LINES * B64_LINE; i++)
		b64_pool[i] = ((i + 1) % B64_LINE == 0)
				      ? '\n'
				      : a64[rng_next(&r) >> 58];
}

static void copy_wrap(buf_t *b, const char *pool, size_t plen, size_t start,
		      size_t n)
{
	buf_reserve(b, n);
	while (n > 0) {
		size_t k = plen - start;
		if (k > n)
			k = n;
		memcpy(b->p + b->len, pool + start, k);
		b->len += k;
		n -= k;
		start = 0;
	}
	b->p[b->len] = 0;
}

/* append exactly n bytes of text ending in '\n' */
static void fill_text(buf_t *b, rng_t *r, size_t n)
{
	if (n == 0)
		return;
	size_t start = (size_t)rng_below(r, text_pool_len);
	const char *nl = memchr(text_pool + start, '\n', text_pool_len - start);
	start = nl ? (size_t)(nl - text_pool) + 1 : 0;
	if (start >= text_pool_len)
		start = 0;
	copy_wrap(b, text_pool, text_pool_len, start, n - 1);
	buf_add(b, "\n", 1);
}

static void fill_b64(buf_t *b, rng_t *r, size_t n)
{
	if (n == 0)
		return;
	size_t plen = (size_t)B64_POOL_LINES * B64_LINE;
	size_t start = (size_t)rng_below(r, B64_POOL_LINES) * B64_LINE;
	copy_wrap(b, b64_pool, plen, start, n - 1);
	buf_add(b, "\n", 1);
}

static void fmt_date(char *out, size_t n, int64_t t)
{
	static const char *wd[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
	static const char *mo[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
				   "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
	time_t tt = (time_t)t;
	struct tm tm;
	if (!gmtime_r(&tt, &tm)) {
		snprintf(out, n, "Thu, 01 Jan 1970 00:00:00 +0000");
		return;
	}
	snprintf(out, n, "%s, %02d %s %04d %02d:%02d:%02d +0000",
		 wd[tm.tm_wday % 7], tm.tm_mday, mo[tm.tm_mon % 12],
		 tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

typedef struct {
	const char *user, *domain; /* the mailbox owner */
	int64_t t;                 /* received / saved time */
	const char *host;          /* receiving host */
	int sent;                  /* written by the owner (Sent, Drafts) */
} msgmeta_t;

/* Build an RFC 822 message of exactly max(target, minimum) bytes into b. */
static void gen_message(buf_t *b, rng_t *r, const msgmeta_t *m,
			uint32_t target, int attach)
{
	char date[64], sender[160], sname[96], subj[256], boundary[48];
	b->len = 0;
	if (target < 1500 || (attach && target < 4000))
		attach = 0;
	int minimal = target < 1200;
	fmt_date(date, sizeof date, m->t);
	const char *fn = first_names[rng_below(r, NELEM(first_names))];
	const char *ln = last_names[rng_below(r, NELEM(last_names))];
	const char *sd = sender_domains[rng_below(r, NELEM(sender_domains))];
	snprintf(sender, sizeof sender, "%s.%s@%s", fn, ln, sd);
	snprintf(sname, sizeof sname, "%c%s %c%s", fn[0] - 32, fn + 1,
		 ln[0] - 32, ln + 1);
	size_t sl = 0;
	subj[0] = 0;
	if (rng_ppm(r, 250000)) {
		memcpy(subj, "Re: ", 5);
		sl = 4;
	}
	int nw = (int)rng_range(r, 2, 8);
	for (int i = 0; i < nw; i++) {
		const char *w = words[rng_below(r, NWORDS)];
		size_t wl = strlen(w);
		if (sl + wl + 2 >= sizeof subj)
			break;
		if (i)
			subj[sl++] = ' ';
		memcpy(subj + sl, w, wl);
		sl += wl;
		subj[sl] = 0;
	}
	uint64_t mid = rng_next(r);

	if (!m->sent && !minimal) {
		buf_printf(b, "Return-Path: <%s>\n", sender);
		buf_printf(b, "Delivered-To: %s@%s\n", m->user, m->domain);
		buf_printf(b,
			   "Received: from %s\n\tby %s with LMTP\n\tid %016" PRIx64
			   "\n\t(envelope-from <%s>)\n\tfor <%s@%s>; %s\n",
			   m->host, "imap1.mail.example.net", rng_next(r), sender,
			   m->user, m->domain, date);
		/* one PRNG call per statement: argument order is unspecified */
		unsigned ip = (unsigned)rng_range(r, 1, 254);
		uint64_t qid = rng_next(r) >> 24;
		buf_printf(b,
			   "Received: from out.%s (out.%s [198.51.100.%u])\n\tby %s "
			   "(Postfix) with ESMTPS id 4%010" PRIX64 "\n\tfor <%s@%s>; %s\n",
			   sd, sd, ip, m->host, qid, m->user, m->domain, date);
	}
	buf_printf(b, "Message-ID: <%016" PRIx64 ".%s@%s>\n", mid,
		   m->sent ? "imap" : "mail", m->sent ? m->domain : sd);
	buf_printf(b, "Date: %s\n", date);
	if (m->sent) {
		buf_printf(b, "From: %s@%s\n", m->user, m->domain);
		buf_printf(b, "To: \"%s\" <%s>\n", sname, sender);
	} else {
		buf_printf(b, "From: \"%s\" <%s>\n", sname, sender);
		buf_printf(b, "To: %s@%s\n", m->user, m->domain);
	}
	buf_printf(b, "Subject: %s\n", subj);
	if (!minimal) {
		buf_adds(b, "MIME-Version: 1.0\n");
		if (m->sent)
			buf_adds(b, "User-Agent: Roundcube Webmail/1.6.5\n");
		else if (rng_ppm(r, 300000))
			buf_printf(b, "List-Unsubscribe: <https://%s/u/%08" PRIx64 ">\n",
				   sd, rng_next(r) >> 32);
		if (attach) {
			snprintf(boundary, sizeof boundary, "=_%016" PRIx64,
				 rng_next(r));
			buf_printf(b,
				   "Content-Type: multipart/mixed;\n boundary=\"%s\"\n",
				   boundary);
		} else {
			buf_adds(b, "Content-Type: text/plain; charset=utf-8\n"
				    "Content-Transfer-Encoding: 8bit\n");
		}
	}
	buf_add(b, "\n", 1);
	if (attach) {
		buf_printf(b,
			   "This is a multi-part message in MIME format.\n\n--%s\n"
			   "Content-Type: text/plain; charset=utf-8\n"
			   "Content-Transfer-Encoding: 8bit\n\n",
			   boundary);
		fill_text(b, r, (size_t)rng_range(r, 200, 2500));
		uint64_t an = rng_next(r) >> 40;
		buf_printf(b,
			   "\n--%s\nContent-Type: application/pdf; name=\"doc%" PRIu64
			   ".pdf\"\nContent-Transfer-Encoding: base64\n"
			   "Content-Disposition: attachment; filename=\"doc%" PRIu64
			   ".pdf\"\n\n",
			   boundary, an, an);
		size_t tail = strlen(boundary) + 5; /* "--<boundary>--\n" */
		size_t have = b->len + tail + 1;
		size_t n64 = target > have + B64_LINE ? target - have : B64_LINE;
		fill_b64(b, r, n64);
		buf_printf(b, "--%s--\n", boundary);
	} else {
		size_t n = target > b->len + 1 ? target - b->len : 1;
		fill_text(b, r, n);
	}
}

static uint32_t count_lf(const char *p, size_t n)
{
	uint32_t c = 0;
	const char *e = p + n;
	while (p < e && (p = memchr(p, '\n', (size_t)(e - p))) != NULL) {
		c++;
		p++;
	}
	return c;
}

/* ------------------------------------------------------------------ */
/* flags                                                               */

enum { FL_D = 1, FL_F = 2, FL_R = 4, FL_S = 8, FL_T = 16 };

static void fmt_flags(char *o, uint8_t fl, uint8_t kw)
{
	if (fl & FL_D)
		*o++ = 'D';
	if (fl & FL_F)
		*o++ = 'F';
	if (fl & FL_R)
		*o++ = 'R';
	if (fl & FL_S)
		*o++ = 'S';
	if (fl & FL_T)
		*o++ = 'T';
	for (int i = 0; i < 8; i++)
		if (kw & (1u << i))
			*o++ = (char)('a' + i);
	*o = 0;
}

enum {
	FK_INBOX, FK_SENT, FK_TRASH, FK_DRAFTS, FK_JUNK, FK_ARCHIVE,
	FK_ARCHIVE_YEAR, FK_USER
};

static void pick_flags(rng_t *r, int kind, int nkw, uint8_t *flp, uint8_t *kwp)
{
	uint8_t f = 0, k = 0;
	switch (kind) {
	case FK_SENT:
		f = FL_S;
		if (rng_ppm(r, 20000))
			f |= FL_F;
		break;
	case FK_DRAFTS:
		f = FL_D | FL_S;
		break;
	case FK_TRASH:
		f = rng_ppm(r, 950000) ? FL_S : 0;
		if (rng_ppm(r, 80000))
			f |= FL_T;
		break;
	case FK_JUNK:
		f = rng_ppm(r, 500000) ? FL_S : 0;
		break;
	case FK_ARCHIVE:
	case FK_ARCHIVE_YEAR:
		f = rng_ppm(r, 980000) ? FL_S : 0;
		if (f && rng_ppm(r, 120000))
			f |= FL_R;
		if (rng_ppm(r, 20000))
			f |= FL_F;
		break;
	default:
		f = rng_ppm(r, 880000) ? FL_S : 0;
		if (f && rng_ppm(r, 110000))
			f |= FL_R;
		if (rng_ppm(r, 30000))
			f |= FL_F;
		if (rng_ppm(r, 4000))
			f |= FL_T;
		break;
	}
	if (nkw > 0) {
		if (rng_ppm(r, 60000))
			k |= (uint8_t)(1u << rng_below(r, (uint64_t)nkw));
		if (kind == FK_JUNK && nkw > 1 && rng_ppm(r, 500000))
			k |= 2;
	}
	*flp = f;
	*kwp = k;
}

/* ------------------------------------------------------------------ */
/* create                                                              */

typedef struct {
	uint32_t folder, sec, usec, pid, uid, owner;
	uint32_t size, lines; /* on the owner: real S= and line count */
	uint32_t target;      /* on the owner: planned size */
	uint32_t ino;         /* old style I<ino> */
	uint16_t n;           /* old style _<n> */
	uint8_t host, style, flags, kw, in_new, attach;
} entry_t;

typedef struct {
	uint32_t user;
	uint8_t kind, nkw;
	uint16_t year;
	char *name; /* Maildir++ name without the leading dot; "" = INBOX */
	char *path;
	uint32_t *ents;
	uint32_t nents, cap;
	uint32_t uidvalidity, nextuid, tmin, tmax, weight, ctime;
	uint64_t guid_hi, guid_lo;
} cfolder_t;

typedef struct {
	uint32_t domain;
	char *name, *home, *maildir;
	uint32_t f0, nf;
	uint32_t A, L;
	int localized;
} cuser_t;

static entry_t *E;
static size_t nE, capE;
static cfolder_t *CF;
static size_t nCF, capCF;
static cuser_t *CU;
static size_t nCU;
static uint64_t g_seed;
static uint32_t g_T0;

static uint32_t new_entry(void)
{
	if (nE >= 0xFFFFFFF0u) {
		fprintf(stderr, "%s: too many messages\n", prog);
		exit(1);
	}
	GROW(E, nE, capE);
	memset(&E[nE], 0, sizeof E[nE]);
	return (uint32_t)nE++;
}

static void folder_add(cfolder_t *f, uint32_t e)
{
	GROW(f->ents, f->nents, f->cap);
	f->ents[f->nents++] = e;
}

static int cmp_ent_time(const void *a, const void *b)
{
	const entry_t *x = &E[*(const uint32_t *)a], *y = &E[*(const uint32_t *)b];
	if (x->sec != y->sec)
		return x->sec < y->sec ? -1 : 1;
	if (x->usec != y->usec)
		return x->usec < y->usec ? -1 : 1;
	uint32_t i = *(const uint32_t *)a, j = *(const uint32_t *)b;
	return i < j ? -1 : i > j;
}

/* message base name (with ,S=,W=) */
static void fmt_base(char *o, size_t n, const entry_t *e)
{
	const entry_t *own = &E[e->owner];
	int r;
	if (e->style == 0)
		r = snprintf(o, n,
			     "%" PRIu32 ".M%" PRIu32 "P%" PRIu32 "V%016" PRIX64
			     "I%016" PRIX64 "_%u.%s,S=%" PRIu32 ",W=%" PRIu32,
			     e->sec, e->usec, e->pid, host_dev[e->host],
			     (uint64_t)e->ino, (unsigned)e->n, hosts[e->host],
			     own->size, own->size + own->lines);
	else
		r = snprintf(o, n,
			     "%" PRIu32 ".M%" PRIu32 "P%" PRIu32 ".%s,S=%" PRIu32
			     ",W=%" PRIu32,
			     e->sec, e->usec, e->pid, hosts[e->host], own->size,
			     own->size + own->lines);
	if (r < 0 || (size_t)r >= n)
		o[0] = 0;
}

static void fmt_name(char *o, size_t n, const entry_t *e)
{
	fmt_base(o, n, e);
	if (!e->in_new) {
		size_t l = strlen(o);
		if (l + 20 < n) {
			memcpy(o + l, ":2,", 3);
			fmt_flags(o + l + 3, e->flags, e->kw);
		}
	}
}

static void entry_path(char *out, const entry_t *e)
{
	char name[512];
	fmt_name(name, sizeof name, e);
	pjoin3(out, CF[e->folder].path, e->in_new ? "new" : "cur", name);
}

static uint32_t rand_pid(rng_t *r, int modern)
{
	if (modern && rng_ppm(r, 400000))
		return (uint32_t)rng_range(r, 100000, 4194303);
	return (uint32_t)rng_range(r, 300, 65535);
}

typedef struct {
	char **v;
	size_t n, cap, mask;
} strset_t;

static uint64_t fnv1a(const char *s)
{
	uint64_t h = 1469598103934665603ULL;
	while (*s)
		h = (h ^ (unsigned char)*s++) * 1099511628211ULL;
	return h;
}

/* returns 1 if inserted, 0 if present */
static int strset_add(strset_t *s, const char *str)
{
	if ((s->n + 1) * 2 > s->cap) {
		size_t nc = s->cap ? s->cap * 2 : 64;
		char **nv = xmalloc(nc * sizeof(char *));
		memset(nv, 0, nc * sizeof(char *));
		for (size_t i = 0; i < s->cap; i++)
			if (s->v[i]) {
				size_t j = fnv1a(s->v[i]) & (nc - 1);
				while (nv[j])
					j = (j + 1) & (nc - 1);
				nv[j] = s->v[i];
			}
		free(s->v);
		s->v = nv;
		s->cap = nc;
		s->mask = nc - 1;
	}
	size_t j = fnv1a(str) & s->mask;
	while (s->v[j]) {
		if (strcmp(s->v[j], str) == 0)
			return 0;
		j = (j + 1) & s->mask;
	}
	s->v[j] = xstrdup(str);
	s->n++;
	return 1;
}

static void strset_free(strset_t *s)
{
	for (size_t i = 0; i < s->cap; i++)
		free(s->v[i]);
	free(s->v);
	memset(s, 0, sizeof *s);
}

static void add_folder(rng_t *r, uint32_t u, int kind, const char *utf8name,
		       uint16_t year)
{
	char enc[512];
	mutf7_encode(utf8name, enc, sizeof enc);
	GROW(CF, nCF, capCF);
	cfolder_t *f = &CF[nCF++];
	memset(f, 0, sizeof *f);
	f->user = u;
	f->kind = (uint8_t)kind;
	f->year = year;
	f->name = xstrdup(enc);
	char p[PATHMAX];
	if (kind == FK_INBOX) {
		f->path = xstrdup(CU[u].maildir);
	} else {
		char dn[600];
		snprintf(dn, sizeof dn, ".%s", enc);
		pjoin(p, CU[u].maildir, dn);
		f->path = xstrdup(p);
	}
	uint32_t w;
	switch (kind) {
	case FK_INBOX: w = 400; break;
	case FK_SENT: w = 150; break;
	case FK_ARCHIVE: w = 120; break;
	case FK_ARCHIVE_YEAR: w = 80; break;
	case FK_TRASH: w = 40; break;
	case FK_JUNK: w = 30; break;
	case FK_DRAFTS: w = 4; break;
	default: w = 50; break;
	}
	f->weight = (uint32_t)(w * rng_range(r, 50, 150) / 100);
	if (f->weight == 0)
		f->weight = 1;
	uint32_t ppm_kw = kind == FK_INBOX ? 300000 : kind == FK_JUNK ? 600000 : 100000;
	if (rng_ppm(r, ppm_kw))
		f->nkw = (uint8_t)rng_range(r, kind == FK_JUNK ? 2 : 1, 5);
	cuser_t *cu = &CU[u];
	/* folders only a logged-in user writes to end at the last login */
	int delivered = kind == FK_INBOX || kind == FK_JUNK || kind == FK_USER;
	uint32_t lo = cu->A, hi = delivered ? g_T0 - 60 : cu->L;
	switch (kind) {
	case FK_TRASH: lo = hi > 60 * DAY ? hi - 60 * DAY : lo; break;
	case FK_JUNK: lo = hi > 30 * DAY ? hi - 30 * DAY : lo; break;
	case FK_DRAFTS: lo = hi > YEAR ? hi - YEAR : lo; break;
	case FK_ARCHIVE: hi = lo + (uint32_t)((uint64_t)(hi - lo) * 7 / 10); break;
	case FK_ARCHIVE_YEAR: {
		/* days from 1970 to Jan 1 of year, valid 1970..2099 */
		uint32_t y = year, days = 0;
		for (uint32_t yy = 1970; yy < y; yy++)
			days += (yy % 4 == 0) ? 366 : 365;
		uint32_t y0 = days * DAY;
		uint32_t y1 = y0 + ((y % 4 == 0) ? 366 : 365) * DAY;
		uint32_t nlo = lo > y0 ? lo : y0, nhi = hi < y1 ? hi : y1;
		if (nlo < nhi) {
			lo = nlo;
			hi = nhi;
		}
		break;
	}
	default: break;
	}
	if (lo < cu->A)
		lo = cu->A;
	if (hi <= lo)
		hi = lo + 1;
	f->tmin = lo;
	f->tmax = hi;
	f->guid_hi = rng_next(r);
	f->guid_lo = rng_next(r);
}

static char **g_domains;
static uint32_t g_ndomains;

static const char *cdomain_name(uint32_t d)
{
	return g_domains[d];
}

static void plan_user_folders(rng_t *r, uint32_t u)
{
	cuser_t *cu = &CU[u];
	cu->f0 = (uint32_t)nCF;
	int loc = cu->localized;
	add_folder(r, u, FK_INBOX, "", 0);
	if (rng_ppm(r, 950000))
		add_folder(r, u, FK_SENT, loc ? "Gesendete Elemente" : "Sent", 0);
	if (rng_ppm(r, 900000))
		add_folder(r, u, FK_TRASH, loc ? "Gelöschte Elemente" : "Trash", 0);
	if (rng_ppm(r, 850000))
		add_folder(r, u, FK_DRAFTS, loc ? "Entwürfe" : "Drafts", 0);
	if (rng_ppm(r, 400000))
		add_folder(r, u, FK_JUNK, loc ? "Junk-E-Mail" : "Junk", 0);
	if (rng_ppm(r, 450000)) {
		add_folder(r, u, FK_ARCHIVE, "Archive", 0);
		if (rng_ppm(r, 600000))
			add_folder(r, u, FK_ARCHIVE_YEAR, "Archive.2023", 2023);
		if (rng_ppm(r, 300000))
			add_folder(r, u, FK_ARCHIVE_YEAR, "Archive.2022", 2022);
	}
	int nuser = 0;
	while (nuser < 12 && rng_ppm(r, 600000))
		nuser++;
	uint64_t used = 0;
	for (int i = 0; i < nuser; i++) {
		uint32_t k = (uint32_t)rng_below(r, NELEM(ufolder_pool));
		if (used & (1ULL << k))
			continue;
		used |= 1ULL << k;
		add_folder(r, u, FK_USER, ufolder_pool[k], 0);
		if (rng_ppm(r, 250000)) {
			char nm[256];
			snprintf(nm, sizeof nm, "%s.%s", ufolder_pool[k],
				 subfolder_pool[rng_below(r, NELEM(subfolder_pool))]);
			add_folder(r, u, FK_USER, nm, 0);
		}
	}
	cu->nf = (uint32_t)nCF - cu->f0;
	/* uidvalidity: folder creation time, unique within the user */
	uint32_t prev = 0;
	for (uint32_t i = 0; i < cu->nf; i++) {
		cfolder_t *f = &CF[cu->f0 + i];
		uint32_t c = f->kind == FK_INBOX ? cu->A - (uint32_t)rng_range(r, 60, 3 * DAY)
						 : f->tmin - (uint32_t)rng_range(r, 60, 20 * DAY);
		if (c < cu->A - 30 * DAY)
			c = cu->A - 30 * DAY;
		if (c <= prev)
			c = prev + 1;
		prev = c;
		f->uidvalidity = c;
		f->ctime = c;
	}
}

static void plan_native(rng_t *r, uint32_t u, uint32_t nmsg)
{
	cuser_t *cu = &CU[u];
	uint64_t wsum = 0;
	for (uint32_t i = 0; i < cu->nf; i++)
		wsum += CF[cu->f0 + i].weight;
	for (uint32_t m = 0; m < nmsg; m++) {
		uint64_t x = rng_below(r, wsum);
		uint32_t fi = cu->f0;
		for (uint32_t i = 0; i < cu->nf; i++) {
			if (x < CF[cu->f0 + i].weight) {
				fi = cu->f0 + i;
				break;
			}
			x -= CF[cu->f0 + i].weight;
		}
		cfolder_t *f = &CF[fi];
		uint32_t ei = new_entry();
		entry_t *e = &E[ei];
		e->folder = fi;
		e->owner = ei;
		e->sec = (uint32_t)rng_range(r, f->tmin, f->tmax - 1);
		e->usec = (uint32_t)rng_below(r, 1000000);
		int modern = e->sec >= g_T0 - 300 * DAY;
		e->style = (uint8_t)modern;
		int appended = f->kind == FK_SENT || f->kind == FK_DRAFTS;
		if (appended)
			e->host = (uint8_t)(H_IMAP1 + rng_below(r, 2));
		else if (modern)
			e->host = (uint8_t)(H_MX1 + rng_below(r, 3));
		else
			e->host = (uint8_t)(rng_ppm(r, 300000) ? H_OLD
							       : H_MX1 + rng_below(r, 2));
		e->pid = rand_pid(r, modern);
		e->ino = (uint32_t)rng_range(r, 2000, 0xFFFFFFF0u);
		e->n = (uint16_t)(rng_ppm(r, 100000) ? rng_range(r, 1, 4) : 0);
		int sievable = f->kind == FK_INBOX || f->kind == FK_JUNK ||
			       (f->kind == FK_USER && rng_ppm(r, 300000));
		e->in_new = (uint8_t)(sievable && e->sec > cu->L);
		if (!e->in_new)
			pick_flags(r, f->kind, f->nkw, &e->flags, &e->kw);
		int attach;
		e->target = pick_size(r, &attach);
		e->attach = (uint8_t)attach;
		folder_add(f, ei);
	}
}

static void plan_links(rng_t *r)
{
	size_t nat = nE, elig_copy = 0, inbox = 0;
	for (size_t i = 0; i < nat; i++) {
		const cfolder_t *f = &CF[E[i].folder];
		if (f->kind == FK_INBOX)
			inbox++;
		if (!E[i].in_new && f->kind != FK_DRAFTS && CU[f->user].nf > 2)
			elig_copy++;
	}
	uint32_t p_copy = elig_copy ? (uint32_t)(50000ULL * nat / elig_copy) : 0;
	uint32_t p_x = inbox && nCU > 1 ? (uint32_t)(20000ULL * nat / inbox) : 0;
	for (size_t i = 0; i < nat; i++) {
		const entry_t *src = &E[i];
		uint32_t sf = src->folder;
		const cfolder_t *f = &CF[sf];
		const cuser_t *cu = &CU[f->user];
		/* IMAP COPY within the user */
		if (!src->in_new && f->kind != FK_DRAFTS && cu->nf > 2 &&
		    rng_ppm(r, p_copy)) {
			uint32_t df = sf;
			for (int tries = 0; tries < 8 && (df == sf || CF[df].kind == FK_DRAFTS);
			     tries++)
				df = cu->f0 + (uint32_t)rng_below(r, cu->nf);
			if (df != sf && CF[df].kind != FK_DRAFTS) {
				uint32_t room = cu->L > src->sec + 1 ? cu->L - src->sec - 1 : 0;
				if (room > 90 * DAY)
					room = 90 * DAY;
				uint32_t ei = new_entry();
				src = &E[i];
				entry_t *e = &E[ei];
				e->folder = df;
				e->owner = (uint32_t)i;
				e->sec = src->sec + 1 + (uint32_t)rng_skew(r, room);
				e->usec = (uint32_t)rng_below(r, 1000000);
				e->style = 1;
				e->host = (uint8_t)(H_IMAP1 + rng_below(r, 2));
				e->pid = rand_pid(r, 1);
				e->flags = src->flags;
				e->kw = CF[df].nkw ? (uint8_t)(src->kw & ((1u << CF[df].nkw) - 1)) : 0;
				folder_add(&CF[df], ei);
			}
		}
		src = &E[i];
		/* LMTP delivery to several recipients */
		if (f->kind == FK_INBOX && rng_ppm(r, p_x)) {
			uint32_t ou = f->user;
			for (int tries = 0; tries < 8 && ou == f->user; tries++) {
				if (rng_ppm(r, 800000)) {
					/* same domain: users of a domain are contiguous */
					uint32_t d = cu->domain, a = f->user, b = f->user;
					while (a > 0 && CU[a - 1].domain == d)
						a--;
					while (b + 1 < nCU && CU[b + 1].domain == d)
						b++;
					ou = a + (uint32_t)rng_below(r, b - a + 1);
				} else {
					ou = (uint32_t)rng_below(r, nCU);
				}
			}
			if (ou == f->user)
				continue;
			const cuser_t *du = &CU[ou];
			uint32_t df = du->f0; /* INBOX */
			uint32_t ei = new_entry();
			src = &E[i];
			entry_t *e = &E[ei];
			*e = *src;
			e->folder = df;
			e->owner = (uint32_t)i;
			e->usec = src->usec + 1 + (uint32_t)rng_below(r, 3000);
			if (e->usec >= 1000000) {
				e->usec -= 1000000;
				e->sec++;
			}
			e->n = (uint16_t)(src->n + 1);
			e->in_new = (uint8_t)(e->sec > du->L);
			e->flags = e->kw = 0;
			if (!e->in_new)
				pick_flags(r, FK_INBOX, CF[df].nkw, &e->flags, &e->kw);
			folder_add(&CF[df], ei);
		}
	}
}

static void assign_uids(rng_t *r)
{
	for (size_t fi = 0; fi < nCF; fi++) {
		cfolder_t *f = &CF[fi];
		if (f->nents > 1)
			qsort(f->ents, f->nents, sizeof(uint32_t), cmp_ent_time);
		/* names must be unique: make (sec, usec) strictly increasing */
		for (uint32_t i = 1; i < f->nents; i++) {
			entry_t *p = &E[f->ents[i - 1]], *e = &E[f->ents[i]];
			if (e->sec < p->sec || (e->sec == p->sec && e->usec <= p->usec)) {
				e->sec = p->sec;
				e->usec = p->usec + 1;
				if (e->usec >= 1000000) {
					e->usec = 0;
					e->sec++;
				}
			}
		}
		uint32_t uid = 1;
		if (rng_ppm(r, 300000))
			uid += (uint32_t)rng_below(r, 50);
		for (uint32_t i = 0; i < f->nents; i++) {
			E[f->ents[i]].uid = uid;
			uid += 1;
			if (rng_ppm(r, 80000))
				uid += (uint32_t)rng_range(r, 1, 20);
		}
		f->nextuid = uid;
		if (rng_ppm(r, 200000))
			f->nextuid += (uint32_t)rng_range(r, 1, 5);
	}
}

static void gen_for_entry(buf_t *b, const entry_t *e)
{
	rng_t cr;
	rng_seed(&cr, g_seed ^ (0xC0FFEE0000000000ULL + (uint64_t)e->owner * 0x9E3779B97F4A7C15ULL));
	const cfolder_t *f = &CF[e->folder];
	const cuser_t *cu = &CU[f->user];
	msgmeta_t m;
	m.user = cu->name;
	m.domain = domain_names[0];
	m.t = e->sec;
	m.host = hosts[e->host];
	m.sent = f->kind == FK_SENT || f->kind == FK_DRAFTS;
	m.domain = cdomain_name(cu->domain);
	gen_message(b, &cr, &m, e->target, e->attach);
}


static void write_log_blob(buf_t *b, rng_t *r, uint32_t indexid, uint32_t seq,
			   size_t total)
{
	b->len = 0;
	buf_reserve(b, 40);
	memset(b->p, 0, 40);
	b->len = 40;
	b->p[0] = 1;  /* major */
	b->p[1] = 3;  /* minor */
	b->p[2] = 40; /* hdr_size */
	put_le32(b, 4, indexid);
	put_le32(b, 8, seq);
	put_le32(b, 12, seq ? seq - 1 : 0);
	put_le32(b, 20, indexid + seq * 1000);
	while (b->len + 16 < total) {
		uint32_t sz = (uint32_t)(8 + 4 * rng_range(r, 2, 30));
		size_t off = b->len;
		buf_rand(b, r, sz);
		put_le32(b, off, sz);
		put_le32(b, off + 4, (uint32_t)(1u << rng_below(r, 12)));
	}
}

static void write_index_blob(buf_t *b, rng_t *r, const cfolder_t *f)
{
	b->len = 0;
	size_t hdr = 256;
	buf_reserve(b, hdr);
	memset(b->p, 0, hdr);
	b->len = hdr;
	b->p[0] = 7;
	b->p[1] = 3;
	b->p[2] = 120; /* base_header_size */
	put_le32(b, 4, (uint32_t)hdr);
	put_le32(b, 8, 12); /* record_size */
	b->p[12] = 1;       /* compat: little endian */
	put_le32(b, 16, f->uidvalidity);
	put_le32(b, 24, f->uidvalidity);
	put_le32(b, 28, f->nextuid);
	put_le32(b, 32, f->nents);
	for (uint32_t i = 0; i < f->nents; i++) {
		size_t off = b->len;
		buf_rand(b, r, 12);
		put_le32(b, off, E[f->ents[i]].uid);
		b->p[off + 4] = (char)E[f->ents[i]].flags;
	}
}

static void create_control(rng_t *r, uint32_t fi, buf_t *b)
{
	cfolder_t *f = &CF[fi];
	cuser_t *cu = &CU[f->user];
	char p[PATHMAX], name[512];
	uint32_t last = f->ctime;
	for (uint32_t i = 0; i < f->nents; i++)
		if (E[f->ents[i]].sec > last)
			last = E[f->ents[i]].sec;
	uint32_t login = cu->L > last ? cu->L : last;

	/* dovecot-uidlist */
	b->len = 0;
	buf_printf(b, "3 V%" PRIu32 " N%" PRIu32 " G%016" PRIx64 "%016" PRIx64 "\n",
		   f->uidvalidity, f->nextuid, f->guid_hi, f->guid_lo);
	for (uint32_t i = 0; i < f->nents; i++) {
		const entry_t *e = &E[f->ents[i]];
		fmt_name(name, sizeof name, e);
		buf_printf(b, "%" PRIu32 " :%s\n", e->uid, name);
	}
	pjoin(p, f->path, "dovecot-uidlist");
	write_new_file(p, b->p, b->len, last, 0);

	/* dovecot-keywords */
	if (f->nkw) {
		b->len = 0;
		for (int i = 0; i < f->nkw; i++)
			buf_printf(b, "%d %s\n", i,
				   (f->kind == FK_JUNK && i == 1) ? "Junk" : kw_names[i]);
		pjoin(p, f->path, "dovecot-keywords");
		write_new_file(p, b->p, b->len, f->ctime + 3600, 0);
	}

	/* dovecot.index.log (+ an older .log.2) */
	uint32_t seq = (uint32_t)rng_range(r, 1, 40);
	write_log_blob(b, r, f->uidvalidity, seq, (size_t)rng_range(r, 200, 32768));
	pjoin(p, f->path, "dovecot.index.log");
	write_new_file(p, b->p, b->len, login, 0);
	if (seq > 1 && rng_ppm(r, 300000)) {
		write_log_blob(b, r, f->uidvalidity, seq - 1,
			       (size_t)rng_range(r, 8192, 40000));
		pjoin(p, f->path, "dovecot.index.log.2");
		write_new_file(p, b->p, b->len, login > 7 * DAY ? login - 7 * DAY : login, 0);
	}
	/* dovecot.index */
	if (f->nents > 0 && rng_ppm(r, 800000)) {
		write_index_blob(b, r, f);
		pjoin(p, f->path, "dovecot.index");
		write_new_file(p, b->p, b->len, login, 0);
	}
	/* dovecot.index.cache */
	if (f->nents > 0 && rng_ppm(r, 800000)) {
		b->len = 0;
		buf_rand(b, r, (size_t)rng_range(r, 1024, 8192));
		pjoin(p, f->path, "dovecot.index.cache");
		write_new_file(p, b->p, b->len, login, 0);
	}
	/* a partial delivery in tmp/ */
	if (rng_ppm(r, f->kind == FK_INBOX ? 150000 : 50000)) {
		uint32_t t = rng_ppm(r, 500000) ? g_T0 - (uint32_t)rng_range(r, 1, 120)
						: g_T0 - (uint32_t)rng_range(r, 2 * DAY, 200 * DAY);
		uint32_t usec = (uint32_t)rng_below(r, 1000000);
		uint32_t pid = rand_pid(r, 1);
		const char *h = hosts[H_MX1 + rng_below(r, 3)];
		msgmeta_t m = {cu->name, cdomain_name(cu->domain), t, h, 0};
		int attach;
		uint32_t target = pick_size(r, &attach);
		gen_message(b, r, &m, target, attach);
		size_t cut = (size_t)rng_below(r, b->len);
		snprintf(name, sizeof name, "%" PRIu32 ".M%" PRIu32 "P%" PRIu32 ".%s",
			 t, usec, pid, h);
		pjoin3(p, f->path, "tmp", name);
		write_new_file(p, b->p, cut, t, 0);
	}
}

static void create_user_files(rng_t *r, uint32_t u, buf_t *b)
{
	cuser_t *cu = &CU[u];
	char p[PATHMAX], q[PATHMAX], nm[128];
	uint32_t maxv = 0;
	uint64_t qbytes = 0, qcount = 0;
	/* subscriptions (Dovecot reads plain one-name-per-line files) */
	b->len = 0;
	for (uint32_t i = 0; i < cu->nf; i++) {
		const cfolder_t *f = &CF[cu->f0 + i];
		if (f->uidvalidity > maxv)
			maxv = f->uidvalidity;
		for (uint32_t j = 0; j < f->nents; j++) {
			qbytes += E[E[f->ents[j]].owner].size;
			qcount++;
		}
		if (f->kind == FK_INBOX || (f->kind == FK_USER && rng_ppm(r, 100000)))
			continue;
		buf_printf(b, "%s\n", f->name);
	}
	pjoin(p, cu->maildir, "subscriptions");
	write_new_file(p, b->p, b->len, cu->A + DAY, 0);
	/* dovecot-uidvalidity holds the last uidvalidity given out; the empty
	 * dovecot-uidvalidity.<hex> file is renamed each time it changes */
	b->len = 0;
	buf_printf(b, "%08" PRIx32, maxv);
	pjoin(p, cu->maildir, "dovecot-uidvalidity");
	write_new_file(p, b->p, b->len, maxv, 0);
	snprintf(nm, sizeof nm, "dovecot-uidvalidity.%08" PRIx32, maxv);
	pjoin(p, cu->maildir, nm);
	write_new_file(p, "", 0, maxv, 0);
	/* mailbox list index */
	if (rng_ppm(r, 700000)) {
		uint32_t seq = (uint32_t)rng_range(r, 1, 9);
		size_t len = (size_t)rng_range(r, 300, 4096);
		write_log_blob(b, r, cu->A, seq, len);
		pjoin(p, cu->maildir, "dovecot.list.index.log");
		write_new_file(p, b->p, b->len, cu->L, 0);
		if (rng_ppm(r, 700000)) {
			b->len = 0;
			buf_rand(b, r, (size_t)rng_range(r, 200, 2000));
			pjoin(p, cu->maildir, "dovecot.list.index");
			write_new_file(p, b->p, b->len, cu->L, 0);
		}
	}
	if (rng_ppm(r, 300000)) {
		b->len = 0;
		buf_rand(b, r, 24 * (size_t)rng_range(r, 1, 12));
		pjoin(p, cu->maildir, "dovecot.mailbox.log");
		write_new_file(p, b->p, b->len, cu->L, 0);
	}
	if (rng_ppm(r, 300000)) {
		b->len = 0;
		buf_printf(b, "%" PRIu64 "S\n%" PRIu64 " %" PRIu64 "\n",
			   (uint64_t)rng_range(r, 1, 10) << 30, qbytes, qcount);
		pjoin(p, cu->maildir, "maildirsize");
		write_new_file(p, b->p, b->len, cu->L, 0);
	}
	/* Pigeonhole: ~/sieve/roundcube.sieve, ~/.dovecot.sieve symlink, binary */
	if (rng_ppm(r, 300000)) {
		pjoin(p, cu->home, "sieve");
		xmkdir(p);
		b->len = 0;
		buf_printf(b,
			   "require [\"fileinto\",\"vacation\"];\n"
			   "# rule:[spam]\nif header :contains \"X-Spam-Flag\" \"YES\" "
			   "{\n\tfileinto \"Junk\";\n\tstop;\n}\n");
		pjoin(q, p, "roundcube.sieve");
		write_new_file(q, b->p, b->len, cu->A + 2 * DAY, 0);
		pjoin(p, cu->home, ".dovecot.sieve");
		if (symlink("sieve/roundcube.sieve", p) < 0)
			die_path("symlink", p);
		st.symlinks++;
		b->len = 0;
		buf_rand(b, r, (size_t)rng_range(r, 300, 900));
		pjoin(p, cu->home, ".dovecot.svbin");
		write_new_file(p, b->p, b->len, cu->A + 2 * DAY, 0);
	}
	/* mid-rotation: dovecot.index.log.2 is the same inode as .log */
	if (rng_ppm(r, 250000)) {
		uint32_t fi = cu->f0 + (uint32_t)rng_below(r, cu->nf);
		pjoin(p, CF[fi].path, "dovecot.index.log.2");
		if (!path_exists(p)) {
			pjoin(q, CF[fi].path, "dovecot.index.log");
			xlink(q, p);
		}
	}
}

static uint64_t parse_u64(const char *opt, const char *s, uint64_t max)
{
	char *end;
	errno = 0;
	if (!s || !*s || *s == '-')
		die_usage("%s needs a non-negative integer", opt);
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || *end || v > max)
		die_usage("bad value for %s: %s", opt, s);
	return v;
}

static double parse_double(const char *opt, const char *s, double min,
			   double max)
{
	char *end;
	errno = 0;
	if (!s || !*s)
		die_usage("%s needs a number", opt);
	double v = strtod(s, &end);
	if (errno || *end || !(v >= min && v <= max))
		die_usage("bad value for %s: %s", opt, s);
	return v;
}

static char *root_path(const char *s)
{
	char *r = xstrdup(s);
	size_t n = strlen(r);
	while (n > 1 && r[n - 1] == '/')
		r[--n] = 0;
	if (n == 0)
		die_usage("empty ROOT");
	return r;
}

static const uint64_t *g_frac;

static int cmp_frac(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	if (g_frac[x] != g_frac[y])
		return g_frac[x] > g_frac[y] ? -1 : 1;
	return x < y ? -1 : x > y;
}

static int do_create(const char *root, uint32_t nusers, uint32_t ndomains,
		     uint32_t msgs, uint64_t seed, uint32_t T0)
{
	rng_t R;
	g_seed = seed;
	g_T0 = T0;
	rng_seed(&R, seed ^ 0x6372656174650000ULL);
	if (T0 < 8 * YEAR)
		die_usage("--time must be after 1978");
	if (ndomains > nusers)
		ndomains = nusers ? nusers : 1;

	/* domains */
	g_ndomains = ndomains;
	g_domains = xmalloc(sizeof(char *) * (ndomains ? ndomains : 1));
	for (uint32_t d = 0; d < ndomains; d++) {
		char nm[64];
		if (d < NELEM(domain_names))
			snprintf(nm, sizeof nm, "%s", domain_names[d]);
		else
			snprintf(nm, sizeof nm, "d%03" PRIu32 ".example", d);
		g_domains[d] = xstrdup(nm);
	}
	/* users: the first D users seed each domain, the rest Zipf-like */
	uint32_t *udom = xmalloc(sizeof(uint32_t) * (nusers ? nusers : 1));
	uint64_t zs = 0;
	for (uint32_t d = 0; d < ndomains; d++)
		zs += 1000000 / (d + 1);
	for (uint32_t u = 0; u < nusers; u++) {
		if (u < ndomains) {
			udom[u] = u;
			continue;
		}
		uint64_t x = rng_below(&R, zs);
		uint32_t d = 0;
		while (d + 1 < ndomains && x >= 1000000 / (d + 1)) {
			x -= 1000000 / (d + 1);
			d++;
		}
		udom[u] = d;
	}
	/* order users by domain (stable), so a domain's users are contiguous */
	CU = xmalloc(sizeof(cuser_t) * (nusers ? nusers : 1));
	nCU = 0;
	strset_t *names = xmalloc(sizeof(strset_t) * (ndomains ? ndomains : 1));
	memset(names, 0, sizeof(strset_t) * (ndomains ? ndomains : 1));
	for (uint32_t d = 0; d < ndomains; d++) {
		for (uint32_t u = 0; u < nusers; u++) {
			if (udom[u] != d)
				continue;
			cuser_t *cu = &CU[nCU];
			memset(cu, 0, sizeof *cu);
			cu->domain = d;
			char nm[128];
			const char *fn = first_names[rng_below(&R, NELEM(first_names))];
			const char *ln = last_names[rng_below(&R, NELEM(last_names))];
			switch (rng_below(&R, 4)) {
			case 0: snprintf(nm, sizeof nm, "%s.%s", fn, ln); break;
			case 1: snprintf(nm, sizeof nm, "%c.%s", fn[0], ln); break;
			case 2: snprintf(nm, sizeof nm, "%s", fn); break;
			default: snprintf(nm, sizeof nm, "%s%s", fn, ln); break;
			}
			if (!strset_add(&names[d], nm)) {
				size_t l = strlen(nm);
				for (uint32_t k = 2;; k++) {
					snprintf(nm + l, sizeof nm - l, "%" PRIu32, k);
					if (strset_add(&names[d], nm))
						break;
				}
			}
			cu->name = xstrdup(nm);
			char p[PATHMAX], q[PATHMAX];
			pjoin3(p, root, g_domains[d], nm);
			cu->home = xstrdup(p);
			pjoin(q, p, "Maildir");
			cu->maildir = xstrdup(q);
			cu->A = T0 - 180 * DAY - (uint32_t)rng_below(&R, 6 * YEAR);
			cu->L = T0 - 1 - (uint32_t)rng_skew(&R, 14 * DAY);
			cu->localized = rng_ppm(&R, 100000);
			nCU++;
		}
		strset_free(&names[d]);
	}
	free(names);
	free(udom);

	/* plan: per-user message counts from the multiplier table, scaled so
	 * that they add up to exactly users * msgs (predictable tree size) */
	uint64_t *cnt = xmalloc(sizeof(uint64_t) * (nCU + 1));
	uint64_t *frac = xmalloc(sizeof(uint64_t) * (nCU + 1));
	uint64_t msum = 0, want = (uint64_t)msgs * nCU, got = 0;
	for (uint32_t u = 0; u < nCU; u++) {
		cnt[u] = table_pick(&R, mult_tab, NELEM(mult_tab));
		msum += cnt[u];
	}
	for (uint32_t u = 0; u < nCU; u++) {
		uint64_t num = want * cnt[u]; /* < 2^64: want <= 1e13, cnt <= 1e4 */
		cnt[u] = num / msum;
		frac[u] = num % msum;
		got += cnt[u];
	}
	if (got < want) { /* largest remainders get one more, lowest index on ties */
		uint32_t *ord = xmalloc(sizeof(uint32_t) * (nCU + 1));
		for (uint32_t u = 0; u < nCU; u++)
			ord[u] = u;
		g_frac = frac;
		qsort(ord, nCU, sizeof(uint32_t), cmp_frac);
		for (uint64_t k = 0; got < want; k++, got++)
			cnt[ord[k]]++;
		free(ord);
	}
	for (uint32_t u = 0; u < nCU; u++) {
		plan_user_folders(&R, u);
		plan_native(&R, u, (uint32_t)(cnt[u] > 50000000 ? 50000000 : cnt[u]));
	}
	free(cnt);
	free(frac);
	plan_links(&R);
	assign_uids(&R);

	/* write: directories and message files */
	struct stat sb;
	if (mkdir(root, 0755) < 0) {
		if (errno != EEXIST || stat(root, &sb) < 0 || !S_ISDIR(sb.st_mode))
			die_path("mkdir", root);
	}
	buf_t b = {0};
	char p[PATHMAX], name[512];
	for (uint32_t u = 0; u < nCU; u++) {
		cuser_t *cu = &CU[u];
		if (u == 0 || CU[u - 1].domain != cu->domain) {
			pjoin(p, root, g_domains[cu->domain]);
			xmkdir(p);
		}
		xmkdir(cu->home);
		xmkdir(cu->maildir);
		for (uint32_t i = 0; i < cu->nf; i++) {
			cfolder_t *f = &CF[cu->f0 + i];
			if (f->kind != FK_INBOX)
				xmkdir(f->path);
			pjoin(p, f->path, "cur");
			xmkdir(p);
			pjoin(p, f->path, "new");
			xmkdir(p);
			pjoin(p, f->path, "tmp");
			xmkdir(p);
			if (f->kind != FK_INBOX) {
				pjoin(p, f->path, "maildirfolder");
				write_new_file(p, "", 0, f->ctime, 0);
			}
			for (uint32_t j = 0; j < f->nents; j++) {
				entry_t *e = &E[f->ents[j]];
				if (e->owner != f->ents[j])
					continue;
				gen_for_entry(&b, e);
				e->size = (uint32_t)b.len;
				e->lines = count_lf(b.p, b.len);
				fmt_name(name, sizeof name, e);
				pjoin3(p, f->path, e->in_new ? "new" : "cur", name);
				write_new_file(p, b.p, b.len, e->sec, 0);
			}
		}
	}
	/* hard links: COPY within a user, LMTP to several users */
	char q[PATHMAX];
	for (size_t fi = 0; fi < nCF; fi++) {
		cfolder_t *f = &CF[fi];
		for (uint32_t j = 0; j < f->nents; j++) {
			entry_t *e = &E[f->ents[j]];
			if (e->owner == f->ents[j])
				continue;
			entry_path(p, &E[e->owner]);
			entry_path(q, e);
			xlink(p, q);
		}
	}
	uint64_t msg_names = nE;
	/* control files */
	for (size_t fi = 0; fi < nCF; fi++)
		create_control(&R, (uint32_t)fi, &b);
	for (uint32_t u = 0; u < nCU; u++)
		create_user_files(&R, u, &b);

	printf("create: users=%zu domains=%" PRIu32 " folders=%zu messages=%" PRIu64
	       " files=%" PRIu64 " links=%" PRIu64 " dirs=%" PRIu64
	       " symlinks=%" PRIu64 " bytes=%" PRIu64 " entries=%" PRIu64 "\n",
	       nCU, ndomains, nCF, msg_names, st.files, st.links, st.dirs,
	       st.symlinks, st.bytes, st.files + st.dirs + st.symlinks);
	free(b.p);
	return 0;
}

/* ------------------------------------------------------------------ */
/* mutate                                                              */

enum { OP_EXPUNGE, OP_MOVE, OP_FLAG, OP_COPY, OP_DELIVER };

typedef struct {
	uint8_t type, mode, nextra;
	uint32_t seq, idx, dest;
	uint32_t extra[3];
} op_t;

typedef struct {
	uint32_t user;
	char *name; /* without leading dot; "" = INBOX */
	char *path;
	uint32_t ncur, nnew;
	op_t *ops;
	size_t nops, capops;
	strv_t pend; /* names added by this run, uidlist order */
	int touched, expunged;
	uint32_t changes;
} mfolder_t;

typedef struct {
	char *domain, *name, *maildir;
	uint32_t dom, f0, nf;
	uint64_t nmsg;
} muser_t;

static mfolder_t *MF;
static size_t nMF, capMF;
static muser_t *MU;
static size_t nMU, capMU;

static struct {
	uint64_t delivered, lmtp_links, moved, flagged, expunged, copied,
		imap_moves, fcreated, frenamed, fdeleted, fdeleted_msgs,
		uid_appends, uid_rewrites, log_appends, log_rotations,
		index_replaced, cache_appends, tmp_partial, tmp_removed,
		extra_ops;
} ms;

static int64_t g_T;          /* timestamp of new messages */
static uint64_t clk_n, clk_step; /* unique (sec, usec) generator */
static uint32_t lmtp_pids[3][4], imap_pids[2][4];

static void next_stamp(rng_t *r, uint32_t *sec, uint32_t *usec)
{
	uint64_t v = clk_n * clk_step + rng_below(r, clk_step);
	clk_n++;
	*sec = (uint32_t)(g_T - (int64_t)(v / 1000000));
	*usec = (uint32_t)(v % 1000000);
}

static void mf_add_op(uint32_t f, op_t op)
{
	mfolder_t *m = &MF[f];
	op.seq = (uint32_t)m->nops;
	GROW(m->ops, m->nops, m->capops);
	m->ops[m->nops++] = op;
}

static void load_tree(const char *root)
{
	strv_t doms = {0}, users = {0}, fl = {0};
	char p[PATHMAX], q[PATHMAX];
	list_dir(root, &doms, 1);
	if (!is_dir(root)) {
		errno = ENOTDIR;
		die_path("not a directory:", root);
	}
	for (size_t d = 0; d < doms.n; d++) {
		pjoin(p, root, doms.v[d]);
		if (!is_dir(p))
			continue;
		list_dir(p, &users, 1);
		for (size_t u = 0; u < users.n; u++) {
			pjoin3(q, p, users.v[u], "Maildir");
			if (!is_dir(q))
				continue;
			GROW(MU, nMU, capMU);
			muser_t *mu = &MU[nMU];
			memset(mu, 0, sizeof *mu);
			mu->domain = xstrdup(doms.v[d]);
			mu->name = xstrdup(users.v[u]);
			mu->maildir = xstrdup(q);
			mu->dom = (uint32_t)d;
			mu->f0 = (uint32_t)nMF;
			/* INBOX, then the .folders in sorted order */
			list_dir(q, &fl, 0);
			for (size_t i = 0; i <= fl.n; i++) {
				char fp[PATHMAX];
				const char *nm = "";
				if (i > 0) {
					nm = fl.v[i - 1];
					if (nm[0] != '.' || strcmp(nm, ".DOVECOT-TRASHED") == 0)
						continue;
					pjoin(fp, q, nm);
					if (!is_dir(fp))
						continue;
					nm++;
				} else {
					snprintf(fp, sizeof fp, "%s", q);
				}
				GROW(MF, nMF, capMF);
				mfolder_t *mf = &MF[nMF];
				memset(mf, 0, sizeof *mf);
				mf->user = (uint32_t)nMU;
				mf->name = xstrdup(nm);
				mf->path = xstrdup(fp);
				char cp[PATHMAX];
				pjoin(cp, fp, "cur");
				mf->ncur = count_dir(cp);
				pjoin(cp, fp, "new");
				mf->nnew = count_dir(cp);
				mu->nmsg += mf->ncur + mf->nnew;
				nMF++;
			}
			mu->nf = (uint32_t)nMF - mu->f0;
			nMU++;
		}
	}
	strv_free(&doms);
	strv_free(&users);
	strv_free(&fl);
}

/* index of the folder containing global position x in cum[] (size nMF+1) */
static uint32_t cum_find(const uint64_t *cum, size_t n, uint64_t x)
{
	size_t lo = 0, hi = n; /* cum[lo] <= x < cum[hi] */
	while (hi - lo > 1) {
		size_t mid = (lo + hi) / 2;
		if (cum[mid] <= x)
			lo = mid;
		else
			hi = mid;
	}
	return (uint32_t)lo;
}

static int name_is(const char *nm, const char *a)
{
	return strcmp(nm, a) == 0;
}

static int is_special(const char *nm)
{
	static const char *sp[] = {
		"Sent", "Trash", "Drafts", "Junk", "Archive",
		"Gesendete Elemente", "Gel&APY-schte Elemente", "Entw&APw-rfe",
		"Junk-E-Mail",
	};
	char top[512];
	snprintf(top, sizeof top, "%s", nm);
	char *dot = strchr(top, '.');
	if (dot)
		*dot = 0;
	for (size_t i = 0; i < NELEM(sp); i++)
		if (strcmp(top, sp[i]) == 0)
			return 1;
	return 0;
}

static int32_t user_folder(uint32_t u, const char *a, const char *b)
{
	const muser_t *mu = &MU[u];
	for (uint32_t i = 0; i < mu->nf; i++) {
		const char *nm = MF[mu->f0 + i].name;
		if (name_is(nm, a) || (b && name_is(nm, b)))
			return (int32_t)(mu->f0 + i);
	}
	return -1;
}

static uint32_t pick_other_user(rng_t *r, uint32_t u)
{
	if (nMU < 2)
		return u;
	if (rng_ppm(r, 800000)) {
		uint32_t a = u, b = u, d = MU[u].dom;
		while (a > 0 && MU[a - 1].dom == d)
			a--;
		while (b + 1 < nMU && MU[b + 1].dom == d)
			b++;
		if (b > a) {
			uint32_t o = a + (uint32_t)rng_below(r, b - a);
			if (o >= u)
				o++;
			return o;
		}
	}
	uint32_t o = (uint32_t)rng_below(r, nMU - 1);
	if (o >= u)
		o++;
	return o;
}

static void plan_mutations(rng_t *r, double percent, uint64_t *K_out)
{
	uint64_t *cc = xmalloc(sizeof(uint64_t) * (nMF + 1));
	uint64_t *cn = xmalloc(sizeof(uint64_t) * (nMF + 1));
	uint64_t *ca = xmalloc(sizeof(uint64_t) * (nMF + 1));
	cc[0] = cn[0] = ca[0] = 0;
	for (size_t i = 0; i < nMF; i++) {
		cc[i + 1] = cc[i] + MF[i].ncur;
		cn[i + 1] = cn[i] + MF[i].nnew;
		ca[i + 1] = ca[i] + MF[i].ncur + MF[i].nnew;
	}
	uint64_t Nc = cc[nMF], Nn = cn[nMF], N = Nc + Nn;
	uint64_t K = (uint64_t)((double)N * percent / 100.0 + 0.5);
	if (K > N)
		K = N;
	*K_out = K;
	uint64_t n_move = K * 25 / 100, n_exp = K * 20 / 100, n_copy = K * 10 / 100;
	if (n_move > Nn)
		n_move = Nn;
	uint64_t n_flag = K - n_move - n_exp - n_copy;
	if (Nc == 0) {
		n_flag = 0;
		n_copy = 0;
	}
	uint64_t n_deliv = (uint64_t)((double)N * percent * 0.6 / 100.0 + 0.5);
	if (nMU == 0)
		n_deliv = 0;
	clk_step = 1000000 / (2 * n_deliv + n_copy + 2000);
	if (clk_step < 1)
		clk_step = 1;
	if (clk_step > 997)
		clk_step = 997;

	op_t op;
	for (uint64_t i = 0; i < n_move; i++) {
		uint64_t x = rng_below(r, Nn);
		uint32_t f = cum_find(cn, nMF + 1, x);
		memset(&op, 0, sizeof op);
		op.type = OP_MOVE;
		op.idx = (uint32_t)(x - cn[f]);
		mf_add_op(f, op);
	}
	for (uint64_t i = 0; i < n_flag; i++) {
		uint64_t x = rng_below(r, Nc);
		uint32_t f = cum_find(cc, nMF + 1, x);
		memset(&op, 0, sizeof op);
		op.type = OP_FLAG;
		op.idx = (uint32_t)(x - cc[f]);
		mf_add_op(f, op);
	}
	for (uint64_t i = 0; i < n_exp && N > 0; i++) {
		uint64_t x = rng_below(r, N);
		uint32_t f = cum_find(ca, nMF + 1, x);
		memset(&op, 0, sizeof op);
		op.type = OP_EXPUNGE;
		op.idx = (uint32_t)(x - ca[f]);
		mf_add_op(f, op);
	}
	for (uint64_t i = 0; i < n_copy; i++) {
		uint64_t x = rng_below(r, Nc);
		uint32_t f = cum_find(cc, nMF + 1, x);
		const muser_t *mu = &MU[MF[f].user];
		memset(&op, 0, sizeof op);
		op.idx = (uint32_t)(x - cc[f]);
		uint32_t d = f;
		for (int t = 0; t < 8 && mu->nf > 1 &&
				(d == f || strcmp(MF[d].name, "Drafts") == 0 ||
				 strcmp(MF[d].name, "Entw&APw-rfe") == 0);
		     t++)
			d = mu->f0 + (uint32_t)rng_below(r, mu->nf);
		if (d == f) {
			op.type = OP_FLAG;
		} else {
			op.type = OP_COPY;
			op.dest = d;
			op.mode = (uint8_t)rng_ppm(r, 300000);
		}
		mf_add_op(f, op);
	}
	/* deliveries: users weighted by mailbox size */
	uint64_t *cu = xmalloc(sizeof(uint64_t) * (nMU + 1));
	cu[0] = 0;
	for (size_t i = 0; i < nMU; i++)
		cu[i + 1] = cu[i] + MU[i].nmsg + 1;
	for (uint64_t i = 0; i < n_deliv; i++) {
		uint32_t u = cum_find(cu, nMU + 1, rng_below(r, cu[nMU]));
		const muser_t *mu = &MU[u];
		memset(&op, 0, sizeof op);
		op.type = OP_DELIVER;
		uint64_t x = rng_below(r, 1000000);
		int32_t f = (int32_t)mu->f0;
		if (x < 80000) {
			int32_t s = user_folder(u, "Sent", "Gesendete Elemente");
			if (s >= 0) {
				f = s;
				op.mode = 1;
			}
		} else if (x < 100000) {
			int32_t s = user_folder(u, "Drafts", "Entw&APw-rfe");
			if (s >= 0) {
				f = s;
				op.mode = 2;
			}
		} else if (x < 150000) {
			/* sieve fileinto: a user folder or Junk */
			uint32_t c[64], nc = 0;
			for (uint32_t k = 1; k < mu->nf && nc < 64; k++) {
				const char *nm = MF[mu->f0 + k].name;
				if (!is_special(nm) || strncmp(nm, "Junk", 4) == 0)
					c[nc++] = mu->f0 + k;
			}
			if (nc)
				f = (int32_t)c[rng_below(r, nc)];
		} else if (rng_ppm(r, 30000)) {
			op.nextra = (uint8_t)rng_range(r, 1, 3);
			for (int k = 0; k < op.nextra; k++)
				op.extra[k] = MU[pick_other_user(r, u)].f0;
		}
		mf_add_op((uint32_t)f, op);
	}
	free(cu);
	free(cc);
	free(cn);
	free(ca);
}

static int cmp_op(const void *a, const void *b)
{
	const op_t *x = a, *y = b;
	if (x->type != y->type)
		return x->type < y->type ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* base name: up to the first ':' */
static size_t base_len(const char *name)
{
	const char *c = strchr(name, ':');
	return c ? (size_t)(c - name) : strlen(name);
}

static int cmp_base(const void *a, const void *b)
{
	const char *x = *(char *const *)a, *y = *(char *const *)b;
	size_t lx = base_len(x), ly = base_len(y);
	size_t l = lx < ly ? lx : ly;
	int c = memcmp(x, y, l);
	if (c)
		return c;
	return lx < ly ? -1 : lx > ly;
}

/* sorted names of dir excluding those whose base is in excl (sorted by base) */
static void load_msgs(const char *dir, strv_t *out, char **excl, size_t nexcl)
{
	list_dir(dir, out, 1);
	if (!nexcl)
		return;
	size_t o = 0;
	for (size_t i = 0; i < out->n; i++) {
		if (bsearch(&out->v[i], excl, nexcl, sizeof(char *), cmp_base)) {
			free(out->v[i]);
			continue;
		}
		out->v[o++] = out->v[i];
	}
	out->n = o;
}

/* pick an unused index at or after idx (wrapping); -1 if none */
static long pick_unused(const unsigned char *used, size_t n, uint32_t idx)
{
	if (n == 0)
		return -1;
	size_t j = idx % n;
	for (size_t k = 0; k < n; k++, j = (j + 1) % n)
		if (!used[j])
			return (long)j;
	return -1;
}

static int folder_nkw(const mfolder_t *f)
{
	char p[PATHMAX];
	buf_t b = {0};
	pjoin(p, f->path, "dovecot-keywords");
	int n = 0;
	if (read_file(p, &b) == 0)
		n = (int)count_lf(b.p, b.len);
	free(b.p);
	return n > 26 ? 26 : n;
}

static void new_flags(rng_t *r, const char *old, int nkw, char *out)
{
	unsigned char set[128];
	memset(set, 0, sizeof set);
	for (const char *c = old; *c; c++)
		if ((unsigned char)*c < 128)
			set[(unsigned char)*c] = 1;
	char before[64];
	snprintf(before, sizeof before, "%s", old);
	uint64_t x = rng_below(r, 100);
	if (x < 40) {
		if (set['S'] && rng_ppm(r, 300000))
			set['S'] = 0;
		else
			set['S'] = 1;
	} else if (x < 65) {
		set['R'] = 1;
		set['S'] = 1;
	} else if (x < 80) {
		set['F'] = !set['F'];
	} else if (x < 90) {
		set['T'] = 1;
	} else if (nkw > 0) {
		int k = 'a' + (int)rng_below(r, (uint64_t)nkw);
		set[k] = !set[k];
	} else {
		set['F'] = !set['F'];
	}
	size_t o = 0;
	for (int c = 33; c < 127; c++)
		if (set[c])
			out[o++] = (char)c;
	out[o] = 0;
	if (strcmp(out, before) == 0) {
		set['F'] = !set['F'];
		o = 0;
		for (int c = 33; c < 127; c++)
			if (set[c])
				out[o++] = (char)c;
		out[o] = 0;
	}
}

/* ",S=<n>" / ",W=<n>" value from a base name, or -1 */
static long long name_field(const char *name, char key)
{
	size_t bl = base_len(name);
	for (size_t i = 0; i + 3 < bl; i++)
		if (name[i] == ',' && name[i + 1] == key && name[i + 2] == '=') {
			long long v = 0;
			size_t j = i + 3;
			if (name[j] < '0' || name[j] > '9')
				return -1;
			while (j < bl && name[j] >= '0' && name[j] <= '9')
				v = v * 10 + (name[j++] - '0');
			return v;
		}
	return -1;
}

static void mark_touched(uint32_t f)
{
	MF[f].touched = 1;
}

/* link src into folder df: dest/tmp/<base> then rename into cur|new */
static void link_into(rng_t *r, const char *src, uint32_t df, int host,
		      uint32_t pid, long long S, long long W, int to_new,
		      const char *flags)
{
	mfolder_t *d = &MF[df];
	char base[256], tmp[PATHMAX], fin[PATHMAX], name[320];
	for (;;) {
		uint32_t sec, usec;
		next_stamp(r, &sec, &usec);
		snprintf(base, sizeof base, "%" PRIu32 ".M%" PRIu32 "P%" PRIu32 ".%s",
			 sec, usec, pid, hosts[host]);
		if (W >= 0)
			snprintf(name, sizeof name, "%s,S=%lld,W=%lld%s%s", base, S, W,
				 to_new ? "" : ":2,", to_new ? "" : flags);
		else
			snprintf(name, sizeof name, "%s,S=%lld%s%s", base, S,
				 to_new ? "" : ":2,", to_new ? "" : flags);
		pjoin3(tmp, d->path, "tmp", base);
		pjoin3(fin, d->path, to_new ? "new" : "cur", name);
		if (path_exists(fin))
			continue;
		if (link(src, tmp) < 0) {
			if (errno == EEXIST)
				continue;
			int e = errno;
			fprintf(stderr, "%s: link %s -> %s: %s\n", prog, src, tmp,
				strerror(e));
			exit(1);
		}
		st.links++;
		xrename(tmp, fin);
		break;
	}
	strv_push(&d->pend, name);
	d->changes++;
	mark_touched(df);
}

static void deliver(rng_t *r, uint32_t fi, const op_t *op, buf_t *b)
{
	mfolder_t *f = &MF[fi];
	const muser_t *mu = &MU[f->user];
	char base[256], tmp[PATHMAX], fin[PATHMAX], name[320];
	int host, hidx;
	uint32_t pid;
	if (op->mode) {
		hidx = (int)rng_below(r, 2);
		host = H_IMAP1 + hidx;
		pid = imap_pids[hidx][rng_below(r, 4)];
	} else {
		hidx = (int)rng_below(r, 3);
		host = H_MX1 + hidx;
		pid = lmtp_pids[hidx][rng_below(r, 4)];
	}
	msgmeta_t m = {mu->name, mu->domain, g_T, hosts[host], op->mode != 0};
	int attach;
	uint32_t target = pick_size(r, &attach);
	gen_message(b, r, &m, target, attach);
	uint32_t lines = count_lf(b->p, b->len);
	const char *flags = op->mode == 2 ? "DS" : "S";
	for (;;) {
		uint32_t sec, usec;
		next_stamp(r, &sec, &usec);
		snprintf(base, sizeof base, "%" PRIu32 ".M%" PRIu32 "P%" PRIu32 ".%s",
			 sec, usec, pid, hosts[host]);
		snprintf(name, sizeof name, "%s,S=%zu,W=%zu%s%s", base, b->len,
			 b->len + lines, op->mode ? ":2," : "", op->mode ? flags : "");
		pjoin3(tmp, f->path, "tmp", base);
		pjoin3(fin, f->path, op->mode ? "cur" : "new", name);
		if (path_exists(fin))
			continue;
		if (write_new_file(tmp, b->p, b->len, g_T, 1) < 0)
			continue;
		break;
	}
	xrename(tmp, fin);
	strv_push(&f->pend, name);
	f->changes++;
	mark_touched(fi);
	ms.delivered++;
	for (int k = 0; k < op->nextra; k++) {
		uint32_t df = op->extra[k];
		if (df == fi)
			continue;
		link_into(r, fin, df, host, pid, (long long)b->len,
			  (long long)(b->len + lines), 1, "");
		ms.delivered++;
		ms.lmtp_links++;
	}
}

static void exec_folder(rng_t *r, uint32_t fi, buf_t *b)
{
	mfolder_t *f = &MF[fi];
	if (f->nops == 0)
		return;
	qsort(f->ops, f->nops, sizeof(op_t), cmp_op);
	char **excl = NULL;
	size_t nex = f->pend.n;
	if (nex) {
		excl = xmalloc(nex * sizeof(char *));
		memcpy(excl, f->pend.v, nex * sizeof(char *));
		qsort(excl, nex, sizeof(char *), cmp_base);
	}
	strv_t cur = {0}, nw = {0};
	char dir[PATHMAX], p[PATHMAX], q[PATHMAX];
	pjoin(dir, f->path, "cur");
	load_msgs(dir, &cur, excl, nex);
	pjoin(dir, f->path, "new");
	load_msgs(dir, &nw, excl, nex);
	free(excl);
	unsigned char *ucur = xmalloc(cur.n + 1), *unew = xmalloc(nw.n + 1);
	memset(ucur, 0, cur.n + 1);
	memset(unew, 0, nw.n + 1);
	int nkw = -1;

	for (size_t i = 0; i < f->nops; i++) {
		const op_t *op = &f->ops[i];
		switch (op->type) {
		case OP_EXPUNGE: {
			size_t tot = cur.n + nw.n;
			if (!tot)
				break;
			size_t j = op->idx % tot;
			size_t k;
			for (k = 0; k < tot; k++, j = (j + 1) % tot)
				if (j < cur.n ? !ucur[j] : !unew[j - cur.n])
					break;
			if (k == tot)
				break;
			if (j < cur.n) {
				ucur[j] = 1;
				pjoin3(p, f->path, "cur", cur.v[j]);
			} else {
				unew[j - cur.n] = 1;
				pjoin3(p, f->path, "new", nw.v[j - cur.n]);
			}
			xunlink(p);
			f->expunged = 1;
			f->changes++;
			mark_touched(fi);
			ms.expunged++;
			break;
		}
		case OP_MOVE: {
			long j = pick_unused(unew, nw.n, op->idx);
			if (j < 0)
				break;
			unew[j] = 1;
			const char *nm = nw.v[j];
			pjoin3(p, f->path, "new", nm);
			snprintf(dir, sizeof dir, "%.*s:2,%s", (int)base_len(nm), nm,
				 rng_ppm(r, 600000) ? "S" : "");
			pjoin3(q, f->path, "cur", dir);
			xrename(p, q);
			f->changes++;
			mark_touched(fi);
			ms.moved++;
			break;
		}
		case OP_FLAG: {
			long j = pick_unused(ucur, cur.n, op->idx);
			if (j < 0)
				break;
			ucur[j] = 1;
			const char *nm = cur.v[j];
			size_t bl = base_len(nm);
			const char *old = "";
			if (nm[bl] == ':' && nm[bl + 1] == '2' && nm[bl + 2] == ',')
				old = nm + bl + 3;
			if (nkw < 0)
				nkw = folder_nkw(f);
			char fl[64];
			new_flags(r, old, nkw, fl);
			pjoin3(p, f->path, "cur", nm);
			snprintf(dir, sizeof dir, "%.*s:2,%s", (int)bl, nm, fl);
			pjoin3(q, f->path, "cur", dir);
			xrename(p, q);
			f->changes++;
			mark_touched(fi);
			ms.flagged++;
			break;
		}
		case OP_COPY: {
			long j = pick_unused(ucur, cur.n, op->idx);
			if (j < 0)
				break;
			ucur[j] = 1;
			const char *nm = cur.v[j];
			pjoin3(p, f->path, "cur", nm);
			long long S = name_field(nm, 'S'), W = name_field(nm, 'W');
			if (S < 0) {
				struct stat sb;
				if (stat(p, &sb) < 0)
					die_path("stat", p);
				S = (long long)sb.st_size;
			}
			size_t bl = base_len(nm);
			char fl[64] = "";
			if (nm[bl] == ':' && nm[bl + 1] == '2' && nm[bl + 2] == ',') {
				size_t o = 0;
				for (const char *c = nm + bl + 3; *c && o + 1 < sizeof fl; c++)
					if (*c >= 'A' && *c <= 'Z')
						fl[o++] = *c;
				fl[o] = 0;
			}
			int hidx = (int)rng_below(r, 2);
			link_into(r, p, op->dest, H_IMAP1 + hidx,
				  imap_pids[hidx][rng_below(r, 4)], S, W, 0, fl);
			ms.copied++;
			if (op->mode) { /* IMAP MOVE: expunge the source */
				xunlink(p);
				f->expunged = 1;
				ms.expunged++;
				ms.imap_moves++;
			}
			f->changes++;
			mark_touched(fi);
			break;
		}
		case OP_DELIVER:
			deliver(r, fi, op, b);
			break;
		}
	}
	strv_free(&cur);
	strv_free(&nw);
	free(ucur);
	free(unew);
	f->nops = 0;
}

typedef struct {
	uint32_t uid;
	const char *base;
	size_t blen;
} urec_t;

static int cmp_urec_base(const void *a, const void *b)
{
	const urec_t *x = a, *y = b;
	size_t l = x->blen < y->blen ? x->blen : y->blen;
	int c = memcmp(x->base, y->base, l);
	if (c)
		return c;
	return x->blen < y->blen ? -1 : x->blen > y->blen;
}

typedef struct {
	uint32_t uid;
	const char *dir;
	const char *name;
} wrec_t;

static int cmp_wrec(const void *a, const void *b)
{
	const wrec_t *x = a, *y = b;
	return x->uid < y->uid ? -1 : x->uid > y->uid;
}

static int open_lock(const char *path)
{
	for (int tries = 0; tries < 2; tries++) {
		int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
		if (fd >= 0)
			return fd;
		if (errno != EEXIST)
			break;
		/* stale lock (Dovecot overrides them after a timeout) */
		if (unlink(path) < 0 && errno != ENOENT)
			break;
	}
	die_path("create lock", path);
	return -1;
}

static void update_uidlist(rng_t *r, mfolder_t *f)
{
	char up[PATHMAX], lp[PATHMAX];
	buf_t in = {0}, out = {0};
	pjoin(up, f->path, "dovecot-uidlist");
	pjoin(lp, f->path, "dovecot-uidlist.lock");
	int lfd = open_lock(lp);
	int have = read_file(up, &in) == 0;
	uint32_t V = 0, N = 0;
	char G[64] = "";
	int ok = 0;
	urec_t *recs = NULL;
	size_t nrec = 0, caprec = 0;
	uint32_t maxuid = 0;
	if (have && in.len > 0) {
		char *nl = memchr(in.p, '\n', in.len);
		if (nl) {
			*nl = 0;
			unsigned long v = 0, n = 0;
			char g[64] = "";
			if (sscanf(in.p, "3 V%lu N%lu G%40s", &v, &n, g) >= 2) {
				V = (uint32_t)v;
				N = (uint32_t)n;
				snprintf(G, sizeof G, "%s", g);
				ok = 1;
			}
			char *line = nl + 1, *end = in.p + in.len;
			while (ok && line < end) {
				char *e = memchr(line, '\n', (size_t)(end - line));
				if (!e)
					e = end;
				*e = 0;
				char *c = strstr(line, " :");
				if (c) {
					uint32_t uid = (uint32_t)strtoul(line, NULL, 10);
					GROW(recs, nrec, caprec);
					recs[nrec].uid = uid;
					recs[nrec].base = c + 2;
					recs[nrec].blen = base_len(c + 2);
					nrec++;
					if (uid > maxuid)
						maxuid = uid;
				}
				line = e + 1;
			}
		}
	}
	uint32_t next = N > maxuid ? N : maxuid + 1;
	if (next == 0)
		next = 1;
	int rewrite = !ok || f->expunged || rng_ppm(r, 50000);
	if (!rewrite) {
		/* append in place; the header's N stays as it is */
		for (size_t i = 0; i < f->pend.n; i++)
			buf_printf(&out, "%" PRIu32 " :%s\n", next++, f->pend.v[i]);
		if (out.len)
			append_file(up, out.p, out.len);
		close(lfd);
		xunlink(lp);
		ms.uid_appends++;
	} else {
		if (!ok) {
			V = (uint32_t)g_T;
			uint64_t g1 = rng_next(r);
			uint64_t g2 = rng_next(r);
			snprintf(G, sizeof G, "%016" PRIx64 "%016" PRIx64, g1, g2);
			nrec = 0;
		}
		if (nrec > 1)
			qsort(recs, nrec, sizeof(urec_t), cmp_urec_base);
		strv_t cur = {0}, nw = {0};
		char d[PATHMAX];
		pjoin(d, f->path, "cur");
		list_dir(d, &cur, 1);
		pjoin(d, f->path, "new");
		list_dir(d, &nw, 1);
		size_t tot = cur.n + nw.n;
		wrec_t *w = xmalloc(sizeof(wrec_t) * (tot + 1));
		size_t nw_ = 0;
		/* names added by this run get the next uids, in delivery order */
		size_t np = f->pend.n;
		urec_t *prec = xmalloc(sizeof(urec_t) * (np + 1));
		for (size_t i = 0; i < np; i++) {
			prec[i].uid = next++;
			prec[i].base = f->pend.v[i];
			prec[i].blen = base_len(f->pend.v[i]);
		}
		if (np > 1)
			qsort(prec, np, sizeof(urec_t), cmp_urec_base);
		for (int pass = 0; pass < 2; pass++) {
			strv_t *L = pass ? &nw : &cur;
			for (size_t i = 0; i < L->n; i++) {
				urec_t key = {0, L->v[i], base_len(L->v[i])};
				urec_t *hit = nrec ? bsearch(&key, recs, nrec, sizeof(urec_t),
							     cmp_urec_base)
						   : NULL;
				if (!hit && np)
					hit = bsearch(&key, prec, np, sizeof(urec_t),
						      cmp_urec_base);
				uint32_t uid = hit ? hit->uid : 0;
				w[nw_].uid = uid;
				w[nw_].dir = pass ? "new" : "cur";
				w[nw_].name = L->v[i];
				nw_++;
			}
		}
		/* files unknown to the uidlist get uids after the pending ones */
		for (size_t i = 0; i < nw_; i++)
			if (w[i].uid == 0)
				w[i].uid = next++;
		qsort(w, nw_, sizeof(wrec_t), cmp_wrec);
		buf_printf(&out, "3 V%" PRIu32 " N%" PRIu32 " G%s\n", V, next, G);
		for (size_t i = 0; i < nw_; i++)
			buf_printf(&out, "%" PRIu32 " :%s\n", w[i].uid, w[i].name);
		write_all(lfd, out.p, out.len, lp);
		st.bytes += out.len;
		if (close(lfd) < 0)
			die_path("close", lp);
		xrename(lp, up);
		ms.uid_rewrites++;
		free(w);
		free(prec);
		strv_free(&cur);
		strv_free(&nw);
	}
	free(recs);
	free(in.p);
	free(out.p);
}

static void finish_folder(rng_t *r, uint32_t fi, buf_t *b)
{
	mfolder_t *f = &MF[fi];
	if (!f->touched)
		return;
	char p[PATHMAX], q[PATHMAX];
	update_uidlist(r, f);

	/* dovecot.index.log: appended in place, sometimes rotated */
	pjoin(p, f->path, "dovecot.index.log");
	struct stat sb;
	int have_log = stat(p, &sb) == 0;
	if (!have_log && errno != ENOENT)
		die_path("stat", p);
	if (have_log && (sb.st_size > 128 * 1024 || rng_ppm(r, 30000))) {
		pjoin(q, f->path, "dovecot.index.log.2");
		if (unlink(q) < 0 && errno != ENOENT)
			die_path("unlink", q);
		if (link(p, q) < 0)
			die_path("link to .log.2", p);
		st.links++;
		char nl[PATHMAX];
		pjoin(nl, f->path, "dovecot.index.log.newlock");
		write_log_blob(b, r, (uint32_t)g_T, (uint32_t)rng_range(r, 2, 99), 40);
		if (write_new_file(nl, b->p, b->len, -1, 1) < 0) {
			xunlink(nl);
			write_new_file(nl, b->p, b->len, -1, 0);
		}
		xrename(nl, p);
		ms.log_rotations++;
	}
	b->len = 0;
	for (uint32_t i = 0; i < f->changes + 1; i++) {
		uint32_t sz = (uint32_t)(8 + 4 * rng_range(r, 2, 16));
		size_t off = b->len;
		buf_rand(b, r, sz);
		put_le32(b, off, sz);
		put_le32(b, off + 4, (uint32_t)(1u << rng_below(r, 12)));
	}
	append_file(p, b->p, b->len);
	ms.log_appends++;

	/* dovecot.index: replaced by rename */
	if (rng_ppm(r, 200000)) {
		uint32_t n = f->ncur + f->nnew;
		b->len = 0;
		buf_rand(b, r, 256 + 12 * (size_t)n);
		b->p[0] = 7;
		b->p[1] = 3;
		pjoin(q, f->path, "dovecot.index.tmp");
		if (write_new_file(q, b->p, b->len, -1, 1) < 0) {
			xunlink(q);
			write_new_file(q, b->p, b->len, -1, 0);
		}
		pjoin(p, f->path, "dovecot.index");
		xrename(q, p);
		ms.index_replaced++;
	}
	/* dovecot.index.cache: written in place */
	if (rng_ppm(r, 300000)) {
		b->len = 0;
		buf_rand(b, r, (size_t)rng_range(r, 64, 2048));
		pjoin(p, f->path, "dovecot.index.cache");
		append_file(p, b->p, b->len);
		ms.cache_appends++;
	}
	/* tmp/: drop files older than 36 hours, maybe leave a partial one */
	char td[PATHMAX];
	pjoin(td, f->path, "tmp");
	strv_t t = {0};
	list_dir(td, &t, 0);
	for (size_t i = 0; i < t.n; i++) {
		pjoin(p, td, t.v[i]);
		if (lstat(p, &sb) < 0)
			die_path("lstat", p);
		if (S_ISREG(sb.st_mode) && (int64_t)sb.st_mtime < g_T - 36 * 3600) {
			xunlink(p);
			ms.tmp_removed++;
		}
	}
	strv_free(&t);
	if (rng_ppm(r, 50000)) {
		const muser_t *mu = &MU[f->user];
		int hidx = (int)rng_below(r, 3);
		msgmeta_t m = {mu->name, mu->domain, g_T, hosts[H_MX1 + hidx], 0};
		int attach;
		uint32_t target = pick_size(r, &attach);
		gen_message(b, r, &m, target, attach);
		size_t cut = (size_t)rng_below(r, b->len);
		for (;;) {
			uint32_t sec, usec;
			char base[256];
			next_stamp(r, &sec, &usec);
			snprintf(base, sizeof base, "%" PRIu32 ".M%" PRIu32 "P%" PRIu32 ".%s",
				 sec, usec, lmtp_pids[hidx][rng_below(r, 4)],
				 hosts[H_MX1 + hidx]);
			pjoin(p, td, base);
			if (write_new_file(p, b->p, cut, g_T, 1) == 0)
				break;
		}
		ms.tmp_partial++;
	}
	f->touched = 0;
	f->expunged = 0;
	f->changes = 0;
	strv_free(&f->pend);
}

/* subscriptions: remove `del` (and its children), add `add`, rename
 * `from` (and its children) to `to`; written to subscriptions.lock and renamed */
static void update_subscriptions(const char *maildir, const char *add,
				 const char *del, const char *from,
				 const char *to)
{
	char p[PATHMAX], l[PATHMAX];
	buf_t in = {0}, out = {0};
	pjoin(p, maildir, "subscriptions");
	pjoin(l, maildir, "subscriptions.lock");
	int fd = open_lock(l);
	if (read_file(p, &in) < 0)
		in.len = 0;
	char *line = in.p, *end = in.p + in.len;
	while (line && line < end) {
		char *e = memchr(line, '\n', (size_t)(end - line));
		if (!e)
			e = end;
		*e = 0;
		size_t ll = strlen(line);
		if (ll == 0) {
			line = e + 1;
			continue;
		}
		if (del) {
			size_t dl = strlen(del);
			if (strncmp(line, del, dl) == 0 && (line[dl] == 0 || line[dl] == '.')) {
				line = e + 1;
				continue;
			}
		}
		if (from) {
			size_t fl = strlen(from);
			if (strncmp(line, from, fl) == 0 && (line[fl] == 0 || line[fl] == '.')) {
				buf_printf(&out, "%s%s\n", to, line + fl);
				line = e + 1;
				continue;
			}
		}
		buf_printf(&out, "%s\n", line);
		line = e + 1;
	}
	if (add)
		buf_printf(&out, "%s\n", add);
	write_all(fd, out.p, out.len, l);
	st.bytes += out.len;
	if (close(fd) < 0)
		die_path("close", l);
	xrename(l, p);
	free(in.p);
	free(out.p);
}

static void mailbox_log_append(rng_t *r, const char *maildir, buf_t *b)
{
	char p[PATHMAX];
	pjoin(p, maildir, "dovecot.mailbox.log");
	b->len = 0;
	buf_rand(b, r, 24);
	put_le32(b, 20, (uint32_t)g_T);
	append_file(p, b->p, b->len);
}

static uint32_t next_uidvalidity(const char *maildir)
{
	char p[PATHMAX], o[PATHMAX], n[PATHMAX], nm[64];
	buf_t b = {0};
	pjoin(p, maildir, "dovecot-uidvalidity");
	uint32_t cur = 0;
	int have = read_file(p, &b) == 0;
	if (have)
		cur = (uint32_t)strtoul(b.p, NULL, 16);
	uint32_t v = cur >= (uint32_t)g_T ? cur + 1 : (uint32_t)g_T;
	/* rewritten in place, the marker file renamed */
	int fd = open(p, O_WRONLY | O_CREAT, 0600);
	if (fd < 0)
		die_path("open", p);
	snprintf(nm, sizeof nm, "%08" PRIx32, v);
	write_all(fd, nm, 8, p);
	if (ftruncate(fd, 8) < 0)
		die_path("ftruncate", p);
	close(fd);
	st.bytes += 8;
	snprintf(nm, sizeof nm, "dovecot-uidvalidity.%08" PRIx32, cur);
	pjoin(o, maildir, nm);
	snprintf(nm, sizeof nm, "dovecot-uidvalidity.%08" PRIx32, v);
	pjoin(n, maildir, nm);
	if (have && path_exists(o))
		xrename(o, n);
	else
		write_new_file(n, "", 0, -1, 1);
	free(b.p);
	return v;
}

/* current folder names (without dot) of a Maildir, sorted */
static void list_folders(const char *maildir, strv_t *out)
{
	strv_t all = {0};
	list_dir(maildir, &all, 0);
	out->n = 0;
	for (size_t i = 0; i < all.n; i++) {
		const char *nm = all.v[i];
		char p[PATHMAX];
		if (nm[0] != '.' || strcmp(nm, ".DOVECOT-TRASHED") == 0)
			continue;
		pjoin(p, maildir, nm);
		if (is_dir(p))
			strv_push(out, nm + 1);
	}
	strv_free(&all);
}

static int folder_in(const strv_t *l, const char *nm)
{
	for (size_t i = 0; i < l->n; i++)
		if (strcmp(l->v[i], nm) == 0)
			return 1;
	return 0;
}

static void folder_ops(rng_t *r, double percent, buf_t *b)
{
	if (percent <= 0 || nMU == 0)
		return;
	uint64_t n_create = (uint64_t)((double)nMU * percent * 0.02 + 0.5);
	uint64_t n_ren = (uint64_t)((double)nMU * percent * 0.005 + 0.5);
	if (n_create < 1)
		n_create = 1;
	if (n_ren < 1)
		n_ren = 1;
	uint64_t n_del = n_ren;
	strv_t fl = {0};
	char p[PATHMAX], q[PATHMAX], nm[600], enc[512];

	for (uint64_t i = 0; i < n_create; i++) {
		uint32_t u = (uint32_t)rng_below(r, nMU);
		const muser_t *mu = &MU[u];
		list_folders(mu->maildir, &fl);
		int sub = fl.n > 0 && rng_ppm(r, 200000);
		const char *parent = sub ? fl.v[rng_below(r, fl.n)] : NULL;
		const char *base = ufolder_pool[rng_below(r, NELEM(ufolder_pool))];
		mutf7_encode(base, enc, sizeof enc);
		if (parent)
			snprintf(nm, sizeof nm, "%s.%s", parent, enc);
		else
			snprintf(nm, sizeof nm, "%s", enc);
		for (uint32_t k = 2; folder_in(&fl, nm); k++) {
			if (parent)
				snprintf(nm, sizeof nm, "%s.%s %" PRIu32, parent, enc, k);
			else
				snprintf(nm, sizeof nm, "%s %" PRIu32, enc, k);
		}
		char dn[640];
		snprintf(dn, sizeof dn, ".%s", nm);
		pjoin(p, mu->maildir, dn);
		xmkdir(p);
		pjoin(q, p, "cur");
		xmkdir(q);
		pjoin(q, p, "new");
		xmkdir(q);
		pjoin(q, p, "tmp");
		xmkdir(q);
		pjoin(q, p, "maildirfolder");
		write_new_file(q, "", 0, -1, 0);
		uint32_t V = next_uidvalidity(mu->maildir);
		b->len = 0;
		uint64_t g1 = rng_next(r);
		uint64_t g2 = rng_next(r);
		buf_printf(b, "3 V%" PRIu32 " N1 G%016" PRIx64 "%016" PRIx64 "\n", V,
			   g1, g2);
		pjoin(q, p, "dovecot-uidlist");
		write_new_file(q, b->p, b->len, -1, 0);
		write_log_blob(b, r, V, 1, 40 + 64);
		pjoin(q, p, "dovecot.index.log");
		write_new_file(q, b->p, b->len, -1, 0);
		update_subscriptions(mu->maildir, nm, NULL, NULL, NULL);
		mailbox_log_append(r, mu->maildir, b);
		ms.fcreated++;
	}

	for (uint64_t i = 0; i < n_ren; i++) {
		for (int tries = 0; tries < 20; tries++) {
			uint32_t u = (uint32_t)rng_below(r, nMU);
			const muser_t *mu = &MU[u];
			list_folders(mu->maildir, &fl);
			strv_t cand = {0};
			for (size_t k = 0; k < fl.n; k++)
				if (!strchr(fl.v[k], '.') && !is_special(fl.v[k]))
					strv_push(&cand, fl.v[k]);
			if (cand.n == 0) {
				strv_free(&cand);
				continue;
			}
			const char *old = cand.v[rng_below(r, cand.n)];
			char to[600];
			time_t tt = (time_t)g_T;
			struct tm tm;
			int year = gmtime_r(&tt, &tm) ? tm.tm_year + 1900 : 2025;
			snprintf(to, sizeof to, "%s %d", old, year);
			for (uint32_t k = 2; folder_in(&fl, to); k++)
				snprintf(to, sizeof to, "%s %d-%" PRIu32, old, year, k);
			size_t ol = strlen(old);
			/* the folder and its children, parent first */
			for (size_t k = 0; k < fl.n; k++) {
				const char *fn = fl.v[k];
				if (strncmp(fn, old, ol) != 0 || (fn[ol] != 0 && fn[ol] != '.'))
					continue;
				char a[640], c[1280];
				snprintf(a, sizeof a, ".%s", fn);
				snprintf(c, sizeof c, ".%s%s", to, fn + ol);
				pjoin(p, mu->maildir, a);
				pjoin(q, mu->maildir, c);
				xrename(p, q);
			}
			update_subscriptions(mu->maildir, NULL, NULL, old, to);
			mailbox_log_append(r, mu->maildir, b);
			ms.frenamed++;
			strv_free(&cand);
			break;
		}
	}

	for (uint64_t i = 0; i < n_del; i++) {
		for (int tries = 0; tries < 20; tries++) {
			uint32_t u = (uint32_t)rng_below(r, nMU);
			const muser_t *mu = &MU[u];
			list_folders(mu->maildir, &fl);
			strv_t cand = {0};
			for (size_t k = 0; k < fl.n; k++) {
				const char *fn = fl.v[k];
				if (is_special(fn))
					continue;
				size_t l = strlen(fn);
				int leaf = 1;
				for (size_t j = 0; j < fl.n; j++)
					if (strncmp(fl.v[j], fn, l) == 0 && fl.v[j][l] == '.')
						leaf = 0;
				if (leaf)
					strv_push(&cand, fn);
			}
			if (cand.n == 0) {
				strv_free(&cand);
				continue;
			}
			const char *victim = cand.v[rng_below(r, cand.n)];
			char a[640];
			snprintf(a, sizeof a, ".%s", victim);
			pjoin(p, mu->maildir, a);
			pjoin(q, mu->maildir, ".DOVECOT-TRASHED");
			if (path_exists(q))
				rm_rf(q, 0);
			xrename(p, q);
			ms.fdeleted_msgs += rm_rf(q, 0);
			update_subscriptions(mu->maildir, NULL, victim, NULL, NULL);
			mailbox_log_append(r, mu->maildir, b);
			ms.fdeleted++;
			strv_free(&cand);
			break;
		}
	}
	strv_free(&fl);
}

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void extra_round(rng_t *r, buf_t *b, const unsigned char *was_touched)
{
	uint32_t cand[8];
	int nc = 0;
	uint32_t *all = xmalloc(sizeof(uint32_t) * (nMF + 1));
	size_t na = 0;
	for (size_t i = 0; i < nMF; i++)
		if (was_touched[i] && is_dir(MF[i].path))
			all[na++] = (uint32_t)i;
	if (na == 0)
		for (size_t i = 0; i < nMU && na < 8; i++)
			all[na++] = MU[i].f0;
	/* partial Fisher-Yates for up to 8 distinct folders, then sort */
	for (size_t i = 0; i < na && nc < 8; i++) {
		size_t j = i + (size_t)rng_below(r, na - i);
		uint32_t t = all[i];
		all[i] = all[j];
		all[j] = t;
		cand[nc++] = all[i];
	}
	free(all);
	for (int i = 1; i < nc; i++)
		for (int j = i; j > 0 && cand[j - 1] > cand[j]; j--) {
			uint32_t t = cand[j];
			cand[j] = cand[j - 1];
			cand[j - 1] = t;
		}
	uint64_t before = ms.delivered + ms.moved + ms.flagged + ms.expunged;
	char p[PATHMAX];
	for (int i = 0; i < nc; i++) {
		mfolder_t *f = &MF[cand[i]];
		pjoin(p, f->path, "cur");
		f->ncur = count_dir(p);
		pjoin(p, f->path, "new");
		f->nnew = count_dir(p);
		op_t op;
		memset(&op, 0, sizeof op);
		op.type = OP_DELIVER;
		/* into new/ where mail is delivered, else saved into cur/ */
		if (strcmp(f->name, "Drafts") == 0 || strcmp(f->name, "Entw&APw-rfe") == 0)
			op.mode = 2;
		else if (f->name[0] && is_special(f->name) && strncmp(f->name, "Junk", 4) != 0)
			op.mode = 1;
		mf_add_op(cand[i], op);
		op.mode = 0;
		if (f->ncur) {
			op.type = OP_FLAG;
			op.idx = (uint32_t)rng_below(r, f->ncur);
			mf_add_op(cand[i], op);
		}
		if (f->nnew) {
			op.type = OP_MOVE;
			op.idx = (uint32_t)rng_below(r, f->nnew);
			mf_add_op(cand[i], op);
		}
		if (i == 0 && f->ncur + f->nnew > 0) {
			op.type = OP_EXPUNGE;
			op.idx = (uint32_t)rng_below(r, f->ncur + f->nnew);
			mf_add_op(cand[i], op);
		}
	}
	for (int i = 0; i < nc; i++)
		exec_folder(r, cand[i], b);
	for (int i = 0; i < nc; i++)
		finish_folder(r, cand[i], b);
	ms.extra_ops = ms.delivered + ms.moved + ms.flagged + ms.expunged - before;
}

static int do_mutate(const char *root, uint64_t seed, double percent,
		     int have_time, int64_t T, int same_second)
{
	rng_t R;
	rng_seed(&R, seed ^ 0x6D75746174650000ULL);
	if (!is_dir(root)) {
		errno = ENOENT;
		die_path("cannot use tree", root);
	}
	load_tree(root);
	for (int h = 0; h < 3; h++)
		for (int k = 0; k < 4; k++)
			lmtp_pids[h][k] = rand_pid(&R, 1);
	for (int h = 0; h < 2; h++)
		for (int k = 0; k < 4; k++)
			imap_pids[h][k] = rand_pid(&R, 1);
	uint64_t nmsgs = 0;
	for (size_t i = 0; i < nMF; i++)
		nmsgs += MF[i].ncur + MF[i].nnew;
	uint64_t K = 0;
	plan_mutations(&R, percent, &K);

	int64_t sec_start = 0;
	if (same_second) {
		int64_t ns = now_ns();
		int64_t wait = 1000000000LL - ns % 1000000000LL;
		struct timespec ts = {(time_t)(wait / 1000000000LL),
				      (long)(wait % 1000000000LL)};
		while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
			;
		sec_start = (ns + wait) / 1000000000LL;
		while (now_ns() / 1000000000LL < sec_start) {
			struct timespec t1 = {0, 1000000};
			nanosleep(&t1, NULL);
		}
	}
	g_T = have_time ? T : (same_second ? sec_start : (int64_t)time(NULL));

	buf_t b = {0};
	for (size_t i = 0; i < nMF; i++)
		exec_folder(&R, (uint32_t)i, &b);
	unsigned char *was = xmalloc(nMF + 1);
	for (size_t i = 0; i < nMF; i++) {
		was[i] = (unsigned char)MF[i].touched;
		finish_folder(&R, (uint32_t)i, &b);
	}
	folder_ops(&R, percent, &b);
	if (same_second)
		extra_round(&R, &b, was);
	free(was);

	printf("mutate: messages_before=%" PRIu64 " affected_target=%" PRIu64
	       " delivered=%" PRIu64 " lmtp_links=%" PRIu64 " moved=%" PRIu64
	       " flagged=%" PRIu64 " expunged=%" PRIu64 " copied=%" PRIu64
	       " imap_moves=%" PRIu64 " folders_created=%" PRIu64
	       " folders_renamed=%" PRIu64 " folders_deleted=%" PRIu64
	       " deleted_folder_msgs=%" PRIu64 " uidlist_appends=%" PRIu64
	       " uidlist_rewrites=%" PRIu64 " index_log_appends=%" PRIu64
	       " index_log_rotations=%" PRIu64 " index_replaced=%" PRIu64
	       " cache_appends=%" PRIu64 " tmp_partial=%" PRIu64
	       " tmp_removed=%" PRIu64 " bytes_written=%" PRIu64 " time=%" PRId64,
	       nmsgs, K, ms.delivered, ms.lmtp_links, ms.moved, ms.flagged,
	       ms.expunged, ms.copied, ms.imap_moves, ms.fcreated, ms.frenamed,
	       ms.fdeleted, ms.fdeleted_msgs, ms.uid_appends, ms.uid_rewrites,
	       ms.log_appends, ms.log_rotations, ms.index_replaced,
	       ms.cache_appends, ms.tmp_partial, ms.tmp_removed, st.bytes, g_T);
	if (same_second)
		printf(" extra_ops=%" PRIu64 " second=%" PRId64 " done_ms=%" PRId64,
		       ms.extra_ops, sec_start,
		       (int64_t)((now_ns() - sec_start * 1000000000LL) / 1000000));
	printf("\n");
	if (fflush(stdout) != 0)
		die_path("write", "stdout");
	free(b.p);
	return 0;
}

/* ------------------------------------------------------------------ */

int main(int argc, char **argv)
{
	if (argc < 2)
		die_usage("missing command");
	for (int i = 1; i < argc; i++)
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			usage(stdout);
			return 0;
		}
	const char *cmd = argv[1];
	int create = strcmp(cmd, "create") == 0;
	if (!create && strcmp(cmd, "mutate") != 0)
		die_usage("unknown command '%s'", cmd);
	const char *root = NULL;
	uint64_t users = 20, domains = 3, msgs = 35, seed = 1, t = DEFAULT_T0;
	double scale = 1.0, percent = 1.0;
	int have_seed = 0, have_time = 0, same_second = 0;
	for (int i = 2; i < argc; i++) {
		const char *a = argv[i], *v = NULL;
		char opt[64];
		if (strncmp(a, "--", 2) != 0) {
			if (root)
				die_usage("unexpected argument '%s'", a);
			root = a;
			continue;
		}
		const char *eq = strchr(a, '=');
		if (eq) {
			snprintf(opt, sizeof opt, "%.*s", (int)(eq - a), a);
			v = eq + 1;
		} else {
			snprintf(opt, sizeof opt, "%s", a);
		}
		if (strcmp(opt, "--same-second") == 0 && !create) {
			if (v)
				die_usage("--same-second takes no value");
			same_second = 1;
			continue;
		}
		int known = (create && (strcmp(opt, "--users") == 0 ||
					strcmp(opt, "--domains") == 0 ||
					strcmp(opt, "--msgs") == 0)) ||
			    (!create && strcmp(opt, "--percent") == 0) ||
			    strcmp(opt, "--seed") == 0 ||
			    strcmp(opt, "--size-scale") == 0 ||
			    strcmp(opt, "--time") == 0;
		if (!known)
			die_usage("unknown option '%s' for %s", opt, cmd);
		if (!v) {
			if (i + 1 >= argc)
				die_usage("%s needs a value", opt);
			v = argv[++i];
		}
		if (strcmp(opt, "--users") == 0)
			users = parse_u64(opt, v, 10000000);
		else if (strcmp(opt, "--domains") == 0)
			domains = parse_u64(opt, v, 1000000);
		else if (strcmp(opt, "--msgs") == 0)
			msgs = parse_u64(opt, v, 10000000);
		else if (strcmp(opt, "--seed") == 0) {
			seed = parse_u64(opt, v, UINT64_MAX);
			have_seed = 1;
		} else if (strcmp(opt, "--size-scale") == 0)
			scale = parse_double(opt, v, 0.0, 1000.0);
		else if (strcmp(opt, "--percent") == 0)
			percent = parse_double(opt, v, 0.0, 100.0);
		else if (strcmp(opt, "--time") == 0) {
			t = parse_u64(opt, v, 0xFFFFFFF0u - 400u * 86400u);
			have_time = 1;
		}
	}
	if (!root)
		die_usage("missing ROOT");
	if (domains == 0)
		die_usage("--domains must be at least 1");
	scale_ppm = (uint64_t)(scale * 1000000.0 + 0.5);
	init_pools();
	char *r = root_path(root);
	int rc;
	if (create) {
		rc = do_create(r, (uint32_t)users, (uint32_t)domains, (uint32_t)msgs,
			       seed, (uint32_t)t);
	} else {
		if (!have_seed)
			die_usage("mutate needs --seed");
		rc = do_mutate(r, seed, percent, have_time, (int64_t)t, same_second);
	}
	free(r);
	if (fflush(stdout) != 0)
		die_path("write", "stdout");
	return rc;
}
