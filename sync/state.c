/*
 * state.c - the state directory of a source/target pair (docs/SYNC.md):
 *
 *   DIR/config             key=value: the pair and the scan policy (init)
 *   DIR/manifests/N.cmf    source manifest of pass N (6 digits)
 *   DIR/manifests/N.base.cmf    base derived after pass N (drift patch, rebase)
 *   DIR/manifests/N.target.cmf  target scan of pass N (rebase, check)
 *   DIR/logs/N.ccl         the change log replayed by pass N
 *   DIR/target-state       which manifest the target matches (after replay)
 *   DIR/target-marks       cheap-check sample of the target (sync.c)
 *   DIR/pending            a replay started and not yet recorded as finished
 *   DIR/journal            replay's journal
 *   DIR/history            one line per pass
 *   DIR/lock               the run lock (lock.c)
 *   DIR/progress           what the running pass is doing (progress.c; the
 *                          one file written without fsync: a view, no record)
 *
 * Every file but progress is written through sync_write_atomic (temp +
 * fsync + rename + fsync of the directory), so a crash leaves the old or the
 * new version.
 */
#include <dirent.h>
#include <stddef.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "format/skel.h"
#include "base/limits.h"
#include "sync/sync.h"

char *sync_path(const char *dir, const char *rel)
{
	size_t dl = cut_path_trimmed_len(dir), rl = strlen(rel);
	char *p = cut_malloc(dl + rl + 2);
	memcpy(p, dir, dl);
	p[dl] = '/';
	memcpy(p + dl + 1, rel, rl + 1);
	return p;
}

void sync_rel_manifest(char out[64], unsigned seq, const char *suffix)
{
	snprintf(out, 64, "manifests/%06u%s.cmf", seq, suffix ? suffix : "");
}

void sync_rel_log(char out[64], unsigned seq) { snprintf(out, 64, "logs/%06u.ccl", seq); }

void sync_rel_switch_record(char out[64], unsigned seq, size_t i)
{
	snprintf(out, 64, "switch/%06u-%zu.cmf", seq, i);
}

void sync_rel_switch_scratch(char out[64], size_t i, const char *what)
{
	snprintf(out, 64, "switch/%zu.%s", i, what);
}

bool sync_base_derived(const sync_tstate *t)
{
	char own[64];
	sync_rel_manifest(own, t->seq, NULL);
	return strcmp(t->base, own) != 0;
}

static int fsync_dir_of(const char *path)
{
	const char *slash = strrchr(path, '/');
	char *d = slash ? cut_strndup(path, slash == path ? 1 : (size_t)(slash - path)) : cut_strndup(".", 1);
	int fd = open(d, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int rc = 0;
	if (fd < 0 || fsync(fd) < 0) {
		CUT_SYSERR("%s: fsync of the directory", d);
		rc = -1;
	}
	if (fd >= 0)
		close(fd);
	free(d);
	return rc;
}

int sync_fsync_file(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	int rc = fd >= 0 && fsync(fd) == 0 ? 0 : -1;
	if (rc < 0)
		CUT_SYSERR("%s: fsync", path);
	if (fd >= 0)
		close(fd);
	return rc;
}

int sync_write_atomic(const char *path, const void *data, size_t len)
{
	size_t pl = strlen(path);
	char *tmp = cut_malloc(pl + 8);
	memcpy(tmp, path, pl);
	memcpy(tmp + pl, ".tmp", 5);
	int rc = -1;
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		CUT_SYSERR("%s: cannot create", tmp);
		goto out;
	}
	int e = cut_write_all(fd, data, len);
	if (e < 0) {
		errno = -e;
		CUT_SYSERR("%s: write", tmp);
		goto fail;
	}
	if (fsync(fd) < 0) {
		CUT_SYSERR("%s: fsync", tmp);
		goto fail;
	}
	if (close(fd) < 0) {
		fd = -1;
		CUT_SYSERR("%s: close", tmp);
		goto fail;
	}
	fd = -1;
	if (rename(tmp, path) < 0) {
		CUT_SYSERR("%s: cannot rename to %s", tmp, path);
		goto fail;
	}
	rc = fsync_dir_of(path);
	goto out;
fail:
	if (fd >= 0)
		close(fd);
	unlink(tmp);
out:
	free(tmp);
	return rc;
}

