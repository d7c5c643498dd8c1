/*
 * cmd_status.c - `cutover status`: what a state directory says about the
 * pair: recent passes, the manifest the target matches, an interrupted pass,
 * a held lock, the pass running now (sync/progress.c), and a cheap check of
 * the target (sync/state.c, sync/sync.c).
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "base/limits.h"
#include "base/json.h"
#include "sync/sync.h"

static const char usage[] =
	"usage: cutover status --state DIR [--json] [-n N] [--no-check]\n"
	"\n"
	"Shows the pair and policy of DIR, the last N passes (default 10) with their\n"
	"times, change counts, bytes copied, drift and conflicts, which manifest the\n"
	"target matches and whether that is the newest source manifest, an interrupted\n"
	"pass (resumed by the next sync), a held lock, and the cheap check of the\n"
	"target (a sample of stats; --no-check skips it).  A pass that is running\n"
	"(from cron, or another terminal) is shown with its phase, counts, bytes,\n"
	"rate and ETA, from DIR/progress; one that died is shown as such.\n"
	"  --json     one JSON object on stdout\n"
	"exit: 0 the target is in parity with the newest manifest and looks unchanged;\n"
	"1 it is behind (also while a pass runs: then wait for it), interrupted (or a\n"
	"pass died) or changed; 2 error; 64 usage\n";

/* What run() gathers from DIR, for the two printers. */
typedef struct status {
	const char *dir;
	sync_config cfg;
	sync_tstate ts;
	int hts, hpd;             /* target-state, pending: 1 present */
	sync_pending pd;
	sync_hist *h;
	size_t nh;
	unsigned last;            /* newest source manifest */
	bool parity;
	int mk;                   /* target check: -2 not done, 0 unchanged, 1 changed, -1 error */
	char what[1024];
	int live;                 /* the lock: 1 held by a live run, 0 not */
	bool busy;                /* a sync pass is running: the pending replay is its own */
	sync_lock_holder holder;
	int hrun;                 /* DIR/progress: 1 present */
	sync_running run;
	char idh[2 * FMT_ID_LEN + 1];
	sync_switched sw;         /* DIR/switched */
	size_t left;              /* subtrees at depth 2 not switched */
	cut_buf leftnames;        /* the first ten of them */
	uint64_t late;            /* late writes not acknowledged */
} status;

static void jstr(const char *k, const char *v, bool comma)
{
	printf("\"%s\":", k);
	cut_json_fstr(stdout, v, strlen(v));
	if (comma)
		putchar(',');
}

static void jnum(const char *k, double v, bool comma)
{
	printf("\"%s\":", k);
	cut_json_fnum(stdout, v);
	if (comma)
		putchar(',');
}

/* The source over the last seconds; null before a request was measured. */
static void json_source(const sync_progress *p)
{
	budget_view v;
	if (!sync_progress_src(p, &v)) {
		printf("\"source\":null,");
		return;
	}
	printf("\"source\":{");
	jnum("ops_rate", v.ops_s, true);
	jnum("bytes_rate", v.bytes_s, true);
	jnum("latency_p50_s", cut_secs(v.p50_ns), true);
	jnum("latency_p99_s", cut_secs(v.p99_ns), true);
	if (v.limit)
		printf("\"in_flight_limit\":%u,", v.limit);
	else
		printf("\"in_flight_limit\":null,");
	jnum("held_back", v.held, false);
	printf("},");
}

static void json_running(const status *st)
{
	if (st->hrun <= 0) {
		printf("\"running\":null,");
		return;
	}
	const sync_running *r = &st->run;
	const sync_progress *p = &r->p;
	printf("\"running\":{\"state\":\"%s\",\"pid\":%ld,", r->alive ? "running" : "died", p->pid);
	jstr("host", p->host, true);
	printf("\"seq\":%u,", p->seq);
	jstr("kind", p->kind, true);
	jstr("phase", p->phase, true);
	jstr("unit", sync_progress_unit(p->phase), true);
	printf("\"start\":%.3f,\"phase_start\":%.3f,\"updated\":%.3f,\"done\":%" PRIu64
	       ",\"total\":%" PRIu64 ",\"bytes\":%" PRIu64 ",\"bytes_total\":%" PRIu64 ",",
	       cut_secs(p->start_ns), cut_secs(p->phase_ns), cut_secs(p->written_ns),
	       p->done, p->total, p->bytes, p->bytes_total);
	jnum("phase_s", r->secs, true);
	jnum("rate", r->rate, true);
	jnum("bytes_rate", r->byte_rate, true);
	json_source(p);
	if (r->eta_s >= 0)
		printf("\"eta_s\":%lld},", (long long)r->eta_s);
	else
		printf("\"eta_s\":null},");
}

