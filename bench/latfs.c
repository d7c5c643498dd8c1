/*
 * latfs - a read-only FUSE passthrough file system that adds a fixed
 *         latency to every metadata/data operation.
 *
 * WHY IT EXISTS
 *   cutover replicates huge maildir trees that live on a NAS mounted over
 *   NFS.  There every stat(), readdir() batch and open() is a network round
 *   trip (typically 0.1-1 ms on a busy filer), so a tree walk of a few
 *   hundred thousand entries takes minutes, while the same walk on a local
 *   disk takes a second.  Benchmarks on local trees therefore hide exactly
 *   the cost that matters (serial round trips) and reward the wrong
 *   optimisations.  latfs mounts a local directory SRC at MNT and makes
 *   each operation cost about `delay_us` microseconds of wall time, so
 *   benchmarks can show how a tool behaves - and how well it overlaps
 *   round trips across threads - on a NAS.
 *
 * WHAT IT IMITATES
 *   An NFS client with an (almost) cold attribute cache talking to a server
 *   with a fixed RTT:
 *     - LOOKUP per name that is not in the dentry cache (NFS LOOKUP),
 *     - GETATTR when the attributes have expired (NFS GETATTR),
 *     - one READDIR per batch of directory entries (NFS READDIR), where
 *       the final empty "end of directory" reply FUSE needs is NOT
 *       delayed, because NFS carries an eof flag in the last batch,
 *     - READ per read request (NFS READ; a READ that returns 0 bytes at
 *       EOF is not delayed, for the same reason),
 *     - OPEN/OPENDIR (NFSv4 OPEN, or the close-to-open GETATTR of v3),
 *       READLINK and STATFS.
 *   Each request is answered delay_us after a worker picked it up, and
 *   requests do not wait for each other: N concurrent client requests
 *   complete in ~1 delay, not N delays - like an NFS client with many RPC
 *   slots in flight against a server that is latency-bound rather than
 *   throughput-bound.  By default a worker does the work and hands the
 *   reply to a reply thread that sends it at its deadline, so no thread
 *   blocks on the delay and the CPU cost per request stays that of plain
 *   FUSE; -o delay_mode=sleep makes each worker sleep instead (see
 *   "Latency injection" below).
 *
 * WORKER THREADS
 *   In the default queue mode one worker thread serves every request: it
 *   never waits for the delay (the reply thread does), so requests still
 *   overlap without limit, and more workers only add wake-ups.  Those
 *   cost CPU on the cores the client under test runs on, which a NAS
 *   spends on its own hardware: measured on a 2-core VM, a 64-thread
 *   scan of 199 k entries took 2.75-3.04 s with 1 worker against
 *   3.42-4.42 s with up to 256 (latfs itself used ~2.7 s of CPU against
 *   ~3.6-4.5 s), while a one-thread find was unchanged (30.4 s against
 *   31.4 s over half the tree).  The work a worker does per request is a
 *   cached lstat, readdir or pread of the local SRC; a cold SRC would
 *   want more workers (-o max_threads=N).  Sleep mode needs one thread
 *   per request in flight and keeps 256.
 *
 * WHY THE LOW-LEVEL API
 *   The low-level API gives one callback per kernel request (LOOKUP,
 *   GETATTR, READDIR, ...), so "one sleep per request" means exactly "one
 *   round trip per NFS RPC".  The high-level API (fuse_main) turns a
 *   LOOKUP into a getattr() callback, keeps its own path/inode cache and
 *   node table, and does not expose readdirplus/entry control precisely;
 *   the op counts we would see would be libfuse's, not the kernel's.  With
 *   the low-level API we also choose nodeids ourselves and pass the source
 *   st_ino through as the visible inode number (what `-o use_ino` does in
 *   the high-level API), we dedupe hard links onto one FUSE node (the
 *   kernel then sees them as aliases of one inode, like NFS does via the
 *   file handle), a file that reuses a deleted file's inode number gets
 *   a node of its own, as it would get a new NFS file handle (see
 *   IDENTITY), and we control whether the kernel may use READDIRPLUS.
 *
 * CACHING DEFAULTS (all can be changed, see usage)
 *   entry_timeout=0, negative_timeout=0, attr_timeout=1e-6 (see below),
 *   direct_io on, keep_cache off, readdirplus off, readdir cache off.
 *   With entry_timeout=0 the kernel sends a LOOKUP for every name on every
 *   path walk / *at() call, so the dentry cache hides no round trips.
 *
 *   attr_timeout: the kernel turns a timeout of exactly 0 into "expired
 *   at time 0", so a stat() right after the LOOKUP that just returned the
 *   attributes sends a second request, GETATTR: 2 round trips per entry
 *   (measured: find -printf over 202k entries = 206k LOOKUP + 206k
 *   GETATTR, 101 s at 200 us).  NFS returns post-op attributes with
 *   LOOKUP and pays 1.  Any positive value is rounded up to one kernel
 *   tick (4 ms at HZ=250), so the default 1e-6 lets the kernel use the
 *   LOOKUP's attributes for the stat() that immediately follows it, and
 *   expires them one tick later: 1 round trip per entry (206k LOOKUP + 2
 *   GETATTR, 52 s).  Use -o attr_timeout=0 for the 2-per-entry mode, or
 *   larger timeouts (and readdirplus) to model an NFS client with a warm
 *   attribute cache (actimeo).
 *
 * LIMITS
 *   - Read-only (mounted with -o ro; writes fail with EROFS).
 *   - SRC may change while mounted (other clients delivering, expunging,
 *     renaming): see IDENTITY and PATHS above the node table.  Files are
 *     told apart by file handle, which needs a file system that gives them
 *     (ext4, xfs, btrfs, tmpfs; without, nodes are keyed by inode number
 *     and a reused number is served as the old file), and the fallback
 *     that opens a moved file by handle needs root (CAP_DAC_READ_SEARCH).
 *     SRC should be a single file system (st_dev is always the FUSE
 *     device, and STATFS answers for SRC itself).
 *   - By default a fixed delay per request: no bandwidth model, no
 *     jitter, no server queueing.  A real filer slows down when 64 clients
 *     hammer it; -o load_us and -o slots model that (see LOAD MODEL), and
 *     the delay can change while mounted.  Reads of big files cost one
 *     delay per read request (up to 128 KiB-1 MiB each, depending on the
 *     kernel).
 *   - FUSE itself adds ~40 us per request on a 2-core VM (context
 *     switches, wakeups): a 200 us delay costs ~240 us per round trip.
 *   - READDIR batch size is chosen by the kernel: on 6.18 it follows the
 *     caller's getdents buffer (32 KiB for glibc readdir: ~375 maildir
 *     names per batch, close to NFS's usual dtsize); older kernels use
 *     one 4 KiB page, so huge directories pay more round trips there.
 *   - Works around a libfuse < 3.16 bug that never enables parallel
 *     LOOKUP/READDIR in one directory (see writev() below).
 *   - No xattrs/ACLs (like NFSv3: they report EOPNOTSUPP).
 *   - With direct_io (default), MAP_SHARED mmap of files fails (ENODEV);
 *     use -o nodirect_io for tools that mmap their input.
 *   - Only the mounting user (root) may access the mount unless
 *     -o allow_other is given; then default_permissions is forced on
 *     (which makes the kernel issue extra GETATTRs for permission checks).
 *
 * USAGE
 *   latfs [options] SRC MNT
 *   See `latfs --help`, or bench/latmount for a wrapper that builds,
 *   mounts in the background, waits for readiness and unmounts.
 *   Op counters: `kill -USR1 <pid>` writes them to stats_file (or stderr);
 *   they are also written when the file system exits.
 *   Load model (see LOAD MODEL above finish()): -o load_us=N adds N us per
 *   other request in flight, -o slots=N queues requests beyond N at once;
 *   `echo delay_us=2000 >CTL; kill -USR2 <pid>` with -o ctl_file=CTL (or
 *   `bench/latmount delay MNT 2000`) changes the delay while mounted.
 *
 * Build:
 *   cc -std=c11 -O2 -Wall -Wextra -Werror bench/latfs.c -o build/latfs \
 *      $(pkg-config --cflags --libs fuse3) -lpthread
 */