int sync_read_file(const char *path, cut_buf *out)
{
	out->len = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT)
			return 0;
		CUT_SYSERR("%s: cannot open", path);
		return -1;
	}
	for (;;) {
		cut_buf_reserve(out, 4096);
		ssize_t n = read(fd, out->p + out->len, out->cap - out->len - 1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			CUT_SYSERR("%s: read", path);
			close(fd);
			return -1;
		}
		if (n == 0)
			break;
		out->len += (size_t)n;
		if (out->len > (1u << 20)) {
			CUT_ERR("%s: larger than 1 MiB: not a cutover state file", path);
			close(fd);
			return -1;
		}
	}
	close(fd);
	cut_buf_reserve(out, 1);
	out->p[out->len] = 0;
	return 1;
}

/* ---- key=value files ---------------------------------------------------- */

/* Calls fn for each "key=value" line of text (blank lines and '#' comments
 * skipped).  Returns 0, or -1 with *err and *line for a line without '='. */
typedef int (*kv_fn)(void *ctx, const char *k, size_t kl, const char *v, size_t vl, const char **err);

static int kv_each(const char *text, size_t len, kv_fn fn, void *ctx, const char **err, int *lineno)
{
	const char *p = text, *end = text + len;
	int ln = 0;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *le = nl ? nl : end;
		ln++;
		if (lineno)
			*lineno = ln;
		if (le > p && *p != '#') {
			const char *eq = memchr(p, '=', (size_t)(le - p));
			if (!eq || eq == p) {
				*err = "expected key=value";
				return -1;
			}
			if (memchr(p, 0, (size_t)(le - p))) {
				*err = "NUL byte";
				return -1;
			}
			if (fn(ctx, p, (size_t)(eq - p), eq + 1, (size_t)(le - eq - 1), err) < 0)
				return -1;
		}
		p = le + 1;
	}
	return 0;
}

static bool key_is(const char *k, size_t kl, const char *want)
{
	return kl == strlen(want) && memcmp(k, want, kl) == 0;
}

static int parse_num(const char *v, size_t vl, int64_t lo, int64_t hi, int64_t *out)
{
	if (vl == 0 || vl > 20)
		return -1;
	char b[24];
	memcpy(b, v, vl);
	b[vl] = 0;
	char *e;
	errno = 0;
	long long x = strtoll(b, &e, 10);
	if (errno || *e || x < lo || x > hi)
		return -1;
	*out = x;
	return 0;
}

static int parse_bool(const char *v, size_t vl, bool *out)
{
	if (vl == 1 && (*v == '0' || *v == '1')) {
		*out = *v == '1';
		return 0;
	}
	return -1;
}

static int parse_id(const char *v, size_t vl, uint8_t id[FMT_ID_LEN])
{
	char b[2 * FMT_ID_LEN + 1];
	if (vl != 2 * FMT_ID_LEN)
		return -1;
	memcpy(b, v, vl);
	b[vl] = 0;
	return cut_unhex(id, FMT_ID_LEN, b);
}

/* A relative state path: "manifests/..." or "logs/...", no "..", < 64 bytes. */
static int parse_rel(const char *v, size_t vl, char out[64])
{
	if (vl == 0 || vl >= 64 || memchr(v, '/', vl) == NULL)
		return -1;
	if (!(vl > 10 && memcmp(v, "manifests/", 10) == 0) && !(vl > 5 && memcmp(v, "logs/", 5) == 0))
		return -1;
	for (size_t i = 0; i < vl; i++)
		if (v[i] == '.' && i + 1 < vl && v[i + 1] == '.')
			return -1;
	memcpy(out, v, vl);
	out[vl] = 0;
	return 0;
}

static int parse_word(const char *v, size_t vl, char *out, size_t cap)
{
	if (vl == 0 || vl >= cap)
		return -1;
	for (size_t i = 0; i < vl; i++)
		if (!((v[i] >= 'a' && v[i] <= 'z') || (v[i] >= '0' && v[i] <= '9') || v[i] == '-' || v[i] == '_'))
			return -1;
	memcpy(out, v, vl);
	out[vl] = 0;
	return 0;
}

/* ---- config ------------------------------------------------------------- */

void sync_config_free(sync_config *c)
{
	free(c->source);
	free(c->target);
	free(c->host);
	for (size_t i = 0; i < c->nimmutable; i++)
		free(c->immutable[i]);
	for (size_t i = 0; i < c->nexcludes; i++)
		free(c->excludes[i]);
	memset(c, 0, sizeof *c);
}

struct cfg_ctx {
	sync_config *c;
	bool version;
};

