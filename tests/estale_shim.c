/*
 * estale_shim.c - an LD_PRELOAD library for the integration tests
 * (tests/it_scan.sh, tests/it_faults.sh) that injects the faults of a live
 * NFS source and of a failing target into cutover's system calls.
 *
 * NFS's ESTALE (the server's file handle went stale: the file was replaced
 * on the server):
 *   ESTALE_ONCE=S       the first statx/fstatat whose path contains S fails
 *                       (once per process): the retry must succeed
 *   ESTALE_OPEN_ONCE=S  the same for openat
 *   ESTALE_ALWAYS=S     every such stat or open fails: the path must be
 *                       reported
 *   RMDIR_AFTER_OPEN=S  a directory whose path contains S is removed right
 *                       after it is opened (it must be empty): its listing
 *                       then fails with ENOENT, as when Dovecot deletes a
 *                       folder while a scan lists it
 *   RENAME_AFTER_OPEN=S:NEW  a directory whose absolute path (as FAULT_PATH
 *                       below) contains S is renamed to NEW (in the same
 *                       parent) right after it is opened,
 *                       once per process, as when Dovecot renames a folder
 *                       while a scan lists it
 *   SHIM_LOG=FILE       every stat and open by name is logged to FILE, one
 *                       line each ("TID stat NAME", "TID open NAME", TID the
 *                       calling thread), so a test can count the lookups the
 *                       scanner asks for and see which threads made them
 *   SHIM_STAT_DELAY_US=N  every stat by name takes N microseconds longer,
 *                       like a round trip to an NFS server; with SHIM_LOG,
 *                       "TID back NAME" is logged when the delay ends, so
 *                       the log tells how many stats were waiting at once
 *
 * One fault rule, any errno on any of several calls (the fault matrix of
 * docs/RELIABILITY.md):
 *   FAULT_OP=OP[,OP]    the calls that fail: stat (statx, fstatat), open
 *                       (openat), getdents (a directory listing), read
 *                       (read, pread, and the source side of
 *                       copy_file_range), write (write, pwrite, the target
 *                       side of copy_file_range), fsync (fsync, fdatasync,
 *                       syncfs), rename (renameat, renameat2), mkdir
 *                       (mkdirat), unlink (unlinkat), close (close: the fd
 *                       is closed all the same, as NFS closes it when it
 *                       reports a write-back error there), link (linkat:
 *                       the new name), symlink (symlinkat: the new name),
 *                       chmod (fchmodat, fchmod), utimes (utimensat,
 *                       futimens); rename also covers rename(2)
 *   FAULT_PATH=S        ... whose absolute path contains S: for stat, open,
 *                       rename (either name), mkdir, unlink, link, symlink,
 *                       chmod and utimes by name, the path of the directory
 *                       fd (/proc/self/fd) joined with the name; for calls
 *                       on an fd, the fd's path
 *   FAULT_ERRNO=E       the error: EIO, EACCES, ESTALE, ENOSPC, EDQUOT,
 *                       EROFS, EMFILE, ENOENT or a number (default EIO)
 *   FAULT_AFTER=N       read, write: the first N bytes of the file go
 *                       through (a call across offset N is shortened to end
 *                       there) and the call at offset N fails: a fault in
 *                       the middle of a file.  Other calls: the first N
 *                       matching calls succeed.  Default 0
 *   FAULT_TIMES=M       M calls fail, the later ones succeed again (a
 *                       transient fault); default: every one
 *   FAULT_PER_PATH=1    FAULT_AFTER (as a count of calls) and FAULT_TIMES
 *                       count per path instead of per process: with
 *                       FAULT_TIMES=1, every path's first call fails once
 *                       (an ESTALE storm)
 *   FAULT_LOG=FILE      one line "OP ERRNO PATH" per injected failure, so a
 *                       test proves that the fault hit
 *
 * A file that changes while it is read (the source side of a copy):
 *   MUTATE_PATH=S       when a read (or copy_file_range) of a file whose
 *   MUTATE_AT=N         path contains S reaches offset N (the read across it
 *   MUTATE=HOW          is shortened to end there), the shim first changes
 *                       the file, once per process: HOW is `truncate` (to N
 *                       bytes), `grow` (4096 bytes appended) or `replace`
 *                       (PATH.new is renamed over PATH: the reader's fd still
 *                       holds the old file).  "MUTATE PATH" goes to FAULT_LOG
 *
 * A kill -9 at a chosen point of a commit:
 *   KILL_AT_RENAME=S:WHEN  the first rename (rename, renameat, renameat2)
 *                       whose new absolute path contains S kills the process
 *                       with SIGKILL, WHEN `before` or `after` the rename:
 *                       every file cutover commits is renamed into place
 *
 * A clock step on the machine that runs cutover (file times come from the
 * file systems and do not move):
 *   CLOCK_OFFSET_S=N    clock_gettime(CLOCK_REALTIME*), gettimeofday and time
 *                       answer N seconds (signed) off
 *
 * Everything else goes to the C library (dlsym RTLD_NEXT).  A test tool,
 * never linked into cutover.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

typedef int (*open_fn_plain)(const char *, int, ...);
typedef int (*close_fn)(int);

static int fired_stat, fired_open, fired_rename, fired_mutate;

#define REAL(name, type)                                                \
	static type real;                                               \
	if (!real)                                                      \
		real = (type)dlsym(RTLD_NEXT, name)

/* Appends one line to the file named by env var (O_APPEND: one write per
 * line, so the workers' lines do not mix). */
