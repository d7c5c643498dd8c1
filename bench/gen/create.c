/*
 * create.c -- `gen_maildir create`: plans users, folders and messages (with
 * the hard links of IMAP COPY and LMTP multi-recipient delivery), assigns
 * UIDs, then writes the messages and each folder's and user's Dovecot
 * control files.  Owns the plan (E, CF, CU), which lives until exit.
 */
#include "gen.h"

#define XXH_INLINE_ALL
#include <xxhash.h>

/* per-user message count multiplier in per mille: {lo, hi, ppm} */
static const uint32_t mult_tab[][3] = {
	{20, 200, 100000}, {200, 500, 180000}, {500, 1000, 280000},
	{1000, 2000, 260000}, {2000, 4000, 130000}, {4000, 10000, 50000},
};

static const char *domain_names[] = {
	"example.com",       "example.org",        "example.net",
	"mail.example",      "kunde-gmbh.example", "universidad.example",
	"shop.example",      "family.example",
};
static const char *subfolder_pool[] = {
	"2021", "2022", "2024", "Done", "Pending", "Team", "Private", "Älteres",
	"Clients", "Misc",
};
static const char *kw_names[] = {
	"$Forwarded", "Junk", "NonJunk", "$label1", "$label2", "$MDNSent",
	"$NotJunk", "$label3",
};

typedef struct {
	uint32_t folder, sec, usec, pid, uid, owner;
	uint32_t size, lines; /* on the owner: real S= and line count */
	uint32_t target;      /* on the owner: planned size */
	uint32_t ino;         /* old style I<ino> */
	uint16_t n;           /* old style _<n> */
	uint8_t host, style, flags, kw, in_new, attach;
} entry_t;

typedef struct {
	uint32_t user;
	uint8_t kind, nkw;
	uint16_t year;
	char *name; /* Maildir++ name without the leading dot; "" = INBOX */
	char *path;
	uint32_t *ents;
	uint32_t nents, cap;
	uint32_t uidvalidity, nextuid, tmin, tmax, weight, ctime;
	uint64_t guid_hi, guid_lo;
} cfolder_t;

typedef struct {
	uint32_t domain;
	char *name, *home, *maildir;
	uint32_t f0, nf;
	uint32_t A, L;
	int localized;
} cuser_t;

static entry_t *E;
static size_t nE, capE;
static cfolder_t *CF;
static size_t nCF, capCF;
static cuser_t *CU;
static size_t nCU;
static uint64_t g_seed;
static uint32_t g_T0;

static uint32_t new_entry(void)
{
	if (nE >= 0xFFFFFFF0u) {
		fprintf(stderr, "%s: too many messages\n", gen_prog);
		exit(1);
	}
	GROW(E, nE, capE);
	memset(&E[nE], 0, sizeof E[nE]);
	return (uint32_t)nE++;
}

static void folder_add(cfolder_t *f, uint32_t e)
{
	GROW(f->ents, f->nents, f->cap);
	f->ents[f->nents++] = e;
}

static int cmp_ent_time(const void *a, const void *b)
{
	const entry_t *x = &E[*(const uint32_t *)a], *y = &E[*(const uint32_t *)b];
	if (x->sec != y->sec)
		return x->sec < y->sec ? -1 : 1;
	if (x->usec != y->usec)
		return x->usec < y->usec ? -1 : 1;
	uint32_t i = *(const uint32_t *)a, j = *(const uint32_t *)b;
	return i < j ? -1 : i > j;
}

/* message base name (with ,S=,W=) */
static void fmt_base(char *o, size_t n, const entry_t *e)
{
	const entry_t *own = &E[e->owner];
	int r;
	if (e->style == 0)
		r = snprintf(o, n,
			     "%" PRIu32 ".M%" PRIu32 "P%" PRIu32 "V%016" PRIX64
			     "I%016" PRIX64 "_%u.%s,S=%" PRIu32 ",W=%" PRIu32,
			     e->sec, e->usec, e->pid, gen_host_dev[e->host],
			     (uint64_t)e->ino, (unsigned)e->n, gen_hosts[e->host],
			     own->size, own->size + own->lines);
	else
		r = snprintf(o, n,
			     "%" PRIu32 ".M%" PRIu32 "P%" PRIu32 ".%s,S=%" PRIu32
			     ",W=%" PRIu32,
			     e->sec, e->usec, e->pid, gen_hosts[e->host], own->size,
			     own->size + own->lines);
	if (r < 0 || (size_t)r >= n)
		o[0] = 0;
}

static void fmt_name(char *o, size_t n, const entry_t *e)
{
	fmt_base(o, n, e);
	if (!e->in_new) {
		size_t l = strlen(o);
		if (l + 20 < n) {
			memcpy(o + l, ":2,", 3);
			gen_fmt_flags(o + l + 3, e->flags, e->kw);
		}
	}
}

static void entry_path(char *out, const entry_t *e)
{
	char name[512];
	fmt_name(name, sizeof name, e);
	gen_pjoin3(out, CF[e->folder].path, e->in_new ? "new" : "cur", name);
}

typedef struct {
	char **v;
	size_t n, cap, mask;
} strset_t;

