/*
 * estale_shim.c - an LD_PRELOAD library for tests/it_scan.sh that makes
 * stat and open calls fail with ESTALE, as an NFS client does when the
 * server's file handle went stale (the file was replaced on the server).
 *
 *   ESTALE_ONCE=S       the first statx/fstatat whose path contains S fails
 *                       (once per process): the retry must succeed
 *   ESTALE_OPEN_ONCE=S  the same for openat
 *   ESTALE_ALWAYS=S     every such stat or open fails: the path must be
 *                       reported
 *   RMDIR_AFTER_OPEN=S  a directory whose path contains S is removed right
 *                       after it is opened (it must be empty): its listing
 *                       then fails with ENOENT, as when Dovecot deletes a
 *                       folder while a scan lists it
 *   SHIM_LOG=FILE       every stat and open by name is logged to FILE, one
 *                       line each ("TID stat NAME", "TID open NAME", TID the
 *                       calling thread), so a test can count the lookups the
 *                       scanner asks for and see which threads made them
 *   SHIM_STAT_DELAY_US=N  every stat by name takes N microseconds longer,
 *                       like a round trip to an NFS server; with SHIM_LOG,
 *                       "TID back NAME" is logged when the delay ends, so
 *                       the log tells how many stats were waiting at once
 *
 * Everything else goes to the C library (dlsym RTLD_NEXT).  A test tool,
 * never linked into cutover.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef int (*open_fn_plain)(const char *, int, ...);

static int fired_stat, fired_open;

/* One write per line (O_APPEND), so the workers' lines do not mix. */
static void log_call(const char *what, const char *path)
{
	const char *f = getenv("SHIM_LOG");
	if (!f || !*f || !path || !*path)
		return;
	int saved = errno;
	static open_fn_plain real_open;
	if (!real_open)
		real_open = (open_fn_plain)dlsym(RTLD_NEXT, "open");
	int fd = real_open(f, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
	if (fd >= 0) {
		char line[4200];
		size_t n = (size_t)snprintf(line, 32, "%ld ", (long)gettid());
		size_t w = strlen(what), m = strnlen(path, 4096);
		memcpy(line + n, what, w);
		n += w;
		line[n++] = ' ';
		memcpy(line + n, path, m);
		n += m;
		line[n++] = '\n';
		if (write(fd, line, n) < 0) {
			/* a test that finds the line missing fails */
		}
		close(fd);
	}
	errno = saved;
}

static int stale(const char *path, const char *once_var, int *fired)
{
	const char *a = getenv("ESTALE_ALWAYS"), *o = getenv(once_var);
	if (!path)
		return 0;
	if (a && *a && strstr(path, a))
		return 1;
	return o && *o && strstr(path, o) && !__atomic_exchange_n(fired, 1, __ATOMIC_SEQ_CST);
}

static void stat_delay(const char *path)
{
	const char *d = getenv("SHIM_STAT_DELAY_US");
	if (d && *d) {
		int saved = errno;
		usleep((useconds_t)atoi(d));
		errno = saved;
		log_call("back", path);
	}
}

/* The body of a stat wrapper: ESTALE when asked, else the C library's. */
#define STAT_WRAPPER(name, type, ...)                                  \
	static type real;                                              \
	if (!real)                                                     \
		real = (type)dlsym(RTLD_NEXT, name);                   \
	log_call("stat", path);                                        \
	stat_delay(path);                                              \
	if (stale(path, "ESTALE_ONCE", &fired_stat)) {                 \
		errno = ESTALE;                                        \
		return -1;                                             \
	}                                                              \
	return real(__VA_ARGS__)

typedef int (*statx_fn)(int, const char *, int, unsigned int, struct statx *);
typedef int (*fstatat_fn)(int, const char *, struct stat *, int);
typedef int (*fstatat64_fn)(int, const char *, struct stat64 *, int);

int statx(int dirfd, const char *path, int flags, unsigned int mask, struct statx *buf)
{
	STAT_WRAPPER("statx", statx_fn, dirfd, path, flags, mask, buf);
}

int fstatat(int dirfd, const char *path, struct stat *buf, int flags)
{
	STAT_WRAPPER("fstatat", fstatat_fn, dirfd, path, buf, flags);
}

int fstatat64(int dirfd, const char *path, struct stat64 *buf, int flags)
{
	STAT_WRAPPER("fstatat64", fstatat64_fn, dirfd, path, buf, flags);
}

typedef int (*open_fn)(int, const char *, int, ...);

static void rmdir_if_asked(int dirfd, const char *path)
{
	const char *r = getenv("RMDIR_AFTER_OPEN");
	int saved = errno;
	if (r && *r && strstr(path, r))
		unlinkat(dirfd, path, AT_REMOVEDIR);
	errno = saved;
}

/* openat and openat64: ESTALE when asked, else the C library's. */
#define OPEN_WRAPPER(name)                                                     \
	int name(int dirfd, const char *path, int flags, ...)                  \
	{                                                                      \
		static open_fn real;                                           \
		if (!real)                                                     \
			real = (open_fn)dlsym(RTLD_NEXT, #name);               \
		mode_t mode = 0;                                               \
		if (flags & (O_CREAT | __O_TMPFILE)) {                         \
			va_list ap;                                            \
			va_start(ap, flags);                                   \
			mode = (mode_t)va_arg(ap, int);                        \
			va_end(ap);                                            \
		}                                                              \
		log_call("open", path);                                        \
		if (stale(path, "ESTALE_OPEN_ONCE", &fired_open)) {            \
			errno = ESTALE;                                        \
			return -1;                                             \
		}                                                              \
		int fd = real(dirfd, path, flags, mode);                       \
		if (fd >= 0 && (flags & O_DIRECTORY))                          \
			rmdir_if_asked(dirfd, path);                           \
		return fd;                                                     \
	}

OPEN_WRAPPER(openat)
OPEN_WRAPPER(openat64)