#define _GNU_SOURCE
#define FUSE_USE_VERSION 312

#include <fuse_lowlevel.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

/* ------------------------------------------------------------------ */
/* Configuration                                                       */

enum op {
	OP_LOOKUP, OP_GETATTR, OP_READDIR, OP_READDIRPLUS, OP_OPEN,
	OP_OPENDIR, OP_READ, OP_READLINK, OP_STATFS, OP_RELEASE,
	OP_RELEASEDIR, OP_FORGET, OP_COUNT
};

static const char *const op_names[OP_COUNT] = {
	"lookup", "getattr", "readdir", "readdirplus", "open",
	"opendir", "read", "readlink", "statfs", "release",
	"releasedir", "forget",
};

/* ops that sleep unless -o delay_ops=... says otherwise */
#define DEFAULT_DELAY_MASK \
	((1u << OP_LOOKUP) | (1u << OP_GETATTR) | (1u << OP_READDIR) | \
	 (1u << OP_READDIRPLUS) | (1u << OP_OPEN) | (1u << OP_OPENDIR) | \
	 (1u << OP_READ) | (1u << OP_READLINK) | (1u << OP_STATFS))

struct latfs_cfg {
	unsigned delay_us;
	unsigned load_us;
	unsigned slots;
	char *ctl_file;
	double attr_timeout;
	double entry_timeout;
	double negative_timeout;
	int direct_io;
	int keep_cache;
	int readdirplus;   /* 0 = no, 1 = always, 2 = kernel's auto mode */
	int allow_other;
	int parallel_dirops;
	int sleep_mode;    /* delay_mode=sleep */
	unsigned max_threads;
	unsigned max_idle_threads;
	char *stats_file;
	char *delay_ops;
	char *src;
	unsigned delay_mask;
};

static struct latfs_cfg cfg = {
	.delay_us = 200,
	.attr_timeout = 1e-6,   /* one kernel tick, see CACHING DEFAULTS */
	.entry_timeout = 0.0,
	.negative_timeout = 0.0,
	.direct_io = 1,
	.keep_cache = 0,
	.readdirplus = 0,
	.parallel_dirops = 1,
	.max_threads = 0,       /* 0: 1 in queue mode, 256 in sleep mode */
	.max_idle_threads = 256,
};

enum { KEY_HELP, KEY_ALLOW_OTHER };

#define LOPT(t, p, v) { t, offsetof(struct latfs_cfg, p), v }
static const struct fuse_opt latfs_opts[] = {
	LOPT("delay_us=%u", delay_us, 0),
	LOPT("load_us=%u", load_us, 0),
	LOPT("slots=%u", slots, 0),
	LOPT("ctl_file=%s", ctl_file, 0),
	LOPT("attr_timeout=%lf", attr_timeout, 0),
	LOPT("entry_timeout=%lf", entry_timeout, 0),
	LOPT("negative_timeout=%lf", negative_timeout, 0),
	LOPT("direct_io", direct_io, 1),
	LOPT("nodirect_io", direct_io, 0),
	LOPT("keep_cache", keep_cache, 1),
	LOPT("nokeep_cache", keep_cache, 0),
	LOPT("readdirplus", readdirplus, 1),
	LOPT("readdirplus=yes", readdirplus, 1),
	LOPT("readdirplus=no", readdirplus, 0),
	LOPT("noreaddirplus", readdirplus, 0),
	LOPT("readdirplus=auto", readdirplus, 2),
	LOPT("delay_mode=queue", sleep_mode, 0),
	LOPT("delay_mode=sleep", sleep_mode, 1),
	LOPT("parallel_dirops", parallel_dirops, 1),
	LOPT("noparallel_dirops", parallel_dirops, 0),
	LOPT("max_threads=%u", max_threads, 0),
	LOPT("max_idle_threads=%u", max_idle_threads, 0),
	LOPT("stats_file=%s", stats_file, 0),
	LOPT("delay_ops=%s", delay_ops, 0),
	FUSE_OPT_KEY("allow_other", KEY_ALLOW_OTHER),
	FUSE_OPT_KEY("-h", KEY_HELP),
	FUSE_OPT_KEY("--help", KEY_HELP),
	FUSE_OPT_END
};

static int show_help;

/* ------------------------------------------------------------------ */
/* Statistics                                                          */

static atomic_ulong op_count[OP_COUNT];
static atomic_ulong readdir_empty;     /* READDIR replies with no entries */
static atomic_ulong readdir_entries;   /* entries returned by READDIR(PLUS) */
static atomic_ulong read_bytes;
static atomic_ulong read_eof;          /* READ replies with 0 bytes */
static atomic_long inflight;
static atomic_long max_inflight;
static atomic_ulong stats_seq;
/* the load model now (LOAD MODEL); ctl_file changes them while running */
static atomic_uint cur_delay_us;
static atomic_uint cur_load_us;

/* see writev() below */
static _Thread_local int patch_init_reply;
static int init_reply_patched;

static void write_stats(const char *why)
{
	char buf[1024];
	int len = snprintf(buf, sizeof(buf), "latfs-stats seq=%lu why=%s",
			   (unsigned long)atomic_fetch_add(&stats_seq, 1) + 1,
			   why);
	for (int i = 0; i < OP_COUNT && len < (int)sizeof(buf); i++)
		len += snprintf(buf + len, sizeof(buf) - len, " %s=%lu",
				op_names[i],
				(unsigned long)atomic_load(&op_count[i]));
	if (len < (int)sizeof(buf))
		len += snprintf(buf + len, sizeof(buf) - len,
				" readdir_empty=%lu readdir_entries=%lu"
				" read_bytes=%lu read_eof=%lu max_inflight=%ld"
				" delay_us=%u load_us=%u slots=%u"
				" delay_mode=%s parallel_dirops=%d\n",
				(unsigned long)atomic_load(&readdir_empty),
				(unsigned long)atomic_load(&readdir_entries),
				(unsigned long)atomic_load(&read_bytes),
				(unsigned long)atomic_load(&read_eof),
				(long)atomic_load(&max_inflight),
				atomic_load(&cur_delay_us),
				atomic_load(&cur_load_us), cfg.slots,
				cfg.sleep_mode ? "sleep" : "queue",
				init_reply_patched);
	if (len >= (int)sizeof(buf))
		len = (int)sizeof(buf) - 1;

	if (!cfg.stats_file) {
		fputs(buf, stderr);
		fflush(stderr);
		return;
	}
	/* write to a temp file and rename, so readers never see half a line */
	size_t tl = strlen(cfg.stats_file) + 8;
	char *tmp = malloc(tl);
	if (!tmp)
		return;
	snprintf(tmp, tl, "%s.tmp", cfg.stats_file);
	FILE *f = fopen(tmp, "w");
	if (f) {
		fputs(buf, f);
		if (fclose(f) == 0)
			rename(tmp, cfg.stats_file);
	}
	free(tmp);
}

/* Apply "delay_us=N load_us=N" from ctl_file (see LOAD MODEL). */
static void read_ctl(void)
{
	char buf[256];
	FILE *f = cfg.ctl_file ? fopen(cfg.ctl_file, "r") : NULL;
	if (!f) {
		fprintf(stderr, "latfs: SIGUSR2: cannot read ctl_file %s\n",
			cfg.ctl_file ? cfg.ctl_file : "(none: -o ctl_file=PATH)");
		return;
	}
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	char *save = NULL;
	for (char *tok = strtok_r(buf, " ,\t\n", &save); tok;
	     tok = strtok_r(NULL, " ,\t\n", &save)) {
		unsigned v;
		char c;
		if (sscanf(tok, "delay_us=%u%c", &v, &c) == 1)
			atomic_store(&cur_delay_us, v);
		else if (sscanf(tok, "load_us=%u%c", &v, &c) == 1)
			atomic_store(&cur_load_us, v);
		else
			fprintf(stderr, "latfs: %s: unknown setting %s\n",
				cfg.ctl_file, tok);
	}
}

/* SIGUSR1 writes the counters, SIGUSR2 re-reads ctl_file */
static void *signal_thread(void *arg)
{
	sigset_t *set = arg;
	for (;;) {
		int sig;
		if (sigwait(set, &sig) != 0)
			continue;
		if (sig == SIGUSR1)
			write_stats("usr1");
		else if (sig == SIGUSR2)
			read_ctl();
	}
	return NULL;
}