/* The set's hash is cutover's one hash function (header-only here: the
 * generator links no library); the set only answers membership, so the
 * output does not depend on it. */
static uint64_t str_hash(const char *s) { return XXH3_64bits(s, strlen(s)); }

/* returns 1 if inserted, 0 if present */
static int strset_add(strset_t *s, const char *str)
{
	if ((s->n + 1) * 2 > s->cap) {
		size_t nc = s->cap ? s->cap * 2 : 64;
		char **nv = gen_xmalloc(nc * sizeof(char *));
		memset(nv, 0, nc * sizeof(char *));
		for (size_t i = 0; i < s->cap; i++)
			if (s->v[i]) {
				size_t j = str_hash(s->v[i]) & (nc - 1);
				while (nv[j])
					j = (j + 1) & (nc - 1);
				nv[j] = s->v[i];
			}
		free(s->v);
		s->v = nv;
		s->cap = nc;
		s->mask = nc - 1;
	}
	size_t j = str_hash(str) & s->mask;
	while (s->v[j]) {
		if (strcmp(s->v[j], str) == 0)
			return 0;
		j = (j + 1) & s->mask;
	}
	s->v[j] = gen_xstrdup(str);
	s->n++;
	return 1;
}

static void strset_free(strset_t *s)
{
	for (size_t i = 0; i < s->cap; i++)
		free(s->v[i]);
	free(s->v);
	memset(s, 0, sizeof *s);
}

static void add_folder(rng_t *r, uint32_t u, int kind, const char *utf8name,
		       uint16_t year)
{
	char enc[512];
	gen_mutf7_encode(utf8name, enc, sizeof enc);
	GROW(CF, nCF, capCF);
	cfolder_t *f = &CF[nCF++];
	memset(f, 0, sizeof *f);
	f->user = u;
	f->kind = (uint8_t)kind;
	f->year = year;
	f->name = gen_xstrdup(enc);
	char p[PATHMAX];
	if (kind == FK_INBOX) {
		f->path = gen_xstrdup(CU[u].maildir);
	} else {
		char dn[600];
		snprintf(dn, sizeof dn, ".%s", enc);
		gen_pjoin(p, CU[u].maildir, dn);
		f->path = gen_xstrdup(p);
	}
	uint32_t w;
	switch (kind) {
	case FK_INBOX: w = 400; break;
	case FK_SENT: w = 150; break;
	case FK_ARCHIVE: w = 120; break;
	case FK_ARCHIVE_YEAR: w = 80; break;
	case FK_TRASH: w = 40; break;
	case FK_JUNK: w = 30; break;
	case FK_DRAFTS: w = 4; break;
	default: w = 50; break;
	}
	f->weight = (uint32_t)(w * gen_rng_range(r, 50, 150) / 100);
	if (f->weight == 0)
		f->weight = 1;
	uint32_t ppm_kw = kind == FK_INBOX ? 300000 : kind == FK_JUNK ? 600000 : 100000;
	if (gen_rng_ppm(r, ppm_kw))
		f->nkw = (uint8_t)gen_rng_range(r, kind == FK_JUNK ? 2 : 1, 5);
	cuser_t *cu = &CU[u];
	/* folders only a logged-in user writes to end at the last login */
	int delivered = kind == FK_INBOX || kind == FK_JUNK || kind == FK_USER;
	uint32_t lo = cu->A, hi = delivered ? g_T0 - 60 : cu->L;
	switch (kind) {
	case FK_TRASH: lo = hi > 60 * DAY ? hi - 60 * DAY : lo; break;
	case FK_JUNK: lo = hi > 30 * DAY ? hi - 30 * DAY : lo; break;
	case FK_DRAFTS: lo = hi > YEAR ? hi - YEAR : lo; break;
	case FK_ARCHIVE: hi = lo + (uint32_t)((uint64_t)(hi - lo) * 7 / 10); break;
	case FK_ARCHIVE_YEAR: {
		/* days from 1970 to Jan 1 of year, valid 1970..2099 */
		uint32_t y = year, days = 0;
		for (uint32_t yy = 1970; yy < y; yy++)
			days += (yy % 4 == 0) ? 366 : 365;
		uint32_t y0 = days * DAY;
		uint32_t y1 = y0 + ((y % 4 == 0) ? 366 : 365) * DAY;
		uint32_t nlo = lo > y0 ? lo : y0, nhi = hi < y1 ? hi : y1;
		if (nlo < nhi) {
			lo = nlo;
			hi = nhi;
		}
		break;
	}
	default: break;
	}
	if (lo < cu->A)
		lo = cu->A;
	if (hi <= lo)
		hi = lo + 1;
	f->tmin = lo;
	f->tmax = hi;
	f->guid_hi = gen_rng_next(r);
	f->guid_lo = gen_rng_next(r);
}

static char **g_domains;
static uint32_t g_ndomains;

static const char *cdomain_name(uint32_t d)
{
	return g_domains[d];
}

