# it_diff.sh - `cutover diff` on real trees: scan, change the tree the way a
# mail day does (gen_maildir mutate, or by hand), scan again, diff, replay the
# log onto a copy of the old tree, and check the copy equals the new tree
# (rsync -aHnc --delete -i prints nothing).  Also: command line, corrupt input,
# different roots, the summary line, and that spilling changes nothing.
. tests/lib.sh

# rsync's itemized view of what would still differ, hard links included.
same_tree() {
	local out
	out=$(rsync -aHnc --delete -i --exclude='.cutover-*' --exclude='.~cutover.*' "$1/" "$2/" 2>&1)
	[ -z "$out" ] || no "trees differ: $(echo "$out" | head -10)"
}
# The same, with what the maildir policy leaves out (tmp/ contents, locks).
same_tree_maildir() {
	local out
	out=$(rsync -aHnc --delete -i --exclude='.cutover-*' --exclude='.~cutover.*' \
		--exclude='tmp/*' --exclude='*.lock' "$1/" "$2/" 2>&1)
	[ -z "$out" ] || no "trees differ: $(echo "$out" | head -10)"
}
# ops of a change log, header left out, in file order
ops_of() { "$CUTOVER" show "$1" --format jsonl | tail -n +2 | jq -c '[.op, .path, .to]'; }
count_op() { "$CUTOVER" show "$1" --format jsonl | tail -n +2 | jq -r .op | grep -cx "$2"; }
replay() { "$CUTOVER" -q replay "$1" --source "$2" --target "$3" --journal "$T/journal.$RANDOM" ; }

t usage
expect_rc 64 "$CUTOVER" diff
expect_rc 64 "$CUTOVER" diff a b
expect_rc 64 "$CUTOVER" diff --from-empty a b -o x
expect_rc 64 "$CUTOVER" diff --mem-limit zz a b -o x

t from_empty_then_replay_gives_the_tree
mkdir -p "$T/s1/d/u/Maildir/cur" && echo m1 > "$T/s1/d/u/Maildir/cur/1:2,S" &&
	ln "$T/s1/d/u/Maildir/cur/1:2,S" "$T/s1/d/u/Maildir/cur/copy:2,S" && ln -s Maildir "$T/s1/d/u/mail"
expect_rc 0 "$CUTOVER" -q scan "$T/s1" -o "$T/s1.m" &&
	expect_rc 0 "$CUTOVER" diff --from-empty "$T/s1.m" -o "$T/s1.c" &&
	{ grep -q '^diff: .*mkdir 5.*create 1.*link 1' "$T/.err" || no "summary: $(cat "$T/.err")"; } &&
	expect_rc 0 replay "$T/s1.c" "$T/s1" "$T/t1" && same_tree "$T/s1" "$T/t1"

t quiet_prints_nothing
expect_rc 0 "$CUTOVER" -q diff --from-empty "$T/s1.m" -o "$T/s1q.c" &&
	{ [ ! -s "$T/.err" ] || no "stderr: $(cat "$T/.err")"; }

t flag_change_and_new_to_cur_are_renames
mkdir -p "$T/s2/u/Maildir/cur" "$T/s2/u/Maildir/new" "$T/s2/u/Maildir/tmp"
for i in 1 2 3 4 5; do echo "msg $i" > "$T/s2/u/Maildir/new/170000000$i.M${i}P1.mx,S=6"; done
"$CUTOVER" -q scan "$T/s2" -o "$T/s2a.m" && cp -a "$T/s2" "$T/t2"
mv "$T/s2/u/Maildir/new/1700000001.M1P1.mx,S=6" "$T/s2/u/Maildir/cur/1700000001.M1P1.mx,S=6:2,S"
mv "$T/s2/u/Maildir/new/1700000002.M2P1.mx,S=6" "$T/s2/u/Maildir/cur/1700000002.M2P1.mx,S=6:2,"
mv "$T/s2/u/Maildir/cur/1700000002.M2P1.mx,S=6:2," "$T/s2/u/Maildir/cur/1700000002.M2P1.mx,S=6:2,FS"
"$CUTOVER" -q scan "$T/s2" -o "$T/s2b.m"
expect_rc 0 "$CUTOVER" -q diff "$T/s2a.m" "$T/s2b.m" -o "$T/s2.c" &&
	{ [ "$(count_op "$T/s2.c" rename)" = 2 ] || no "renames: $(ops_of "$T/s2.c")"; } &&
	{ [ "$(count_op "$T/s2.c" create)" = 0 ] || no "creates: $(ops_of "$T/s2.c")"; } &&
	expect_rc 0 replay "$T/s2.c" "$T/s2" "$T/t2" && same_tree "$T/s2" "$T/t2"