static int cfg_kv(void *ctx, const char *k, size_t kl, const char *v, size_t vl, const char **err)
{
	struct cfg_ctx *x = ctx;
	sync_config *c = x->c;
	int64_t n;
	if (key_is(k, kl, "version")) {
		if (parse_num(v, vl, 1, 1000, &n) < 0 || n != SYNC_STATE_VERSION) {
			*err = "unsupported version (this cutover reads version 1)";
			return -1;
		}
		x->version = true;
	} else if (key_is(k, kl, "source") || key_is(k, kl, "target")) {
		char **dst = key_is(k, kl, "source") ? &c->source : &c->target;
		if (vl == 0 || *dst) {
			*err = vl ? "given twice" : "empty path";
			return -1;
		}
		*dst = cut_strndup(v, vl);
	} else if (key_is(k, kl, "policy")) {
		if (vl == 7 && memcmp(v, "maildir", 7) == 0)
			c->maildir = true;
		else if (vl == 4 && memcmp(v, "none", 4) == 0)
			c->maildir = false;
		else {
			*err = "policy wants maildir or none";
			return -1;
		}
	} else if (key_is(k, kl, "immutable") || key_is(k, kl, "exclude")) {
		bool im = key_is(k, kl, "immutable");
		size_t *np = im ? &c->nimmutable : &c->nexcludes;
		if (vl == 0 || *np >= SYNC_MAX_GLOBS) {
			*err = vl ? "too many globs" : "empty glob";
			return -1;
		}
		(im ? c->immutable : c->excludes)[(*np)++] = cut_strndup(v, vl);
	} else if (key_is(k, kl, "one_file_system")) {
		if (parse_bool(v, vl, &c->one_fs) < 0) {
			*err = "wants 0 or 1";
			return -1;
		}
	} else if (key_is(k, kl, "keep")) {
		if (parse_num(v, vl, 1, SYNC_KEEP_MAX, &n) < 0) {
			*err = "keep wants 1..100000";
			return -1;
		}
		c->keep = (unsigned)n;
	} else if (key_is(k, kl, "max_ops") || key_is(k, kl, "bwlimit")) {
		if (parse_num(v, vl, 0, INT64_MAX, &n) < 0) {
			*err = "wants a number (0: no limit)";
			return -1;
		}
		*(key_is(k, kl, "max_ops") ? &c->max_ops : &c->bwlimit) = (uint64_t)n;
	} else if (key_is(k, kl, "adaptive")) {
		if (parse_bool(v, vl, &c->adaptive) < 0) {
			*err = "wants 0 or 1";
			return -1;
		}
	} else if (key_is(k, kl, "max_latency_ns")) {
		if (parse_num(v, vl, 0, INT64_MAX, &n) < 0) {
			*err = "wants nanoseconds (0: none)";
			return -1;
		}
		c->max_latency_ns = n;
	} else if (key_is(k, kl, "created")) {
		if (parse_num(v, vl, 0, INT64_MAX, &n) < 0) {
			*err = "created wants unix seconds";
			return -1;
		}
		c->created = n;
	} else if (key_is(k, kl, "host")) {
		free(c->host);
		c->host = cut_strndup(v, vl);
	}
	/* Unknown keys are ignored: a later version may add some. */
	return 0;
}

int sync_config_parse(const char *text, size_t len, sync_config *c, const char **err, int *line)
{
	memset(c, 0, sizeof *c);
	c->keep = SYNC_KEEP_DEFAULT;
	struct cfg_ctx x = {.c = c};
	*line = 0;
	if (kv_each(text, len, cfg_kv, &x, err, line) < 0)
		goto bad;
	*line = 0;
	if (!x.version) {
		*err = "no version line";
		goto bad;
	}
	if (!c->source || !c->target) {
		*err = "source and target are required";
		goto bad;
	}
	return 0;
bad:
	sync_config_free(c);
	return -1;
}

int sync_config_read(const char *dir, sync_config *c)
{
	char *p = sync_path(dir, "config");
	cut_buf b = {0};
	int rc = sync_read_file(p, &b);
	if (rc == 0)
		CUT_ERR("%s: no such file: %s is not a cutover state directory (run `cutover init` first)",
			p, dir);
	if (rc > 0) {
		const char *err = NULL;
		int line = 0;
		if (sync_config_parse((const char *)b.p, b.len, c, &err, &line) < 0) {
			if (line)
				CUT_ERR("%s:%d: %s", p, line, err);
			else
				CUT_ERR("%s: %s", p, err);
			rc = 0;
		}
	}
	cut_buf_free(&b);
	free(p);
	return rc > 0 ? 0 : -1;
}

