#!/usr/bin/env bash
# bench/scan.sh - issues 2 and 3: full scan against find, manifest size and
# memory; then a 1% mail day and the incremental scan against a full scan and
# `rsync -an --delete`, with system call counts.  Hot cache, local disk.
. "$(dirname "$0")/lib.sh"
SRC=$(tree_1m) || exit 1
entries=$(awk -F'entries=' '{print $2}' "$SRC.gen" | awk '{print $1}')
: >"$B/times"
echo "bench: scan of $SRC ($entries entries), $RUNS runs each, interleaved" >&2
find "$SRC" >/dev/null # warm the cache once
for r in $(seq 1 "$RUNS"); do
	timed find find "$SRC" -printf '%p %s %T@ %i %n %m %U %G\n'
	timed scan_default "$CUTOVER" -q scan "$SRC" -o "$B/m-full"
	timed scan_j2 "$CUTOVER" -q scan "$SRC" -o "$B/m-full" -j 2
	timed scan_j32 "$CUTOVER" -q scan "$SRC" -o "$B/m-full" -j 32
done
mbytes=$(stat -c %s "$B/m-full")
mentries=$(entries_of "$B/m-full") # the tree grows a day per run

# The mail day.  A copy of the tree before it is rsync's dry-run target.
"$CUTOVER" -q scan "$SRC" -o "$B/m-before" --maildir || exit 1
if [ ! -f "$B/dst-rsync.stamp" ]; then
	rm -rf "$B/dst-rsync"
	rsync -aH "$SRC/" "$B/dst-rsync/" && touch "$B/dst-rsync.stamp"
fi
rsync -aH --delete "$SRC/" "$B/dst-rsync/" # in step with the tree before the day
"$GEN" mutate "$SRC" --seed "$(date +%s)" --percent 1 >"$B/mutate.txt"
sleep 2.5 # nightly scans are hours apart: let the day's last changes age past the racy window
"$CUTOVER" -q scan "$SRC" -o "$B/m-after" --maildir
for r in $(seq 1 "$RUNS"); do
	timed incr "$CUTOVER" -q scan "$SRC" -o "$B/m-incr" --prev "$B/m-before" --maildir
	timed full_maildir "$CUTOVER" -q scan "$SRC" -o "$B/m-full2" --maildir
	timed rsync_n rsync -an --delete "$SRC/" "$B/dst-rsync/"
done
sc_incr=$(syscalls "$CUTOVER" -q scan "$SRC" -o "$B/m-incr" --prev "$B/m-before" --maildir)
sc_full=$(syscalls "$CUTOVER" -q scan "$SRC" -o "$B/m-full2" --maildir)
sc_rsync=$(syscalls rsync -an --delete "$SRC/" "$B/dst-rsync/")
"$CUTOVER" scan "$SRC" -o "$B/m-incr" --prev "$B/m-before" --maildir 2>"$B/incr.summary"

# Issue 4: the day's diff (two full manifests), its change log, and what
# rsync would have sent for the same day.
for r in $(seq 1 "$RUNS"); do
	timed diff "$CUTOVER" -q diff "$B/m-before" "$B/m-after" -o "$B/l-day"
done
timed diff_1m "$CUTOVER" -q diff "$B/m-before" "$B/m-after" -o "$B/l-day-1m" --mem-limit 1M
"$CUTOVER" diff "$B/m-before" "$B/m-after" -o "$B/l-day" 2>"$B/diff.summary"
same_log=$(same_body "$B/l-day" "$B/l-day-1m" && echo identical || echo DIFFERENT)
dentries=$(sed -n 's/.* \([0-9]*\)+\([0-9]*\) entries in.*/\1 \2/p' "$B/diff.summary" | awk '{print $1 + $2}')
ops=$(sed -n 's/^\(cutover: \)\{0,1\}diff: \([0-9]*\) ops.*/\2/p' "$B/diff.summary")
renames=$(sed -n 's/.* rename \([0-9]*\).*/\1/p' "$B/diff.summary")
creates=$(sed -n 's/.* create \([0-9]*\).*/\1/p' "$B/diff.summary")
links=$(sed -n 's/.* link \([0-9]*\).*/\1/p' "$B/diff.summary")
rsync -an --delete --stats "$SRC/" "$B/dst-rsync/" >"$B/rsync-day-stats.txt" 2>&1

{
echo "## Scan (issues 2, 3) — $(date -u +%Y-%m-%d), $(machine)"
echo
echo "Tree: generated maildir store, $mentries entries when scanned ($entries when generated, then a mail day per run: $(cat "$SRC.gen" | tr -s ' ' | cut -c1-200))."
echo "Hot cache, medians of $RUNS interleaved runs."
echo
echo "| command | median s | ratio to find | peak RSS |"
echo "|---|---:|---:|---:|"
for n in find scan_default scan_j2 scan_j32; do
	echo "| $n | $(median $n) | $(ratio "$(median $n)" "$(median find)") | $(($(medkb $n) / 1024)) MiB |"
done
echo
echo "Manifest: $mbytes bytes for $mentries entries = $(awk -v a="$mbytes" -v b="$mentries" 'BEGIN{printf "%.1f", a/b}') bytes per entry (no hashes)."
echo
echo "Mail day: $(cat "$B/mutate.txt")"
echo
echo "| pass over the changed tree | median s | syscalls | ratio to full scan (time) | (syscalls) |"
echo "|---|---:|---:|---:|---:|"
echo "| incremental scan --prev --maildir | $(median incr) | $sc_incr | $(ratio "$(median full_maildir)" "$(median incr)")x faster | $(ratio "$sc_full" "$sc_incr")x fewer |"
echo "| full scan --maildir | $(median full_maildir) | $sc_full | 1 | 1 |"
echo "| rsync -an --delete (vs. a copy) | $(median rsync_n) | $sc_rsync | $(ratio "$(median rsync_n)" "$(median full_maildir)")x the full scan | |"
echo
echo "Incremental scan's own summary: \`$(sed 's/^cutover: //' "$B/incr.summary")\`"
echo
echo "| diff of the day (issue 4) | result |"
echo "|---|---:|"
echo "| throughput (median of $RUNS) | $(awk -v e="$dentries" -v s="$(median diff)" 'BEGIN{printf "%.2f", e/s/1e6}') M entries/s ($dentries entries in $(median diff) s) |"
echo "| peak RSS, default --mem-limit 32M | $(($(medkb diff) / 1024)) MiB |"
echo "| peak RSS, --mem-limit 1M (log $same_log) | $(($(medkb diff_1m) / 1024)) MiB |"
echo "| change log | $(stat -c %s "$B/l-day") bytes, $ops ops, $(awk -v b="$(stat -c %s "$B/l-day")" -v o="$ops" 'BEGIN{printf "%.1f", b/o}') bytes per op |"
echo "| arriving files that became renames (rename / (rename + create + link)) | $(awk -v r="$renames" -v c="$creates" -v l="$links" 'BEGIN{printf "%.1f", 100*r/(r+c+l)}') % ($renames of $((renames + creates + links))) |"
echo "| rsync -a --delete for the same day: files it would send | $(sed -n 's/^Number of regular files transferred: //p' "$B/rsync-day-stats.txt") ($(sed -n 's/^Total transferred file size: //p' "$B/rsync-day-stats.txt")) |"
echo
echo "Diff's own summary: \`$(sed 's/^cutover: //' "$B/diff.summary")\`"
} | tee "$B/results-scan.md"
