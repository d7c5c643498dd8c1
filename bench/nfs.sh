#!/usr/bin/env bash
# bench/nfs.sh - issue 7: cutover against find and rsync where the users live,
# on a source mounted with NAS-like latency (bench/latfs.c through
# bench/latmount: DELAY_US per lookup, getattr, readdir batch, open, read).
# The target is local.  Writes build/bench/results-nfs.md and two PNG plots
# under docs/ (gnuplot).
. "$(dirname "$0")/lib.sh"
DELAY=${DELAY_US:-200}
THREADS=${NFS_THREADS:-"1 4 16 64"}
SRC=$(tree_nfs) || exit 1
MNT="$B/nfs-mnt"
DCUT="$B/nfs-dst-cutover"
DRS="$B/nfs-dst-rsync"
LM="$ROOT/bench/latmount"
export LATFS="$ROOT/$BUILD/latfs"

cleanup() { "$LM" stop "$MNT" >/dev/null 2>&1 || true; }
trap cleanup EXIT
mount_src() { "$LM" start "$SRC" "$MNT" "$DELAY" >/dev/null || { echo "bench: cannot mount latfs" >&2; exit 1; }; }

entries=$(sed -n 's/.*entries=\([0-9]*\).*/\1/p' "$SRC.gen")
: >"$B/times"
cleanup
# Both targets start equal to the source (a previous initial copy); cutover's
# as its own initial copy makes it, without tmp/ contents and lock files
# (the maildir policy leaves them out).
rm -rf "$DCUT" "$DRS"
cp -a "$SRC" "$DCUT" && cp -a "$SRC" "$DRS"
find "$DCUT" -path '*/tmp/*' -delete
find "$DCUT" -name '*.lock' -type f -delete
# ... and with the source's directory times, which those deletions changed.
(cd "$SRC" && find . -type d -printf '%P\0') | while IFS= read -r -d '' d; do
	[ -n "$d" ] && touch -h -m -r "$SRC/$d" "$DCUT/$d"
done
mount_src
echo "bench: $entries entries at $DELAY us per operation" >&2

# Full scans by thread count, and the one-thread find.
timed find find "$MNT" -printf '%p %s %T@ %i %n %m %U %G\n'
for j in $THREADS; do
	timed "scan_j$j" "$CUTOVER" -q scan "$MNT" -o "$B/nfs-m0" -j "$j" --maildir
