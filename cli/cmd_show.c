/*
 * cmd_show.c - `cutover show`: prints a manifest or a change log as text,
 * jsonl, or (manifests) a BSD mtree spec.
 */
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "base/json.h"
#include "format/changes.h"
#include "format/manifest.h"

static const char usage[] =
	"usage: cutover show FILE [--format text|jsonl|mtree]\n"
	"\n"
	"Prints a manifest or a change log (recognised by its magic).\n"
	"  text   a header, then one line per entry or operation (default)\n"
	"  jsonl  a header object (key \"manifest\" or \"changes\"), then one object per\n"
	"         entry: path, type, mode, uid, gid, size, mtime_ns, ctime_ns, ino, nlink,\n"
	"         hash (hex or null), target (symlinks); per operation: op, path, to,\n"
	"         type, size, mode, uid, gid, mtime_ns, hash, old.  Bytes that are not\n"
	"         UTF-8 are written as \\udcXX (Python's surrogateescape).\n"
	"  mtree  a BSD mtree spec of a manifest: `mtree -f SPEC -p DIR` checks a tree\n"
	"Exit: 0, or 2 when the file is not valid (nothing printed after the damage).\n";

enum { F_TEXT, F_JSONL, F_MTREE };

/* Text and mtree names: printable ASCII as is, other bytes as \ooo (vis(3)
 * octal style); in mtree specs also the characters mtree treats specially. */
static bool vis_mtree;

static void put_vis(FILE *f, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c <= 0x20 || c >= 0x7f || c == '\\' ||
		    (vis_mtree && (c == '#' || c == '*' || c == '?' || c == '[' || c == ']' || c == '=')))
			fprintf(f, "\\%03o", c);
		else
			putc(c, f);
	}
}

static void put_time(FILE *f, int64_t ns)
{
	int64_t s = ns / CUT_NS_PER_S, r = ns % CUT_NS_PER_S;
	if (r < 0)
		s--, r += CUT_NS_PER_S;
	fprintf(f, "%" PRId64 ".%09" PRId64, s, r);
}

static void put_iso(FILE *f, int64_t ns)
{
	time_t t = (time_t)(ns / CUT_NS_PER_S);
	struct tm tm;
	char b[64];
	gmtime_r(&t, &tm);
	strftime(b, sizeof b, "%Y-%m-%dT%H:%M:%SZ", &tm);
	fputs(b, f);
}

static void put_id(FILE *f, const uint8_t *id)
{
	char hex[2 * FMT_ID_LEN + 1];
	cut_hex(hex, id, FMT_ID_LEN);
	fputs(hex, f);
}

static void json_kv_str(FILE *f, const char *k, const char *v, bool comma)
{
	fprintf(f, "%s\"%s\":", comma ? "," : "", k);
	cut_json_fstr(f, v, strlen(v));
}

static void json_entry_fields(FILE *f, const fmt_entry *e)
{
	fprintf(f, ",\"type\":\"%s\",\"mode\":%u,\"uid\":%u,\"gid\":%u,\"size\":%" PRIu64
		   ",\"mtime_ns\":%" PRId64,
		fmt_type_name(e->type), e->mode, e->uid, e->gid, e->size, e->mtime_ns);
	if (e->flags & FMT_E_HASH) {
		char hex[33];
		cut_hex(hex, e->hash, 16);
		fprintf(f, ",\"hash\":\"%s\"", hex);
	} else {
		fputs(",\"hash\":null", f);
	}
	if (e->type == FMT_T_SYMLINK) {
		fputs(",\"target\":", f);
		cut_json_fstr(f, e->target, e->target_len);
	}
}

static void manifest_header_jsonl(FILE *f, const fmt_mreader *r)
{
	const fmt_mheader *h = fmt_mreader_header(r);
	fputs("{\"manifest\":{\"id\":\"", f);
	put_id(f, fmt_mreader_id(r));
	fputc('"', f);
	json_kv_str(f, "root", h->root, true);
	json_kv_str(f, "host", h->host, true);
	fprintf(f, ",\"start_ns\":%" PRId64 ",\"end_ns\":%" PRId64, h->start_ns, h->end_ns);
	json_kv_str(f, "options", h->options, true);
	json_kv_str(f, "policy", h->policy, true);
	fprintf(f, ",\"entries\":%" PRIu64 ",\"bytes\":%" PRIu64 ",\"errors\":%" PRIu64,
		h->entries, h->bytes, h->errors);
	if (h->has_prev) {
		fputs(",\"prev_id\":\"", f);
		put_id(f, h->prev_id);
		fputc('"', f);
	}
	if (h->stats)
		json_kv_str(f, "stats", h->stats, true);
	fputs("}}\n", f);
}

