# it_scan.sh - `cutover scan` and `cutover show` on real temporary trees,
# checked against find(1) and mtree(8).
. tests/lib.sh

# find's view and ours, in one line format: type mode uid:gid size nlink mtime path
find_view() {
	(cd "$1" && find . -mindepth 1 -printf '%y %m %U:%G %s %n %T@ %P\n') |
		awk '{ t = $1; m = sprintf("%04d", $2);
		       tt = (t=="f")?"file":(t=="d")?"dir":(t=="l")?"symlink":(t=="p")?"fifo":(t=="s")?"socket":t;
		       sz = (t=="f"||t=="l")?$4:"-";
		       split($6, a, "."); mt = a[1] "." substr(a[2] "000000000", 1, 9);
		       $1 = tt; $2 = m; $4 = sz; $6 = mt; print }' | sort
}
our_view() {
	"$CUTOVER" show "$1" | grep -v '^#' | awk '$NF != "." {
		t = $1; sz = (t=="file"||t=="symlink")?$4:"-";
		line = t " " $2 " " $3 " " sz " " $6 " " $5 " " $7;
		if (t == "symlink") { line = line }  # find prints only the link name
		print line }' | sort
}

mk_tree() {
	local r=$1
	mkdir -p "$r/dom/u1/Maildir/cur" "$r/dom/u1/Maildir/new" "$r/dom/u1/Maildir/tmp" "$r/dom/u2/Maildir/cur"
	for i in $(seq 1 50); do echo "message $i" > "$r/dom/u1/Maildir/cur/1491941$i.M1P1.host,S=12:2,S"; done
	ln "$r/dom/u1/Maildir/cur/14919411.M1P1.host,S=12:2,S" "$r/dom/u2/Maildir/cur/shared:2,"
	ln -s ../u1 "$r/dom/u2/link-to-u1"
	mkfifo "$r/dom/fifo"
	echo partial > "$r/dom/u1/Maildir/tmp/part"
	echo x > "$r/dom/u1/Maildir/dovecot-uidlist.lock"
	touch -d '2001-02-03 04:05:06.123456789' "$r/dom/u1/Maildir/cur/14919412.M1P1.host,S=12:2,S"
}

t scan_matches_find
mk_tree "$T/a"
expect_rc 0 "$CUTOVER" -q scan "$T/a" -o "$T/a.m" &&
	find_view "$T/a" >"$T/find.txt" && our_view "$T/a.m" >"$T/ours.txt" &&
	same "$T/find.txt" "$T/ours.txt" "find's and cutover's views"
[ "$(wc -l <"$T/ours.txt")" -gt 50 ] || no "too few entries in the view"

t show_jsonl_has_header_and_every_entry
expect_rc 0 "$CUTOVER" show "$T/a.m" --format jsonl && {
	head -1 "$T/.out" | grep -q '^{"manifest":{"id":"[0-9a-f]\{32\}"' || no "no header object"
	n=$(($(wc -l <"$T/.out") - 1))
	f=$(find "$T/a" | wc -l)
	[ "$n" = "$f" ] || no "jsonl has $n entries, find $f"
	grep -q '"path":"dom/u2/link-to-u1","type":"symlink".*"target":"../u1"' "$T/.out" || no "symlink target missing"
	grep -q '"mtime_ns":981173106123456789' "$T/.out" || no "nanosecond mtime lost"
}

t mtree_spec_checks_the_tree_and_catches_a_change
if command -v mtree >/dev/null; then
	"$CUTOVER" show "$T/a.m" --format mtree >"$T/spec"
	expect_rc 0 mtree -f "$T/spec" -p "$T/a"
	echo changed >>"$T/a/dom/u1/Maildir/cur/14919413.M1P1.host,S=12:2,S"
	mtree -f "$T/spec" -p "$T/a" >/dev/null 2>&1 && no "mtree did not notice a changed size"
else
	no "mtree is not installed (make deps installs mtree-netbsd)"
