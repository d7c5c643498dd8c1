/*
 * sys.c - the portability layer (see sys.h): Linux system calls with POSIX
 * fallbacks.  The fallbacks are the only code on FreeBSD and are forced on
 * Linux by -DCUTOVER_PORTABLE.
 */
#include "sys.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/sysmacros.h>
#include <sys/vfs.h>
#else
#include <sys/mount.h>
#include <sys/param.h>
#endif

#include "budget.h"
#include "util.h"

#if defined(__linux__) && !defined(CUTOVER_PORTABLE)
#define SYS_LINUX 1
#include <linux/openat2.h>
#include <sys/syscall.h>
#else
#define SYS_LINUX 0
#endif

const char *sys_flavour(void) { return SYS_LINUX ? "linux" : "posix"; }

/* ------------------------------------------------------ file system kind */

int sys_fs_remote(int fd)
{
#ifdef __linux__
	/* f_type magic numbers from linux/magic.h and the file systems' own
	 * sources (not all of them are in the header). */
	static const unsigned long remote[] = {
		0x6969,     /* NFS */
		0x517B,     /* SMB */
		0xFF534D42, /* CIFS */
		0xFE534D42, /* SMB2 */
		0x65735546, /* FUSE (sshfs, bench/latfs, ...) */
		0x00C36400, /* Ceph */
		0x01021997, /* 9P */
		0x5346414F, /* AFS */
		0x47504653, /* GPFS */
		0x0BD00BD0, /* Lustre */
		0x013111A8, /* IBRIX */
		0x73757245, /* Coda */
	};
	struct statfs sf;
	if (fstatfs(fd, &sf) < 0)
		return -errno;
	for (size_t i = 0; i < sizeof remote / sizeof *remote; i++)
		if ((unsigned long)sf.f_type == remote[i])
			return 1;
	return 0;
#elif defined(MNT_LOCAL)
	/* FreeBSD and the other BSDs flag local mounts. */
	struct statfs sf;
	if (fstatfs(fd, &sf) < 0)
		return -errno;
	return (sf.f_flags & MNT_LOCAL) ? 0 : 1;
#else
	(void)fd;
	return -ENOSYS;
#endif
}

/* ------------------------------------------------------------------ stat */

static void from_stat(sys_stat *o, const struct stat *st)
{
	o->dev = (uint64_t)st->st_dev;
	o->ino = (uint64_t)st->st_ino;
	o->size = (uint64_t)st->st_size;
	o->rdev = (uint64_t)st->st_rdev;
	o->mode = (uint32_t)st->st_mode;
	o->uid = (uint32_t)st->st_uid;
	o->gid = (uint32_t)st->st_gid;
	o->nlink = (uint32_t)st->st_nlink;
	o->atime_ns = cut_ts_ns(st->st_atim);
	o->mtime_ns = cut_ts_ns(st->st_mtim);
	o->ctime_ns = cut_ts_ns(st->st_ctim);
}

#if SYS_LINUX
static void from_statx(sys_stat *o, const struct statx *sx)
{
	o->dev = (uint64_t)makedev(sx->stx_dev_major, sx->stx_dev_minor);
	o->ino = sx->stx_ino;
	o->size = sx->stx_size;
	o->rdev = (uint64_t)makedev(sx->stx_rdev_major, sx->stx_rdev_minor);
	o->mode = sx->stx_mode;
	o->uid = sx->stx_uid;
	o->gid = sx->stx_gid;
	o->nlink = sx->stx_nlink;
	o->atime_ns = sx->stx_atime.tv_sec * CUT_NS_PER_S + sx->stx_atime.tv_nsec;
	o->mtime_ns = sx->stx_mtime.tv_sec * CUT_NS_PER_S + sx->stx_mtime.tv_nsec;
	o->ctime_ns = sx->stx_ctime.tv_sec * CUT_NS_PER_S + sx->stx_ctime.tv_nsec;
}
#endif

int sys_statat(int dirfd, const char *name, bool follow, sys_stat *st)
{
#if SYS_LINUX
	/* statx asks only for the basic fields (no btime), and AT_NO_AUTOMOUNT
	 * keeps a scan from triggering automounts.  Sync as stat does: an NFS
	 * scan must see current attributes. */
	struct statx sx;
	int fl = AT_NO_AUTOMOUNT | (follow ? 0 : AT_SYMLINK_NOFOLLOW);
	if (statx(dirfd, name, fl, STATX_BASIC_STATS, &sx) == 0) {
		from_statx(st, &sx);
		return 0;
	}
	if (errno != ENOSYS)
		return -errno;
#endif
	struct stat s;
	if (fstatat(dirfd, name, &s, follow ? 0 : AT_SYMLINK_NOFOLLOW) < 0)
		return -errno;
	from_stat(st, &s);
	return 0;
}

