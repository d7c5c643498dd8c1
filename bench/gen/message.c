/*
 * message.c -- the content of a maildir: the tables sizes and names are drawn
 * from, message bodies of an exact size, RFC 822 dates, Maildir flags, PIDs
 * and host names of message file names, modified UTF-7 folder names.  Owns
 * the text pools (gen_init_pools, once, before any message is built).
 */
#include "gen.h"

/* ------------------------------------------------------------------ */
/* tables                                                              */

/* message size distribution: {lo, hi, ppm}; a mixture of a log-normal
 * (median 3.8 KB, sigma 0.95) for plain mail and 1.8% log-normal
 * attachments (median 130 KB, sigma 1.15), cut at 6 MB; median ~4 KB,
 * mean ~10.5 KB.  Uniform within a bucket. */
static const uint32_t size_tab[][3] = {
	{300, 390, 4450}, {390, 507, 8589}, {507, 659, 15358},
	{659, 856, 25389}, {856, 1112, 39017}, {1112, 1445, 55665},
	{1445, 1878, 73616}, {1878, 2441, 90259}, {2441, 3173, 102592},
	{3173, 4124, 108032}, {4124, 5361, 105593}, {5361, 6969, 95625},
	{6969, 9059, 80297}, {9059, 11776, 62563}, {11776, 15308, 45260},
	{15308, 19900, 30470}, {19900, 25870, 19186}, {25870, 33631, 11442},
	{33631, 43720, 6649}, {43720, 56836, 3982}, {56836, 73886, 2658},
	{73886, 96051, 2076}, {96051, 124866, 1838}, {124866, 162325, 1714},
	{162325, 211022, 1592}, {211022, 274328, 1431}, {274328, 356626, 1230},
	{356626, 463613, 1006}, {463613, 602696, 782}, {602696, 783504, 578},
	{783504, 1018555, 405}, {1018555, 1324121, 270},
	{1324121, 1721357, 171}, {1721357, 2237764, 102},
	{2237764, 2909093, 58}, {2909093, 3781820, 32},
	{3781820, 4916366, 16}, {4916366, 6000000, 7},
};

uint32_t gen_table_pick(rng_t *r, const uint32_t (*tab)[3], size_t n)
{
	uint64_t x = gen_rng_below(r, 1000000);
	for (size_t i = 0; i < n; i++) {
		if (x < tab[i][2])
			return (uint32_t)gen_rng_range(r, tab[i][0], tab[i][1] - 1);
		x -= tab[i][2];
	}
	return tab[n - 1][0];
}

uint64_t gen_scale_ppm = 1000000; /* --size-scale as parts per million */

/* returns the scaled target size; *attach says whether the unscaled size
 * is attachment-sized */
uint32_t gen_pick_size(rng_t *r, int *attach)
{
	uint32_t s = gen_table_pick(r, size_tab, sizeof size_tab / sizeof size_tab[0]);
	*attach = s >= 100000;
	uint64_t v = (uint64_t)s * gen_scale_ppm / 1000000;
	if (v > 0xFFFFFFF0u)
		v = 0xFFFFFFF0u;
	return (uint32_t)v;
}

const char *gen_hosts[] = {
	"mx1.mail.example.net",   "mx2.mail.example.net",
	"mx3.mail.example.net",   "imap1.mail.example.net",
	"imap2.mail.example.net", "mailhost",
};
const uint64_t gen_host_dev[] = {0x803, 0x803, 0xFD01, 0x811, 0x811, 0x802};

