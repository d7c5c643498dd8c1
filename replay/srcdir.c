/*
 * srcdir.c - the source's directories, opened (lookup only) beneath the
 * source root and shared by the workers for a second.
 *
 * Why: on NFS or FUSE every component of a path is a lookup, a round trip
 * once the client's dentry cache has expired.  A copy opened by its path
 * from the source root costs one per component (six in a maildir store:
 * domain/user/Maildir/.folder/cur/name), and a pass's copies, stats and
 * directory times crowd into the same few directories (a folder's cur/ and
 * new/).  With the parent directory at hand, each costs one, and a
 * directory not at hand is opened beneath its own parent, itself from the
 * cache if there: a pass's copies share their folders, users and domains.
 *
 * How long: a cached directory is a handle on the directory itself, not on
 * its path.  Were the directory renamed in the source, a lookup through it
 * would find what the log's path no longer names.  Entries are therefore
 * used for at most SD_TTL_NS after their lookup (an NFS client keeps a
 * directory's dentry for acdirmin, 30 s by default, just as blindly), and
 * every file reached through one is still checked against the log (size,
 * mtime, inode: drift) as before.  An fd that answers ESTALE (the
 * directory was replaced on the server) is dropped at once, and a lookup
 * beneath it is made once more beneath a new lookup of it: after a server
 * failover every cached level can be stale at once, and one retry for the
 * whole path would give up at the second stale level.
 *
 * Ownership: the cache owns its fds.  A caller borrows one with
 * rp_srcdir_get and gives it back with rp_srcdir_put; an entry is closed or
 * replaced only while nobody borrows it.  When the slot is busy, the caller
 * gets a private fd that put closes.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <xxhash.h>

#include "base/budget.h"
#include "format/path.h"
#include "replay/internal.h"

#define SD_SLOTS 256
#define SD_TTL_NS CUT_NS_PER_S

enum { SD_ROOT = -2, SD_PRIVATE = -1 };

typedef struct sd_ent {
	char *path;   /* the directory, relative to the source root */
	size_t len;
	uint64_t h;
	int fd;       /* -1: empty */
	int refs;     /* borrowers */
	int64_t at;   /* when looked up (cut_mono_ns); INT64_MIN: dropped */
} sd_ent;

struct rp_srcdirs {
	pthread_mutex_t mu;
	int srcfd;
	atomic_uint_fast64_t retried;
	sd_ent e[SD_SLOTS];
};

rp_srcdirs *rp_srcdirs_new(int srcfd)
{
	rp_srcdirs *d = cut_calloc(1, sizeof *d);
	pthread_mutex_init(&d->mu, NULL);
	d->srcfd = srcfd;
	atomic_init(&d->retried, 0);
	for (size_t i = 0; i < SD_SLOTS; i++)
		d->e[i].fd = -1;
	return d;
}

void rp_srcdirs_free(rp_srcdirs *d)
{
	if (!d)
		return;
	for (size_t i = 0; i < SD_SLOTS; i++) {
		if (d->e[i].fd >= 0)
			close(d->e[i].fd);
		free(d->e[i].path);
	}
	pthread_mutex_destroy(&d->mu);
	free(d);
}

static bool fresh(const sd_ent *e, int64_t now)
{
	return e->at != INT64_MIN && now - e->at < SD_TTL_NS;
}

static int get(rp_srcdirs *d, const char *path, const char **base, rp_srcdir *out);

/* The log's paths were checked when it was read; checking again here keeps
 * the walk below safe on its own (no "..", ".", empty or absolute
 * component), as sys_lookup_parent_beneath is.  The prefixes the walk asks
 * for are then valid too. */
int rp_srcdir_get(rp_srcdirs *d, const char *path, const char **base, rp_srcdir *out)
{
	if (!fmt_path_valid(path, strlen(path)))
		return -EXDEV;
	return get(d, path, base, out);
}

static int get(rp_srcdirs *d, const char *path, const char **base, rp_srcdir *out)
{
	const char *slash = strrchr(path, '/');
	if (!slash) {
		*base = path;
		out->fd = d->srcfd;
		out->slot = SD_ROOT;
		return 0;
	}
	size_t len = (size_t)(slash - path);
	uint64_t h = XXH3_64bits(path, len);
	int slot = (int)(h % SD_SLOTS);
	sd_ent *e = &d->e[slot];
	int64_t now = cut_mono_ns();
	pthread_mutex_lock(&d->mu);
	if (e->fd >= 0 && e->h == h && e->len == len && memcmp(e->path, path, len) == 0 &&
	    fresh(e, now)) {
		e->refs++;
		out->fd = e->fd;
		out->slot = slot;
		pthread_mutex_unlock(&d->mu);
		*base = slash + 1;
		return 0;
	}
	pthread_mutex_unlock(&d->mu);

	/* Missing: the directory is opened beneath its own parent, from the
	 * cache or by the same means, so only the components no entry covers
	 * cost a lookup (a folder's cur/ and new/ share the folder, a user's
	 * folders share Maildir/).  One component at a time, never following a
	 * symlink (O_NOFOLLOW with O_DIRECTORY refuses one), as the beneath
	 * walk does.  The lookup is a round trip: made outside the lock. */
	const char *dbase;
	rp_srcdir up;
	char *dir = cut_strndup(path, len);
	int fd = -ESTALE;
	for (int attempt = 0; attempt < 2 && fd == -ESTALE; attempt++) {
		if (attempt)
			rp_srcdirs_retry(d);
		fd = get(d, dir, &dbase, &up); /* 0 or -errno */
		if (fd < 0)
			break;
		budget_req q = budget_src(1, 0);
		fd = openat(up.fd, dbase, SYS_O_LOOKUP | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0)
			fd = -errno;
		budget_src_done(q);
		rp_srcdir_put(d, &up, fd == -ESTALE);
	}
	free(dir);
	if (fd < 0)
		return fd;
	*base = slash + 1;
	out->fd = fd;
	out->slot = SD_PRIVATE;
	pthread_mutex_lock(&d->mu);
	if (e->refs == 0) {
		if (e->fd >= 0)
			close(e->fd);
		free(e->path);
		e->path = cut_strndup(path, len);
		e->len = len;
		e->h = h;
		e->fd = fd;
		e->at = now;
		e->refs = 1;
		out->slot = slot;
	}
	pthread_mutex_unlock(&d->mu);
	return 0;
}

void rp_srcdirs_retry(rp_srcdirs *d) { atomic_fetch_add(&d->retried, 1); }

uint64_t rp_srcdirs_retries(rp_srcdirs *d) { return atomic_load(&d->retried); }

void rp_srcdir_put(rp_srcdirs *d, rp_srcdir *h, bool stale)
{
	if (h->slot == SD_ROOT)
		return;
	if (h->slot == SD_PRIVATE) {
		close(h->fd);
		return;
	}
	sd_ent *e = &d->e[h->slot];
	pthread_mutex_lock(&d->mu);
	if (stale)
		e->at = INT64_MIN;
	if (--e->refs == 0 && !fresh(e, cut_mono_ns())) {
		close(e->fd);
		e->fd = -1;
		free(e->path);
		e->path = NULL;
	}
	pthread_mutex_unlock(&d->mu);
}