int sys_fstat(int fd, sys_stat *st)
{
	struct stat s;
	if (fstat(fd, &s) < 0)
		return -errno;
	from_stat(st, &s);
	return 0;
}

/* ------------------------------------------------------------ directories */

#define DIRBUF (64u << 10) /* ~2000 names a call; NFS fills its own cache by RPC size */

/* POSIX readdir hides its batches: one charge per this many names (a
 * 32 KiB batch of maildir names). */
#define NAMES_PER_BATCH 375

struct sys_dir {
	int fd;
	bool source;     /* charge the source budget per batch */
	unsigned names;  /* POSIX: names read, for the charge */
#if SYS_LINUX
	char *buf;
	size_t len, pos;
	bool eof;
#else
	DIR *dir;
#endif
};

sys_dir *sys_dir_open(int fd)
{
	sys_dir *d = cut_calloc(1, sizeof *d);
	d->fd = fd;
#if SYS_LINUX
	d->buf = cut_malloc(DIRBUF);
#else
	d->dir = fdopendir(fd);
	if (!d->dir) {
		int e = errno;
		free(d); /* fd stays the caller's */
		errno = e;
		return NULL;
	}
#endif
	return d;
}

int sys_dir_fd(const sys_dir *d) { return d->fd; }

#if SYS_LINUX
struct linux_dirent64 {
	uint64_t d_ino;
	int64_t d_off;
	unsigned short d_reclen;
	unsigned char d_type;
	char d_name[];
};
#endif

int sys_dir_next(sys_dir *d, const char **name, size_t *len, unsigned *dtype)
{
	for (;;) {
#if SYS_LINUX
		if (d->pos >= d->len) {
			if (d->eof)
				return 0;
			budget_req r = d->source ? budget_src(0, 0) : (budget_req){0, false};
			long n = syscall(SYS_getdents64, d->fd, d->buf, DIRBUF);
			int e = errno;
			if (d->source) /* the server answered a batch (none past the end) */
				budget_src_after(r, n > 0, 0);
			if (n < 0) {
				if (e == EINTR)
					continue;
				return -e;
			}
			if (n == 0) {
				d->eof = true;
				return 0;
			}
			d->len = (size_t)n;
			d->pos = 0;
		}
		struct linux_dirent64 *de = (struct linux_dirent64 *)(void *)(d->buf + d->pos);
		d->pos += de->d_reclen;
		const char *nm = de->d_name;
		unsigned t = de->d_type;
#else
		errno = 0;
		/* readdir hides the batches: the call that may fetch one is timed */
		bool batch = d->source && d->names++ % NAMES_PER_BATCH == 0;
		budget_req r = batch ? budget_src(1, 0) : (budget_req){0, false};
		struct dirent *de = readdir(d->dir);
		int e = errno;
		if (batch)
			budget_src_done(r);
		if (!de)
			return e ? -e : 0;
		const char *nm = de->d_name;
		unsigned t = de->d_type;
#endif
		if (nm[0] == '.' && (nm[1] == 0 || (nm[1] == '.' && nm[2] == 0)))
			continue;
		*name = nm;
		*len = strlen(nm);
		*dtype = t;
		return 1;
	}
}

void sys_dir_source(sys_dir *d) { d->source = true; }

void sys_dir_close(sys_dir *d)
{
	if (!d)
		return;
#if SYS_LINUX
	close(d->fd);
	free(d->buf);
#else
	closedir(d->dir); /* closes fd */
#endif
	free(d);
}

/* ------------------------------------------------------------------ copy */

static int64_t copy_rw(int in, int out, uint64_t len, bool *in_failed)
{
	size_t bufsz = 1u << 20;
	char *buf = cut_malloc(bufsz);
	uint64_t done = 0;
	int64_t rc = 0;
	while (done < len) {
		size_t want = len - done < bufsz ? (size_t)(len - done) : bufsz;
		ssize_t r = read(in, buf, want);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			rc = -errno;
			*in_failed = true;
			break;
		}
		if (r == 0)
			break;
		int w = cut_write_all(out, buf, (size_t)r);
		if (w < 0) {
			rc = w;
			break;
		}
		done += (uint64_t)r;
	}
	free(buf);
	return rc < 0 ? rc : (int64_t)done;
}