static void plan_user_folders(rng_t *r, uint32_t u)
{
	cuser_t *cu = &CU[u];
	cu->f0 = (uint32_t)nCF;
	int loc = cu->localized;
	add_folder(r, u, FK_INBOX, "", 0);
	if (gen_rng_ppm(r, 950000))
		add_folder(r, u, FK_SENT, loc ? "Gesendete Elemente" : "Sent", 0);
	if (gen_rng_ppm(r, 900000))
		add_folder(r, u, FK_TRASH, loc ? "Gelöschte Elemente" : "Trash", 0);
	if (gen_rng_ppm(r, 850000))
		add_folder(r, u, FK_DRAFTS, loc ? "Entwürfe" : "Drafts", 0);
	if (gen_rng_ppm(r, 400000))
		add_folder(r, u, FK_JUNK, loc ? "Junk-E-Mail" : "Junk", 0);
	if (gen_rng_ppm(r, 450000)) {
		add_folder(r, u, FK_ARCHIVE, "Archive", 0);
		if (gen_rng_ppm(r, 600000))
			add_folder(r, u, FK_ARCHIVE_YEAR, "Archive.2023", 2023);
		if (gen_rng_ppm(r, 300000))
			add_folder(r, u, FK_ARCHIVE_YEAR, "Archive.2022", 2022);
	}
	int nuser = 0;
	while (nuser < 12 && gen_rng_ppm(r, 600000))
		nuser++;
	uint64_t used = 0;
	for (int i = 0; i < nuser; i++) {
		uint32_t k = (uint32_t)gen_rng_below(r, NELEM(gen_ufolder_pool));
		if (used & (1ULL << k))
			continue;
		used |= 1ULL << k;
		add_folder(r, u, FK_USER, gen_ufolder_pool[k], 0);
		if (gen_rng_ppm(r, 250000)) {
			char nm[256];
			snprintf(nm, sizeof nm, "%s.%s", gen_ufolder_pool[k],
				 subfolder_pool[gen_rng_below(r, NELEM(subfolder_pool))]);
			add_folder(r, u, FK_USER, nm, 0);
		}
	}
	cu->nf = (uint32_t)nCF - cu->f0;
	/* uidvalidity: folder creation time, unique within the user */
	uint32_t prev = 0;
	for (uint32_t i = 0; i < cu->nf; i++) {
		cfolder_t *f = &CF[cu->f0 + i];
		uint32_t c = f->kind == FK_INBOX ? cu->A - (uint32_t)gen_rng_range(r, 60, 3 * DAY)
						 : f->tmin - (uint32_t)gen_rng_range(r, 60, 20 * DAY);
		if (c < cu->A - 30 * DAY)
			c = cu->A - 30 * DAY;
		if (c <= prev)
			c = prev + 1;
		prev = c;
		f->uidvalidity = c;
		f->ctime = c;
	}
}

static void plan_native(rng_t *r, uint32_t u, uint32_t nmsg)
{
	cuser_t *cu = &CU[u];
	uint64_t wsum = 0;
	for (uint32_t i = 0; i < cu->nf; i++)
		wsum += CF[cu->f0 + i].weight;
	for (uint32_t m = 0; m < nmsg; m++) {
		uint64_t x = gen_rng_below(r, wsum);
		uint32_t fi = cu->f0;
		for (uint32_t i = 0; i < cu->nf; i++) {
			if (x < CF[cu->f0 + i].weight) {
				fi = cu->f0 + i;
				break;
			}
			x -= CF[cu->f0 + i].weight;
		}
		cfolder_t *f = &CF[fi];
		uint32_t ei = new_entry();
		entry_t *e = &E[ei];
		e->folder = fi;
		e->owner = ei;
		e->sec = (uint32_t)gen_rng_range(r, f->tmin, f->tmax - 1);
		e->usec = (uint32_t)gen_rng_below(r, 1000000);
		int modern = e->sec >= g_T0 - 300 * DAY;
		e->style = (uint8_t)modern;
		int appended = f->kind == FK_SENT || f->kind == FK_DRAFTS;
		if (appended)
			e->host = (uint8_t)(H_IMAP1 + gen_rng_below(r, 2));
		else if (modern)
			e->host = (uint8_t)(H_MX1 + gen_rng_below(r, 3));
		else
			e->host = (uint8_t)(gen_rng_ppm(r, 300000) ? H_OLD
							       : H_MX1 + gen_rng_below(r, 2));
		e->pid = gen_rand_pid(r, modern);
		e->ino = (uint32_t)gen_rng_range(r, 2000, 0xFFFFFFF0u);
		e->n = (uint16_t)(gen_rng_ppm(r, 100000) ? gen_rng_range(r, 1, 4) : 0);
		int sievable = f->kind == FK_INBOX || f->kind == FK_JUNK ||
			       (f->kind == FK_USER && gen_rng_ppm(r, 300000));
		e->in_new = (uint8_t)(sievable && e->sec > cu->L);
		if (!e->in_new)
			gen_pick_flags(r, f->kind, f->nkw, &e->flags, &e->kw);
		int attach;
		e->target = gen_pick_size(r, &attach);
		e->attach = (uint8_t)attach;
		folder_add(f, ei);
	}
}

