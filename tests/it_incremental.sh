# it_incremental.sh - incremental scans (--prev) must equal full scans of the
# same tree after every kind of change a Dovecot maildir sees (issue 3).
. tests/lib.sh

# Entries as "path type mode uid gid size mtime ino [hash]", with ctime and
# nlink left out: they are the documented stale fields of carried entries.
view() {
	"$CUTOVER" show "$1" --format jsonl | tail -n +2 |
		sed -e 's/,"ctime_ns":[0-9]*//' -e 's/,"nlink":[0-9]*//' -e 's/,"carried":true//'
}
# Non-carried entries in full, ctime and nlink included.
view_fresh() {
	"$CUTOVER" show "$1" --format jsonl | tail -n +2 | grep -v '"carried":true'
}
stat_of() { sed -n "s/.* \([0-9]*\) $2.*/\1/p" "$1"; }

R="$T/store"
"$GEN" create "$R" --users 12 --msgs 150 --seed 7 --size-scale 0.2 >/dev/null || no "generator failed"
# Let the tree age past the racy window so that the shortcut can apply.
sleep 2.2

t incremental_equals_full_over_randomized_mail_days
"$CUTOVER" -q scan "$R" -o "$T/m0" --maildir --hash all || no "first scan failed"
prev="$T/m0"
skel_dirs=0
for round in 1 2 3 4 5 6; do
	extra=""
	[ $round = 4 ] && extra="--same-second"
	"$GEN" mutate "$R" --seed $((CUTOVER_SEED % 100000 + round * 31)) --percent 3 $extra >"$T/mut.$round" || no "mutate failed"
	[ $round = 5 ] && sleep 2.2 # one round where unchanged directories have aged
	expect_rc 0 "$CUTOVER" scan "$R" -o "$T/i$round" --prev "$prev" --maildir --hash changed || break
	cp "$T/.err" "$T/i$round.err"
	expect_rc 0 "$CUTOVER" scan "$R" -o "$T/f$round" --maildir --hash all || break
	cp "$T/.err" "$T/f$round.err"
	view "$T/i$round" >"$T/iv"
	view "$T/f$round" >"$T/fv"
	same "$T/fv" "$T/iv" "round $round: incremental and full scans" || break
	view_fresh "$T/i$round" >"$T/ifresh"
	grep -Fxf "$T/ifresh" "$T/f$round.jsonl" >/dev/null 2>&1 # (informative only)
	"$CUTOVER" show "$T/f$round" --format jsonl | tail -n +2 >"$T/fall"
	missing=$(grep -Fvxf "$T/fall" "$T/ifresh" | head -3)
	[ -z "$missing" ] || no "round $round: stat'ed entries differ from the full scan (ctime/nlink): $missing"
	# The same scan without the previous scan's skeleton (reading its
	# blocks instead) must give the same manifest, entry for entry.
	if [ -e "$prev.skel" ]; then
		cp "$prev" "$T/noskel"
		expect_rc 0 "$CUTOVER" scan "$R" -o "$T/n$round" --prev "$T/noskel" --maildir --hash changed || break
		"$CUTOVER" show "$T/i$round" --format jsonl | tail -n +2 >"$T/iall"
		"$CUTOVER" show "$T/n$round" --format jsonl | tail -n +2 >"$T/nall"
		same "$T/nall" "$T/iall" "round $round: scans with and without the skeleton" || break
		sd=$("$CUTOVER" show "$T/i$round" | sed -n 's/.*skel_dirs=\([0-9]*\).*/\1/p')
		skel_dirs=$((skel_dirs + ${sd:-0}))
	fi
	prev="$T/i$round"
done
# From the second round on the previous scan has a skeleton, and the
# unchanged directories' children come from it.
[ "${skel_dirs:-0}" -gt 0 ] || no "no directory was read from a skeleton"
# Where shortcuts applied, the incremental scan must have done less.
fs=$(stat_of "$T/f5.err" stats,)
is=$(stat_of "$T/i5.err" stats,)
sk=$(sed -n 's/.*skipped \([0-9]*\),.*/\1/p' "$T/i5.err")
[ "${sk:-0}" -gt 0 ] || no "no directory was skipped after the tree aged: $(cat "$T/i5.err")"
[ "${is:-0}" -lt "$((${fs:-0} / 2))" ] || no "incremental scan made $is stats, full $fs"

t a_damaged_or_foreign_skeleton_is_not_used
# The skeleton is an accelerator: damaged, cut short, or another
# manifest's, the scan reads the manifest instead and gives the same result.
sleep 2.2
"$CUTOVER" -q scan "$R" -o "$T/s0" --prev "$prev" --maildir --hash changed
"$CUTOVER" -q scan "$R" -o "$T/s1" --prev "$T/s0" --maildir --hash changed
"$CUTOVER" show "$T/s1" --format jsonl | tail -n +2 >"$T/s1all"
n=$(stat -c %s "$T/s1.skel")
cp "$T/s1" "$T/flip"; cp "$T/s1.skel" "$T/flip.skel"
printf '\377\377\377\377' | dd of="$T/flip.skel" bs=1 seek=$((n / 2)) conv=notrunc 2>/dev/null
cp "$T/s1" "$T/cut"; head -c $((n / 2)) "$T/s1.skel" >"$T/cut.skel"
cp "$T/s1" "$T/foreign"; cp "$T/s0.skel" "$T/foreign.skel"
for k in flip cut foreign; do
	expect_rc 0 "$CUTOVER" scan "$R" -o "$T/$k.out" --prev "$T/$k" --maildir --hash changed || continue
	cp "$T/.err" "$T/$k.err"
	"$CUTOVER" show "$T/$k.out" --format jsonl | tail -n +2 >"$T/$k.all"
	same "$T/s1all" "$T/$k.all" "a scan with the $k skeleton"