void sync_config_format(const sync_config *c, cut_buf *out)
{
	cut_buf_printf(out, "# cutover state: the pair and the policy (written by `cutover init`)\n");
	cut_buf_printf(out, "version=%d\nsource=%s\ntarget=%s\npolicy=%s\none_file_system=%d\nkeep=%u\n",
		       SYNC_STATE_VERSION, c->source, c->target, c->maildir ? "maildir" : "none",
		       c->one_fs ? 1 : 0, c->keep ? c->keep : SYNC_KEEP_DEFAULT);
	for (size_t i = 0; i < c->nimmutable; i++)
		cut_buf_printf(out, "immutable=%s\n", c->immutable[i]);
	for (size_t i = 0; i < c->nexcludes; i++)
		cut_buf_printf(out, "exclude=%s\n", c->excludes[i]);
	if (c->max_ops)
		cut_buf_printf(out, "max_ops=%llu\n", (unsigned long long)c->max_ops);
	if (c->bwlimit)
		cut_buf_printf(out, "bwlimit=%llu\n", (unsigned long long)c->bwlimit);
	if (c->adaptive)
		cut_buf_printf(out, "adaptive=1\n");
	if (c->max_latency_ns)
		cut_buf_printf(out, "max_latency_ns=%lld\n", (long long)c->max_latency_ns);
	cut_buf_printf(out, "created=%lld\nhost=%s\n", (long long)c->created, c->host ? c->host : "");
}

/* ---- target-state and pending ------------------------------------------ */

struct ts_ctx {
	sync_tstate *t;
	unsigned have;
};

static int ts_kv(void *ctx, const char *k, size_t kl, const char *v, size_t vl, const char **err)
{
	struct ts_ctx *x = ctx;
	int64_t n;
	if (key_is(k, kl, "seq")) {
		if (parse_num(v, vl, 1, 999999, &n) < 0)
			goto bad;
		x->t->seq = (unsigned)n;
		x->have |= 1;
	} else if (key_is(k, kl, "manifest_id")) {
		if (parse_id(v, vl, x->t->manifest_id) < 0)
			goto bad;
		x->have |= 2;
	} else if (key_is(k, kl, "base")) {
		if (parse_rel(v, vl, x->t->base) < 0)
			goto bad;
		x->have |= 4;
	} else if (key_is(k, kl, "base_id")) {
		if (parse_id(v, vl, x->t->base_id) < 0)
			goto bad;
		x->have |= 8;
	} else if (key_is(k, kl, "time")) {
		if (parse_num(v, vl, 0, INT64_MAX, &n) < 0)
			goto bad;
		x->t->time = n;
	} else if (key_is(k, kl, "kind")) {
		if (parse_word(v, vl, x->t->kind, sizeof x->t->kind) < 0)
			goto bad;
	}
	return 0;
bad:
	*err = "bad value";
	return -1;
}

int sync_tstate_parse(const char *text, size_t len, sync_tstate *t, const char **err)
{
	memset(t, 0, sizeof *t);
	struct ts_ctx x = {.t = t};
	int line;
	if (kv_each(text, len, ts_kv, &x, err, &line) < 0)
		return -1;
	if (x.have != 15) {
		*err = "seq, manifest_id, base and base_id are required";
		return -1;
	}
	return 0;
}

void sync_tstate_format(const sync_tstate *t, cut_buf *out)
{
	char a[2 * FMT_ID_LEN + 1], b[2 * FMT_ID_LEN + 1];
	cut_hex(a, t->manifest_id, FMT_ID_LEN);
	cut_hex(b, t->base_id, FMT_ID_LEN);
	cut_buf_printf(out,
		       "# the target matches this manifest (written after replay finished)\n"
		       "seq=%u\nmanifest_id=%s\nbase=%s\nbase_id=%s\ntime=%lld\nkind=%s\n",
		       t->seq, a, t->base, b, (long long)t->time, t->kind[0] ? t->kind : "sync");
}

struct pd_ctx {
	sync_pending *p;
	unsigned have;
};