fi

t odd_names_round_trip
mkdir -p "$T/odd"
printf x >"$T/odd/$(printf 'new\nline')"
printf x >"$T/odd/$(printf 'bad\xff\xfebytes')"
printf x >"$T/odd/with space"
printf x >"$T/odd/back\\slash"
printf x >"$T/odd/$(printf 'caf\xc3\xa9')"
printf x >"$T/odd/star*?[x]"
expect_rc 0 "$CUTOVER" -q scan "$T/odd" -o "$T/odd.m"
"$CUTOVER" show "$T/odd.m" --format jsonl >"$T/odd.jsonl"
grep -q '"path":"bad\\udcff\\udcfebytes"' "$T/odd.jsonl" || no "non-UTF-8 bytes not escaped as \\udcXX"
grep -q '"path":"new\\nline"' "$T/odd.jsonl" || no "newline not escaped"
grep -q '"path":"café"' "$T/odd.jsonl" || no "valid UTF-8 not kept"
if command -v mtree >/dev/null; then
	"$CUTOVER" show "$T/odd.m" --format mtree >"$T/odd.spec"
	expect_rc 0 mtree -f "$T/odd.spec" -p "$T/odd"
fi

t deep_tree
d="$T/deep"
p=""
for i in $(seq 1 300); do p="$p/d"; done
mkdir -p "$d$p" && echo bottom >"$d$p/f"
expect_rc 0 "$CUTOVER" -q scan "$d" -o "$T/deep.m" -j 4 &&
	[ "$("$CUTOVER" show "$T/deep.m" | grep -vc '^#')" = $(($(find "$d" | wc -l))) ] || no "deep tree count differs"

t big_directory_is_deterministic_across_thread_counts
mkdir -p "$T/big/one" "$T/big/two"
(cd "$T/big/one" && seq -f 'f%06g' 1 100000 | xargs touch)
(cd "$T/big/two" && seq -f '%g.M1P1,S=1:2,S' 1 2000 | xargs touch && mkdir -p sub/a sub/b && touch sub/a/x sub/b/y)
expect_rc 0 "$CUTOVER" -q scan "$T/big" -o "$T/b1.m" -j 1
expect_rc 0 "$CUTOVER" -q scan "$T/big" -o "$T/b8.m" -j 8 --mem 100000
"$CUTOVER" show "$T/b1.m" --format jsonl | tail -n +2 >"$T/b1.txt"
"$CUTOVER" show "$T/b8.m" --format jsonl | tail -n +2 >"$T/b8.txt"
same "$T/b1.txt" "$T/b8.txt" "entries with 1 and 8 threads"
[ "$(wc -l <"$T/b1.txt")" = $(find "$T/big" | wc -l) ] || no "count differs from find"

t unreadable_directory_is_reported_and_scan_completes
if command -v setpriv >/dev/null; then
	mkdir -p "$T/perm/ok" "$T/perm/locked/inner"
	touch "$T/perm/ok/f" "$T/perm/locked/inner/g"
	chown -R nobody "$T/perm"
	chmod 000 "$T/perm/locked"
	chmod 777 "$T"
	setpriv --reuid=nobody --regid=nogroup --clear-groups "$CUTOVER" scan "$T/perm" -o "$T/perm.m" 2>"$T/perm.err"
	rc=$?
	[ $rc = 3 ] || no "exit $rc, expected 3 (incomplete)"
	grep -q "perm/locked: cannot open directory: Permission denied" "$T/perm.err" || no "no message naming the directory: $(cat "$T/perm.err")"
	"$CUTOVER" show "$T/perm.m" >"$T/perm.txt" || no "the incomplete manifest is not readable"
	grep -q ' locked$' "$T/perm.txt" || no "the unreadable directory itself is missing"
	grep -q ' ok/f$' "$T/perm.txt" || no "the readable part is missing"
	grep -q 'unreadable: 1' "$T/perm.txt" || no "header does not count the unreadable path"
	chmod 755 "$T/perm/locked"
