#!/usr/bin/env bash
# it_budget.sh - --max-ops and --bwlimit (format/budget.c) as the source sees
# them: the source is mounted through bench/latfs, whose counters give the
# round trips it answered (lookups, getattrs, opens, directory batches with
# entries, reads with data) and the bytes it read.  Every full 5 s window of
# a scan and of a replay must hold the limit to 10%; a sync takes init's
# limit, or its own --max-ops.  Needs /dev/fuse, fusermount3 and
# libfuse3-dev; without them the script says SKIP and records no case.
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
"$LM" stop "$MNT" >/dev/null
finish
