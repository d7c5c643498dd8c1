/*
 * report.c - the parity audit of two manifests (see report.h,
 * docs/DIFF.md "report").
 *
 * One merge-join in canonical order classifies each path: missing (only in
 * A), extra (only in B), content (type, size, hash, symlink target, device
 * number differ), metadata (only mode, owner, times differ).  Since a
 * subtree is contiguous in canonical order, per-group counts (--by-depth) are
 * finished group by group as the join goes.  Hard-link structure (which paths
 * share an inode) is compared rather than raw nlink: each side's multi-link
 * files go through an external sorter by inode, each group names its first
 * path as representative, and the (path, representative) lists of both sides
 * are joined by path.  Memory: the sorters' limit, the examples, and one line
 * per group that differs.
 */
#include "diff/report.h"
#include "base/limits.h"

#include <stdlib.h>

#include "diff/diff_item.h"
#include "base/json.h"
#include "format/manifest.h"
#include "format/path.h"

static const char *const field_names[] = {"type", "size", "hash", "target", "mode", "uid",
					  "gid", "mtime", "dir-mtime", "nlink", "links", "ctime",
					  "ino", "dev", "rdev", "atime"};
#define NFIELDS (sizeof field_names / sizeof field_names[0])

int diff_report_parse_fields(const char *list, unsigned *mask)
{
	const char *p = list;
	while (*p) {
		size_t n = strcspn(p, ",");
		unsigned i;
		for (i = 0; i < NFIELDS; i++)
			if (strlen(field_names[i]) == n && !memcmp(field_names[i], p, n))
				break;
		if (i == NFIELDS && n == 5 && !memcmp(p, "inode", 5))
			i = 12;
		if (i == NFIELDS && n == 5 && !memcmp(p, "owner", 5)) {
			*mask |= RF_UID | RF_GID;
		} else if (i == NFIELDS) {
			CUT_ERR("--ignore: unknown field '%.*s' (known: type size hash target mode uid "
				"gid owner mtime dir-mtime nlink links ctime ino dev rdev atime)", (int)n, p);
			return -1;
		} else {
			*mask |= 1u << i;
		}
		p += n;
		if (*p == ',')
			p++;
	}
	return 0;
}

enum { K_MISSING, K_EXTRA, K_CONTENT, K_META, K_N };
static const char *const kind_names[] = {"missing", "extra", "content", "metadata"};

typedef struct counts {
	uint64_t n[K_N], bytes[K_N];
} counts;

typedef struct rep {
	const diff_report_opts *o;
	counts total;
	uint64_t links_differ;
	cut_buf ex[K_N + 1];      /* example lines (text) or JSON objects */
	unsigned nex[K_N + 1];
	cut_buf group;            /* current group key */
	bool in_group;
	counts g;
	diff_sorter *groups;      /* finished group lines / objects, in order (spills) */
	uint64_t ngroups;
	diff_sorter *la, *lb;     /* multi-link files of A and B, by inode */
	size_t list_limit;        /* each list's share of the memory limit */
	bool failed;              /* a group could not be kept (logged) */
} rep;

/* ------------------------------------------------------------ formatting */

static int64_t trunc_ns(int64_t t, int64_t g)
{
	if (g <= 1)
		return t;
	int64_t q = t / g;
	if (t % g < 0)
		q--;
	return q * g;
}