static void manifest_header_text(FILE *f, const fmt_mreader *r)
{
	const fmt_mheader *h = fmt_mreader_header(r);
	fputs("# cutover manifest ", f);
	put_id(f, fmt_mreader_id(r));
	fprintf(f, "\n# root: %s\n# host: %s\n# scan: ", h->root, h->host);
	put_iso(f, h->start_ns);
	fputs(" .. ", f);
	put_iso(f, h->end_ns);
	fprintf(f, "\n# options: %s\n# policy: %s\n", h->options, *h->policy ? h->policy : "(none)");
	if (h->has_prev) {
		fputs("# previous: ", f);
		put_id(f, h->prev_id);
		fputc('\n', f);
	}
	fprintf(f, "# entries: %" PRIu64 ", bytes: %" PRIu64 ", unreadable: %" PRIu64 "\n",
		h->entries, h->bytes, h->errors);
	if (h->stats)
		fprintf(f, "# stats: %s\n", h->stats);
}

static void entry_jsonl(FILE *f, const fmt_entry *e)
{
	fputs("{\"path\":", f);
	cut_json_fstr(f, e->path, e->path_len);
	json_entry_fields(f, e);
	fprintf(f, ",\"ctime_ns\":%" PRId64 ",\"ino\":%" PRIu64 ",\"nlink\":%u", e->ctime_ns,
		e->ino, e->nlink);
	if (e->flags & FMT_E_CARRIED)
		fputs(",\"carried\":true", f);
	fputs("}\n", f);
}

static void entry_text(FILE *f, const fmt_entry *e)
{
	fprintf(f, "%-7s %04o %u:%u %" PRIu64 " ", fmt_type_name(e->type), e->mode, e->uid, e->gid,
		e->size);
	put_time(f, e->mtime_ns);
	fprintf(f, " %u ", e->nlink);
	put_vis(f, e->path_len ? e->path : ".", e->path_len ? e->path_len : 1);
	if (e->type == FMT_T_SYMLINK) {
		fputs(" -> ", f);
		put_vis(f, e->target, e->target_len);
	}
	if (e->flags & FMT_E_HASH) {
		char hex[33];
		cut_hex(hex, e->hash, 16);
		fprintf(f, " %s", hex);
	}
	fputc('\n', f);
}

static void entry_mtree(FILE *f, const fmt_entry *e)
{
	static const char *const mt[] = {NULL, "file", "dir", "link", "fifo", "socket", "char", "block"};
	fputs(e->path_len ? "./" : ".", f);
	put_vis(f, e->path, e->path_len);
	fprintf(f, " type=%s mode=%04o uid=%u gid=%u", mt[e->type], e->mode, e->uid, e->gid);
	/* Directory sizes and link counts depend on the file system, not on
	 * the tree: left out so that a copy can match. */
	if (e->type != FMT_T_DIR) {
		fprintf(f, " nlink=%u", e->nlink);
		if (e->type == FMT_T_FILE)
			fprintf(f, " size=%" PRIu64, e->size);
	}
	if (e->type != FMT_T_SYMLINK) {
		fputs(" time=", f);
		put_time(f, e->mtime_ns);
	} else {
		fputs(" link=", f);
		put_vis(f, e->target, e->target_len);
	}
	fputc('\n', f);
}

static int show_manifest(const char *path, int format)
{
	fmt_mreader *r = fmt_mreader_open(path);
	if (!r)
		return CLI_EXIT_ERROR;
	FILE *f = stdout;
	void (*entry)(FILE *, const fmt_entry *) = entry_text;
	if (format == F_JSONL) {
		manifest_header_jsonl(f, r);
		entry = entry_jsonl;
	} else if (format == F_TEXT) {
		manifest_header_text(f, r);
	} else {
		vis_mtree = true;
		fprintf(f, "#mtree\n# cutover manifest of %s\n", fmt_mreader_header(r)->root);
		entry = entry_mtree;
	}
	fmt_entry e;
	int rc;
	while ((rc = fmt_mreader_next(r, &e)) > 0)
		entry(f, &e);
	fmt_mreader_close(r);
	if (fflush(f) != 0)
		return CLI_EXIT_ERROR;
	return rc < 0 ? CLI_EXIT_ERROR : CLI_EXIT_OK;
}

