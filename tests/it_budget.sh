#!/usr/bin/env bash
# it_budget.sh - --max-ops, --bwlimit and --adaptive (base/budget.c,
# adapt.c) as the source sees them: the source is mounted through
# bench/latfs, whose counters give the round trips it answered (lookups,
# getattrs, opens, directory batches with entries, reads with data) and the
# bytes it read.  Every full 5 s window of a scan and of a replay must hold
# the limit to 10%; a sync takes init's limit, or its own --max-ops, and
# records what the source did in its history line.  An --adaptive scan
# whose source's latency steps up tenfold cuts its requests in flight, and
# climbs back when it steps down (cutover's own record of each window:
# CUTOVER_BUDGET_TRACE).  Needs /dev/fuse, fusermount3 and libfuse3-dev;
# without them the script says SKIP and records no case.
. tests/lib.sh
LM=$PWD/bench/latmount
export LATFS=${LATFS:-$PWD/$BUILD/latfs} LATMOUNT_STATE=$T/state
MNT=$T/mnt
if [ ! -c /dev/fuse ] || ! command -v fusermount3 >/dev/null ||
	! pkg-config --exists fuse3 2>/dev/null; then
	echo "SKIP it_budget.sh: no /dev/fuse, fusermount3 or libfuse3-dev"
	finish
fi
trap 'rc=$?; "$LM" stop "$MNT" >/dev/null 2>&1; (exit $rc); _atexit' EXIT

# A scan tree (5.5 k entries, small files) and a copy tree (1.3 k entries,
# 9.7 MB).
"$GEN" create "$T/s1" --users 6 --msgs 800 --size-scale 0.1 --seed 3 >/dev/null
"$GEN" create "$T/s2" --users 2 --msgs 500 --size-scale 1 --seed 4 >/dev/null
"$CUTOVER" -q scan "$T/s2" -o "$T/s2.cmf" -j 4 &&
	"$CUTOVER" -q diff --from-empty "$T/s2.cmf" -o "$T/s2.log" || no "cannot make the copy's log"

# windows COL CMD...: runs CMD behind the mount (CMD's output in $T/cmd.out)
# and writes "full|last RATE" per 5 s window to $T/windows: round trips/s
# for COL 1, bytes/s for COL 2 (latmount watch).  Returns CMD's exit code.
windows() {
	local col=$1 rc
	shift
	"$LM" watch "$MNT" 5 "$@" >"$T/watch" 2>"$T/cmd.out"
	rc=$?
	awk -v c=$col '/^(full|last) / { print $1, $(c + 1) }' "$T/watch" >"$T/windows"
	return $rc
}
# check_windows LIMIT WHAT: at least two full windows; none above LIMIT by
# more than 10% (the cap), and every full window but the last within 10% of
# it (the pass's work runs out in its last full window: a replay ends with
# directory times, which read no bytes).
check_windows() {
	local full
	echo "  $2: $(tr '\n' ' ' <"$T/windows")"
	full=$(grep -c '^full ' "$T/windows")
	[ "$full" -ge 2 ] || no "$2: only $full full 5 s windows: $(cat "$T/windows")"
	awk -v lim="$1" -v n="$full" '$1 == "full" && (++k < n && $2 < 0.9 * lim || $2 > 1.1 * lim)' \
		"$T/windows" | grep -q . && no "$2: a window off $1 by more than 10%: $(tr '\n' ' ' <"$T/windows")"
	return 0
}

t budget_scan_max_ops
"$LM" start "$T/s1" "$MNT" 100 >/dev/null || no "latmount start failed"
windows 1 "$CUTOVER" -q scan "$MNT" -o "$T/m1.cmf" -j 16 --max-ops 400 || no "scan failed: $(cat "$T/cmd.out")"
check_windows 400 "scan --max-ops 400, round trips/s"
"$LM" stop "$MNT" >/dev/null

t budget_replay_max_ops
"$LM" start "$T/s2" "$MNT" 100 >/dev/null || no "latmount start failed"
windows 1 "$CUTOVER" -q replay "$T/s2.log" --source "$MNT" --target "$T/d1" -j 16 --max-ops 400 ||
	no "replay failed: $(cat "$T/cmd.out")"
check_windows 400 "replay --max-ops 400, round trips/s"
diff -r "$T/s2" "$T/d1" >/dev/null || no "the copy differs from the source"