/* ------------------------------------------------------------------ */
/* Latency injection                                                   */

/*
 * Every delayed request gets its reply at t0 + delay_us, t0 being the
 * moment a worker thread picked it up, so the round trip includes the
 * "server" work: latency = max(delay, work), not delay + work.
 *
 * delay_mode=queue (default): the worker does the work, builds the reply
 * and queues it; one reply thread sends each reply at its deadline.
 * Workers never block on the delay, so any number of requests can be
 * outstanding and each costs about as much CPU as with no delay.
 * delay_mode=sleep: the worker sleeps until the deadline and replies
 * itself; concurrency is bounded by max_threads, and every request costs
 * two more context switches plus a timer interrupt.  On the 2-core test
 * VM (202k entries, 200 us, other jobs running) 16 parallel finds took
 * 8.2-10.9 s with queue vs 11.5-13.2 s with sleep, 64 finds 6.7-7.4 s vs
 * 7.4-11.4 s: with sleep the delay machinery itself eats the CPU that
 * the client needs, which a NAS would not do.
 */

enum rkind {
	R_ERR, R_ENTRY, R_ATTR, R_BUF, R_READLINK, R_STATFS, R_OPEN, R_OPENDIR
};

struct dirh;
static void dirh_free(struct dirh *d);

struct reply {
	struct timespec deadline;
	fuse_req_t req;
	enum rkind kind;
	int err;                /* R_ERR */
	char *buf;              /* R_BUF, R_READLINK: malloc'd, freed after */
	size_t len;             /* R_BUF */
	double timeout;         /* R_ATTR */
	union {
		struct fuse_entry_param e;  /* R_ENTRY */
		struct stat st;             /* R_ATTR */
		struct statvfs sv;          /* R_STATFS */
		struct fuse_file_info fi;   /* R_OPEN, R_OPENDIR */
	} u;
};

static void reply_init(struct reply *r, fuse_req_t req, enum rkind kind)
{
	memset(r, 0, sizeof(*r));
	r->req = req;
	r->kind = kind;
}

static void reply_error(struct reply *r, int err)
{
	free(r->buf);
	r->buf = NULL;
	r->kind = R_ERR;
	r->err = err;
}

static void send_reply(struct reply *r)
{
	/* before the reply: the client's next request must not be counted
	 * as concurrent with this one */
	atomic_fetch_sub(&inflight, 1);
	switch (r->kind) {
	case R_ERR:
		fuse_reply_err(r->req, r->err);
		break;
	case R_ENTRY:
		fuse_reply_entry(r->req, &r->u.e);
		break;
	case R_ATTR:
		fuse_reply_attr(r->req, &r->u.st, r->timeout);
		break;
	case R_BUF:
		fuse_reply_buf(r->req, r->buf, r->len);
		break;
	case R_READLINK:
		fuse_reply_readlink(r->req, r->buf);
		break;
	case R_STATFS:
		fuse_reply_statfs(r->req, &r->u.sv);
		break;
	case R_OPEN:
		if (fuse_reply_open(r->req, &r->u.fi) != 0)
			close((int)r->u.fi.fh);
		break;
	case R_OPENDIR:
		if (fuse_reply_open(r->req, &r->u.fi) != 0)
			dirh_free((struct dirh *)(uintptr_t)r->u.fi.fh);
		break;
	}
	free(r->buf);
	r->buf = NULL;
}

static void op_begin(enum op op, struct timespec *t0)
{
	clock_gettime(CLOCK_MONOTONIC, t0);
	atomic_fetch_add(&op_count[op], 1);
	long cur = atomic_fetch_add(&inflight, 1) + 1;
	long max = atomic_load(&max_inflight);
	while (cur > max &&
	       !atomic_compare_exchange_weak(&max_inflight, &max, cur))
		;
}

static int ts_before(const struct timespec *a, const struct timespec *b)
{
	return a->tv_sec < b->tv_sec ||
	       (a->tv_sec == b->tv_sec && a->tv_nsec < b->tv_nsec);
}

/* reply queue: a binary min-heap on deadline */
static pthread_mutex_t q_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t q_cond;
static struct reply **q_heap;
static size_t q_len, q_cap;
static int q_stop;
static pthread_t q_thread;
static int q_running;

/* returns 1 if r is the new earliest deadline, 0 if not, -1 on ENOMEM */
static int q_push_locked(struct reply *r)
{
	if (q_len == q_cap) {
		size_t nc = q_cap ? q_cap * 2 : 256;
		struct reply **nh = realloc(q_heap, nc * sizeof(*nh));
		if (!nh)
			return -1;
		q_heap = nh;
		q_cap = nc;
	}
	size_t i = q_len++;
	while (i > 0) {
		size_t p = (i - 1) / 2;
		if (!ts_before(&r->deadline, &q_heap[p]->deadline))
			break;
		q_heap[i] = q_heap[p];
		i = p;
	}
	q_heap[i] = r;
	return i == 0;
}

static struct reply *q_pop_locked(void)
{
	struct reply *top = q_heap[0], *last = q_heap[--q_len];
	size_t i = 0;
	for (;;) {
		size_t c = 2 * i + 1;
		if (c >= q_len)
			break;
		if (c + 1 < q_len &&
		    ts_before(&q_heap[c + 1]->deadline, &q_heap[c]->deadline))
			c++;
		if (!ts_before(&q_heap[c]->deadline, &last->deadline))
			break;
		q_heap[i] = q_heap[c];
		i = c;
	}
	if (q_len > 0)
		q_heap[i] = last;
	return top;
}

static void *reply_thread(void *arg)
{
	struct reply *due[64];
	(void)arg;

	pthread_mutex_lock(&q_lock);
	for (;;) {
		if (q_len == 0) {
			if (q_stop)
				break;
			pthread_cond_wait(&q_cond, &q_lock);
			continue;
		}
		struct timespec now;
		clock_gettime(CLOCK_MONOTONIC, &now);
		size_t n = 0;
		while (q_len > 0 && n < 64 &&
		       (q_stop || !ts_before(&now, &q_heap[0]->deadline)))
			due[n++] = q_pop_locked();
		if (n == 0) {
			struct timespec dl = q_heap[0]->deadline;
			pthread_cond_timedwait(&q_cond, &q_lock, &dl);
			continue;
		}
		pthread_mutex_unlock(&q_lock);
		for (size_t i = 0; i < n; i++) {
			send_reply(due[i]);
			free(due[i]);
		}
		pthread_mutex_lock(&q_lock);
	}
	pthread_mutex_unlock(&q_lock);
	return NULL;
}

static int reply_queue_start(void)
{
	pthread_condattr_t ca;
	if (pthread_condattr_init(&ca) != 0 ||
	    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC) != 0 ||
	    pthread_cond_init(&q_cond, &ca) != 0)
		return -1;
	pthread_condattr_destroy(&ca);
	if (pthread_create(&q_thread, NULL, reply_thread, NULL) != 0)
		return -1;
	q_running = 1;
	return 0;
}

/* send what is still queued (immediately) and stop the reply thread */
static void reply_queue_stop(void)
{
	if (!q_running)
		return;
	pthread_mutex_lock(&q_lock);
	q_stop = 1;
	pthread_cond_signal(&q_cond);
	pthread_mutex_unlock(&q_lock);
	pthread_join(q_thread, NULL);
	q_running = 0;
}

/*
 * LOAD MODEL.  A request's latency is
 *     delay_us + load_us * (other requests in flight)
 * (a server whose every request slows down with its load, like a filer's
 * metadata engine under many clients), and with -o slots=N the server
 * serves at most N requests at once: a request waits for the earliest free
 * slot, then holds it for that latency (a queue in front of N disks or
 * CPU threads: latency stays flat up to N in flight, then grows by one
 * service time per N queued).  Both default to off (0).  "In flight"
 * counts the requests latfs has picked up and not yet answered.
 * delay_us and load_us can change while mounted: write "delay_us=N" and/or
 * "load_us=N" to ctl_file and send SIGUSR2 (bench/latmount delay MNT N).
 */
