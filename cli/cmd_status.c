/*
 * cmd_status.c - `cutover status`: what a state directory says about the
 * pair: recent passes, the manifest the target matches, an interrupted pass,
 * a held lock, and a cheap check of the target (sync/state.c, sync/sync.c).
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "cli/json.h"
#include "sync/sync.h"

static const char usage[] =
	"usage: cutover status --state DIR [--json] [-n N] [--no-check]\n"
	"\n"
	"Shows the pair and policy of DIR, the last N passes (default 10) with their\n"
	"times, change counts, bytes copied, drift and conflicts, which manifest the\n"
	"target matches and whether that is the newest source manifest, an interrupted\n"
	"pass (resumed by the next sync), a held lock, and the cheap check of the\n"
	"target (a sample of stats; --no-check skips it).\n"
	"  --json     one JSON object on stdout\n"
	"exit: 0 the target is in parity with the newest manifest and looks unchanged;\n"
	"1 it is behind, interrupted or changed; 2 error; 64 usage\n";

static const char *when(char buf[32], int64_t unix_s)
{
	time_t t = (time_t)unix_s;
	struct tm tm;
	if (unix_s <= 0 || !localtime_r(&t, &tm))
		return "-";
	strftime(buf, 32, "%Y-%m-%d %H:%M:%S", &tm);
	return buf;
}

static void jstr(const char *k, const char *v, bool comma)
{
	printf("\"%s\":", k);
	cli_json_str(stdout, v, strlen(v));
	if (comma)
		putchar(',');
}

static int run(int argc, char **argv)
{
	enum { O_STATE = 256, O_JSON, O_NOCHECK };
	static const struct option lo[] = {{"state", required_argument, NULL, O_STATE},
					   {"json", no_argument, NULL, O_JSON},
					   {"no-check", no_argument, NULL, O_NOCHECK},
					   {NULL, 0, NULL, 0}};
	const char *dir = NULL;
	bool json = false, check = true;
	uint64_t n = 10;
	int ch;
	while ((ch = getopt_long(argc, argv, "n:", lo, NULL)) != -1) {
		switch (ch) {
		case O_STATE: dir = optarg; break;
		case O_JSON: json = true; break;
		case O_NOCHECK: check = false; break;
		case 'n':
			if (cli_parse_u64(optarg, &n) < 0 || n > 100000)
				return cli_usage(&cmd_status);
			break;
		default: return cli_usage(&cmd_status);
		}
	}
	if (optind != argc || !dir)
		return cli_usage(&cmd_status);
	sync_config cfg;
	if (sync_config_read(dir, &cfg) < 0)
		return CUT_EXIT_ERROR;
	sync_tstate ts;
	sync_pending pd;
	int hts = sync_tstate_read(dir, &ts), hpd = sync_pending_read(dir, &pd);
	sync_hist *h = NULL;
	size_t nh = 0;
	if (hts < 0 || hpd < 0 || sync_hist_read(dir, n, &h, &nh) < 0) {
		sync_config_free(&cfg);
		free(h);
		return CUT_EXIT_ERROR;
	}
	char lastrel[64] = "";
	unsigned last = sync_last_manifest(dir, lastrel);
	bool parity = hts > 0 && hpd == 0 && ts.seq >= last;
	char what[1024] = "";
	int mk = -2; /* not checked */
	if (check && hts > 0)
		mk = sync_marks_check(dir, cfg.target, what, sizeof what);
	/* The lock: read it, do not take it. */
	char *lp = sync_path(dir, "lock");
	cut_buf lb = {0};
	sync_lock_holder holder;
	bool locked = sync_read_file(lp, &lb) > 0 && sync_lock_parse((const char *)lb.p, lb.len, &holder) == 0;
	cut_buf_free(&lb);
	free(lp);
	char idh[2 * FMT_ID_LEN + 1] = "";
	if (hts > 0)
		cut_hex(idh, ts.manifest_id, FMT_ID_LEN);
	char w1[32], w2[32], b[32];
	if (json) {
		printf("{");
		jstr("state", dir, true);
		jstr("source", cfg.source, true);
		jstr("target", cfg.target, true);
		jstr("policy", cfg.maildir ? "maildir" : "none", true);
		printf("\"keep\":%u,\"created\":%lld,", cfg.keep, (long long)cfg.created);
		if (hts > 0) {
			printf("\"target_state\":{\"seq\":%u,\"manifest_id\":\"%s\",", ts.seq, idh);
			jstr("base", ts.base, true);
			printf("\"time\":%lld,", (long long)ts.time);
			jstr("kind", ts.kind, false);
			printf("},");
		} else {
			printf("\"target_state\":null,");
		}
		printf("\"newest_manifest\":%u,\"in_parity_with_newest\":%s,", last, parity ? "true" : "false");
		if (hpd > 0) {
			printf("\"interrupted\":{\"seq\":%u,", pd.seq);
			jstr("log", pd.log, false);
			printf("},");
		} else {
			printf("\"interrupted\":null,");
		}
		if (locked) {
			printf("\"lock\":{\"pid\":%ld,", holder.pid);
			jstr("host", holder.host, true);
			printf("\"start\":%lld},", (long long)holder.start);
		} else {
			printf("\"lock\":null,");
		}
		printf("\"target_check\":%s,", mk == -2 ? "null" : mk == 0 ? "\"unchanged\"" : mk == 1 ? "\"changed\"" : "\"error\"");
		if (mk == 1) {
			jstr("target_check_detail", what, true);
		}
		printf("\"passes\":[");
		for (size_t i = 0; i < nh; i++) {
			const sync_hist *x = &h[i];
			printf("%s{\"seq\":%u,\"kind\":\"%s\",\"start\":%.3f,\"end\":%.3f,\"scan_s\":%.3f,"
			       "\"diff_s\":%.3f,\"replay_s\":%.3f,\"check_s\":%.3f,\"entries\":%" PRIu64
			       ",\"ops\":%" PRIu64 ",\"created\":%" PRIu64 ",\"updated\":%" PRIu64
			       ",\"renamed\":%" PRIu64 ",\"linked\":%" PRIu64 ",\"deleted\":%" PRIu64
			       ",\"meta\":%" PRIu64 ",\"bytes\":%" PRIu64 ",\"drifted\":%" PRIu64
			       ",\"vanished\":%" PRIu64 ",\"skipped\":%" PRIu64 ",\"conflicts\":%" PRIu64
			       ",\"exit\":%d,\"verdict\":\"%s\"}",
			       i ? "," : "", x->seq, x->kind, (double)x->start / 1e9, (double)x->end / 1e9,
			       x->scan_s, x->diff_s, x->replay_s, x->check_s, x->entries, x->ops, x->created,
			       x->updated, x->renamed, x->linked, x->deleted, x->meta, x->bytes, x->drifted,
			       x->vanished, x->skipped, x->conflicts, x->exit, x->verdict);
		}
		printf("]}\n");
	} else {
		printf("pair:     %s -> %s (policy %s, keep %u, since %s)\n", cfg.source, cfg.target,
		       cfg.maildir ? "maildir" : "none", cfg.keep, when(w1, cfg.created));
		if (hts > 0)
			printf("target:   matches pass %u (%s, %s), manifest %.16s%s%s\n", ts.seq, ts.kind,
			       when(w2, ts.time), idh, strcmp(ts.base + 10 + 6, ".cmf") ? ", base " : "",
			       strcmp(ts.base + 10 + 6, ".cmf") ? ts.base : "");
		else
			printf("target:   never synced (the first sync makes the initial copy)\n");
		if (hpd > 0)
			printf("INTERRUPTED: the replay of pass %u (%s) did not finish; the next sync "
			       "resumes it\n", pd.seq, pd.log);
		printf("parity:   %s\n",
		       parity ? "the target is at the newest source manifest"
		       : hts > 0 ? "NO: a newer source manifest exists than the target's (a pass failed)"
				 : "NO: nothing copied yet");
		if (mk == 0)
			printf("check:    the target's sampled stats are as the last replay left them\n");
		else if (mk == 1)
			printf("CHANGED:  %s (the next sync scans the target and refuses if it differs)\n", what);
		if (locked) {
			char ht[32];
			printf("lock:     held by pid %ld on %s since %s\n", holder.pid, holder.host,
			       when(ht, holder.start));
		}
		if (nh) {
			printf("\n%-6s %-8s %-19s %7s %7s %7s %8s %8s %8s %8s %10s %6s %5s %4s %s\n", "pass",
			       "kind", "start", "total", "scan", "replay", "ops", "created", "renamed",
			       "deleted", "copied", "drift", "confl", "exit", "verdict");
			for (size_t i = 0; i < nh; i++) {
				const sync_hist *x = &h[i];
				printf("%-6u %-8s %-19s %6.1fs %6.1fs %6.1fs %8" PRIu64 " %8" PRIu64 " %8" PRIu64
				       " %8" PRIu64 " %10s %6" PRIu64 " %5" PRIu64 " %4d %s\n",
				       x->seq, x->kind, when(w1, x->start / 1000000000),
				       (double)(x->end - x->start) / 1e9, x->scan_s, x->replay_s, x->ops,
				       x->created, x->renamed, x->deleted, cut_bytes_human(b, x->bytes),
				       x->drifted + x->vanished, x->conflicts, x->exit, x->verdict);
			}
		}
	}
	free(h);
	sync_config_free(&cfg);
	return parity && mk <= 0 && mk != -1 ? CUT_EXIT_OK : CUT_EXIT_DIFFER;
}

const cli_cmd cmd_status = {"status", "recent passes, parity and drift of a state directory (--json)",
			    usage, run};