static int pd_kv(void *ctx, const char *k, size_t kl, const char *v, size_t vl, const char **err)
{
	struct pd_ctx *x = ctx;
	int64_t n;
	if (key_is(k, kl, "seq")) {
		if (parse_num(v, vl, 1, 999999, &n) < 0)
			goto bad;
		x->p->seq = (unsigned)n;
		x->have |= 1;
	} else if (key_is(k, kl, "log")) {
		if (parse_rel(v, vl, x->p->log) < 0)
			goto bad;
		x->have |= 2;
	} else if (key_is(k, kl, "manifest")) {
		if (parse_rel(v, vl, x->p->manifest) < 0)
			goto bad;
		x->have |= 4;
	} else if (key_is(k, kl, "base")) {
		if (parse_rel(v, vl, x->p->base) < 0)
			goto bad;
	} else if (key_is(k, kl, "log_id")) {
		if (parse_id(v, vl, x->p->log_id) < 0)
			goto bad;
		x->have |= 8;
	} else if (key_is(k, kl, "old_id")) {
		if (parse_id(v, vl, x->p->old_id) < 0)
			goto bad;
		x->p->has_old = true;
	} else if (key_is(k, kl, "kind")) {
		if (parse_word(v, vl, x->p->kind, sizeof x->p->kind) < 0)
			goto bad;
	}
	return 0;
bad:
	*err = "bad value";
	return -1;
}

int sync_pending_parse(const char *text, size_t len, sync_pending *p, const char **err)
{
	memset(p, 0, sizeof *p);
	struct pd_ctx x = {.p = p};
	int line;
	if (kv_each(text, len, pd_kv, &x, err, &line) < 0)
		return -1;
	if (x.have != 15) {
		*err = "seq, log, manifest and log_id are required";
		return -1;
	}
	return 0;
}

void sync_pending_format(const sync_pending *p, cut_buf *out)
{
	char a[2 * FMT_ID_LEN + 1];
	cut_hex(a, p->log_id, FMT_ID_LEN);
	cut_buf_printf(out, "# a replay started and not recorded as finished: the next sync resumes it\n"
			    "seq=%u\nlog=%s\nlog_id=%s\nmanifest=%s\n",
		       p->seq, p->log, a, p->manifest);
	if (p->base[0])
		cut_buf_printf(out, "base=%s\n", p->base);
	if (p->has_old) {
		cut_hex(a, p->old_id, FMT_ID_LEN);
		cut_buf_printf(out, "old_id=%s\n", a);
	}
	cut_buf_printf(out, "kind=%s\n", p->kind[0] ? p->kind : "sync");
}

static int read_parsed(const char *dir, const char *name, void *obj,
		       int (*parse)(const char *, size_t, void *, const char **))
{
	char *p = sync_path(dir, name);
	cut_buf b = {0};
	int rc = sync_read_file(p, &b);
	if (rc > 0) {
		const char *err = "";
		if (parse((const char *)b.p, b.len, obj, &err) < 0) {
			CUT_ERR("%s: %s: the state directory is damaged (remove the file only if you "
				"know which manifest the target matches; see docs/RUNBOOK.md)", p, err);
			rc = -1;
		}
	}
	cut_buf_free(&b);
	free(p);
	return rc;
}

static int ts_parse_v(const char *t, size_t l, void *o, const char **e) { return sync_tstate_parse(t, l, o, e); }
static int pd_parse_v(const char *t, size_t l, void *o, const char **e) { return sync_pending_parse(t, l, o, e); }

int sync_tstate_read(const char *dir, sync_tstate *t) { return read_parsed(dir, "target-state", t, ts_parse_v); }
int sync_pending_read(const char *dir, sync_pending *p) { return read_parsed(dir, "pending", p, pd_parse_v); }

static int write_buf(const char *dir, const char *name, cut_buf *b)
{
	char *p = sync_path(dir, name);
	int rc = sync_write_atomic(p, b->p, b->len);
	free(p);
	cut_buf_free(b);
	return rc;
}

int sync_tstate_write(const char *dir, const sync_tstate *t)
{
	cut_buf b = {0};
	sync_tstate_format(t, &b);
	return write_buf(dir, "target-state", &b);
}

int sync_pending_write(const char *dir, const sync_pending *p)
{
	cut_buf b = {0};
	sync_pending_format(p, &b);
	return write_buf(dir, "pending", &b);
}

int sync_pending_remove(const char *dir)
{
	char *p = sync_path(dir, "pending");
	int rc = 0;
	if (unlink(p) < 0 && errno != ENOENT) {
		CUT_SYSERR("%s: cannot remove", p);
		rc = -1;
	} else {
		rc = fsync_dir_of(p);
	}
	free(p);
	return rc;
}

/* ---- progress ----------------------------------------------------------- */