static pthread_mutex_t slot_lock = PTHREAD_MUTEX_INITIALIZER;
static struct timespec *slot_free;   /* when each slot is free again */

static void ts_add_us(struct timespec *t, uint64_t us)
{
	t->tv_sec += (time_t)(us / 1000000);
	t->tv_nsec += (long)(us % 1000000) * 1000;
	if (t->tv_nsec >= 1000000000L) {
		t->tv_sec++;
		t->tv_nsec -= 1000000000L;
	}
}

/* The deadline of a request that started at *t0 (LOAD MODEL). */
static void load_deadline(const struct timespec *t0, struct timespec *dl)
{
	long others = atomic_load(&inflight) - 1;
	uint64_t us = atomic_load(&cur_delay_us) +
		      (uint64_t)atomic_load(&cur_load_us) *
		      (uint64_t)(others > 0 ? others : 0);
	*dl = *t0;
	if (cfg.slots && slot_free) {
		pthread_mutex_lock(&slot_lock);
		unsigned best = 0;
		for (unsigned i = 1; i < cfg.slots; i++)
			if (ts_before(&slot_free[i], &slot_free[best]))
				best = i;
		if (ts_before(dl, &slot_free[best]))
			*dl = slot_free[best];
		ts_add_us(dl, us);
		slot_free[best] = *dl;
		pthread_mutex_unlock(&slot_lock);
	} else {
		ts_add_us(dl, us);
	}
}

/* Reply to a request that started at t0, after its latency if op is
 * delayed and do_delay is set. */
static void finish(enum op op, const struct timespec *t0, int do_delay,
		   struct reply *r)
{
	if (!do_delay || !(cfg.delay_mask & (1u << op)) ||
	    (!cfg.slots && !atomic_load(&cur_delay_us) &&
	     !atomic_load(&cur_load_us))) {
		send_reply(r);
		return;
	}
	struct timespec dl;
	load_deadline(t0, &dl);
	if (!cfg.sleep_mode && q_running) {
		struct reply *h = malloc(sizeof(*h));
		if (h) {
			*h = *r;
			h->deadline = dl;
			pthread_mutex_lock(&q_lock);
			int top = q_push_locked(h);
			if (top == 1)
				pthread_cond_signal(&q_cond);
			pthread_mutex_unlock(&q_lock);
			if (top >= 0)
				return;
			free(h);
		}
	}
	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &dl, NULL) ==
	       EINTR)
		;
	send_reply(r);
}

static char *join_path(const char *dir, const char *name)
{
	size_t dl = strlen(dir), nl = strlen(name);
	int slash = !(dl > 0 && dir[dl - 1] == '/');
	char *p = malloc(dl + slash + nl + 1);
	if (!p)
		return NULL;
	memcpy(p, dir, dl);
	if (slash)
		p[dl] = '/';
	memcpy(p + dl + slash, name, nl + 1);
	return p;
}

/* ------------------------------------------------------------------ */
/* Node table                                                          */

/*
 * IDENTITY.  One node per source file, keyed by (st_dev, st_ino, file
 * handle), so hard links share a FUSE nodeid and a file that merely
 * reuses an expunged file's inode number gets a node of its own.  The
 * file handle is what name_to_handle_at(2) returns: what an NFS server
 * puts in its file handles (inode number and generation on ext4, xfs,
 * btrfs, tmpfs).  Keying by inode number alone served a new file through
 * the node of the deleted one while the kernel still held that node: a
 * stat() through the mount saw the new file (LOOKUP answers from the new
 * name), open() used the node's remembered path and failed with ENOENT.
 * (ino, ctime) is no key: ctime changes on every rename and link, and a
 * reused number may come with an equal ctime.  Lookup takes the
 * attributes and the handle from one O_PATH descriptor, so both describe
 * the same file even while other clients change the tree.
 *
 * PATHS.  A node remembers the newest source path a LOOKUP found it under
 * (with entry_timeout=0 the kernel looks every component up again on each
 * path walk, so that path is current whenever the kernel has just walked
 * to it).  Operations on a node open that path and check that it still
 * names the node's file (attributes and handle again); when it does not -
 * renamed or expunged behind our back, or an open file asked for
 * attributes after a rename - they open the file by its handle
 * (open_by_handle_at(2), root only), as an NFS server would, and learn its
 * new path from /proc/self/fd.  A file that is gone answers ESTALE, as
 * NFS does.  Superseded paths stay allocated until the node is freed, so
 * readers use a path without a lock; a node gets a new path only when the
 * old one no longer names its file, so hard links do not pile them up.
 *
 * COST.  A LOOKUP makes four system calls instead of one lstat (open
 * O_PATH, fstat, name_to_handle_at, close): on the 2-core test VM a
 * 16-thread scan of 40 k entries took ~25% more latfs CPU (1.1 s against
 * 0.9 s) and no more wall time.
 *
 * nodeid = pointer to the node (root = FUSE_ROOT_ID); a freed node's
 * address may come back for another file, so each node also gets a new
 * FUSE generation number.
 */

struct pathbuf {
	struct pathbuf *older;  /* superseded, freed with the node */
	char *s;                /* absolute source path */
};

struct ident {
	struct stat st;
	unsigned hbytes;        /* 0: the file system gives no handles */
	int htype;
	unsigned char handle[MAX_HANDLE_SZ];
};

struct node {
	struct node *hnext;
	dev_t dev;
	ino_t ino;
	uint64_t nlookup;
	uint64_t gen;
	_Atomic(struct pathbuf *) path;
	unsigned hbytes;
	int htype;
	unsigned char handle[];
};

static struct node *root_node;
static int root_fd = -1;        /* SRC, the mount_fd of open_by_handle_at
                                   (which refuses an O_PATH one) */
static pthread_mutex_t table_lock = PTHREAD_MUTEX_INITIALIZER;
static struct node **buckets;
static size_t nbuckets;
static size_t nnodes;
static uint64_t next_gen;

static const char *node_path(struct node *n)
{
	return atomic_load(&n->path)->s;
}

/* What fd is: its attributes and its file handle. */
static int ident_fd(int fd, struct ident *id)
{
	union {
		struct file_handle fh;
		char buf[sizeof(struct file_handle) + MAX_HANDLE_SZ];
	} u;
	int mount_id;

	if (fstat(fd, &id->st) == -1)
		return errno;
	u.fh.handle_bytes = MAX_HANDLE_SZ;
	if (name_to_handle_at(fd, "", &u.fh, &mount_id, AT_EMPTY_PATH) == 0) {
		id->hbytes = u.fh.handle_bytes;
		id->htype = u.fh.handle_type;
		memcpy(id->handle, u.fh.f_handle, u.fh.handle_bytes);
	} else {
		id->hbytes = 0;  /* EOPNOTSUPP: key by (dev, ino) alone */
		id->htype = 0;
	}
	return 0;
}