static void json_pass(const sync_hist *x, bool comma)
{
	printf("%s{\"seq\":%u,", comma ? "," : "", x->seq);
	jstr("kind", x->kind, true);
	jnum("start", cut_secs(x->start), true);
	jnum("end", cut_secs(x->end), true);
	jnum("scan_s", x->scan_s, true);
	jnum("diff_s", x->diff_s, true);
	jnum("replay_s", x->replay_s, true);
	jnum("check_s", x->check_s, true);
	printf("\"entries\":%" PRIu64 ",\"ops\":%" PRIu64 ",\"created\":%" PRIu64 ",\"updated\":%" PRIu64
	       ",\"renamed\":%" PRIu64 ",\"linked\":%" PRIu64 ",\"deleted\":%" PRIu64 ",\"meta\":%" PRIu64
	       ",\"bytes\":%" PRIu64 ",\"drifted\":%" PRIu64 ",\"vanished\":%" PRIu64
	       ",\"skipped\":%" PRIu64 ",\"conflicts\":%" PRIu64 ",\"retried\":%" PRIu64 ",\"exit\":%d,",
	       x->entries, x->ops, x->created, x->updated, x->renamed, x->linked, x->deleted, x->meta,
	       x->bytes, x->drifted, x->vanished, x->skipped, x->conflicts, x->retried, x->exit);
	printf("\"source\":{\"ops\":%" PRIu64 ",\"bytes\":%" PRIu64 ",", x->src_ops, x->src_bytes);
	jnum("ops_rate", x->src_ops_s, true);
	jnum("bytes_rate", x->src_bytes_s, true);
	jnum("latency_p50_s", x->src_p50_us * CUT_NS_PER_US / CUT_NS_PER_S, true);
	jnum("latency_p99_s", x->src_p99_us * CUT_NS_PER_US / CUT_NS_PER_S, true);
	jnum("held_back", x->src_held, false);
	printf("},");
	jstr("verdict", x->verdict, false);
	putchar('}');
}

static void print_json(const status *st)
{
	const sync_config *cfg = &st->cfg;
	printf("{");
	jstr("state", st->dir, true);
	jstr("source", cfg->source, true);
	jstr("target", cfg->target, true);
	jstr("policy", cfg->maildir ? "maildir" : "none", true);
	printf("\"keep\":%u,\"created\":%lld,", cfg->keep, (long long)cfg->created);
	if (st->hts > 0) {
		printf("\"target_state\":{\"seq\":%u,\"manifest_id\":\"%s\",", st->ts.seq, st->idh);
		jstr("base", st->ts.base, true);
		printf("\"time\":%lld,", (long long)st->ts.time);
		jstr("kind", st->ts.kind, false);
		printf("},");
	} else {
		printf("\"target_state\":null,");
	}
	printf("\"newest_manifest\":%u,\"in_parity_with_newest\":%s,", st->last,
	       st->parity ? "true" : "false");
	if (st->hpd > 0 && !st->busy) {
		printf("\"interrupted\":{\"seq\":%u,", st->pd.seq);
		jstr("log", st->pd.log, false);
		printf("},");
	} else {
		printf("\"interrupted\":null,");
	}
	if (st->live > 0) {
		printf("\"lock\":{\"pid\":%ld,", st->holder.pid);
		jstr("host", st->holder.host, true);
		printf("\"start\":%lld},", (long long)st->holder.start);
	} else {
		printf("\"lock\":null,");
	}
	json_running(st);
	printf("\"switched\":{\"count\":%zu,\"subtrees\":[", st->sw.n);
	for (size_t i = 0; i < st->sw.n; i++) {
		printf("%s", i ? "," : "");
		cut_json_fstr(stdout, st->sw.path[i], strlen(st->sw.path[i]));
	}
	printf("],\"left\":%zu,\"late_writes\":%llu},", st->left, (unsigned long long)st->late);
	printf("\"target_check\":%s,", st->mk == -2 ? "null" : st->mk == 0 ? "\"unchanged\""
					     : st->mk == 1 ? "\"changed\"" : "\"error\"");
	if (st->mk == 1)
		jstr("target_check_detail", st->what, true);
	printf("\"passes\":[");
	for (size_t i = 0; i < st->nh; i++)
		json_pass(&st->h[i], i > 0);
	printf("]}\n");
}

static const char *when(char buf[32], int64_t unix_s)
{
	time_t t = (time_t)unix_s;
	struct tm tm;
	if (unix_s <= 0 || !localtime_r(&t, &tm))
		return "-";
	strftime(buf, 32, "%Y-%m-%d %H:%M:%S", &tm);
	return buf;
}

