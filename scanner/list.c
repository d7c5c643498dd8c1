/*
 * list.c - one directory job: the children of one directory, sorted, with
 * their attributes, in a listing that the writer (scan.c) emits in order.
 *
 * Full scan: readdir, then a stat of each name relative to the directory fd.
 * Incremental scan (a previous manifest is open):
 *  - a directory whose mtime, ctime and inode equal the previous scan's, and
 *    whose times are safely older than that scan's start (the racy guard), is
 *    not read again: its children come from the previous manifest; those the
 *    policy declares immutable are carried as they were, without a syscall,
 *    the others (subdirectories, uidlists, index files, ...) are stat'ed;
 *  - a directory that changed is read again, but its immutable files whose
 *    names the previous manifest has are carried without a stat;
 *  - with --hash changed, a stat'ed file whose size, mtime, ctime and inode
 *    match keeps the previous hash unless its times are racy.
 * A carried entry may hold a stale nlink and ctime (FORMAT.md says so).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "format/path.h"
#include "scanner/internal.h"

void scan_entry_from_stat(fmt_entry *e, const sys_stat *st)
{
	e->type = (uint8_t)fmt_type_from_mode(st->mode);
	e->flags = 0;
	e->mode = st->mode & 07777;
	e->uid = st->uid;
	e->gid = st->gid;
	e->nlink = st->nlink;
	e->dev = st->dev;
	e->ino = st->ino;
	e->size = e->type == FMT_T_FILE || e->type == FMT_T_SYMLINK || e->type == FMT_T_DIR ? st->size : 0;
	e->rdev = e->type == FMT_T_CHR || e->type == FMT_T_BLK ? st->rdev : 0;
	e->mtime_ns = st->mtime_ns;
	e->ctime_ns = st->ctime_ns;
}

scan_job *scan_job_new(const fmt_entry *self)
{
	scan_job *j = cut_calloc(1, sizeof *j);
	j->path = cut_strndup(self->path, self->path_len);
	j->path_len = self->path_len;
	j->self = *self;
	j->self.path = j->path;
	j->self.target = NULL;
	j->prev = PREV_NONE;
	return j;
}

void scan_dirref_put(scan_dirref *r)
{
	if (r && atomic_fetch_sub(&r->refs, 1) == 1) {
		close(r->fd);
		atomic_fetch_sub(r->live, 1);
		free(r);
	}
}

void scan_job_free(scan_job *j)
{
	if (!j)
		return;
	scan_dirref_put(j->parent);
	free(j->path);
	free(j);
}

void scan_listing_free(scan_listing *l)
{
	if (!l)
		return;
	cut_arena_free(&l->arena);
	free(l->v);
	free(l);
}

size_t scan_listing_bytes(const scan_listing *l)
{
	return sizeof *l + l->arena.reserved + l->cap * sizeof(scan_child);
}

static scan_child *listing_add(scan_listing *l)
{
	if (l->n == l->cap) {
		l->cap = l->cap ? 2 * l->cap : 16;
		l->v = cut_realloc(l->v, cut_size_mul(l->cap, sizeof *l->v));
	}
	scan_child *c = &l->v[l->n++];
	memset(c, 0, sizeof *c);
	return c;
}

/* What one job needs while it runs. */
typedef struct job_state {
	scan_ctx *ctx;
	scan_job *job;
	scan_counters *c;
	scan_listing *l;
	int dirfd;      /* the directory, opened lazily; -1 until then */
	bool lookup_only; /* dirfd only serves *at() calls: not read (shortcut) */
	bool dir_failed;
	sys_dir *dir;   /* owns dirfd while the directory is being read */
	cut_buf path;   /* scratch: the child's relative path */
} job_state;

static bool racy(const scan_ctx *ctx, const fmt_entry *e)
{
	return e->mtime_ns >= ctx->racy_limit_ns || e->ctime_ns >= ctx->racy_limit_ns;
}

static const char *child_path(job_state *s, const char *name, size_t nl)
{
	s->path.len = 0;
	if (s->job->path_len) {
		cut_buf_put(&s->path, s->job->path, s->job->path_len);
		cut_buf_putc(&s->path, '/');
	}
	cut_buf_put(&s->path, name, nl);
	cut_buf_putc(&s->path, 0);
	s->path.len--;
	return (const char *)s->path.p;
}

/* Opens the job's directory.  A directory that vanished is not an error on
 * a live tree; ESTALE (the NFS handle went stale) is retried once. */
