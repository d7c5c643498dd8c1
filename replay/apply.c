/*
 * apply.c - applies one change-log record to the target: one function per
 * operation.  Each one
 *   - resolves every target path beneath the target root without following
 *     a symlink in any component (sys_open_parent_beneath), then acts on the
 *     last component only with calls that do not follow it either (*at with
 *     AT_SYMLINK_NOFOLLOW, O_NOFOLLOW, O_EXCL, rename, unlink);
 *   - checks that the target is in the state the log expects, and reports a
 *     conflict (RP_R_CONFLICT, nothing changed) when it is not, unless
 *     --on-conflict overwrite says to replace what is there (never a
 *     directory);
 *   - is idempotent: when the target already shows the operation's result
 *     (an earlier run did it and was killed before journaling it), the
 *     result is RP_R_NOOP;
 *   - writes every new entry under a temporary name FMT_RESERVED_REPLAY<idx hex>
 *     in the destination directory, sets its content and attributes, and
 *     renames it into place, so no reader ever sees a partial file under its
 *     final name.  A rerun of an interrupted record removes its own leftover
 *     temporary first (same name).
 * Directory attributes are set in the engine's final phase (ap_dirattr),
 * after everything inside them is done.
 *
 * Nothing here logs: the outcome and an explanation go into the op
 * (res, msg), and the dispatcher reports them once.  Thread-safe.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "base/budget.h"
#include "format/path.h"
#include "replay/internal.h"

#if defined(__linux__) && !defined(CUTOVER_PORTABLE)
#define AP_LINUX 1
#else
#define AP_LINUX 0
#endif

rp_op *rp_op_new(const fmt_change *c, uint64_t idx)
{
	size_t tl = c->e.target ? c->e.target_len : 0;
	size_t n = (size_t)c->e.path_len + 1 + tl + 1 + (c->to ? c->to_len : 0) + 1;
	rp_op *op = cut_calloc(1, sizeof *op + n);
	op->idx = idx;
	op->kind = RP_K_RECORD;
	op->op = c->op;
	op->flags = c->flags;
	op->e = c->e;
	op->old = c->old;
	char *p = op->str;
	memcpy(p, c->e.path, c->e.path_len);
	p[c->e.path_len] = 0;
	op->e.path = p;
	p += c->e.path_len + 1;
	if (c->e.target) {
		memcpy(p, c->e.target, tl);
		p[tl] = 0;
		op->e.target = p;
		p += tl + 1;
	} else {
		op->e.target = NULL;
		op->e.target_len = 0;
	}
	if (c->to) {
		memcpy(p, c->to, c->to_len);
		p[c->to_len] = 0;
		op->to = p;
		op->to_len = c->to_len;
	}
	return op;
}

size_t rp_op_bytes(const rp_op *op)
{
	return sizeof *op + (size_t)op->e.path_len + 1 + (op->e.target ? op->e.target_len : 0) + 1 +
	       (op->to ? op->to_len : 0) + 1;
}

void rp_op_free(rp_op *op)
{
	if (!op)
		return;
	free(op->msg);
	free(op);
}

void rp_tmp_name(char out[32], uint64_t idx)
{
	snprintf(out, 32, FMT_RESERVED_REPLAY "%016llx", (unsigned long long)idx);
}

/* ------------------------------------------------------------- helpers */

