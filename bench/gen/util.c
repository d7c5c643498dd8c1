/*
 * util.c -- what every part of gen_maildir leans on: fatal-error exits, the
 * allocation wrappers, the private PRNG (the only source of randomness, so a
 * seed gives the same tree everywhere), the growable buffer, the statistics
 * counters, and the file-system helpers that count what they create.
 */
#include "gen.h"

const char *gen_prog = "gen_maildir";

_Noreturn void gen_die_usage(const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "%s: ", gen_prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n(try %s --help)\n", gen_prog);
	exit(2);
}

_Noreturn void gen_die_path(const char *what, const char *path)
{
	fprintf(stderr, "%s: %s %s: %s\n", gen_prog, what, path, strerror(errno));
	exit(1);
}

void *gen_xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (!p) {
		fprintf(stderr, "%s: out of memory\n", gen_prog);
		exit(1);
	}
	return p;
}

void *gen_xrealloc(void *p, size_t n)
{
	p = realloc(p, n ? n : 1);
	if (!p) {
		fprintf(stderr, "%s: out of memory\n", gen_prog);
		exit(1);
	}
	return p;
}

char *gen_xstrdup(const char *s)
{
	size_t n = strlen(s) + 1;
	char *p = gen_xmalloc(n);
	memcpy(p, s, n);
	return p;
}

/* ------------------------------------------------------------------ */
/* PRNG: splitmix64 seeding xoshiro256**                              */

static uint64_t splitmix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9E3779B97F4A7C15ULL);
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
	return z ^ (z >> 31);
}

void gen_rng_seed(rng_t *r, uint64_t seed)
{
	uint64_t x = seed;
	for (int i = 0; i < 4; i++)
		r->s[i] = splitmix64(&x);
}

