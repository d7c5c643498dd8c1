#!/usr/bin/env bash
# bench/adaptive.sh - issue 18: what --adaptive does against a loaded source.
#   1. Settling.  latfs at LOAD_DELAY_US (1000) with slots=SLOTS (4): the
#      server answers SLOTS requests at once and queues the rest, so more in
#      flight buys no throughput, only latency.  A sweep of fixed thread
#      counts (-j 1 2 4 8 16 32) and an --adaptive -j 32 scan, RUNS times
#      each, interleaved, each on a fresh mount.  Throughput: the round trips
#      latfs answered over the pass's time; latency: the median of the pass's
#      requests as cutover measured them (CUTOVER_BUDGET_TRACE's windows,
#      weighted by requests); unloaded latency: that of -j 1.
#   2. Reaction.  An --adaptive -j 16 --hash all scan through latfs at
#      200 us, no queue; at STEP_S (8) s the delay steps to 2 ms, at 2*STEP_S
#      back.  From the trace: the most in flight in the 3 s before the step,
#      when the in-flight fell to a quarter of it, when it climbed back to
#      half of it.
#   3. docs/adaptive.png: ops/s, latency and requests in flight of 2 over
#      time (gnuplot).
# PLOT_ONLY=1 remakes the plot and the results from the last run.
# Writes build/bench/results-adaptive.md.  Needs root and FUSE (bench/latmount).
. "$(dirname "$0")/lib.sh"
LOAD_DELAY=${LOAD_DELAY_US:-1000}
SLOTS=${SLOTS:-4}
STEP=${STEP_S:-8}
LM="$ROOT/bench/latmount"
MNT="$B/adaptive-mnt"
export LATFS="$ROOT/$BUILD/latfs"
OUT="$B/results-adaptive.md"
PNG=${ADAPTIVE_PNG:-$ROOT/docs/adaptive.png}
cleanup() { "$LM" stop "$MNT" >/dev/null 2>&1 || true; }
trap cleanup EXIT

gen() { # gen NAME ARGS...: a generated store under $B/NAME, made once
	local t="$B/$1"
	shift
	if [ ! -f "$t.stamp" ]; then
		rm -rf "$t"
		"$GEN" create "$t" "$@" >"$t.gen" || exit 1
		touch "$t.stamp"
	fi
}
# PLOT_ONLY=1: remake the plot from the last run's trace
if [ -z "${PLOT_ONLY:-}" ]; then
gen adaptive-src --users 15 --msgs 870 --size-scale 0.1 --seed 11
gen adaptive-step --users 15 --msgs 4000 --size-scale 0.01 --seed 12

