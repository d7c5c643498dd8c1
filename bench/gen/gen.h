/*
 * gen_maildir -- build and mutate a synthetic, Dovecot-like maildir store.
 *
 * Why this exists
 *   cutover has to replicate huge Dovecot maildir trees (millions of small
 *   files, hard links spanning folders and users, control files that are
 *   appended in place or replaced by rename).  Benchmarks and tests need such
 *   trees of any size, identical on every run and every platform, plus a way
 *   to change them the way a day of real mail traffic does.  Real stores
 *   cannot be shipped, and driving a real Dovecot to build a million-entry
 *   tree takes hours, so this program imitates what Dovecot writes.
 *
 * What it imitates (see shared/MAILDIR.md, Dovecot 2.3):
 *   - layout ROOT/<domain>/<user>/Maildir/ with INBOX cur/ new/ tmp/ and
 *     Maildir++ folders .Sent .Trash .Drafts .Archive .Archive.2023 ...,
 *     names in modified UTF-7 (&AOQ- ...), an empty maildirfolder file each;
 *   - message names <sec>.M<usec>P<pid>V<dev>I<ino>_<n>.<host>,S=,W=:2,<flags>
 *     (old style) and <sec>.M<usec>P<pid>.<host>,S=,W=:2,<flags> (new style),
 *     S= the file size, W= the size with CRLF line ends, flags in ASCII order,
 *     no ":2," in new/; mtime = INTERNALDATE (received time);
 *   - dovecot-uidlist "3 V<uidvalidity> N<nextuid> G<guid>" + "<uid> :<name>",
 *     dovecot.index, dovecot.index.log (+ .log.2, sometimes hard-linked to
 *     .log mid-rotation), dovecot.index.cache, dovecot-keywords,
 *     subscriptions, dovecot-uidvalidity(.<hex>), list index, sieve symlink;
 *   - hard links: IMAP COPY (maildir_copy_with_hardlinks) within a user and
 *     LMTP multi-recipient delivery across users;
 *   - partial deliveries left in tmp/;
 *   - mutate: delivery via tmp/ + rename, new/ -> cur/ rename, flag rename,
 *     expunge (unlink + uidlist rewritten to dovecot-uidlist.lock and renamed
 *     over), COPY/MOVE by hard link, uidlist appended in place, index log
 *     appended in place and rotated (link .log -> .log.2, rename new log in),
 *     dovecot.index replaced by rename, folder create/rename/delete (delete
 *     goes through .DOVECOT-TRASHED), tmp/ files older than 36 h removed.
 *
 * Reproducibility: everything random comes from a private xoshiro256**
 * generator seeded from --seed, and only integer arithmetic decides sizes and
 * choices, so a given seed gives the same tree on every platform.  Directory
 * listings are always sorted before use.
 *
 * Who owns what (one file per role; non-static names start with gen_):
 *   gen.h      the types and constants the files share, and their prototypes;
 *   util.c     exits on error, allocation, PRNG, buffers, file helpers and
 *              the statistics counters (gen_stats);
 *   message.c  tables, message bodies, sizes, dates, flags, PIDs, hosts,
 *              modified UTF-7 names; owns the text pools;
 *   dovecot.c  binary control-file content both commands write;
 *   create.c   the create command; owns the plan of users/folders/messages;
 *   mutate.c   the mutate command; owns the tree it read and its counters;
 *   main.c     options, usage, dispatch.
 * create's plan and the tree mutate reads live until exit; errors are not
 * returned but exit at once (gen_die_path 1, gen_die_usage 2).
 *
 * Build: make build/gen_maildir  (libc + POSIX.1-2008 only; Linux and FreeBSD)
 */
#ifndef GEN_MAILDIR_H
#define GEN_MAILDIR_H

#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#define DAY 86400u
#define YEAR (365u * DAY)
#define PATHMAX 4096
#define DEFAULT_T0 1735689600u /* 2025-01-01 00:00:00 UTC */

extern const char *gen_prog; /* program name in messages */

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

/* Grows arr (n used of cap) to hold one more element; exits if out of memory. */
#define GROW(arr, n, cap)                                                   \
	do {                                                                \
		if ((n) >= (cap)) {                                         \
			(cap) = (cap) ? (cap) * 2 : 8;                      \
			(arr) = gen_xrealloc((arr), (size_t)(cap) * sizeof(*(arr))); \
		}                                                           \
	} while (0)

/* ---- util.c -------------------------------------------------------- */

_Noreturn void gen_die_usage(const char *fmt, ...);
_Noreturn void gen_die_path(const char *what, const char *path);
void *gen_xmalloc(size_t n);
void *gen_xrealloc(void *p, size_t n);
char *gen_xstrdup(const char *s);