static inline uint64_t rotl64(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

uint64_t gen_rng_next(rng_t *r)
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
uint64_t gen_rng_below(rng_t *r, uint64_t n)
{
	if (n <= 1)
		return 0;
	uint64_t lim = UINT64_MAX - UINT64_MAX % n;
	uint64_t v;
	do
		v = gen_rng_next(r);
	while (v >= lim);
	return v % n;
}

/* uniform in [lo, hi] */
uint64_t gen_rng_range(rng_t *r, uint64_t lo, uint64_t hi)
{
	if (hi <= lo)
		return lo;
	return lo + gen_rng_below(r, hi - lo + 1);
}

/* true with probability ppm / 1e6 */
int gen_rng_ppm(rng_t *r, uint32_t ppm)
{
	return gen_rng_below(r, 1000000) < ppm;
}

/* in [0, range], skewed towards 0 (product of two uniforms) */
uint64_t gen_rng_skew(rng_t *r, uint64_t range)
{
	if (range == 0)
		return 0;
	uint64_t a = gen_rng_below(r, range + 1), b = gen_rng_below(r, range + 1);
	return a * b / range;
}

/* ------------------------------------------------------------------ */
/* growable buffer                                                     */

void gen_buf_reserve(buf_t *b, size_t extra)
{
	if (b->len + extra + 1 > b->cap) {
		size_t nc = b->cap ? b->cap : 4096;
		while (nc < b->len + extra + 1)
			nc *= 2;
		b->p = gen_xrealloc(b->p, nc);
		b->cap = nc;
	}
}

void gen_buf_add(buf_t *b, const void *p, size_t n)
{
	gen_buf_reserve(b, n);
	memcpy(b->p + b->len, p, n);
	b->len += n;
	b->p[b->len] = 0;
}

void gen_buf_adds(buf_t *b, const char *s)
{
	gen_buf_add(b, s, strlen(s));
}

void gen_buf_printf(buf_t *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	gen_buf_reserve(b, (size_t)n);
	va_start(ap, fmt);
	vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

void gen_buf_rand(buf_t *b, rng_t *r, size_t n)
{
	gen_buf_reserve(b, n + 8);
	for (size_t i = 0; i < n; i += 8) {
		uint64_t v = gen_rng_next(r);
		memcpy(b->p + b->len + i, &v, 8);
	}
	b->len += n;
	b->p[b->len] = 0;
}

void gen_put_le32(buf_t *b, size_t off, uint32_t v)
{
	unsigned char *p = (unsigned char *)b->p + off;
	p[0] = (unsigned char)v;
	p[1] = (unsigned char)(v >> 8);
	p[2] = (unsigned char)(v >> 16);
	p[3] = (unsigned char)(v >> 24);
}

/* ------------------------------------------------------------------ */
/* statistics                                                          */

struct gen_stats gen_stats;

/* ------------------------------------------------------------------ */
/* file system helpers                                                 */

void gen_pjoin(char *out, const char *a, const char *b)
{
	int n = snprintf(out, PATHMAX, "%s/%s", a, b);
	if (n < 0 || n >= PATHMAX) {
		errno = ENAMETOOLONG;
		gen_die_path("cannot build path", a);
	}
}

void gen_pjoin3(char *out, const char *a, const char *b, const char *c)
{
	int n = snprintf(out, PATHMAX, "%s/%s/%s", a, b, c);
	if (n < 0 || n >= PATHMAX) {
		errno = ENAMETOOLONG;
		gen_die_path("cannot build path", a);
	}
}

void gen_xmkdir(const char *path)
{
	if (mkdir(path, 0700) < 0)
		gen_die_path("mkdir", path);
	gen_stats.dirs++;
}

void gen_write_all(int fd, const void *p, size_t n, const char *path)
{
	const char *c = p;
	while (n > 0) {
		ssize_t w = write(fd, c, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			gen_die_path("write", path);
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
		gen_die_path("futimens", path);
}

/* Create a new file (O_EXCL) holding data; mtime < 0 leaves it alone.
 * Returns 0, or -1 with errno EEXIST when allow_exist is set. */
int gen_write_new_file(const char *path, const void *data, size_t len,
			  int64_t mtime, int allow_exist)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
	if (fd < 0) {
		if (allow_exist && errno == EEXIST)
			return -1;
		gen_die_path("create", path);
	}
	gen_write_all(fd, data, len, path);
	if (mtime >= 0)
		set_fd_mtime(fd, mtime, path);
	if (close(fd) < 0)
		gen_die_path("close", path);
	gen_stats.files++;
	gen_stats.bytes += len;
	return 0;
}

void gen_append_file(const char *path, const void *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_APPEND | O_CREAT, 0600);
	if (fd < 0)
		gen_die_path("open for append", path);
	gen_write_all(fd, data, len, path);
	if (close(fd) < 0)
		gen_die_path("close", path);
	gen_stats.bytes += len;
}

void gen_xrename(const char *from, const char *to)
{
	if (rename(from, to) < 0) {
		int e = errno;
		fprintf(stderr, "%s: rename %s -> %s: %s\n", gen_prog, from, to,
			strerror(e));
		exit(1);
	}
}

void gen_xlink(const char *from, const char *to)
{
	if (link(from, to) < 0) {
		int e = errno;
		fprintf(stderr, "%s: link %s -> %s: %s\n", gen_prog, from, to,
			strerror(e));
		exit(1);
	}
	gen_stats.links++;
	gen_stats.files++;
}

void gen_xunlink(const char *path)
{
	if (unlink(path) < 0)
		gen_die_path("unlink", path);
}

int gen_path_exists(const char *path)
{
	struct stat sb;
	if (lstat(path, &sb) == 0)
		return 1;
	if (errno != ENOENT && errno != ENOTDIR)
		gen_die_path("lstat", path);
	return 0;
}

int gen_is_dir(const char *path)
{
	struct stat sb;
	if (lstat(path, &sb) == 0)
		return S_ISDIR(sb.st_mode);
	if (errno != ENOENT && errno != ENOTDIR)
		gen_die_path("lstat", path);
	return 0;
}

/* whole file into b (b->len reset); returns 0, or -1 if it does not exist */
int gen_read_file(const char *path, buf_t *b)
{
	b->len = 0;
	int fd = open(path, O_RDONLY);
	if (fd < 0) {
		if (errno == ENOENT)
			return -1;
		gen_die_path("open", path);
	}
	for (;;) {
		gen_buf_reserve(b, 65536);
		ssize_t n = read(fd, b->p + b->len, b->cap - b->len - 1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			gen_die_path("read", path);
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

void gen_strv_free(strv_t *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->v[i]);
	free(s->v);
	s->v = NULL;
	s->n = s->cap = 0;
}

void gen_strv_push(strv_t *s, const char *str)
{
	GROW(s->v, s->n, s->cap);
	s->v[s->n++] = gen_xstrdup(str);
}

/* sorted names of path (no "." ".."); skip_dot also drops names starting
 * with '.'.  A missing directory gives an empty list. */
void gen_list_dir(const char *path, strv_t *out, int skip_dot)
{
	out->n = 0;
	DIR *d = opendir(path);
	if (!d) {
		if (errno == ENOENT)
			return;
		gen_die_path("opendir", path);
	}
	struct dirent *de;
	errno = 0;
	while ((de = readdir(d)) != NULL) {
		const char *n = de->d_name;
		if (n[0] == '.' && (skip_dot || n[1] == 0 ||
				    (n[1] == '.' && n[2] == 0)))
			continue;
		gen_strv_push(out, n);
		errno = 0;
	}
	if (errno)
		gen_die_path("readdir", path);
	closedir(d);
	if (out->n > 1)
		qsort(out->v, out->n, sizeof(char *), cmp_strp);
}

uint32_t gen_count_dir(const char *path)
{
	uint32_t c = 0;
	DIR *d = opendir(path);
	if (!d) {
		if (errno == ENOENT)
			return 0;
		gen_die_path("opendir", path);
	}
	struct dirent *de;
	errno = 0;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] != '.')
			c++;
		errno = 0;
	}
	if (errno)
		gen_die_path("readdir", path);
	closedir(d);
	return c;
}

/* recursive delete; returns the number of names removed from cur/ and new/ */
uint64_t gen_rm_rf(const char *path, int in_msgdir)
{
	struct stat sb;
	uint64_t msgs = 0;
	if (lstat(path, &sb) < 0) {
		if (errno == ENOENT)
			return 0;
		gen_die_path("lstat", path);
	}
	if (S_ISDIR(sb.st_mode)) {
		strv_t names = {0};
		gen_list_dir(path, &names, 0);
		const char *base = strrchr(path, '/');
		base = base ? base + 1 : path;
		int msgdir = strcmp(base, "cur") == 0 || strcmp(base, "new") == 0;
		for (size_t i = 0; i < names.n; i++) {
			char p[PATHMAX];
			gen_pjoin(p, path, names.v[i]);
			msgs += gen_rm_rf(p, msgdir);
		}
		gen_strv_free(&names);
		if (rmdir(path) < 0)
			gen_die_path("rmdir", path);
	} else {
		if (unlink(path) < 0)
			gen_die_path("unlink", path);
		if (in_msgdir)
			msgs++;
	}
	return msgs;
}