static void plan_links(rng_t *r)
{
	size_t nat = nE, elig_copy = 0, inbox = 0;
	for (size_t i = 0; i < nat; i++) {
		const cfolder_t *f = &CF[E[i].folder];
		if (f->kind == FK_INBOX)
			inbox++;
		if (!E[i].in_new && f->kind != FK_DRAFTS && CU[f->user].nf > 2)
			elig_copy++;
	}
	uint32_t p_copy = elig_copy ? (uint32_t)(50000ULL * nat / elig_copy) : 0;
	uint32_t p_x = inbox && nCU > 1 ? (uint32_t)(20000ULL * nat / inbox) : 0;
	for (size_t i = 0; i < nat; i++) {
		const entry_t *src = &E[i];
		uint32_t sf = src->folder;
		const cfolder_t *f = &CF[sf];
		const cuser_t *cu = &CU[f->user];
		/* IMAP COPY within the user */
		if (!src->in_new && f->kind != FK_DRAFTS && cu->nf > 2 &&
		    gen_rng_ppm(r, p_copy)) {
			uint32_t df = sf;
			for (int tries = 0; tries < 8 && (df == sf || CF[df].kind == FK_DRAFTS);
			     tries++)
				df = cu->f0 + (uint32_t)gen_rng_below(r, cu->nf);
			if (df != sf && CF[df].kind != FK_DRAFTS) {
				uint32_t room = cu->L > src->sec + 1 ? cu->L - src->sec - 1 : 0;
				if (room > 90 * DAY)
					room = 90 * DAY;
				uint32_t ei = new_entry();
				src = &E[i];
				entry_t *e = &E[ei];
				e->folder = df;
				e->owner = (uint32_t)i;
				e->sec = src->sec + 1 + (uint32_t)gen_rng_skew(r, room);
				e->usec = (uint32_t)gen_rng_below(r, 1000000);
				e->style = 1;
				e->host = (uint8_t)(H_IMAP1 + gen_rng_below(r, 2));
				e->pid = gen_rand_pid(r, 1);
				e->flags = src->flags;
				e->kw = CF[df].nkw ? (uint8_t)(src->kw & ((1u << CF[df].nkw) - 1)) : 0;
				folder_add(&CF[df], ei);
			}
		}
		src = &E[i];
		/* LMTP delivery to several recipients */
		if (f->kind == FK_INBOX && gen_rng_ppm(r, p_x)) {
			uint32_t ou = f->user;
			for (int tries = 0; tries < 8 && ou == f->user; tries++) {
				if (gen_rng_ppm(r, 800000)) {
					/* same domain: users of a domain are contiguous */
					uint32_t d = cu->domain, a = f->user, b = f->user;
					while (a > 0 && CU[a - 1].domain == d)
						a--;
					while (b + 1 < nCU && CU[b + 1].domain == d)
						b++;
					ou = a + (uint32_t)gen_rng_below(r, b - a + 1);
				} else {
					ou = (uint32_t)gen_rng_below(r, nCU);
				}
			}
			if (ou == f->user)
				continue;
			const cuser_t *du = &CU[ou];
			uint32_t df = du->f0; /* INBOX */
			uint32_t ei = new_entry();
			src = &E[i];
			entry_t *e = &E[ei];
			*e = *src;
			e->folder = df;
			e->owner = (uint32_t)i;
			e->usec = src->usec + 1 + (uint32_t)gen_rng_below(r, 3000);
			if (e->usec >= 1000000) {
				e->usec -= 1000000;
				e->sec++;
			}
			e->n = (uint16_t)(src->n + 1);
			e->in_new = (uint8_t)(e->sec > du->L);
			e->flags = e->kw = 0;
			if (!e->in_new)
				gen_pick_flags(r, FK_INBOX, CF[df].nkw, &e->flags, &e->kw);
			folder_add(&CF[df], ei);
		}
	}
}

static void assign_uids(rng_t *r)
{
	for (size_t fi = 0; fi < nCF; fi++) {
		cfolder_t *f = &CF[fi];
		if (f->nents > 1)
			qsort(f->ents, f->nents, sizeof(uint32_t), cmp_ent_time);
		/* names must be unique: make (sec, usec) strictly increasing */
		for (uint32_t i = 1; i < f->nents; i++) {
			entry_t *p = &E[f->ents[i - 1]], *e = &E[f->ents[i]];
			if (e->sec < p->sec || (e->sec == p->sec && e->usec <= p->usec)) {
				e->sec = p->sec;
				e->usec = p->usec + 1;
				if (e->usec >= 1000000) {
					e->usec = 0;
					e->sec++;
				}
			}
		}
		uint32_t uid = 1;
		if (gen_rng_ppm(r, 300000))
			uid += (uint32_t)gen_rng_below(r, 50);
		for (uint32_t i = 0; i < f->nents; i++) {
			E[f->ents[i]].uid = uid;
			uid += 1;
			if (gen_rng_ppm(r, 80000))
				uid += (uint32_t)gen_rng_range(r, 1, 20);
		}
		f->nextuid = uid;
		if (gen_rng_ppm(r, 200000))
			f->nextuid += (uint32_t)gen_rng_range(r, 1, 5);
	}
}

