/*
 * mutate.c -- `gen_maildir mutate`: reads an existing tree, plans one mail
 * day of changes per folder, carries them out the way Dovecot does (tmp/ then
 * rename, hard links, uidlist and index log appended or replaced), then
 * creates, renames and deletes folders.  Owns the tree as read (MF, MU) and
 * its counters (ms), which live until exit.
 */
#include "gen.h"

enum { OP_EXPUNGE, OP_MOVE, OP_FLAG, OP_COPY, OP_DELIVER };

typedef struct {
	uint8_t type, mode, nextra;
	uint32_t seq, idx, dest;
	uint32_t extra[3];
} op_t;

typedef struct {
	uint32_t user;
	char *name; /* without leading dot; "" = INBOX */
	char *path;
	uint32_t ncur, nnew;
	op_t *ops;
	size_t nops, capops;
	strv_t pend; /* names added by this run, uidlist order */
	int touched, expunged;
	uint32_t changes;
} mfolder_t;

typedef struct {
	char *domain, *name, *maildir;
	uint32_t dom, f0, nf;
	uint64_t nmsg;
} muser_t;

static mfolder_t *MF;
static size_t nMF, capMF;
static muser_t *MU;
static size_t nMU, capMU;

static struct {
	uint64_t delivered, lmtp_links, moved, flagged, expunged, copied,
		imap_moves, fcreated, frenamed, fdeleted, fdeleted_msgs,
		uid_appends, uid_rewrites, log_appends, log_rotations,
		index_replaced, cache_appends, tmp_partial, tmp_removed,
		extra_ops;
} ms;

static int64_t g_T;          /* timestamp of new messages */
static uint64_t clk_n, clk_step; /* unique (sec, usec) generator */
static uint32_t lmtp_pids[3][4], imap_pids[2][4];

static void next_stamp(rng_t *r, uint32_t *sec, uint32_t *usec)
{
	uint64_t v = clk_n * clk_step + gen_rng_below(r, clk_step);
	clk_n++;
	*sec = (uint32_t)(g_T - (int64_t)(v / 1000000));
	*usec = (uint32_t)(v % 1000000);
}

static void mf_add_op(uint32_t f, op_t op)
{
	mfolder_t *m = &MF[f];
	op.seq = (uint32_t)m->nops;
	GROW(m->ops, m->nops, m->capops);
	m->ops[m->nops++] = op;
}

static void load_tree(const char *root)
{
	strv_t doms = {0}, users = {0}, fl = {0};
	char p[PATHMAX], q[PATHMAX];
	gen_list_dir(root, &doms, 1);
	if (!gen_is_dir(root)) {
		errno = ENOTDIR;
		gen_die_path("not a directory:", root);
	}
	for (size_t d = 0; d < doms.n; d++) {
		gen_pjoin(p, root, doms.v[d]);
		if (!gen_is_dir(p))
			continue;
		gen_list_dir(p, &users, 1);
		for (size_t u = 0; u < users.n; u++) {
			gen_pjoin3(q, p, users.v[u], "Maildir");
			if (!gen_is_dir(q))
				continue;
			GROW(MU, nMU, capMU);
			muser_t *mu = &MU[nMU];
			memset(mu, 0, sizeof *mu);
			mu->domain = gen_xstrdup(doms.v[d]);
			mu->name = gen_xstrdup(users.v[u]);
			mu->maildir = gen_xstrdup(q);
			mu->dom = (uint32_t)d;
			mu->f0 = (uint32_t)nMF;
			/* INBOX, then the .folders in sorted order */
			gen_list_dir(q, &fl, 0);
			for (size_t i = 0; i <= fl.n; i++) {
				char fp[PATHMAX];
				const char *nm = "";
				if (i > 0) {
					nm = fl.v[i - 1];
					if (nm[0] != '.' || strcmp(nm, ".DOVECOT-TRASHED") == 0)
						continue;
					gen_pjoin(fp, q, nm);
					if (!gen_is_dir(fp))
						continue;
					nm++;
				} else {
					snprintf(fp, sizeof fp, "%s", q);
				}
				GROW(MF, nMF, capMF);
				mfolder_t *mf = &MF[nMF];
				memset(mf, 0, sizeof *mf);
				mf->user = (uint32_t)nMU;
				mf->name = gen_xstrdup(nm);
				mf->path = gen_xstrdup(fp);
				char cp[PATHMAX];
				gen_pjoin(cp, fp, "cur");
				mf->ncur = gen_count_dir(cp);
				gen_pjoin(cp, fp, "new");
				mf->nnew = gen_count_dir(cp);
				mu->nmsg += mf->ncur + mf->nnew;
				nMF++;
			}
			mu->nf = (uint32_t)nMF - mu->f0;
			nMU++;
		}
	}
	gen_strv_free(&doms);
	gen_strv_free(&users);
	gen_strv_free(&fl);
}

/* index of the folder containing global position x in cum[] (size nMF+1) */
static uint32_t cum_find(const uint64_t *cum, size_t n, uint64_t x)
{
	size_t lo = 0, hi = n; /* cum[lo] <= x < cum[hi] */
	while (hi - lo > 1) {
		size_t mid = (lo + hi) / 2;
		if (cum[mid] <= x)
			lo = mid;
		else
			hi = mid;
	}
	return (uint32_t)lo;
}

static int name_is(const char *nm, const char *a)
{
	return strcmp(nm, a) == 0;
}

static int is_special(const char *nm)
{
	static const char *sp[] = {
		"Sent", "Trash", "Drafts", "Junk", "Archive",
		"Gesendete Elemente", "Gel&APY-schte Elemente", "Entw&APw-rfe",
		"Junk-E-Mail",
	};
	char top[512];
	snprintf(top, sizeof top, "%s", nm);
	char *dot = strchr(top, '.');
	if (dot)
		*dot = 0;
	for (size_t i = 0; i < NELEM(sp); i++)
		if (strcmp(top, sp[i]) == 0)
			return 1;
	return 0;
}

static int32_t user_folder(uint32_t u, const char *a, const char *b)
{
	const muser_t *mu = &MU[u];
	for (uint32_t i = 0; i < mu->nf; i++) {
		const char *nm = MF[mu->f0 + i].name;
		if (name_is(nm, a) || (b && name_is(nm, b)))
			return (int32_t)(mu->f0 + i);
	}
	return -1;
}

static uint32_t pick_other_user(rng_t *r, uint32_t u)
{
	if (nMU < 2)
		return u;
	if (gen_rng_ppm(r, 800000)) {
		uint32_t a = u, b = u, d = MU[u].dom;
		while (a > 0 && MU[a - 1].dom == d)
			a--;
		while (b + 1 < nMU && MU[b + 1].dom == d)
			b++;
		if (b > a) {
			uint32_t o = a + (uint32_t)gen_rng_below(r, b - a);
			if (o >= u)
				o++;
			return o;
		}
	}
	uint32_t o = (uint32_t)gen_rng_below(r, nMU - 1);
	if (o >= u)
		o++;
	return o;
}

/* What plan_mutations works from: the messages of all folders laid end to
 * end (cumulative counts of cur/, new/ and both, nMF + 1 each, so that a
 * uniform position picks a folder weighted by its size) and how many of
 * each operation the day gets. */
typedef struct {
	uint64_t *cc, *cn, *ca;
	uint64_t Nc, Nn, N;
	uint64_t n_move, n_flag, n_exp, n_copy, n_deliv;
} plan_t;

/* The cumulative counts, and the day's operations for percent of the
 * messages: K touched (a quarter moved new/ -> cur/, a fifth expunged, a
 * tenth copied, the rest flagged) and 0.6 * percent delivered. */