/* The fields in which a and b differ (RF_* mask, ignoring o->ignore). */
static unsigned fields_differ(const diff_report_opts *o, const fmt_entry *a, const fmt_entry *b)
{
	unsigned d = 0;
	if (a->type != b->type)
		return RF_TYPE;
	if (a->type == FMT_T_FILE && a->size != b->size)
		d |= RF_SIZE;
	if ((a->flags & FMT_E_HASH) && (b->flags & FMT_E_HASH) && memcmp(a->hash, b->hash, 16))
		d |= RF_HASH;
	if (a->type == FMT_T_SYMLINK &&
	    (a->target_len != b->target_len || memcmp(a->target, b->target, a->target_len)))
		d |= RF_TARGET;
	if ((a->type == FMT_T_CHR || a->type == FMT_T_BLK) && a->rdev != b->rdev)
		d |= RF_RDEV;
	if (a->mode != b->mode && a->type != FMT_T_SYMLINK)
		d |= RF_MODE;
	if (a->uid != b->uid)
		d |= RF_UID;
	if (a->gid != b->gid)
		d |= RF_GID;
	if (trunc_ns(a->mtime_ns, o->mtime_gran_ns) != trunc_ns(b->mtime_ns, o->mtime_gran_ns))
		d |= a->type == FMT_T_DIR ? RF_DIRMTIME : RF_MTIME;
	if (a->ctime_ns != b->ctime_ns)
		d |= RF_CTIME;
	if (a->ino != b->ino)
		d |= RF_INO;
	if (a->dev != b->dev)
		d |= RF_DEV;
	if (a->nlink != b->nlink && a->type != FMT_T_DIR)
		d |= RF_NLINK;
	if ((o->ignore & RF_MTIME) && a->type == FMT_T_DIR)
		d &= ~RF_DIRMTIME;
	return d & ~o->ignore;
}

#define RF_CONTENT (RF_TYPE | RF_SIZE | RF_HASH | RF_TARGET | RF_RDEV)

static void fields_text(cut_buf *b, const fmt_entry *a, const fmt_entry *e, unsigned d)
{
	if (d & RF_TYPE)
		cut_buf_printf(b, " type %s/%s", fmt_type_name(a->type), fmt_type_name(e->type));
	if (d & RF_SIZE)
		cut_buf_printf(b, " size %llu/%llu", (unsigned long long)a->size, (unsigned long long)e->size);
	if (d & RF_MODE)
		cut_buf_printf(b, " mode %o/%o", a->mode, e->mode);
	if (d & RF_UID)
		cut_buf_printf(b, " uid %u/%u", a->uid, e->uid);
	if (d & RF_GID)
		cut_buf_printf(b, " gid %u/%u", a->gid, e->gid);
	if (d & (RF_MTIME | RF_DIRMTIME))
		cut_buf_printf(b, " mtime %lld/%lld", (long long)a->mtime_ns, (long long)e->mtime_ns);
	for (unsigned i = 0; i < NFIELDS; i++)
		if ((d & (1u << i)) && !((1u << i) & (RF_TYPE | RF_SIZE | RF_MODE | RF_UID | RF_GID |
						       RF_MTIME | RF_DIRMTIME)))
			cut_buf_printf(b, " %s", field_names[i]);
}

static void example(rep *r, int kind, const char *path, size_t len, const fmt_entry *a,
		    const fmt_entry *b, unsigned d)
{
	if (r->nex[kind] >= r->o->max_examples)
		return;
	r->nex[kind]++;
	cut_buf *x = &r->ex[kind];
	if (r->o->json) {
		if (x->len)
			cut_buf_putc(x, ',');
		cut_buf_printf(x, "{\"kind\":\"%s\",\"path\":", kind < K_N ? kind_names[kind] : "links");
		cut_json_str(x, path, len);
		if (d) {
			cut_buf_printf(x, ",\"fields\":[");
			bool first = true;
			for (unsigned i = 0; i < NFIELDS; i++)
				if (d & (1u << i)) {
					cut_buf_printf(x, "%s\"%s\"", first ? "" : ",", field_names[i]);
					first = false;
				}
			cut_buf_putc(x, ']');
		}
		cut_buf_putc(x, '}');
		return;
	}
	cut_buf_printf(x, "  %-8s %.*s", kind < K_N ? kind_names[kind] : "links", (int)len, path);
	if (a && b)
		fields_text(x, a, b, d);
	cut_buf_putc(x, '\n');
}

/* ------------------------------------------------------------------ groups */