/* What the name at dirfd/name is now (symlinks not followed). */
static int ident_at(int dirfd, const char *name, struct ident *id)
{
	int fd = openat(dirfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	if (fd == -1)
		return errno;
	int err = ident_fd(fd, id);
	close(fd);
	return err;
}

static int ident_is(const struct node *n, const struct ident *id)
{
	return n->dev == id->st.st_dev && n->ino == id->st.st_ino &&
	       n->hbytes == id->hbytes && n->htype == id->htype &&
	       memcmp(n->handle, id->handle, id->hbytes) == 0;
}

static size_t hash_key(dev_t dev, ino_t ino)
{
	uint64_t h = (uint64_t)ino * 0x9E3779B97F4A7C15ULL ^
		     (uint64_t)dev * 0xC2B2AE3D27D4EB4FULL;
	return (size_t)(h ^ (h >> 29));
}

static int table_grow(void)
{
	size_t nb = nbuckets ? nbuckets * 2 : 4096;
	struct node **b = calloc(nb, sizeof(*b));
	if (!b)
		return -1;
	for (size_t i = 0; i < nbuckets; i++) {
		struct node *n = buckets[i], *next;
		for (; n; n = next) {
			next = n->hnext;
			size_t h = hash_key(n->dev, n->ino) & (nb - 1);
			n->hnext = b[h];
			b[h] = n;
		}
	}
	free(buckets);
	buckets = b;
	nbuckets = nb;
	return 0;
}

static void table_insert_locked(struct node *n)
{
	size_t h = hash_key(n->dev, n->ino) & (nbuckets - 1);
	n->hnext = buckets[h];
	buckets[h] = n;
	nnodes++;
}

/* A node for id at path (takes path), not yet in the table. */
static struct node *node_new(const struct ident *id, char *path)
{
	struct node *n = calloc(1, sizeof(*n) + id->hbytes);
	struct pathbuf *pb = malloc(sizeof(*pb));
	if (!n || !pb) {
		free(n);
		free(pb);
		free(path);
		return NULL;
	}
	pb->older = NULL;
	pb->s = path;
	atomic_init(&n->path, pb);
	n->dev = id->st.st_dev;
	n->ino = id->st.st_ino;
	n->hbytes = id->hbytes;
	n->htype = id->htype;
	memcpy(n->handle, id->handle, id->hbytes);
	return n;
}

static void node_free(struct node *n)
{
	struct pathbuf *pb = atomic_load(&n->path), *older;
	for (; pb; pb = older) {
		older = pb->older;
		free(pb->s);
		free(pb);
	}
	free(n);
}

/* Make path (taken) n's newest path. */
static void node_set_path(struct node *n, char *path)
{
	struct pathbuf *pb = malloc(sizeof(*pb));
	if (!pb) {
		free(path);
		return;
	}
	pb->s = path;
	pthread_mutex_lock(&table_lock);
	pb->older = atomic_load(&n->path);
	atomic_store(&n->path, pb);
	pthread_mutex_unlock(&table_lock);
}

/* n was just found under path (taken): keep its path current, unless
 * the one it has still names it (a hard link, see PATHS). */
static void node_seen_at(struct node *n, char *path)
{
	struct ident id;
	const char *cur = node_path(n);
	if (strcmp(cur, path) == 0 ||
	    (ident_at(AT_FDCWD, cur, &id) == 0 && ident_is(n, &id))) {
		free(path);
		return;
	}
	node_set_path(n, path);
}

/* Find or create the node for id, add one lookup reference.  Takes
 * ownership of path. */
static struct node *node_ref(const struct ident *id, char *path)
{
	pthread_mutex_lock(&table_lock);
	size_t h = hash_key(id->st.st_dev, id->st.st_ino) & (nbuckets - 1);
	struct node *n;
	for (n = buckets[h]; n; n = n->hnext)
		if (ident_is(n, id))
			break;
	if (n) {
		n->nlookup++;
		pthread_mutex_unlock(&table_lock);
		node_seen_at(n, path);
		return n;
	}
	if ((nnodes >= nbuckets && table_grow() != 0) ||
	    !(n = node_new(id, path))) {
		pthread_mutex_unlock(&table_lock);
		return NULL;
	}
	n->nlookup = 1;
	n->gen = ++next_gen;
	table_insert_locked(n);
	pthread_mutex_unlock(&table_lock);
	return n;
}

static void node_unref(struct node *n, uint64_t count)
{
	pthread_mutex_lock(&table_lock);
	if (count > n->nlookup)
		count = n->nlookup;
	n->nlookup -= count;
	if (n->nlookup == 0 && n != root_node) {
		size_t h = hash_key(n->dev, n->ino) & (nbuckets - 1);
		struct node **pp = &buckets[h];
		while (*pp && *pp != n)
			pp = &(*pp)->hnext;
		if (*pp) {
			*pp = n->hnext;
			nnodes--;
		}
		pthread_mutex_unlock(&table_lock);
		node_free(n);
		return;
	}
	pthread_mutex_unlock(&table_lock);
}

static struct node *get_node(fuse_ino_t ino)
{
	if (ino == FUSE_ROOT_ID)
		return root_node;
	return (struct node *)(uintptr_t)ino;
}

static fuse_ino_t node_id(struct node *n)
{
	return n == root_node ? FUSE_ROOT_ID : (fuse_ino_t)(uintptr_t)n;
}

/* The kernel knows where an open file is now: learn it from /proc
 * (only a path under SRC, not an unlinked file's). */
static void node_learn_path(struct node *n, int fd)
{
	char link[64];
	char *buf = malloc(PATH_MAX);
	const char *root = node_path(root_node);
	size_t rl = strlen(root);
	if (!buf)
		return;
	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	ssize_t l = readlink(link, buf, PATH_MAX - 1);
	if (l > 0) {
		buf[l] = '\0';
		if (strncmp(buf, root, rl) == 0 &&
		    (buf[rl] == '/' || buf[rl] == '\0') &&
		    !strstr(buf, " (deleted)")) {
			node_set_path(n, buf);
			return;
		}
	}
	free(buf);
}

/* Open n's file by its handle; ESTALE when it is gone. */
static int node_open_by_handle(struct node *n, int flags)
{
	union {
		struct file_handle fh;
		char buf[sizeof(struct file_handle) + MAX_HANDLE_SZ];
	} u;

	if (!n->hbytes) {
		errno = ESTALE;
		return -1;
	}
	u.fh.handle_bytes = n->hbytes;
	u.fh.handle_type = n->htype;
	memcpy(u.fh.f_handle, n->handle, n->hbytes);
	int fd = open_by_handle_at(root_fd, &u.fh, flags | O_CLOEXEC);
	if (fd != -1)
		node_learn_path(n, fd);
	return fd;
}

/* Open n's file with flags (see PATHS), and give its attributes. */
static int node_open(struct node *n, int flags, struct stat *st)
{
	struct ident id;
	int fd = open(node_path(n), flags | O_NOFOLLOW | O_CLOEXEC);
	if (fd != -1) {
		if (ident_fd(fd, &id) == 0 && ident_is(n, &id)) {
			*st = id.st;
			return fd;
		}
		close(fd);
	} else if (errno != ENOENT && errno != ENOTDIR && errno != ELOOP) {
		return -1;
	}
	fd = node_open_by_handle(n, flags);
	if (fd != -1 && fstat(fd, st) == -1) {
		int err = errno;
		close(fd);
		errno = err;
		return -1;
	}
	return fd;
}

/* What name in parent is now, and its source path (malloc'd). */
static int lookup_ident(struct node *parent, const char *name,
			struct ident *id, char **path)
{
	*path = join_path(node_path(parent), name);
	if (!*path)
		return ENOMEM;
	int err = ident_at(AT_FDCWD, *path, id);
	if (err != ENOENT && err != ENOTDIR)
		return err;
	/* the parent may have moved behind our back: ask it by handle */
	struct stat pst;
	int pfd = node_open(parent, O_PATH | O_DIRECTORY, &pst);
	if (pfd == -1)
		return err;
	err = ident_at(pfd, name, id);
	close(pfd);
	if (err == 0) {
		free(*path);
		*path = join_path(node_path(parent), name);
		if (!*path)
			return ENOMEM;
	}
	return err;
}

/* ------------------------------------------------------------------ */
/* libfuse < 3.16 never passes FUSE_PARALLEL_DIROPS to the kernel, even
 * though FUSE_CAP_PARALLEL_DIROPS is in conn->want (libfuse PR #861).
 * Without it the kernel serialises all LOOKUPs and READDIRs of one
 * directory behind a mutex, so 64 threads stat()ing new names in one
 * maildir would take 64 round trips instead of ~1, unlike NFS.
 * Workaround: libfuse sends every reply with writev(); this definition
 * in the executable takes precedence over libc's.  latfs_init(), which
 * libfuse calls right before it sends the INIT reply on the same thread,
 * arms a thread-local flag, and the next reply written by that thread
 * (header + struct fuse_init_out) gets the kernel flag bit set.  All other
 * writes go straight to the system call. */

#define KERNEL_FUSE_PARALLEL_DIROPS (1u << 18)  /* <linux/fuse.h> */
#define OUT_HEADER_SIZE 16          /* struct fuse_out_header */
#define INIT_OUT_FLAGS_OFFSET 12    /* fuse_init_out: major minor ra flags */

ssize_t writev(int fd, const struct iovec *iov, int iovcnt)
{
	if (patch_init_reply && iovcnt >= 2 &&
	    iov[0].iov_len == OUT_HEADER_SIZE &&
	    iov[1].iov_len >= INIT_OUT_FLAGS_OFFSET + 4) {
		int32_t error;
		memcpy(&error, (const char *)iov[0].iov_base + 4, 4);
		if (error == 0) {
			uint32_t flags;
			char *p = (char *)iov[1].iov_base +
				  INIT_OUT_FLAGS_OFFSET;
			memcpy(&flags, p, 4);
			flags |= KERNEL_FUSE_PARALLEL_DIROPS;
			memcpy(p, &flags, 4);
			init_reply_patched = 1;
		}
		patch_init_reply = 0;
	}
	return syscall(SYS_writev, fd, iov, iovcnt);
}

/* ------------------------------------------------------------------ */
/* Operations                                                          */

static void fill_entry(struct fuse_entry_param *e, struct node *n)
{
	e->ino = node_id(n);
	e->generation = n->gen;
	e->attr_timeout = cfg.attr_timeout;
	e->entry_timeout = cfg.entry_timeout;
}

static void latfs_init(void *userdata, struct fuse_conn_info *conn)
{
	(void)userdata;
	conn->want &= ~(FUSE_CAP_READDIRPLUS | FUSE_CAP_READDIRPLUS_AUTO);
	if (cfg.readdirplus && (conn->capable & FUSE_CAP_READDIRPLUS)) {
		conn->want |= FUSE_CAP_READDIRPLUS;
		if (cfg.readdirplus == 2 &&
		    (conn->capable & FUSE_CAP_READDIRPLUS_AUTO))
			conn->want |= FUSE_CAP_READDIRPLUS_AUTO;
	}
	/* concurrent lookups/readdirs in one directory, like NFS */
	if (cfg.parallel_dirops && (conn->capable & FUSE_CAP_PARALLEL_DIROPS)) {
		conn->want |= FUSE_CAP_PARALLEL_DIROPS;
		patch_init_reply = 1;  /* see writev() above */
	} else {
		conn->want &= ~FUSE_CAP_PARALLEL_DIROPS;
	}
	if (conn->capable & FUSE_CAP_ASYNC_READ)
		conn->want |= FUSE_CAP_ASYNC_READ;
	/* no readdir caching in the page cache, no symlink caching */
	conn->want &= ~(FUSE_CAP_CACHE_SYMLINKS | FUSE_CAP_WRITEBACK_CACHE);
	/* many concurrent async requests (readahead etc.) */
	conn->max_background = 256;
	conn->congestion_threshold = 192;
	conn->time_gran = 1;  /* nanosecond timestamps */
}

static void latfs_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct timespec t0;
	struct reply r;
	int err = 0;

	op_begin(OP_LOOKUP, &t0);
	reply_init(&r, req, R_ENTRY);
	struct ident id;
	char *path = NULL;
	err = lookup_ident(get_node(parent), name, &id, &path);
	if (err) {
		free(path);
	} else {
		struct node *n = node_ref(&id, path);
		if (!n) {
			err = ENOMEM;
		} else {
			r.u.e.attr = id.st;
			fill_entry(&r.u.e, n);
		}
	}
	if (err == ENOENT && cfg.negative_timeout > 0) {
		memset(&r.u.e, 0, sizeof(r.u.e));  /* ino 0: negative entry */
		r.u.e.entry_timeout = cfg.negative_timeout;
	} else if (err) {
		reply_error(&r, err);
	}
	finish(OP_LOOKUP, &t0, 1, &r);
}