static int pg_kv(void *ctx, const char *k, size_t kl, const char *v, size_t vl, const char **err)
{
	sync_progress *p = ctx;
	int64_t n = 0;
	static const struct { const char *key; size_t off; bool u64; } nums[] = {
		{"start_ns", offsetof(sync_progress, start_ns), false},
		{"phase_ns", offsetof(sync_progress, phase_ns), false},
		{"written_ns", offsetof(sync_progress, written_ns), false},
		{"done", offsetof(sync_progress, done), true},
		{"total", offsetof(sync_progress, total), true},
		{"bytes", offsetof(sync_progress, bytes), true},
		{"bytes_total", offsetof(sync_progress, bytes_total), true},
		{"src_ops_s", offsetof(sync_progress, src_ops_s), true},
		{"src_bytes_s", offsetof(sync_progress, src_bytes_s), true},
		{"src_p50_ns", offsetof(sync_progress, src_p50_ns), true},
		{"src_p99_ns", offsetof(sync_progress, src_p99_ns), true},
		{"src_limit", offsetof(sync_progress, src_limit), true},
		{"src_held_pm", offsetof(sync_progress, src_held_pm), true},
	};
	for (size_t i = 0; i < sizeof nums / sizeof nums[0]; i++) {
		if (!key_is(k, kl, nums[i].key))
			continue;
		if (parse_num(v, vl, 0, INT64_MAX, &n) < 0)
			goto bad;
		if (nums[i].u64)
			*(uint64_t *)((char *)p + nums[i].off) = (uint64_t)n;
		else
			*(int64_t *)((char *)p + nums[i].off) = n;
		return 0;
	}
	if (key_is(k, kl, "seq")) {
		if (parse_num(v, vl, 0, 999999, &n) < 0)
			goto bad;
		p->seq = (unsigned)n;
	} else if (key_is(k, kl, "pid")) {
		if (parse_num(v, vl, 1, INT32_MAX, &n) < 0)
			goto bad;
		p->pid = (long)n;
	} else if (key_is(k, kl, "kind") || key_is(k, kl, "phase")) {
		char *out = key_is(k, kl, "kind") ? p->kind : p->phase;
		if (parse_word(v, vl, out, sizeof p->kind) < 0)
			goto bad;
	} else if (key_is(k, kl, "host")) {
		if (vl >= sizeof p->host)
			goto bad;
		memcpy(p->host, v, vl);
		p->host[vl] = 0;
	}
	return 0;
bad:
	*err = "bad value";
	return -1;
}

int sync_progress_parse(const char *text, size_t len, sync_progress *p, const char **err)
{
	memset(p, 0, sizeof *p);
	int line;
	if (kv_each(text, len, pg_kv, p, err, &line) < 0)
		return -1;
	if (!p->pid || !p->phase[0]) {
		*err = "pid and phase are required";
		return -1;
	}
	return 0;
}

void sync_progress_format(const sync_progress *p, cut_buf *out)
{
	cut_buf_printf(out,
		       "# the pass running now (removed when it ends; one left behind died)\n"
		       "pid=%ld\nhost=%s\nseq=%u\nkind=%s\nphase=%s\nstart_ns=%" PRId64
		       "\nphase_ns=%" PRId64 "\nwritten_ns=%" PRId64 "\ndone=%" PRIu64
		       "\ntotal=%" PRIu64 "\nbytes=%" PRIu64 "\nbytes_total=%" PRIu64 "\n",
		       p->pid, p->host, p->seq, p->kind[0] ? p->kind : "sync", p->phase, p->start_ns,
		       p->phase_ns, p->written_ns, p->done, p->total, p->bytes, p->bytes_total);
	cut_buf_printf(out,
		       "src_ops_s=%" PRIu64 "\nsrc_bytes_s=%" PRIu64 "\nsrc_p50_ns=%" PRIu64
		       "\nsrc_p99_ns=%" PRIu64 "\nsrc_limit=%" PRIu64 "\nsrc_held_pm=%" PRIu64 "\n",
		       p->src_ops_s, p->src_bytes_s, p->src_p50_ns, p->src_p99_ns, p->src_limit,
		       p->src_held_pm);
}

/* ---- directories, rotation --------------------------------------------- */

int sync_dirs_create(const char *dir)
{
	static const char *const sub[] = {"manifests", "logs"};
	for (size_t i = 0; i < 2; i++) {
		char *p = sync_path(dir, sub[i]);
		if (mkdir(p, 0700) < 0 && errno != EEXIST) {
			CUT_SYSERR("%s: cannot create", p);
			free(p);
			return -1;
		}
		free(p);
	}
	return 0;
}

