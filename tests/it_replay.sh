#!/usr/bin/env bash
# tests/it_replay.sh - end-to-end tests of `cutover replay` on real trees made
# by build/gen_maildir: randomized mail days (scan, mutate, scan, diff,
# replay) to rsync parity with hard-link groups and nanosecond times; kill -9
# at random points and resume; a full target file system (a real small
# tmpfs); a corrupt log; a symlink swapped into the target during a replay;
# drift; reruns; dry runs.
. "$(dirname "$0")/lib.sh"

C=$CUTOVER
[ -x "$GEN" ] || { echo "FAIL gen_maildir missing ($GEN)"; exit 1; }

# parity SRC DST: rsync sees no difference (content by checksum, types,
# perms, owner, times, symlinks, devices), hard-link groups are the same
# sets of names, and every time matches to the nanosecond.
parity() {
	local s=$1 d=$2 out
	out=$(rsync -anc --delete --itemize-changes "$s/" "$d/" 2>&1)
	[ -z "$out" ] || { no "rsync differences: $(echo "$out" | head -10)"; return 1; }
	links "$s" >"$T/.ls"
	links "$d" >"$T/.ld"
	same "$T/.ls" "$T/.ld" "hard-link groups" || return 1
	(cd "$s" && find . -printf '%P %y %m %U %G %T@\n' | sort) >"$T/.ts"
	(cd "$d" && find . -printf '%P %y %m %U %G %T@\n' | sort) >"$T/.td"
	same "$T/.ts" "$T/.td" "types, modes, owners and nanosecond mtimes" || return 1
}
# links DIR: one line per hard-link group: its names, sorted.
links() {
	(cd "$1" && find . -type f -links +1 -printf '%i %P\n') |
		awk '{g[$1] = g[$1] " " $2} END {for (i in g) print g[i]}' |
		while read -r l; do echo "$l" | tr ' ' '\n' | sort | tr '\n' ' '; echo; done | sort
}
# round OLD NEW LOG: incremental scan of src against OLD into NEW, diff.
round() {
	$C -q scan src -o "$2" --prev "$1" >/dev/null 2>"$T/.scanerr" &&
		$C -q diff "$1" "$2" -o "$3" 2>"$T/.differr"
}

cd "$T" || exit 1 # its rm -rf globs below must never run elsewhere

t replay_from_empty_then_mail_days_reach_rsync_parity
$GEN create src --users 25 --msgs 50 --seed 11 >/dev/null
$C -q scan src -o m0 && $C -q diff --from-empty m0 -o c0 || no "scan/diff failed"
expect_rc 0 $C -q replay c0 --source src --target dst && parity src dst
prev=m0
for i in 1 2 3 4 5; do
	$GEN mutate src --seed $((CUTOVER_SEED % 100000 + 100 + i)) --percent $((1 + RANDOM % 8)) >/dev/null
	round $prev m$i c$i || { no "round $i: scan/diff failed: $(cat "$T/.scanerr" "$T/.differr")"; break; }
	j=$((1 + RANDOM % 24))
	expect_rc 0 $C -q replay c$i --source src --target dst -j $j || break
	parity src dst || { no "after round $i (-j $j)"; break; }
	prev=m$i
done

t replay_rerun_of_a_finished_log_does_nothing
before=$(cd dst && find . -printf '%P %i %C@\n' | sort | md5sum)
expect_rc 0 $C replay c5 --source src --target dst
grep -q "already applied" "$T/.err" || no "no 'already applied' in: $(cat "$T/.err")"
after=$(cd dst && find . -printf '%P %i %C@\n' | sort | md5sum)
[ "$before" = "$after" ] || no "the target changed"

t replay_dry_run_changes_nothing
$GEN mutate src --seed 77 --percent 3 >/dev/null
round m5 m6 c6 || no "scan/diff failed"
before=$(cd dst && find . -printf '%P %i %C@\n' | sort | md5sum)
expect_rc 0 $C replay c6 --source src --target dst --dry-run
[ -s "$T/.out" ] || no "dry run printed no plan"
after=$(cd dst && find . -printf '%P %i %C@\n' | sort | md5sum)
[ "$before" = "$after" ] || no "the dry run changed the target"
expect_rc 0 $C -q replay c6 --source src --target dst && parity src dst

