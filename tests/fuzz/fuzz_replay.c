/*
 * fuzz_replay.c - libFuzzer target for replay's confinement: whatever valid
 * change log it is given, `cutover replay` changes nothing outside its target
 * and never crashes.
 *
 * The input bytes are decoded into a sequence of operations (random op
 * sequences, renames in cycles, deep paths, names of 255 and 256 bytes,
 * parking names, expected old states that do not match) and written as a
 * real change log by the project's own writer (format/changes.h), so every
 * input passes the format checks and reaches apply.c.  rp_run then applies it
 * to a scratch target whose initial state holds symlinks that lead out of it
 * (a relative and an absolute one to a directory outside, one to a file
 * outside) and whose names the decoder uses often.  After each input every
 * entry of the scratch area minus the target must have the lstat it had
 * before the first input (see unchanged()): any difference aborts, with the
 * listing before and after (type, mode, owner, size, mtime, ctime, inode,
 * link count, symlink target, content), which libFuzzer reports as a crash.
 *
 * Scratch: /dev/shm (tmpfs) when it exists, else TMPDIR; the target is
 * emptied and refilled before each input, the rest is made once.
 *   BASE/root/outside/{secret,sub/deep}  sentinels
 *   BASE/root/victim                      sentinel file beside the target
 *   BASE/root/src/                        the source: files at the names the
 *                                         decoder uses, and escaping symlinks
 *   BASE/root/dst/                        the target
 *   BASE/work/                            the log and the journal (not compared)
 *
 * Input layout (missing bytes read as 0): byte 0 = settings (bits 0-1
 * --on-conflict stop/overwrite/skip, bit 2 = 4 workers instead of 1, bit 3 =
 * fsync); then records of: op byte (low 4 bits: 0 a rename cycle, 1-10 that
 * op, 11-15 create; bit 4: an expected old state follows), a path, a to path
 * for rename and link, one attribute byte.  A path is a byte (1 + low 2 bits
 * components) followed by one byte per component indexing names[].
 * CUTOVER_FUZZ_SEEDS=DIR writes the seed inputs (seeds[]) to DIR and exits;
 * tests/fuzz/seed.sh uses it.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "format/changes.h"
#include "replay/replay.h"

#define MAX_RECORDS 64
#define MAX_PATH 8192

static char base[256], root[300], dst[320], work[300], logp[320], journal[320], outside[320];
static char names[12][260];
static unsigned nnames;
static cut_buf baseline;        /* the listing of the scratch area after setup */
static struct watched {         /* each entry of that listing, and its lstat */
	char *path;
	struct stat st;
} *watched;
static size_t nwatched;

/* ------------------------------------------------------------ the scratch */

static void must(int ok, const char *what)
{
	if (!ok) {
		fprintf(stderr, "fuzz_replay: scratch setup: %s: %s\n", what, strerror(errno));
		abort();
	}
}

static void put_file(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	must(fd >= 0 && write(fd, text, strlen(text)) == (ssize_t)strlen(text) && close(fd) == 0, path);
}

/* Empties directory fd (never follows a symlink), then closes it. */
static void empty_dir(int fd)
{
	DIR *d = fdopendir(fd);
	must(d != NULL, "fdopendir");
	struct dirent *de;
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (unlinkat(fd, de->d_name, 0) == 0 || errno == ENOENT)
			continue;
		int sub = openat(fd, de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
		if (sub < 0)
			continue;
		fchmod(sub, 0700); /* replay may have set 0000 */
		empty_dir(sub);
		unlinkat(fd, de->d_name, AT_REMOVEDIR);
	}
	closedir(d);
}

/* The target's state before each input: escaping symlinks under names the
 * decoder produces, and a directory and a file that ops find in their way. */