static void latfs_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	atomic_fetch_add(&op_count[OP_FORGET], 1);
	node_unref(get_node(ino), nlookup);
	fuse_reply_none(req);
}

static void latfs_forget_multi(fuse_req_t req, size_t count,
			       struct fuse_forget_data *forgets)
{
	atomic_fetch_add(&op_count[OP_FORGET], count);
	for (size_t i = 0; i < count; i++)
		node_unref(get_node(forgets[i].ino), forgets[i].nlookup);
	fuse_reply_none(req);
}

static void latfs_getattr(fuse_req_t req, fuse_ino_t ino,
			  struct fuse_file_info *fi)
{
	struct timespec t0;
	struct reply r;
	(void)fi;

	op_begin(OP_GETATTR, &t0);
	reply_init(&r, req, R_ATTR);
	r.timeout = cfg.attr_timeout;
	int fd = node_open(get_node(ino), O_PATH, &r.u.st);
	if (fd == -1)
		reply_error(&r, errno);
	else
		close(fd);
	finish(OP_GETATTR, &t0, 1, &r);
}

static void latfs_readlink(fuse_req_t req, fuse_ino_t ino)
{
	struct timespec t0;
	struct reply r;

	op_begin(OP_READLINK, &t0);
	reply_init(&r, req, R_READLINK);
	r.buf = malloc(PATH_MAX + 1);
	if (!r.buf) {
		reply_error(&r, ENOMEM);
	} else {
		struct stat st;
		int fd = node_open(get_node(ino), O_PATH, &st);
		ssize_t n = fd == -1 ? -1 : readlinkat(fd, "", r.buf, PATH_MAX);
		if (fd != -1)
			close(fd);
		if (n == -1)
			reply_error(&r, errno);
		else if (n >= PATH_MAX)
			reply_error(&r, ENAMETOOLONG);
		else
			r.buf[n] = '\0';
	}
	finish(OP_READLINK, &t0, 1, &r);
}

static void latfs_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct timespec t0;
	struct reply r;

	op_begin(OP_STATFS, &t0);
	reply_init(&r, req, R_STATFS);
	(void)ino;  /* SRC is one file system (see LIMITS) */
	if (fstatvfs(root_fd, &r.u.sv) == -1)
		reply_error(&r, errno);
	finish(OP_STATFS, &t0, 1, &r);
}

/* --- directories: snapshot the listing at opendir ------------------- */

struct dent {
	ino_t ino;
	size_t nameoff;
	unsigned char type;
};

struct dirh {
	char *path;
	struct dent *ents;
	size_t n, cap;
	char *names;
	size_t nlen, ncap;
};

static void dirh_free(struct dirh *d)
{
	if (!d)
		return;
	free(d->path);
	free(d->ents);
	free(d->names);
	free(d);
}

static int dirh_add(struct dirh *d, const struct dirent *de)
{
	size_t l = strlen(de->d_name) + 1;
	if (d->n == d->cap) {
		size_t nc = d->cap ? d->cap * 2 : 64;
		struct dent *ne = realloc(d->ents, nc * sizeof(*ne));
		if (!ne)
			return -1;
		d->ents = ne;
		d->cap = nc;
	}
	if (d->nlen + l > d->ncap) {
		size_t nc = d->ncap ? d->ncap * 2 : 4096;
		while (nc < d->nlen + l)
			nc *= 2;
		char *nn = realloc(d->names, nc);
		if (!nn)
			return -1;
		d->names = nn;
		d->ncap = nc;
	}
	memcpy(d->names + d->nlen, de->d_name, l);
	d->ents[d->n].ino = de->d_ino;
	d->ents[d->n].type = de->d_type;
	d->ents[d->n].nameoff = d->nlen;
	d->nlen += l;
	d->n++;
	return 0;
}

static void latfs_opendir(fuse_req_t req, fuse_ino_t ino,
			  struct fuse_file_info *fi)
{
	struct timespec t0;
	struct reply r;
	int err = 0;
	struct dirh *d = NULL;

	op_begin(OP_OPENDIR, &t0);
	reply_init(&r, req, R_OPENDIR);
	struct node *n = get_node(ino);
	struct stat st;
	int fd = node_open(n, O_RDONLY | O_DIRECTORY, &st);
	DIR *dp = fd == -1 ? NULL : fdopendir(fd);
	if (!dp) {
		err = errno;
		if (fd != -1)
			close(fd);
	} else {
		d = calloc(1, sizeof(*d));
		if (!d || !(d->path = strdup(node_path(n))))
			err = ENOMEM;
		while (!err) {
			errno = 0;
			struct dirent *de = readdir(dp);
			if (!de) {
				err = errno;
				break;
			}
			if (dirh_add(d, de) != 0)
				err = ENOMEM;
		}
		closedir(dp);
	}
	if (err) {
		dirh_free(d);
		reply_error(&r, err);
	} else {
		r.u.fi = *fi;
		r.u.fi.fh = (uint64_t)(uintptr_t)d;
		r.u.fi.cache_readdir = 0;
		r.u.fi.keep_cache = 0;
	}
	finish(OP_OPENDIR, &t0, 1, &r);
}

