#!/usr/bin/env bash
# bench/copy-nas.sh - issue 5's nightly pass on the ~1M-entry tree where the
# users' source lives: behind NAS latency (bench/latfs.c through
# bench/latmount, DELAY_US per lookup, getattr, readdir batch, open, read; the
# targets stay local).  Run by copy.sh after its local passes, or alone once
# copy.sh has made the two targets.  Both targets are first brought level with
# the source locally (untimed), a full scan through the mount gives the
# previous manifest, then a 1% mail day, and cutover's scan + diff + replay
# and `rsync -a --delete` each read the source through the mount.
. "$(dirname "$0")/lib.sh"
DELAY=${DELAY_US:-200}
SRC=$(tree_1m) || exit 1
DC="$B/copy-cutover" DR="$B/copy-rsync" MNT="$B/copy-mnt"
LM="$ROOT/bench/latmount"
export LATFS="$ROOT/$BUILD/latfs"
[ -d "$DC" ] && [ -d "$DR" ] || { echo "bench: run bench/copy.sh first (it makes $DC and $DR)" >&2; exit 1; }
cleanup() { "$LM" stop "$MNT" >/dev/null 2>&1 || true; }
trap cleanup EXIT
mount_src() { "$LM" start "$SRC" "$MNT" "$DELAY" >/dev/null || { echo "bench: cannot mount latfs" >&2; exit 1; }; }
grep -v '^nas_' "$B/times" >"$B/times.tmp" 2>/dev/null; mv "$B/times.tmp" "$B/times"

# Level: the targets equal the source (cutover's without tmp/ contents and
# lock files, as the maildir policy leaves them out).
cleanup
rsync -aH --delete --exclude='tmp/*' --exclude='*.lock' "$SRC/" "$DC/"
rsync -aH --delete "$SRC/" "$DR/"
mount_src
"$CUTOVER" -q scan "$MNT" -o "$B/nas-m0" -j 64 --maildir || exit 1
"$LM" stop "$MNT" >/dev/null
"$GEN" mutate "$SRC" --seed "$(date +%s)" --percent 1 >"$B/nas-day.txt"
sleep 2.5
mount_src
settle
"$LM" stats "$MNT" >"$B/nas-ops0.txt"
timed nas_scan "$CUTOVER" -q scan "$MNT" -o "$B/nas-m1" --prev "$B/nas-m0" --maildir &&
	timed nas_diff "$CUTOVER" -q diff "$B/nas-m0" "$B/nas-m1" -o "$B/nas-l1" &&
	timed nas_replay "$CUTOVER" replay "$B/nas-l1" --source "$MNT" --target "$DC" --journal "$B/nas-j1"
cp "$B/.err" "$B/nas-replay.txt"
"$LM" stats "$MNT" >"$B/nas-ops1.txt"
echo "nas_cutover $(awk '$1 ~ /^nas_(scan|diff|replay)$/ {s += $2} END {print s}' "$B/times") 0 0" >>"$B/times"
settle
timed nas_rsync bash -c "rsync -a --delete --stats '$MNT/' '$DR/' >'$B/nas-rsync-stats.txt'"
"$LM" stats "$MNT" >"$B/nas-ops2.txt"
"$LM" stop "$MNT" >/dev/null
lookups() { echo $(( $(tr ' ' '\n' <"$2" | sed -n 's/^lookup=//p') - $(tr ' ' '\n' <"$1" | sed -n 's/^lookup=//p') )); }
par_cut=$(rsync -anciH --delete --exclude='tmp/*' --exclude='*.lock' "$SRC/" "$DC/" | wc -l)
par_rs=$(rsync -anci --delete "$SRC/" "$DR/" | wc -l) # rsync -a keeps no hard links: compared without -H
entries=$("$CUTOVER" show "$B/nas-m1" | grep -vc '^#')
{
echo "## Nightly pass behind NAS latency, ~1M-entry tree (issue 5) — $(date -u +%Y-%m-%d), $(machine)"
echo
echo "Source: $entries entries through latfs at $DELAY µs per operation; targets local. One run each."
echo "Mail day: \`$(cat "$B/nas-day.txt")\`"
echo
echo "| nightly pass | seconds | source lookups | cutover faster by |"
echo "|---|---:|---:|---:|"
echo "| cutover scan $(median nas_scan) + diff $(median nas_diff) + replay $(median nas_replay) | $(median nas_cutover) | $(lookups "$B/nas-ops0.txt" "$B/nas-ops1.txt") | $(ratio "$(median nas_rsync)" "$(median nas_cutover)")x |"
echo "| rsync -a --delete | $(median nas_rsync) | $(lookups "$B/nas-ops1.txt" "$B/nas-ops2.txt") | |"
echo
echo "Replay's summary: \`$(grep -v '^$' "$B/nas-replay.txt" | tail -2 | tr '\n' ' ')\`"
echo "rsync's transferred file size: $(awk -F': ' '/Total transferred file size/ {print $2}' "$B/nas-rsync-stats.txt")."
echo "Parity afterwards (rsync -anci lines, with -H for cutover's target, whose tmp/ contents and lock files are excluded): cutover $par_cut, rsync $par_rs."
} | tee "$B/results-copy-nas.md"