static void log_line(const char *var, const char *a, const char *b, const char *path)
{
	const char *f = getenv(var);
	if (!f || !*f || !path || !*path)
		return;
	int saved = errno;
	REAL("open", open_fn_plain);
	int fd = real(f, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
	if (fd >= 0) {
		char line[4200];
		size_t n = (size_t)snprintf(line, 64, "%s ", a);
		size_t w = strlen(b), m = strnlen(path, 4096);
		memcpy(line + n, b, w);
		n += w;
		line[n++] = ' ';
		memcpy(line + n, path, m);
		n += m;
		line[n++] = '\n';
		if (write(fd, line, n) < 0) {
			/* a test that finds the line missing fails */
		}
		static close_fn real_close; /* not the wrapper: a close fault logs */
		if (!real_close)
			real_close = (close_fn)dlsym(RTLD_NEXT, "close");
		real_close(fd);
	}
	errno = saved;
}

static void log_call(const char *what, const char *path)
{
	char tid[32];
	snprintf(tid, sizeof tid, "%ld", (long)gettid());
	log_line("SHIM_LOG", tid, what, path);
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

/* ------------------------------------------------------- the fault rule */

static const struct { const char *name; int err; } errnames[] = {
	{"EIO", EIO}, {"EACCES", EACCES}, {"ESTALE", ESTALE}, {"ENOSPC", ENOSPC},
	{"EDQUOT", EDQUOT}, {"EROFS", EROFS}, {"EMFILE", EMFILE}, {"ENOENT", ENOENT},
};

static int fault_errno(void)
{
	const char *e = getenv("FAULT_ERRNO");
	if (!e || !*e)
		return EIO;
	for (size_t i = 0; i < sizeof errnames / sizeof *errnames; i++)
		if (strcmp(e, errnames[i].name) == 0)
			return errnames[i].err;
	return atoi(e) > 0 ? atoi(e) : EIO;
}

static long env_num(const char *var, long dflt)
{
	const char *v = getenv(var);
	return v && *v ? atol(v) : dflt;
}

/* Whether op is one of FAULT_OP's. */
static int fault_op(const char *op)
{
	const char *ops = getenv("FAULT_OP");
	if (!ops || !*ops)
		return 0;
	size_t n = strlen(op);
	for (const char *p = ops; (p = strstr(p, op)); p += n)
		if ((p == ops || p[-1] == ',') && (p[n] == 0 || p[n] == ','))
			return 1;
	return 0;
}

/* ... and path contains FAULT_PATH. */
static int fault_targets(const char *op, const char *path)
{
	const char *s = getenv("FAULT_PATH");
	return path && fault_op(op) && (!s || !*s || strstr(path, s));
}

/* Per-path call counts (FAULT_PER_PATH): an open-addressed table of path
 * hashes, enough for a test tree. */
#define SLOTS 65536
static struct { uint64_t h; long calls; } slots[SLOTS];
static long proc_calls;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;

static long *counter(const char *path)
{
	if (env_num("FAULT_PER_PATH", 0) == 0)
		return &proc_calls;
	uint64_t h = 1469598103934665603ull;
	for (const char *p = path; *p; p++)
		h = (h ^ (unsigned char)*p) * 1099511628211ull;
	h |= 1;
	for (size_t i = h % SLOTS, k = 0; k < SLOTS; i = (i + 1) % SLOTS, k++)
		if (slots[i].h == h || slots[i].h == 0) {
			slots[i].h = h;
			return &slots[i].calls;
		}
	return &proc_calls;
}

/* Decides whether this call fails: counts it, and logs an injected fault.
 * count_calls: FAULT_AFTER counts calls (0: read and write, whose offset
 * rw_gate has checked against it). */
static int fault_now(const char *op, const char *path, int count_calls)
{
	if (!fault_targets(op, path))
		return 0;
	long after = count_calls ? env_num("FAULT_AFTER", 0) : 0, times = env_num("FAULT_TIMES", -1);
	pthread_mutex_lock(&mu);
	long *c = counter(path), k = (*c)++;
	pthread_mutex_unlock(&mu);
	if (k < after || (times >= 0 && k >= after + times))
		return 0;
	int err = fault_errno();
	char e[16];
	snprintf(e, sizeof e, "%d", err);
	log_line("FAULT_LOG", op, e, path);
	errno = err;
	return 1;
}

/* The absolute path of fd, or "" */
static const char *fd_path(int fd, char buf[4096])
{
	char l[64];
	snprintf(l, sizeof l, "/proc/self/fd/%d", fd);
	ssize_t n = readlink(l, buf, 4095);
	buf[n > 0 ? n : 0] = 0;
	return buf;
}

/* dirfd's path joined with name (an absolute name as it is), in buf. */
static const char *at_path(int dirfd, const char *name, char buf[8192])
{
	if (name[0] == '/' || (dirfd != AT_FDCWD && dirfd < 0))
		return name;
	char d[4096];
	if (dirfd == AT_FDCWD) {
		if (!getcwd(d, sizeof d))
			return name;
	} else {
		fd_path(dirfd, d);
	}
	snprintf(buf, 8192, "%s/%s", d, name);
	return buf;
}

static void mutate(const char *path, long at)
{
	const char *how = getenv("MUTATE");
	int saved = errno;
	log_line("FAULT_LOG", "MUTATE", how ? how : "?", path);
	if (how && strcmp(how, "truncate") == 0) {
		if (truncate(path, at) < 0)
			perror("shim: truncate");
	} else if (how && strcmp(how, "grow") == 0) {
		REAL("open", open_fn_plain);
		int fd = real(path, O_WRONLY | O_APPEND | O_CLOEXEC);
		char z[4096];
		memset(z, 'g', sizeof z);
		if (fd < 0 || write(fd, z, sizeof z) != (ssize_t)sizeof z)
			perror("shim: grow");
		if (fd >= 0)
			close(fd);
	} else if (how && strcmp(how, "replace") == 0) {
		char n[4200];
		snprintf(n, sizeof n, "%s.new", path);
		if (rename(n, path) < 0)
			perror("shim: replace");
	}
	errno = saved;
}

/* A read or write of len bytes at offset off of fd (off < 0: the fd's
 * offset).  Returns -1 when the call must fail (errno set), else the length
 * it may have: shortened to end at FAULT_AFTER or MUTATE_AT. */
static long rw_gate(const char *op, int fd, long long off, size_t len)
{
	int reading = op[0] == 'r';
	const char *mp = getenv("MUTATE_PATH");
	int want_mut = reading && mp && *mp && !__atomic_load_n(&fired_mutate, __ATOMIC_SEQ_CST);
	if (!want_mut && !fault_op(op))
		return (long)len; /* not asked for this op: no /proc lookup */
	char buf[4096];
	const char *path = fd_path(fd, buf);
	if (off < 0)
		off = lseek(fd, 0, SEEK_CUR);
	if (off < 0)
		return (long)len;
	if (want_mut && strstr(path, mp)) {
		long at = env_num("MUTATE_AT", 0);
		if (off < at && off + (long long)len > at)
			return (long)(at - off);
		if (off >= at && !__atomic_exchange_n(&fired_mutate, 1, __ATOMIC_SEQ_CST))
			mutate(path, at);
	}
	if (!fault_targets(op, path))
		return (long)len;
	long after = env_num("FAULT_AFTER", 0);
	if (off < after && off + (long long)len > after)
		return (long)(after - off);
	if (off < after)
		return (long)len;
	return fault_now(op, path, 0) ? -1 : (long)len;
}

/* ----------------------------------------------------------- the wrappers */

/* The body of a stat wrapper: ESTALE or the rule's fault when asked, else
 * the C library's. */
#define STAT_WRAPPER(name, type, ...)                                  \
	REAL(name, type);                                              \
	log_call("stat", path);                                        \
	stat_delay(path);                                              \
	if (stale(path, "ESTALE_ONCE", &fired_stat)) {                 \
		errno = ESTALE;                                        \
		return -1;                                             \
	}                                                              \
	char full_[8192];                                              \
	if (*path && fault_op("stat") &&                               \
	    fault_now("stat", at_path(dirfd, path, full_), 1))         \
		return -1;                                             \
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

static void after_dir_open(int dirfd, const char *path)
{
	const char *r = getenv("RMDIR_AFTER_OPEN"), *m = getenv("RENAME_AFTER_OPEN");
	int saved = errno;
	if (r && *r && strstr(path, r))
		unlinkat(dirfd, path, AT_REMOVEDIR);
	if (m && *m && strchr(m, ':')) {
		char pat[256], to[4200];
		size_t pl = (size_t)(strchr(m, ':') - m);
		snprintf(pat, sizeof pat, "%.*s", (int)pl, m);
		char full[8192];
		if (strstr(at_path(dirfd, path, full), pat) &&
		    !__atomic_exchange_n(&fired_rename, 1, __ATOMIC_SEQ_CST)) {
			const char *slash = strrchr(path, '/');
			size_t dl = slash ? (size_t)(slash - path + 1) : 0;
			snprintf(to, sizeof to, "%.*s%s", (int)dl, path, m + pl + 1);
			if (renameat(dirfd, path, dirfd, to) < 0)
				perror("shim: rename after open");
			log_line("FAULT_LOG", "RENAMED", to, path);
		}
	}
	errno = saved;
}

/* openat and openat64: ESTALE or the rule's fault when asked, else the C
 * library's. */
#define OPEN_WRAPPER(name)                                                     \
	int name(int dirfd, const char *path, int flags, ...)                  \
	{                                                                      \
		REAL(#name, open_fn);                                          \
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
		char full_[8192];                                              \
		if (fault_op("open") &&                                        \
		    fault_now("open", at_path(dirfd, path, full_), 1))         \
			return -1;                                             \
		int fd = real(dirfd, path, flags, mode);                       \
		if (fd >= 0 && (flags & O_DIRECTORY))                          \
			after_dir_open(dirfd, path);                           \
		return fd;                                                     \
	}

OPEN_WRAPPER(openat)
OPEN_WRAPPER(openat64)

typedef ssize_t (*read_fn)(int, void *, size_t);
typedef ssize_t (*write_fn)(int, const void *, size_t);
typedef ssize_t (*pread_fn)(int, void *, size_t, off_t);
typedef ssize_t (*pwrite_fn)(int, const void *, size_t, off_t);
typedef ssize_t (*cfr_fn)(int, off_t *, int, off_t *, size_t, unsigned);
typedef int (*fd_fn)(int);

ssize_t read(int fd, void *buf, size_t n)
{
	REAL("read", read_fn);
	long k = rw_gate("read", fd, -1, n);
	return k < 0 ? -1 : real(fd, buf, (size_t)k);
}

ssize_t pread(int fd, void *buf, size_t n, off_t off)
{
	REAL("pread", pread_fn);
	long k = rw_gate("read", fd, off, n);
	return k < 0 ? -1 : real(fd, buf, (size_t)k, off);
}

ssize_t write(int fd, const void *buf, size_t n)
{
	REAL("write", write_fn);
	long k = rw_gate("write", fd, -1, n);
	return k < 0 ? -1 : real(fd, buf, (size_t)k);
}

ssize_t pwrite(int fd, const void *buf, size_t n, off_t off)
{
	REAL("pwrite", pwrite_fn);
	long k = rw_gate("write", fd, off, n);
	return k < 0 ? -1 : real(fd, buf, (size_t)k, off);
}

ssize_t copy_file_range(int in, off_t *oin, int out, off_t *oout, size_t n, unsigned flags)
{
	REAL("copy_file_range", cfr_fn);
	long k = rw_gate("read", in, oin ? *oin : -1, n);
	if (k >= 0)
		k = rw_gate("write", out, oout ? *oout : -1, (size_t)k);
	return k < 0 ? -1 : real(in, oin, out, oout, (size_t)k, flags);
}

#define FSYNC_WRAPPER(name)                                      \
	int name(int fd)                                         \
	{                                                        \
		REAL(#name, fd_fn);                              \
		char buf[4096];                                  \
		if (fault_op("fsync") &&                         \
		    fault_now("fsync", fd_path(fd, buf), 1))     \
			return -1;                               \
		return real(fd);                                 \
	}

FSYNC_WRAPPER(fsync)
FSYNC_WRAPPER(fdatasync)
FSYNC_WRAPPER(syncfs)

typedef int (*renameat_fn)(int, const char *, int, const char *);
typedef int (*renameat2_fn)(int, const char *, int, const char *, unsigned);
typedef int (*mkdirat_fn)(int, const char *, mode_t);
typedef int (*rename_fn)(const char *, const char *);

static int rename_fault(int ofd, const char *from, int nfd, const char *to)
{
	if (!fault_op("rename"))
		return 0;
	char a[8192], b[8192];
	const char *f = at_path(ofd, from, a);
	return fault_targets("rename", f) ? fault_now("rename", f, 1)
					   : fault_now("rename", at_path(nfd, to, b), 1);
}

/* KILL_AT_RENAME: whether this rename is the one to die at, when. */
static int kill_point(int nfd, const char *to, const char *when)
{
	const char *k = getenv("KILL_AT_RENAME");
	const char *colon = k ? strrchr(k, ':') : NULL;
	if (!colon || strcmp(colon + 1, when) != 0)
		return 0;
	char pat[4096], b[8192];
	snprintf(pat, sizeof pat, "%.*s", (int)(colon - k), k);
	return strstr(at_path(nfd, to, b), pat) != NULL;
}

/* The body of a rename wrapper: the fault rule, the kill points, the call. */
#define RENAME_BODY(ofd, from, nfd, to, call)                       \
	if (rename_fault(ofd, from, nfd, to))                       \
		return -1;                                          \
	if (kill_point(nfd, to, "before"))                          \
		raise(SIGKILL);                                     \
	int r = call;                                               \
	if (r == 0 && kill_point(nfd, to, "after"))                 \
		raise(SIGKILL);                                     \
	return r

int renameat(int ofd, const char *from, int nfd, const char *to)
{
	REAL("renameat", renameat_fn);
	RENAME_BODY(ofd, from, nfd, to, real(ofd, from, nfd, to));
}

int renameat2(int ofd, const char *from, int nfd, const char *to, unsigned flags)
{
	REAL("renameat2", renameat2_fn);
	RENAME_BODY(ofd, from, nfd, to, real(ofd, from, nfd, to, flags));
}

int rename(const char *from, const char *to)
{
	REAL("rename", rename_fn);
	RENAME_BODY(AT_FDCWD, from, AT_FDCWD, to, real(from, to));
}

int mkdirat(int dfd, const char *path, mode_t mode)
{
	REAL("mkdirat", mkdirat_fn);
	char full[8192];
	return fault_op("mkdir") && fault_now("mkdir", at_path(dfd, path, full), 1)
		       ? -1
		       : real(dfd, path, mode);
}

typedef int (*unlinkat_fn)(int, const char *, int);

int unlinkat(int dfd, const char *path, int flags)
{
	REAL("unlinkat", unlinkat_fn);
	char full[8192];
	return fault_op("unlink") && fault_now("unlink", at_path(dfd, path, full), 1)
		       ? -1
		       : real(dfd, path, flags);
}

/* Calls by name that make or change one name on the target: the fault
 * is judged on the name made (link, symlink) or changed (chmod, utimes). */
#define AT_FAULT(op, dfd, path)                                                 \
	(fault_op(op) && fault_now(op, at_path(dfd, path, (char[8192]){0}), 1))

typedef int (*linkat_fn)(int, const char *, int, const char *, int);

int linkat(int odfd, const char *old, int ndfd, const char *new, int flags)
{
	REAL("linkat", linkat_fn);
	return AT_FAULT("link", ndfd, new) ? -1 : real(odfd, old, ndfd, new, flags);
}

typedef int (*symlinkat_fn)(const char *, int, const char *);

int symlinkat(const char *target, int ndfd, const char *new)
{
	REAL("symlinkat", symlinkat_fn);
	return AT_FAULT("symlink", ndfd, new) ? -1 : real(target, ndfd, new);
}

typedef int (*fchmodat_fn)(int, const char *, mode_t, int);

int fchmodat(int dfd, const char *path, mode_t mode, int flags)
{
	REAL("fchmodat", fchmodat_fn);
	return AT_FAULT("chmod", dfd, path) ? -1 : real(dfd, path, mode, flags);
}

typedef int (*fchmod_fn)(int, mode_t);

int fchmod(int fd, mode_t mode)
{
	REAL("fchmod", fchmod_fn);
	char buf[4096];
	return fault_op("chmod") && fault_now("chmod", fd_path(fd, buf), 1) ? -1 : real(fd, mode);
}

typedef int (*utimensat_fn)(int, const char *, const struct timespec *, int);

int utimensat(int dfd, const char *path, const struct timespec ts[2], int flags)
{
	REAL("utimensat", utimensat_fn);
	return AT_FAULT("utimes", dfd, path) ? -1 : real(dfd, path, ts, flags);
}

typedef int (*futimens_fn)(int, const struct timespec *);

int futimens(int fd, const struct timespec ts[2])
{
	REAL("futimens", futimens_fn);
	char buf[4096];
	return fault_op("utimes") && fault_now("utimes", fd_path(fd, buf), 1) ? -1 : real(fd, ts);
}

/* close: the fd's path is read before it goes; the fd goes either way. */
int close(int fd)
{
	REAL("close", fd_fn);
	if (!fault_op("close"))
		return real(fd);
	char buf[4096];
	int fail = fault_now("close", fd_path(fd, buf), 1);
	int r = real(fd);
	if (fail) {
		errno = fault_errno();
		return -1;
	}
	return r;
}

/* Directory listings: cutover calls getdents64 through syscall(2). */
typedef long (*syscall_fn)(long, ...);

long syscall(long nr, ...)
{
	REAL("syscall", syscall_fn);
	va_list ap;
	va_start(ap, nr);
	long a[6];
	for (int i = 0; i < 6; i++)
		a[i] = va_arg(ap, long);
	va_end(ap);
	if (nr == SYS_getdents64 && fault_op("getdents")) {
		char buf[4096];
		if (fault_now("getdents", fd_path((int)a[0], buf), 1))
			return -1;
	}
	return real(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
}

/* ----------------------------------------------------------- the clock */

typedef int (*cg_fn)(clockid_t, struct timespec *);
typedef int (*gtod_fn)(struct timeval *, void *);
typedef time_t (*time_fn)(time_t *);

int clock_gettime(clockid_t c, struct timespec *ts)
{
	REAL("clock_gettime", cg_fn);
	int r = real(c, ts);
	if (r == 0 && (c == CLOCK_REALTIME || c == CLOCK_REALTIME_COARSE))
		ts->tv_sec += env_num("CLOCK_OFFSET_S", 0);
	return r;
}

int gettimeofday(struct timeval *tv, void *tz)
{
	REAL("gettimeofday", gtod_fn);
	int r = real(tv, tz);
	if (r == 0)
		tv->tv_sec += env_num("CLOCK_OFFSET_S", 0);
	return r;
}

time_t time(time_t *out)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	if (out)
		*out = ts.tv_sec;
	return ts.tv_sec;
}
