/*
 * heal.c - the repair step of `cutover sync --final`.  sync.c's final pass
 * verifies the subtrees its log changed; those that differ are handed here
 * one at a time and brought to the source as `sync --rebase` would, but
 * only within the subtree: both sides are scanned, the target scan is
 * re-based on the source's identity (base.c), diffed against the source scan
 * and the log replayed with SRC/rel and DST/rel as roots.  Then both sides
 * are scanned again: parity, or what still differs and why — the source
 * changed under the repair (a writer is still running), or the target still
 * differs from a source that held still.
 *
 * sync.c owns the pass, target-state and the marks; this file touches only
 * the subtree it is given and its temporaries in the state directory.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "diff/diff.h"
#include "diff/report.h"
#include "sync/sync.h"

void sync_report_excerpt(cut_buf *out, const char *text, const char *indent)
{
	/* The A:/B: lines name the temporary manifests of the report. */
	for (const char *s = text, *nl; s && *s; s = nl ? nl + 1 : NULL) {
		nl = strchr(s, '\n');
		size_t l = nl ? (size_t)(nl - s) : strlen(s);
		if (l > 3 && (s[0] == 'A' || s[0] == 'B') && s[1] == ':')
			continue;
		cut_buf_printf(out, "%s%.*s\n", indent, (int)l, s);
	}
}

/* Reports a against b (metadata and structure, as verify).  0 parity, 1
 * differ (the report in *text, caller frees), -1 error (logged). */
static int compare(const sync_heal_opts *o, const char *a, const char *b, char **text)
{
	size_t len = 0;
	*text = NULL;
	FILE *mem = open_memstream(text, &len);
	if (!mem) {
		CUT_SYSERR("heal: cannot buffer a report");
		return -1;
	}
	diff_report_opts ro = {.a = a, .b = b, .ignore = RF_DEFAULT_IGNORE | RF_HASH, .max_examples = 10,
			       .tmpdir = o->workdir, .out = mem};
	int r = diff_report(&ro);
	fclose(mem);
	return r;
}

static void say(const sync_heal_opts *o, const char *rel, const char *what, const char *text)
{
	if (!o->out)
		return;
	cut_buf b = {0};
	cut_buf_printf(&b, "%s: %s\n", *rel ? rel : "the whole tree", what);
	sync_report_excerpt(&b, text, "  ");
	cut_buf_putc(&b, 0);
	fputs((const char *)b.p, o->out);
	cut_buf_free(&b);
}

/* After the replay: scans both sides again and sets r->outcome. */
static int judge(const sync_heal_opts *o, const char *rel, const char *src, const char *dst,
		 const char *s1, const char *s2, const char *t2, sync_heal_result *r)
{
	if ((o->recheck_since ? sync_scan_pair_since(&o->pol, src, s1, dst, s2, t2, &r->entries)
			      : sync_scan_pair(&o->pol, false, src, dst, s2, t2, &r->entries, NULL)) < 0)
		return CUT_FAILED;
	char *text = NULL;
	int c = compare(o, s2, t2, &text);
	free(text);
	if (c <= 0) {
		r->outcome = SYNC_HEALED;
		return c < 0 ? CUT_FAILED : CUT_OK;
	}
	/* Still different: did the source move since the repair's scan? */
	c = compare(o, s1, s2, &text);
	if (c > 0) {
		r->outcome = SYNC_HEAL_SOURCE_CHANGING;
		say(o, rel, "the source changed while it was repaired (A: before, B: after):", text);
	} else if (c == 0) {
		free(text);
		r->outcome = SYNC_HEAL_STILL_DIFFERS;
		c = compare(o, s2, t2, &text);
		say(o, rel, "the target still differs from the source after the repair (A: source, B: "
			    "target):", text ? text : "");
	}
	free(text);
	return c < 0 ? CUT_FAILED : CUT_OK;
}

int sync_heal(const sync_heal_opts *o, const char *rel, const char *s1, const char *t1,
	      const char *log_out, sync_heal_result *r)
{
	memset(r, 0, sizeof *r);
	char *src = *rel ? sync_path(o->source, rel) : cut_strndup(o->source, strlen(o->source));
	char *dst = *rel ? sync_path(o->target, rel) : cut_strndup(o->target, strlen(o->target));
	static const char *const names[] = {"heal-source.cmf", "heal-target.cmf", "heal-base.cmf",
					    "heal-source-after.cmf", "heal-target-after.cmf", "heal-journal"};
	enum { S1, T1, RB, S2, T2, JOURNAL, NTMP };
	char *tmp[NTMP];
	for (int i = 0; i < NTMP; i++)
		tmp[i] = sync_path(o->workdir, names[i]);
	int rc = CUT_FAILED;
	uint64_t matched = 0;
	unlink(log_out);
	bool given = s1 && t1;
	if (given && (rename(s1, tmp[S1]) < 0 || rename(t1, tmp[T1]) < 0)) {
		CUT_SYSERR("%s: cannot take the verification's scans", o->workdir);
		goto out;
	}
	if ((!given && sync_scan_pair(&o->pol, false, src, dst, tmp[S1], tmp[T1], &r->entries, NULL) < 0) ||
	    sync_base_rebase(tmp[T1], tmp[S1], tmp[RB], o->workdir, &matched) < 0)
		goto out;
	diff_opts d = {.old_path = tmp[RB], .new_path = tmp[S1], .out_path = log_out, .tmpdir = o->workdir};
	diff_stats ds;
	if (diff_run(&d, &ds) < 0)
		goto out;
	unlink(tmp[JOURNAL]);
	rp_opts ro = {.log = log_out, .source = src, .target = dst, .journal = tmp[JOURNAL],
		      .jobs = o->jobs, .fsync = o->fsync, .maildir = o->pol.maildir,
		      .on_conflict = RP_CONFLICT_STOP};
	rc = rp_run(&ro, &r->st);
	r->replayed = true;
	if (rc == CUT_OK || rc == CUT_INCOMPLETE)
		rc = judge(o, rel, src, dst, tmp[S1], tmp[S2], tmp[T2], r);
	/* The scans are scratch files (sync_scan_pair): the one kept is synced. */
	if (rc == CUT_OK && r->outcome == SYNC_HEALED && o->keep_source) {
		if (sync_fsync_file(tmp[S2]) < 0)
			rc = CUT_FAILED;
		else if (rename(tmp[S2], o->keep_source) < 0) {
			CUT_SYSERR("%s: cannot keep the source's scan", o->keep_source);
			rc = CUT_FAILED;
		}
	}
out:
	for (int i = 0; i < NTMP; i++) {
		unlink(tmp[i]);
		free(tmp[i]);
	}
	free(src);
	free(dst);
	return rc;
}
