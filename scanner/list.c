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
 *
 * On a network file system (ctx->remote), where each stat is a round trip, a
 * subdirectory is opened beneath its parent and stat'ed through that fd,
 * which its job then uses (open_child_dir), and a directory with many names
 * to stat shares them among the threads (fan_out).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "base/budget.h"
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

int scan_dirref_take(scan_dirref *r)
{
	int fd = r->fd;
	atomic_fetch_sub(r->live, 1);
	free(r);
	return fd;
}

/* Takes one of the fds the engine may keep open for directories
 * (ctx->max_dirrefs): false when none is left. */
static bool dirref_reserve(scan_ctx *ctx)
{
	if (atomic_fetch_add(&ctx->dirrefs, 1) < ctx->max_dirrefs)
		return true;
	atomic_fetch_sub(&ctx->dirrefs, 1);
	return false;
}

/* A reference to fd, which a dirref_reserve paid for, with refs holders. */
static scan_dirref *dirref_new(scan_ctx *ctx, int fd, int refs)
{
	scan_dirref *r = cut_malloc(sizeof *r);
	r->fd = fd;
	r->live = &ctx->dirrefs;
	atomic_init(&r->refs, refs);
	return r;
}

void scan_job_free(scan_job *j)
{
	if (!j)
		return;
	scan_dirref_put(j->parent);
	scan_dirref_put(j->self_ref);
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
	c->src = PREV_NONE;
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
	scan_dirref *self = s->job->self_ref, *parent = s->job->parent;
	s->job->self_ref = NULL;
	s->job->parent = NULL;
	if (self) { /* the parent's job opened it: no lookup at all */
		if (s->lookup_only) {
			fd = scan_dirref_take(self);
		} else {
			budget_req q = budget_src(1, 0); /* OPEN of the directory */
			fd = openat(self->fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
			budget_src_done(q);
			scan_dirref_put(self);
		}
	}
	if (fd < 0 && parent) { /* one lookup beneath the parent; on failure, the walk from the root */
		size_t bl;
		const char *base = fmt_path_base(s->job->path, s->job->path_len, &bl);
		budget_req q = budget_src(1 + !s->lookup_only, 0);
		fd = openat(parent->fd, base, flags);
		budget_src_done(q);
	}
	scan_dirref_put(parent);
	for (int attempt = 0; fd < 0 && attempt < 2; attempt++) {
		budget_req q = budget_src(budget_lookups(p) + !s->lookup_only, 0);
		fd = openat(s->ctx->rootfd, p, flags);
		int e = errno;
		budget_src_done(q);
		errno = e;
		if (fd >= 0 || errno != ESTALE)
			break;
		s->c->retried += attempt == 0;
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

/* On a network file system, a subdirectory that will be descended into is
 * opened (lookup only) and stat'ed through that fd, and the fd goes to its
 * job: one lookup then serves both the stat and the child's own open, where a
 * stat by name and the child's open beneath this directory cost one each
 * (the attributes come with the lookup: NFS's post-op attributes, FUSE's
 * entry reply).  Returns the reference with *st filled, or NULL with *rc
 * -ENOENT (vanished) or left alone (the caller stats by name: no longer a
 * directory, no fd to spare, or another error the stat will report). */
static scan_dirref *open_child_dir(job_state *s, const char *name, sys_stat *st, int *rc)
{
	scan_ctx *ctx = s->ctx;
	if (!dirref_reserve(ctx))
		return NULL;
	budget_req q = budget_src(1, 0);
	int fd = openat(s->dirfd, name, SYS_O_LOOKUP | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	int e = errno;
	budget_src_done(q);
	errno = e;
	if (fd >= 0 && sys_fstat(fd, st) == 0) {
		*rc = 0;
		return dirref_new(ctx, fd, 1);
	}
	if (fd < 0 && errno == ENOENT)
		*rc = -ENOENT;
	if (fd >= 0)
		close(fd);
	atomic_fetch_sub(&ctx->dirrefs, 1);
	return NULL;
}

/* Stats the child by name, relative to the open directory, not by path
 * from the root: every component of a path is a lookup, a round trip on
 * NFS whenever the client's dentry cache has expired (measured through
 * bench/latfs).  A directory on a network file system is opened instead
 * (open_child_dir), and *self gets the reference its job will use; ESTALE
 * is retried once.  0, or -errno. */
static inline int stat_name(job_state *s, const char *name, const char *path, bool dir, sys_stat *st,
			    scan_dirref **self)
{
	scan_ctx *ctx = s->ctx;
	int rc = -ESTALE;
	if (dir && ctx->remote && !scan_contents_excluded(&ctx->policy, path, s->path.len))
		*self = open_child_dir(s, name, st, &rc);
	for (int attempt = 0; attempt < 2 && rc == -ESTALE; attempt++) {
		budget_req q = budget_src(1, 0);
		rc = sys_statat(s->dirfd, name, false, st);
		budget_src_done(q);
		s->c->retried += rc == -ESTALE && attempt == 0;
	}
	s->c->stats++;
	return rc;
}

/* A failed stat: a name gone since readdir is normal on a live tree (0);
 * anything else is logged and counted (-1). */
static int stat_failed(job_state *s, const char *path, int rc)
{
	if (rc == -ENOENT) {
		s->c->vanished++; /* renamed or removed since readdir: normal on a live tree */
		return 0;
	}
	errno = -rc;
	CUT_SYSWARN("%s/%s: cannot stat", s->ctx->o->root, path);
	s->c->errors++;
	return -1;
}

/* The child's entry from its stat, named by the scratch path.  1 (kept),
 * 0 (excluded by the policy), -1 (a type the format has not: logged and
 * counted). */
static inline int child_entry(job_state *s, const char *name, const char *path, const sys_stat *st,
			      fmt_entry *e)
{
	memset(e, 0, sizeof *e);
	scan_entry_from_stat(e, st);
	if (!e->type) {
		CUT_WARN("%s/%s: unknown file type %o, skipped", s->ctx->o->root, path, st->mode & 0170000);
		s->c->errors++;
		return -1;
	}
	if (scan_excluded(&s->ctx->policy, path, s->path.len, name, e->type))
		return 0;
	e->path = path;
	e->path_len = (uint32_t)s->path.len;
	return 1;
}

/* Reads a symlink's target into e (*target owns it; the stat's size is a
 * first guess of its length).  1, 0 (gone or no longer a symlink), -1
 * (error, logged and counted). */
static int read_target(job_state *s, const char *name, const char *path, uint64_t size, fmt_entry *e,
		       char **target)
{
	size_t cap = size > 0 && size < (1u << 20) ? (size_t)size + 1 : 4096;
	for (;;) {
		*target = cut_realloc(*target, cap);
		ssize_t n = readlinkat(s->dirfd, name, *target, cap);
		if (n < 0) {
			int err = errno;
			free(*target);
			if (err == ENOENT || err == EINVAL) {
				s->c->vanished++;
				return 0;
			}
			errno = err;
			CUT_SYSWARN("%s/%s: cannot read symlink", s->ctx->o->root, path);
			s->c->errors++;
			return -1;
		}
		if ((size_t)n < cap) {
			(*target)[n] = 0;
			e->target = *target;
			e->target_len = (uint32_t)n;
			return 1;
		}
		cap *= 2;
	}
}

/* With --hash changed, may the file keep the previous scan's hash?  Only
 * when nothing says it changed and its times are not racy.  A file the
 * policy declares immutable may carry a stale ctime (a hard link made
 * elsewhere changes it): its ctime is not compared, its content cannot have
 * changed in place. */
static inline bool hash_carryable(const scan_ctx *ctx, const fmt_entry *old, const fmt_entry *e)
{
	bool imm = scan_immutable(&ctx->policy, e->path, e->path_len);
	return ctx->o->hash == SCAN_HASH_CHANGED && old && (old->flags & FMT_E_HASH) &&
	       old->type == FMT_T_FILE && old->size == e->size && old->mtime_ns == e->mtime_ns &&
	       (imm || old->ctime_ns == e->ctime_ns) && old->ino == e->ino && !racy(ctx, e);
}

/* The file's hash into e: the previous scan's when it can be carried, else
 * read.  1, or 0 (the file is gone).  A file that cannot be read is logged,
 * counted and kept without a hash. */
static int hash_child(job_state *s, const char *name, const char *path, const fmt_entry *old,
		      fmt_entry *e)
{
	if (hash_carryable(s->ctx, old, e)) {
		memcpy(e->hash, old->hash, 16);
		e->flags |= FMT_E_HASH;
		s->c->hash_carried++;
		return 1;
	}
	uint64_t n = 0;
	int hr = scan_hash_file(s->dirfd, name, e->hash, &n);
	if (hr == -ENOENT) {
		s->c->vanished++;
		return 0;
	}
	if (hr < 0) {
		errno = -hr;
		CUT_SYSWARN("%s/%s: cannot read to hash", s->ctx->o->root, path);
		s->c->errors++; /* recorded without a hash */
	} else {
		e->flags |= FMT_E_HASH;
		s->c->hashed++;
		s->c->hashed_bytes += n;
	}
	return 1;
}

/* The job of a subdirectory the scan descends into: it opens through self
 * (the child's own reference, which it takes over; may be NULL) and knows
 * the previous scan's entry when that was a directory too. */
static inline scan_job *subdir_job(const fmt_entry *e, const fmt_entry *old, prev_pos oldpos,
				   scan_dirref *self)
{
	scan_job *j = scan_job_new(e);
	j->self_ref = self;
	if (old && old->type == FMT_T_DIR && oldpos.block != UINT32_MAX) {
		j->prev = oldpos;
		j->have_prev = true;
		j->prev_self = *old;
		j->prev_self.path = NULL;
		j->prev_self.target = NULL;
	}
	return j;
}

/* Adds e to the listing (copied into its arena), with its previous
 * position when unchanged, and a job when the scan descends into it; self
 * goes to that job, or is released. */
static inline void add_child(job_state *s, const fmt_entry *e, const fmt_entry *old, prev_pos oldpos,
			     scan_dirref *self)
{
	const scan_ctx *ctx = s->ctx;
	scan_child *ch = listing_add(s->l);
	fmt_entry_copy(&ch->e, e, &s->l->arena);
	if (old && fmt_entry_same(&ch->e, old))
		ch->src = oldpos;
	if (e->type == FMT_T_DIR && !(ctx->o->one_fs && e->dev != ctx->root_dev) &&
	    !scan_contents_excluded(&ctx->policy, e->path, e->path_len)) {
		ch->job = subdir_job(&ch->e, old, oldpos, self);
		self = NULL;
	}
	scan_dirref_put(self); /* not descended into after all */
}

/* Fills a child from a stat of its name; reads a symlink's target and a
 * file's hash as the options say.  old: the previous scan's entry of the
 * same name, or NULL; dir: the child is known to have been a directory
 * (readdir's type or the previous scan).  Returns 1 (added), 0 (vanished or
 * excluded), -1 (error, logged and counted). */
static int stat_child(job_state *s, const char *name, size_t nl, const fmt_entry *old,
		      prev_pos oldpos, bool dir)
{
	if (open_dir(s) < 0)
		return -1;
	const char *path = child_path(s, name, nl);
	sys_stat st;
	scan_dirref *self = NULL;
	int rc = stat_name(s, name, path, dir, &st, &self);
	if (rc < 0)
		return stat_failed(s, path, rc);
	fmt_entry e;
	if ((rc = child_entry(s, name, path, &st, &e)) <= 0) {
		scan_dirref_put(self);
		return rc;
	}
	char *target = NULL;
	if (e.type == FMT_T_SYMLINK && (rc = read_target(s, name, path, st.size, &e, &target)) <= 0)
		return rc;
	if (e.type == FMT_T_FILE && s->ctx->o->hash != SCAN_HASH_NONE &&
	    (rc = hash_child(s, name, path, old, &e)) <= 0)
		return rc;
	add_child(s, &e, old, oldpos, self);
	free(target);
	return 1;
}

/* Carries an immutable file from the previous manifest without a syscall
 * (its hash too; hashing it only if asked for and the old entry has none). */
static void carry_child(job_state *s, const fmt_entry *old, prev_pos oldpos)
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
	if (fmt_entry_same(&ch->e, old))
		ch->src = oldpos; /* not after its first carry: CARRIED is new */
}

/* Carries a run of immutable files from the skeleton as one child: none is
 * stat'ed or decoded, the writer counts them (fmt_mwriter_add_run). */
static void carry_run(job_state *s, const prev_child *pc)
{
	scan_child *ch = listing_add(s->l);
	fmt_entry_copy(&ch->e, &pc->e, &s->l->arena);
	ch->src = pc->pos;
	scan_carry *r = cut_arena_alloc(&s->l->arena, sizeof *r);
	fmt_entry_copy(&r->last, &pc->last, &s->l->arena);
	r->n = pc->run;
	r->bytes = pc->run_bytes;
	r->weight = pc->run_weight;
	ch->run = r;
	s->c->carried += pc->run;
}

/* On a network file system, hands the directory's fd (a duplicate when the
 * listing owns it) to the jobs of its subdirectories; see scan_dirref. */
static void share_dirfd(job_state *s)
{
	scan_listing *l = s->l;
	int n = 0;
	for (size_t i = 0; i < l->n; i++)
		n += l->v[i].job && !l->v[i].job->self_ref;
	if (!s->ctx->remote || s->dirfd < 0 || n == 0)
		return;
	if (!dirref_reserve(s->ctx))
		return;
	int fd = s->dir ? fcntl(s->dirfd, F_DUPFD_CLOEXEC, 0) : s->dirfd;
	if (fd < 0) {
		atomic_fetch_sub(&s->ctx->dirrefs, 1);
		return; /* the children walk from the root */
	}
	if (!s->dir)
		s->dirfd = -1; /* the reference owns it now */
	scan_dirref *r = dirref_new(s->ctx, fd, n);
	for (size_t i = 0; i < l->n; i++)
		if (l->v[i].job && !l->v[i].job->self_ref)
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

/* One name of a listed directory and what it needs. */
typedef struct name_work {
	const name_ent *n;
	const prev_child *run; /* a run from the skeleton (carried as one), or NULL */
	const fmt_entry *old; /* the previous scan's entry, or NULL */
	prev_pos oldpos;
	bool carry;           /* immutable and known: carried without a stat */
	bool dir;             /* a directory, as far as readdir or the last scan knows */
} name_work;

static void do_name(job_state *s, const name_work *w)
{
	if (w->run)
		carry_run(s, w->run);
	else if (w->carry)
		carry_child(s, w->old, w->oldpos);
	else
		stat_child(s, w->n->name, w->n->len, w->old, w->oldpos, w->dir);
}

/* Fan-out.  A directory job is one thread's, and its stats run one after
 * the other: behind latency, a maildir cur/ of 100,000 messages would take
 * 100,000 round trips in a row, whatever the thread count, and the writer
 * (and with it the memory budget) waits for it.  So on a network file
 * system the names of a directory with at least FANOUT_MIN stats to make
 * are cut into pieces of FANOUT_PIECE stats that idle workers help with
 * (scan_fanout); each piece fills its own listing, and the pieces are joined
 * in name order. */
#define FANOUT_MIN 64
#define FANOUT_PIECE 32

typedef struct fan {
	const job_state *owner;
	const name_work *w;
	size_t *cut;          /* piece p is w[cut[p]] up to w[cut[p + 1]] */
	scan_listing *parts;  /* one per piece */
} fan;

static void fan_piece(void *arg, size_t p, scan_counters *c)
{
	fan *f = arg;
	job_state s = {.ctx = f->owner->ctx, .job = f->owner->job, .c = c, .l = &f->parts[p],
		       .dirfd = f->owner->dirfd, .lookup_only = f->owner->lookup_only};
	for (size_t i = f->cut[p]; i < f->cut[p + 1]; i++)
		do_name(&s, &f->w[i]);
	cut_buf_free(&s.path); /* s.dirfd is the owner's */
}

static void fan_out(job_state *s, const name_work *w, size_t nn, size_t nstat)
{
	size_t np = (nstat + FANOUT_PIECE - 1) / FANOUT_PIECE;
	fan f = {.owner = s, .w = w};
	f.cut = cut_malloc(cut_size_mul(np + 1, sizeof *f.cut));
	f.parts = cut_calloc(np, sizeof *f.parts);
	size_t p = 0, in_piece = 0;
	f.cut[0] = 0;
	for (size_t i = 0; i < nn; i++)
		if (!w[i].carry && ++in_piece == FANOUT_PIECE && p + 1 < np) {
			f.cut[++p] = i + 1;
			in_piece = 0;
		}
	np = p + 1;
	f.cut[np] = nn;
	scan_task t = {.fn = fan_piece, .arg = &f, .n = np};
	scan_fanout(s->ctx, &t, s->c);
	for (p = 0; p < np; p++) {
		scan_listing *pl = &f.parts[p];
		for (size_t j = 0; j < pl->n; j++)
			*listing_add(s->l) = pl->v[j];
		cut_arena_absorb(&s->l->arena, &pl->arena);
		free(pl->v);
	}
	free(f.parts);
	free(f.cut);
}

/* The names of a directory, listed or known from the previous scan: shared
 * among the threads when they are many to stat on a network file system
 * (the directory is opened first, for the pieces to share), else in turn. */
static void do_names(job_state *s, const name_work *w, size_t nn, size_t nstat)
{
	if (s->ctx->remote && nstat >= FANOUT_MIN && open_dir(s) == 0) {
		fan_out(s, w, nn, nstat);
		return;
	}
	for (size_t i = 0; i < nn; i++)
		do_name(s, &w[i]);
}

/* Can the runs be carried as they are?  Not when the scan hashes and some
 * run has files without a hash (carry_child hashes those one by one). */
static bool runs_usable(const scan_opts *o, const prev_child *pc, size_t n)
{
	if (o->hash == SCAN_HASH_NONE)
		return true;
	for (size_t i = 0; i < n; i++)
		if (pc[i].run && !pc[i].run_hashed)
			return false;
	return true;
}

/* The previous scan's children of the job's directory: from the skeleton
 * when the directory is unchanged (shortcut) and the runs can be carried
 * whole, else decoded from the manifest.  0 or -1 (corrupt, logged). */
static int prev_children(scan_ctx *ctx, const scan_job *job, bool shortcut, cut_arena *tmp,
			 prev_child **pc, size_t *npc, scan_counters *c)
{
	if (shortcut) {
		int r = scan_prev_skel_children(ctx->prev, job->prev, tmp, pc, npc);
		if (r > 0 && runs_usable(ctx->o, *pc, *npc)) {
			c->skel_dirs++;
			return 0;
		}
		free(*pc);
		*pc = NULL;
		*npc = 0;
		/* r < 0: the skeleton is damaged here (logged); the manifest
		 * answers for it, so the scan is still whole. */
	}
	return scan_prev_children(ctx->prev, job->prev, tmp, pc, npc);
}

/* Is the directory as the previous scan left it?  Its mtime, ctime and
 * inode are the same, and its times are safely older than that scan's
 * start (the racy guard); only then may its names come from that scan. */
static inline bool dir_unchanged(const scan_ctx *ctx, const scan_job *job)
{
	return ctx->prev && !ctx->o->full && scan_policy_any(&ctx->policy) && job->have_prev &&
	       job->prev_self.mtime_ns == job->self.mtime_ns &&
	       job->prev_self.ctime_ns == job->self.ctime_ns && job->prev_self.ino == job->self.ino &&
	       !racy(ctx, &job->self);
}

/* The shortcut: an unchanged directory is not read.  Its fd only serves
 * the stats, so on FUSE and NFS it costs a lookup, not also an open and a
 * release.  The names are the previous scan's, in its order (the same as
 * name order); immutable files and the skeleton's runs are carried, the
 * rest stat'ed.  *names and *w are the caller's to free. */
static void list_unchanged(job_state *s, const prev_child *pc, size_t npc, name_ent **names,
			   name_work **w)
{
	s->lookup_only = true;
	s->c->skipped_dirs++;
	*names = cut_malloc(cut_size_mul(npc ? npc : 1, sizeof **names));
	*w = cut_malloc(cut_size_mul(npc ? npc : 1, sizeof **w));
	size_t nstat = 0;
	for (size_t i = 0; i < npc; i++) {
		const fmt_entry *old = &pc[i].e;
		size_t bl;
		const char *base = fmt_path_base(old->path, old->path_len, &bl);
		(*names)[i] = (name_ent){base, bl, DT_UNKNOWN};
		bool carry = old->type == FMT_T_FILE &&
			     scan_immutable(&s->ctx->policy, old->path, old->path_len);
		(*w)[i] = (name_work){&(*names)[i], pc[i].run ? &pc[i] : NULL, old, pc[i].pos, carry,
				      old->type == FMT_T_DIR};
		nstat += !carry;
	}
	do_names(s, *w, npc, nstat);
}

/* Opens the directory for reading; s->dir owns the fd from then on, and
 * the children are stat'ed relative to it.  0, or -1 (gone, or logged and
 * counted). */
static int open_listing(job_state *s)
{
	if (open_dir(s) < 0)
		return -1;
	sys_dir *d = sys_dir_open(s->dirfd);
	if (!d) { /* fdopendir failed (POSIX fallback only); it closed nothing */
		CUT_SYSWARN("%s/%s: cannot read directory", s->ctx->o->root, s->job->path);
		s->c->errors++;
		return -1;
	}
	s->dir = d;
	sys_dir_source(d);
	s->c->listed++;
	return 0;
}

/* Reads the directory's names into *names (strings in tmp; the array the
 * caller's to free), in readdir's order.  Returns how many. */
static size_t read_names(job_state *s, cut_arena *tmp, name_ent **names)
{
	size_t nn = 0, cap = 0;
	const char *nm;
	size_t nl;
	unsigned dt;
	int rc;
	while ((rc = sys_dir_next(s->dir, &nm, &nl, &dt)) > 0) {
		if (nn == cap) {
			cap = cap ? 2 * cap : 64;
			*names = cut_realloc(*names, cut_size_mul(cap, sizeof **names));
		}
		(*names)[nn++] = (name_ent){cut_arena_strndup(tmp, nm, nl), nl, dt};
	}
	if (rc == -ENOENT) {
		/* Removed while listed (Dovecot deletes a folder by renaming it
		 * to .DOVECOT-TRASHED and removing that): nothing left in it,
		 * normal on a live tree. */
		s->c->vanished++;
		nn = 0;
	} else if (rc < 0) {
		errno = -rc;
		CUT_SYSWARN("%s/%s: error reading directory (listing kept as far as read)", s->ctx->o->root,
			    s->job->path);
		s->c->errors++;
	}
	return nn;
}

/* The previous scan's entry named like n, if any: *k walks pc, in name
 * order as the names are, so the merge is one pass over both. */
static inline const fmt_entry *prev_match(const prev_child *pc, size_t npc, size_t *k, const name_ent *n,
					  prev_pos *oldpos)
{
	while (*k < npc) {
		size_t bl;
		const char *b = fmt_path_base(pc[*k].e.path, pc[*k].e.path_len, &bl);
		name_ent probe = {b, bl, 0};
		int cmp = name_cmp(&probe, n);
		if (cmp < 0) {
			(*k)++;
			continue;
		}
		if (cmp == 0) {
			*oldpos = pc[*k].pos;
			return &pc[(*k)++].e;
		}
		break;
	}
	return NULL;
}

/* What each sorted name needs, into w: carried from the previous scan (an
 * immutable file it knows, still a file), or stat'ed.  Returns how many are
 * to be stat'ed. */
static size_t plan_names(const scan_ctx *ctx, const name_ent *names, size_t nn, const prev_child *pc,
			 size_t npc, name_work *w)
{
	size_t k = 0, nstat = 0;
	for (size_t i = 0; i < nn; i++) {
		prev_pos oldpos = PREV_NONE;
		const fmt_entry *old = prev_match(pc, npc, &k, &names[i], &oldpos);
		bool carry = old && !ctx->o->full && old->type == FMT_T_FILE &&
			     dtype_matches(names[i].dtype, FMT_T_FILE) &&
			     scan_immutable(&ctx->policy, old->path, old->path_len);
		bool dir = names[i].dtype == DT_DIR ||
			   (names[i].dtype == DT_UNKNOWN && old && old->type == FMT_T_DIR);
		w[i] = (name_work){&names[i], NULL, old, oldpos, carry, dir};
		nstat += !carry;
	}
	return nstat;
}

/* A directory that changed (or a full scan): readdir, sort, merge with the
 * previous children, then carry or stat each name.  *names and *w are the
 * caller's to free. */
static void list_changed(job_state *s, cut_arena *tmp, const prev_child *pc, size_t npc,
			 name_ent **names, name_work **w)
{
	if (open_listing(s) < 0)
		return;
	size_t nn = read_names(s, tmp, names);
	if (nn)
		qsort(*names, nn, sizeof **names, name_cmp);
	*w = cut_malloc(cut_size_mul(nn ? nn : 1, sizeof **w));
	size_t nstat = plan_names(s->ctx, *names, nn, pc, npc, *w);
	do_names(s, *w, nn, nstat);
}

/* Done with the directory: its fd goes to its subdirectories' jobs on a
 * network file system (share_dirfd), else is closed. */
static void close_dir(job_state *s)
{
	share_dirfd(s);
	if (s->dir)
		sys_dir_close(s->dir); /* closes s->dirfd */
	else if (s->dirfd >= 0)
		close(s->dirfd);
}

scan_listing *scan_list_dir(scan_ctx *ctx, scan_job *job, scan_counters *c)
{
	job_state s = {.ctx = ctx, .job = job, .c = c, .dirfd = -1};
	s.l = cut_calloc(1, sizeof *s.l);
	cut_arena tmp = {0};
	prev_child *pc = NULL;
	size_t npc = 0;
	bool shortcut = dir_unchanged(ctx, job);
	if (ctx->prev && job->have_prev &&
	    prev_children(ctx, job, shortcut, &tmp, &pc, &npc, c) < 0) {
		/* The previous manifest is corrupt here: it was checked at open,
		 * so this is damage since; list the directory in full (the
		 * shortcut would have no names to take), and count it, so that
		 * no pass trusts this scan without a look. */
		c->errors++;
		npc = 0;
		shortcut = false;
	}
	name_ent *names = NULL;
	name_work *w = NULL;
	if (shortcut)
		list_unchanged(&s, pc, npc, &names, &w);
	else
		list_changed(&s, &tmp, pc, npc, &names, &w);
	free(w);
	free(names);
	close_dir(&s);
	free(pc);
	cut_arena_free(&tmp);
	cut_buf_free(&s.path);
	return s.l;
}