else
	no "setpriv missing"
fi

t stale_nfs_handles_are_retried_once_then_reported
# ESTALE injected by an LD_PRELOAD shim (tests/estale_shim.c), as an NFS
# client returns it when a file was replaced on the server: one ESTALE is
# retried (stat of a file, open of a directory), a lasting one is reported
# with the path and the scan ends incomplete (exit 3).
SHIM="$PWD/$BUILD/tests/estale_shim.so"
export ASAN_OPTIONS="${ASAN_OPTIONS:-}${ASAN_OPTIONS:+:}verify_asan_link_order=0"
mkdir -p "$T/st/d1/sub" && echo a >"$T/st/d1/victim" && echo b >"$T/st/d1/sub/f"
"$CUTOVER" -q scan "$T/st" -o "$T/st.ref"
"$CUTOVER" show "$T/st.ref" | grep -v '^#' >"$T/st.ref.txt"
for mode in local network; do
	for v in ESTALE_ONCE=victim ESTALE_OPEN_ONCE=sub ESTALE_OPEN_ONCE=d1; do
		expect_rc 0 env LD_PRELOAD="$SHIM" CUTOVER_FS=$mode "$v" "$CUTOVER" scan "$T/st" -o "$T/st.m" &&
			grep -q ' 0 errors' "$T/.err" || no "$mode $v: $(cat "$T/.err")"
		"$CUTOVER" show "$T/st.m" | grep -v '^#' | cmp -s - "$T/st.ref.txt" || no "$mode $v: manifest differs"
	done
	expect_rc 3 env LD_PRELOAD="$SHIM" CUTOVER_FS=$mode ESTALE_ALWAYS=victim "$CUTOVER" scan "$T/st" -o "$T/st.m"
	grep -q "st/d1/victim: cannot stat: Stale file handle" "$T/.err" || no "$mode: message: $(cat "$T/.err")"
	"$CUTOVER" show "$T/st.m" | grep -q 'd1/sub/f' || no "$mode: the rest of the tree is missing"
done

t network_mode_looks_up_each_directory_once
# On NFS and FUSE every lookup of a name is a round trip.  In network mode a
# subdirectory to descend into is opened once beneath its parent and stat'ed
# through that fd: one lookup of its name, where a stat by name and then an
# open of it cost two.  The shim logs every stat and open by name.
mkdir -p "$T/lk/d01/d02/d03" "$T/lk/d04" "$T/lk/d05/d06"
for d in d01 d01/d02 d01/d02/d03 d04 d05 d05/d06; do echo x >"$T/lk/$d/dovecot-uidlist"; done
for pass in full incremental; do
	rm -f "$T/lk.log"
	args=()
	[ $pass = incremental ] && args=(--prev "$T/lk.full" --maildir)
	expect_rc 0 env LD_PRELOAD="$SHIM" CUTOVER_FS=network SHIM_LOG="$T/lk.log" \
		"$CUTOVER" scan "$T/lk" -o "$T/lk.$pass" "${args[@]}" &&
		grep -q ' 0 errors' "$T/.err" || no "$pass: $(cat "$T/.err")"
	[ -s "$T/lk.log" ] || no "$pass: the shim logged nothing"
	for d in d01 d02 d03 d04 d05 d06; do
		n=$(grep -cE "^[0-9]+ (stat|open) ([^ ]*/)?$d\$" "$T/lk.log")
		[ "$n" = 1 ] || no "$pass: $d looked up $n times: $(grep "$d" "$T/lk.log" | tr '\n' ' ')"
	done
	"$CUTOVER" show "$T/lk.$pass" | grep -c 'dovecot-uidlist' | grep -qx 6 || no "$pass: manifest lacks files"
done