static void do_readdir(fuse_req_t req, size_t size, off_t off,
		       struct fuse_file_info *fi, int plus)
{
	struct timespec t0;
	struct reply r;
	enum op op = plus ? OP_READDIRPLUS : OP_READDIR;
	struct dirh *d = (struct dirh *)(uintptr_t)fi->fh;
	size_t pos = 0, count = 0;
	int err = 0;

	op_begin(op, &t0);
	reply_init(&r, req, R_BUF);
	char *buf = r.buf = malloc(size ? size : 1);
	if (!buf)
		err = ENOMEM;
	for (size_t i = off < 0 ? 0 : (size_t)off; buf && i < d->n; i++) {
		const char *name = d->names + d->ents[i].nameoff;
		size_t rem = size - pos, sz;
		if (!plus) {
			struct stat st;
			memset(&st, 0, sizeof(st));
			st.st_ino = d->ents[i].ino;
			st.st_mode = (mode_t)d->ents[i].type << 12;
			sz = fuse_add_direntry(req, buf + pos, rem, name, &st,
					       (off_t)(i + 1));
			if (sz > rem)
				break;
		} else {
			struct fuse_entry_param e;
			struct ident id;
			memset(&e, 0, sizeof(e));
			sz = fuse_add_direntry_plus(req, NULL, 0, name, NULL, 0);
			if (sz > rem)
				break;
			int dots = strcmp(name, ".") == 0 ||
				   strcmp(name, "..") == 0;
			char *path = NULL;
			if (dots) {
				/* ino 0: the kernel creates no dentry */
				e.attr.st_ino = d->ents[i].ino;
				e.attr.st_mode = (mode_t)d->ents[i].type << 12;
			} else if (!(path = join_path(d->path, name))) {
				err = ENOMEM;
				break;
			} else if (ident_at(AT_FDCWD, path, &id) != 0) {
				free(path);  /* vanished: skip, like NFS */
				continue;
			} else {
				struct node *n = node_ref(&id, path);
				e.attr = id.st;
				if (!n) {
					err = ENOMEM;
					break;
				}
				fill_entry(&e, n);
			}
			sz = fuse_add_direntry_plus(req, buf + pos, rem, name,
						    &e, (off_t)(i + 1));
		}
		pos += sz;
		count++;
	}
	if (count)
		atomic_fetch_add(&readdir_entries, count);
	else if (!err)
		atomic_fetch_add(&readdir_empty, 1);
	if (err && pos == 0)
		reply_error(&r, err);
	else
		r.len = pos;
	/* The empty reply that only signals end-of-directory is free: NFS
	 * returns eof together with the last batch. */
	finish(op, &t0, count > 0 || err, &r);
}

static void latfs_readdir(fuse_req_t req, fuse_ino_t ino, size_t size,
			  off_t off, struct fuse_file_info *fi)
{
	(void)ino;
	do_readdir(req, size, off, fi, 0);
}

static void latfs_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size,
			      off_t off, struct fuse_file_info *fi)
{
	(void)ino;
	do_readdir(req, size, off, fi, 1);
}

static void latfs_releasedir(fuse_req_t req, fuse_ino_t ino,
			     struct fuse_file_info *fi)
{
	(void)ino;
	atomic_fetch_add(&op_count[OP_RELEASEDIR], 1);
	dirh_free((struct dirh *)(uintptr_t)fi->fh);
	fuse_reply_err(req, 0);
}

/* --- files ----------------------------------------------------------- */

static void latfs_open(fuse_req_t req, fuse_ino_t ino,
		       struct fuse_file_info *fi)
{
	struct timespec t0;
	struct reply r;
	int fd = -1;

	op_begin(OP_OPEN, &t0);
	reply_init(&r, req, R_OPEN);
	if ((fi->flags & O_ACCMODE) != O_RDONLY || (fi->flags & O_TRUNC)) {
		reply_error(&r, EROFS);
	} else {
		struct node *n = get_node(ino);
		struct stat st;
		/* O_NOATIME: benchmarks must not modify the source */
		fd = node_open(n, O_RDONLY | O_NOATIME, &st);
		if (fd == -1 && errno == EPERM)
			fd = node_open(n, O_RDONLY, &st);
		if (fd == -1) {
			reply_error(&r, errno);
		} else {
			r.u.fi = *fi;
			r.u.fi.fh = (uint64_t)fd;
			r.u.fi.direct_io = cfg.direct_io ? 1 : 0;
			r.u.fi.keep_cache = cfg.keep_cache ? 1 : 0;
		}
	}
	finish(OP_OPEN, &t0, 1, &r);
}

static void latfs_read(fuse_req_t req, fuse_ino_t ino, size_t size,
		       off_t off, struct fuse_file_info *fi)
{
	struct timespec t0;
	struct reply r;
	ssize_t n = 0;
	(void)ino;

	op_begin(OP_READ, &t0);
	reply_init(&r, req, R_BUF);
	r.buf = malloc(size ? size : 1);
	if (!r.buf) {
		reply_error(&r, ENOMEM);
	} else {
		n = pread((int)fi->fh, r.buf, size, off);
		if (n == -1) {
			reply_error(&r, errno);
		} else {
			r.len = (size_t)n;
			if (n == 0)
				atomic_fetch_add(&read_eof, 1);
			else
				atomic_fetch_add(&read_bytes,
						 (unsigned long)n);
		}
	}
	/* A read that only finds EOF is free: NFS returns eof with the last
	 * data (and with direct_io the kernel cannot skip it by i_size). */
	finish(OP_READ, &t0, n != 0, &r);
}

static void latfs_release(fuse_req_t req, fuse_ino_t ino,
			  struct fuse_file_info *fi)
{
	(void)ino;
	atomic_fetch_add(&op_count[OP_RELEASE], 1);
	close((int)fi->fh);
	fuse_reply_err(req, 0);
}

static const struct fuse_lowlevel_ops latfs_ops = {
	.init = latfs_init,
	.lookup = latfs_lookup,
	.forget = latfs_forget,
	.forget_multi = latfs_forget_multi,
	.getattr = latfs_getattr,
	.readlink = latfs_readlink,
	.statfs = latfs_statfs,
	.opendir = latfs_opendir,
	.readdir = latfs_readdir,
	.readdirplus = latfs_readdirplus,
	.releasedir = latfs_releasedir,
	.open = latfs_open,
	.read = latfs_read,
	.release = latfs_release,
};

/* ------------------------------------------------------------------ */
/* Command line                                                        */

static void usage(const char *prog)
{
	printf(
"usage: %s [options] SRC MNT\n"
"\n"
"Read-only passthrough of SRC at MNT; every request takes delay_us (plus\n"
"load_us per request in flight, and a wait for a free slot).\n"
"\n"
"latfs options:\n"
"    -o delay_us=N          delay per request in microseconds (200)\n"
"    -o load_us=N           plus N us per other request in flight (0)\n"
"    -o slots=N             serve at most N requests at once, queue the\n"
"                           rest (0 = no limit)\n"
"    -o ctl_file=PATH       on SIGUSR2, read \"delay_us=N load_us=N\" from\n"
"                           PATH and use them from then on\n"
"    -o delay_ops=LIST      ops that sleep, separated by ':' (default all =\n"
"                           lookup:getattr:readdir:readdirplus:open:opendir:\n"
"                           read:readlink:statfs; 'none' = no delays)\n"
"    -o attr_timeout=S      kernel attribute cache timeout, seconds (1e-6:\n"
"                           rounded up to one kernel tick, so a stat() right\n"
"                           after a LOOKUP uses its attributes, as on NFS;\n"
"                           0 = extra GETATTR round trip for every stat())\n"
"    -o entry_timeout=S     kernel dentry cache timeout, seconds (0)\n"
"    -o negative_timeout=S  kernel negative dentry timeout, seconds (0)\n"
"    -o [no]direct_io       bypass the kernel page cache (on)\n"
"    -o [no]keep_cache      keep page cache across opens (off)\n"
"    -o readdirplus=yes|no|auto  let the kernel use READDIRPLUS (no)\n"
"    -o delay_mode=queue|sleep  queue replies for a reply thread to send at\n"
"                           their deadline (default), or sleep in the worker\n"
"                           thread (concurrency then bounded by max_threads)\n"
"    -o [no]parallel_dirops concurrent LOOKUP/READDIR in one directory (on)\n"
"    -o max_threads=N       max worker threads (1 in queue mode, 256 in\n"
"                           sleep mode)\n"
"    -o max_idle_threads=N  idle worker threads kept (256)\n"
"    -o stats_file=PATH     where SIGUSR1/exit write op counters (stderr)\n"
"\n", prog);
}