static void text_died(const status *st, const sync_running *r)
{
	char who[64], w[32];
	if (r->p.seq)
		snprintf(who, sizeof who, "pass %u (%s)", r->p.seq, r->p.kind);
	else /* before its scan: it had no number yet */
		snprintf(who, sizeof who, "the %s pass", r->p.kind);
	printf("DIED:     %s stopped in its %s phase without finishing (pid %ld on %s, last seen "
	       "%s); the next sync %s\n", who, r->p.phase, r->p.pid, r->p.host,
	       when(w, r->p.written_ns / CUT_NS_PER_S),
	       st->hpd > 0 ? "resumes its replay" : "starts it again");
}

static void text_running(const status *st)
{
	char line[512], w[32];
	if (st->hrun > 0) {
		const sync_running *r = &st->run;
		sync_running_line(r, line, sizeof line);
		if (r->alive)
			printf("RUNNING:  %s (%s pass, pid %ld on %s, updated %s)\n", line, r->p.kind,
			       r->p.pid, r->p.host, when(w, r->p.written_ns / CUT_NS_PER_S));
		else
			text_died(st, r);
	}
	if (st->live > 0)
		printf("lock:     held by pid %ld on %s since %s\n", st->holder.pid, st->holder.host,
		       when(w, st->holder.start));
	else if (st->holder.pid > 0)
		printf("lock:     left by pid %ld on %s, which is no longer running (the next sync on "
		       "that host takes it over)\n", st->holder.pid, st->holder.host);
}

static void text_passes(const status *st)
{
	char w1[32], b[32];
	printf("\n%-6s %-8s %-19s %7s %7s %7s %8s %8s %8s %8s %10s %6s %5s %4s %-7s %s\n", "pass",
	       "kind", "start", "total", "scan", "replay", "ops", "created", "renamed", "deleted",
	       "copied", "drift", "confl", "exit", "verdict", "source");
	for (size_t i = 0; i < st->nh; i++) {
		const sync_hist *x = &st->h[i];
		char src[160];
		sync_hist_src_line(x, src, sizeof src);
		printf("%-6u %-8s %-19s %6.1fs %6.1fs %6.1fs %8" PRIu64 " %8" PRIu64 " %8" PRIu64
		       " %8" PRIu64 " %10s %6" PRIu64 " %5" PRIu64 " %4d %-7s %s\n",
		       x->seq, x->kind, when(w1, x->start / CUT_NS_PER_S), cut_secs(x->end - x->start),
		       x->scan_s, x->replay_s, x->ops, x->created, x->renamed, x->deleted,
		       cut_bytes_human(b, x->bytes), x->drifted + x->vanished, x->conflicts, x->exit,
		       x->verdict, src);
	}
}

static void text_switched(const status *st)
{
	if (st->sw.n)
		printf("switched: %zu subtree%s to the new side; %zu left%s%s%s\n", st->sw.n,
		       st->sw.n == 1 ? "" : "s", st->left, st->left ? " (" : "",
		       st->left ? (const char *)st->leftnames.p : "",
		       st->left > 10 ? " ...)" : st->left ? ")" : "");
	if (st->late)
		printf("LATE WRITES: %llu changes on the source inside switched subtrees since their "
		       "switch (%s/late-writes): recover them into the new side, then run `cutover "
		       "switch --state %s --ack-late-writes`\n", (unsigned long long)st->late, st->dir,
		       st->dir);
}

static void print_text(const status *st, bool check)
{
	const sync_config *cfg = &st->cfg;
	char w1[32], w2[32];
	printf("pair:     %s -> %s (policy %s, keep %u, since %s)\n", cfg->source, cfg->target,
	       cfg->maildir ? "maildir" : "none", cfg->keep, when(w1, cfg->created));
	bool derived = st->hts > 0 && sync_base_derived(&st->ts);
	if (st->hts > 0)
		printf("target:   matches pass %u (%s, %s), manifest %.16s%s%s\n", st->ts.seq,
		       st->ts.kind, when(w2, st->ts.time), st->idh, derived ? ", base " : "",
		       derived ? st->ts.base : "");
	else
		printf("target:   never synced (the first sync makes the initial copy)\n");
	if (st->hpd > 0 && !st->busy)
		printf("INTERRUPTED: the replay of pass %u (%s) did not finish; the next sync "
		       "resumes it\n", st->pd.seq, st->pd.log);
	printf("parity:   %s\n", st->parity ? "the target is at the newest source manifest"
			       : st->busy ? "not yet: the running pass brings the target there"
			       : st->hts > 0 ? "NO: a newer source manifest exists than the target's (a pass failed)"
					     : "NO: nothing copied yet");
	if (st->live > 0 && check && st->hts > 0)
		printf("check:    not done while a run holds the lock (it changes the target)\n");
	else if (st->mk == 0)
		printf("check:    the target's sampled stats are as the last replay left them\n");
	else if (st->mk == 1)
		printf("CHANGED:  %s (the next sync scans the target and refuses if it differs)\n", st->what);
	text_switched(st);
	text_running(st);
	if (st->nh)
		text_passes(st);
}