t budget_replay_bwlimit
windows 2 "$CUTOVER" -q replay "$T/s2.log" --source "$MNT" --target "$T/d2" -j 16 --bwlimit 600k ||
	no "replay failed: $(cat "$T/cmd.out")"
check_windows 600000 "replay --bwlimit 600k, bytes/s"

# A replay through the gate at its floor most of the time (a --max-latency
# below what latfs answers in): slower, never stuck, and the same copy.
t budget_replay_through_the_gate
timeout 300 "$CUTOVER" -q replay "$T/s2.log" --source "$MNT" --target "$T/d8" -j 16 --adaptive \
	--max-latency 50us || no "the gated replay failed or hung"
diff -r "$T/s2" "$T/d8" >/dev/null || no "the gated copy differs from the source"

# sync: 2 s windows (a pass of this tree lasts seconds), held to 15% (the
# burst is 5% of one); the scan and the replay reach the limit, the diff and
# the commit make no source requests, so the busiest window holds it.
# busiest [MIN_S]: the highest rate of a window at least MIN_S (default 1) long
busiest() { awk -v min="${1:-1}" '$3 >= min && $2 > m { m = $2 } END { print m + 0 }' "$T/windows"; }
sync_peak() { # sync_peak MIN_S STATE [sync options]: the busiest window of at least MIN_S
	local min=$1
	shift
	"$LM" watch "$MNT" 2 "$CUTOVER" sync --state "$@" --no-syslog >"$T/watch" 2>"$T/cmd.out" ||
		no "sync failed: $(cat "$T/cmd.out")"
	awk '/^(full|last) / { print $1, $2, $4 }' "$T/watch" >"$T/windows"
	busiest "$min"
}
t budget_sync_uses_init_limit_and_its_override
"$CUTOVER" init --source "$MNT" --target "$T/d3" --state "$T/st3" --max-ops 800 || no "init failed"
grep -qx 'max_ops=800' "$T/st3/config" || no "init did not record max_ops: $(cat "$T/st3/config")"
r3=$(sync_peak 1 "$T/st3")
"$CUTOVER" init --source "$MNT" --target "$T/d4" --state "$T/st4" --max-ops 5000 || no "init failed"
r4=$(sync_peak 1 "$T/st4" --max-ops 500)
"$CUTOVER" init --source "$MNT" --target "$T/d5" --state "$T/st5" || no "init failed"
# The control: the same sync unlimited, on a fresh mount (the kernel caches
# what the syncs before it looked up).  Its source requests can be over
# before a window could open, so its rate is its round trips over its whole
# time: above the limits, or they proved nothing.
"$LM" stop "$MNT" >/dev/null
"$LM" start "$T/s2" "$MNT" 100 >/dev/null || no "latmount start failed"
read -r c0 _ < <("$LM" trips "$MNT")
t0=$(date +%s.%N)
"$CUTOVER" sync --state "$T/st5" --no-syslog || no "the unlimited sync failed"
t1=$(date +%s.%N)
read -r c1 _ < <("$LM" trips "$MNT")
r5=$(awk -v n=$((c1 - c0)) -v s="$(echo "$t1 - $t0" | bc)" 'BEGIN { printf "%d", n / s }')
echo "  busiest 2 s window of a sync with init's --max-ops 800: $r3 round trips/s; with sync --max-ops 500 over init's 5000: $r4; unlimited, over its whole time: $r5 ($((c1 - c0)) round trips)"
[ "$r3" -ge 680 ] && [ "$r3" -le 920 ] || no "sync with init's 800 ops/s peaked at $r3"
[ "$r4" -ge 425 ] && [ "$r4" -le 575 ] || no "sync --max-ops 500 peaked at $r4"
[ "$r5" -gt 900 ] || no "an unlimited sync made $r5 round trips/s: too slow to tell a limit"
# The unlimited pass measured its source all the same.
h5=$(tail -n 1 "$T/st5/history")
echo "  its history line: ${h5#* src_ops=}"
awk '{ for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] } }
	END { exit !(v["src_ops"] > 1000 && v["src_ops_s"] > 0 && v["src_p50_us"] > 50 &&
		     v["src_p99_us"] >= v["src_p50_us"]) }' <<<"$h5" ||
	no "the unlimited sync's history has no measure of the source: $h5"
"$LM" stop "$MNT" >/dev/null

t budget_init_records_the_gate
"$CUTOVER" init --source "$T/s2" --target "$T/d6" --state "$T/st6" --adaptive --max-latency 1.5ms ||
	no "init failed"