static void entry_message(buf_t *b, const entry_t *e)
{
	rng_t cr;
	gen_rng_seed(&cr, g_seed ^ (0xC0FFEE0000000000ULL +
				    (uint64_t)e->owner * 0x9E3779B97F4A7C15ULL));
	const cfolder_t *f = &CF[e->folder];
	const cuser_t *cu = &CU[f->user];
	msgmeta_t m;
	m.user = cu->name;
	m.domain = domain_names[0];
	m.t = e->sec;
	m.host = gen_hosts[e->host];
	m.sent = f->kind == FK_SENT || f->kind == FK_DRAFTS;
	m.domain = cdomain_name(cu->domain);
	gen_message(b, &cr, &m, e->target, e->attach);
}

static void write_index_blob(buf_t *b, rng_t *r, const cfolder_t *f)
{
	b->len = 0;
	size_t hdr = 256;
	gen_buf_reserve(b, hdr);
	memset(b->p, 0, hdr);
	b->len = hdr;
	b->p[0] = 7;
	b->p[1] = 3;
	b->p[2] = 120; /* base_header_size */
	gen_put_le32(b, 4, (uint32_t)hdr);
	gen_put_le32(b, 8, 12); /* record_size */
	b->p[12] = 1;       /* compat: little endian */
	gen_put_le32(b, 16, f->uidvalidity);
	gen_put_le32(b, 24, f->uidvalidity);
	gen_put_le32(b, 28, f->nextuid);
	gen_put_le32(b, 32, f->nents);
	for (uint32_t i = 0; i < f->nents; i++) {
		size_t off = b->len;
		gen_buf_rand(b, r, 12);
		gen_put_le32(b, off, E[f->ents[i]].uid);
		b->p[off + 4] = (char)E[f->ents[i]].flags;
	}
}

static void create_control(rng_t *r, uint32_t fi, buf_t *b)
{
	cfolder_t *f = &CF[fi];
	cuser_t *cu = &CU[f->user];
	char p[PATHMAX], name[512];
	uint32_t last = f->ctime;
	for (uint32_t i = 0; i < f->nents; i++)
		if (E[f->ents[i]].sec > last)
			last = E[f->ents[i]].sec;
	uint32_t login = cu->L > last ? cu->L : last;

	/* dovecot-uidlist */
	b->len = 0;
	gen_buf_printf(b, "3 V%" PRIu32 " N%" PRIu32 " G%016" PRIx64 "%016" PRIx64 "\n",
		       f->uidvalidity, f->nextuid, f->guid_hi, f->guid_lo);
	for (uint32_t i = 0; i < f->nents; i++) {
		const entry_t *e = &E[f->ents[i]];
		fmt_name(name, sizeof name, e);
		gen_buf_printf(b, "%" PRIu32 " :%s\n", e->uid, name);
	}
	gen_pjoin(p, f->path, "dovecot-uidlist");
	gen_write_new_file(p, b->p, b->len, last, 0);

	/* dovecot-keywords */
	if (f->nkw) {
		b->len = 0;
		for (int i = 0; i < f->nkw; i++)
			gen_buf_printf(b, "%d %s\n", i,
				       (f->kind == FK_JUNK && i == 1) ? "Junk" : kw_names[i]);
		gen_pjoin(p, f->path, "dovecot-keywords");
		gen_write_new_file(p, b->p, b->len, f->ctime + 3600, 0);
	}

	/* dovecot.index.log (+ an older .log.2) */
	uint32_t seq = (uint32_t)gen_rng_range(r, 1, 40);
	gen_write_log_blob(b, r, f->uidvalidity, seq, (size_t)gen_rng_range(r, 200, 32768));
	gen_pjoin(p, f->path, "dovecot.index.log");
	gen_write_new_file(p, b->p, b->len, login, 0);
	if (seq > 1 && gen_rng_ppm(r, 300000)) {
		gen_write_log_blob(b, r, f->uidvalidity, seq - 1,
				   (size_t)gen_rng_range(r, 8192, 40000));
		gen_pjoin(p, f->path, "dovecot.index.log.2");
		gen_write_new_file(p, b->p, b->len, login > 7 * DAY ? login - 7 * DAY : login, 0);
	}
	/* dovecot.index */
	if (f->nents > 0 && gen_rng_ppm(r, 800000)) {
		write_index_blob(b, r, f);
		gen_pjoin(p, f->path, "dovecot.index");
		gen_write_new_file(p, b->p, b->len, login, 0);
	}
	/* dovecot.index.cache */
	if (f->nents > 0 && gen_rng_ppm(r, 800000)) {
		b->len = 0;
		gen_buf_rand(b, r, (size_t)gen_rng_range(r, 1024, 8192));
		gen_pjoin(p, f->path, "dovecot.index.cache");
		gen_write_new_file(p, b->p, b->len, login, 0);
	}
	/* a partial delivery in tmp/ */
	if (gen_rng_ppm(r, f->kind == FK_INBOX ? 150000 : 50000)) {
		uint32_t t = gen_rng_ppm(r, 500000) ? g_T0 - (uint32_t)gen_rng_range(r, 1, 120)
						: g_T0 - (uint32_t)gen_rng_range(r, 2 * DAY, 200 * DAY);
		uint32_t usec = (uint32_t)gen_rng_below(r, 1000000);
		uint32_t pid = gen_rand_pid(r, 1);
		const char *h = gen_hosts[H_MX1 + gen_rng_below(r, 3)];
		msgmeta_t m = {cu->name, cdomain_name(cu->domain), t, h, 0};
		int attach;
		uint32_t target = gen_pick_size(r, &attach);
		gen_message(b, r, &m, target, attach);
		size_t cut = (size_t)gen_rng_below(r, b->len);
		snprintf(name, sizeof name, "%" PRIu32 ".M%" PRIu32 "P%" PRIu32 ".%s",
			 t, usec, pid, h);
		gen_pjoin3(p, f->path, "tmp", name);
		gen_write_new_file(p, b->p, cut, t, 0);
	}
}