t big_directory_stats_are_shared_by_the_threads_in_network_mode
# Behind latency a directory's stats one after the other are the scan's
# critical path (a cur/ of 100,000 messages).  In network mode the names of a
# big directory are cut into pieces that other threads stat too; the manifest
# must be the same as a local-mode scan's.  The shim makes each stat take
# 300 us, as a round trip would, and logs the thread of each.
mkdir -p "$T/fan/Maildir/cur" "$T/fan/Maildir/.Sent/cur"
(cd "$T/fan/Maildir/cur" && seq -f '%g:2,S' 1 400 | xargs touch && mkdir sub1 sub2 && touch sub1/x)
(cd "$T/fan/Maildir/.Sent/cur" && seq -f '%g:2,' 1 100 | xargs touch)
expect_rc 0 "$CUTOVER" -q scan "$T/fan" -o "$T/fan.local" -j 4
rm -f "$T/fan.log"
expect_rc 0 env LD_PRELOAD="$SHIM" CUTOVER_FS=network SHIM_LOG="$T/fan.log" SHIM_STAT_DELAY_US=300 \
	"$CUTOVER" -q scan "$T/fan" -o "$T/fan.net" -j 4
"$CUTOVER" show "$T/fan.local" | grep -v '^#' >"$T/fan.local.txt"
"$CUTOVER" show "$T/fan.net" | grep -v '^#' >"$T/fan.net.txt"
cmp -s "$T/fan.local.txt" "$T/fan.net.txt" || no "network and local manifests differ: $(diff "$T/fan.local.txt" "$T/fan.net.txt" | head -5)"
[ "$(grep -c ':2,S$' "$T/fan.net.txt")" = 400 ] || no "messages missing from the manifest"
threads=$(grep -E '^[0-9]+ stat [0-9]+:2,S$' "$T/fan.log" | cut -d' ' -f1 | sort -u | wc -l)
stats=$(grep -cE '^[0-9]+ stat [0-9]+:2,S$' "$T/fan.log")
[ "$stats" = 400 ] || no "400 messages, $stats stats"
[ "$threads" -ge 2 ] || no "the 400 stats of one directory were made by $threads thread(s)"

t unchanged_big_directory_stats_are_shared_in_an_incremental_network_scan
# The incremental scan does not read an unchanged directory again, but still
# stats its names that may change in place (index files, uidlists,
# subdirectories).  A domain of 10,000 users is that many stats: behind
# latency they too must be shared by the threads, not made one after another.
mkdir -p "$T/inc/dom"
(cd "$T/inc/dom" && seq -f 'dovecot.index.%g' 1 200 | xargs touch)
sleep 0.05
expect_rc 0 "$CUTOVER" -q scan "$T/inc" -o "$T/inc.m0" -j 4
rm -f "$T/inc.log"
expect_rc 0 env LD_PRELOAD="$SHIM" CUTOVER_FS=network SHIM_LOG="$T/inc.log" SHIM_STAT_DELAY_US=300 \
	"$CUTOVER" scan "$T/inc" -o "$T/inc.m1" --prev "$T/inc.m0" --maildir --granularity 1 -j 4
grep -q ' 0 dirs listed\| listed 0 dirs' "$T/.err" || no "the unchanged directory was read again: $(cat "$T/.err")"
threads=$(grep -E '^[0-9]+ stat dovecot\.index\.[0-9]+$' "$T/inc.log" | cut -d' ' -f1 | sort -u | wc -l)
stats=$(grep -cE '^[0-9]+ stat dovecot\.index\.[0-9]+$' "$T/inc.log")
[ "$stats" = 200 ] || no "200 index files, $stats stats"
[ "$threads" -ge 2 ] || no "the 200 stats of one unchanged directory were made by $threads thread(s)"
expect_rc 0 "$CUTOVER" diff "$T/inc.m0" "$T/inc.m1" -o "$T/inc.l" &&
	grep -q ' 0 ops' "$T/.err" || no "the incremental manifest differs: $(cat "$T/.err")"