/* Ends the current group; a group that differs gets its line (text) or
 * object (JSON) in r->groups, which keeps them in order and spills past its
 * limit: a store can have millions of groups.  0 or -1 (logged). */
static int group_flush(rep *r)
{
	if (!r->in_group)
		return 0;
	r->in_group = false;
	bool any = false;
	for (int k = 0; k < K_N; k++)
		any |= r->g.n[k] != 0;
	if (!any)
		return 0;
	cut_buf line = {0}, *b = &line;
	if (r->o->json) {
		if (r->ngroups)
			cut_buf_putc(b, ',');
		cut_buf_printf(b, "{\"group\":");
		cut_json_str(b, (const char *)r->group.p, r->group.len);
		for (int k = 0; k < K_N; k++)
			cut_buf_printf(b, ",\"%s\":{\"count\":%llu,\"bytes\":%llu}", kind_names[k],
				       (unsigned long long)r->g.n[k], (unsigned long long)r->g.bytes[k]);
		cut_buf_putc(b, '}');
	} else {
		cut_buf_printf(b, "  %-32.*s", (int)r->group.len, (const char *)r->group.p);
		for (int k = 0; k < K_N; k++)
			cut_buf_printf(b, " %s %llu (%llu B)", kind_names[k],
				       (unsigned long long)r->g.n[k], (unsigned long long)r->g.bytes[k]);
		cut_buf_putc(b, '\n');
	}
	diff_item it = {.seq = r->ngroups++};
	it.c.e.path = (const char *)line.p;
	it.c.e.path_len = (uint32_t)line.len;
	int rc = diff_sorter_add(r->groups, &it);
	cut_buf_free(&line);
	return rc;
}

/* Length of the group key of path: its first by_depth components. */
static size_t group_len(const char *p, size_t len, unsigned depth)
{
	size_t i = 0;
	for (unsigned d = 0; d < depth && i < len; d++) {
		const char *s = memchr(p + i, '/', len - i);
		if (!s)
			return len;
		i = (size_t)(s - p) + (d + 1 < depth ? 1 : 0);
	}
	return i;
}

static void count(rep *r, int kind, const char *path, size_t len, uint64_t bytes)
{
	r->total.n[kind]++;
	r->total.bytes[kind] += bytes;
	if (!r->o->by_depth)
		return;
	size_t gl = group_len(path, len, r->o->by_depth);
	if (!r->in_group || gl != r->group.len || memcmp(r->group.p, path, gl)) {
		if (group_flush(r) < 0)
			r->failed = true;
		r->group.len = 0;
		cut_buf_put(&r->group, path, gl);
		memset(&r->g, 0, sizeof r->g);
		r->in_group = true;
	}
	r->g.n[kind]++;
	r->g.bytes[kind] += bytes;
}

/* ------------------------------------------------------------ link shape */

static int link_keep(rep *r, diff_sorter *s, const fmt_entry *e)
{
	if (e->type != FMT_T_FILE || (e->nlink == 1 && !(e->flags & FMT_E_CARRIED)) || !e->ino)
		return 0;
	diff_item it = {0};
	it.c.e = *e;
	it.c.e.target = NULL;
	(void)r;
	return diff_sorter_add(s, &it);
}

/* Turns a sorter of files by inode into one of (path, representative) for
 * the members that are not their group's first path.  Returns the new
 * sorter or NULL. */
