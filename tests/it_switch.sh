# it_switch.sh - `cutover switch` (docs/SYNC.md, "Switched subtrees"): a
# final pass of a few users, the rest untouched; later passes leave switched
# users to the new side, report what still reaches the old store (late
# writes, exit 7) and never replay it over the new side; the hooks.
. tests/lib.sh

S="$T/src" D="$T/dst" ST="$T/state"
rsync_diff() { rsync -anciH --delete --exclude='tmp/*' --exclude='*.lock' "$@"; }
sync_() { "$CUTOVER" sync --state "$ST" --no-syslog "$@"; }
switch_() { "$CUTOVER" switch --state "$ST" --no-syslog "$@"; }
# stats of the target outside one subtree: what a switch must not touch
outside() { (cd "$D" && find . -path "./$1" -prune -o -printf '%p %i %s %T@ %m\n' | LC_ALL=C sort); }
# a message delivered the Dovecot way: tmp/, then a rename into new/
deliver() {
	local m=$1/Maildir f
	f=$(date +%s).M$RANDOM$RANDOM.test,S=20
	echo "mail $f" >"$m/tmp/$f" && mv "$m/tmp/$f" "$m/new/$f"
}
# backlog USER: 400 messages of 16 KiB in the user's cur/, for its switch to
# copy: the pass then lasts long enough (hundreds of ms) that a writer that
# writes every few ms cannot fall between its two scans of the source.
backlog() {
	local i
	head -c 16384 /dev/urandom >"$T/msg16k"
	for i in $(seq 400); do
		cp "$T/msg16k" "$1/Maildir/cur/1700000000.M${i}P1.backlog,S=16384:2,S"
	done
}