static void plan_counts(plan_t *pl, double percent, uint64_t *K_out)
{
	pl->cc = gen_xmalloc(sizeof(uint64_t) * (nMF + 1));
	pl->cn = gen_xmalloc(sizeof(uint64_t) * (nMF + 1));
	pl->ca = gen_xmalloc(sizeof(uint64_t) * (nMF + 1));
	pl->cc[0] = pl->cn[0] = pl->ca[0] = 0;
	for (size_t i = 0; i < nMF; i++) {
		pl->cc[i + 1] = pl->cc[i] + MF[i].ncur;
		pl->cn[i + 1] = pl->cn[i] + MF[i].nnew;
		pl->ca[i + 1] = pl->ca[i] + MF[i].ncur + MF[i].nnew;
	}
	pl->Nc = pl->cc[nMF];
	pl->Nn = pl->cn[nMF];
	pl->N = pl->Nc + pl->Nn;
	uint64_t K = (uint64_t)((double)pl->N * percent / 100.0 + 0.5);
	if (K > pl->N)
		K = pl->N;
	*K_out = K;
	pl->n_move = K * 25 / 100;
	pl->n_exp = K * 20 / 100;
	pl->n_copy = K * 10 / 100;
	if (pl->n_move > pl->Nn)
		pl->n_move = pl->Nn;
	pl->n_flag = K - pl->n_move - pl->n_exp - pl->n_copy;
	if (pl->Nc == 0) {
		pl->n_flag = 0;
		pl->n_copy = 0;
	}
	pl->n_deliv = (uint64_t)((double)pl->N * percent * 0.6 / 100.0 + 0.5);
	if (nMU == 0)
		pl->n_deliv = 0;
}

/* Spaces the day's new (sec, usec) stamps (next_stamp) so that every
 * delivery and copy gets its own. */
static void plan_clock(const plan_t *pl)
{
	clk_step = 1000000 / (2 * pl->n_deliv + pl->n_copy + 2000);
	if (clk_step < 1)
		clk_step = 1;
	if (clk_step > 997)
		clk_step = 997;
}

/* n operations of type on messages drawn uniformly from the N laid end to
 * end by cum. */
static void plan_uniform(rng_t *r, uint8_t type, uint64_t n, const uint64_t *cum, uint64_t N)
{
	op_t op;
	for (uint64_t i = 0; i < n; i++) {
		uint64_t x = gen_rng_below(r, N);
		uint32_t f = cum_find(cum, nMF + 1, x);
		memset(&op, 0, sizeof op);
		op.type = type;
		op.idx = (uint32_t)(x - cum[f]);
		mf_add_op(f, op);
	}
}

/* IMAP COPY of cur/ messages into another folder of the same user (not
 * Drafts); a flag change when no such folder turns up in 8 draws. */
static void plan_copies(rng_t *r, const plan_t *pl)
{
	op_t op;
	for (uint64_t i = 0; i < pl->n_copy; i++) {
		uint64_t x = gen_rng_below(r, pl->Nc);
		uint32_t f = cum_find(pl->cc, nMF + 1, x);
		const muser_t *mu = &MU[MF[f].user];
		memset(&op, 0, sizeof op);
		op.idx = (uint32_t)(x - pl->cc[f]);
		uint32_t d = f;
		for (int t = 0; t < 8 && mu->nf > 1 &&
				(d == f || strcmp(MF[d].name, "Drafts") == 0 ||
				 strcmp(MF[d].name, "Entw&APw-rfe") == 0);
		     t++)
			d = mu->f0 + (uint32_t)gen_rng_below(r, mu->nf);
		if (d == f) {
			op.type = OP_FLAG;
		} else {
			op.type = OP_COPY;
			op.dest = d;
			op.mode = (uint8_t)gen_rng_ppm(r, 300000);
		}
		mf_add_op(f, op);
	}
}

/* Where a delivery to user u lands: mostly INBOX; 8% Sent (mode 1), 2%
 * Drafts (mode 2), 5% a sieve fileinto (a user folder or Junk); of the
 * INBOX ones 3% also go to 1-3 other users (LMTP, op->extra). */
static int32_t delivery_folder(rng_t *r, uint32_t u, op_t *op)
{
	const muser_t *mu = &MU[u];
	uint64_t x = gen_rng_below(r, 1000000);
	int32_t f = (int32_t)mu->f0;
	if (x < 80000) {
		int32_t s = user_folder(u, "Sent", "Gesendete Elemente");
		if (s >= 0) {
			f = s;
			op->mode = 1;
		}
	} else if (x < 100000) {
		int32_t s = user_folder(u, "Drafts", "Entw&APw-rfe");
		if (s >= 0) {
			f = s;
			op->mode = 2;
		}
	} else if (x < 150000) {
		/* sieve fileinto: a user folder or Junk */
		uint32_t c[64], nc = 0;
		for (uint32_t k = 1; k < mu->nf && nc < 64; k++) {
			const char *nm = MF[mu->f0 + k].name;
			if (!is_special(nm) || strncmp(nm, "Junk", 4) == 0)
				c[nc++] = mu->f0 + k;
		}
		if (nc)
			f = (int32_t)c[gen_rng_below(r, nc)];
	} else if (gen_rng_ppm(r, 30000)) {
		op->nextra = (uint8_t)gen_rng_range(r, 1, 3);
		for (int k = 0; k < op->nextra; k++)
			op->extra[k] = MU[pick_other_user(r, u)].f0;
	}
	return f;
}

/* New mail, to users weighted by mailbox size. */
static void plan_deliveries(rng_t *r, const plan_t *pl)
{
	uint64_t *cu = gen_xmalloc(sizeof(uint64_t) * (nMU + 1));
	cu[0] = 0;
	for (size_t i = 0; i < nMU; i++)
		cu[i + 1] = cu[i] + MU[i].nmsg + 1;
	op_t op;
	for (uint64_t i = 0; i < pl->n_deliv; i++) {
		uint32_t u = cum_find(cu, nMU + 1, gen_rng_below(r, cu[nMU]));
		memset(&op, 0, sizeof op);
		op.type = OP_DELIVER;
		int32_t f = delivery_folder(r, u, &op);
		mf_add_op((uint32_t)f, op);
	}
	free(cu);
}

/* Plans one mail day for percent of the messages into the folders' op
 * lists; *K_out: the messages touched.  The order of the draws is the
 * generator's output: changing it changes every tree a seed gives. */
static void plan_mutations(rng_t *r, double percent, uint64_t *K_out)
{
	plan_t pl;
	plan_counts(&pl, percent, K_out);
	plan_clock(&pl);
	plan_uniform(r, OP_MOVE, pl.n_move, pl.cn, pl.Nn);
	plan_uniform(r, OP_FLAG, pl.n_flag, pl.cc, pl.Nc);
	if (pl.N > 0)
		plan_uniform(r, OP_EXPUNGE, pl.n_exp, pl.ca, pl.N);
	plan_copies(r, &pl);
	plan_deliveries(r, &pl);
	free(pl.cc);
	free(pl.cn);
	free(pl.ca);
}