static diff_sorter *link_reps(rep *r, diff_sorter *s, const char *name)
{
	diff_sorter *out = diff_sorter_new(name, diff_cmp_path, r->list_limit, r->o->tmpdir);
	if (!out || diff_sorter_sort(s) < 0)
		goto fail;
	diff_item it;
	int h;
	cut_buf first = {0};
	uint64_t dev = 0, ino = 0;
	bool have = false;
	while ((h = diff_sorter_next(s, &it)) > 0) {
		if (!have || it.c.e.dev != dev || it.c.e.ino != ino) {
			have = true;
			dev = it.c.e.dev;
			ino = it.c.e.ino;
			first.len = 0;
			cut_buf_put(&first, it.c.e.path, it.c.e.path_len);
			continue;
		}
		diff_item o = {0};
		o.c.e.path = it.c.e.path;
		o.c.e.path_len = it.c.e.path_len;
		o.c.e.type = FMT_T_FILE;
		o.p2 = (const char *)first.p;
		o.p2_len = (uint32_t)first.len;
		if (diff_sorter_add(out, &o) < 0) {
			cut_buf_free(&first);
			goto fail;
		}
	}
	cut_buf_free(&first);
	if (h < 0 || diff_sorter_sort(out) < 0)
		goto fail;
	return out;
fail:
	diff_sorter_free(out);
	return NULL;
}

/* Compares the link structure of the paths present on both sides.
 * both_paths: only paths of A that are also in B count; approximated by
 * checking the representative: a path whose representative differs. */
static int links_compare(rep *r)
{
	int rc = -1;
	diff_sorter *a = link_reps(r, r->la, "report-links-a"), *b = NULL;
	if (!a || !(b = link_reps(r, r->lb, "report-links-b")))
		goto out;
	diff_item x, y;
	int hx = diff_sorter_next(a, &x), hy = diff_sorter_next(b, &y);
	while (hx > 0 || hy > 0) {
		int c = hx <= 0 ? 1 : hy <= 0 ? -1 : fmt_path_cmp(x.c.e.path, x.c.e.path_len, y.c.e.path, y.c.e.path_len);
		bool differ = c != 0 || x.p2_len != y.p2_len || memcmp(x.p2, y.p2, x.p2_len);
		const diff_item *p = c <= 0 ? &x : &y;
		if (differ) {
			r->links_differ++;
			example(r, K_N, p->c.e.path, p->c.e.path_len, NULL, NULL, 0);
		}
		if (c <= 0)
			hx = diff_sorter_next(a, &x);
		if (c >= 0)
			hy = diff_sorter_next(b, &y);
		if (hx < 0 || hy < 0)
			goto out;
	}
	rc = 0;
out:
	diff_sorter_free(a);
	diff_sorter_free(b);
	return rc;
}

/* ------------------------------------------------------------------- run */

static void header_json(cut_buf *b, const char *key, fmt_mreader *m)
{
	const fmt_mheader *h = fmt_mreader_header(m);
	char id[2 * FMT_ID_LEN + 1];
	cut_hex(id, fmt_mreader_id(m), FMT_ID_LEN);
	cut_buf_printf(b, "\"%s\":{\"file\":", key);
	cut_json_str(b, fmt_mreader_path(m), strlen(fmt_mreader_path(m)));
	cut_buf_printf(b, ",\"root\":");
	cut_json_str(b, h->root, strlen(h->root));
	cut_buf_printf(b, ",\"id\":\"%s\",\"entries\":%llu,\"bytes\":%llu,\"errors\":%llu}", id,
		       (unsigned long long)h->entries, (unsigned long long)h->bytes,
		       (unsigned long long)h->errors);
}

/* Writes what out holds, then the group lines in order, to o->out; out is
 * emptied for what follows.  0 or -1 (logged). */
static int groups_write(rep *r, cut_buf *out)
{
	fwrite(out->p, 1, out->len, r->o->out);
	out->len = 0;
	if (diff_sorter_sort(r->groups) < 0)
		return -1;
	diff_item it;
	int h;
	while ((h = diff_sorter_next(r->groups, &it)) > 0)
		fwrite(it.c.e.path, 1, it.c.e.path_len, r->o->out);
	return h;
}

/* One path present on both sides: counts and records it if its fields
 * differ, and keeps it for the link shape when links are compared and both
 * inodes are known.  0 or -1 (logged). */