t the_writer_does_not_walk_alone_past_the_memory_budget
# Past twice the memory budget the scan used to list only the directory the
# writer waited for, one at a time, until the writer had written enough: on
# a 1,000-user store behind NAS latency, 10 of an 11 s scan.  Workers now
# also list the jobs the writer needs next (a bounded look-ahead).  --mem 1
# keeps the engine past the budget all the time; the shim logs when each
# delayed stat starts and ends, so the log tells how many were waiting at
# once.  The manifest must be the one an unbounded scan writes.
for u in $(seq -w 1 40); do
	mkdir -p "$T/mem/dom/u$u/Maildir"
	touch "$T/mem/dom/u$u/Maildir/dovecot.index" "$T/mem/dom/u$u/Maildir/dovecot-uidlist"
done
expect_rc 0 "$CUTOVER" -q scan "$T/mem" -o "$T/mem.big" -j 4
rm -f "$T/mem.log"
expect_rc 0 env LD_PRELOAD="$SHIM" SHIM_LOG="$T/mem.log" SHIM_STAT_DELAY_US=2000 \
	"$CUTOVER" -q scan "$T/mem" -o "$T/mem.small" -j 4 --mem 1
at_once=$(awk '$2 == "stat" { n++; if (n > m) m = n } $2 == "back" { n-- } END { print m + 0 }' "$T/mem.log")
[ "$(grep -c ' back ' "$T/mem.log")" -ge 160 ] || no "too few stats logged"
[ "$at_once" -ge 2 ] || no "at most $at_once stat(s) at once past the budget"
expect_rc 0 "$CUTOVER" diff "$T/mem.big" "$T/mem.small" -o "$T/mem.l" &&
	grep -q ' 0 ops' "$T/.err" || no "the manifests differ: $(cat "$T/.err")"

t folder_removed_while_listed_is_not_an_error
# Dovecot deletes a folder by renaming it to .DOVECOT-TRASHED and removing
# that; a scan that opened it just before lists nothing (getdents: ENOENT;
# glibc's readdir, in the portable build, reads that as the end).  The shim
# removes the (empty) directory right after the scanner opens it.
mkdir -p "$T/rm/Maildir/.DOVECOT-TRASHED" "$T/rm/Maildir/cur" && echo m >"$T/rm/Maildir/cur/1:2,"
for mode in local network; do
	mkdir -p "$T/rm/Maildir/.DOVECOT-TRASHED"
	expect_rc 0 env LD_PRELOAD="$SHIM" CUTOVER_FS=$mode RMDIR_AFTER_OPEN=.DOVECOT-TRASHED \
		"$CUTOVER" scan "$T/rm" -o "$T/rm.m" &&
		grep -q ' 0 errors' "$T/.err" || no "$mode: $(cat "$T/.err")"
	[ -e "$T/rm/Maildir/.DOVECOT-TRASHED" ] && no "$mode: the shim did not remove the directory"
	"$CUTOVER" show "$T/rm.m" | grep -q 'Maildir/cur/1:2,' || no "$mode: the rest of the tree is missing"
done

t files_vanishing_during_the_scan_are_not_errors
mkdir -p "$T/live/cur"
(cd "$T/live/cur" && seq -f '%g:2,' 1 30000 | xargs touch)
seen=0
for attempt in 1 2 3 4 5; do
	# A Dovecot-like flag storm: rename every message (last names first, so
	# the renames meet the scan's stats) while the scan runs.
	perl -e 'opendir(D, $ARGV[0]) or die; my @f = reverse sort grep { !/^\./ } readdir(D);
		 for (@f) { my $n = /S$/ ? substr($_, 0, -1) : "${_}S"; rename("$ARGV[0]/$_", "$ARGV[0]/$n") }' "$T/live/cur" &
	pid=$!
	"$CUTOVER" scan "$T/live" -o "$T/live.m" -j 2 2>"$T/live.err"
	rc=$?
	wait $pid
	[ $rc = 0 ] || { no "exit $rc during renames: $(tail -2 "$T/live.err")"; break; }
	v=$(sed -n 's/.* \([0-9]*\) vanished.*/\1/p' "$T/live.err")
	[ "${v:-0}" -gt 0 ] && { seen=1; break; }