static void set_res(rp_op *op, int res, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void set_res(rp_op *op, int res, const char *fmt, ...)
{
	op->res = (uint8_t)res;
	free(op->msg);
	op->msg = NULL;
	if (!fmt)
		return;
	va_list ap;
	va_start(ap, fmt);
	op->msg = cut_vasprintf(fmt, ap);
	va_end(ap);
}

/* Records a failed system call on the target: NOSPACE for a full disk or
 * quota, ERROR otherwise; op->err keeps the errno (rp_apply retries
 * ESTALE, and its message is read only when the retry answered it too). */
static void sys_fail(rp_op *op, int err, const char *what, const char *path)
{
	if (err < 0)
		err = -err;
	if (err == ENOSPC || err == EDQUOT)
		set_res(op, RP_R_NOSPACE, "%s %s: %s", what, path, strerror(err));
	else if (err == ESTALE)
		set_res(op, RP_R_ERROR, "%s %s on the target: %s (again when the operation was made "
			"again from the target root)", what, path, strerror(err));
	else
		set_res(op, RP_R_ERROR, "%s %s: %s", what, path, strerror(err));
	op->err = err;
}

static const char *tname(unsigned t) { return t ? fmt_type_name(t) : "unknown entry"; }

/* Opens the parent directory of path beneath the target root.  Returns the
 * fd, or -1 with op's result set (a symlink or non-directory in the way, a
 * missing parent: conflicts; anything else: error). */
static int tparent(const rp_ctx *cx, rp_op *op, const char *path, const char **base)
{
	int fd = sys_open_parent_beneath(cx->dstfd, path, base);
	if (fd >= 0)
		return fd;
	if (fd == -ELOOP || fd == -EXDEV || fd == -ENOTDIR || fd == -EMLINK)
		set_res(op, RP_R_CONFLICT,
			"%s %s: a directory above it on the target is a symlink or not a "
			"directory: refused (%s)", fmt_op_name(op->op), path, strerror(-fd));
	else if (fd == -ENOENT)
		set_res(op, RP_R_CONFLICT, "%s %s: its parent directory is missing on the target",
			fmt_op_name(op->op), path);
	else
		sys_fail(op, fd, "cannot open the parent directory of", path);
	return -1;
}

/* lstat of base in pfd: 1 present, 0 absent, -1 error (op's result set). */
static int tstat(rp_op *op, int pfd, const char *base, const char *path, sys_stat *st)
{
	int r = sys_statat(pfd, base, false, st);
	if (r == 0)
		return 1;
	if (r == -ENOENT)
		return 0;
	sys_fail(op, r, "cannot stat", path);
	return -1;
}

/* lstat of path beneath the source root, through its parent directory
 * (rp_srcdirs).  0 or -errno; ESTALE is retried once with a new lookup. */
static int src_lstat(const rp_ctx *cx, const char *path, sys_stat *st)
{
	if (!*path) {
		budget_req q = budget_src(1, 0);
		int r = sys_statat(cx->srcfd, ".", false, st);
		budget_src_done(q);
		return r;
	}
	int r = -ESTALE;
	for (int attempt = 0; attempt < 2 && r == -ESTALE; attempt++) {
		const char *base;
		rp_srcdir d;
		if (attempt)
			rp_srcdirs_retry(cx->srcdirs);
		r = rp_srcdir_get(cx->srcdirs, path, &base, &d);
		if (r < 0)
			break;
		/* after the directory's own requests: a request in flight never
		 * waits for another's gate slot */
		budget_req q = budget_src(1, 0);
		r = sys_statat(d.fd, base, false, st);
		budget_src_done(q);
		rp_srcdir_put(cx->srcdirs, &d, r == -ESTALE);
	}
	return r;
}

/* Opens the file path beneath the source root for reading, not following
 * a symlink in any component.  The fd or -errno. */
static int src_open(const rp_ctx *cx, const char *path)
{
	const char *base;
	rp_srcdir d;
	int r = rp_srcdir_get(cx->srcdirs, path, &base, &d);
	if (r < 0)
		return r;
	budget_req q = budget_src(2, 0); /* LOOKUP and OPEN */
	int fd = openat(d.fd, base, O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC);
	r = fd < 0 ? -errno : fd;
	budget_src_done(q);
	rp_srcdir_put(cx->srcdirs, &d, r == -ESTALE);
	return r;
}

/* The atime to give path: the source's, else its mtime.  The log does not
 * carry atimes; a stat of the source costs one round trip. */
static int64_t src_atime(const rp_ctx *cx, const char *path, int64_t mtime)
{
	sys_stat st;
	return src_lstat(cx, path, &st) == 0 ? st.atime_ns : mtime;
}

static bool old_matches(const sys_stat *st, const fmt_old *o)
{
	unsigned t = fmt_type_from_mode(st->mode);
	if (t != o->type)
		return false;
	if (t == FMT_T_FILE)
		return st->size == o->size && st->mtime_ns == o->mtime_ns;
	return true;
}

/* chmod of name in pfd that never follows a symlink. */
static int chmod_nofollow(int pfd, const char *name, unsigned type, mode_t mode)
{
	if (fchmodat(pfd, name, mode, AT_SYMLINK_NOFOLLOW) == 0)
		return 0;
	if (errno != EOPNOTSUPP && errno != ENOTSUP && errno != ENOSYS)
		return -errno;
	/* No AT_SYMLINK_NOFOLLOW support (no /proc for glibc's emulation):
	 * files and directories through an O_NOFOLLOW open; other types are
	 * never symlinks here, as just checked by lstat. */
	if (type == FMT_T_FILE || type == FMT_T_DIR) {
		int fd = openat(pfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
		if (fd < 0)
			return -errno;
		int r = fchmod(fd, mode) < 0 ? -errno : 0;
		close(fd);
		return r;
	}
	return fchmodat(pfd, name, mode, 0) < 0 ? -errno : 0;
}

/* Sets owner (as root), mode (not on symlinks) and times of name in pfd,
 * never following a symlink.  0 or -errno. */
static int set_attrs_at(const rp_ctx *cx, int pfd, const char *name, unsigned type,
			uint32_t mode, uint32_t uid, uint32_t gid, int64_t atime, int64_t mtime)
{
	if (cx->root && fchownat(pfd, name, uid, gid, AT_SYMLINK_NOFOLLOW) < 0)
		return -errno;
	if (type != FMT_T_SYMLINK) {
		int r = chmod_nofollow(pfd, name, type, mode & 07777);
		if (r < 0)
			return r;
	}
	struct timespec ts[2] = {cut_ns_ts(atime), cut_ns_ts(mtime)};
	if (utimensat(pfd, name, ts, AT_SYMLINK_NOFOLLOW) < 0)
		return -errno;
	return 0;
}

/* rename that refuses to replace an existing newname.  0 or -errno. */
static int rename_noreplace(int ofd, const char *o, int nfd, const char *n)
{
#if AP_LINUX
	if (renameat2(ofd, o, nfd, n, RENAME_NOREPLACE) == 0)
		return 0;
	if (errno != EINVAL && errno != ENOSYS && errno != EOPNOTSUPP)
		return -errno;
#endif
	sys_stat st;
	int r = sys_statat(nfd, n, false, &st);
	if (r == 0)
		return -EEXIST;
	if (r != -ENOENT)
		return r;
	return renameat(ofd, o, nfd, n) < 0 ? -errno : 0;
}

/* Puts the finished temporary tmp in place as base: over what is there when
 * replace, else only when base is still absent.  Removes tmp on failure.
 * 0, or -1 with op's result set. */
static int put_in_place(const rp_ctx *cx, rp_op *op, int pfd, const char *tmp,
			const char *base, const char *path, bool replace)
{
	int r = replace ? (renameat(pfd, tmp, pfd, base) < 0 ? -errno : 0)
			: rename_noreplace(pfd, tmp, pfd, base);
	if (r < 0) {
		unlinkat(pfd, tmp, 0);
		if (r == -EEXIST)
			set_res(op, RP_R_CONFLICT, "%s %s: it appeared on the target during replay",
				fmt_op_name(op->op), path);
		else
			sys_fail(op, r, "cannot rename into place", path);
		return -1;
	}
	if (cx->fsync && fsync(pfd) < 0) {
		sys_fail(op, errno, "cannot fsync the directory of", path);
		return -1;
	}
	return 0;
}

/* On a resumed run, removes the temporary an interrupted attempt at this
 * record may have left in pfd, whatever this attempt's outcome will be. */
static void redo_clean(const rp_ctx *cx, const rp_op *op, int pfd)
{
	if (!cx->redo)
		return;
	char tmp[32];
	rp_tmp_name(tmp, op->idx);
	unlinkat(pfd, tmp, 0);
}

/* The record's result is already in place (a redo): RP_R_NOOP, and a
 * temporary an interrupted attempt may have left beside it goes. */
static void noop_clean(rp_op *op, int pfd)
{
	char tmp[32];
	rp_tmp_name(tmp, op->idx);
	unlinkat(pfd, tmp, 0);
	op->res = RP_R_NOOP;
}

/* On a resumed run: whether the file at a destination is this log's own
 * earlier copy, put in place by a run that was killed before its journal
 * said so.  A drifted copy (the source changed while replay ran) is neither
 * the log's version nor, once the source has changed again (Dovecot's index
 * files change all day), the source's, and without this every later run of
 * the log would stop at it.  Told by its ctime: changed after the first run
 * of the log began (the journal's START record), while the target is
 * cutover's alone; a file someone else wrote there before is still a
 * conflict, on every run. */
static bool own_earlier_copy(const rp_ctx *cx, const sys_stat *st)
{
	return cx->redo && cx->first_ns > 0 && fmt_type_from_mode(st->mode) == FMT_T_FILE &&
	       st->ctime_ns >= cx->first_ns;
}

/* Decides what to do with an existing, unexpected entry at a destination:
 * true to replace it (old matches, or --on-conflict overwrite and it is not
 * a directory), false with a conflict set. */
static bool may_replace(const rp_ctx *cx, rp_op *op, const sys_stat *st, const char *path)
{
	unsigned t = fmt_type_from_mode(st->mode);
	if (t != FMT_T_DIR && (op->flags & FMT_C_OLD) && old_matches(st, &op->old))
		return true;
	if (t != FMT_T_DIR && cx->on_conflict == RP_CONFLICT_OVERWRITE) {
		op->overwrote = true;
		return true;
	}
	set_res(op, RP_R_CONFLICT, "%s %s: the target holds a %s (%llu bytes, mtime %lld) "
		"that the log does not expect there", fmt_op_name(op->op), path, tname(t),
		(unsigned long long)st->size, (long long)st->mtime_ns);
	return false;
}

/* ------------------------------------------- directory mtimes kept */

/* Replacing a file by rename changes its directory's mtime, but the source
 * changed the file in place (an append to dovecot.index.log, a cache
 * write) and its directory's mtime did not move, so the log has no `meta`
 * for it.  Around such replacements the directory's times are captured by
 * the first replacement in it and restored by the last one to finish.
 * When the directory did change in the source, its `meta` record is applied
 * in the final phase, after this. */
typedef struct dk_entry {
	struct dk_entry *next;
	int refs;
	bool ok;
	struct timespec ts[2];
	char path[];
} dk_entry;

struct rp_dirkeep {
	pthread_mutex_t mu;
	dk_entry *head; /* directories with replacements in flight: at most -j */
};

rp_dirkeep *rp_dirkeep_new(void)
{
	rp_dirkeep *k = cut_calloc(1, sizeof *k);
	pthread_mutex_init(&k->mu, NULL);
	return k;
}

void rp_dirkeep_free(rp_dirkeep *k)
{
	if (!k)
		return;
	while (k->head) {
		dk_entry *e = k->head;
		k->head = e->next;
		free(e);
	}
	pthread_mutex_destroy(&k->mu);
	free(k);
}

static void dk_enter(const rp_ctx *cx, const char *path, int pfd)
{
	rp_dirkeep *k = cx->keep;
	if (!k)
		return;
	size_t dl = fmt_path_parent_len(path, strlen(path));
	pthread_mutex_lock(&k->mu);
	dk_entry *e = k->head;
	while (e && (strlen(e->path) != dl || memcmp(e->path, path, dl) != 0))
		e = e->next;
	if (!e) {
		e = cut_calloc(1, sizeof *e + dl + 1);
		memcpy(e->path, path, dl);
		sys_stat st;
		if (sys_fstat(pfd, &st) == 0) {
			e->ok = true;
			e->ts[0] = cut_ns_ts(st.atime_ns);
			e->ts[1] = cut_ns_ts(st.mtime_ns);
		}
		e->next = k->head;
		k->head = e;
	}
	e->refs++;
	pthread_mutex_unlock(&k->mu);
}

static void dk_leave(const rp_ctx *cx, const char *path, int pfd)
{
	rp_dirkeep *k = cx->keep;
	if (!k)
		return;
	size_t dl = fmt_path_parent_len(path, strlen(path));
	pthread_mutex_lock(&k->mu);
	dk_entry **pp = &k->head;
	while (*pp && (strlen((*pp)->path) != dl || memcmp((*pp)->path, path, dl) != 0))
		pp = &(*pp)->next;
	dk_entry *e = *pp;
	if (e && --e->refs == 0) {
		if (e->ok)
			futimens(pfd, e->ts); /* best effort: a rescan for Dovecot at worst */
		*pp = e->next;
		free(e);
	}
	pthread_mutex_unlock(&k->mu);
}

/* ------------------------------------------- links whose file vanished */

/* A link record names the file at path, made by an earlier create of the
 * log.  When that create found the file gone from the source (a message
 * expunged or renamed between scan and replay), the group's other names may
 * still be in the source (the same message in another folder or user).  The
 * link finds its file missing on the target: that is drift, not a conflict
 * (nothing outside cutover changed the target), and leaving the names absent
 * would lose them for good in a bare scan+diff+replay round, since the next
 * diff sees no change there.  So the first link of such a group copies its
 * own name from the source, and this table remembers that name as the
 * group's stand-in on the target, for the group's later links.  It also
 * holds the creates that vanished (this run's, and an earlier run's from
 * the journal): the source may hold a file at path again by the time of the
 * link (renamed back), and the missing file is drift all the same.  The
 * scheduler runs the links of one path one at a time (they conflict on it).
 * Bounded in bytes: past ORPHAN_BYTES, nothing more is noted (a later link
 * then copies its name too, or, if the source holds the file again, stops at
 * a conflict as before). */
#define ORPHAN_BYTES (8u << 20)

typedef struct orphan {
	struct orphan *next;
	char *name;     /* malloc'd: the name standing in on the target, or NULL */
	char path[];    /* the vanished file the log's links name */
} orphan;

struct rp_orphans {
	pthread_mutex_t mu;
	orphan **b;     /* hash buckets */
	size_t nb, n;
	size_t bytes;   /* the entries' and names' allocations */
};

rp_orphans *rp_orphans_new(void)
{
	rp_orphans *o = cut_calloc(1, sizeof *o);
	pthread_mutex_init(&o->mu, NULL);
	o->nb = 1024;
	o->b = cut_calloc(o->nb, sizeof *o->b);
	return o;
}

void rp_orphans_free(rp_orphans *o)
{
	if (!o)
		return;
	for (size_t i = 0; i < o->nb; i++)
		while (o->b[i]) {
			orphan *e = o->b[i];
			o->b[i] = e->next;
			free(e->name);
			free(e);
		}
	free(o->b);
	pthread_mutex_destroy(&o->mu);
	free(o);
}

static orphan **orphan_slot(rp_orphans *o, const char *path)
{
	uint64_t h = XXH3_64bits(path, strlen(path));
	orphan **pp = &o->b[h & (o->nb - 1)];
	while (*pp && strcmp((*pp)->path, path) != 0)
		pp = &(*pp)->next;
	return pp;
}

/* Notes path (and, unless NULL, the name standing in for it), within
 * ORPHAN_BYTES.  Locked. */
static void orphan_note(rp_orphans *o, const char *path, const char *name)
{
	orphan **pp = orphan_slot(o, path);
	if (!*pp) {
		size_t pl = strlen(path) + 1;
		if (o->bytes + sizeof **pp + pl > ORPHAN_BYTES)
			return;
		*pp = cut_calloc(1, sizeof **pp + pl);
		memcpy((*pp)->path, path, pl);
		o->bytes += sizeof **pp + pl;
		o->n++;
	}
	if (name) {
		orphan *e = *pp;
		if (e->name)
			o->bytes -= strlen(e->name) + 1;
		free(e->name);
		e->name = NULL;
		size_t nl = strlen(name) + 1;
		if (o->bytes + nl <= ORPHAN_BYTES) {
			e->name = cut_strndup(name, nl - 1);
			o->bytes += nl;
		}
	}
}

void rp_orphans_vanished(rp_orphans *o, const char *path)
{
	if (!o)
		return;
	pthread_mutex_lock(&o->mu);
	orphan_note(o, path, NULL);
	pthread_mutex_unlock(&o->mu);
}

static void orphan_put(const rp_ctx *cx, const char *path, const char *name)
{
	if (!cx->orphans)
		return;
	pthread_mutex_lock(&cx->orphans->mu);
	orphan_note(cx->orphans, path, name);
	pthread_mutex_unlock(&cx->orphans->mu);
}

/* Whether path is noted, and, unless name is NULL, the name standing in for
 * it (malloc'd, or NULL when none yet). */
static bool orphan_get(const rp_ctx *cx, const char *path, char **name)
{
	rp_orphans *o = cx->orphans;
	if (name)
		*name = NULL;
	if (!o)
		return false;
	pthread_mutex_lock(&o->mu);
	orphan *e = *orphan_slot(o, path);
	if (name && e && e->name)
		*name = cut_strndup(e->name, strlen(e->name));
	pthread_mutex_unlock(&o->mu);
	return e != NULL;
}

/* ------------------------------------------------------- create, update */

/* Opens the source file path for copying into *ss (once more by name when
 * NFS says it was replaced under us).  The descriptor, or -1 with op's result
 * set: the source's troubles are the entry's (vanished, skipped), running out
 * of descriptors or memory is ours and stops the run (sys_fail). */
static int open_copy_source(const rp_ctx *cx, rp_op *op, const char *path, sys_stat *ss)
{
	int sfd = src_open(cx, path);
	if (sfd == -ESTALE) { /* NFS: replaced under us; once more by name */
		rp_srcdirs_retry(cx->srcdirs);
		sfd = src_open(cx, path);
	}
	if (sfd < 0) {
		if (sfd == -ENOENT || sfd == -ENOTDIR || sfd == -ELOOP || sfd == -EMLINK ||
		    sfd == -ESTALE || sfd == -EXDEV)
			set_res(op, RP_R_VANISHED, "%s %s: gone from the source", fmt_op_name(op->op),
				path);
		else if (sfd == -EMFILE || sfd == -ENFILE || sfd == -ENOMEM)
			sys_fail(op, sfd, "cannot open the source of", path); /* ours: stop */
		else
			set_res(op, RP_R_SKIPPED, "%s %s: cannot open the source: %s",
				fmt_op_name(op->op), path, strerror(-sfd));
		return -1;
	}
	if (sys_fstat(sfd, ss) < 0 || fmt_type_from_mode(ss->mode) != FMT_T_FILE) {
		close(sfd);
		set_res(op, RP_R_VANISHED, "%s %s: no longer a file in the source",
			fmt_op_name(op->op), path);
		return -1;
	}
	return sfd;
}

/* Creates the temporary file tmp in pfd, replacing one an earlier attempt
 * left.  The descriptor, or -1 with op failed. */
static int create_copy_temp(rp_op *op, int pfd, const char *tmp, const char *path)
{
	int tfd = openat(pfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (tfd < 0 && errno == EEXIST && unlinkat(pfd, tmp, 0) == 0) /* an earlier attempt's */
		tfd = openat(pfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (tfd < 0)
		sys_fail(op, errno, "cannot create a temporary file for", path);
	return tfd;
}

/* Copies size bytes of sfd into tfd.  The bytes copied, or -1 with op's
 * result set: a read error is the source's (the target keeps what it has),
 * a write error ours. */
static int64_t copy_source_bytes(rp_op *op, int sfd, int tfd, uint64_t size, const char *path)
{
	bool src_err;
	int64_t n = budget_src_copy(sfd, tfd, size, &src_err);
	if (n < 0 && src_err) { /* the source's fault: the target keeps what it has */
		set_res(op, n == -ESTALE ? RP_R_VANISHED : RP_R_SKIPPED,
			"%s %s: cannot read the source: %s", fmt_op_name(op->op), path,
			strerror((int)-n));
		return -1;
	}
	if (n < 0) {
		sys_fail(op, (int)n, "cannot copy", path);
		return -1;
	}
	return n;
}

/* Looks at the source again after copying n bytes (ss: before, *s2: after)
 * and marks op drifted if it changed while copied: the next pass brings it.
 * Returns the attributes the copy gets: those of the version whose length
 * it has.  A file truncated while copied was read to its new end, so the
 * times it has now; otherwise (grown, rewritten) those read before the copy.
 * Either way the target holds a version the next round can match, where the
 * old times on the new length matched neither (a conflict). */
static const sys_stat *copied_version_attrs(rp_op *op, int sfd, const sys_stat *ss, sys_stat *s2,
					    int64_t n)
{
	budget_req q = budget_src(1, 0); /* GETATTR: the open's attributes have expired by now */
	bool s2ok = sys_fstat(sfd, s2) == 0;
	budget_src_done(q);
	if (!s2ok || s2->size != ss->size || s2->mtime_ns != ss->mtime_ns || (uint64_t)n != ss->size)
		op->drifted = true;
	return s2ok && (uint64_t)n == s2->size && s2->size < ss->size ? s2 : ss;
}

/* Gives the temporary file the owner (as root), mode and times of as.
 * 0, or -1 with op failed. */
static int set_copy_attrs(const rp_ctx *cx, rp_op *op, int tfd, const sys_stat *as,
			  const char *path)
{
	if (cx->root && fchown(tfd, as->uid, as->gid) < 0) {
		sys_fail(op, errno, "cannot set the owner of", path);
		return -1;
	}
	if (fchmod(tfd, as->mode & 07777) < 0) {
		sys_fail(op, errno, "cannot set the mode of", path);
		return -1;
	}
	struct timespec ts[2] = {cut_ns_ts(as->atime_ns), cut_ns_ts(as->mtime_ns)};
	if (futimens(tfd, ts) < 0) {
		sys_fail(op, errno, "cannot set the times of", path);
		return -1;
	}
	return 0;
}

/* Marks op racy by this machine's clock or by the target's (its ctime, as a
 * redo and sync's base patch judge it): with this machine's clock ahead of
 * the file servers', its clock alone would call no copy racy. */
static void note_racy_copy(rp_op *op, int tfd, const sys_stat *as)
{
	sys_stat tst;
	op->racy = rp_racy(as->mtime_ns, cut_now_ns()) ||
		   (sys_fstat(tfd, &tst) == 0 && rp_racy(as->mtime_ns, tst.ctime_ns));
}

/* Syncs (when asked) and closes the temporary file; tfd is closed either
 * way.  0, or -1 with op failed: NFS reports write-back errors (EIO, a full
 * disk) at close. */
static int close_copy_temp(const rp_ctx *cx, rp_op *op, int tfd, const char *path)
{
	if (cx->fsync && fsync(tfd) < 0) {
		sys_fail(op, errno, "cannot fsync", path);
		close(tfd);
		return -1;
	}
	if (close(tfd) < 0) {
		sys_fail(op, errno, "cannot write (reported at close)", path);
		return -1;
	}
	return 0;
}

/* Copies the source file path into tmp in pfd and renames it to base. */
static void copy_file(const rp_ctx *cx, rp_op *op, const char *path, int pfd, const char *base,
		      bool replace)
{
	char tmp[32];
	rp_tmp_name(tmp, op->idx);
	sys_stat ss, s2;
	int sfd = open_copy_source(cx, op, path, &ss);
	if (sfd < 0)
		return;
	op->drifted = ss.size != op->e.size || ss.mtime_ns != op->e.mtime_ns ||
		      (op->e.ino && ss.ino != op->e.ino);
	int tfd = create_copy_temp(op, pfd, tmp, path);
	if (tfd < 0) {
		close(sfd);
		return;
	}
	const sys_stat *as;
	int64_t n = copy_source_bytes(op, sfd, tfd, ss.size, path);
	if (n < 0)
		goto fail;
	as = copied_version_attrs(op, sfd, &ss, &s2, n);
	if (set_copy_attrs(cx, op, tfd, as, path) < 0)
		goto fail;
	note_racy_copy(op, tfd, as);
	int r = close_copy_temp(cx, op, tfd, path);
	tfd = -1;
	if (r < 0)
		goto fail;
	close(sfd);
	if (put_in_place(cx, op, pfd, tmp, base, path, replace) < 0)
		return;
	op->copied = (uint64_t)n;
	op->res = RP_R_DONE;
	return;
fail:
	if (tfd >= 0)
		close(tfd);
	close(sfd);
	unlinkat(pfd, tmp, 0);
}

static void ap_file(const rp_ctx *cx, rp_op *op)
{
	const char *path = op->e.path, *base;
	bool upd = op->op == FMT_OP_UPDATE, replace = false;
	int pfd = tparent(cx, op, path, &base);
	if (pfd < 0)
		return;
	redo_clean(cx, op, pfd);
	sys_stat ts, ss;
	int have = tstat(op, pfd, base, path, &ts);
	if (have < 0)
		goto out;
	if (have) {
		unsigned t = fmt_type_from_mode(ts.mode);
		/* Already there: the result of an earlier, unjournaled run of
		 * this record.  (Not decidable for an update that kept size and
		 * mtime: then copy again.) */
		bool ambiguous = upd && (op->flags & FMT_C_OLD) && op->old.size == op->e.size &&
				 op->old.mtime_ns == op->e.mtime_ns;
		if (t == FMT_T_FILE && !ambiguous) {
			/* (put in place by an earlier run, when racy then) */
			op->racy = rp_racy(ts.mtime_ns, ts.ctime_ns);
			if (ts.size == op->e.size && ts.mtime_ns == op->e.mtime_ns) {
				noop_clean(op, pfd);
				goto out;
			}
			/* ... or of a drifted copy: matches the source as it is now. */
			if (src_lstat(cx, path, &ss) == 0 && fmt_type_from_mode(ss.mode) == FMT_T_FILE &&
			    ss.size == ts.size && ss.mtime_ns == ts.mtime_ns &&
			    (!(op->flags & FMT_C_OLD) || !old_matches(&ts, &op->old))) {
				noop_clean(op, pfd);
				goto out;
			}
		}
		if (upd && t == FMT_T_FILE && !(op->flags & FMT_C_OLD))
			replace = true;
		else if (!own_earlier_copy(cx, &ts) && !may_replace(cx, op, &ts, path))
			goto out;
		replace = true;
	} else if (upd) {
		if (cx->on_conflict != RP_CONFLICT_OVERWRITE) {
			set_res(op, RP_R_CONFLICT, "update %s: the file to update is missing on the target",
				path);
			goto out;
		}
		op->overwrote = true;
	}
	if (replace)
		dk_enter(cx, path, pfd);
	copy_file(cx, op, path, pfd, base, replace);
	if (replace)
		dk_leave(cx, path, pfd);
	if (op->res == RP_R_VANISHED && !upd)
		orphan_put(cx, path, NULL);
out:
	close(pfd);
}

/* ------------------------------------------------------------------ link */

/* The link record's file (path) is missing on the target because its create
 * found it gone from the source (see rp_orphans); ps is the source's lstat
 * of path, or NULL when it is not there.  If the source holds it again, it
 * is copied now (1: *sa set).  Else either the name standing in
 * for it on the target is opened (1: *afd, *ab, *sa and *sub replaced; *sub
 * owns what *ab points into), or `to` is copied from the source under its
 * own name and stands in for the group's later links (0: op's result set),
 * or `to` is gone too (0: vanished). */
static int link_orphan(const rp_ctx *cx, rp_op *op, const sys_stat *ps, int bfd, const char *bb,
		       int hb, const sys_stat *sb, int *afd, const char **ab, sys_stat *sa, char **sub)
{
	const char *path = op->e.path, *to = op->to;
	sys_stat ss;
	if (ps && fmt_type_from_mode(ps->mode) == FMT_T_FILE) {
		/* Back (renamed back after its create missed it). */
		copy_file(cx, op, path, *afd, *ab, false);
		if (op->res != RP_R_DONE)
			return 0;
		op->drifted = true;
		if (tstat(op, *afd, *ab, path, sa) <= 0) {
			if (op->res == RP_R_DONE)
				set_res(op, RP_R_ERROR, "link %s: %s vanished from the target", to, path);
			return 0;
		}
		return 1;
	}
	if (src_lstat(cx, to, &ss) < 0 || fmt_type_from_mode(ss.mode) != FMT_T_FILE) {
		set_res(op, RP_R_VANISHED, "link %s -> %s: both are gone from the source", to, path);
		return 0;
	}
	op->drifted = true; /* the log's file is gone: the name is made from what is there */
	char *name;
	orphan_get(cx, path, &name);
	if (name) {
		const char *nb;
		int fd = sys_open_parent_beneath(cx->dstfd, name, &nb);
		if (fd >= 0 && sys_statat(fd, nb, false, sa) == 0 &&
		    fmt_type_from_mode(sa->mode) == FMT_T_FILE && sa->size == ss.size &&
		    sa->mtime_ns == ss.mtime_ns) {
			close(*afd);
			*afd = fd;
			*ab = nb;
			*sub = name;
			return 1;
		}
		if (fd >= 0)
			close(fd);
		free(name); /* moved or changed since: copy this name as well */
	}
	bool replace = false;
	if (hb) {
		if (fmt_type_from_mode(sb->mode) == FMT_T_FILE && sb->size == ss.size &&
		    sb->mtime_ns == ss.mtime_ns) {
			noop_clean(op, bfd); /* an earlier, unjournaled run copied it */
			orphan_put(cx, path, to);
			return 0;
		}
		if (!own_earlier_copy(cx, sb) && !may_replace(cx, op, sb, to))
			return 0;
		replace = true;
	}
	if (replace)
		dk_enter(cx, to, bfd);
	copy_file(cx, op, to, bfd, bb, replace);
	if (replace)
		dk_leave(cx, to, bfd);
	if (op->res == RP_R_DONE) {
		op->drifted = true;
		orphan_put(cx, path, to);
	}
	return 0;
}

static void ap_link(const rp_ctx *cx, rp_op *op)
{
	const char *path = op->e.path, *to = op->to, *ab, *bb;
	char tmp[32], *sub = NULL;
	rp_tmp_name(tmp, op->idx);
	int bfd = -1, afd = tparent(cx, op, path, &ab);
	if (afd < 0)
		return;
	bfd = tparent(cx, op, to, &bb);
	if (bfd < 0)
		goto out;
	redo_clean(cx, op, bfd);
	sys_stat sa, sb;
	int ha = tstat(op, afd, ab, path, &sa), hb;
	if (ha < 0 || (hb = tstat(op, bfd, bb, to, &sb)) < 0)
		goto out;
	sys_stat ps;
	int pr = ha ? 0 : src_lstat(cx, path, &ps);
	if (!ha && (pr == -ENOENT || orphan_get(cx, path, NULL))) {
		/* Its create found the source gone (vanished). */
		if (!link_orphan(cx, op, pr == 0 ? &ps : NULL, bfd, bb, hb, &sb, &afd, &ab, &sa, &sub))
			goto out;
		ha = 1;
	}
	if (ha && hb && sa.dev == sb.dev && sa.ino == sb.ino) {
		noop_clean(op, bfd);
		goto out;
	}
	if (!ha || fmt_type_from_mode(sa.mode) != FMT_T_FILE) {
		set_res(op, RP_R_CONFLICT, "link %s -> %s: the file to link is %s on the target", to,
			path, ha ? "not a regular file" : "missing");
		goto out;
	}
	int r;
	if (hb) {
		/* The name is replaced by the link.  Only its type is checked:
		 * when a link group's content was updated, the other names still
		 * hold the previous content, which `old` need not describe. */
		unsigned tb = fmt_type_from_mode(sb.mode);
		if (!((op->flags & FMT_C_OLD) && op->old.type == FMT_T_FILE && tb == FMT_T_FILE) &&
		    !may_replace(cx, op, &sb, to))
			goto out;
		dk_enter(cx, to, bfd);
		r = linkat(afd, ab, bfd, tmp, 0);
		if (r < 0 && errno == EEXIST && unlinkat(bfd, tmp, 0) == 0)
			r = linkat(afd, ab, bfd, tmp, 0);
		if (r < 0)
			sys_fail(op, errno, "cannot link", to);
		r = r < 0 ? -1 : put_in_place(cx, op, bfd, tmp, bb, to, true);
		dk_leave(cx, to, bfd);
		if (r < 0)
			goto out;
	} else {
		if (linkat(afd, ab, bfd, bb, 0) < 0) {
			r = errno;
			if (r == EEXIST)
				set_res(op, RP_R_CONFLICT, "link %s: it appeared on the target during replay",
					to);
			else
				sys_fail(op, r, "cannot link", to);
			goto out;
		}
		if (cx->fsync && fsync(bfd) < 0) {
			sys_fail(op, errno, "cannot fsync the directory of", to);
			goto out;
		}
	}
	op->res = RP_R_DONE;
out:
	if (bfd >= 0)
		close(bfd);
	close(afd);
	free(sub);
}

/* ---------------------------------------------------- symlink, special */

/* The S_IFMT bits of a special file's type. */
static mode_t special_fmt(unsigned type)
{
	switch (type) {
	case FMT_T_FIFO: return S_IFIFO;
	case FMT_T_SOCK: return S_IFSOCK;
	case FMT_T_CHR: return S_IFCHR;
	default: return S_IFBLK;
	}
}

/* Makes op's symlink or special file under its temporary name in pfd (one
 * left by a crashed run is replaced), gives it its attributes, and puts it
 * in place of base.  Sets op->res on success; on failure logs and leaves no
 * temporary behind. */
static void make_and_place(const rp_ctx *cx, rp_op *op, int pfd, const char *base, bool replace)
{
	const char *path = op->e.path;
	bool sym = op->e.type == FMT_T_SYMLINK;
	const char *want = op->e.target ? op->e.target : "";
	mode_t fmt = special_fmt(op->e.type);
	char tmp[32];
	rp_tmp_name(tmp, op->idx);
#define MAKE_TMP() (sym ? symlinkat(want, pfd, tmp) : mknodat(pfd, tmp, fmt | 0600, (dev_t)op->e.rdev))
	int r = MAKE_TMP();
	if (r < 0 && errno == EEXIST && unlinkat(pfd, tmp, 0) == 0)
		r = MAKE_TMP();
#undef MAKE_TMP
	if (r < 0) {
		sys_fail(op, errno, sym ? "cannot create symlink" : "cannot create", path);
		return;
	}
	r = set_attrs_at(cx, pfd, tmp, op->e.type, sym ? 0 : op->e.mode, op->e.uid, op->e.gid,
			 src_atime(cx, path, op->e.mtime_ns), op->e.mtime_ns);
	if (r < 0) {
		unlinkat(pfd, tmp, 0);
		sys_fail(op, r, sym ? "cannot set the attributes of symlink" : "cannot set the attributes of",
			 path);
		return;
	}
	if (put_in_place(cx, op, pfd, tmp, base, path, replace) == 0)
		op->res = RP_R_DONE;
}

static void ap_symlink(const rp_ctx *cx, rp_op *op)
{
	const char *path = op->e.path, *base;
	const char *want = op->e.target ? op->e.target : "";
	bool replace = false;
	int pfd = tparent(cx, op, path, &base);
	if (pfd < 0)
		return;
	redo_clean(cx, op, pfd);
	sys_stat ts;
	int have = tstat(op, pfd, base, path, &ts);
	if (have < 0)
		goto out;
	if (have) {
		if (fmt_type_from_mode(ts.mode) == FMT_T_SYMLINK) {
			size_t wl = strlen(want);
			char *buf = cut_malloc(wl + 2);
			ssize_t n = readlinkat(pfd, base, buf, wl + 2);
			bool same = n >= 0 && (size_t)n == wl && memcmp(buf, want, wl) == 0;
			free(buf);
			if (same) {
				noop_clean(op, pfd);
				goto out;
			}
		}
		if (!may_replace(cx, op, &ts, path))
			goto out;
		replace = true;
	}
	make_and_place(cx, op, pfd, base, replace);
out:
	close(pfd);
}

static void ap_special(const rp_ctx *cx, rp_op *op)
{
	const char *path = op->e.path, *base;
	mode_t fmt = special_fmt(op->e.type);
	if ((fmt == S_IFCHR || fmt == S_IFBLK) && !cx->root) {
		set_res(op, RP_R_SKIPPED, "special %s: device nodes need root (as rsync -a)", path);
		return;
	}
	bool replace = false;
	int pfd = tparent(cx, op, path, &base);
	if (pfd < 0)
		return;
	redo_clean(cx, op, pfd);
	sys_stat ts;
	int have = tstat(op, pfd, base, path, &ts);
	if (have < 0)
		goto out;
	if (have) {
		if ((ts.mode & S_IFMT) == fmt &&
		    ((fmt != S_IFCHR && fmt != S_IFBLK) || ts.rdev == op->e.rdev)) {
			noop_clean(op, pfd);
			goto out;
		}
		if (!may_replace(cx, op, &ts, path))
			goto out;
		replace = true;
	}
	make_and_place(cx, op, pfd, base, replace);
out:
	close(pfd);
}

/* ----------------------------------------------------------- directories */

static void ap_mkdir(const rp_ctx *cx, rp_op *op)
{
	const char *path = op->e.path, *base;
	if (!*path) { /* the root: exists; its attributes come in the final phase */
		op->res = RP_R_NOOP;
		return;
	}
	int pfd = tparent(cx, op, path, &base);
	if (pfd < 0)
		return;
	sys_stat ts;
	int have = tstat(op, pfd, base, path, &ts);
	if (have < 0)
		goto out;
	if (have) {
		if (fmt_type_from_mode(ts.mode) == FMT_T_DIR) {
			op->res = RP_R_NOOP;
			goto out;
		}
		if (!may_replace(cx, op, &ts, path))
			goto out;
		if (unlinkat(pfd, base, 0) < 0) {
			sys_fail(op, errno, "cannot remove", path);
			goto out;
		}
	}
	if (mkdirat(pfd, base, 0700) < 0) {
		sys_fail(op, errno, "cannot create directory", path);
		goto out;
	}
	/* Owner and mode now, so the tree is usable if the run stops here;
	 * times in the final phase.  Not root: keep u+rwx to fill it. */
	int r = 0;
	if (cx->root && fchownat(pfd, base, op->e.uid, op->e.gid, AT_SYMLINK_NOFOLLOW) < 0)
		r = -errno;
	if (r == 0)
		r = chmod_nofollow(pfd, base, FMT_T_DIR, (op->e.mode & 07777) | (cx->root ? 0 : 0700));
	if (r < 0) {
		sys_fail(op, r, "cannot set the attributes of directory", path);
		goto out;
	}
	if (cx->fsync && fsync(pfd) < 0) {
		sys_fail(op, errno, "cannot fsync the directory of", path);
		goto out;
	}
	op->res = RP_R_DONE;
out:
	close(pfd);
}

/* Whether a name in the directory at path (being removed) is something no
 * log records and the removal may take with it: a replay temporary, or,
 * under the maildir policy, a transient the scans leave out (format/path.h).
 * Only files: a directory the log does not remove is the operator's. */
static bool removable(const rp_ctx *cx, const char *path, const char *n, size_t len, unsigned dt)
{
	if (len > FMT_RESERVED_REPLAY_LEN && memcmp(n, FMT_RESERVED_REPLAY, FMT_RESERVED_REPLAY_LEN) == 0)
		return true;
	if (!cx->maildir || dt == DT_DIR)
		return false;
	return fmt_maildir_tmp_dir(path, strlen(path)) || fmt_maildir_lock_name(n, len);
}

/* Removes what removable() allows from directory path (name in pfd).
 * Returns 0 when the directory holds nothing else, 1 when it does (*other
 * gets a name), or -errno. */
static int clean_tmps(const rp_ctx *cx, int pfd, const char *name, const char *path, char other[256])
{
	int fd = openat(pfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	sys_dir *d = sys_dir_open(fd);
	if (!d) {
		int e = errno;
		close(fd);
		return -e;
	}
	const char *n;
	size_t len;
	unsigned dt;
	int r, rc = 0;
	while ((r = sys_dir_next(d, &n, &len, &dt)) > 0) {
		if (removable(cx, path, n, len, dt) && unlinkat(sys_dir_fd(d), n, 0) == 0)
			continue;
		snprintf(other, 256, "%s", n);
		rc = 1;
		break;
	}
	if (r < 0)
		rc = r;
	sys_dir_close(d);
	return rc;
}

static int rm_parent(const rp_ctx *cx, rp_op *op, const char *path, const char **base);

static void ap_rmdir(const rp_ctx *cx, rp_op *op)
{
	const char *path = op->e.path, *base;
	int pfd = rm_parent(cx, op, path, &base);
	if (pfd < 0)
		return;
	sys_stat ts;
	int have = tstat(op, pfd, base, path, &ts);
	if (have <= 0) {
		if (have == 0)
			op->res = RP_R_NOOP; /* already gone */
		goto out;
	}
	if (fmt_type_from_mode(ts.mode) != FMT_T_DIR) {
		set_res(op, RP_R_CONFLICT, "rmdir %s: the target holds a %s, not a directory", path,
			tname(fmt_type_from_mode(ts.mode)));
		goto out;
	}
	for (int tries = 0;; tries++) {
		if (unlinkat(pfd, base, AT_REMOVEDIR) == 0)
			break;
		int e = errno;
		if ((e == ENOTEMPTY || e == EEXIST) && tries == 0) {
			char other[256] = "";
			int c = clean_tmps(cx, pfd, base, path, other);
			if (c == 0)
				continue;
			if (c > 0) {
				set_res(op, RP_R_CONFLICT, "rmdir %s: not empty on the target (holds '%s', "
					"which the log does not delete)", path, other);
				goto out;
			}
			e = -c;
		}
		sys_fail(op, e, "cannot remove directory", path);
		goto out;
	}
	if (cx->fsync && fsync(pfd) < 0) {
		sys_fail(op, errno, "cannot fsync the directory of", path);
		goto out;
	}
	op->res = RP_R_DONE;
out:
	close(pfd);
}

/* Whether a lookup's -errno says the directory is no longer at its path
 * (renamed or removed later in the log), not that the lookup failed. */
static bool gone_later(int r) { return r == -ENOENT || r == -ENOTDIR || r == -ELOOP; }

/* The final phase: a directory's owner, mode and times, after everything in
 * it is done.  A directory that is no longer there (renamed or removed later
 * in the log) is left alone. */
static void ap_dirattr(const rp_ctx *cx, rp_op *op)
{
	const char *path = op->e.path, *base;
	int64_t at = src_atime(cx, path, op->e.mtime_ns);
	int r;
	if (!*path) {
		struct timespec ts[2] = {cut_ns_ts(at), cut_ns_ts(op->e.mtime_ns)};
		r = 0;
		if (cx->root && fchown(cx->dstfd, op->e.uid, op->e.gid) < 0)
			r = -errno;
		if (r == 0 && fchmod(cx->dstfd, op->e.mode & 07777) < 0)
			r = -errno;
		if (r == 0 && futimens(cx->dstfd, ts) < 0)
			r = -errno;
		if (r < 0)
			sys_fail(op, r, "cannot set the attributes of the target root", ".");
		else
			op->res = RP_R_DONE;
		return;
	}
	int pfd = sys_open_parent_beneath(cx->dstfd, path, &base);
	if (pfd < 0) {
		if (gone_later(pfd))
			op->res = RP_R_NOOP;
		else
			sys_fail(op, pfd, "cannot open the parent directory of", path);
		return;
	}
	sys_stat ts;
	r = sys_statat(pfd, base, false, &ts);
	if (r < 0 || fmt_type_from_mode(ts.mode) != FMT_T_DIR) {
		if (r == 0 || gone_later(r))
			op->res = RP_R_NOOP;
		else
			sys_fail(op, r, "cannot stat", path);
		close(pfd);
		return;
	}
	r = set_attrs_at(cx, pfd, base, FMT_T_DIR, op->e.mode, op->e.uid, op->e.gid, at,
			 op->e.mtime_ns);
	if (r < 0)
		sys_fail(op, r, "cannot set the attributes of directory", path);
	else
		op->res = RP_R_DONE;
	close(pfd);
}

/* ---------------------------------------------------------------- rename */

static void ap_rename(const rp_ctx *cx, rp_op *op)
{
	const char *path = op->e.path, *to = op->to, *ab, *bb;
	int bfd = -1, afd = tparent(cx, op, path, &ab);
	if (afd < 0)
		return;
	bfd = tparent(cx, op, to, &bb);
	if (bfd < 0)
		goto out;
	sys_stat sa, sb;
	int ha = tstat(op, afd, ab, path, &sa), hb;
	if (ha < 0 || (hb = tstat(op, bfd, bb, to, &sb)) < 0)
		goto out;
	if (!ha) {
		/* Done by an earlier run: the source is gone and the destination
		 * holds what the log says moved there. */
		unsigned tb = hb ? fmt_type_from_mode(sb.mode) : 0;
		if (hb && tb == op->e.type &&
		    (tb != FMT_T_FILE || (sb.size == op->e.size && sb.mtime_ns == op->e.mtime_ns))) {
			op->res = RP_R_NOOP;
			goto out;
		}
		set_res(op, RP_R_CONFLICT, "rename %s -> %s: %s is missing on the target", path, to,
			path);
		goto out;
	}
	/* The log's `old` describes the entry that moves (at path). */
	unsigned ta = fmt_type_from_mode(sa.mode);
	bool expected = (op->flags & FMT_C_OLD) ? old_matches(&sa, &op->old) : ta == op->e.type;
	if (ta != op->e.type || (!expected && cx->on_conflict != RP_CONFLICT_OVERWRITE)) {
		set_res(op, RP_R_CONFLICT, "rename %s -> %s: the target holds a %s (%llu bytes, "
			"mtime %lld) at %s, not what the log moves", path, to, tname(ta),
			(unsigned long long)sa.size, (long long)sa.mtime_ns, path);
		goto out;
	}
	op->overwrote = !expected;
	int r;
	if (hb) {
		unsigned tb = fmt_type_from_mode(sb.mode);
		if (sa.dev == sb.dev && sa.ino == sb.ino && ta != FMT_T_DIR) {
			/* Two names of one file: rename(2) would do nothing. */
			r = unlinkat(afd, ab, 0) < 0 ? -errno : 0;
		} else if (ta != FMT_T_DIR && tb != FMT_T_DIR &&
			   cx->on_conflict == RP_CONFLICT_OVERWRITE) {
			op->overwrote = true;
			r = renameat(afd, ab, bfd, bb) < 0 ? -errno : 0;
		} else {
			set_res(op, RP_R_CONFLICT, "rename %s -> %s: the target already holds a %s at %s",
				path, to, tname(tb), to);
			goto out;
		}
	} else {
		r = rename_noreplace(afd, ab, bfd, bb);
	}
	if (r < 0) {
		if (r == -EEXIST || r == -ENOTEMPTY)
			set_res(op, RP_R_CONFLICT, "rename %s -> %s: %s appeared on the target", path, to,
				to);
		else if (r == -EINVAL)
			set_res(op, RP_R_CONFLICT, "rename %s -> %s: cannot move a directory beneath "
				"itself", path, to);
		else
			sys_fail(op, r, "cannot rename", path);
		goto out;
	}
	if (cx->fsync && (fsync(afd) < 0 || fsync(bfd) < 0)) {
		sys_fail(op, errno, "cannot fsync the directories of", to);
		goto out;
	}
	op->res = RP_R_DONE;
out:
	if (bfd >= 0)
		close(bfd);
	close(afd);
}

/* ------------------------------------------------------- meta, delete */

static void ap_meta(const rp_ctx *cx, rp_op *op)
{
	const char *path = op->e.path, *base;
	if (!*path) {
		op->res = RP_R_DONE; /* the root's attributes: final phase */
		return;
	}
	int pfd = tparent(cx, op, path, &base);
	if (pfd < 0)
		return;
	sys_stat ts;
	int have = tstat(op, pfd, base, path, &ts);
	if (have < 0)
		goto out;
	unsigned t = have ? fmt_type_from_mode(ts.mode) : 0;
	if (!have || t != op->e.type) {
		set_res(op, RP_R_CONFLICT, "meta %s: the target holds %s, the log expects a %s", path,
			have ? tname(t) : "nothing", tname(op->e.type));
		goto out;
	}
	if (t == FMT_T_DIR) {
		op->res = RP_R_DONE; /* final phase, after the directory's contents */
		goto out;
	}
	int r = set_attrs_at(cx, pfd, base, t, op->e.mode, op->e.uid, op->e.gid,
			     src_atime(cx, path, op->e.mtime_ns), op->e.mtime_ns);
	if (r < 0)
		sys_fail(op, r, "cannot set the attributes of", path);
	else
		op->res = RP_R_DONE;
out:
	close(pfd);
}

/* Opens the parent of path for a removal: a missing parent means the entry
 * is gone already (a redo after the parent was removed too): -1 with
 * RP_R_NOOP. */
static int rm_parent(const rp_ctx *cx, rp_op *op, const char *path, const char **base)
{
	int fd = sys_open_parent_beneath(cx->dstfd, path, base);
	if (fd == -ENOENT) {
		op->res = RP_R_NOOP;
		return -1;
	}
	if (fd >= 0)
		return fd;
	return tparent(cx, op, path, base);
}

static void ap_delete(const rp_ctx *cx, rp_op *op)
{
	const char *path = op->e.path, *base;
	int pfd = rm_parent(cx, op, path, &base);
	if (pfd < 0)
		return;
	sys_stat ts;
	int have = tstat(op, pfd, base, path, &ts);
	if (have <= 0) {
		if (have == 0)
			op->res = RP_R_NOOP; /* already gone */
		goto out;
	}
	unsigned t = fmt_type_from_mode(ts.mode);
	bool expected;
	if (op->flags & FMT_C_OLD)
		expected = old_matches(&ts, &op->old);
	else
		expected = t == op->e.type &&
			   (t != FMT_T_FILE || (ts.size == op->e.size && ts.mtime_ns == op->e.mtime_ns));
	if (t == FMT_T_DIR || (!expected && cx->on_conflict != RP_CONFLICT_OVERWRITE)) {
		set_res(op, RP_R_CONFLICT, "delete %s: the target holds a %s (%llu bytes, mtime %lld), "
			"not what the log says to delete", path, tname(t),
			(unsigned long long)ts.size, (long long)ts.mtime_ns);
		goto out;
	}
	op->overwrote = !expected;
	if (unlinkat(pfd, base, 0) < 0) {
		if (errno == ENOENT)
			op->res = RP_R_NOOP;
		else
			sys_fail(op, errno, "cannot delete", path);
		goto out;
	}
	if (cx->fsync && fsync(pfd) < 0) {
		sys_fail(op, errno, "cannot fsync the directory of", path);
		goto out;
	}
	op->res = RP_R_DONE;
out:
	close(pfd);
}

static void apply_once(const rp_ctx *cx, rp_op *op)
{
	op->res = RP_R_ERROR;
	op->err = 0;
	op->copied = 0;
	op->drifted = op->overwrote = op->racy = false;
	free(op->msg); /* an earlier attempt's */
	op->msg = NULL;
	if (op->kind == RP_K_DIRATTR) {
		ap_dirattr(cx, op);
		return;
	}
	switch (op->op) {
	case FMT_OP_MKDIR: ap_mkdir(cx, op); break;
	case FMT_OP_CREATE:
	case FMT_OP_UPDATE: ap_file(cx, op); break;
	case FMT_OP_LINK: ap_link(cx, op); break;
	case FMT_OP_SYMLINK: ap_symlink(cx, op); break;
	case FMT_OP_RENAME: ap_rename(cx, op); break;
	case FMT_OP_META: ap_meta(cx, op); break;
	case FMT_OP_DELETE: ap_delete(cx, op); break;
	case FMT_OP_RMDIR: ap_rmdir(cx, op); break;
	case FMT_OP_SPECIAL: ap_special(cx, op); break;
	default: set_res(op, RP_R_ERROR, "record %llu: unknown operation %u",
			 (unsigned long long)op->idx, op->op);
	}
}

/* Makes durable the directory of path's name, for a result found in place:
 * 0, or -1 with op's result set.  A parent that is gone holds nothing. */
static int dir_durable(const rp_ctx *cx, rp_op *op, const char *path)
{
	const char *base;
	if (!*path)
		return 0;
	int pfd = sys_open_parent_beneath(cx->dstfd, path, &base);
	if (pfd == -ENOENT)
		return 0;
	if (pfd < 0) {
		sys_fail(op, pfd, "cannot open the parent directory of", path);
		return -1;
	}
	int r = fsync(pfd) < 0 ? -errno : 0;
	close(pfd);
	if (r < 0)
		sys_fail(op, r, "cannot fsync the directory of", path);
	return r < 0 ? -1 : 0;
}

/* With --fsync, "done" means durable, and a result found in place
 * (RP_R_NOOP) may not be: an earlier attempt made it and stopped before its
 * directory's fsync (killed, or an ESTALE answered there, when the retry
 * finds its name made).  The names such an operation makes or removes get
 * their directories' fsync again; attributes (META, a directory's) are not
 * names. */
static void noop_durable(const rp_ctx *cx, rp_op *op)
{
	if (!cx->fsync || op->res != RP_R_NOOP || op->kind == RP_K_DIRATTR || op->op == FMT_OP_META)
		return;
	bool two = op->op == FMT_OP_LINK || op->op == FMT_OP_RENAME;
	if (dir_durable(cx, op, two ? op->to : op->e.path) == 0 && op->op == FMT_OP_RENAME)
		dir_durable(cx, op, op->e.path);
}

/* ESTALE from the target (an NFS target, a SAN file system after a
 * failover) says a handle went stale, not that the call failed: the
 * operation is made again once, every path looked up again from the target
 * root, as the source side's lookups are.  The first attempt left what a
 * redo after a crash finds (its temporary removed, its result in place or
 * not at all), which every operation handles.  A target root that went
 * stale itself stays stale: the run stops and the rerun opens it again. */
void rp_apply(const rp_ctx *cx, rp_op *op)
{
	apply_once(cx, op);
	op->retried = op->res == RP_R_ERROR && op->err == ESTALE;
	if (op->retried)
		apply_once(cx, op);
	noop_durable(cx, op);
}