t folder_rename_is_one_rename
mkdir -p "$T/s3/u/Maildir/.Old/cur"
for i in $(seq 1 30); do echo "m $i" > "$T/s3/u/Maildir/.Old/cur/$i.M1:2,"; done
"$CUTOVER" -q scan "$T/s3" -o "$T/s3a.m" && cp -a "$T/s3" "$T/t3"
mv "$T/s3/u/Maildir/.Old" "$T/s3/u/Maildir/.New" && mv "$T/s3/u/Maildir/.New/cur/7.M1:2," "$T/s3/u/Maildir/.New/cur/7.M1:2,S"
"$CUTOVER" -q scan "$T/s3" -o "$T/s3b.m"
expect_rc 0 "$CUTOVER" -q diff "$T/s3a.m" "$T/s3b.m" -o "$T/s3.c" &&
	{ [ "$(count_op "$T/s3.c" rename)" = 2 ] || no "ops: $(ops_of "$T/s3.c")"; } &&
	{ [ "$(count_op "$T/s3.c" create)" = 0 ] && [ "$(count_op "$T/s3.c" delete)" = 0 ] ||
		no "ops: $(ops_of "$T/s3.c")"; } &&
	expect_rc 0 replay "$T/s3.c" "$T/s3" "$T/t3" && same_tree "$T/s3" "$T/t3"

t swap_goes_through_a_reserved_temporary_name
mkdir -p "$T/s4" && echo aaaa > "$T/s4/a" && echo bbbbbb > "$T/s4/b"
"$CUTOVER" -q scan "$T/s4" -o "$T/s4a.m" && cp -a "$T/s4" "$T/t4"
mv "$T/s4/a" "$T/s4/x" && mv "$T/s4/b" "$T/s4/a" && mv "$T/s4/x" "$T/s4/b"
"$CUTOVER" -q scan "$T/s4" -o "$T/s4b.m"
expect_rc 0 "$CUTOVER" -q diff "$T/s4a.m" "$T/s4b.m" -o "$T/s4.c" &&
	{ ops_of "$T/s4.c" | grep -q '"\.~cutover\.' || no "no temporary name: $(ops_of "$T/s4.c")"; } &&
	expect_rc 0 replay "$T/s4.c" "$T/s4" "$T/t4" && same_tree "$T/s4" "$T/t4"

t copied_then_removed_file_is_a_rename_by_content_hash
# A file copied to a new name (new inode, new or kept mtime) and the original
# removed: with hashes in both scans the diff matches the content.
mkdir -p "$T/s5/u/Maildir/cur" "$T/s5/u/Maildir/.Archive/cur"
for i in 1 2 3; do echo "message number $i" > "$T/s5/u/Maildir/cur/$i.M1:2,S"; done
touch -d @1700000000 "$T/s5/u/Maildir/cur/"*
"$CUTOVER" -q scan "$T/s5" -o "$T/s5a.m" --hash all && cp -a "$T/s5" "$T/t5"
# (both copies before the removals: a freed inode number reused with the same
# size and mtime would pair by inode)
cp "$T/s5/u/Maildir/cur/1.M1:2,S" "$T/s5/u/Maildir/.Archive/cur/1.M1:2,S" &&
	cp -p "$T/s5/u/Maildir/cur/2.M1:2,S" "$T/s5/u/Maildir/cur/2.M1:2,ST" &&
	rm "$T/s5/u/Maildir/cur/1.M1:2,S" "$T/s5/u/Maildir/cur/2.M1:2,S"
