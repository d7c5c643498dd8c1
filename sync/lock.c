/*
 * lock.c - DIR/lock: one cutover pass at a time on a state directory.
 *
 * The lock file holds "pid=", "host=" and "start=" lines and, for as long as
 * its run lives, an flock(LOCK_EX) on its inode.  Protocol:
 *
 *   1. Write our lock to DIR/lock.<pid>.tmp and flock it.
 *   2. link() it to DIR/lock: success means we hold the lock (the flock was
 *      taken before the name appeared, so nobody can see it unlocked).
 *   3. EEXIST: open DIR/lock and try flock(LOCK_NB) on it.  Held: a live run
 *      (CUT_LOCKED).  Not held: its run died, or runs on another host over NFS.
 *      We now hold the flock on the old inode, so no other contender can get
 *      past this step until we are done; check that DIR/lock is still that
 *      inode (else start again), and decide from its contents:
 *        - another host: refuse (we cannot see whether it is alive);
 *        - this host and the pid alive: refuse (never two runs, even if the
 *          pid was reused: the message says how to remove the lock);
 *        - this host and the pid gone: stale; rename() our file over it.
 *   4. Release: unlink DIR/lock while still holding the flock, then close.
 *      A contender that opened the old inode sees it unlinked in step 3
 *      (inode check) and starts again.
 *
 * link() and rename() are atomic on local file systems and on NFS.
 */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "sync/sync.h"

int sync_lock_parse(const char *text, size_t len, sync_lock_holder *h)
{
	memset(h, 0, sizeof *h);
	h->pid = -1;
	const char *p = text, *end = text + len;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *le = nl ? nl : end;
		size_t l = (size_t)(le - p);
		char v[300];
		if (l > 4 && memcmp(p, "pid=", 4) == 0 && l - 4 < 20) {
			memcpy(v, p + 4, l - 4);
			v[l - 4] = 0;
			char *e;
			long x = strtol(v, &e, 10);
			if (*e == 0 && x > 0)
				h->pid = x;
		} else if (l > 5 && memcmp(p, "host=", 5) == 0 && l - 5 < sizeof h->host) {
			memcpy(h->host, p + 5, l - 5);
			h->host[l - 5] = 0;
		} else if (l > 6 && memcmp(p, "start=", 6) == 0 && l - 6 < 20) {
			memcpy(v, p + 6, l - 6);
			v[l - 6] = 0;
			h->start = strtoll(v, NULL, 10);
		}
		p = le + 1;
	}
	return h->pid > 0 && h->host[0] ? 0 : -1;
}

static void my_host(char out[256])
{
	if (gethostname(out, 255) < 0)
		strcpy(out, "localhost");
	out[255] = 0;
}

static int read_fd_text(int fd, char *buf, size_t cap)
{
	ssize_t n = pread(fd, buf, cap - 1, 0);
	if (n < 0)
		return -1;
	buf[n] = 0;
	return (int)n;
}

static void holder_text(const sync_lock_holder *h, char *out, size_t cap)
{
	char when[64] = "an unknown time";
	time_t t = (time_t)h->start;
	struct tm tm;
	if (h->start > 0 && localtime_r(&t, &tm))
		strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", &tm);
	if (h->pid <= 0)
		snprintf(out, cap, "a run whose lock file cannot be read");
	else
		snprintf(out, cap, "pid %ld on %s, started %s", h->pid, h->host[0] ? h->host : "?", when);
}

/* Step 1: writes our lock to tmp and flocks it.  The fd, or -1 (logged). */
static int lock_write_own(const char *tmp, const char *host)
{
	unlink(tmp);
	int fd = open(tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0) {
		CUT_SYSERR("%s: cannot create the lock", tmp);
		return -1;
	}
	char text[512];
	int tl = snprintf(text, sizeof text, "pid=%ld\nhost=%s\nstart=%lld\n", (long)getpid(), host,
			  (long long)time(NULL));
	if (cut_write_all(fd, text, (size_t)tl) < 0 || fsync(fd) < 0 || flock(fd, LOCK_EX | LOCK_NB) < 0) {
		CUT_SYSERR("%s: cannot write or lock", tmp);
		close(fd);
		unlink(tmp);
		return -1;
	}
	return fd;
}

/* Step 3, the flock of DIR/lock (open as ofd) held: a live run.  Fills
 * *holder from the file and logs who holds it.  CUT_LOCKED. */
static int lock_refuse_live(const sync_lock *l, int ofd, sync_lock_holder *holder)
{
	char buf[1024];
	if (read_fd_text(ofd, buf, sizeof buf) < 0 || sync_lock_parse(buf, strlen(buf), holder) < 0) {
		holder->pid = 0;
		snprintf(holder->host, sizeof holder->host, "?");
	}
	char ht[400];
	holder_text(holder, ht, sizeof ht);
	CUT_ERR("%s: another cutover run holds the lock (%s); try again when it has "
		"finished", l->path, ht);
	return CUT_LOCKED;
}

/* Step 3, the flock of DIR/lock (open as ofd) ours: decides from its
 * contents whether its run is dead.  CUT_OK to take it over, or
 * CUT_LOCKED (logged). */