/* The pass number of a state file name "NNNNNN<rest>", or 0. */
static unsigned name_seq(const char *name, const char **rest)
{
	unsigned v = 0;
	int i = 0;
	for (; i < 6; i++) {
		if (name[i] < '0' || name[i] > '9')
			return 0;
		v = v * 10 + (unsigned)(name[i] - '0');
	}
	*rest = name + 6;
	return v;
}

unsigned sync_last_manifest(const char *dir, char rel[64])
{
	char *p = sync_path(dir, "manifests");
	DIR *d = opendir(p);
	free(p);
	unsigned best = 0;
	if (!d)
		return 0;
	struct dirent *de;
	while ((de = readdir(d))) {
		const char *rest;
		unsigned s = name_seq(de->d_name, &rest);
		if (s > best && strcmp(rest, ".cmf") == 0)
			best = s;
	}
	closedir(d);
	if (best)
		sync_rel_manifest(rel, best, NULL);
	return best;
}

static bool protected_rel(const char *sub, const char *name, const sync_tstate *t, const sync_pending *p)
{
	char rel[300];
	snprintf(rel, sizeof rel, "%s/%s", sub, name);
	if (t && strcmp(rel, t->base) == 0)
		return true;
	if (p && (strcmp(rel, p->log) == 0 || strcmp(rel, p->manifest) == 0 || strcmp(rel, p->base) == 0))
		return true;
	return false;
}

int sync_rotate(const char *dir, unsigned keep, unsigned newest, const sync_tstate *t,
		const sync_pending *p)
{
	static const char *const subs[] = {"manifests", "logs"};
	int removed = 0;
	if (keep == 0)
		keep = 1;
	for (size_t i = 0; i < 2; i++) {
		char *sp = sync_path(dir, subs[i]);
		DIR *d = opendir(sp);
		if (!d) {
			free(sp);
			continue;
		}
		struct dirent *de;
		while ((de = readdir(d))) {
			const char *rest;
			unsigned s = name_seq(de->d_name, &rest);
			/* A manifest's skeleton (format/skel.h) goes with it. */
			char own[256];
			snprintf(own, sizeof own, "%s", de->d_name);
			size_t ol = strlen(own), sl = strlen(FMT_SKEL_SUFFIX);
			if (ol > sl && strcmp(own + ol - sl, FMT_SKEL_SUFFIX) == 0)
				own[ol - sl] = 0;
			if (!s || s + keep > newest || protected_rel(subs[i], own, t, p))
				continue;
			/* The source manifest of the target's pass is kept too: the
			 * next incremental scan may need it. */
			if (t && s == t->seq && strcmp(own + (rest - de->d_name), ".cmf") == 0)
				continue;
			char *fp = sync_path(sp, de->d_name);
			if (unlinkat(dirfd(d), de->d_name, 0) == 0)
				removed++;
			else
				CUT_SYSWARN("%s: cannot remove", fp);
			free(fp);
		}
		closedir(d);
		free(sp);
	}
	return removed;
}

/* ---- history ------------------------------------------------------------ */

void sync_hist_format(const sync_hist *h, cut_buf *out)
{
	cut_buf_printf(out,
		       "seq=%u kind=%s start=%lld end=%lld scan_s=%.3f diff_s=%.3f replay_s=%.3f "
		       "check_s=%.3f entries=%" PRIu64 " ops=%" PRIu64 " created=%" PRIu64
		       " updated=%" PRIu64 " renamed=%" PRIu64 " linked=%" PRIu64 " deleted=%" PRIu64
		       " meta=%" PRIu64 " bytes=%" PRIu64 " drifted=%" PRIu64 " vanished=%" PRIu64
		       " skipped=%" PRIu64 " conflicts=%" PRIu64 " retried=%" PRIu64 " exit=%d verdict=%s"
		       " src_ops=%" PRIu64 " src_bytes=%" PRIu64 " src_ops_s=%.0f src_bytes_s=%.0f"
		       " src_p50_us=%.1f src_p99_us=%.1f src_held=%.3f",
		       h->seq, h->kind[0] ? h->kind : "-", (long long)h->start, (long long)h->end,
		       h->scan_s, h->diff_s, h->replay_s, h->check_s, h->entries, h->ops, h->created,
		       h->updated, h->renamed, h->linked, h->deleted, h->meta, h->bytes, h->drifted,
		       h->vanished, h->skipped, h->conflicts, h->retried, h->exit,
		       h->verdict[0] ? h->verdict : "-", h->src_ops, h->src_bytes, h->src_ops_s,
		       h->src_bytes_s, h->src_p50_us, h->src_p99_us, h->src_held);
}