t replay_drifted_source_is_counted_and_reconciled_next_pass
$GEN mutate src --seed 78 --percent 3 >/dev/null
# and a delivery to two users, one file and two names (as LMTP does)
set -- $(find src -path '*/Maildir/new' -type d | sort | head -2)
printf 'Subject: to two\n\nhello\n' >"$1/1700000000.M1P1.late,S=30"
ln "$1/1700000000.M1P1.late,S=30" "$2/1700000000.M1P1.late,S=30"
round m6 m7 c7 || no "scan/diff failed"
# the source changes after the scan: a message appended, two removed: one
# a plain create, one the file a link group's link records name (a message
# copied to other folders, expunged from its first: replay makes the other
# names from the source; the next round's diff would not see them missing)
f=$(cd src && find . -path '*/cur/*' -type f | sort | head -1)
printf 'late line\n' >>"src/$f"
# (`show` writes spaces and other special bytes as \ooo: take plain names)
g=$($C show c7 | awk '$1 == "link" {a[$2] = 1} $1 == "create" && $2 !~ /\\/ {c[++n] = $2}
	END {for (i = 1; i <= n; i++) if (!(c[i] in a)) {print c[i]; exit}}')
h=$($C show c7 | awk '$1 == "link" && /1700000000\.M1P1\.late/ {print $2; exit}')
[ -f "src/$h" ] || no "the delivery to two is no link in the log: '$h'"
if [ -n "$g" ] && [ -n "$h" ]; then rm -f "src/$g" "src/$h"
else no "no plain create in the log"; fi
expect_rc 3 $C replay c7 --source src --target dst
grep -q "drifted\|vanished" "$T/.err" || no "summary does not name drift: $(cat "$T/.err")"
round m7 m8 c8 || no "scan/diff failed"
if expect_rc 0 $C -q replay c8 --source src --target dst && ! parity src dst; then
	# which layer: the scan (m8), the diff (c8) or the replay?
	p=$(rsync -anc --delete -i src/ dst/ | head -1 | cut -c13- | sed 's:/$::')
	echo "  src: $(stat -c %y "src/$p")  dst: $(stat -c %y "dst/$p")"
	echo "  m7: $($C show m7 | grep -F " $p" | awk -v p=" $p" 'substr($0, length($0) - length(p) + 1) == p' | head -1)"
	echo "  m8: $($C show m8 | grep -F " $p" | awk -v p=" $p" 'substr($0, length($0) - length(p) + 1) == p' | head -1)"
	echo "  c7: $($C show c7 | grep -F " $p  [" | head -3)"
	echo "  c8: $($C show c8 | grep -F " $p  [" | head -3)"
fi

t replay_fsync_mode_reaches_parity
rm -rf srcf dstf ./dstf.cutover-journal
$GEN create srcf --users 6 --msgs 30 --seed 41 >/dev/null
$C -q scan srcf -o f0 && $C -q diff --from-empty f0 -o fc0 || no "scan/diff failed"
expect_rc 0 $C -q replay fc0 --source srcf --target dstf --fsync -j 4 && parity srcf dstf
$GEN mutate srcf --seed 42 --percent 10 >/dev/null
$C -q scan srcf -o f1 --prev f0 && $C -q diff f0 f1 -o fc1 || no "scan/diff failed"
expect_rc 0 $C -q replay fc1 --source srcf --target dstf --fsync -j 4 && parity srcf dstf

t replay_shows_progress_on_a_tty_only
# Through a pseudo-terminal (script(1)): "\rreplay N/M ops (P%) B at R/s
# ETA Ts" lines, then the line is cleared before the summary.  With stderr on
# a file, or -q on a terminal: no progress line at all.
rm -rf srcp dstp ./dstp.cutover-journal
$GEN create srcp --users 6 --msgs 30 --seed 43 >/dev/null
$C -q scan srcp -o p0 && $C -q diff --from-empty p0 -o pc0 || no "scan/diff failed"
total=$($C show pc0 | grep -c '^[a-z]')
script -qec "$C replay pc0 --source srcp --target dstp -j 1" /dev/null >tty.out 2>&1 ||
	no "replay under script(1) failed: $(tail -c 300 tty.out)"
parity srcp dstp
tr '\r' '\n' <tty.out >tty.lines
grep -Eq "^replay [0-9]+/$total ops \([0-9]+%\) [0-9.]+ [KMG]?i?B at [0-9.]+ [KMG]?i?B/s" tty.lines ||
	no "no progress line for $total ops: $(head -c 400 tty.lines)"
grep -E "^replay [0-9]+/$total ops" tty.lines | grep -v " ETA [0-9]*s" | grep -Ev "^replay (0|$total)/" &&
	no "a progress line under way without an ETA"
grep -B1 'cutover: replay: .* created' tty.lines | head -1 | grep -Eq '^ +$' ||
	no "the progress line was not cleared before the summary"
rm -rf dstp ./dstp.cutover-journal
$C replay pc0 --source srcp --target dstp -j 1 2>notty.err || no "replay failed: $(cat notty.err)"
grep -q $'\r' notty.err && no "progress written to a file: $(head -c 200 notty.err)"
grep -q 'cutover: replay: .* created' notty.err || no "no summary off a terminal"
rm -rf dstp ./dstp.cutover-journal
script -qec "$C -q replay pc0 --source srcp --target dstp -j 1" /dev/null >ttyq.out 2>&1
grep -q 'ops (' ttyq.out && no "progress shown with -q"

t replay_killed_at_random_points_resumes_to_parity
rm -rf src dst ./*.cutover-journal m* c*
$GEN create src --users 60 --msgs 120 --seed 21 --size-scale 0.3 >/dev/null
$C -q scan src -o m0 && $C -q diff --from-empty m0 -o c0 || no "scan/diff failed"
# kill_loop LOG N MAXDELAY_CS: runs the replay, kill -9 after a random delay
# of up to MAXDELAY_CS hundredths of a second, until it exits by itself.
kill_loop() {
	local log=$1 n=$2 max=$3 pid rc
	kills=0
	for attempt in $(seq 1 "$n"); do
		$C -q replay "$log" --source src --target dst -j 8 2>>"$T/.kerr" &
		pid=$!
		sleep "$(printf '0.%02d' $((1 + RANDOM % max)))"
		kill -9 $pid 2>/dev/null
		wait $pid 2>/dev/null
		rc=$?
		[ $rc = 137 ] && { kills=$((kills + 1)); continue; }
		[ $rc = 0 ] || no "replay exited $rc: $(tail -3 "$T/.kerr")"
		break
	done
}
kill_loop c0 60 40
echo "  killed $kills times before completion"
[ $kills -ge 2 ] || no "only $kills kills: the tree is too small to test resumption"
expect_rc 0 $C -q replay c0 --source src --target dst && parity src dst
[ -z "$(find dst -name '.cutover-tmp.*')" ] || no "temporaries left behind"
# and an incremental pass killed the same way
$GEN mutate src --seed 22 --percent 10 >/dev/null
round m0 m1 c1 || no "scan/diff failed"
kill_loop c1 30 9
echo "  incremental pass: killed $kills times"
expect_rc 0 $C -q replay c1 --source src --target dst && parity src dst

t replay_killed_resumes_from_its_own_journal_and_closes_it_out
# Each resume of a killed initial copy says what it found in the journal
# ("resuming: N records finished (W below the watermark, K above it)"); that
# must be what the file holds, as jprogress reads it here on its own.  The
# run that completes skips exactly those records, and leaves the journal
# closed out (header, START, COMPLETE); the next log's replay does not read it.
# jprogress FILE: "VERSION W K RECORDS COMPLETE" of a journal (docs/REPLAY.md §3).
jprogress() {
	python3 - "$1" <<'PY'
import struct, sys
d = open(sys.argv[1], 'rb').read()
ver = struct.unpack_from('<I', d, 8)[0]
off, w, above, nrec, complete = 40, 0, set(), 0, 0
while off + 24 <= len(d):
    typ, n, rw = struct.unpack_from('<IIQ', d, off)
    if typ not in (1, 2, 3) or off + 24 + 8 * n > len(d):
        break
    nrec += 1
    w = max(w, rw)
    if typ == 1:
        above |= {v & (2**56 - 1) for v in struct.unpack_from('<%dQ' % n, d, off + 16)}
    off += 24 + 8 * n
    if typ == 2:
        complete = 1
        break
print(ver, w, len({i for i in above if i >= w}), nrec, complete)
PY
}
rm -rf srck dstk ./dstk.cutover-journal k0 k1 km0 km1
$GEN create srck --users 40 --msgs 100 --seed 23 --size-scale 0.3 >/dev/null
$C -q scan srck -o km0 && $C -q diff --from-empty km0 -o k0 || no "scan/diff failed"
J=dstk.cutover-journal checked=0 kills=0 expect=
for attempt in $(seq 1 60); do
	[ -e $J ] && expect=$(jprogress $J)
	$C -v replay k0 --source srck --target dstk -j 8 2>k.err &
	pid=$!
	sleep "$(printf '0.%02d' $((5 + RANDOM % 30)))"
	# The last attempt runs to the end (a slow build, a sanitizer's, may
	# never get there between kills).
	[ "$attempt" -lt 60 ] && kill -9 $pid 2>/dev/null
	wait $pid 2>/dev/null
	rc=$?
	if [ -n "$expect" ] && grep -q "resuming:" k.err; then
		set -- $expect
		want="resuming: $(($2 + $3)) records finished ($2 below the watermark, $3 above it)"
		grep -qF "$want" k.err || no "after kill $kills the journal says '$want', the resume: $(grep -o 'resuming: [^,]*,[^,]*' k.err)"
		checked=$((checked + 1))
	fi
	[ $rc = 137 ] && { kills=$((kills + 1)); continue; }
	[ $rc = 0 ] || { no "replay exited $rc: $(tail -3 k.err)"; break; }
	set -- $expect
	if [ "${5:-0}" = 1 ]; then
		# The kill came after the run before had closed the journal out.
		grep -q "already applied" k.err || no "a closed-out journal's log was applied again: $(tail -3 k.err)"
	else
		grep -q "replay: $(($2 + $3)) already done (journal)" k.err ||
			no "the completing run did not skip the $(($2 + $3)) journaled records: $(grep 'already done' k.err)"
	fi
	break
done
echo "  killed $kills times, $checked resumes checked"
[ $checked -ge 2 ] || no "only $checked resumes were checked: the tree is too small"
parity srck dstk
[ "$(jprogress $J)" = "2 $(($($C show k0 | grep -c '^[a-z]'))) 0 2 1" ] || no "not closed out: $(jprogress $J)"
[ "$(stat -c %s $J)" = 256 ] || no "the finished journal holds $(stat -c %s $J) bytes"
$GEN mutate srck --seed 24 --percent 5 >/dev/null
$C -q scan srck -o km1 --prev km0 && $C -q diff km0 km1 -o k1 || no "scan/diff failed"
expect_rc 0 $C -v replay k1 --source srck --target dstk
grep -q "journal of finished log .* (not read) replaced" "$T/.err" || no "the next log read the journal: $(grep journal "$T/.err")"
parity srck dstk

t replay_full_target_stops_cleanly_and_resumes
mkdir -p small
if mount -t tmpfs -o size=4m tmpfs small 2>"$T/.merr"; then
	rm -rf src2 && $GEN create src2 --users 8 --msgs 60 --seed 31 >/dev/null
	$C -q scan src2 -o s0 && $C -q diff --from-empty s0 -o sc0 || no "scan/diff failed"
	expect_rc 5 $C replay sc0 --source src2 --target small -j 4
	grep -q "No space left\|free space" "$T/.err" || no "no clear message: $(head -3 "$T/.err")"
	[ -z "$(find small -name '.cutover-tmp.*')" ] || no "temporaries left on the full target"
	# a file under its final name is always complete
	(cd small && find . -type f -printf '%s %P\n' | sort) >"$T/.sz"
	while read -r s p; do
		[ "$(stat -c %s "src2/$p")" = "$s" ] || { no "partial file $p on the target"; break; }
	done <"$T/.sz"
	mount -o remount,size=512m small || no "remount failed"
	expect_rc 0 $C -q replay sc0 --source src2 --target small && parity src2 small
	umount small
else
	no "mount -t tmpfs is not permitted here: $(cat "$T/.merr")"
fi

t replay_refuses_a_corrupt_log_before_any_change
rm -rf dst3 && mkdir dst3
cp c0 bad
size=$(stat -c %s bad)
printf '\xff' | dd of=bad bs=1 seek=$((size / 2)) conv=notrunc status=none
expect_rc 2 $C replay bad --source src --target dst3
[ -z "$(ls -A dst3)" ] || no "the target changed"
head -c $((size - 100)) c0 >trunc
expect_rc 2 $C replay trunc --source src --target dst3
[ -z "$(ls -A dst3)" ] || no "the target changed"

t replay_symlink_swapped_into_the_target_never_leads_outside
# As soon as a domain directory exists, it is swapped for a symlink to
# outside.  With --on-conflict skip every operation that meets the symlink
# logs its conflict and the replay goes on, so the log counts the hits: a
# run without any did not race and proves nothing (up to 3 attempts).
hits=0
for attempt in 1 2 3; do
	rm -rf dst4 outside aside ./dst4.cutover-journal && mkdir outside aside
	$C -q replay c0 --source src --target dst4 -j 2 --on-conflict skip 2>"$T/.serr" &
	pid=$!
	d=""
	for k in $(seq 1 400); do
		d=$(ls -d dst4/example.* 2>/dev/null | head -1)
		if [ -n "$d" ] && mv "$d" aside/ 2>/dev/null; then
			ln -s "$T/outside" "$d"
			break
		fi
		d=""
		sleep 0.005
	done
	wait $pid
	rc=$?
	case $rc in 0 | 3) ;; *) no "replay exited $rc: $(tail -3 "$T/.serr")" ;; esac
	[ -z "$(ls -A outside)" ] || no "replay wrote outside the target: $(ls outside | head)"
	[ -n "$d" ] || continue
	hits=$(grep -c "conflict left as it is: .*${d#dst4/}/.*\(symlink\|missing\)" "$T/.serr")
	echo "  attempt $attempt: $d swapped for a symlink; $hits operations met it (exit $rc)"
	[ "$hits" -gt 0 ] && break
done
[ "$hits" -gt 0 ] || no "the swap never raced the replay: no operation met the symlink in 3 attempts"
[ "$hits" -gt 0 ] && [ "$rc" != 3 ] && no "$hits conflicts skipped, but replay exited $rc, not 3"

t summaries_give_the_source_over_the_whole_command
# Measured with no limit on: the requests made of the source, their rate
# and latency, once for the whole command.
expect_rc 0 $C scan src -o ms
n=$(sed -n 's/^cutover: scan: source: \([0-9]*\) ops\/s, .* p50 [0-9.]*[mun]*s p99 [0-9.]*[mun]*s.*/\1/p' "$T/.err")
[ "${n:-0}" -gt 0 ] || no "no source line in the scan's summary: $(cat "$T/.err")"
$C -q diff --from-empty ms -o cs && rm -rf dsts
expect_rc 0 $C replay cs --source src --target dsts
n=$(sed -n 's/^cutover: replay: source: \([0-9]*\) ops\/s, [0-9.]* [KMG]*i*B\/s, p50 .*/\1/p' "$T/.err")
[ "${n:-0}" -gt 0 ] || no "no source line in the replay's summary: $(cat "$T/.err")"
rm -rf dsts

finish