const char *gen_first_names[] = {
	"anna", "john", "maria", "peter", "sophie", "michael", "laura", "thomas",
	"julia", "david", "emma", "lukas", "sarah", "daniel", "lisa", "paul",
	"claire", "marc", "elena", "jan", "nina", "oliver", "ines", "felix",
	"hannah", "robert", "lea", "stefan", "chloe", "martin", "zoe", "kevin",
	"olga", "ivan", "yuki", "kenji", "fatima", "omar", "lucia", "pablo",
};
const char *gen_last_names[] = {
	"schmidt", "smith", "mueller", "dupont", "garcia", "rossi", "novak",
	"jones", "weber", "martin", "bernard", "fischer", "lopez", "brown",
	"wagner", "kowalski", "nielsen", "tanaka", "ivanova", "silva", "meyer",
	"becker", "moreau", "costa", "jensen", "hoffmann", "schulz", "keller",
};
static const char *sender_domains[] = {
	"gmail.example", "outlook.example", "newsletter.shop.example",
	"github.example", "bank.example", "airline.example", "gmx.example",
	"web.example", "lists.example.org", "university.example",
};
static const char *words[] = {
	"the", "meeting", "invoice", "please", "attached", "regards", "tomorrow",
	"project", "update", "thanks", "schedule", "review", "der", "und",
	"Rechnung", "für", "Grüße", "bonjour", "réunion", "merci", "order",
	"shipping", "account", "password", "newsletter", "offer", "price",
	"team", "report", "quarter", "budget", "draft", "final", "version",
	"server", "backup", "migration", "mailbox", "deadline", "customer",
	"support", "ticket", "holiday", "family", "photos", "weekend", "dinner",
	"flight", "hotel", "booking", "confirmation", "payment", "received",
	"contract", "signature", "document", "question", "answer", "problem",
	"solution", "agenda", "minutes", "notes", "call", "phone", "office",
	"Monday", "Friday", "January", "June", "September", "December", "€",
	"café", "naïve", "Straße", "ok", "yes", "no", "maybe", "we", "you",
	"they", "I", "is", "are", "was", "will", "can", "should", "could",
	"would", "have", "has", "not", "a", "an", "of", "to", "in", "on", "for",
	"with", "at", "by", "from", "about", "as", "it", "this", "that", "and",
	"or", "but", "if", "so", "all", "new", "our", "your", "their", "more",
};
#define NWORDS (sizeof words / sizeof words[0])

/* user folder names, UTF-8; encoded to modified UTF-7 on disk.  No '.' or
 * '/' (the Maildir++ hierarchy separator is '.'). */
const char *gen_ufolder_pool[] = {
	"Work", "Projects", "Receipts", "Family", "Newsletters", "Travel",
	"Invoices", "Orders", "Friends", "Notes", "Clients", "Reports",
	"Rechnungen", "Steuer", "Reisen", "Fotos", "Réunions", "Reçus",
	"Família", "Ärger", "Müller GmbH", "Kündigung", "日本語", "Заказы",
	"Banco & Seguros", "Old Mail", "Lists", "GitHub", "Bank", "Insurance",
	"School", "Kids", "Car", "House", "Recipes", "Jobs", "Bewerbungen",
	"Verträge", "Συνταγές", "Ofertas", "Facturas", "Proveedores", "Sport",
	"Health", "Taxes 2022", "Vacation Photos", "Misc", "To Do", "Later",
	"Äpfel & Birnen",
};

/* ------------------------------------------------------------------ */
/* modified UTF-7 (RFC 3501 5.1.3) as Dovecot writes folder names      */