static int open_dir(job_state *s)
{
	if (s->dirfd >= 0)
		return 0;
	if (s->dir_failed)
		return -1;
	const char *p = s->job->path_len ? s->job->path : ".";
	int flags = (s->lookup_only ? SYS_O_LOOKUP : O_RDONLY) | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC;
	int fd = -1;
	scan_dirref *parent = s->job->parent;
	s->job->parent = NULL;
	if (parent) { /* one lookup beneath the parent; on failure, the walk from the root */
		size_t bl;
		const char *base = fmt_path_base(s->job->path, s->job->path_len, &bl);
		fd = openat(parent->fd, base, flags);
		scan_dirref_put(parent);
	}
	for (int attempt = 0; fd < 0 && attempt < 2; attempt++) {
		fd = openat(s->ctx->rootfd, p, flags);
		if (fd >= 0 || errno != ESTALE)
			break;
	}
	if (fd < 0) {
		s->dir_failed = true;
		if (errno == ENOENT || errno == ENOTDIR || errno == ELOOP) {
			s->c->vanished++;
		} else {
			CUT_SYSWARN("%s/%s: cannot open directory", s->ctx->o->root, s->job->path);
			s->c->errors++;
		}
		return -1;
	}
	s->dirfd = fd;
	return 0;
}

/* Fills a child from a stat of its name; reads a symlink's target and a
 * file's hash as the options say.  old: the previous scan's entry of the
 * same name, or NULL.  Returns 1 (added), 0 (vanished or excluded), -1
 * (error, logged and counted). */
static int stat_child(job_state *s, const char *name, size_t nl, const fmt_entry *old,
		      prev_pos oldpos)
{
	scan_ctx *ctx = s->ctx;
	const scan_opts *o = ctx->o;
	/* Relative to the open directory, not by path from the root: every
	 * component of a path is a lookup, a round trip on NFS whenever the
	 * client's dentry cache has expired (measured through bench/latfs). */
	if (open_dir(s) < 0)
		return -1;
	const char *path = child_path(s, name, nl);
	sys_stat st;
	int rc = -ESTALE;
	for (int attempt = 0; attempt < 2 && rc == -ESTALE; attempt++)
		rc = sys_statat(s->dirfd, name, false, &st);
	s->c->stats++;
	if (rc == -ENOENT) {
		s->c->vanished++; /* renamed or removed since readdir: normal on a live tree */
		return 0;
	}
	if (rc < 0) {
		errno = -rc;
		CUT_SYSWARN("%s/%s: cannot stat", o->root, path);
		s->c->errors++;
		return -1;
	}
	fmt_entry e;
	memset(&e, 0, sizeof e);
	scan_entry_from_stat(&e, &st);
	if (!e.type) {
		CUT_WARN("%s/%s: unknown file type %o, skipped", o->root, path, st.mode & 0170000);
		s->c->errors++;
		return -1;
	}
	if (scan_excluded(&ctx->policy, path, s->path.len, name, e.type))
		return 0;
	e.path = path;
	e.path_len = (uint32_t)s->path.len;
	char *target = NULL;
	if (e.type == FMT_T_SYMLINK) {
		size_t cap = st.size > 0 && st.size < (1u << 20) ? (size_t)st.size + 1 : 4096;
		for (;;) {
			target = cut_realloc(target, cap);
			ssize_t n = readlinkat(s->dirfd, name, target, cap);
			if (n < 0) {
				int err = errno;
				free(target);
				if (err == ENOENT || err == EINVAL) {
					s->c->vanished++;
					return 0;
				}
				errno = err;
				CUT_SYSWARN("%s/%s: cannot read symlink", o->root, path);
				s->c->errors++;
				return -1;
			}
			if ((size_t)n < cap) {
				target[n] = 0;
				e.target = target;
				e.target_len = (uint32_t)n;
				break;
			}
			cap *= 2;
		}
	}
	if (e.type == FMT_T_FILE && o->hash != SCAN_HASH_NONE) {
		/* A file the policy declares immutable may carry a stale ctime
		 * (a hard link made elsewhere changes it): its ctime is not
		 * compared, its content cannot have changed in place. */
		bool imm = scan_immutable(&ctx->policy, e.path, e.path_len);
		bool carry = o->hash == SCAN_HASH_CHANGED && old && (old->flags & FMT_E_HASH) &&
			     old->type == FMT_T_FILE && old->size == e.size &&
			     old->mtime_ns == e.mtime_ns && (imm || old->ctime_ns == e.ctime_ns) &&
			     old->ino == e.ino && !racy(ctx, &e);
		if (carry) {
			memcpy(e.hash, old->hash, 16);
			e.flags |= FMT_E_HASH;
			s->c->hash_carried++;
		} else {
			uint64_t n = 0;
			int hr = scan_hash_file(s->dirfd, name, e.hash, &n);
			if (hr == -ENOENT) {
				s->c->vanished++;
				return 0;
			}
			if (hr < 0) {
				errno = -hr;
				CUT_SYSWARN("%s/%s: cannot read to hash", o->root, path);
				s->c->errors++; /* recorded without a hash */
			} else {
				e.flags |= FMT_E_HASH;
				s->c->hashed++;
				s->c->hashed_bytes += n;
			}
		}
	}
	scan_child *ch = listing_add(s->l);
	fmt_entry_copy(&ch->e, &e, &s->l->arena);
	free(target);
	if (e.type == FMT_T_DIR && !(o->one_fs && e.dev != ctx->root_dev) &&
	    !scan_contents_excluded(&ctx->policy, e.path, e.path_len)) {
		ch->job = scan_job_new(&ch->e);
		if (old && old->type == FMT_T_DIR && oldpos.block != UINT32_MAX) {
			ch->job->prev = oldpos;
			ch->job->have_prev = true;
			ch->job->prev_self = *old;
			ch->job->prev_self.path = NULL;
			ch->job->prev_self.target = NULL;
		}
	}
	return 1;
}