# one NAME [scan options]: a scan of adaptive-src on a fresh loaded mount;
# appends "NAME seconds round_trips p50_us" to $B/adaptive.runs
one() {
	local name=$1 c0 c1 t0 t1
	shift
	cleanup
	LATFS_OPTS="slots=$SLOTS" "$LM" start "$B/adaptive-src" "$MNT" "$LOAD_DELAY" >/dev/null || exit 1
	rm -f "$B/adaptive.trace"
	read -r c0 _ < <("$LM" trips "$MNT")
	t0=$(date +%s.%N)
	CUTOVER_BUDGET_TRACE="$B/adaptive.trace" "$CUTOVER" -q scan "$MNT" -o "$B/adaptive.cmf" "$@" || exit 1
	t1=$(date +%s.%N)
	read -r c1 _ < <("$LM" trips "$MNT")
	# the median of the pass's requests, from its windows' medians
	p50=$(awk '{ split($4, r, "="); split($7, l, "="); n += r[2]; w[NR] = r[2]; v[NR] = l[2] }
		END { for (i = 1; i <= NR; i++) for (j = i + 1; j <= NR; j++) if (v[j] < v[i]) {
			x = v[i]; v[i] = v[j]; v[j] = x; x = w[i]; w[i] = w[j]; w[j] = x }
		for (i = 1; i <= NR; i++) { s += w[i]; if (s >= n / 2) { print v[i]; exit } } }' "$B/adaptive.trace")
	echo "$name $(echo "$t1 - $t0" | bc) $((c1 - c0)) $p50" >>"$B/adaptive.runs"
}

: >"$B/adaptive.runs"
for ((r = 0; r < RUNS; r++)); do
	for j in 1 2 4 8 16 32; do one "j$j" -j $j; done
	one adaptive -j 32 --adaptive
done
cleanup

# 2. The step.
"$LM" start "$B/adaptive-step" "$MNT" 200 >/dev/null || exit 1
rm -f "$B/adaptive-step.trace"
(
	sleep "$STEP" && "$LM" delay "$MNT" 2000 >/dev/null && date +%s.%N >"$B/adaptive.up"
	sleep "$STEP" && "$LM" delay "$MNT" 200 >/dev/null && date +%s.%N >"$B/adaptive.down"
) &
date +%s.%N >"$B/adaptive.start"
CUTOVER_BUDGET_TRACE="$B/adaptive-step.trace" "$CUTOVER" -q scan "$MNT" -o "$B/adaptive.cmf" \
	-j 16 --hash all --adaptive || exit 1
wait
cleanup
fi
up=$(echo "$(cat "$B/adaptive.up") - $(cat "$B/adaptive.start")" | bc)
down=$(echo "$(cat "$B/adaptive.down") - $(cat "$B/adaptive.start")" | bc)
read -r before cut_at cut_to back_at back_to last < <(awk -v up="$up" -v down="$down" '
	{ t = $1; sub("peak=", "", $3); p = $3 + 0 }
	t >= up - 3 && t < up && p > before { before = p }
	t >= up && t < down && !cut_at && before && p <= before / 4 { cut_at = t - up; cut_to = p }
	t >= down && !back_at && before && p >= before / 2 { back_at = t - down; back_to = p }
	END { printf "%d %s %d %s %d %.1f\n", before, cut_at ? cut_at : "-", cut_to,
		back_at ? back_at : "-", back_to, t }' "$B/adaptive-step.trace")

# 3. The plot.
if command -v gnuplot >/dev/null; then
	sed 's/[a-z0-9_]*=//g' "$B/adaptive-step.trace" >"$B/adaptive-step.dat"
	gnuplot <<-GP
	set terminal pngcairo size 900,760 font ",10"
	set output "$PNG"
	set multiplot layout 3,1 title "cutover scan -j 16 --adaptive through latfs: latency 200 us, 2 ms from ${up%.*} s to ${down%.*} s"
	set xrange [0:*]
	set arrow 1 from $up, graph 0 to $up, graph 1 nohead dt 2
	set arrow 2 from $down, graph 0 to $down, graph 1 nohead dt 2
	set ylabel "operations/s"
	plot "$B/adaptive-step.dat" using 1:5 with steps lw 2 title "source operations/s (windows of ~0.2 s)"
	set ylabel "latency (us)"
	set logscale y
	plot "$B/adaptive-step.dat" using 1:7 with steps lw 2 title "p50", "" using 1:8 with steps title "p99", "" using 1:9 with lines dt 3 title "baseline (unloaded, learnt)"
	unset logscale y
	set ylabel "in flight"
	set xlabel "seconds"
	plot "$B/adaptive-step.dat" using 1:2 with steps lw 2 title "limit", "" using 1:3 with steps title "most in flight in the window"
	unset multiplot
	GP
fi

{
	echo "# bench/adaptive.sh: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), $(date -u +%F)"
	echo
	echo "1. latfs at $LOAD_DELAY us, slots=$SLOTS; scan of $(sed -n 's/.*entries=\([0-9]*\).*/\1/p' "$B/adaptive-src.gen") entries, median of $RUNS:"
	echo
	echo "| scan | seconds | round trips/s | p50 latency (us) | p50 / unloaded |"
	echo "|---|---:|---:|---:|---:|"
	base=$(awk '$1 == "j1" { print $4 }' "$B/adaptive.runs" | sort -g | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }')
	for n in j1 j2 j4 j8 j16 j32 adaptive; do
		awk -v n="$n" -v b="$base" '$1 == n { print $2, $3 / $2, $4 }' "$B/adaptive.runs" | sort -g |
			awk -v n="$n" -v b="$base" '{ s[NR] = $1; r[NR] = $2; l[NR] = $3 }
			END { m = int((NR + 1) / 2); printf "| %s | %.2f | %.0f | %.0f | %.2f |\n", n, s[m], r[m], l[m], l[m] / b }'
	done
	echo
	echo "2. --adaptive -j 16 --hash all, latency 200 us -> 2 ms at ${up}s, back at ${down}s (scan ended at ${last}s):"
	echo "in flight before the step (most in a window, last 3 s): $before; cut to $cut_to after ${cut_at}s; back to $back_to after ${back_at}s"
} >"$OUT"
cat "$OUT"