"$CUTOVER" -q scan "$T/s5" -o "$T/s5b.m" --hash all
expect_rc 0 "$CUTOVER" -q diff "$T/s5a.m" "$T/s5b.m" -o "$T/s5.c" &&
	{ [ "$(count_op "$T/s5.c" rename)" = 2 ] || no "renames: $(ops_of "$T/s5.c")"; } &&
	{ [ "$(count_op "$T/s5.c" create)" = 0 ] && [ "$(count_op "$T/s5.c" delete)" = 0 ] ||
		no "ops: $(ops_of "$T/s5.c")"; } &&
	expect_rc 0 replay "$T/s5.c" "$T/s5" "$T/t5" && same_tree "$T/s5" "$T/t5" &&
	{ out=$(rsync -anc --delete -i "$T/s5/" "$T/t5/" 2>&1); [ -z "$out" ] || no "rsync -anc: $out"; }
# without hashes in the scans the same change is a delete and a create
"$CUTOVER" -q scan "$T/s5" -o "$T/s5c.m"
expect_rc 0 "$CUTOVER" -q diff "$T/s5a.m" "$T/s5c.m" -o "$T/s5n.c" &&
	{ [ "$(count_op "$T/s5n.c" rename)" = 0 ] || no "renames without hashes: $(ops_of "$T/s5n.c")"; }

if [ -x "$GEN" ]; then
	# Three random days; the log must do what the day did (day_counts.py):
	# every move a rename, nothing created that was there before.
	for k in 1 2 3; do
		seed=$(((CUTOVER_SEED + k) % 1000000))
		t "generated_store_mail_day_$k"
		rm -rf "$T/g" "$T/gt"
		"$GEN" create "$T/g" --users 30 --msgs 40 --seed $seed >/dev/null &&
			"$CUTOVER" -q scan "$T/g" -o "$T/ga.m" && cp -a "$T/g" "$T/gt" &&
			"$GEN" mutate "$T/g" --seed $((seed + 10)) --percent 5 >/dev/null &&
			"$CUTOVER" -q scan "$T/g" -o "$T/gb.m" || no "setup failed"
		expect_rc 0 "$CUTOVER" -q diff "$T/ga.m" "$T/gb.m" -o "$T/g.c" &&
			expect_rc 0 replay "$T/g.c" "$T/g" "$T/gt" && same_tree "$T/g" "$T/gt" &&
			expect_rc 0 "$CUTOVER" -q scan "$T/gt" -o "$T/gt.m" &&
			expect_rc 0 "$CUTOVER" report "$T/gb.m" "$T/gt.m" --ignore dir-mtime
		read -r moves fresh < <(python3 tests/day_counts.py "$CUTOVER" "$T/ga.m" "$T/gb.m")
		renames=$(count_op "$T/g.c" rename) creates=$(count_op "$T/g.c" create)
		echo "  day $k (gen seed $seed): $moves moves, $fresh new files; log: $renames renames, $creates creates"
		[ "${moves:-0}" -gt 0 ] || no "the day moved nothing: the counts prove nothing"
		[ "$renames" -ge "${moves:-0}" ] || no "$moves moves but $renames renames"
		[ "$creates" -le "${fresh:-0}" ] || no "$fresh new files but $creates creates"
	done

	t spilling_changes_nothing
	expect_rc 0 "$CUTOVER" -q diff --mem-limit 64k "$T/ga.m" "$T/gb.m" -o "$T/g-spill.c" &&
		ops_of "$T/g.c" >"$T/ops1" && ops_of "$T/g-spill.c" >"$T/ops2" &&
		same "$T/ops1" "$T/ops2" "ops with and without spilling"
else
	t generated_store_mail_day
	no "$GEN not built"
fi