static int join_pair(rep *r, const fmt_entry *x, const fmt_entry *y, bool links)
{
	unsigned d = fields_differ(r->o, x, y);
	if (d) {
		int k = (d & RF_CONTENT) ? K_CONTENT : K_META;
		count(r, k, y->path, y->path_len, y->type == FMT_T_FILE ? y->size : 0);
		example(r, k, y->path, y->path_len, x, y, d);
	}
	/* Inode 0 in A is an unknown identity (a name sync re-bases
	 * for its next pass to copy and link again, sync/base.c):
	 * no link shape to compare, on either side. */
	if (links && x->ino && y->ino &&
	    (link_keep(r, r->la, x) < 0 || link_keep(r, r->lb, y) < 0))
		return -1;
	return 0;
}

/* The merge-join of a and b in canonical order: classifies and counts every
 * path into r.  0 or -1 (logged where it arose). */
static int join_run(rep *r, fmt_mreader *a, fmt_mreader *b, bool links)
{
	fmt_entry x, y;
	int hx = fmt_mreader_next(a, &x), hy = fmt_mreader_next(b, &y);
	while (hx > 0 || hy > 0) {
		int c = hx <= 0 ? 1 : hy <= 0 ? -1 : fmt_path_cmp(x.path, x.path_len, y.path, y.path_len);
		if (c < 0) {
			count(r, K_MISSING, x.path, x.path_len, x.type == FMT_T_FILE ? x.size : 0);
			example(r, K_MISSING, x.path, x.path_len, NULL, NULL, 0);
		} else if (c > 0) {
			count(r, K_EXTRA, y.path, y.path_len, y.type == FMT_T_FILE ? y.size : 0);
			example(r, K_EXTRA, y.path, y.path_len, NULL, NULL, 0);
		} else if (join_pair(r, &x, &y, links) < 0) {
			return -1;
		}
		if (c <= 0)
			hx = fmt_mreader_next(a, &x);
		if (c >= 0)
			hy = fmt_mreader_next(b, &y);
		if (hx < 0 || hy < 0)
			return -1;
	}
	return 0;
}

/* Appends the JSON report to out (the groups go straight to o->out, after
 * what out holds, by groups_write).  0 or -1 (logged). */
static int summary_json(rep *r, cut_buf *out, fmt_mreader *a, fmt_mreader *b, bool parity)
{
	const diff_report_opts *o = r->o;
	cut_buf_printf(out, "{\"parity\":%s,", parity ? "true" : "false");
	header_json(out, "a", a);
	cut_buf_putc(out, ',');
	header_json(out, "b", b);
	cut_buf_printf(out, ",\"ignored\":[");
	bool first = true;
	for (unsigned i = 0; i < NFIELDS; i++)
		if (o->ignore & (1u << i)) {
			cut_buf_printf(out, "%s\"%s\"", first ? "" : ",", field_names[i]);
			first = false;
		}
	cut_buf_printf(out, "],\"mtime_granularity_ns\":%lld,\"totals\":{",
		       (long long)(o->mtime_gran_ns > 1 ? o->mtime_gran_ns : 1));
	for (int k = 0; k < K_N; k++)
		cut_buf_printf(out, "\"%s\":{\"count\":%llu,\"bytes\":%llu},", kind_names[k],
			       (unsigned long long)r->total.n[k], (unsigned long long)r->total.bytes[k]);
	cut_buf_printf(out, "\"links\":{\"count\":%llu}},\"examples\":[",
		       (unsigned long long)r->links_differ);
	first = true;
	for (int k = 0; k <= K_N; k++)
		if (r->ex[k].len) {
			if (!first)
				cut_buf_putc(out, ',');
			cut_buf_put(out, r->ex[k].p, r->ex[k].len);
			first = false;
		}
	cut_buf_printf(out, "]");
	if (o->by_depth) {
		cut_buf_printf(out, ",\"by_depth\":%u,\"groups\":[", o->by_depth);
		if (groups_write(r, out) < 0)
			return -1;
		cut_buf_printf(out, "]");
	}
	cut_buf_printf(out, "}\n");
	return 0;
}

