/*
 * sys.h - the portability layer.  Everything cutover asks of the kernel that
 * differs between Linux and FreeBSD goes through here: stat (statx on Linux,
 * fstatat elsewhere), directory reading (getdents64 on Linux, readdir
 * elsewhere), confined opens (openat2 RESOLVE_BENEATH on Linux, a walk of
 * O_NOFOLLOW|O_DIRECTORY opens elsewhere) and in-kernel copies
 * (copy_file_range where it works, read/write otherwise).
 *
 * Building with -DCUTOVER_PORTABLE forces the POSIX fallbacks on Linux too
 * (`make portable`), so that they are tested and do not rot.
 * All functions return 0 (or a count) on success and -errno on failure; they
 * log nothing: the caller knows which path it was and reports it once.
 */
#ifndef CUTOVER_SYS_H
#define CUTOVER_SYS_H

#include <stdbool.h>
#include <stdint.h>
#include <fcntl.h>
#include <sys/types.h>

typedef struct sys_stat {
	uint64_t dev, ino, size, rdev;
	uint32_t mode; /* full st_mode, type bits included */
	uint32_t uid, gid, nlink;
	int64_t atime_ns, mtime_ns, ctime_ns;
} sys_stat;

/* lstat (follow=false) or stat of name relative to dirfd. */
int sys_statat(int dirfd, const char *name, bool follow, sys_stat *st);
int sys_fstat(int fd, sys_stat *st);

/* Directory reading with a large buffer (fewer round trips on NFS).
 * sys_dir_open takes ownership of fd (a directory opened O_RDONLY) when it
 * succeeds; on failure (NULL, errno set) the fd is still the caller's. */
typedef struct sys_dir sys_dir;
sys_dir *sys_dir_open(int fd);
/* 1 with the next name (valid until the next call; "." and ".." skipped) and
 * its d_type (DT_UNKNOWN when the file system does not say), 0 at the end,
 * -errno on error. */
int sys_dir_next(sys_dir *d, const char **name, size_t *len, unsigned *dtype);
int sys_dir_fd(const sys_dir *d);
/* Charges each batch of entries read from d to the source budget
 * (base/budget.h): a directory of the source, not of the target. */
void sys_dir_source(sys_dir *d);
/* Closes the directory and its fd. */
void sys_dir_close(sys_dir *d);

/* Copies len bytes from in to out at their current offsets, in the kernel
 * where possible.  Returns the bytes copied (less than len only at EOF of
 * in) or -errno; then *in_failed (unless NULL) tells whether reading in
 * failed (a source's fault) rather than writing out (a target's). */
int64_t sys_copy(int in, int out, uint64_t len, bool *in_failed);

/* Opens rel (a validated relative path, "" for rootfd itself) beneath rootfd
 * without following any symlink in any component, the last one included, and
 * without leaving rootfd's tree.  flags/mode as for openat (O_NOFOLLOW is
 * added).  Returns the fd or -errno (-ELOOP or -EXDEV when a symlink or an
 * escape was refused). */
int sys_open_beneath(int rootfd, const char *rel, int flags, mode_t mode);

/* Opens the parent directory of rel beneath rootfd the same way, and points
 * *base at rel's last component.  Returns the fd or -errno. */
int sys_open_parent_beneath(int rootfd, const char *rel, const char **base);
/* The same, but the fd may be good only as the directory of *at() calls (an
 * O_PATH descriptor where the system has them): no fsync, fchmod or reading
 * of it.  On a FUSE or network file system that saves the open and release
 * round trips of the directory. */
int sys_lookup_parent_beneath(int rootfd, const char *rel, const char **base);

/* Flags for opening a directory only to use it as the dirfd of *at() calls
 * (O_PATH where defined: no open round trip on FUSE; else O_RDONLY). */
#ifdef O_PATH
#define SYS_O_LOOKUP O_PATH
#else
#define SYS_O_LOOKUP O_RDONLY
#endif

/* 1 when fd lives on a network or user-space file system (NFS, SMB, FUSE,
 * Ceph, 9P, ...), where each stat is a round trip and many requests in
 * flight pay off; 0 on a local one; -errno when it cannot be told. */
int sys_fs_remote(int fd);

/* Which implementation is in use, for `cutover --version -v` and tests:
 * "linux" or "posix". */
const char *sys_flavour(void);

#endif
