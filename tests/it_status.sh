# it_status.sh - `cutover status` watches a pass: while it runs (stopped
# with SIGSTOP half way through its replay, so that it cannot finish under
# the test), after it was killed with SIGKILL (it died: not shown as
# running), and `sync`'s own line on a TTY.  DIR/progress: docs/SYNC.md §1.
. tests/lib.sh

S="$T/src" D="$T/dst" ST="$T/state"
SHIM="$PWD/$BUILD/tests/estale_shim.so"
export ASAN_OPTIONS="${ASAN_OPTIONS:-}${ASAN_OPTIONS:+:}verify_asan_link_order=0"
"$GEN" create "$S" --users 10 --msgs 120 --seed 11 --size-scale 0.2 >/dev/null || no "generator failed"
"$CUTOVER" init --source "$S" --target "$D" --state "$ST" --maildir >/dev/null || no "init failed"
pid=""
stop_pass() { [ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; pid=""; }
trap 'stop_pass; _atexit' EXIT
# js EXPR: a field of the last `status --json`
js() { jq -r "$1" "$T/s.json"; }
# stop_in PHASE ZEROS FILE TENTHS: polls the progress FILE of the pass $pid
# until it is in PHASE with no counter line matching ZEROS (a regex of the
# lines that must have moved), then stops the pass (SIGSTOP) and sets seen;
# gives up after TENTHS tenths of a second or when the pass ends.
stop_in() {
	seen=""
	for _ in $(seq 1 "$4"); do
		if grep -q "^phase=$1\$" "$3" 2>/dev/null && ! grep -q "$2" "$3"; then
			kill -STOP "$pid" && seen=1
			return
		fi
		kill -0 "$pid" 2>/dev/null || return
		sleep 0.1
	done
}

t status_shows_the_running_pass_its_phase_and_counts
# Every stat takes 5 ms (an NFS round trip) and one replay worker does
# them: the replay of ~2000 operations lasts many seconds, and the pass
# rewrites DIR/progress every second.
LD_PRELOAD="$SHIM" SHIM_STAT_DELAY_US=5000 "$CUTOVER" sync -j 1 --state "$ST" --no-syslog \
	2>"$T/sync.err" &
pid=$!
stop_in replay '^done=0$\|^bytes=0$' "$ST/progress" 600 # up to 60 s (sanitizer builds are slow)
if [ -z "$seen" ]; then
	no "the pass never showed replay counts in $ST/progress (the race was not run): $(cat "$ST/progress" "$T/sync.err" 2>&1 | head -20)"
else
	# exit 1: the target is behind while the pass replays.  Its pending
	# replay is its own, not an interrupted one, and a sync now would only
	# meet its lock (exit 6): the fix is to wait for it.
	expect_rc 1 "$CUTOVER" status --state "$ST" --no-check
	grep -q "^RUNNING:  pass 1 replay: [1-9][0-9]*/[0-9]* ops, .* in .*; .*/s, .*/s; ETA " "$T/.out" ||
		no "status: $(cat "$T/.out")"
	grep -q "(initial pass, pid $pid on " "$T/.out" || no "status names no pid: $(cat "$T/.out")"
	grep -q "^DIED" "$T/.out" && no "a stopped pass is alive: $(cat "$T/.out")"
	grep -q "INTERRUPTED\|a pass failed" "$T/.out" && no "a running pass called interrupted: $(cat "$T/.out")"
	tail -1 "$T/.err" | grep -q "^cutover: to fix: wait for the run that holds the lock (pid $pid on .*\`cutover status --state $ST\`" ||
		no "the fix while the pass runs: $(tail -2 "$T/.err")"
	grep -q "to fix:.*\`cutover sync" "$T/.err" && no "sync advised while the pass runs: $(tail -1 "$T/.err")"
	"$CUTOVER" status --state "$ST" --no-check --json >"$T/s.json" 2>"$T/s.err"
	jq -e . "$T/s.json" >/dev/null || no "not JSON: $(head -c 300 "$T/s.json")"
	[ "$(js .running.state)" = running ] && [ "$(js .running.phase)" = replay ] &&
		[ "$(js .running.pid)" = "$pid" ] && [ "$(js .running.seq)" = 1 ] &&
		[ "$(js .running.kind)" = initial ] && [ "$(js .running.unit)" = ops ] &&
		[ "$(js '.running.done > 0 and .running.total >= .running.done')" = true ] &&
		[ "$(js '.running.bytes > 0 and .running.bytes_total > 0')" = true ] &&
		[ "$(js '.running.rate > 0 and (.running.eta_s | type) == "number"')" = true ] &&
		[ "$(js .lock.pid)" = "$pid" ] && [ "$(js .interrupted)" = null ] ||
		no "status --json: $(jq -c '{running, lock, interrupted}' "$T/s.json")"
fi

t a_killed_pass_shows_as_died_not_running
[ -n "$seen" ] || no "no pass to kill (see the case above)"
stop_pass
expect_rc 1 "$CUTOVER" status --state "$ST" --no-check
grep -q "^DIED:     pass 1 (initial) stopped in its replay phase without finishing" "$T/.out" ||
	no "status: $(cat "$T/.out")"
grep -q "^RUNNING" "$T/.out" && no "a dead pass shown as running"
grep -q "the next sync resumes its replay" "$T/.out" || no "no advice: $(cat "$T/.out")"
grep -q "^INTERRUPTED: the replay of pass 1 " "$T/.out" || no "not interrupted: $(cat "$T/.out")"
tail -1 "$T/.err" | grep -q "^cutover: to fix: run \`cutover sync --state $ST\`" ||
	no "the fix after the pass died: $(tail -2 "$T/.err")"
"$CUTOVER" status --state "$ST" --no-check --json >"$T/s.json" 2>"$T/s.err"
jq -e . "$T/s.json" >/dev/null || no "not JSON: $(head -c 300 "$T/s.json")"
[ "$(js .running.state)" = died ] && [ "$(js .running.phase)" = replay ] && [ "$(js .lock)" = null ] &&
	[ "$(js .interrupted.seq)" = 1 ] ||
	no "status --json: $(jq -c '{running, lock, interrupted}' "$T/s.json")"

t the_next_pass_resumes_and_status_shows_no_running_pass
expect_rc 0 "$CUTOVER" sync --state "$ST" --no-syslog
[ -e "$ST/progress" ] && no "a finished pass left its progress file"
expect_rc 0 "$CUTOVER" status --state "$ST" --no-check
grep -q "^RUNNING\|^DIED" "$T/.out" && no "status: $(cat "$T/.out")"
"$CUTOVER" status --state "$ST" --no-check --json >"$T/s.json" 2>"$T/s.err"
[ "$(js .running)" = null ] || no "status --json running: $(js .running)"

t sync_on_a_tty_shows_the_same_line_and_not_without_one
"$GEN" mutate "$S" --seed 3 --percent 20 >/dev/null
# script(1) gives the pass a terminal; its output is what the terminal showed.
# One worker with --fsync: the replay lasts past the line's 100 ms refresh.
script -qec \
	"'$CUTOVER' sync -j 1 --fsync --state '$ST' --no-syslog" /dev/null >"$T/tty.out" 2>&1
tr '\r' '\n' <"$T/tty.out" | grep -q "^pass [0-9]* replay: [0-9]*/[0-9]* ops, .*; ETA " ||
	no "no progress line on the TTY: $(tr '\r' '\n' <"$T/tty.out" | head -5)"
"$GEN" mutate "$S" --seed 4 --percent 5 >/dev/null
expect_rc 0 "$CUTOVER" sync --state "$ST" --no-syslog
[ -s "$T/.err" ] && no "progress written without a TTY: $(head -c 300 "$T/.err")"
t status_counts_the_final_passs_verification
# A store of ~10,000 entries, copied; then a final pass whose every stat
# takes 1 ms: its verification lists both trees for several seconds, and the
# counts reach DIR/progress (every 4096 entries, rewritten every second).
S2="$T/src2" D2="$T/dst2" ST2="$T/state2"
"$GEN" create "$S2" --users 12 --msgs 800 --seed 12 --size-scale 0.01 >/dev/null || no "generator failed"
"$CUTOVER" init --source "$S2" --target "$D2" --state "$ST2" --maildir >/dev/null || no "init failed"
expect_rc 0 "$CUTOVER" sync --state "$ST2" --no-syslog
LD_PRELOAD="$SHIM" SHIM_STAT_DELAY_US=1000 "$CUTOVER" sync --final --state "$ST2" --no-syslog >"$T/final.out" \
	2>"$T/final.err" &
pid=$!
stop_in verify '^done=0$' "$ST2/progress" 1200 # up to 120 s
if [ -z "$seen" ]; then
	no "the final pass never showed verify counts in $ST2/progress (the race was not run): $(cat "$ST2/progress" "$T/final.err" 2>&1 | head -20)"
else
	# exit 0: the final pass's replay is committed; it verifies now
	expect_rc 0 "$CUTOVER" status --state "$ST2" --no-check
	grep -q "^RUNNING:  pass 2 verify: [1-9][0-9]*/[1-9][0-9]* entries in .*; .*/s; ETA " "$T/.out" ||
		no "status: $(cat "$T/.out")"
	"$CUTOVER" status --state "$ST2" --no-check --json >"$T/s.json"
	[ "$(js .running.phase)" = verify ] && [ "$(js .running.unit)" = entries ] &&
		[ "$(js '.running.done > 0 and .running.total >= .running.done')" = true ] ||
		no "status --json: $(jq -c .running "$T/s.json")"
	kill -CONT "$pid"
	wait "$pid" || no "the final pass failed after it was resumed: $(tail -5 "$T/final.err")"
	pid=""
fi
finish