/* splitmix64 seeding xoshiro256** */
typedef struct {
	uint64_t s[4];
} rng_t;

void gen_rng_seed(rng_t *r, uint64_t seed);
uint64_t gen_rng_next(rng_t *r);
uint64_t gen_rng_below(rng_t *r, uint64_t n);             /* [0, n) */
uint64_t gen_rng_range(rng_t *r, uint64_t lo, uint64_t hi); /* [lo, hi] */
int gen_rng_ppm(rng_t *r, uint32_t ppm);                 /* p = ppm / 1e6 */
uint64_t gen_rng_skew(rng_t *r, uint64_t range);         /* [0, range], skewed to 0 */

/* growable buffer; p is reallocated as it grows, so pointers into it are
 * valid only until the next add */
typedef struct {
	char *p;
	size_t len, cap;
} buf_t;

void gen_buf_reserve(buf_t *b, size_t extra);
void gen_buf_add(buf_t *b, const void *p, size_t n);
void gen_buf_adds(buf_t *b, const char *s);
void gen_buf_printf(buf_t *b, const char *fmt, ...);
void gen_buf_rand(buf_t *b, rng_t *r, size_t n);
void gen_put_le32(buf_t *b, size_t off, uint32_t v);

/* what create and mutate made, counted by the file helpers below */
struct gen_stats {
	uint64_t files, links, dirs, symlinks, bytes;
};
extern struct gen_stats gen_stats;

/* file helpers: paths are at most PATHMAX; any failure exits (gen_die_path) */
void gen_pjoin(char *out, const char *a, const char *b);
void gen_pjoin3(char *out, const char *a, const char *b, const char *c);
void gen_xmkdir(const char *path);
void gen_write_all(int fd, const void *p, size_t n, const char *path);
int gen_write_new_file(const char *path, const void *data, size_t len,
		       int64_t mtime, int allow_exist);
void gen_append_file(const char *path, const void *data, size_t len);
void gen_xrename(const char *from, const char *to);
void gen_xlink(const char *from, const char *to);
void gen_xunlink(const char *path);
int gen_path_exists(const char *path);
int gen_is_dir(const char *path);
int gen_read_file(const char *path, buf_t *b);

typedef struct {
	char **v;
	size_t n, cap;
} strv_t;
void gen_strv_free(strv_t *s);
void gen_strv_push(strv_t *s, const char *str);
void gen_list_dir(const char *path, strv_t *out, int skip_dot);
uint32_t gen_count_dir(const char *path);
uint64_t gen_rm_rf(const char *path, int in_msgdir);

/* ---- message.c ----------------------------------------------------- */

extern uint64_t gen_scale_ppm; /* --size-scale as parts per million */
uint32_t gen_table_pick(rng_t *r, const uint32_t (*tab)[3], size_t n);
uint32_t gen_pick_size(rng_t *r, int *attach);

/* receiving hosts, and the device number old-style names carry for each */
extern const char *gen_hosts[6];
extern const uint64_t gen_host_dev[6];
enum { H_MX1, H_MX2, H_MX3, H_IMAP1, H_IMAP2, H_OLD };

extern const char *gen_first_names[40];
extern const char *gen_last_names[28];
extern const char *gen_ufolder_pool[50];

void gen_mutf7_encode(const char *in, char *out, size_t outsz);

void gen_init_pools(void);
typedef struct {
	const char *user, *domain; /* the mailbox owner */
	int64_t t;                 /* received / saved time */
	const char *host;          /* receiving host */
	int sent;                  /* written by the owner (Sent, Drafts) */
} msgmeta_t;
void gen_message(buf_t *b, rng_t *r, const msgmeta_t *m, uint32_t target,
		 int attach);
uint32_t gen_count_lf(const char *p, size_t n);

/* folder kinds, which decide the flags their messages get */
enum {
	FK_INBOX, FK_SENT, FK_TRASH, FK_DRAFTS, FK_JUNK, FK_ARCHIVE,
	FK_ARCHIVE_YEAR, FK_USER
};
void gen_fmt_flags(char *o, uint8_t fl, uint8_t kw);
void gen_pick_flags(rng_t *r, int kind, int nkw, uint8_t *flp, uint8_t *kwp);
uint32_t gen_rand_pid(rng_t *r, int modern);

/* ---- dovecot.c ----------------------------------------------------- */

void gen_write_log_blob(buf_t *b, rng_t *r, uint32_t indexid, uint32_t seq,
			size_t total);

/* ---- create.c, mutate.c: return the exit status --------------------- */

int gen_create(const char *root, uint32_t nusers, uint32_t ndomains,
	       uint32_t msgs, uint64_t seed, uint32_t T0);
int gen_mutate(const char *root, uint64_t seed, double percent,
	       int have_time, int64_t T, int same_second);

#endif
