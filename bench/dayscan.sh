#!/usr/bin/env bash
# bench/dayscan.sh - the incremental scan after a mail day (issue 15).  A
# store of DAYSCAN_USERS users (default 1000, 870 messages each) is made
# steady (a full scan, then two incremental ones: messages carried, a
# skeleton beside the last), changed by a mail day of DAYSCAN_PERCENT
# (default 1: every user gets mail, so nearly every block holds a changed
# directory), and scanned against its last manifest.  Most blocks are then
# not copied: the skeleton's runs of their unchanged directories are added
# entry by entry (format/manifest.c, the edge of a change).  With
# OLD=path/to/cutover another build runs beside this one on the same tree
# and manifest; RUNS interleaved runs, medians; both builds' manifests must
# hold the same entries.  Results: $B/results-dayscan.md.
. "$(dirname "$0")/lib.sh"
U=${DAYSCAN_USERS:-1000}
P=${DAYSCAN_PERCENT:-1}
s="$B/day-src"
: >"$B/times"
rm -rf "$s" "$s".*
echo "bench: generating $U users in $s ..." >&2
"$GEN" create "$s" --users "$U" --msgs 870 --size-scale 0.02 --seed 42 >/dev/null &&
	"$CUTOVER" -q scan "$s" -o "$s.m0" --maildir &&
	"$CUTOVER" -q scan "$s" -o "$s.m1" --prev "$s.m0" --maildir &&
	"$CUTOVER" -q scan "$s" -o "$s.m2" --prev "$s.m1" --maildir &&
	"$GEN" mutate "$s" --seed 7 --percent "$P" >/dev/null || exit 1
sleep 2.5 # past the racy window
for r in $(seq "$RUNS"); do
	for b in $bins; do
		timed "$b" "$(bin "$b")" -q scan "$s" -o "$s.out-$b" --prev "$s.m2" --maildir ||
			{ cat "$B/.err" >&2; exit 1; }
	done
done
[ "$bins" = new ] || same_body "$s.out-old" "$s.out-new" ||
	{ echo "bench: the two builds' manifests differ" >&2; exit 1; }
out="$B/results-dayscan.md"
{
	echo "| store | entries | day | build | scan s (median of $RUNS) | peak RSS MiB |"
	echo "|---|---:|---:|---|---:|---:|"
	for b in $bins; do
		echo "| $U users | $(entries_of "$s.out-new") |" \
			"$P% | $b | $(median "$b") | $(awk -v k="$(medkb "$b")" 'BEGIN { printf "%.1f", k / 1024 }') |"
	done
} >"$out"
cat "$out"
rm -rf "$s" "$s".*