done
[ $seen = 1 ] || no "no vanished entry seen in 5 attempts (renames too slow to race?)"

t exclude_and_maildir_policy
expect_rc 0 "$CUTOVER" -q scan "$T/a" -o "$T/ex.m" --exclude 'fifo' --exclude 'dom/u2/*'
"$CUTOVER" show "$T/ex.m" >"$T/ex.txt"
grep -q ' dom/fifo$' "$T/ex.txt" && no "--exclude by name did not exclude"
grep -q ' dom/u2/Maildir' "$T/ex.txt" && no "--exclude by path did not exclude"
grep -q ' dom/u2$' "$T/ex.txt" || no "--exclude by path excluded the directory itself"
expect_rc 0 "$CUTOVER" -q scan "$T/a" -o "$T/md.m" --maildir
"$CUTOVER" show "$T/md.m" >"$T/md.txt"
grep -q 'Maildir/tmp/part' "$T/md.txt" && no "--maildir kept tmp/ contents"
grep -q ' dom/u1/Maildir/tmp$' "$T/md.txt" || no "--maildir dropped tmp/ itself"
grep -q 'uidlist.lock' "$T/md.txt" && no "--maildir kept a lock file"
grep -q '^# policy: maildir' "$T/md.txt" || no "policy not in the header"

t corrupt_or_foreign_manifest_is_refused_with_exit_2
cp "$T/a.m" "$T/bad.m"
printf '\x55' | dd of="$T/bad.m" bs=1 seek=40 conv=notrunc 2>/dev/null
expect_rc 2 "$CUTOVER" show "$T/bad.m" && grep -q "bad.m: corrupt file: .*(offset [0-9]*)" "$T/.err" || no "message lacks file and offset: $(cat "$T/.err")"
head -c 100 "$T/a.m" >"$T/short.m"
expect_rc 2 "$CUTOVER" show "$T/short.m" && grep -q "short.m" "$T/.err" || no "truncation message lacks the file"
echo "not a manifest" >"$T/text.m"
expect_rc 2 "$CUTOVER" show "$T/text.m"
expect_rc 2 "$CUTOVER" -q scan "$T/a" -o "$T/x.m" --prev "$T/bad.m"
[ -e "$T/x.m" ] && no "a scan with a corrupt --prev still wrote its output"

t usage_errors_exit_64
expect_rc 64 "$CUTOVER" scan
expect_rc 64 "$CUTOVER" scan "$T/a" -o "$T/u.m" --hash bogus
expect_rc 64 "$CUTOVER" frobnicate
# A bad count or limit is refused, in every command, naming the option and
# what it takes.
for c in "scan $T/a -o $T/u.m -j 0:scan: -j takes 1 to 1024, not '0'" \
	"replay x --source s --target d -j 300:replay: -j takes 1 to 256, not '300'" \
	"sync --state s --keep 0:sync: --keep takes 1 to" \
	"switch --state s --max-ops 1x:switch: --max-ops takes a number" \
	"verify a b --examples 2M:verify: --examples takes 0 to" \
	"report a b --by-depth x:report: --by-depth takes 0 to" \
	"init --source s --target d --state s --bwlimit -5:init: --bwlimit takes a number" \
	"status --state s -n 1G:status: -n takes 0 to"; do
	# shellcheck disable=SC2086 # the command's words
	expect_rc 64 "$CUTOVER" ${c%%:*} && grep -q "^cutover: ${c#*:}" "$T/.err" ||
		no "'${c%%:*}' said: $(head -1 "$T/.err")"
done
expect_rc 0 "$CUTOVER" help scan && grep -q 'usage: cutover scan' "$T/.out" || no "help scan"
expect_rc 0 "$CUTOVER" --version
finish