void gen_mutf7_encode(const char *in, char *out, size_t outsz)
{
	static const char b64[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";
	const unsigned char *p = (const unsigned char *)in;
	size_t o = 0;
#define OUTC(c)                                   \
	do {                                      \
		if (o + 1 < outsz)                \
			out[o++] = (char)(c);     \
	} while (0)
	while (*p) {
		if (*p >= 0x20 && *p < 0x7f) {
			OUTC(*p);
			if (*p == '&')
				OUTC('-');
			p++;
			continue;
		}
		uint32_t bits = 0;
		int nbits = 0;
		OUTC('&');
		while (*p && !(*p >= 0x20 && *p < 0x7f)) {
			uint32_t cp;
			int extra;
			if (*p >= 0xF0) {
				cp = *p & 0x07;
				extra = 3;
			} else if (*p >= 0xE0) {
				cp = *p & 0x0F;
				extra = 2;
			} else if (*p >= 0xC0) {
				cp = *p & 0x1F;
				extra = 1;
			} else {
				cp = *p;
				extra = 0;
			}
			p++;
			while (extra-- > 0 && (*p & 0xC0) == 0x80)
				cp = (cp << 6) | (*p++ & 0x3F);
			uint16_t u[2];
			int nu = 0;
			if (cp >= 0x10000) {
				cp -= 0x10000;
				u[nu++] = (uint16_t)(0xD800 + (cp >> 10));
				u[nu++] = (uint16_t)(0xDC00 + (cp & 0x3FF));
			} else {
				u[nu++] = (uint16_t)cp;
			}
			for (int i = 0; i < nu; i++) {
				bits = (bits << 16) | u[i];
				nbits += 16;
				while (nbits >= 6) {
					nbits -= 6;
					OUTC(b64[(bits >> nbits) & 0x3F]);
				}
			}
		}
		if (nbits > 0)
			OUTC(b64[(bits << (6 - nbits)) & 0x3F]);
		OUTC('-');
	}
	out[o] = 0;
#undef OUTC
}

/* ------------------------------------------------------------------ */
/* message content                                                     */

#define TEXT_POOL_SIZE (512 * 1024)
#define B64_LINE 77
#define B64_POOL_LINES 4096
static char *text_pool;
static size_t text_pool_len;
static char *b64_pool;

void gen_init_pools(void)
{
	rng_t r;
	gen_rng_seed(&r, 0x6D61696C64697221ULL);
	buf_t b = {0};
	while (b.len < TEXT_POOL_SIZE) {
		int lines = (int)gen_rng_range(&r, 1, 7);
		int quoted = gen_rng_ppm(&r, 120000);
		for (int l = 0; l < lines; l++) {
			size_t want = (size_t)gen_rng_range(&r, 40, 72), col = 0;
			if (quoted) {
				gen_buf_adds(&b, "> ");
				col = 2;
			}
			int first = 1;
			while (col < want) {
				const char *w = words[gen_rng_below(&r, NWORDS)];
				if (!first) {
					gen_buf_add(&b, " ", 1);
					col++;
				}
				gen_buf_adds(&b, w);
				col += strlen(w);
				first = 0;
			}
			if (gen_rng_ppm(&r, 150000))
				gen_buf_add(&b, ".", 1);
			gen_buf_add(&b, "\n", 1);
		}
		gen_buf_add(&b, "\n", 1);
	}
	text_pool = b.p;
	text_pool_len = b.len;

	static const char a64[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	b64_pool = gen_xmalloc((size_t)B64_POOL_LINES * B64_LINE);
	for (size_t i = 0; i < (size_t)B64_POOL_LINES * B64_LINE; i++)
		b64_pool[i] = ((i + 1) % B64_LINE == 0)
				      ? '\n'
				      : a64[gen_rng_next(&r) >> 58];
}

static void copy_wrap(buf_t *b, const char *pool, size_t plen, size_t start,
		      size_t n)
{
	gen_buf_reserve(b, n);
	while (n > 0) {
		size_t k = plen - start;
		if (k > n)
			k = n;
		memcpy(b->p + b->len, pool + start, k);
		b->len += k;
		n -= k;
		start = 0;
	}
	b->p[b->len] = 0;
}

/* append exactly n bytes of text ending in '\n' */
static void fill_text(buf_t *b, rng_t *r, size_t n)
{
	if (n == 0)
		return;
	size_t start = (size_t)gen_rng_below(r, text_pool_len);
	const char *nl = memchr(text_pool + start, '\n', text_pool_len - start);
	start = nl ? (size_t)(nl - text_pool) + 1 : 0;
	if (start >= text_pool_len)
		start = 0;
	copy_wrap(b, text_pool, text_pool_len, start, n - 1);
	gen_buf_add(b, "\n", 1);
}

static void fill_b64(buf_t *b, rng_t *r, size_t n)
{
	if (n == 0)
		return;
	size_t plen = (size_t)B64_POOL_LINES * B64_LINE;
	size_t start = (size_t)gen_rng_below(r, B64_POOL_LINES) * B64_LINE;
	copy_wrap(b, b64_pool, plen, start, n - 1);
	gen_buf_add(b, "\n", 1);
}

static void fmt_date(char *out, size_t n, int64_t t)
{
	static const char *wd[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
	static const char *mo[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
				   "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
	time_t tt = (time_t)t;
	struct tm tm;
	if (!gmtime_r(&tt, &tm)) {
		snprintf(out, n, "Thu, 01 Jan 1970 00:00:00 +0000");
		return;
	}
	snprintf(out, n, "%s, %02d %s %04d %02d:%02d:%02d +0000",
		 wd[tm.tm_wday % 7], tm.tm_mday, mo[tm.tm_mon % 12],
		 tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

/* What a message's headers are made of, drawn before any is written. */
typedef struct msg_parts {
	char date[64], sender[160], sname[96], subj[256], boundary[48];
	const char *sd; /* the sender's domain */
	uint64_t mid;   /* the Message-ID's number */
	int minimal;    /* too small for more than the essential headers */
	int attach;     /* multipart with a base64 attachment */
} msg_parts;

/* The sender's address and display name, from the name lists (draws: first
 * name, last name, domain). */
static void pick_sender(rng_t *r, msg_parts *p)
{
	const char *fn = gen_first_names[gen_rng_below(r, NELEM(gen_first_names))];
	const char *ln = gen_last_names[gen_rng_below(r, NELEM(gen_last_names))];
	p->sd = sender_domains[gen_rng_below(r, NELEM(sender_domains))];
	snprintf(p->sender, sizeof p->sender, "%s.%s@%s", fn, ln, p->sd);
	snprintf(p->sname, sizeof p->sname, "%c%s %c%s", fn[0] - 32, fn + 1,
		 ln[0] - 32, ln + 1);
}

/* A subject of 2..7 words, a quarter of them replies. */
static void pick_subject(rng_t *r, msg_parts *p)
{
	char *subj = p->subj;
	size_t sl = 0;
	subj[0] = 0;
	if (gen_rng_ppm(r, 250000)) {
		memcpy(subj, "Re: ", 5);
		sl = 4;
	}
	int nw = (int)gen_rng_range(r, 2, 8);
	for (int i = 0; i < nw; i++) {
		const char *w = words[gen_rng_below(r, NWORDS)];
		size_t wl = strlen(w);
		if (sl + wl + 2 >= sizeof p->subj)
			break;
		if (i)
			subj[sl++] = ' ';
		memcpy(subj + sl, w, wl);
		sl += wl;
		subj[sl] = 0;
	}
}

/* The delivery trace of a received message: Return-Path, Delivered-To and
 * the two Received lines (LMTP, then the MTA's). */
static void put_trace(buf_t *b, rng_t *r, const msgmeta_t *m, const msg_parts *p)
{
	gen_buf_printf(b, "Return-Path: <%s>\n", p->sender);
	gen_buf_printf(b, "Delivered-To: %s@%s\n", m->user, m->domain);
	gen_buf_printf(b,
		       "Received: from %s\n\tby %s with LMTP\n\tid %016" PRIx64
		       "\n\t(envelope-from <%s>)\n\tfor <%s@%s>; %s\n",
		       m->host, "imap1.mail.example.net", gen_rng_next(r), p->sender,
		       m->user, m->domain, p->date);
	/* one PRNG call per statement: argument order is unspecified */
	unsigned ip = (unsigned)gen_rng_range(r, 1, 254);
	uint64_t qid = gen_rng_next(r) >> 24;
	gen_buf_printf(b,
		       "Received: from out.%s (out.%s [198.51.100.%u])\n\tby %s "
		       "(Postfix) with ESMTPS id 4%010" PRIX64 "\n\tfor <%s@%s>; %s\n",
		       p->sd, p->sd, ip, m->host, qid, m->user, m->domain, p->date);
}

/* Message-ID, Date, From, To and Subject; From and To swap for Sent. */
static void put_addressing(buf_t *b, const msgmeta_t *m, const msg_parts *p)
{
	gen_buf_printf(b, "Message-ID: <%016" PRIx64 ".%s@%s>\n", p->mid,
		       m->sent ? "imap" : "mail", m->sent ? m->domain : p->sd);
	gen_buf_printf(b, "Date: %s\n", p->date);
	if (m->sent) {
		gen_buf_printf(b, "From: %s@%s\n", m->user, m->domain);
		gen_buf_printf(b, "To: \"%s\" <%s>\n", p->sname, p->sender);
	} else {
		gen_buf_printf(b, "From: \"%s\" <%s>\n", p->sname, p->sender);
		gen_buf_printf(b, "To: %s@%s\n", m->user, m->domain);
	}
	gen_buf_printf(b, "Subject: %s\n", p->subj);
}

/* MIME-Version, the client's or the list's header, and the Content-Type
 * (multipart draws its boundary into p). */
static void put_mime(buf_t *b, rng_t *r, const msgmeta_t *m, msg_parts *p)
{
	gen_buf_adds(b, "MIME-Version: 1.0\n");
	if (m->sent)
		gen_buf_adds(b, "User-Agent: Roundcube Webmail/1.6.5\n");
	else if (gen_rng_ppm(r, 300000))
		gen_buf_printf(b, "List-Unsubscribe: <https://%s/u/%08" PRIx64 ">\n",
			       p->sd, gen_rng_next(r) >> 32);
	if (p->attach) {
		snprintf(p->boundary, sizeof p->boundary, "=_%016" PRIx64,
			 gen_rng_next(r));
		gen_buf_printf(b,
			       "Content-Type: multipart/mixed;\n boundary=\"%s\"\n",
			       p->boundary);
	} else {
		gen_buf_adds(b, "Content-Type: text/plain; charset=utf-8\n"
			    "Content-Transfer-Encoding: 8bit\n");
	}
}

/* A multipart body: some text, then a base64 "PDF" sized so that the
 * message ends at target bytes. */
static void put_attachment_body(buf_t *b, rng_t *r, const msg_parts *p, uint32_t target)
{
	gen_buf_printf(b,
		       "This is a multi-part message in MIME format.\n\n--%s\n"
		       "Content-Type: text/plain; charset=utf-8\n"
		       "Content-Transfer-Encoding: 8bit\n\n",
		       p->boundary);
	fill_text(b, r, (size_t)gen_rng_range(r, 200, 2500));
	uint64_t an = gen_rng_next(r) >> 40;
	gen_buf_printf(b,
		       "\n--%s\nContent-Type: application/pdf; name=\"doc%" PRIu64
		       ".pdf\"\nContent-Transfer-Encoding: base64\n"
		       "Content-Disposition: attachment; filename=\"doc%" PRIu64
		       ".pdf\"\n\n",
		       p->boundary, an, an);
	size_t tail = strlen(p->boundary) + 5; /* "--<boundary>--\n" */
	size_t have = b->len + tail + 1;
	size_t n64 = target > have + B64_LINE ? target - have : B64_LINE;
	fill_b64(b, r, n64);
	gen_buf_printf(b, "--%s--\n", p->boundary);
}

/* Build an RFC 822 message of exactly max(target, minimum) bytes into b.
 * The PRNG is drawn in a fixed order (the steps below, in turn), so a seed
 * gives the same store everywhere. */
void gen_message(buf_t *b, rng_t *r, const msgmeta_t *m,
			uint32_t target, int attach)
{
	msg_parts p;
	b->len = 0;
	if (target < 1500 || (attach && target < 4000))
		attach = 0;
	p.attach = attach;
	p.minimal = target < 1200;
	fmt_date(p.date, sizeof p.date, m->t);
	pick_sender(r, &p);
	pick_subject(r, &p);
	p.mid = gen_rng_next(r);
	if (!m->sent && !p.minimal)
		put_trace(b, r, m, &p);
	put_addressing(b, m, &p);
	if (!p.minimal)
		put_mime(b, r, m, &p);
	gen_buf_add(b, "\n", 1);
	if (p.attach) {
		put_attachment_body(b, r, &p, target);
	} else {
		size_t n = target > b->len + 1 ? target - b->len : 1;
		fill_text(b, r, n);
	}
}

uint32_t gen_count_lf(const char *p, size_t n)
{
	uint32_t c = 0;
	const char *e = p + n;
	while (p < e && (p = memchr(p, '\n', (size_t)(e - p))) != NULL) {
		c++;
		p++;
	}
	return c;
}

/* ------------------------------------------------------------------ */
/* flags                                                               */

enum { FL_D = 1, FL_F = 2, FL_R = 4, FL_S = 8, FL_T = 16 };

void gen_fmt_flags(char *o, uint8_t fl, uint8_t kw)
{
	if (fl & FL_D)
		*o++ = 'D';
	if (fl & FL_F)
		*o++ = 'F';
	if (fl & FL_R)
		*o++ = 'R';
	if (fl & FL_S)
		*o++ = 'S';
	if (fl & FL_T)
		*o++ = 'T';
	for (int i = 0; i < 8; i++)
		if (kw & (1u << i))
			*o++ = (char)('a' + i);
	*o = 0;
}

void gen_pick_flags(rng_t *r, int kind, int nkw, uint8_t *flp, uint8_t *kwp)
{
	uint8_t f = 0, k = 0;
	switch (kind) {
	case FK_SENT:
		f = FL_S;
		if (gen_rng_ppm(r, 20000))
			f |= FL_F;
		break;
	case FK_DRAFTS:
		f = FL_D | FL_S;
		break;
	case FK_TRASH:
		f = gen_rng_ppm(r, 950000) ? FL_S : 0;
		if (gen_rng_ppm(r, 80000))
			f |= FL_T;
		break;
	case FK_JUNK:
		f = gen_rng_ppm(r, 500000) ? FL_S : 0;
		break;
	case FK_ARCHIVE:
	case FK_ARCHIVE_YEAR:
		f = gen_rng_ppm(r, 980000) ? FL_S : 0;
		if (f && gen_rng_ppm(r, 120000))
			f |= FL_R;
		if (gen_rng_ppm(r, 20000))
			f |= FL_F;
		break;
	default:
		f = gen_rng_ppm(r, 880000) ? FL_S : 0;
		if (f && gen_rng_ppm(r, 110000))
			f |= FL_R;
		if (gen_rng_ppm(r, 30000))
			f |= FL_F;
		if (gen_rng_ppm(r, 4000))
			f |= FL_T;
		break;
	}
	if (nkw > 0) {
		if (gen_rng_ppm(r, 60000))
			k |= (uint8_t)(1u << gen_rng_below(r, (uint64_t)nkw));
		if (kind == FK_JUNK && nkw > 1 && gen_rng_ppm(r, 500000))
			k |= 2;
	}
	*flp = f;
	*kwp = k;
}

/* ------------------------------------------------------------------ */
/* message file names                                                  */

uint32_t gen_rand_pid(rng_t *r, int modern)
{
	if (modern && gen_rng_ppm(r, 400000))
		return (uint32_t)gen_rng_range(r, 100000, 4194303);
	return (uint32_t)gen_rng_range(r, 300, 65535);
}