t link_candidates_past_the_memory_limit_give_the_same_logs
# With a tiny --mem-limit the set of inodes that may be linked is dropped and
# every file that may be linked is taken instead (diff.c, cand_note): the
# logs must not change, and the log made so must still rebuild the tree.
G="$T/lc"
"$GEN" create "$G" --users 6 --msgs 120 --seed 5 --size-scale 0.1 >/dev/null || no "generator failed"
sleep 2.2
"$CUTOVER" -q scan "$G" -o "$T/lc0" --maildir
"$GEN" mutate "$G" --seed 9 --percent 5 >/dev/null || no "mutate failed"
sleep 2.2
"$CUTOVER" -q scan "$G" -o "$T/lc1" --prev "$T/lc0" --maildir # carried entries: stale nlink possible
for args in "--from-empty $T/lc1" "$T/lc0 $T/lc1"; do
	# shellcheck disable=SC2086
	expect_rc 0 "$CUTOVER" -q diff $args -o "$T/lc-big" || break
	# shellcheck disable=SC2086
	expect_rc 0 "$CUTOVER" -vv diff $args -o "$T/lc-small" --mem-limit 64K || break
	grep -q 'all multi-link files are candidates' "$T/.err" || no "the candidate set was not dropped ($args)"
	ops_of "$T/lc-big" >"$T/lc-big.ops"; ops_of "$T/lc-small" >"$T/lc-small.ops"
	same "$T/lc-big.ops" "$T/lc-small.ops" "logs of diff $args with and without the limit"
done
"$CUTOVER" -q diff --from-empty "$T/lc1" -o "$T/lc-e" --mem-limit 64K
expect_rc 0 replay "$T/lc-e" "$G" "$T/lc-copy" &&
	same_tree_maildir "$G" "$T/lc-copy"

t corrupt_input_is_refused_with_file_and_offset
cp "$T/s2b.m" "$T/bad.m" && printf '\377\377\377\377' | dd of="$T/bad.m" bs=1 seek=30 conv=notrunc status=none
expect_rc 2 "$CUTOVER" diff "$T/s2a.m" "$T/bad.m" -o "$T/bad.c" &&
	{ grep -q "bad.m.*offset" "$T/.err" || no "message: $(cat "$T/.err")"; } &&
	{ [ ! -e "$T/bad.c" ] || no "a log was left behind"; }
expect_rc 2 "$CUTOVER" diff "$T/s2a.m" "$T/nonexistent.m" -o "$T/bad.c"
expect_rc 2 "$CUTOVER" diff "$T/s2.c" "$T/s2b.m" -o "$T/bad.c"

t wrong_file_type_names_what_it_is_and_what_was_expected
# Every command that opens a manifest or a log, given the other kind: exit 2,
# and the message says which kind the file is and which the command wanted.
wrong() { # WANT IS CMD...: the command must refuse, naming both kinds
	local want=$1 is=$2; shift 2
	expect_rc 2 "$@" || return
	grep -q "is a cutover $is, but a $want is expected here" "$T/.err" ||
		no "'$*' said: $(cat "$T/.err")"
}
wrong "change log" manifest "$CUTOVER" replay "$T/s2a.m" --source "$T/s1" --target "$T/wt" \
	--journal "$T/wt.journal"
[ ! -e "$T/wt" ] || [ -z "$(ls -A "$T/wt")" ] || no "replay of a manifest touched the target"
wrong manifest "change log" "$CUTOVER" diff "$T/s2.c" "$T/s2b.m" -o "$T/w.c"
wrong manifest "change log" "$CUTOVER" diff "$T/s2a.m" "$T/s2.c" -o "$T/w.c"
wrong manifest "change log" "$CUTOVER" diff --from-empty "$T/s2.c" -o "$T/w.c"
[ ! -e "$T/w.c" ] || no "a log was left behind"
wrong manifest "change log" "$CUTOVER" report "$T/s2.c" "$T/s2b.m"
wrong manifest "change log" "$CUTOVER" report "$T/s2a.m" "$T/s2.c" --json
wrong manifest "change log" "$CUTOVER" -q scan "$T/s1" -o "$T/w.m" --prev "$T/s2.c"
[ ! -e "$T/w.m" ] || no "a scan with a change log as --prev wrote its output"

t different_roots_need_force
expect_rc 2 "$CUTOVER" diff "$T/s2a.m" "$T/s3b.m" -o "$T/r.c" &&
	{ grep -q "different roots" "$T/.err" || no "message: $(cat "$T/.err")"; }
expect_rc 0 "$CUTOVER" -q diff --force "$T/s2a.m" "$T/s3b.m" -o "$T/r.c"
finish