/* Reads what DIR says.  0 or -1 (logged). */
static int gather(status *st, bool check, uint64_t n)
{
	const char *dir = st->dir;
	if (sync_config_read(dir, &st->cfg) < 0)
		return -1;
	st->hts = sync_tstate_read(dir, &st->ts);
	st->hpd = sync_pending_read(dir, &st->pd);
	if (st->hts < 0 || st->hpd < 0 || sync_hist_read(dir, n, &st->h, &st->nh) < 0)
		return -1;
	char lastrel[64] = "";
	st->last = sync_last_manifest(dir, lastrel);
	st->parity = st->hts > 0 && st->hpd == 0 && st->ts.seq >= st->last;
	/* The lock and the running pass: read them, do not take the lock. */
	st->hrun = sync_running_read(dir, &st->run);
	st->live = sync_lock_probe(dir, &st->holder);
	if (st->hrun < 0 || st->live < 0)
		return -1;
	st->busy = st->hrun > 0 && st->run.alive;
	/* A run that holds the lock is changing the target: its marks would
	 * call that a change made outside cutover. */
	st->mk = -2;
	if (check && st->hts > 0 && st->live <= 0)
		st->mk = sync_marks_check(dir, st->cfg.target, st->what, sizeof st->what);
	if (st->hts > 0)
		cut_hex(st->idh, st->ts.manifest_id, FMT_ID_LEN);
	if (sync_switched_read(dir, &st->sw) < 0)
		return -1;
	if (st->sw.n)
		st->left = sync_switch_left(st->cfg.source, &st->sw, &st->leftnames, 10);
	st->late = sync_late_count(dir);
	return 0;
}

static int run(int argc, char **argv)
{
	enum { O_STATE = 256, O_JSON, O_NOCHECK };
	static const struct option lo[] = {{"state", required_argument, NULL, O_STATE},
					   {"json", no_argument, NULL, O_JSON},
					   {"no-check", no_argument, NULL, O_NOCHECK},
					   {NULL, 0, NULL, 0}};
	status st = {0};
	bool json = false, check = true;
	uint64_t n = 10;
	int ch;
	while ((ch = getopt_long(argc, argv, "n:", lo, NULL)) != -1) {
		switch (ch) {
		case O_STATE: st.dir = optarg; break;
		case O_JSON: json = true; break;
		case O_NOCHECK: check = false; break;
		case 'n':
			if (cli_parse_count("status", "-n", optarg, 0, SYNC_KEEP_MAX, &n) < 0)
				return cli_usage(&cmd_status);
			break;
		default: return cli_usage(&cmd_status);
		}
	}
	if (optind != argc || !st.dir)
		return cli_usage(&cmd_status);
	int rc = CLI_EXIT_ERROR;
	if (gather(&st, check, n) == 0) {
		if (json)
			print_json(&st);
		else
			print_text(&st, check);
		bool died = st.hrun > 0 && !st.run.alive;
		rc = st.parity && !died && st.mk <= 0 && st.mk != -1 && !st.late ? CLI_EXIT_OK
										  : CLI_EXIT_DIFFER;
		/* Whatever is behind, the run holding the lock is at it: a sync
		 * now would only meet its lock (exit 6). */
		if (rc != CLI_EXIT_OK && st.live > 0)
			cli_fix("wait for the run that holds the lock (pid %ld on %s) to finish; `cutover "
				"status --state %s` shows its progress, and what is left once it has ended",
				st.holder.pid, st.holder.host, st.dir);
		else if (st.late)
			cli_fix("recover the messages listed in %s/late-writes into the new side "
				"(docs/RUNBOOK.md, \"Late writes\"), then run `cutover switch --state %s "
				"--ack-late-writes`", st.dir, st.dir);
	}
	sync_switched_free(&st.sw);
	cut_buf_free(&st.leftnames);
	free(st.h);
	sync_config_free(&st.cfg);
	return rc;
}

const cli_cmd cmd_status = {"status", "recent passes, the running pass, parity and drift of a state "
				      "directory (--json)", usage, run};