/* Carries an immutable file from the previous manifest without a syscall
 * (its hash too; hashing it only if asked for and the old entry has none). */
static void carry_child(job_state *s, const fmt_entry *old)
{
	scan_child *ch = listing_add(s->l);
	fmt_entry_copy(&ch->e, old, &s->l->arena);
	ch->e.flags |= FMT_E_CARRIED;
	s->c->carried++;
	if (s->ctx->o->hash != SCAN_HASH_NONE && !(old->flags & FMT_E_HASH)) {
		uint64_t n;
		if (scan_hash_file(s->ctx->rootfd, old->path, ch->e.hash, &n) == 0) {
			ch->e.flags |= FMT_E_HASH;
			s->c->hashed++;
			s->c->hashed_bytes += n;
		}
	}
}

/* On a network file system, hands the directory's fd (a duplicate when the
 * listing owns it) to the jobs of its subdirectories; see scan_dirref. */
static void share_dirfd(job_state *s)
{
	scan_listing *l = s->l;
	int n = 0;
	for (size_t i = 0; i < l->n; i++)
		n += l->v[i].job != NULL;
	if (!s->ctx->remote || s->dirfd < 0 || n == 0)
		return;
	if (atomic_fetch_add(&s->ctx->dirrefs, 1) >= s->ctx->max_dirrefs) {
		atomic_fetch_sub(&s->ctx->dirrefs, 1);
		return;
	}
	int fd = s->dir ? fcntl(s->dirfd, F_DUPFD_CLOEXEC, 0) : s->dirfd;
	if (fd < 0) {
		atomic_fetch_sub(&s->ctx->dirrefs, 1);
		return; /* the children walk from the root */
	}
	if (!s->dir)
		s->dirfd = -1; /* the reference owns it now */
	scan_dirref *r = cut_malloc(sizeof *r);
	r->fd = fd;
	r->live = &s->ctx->dirrefs;
	atomic_init(&r->refs, n);
	for (size_t i = 0; i < l->n; i++)
		if (l->v[i].job)
			l->v[i].job->parent = r;
}

typedef struct name_ent {
	const char *name;
	size_t len;
	unsigned dtype;
} name_ent;

static int name_cmp(const void *a, const void *b)
{
	const name_ent *x = a, *y = b;
	size_t n = x->len < y->len ? x->len : y->len;
	int c = memcmp(x->name, y->name, n);
	return c ? c : (x->len > y->len) - (x->len < y->len);
}

static bool dtype_matches(unsigned dtype, unsigned type)
{
	if (dtype == DT_UNKNOWN)
		return true;
	return (dtype == DT_REG && type == FMT_T_FILE) || (dtype == DT_DIR && type == FMT_T_DIR) ||
	       (dtype == DT_LNK && type == FMT_T_SYMLINK);
}