static void create_user_files(rng_t *r, uint32_t u, buf_t *b)
{
	cuser_t *cu = &CU[u];
	char p[PATHMAX], q[PATHMAX], nm[128];
	uint32_t maxv = 0;
	uint64_t qbytes = 0, qcount = 0;
	/* subscriptions (Dovecot reads plain one-name-per-line files) */
	b->len = 0;
	for (uint32_t i = 0; i < cu->nf; i++) {
		const cfolder_t *f = &CF[cu->f0 + i];
		if (f->uidvalidity > maxv)
			maxv = f->uidvalidity;
		for (uint32_t j = 0; j < f->nents; j++) {
			qbytes += E[E[f->ents[j]].owner].size;
			qcount++;
		}
		if (f->kind == FK_INBOX || (f->kind == FK_USER && gen_rng_ppm(r, 100000)))
			continue;
		gen_buf_printf(b, "%s\n", f->name);
	}
	gen_pjoin(p, cu->maildir, "subscriptions");
	gen_write_new_file(p, b->p, b->len, cu->A + DAY, 0);
	/* dovecot-uidvalidity holds the last uidvalidity given out; the empty
	 * dovecot-uidvalidity.<hex> file is renamed each time it changes */
	b->len = 0;
	gen_buf_printf(b, "%08" PRIx32, maxv);
	gen_pjoin(p, cu->maildir, "dovecot-uidvalidity");
	gen_write_new_file(p, b->p, b->len, maxv, 0);
	snprintf(nm, sizeof nm, "dovecot-uidvalidity.%08" PRIx32, maxv);
	gen_pjoin(p, cu->maildir, nm);
	gen_write_new_file(p, "", 0, maxv, 0);
	/* mailbox list index */
	if (gen_rng_ppm(r, 700000)) {
		uint32_t seq = (uint32_t)gen_rng_range(r, 1, 9);
		size_t len = (size_t)gen_rng_range(r, 300, 4096);
		gen_write_log_blob(b, r, cu->A, seq, len);
		gen_pjoin(p, cu->maildir, "dovecot.list.index.log");
		gen_write_new_file(p, b->p, b->len, cu->L, 0);
		if (gen_rng_ppm(r, 700000)) {
			b->len = 0;
			gen_buf_rand(b, r, (size_t)gen_rng_range(r, 200, 2000));
			gen_pjoin(p, cu->maildir, "dovecot.list.index");
			gen_write_new_file(p, b->p, b->len, cu->L, 0);
		}
	}
	if (gen_rng_ppm(r, 300000)) {
		b->len = 0;
		gen_buf_rand(b, r, 24 * (size_t)gen_rng_range(r, 1, 12));
		gen_pjoin(p, cu->maildir, "dovecot.mailbox.log");
		gen_write_new_file(p, b->p, b->len, cu->L, 0);
	}
	if (gen_rng_ppm(r, 300000)) {
		b->len = 0;
		gen_buf_printf(b, "%" PRIu64 "S\n%" PRIu64 " %" PRIu64 "\n",
			       (uint64_t)gen_rng_range(r, 1, 10) << 30, qbytes, qcount);
		gen_pjoin(p, cu->maildir, "maildirsize");
		gen_write_new_file(p, b->p, b->len, cu->L, 0);
	}
	/* Pigeonhole: ~/sieve/roundcube.sieve, ~/.dovecot.sieve symlink, binary */
	if (gen_rng_ppm(r, 300000)) {
		gen_pjoin(p, cu->home, "sieve");
		gen_xmkdir(p);
		b->len = 0;
		gen_buf_printf(b,
			       "require [\"fileinto\",\"vacation\"];\n"
			       "# rule:[spam]\nif header :contains \"X-Spam-Flag\" \"YES\" "
			       "{\n\tfileinto \"Junk\";\n\tstop;\n}\n");
		gen_pjoin(q, p, "roundcube.sieve");
		gen_write_new_file(q, b->p, b->len, cu->A + 2 * DAY, 0);
		gen_pjoin(p, cu->home, ".dovecot.sieve");
		if (symlink("sieve/roundcube.sieve", p) < 0)
			gen_die_path("symlink", p);
		gen_stats.symlinks++;
		b->len = 0;
		gen_buf_rand(b, r, (size_t)gen_rng_range(r, 300, 900));
		gen_pjoin(p, cu->home, ".dovecot.svbin");
		gen_write_new_file(p, b->p, b->len, cu->A + 2 * DAY, 0);
	}
	/* mid-rotation: dovecot.index.log.2 is the same inode as .log */
	if (gen_rng_ppm(r, 250000)) {
		uint32_t fi = cu->f0 + (uint32_t)gen_rng_below(r, cu->nf);
		gen_pjoin(p, CF[fi].path, "dovecot.index.log.2");
		if (!gen_path_exists(p)) {
			gen_pjoin(q, CF[fi].path, "dovecot.index.log");
			gen_xlink(q, p);
		}
	}
}