static void reset_target(void)
{
	int fd = open(dst, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
	must(fd >= 0, dst);
	fchmod(fd, 0755);
	empty_dir(fd);
	char p[MAX_PATH];
	snprintf(p, sizeof p, "%s/esc", dst);
	must(symlink("../outside", p) == 0, p);
	snprintf(p, sizeof p, "%s/abs", dst);
	must(symlink(outside, p) == 0, p);
	snprintf(p, sizeof p, "%s/fesc", dst);
	must(symlink("../victim", p) == 0, p);
	snprintf(p, sizeof p, "%s/a", dst);
	must(mkdir(p, 0755) == 0, p);
	snprintf(p, sizeof p, "%s/a/x", dst);
	put_file(p, "old x\n");
	unlink(journal);
}

/* Appends one line per entry below dir (sorted, symlinks not followed) to
 * out, skipping the target itself; with watch, also adds each entry to
 * watched[], each directory once. */
static void snapshot(const char *dir, cut_buf *out, bool watch)
{
	struct dirent **v;
	int n = scandir(dir, &v, NULL, alphasort);
	must(n >= 0, dir);
	for (int i = 0; i < n; i++) {
		char p[MAX_PATH];
		snprintf(p, sizeof p, "%s/%s", dir, v[i]->d_name);
		bool dot = !strcmp(v[i]->d_name, ".") || !strcmp(v[i]->d_name, "..");
		free(v[i]);
		struct stat st;
		if ((dot && strcmp(p + strlen(dir), "/.")) || !strcmp(p, dst) || !strcmp(p, work) ||
		    lstat(p, &st) < 0)
			continue;
		char content[256] = "";
		if (S_ISLNK(st.st_mode)) {
			ssize_t k = readlink(p, content, sizeof content - 1);
			content[k > 0 ? k : 0] = 0;
		} else if (S_ISREG(st.st_mode)) {
			int fd = open(p, O_RDONLY | O_NOFOLLOW);
			ssize_t k = fd >= 0 ? read(fd, content, sizeof content - 1) : -1;
			content[k > 0 ? k : 0] = 0;
			if (fd >= 0)
				close(fd);
			for (char *c = content; (c = strchr(c, '\n'));)
				*c = '|'; /* one line per entry */
		}
		cut_buf_printf(out, "%s %o %u:%u %lld %lld.%09ld %lld.%09ld %llu %llu [%s]\n", p,
			       (unsigned)st.st_mode, (unsigned)st.st_uid, (unsigned)st.st_gid,
			       (long long)st.st_size, (long long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec,
			       (long long)st.st_ctim.tv_sec, st.st_ctim.tv_nsec,
			       (unsigned long long)st.st_ino, (unsigned long long)st.st_nlink, content);
		if (watch && (!dot || !strcmp(dir, base))) { /* a subdirectory's "." is its entry above */
			watched = realloc(watched, (nwatched + 1) * sizeof *watched);
			must(watched != NULL && (watched[nwatched].path = strdup(p)) != NULL, "watch");
			watched[nwatched++].st = st;
		}
		if (S_ISDIR(st.st_mode) && !dot)
			snapshot(p, out, watch);
	}
	free(v);
}

static bool same_time(struct timespec a, struct timespec b)
{
	return a.tv_sec == b.tv_sec && a.tv_nsec == b.tv_nsec;
}

/* Whether every entry outside the target has the lstat it had after setup.
 * This is as strict as comparing listings and contents: whatever changes an
 * entry (its content, mode, owner, times or links, a rename onto it) sets its
 * ctime to the current time, and whatever adds, removes or renames an entry
 * of a directory sets the directory's; setup ends 50 ms before the first
 * input, so even a clock of coarse granularity has moved on by then.  It
 * costs one lstat per entry instead of a listing per directory and a read
 * per file, which took a fifth to a third of each execution. */
static bool unchanged(void)
{
	for (size_t i = 0; i < nwatched; i++) {
		const struct stat *a = &watched[i].st;
		struct stat b;
		if (lstat(watched[i].path, &b) < 0 || a->st_mode != b.st_mode || a->st_uid != b.st_uid ||
		    a->st_gid != b.st_gid || a->st_size != b.st_size || a->st_ino != b.st_ino ||
		    a->st_nlink != b.st_nlink || !same_time(a->st_mtim, b.st_mtim) ||
		    !same_time(a->st_ctim, b.st_ctim)) {
			printf("fuzz_replay: %s changed\n", watched[i].path);
			return false;
		}
	}
	return true;
}

static void make_scratch(void)
{
	const char *shm = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : getenv("TMPDIR");
	snprintf(base, sizeof base, "%s/cutover-fuzz-replay.%ld", shm ? shm : "/tmp", (long)getpid());
	snprintf(root, sizeof root, "%s/root", base);
	snprintf(dst, sizeof dst, "%s/dst", root);
	snprintf(outside, sizeof outside, "%s/outside", root);
	snprintf(work, sizeof work, "%s/work", base);
	snprintf(logp, sizeof logp, "%s/log", work);
	snprintf(journal, sizeof journal, "%s/journal", work);
	char p[MAX_PATH];
	must(mkdir(base, 0755) == 0 && mkdir(root, 0755) == 0 && mkdir(work, 0755) == 0 &&
		     mkdir(dst, 0755) == 0 && mkdir(outside, 0755) == 0, base);
	snprintf(p, sizeof p, "%s/secret", outside);
	put_file(p, "outside secret\n");
	snprintf(p, sizeof p, "%s/sub", outside);
	must(mkdir(p, 0755) == 0, p);
	snprintf(p, sizeof p, "%s/sub/deep", outside);
	put_file(p, "outside deep\n");
	snprintf(p, sizeof p, "%s/victim", root);
	put_file(p, "victim\n");
	/* The source: a file at every one- and two-component path of the
	 * first names, so that creates find something to copy, and the same
	 * escaping symlinks as the target. */
	snprintf(p, sizeof p, "%s/src", root);
	must(mkdir(p, 0755) == 0, p);
	const char *srcnames[] = {"a", "b", "c"};
	for (int i = 0; i < 3; i++) {
		snprintf(p, sizeof p, "%s/src/%s", root, srcnames[i]);
		must(mkdir(p, 0755) == 0, p);
		for (unsigned k = 0; k < nnames; k++) {
			snprintf(p, sizeof p, "%s/src/%s/%s", root, srcnames[i], names[k]);
			if (strlen(names[k]) < 256 && names[k][0] != 'd')
				put_file(p, names[k]);
		}
	}
	snprintf(p, sizeof p, "%s/src/x", root);
	put_file(p, "source x\n");
	snprintf(p, sizeof p, "%s/src/esc", root);
	must(symlink("../outside", p) == 0, p);
	snprintf(p, sizeof p, "%s/src/fesc", root);
	must(symlink("../victim", p) == 0, p);
	reset_target();
	snapshot(base, &baseline, true);
	usleep(50 * 1000); /* see unchanged() */
}

/* ------------------------------------------------------------ the decoder */

typedef struct input {
	const uint8_t *p, *end;
} input;

static unsigned byte(input *in) { return in->p < in->end ? *in->p++ : 0; }

/* Decodes a path into out (owned by the caller). */
static uint32_t path(input *in, char *out)
{
	unsigned n = 1 + (byte(in) & 3);
	size_t len = 0;
	for (unsigned i = 0; i < n; i++) {
		unsigned k = byte(in) % (nnames + 1);
		if (k == nnames) { /* deep: 20 components of 250 bytes, past PATH_MAX */
			for (int j = 0; j < 20 && len + 260 < MAX_PATH; j++) {
				if (len)
					out[len++] = '/';
				memset(out + len, 'd', 250);
				len += 250;
			}
			continue;
		}
		size_t l = strlen(names[k]);
		if (len + l + 2 >= MAX_PATH)
			break;
		if (len)
			out[len++] = '/';
		memcpy(out + len, names[k], l);
		len += l;
	}
	out[len] = 0;
	return (uint32_t)len;
}

static const char *const targets[] = {"../outside", "../../outside", "../victim", "x", "a/x", NULL};

/* Fills c's entry from one attribute byte. */
static void attrs(input *in, fmt_change *c, unsigned type)
{
	static const uint32_t modes[] = {0644, 0755, 0, 07777, 0600, 0700, 04755, 0444};
	unsigned b = byte(in);
	c->e.type = (uint8_t)type;
	c->e.mode = modes[b & 7];
	c->e.uid = c->e.gid = (b & 8) ? 65534 : 0;
	c->e.size = (b & 16) ? 0 : 2;
	c->e.mtime_ns = (int64_t)(b >> 5) * 1000000000LL * 86400 * 365;
	c->e.nlink = 1;
	if (type == FMT_T_SYMLINK) {
		unsigned t = (b >> 4) % 6;
		c->e.target = targets[t] ? targets[t] : outside;
		c->e.target_len = (uint32_t)strlen(c->e.target);
		c->e.size = c->e.target_len;
	}
}

static unsigned op_type(unsigned op, unsigned b)
{
	switch (op) {
	case FMT_OP_MKDIR: case FMT_OP_RMDIR: return FMT_T_DIR;
	case FMT_OP_SYMLINK: return FMT_T_SYMLINK;
	case FMT_OP_SPECIAL: return b & 1 ? FMT_T_SOCK : FMT_T_FIFO; /* no device nodes */
	case FMT_OP_META: case FMT_OP_DELETE: return 1 + b % 5; /* file .. socket */
	default: return FMT_T_FILE;
	}
}

/* k renames that move each path to the next one's name, the last to the
 * first's: a cycle the log does not break with a parking name. */
static int cycle(input *in, fmt_cwriter *w, unsigned *count)
{
	static char p[4][MAX_PATH];
	unsigned k = 2 + byte(in) % 3;
	uint32_t len[4];
	for (unsigned i = 0; i < k; i++)
		len[i] = path(in, p[i]);
	for (unsigned i = 0; i < k && *count < MAX_RECORDS; i++, (*count)++) {
		fmt_change c = {.op = FMT_OP_RENAME, .to = p[(i + 1) % k], .to_len = len[(i + 1) % k]};
		c.e.path = p[i];
		c.e.path_len = len[i];
		attrs(in, &c, FMT_T_FILE);
		(void)fmt_cwriter_add(w, &c); /* an invalid record is left out */
	}
	return 0;
}

static void write_log(input *in)
{
	static char p[MAX_PATH], to[MAX_PATH];
	fmt_cwriter *w = fmt_cwriter_create(logp);
	must(w != NULL, logp);
	for (unsigned count = 0; in->p < in->end && count < MAX_RECORDS;) {
		unsigned ob = byte(in), op = ob & 15;
		if (op == 0) {
			cycle(in, w, &count);
			continue;
		}
		if (op > FMT_OP_MAX)
			op = FMT_OP_CREATE;
		fmt_change c = {.op = (uint8_t)op};
		c.e.path_len = path(in, p);
		c.e.path = p;
		if (op == FMT_OP_RENAME || op == FMT_OP_LINK) {
			c.to_len = path(in, to);
			c.to = to;
		}
		attrs(in, &c, op_type(op, ob >> 5));
		if (ob & 16) {
			c.flags = FMT_C_OLD;
			c.old.type = (uint8_t)(1 + (ob >> 5) % 3);
			c.old.size = ob >> 6;
		}
		if (fmt_cwriter_add(w, &c) == 0)
			count++;
	}
	fmt_cheader h = {.source = root, .created_ns = 1};
	uint8_t id[FMT_ID_LEN];
	memset(h.new_id, 0x5a, sizeof h.new_id);
	must(fmt_cwriter_finish(w, &h, id) == 0, logp);
}

/* --------------------------------------------------------------- libFuzzer */

/* Indexes into names[] (set by LLVMFuzzerInitialize); DEEP is the one past
 * the end. */
enum { A, B, C, ESC, ABS, FESC, X, PARK, N255, N256, MSG, DEEP };

static const struct {
	const char *name;
	size_t len;
	const uint8_t bytes[48];
} seeds[] = {
#define SEED(name, ...) {name, sizeof((const uint8_t[]){__VA_ARGS__}), {__VA_ARGS__}}
	/* create x, mkdir b, create b/a, rename x -> b/x */
	SEED("ops", 0, 2, 0, X, 0, 1, 0, B, 1, 2, 1, B, A, 0, 6, 0, X, 1, B, X, 0),
	/* through each escaping symlink: create esc/x, abs/x, update fesc,
	 * mkdir esc/b, rename a/x -> esc/x (on-conflict overwrite) */
	SEED("escape", 1, 2, 1, ESC, X, 0, 2, 1, ABS, X, 0, 3, 0, FESC, 0, 1, 1, ESC, B, 1,
			6, 1, A, X, 1, ESC, X, 0),
	/* the cycle a -> b -> c -> a, then a through a parking name */
	SEED("cycle", 0, 0, 1, 0, A, 0, B, 0, C, 0, 0, 0, 6, 0, A, 0, PARK, 0),
	/* a 255-byte name, a 256-byte one, a path past PATH_MAX (on-conflict skip) */
	SEED("limits", 2, 1, 0, N255, 1, 2, 0, N256, 0, 1, 0, DEEP, 1, 2, 1, A, N255, 0,
			6, 0, A, 1, N255, A, 0),
	/* rmdir, delete and meta (mode 07777) of the escaping symlinks; rmdir
	 * of the non-empty a; delete a/x expecting another old state */
	SEED("removals", 1, 9, 0, ESC, 0, 8, 0, ABS, 0, 7, 0, ESC, 3, 7, 0, FESC, 3, 9, 0, A, 0,
			  0x18, 1, A, X, 0),
	/* overwrite: symlink over a, a fifo over esc, link fesc -> b, link
	 * a/x -> esc/x, create of a Dovecot name in a */
	SEED("overwrite", 3, 5, 0, A, 0x10, 10, 0, ESC, 0, 4, 0, FESC, 0, B, 0, 4, 1, A, X, 1, ESC,
			   X, 0, 2, 1, A, MSG, 0),
};

static void write_seeds(const char *dir)
{
	for (size_t i = 0; i < sizeof seeds / sizeof *seeds; i++) {
		char p[MAX_PATH];
		snprintf(p, sizeof p, "%s/%s", dir, seeds[i].name);
		FILE *f = fopen(p, "wb");
		must(f && fwrite(seeds[i].bytes, 1, seeds[i].len, f) == seeds[i].len && fclose(f) == 0, p);
	}
}

static void remove_scratch(void)
{
	int fd = open(base, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
	if (fd >= 0)
		empty_dir(fd);
	rmdir(base);
}

/* ASan keeps freed memory poisoned in a quarantine, 256 MB by default; a
 * replay allocates and frees ~1 MB per input (4.7 MB at most over the grown
 * corpus), so by default nearly every allocation lands on fresh pages, whose
 * faults are dear on a VM (16 MB made the grown corpus run 1.2x faster).
 * 16 MB still holds the frees of the last several inputs, so a use after
 * free within an input is still caught.  ASAN_OPTIONS overrides this. */
const char *__asan_default_options(void);
const char *__asan_default_options(void) { return "quarantine_size_mb=16"; }

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	const char *const fixed[] = {"a", "b", "c", "esc", "abs", "fesc", "x", ".~cutover.0000000000000001"};
	for (unsigned i = 0; i < sizeof fixed / sizeof *fixed; i++)
		snprintf(names[nnames++], sizeof names[0], "%s", fixed[i]);
	memset(names[nnames], 'n', 255); /* NAME_MAX */
	memset(names[nnames + 1], 'm', 256); /* one past it */
	nnames += 2;
	snprintf(names[nnames++], sizeof names[0], "1491941793.M41850P8566.host,S=10956,W=11234:2,S");
	const char *seeddir = getenv("CUTOVER_FUZZ_SEEDS");
	if (seeddir) {
		write_seeds(seeddir);
		exit(0);
	}
	make_scratch();
	atexit(remove_scratch);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);
int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
	input in = {d, d + n};
	unsigned settings = byte(&in);
	write_log(&in);
	char src[320];
	snprintf(src, sizeof src, "%s/src", root);
	rp_opts o = {.log = logp, .source = src, .target = dst, .journal = journal,
		     .jobs = settings & 4 ? 4 : 1, .fsync = settings & 8,
		     .on_conflict = (int)(settings & 3) == 3 ? RP_CONFLICT_OVERWRITE : (int)(settings & 3)};
	rp_stats st;
	(void)rp_run(&o, &st);
	if (!unchanged()) {
		cut_buf now = {0};
		snapshot(base, &now, false);
		printf("fuzz_replay: the replay changed something outside its target\n"
		       "--- before\n%.*s--- after\n%.*s", (int)baseline.len, (const char *)baseline.p,
		       (int)now.len, (const char *)now.p);
		fflush(stdout);
		abort();
	}
	reset_target();
	return 0;
}