grep -qx 'adaptive=1' "$T/st6/config" && grep -qx 'max_latency_ns=1500000' "$T/st6/config" ||
	no "init did not record the gate: $(cat "$T/st6/config")"
"$CUTOVER" scan "$T/s2" -o "$T/x.cmf" --max-latency 3 2>/dev/null && no "--max-latency 3 (no unit) was taken"

# An --adaptive scan (16 threads) behind 1 ms; at 6 s the latency steps to
# 10 ms (not of the scan's making), at 12 s back to 1 ms.  From the trace's
# windows (~0.2 s each; peak: the most requests in flight in it): before,
# the most in flight in the 3 s before the step; the in-flight must fall to
# a quarter of it within 5 s of the step, and climb back to half of it
# within 30 s of the step back.  The tree is big enough that the scan
# outlasts that (it fails the case, not passes it, when it does not).
# 1 ms, not a NAS's 200 us: the gate holds the in-flight where a request
# takes 1.5-2 times the unloaded latency, and the scan's own CPU counts in
# that time.  A sanitizer's build on 2 busy cores adds some 100 us to a
# request at 5 in flight: behind 200 us the gate rightly holds the scan
# below 4, too few to tell a cut to a quarter; behind 1 ms it climbs to 8-16
# (not the ThreadSanitizer build beside CI's other suites: skipped there).
t budget_adaptive_cuts_on_a_latency_step_and_recovers
# Its premise is a scan whose requests take the source's time, not the
# client's CPU: the gate counts both.
case "$BUILD" in *tsan*)
	skip "a ThreadSanitizer build adds more CPU to each request than the source's 1 ms on CI's busy cores (the gate then rightly holds 3 in flight, too few to tell a cut); the gate's timing is checked in the other builds, its threads here by budget_replay_through_the_gate"
	finish
	;;
esac
"$GEN" create "$T/s7" --users 10 --msgs 4000 --size-scale 0.01 --seed 7 >/dev/null
"$LM" start "$T/s7" "$MNT" 1000 >/dev/null || no "latmount start failed"
(
	sleep 6 && "$LM" delay "$MNT" 10000 >/dev/null && date +%s.%N >"$T/step_up"
	sleep 6 && "$LM" delay "$MNT" 1000 >/dev/null && date +%s.%N >"$T/step_down"
) &
stepper=$!
date +%s.%N >"$T/start"
CUTOVER_BUDGET_TRACE=$T/trace "$CUTOVER" -q scan "$MNT" -o "$T/m7.cmf" -j 16 --hash all --adaptive ||
	no "the adaptive scan failed"
date +%s.%N >"$T/end"
wait $stepper || no "latmount delay failed"
"$LM" stop "$MNT" >/dev/null
up=$(echo "$(cat "$T/step_up") - $(cat "$T/start")" | bc)
down=$(echo "$(cat "$T/step_down") - $(cat "$T/start")" | bc)
read -r before cut_at cut_to back_at back_to last < <(awk -v up="$up" -v down="$down" '
	{ t = $1; sub("peak=", "", $3); p = $3 + 0 }
	t >= up - 3 && t < up && p > before { before = p }
	t >= up && t < down && !cut_at && before && p <= before / 4 { cut_at = t - up; cut_to = p }
	t >= down && !back_at && before && p >= before / 2 { back_at = t - down; back_to = p }
	END { printf "%d %s %d %s %d %.1f\n", before, cut_at ? cut_at : "-", cut_to,
		back_at ? back_at : "-", back_to, t }' "$T/trace")
echo "  latency 1ms -> 10ms at ${up}s, back at ${down}s; scan ended at ${last}s (trace)"
echo "  in flight before the step: $before; cut to $cut_to after ${cut_at}s; back to $back_to after ${back_at}s"
[ "$before" -ge 4 ] || no "the scan never had 4 requests in flight before the step: $before"
[ "$cut_at" != - ] && [ "$(echo "$cut_at <= 5" | bc)" = 1 ] ||
	no "in flight not cut to a quarter of $before within 5 s of the step ($cut_at)"
[ "$back_at" != - ] || [ "$(echo "$last - $down >= 30" | bc)" = 0 ] ||
	no "in flight not back to half of $before within 30 s of the step back"
[ "$back_at" != - ] || no "the scan ended $(echo "$last - $down" | bc)s after the step back, before it climbed back (a bigger tree is needed)"
[ "$back_at" = - ] || [ "$(echo "$back_at <= 30" | bc)" = 1 ] || no "in flight back only after ${back_at}s"
finish