static const uint64_t *g_frac;

static int cmp_frac(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	if (g_frac[x] != g_frac[y])
		return g_frac[x] > g_frac[y] ? -1 : 1;
	return x < y ? -1 : x > y;
}

/* The domains' names. */
static void make_domains(uint32_t ndomains)
{
	g_ndomains = ndomains;
	g_domains = gen_xmalloc(sizeof(char *) * (ndomains ? ndomains : 1));
	for (uint32_t d = 0; d < ndomains; d++) {
		char nm[64];
		if (d < NELEM(domain_names))
			snprintf(nm, sizeof nm, "%s", domain_names[d]);
		else
			snprintf(nm, sizeof nm, "d%03" PRIu32 ".example", d);
		g_domains[d] = gen_xstrdup(nm);
	}
}

/* The users: the first D seed each domain, the rest Zipf-like; ordered by
 * domain (stable), so that a domain's users are contiguous. */
static void make_users(rng_t *R, const char *root, uint32_t nusers, uint32_t ndomains, uint32_t T0)
{
	uint32_t *udom = gen_xmalloc(sizeof(uint32_t) * (nusers ? nusers : 1));
	uint64_t zs = 0;
	for (uint32_t d = 0; d < ndomains; d++)
		zs += 1000000 / (d + 1);
	for (uint32_t u = 0; u < nusers; u++) {
		if (u < ndomains) {
			udom[u] = u;
			continue;
		}
		uint64_t x = gen_rng_below(R, zs);
		uint32_t d = 0;
		while (d + 1 < ndomains && x >= 1000000 / (d + 1)) {
			x -= 1000000 / (d + 1);
			d++;
		}
		udom[u] = d;
	}
	/* order users by domain (stable), so a domain's users are contiguous */
	CU = gen_xmalloc(sizeof(cuser_t) * (nusers ? nusers : 1));
	nCU = 0;
	strset_t *names = gen_xmalloc(sizeof(strset_t) * (ndomains ? ndomains : 1));
	memset(names, 0, sizeof(strset_t) * (ndomains ? ndomains : 1));
	for (uint32_t d = 0; d < ndomains; d++) {
		for (uint32_t u = 0; u < nusers; u++) {
			if (udom[u] != d)
				continue;
			cuser_t *cu = &CU[nCU];
			memset(cu, 0, sizeof *cu);
			cu->domain = d;
			char nm[128];
			const char *fn = gen_first_names[gen_rng_below(R, NELEM(gen_first_names))];
			const char *ln = gen_last_names[gen_rng_below(R, NELEM(gen_last_names))];
			switch (gen_rng_below(R, 4)) {
			case 0: snprintf(nm, sizeof nm, "%s.%s", fn, ln); break;
			case 1: snprintf(nm, sizeof nm, "%c.%s", fn[0], ln); break;
			case 2: snprintf(nm, sizeof nm, "%s", fn); break;
			default: snprintf(nm, sizeof nm, "%s%s", fn, ln); break;
			}
			if (!strset_add(&names[d], nm)) {
				size_t l = strlen(nm);
				for (uint32_t k = 2;; k++) {
					snprintf(nm + l, sizeof nm - l, "%" PRIu32, k);
					if (strset_add(&names[d], nm))
						break;
				}
			}
			cu->name = gen_xstrdup(nm);
			char p[PATHMAX], q[PATHMAX];
			gen_pjoin3(p, root, g_domains[d], nm);
			cu->home = gen_xstrdup(p);
			gen_pjoin(q, p, "Maildir");
			cu->maildir = gen_xstrdup(q);
			cu->A = T0 - 180 * DAY - (uint32_t)gen_rng_below(R, 6 * YEAR);
			cu->L = T0 - 1 - (uint32_t)gen_rng_skew(R, 14 * DAY);
			cu->localized = gen_rng_ppm(R, 100000);
			nCU++;
		}
		strset_free(&names[d]);
	}
	free(names);
	free(udom);
}

/* The plan: per-user message counts from the multiplier table, scaled so
 * that they add up to exactly users * msgs (a predictable tree size). */
