#!/usr/bin/env bash
# bench/copy.sh - issues 5 and 6: the initial copy (scan + diff --from-empty
# + replay) against `rsync -aH` and `cp -a`, then a nightly pass after a 1%
# mail day (incremental scan + diff + replay) against `rsync -a --delete`,
# with bytes copied, on the ~1M-entry tree, local disk.  Before every timed
# command the page cache is dropped (as root: a nightly pass over a mail store
# finds little of it in memory) and the disk left to settle (lib.sh).
. "$(dirname "$0")/lib.sh"
SRC=$(tree_1m) || exit 1
DC="$B/copy-cutover" DR="$B/copy-rsync" DP="$B/copy-cp"
: >"$B/times"
if [ -e "$DC" ] || [ -e "$DR" ] || [ -e "$DP" ]; then
	rm -rf "$DC" "$DR" "$DP"
	# An ext4 without a journal (this VM's) will not reuse an inode freed in
	# the last minute, or six while its inode-table block is dirty, as it is
	# once a neighbour has been allocated: the allocator steps over each one
	# (recently_deleted(), 17% of the kernel's time in a copy that
	# ran first).  The copies are timed once the last run's inodes are older.
	echo "bench: waiting 6 minutes for the deleted copies' inodes to age" >&2
	sleep 370
fi
rm -rf "$B/copy-j0" "$B/copy-j1"
echo "bench: initial copy of $SRC" >&2
settle
timed cutover_initial bash -c "'$CUTOVER' -q scan '$SRC' -o '$B/copy-m0' --maildir &&
	'$CUTOVER' -q diff --from-empty '$B/copy-m0' -o '$B/copy-l0' &&
	'$CUTOVER' -q replay '$B/copy-l0' --source '$SRC' --target '$DC' --journal '$B/copy-j0'"
settle
timed rsync_initial rsync -aH "$SRC/" "$DR/"
settle
timed cp_initial cp -a "$SRC" "$DP"
sync
entries=$(entries_of "$B/copy-m0")
links() { find "$1" -type f -links +1 -printf '%i\n' | sort -u | wc -l; }
l_src=$(links "$SRC") l_cut=$(links "$DC") l_rs=$(links "$DR") l_cp=$(links "$DP")
# tmp/ contents and lock files are left out by the maildir policy, as in nfs.sh.
par0=$(rsync -anciH --delete --exclude='tmp/*' --exclude='*.lock' "$SRC/" "$DC/" | wc -l)

"$GEN" mutate "$SRC" --seed "$(date +%s)" --percent 1 >"$B/copy-day.txt"
sleep 2.5
settle
timed nightly_scan "$CUTOVER" -q scan "$SRC" -o "$B/copy-m1" --prev "$B/copy-m0" --maildir &&
	timed nightly_diff "$CUTOVER" -q diff "$B/copy-m0" "$B/copy-m1" -o "$B/copy-l1" &&
	timed nightly_replay "$CUTOVER" replay "$B/copy-l1" --source "$SRC" --target "$DC" --journal "$B/copy-j1"
cp "$B/.err" "$B/copy-replay1.txt"
echo "cutover_nightly $(awk '$1 ~ /^nightly_/ {s += $2} END {print s}' "$B/times") 0 0" >>"$B/times"
settle
timed rsync_nightly bash -c "rsync -a --delete --stats '$SRC/' '$DR/' >'$B/copy-rsync-stats.txt'"
rs_bytes=$(awk -F': ' '/Total transferred file size/ {print $2}' "$B/copy-rsync-stats.txt")
par1=$(rsync -anciH --delete --exclude='tmp/*' --exclude='*.lock' "$SRC/" "$DC/" | wc -l)
{
echo "## Copy and nightly pass (issues 5, 6) — $(date -u +%Y-%m-%d), $(machine)"
echo
echo "Tree: $entries entries, $(du -sh "$SRC" | cut -f1); local disk to local disk, one run each."
echo
echo "| initial copy | seconds | ratio to rsync -aH | hard-linked inodes (source: $l_src) |"
echo "|---|---:|---:|---:|"
echo "| cutover scan + diff --from-empty + replay | $(median cutover_initial) | $(ratio "$(median cutover_initial)" "$(median rsync_initial)") | $l_cut |"
echo "| rsync -aH | $(median rsync_initial) | 1 | $l_rs |"
echo "| cp -a | $(median cp_initial) | $(ratio "$(median cp_initial)" "$(median rsync_initial)") | $l_cp |"
echo
echo "Parity after the initial copy (rsync -anciH lines, tmp/ contents and lock files excluded as the maildir policy does): $par0."
echo
echo "Mail day: \`$(cat "$B/copy-day.txt")\`"
echo
echo "| nightly pass | seconds | cutover faster by |"
echo "|---|---:|---:|"
echo "| cutover incremental scan + diff + replay | $(median cutover_nightly) (scan $(median nightly_scan), diff $(median nightly_diff), replay $(median nightly_replay)) | |"
echo "| rsync -a --delete | $(median rsync_nightly) | $(ratio "$(median rsync_nightly)" "$(median cutover_nightly)")x |"
echo
echo "Replay's summary: \`$(grep -v '^$' "$B/copy-replay1.txt" | tail -3 | tr '\n' ' ')\`"
echo "rsync's transferred file size: $rs_bytes. Parity after the pass (as above): $par1 lines."
} | tee "$B/results-copy.md"
