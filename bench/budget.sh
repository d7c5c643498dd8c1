#!/usr/bin/env bash
# bench/budget.sh - issue 18: what --max-ops costs and holds.
#   1. Unlimited passes against the binary of OLD_CUTOVER (the build before
#      the source budget), side by side in one run, RUNS times each,
#      alternating: a local scan (hot cache), a scan and a replay (initial
#      copy) through bench/latfs at DELAY_US.  Skipped without OLD_CUTOVER.
#   2. A scan and a replay through latfs with --max-ops MAX_OPS (2000): the
#      round trips latfs answered in each 5 s window (latmount watch).
# Writes build/bench/results-budget.md.  Needs root and FUSE (bench/latmount).
. "$(dirname "$0")/lib.sh"
DELAY=${DELAY_US:-200}
MAX_OPS=${MAX_OPS:-2000}
OLD=${OLD_CUTOVER:-}
SRC="$B/budget-src"
MNT="$B/budget-mnt"
LM="$ROOT/bench/latmount"
export LATFS="$ROOT/$BUILD/latfs"
OUT="$B/results-budget.md"

cleanup() { "$LM" stop "$MNT" >/dev/null 2>&1 || true; }
trap cleanup EXIT
if [ ! -f "$SRC.stamp" ]; then
	rm -rf "$SRC"
	"$GEN" create "$SRC" --users 40 --msgs 870 --size-scale 0.1 --seed 7 >"$SRC.gen" || exit 1
	touch "$SRC.stamp"
fi
entries=$(sed -n 's/.*entries=\([0-9]*\).*/\1/p' "$SRC.gen")
"$CUTOVER" -q scan "$SRC" -o "$B/budget-src.cmf" -j 4 --maildir &&
	"$CUTOVER" -q diff --from-empty "$B/budget-src.cmf" -o "$B/budget.log" || exit 1
cleanup
"$LM" start "$SRC" "$MNT" "$DELAY" >/dev/null || { echo "bench: cannot mount latfs" >&2; exit 1; }
: >"$B/times"

replay_once() { # replay_once NAME BINARY [options]
	local name=$1 bin=$2
	shift 2
	rm -rf "$B/budget-dst" "$B/budget-dst.cutover-journal"
	timed "$name" "$bin" -q replay "$B/budget.log" --source "$MNT" --target "$B/budget-dst" -j 16 "$@"
}
if [ -n "$OLD" ]; then
	for ((r = 0; r < RUNS; r++)); do
		for v in old new; do
			bin=$CUTOVER
			[ $v = old ] && bin=$OLD
			timed "local_scan_$v" "$bin" -q scan "$SRC" -o "$B/budget-m.cmf" -j 4 --maildir
			timed "latfs_scan_$v" "$bin" -q scan "$MNT" -o "$B/budget-m.cmf" -j 16 --maildir
			replay_once "latfs_replay_$v" "$bin"
		done
	done
fi

"$LM" watch "$MNT" 5 "$CUTOVER" -q scan "$MNT" -o "$B/budget-m.cmf" -j 16 --maildir \
	--max-ops "$MAX_OPS" >"$B/budget-scan.win"
rm -rf "$B/budget-dst" "$B/budget-dst.cutover-journal"
"$LM" watch "$MNT" 5 "$CUTOVER" -q replay "$B/budget.log" --source "$MNT" --target "$B/budget-dst" \
	-j 16 --max-ops "$MAX_OPS" >"$B/budget-replay.win"

{
	echo "# bench/budget.sh: $entries entries, latfs at $DELAY us, $(nproc) cores, $(date -u +%F)"
	echo
	if [ -n "$OLD" ]; then
		echo "Unlimited passes, median of $RUNS (s), old = $OLD:"
		echo
		echo "| pass | old | new | new/old |"
		echo "|---|---|---|---|"
		for n in local_scan latfs_scan latfs_replay; do
			o=$(median "${n}_old") w=$(median "${n}_new")
			echo "| $n | $o | $w | $(ratio "$w" "$o") |"
		done
		echo
	fi
	for p in scan replay; do
		echo "--max-ops $MAX_OPS, $p: round trips/s per 5 s window (full windows; last: the pass ended in it):"
		awk '{ printf "%s%s %s (%ss)", (NR > 1 ? ", " : ""), $1, $2, $4 } END { print "" }' "$B/budget-$p.win"
		awk -v m="$MAX_OPS" '$1 == "full" { n++; d = ($2 - m) / m; if (d < 0) d = -d; if (d > w) w = d }
			END { printf "full windows: %d, worst %.1f%% off\n\n", n, 100 * w }' "$B/budget-$p.win"
	done
} >"$OUT"
cat "$OUT"