static void plan_store(rng_t *R, uint32_t msgs)
{
	uint64_t *cnt = gen_xmalloc(sizeof(uint64_t) * (nCU + 1));
	uint64_t *frac = gen_xmalloc(sizeof(uint64_t) * (nCU + 1));
	uint64_t msum = 0, want = (uint64_t)msgs * nCU, got = 0;
	for (uint32_t u = 0; u < nCU; u++) {
		cnt[u] = gen_table_pick(R, mult_tab, NELEM(mult_tab));
		msum += cnt[u];
	}
	for (uint32_t u = 0; u < nCU; u++) {
		uint64_t num = want * cnt[u]; /* < 2^64: want <= 1e13, cnt <= 1e4 */
		cnt[u] = num / msum;
		frac[u] = num % msum;
		got += cnt[u];
	}
	if (got < want) { /* largest remainders get one more, lowest index on ties */
		uint32_t *ord = gen_xmalloc(sizeof(uint32_t) * (nCU + 1));
		for (uint32_t u = 0; u < nCU; u++)
			ord[u] = u;
		g_frac = frac;
		qsort(ord, nCU, sizeof(uint32_t), cmp_frac);
		for (uint64_t k = 0; got < want; k++, got++)
			cnt[ord[k]]++;
		free(ord);
	}
	for (uint32_t u = 0; u < nCU; u++) {
		plan_user_folders(R, u);
		plan_native(R, u, (uint32_t)(cnt[u] > 50000000 ? 50000000 : cnt[u]));
	}
	free(cnt);
	free(frac);
	plan_links(R);
	assign_uids(R);
}

/* Directories and message files. */
static void write_messages(const char *root, buf_t *b)
{
	struct stat sb;
	if (mkdir(root, 0755) < 0) {
		if (errno != EEXIST || stat(root, &sb) < 0 || !S_ISDIR(sb.st_mode))
			gen_die_path("mkdir", root);
	}
	char p[PATHMAX], name[512];
	for (uint32_t u = 0; u < nCU; u++) {
		cuser_t *cu = &CU[u];
		if (u == 0 || CU[u - 1].domain != cu->domain) {
			gen_pjoin(p, root, g_domains[cu->domain]);
			gen_xmkdir(p);
		}
		gen_xmkdir(cu->home);
		gen_xmkdir(cu->maildir);
		for (uint32_t i = 0; i < cu->nf; i++) {
			cfolder_t *f = &CF[cu->f0 + i];
			if (f->kind != FK_INBOX)
				gen_xmkdir(f->path);
			gen_pjoin(p, f->path, "cur");
			gen_xmkdir(p);
			gen_pjoin(p, f->path, "new");
			gen_xmkdir(p);
			gen_pjoin(p, f->path, "tmp");
			gen_xmkdir(p);
			if (f->kind != FK_INBOX) {
				gen_pjoin(p, f->path, "maildirfolder");
				gen_write_new_file(p, "", 0, f->ctime, 0);
			}
			for (uint32_t j = 0; j < f->nents; j++) {
				entry_t *e = &E[f->ents[j]];
				if (e->owner != f->ents[j])
					continue;
				entry_message(b, e);
				e->size = (uint32_t)b->len;
				e->lines = gen_count_lf(b->p, b->len);
				fmt_name(name, sizeof name, e);
				gen_pjoin3(p, f->path, e->in_new ? "new" : "cur", name);
				gen_write_new_file(p, b->p, b->len, e->sec, 0);
			}
		}
	}
}

/* Hard links: COPY within a user, LMTP to several users. */
static void write_links(void)
{
	char p[PATHMAX], q[PATHMAX];
	for (size_t fi = 0; fi < nCF; fi++) {
		cfolder_t *f = &CF[fi];
		for (uint32_t j = 0; j < f->nents; j++) {
			entry_t *e = &E[f->ents[j]];
			if (e->owner == f->ents[j])
				continue;
			entry_path(p, &E[e->owner]);
			entry_path(q, e);
			gen_xlink(p, q);
		}
	}
}

int gen_create(const char *root, uint32_t nusers, uint32_t ndomains,
		     uint32_t msgs, uint64_t seed, uint32_t T0)
{
	rng_t R;
	g_seed = seed;
	g_T0 = T0;
	gen_rng_seed(&R, seed ^ 0x6372656174650000ULL);
	if (T0 < 8 * YEAR)
		gen_die_usage("--time must be after 1978");
	if (ndomains > nusers)
		ndomains = nusers ? nusers : 1;

	make_domains(ndomains);
	make_users(&R, root, nusers, ndomains, T0);
	plan_store(&R, msgs);
	buf_t b = {0};
	write_messages(root, &b);
	write_links();
	uint64_t msg_names = nE;
	/* control files */
	for (size_t fi = 0; fi < nCF; fi++)
		create_control(&R, (uint32_t)fi, &b);
	for (uint32_t u = 0; u < nCU; u++)
		create_user_files(&R, u, &b);

	printf("create: users=%zu domains=%" PRIu32 " folders=%zu messages=%" PRIu64
	       " files=%" PRIu64 " links=%" PRIu64 " dirs=%" PRIu64
	       " symlinks=%" PRIu64 " bytes=%" PRIu64 " entries=%" PRIu64 "\n",
	       nCU, ndomains, nCF, msg_names, gen_stats.files, gen_stats.links,
	       gen_stats.dirs, gen_stats.symlinks, gen_stats.bytes,
	       gen_stats.files + gen_stats.dirs + gen_stats.symlinks);
	free(b.p);
	return 0;
}