static int opt_proc(void *data, const char *arg, int key,
		    struct fuse_args *outargs)
{
	(void)data;
	(void)outargs;
	switch (key) {
	case FUSE_OPT_KEY_NONOPT:
		if (!cfg.src) {
			cfg.src = strdup(arg);
			return 0;
		}
		return 1;
	case KEY_ALLOW_OTHER:
		cfg.allow_other = 1;
		return 1;
	case KEY_HELP:
		show_help = 1;
		return 1;
	default:
		return 1;
	}
}

static int parse_delay_ops(const char *s, unsigned *mask)
{
	*mask = 0;
	if (!s || !*s)
		return 0;
	char *copy = strdup(s), *save = NULL;
	if (!copy)
		return -1;
	for (char *tok = strtok_r(copy, ":+ ", &save); tok;
	     tok = strtok_r(NULL, ":+ ", &save)) {
		int found = 0;
		if (strcmp(tok, "all") == 0) {
			*mask |= DEFAULT_DELAY_MASK;
			found = 1;
		}
		for (int i = 0; i < OP_COUNT && !found; i++)
			if (strcmp(tok, op_names[i]) == 0) {
				*mask |= 1u << i;
				found = 1;
			}
		if (!found && strcmp(tok, "none") != 0) {
			fprintf(stderr, "latfs: unknown op in delay_ops: %s\n",
				tok);
			free(copy);
			return -1;
		}
	}
	free(copy);
	return 0;
}

static int root_init(void)
{
	struct ident id;
	char *path = realpath(cfg.src, NULL);
	int err = path ? 0 : errno;
	if (!err) {
		root_fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		err = root_fd == -1 ? errno : ident_fd(root_fd, &id);
	}
	if (err) {
		fprintf(stderr, "latfs: %s: %s\n", cfg.src, strerror(err));
		free(path);
		return -1;
	}
	if (table_grow() != 0 || !(root_node = node_new(&id, path)))
		return -1;
	root_node->nlookup = 2;  /* never freed */
	table_insert_locked(root_node);
	return 0;
}

/* --help and --version: prints what was asked and returns 1 (the run is
 * over, successfully); 0 when neither was given. */
static int print_info(const struct fuse_cmdline_opts *copts, const char *argv0)
{
	if (show_help || copts->show_help) {
		usage(argv0);
		fuse_cmdline_help();
		fuse_lowlevel_help();
		return 1;
	}
	if (copts->show_version) {
		printf("latfs, FUSE library version %s\n", fuse_pkgversion());
		fuse_lowlevel_version();
		return 1;
	}
	return 0;
}

/* Completes cfg from the options: which operations are delayed, how many
 * worker threads, the starting delays and the slots.  0 or -1. */
static int settle_config(void)
{
	if (cfg.delay_ops) {
		if (parse_delay_ops(cfg.delay_ops, &cfg.delay_mask) != 0)
			return -1;
	} else {
		cfg.delay_mask = DEFAULT_DELAY_MASK;
	}
	if (cfg.max_threads < 1) /* see WORKER THREADS */
		cfg.max_threads = cfg.sleep_mode ? 256 : 1;
	atomic_store(&cur_delay_us, cfg.delay_us);
	atomic_store(&cur_load_us, cfg.load_us);
	if (cfg.slots && !(slot_free = calloc(cfg.slots, sizeof(*slot_free))))
		return -1;
	return 0;
}

/* Mount options: read-only, recognisable in `mount` output (fsname names
 * the source unless it holds a character the option syntax would take),
 * and the kernel's permission checks when others may enter.  0 or -1. */
static int add_mount_options(struct fuse_args *args)
{
	const char *src = node_path(root_node);
	size_t l = strlen(src) + 64;
	char *o = malloc(l);
	if (!o)
		return -1;
	if (strchr(src, ',') || strchr(src, '\\'))
		snprintf(o, l, "-oro,fsname=latfs,subtype=latfs");
	else
		snprintf(o, l, "-oro,fsname=latfs:%s,subtype=latfs", src);
	int r = fuse_opt_add_arg(args, o);
	free(o);
	if (r != 0)
		return -1;
	if (cfg.allow_other && fuse_opt_add_arg(args, "-odefault_permissions") != 0)
		return -1;
	return 0;
}

/* SIGUSR1 -> dump counters, SIGUSR2 -> read ctl_file: blocked in every
 * thread but signal_thread's (the threads started later inherit the
 * mask). */
static void start_signal_thread(void)
{
	static sigset_t usr;
	sigemptyset(&usr);
	sigaddset(&usr, SIGUSR1);
	sigaddset(&usr, SIGUSR2);
	pthread_sigmask(SIG_BLOCK, &usr, NULL);
	pthread_t st;
	if (pthread_create(&st, NULL, signal_thread, &usr) == 0)
		pthread_detach(st);
}

/* Serves requests until unmounted: on one thread, or on up to
 * cfg.max_threads (see WORKER THREADS); the reply thread, unless sleeping
 * in the workers, delivers the delayed replies.  FUSE's result, or 1 when
 * something could not be started. */
static int serve(struct fuse_session *se, const struct fuse_cmdline_opts *copts)
{
	if (!cfg.sleep_mode && reply_queue_start() != 0) {
		fprintf(stderr, "latfs: cannot start the reply thread\n");
		fuse_session_exit(se);
		return 1;
	}
	int ret;
	if (copts->singlethread) {
		ret = fuse_session_loop(se);
	} else {
		struct fuse_loop_config *lcfg = fuse_loop_cfg_create();
		if (!lcfg) {
			reply_queue_stop();
			return 1;
		}
		fuse_loop_cfg_set_clone_fd(lcfg, copts->clone_fd);
		fuse_loop_cfg_set_max_threads(lcfg, cfg.max_threads);
		fuse_loop_cfg_set_idle_threads(lcfg, cfg.max_idle_threads);
		ret = fuse_session_loop_mt(se, lcfg);
		fuse_loop_cfg_destroy(lcfg);
	}
	reply_queue_stop();
	write_stats("exit");
	return ret;
}

int main(int argc, char *argv[])
{
	struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
	struct fuse_cmdline_opts copts;
	struct fuse_session *se = NULL;
	int ret = 1;

	memset(&copts, 0, sizeof(copts));
	if (fuse_opt_parse(&args, &cfg, latfs_opts, opt_proc) == -1)
		return 1;
	if (fuse_parse_cmdline(&args, &copts) != 0)
		return 1;
	if (print_info(&copts, argv[0])) {
		ret = 0;
		goto out;
	}
	if (!cfg.src || !copts.mountpoint) {
		fprintf(stderr, "usage: %s [options] SRC MNT   (--help)\n",
			argv[0]);
		goto out;
	}
	if (settle_config() != 0 || root_init() != 0 || add_mount_options(&args) != 0)
		goto out;

	/* Precise sleeps: the default 50 us timer slack would add ~25% to a
	 * 200 us delay.  Inherited by the worker threads. */
	prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);

	se = fuse_session_new(&args, &latfs_ops, sizeof(latfs_ops), NULL);
	if (!se)
		goto out;
	if (fuse_set_signal_handlers(se) != 0)
		goto out_destroy;
	if (fuse_session_mount(se, copts.mountpoint) != 0)
		goto out_signals;
	fuse_daemonize(copts.foreground);
	start_signal_thread();
	ret = serve(se, &copts);

	fuse_session_unmount(se);
out_signals:
	fuse_remove_signal_handlers(se);
out_destroy:
	fuse_session_destroy(se);
out:
	free(copts.mountpoint);
	fuse_opt_free_args(&args);
	return ret ? 1 : 0;
}
