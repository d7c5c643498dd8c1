# it_blocks.sh - blocks that survive between manifests (issue 15): an
# incremental scan that copies unchanged blocks still equals a full scan, and
# a diff that skips equal block pairs writes the log a full decode writes, on
# randomized mail days.  CUTOVER_SEED repeats a run (tests/lib.sh prints it).
. tests/lib.sh

SEED=$CUTOVER_SEED

# Entries without the documented stale fields of carried entries.
view() {
	"$CUTOVER" show "$1" --format jsonl | tail -n +2 |
		sed -e 's/,"ctime_ns":[0-9]*//' -e 's/,"nlink":[0-9]*//' -e 's/,"carried":true//'
}
num() { v=$(sed -n "$1" "$2"); echo "${v:-0}"; }
copied_of() { num 's/.* \([0-9]*\) blocks copied,.*/\1/p' "$1"; }
skipped_of() { num 's/.* \([0-9]*\) equal block pairs skipped.*/\1/p' "$1"; }
joined_of() { num 's/.*skipped (\([0-9]*\) joined.*/\1/p' "$1"; }

# The log of OLD -> NEW with block skip and with every block decoded: the
# same records.  Adds to the totals.
diff_both() {
	expect_rc 0 "$CUTOVER" diff "$1" "$2" -o "$T/skip.log" || return 1
	cp "$T/.err" "$T/skip.err"
	CUTOVER_DIFF_DECODE_ALL=1 expect_rc 0 "$CUTOVER" diff "$1" "$2" -o "$T/full.log" || return 1
	"$CUTOVER" show "$T/skip.log" --format jsonl | tail -n +2 >"$T/skip.j"
	"$CUTOVER" show "$T/full.log" --format jsonl | tail -n +2 >"$T/full.j"
	same "$T/full.j" "$T/skip.j" "$3: log with block skip and decoded log" || return 1
	skipped=$((skipped + $(skipped_of "$T/skip.err")))
	joined=$((joined + $(joined_of "$T/skip.err")))
	[ "$(skipped_of "$T/.err")" = 0 ] || no "$3: CUTOVER_DIFF_DECODE_ALL still skipped blocks"
}

R="$T/store"
"$GEN" create "$R" --users 40 --msgs 150 --seed "$SEED" --size-scale 0.05 >/dev/null || no "generator failed"
sleep 2.2 # past the racy window, so that unchanged directories are trusted

t block_carry_equals_full_scan_and_block_skip_equals_decoded_diff_over_mail_days
"$CUTOVER" -q scan "$R" -o "$T/m0" --maildir || no "first scan failed"
"$CUTOVER" -q scan "$R" -o "$T/i0" --prev "$T/m0" --maildir || no "second scan failed"
prev="$T/i0" copied=0 skipped=0 joined=0
for round in 1 2 3 4 5; do
	extra=""
	[ $round = 3 ] && extra="--same-second"
	"$GEN" mutate "$R" --seed $((SEED + round)) --percent 1 $extra >/dev/null || no "mutate failed"
	[ $round = 4 ] || sleep 2.2
	expect_rc 0 "$CUTOVER" scan "$R" -o "$T/i$round" --prev "$prev" --maildir || break
	copied=$((copied + $(copied_of "$T/.err")))
	expect_rc 0 "$CUTOVER" scan "$R" -o "$T/f$round" --maildir || break
	view "$T/i$round" >"$T/iv"
	view "$T/f$round" >"$T/fv"
	same "$T/fv" "$T/iv" "round $round: incremental scan with block carry and full scan" || break
	diff_both "$prev" "$T/i$round" "round $round" || break
	# and a pass with nothing changed: blocks copied, pairs skipped, no op
	expect_rc 0 "$CUTOVER" scan "$R" -o "$T/n$round" --prev "$T/i$round" --maildir || break
	copied=$((copied + $(copied_of "$T/.err")))
	view "$T/n$round" >"$T/nv"
	same "$T/fv" "$T/nv" "round $round: no-change incremental scan and full scan" || break
	diff_both "$T/i$round" "$T/n$round" "round $round, no change" || break
	grep -q '^diff: 0 ops' "$T/skip.err" || no "round $round: a pass with no change made ops: $(cat "$T/skip.err")"
	prev="$T/n$round"
done
echo "  it_blocks: $copied blocks copied, $skipped pairs skipped, $joined joined for link candidates"
[ "$copied" -gt 0 ] || no "no block was copied by the incremental scans"
[ "$skipped" -gt 0 ] || no "no block pair was skipped by diff"

finish