int64_t sys_copy(int in, int out, uint64_t len, bool *in_failed)
{
	bool ignored;
	if (!in_failed)
		in_failed = &ignored;
	*in_failed = false;
	uint64_t done = 0;
#if SYS_LINUX
	while (done < len) {
		size_t want = len - done > (1u << 30) ? (1u << 30) : (size_t)(len - done);
		ssize_t n = copy_file_range(in, NULL, out, NULL, want, 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			/* Not supported here (old kernel, cross-device, some file
			 * systems), or failed: read/write for the rest.  An error
			 * does not say which side failed (an NFS source's EIO, a
			 * full target); read and write do, and the caller treats
			 * the two differently. */
			break;
		}
		if (n == 0)
			return (int64_t)done;
		done += (uint64_t)n;
	}
	if (done == len)
		return (int64_t)done;
#endif
	int64_t r = copy_rw(in, out, len - done, in_failed);
	return r < 0 ? r : (int64_t)done + r;
}

/* ------------------------------------------------------- confined opens */

/* Walks rel one component at a time from rootfd with O_NOFOLLOW, opening
 * every component but the last as O_DIRECTORY.  Returns the parent's fd (a
 * dup of rootfd for a one-component path) and sets *base. */
static int walk_parent(int rootfd, const char *rel, const char **base)
{
	int fd = dup(rootfd);
	if (fd < 0)
		return -errno;
	const char *p = rel;
	for (;;) {
		const char *slash = strchr(p, '/');
		if (!slash) {
			*base = p;
			return fd;
		}
		size_t n = (size_t)(slash - p);
		char comp[NAME_MAX + 1];
		if (n == 0 || n > NAME_MAX) {
			close(fd);
			return -ENAMETOOLONG;
		}
		memcpy(comp, p, n);
		comp[n] = 0;
		if (strcmp(comp, "..") == 0 || strcmp(comp, ".") == 0) {
			close(fd);
			return -EXDEV;
		}
		int nfd = openat(fd, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		int e = errno;
		close(fd);
		if (nfd < 0)
			return -e; /* ELOOP (EMLINK on FreeBSD) when the component is a symlink */
		fd = nfd;
		p = slash + 1;
	}
}

/* True for a last component that would name rootfd's parent, the directory
 * itself, or nothing: refused whatever the caller validated before. */
static bool bad_base(const char *b)
{
	return !*b || strcmp(b, ".") == 0 || strcmp(b, "..") == 0;
}

static int open_parent(int rootfd, const char *rel, const char **base, bool lookup_only)
{
	if (rel[0] == '/')
		return -EXDEV; /* absolute: never beneath */
	const char *slash = strrchr(rel, '/');
	if (bad_base(slash ? slash + 1 : rel))
		return -EXDEV;
	if (!slash) {
		*base = rel;
		int fd = dup(rootfd);
		return fd < 0 ? -errno : fd;
	}
#if SYS_LINUX
	size_t n = (size_t)(slash - rel);
	char *dir = cut_strndup(rel, n);
	struct open_how how = {
		.flags = (lookup_only ? O_PATH : O_RDONLY) | O_DIRECTORY | O_CLOEXEC,
		.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
	};
	long fd = syscall(SYS_openat2, rootfd, dir, &how, sizeof how);
	int e = errno;
	free(dir);
	if (fd >= 0) {
		*base = slash + 1;
		return (int)fd;
	}
	if (e != ENOSYS && e != EPERM) /* EPERM: seccomp filters that block openat2 */
		return -e;
#else
	(void)lookup_only; /* the walk opens each component O_RDONLY: its errors are the tested ones */
#endif
	return walk_parent(rootfd, rel, base);
}

int sys_open_parent_beneath(int rootfd, const char *rel, const char **base)
{
	return open_parent(rootfd, rel, base, false);
}

int sys_lookup_parent_beneath(int rootfd, const char *rel, const char **base)
{
	return open_parent(rootfd, rel, base, true);
}

int sys_open_beneath(int rootfd, const char *rel, int flags, mode_t mode)
{
	if (!*rel) {
		int fd = openat(rootfd, ".", flags | O_CLOEXEC, mode);
		return fd < 0 ? -errno : fd;
	}
	const char *base;
	int dfd = open_parent(rootfd, rel, &base, true); /* only the dirfd of the openat below */
	if (dfd < 0)
		return dfd;
	int fd = openat(dfd, base, flags | O_NOFOLLOW | O_CLOEXEC, mode);
	int e = errno;
	close(dfd);
	return fd < 0 ? -e : fd;
}