static int show_changes(const char *path, int format)
{
	fmt_creader *r = fmt_creader_open(path);
	if (!r)
		return CLI_EXIT_ERROR;
	const fmt_cheader *h = fmt_creader_header(r);
	FILE *f = stdout;
	if (format == F_JSONL) {
		fputs("{\"changes\":{\"id\":\"", f);
		put_id(f, fmt_creader_id(r));
		fputc('"', f);
		json_kv_str(f, "source", h->source, true);
		if (h->has_old) {
			fputs(",\"old_id\":\"", f);
			put_id(f, h->old_id);
			fputc('"', f);
		} else {
			fputs(",\"old_id\":null", f);
		}
		fputs(",\"new_id\":\"", f);
		put_id(f, h->new_id);
		fprintf(f, "\",\"created_ns\":%" PRId64 ",\"records\":%" PRIu64 ",\"ops\":{",
			h->created_ns, h->records);
		for (int i = 1; i <= FMT_OP_MAX; i++)
			fprintf(f, "%s\"%s\":{\"count\":%" PRIu64 ",\"bytes\":%" PRIu64 "}",
				i > 1 ? "," : "", fmt_op_name((unsigned)i), h->ops[i], h->bytes[i]);
		fputs("}}}\n", f);
	} else {
		fputs("# cutover change log ", f);
		put_id(f, fmt_creader_id(r));
		fprintf(f, "\n# source: %s\n# from: ", h->source);
		if (h->has_old)
			put_id(f, h->old_id);
		else
			fputs("(empty)", f);
		fputs("\n# to:   ", f);
		put_id(f, h->new_id);
		fprintf(f, "\n# records: %" PRIu64 "\n", h->records);
		for (int i = 1; i <= FMT_OP_MAX; i++)
			if (h->ops[i])
				fprintf(f, "#   %-8s %" PRIu64 " (%" PRIu64 " bytes)\n",
					fmt_op_name((unsigned)i), h->ops[i], h->bytes[i]);
	}
	fmt_change c;
	int rc;
	while ((rc = fmt_creader_next(r, &c)) > 0) {
		if (format == F_JSONL) {
			fprintf(f, "{\"op\":\"%s\",\"path\":", fmt_op_name(c.op));
			cut_json_fstr(f, c.e.path, c.e.path_len);
			if (c.to) {
				fputs(",\"to\":", f);
				cut_json_fstr(f, c.to, c.to_len);
			}
			json_entry_fields(f, &c.e);
			if (c.flags & FMT_C_OLD)
				fprintf(f, ",\"old\":{\"type\":\"%s\",\"size\":%" PRIu64 ",\"mtime_ns\":%" PRId64 "}",
					fmt_type_name(c.old.type), c.old.size, c.old.mtime_ns);
			fputs("}\n", f);
		} else {
			fprintf(f, "%-7s ", fmt_op_name(c.op));
			put_vis(f, c.e.path_len ? c.e.path : ".", c.e.path_len ? c.e.path_len : 1);
			if (c.to) {
				fputs(" => ", f);
				put_vis(f, c.to, c.to_len);
			}
			fprintf(f, "  [%s %04o %u:%u %" PRIu64 " ", fmt_type_name(c.e.type), c.e.mode,
				c.e.uid, c.e.gid, c.e.size);
			put_time(f, c.e.mtime_ns);
			fputs("]\n", f);
		}
	}
	fmt_creader_close(r);
	if (fflush(f) != 0)
		return CLI_EXIT_ERROR;
	return rc < 0 ? CLI_EXIT_ERROR : CLI_EXIT_OK;
}

static int run(int argc, char **argv)
{
	static const struct option opts[] = {
		{"format", required_argument, NULL, 'f'},
		{NULL, 0, NULL, 0},
	};
	int format = F_TEXT, c;
	while ((c = getopt_long(argc, argv, "f:", opts, NULL)) != -1) {
		if (c != 'f')
			return cli_usage(&cmd_show);
		if (strcmp(optarg, "text") == 0)
			format = F_TEXT;
		else if (strcmp(optarg, "jsonl") == 0)
			format = F_JSONL;
		else if (strcmp(optarg, "mtree") == 0)
			format = F_MTREE;
		else
			return cli_usage(&cmd_show);
	}
	if (optind != argc - 1)
		return cli_usage(&cmd_show);
	const char *path = argv[optind];
	char magic[FMT_MAGIC_LEN] = {0};
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		CUT_SYSERR("%s: cannot open", path);
		return CLI_EXIT_ERROR;
	}
	ssize_t n = read(fd, magic, sizeof magic);
	close(fd);
	if (n == (ssize_t)sizeof magic && memcmp(magic, FMT_MAGIC_CHANGES, FMT_MAGIC_LEN) == 0) {
		if (format == F_MTREE) {
			CUT_ERR("%s: a change log has no mtree form", path);
			return CLI_EXIT_USAGE;
		}
		return show_changes(path, format);
	}
	return show_manifest(path, format);
}

const cli_cmd cmd_show = {"show", "print a manifest or change log (text, jsonl, mtree)", usage, run};