static int lock_judge_unheld(const sync_lock *l, int ofd, const char *host,
			     sync_lock_holder *holder)
{
	char buf[1024];
	int n = read_fd_text(ofd, buf, sizeof buf);
	if (n < 0 || sync_lock_parse(buf, (size_t)n, holder) < 0) {
		/* An empty or torn lock that nobody holds: only a run
		 * that died while writing it leaves that. */
		CUT_WARN("%s: recovering an unreadable lock that no run holds", l->path);
		return CUT_OK;
	}
	char ht[400];
	holder_text(holder, ht, sizeof ht);
	if (strcmp(holder->host, host) != 0) {
		CUT_ERR("%s: held by a run on another host (%s); cutover cannot tell "
			"whether it is alive: if it is not, remove %s", l->path, ht, l->path);
		return CUT_LOCKED;
	}
	if (kill((pid_t)holder->pid, 0) == 0 || errno == EPERM) {
		CUT_ERR("%s: held by %s, which is still running; if that process is "
			"not a cutover run, remove %s", l->path, ht, l->path);
		return CUT_LOCKED;
	}
	CUT_WARN("%s: taking over a stale lock left by a dead run (%s)", l->path, ht);
	return CUT_OK;
}

/* Steps 2 and 3 once, our lock written to tmp: CUT_OK when DIR/lock is
 * ours now, CUT_LOCKED or CUT_FAILED (logged), or CUT_OK with *again when
 * DIR/lock changed meanwhile and the attempt must be made again. */
static int lock_attempt(const sync_lock *l, const char *tmp, const char *host,
			sync_lock_holder *holder, bool *again)
{
	*again = false;
	if (link(tmp, l->path) == 0) {
		unlink(tmp);
		return CUT_OK;
	}
	if (errno != EEXIST) {
		CUT_SYSERR("%s: cannot create the lock", l->path);
		return CUT_FAILED;
	}
	int ofd = open(l->path, O_RDONLY | O_CLOEXEC);
	if (ofd < 0) {
		if (errno == ENOENT) {
			*again = true; /* released meanwhile */
			return CUT_OK;
		}
		CUT_SYSERR("%s: cannot open the lock", l->path);
		return CUT_FAILED;
	}
	int rc;
	struct stat a, b;
	if (flock(ofd, LOCK_EX | LOCK_NB) < 0) {
		if (errno != EWOULDBLOCK) {
			CUT_SYSERR("%s: flock", l->path);
			rc = CUT_FAILED;
		} else {
			rc = lock_refuse_live(l, ofd, holder);
		}
	} else if (fstat(ofd, &a) < 0 || stat(l->path, &b) < 0 || a.st_dev != b.st_dev ||
		   a.st_ino != b.st_ino) {
		*again = true; /* replaced or released meanwhile: start again */
		rc = CUT_OK;
	} else {
		rc = lock_judge_unheld(l, ofd, host, holder);
		if (rc == CUT_OK && rename(tmp, l->path) < 0) {
			CUT_SYSERR("%s: cannot take over the lock", l->path);
			rc = CUT_FAILED;
		}
	}
	close(ofd);
	return rc;
}

int sync_lock_take(const char *dir, sync_lock *l, sync_lock_holder *holder)
{
	char host[256];
	my_host(host);
	memset(holder, 0, sizeof *holder);
	l->fd = -1;
	l->path = sync_path(dir, "lock");
	char tmpname[64];
	snprintf(tmpname, sizeof tmpname, "lock.%ld.tmp", (long)getpid());
	char *tmp = sync_path(dir, tmpname);
	int rc = CUT_FAILED;
	int fd = lock_write_own(tmp, host);
	bool again = fd >= 0;
	for (int attempt = 0; again && attempt < 100; attempt++)
		rc = lock_attempt(l, tmp, host, holder, &again);
	if (again) {
		CUT_ERR("%s: the lock keeps changing hands; giving up", l->path);
		rc = CUT_FAILED;
	}
	if (rc == CUT_OK) {
		l->fd = fd;
	} else {
		if (fd >= 0) {
			close(fd);
			unlink(tmp);
		}
		free(l->path);
		l->path = NULL;
	}
	free(tmp);
	return rc;
}

void sync_lock_release(sync_lock *l)
{
	if (l->fd >= 0) {
		if (unlink(l->path) < 0)
			CUT_SYSWARN("%s: cannot remove the lock", l->path);
		close(l->fd);
	}
	l->fd = -1;
	free(l->path);
	l->path = NULL;
}

/* The flock tells a live holder from a dead one, as step 3 of the protocol
 * does; a holder on this host whose pid is gone is dead without asking the
 * flock, so that a probe never holds the flock of a stale lock while a new
 * run tries to take it over. */
int sync_lock_probe(const char *dir, sync_lock_holder *holder)
{
	memset(holder, 0, sizeof *holder);
	char *p = sync_path(dir, "lock");
	int rc = -1, fd = open(p, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT)
			rc = 0;
		else
			CUT_SYSERR("%s: cannot open the lock", p);
		goto out;
	}
	char buf[1024], host[256];
	int n = read_fd_text(fd, buf, sizeof buf);
	if (n < 0 || sync_lock_parse(buf, (size_t)n, holder) < 0)
		holder->pid = 0;
	my_host(host);
	if (holder->pid > 0 && strcmp(holder->host, host) == 0 && kill((pid_t)holder->pid, 0) < 0 &&
	    errno == ESRCH) {
		rc = 0;
		goto out;
	}
	if (flock(fd, LOCK_SH | LOCK_NB) == 0) {
		flock(fd, LOCK_UN);
		rc = 0;
	} else if (errno == EWOULDBLOCK) {
		rc = 1;
	} else {
		CUT_SYSERR("%s: flock", p);
	}
out:
	if (fd >= 0)
		close(fd);
	free(p);
	return rc;
}