done
grep -q "flip.skel: .*damaged: not used" "$T/flip.err" || no "damage not named: $(cat "$T/flip.err")"
grep -q "cut.skel: not used" "$T/cut.err" || no "truncation not named: $(cat "$T/cut.err")"
"$CUTOVER" show "$T/foreign.out" | grep -q 'skel_dirs=0' || no "another manifest's skeleton was used"
"$CUTOVER" show "$T/flip.out" | grep -q 'skel_dirs=0 ' && no "nothing was read from the good part"

t full_flag_stats_everything_but_carries_hashes
# Files changed just before a scan stay racy against it: let them age, scan,
# and then every hash can be carried.
sleep 2.2
"$CUTOVER" -q scan "$R" -o "$T/aged" --prev "$prev" --maildir --hash changed
expect_rc 0 "$CUTOVER" scan "$R" -o "$T/full" --prev "$T/aged" --maildir --hash changed --full
grep -q 'skipped 0,' "$T/.err" || no "--full skipped directories: $(cat "$T/.err")"
grep -q ' 0 carried' "$T/.err" || no "--full carried entries without a stat"
h=$(sed -n 's/.* \([0-9]*\) hashed,.*/\1/p' "$T/.err")
[ "${h:-1}" = 0 ] || no "--full re-hashed $h unchanged files instead of carrying their hashes"
view "$T/full" >"$T/v1"; view "$T/f6" >"$T/v2"
same "$T/v2" "$T/v1" "--full incremental and full scans"

t policy_is_recorded_and_shown
"$CUTOVER" show "$T/i1" | grep -q '^# policy: maildir granularity_ns=2000000000' || no "policy missing from show"
"$CUTOVER" show "$T/i1" | grep -q '^# previous: [0-9a-f]\{32\}' || no "previous id missing from show"

t prev_of_another_root_is_refused
mkdir -p "$T/other"
"$CUTOVER" -q scan "$T/other" -o "$T/other.m"
expect_rc 2 "$CUTOVER" scan "$R" -o "$T/x" --prev "$T/other.m" --maildir &&
	grep -q "other.m: was made of .*other, not of" "$T/.err" || no "message: $(cat "$T/.err")"
[ -e "$T/x" ] && no "output written despite the refusal"

t immutable_glob_policy
mkdir -p "$T/imm/archive" "$T/imm/live"
for i in 1 2 3; do echo $i >"$T/imm/archive/a$i"; echo $i >"$T/imm/live/l$i"; done
touch -d '2020-01-01' "$T/imm/archive" "$T/imm/live" "$T/imm"
"$CUTOVER" -q scan "$T/imm" -o "$T/imm0" --immutable 'archive/*'
sleep 0.1
expect_rc 0 "$CUTOVER" scan "$T/imm" -o "$T/imm1" --prev "$T/imm0" --immutable 'archive/*'
grep -q ' 3 carried' "$T/.err" || no "archive files not carried: $(cat "$T/.err")"
"$CUTOVER" show "$T/imm1" --format jsonl | grep '"path":"live/l1"' | grep -q carried && no "a file outside the policy was carried"

t network_mode_gives_the_same_manifests
# As on NFS: 32 threads, and each directory opened beneath its parent's
# descriptor instead of by its path from the root (CUTOVER_FS, cutover(1)).
"$GEN" mutate "$R" --seed 77 --percent 3 >/dev/null || no "mutate failed"
sleep 2.2
expect_rc 0 env CUTOVER_FS=network "$CUTOVER" scan "$R" -o "$T/net-i" --prev "$T/aged" --maildir --hash changed &&
	grep -q ', 32 threads;' "$T/.err" || no "network mode not taken: $(cat "$T/.err")"
grep -q 'skipped [1-9]' "$T/.err" || no "no shortcut taken in network mode: $(cat "$T/.err")"
expect_rc 0 env CUTOVER_FS=local "$CUTOVER" scan "$R" -o "$T/loc-i" --prev "$T/aged" --maildir --hash changed &&
	grep -q ', 4 threads;' "$T/.err" || no "local mode not taken: $(cat "$T/.err")"
expect_rc 0 env CUTOVER_FS=network "$CUTOVER" -q scan "$R" -o "$T/net-f" --maildir --hash all
expect_rc 0 "$CUTOVER" -q scan "$R" -o "$T/loc-f" --maildir --hash all
view "$T/net-i" >"$T/v1"; view "$T/loc-i" >"$T/v2"; view "$T/net-f" >"$T/v3"; view "$T/loc-f" >"$T/v4"
same "$T/v2" "$T/v1" "incremental scans in network and local modes"
same "$T/v4" "$T/v3" "full scans in network and local modes"
same "$T/v4" "$T/v1" "incremental and full scans in network mode"
finish