int sync_hist_parse(const char *line, size_t len, sync_hist *h)
{
	memset(h, 0, sizeof *h);
	const char *p = line, *end = line + len;
	bool any = false;
	while (p < end) {
		while (p < end && *p == ' ')
			p++;
		const char *w = p;
		while (p < end && *p != ' ')
			p++;
		const char *eq = memchr(w, '=', (size_t)(p - w));
		if (!eq)
			continue;
		size_t kl = (size_t)(eq - w), vl = (size_t)(p - eq - 1);
		char v[64];
		if (vl >= sizeof v)
			return -1;
		memcpy(v, eq + 1, vl);
		v[vl] = 0;
		any = true;
#define U64(name)                                                                        \
	else if (key_is(w, kl, #name)) h->name = strtoull(v, NULL, 10);
#define DBL(name)                                                                        \
	else if (key_is(w, kl, #name)) h->name = strtod(v, NULL);
		if (key_is(w, kl, "seq"))
			h->seq = (unsigned)strtoul(v, NULL, 10);
		else if (key_is(w, kl, "kind"))
			snprintf(h->kind, sizeof h->kind, "%.15s", v);
		else if (key_is(w, kl, "verdict"))
			snprintf(h->verdict, sizeof h->verdict, "%.15s", v);
		else if (key_is(w, kl, "start"))
			h->start = strtoll(v, NULL, 10);
		else if (key_is(w, kl, "end"))
			h->end = strtoll(v, NULL, 10);
		else if (key_is(w, kl, "exit"))
			h->exit = (int)strtol(v, NULL, 10);
		DBL(scan_s) DBL(diff_s) DBL(replay_s) DBL(check_s)
		U64(entries) U64(ops) U64(created) U64(updated) U64(renamed) U64(linked) U64(deleted)
		U64(meta) U64(bytes) U64(drifted) U64(vanished) U64(skipped) U64(conflicts) U64(retried)
		U64(src_ops) U64(src_bytes) DBL(src_ops_s) DBL(src_bytes_s) DBL(src_p50_us)
		DBL(src_p99_us) DBL(src_held)
#undef U64
#undef DBL
	}
	return any ? 0 : -1;
}

int sync_append_durable(const char *path, const void *data, size_t len)
{
	int rc = -1;
	int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	if (fd < 0) {
		CUT_SYSERR("%s: cannot open", path);
		return -1;
	}
	int e = cut_write_all(fd, data, len);
	if (e < 0) {
		errno = -e;
		CUT_SYSERR("%s: write", path);
	} else if (fsync(fd) < 0) {
		CUT_SYSERR("%s: fsync", path);
	} else {
		rc = 0;
	}
	close(fd);
	return rc;
}

int sync_hist_append(const char *dir, const sync_hist *h)
{
	char *p = sync_path(dir, "history");
	cut_buf b = {0};
	sync_hist_format(h, &b);
	cut_buf_putc(&b, '\n');
	int rc = sync_append_durable(p, b.p, b.len);
	cut_buf_free(&b);
	free(p);
	return rc;
}

int sync_hist_record(const char *dir, const sync_hist *h)
{
	if (sync_hist_append(dir, h) == 0)
		return 0;
	CUT_ERR("%s pass %u is done and committed, but its line in %s/history could not be written "
		"(above): `cutover status` does not show it", h->kind, h->seq, dir);
	return -1;
}

int sync_hist_read(const char *dir, size_t max, sync_hist **v, size_t *n)
{
	*v = NULL;
	*n = 0;
	char *p = sync_path(dir, "history");
	FILE *f = fopen(p, "r");
	free(p);
	if (!f)
		return errno == ENOENT ? 0 : -1;
	size_t cap = max ? max : 1;
	sync_hist *ring = cut_calloc(cap, sizeof *ring);
	size_t total = 0;
	char *line = NULL;
	size_t lcap = 0;
	ssize_t ll;
	while ((ll = getline(&line, &lcap, f)) > 0) {
		sync_hist h;
		if (sync_hist_parse(line, (size_t)ll - (line[ll - 1] == '\n'), &h) < 0)
			continue;
		ring[total % cap] = h;
		total++;
	}
	free(line);
	fclose(f);
	size_t cnt = total < cap ? total : cap;
	sync_hist *out = cut_calloc(cnt ? cnt : 1, sizeof *out);
	for (size_t i = 0; i < cnt; i++)
		out[i] = ring[(total - cnt + i) % cap];
	free(ring);
	*v = out;
	*n = cnt;
	return 0;
}