done
# The widest scan is the target's figure and takes seconds: two more runs,
# the median is quoted.  Then the same scans through latfs with up to 256
# worker threads (latfs's old default, see latfs.c WORKER THREADS),
# to show what the simulator's own CPU costs on these cores.
jmax=${THREADS##* }
for r in 2 3; do timed "scan_j$jmax" "$CUTOVER" -q scan "$MNT" -o "$B/nfs-m0" -j "$jmax" --maildir; done
"$LM" stop "$MNT" >/dev/null
LATFS_OPTS=max_threads=256 mount_src
for r in 1 2 3; do timed scan_w256 "$CUTOVER" -q scan "$MNT" -o "$B/nfs-m0" -j "$jmax" --maildir; done
"$LM" stop "$MNT" >/dev/null
mount_src
# The no-change pass of each tool.
timed rsync_nochange rsync -a --delete "$MNT/" "$DRS/"
timed cutover_nochange bash -c "'$CUTOVER' -q scan '$MNT' -o '$B/nfs-mnc' --prev '$B/nfs-m0' --maildir &&
	'$CUTOVER' -q diff '$B/nfs-m0' '$B/nfs-mnc' -o '$B/nfs-lnc' &&
	'$CUTOVER' -q replay '$B/nfs-lnc' --source '$MNT' --target '$DCUT' --journal '$B/nfs-j0'"

# A mail day on the server (the mount is read-only: unmount, change, remount).
"$LM" stop "$MNT" >/dev/null
"$GEN" mutate "$SRC" --seed 11 --percent 1 >"$B/nfs-day.txt"
sleep 2.5
mount_src
timed incr_scan "$CUTOVER" -q scan "$MNT" -o "$B/nfs-m1" --prev "$B/nfs-m0" --maildir
timed nightly bash -c "'$CUTOVER' -q scan '$MNT' -o '$B/nfs-m1' --prev '$B/nfs-m0' --maildir &&
	'$CUTOVER' -q diff '$B/nfs-m0' '$B/nfs-m1' -o '$B/nfs-l1' &&
	'$CUTOVER' -q replay '$B/nfs-l1' --source '$MNT' --target '$DCUT' --journal '$B/nfs-j1'"
timed rsync_day rsync -a --delete "$MNT/" "$DRS/"

# The final pass: mail stopped after a last hour of changes.
"$LM" stop "$MNT" >/dev/null
"$GEN" mutate "$SRC" --seed 12 --percent 0.05 >"$B/nfs-final.txt"
sleep 2.5
mount_src
# Its three steps timed apart (the pass is the sum of their medians), with
# latfs's op counts.  The scan and the diff change nothing, so each runs three
# times (a pass of half a second is at the mercy of a shared machine's noise);
# the replay changes the target and runs once.
"$LM" stats "$MNT" >"$B/nfs-final-ops0.txt"
timed final_scan "$CUTOVER" -q scan "$MNT" -o "$B/nfs-m2" --prev "$B/nfs-m1" --maildir
"$LM" stats "$MNT" >"$B/nfs-final-ops1.txt"
for r in 2 3; do timed final_scan "$CUTOVER" -q scan "$MNT" -o "$B/nfs-m2" --prev "$B/nfs-m1" --maildir; done
for r in 1 2 3; do timed final_diff "$CUTOVER" -q diff "$B/nfs-m1" "$B/nfs-m2" -o "$B/nfs-l2"; done
"$LM" stats "$MNT" >"$B/nfs-final-ops1b.txt"
timed final_replay "$CUTOVER" -q replay "$B/nfs-l2" --source "$MNT" --target "$DCUT" --journal "$B/nfs-j2"
"$LM" stats "$MNT" >"$B/nfs-final-ops2.txt"
echo "final $(awk -v a="$(median final_scan)" -v b="$(median final_diff)" -v c="$(median final_replay)" 'BEGIN {printf "%.2f", a + b + c}') 0 0" >>"$B/times"
timed rsync_final rsync -a --delete "$MNT/" "$DRS/"
"$LM" stop "$MNT" >/dev/null

# Both targets must equal the source (checked locally, outside the timing).
par_cut=$(rsync -anciH --delete --exclude='tmp/*' --exclude='*.lock' "$SRC/" "$DCUT/" | wc -l)
par_rs=$(rsync -anci --delete "$SRC/" "$DRS/" | wc -l)

sec() { median "$1"; }
find_s=$(sec find)
{
echo "## NAS latency (issue 7) — $(date -u +%Y-%m-%d), $(machine)"
echo
echo "Source: $entries-entry generated maildir store mounted through latfs at $DELAY µs per"
echo "operation (lookup, getattr, readdir batch, open, read); target on local disk."
echo "One run each (a one-thread walk takes about a minute), the -j $jmax scans excepted (below)."
echo
echo "| full scan | seconds | entries/s | speed-up over one-thread find |"
echo "|---|---:|---:|---:|"
echo "| find -printf (1 thread) | $find_s | $(awk -v e="$entries" -v s="$find_s" 'BEGIN{printf "%.0f", e/s}') | 1 |"
for j in $THREADS; do
	s=$(sec "scan_j$j")
	echo "| cutover scan -j $j | $s | $(awk -v e="$entries" -v s="$s" 'BEGIN{printf "%.0f", e/s}') | $(ratio "$find_s" "$s")x |"
done
echo "| cutover scan -j $jmax, latfs with 256 worker threads | $(sec scan_w256) | $(awk -v e="$entries" -v s="$(sec scan_w256)" 'BEGIN{printf "%.0f", e/s}') | $(ratio "$find_s" "$(sec scan_w256)")x |"
echo
echo "Scans at -j $jmax: median of 3 runs ($(grep "^scan_j$jmax " "$B/times" | cut -d' ' -f2 | tr '\n' ' ')s; with 256 latfs workers $(grep '^scan_w256 ' "$B/times" | cut -d' ' -f2 | tr '\n' ' ')s)."
echo
echo "| pass | cutover s | rsync -a --delete s | cutover faster by |"
echo "|---|---:|---:|---:|"
echo "| no change (scan+diff+replay) | $(sec cutover_nochange) | $(sec rsync_nochange) | $(ratio "$(sec rsync_nochange)" "$(sec cutover_nochange)")x |"
echo "| nightly after a 1% mail day | $(sec nightly) | $(sec rsync_day) | $(ratio "$(sec rsync_day)" "$(sec nightly)")x |"
echo "| final pass (0.05% more, mail stopped) | $(sec final) | $(sec rsync_final) | $(ratio "$(sec rsync_final)" "$(sec final)")x |"
echo
ops() { # ops FILE_BEFORE FILE_AFTER: latfs's lookups, opens and reads between two stats
	for k in lookup opendir open read; do
		a=$(tr ' ' '\n' <"$1" | sed -n "s/^$k=//p") b=$(tr ' ' '\n' <"$2" | sed -n "s/^$k=//p")
		printf '%s%s %s' "${sep:-}" "$((b - a))" "$k"
		sep=', '
	done
	sep=''
}
echo "Final pass by step: scan $(sec final_scan) s ($(ops "$B/nfs-final-ops0.txt" "$B/nfs-final-ops1.txt")), diff $(sec final_diff) s, replay $(sec final_replay) s ($(ops "$B/nfs-final-ops1b.txt" "$B/nfs-final-ops2.txt")). Scan and diff: medians of 3 ($(grep '^final_scan ' "$B/times" | cut -d' ' -f2 | tr '\n' ' ')s; $(grep '^final_diff ' "$B/times" | cut -d' ' -f2 | tr '\n' ' ')s)."
echo
echo "Incremental scan alone after the day: $(sec incr_scan) s. Mail day: \`$(cat "$B/nfs-day.txt")\`"
echo
echo "Parity afterwards (lines of \`rsync -anciH --delete SRC/ DST/\`, for cutover's target with"
echo "tmp/ contents and lock files excluded as the maildir policy does): cutover's target $par_cut, rsync's target $par_rs."
} | tee "$B/results-nfs.md"

# Plots.
if command -v gnuplot >/dev/null; then
	{
		echo "1 $(awk -v e="$entries" -v s="$find_s" 'BEGIN{print e/s}') find"
		for j in $THREADS; do echo "$j $(awk -v e="$entries" -v s="$(sec "scan_j$j")" 'BEGIN{print e/s}')"; done
	} >"$B/nfs-threads.dat"
	printf '"no change" %s %s\n"nightly (1%%)" %s %s\n"final (0.05%%)" %s %s\n' \
		"$(sec cutover_nochange)" "$(sec rsync_nochange)" "$(sec nightly)" "$(sec rsync_day)" \
		"$(sec final)" "$(sec rsync_final)" >"$B/nfs-passes.dat"
	gnuplot <<GP
set terminal pngcairo size 800,500 noenhanced
set output "$ROOT/docs/nfs-scan-threads.png"
set title "Full scan of $entries entries at $DELAY us per operation (2 cores)"
set xlabel "threads"; set ylabel "entries per second"; set logscale x 2; set grid
set key left top
plot "$B/nfs-threads.dat" every ::1 using 1:2 with linespoints lw 2 title "cutover scan", \
     "$B/nfs-threads.dat" every ::0::0 using 1:2 with points pt 7 ps 2 title "find -printf (1 thread)"
set output "$ROOT/docs/nfs-passes.png"
set title "Pass times against rsync -a --delete ($DELAY us per operation)"
set style data histograms; set style fill solid 0.8; set logscale y; set ylabel "seconds (log)"
unset logscale x; set xlabel ""; set key outside bottom center horizontal
plot "$B/nfs-passes.dat" using 2:xtic(1) title "cutover (scan+diff+replay)", "" using 3 title "rsync -a --delete"
GP
fi