"$GEN" create "$S" --users 8 --msgs 60 --seed 17 --size-scale 0.1 >/dev/null || no "generator failed"
users=$(cd "$S" && ls -d */* | LC_ALL=C sort)
u1=$(echo "$users" | sed -n 1p) u2=$(echo "$users" | sed -n 2p) u3=$(echo "$users" | sed -n 3p)
other=$(echo "$users" | sed -n 5p)
"$CUTOVER" init --source "$S" --target "$D" --state "$ST" --maildir >/dev/null
sync_ || no "initial sync failed"
sleep 1.1
"$GEN" mutate "$S" --seed 3 --percent 5 >/dev/null
sleep 1.1

t switch_copies_one_user_verifies_it_and_touches_nothing_else
outside "$u1" >"$T/before"
expect_rc 0 switch_ "$u1/" --before "echo before >>'$T/hooks'; echo \"\$CUTOVER_SUBTREES\" >'$T/subs'" \
	--after "echo after >>'$T/hooks'" &&
	grep -qx "SWITCHED $u1" "$T/.out" && grep -q '^PARITY: 1 subtree switched' "$T/.out" ||
	no "switch: $(cat "$T/.out" "$T/.err" | head -5)"
[ "$(cat "$T/hooks" 2>/dev/null | tr '\n' ' ')" = "before after " ] || no "hooks ran: $(cat "$T/hooks")"
[ "$(cat "$T/subs")" = "$u1" ] || no "CUTOVER_SUBTREES was '$(cat "$T/subs")'"
out=$(rsync_diff "$S/$u1/" "$D/$u1/")
[ -z "$out" ] || no "the switched user differs: $(echo "$out" | head -5)"
outside "$u1" >"$T/after"
same "$T/before" "$T/after" "the target outside the switched user"
grep -q "^switched .* $u1\$" "$ST/switched" || no "DIR/switched: $(cat "$ST/switched")"
# The rest of the mail day is still to be copied: the switch was the user's alone.
[ -n "$(rsync_diff --exclude="/$u1" "$S/" "$D/")" ] || no "the switch copied other users' changes too"

t the_new_side_writes_and_later_passes_leave_it_alone
deliver "$D/$u1"
newside=$(ls "$D/$u1/Maildir/new" | tail -1)
gone=$(ls "$D/$u1/Maildir/cur" | head -1)
rm "$D/$u1/Maildir/cur/$gone"
deliver "$S/$other"
sleep 1.1
expect_rc 0 sync_ || true
[ -e "$D/$u1/Maildir/new/$newside" ] || no "the new side's delivery was removed"
[ -e "$D/$u1/Maildir/cur/$gone" ] && no "the new side's expunge was undone"
out=$(rsync_diff --exclude="/$u1" "$S/" "$D/")
[ -z "$out" ] || no "the unswitched users are not in parity: $(echo "$out" | head -5)"
expect_rc 0 sync_ --check-target || true
expect_rc 0 sync_ --final --attr-cache-expired && grep -q '^PARITY' "$T/.out" ||
	no "final pass with a switched user: $(cat "$T/.out" "$T/.err" | head -3)"
expect_rc 0 "$CUTOVER" verify --state "$ST" && grep -q "1 switched subtrees left out" "$T/.err" ||
	no "verify with a switched user: $(cat "$T/.out" "$T/.err" | head -3)"

t a_late_write_is_reported_on_every_pass_and_never_replayed
deliver "$S/$u1"
late=$(ls -t "$S/$u1/Maildir/new" | head -1)
sleep 1.1
expect_rc 7 sync_ && grep -q "late write.*$u1/Maildir/new/$late" "$T/.err" ||
	no "the late write was not named: $(head -c 600 "$T/.err")"
[ -e "$D/$u1/Maildir/new/$late" ] && no "the late write was replayed over the new side"
grep -q "create $u1/Maildir/new/$late" "$ST/late-writes" || no "DIR/late-writes: $(cat "$ST/late-writes")"
expect_rc 7 sync_ && grep -q "late-writes" "$T/.err" || no "the second pass did not repeat the warning"
tail -1 "$T/.err" | grep -q "^cutover: to fix: recover the messages listed in $ST/late-writes .*\`cutover switch --state $ST --ack-late-writes\`" ||
	no "the fix of exit 7: $(tail -1 "$T/.err")"
expect_rc 1 "$CUTOVER" status --state "$ST" && grep -q "^LATE WRITES: " "$T/.out" ||
	no "status: $(cat "$T/.out")"
tail -1 "$T/.err" | grep -q "^cutover: to fix: .*\`cutover switch --state $ST --ack-late-writes\`" ||
	no "the fix of status with late writes: $(tail -1 "$T/.err")"
"$CUTOVER" status --state "$ST" --json | jq -e '.switched.count == 1 and .switched.late_writes > 0' >/dev/null ||
	no "status --json: $("$CUTOVER" status --state "$ST" --json | jq -c .switched)"
expect_rc 0 switch_ --ack-late-writes
expect_rc 0 sync_ || true

t a_batch_from_a_file_and_a_rebase_keep_the_switched_users
printf '%s\n%s\n' "$u2" "$u3" >"$T/batch"
# --after asks status what the switch is doing: both subtrees are done.
expect_rc 0 switch_ --from "$T/batch" --after "'$CUTOVER' status --state '$ST' --no-check >'$T/during'" &&
	[ "$(grep -c '^SWITCHED' "$T/.out")" = 2 ] || no "batch: $(cat "$T/.out" "$T/.err" | head -5)"
grep -q "^RUNNING:  pass [0-9]* switch: 2/2 subtrees[, ].* (switch pass, pid " "$T/during" ||
	no "status during the switch: $(cat "$T/during")"
[ -e "$ST/progress" ] && no "the switch left its progress file"
deliver "$D/$u2"
nb=$(ls "$D/$u2/Maildir/new" | tail -1)
expect_rc 0 sync_ --rebase || true
[ -e "$D/$u2/Maildir/new/$nb" ] || no "--rebase removed the new side's delivery"
out=$(rsync_diff --exclude="/$u1" --exclude="/$u2" --exclude="/$u3" "$S/" "$D/")
[ -z "$out" ] || no "after --rebase: $(echo "$out" | head -5)"
expect_rc 0 "$CUTOVER" status --state "$ST" && grep -q "^switched: 3 subtrees" "$T/.out" ||
	no "status: $(cat "$T/.out" | head -6)"

t bad_subtrees_and_a_failing_before_hook_switch_nothing
cp "$ST/switched" "$T/sw0"
expect_rc 64 switch_ "$u1"
expect_rc 64 switch_ "nosuch.org/nobody"
expect_rc 64 switch_ "../etc"
u4=$(echo "$users" | sed -n 4p)
expect_rc 2 switch_ "$u4" --before "exit 3" --after "touch '$T/after-ran'" &&
	grep -q "before command exited 3" "$T/.err" || no "before: $(cat "$T/.err")"
same "$ST/switched" "$T/sw0" "DIR/switched after refused switches"
[ -e "$T/after-ran" ] && no "--after ran after --before failed"

t a_source_that_keeps_changing_is_not_switched_and_after_does_not_run
# A writer keeps delivering into the user's source while the switch runs: the
# verification must see it and refuse.
backlog "$S/$u4"
( end=$((SECONDS + 20)); while [ ! -e "$T/stop" ] && [ $SECONDS -lt $end ]; do
	deliver "$S/$u4"; echo x >>"$T/written"; done ) &
w=$!
sleep 0.3
n0=$(wc -l <"$T/written")
expect_rc 1 switch_ "$u4" --after "touch '$T/after-ran'" ||
	no "switch of a busy user: $(head -c 400 "$T/.out")"
n1=$(wc -l <"$T/written")
touch "$T/stop"
wait $w
# It raced: the writer delivered while the switch ran.
[ "$n1" -gt "$n0" ] || no "the writer delivered nothing while the switch ran ($n0 before, $n1 after)"
grep -q "still differ" "$T/.err" || no "no message about the changing source: $(head -c 400 "$T/.err")"
[ -e "$T/after-ran" ] && no "--after ran after a failed pass"
tail -1 "$T/.err" | grep -q "^cutover: to fix: stop what writes to the subtrees .*\`cutover switch --state $ST .*$u4\` again" ||
	no "the fix: $(tail -1 "$T/.err")"
same "$ST/switched" "$T/sw0" "DIR/switched after the refused switch"
# Once the source is quiet it switches.
sleep 1.1
expect_rc 0 switch_ "$u4"

t a_control_file_written_in_place_during_the_switch_is_seen
# The source's scan after the replay is incremental on its scan before it
# (sync/switch.c): a directory that did not change is not listed again.
# Dovecot appends to dovecot-uidlist in place, leaving its directory as it
# was; the stat of the file must still see it and refuse the switch.
u7=$(echo "$users" | sed -n 7p)
ul="$S/$u7/Maildir/dovecot-uidlist"
[ -f "$ul" ] || no "the store has no $ul"
rm -f "$T/stop" "$T/written"
backlog "$S/$u7"
( end=$((SECONDS + 20)); while [ ! -e "$T/stop" ] && [ $SECONDS -lt $end ]; do
	echo "$RANDOM" >>"$ul"; echo x >>"$T/written"; done ) &
w=$!
sleep 0.3
n0=$(wc -l <"$T/written")
expect_rc 1 switch_ "$u7" || no "switch of a user whose uidlist grew: $(head -c 400 "$T/.out")"
n1=$(wc -l <"$T/written")
touch "$T/stop"
wait $w
[ "$n1" -gt "$n0" ] || no "the writer appended nothing while the switch ran ($n0 before, $n1 after)"
grep -q "still differ" "$T/.err" || no "no message about the changing source: $(head -c 400 "$T/.err")"
sleep 1.1
expect_rc 0 switch_ "$u7"
[ -z "$(rsync_diff "$S/$u7/" "$D/$u7/")" ] || no "$u7 differs after its switch"

t max_ops_on_the_command_line_holds_the_switch_to_it
# --max-ops overrides init's limits (none here) for this switch: the rate of
# its source requests over its whole time (its history line) stays within
# the limit and its 5% burst; the unlimited switch just before it, the
# control, went faster than the limit could allow.
# rate: src_ops per second of the last history line
rate() { tail -n 1 "$ST/history" | tr ' ' '\n' | awk -F= '{ v[$1] = $2 }
	END { printf "%d %d\n", v["src_ops"], v["src_ops"] / ((v["end"] - v["start"]) / 1e9) }'; }
read -r ops0 r0 < <(rate)
[ "$r0" -gt 800 ] || no "the unlimited switch made $r0 source requests/s ($ops0): too slow to tell a limit"
u8=$(echo "$users" | sed -n 8p)
expect_rc 0 switch_ "$u8" --max-ops 400 || no "switch --max-ops 400: $(cat "$T/.err")"
read -r ops1 r1 < <(rate)
echo "  unlimited: $ops0 source requests at $r0/s; --max-ops 400: $ops1 at $r1/s"
[ "$ops1" -gt 300 ] || no "the switch made only $ops1 source requests: too few to hold a rate"
[ "$r1" -le 440 ] || no "switch --max-ops 400 made $r1 source requests/s"
expect_rc 64 switch_ "$u8" --max-ops x

t a_switch_killed_before_its_commit_is_finished_by_the_next_run
# --after kills cutover itself: the subtree is verified and listed as
# "switching", its record not yet in the base.
u5=$(echo "$users" | sed -n 6p)
expect_rc 137 switch_ "$u5" --after 'kill -9 $PPID'
grep -q "^switching .* $u5\$" "$ST/switched" || no "not left switching: $(cat "$ST/switched")"
deliver "$S/$other"
sleep 1.1
expect_rc 0 sync_ || true
grep -q "^switching " "$ST/switched" && no "still switching: $(cat "$ST/switched")"
grep -q "^switched .* $u5\$" "$ST/switched" || no "not switched: $(cat "$ST/switched")"
out=$(rsync_diff --exclude="/$u1" --exclude="/$u2" --exclude="/$u3" --exclude="/$u4" --exclude="/$u5" "$S/" "$D/")
[ -z "$out" ] || no "after finishing the record: $(echo "$out" | head -5)"
finish