static int cmp_op(const void *a, const void *b)
{
	const op_t *x = a, *y = b;
	if (x->type != y->type)
		return x->type < y->type ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* base name: up to the first ':' */
static size_t base_len(const char *name)
{
	const char *c = strchr(name, ':');
	return c ? (size_t)(c - name) : strlen(name);
}

static int cmp_base(const void *a, const void *b)
{
	const char *x = *(char *const *)a, *y = *(char *const *)b;
	size_t lx = base_len(x), ly = base_len(y);
	size_t l = lx < ly ? lx : ly;
	int c = memcmp(x, y, l);
	if (c)
		return c;
	return lx < ly ? -1 : lx > ly;
}

/* sorted names of dir excluding those whose base is in excl (sorted by base) */
static void load_msgs(const char *dir, strv_t *out, char **excl, size_t nexcl)
{
	gen_list_dir(dir, out, 1);
	if (!nexcl)
		return;
	size_t o = 0;
	for (size_t i = 0; i < out->n; i++) {
		if (bsearch(&out->v[i], excl, nexcl, sizeof(char *), cmp_base)) {
			free(out->v[i]);
			continue;
		}
		out->v[o++] = out->v[i];
	}
	out->n = o;
}

/* pick an unused index at or after idx (wrapping); -1 if none */
static long pick_unused(const unsigned char *used, size_t n, uint32_t idx)
{
	if (n == 0)
		return -1;
	size_t j = idx % n;
	for (size_t k = 0; k < n; k++, j = (j + 1) % n)
		if (!used[j])
			return (long)j;
	return -1;
}

static int folder_nkw(const mfolder_t *f)
{
	char p[PATHMAX];
	buf_t b = {0};
	gen_pjoin(p, f->path, "dovecot-keywords");
	int n = 0;
	if (gen_read_file(p, &b) == 0)
		n = (int)gen_count_lf(b.p, b.len);
	free(b.p);
	return n > 26 ? 26 : n;
}

static void new_flags(rng_t *r, const char *old, int nkw, char *out)
{
	unsigned char set[128];
	memset(set, 0, sizeof set);
	for (const char *c = old; *c; c++)
		if ((unsigned char)*c < 128)
			set[(unsigned char)*c] = 1;
	char before[64];
	snprintf(before, sizeof before, "%s", old);
	uint64_t x = gen_rng_below(r, 100);
	if (x < 40) {
		if (set['S'] && gen_rng_ppm(r, 300000))
			set['S'] = 0;
		else
			set['S'] = 1;
	} else if (x < 65) {
		set['R'] = 1;
		set['S'] = 1;
	} else if (x < 80) {
		set['F'] = !set['F'];
	} else if (x < 90) {
		set['T'] = 1;
	} else if (nkw > 0) {
		int k = 'a' + (int)gen_rng_below(r, (uint64_t)nkw);
		set[k] = !set[k];
	} else {
		set['F'] = !set['F'];
	}
	size_t o = 0;
	for (int c = 33; c < 127; c++)
		if (set[c])
			out[o++] = (char)c;
	out[o] = 0;
	if (strcmp(out, before) == 0) {
		set['F'] = !set['F'];
		o = 0;
		for (int c = 33; c < 127; c++)
			if (set[c])
				out[o++] = (char)c;
		out[o] = 0;
	}
}

/* ",S=<n>" / ",W=<n>" value from a base name, or -1 */
static long long name_field(const char *name, char key)
{
	size_t bl = base_len(name);
	for (size_t i = 0; i + 3 < bl; i++)
		if (name[i] == ',' && name[i + 1] == key && name[i + 2] == '=') {
			long long v = 0;
			size_t j = i + 3;
			if (name[j] < '0' || name[j] > '9')
				return -1;
			while (j < bl && name[j] >= '0' && name[j] <= '9')
				v = v * 10 + (name[j++] - '0');
			return v;
		}
	return -1;
}

static void mark_touched(uint32_t f)
{
	MF[f].touched = 1;
}

/* link src into folder df: dest/tmp/<base> then rename into cur|new */
static void link_into(rng_t *r, const char *src, uint32_t df, int host,
		      uint32_t pid, long long S, long long W, int to_new,
		      const char *flags)
{
	mfolder_t *d = &MF[df];
	char base[256], tmp[PATHMAX], fin[PATHMAX], name[320];
	for (;;) {
		uint32_t sec, usec;
		next_stamp(r, &sec, &usec);
		snprintf(base, sizeof base, "%" PRIu32 ".M%" PRIu32 "P%" PRIu32 ".%s",
			 sec, usec, pid, gen_hosts[host]);
		if (W >= 0)
			snprintf(name, sizeof name, "%s,S=%lld,W=%lld%s%s", base, S, W,
				 to_new ? "" : ":2,", to_new ? "" : flags);
		else
			snprintf(name, sizeof name, "%s,S=%lld%s%s", base, S,
				 to_new ? "" : ":2,", to_new ? "" : flags);
		gen_pjoin3(tmp, d->path, "tmp", base);
		gen_pjoin3(fin, d->path, to_new ? "new" : "cur", name);
		if (gen_path_exists(fin))
			continue;
		if (link(src, tmp) < 0) {
			if (errno == EEXIST)
				continue;
			int e = errno;
			fprintf(stderr, "%s: link %s -> %s: %s\n", gen_prog, src, tmp,
				strerror(e));
			exit(1);
		}
		gen_stats.links++;
		gen_xrename(tmp, fin);
		break;
	}
	gen_strv_push(&d->pend, name);
	d->changes++;
	mark_touched(df);
}

static void deliver(rng_t *r, uint32_t fi, const op_t *op, buf_t *b)
{
	mfolder_t *f = &MF[fi];
	const muser_t *mu = &MU[f->user];
	char base[256], tmp[PATHMAX], fin[PATHMAX], name[320];
	int host, hidx;
	uint32_t pid;
	if (op->mode) {
		hidx = (int)gen_rng_below(r, 2);
		host = H_IMAP1 + hidx;
		pid = imap_pids[hidx][gen_rng_below(r, 4)];
	} else {
		hidx = (int)gen_rng_below(r, 3);
		host = H_MX1 + hidx;
		pid = lmtp_pids[hidx][gen_rng_below(r, 4)];
	}
	msgmeta_t m = {mu->name, mu->domain, g_T, gen_hosts[host], op->mode != 0};
	int attach;
	uint32_t target = gen_pick_size(r, &attach);
	gen_message(b, r, &m, target, attach);
	uint32_t lines = gen_count_lf(b->p, b->len);
	const char *flags = op->mode == 2 ? "DS" : "S";
	for (;;) {
		uint32_t sec, usec;
		next_stamp(r, &sec, &usec);
		snprintf(base, sizeof base, "%" PRIu32 ".M%" PRIu32 "P%" PRIu32 ".%s",
			 sec, usec, pid, gen_hosts[host]);
		snprintf(name, sizeof name, "%s,S=%zu,W=%zu%s%s", base, b->len,
			 b->len + lines, op->mode ? ":2," : "", op->mode ? flags : "");
		gen_pjoin3(tmp, f->path, "tmp", base);
		gen_pjoin3(fin, f->path, op->mode ? "cur" : "new", name);
		if (gen_path_exists(fin))
			continue;
		if (gen_write_new_file(tmp, b->p, b->len, g_T, 1) < 0)
			continue;
		break;
	}
	gen_xrename(tmp, fin);
	gen_strv_push(&f->pend, name);
	f->changes++;
	mark_touched(fi);
	ms.delivered++;
	for (int k = 0; k < op->nextra; k++) {
		uint32_t df = op->extra[k];
		if (df == fi)
			continue;
		link_into(r, fin, df, host, pid, (long long)b->len,
			  (long long)(b->len + lines), 1, "");
		ms.delivered++;
		ms.lmtp_links++;
	}
}

/* A folder's messages while its day's ops run: the names in cur/ and new/
 * as they were (without this run's deliveries) and which of them an op has
 * used already (each message takes at most one op). */
typedef struct {
	uint32_t fi;
	mfolder_t *f;
	strv_t cur, nw;
	unsigned char *ucur, *unew;
	int nkw; /* the folder's keywords, read when first needed (-1: not yet) */
} fstate_t;

/* Lists the folder's cur/ and new/, leaving out the names this run added
 * (f->pend). */
static void load_folder_state(uint32_t fi, fstate_t *fs)
{
	mfolder_t *f = &MF[fi];
	memset(fs, 0, sizeof *fs);
	fs->fi = fi;
	fs->f = f;
	char **excl = NULL;
	size_t nex = f->pend.n;
	if (nex) {
		excl = gen_xmalloc(nex * sizeof(char *));
		memcpy(excl, f->pend.v, nex * sizeof(char *));
		qsort(excl, nex, sizeof(char *), cmp_base);
	}
	char dir[PATHMAX];
	gen_pjoin(dir, f->path, "cur");
	load_msgs(dir, &fs->cur, excl, nex);
	gen_pjoin(dir, f->path, "new");
	load_msgs(dir, &fs->nw, excl, nex);
	free(excl);
	fs->ucur = gen_xmalloc(fs->cur.n + 1);
	fs->unew = gen_xmalloc(fs->nw.n + 1);
	memset(fs->ucur, 0, fs->cur.n + 1);
	memset(fs->unew, 0, fs->nw.n + 1);
	fs->nkw = -1;
}

static void free_folder_state(fstate_t *fs)
{
	gen_strv_free(&fs->cur);
	gen_strv_free(&fs->nw);
	free(fs->ucur);
	free(fs->unew);
}

/* Counts a change to the folder (its uidlist and index are updated). */
static void folder_changed(fstate_t *fs)
{
	fs->f->changes++;
	mark_touched(fs->fi);
}

/* Deletes the first unused message at or after op->idx (cur/ then new/,
 * wrapping). */
static void exec_expunge(fstate_t *fs, const op_t *op)
{
	size_t tot = fs->cur.n + fs->nw.n;
	if (!tot)
		return;
	size_t j = op->idx % tot;
	size_t k;
	for (k = 0; k < tot; k++, j = (j + 1) % tot)
		if (j < fs->cur.n ? !fs->ucur[j] : !fs->unew[j - fs->cur.n])
			break;
	if (k == tot)
		return;
	char p[PATHMAX];
	if (j < fs->cur.n) {
		fs->ucur[j] = 1;
		gen_pjoin3(p, fs->f->path, "cur", fs->cur.v[j]);
	} else {
		fs->unew[j - fs->cur.n] = 1;
		gen_pjoin3(p, fs->f->path, "new", fs->nw.v[j - fs->cur.n]);
	}
	gen_xunlink(p);
	fs->f->expunged = 1;
	folder_changed(fs);
	ms.expunged++;
}

/* A client sees a new/ message: renamed into cur/, 60% of them read (S). */
static void exec_move(rng_t *r, fstate_t *fs, const op_t *op)
{
	long j = pick_unused(fs->unew, fs->nw.n, op->idx);
	if (j < 0)
		return;
	fs->unew[j] = 1;
	const char *nm = fs->nw.v[j];
	char p[PATHMAX], q[PATHMAX], name[PATHMAX];
	gen_pjoin3(p, fs->f->path, "new", nm);
	snprintf(name, sizeof name, "%.*s:2,%s", (int)base_len(nm), nm,
		 gen_rng_ppm(r, 600000) ? "S" : "");
	gen_pjoin3(q, fs->f->path, "cur", name);
	gen_xrename(p, q);
	folder_changed(fs);
	ms.moved++;
}

/* A cur/ message's flags change: renamed to its new ":2," suffix. */
static void exec_flag(rng_t *r, fstate_t *fs, const op_t *op)
{
	long j = pick_unused(fs->ucur, fs->cur.n, op->idx);
	if (j < 0)
		return;
	fs->ucur[j] = 1;
	const char *nm = fs->cur.v[j];
	size_t bl = base_len(nm);
	const char *old = "";
	if (nm[bl] == ':' && nm[bl + 1] == '2' && nm[bl + 2] == ',')
		old = nm + bl + 3;
	if (fs->nkw < 0)
		fs->nkw = folder_nkw(fs->f);
	char fl[64];
	new_flags(r, old, fs->nkw, fl);
	char p[PATHMAX], q[PATHMAX], name[PATHMAX];
	gen_pjoin3(p, fs->f->path, "cur", nm);
	snprintf(name, sizeof name, "%.*s:2,%s", (int)bl, nm, fl);
	gen_pjoin3(q, fs->f->path, "cur", name);
	gen_xrename(p, q);
	folder_changed(fs);
	ms.flagged++;
}

/* IMAP COPY of a cur/ message into op->dest as a hard link with its system
 * flags; op->mode: an IMAP MOVE, which then expunges the source. */
static void exec_copy(rng_t *r, fstate_t *fs, const op_t *op)
{
	long j = pick_unused(fs->ucur, fs->cur.n, op->idx);
	if (j < 0)
		return;
	fs->ucur[j] = 1;
	const char *nm = fs->cur.v[j];
	char p[PATHMAX];
	gen_pjoin3(p, fs->f->path, "cur", nm);
	long long S = name_field(nm, 'S'), W = name_field(nm, 'W');
	if (S < 0) {
		struct stat sb;
		if (stat(p, &sb) < 0)
			gen_die_path("stat", p);
		S = (long long)sb.st_size;
	}
	size_t bl = base_len(nm);
	char fl[64] = "";
	if (nm[bl] == ':' && nm[bl + 1] == '2' && nm[bl + 2] == ',') {
		size_t o = 0;
		for (const char *c = nm + bl + 3; *c && o + 1 < sizeof fl; c++)
			if (*c >= 'A' && *c <= 'Z')
				fl[o++] = *c;
		fl[o] = 0;
	}
	int hidx = (int)gen_rng_below(r, 2);
	link_into(r, p, op->dest, H_IMAP1 + hidx, imap_pids[hidx][gen_rng_below(r, 4)], S, W, 0, fl);
	ms.copied++;
	if (op->mode) { /* IMAP MOVE: expunge the source */
		gen_xunlink(p);
		fs->f->expunged = 1;
		ms.expunged++;
		ms.imap_moves++;
	}
	folder_changed(fs);
}

/* Carries out the folder's planned ops in their order (cmp_op). */
static void exec_folder(rng_t *r, uint32_t fi, buf_t *b)
{
	mfolder_t *f = &MF[fi];
	if (f->nops == 0)
		return;
	qsort(f->ops, f->nops, sizeof(op_t), cmp_op);
	fstate_t fs;
	load_folder_state(fi, &fs);
	for (size_t i = 0; i < f->nops; i++) {
		const op_t *op = &f->ops[i];
		switch (op->type) {
		case OP_EXPUNGE: exec_expunge(&fs, op); break;
		case OP_MOVE: exec_move(r, &fs, op); break;
		case OP_FLAG: exec_flag(r, &fs, op); break;
		case OP_COPY: exec_copy(r, &fs, op); break;
		case OP_DELIVER: deliver(r, fi, op, b); break;
		}
	}
	free_folder_state(&fs);
	f->nops = 0;
}

typedef struct {
	uint32_t uid;
	const char *base;
	size_t blen;
} urec_t;

static int cmp_urec_base(const void *a, const void *b)
{
	const urec_t *x = a, *y = b;
	size_t l = x->blen < y->blen ? x->blen : y->blen;
	int c = memcmp(x->base, y->base, l);
	if (c)
		return c;
	return x->blen < y->blen ? -1 : x->blen > y->blen;
}

typedef struct {
	uint32_t uid;
	const char *dir;
	const char *name;
} wrec_t;

static int cmp_wrec(const void *a, const void *b)
{
	const wrec_t *x = a, *y = b;
	return x->uid < y->uid ? -1 : x->uid > y->uid;
}

static int open_lock(const char *path)
{
	for (int tries = 0; tries < 2; tries++) {
		int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
		if (fd >= 0)
			return fd;
		if (errno != EEXIST)
			break;
		/* stale lock (Dovecot overrides them after a timeout) */
		if (unlink(path) < 0 && errno != ENOENT)
			break;
	}
	gen_die_path("create lock", path);
	return -1;
}

/* A dovecot-uidlist as read: its header (V, N, G; ok when it parsed) and
 * its records, whose names point into the file's buffer. */
typedef struct {
	uint32_t V, N;
	char G[64];
	int ok;
	urec_t *recs;
	size_t nrec, caprec;
	uint32_t maxuid;
} uidlist_t;

/* Parses the uidlist text in (cut into lines in place) into u. */
static void parse_uidlist(buf_t *in, uidlist_t *u)
{
	char *nl = memchr(in->p, '\n', in->len);
	if (!nl)
		return;
	*nl = 0;
	unsigned long v = 0, n = 0;
	char g[64] = "";
	if (sscanf(in->p, "3 V%lu N%lu G%40s", &v, &n, g) >= 2) {
		u->V = (uint32_t)v;
		u->N = (uint32_t)n;
		snprintf(u->G, sizeof u->G, "%s", g);
		u->ok = 1;
	}
	char *line = nl + 1, *end = in->p + in->len;
	while (u->ok && line < end) {
		char *e = memchr(line, '\n', (size_t)(end - line));
		if (!e)
			e = end;
		*e = 0;
		char *c = strstr(line, " :");
		if (c) {
			uint32_t uid = (uint32_t)strtoul(line, NULL, 10);
			GROW(u->recs, u->nrec, u->caprec);
			u->recs[u->nrec].uid = uid;
			u->recs[u->nrec].base = c + 2;
			u->recs[u->nrec].blen = base_len(c + 2);
			u->nrec++;
			if (uid > u->maxuid)
				u->maxuid = uid;
		}
		line = e + 1;
	}
}

/* Dovecot's usual update: this run's names appended in place with the next
 * uids (the header's N stays as it is); the lock is dropped unused. */
static void append_uidlist(const mfolder_t *f, const char *up, const char *lp, int lfd,
			   uint32_t next, buf_t *out)
{
	for (size_t i = 0; i < f->pend.n; i++)
		gen_buf_printf(out, "%" PRIu32 " :%s\n", next++, f->pend.v[i]);
	if (out->len)
		gen_append_file(up, out->p, out->len);
	close(lfd);
	gen_xunlink(lp);
	ms.uid_appends++;
}

/* This run's names with the uids from *next on, in delivery order; sorted
 * by base name for lookups.  Their count in *np. */
static urec_t *pending_uids(const mfolder_t *f, uint32_t *next, size_t *np)
{
	*np = f->pend.n;
	urec_t *prec = gen_xmalloc(sizeof(urec_t) * (*np + 1));
	for (size_t i = 0; i < *np; i++) {
		prec[i].uid = (*next)++;
		prec[i].base = f->pend.v[i];
		prec[i].blen = base_len(f->pend.v[i]);
	}
	if (*np > 1)
		qsort(prec, *np, sizeof(urec_t), cmp_urec_base);
	return prec;
}

/* The records of a rewritten uidlist: every file of cur/ and new/ with the
 * uid the old list (recs) or this run (prec) gave it; files unknown to both
 * get uids from *next on.  Sorted by uid (cmp_wrec); their count in *nout. */
static wrec_t *uidlist_records(const strv_t *cur, const strv_t *nw, const uidlist_t *u,
			       const urec_t *prec, size_t np, uint32_t *next, size_t *nout)
{
	wrec_t *w = gen_xmalloc(sizeof(wrec_t) * (cur->n + nw->n + 1));
	size_t n = 0;
	for (int pass = 0; pass < 2; pass++) {
		const strv_t *L = pass ? nw : cur;
		for (size_t i = 0; i < L->n; i++) {
			urec_t key = {0, L->v[i], base_len(L->v[i])};
			const urec_t *hit = u->nrec ? bsearch(&key, u->recs, u->nrec, sizeof(urec_t),
							      cmp_urec_base)
						    : NULL;
			if (!hit && np)
				hit = bsearch(&key, prec, np, sizeof(urec_t), cmp_urec_base);
			w[n].uid = hit ? hit->uid : 0;
			w[n].dir = pass ? "new" : "cur";
			w[n].name = L->v[i];
			n++;
		}
	}
	/* files unknown to the uidlist get uids after the pending ones */
	for (size_t i = 0; i < n; i++)
		if (w[i].uid == 0)
			w[i].uid = (*next)++;
	qsort(w, n, sizeof(wrec_t), cmp_wrec);
	*nout = n;
	return w;
}

/* Dovecot's full rewrite (after an expunge, sometimes anyway, or over a
 * list it cannot read, which gets a new V and G): every file listed again
 * by uid, written to the lock file and renamed over the list. */
static void rewrite_uidlist(rng_t *r, const mfolder_t *f, uidlist_t *u, const char *up,
			    const char *lp, int lfd, uint32_t next, buf_t *out)
{
	if (!u->ok) {
		u->V = (uint32_t)g_T;
		uint64_t g1 = gen_rng_next(r);
		uint64_t g2 = gen_rng_next(r);
		snprintf(u->G, sizeof u->G, "%016" PRIx64 "%016" PRIx64, g1, g2);
		u->nrec = 0;
	}
	if (u->nrec > 1)
		qsort(u->recs, u->nrec, sizeof(urec_t), cmp_urec_base);
	strv_t cur = {0}, nw = {0};
	char d[PATHMAX];
	gen_pjoin(d, f->path, "cur");
	gen_list_dir(d, &cur, 1);
	gen_pjoin(d, f->path, "new");
	gen_list_dir(d, &nw, 1);
	size_t np, nw_;
	urec_t *prec = pending_uids(f, &next, &np);
	wrec_t *w = uidlist_records(&cur, &nw, u, prec, np, &next, &nw_);
	gen_buf_printf(out, "3 V%" PRIu32 " N%" PRIu32 " G%s\n", u->V, next, u->G);
	for (size_t i = 0; i < nw_; i++)
		gen_buf_printf(out, "%" PRIu32 " :%s\n", w[i].uid, w[i].name);
	gen_write_all(lfd, out->p, out->len, lp);
	gen_stats.bytes += out->len;
	if (close(lfd) < 0)
		gen_die_path("close", lp);
	gen_xrename(lp, up);
	ms.uid_rewrites++;
	free(w);
	free(prec);
	gen_strv_free(&cur);
	gen_strv_free(&nw);
}

/* Gives this run's new names (f->pend) uids in the folder's
 * dovecot-uidlist, under its lock, as Dovecot does. */
static void update_uidlist(rng_t *r, mfolder_t *f)
{
	char up[PATHMAX], lp[PATHMAX];
	buf_t in = {0}, out = {0};
	gen_pjoin(up, f->path, "dovecot-uidlist");
	gen_pjoin(lp, f->path, "dovecot-uidlist.lock");
	int lfd = open_lock(lp);
	int have = gen_read_file(up, &in) == 0;
	uidlist_t u = {0};
	if (have && in.len > 0)
		parse_uidlist(&in, &u);
	uint32_t next = u.N > u.maxuid ? u.N : u.maxuid + 1;
	if (next == 0)
		next = 1;
	int rewrite = !u.ok || f->expunged || gen_rng_ppm(r, 50000);
	if (!rewrite)
		append_uidlist(f, up, lp, lfd, next, &out);
	else
		rewrite_uidlist(r, f, &u, up, lp, lfd, next, &out);
	free(u.recs);
	free(in.p);
	free(out.p);
}

/* dovecot.index.log rotation, as Dovecot does it: .log.2 unlinked, .log
 * linked to .log.2, a fresh log written to .log.newlock and renamed over
 * .log.  Done when the log is large, else 3% of the time. */
static void rotate_index_log(rng_t *r, const mfolder_t *f, const char *log, buf_t *b)
{
	char q[PATHMAX], nl[PATHMAX];
	gen_pjoin(q, f->path, "dovecot.index.log.2");
	if (unlink(q) < 0 && errno != ENOENT)
		gen_die_path("unlink", q);
	if (link(log, q) < 0)
		gen_die_path("link to .log.2", log);
	gen_stats.links++;
	gen_pjoin(nl, f->path, "dovecot.index.log.newlock");
	gen_write_log_blob(b, r, (uint32_t)g_T, (uint32_t)gen_rng_range(r, 2, 99), 40);
	if (gen_write_new_file(nl, b->p, b->len, -1, 1) < 0) {
		gen_xunlink(nl);
		gen_write_new_file(nl, b->p, b->len, -1, 0);
	}
	gen_xrename(nl, log);
	ms.log_rotations++;
}

/* dovecot.index.log: appended in place (one record per change, and one
 * more), sometimes rotated first. */
static void update_index_log(rng_t *r, const mfolder_t *f, buf_t *b)
{
	char p[PATHMAX];
	gen_pjoin(p, f->path, "dovecot.index.log");
	struct stat sb;
	int have_log = stat(p, &sb) == 0;
	if (!have_log && errno != ENOENT)
		gen_die_path("stat", p);
	if (have_log && (sb.st_size > 128 * 1024 || gen_rng_ppm(r, 30000)))
		rotate_index_log(r, f, p, b);
	b->len = 0;
	for (uint32_t i = 0; i < f->changes + 1; i++) {
		uint32_t sz = (uint32_t)(8 + 4 * gen_rng_range(r, 2, 16));
		size_t off = b->len;
		gen_buf_rand(b, r, sz);
		gen_put_le32(b, off, sz);
		gen_put_le32(b, off + 4, (uint32_t)(1u << gen_rng_below(r, 12)));
	}
	gen_append_file(p, b->p, b->len);
	ms.log_appends++;
}

/* dovecot.index: replaced by rename, 20% of the time. */
static void maybe_replace_index(rng_t *r, const mfolder_t *f, buf_t *b)
{
	if (!gen_rng_ppm(r, 200000))
		return;
	char p[PATHMAX], q[PATHMAX];
	uint32_t n = f->ncur + f->nnew;
	b->len = 0;
	gen_buf_rand(b, r, 256 + 12 * (size_t)n);
	b->p[0] = 7;
	b->p[1] = 3;
	gen_pjoin(q, f->path, "dovecot.index.tmp");
	if (gen_write_new_file(q, b->p, b->len, -1, 1) < 0) {
		gen_xunlink(q);
		gen_write_new_file(q, b->p, b->len, -1, 0);
	}
	gen_pjoin(p, f->path, "dovecot.index");
	gen_xrename(q, p);
	ms.index_replaced++;
}

/* dovecot.index.cache: appended in place, 30% of the time. */
static void maybe_append_cache(rng_t *r, const mfolder_t *f, buf_t *b)
{
	if (!gen_rng_ppm(r, 300000))
		return;
	char p[PATHMAX];
	b->len = 0;
	gen_buf_rand(b, r, (size_t)gen_rng_range(r, 64, 2048));
	gen_pjoin(p, f->path, "dovecot.index.cache");
	gen_append_file(p, b->p, b->len);
	ms.cache_appends++;
}

/* tmp/: files older than 36 hours are dropped, as Dovecot's cleanup does. */
static void clean_tmp(const char *td)
{
	char p[PATHMAX];
	struct stat sb;
	strv_t t = {0};
	gen_list_dir(td, &t, 0);
	for (size_t i = 0; i < t.n; i++) {
		gen_pjoin(p, td, t.v[i]);
		if (lstat(p, &sb) < 0)
			gen_die_path("lstat", p);
		if (S_ISREG(sb.st_mode) && (int64_t)sb.st_mtime < g_T - 36 * 3600) {
			gen_xunlink(p);
			ms.tmp_removed++;
		}
	}
	gen_strv_free(&t);
}

/* 5% of the time, a delivery cut short: a partial message left in tmp/
 * under an LMTP delivery's name. */
static void maybe_leave_partial(rng_t *r, const mfolder_t *f, const char *td, buf_t *b)
{
	if (!gen_rng_ppm(r, 50000))
		return;
	char p[PATHMAX];
	const muser_t *mu = &MU[f->user];
	int hidx = (int)gen_rng_below(r, 3);
	msgmeta_t m = {mu->name, mu->domain, g_T, gen_hosts[H_MX1 + hidx], 0};
	int attach;
	uint32_t target = gen_pick_size(r, &attach);
	gen_message(b, r, &m, target, attach);
	size_t cut = (size_t)gen_rng_below(r, b->len);
	for (;;) {
		uint32_t sec, usec;
		char base[256];
		next_stamp(r, &sec, &usec);
		snprintf(base, sizeof base, "%" PRIu32 ".M%" PRIu32 "P%" PRIu32 ".%s",
			 sec, usec, lmtp_pids[hidx][gen_rng_below(r, 4)],
			 gen_hosts[H_MX1 + hidx]);
		gen_pjoin(p, td, base);
		if (gen_write_new_file(p, b->p, cut, g_T, 1) == 0)
			break;
	}
	ms.tmp_partial++;
}

/* The end of a mail day for a folder the day touched: its uidlist, index
 * log, index, cache and tmp/, in that order (the PRNG is drawn in it). */
static void finish_folder(rng_t *r, uint32_t fi, buf_t *b)
{
	mfolder_t *f = &MF[fi];
	if (!f->touched)
		return;
	update_uidlist(r, f);
	update_index_log(r, f, b);
	maybe_replace_index(r, f, b);
	maybe_append_cache(r, f, b);
	char td[PATHMAX];
	gen_pjoin(td, f->path, "tmp");
	clean_tmp(td);
	maybe_leave_partial(r, f, td, b);
	f->touched = 0;
	f->expunged = 0;
	f->changes = 0;
	gen_strv_free(&f->pend);
}

/* subscriptions: remove `del` (and its children), add `add`, rename
 * `from` (and its children) to `to`; written to subscriptions.lock and renamed */
static void update_subscriptions(const char *maildir, const char *add,
				 const char *del, const char *from,
				 const char *to)
{
	char p[PATHMAX], l[PATHMAX];
	buf_t in = {0}, out = {0};
	gen_pjoin(p, maildir, "subscriptions");
	gen_pjoin(l, maildir, "subscriptions.lock");
	int fd = open_lock(l);
	if (gen_read_file(p, &in) < 0)
		in.len = 0;
	char *line = in.p, *end = in.p + in.len;
	while (line && line < end) {
		char *e = memchr(line, '\n', (size_t)(end - line));
		if (!e)
			e = end;
		*e = 0;
		size_t ll = strlen(line);
		if (ll == 0) {
			line = e + 1;
			continue;
		}
		if (del) {
			size_t dl = strlen(del);
			if (strncmp(line, del, dl) == 0 && (line[dl] == 0 || line[dl] == '.')) {
				line = e + 1;
				continue;
			}
		}
		if (from) {
			size_t fl = strlen(from);
			if (strncmp(line, from, fl) == 0 && (line[fl] == 0 || line[fl] == '.')) {
				gen_buf_printf(&out, "%s%s\n", to, line + fl);
				line = e + 1;
				continue;
			}
		}
		gen_buf_printf(&out, "%s\n", line);
		line = e + 1;
	}
	if (add)
		gen_buf_printf(&out, "%s\n", add);
	gen_write_all(fd, out.p, out.len, l);
	gen_stats.bytes += out.len;
	if (close(fd) < 0)
		gen_die_path("close", l);
	gen_xrename(l, p);
	free(in.p);
	free(out.p);
}

static void mailbox_log_append(rng_t *r, const char *maildir, buf_t *b)
{
	char p[PATHMAX];
	gen_pjoin(p, maildir, "dovecot.mailbox.log");
	b->len = 0;
	gen_buf_rand(b, r, 24);
	gen_put_le32(b, 20, (uint32_t)g_T);
	gen_append_file(p, b->p, b->len);
}

static uint32_t next_uidvalidity(const char *maildir)
{
	char p[PATHMAX], o[PATHMAX], n[PATHMAX], nm[64];
	buf_t b = {0};
	gen_pjoin(p, maildir, "dovecot-uidvalidity");
	uint32_t cur = 0;
	int have = gen_read_file(p, &b) == 0;
	if (have)
		cur = (uint32_t)strtoul(b.p, NULL, 16);
	uint32_t v = cur >= (uint32_t)g_T ? cur + 1 : (uint32_t)g_T;
	/* rewritten in place, the marker file renamed */
	int fd = open(p, O_WRONLY | O_CREAT, 0600);
	if (fd < 0)
		gen_die_path("open", p);
	snprintf(nm, sizeof nm, "%08" PRIx32, v);
	gen_write_all(fd, nm, 8, p);
	if (ftruncate(fd, 8) < 0)
		gen_die_path("ftruncate", p);
	close(fd);
	gen_stats.bytes += 8;
	snprintf(nm, sizeof nm, "dovecot-uidvalidity.%08" PRIx32, cur);
	gen_pjoin(o, maildir, nm);
	snprintf(nm, sizeof nm, "dovecot-uidvalidity.%08" PRIx32, v);
	gen_pjoin(n, maildir, nm);
	if (have && gen_path_exists(o))
		gen_xrename(o, n);
	else
		gen_write_new_file(n, "", 0, -1, 1);
	free(b.p);
	return v;
}

/* current folder names (without dot) of a Maildir, sorted */
static void list_folders(const char *maildir, strv_t *out)
{
	strv_t all = {0};
	gen_list_dir(maildir, &all, 0);
	out->n = 0;
	for (size_t i = 0; i < all.n; i++) {
		const char *nm = all.v[i];
		char p[PATHMAX];
		if (nm[0] != '.' || strcmp(nm, ".DOVECOT-TRASHED") == 0)
			continue;
		gen_pjoin(p, maildir, nm);
		if (gen_is_dir(p))
			gen_strv_push(out, nm + 1);
	}
	gen_strv_free(&all);
}

static int folder_in(const strv_t *l, const char *nm)
{
	for (size_t i = 0; i < l->n; i++)
		if (strcmp(l->v[i], nm) == 0)
			return 1;
	return 0;
}

/* A name for a new folder of a user whose folders are fl: a name from the
 * pool (mUTF-7), under an existing folder one time in five, numbered when
 * taken. */
static void new_folder_name(rng_t *r, const strv_t *fl, char nm[600])
{
	char enc[512];
	int sub = fl->n > 0 && gen_rng_ppm(r, 200000);
	const char *parent = sub ? fl->v[gen_rng_below(r, fl->n)] : NULL;
	const char *base = gen_ufolder_pool[gen_rng_below(r, NELEM(gen_ufolder_pool))];
	gen_mutf7_encode(base, enc, sizeof enc);
	if (parent)
		snprintf(nm, 600, "%s.%s", parent, enc);
	else
		snprintf(nm, 600, "%s", enc);
	for (uint32_t k = 2; folder_in(fl, nm); k++) {
		if (parent)
			snprintf(nm, 600, "%s.%s %" PRIu32, parent, enc, k);
		else
			snprintf(nm, 600, "%s %" PRIu32, enc, k);
	}
}

/* Makes folder nm of the user as Dovecot's CREATE does: cur/ new/ tmp/, the
 * maildirfolder marker, a uidlist with a new UIDVALIDITY and an index log;
 * then the subscription and the mailbox log. */
static void create_folder(rng_t *r, const muser_t *mu, const char *nm, buf_t *b)
{
	char p[PATHMAX], q[PATHMAX], dn[640];
	snprintf(dn, sizeof dn, ".%s", nm);
	gen_pjoin(p, mu->maildir, dn);
	gen_xmkdir(p);
	gen_pjoin(q, p, "cur");
	gen_xmkdir(q);
	gen_pjoin(q, p, "new");
	gen_xmkdir(q);
	gen_pjoin(q, p, "tmp");
	gen_xmkdir(q);
	gen_pjoin(q, p, "maildirfolder");
	gen_write_new_file(q, "", 0, -1, 0);
	uint32_t V = next_uidvalidity(mu->maildir);
	b->len = 0;
	uint64_t g1 = gen_rng_next(r);
	uint64_t g2 = gen_rng_next(r);
	gen_buf_printf(b, "3 V%" PRIu32 " N1 G%016" PRIx64 "%016" PRIx64 "\n", V, g1, g2);
	gen_pjoin(q, p, "dovecot-uidlist");
	gen_write_new_file(q, b->p, b->len, -1, 0);
	gen_write_log_blob(b, r, V, 1, 40 + 64);
	gen_pjoin(q, p, "dovecot.index.log");
	gen_write_new_file(q, b->p, b->len, -1, 0);
	update_subscriptions(mu->maildir, nm, NULL, NULL, NULL);
	mailbox_log_append(r, mu->maildir, b);
	ms.fcreated++;
}

/* Renames top-level folder old of the user (folders fl) to "old YEAR" (the
 * year of the run, numbered when taken), its children with it, parent
 * first. */
static void rename_folder(rng_t *r, const muser_t *mu, const strv_t *fl, const char *old, buf_t *b)
{
	char to[600], p[PATHMAX], q[PATHMAX];
	time_t tt = (time_t)g_T;
	struct tm tm;
	int year = gmtime_r(&tt, &tm) ? tm.tm_year + 1900 : 2025;
	snprintf(to, sizeof to, "%s %d", old, year);
	for (uint32_t k = 2; folder_in(fl, to); k++)
		snprintf(to, sizeof to, "%s %d-%" PRIu32, old, year, k);
	size_t ol = strlen(old);
	for (size_t k = 0; k < fl->n; k++) {
		const char *fn = fl->v[k];
		if (strncmp(fn, old, ol) != 0 || (fn[ol] != 0 && fn[ol] != '.'))
			continue;
		char a[640], c[1280];
		snprintf(a, sizeof a, ".%s", fn);
		snprintf(c, sizeof c, ".%s%s", to, fn + ol);
		gen_pjoin(p, mu->maildir, a);
		gen_pjoin(q, mu->maildir, c);
		gen_xrename(p, q);
	}
	update_subscriptions(mu->maildir, NULL, NULL, old, to);
	mailbox_log_append(r, mu->maildir, b);
	ms.frenamed++;
}

/* Renames a top-level user folder (not a special one) of a random user; 0
 * when that user has none (the caller draws again). */
static int try_rename_folder(rng_t *r, strv_t *fl, buf_t *b)
{
	uint32_t u = (uint32_t)gen_rng_below(r, nMU);
	const muser_t *mu = &MU[u];
	list_folders(mu->maildir, fl);
	strv_t cand = {0};
	for (size_t k = 0; k < fl->n; k++)
		if (!strchr(fl->v[k], '.') && !is_special(fl->v[k]))
			gen_strv_push(&cand, fl->v[k]);
	int done = cand.n > 0;
	if (done)
		rename_folder(r, mu, fl, cand.v[gen_rng_below(r, cand.n)], b);
	gen_strv_free(&cand);
	return done;
}

/* Deletes folder victim of the user as Dovecot's DELETE does: renamed to
 * .DOVECOT-TRASHED (a leftover one removed first), then removed; then the
 * subscription and the mailbox log. */
static void delete_folder(rng_t *r, const muser_t *mu, const char *victim, buf_t *b)
{
	char a[640], p[PATHMAX], q[PATHMAX];
	snprintf(a, sizeof a, ".%s", victim);
	gen_pjoin(p, mu->maildir, a);
	gen_pjoin(q, mu->maildir, ".DOVECOT-TRASHED");
	if (gen_path_exists(q))
		gen_rm_rf(q, 0);
	gen_xrename(p, q);
	ms.fdeleted_msgs += gen_rm_rf(q, 0);
	update_subscriptions(mu->maildir, NULL, victim, NULL, NULL);
	mailbox_log_append(r, mu->maildir, b);
	ms.fdeleted++;
}

/* Deletes a leaf user folder (no children, not a special one) of a random
 * user; 0 when that user has none (the caller draws again). */
static int try_delete_folder(rng_t *r, strv_t *fl, buf_t *b)
{
	uint32_t u = (uint32_t)gen_rng_below(r, nMU);
	const muser_t *mu = &MU[u];
	list_folders(mu->maildir, fl);
	strv_t cand = {0};
	for (size_t k = 0; k < fl->n; k++) {
		const char *fn = fl->v[k];
		if (is_special(fn))
			continue;
		size_t l = strlen(fn);
		int leaf = 1;
		for (size_t j = 0; j < fl->n; j++)
			if (strncmp(fl->v[j], fn, l) == 0 && fl->v[j][l] == '.')
				leaf = 0;
		if (leaf)
			gen_strv_push(&cand, fn);
	}
	int done = cand.n > 0;
	if (done)
		delete_folder(r, mu, cand.v[gen_rng_below(r, cand.n)], b);
	gen_strv_free(&cand);
	return done;
}

/* The day's folder changes for percent: creations (2% of percent per user,
 * at least one), then renames and deletions (0.5%, at least one; each of
 * those tries 20 users for a folder it may change). */
static void folder_ops(rng_t *r, double percent, buf_t *b)
{
	if (percent <= 0 || nMU == 0)
		return;
	uint64_t n_create = (uint64_t)((double)nMU * percent * 0.02 + 0.5);
	uint64_t n_ren = (uint64_t)((double)nMU * percent * 0.005 + 0.5);
	if (n_create < 1)
		n_create = 1;
	if (n_ren < 1)
		n_ren = 1;
	uint64_t n_del = n_ren;
	strv_t fl = {0};
	for (uint64_t i = 0; i < n_create; i++) {
		const muser_t *mu = &MU[gen_rng_below(r, nMU)];
		list_folders(mu->maildir, &fl);
		char nm[600];
		new_folder_name(r, &fl, nm);
		create_folder(r, mu, nm, b);
	}
	for (uint64_t i = 0; i < n_ren; i++)
		for (int tries = 0; tries < 20 && !try_rename_folder(r, &fl, b); tries++)
			;
	for (uint64_t i = 0; i < n_del; i++)
		for (int tries = 0; tries < 20 && !try_delete_folder(r, &fl, b); tries++)
			;
	gen_strv_free(&fl);
}

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void extra_round(rng_t *r, buf_t *b, const unsigned char *was_touched)
{
	uint32_t cand[8];
	int nc = 0;
	uint32_t *all = gen_xmalloc(sizeof(uint32_t) * (nMF + 1));
	size_t na = 0;
	for (size_t i = 0; i < nMF; i++)
		if (was_touched[i] && gen_is_dir(MF[i].path))
			all[na++] = (uint32_t)i;
	if (na == 0)
		for (size_t i = 0; i < nMU && na < 8; i++)
			all[na++] = MU[i].f0;
	/* partial Fisher-Yates for up to 8 distinct folders, then sort */
	for (size_t i = 0; i < na && nc < 8; i++) {
		size_t j = i + (size_t)gen_rng_below(r, na - i);
		uint32_t t = all[i];
		all[i] = all[j];
		all[j] = t;
		cand[nc++] = all[i];
	}
	free(all);
	for (int i = 1; i < nc; i++)
		for (int j = i; j > 0 && cand[j - 1] > cand[j]; j--) {
			uint32_t t = cand[j];
			cand[j] = cand[j - 1];
			cand[j - 1] = t;
		}
	uint64_t before = ms.delivered + ms.moved + ms.flagged + ms.expunged;
	char p[PATHMAX];
	for (int i = 0; i < nc; i++) {
		mfolder_t *f = &MF[cand[i]];
		gen_pjoin(p, f->path, "cur");
		f->ncur = gen_count_dir(p);
		gen_pjoin(p, f->path, "new");
		f->nnew = gen_count_dir(p);
		op_t op;
		memset(&op, 0, sizeof op);
		op.type = OP_DELIVER;
		/* into new/ where mail is delivered, else saved into cur/ */
		if (strcmp(f->name, "Drafts") == 0 || strcmp(f->name, "Entw&APw-rfe") == 0)
			op.mode = 2;
		else if (f->name[0] && is_special(f->name) && strncmp(f->name, "Junk", 4) != 0)
			op.mode = 1;
		mf_add_op(cand[i], op);
		op.mode = 0;
		if (f->ncur) {
			op.type = OP_FLAG;
			op.idx = (uint32_t)gen_rng_below(r, f->ncur);
			mf_add_op(cand[i], op);
		}
		if (f->nnew) {
			op.type = OP_MOVE;
			op.idx = (uint32_t)gen_rng_below(r, f->nnew);
			mf_add_op(cand[i], op);
		}
		if (i == 0 && f->ncur + f->nnew > 0) {
			op.type = OP_EXPUNGE;
			op.idx = (uint32_t)gen_rng_below(r, f->ncur + f->nnew);
			mf_add_op(cand[i], op);
		}
	}
	for (int i = 0; i < nc; i++)
		exec_folder(r, cand[i], b);
	for (int i = 0; i < nc; i++)
		finish_folder(r, cand[i], b);
	ms.extra_ops = ms.delivered + ms.moved + ms.flagged + ms.expunged - before;
}

int gen_mutate(const char *root, uint64_t seed, double percent,
		     int have_time, int64_t T, int same_second)
{
	rng_t R;
	gen_rng_seed(&R, seed ^ 0x6D75746174650000ULL);
	if (!gen_is_dir(root)) {
		errno = ENOENT;
		gen_die_path("cannot use tree", root);
	}
	load_tree(root);
	for (int h = 0; h < 3; h++)
		for (int k = 0; k < 4; k++)
			lmtp_pids[h][k] = gen_rand_pid(&R, 1);
	for (int h = 0; h < 2; h++)
		for (int k = 0; k < 4; k++)
			imap_pids[h][k] = gen_rand_pid(&R, 1);
	uint64_t nmsgs = 0;
	for (size_t i = 0; i < nMF; i++)
		nmsgs += MF[i].ncur + MF[i].nnew;
	uint64_t K = 0;
	plan_mutations(&R, percent, &K);

	int64_t sec_start = 0;
	if (same_second) {
		int64_t ns = now_ns();
		int64_t wait = 1000000000LL - ns % 1000000000LL;
		struct timespec ts = {(time_t)(wait / 1000000000LL),
				      (long)(wait % 1000000000LL)};
		while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
			;
		sec_start = (ns + wait) / 1000000000LL;
		while (now_ns() / 1000000000LL < sec_start) {
			struct timespec t1 = {0, 1000000};
			nanosleep(&t1, NULL);
		}
	}
	g_T = have_time ? T : (same_second ? sec_start : (int64_t)time(NULL));

	buf_t b = {0};
	for (size_t i = 0; i < nMF; i++)
		exec_folder(&R, (uint32_t)i, &b);
	unsigned char *was = gen_xmalloc(nMF + 1);
	for (size_t i = 0; i < nMF; i++) {
		was[i] = (unsigned char)MF[i].touched;
		finish_folder(&R, (uint32_t)i, &b);
	}
	folder_ops(&R, percent, &b);
	if (same_second)
		extra_round(&R, &b, was);
	free(was);

	printf("mutate: messages_before=%" PRIu64 " affected_target=%" PRIu64
	       " delivered=%" PRIu64 " lmtp_links=%" PRIu64 " moved=%" PRIu64
	       " flagged=%" PRIu64 " expunged=%" PRIu64 " copied=%" PRIu64
	       " imap_moves=%" PRIu64 " folders_created=%" PRIu64
	       " folders_renamed=%" PRIu64 " folders_deleted=%" PRIu64
	       " deleted_folder_msgs=%" PRIu64 " uidlist_appends=%" PRIu64
	       " uidlist_rewrites=%" PRIu64 " index_log_appends=%" PRIu64
	       " index_log_rotations=%" PRIu64 " index_replaced=%" PRIu64
	       " cache_appends=%" PRIu64 " tmp_partial=%" PRIu64
	       " tmp_removed=%" PRIu64 " bytes_written=%" PRIu64 " time=%" PRId64,
	       nmsgs, K, ms.delivered, ms.lmtp_links, ms.moved, ms.flagged,
	       ms.expunged, ms.copied, ms.imap_moves, ms.fcreated, ms.frenamed,
	       ms.fdeleted, ms.fdeleted_msgs, ms.uid_appends, ms.uid_rewrites,
	       ms.log_appends, ms.log_rotations, ms.index_replaced,
	       ms.cache_appends, ms.tmp_partial, ms.tmp_removed, gen_stats.bytes, g_T);
	if (same_second)
		printf(" extra_ops=%" PRIu64 " second=%" PRId64 " done_ms=%" PRId64,
		       ms.extra_ops, sec_start,
		       (int64_t)((now_ns() - sec_start * 1000000000LL) / 1000000));
	printf("\n");
	if (fflush(stdout) != 0)
		gen_die_path("write", "stdout");
	free(b.p);
	return 0;
}