scan_listing *scan_list_dir(scan_ctx *ctx, scan_job *job, scan_counters *c)
{
	const scan_opts *o = ctx->o;
	job_state s = {.ctx = ctx, .job = job, .c = c, .dirfd = -1};
	s.l = cut_calloc(1, sizeof *s.l);
	cut_arena tmp = {0};
	prev_child *pc = NULL;
	size_t npc = 0;
	if (ctx->prev && job->have_prev &&
	    scan_prev_children(ctx->prev, job->prev, &tmp, &pc, &npc) < 0) {
		/* The previous manifest is corrupt here: it was checked at open,
		 * so this is damage since; list the directory in full. */
		c->errors++;
		npc = 0;
	}
	bool shortcut = ctx->prev && !o->full && scan_policy_any(&ctx->policy) && job->have_prev &&
			job->prev_self.mtime_ns == job->self.mtime_ns &&
			job->prev_self.ctime_ns == job->self.ctime_ns &&
			job->prev_self.ino == job->self.ino && !racy(ctx, &job->self);
	if (shortcut) {
		/* Not read: its fd only serves the stats, so on FUSE and NFS it
		 * costs a lookup, not also an open and a release. */
		s.lookup_only = true;
		c->skipped_dirs++;
		for (size_t i = 0; i < npc; i++) {
			const fmt_entry *old = &pc[i].e;
			if (old->type == FMT_T_FILE && scan_immutable(&ctx->policy, old->path, old->path_len)) {
				carry_child(&s, old);
				continue;
			}
			size_t bl;
			const char *base = fmt_path_base(old->path, old->path_len, &bl);
			stat_child(&s, base, bl, old, pc[i].pos);
		}
		goto out;
	}

	if (open_dir(&s) < 0)
		goto out;
	sys_dir *d = sys_dir_open(s.dirfd);
	if (!d) { /* fdopendir failed (POSIX fallback only); it closed nothing */
		CUT_SYSWARN("%s/%s: cannot read directory", o->root, job->path);
		c->errors++;
		goto out;
	}
	s.dir = d; /* owns s.dirfd now; the children are stat'ed relative to it */
	c->listed++;
	name_ent *names = NULL;
	size_t nn = 0, cap = 0;
	const char *nm;
	size_t nl;
	unsigned dt;
	int rc;
	while ((rc = sys_dir_next(d, &nm, &nl, &dt)) > 0) {
		if (nn == cap) {
			cap = cap ? 2 * cap : 64;
			names = cut_realloc(names, cut_size_mul(cap, sizeof *names));
		}
		names[nn++] = (name_ent){cut_arena_strndup(&tmp, nm, nl), nl, dt};
	}
	if (rc == -ENOENT) {
		/* Removed while listed (Dovecot deletes a folder by renaming it
		 * to .DOVECOT-TRASHED and removing that): nothing left in it,
		 * normal on a live tree. */
		c->vanished++;
		nn = 0;
	} else if (rc < 0) {
		errno = -rc;
		CUT_SYSWARN("%s/%s: error reading directory (listing kept as far as read)", o->root,
			    job->path);
		c->errors++;
	}
	if (nn)
		qsort(names, nn, sizeof *names, name_cmp);
	size_t k = 0; /* merge with the previous children, both in name order */
	for (size_t i = 0; i < nn; i++) {
		const fmt_entry *old = NULL;
		prev_pos oldpos = PREV_NONE;
		while (k < npc) {
			size_t bl;
			const char *b = fmt_path_base(pc[k].e.path, pc[k].e.path_len, &bl);
			name_ent probe = {b, bl, 0};
			int cmp = name_cmp(&probe, &names[i]);
			if (cmp < 0) {
				k++;
				continue;
			}
			if (cmp == 0) {
				old = &pc[k].e;
				oldpos = pc[k].pos;
				k++;
			}
			break;
		}
		if (old && !o->full && old->type == FMT_T_FILE && dtype_matches(names[i].dtype, FMT_T_FILE) &&
		    scan_immutable(&ctx->policy, old->path, old->path_len)) {
			carry_child(&s, old);
			continue;
		}
		stat_child(&s, names[i].name, names[i].len, old, oldpos);
	}
	free(names);
out:
	share_dirfd(&s);
	if (s.dir)
		sys_dir_close(s.dir); /* closes s.dirfd */
	else if (s.dirfd >= 0)
		close(s.dirfd);
	free(pc);
	cut_arena_free(&tmp);
	cut_buf_free(&s.path);
	return s.l;
}