/* Appends the text report to out (the groups go straight to o->out, after
 * what out holds, by groups_write).  0 or -1 (logged). */
static int summary_text(rep *r, cut_buf *out, fmt_mreader *a, fmt_mreader *b, bool links,
			bool parity)
{
	const diff_report_opts *o = r->o;
	const fmt_mheader *ha = fmt_mreader_header(a), *hb = fmt_mreader_header(b);
	cut_buf_printf(out, "A: %s (%s, %llu entries)\nB: %s (%s, %llu entries)\n", o->a, ha->root,
		       (unsigned long long)ha->entries, o->b, hb->root,
		       (unsigned long long)hb->entries);
	static const char *const what[] = {"in A, not in B", "in B, not in A",
					   "content differs", "metadata differs only"};
	for (int k = 0; k < K_N; k++)
		cut_buf_printf(out, "%-9s %10llu entries %16llu bytes  (%s)\n", kind_names[k],
			       (unsigned long long)r->total.n[k], (unsigned long long)r->total.bytes[k],
			       what[k]);
	cut_buf_printf(out, "%-9s %10llu paths   %16s        (%s)\n", "links",
		       (unsigned long long)r->links_differ, "",
		       links ? "share an inode with other paths on one side only" : "not compared");
	bool any = false;
	for (int k = 0; k <= K_N; k++)
		any |= r->ex[k].len != 0;
	if (any) {
		cut_buf_printf(out, "first differences (A/B), at most %u of each kind:\n", o->max_examples);
		for (int k = 0; k <= K_N; k++)
			cut_buf_put(out, r->ex[k].p, r->ex[k].len);
	}
	if (o->by_depth && r->ngroups) {
		cut_buf_printf(out, "groups that differ (depth %u): %llu\n", o->by_depth,
			       (unsigned long long)r->ngroups);
		if (groups_write(r, out) < 0)
			return -1;
	}
	cut_buf_printf(out, "%s\n", parity ? "parity" : "differ");
	return 0;
}

int diff_report(const diff_report_opts *o)
{
	rep r = {.o = o};
	int rc = -1;
	cut_buf out = {0};
	fmt_mreader *a = fmt_mreader_open(o->a), *b = NULL;
	if (!a || !(b = fmt_mreader_open(o->b)))
		goto out;
	r.list_limit = (o->mem_limit ? o->mem_limit : DIFF_MEM_LIMIT_DEFAULT) / 4;
	bool links = !(o->ignore & RF_LINKS);
	r.la = diff_sorter_new("report-a", diff_cmp_inode, r.list_limit, o->tmpdir);
	r.lb = diff_sorter_new("report-b", diff_cmp_inode, r.list_limit, o->tmpdir);
	r.groups = diff_sorter_new("report-groups", diff_cmp_seq, r.list_limit, o->tmpdir);
	if (!r.la || !r.lb || !r.groups)
		goto out;
	if (join_run(&r, a, b, links) < 0)
		goto out;
	if (group_flush(&r) < 0 || r.failed)
		goto out;
	if (links && links_compare(&r) < 0)
		goto out;
	bool parity = !r.links_differ;
	for (int k = 0; k < K_N; k++)
		parity &= r.total.n[k] == 0;
	int w = o->json ? summary_json(&r, &out, a, b, parity) :
			  summary_text(&r, &out, a, b, links, parity);
	if (w < 0)
		goto out;
	fwrite(out.p, 1, out.len, o->out);
	rc = parity ? 0 : 1;
out:
	cut_buf_free(&out);
	for (int k = 0; k <= K_N; k++)
		cut_buf_free(&r.ex[k]);
	cut_buf_free(&r.group);
	diff_sorter_free(r.groups);
	diff_sorter_free(r.la);
	diff_sorter_free(r.lb);
	fmt_mreader_close(a);
	fmt_mreader_close(b);
	return rc;
}
