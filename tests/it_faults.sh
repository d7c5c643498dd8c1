#!/usr/bin/env bash
# tests/it_faults.sh - the fault matrix of docs/RELIABILITY.md: faults of the
# source (EIO, EACCES, ESTALE storms, files and directories changing while
# read), of the target (EIO on write, fsync and close, ESTALE once and for
# good, EDQUOT, ENOSPC, a read-only remount, EMFILE) and of the process (kill -9 at random points, a clock
# step).  Faults come from the LD_PRELOAD shim (tests/estale_shim.c; its
# header lists the variables), a small tmpfs, a loop-mounted ext4 image and
# ulimit.  Each case checks the outcome (finished, or stopped with the path,
# the errno and the documented exit code), that no partial file is under a
# final name, that no target file whose source still exists is lost, and that
# a rerun after the fault clears reaches rsync parity.
#   FAULTS_SEED=N   the seed of the random kill delays (printed)
#   FAULTS_KILLS=N  kill -9 rounds per command (default 3; bench/faults.sh
#                   runs many)
. tests/lib.sh
# The portable build (make portable: the POSIX fallbacks) lists directories
# and syncs the target with calls the shim cannot reach.
case "$BUILD" in *portable*) PORTABLE=1 ;; *) PORTABLE=0 ;; esac

C=$CUTOVER
SHIM="$PWD/$BUILD/tests/estale_shim.so"
[ -f "$SHIM" ] || { echo "FAIL the shim is missing ($SHIM)"; exit 1; }
export ASAN_OPTIONS="${ASAN_OPTIONS:-}${ASAN_OPTIONS:+:}verify_asan_link_order=0"
SEED=${FAULTS_SEED:-$(($(date +%s%N) % 100000))}
KILLS=${FAULTS_KILLS:-3}
RANDOM=$SEED
echo "  seed $SEED (FAULTS_SEED=$SEED repeats the kill delays), $KILLS kills per command"
cd "$T" || exit 1

# fault VAR=VALUE... CMD...: CMD under the shim; each injected fault is a
# line of $T/flog.
fault() { env LD_PRELOAD="$SHIM" FAULT_LOG="$T/flog" "$@"; }
# hit: the fault was injected at least once (a case whose fault never fired
# proves nothing), then forgets it.
hit() {
	[ -s "$T/flog" ] || no "the fault never hit: $*"
	rm -f "$T/flog"
}
# says WHAT PATTERN: the last command's stderr matches.
says() { grep -q -- "$2" "$T/.err" || no "$1: no '$2' on stderr: $(head -c 400 "$T/.err")"; }
# parity SRC DST [rsync options]: rsync sees no difference (checksums, hard
# links, times, modes, deletions).
parity() {
	local s=$1 d=$2 out
	shift 2
	out=$(rsync -anciH --delete "$@" "$s/" "$d/" 2>&1)
	[ -z "$out" ] || { no "rsync sees differences: $(echo "$out" | head -5)"; return 1; }
}
# whole DST BEFORE SRC: every file under a final name on the target is
# whole: the bytes of the source now, or of the target before the run; and
# no replay temporary is left.
whole() {
	local d=$1 b=$2 s=$3 n
	sums "$s" >"$T/.sum.s"
	sums "$b" >"$T/.sum.b"
	sums "$d" | grep -v '/\.cutover-tmp\.' >"$T/.sum.d"
	n=$(awk 'FILENAME != ARGV[3] {ok[$0] = 1; next} !($0 in ok) {print $2; exit}' \
		"$T/.sum.s" "$T/.sum.b" "$T/.sum.d")
	[ -z "$n" ] || { no "a partial file under its final name: $n"; return 1; }
	n=$(find "$d" -name '.cutover-tmp.*' | wc -l)
	[ "$n" = 0 ] || { no "$n replay temporaries left on the target"; return 1; }
}
# sums DIR: "md5 path" of every file beneath DIR.
sums() { (cd "$1" && find . -type f -print0 | xargs -0r md5sum); }
# kept DST BEFORE SRC: no file the target had before the run, and the
# source still has, is gone from the target.
kept() {
	local d=$1 b=$2 s=$3 p
	while IFS= read -r -d '' p; do
		[ -e "$s/$p" ] && [ ! -e "$d/$p" ] && { no "lost from the target: $p"; return 1; }
	done < <(cd "$b" && find . -type f -printf '%P\0')
	return 0
}
snap() { rm -rf "$T/before" && cp -a "$1" "$T/before"; }
# round OLD NEW LOG SRC: incremental scan of SRC against OLD, then diff.
round() { $C -q scan "$4" -o "$2" --prev "$1" && $C -q diff "$1" "$2" -o "$3"; }

# ---------------------------------------------------------------- source
# A store migrated by `sync` (the production path: a pass with unreadable
# source paths must not touch the target).
S="$T/src" D="$T/dst" ST="$T/state"
X=(--exclude='tmp/*' --exclude='*.lock') # the maildir policy's exclusions
"$GEN" create "$S" --users 6 --msgs 40 --seed 31 --size-scale 0.3 >/dev/null || no "generator failed"
$C init --source "$S" --target "$D" --state "$ST" --maildir >/dev/null
sync_() { "$@" $C sync --state "$ST" --no-syslog --full; }
sync_ || no "the initial copy failed"
U=$(cd "$S" && find . -path '*/Maildir/cur' -type d -printf '%P\n' | LC_ALL=C sort | head -1)
day=0

# unreadable FAULT_OP ERRNO PATH MESSAGE: after a mail day, a sync pass
# through the fault stops (exit 3) with the path and the errno, nothing
# replayed (the unread files would be deleted); the next pass reaches
# parity.
unreadable() {
	day=$((day + 1))
	"$GEN" mutate "$S" --seed $((300 + day)) --percent 8 >/dev/null
	snap "$D"
	expect_rc 3 sync_ fault FAULT_OP=$1 FAULT_ERRNO=$2 FAULT_PATH="$3" || return
	hit "$1 $2 $3"
	says "$1 $2" "$3: $4"
	kept "$D" "$T/before" "$S"
	parity "$T/before" "$D" || no "$1 $2: the stopped pass changed the target"
	expect_rc 0 sync_ && parity "$S" "$D" "${X[@]}"
}
V=${U%/cur} # its folder

t source_listing_unreadable_stops_the_pass_and_the_target_keeps_its_files
if [ "$PORTABLE" = 1 ]; then
	skip "the shim injects listing faults into getdents64, which the POSIX fallback (readdir) does not call"
else
# EIO and EACCES on a directory listing (getdents): the scan ends
# incomplete.
unreadable getdents EIO "/src/$U" "error.reading.directory.*Input/output"
unreadable getdents EACCES "/src/$U" "error.reading.directory.*Permission"

fi
t source_directory_or_stat_unreadable_stops_the_pass_and_the_target_keeps_its_files
# EACCES on opening a directory, EIO and EACCES on a stat: as a listing.
unreadable open EACCES "/src/$U" "cannot.open.directory:.Permission"
unreadable stat EIO "/src/$V/dovecot-uidlist" "cannot.stat:.Input/output"
unreadable stat EACCES "/src/$V/dovecot.index.log" "cannot.stat:.Permission"

t bare_diff_refuses_an_incomplete_scan
# Without sync, diff refuses a manifest that lacks unreadable paths (a stat
# that fails: the shim reaches it in both builds).
$C -q scan "$S" -o "$T/m0" || no "scan failed"
expect_rc 3 fault FAULT_OP=stat FAULT_PATH="/src/$V/dovecot-uidlist" $C scan "$S" -o "$T/m1" && hit
expect_rc 2 $C diff "$T/m0" "$T/m1" -o "$T/c1" && says diff "could not read 1 paths"
[ -e "$T/c1" ] && no "a log was written from an incomplete scan"

t source_eio_in_the_middle_of_a_file_skips_it_and_keeps_the_target_copy
# The NAS answers EIO for one file, 8 KiB into it, while replay copies it:
# that file is skipped (listed, exit 3), the rest of the pass is applied, the
# target keeps its old copy whole; the next pass copies it.  (Before: the
# source's error stopped the whole pass as a target error, exit 2, and every
# rerun stopped at the same file.)
f=$(cd "$S" && find . -name dovecot.index.log -printf '%P\n' | LC_ALL=C sort | head -1)
head -c 30000 /dev/urandom >>"$S/$f"
"$GEN" mutate "$S" --seed 320 --percent 8 >/dev/null
snap "$D"
expect_rc 3 sync_ fault FAULT_OP=read FAULT_PATH="/src/$f" FAULT_AFTER=8192
hit "read EIO"
says "read EIO" "skipped: update $f: cannot read the source: Input/output error"
cmp -s "$D/$f" "$T/before/$f" || no "the target's copy of $f is not its old copy"
whole "$D" "$T/before" "$S"
kept "$D" "$T/before" "$S"
[ "$(rsync -anciH --delete "${X[@]}" "$S/" "$D/" | grep -v "$f" | head -3)" = "" ] ||
	no "the rest of the pass was not applied"
expect_rc 0 sync_ && parity "$S" "$D" "${X[@]}"

t source_eio_while_hashing_is_named_and_never_called_parity
# The NAS answers EIO 4 KiB into a message while a content scan hashes it:
# the scan says which file and why, exits 3 (incomplete), and records the
# file without a hash; a content verification of the pair refuses to call
# it parity (exit 2), and says so once the fault clears.
h=$(cd "$S" && find . -path '*/cur/*' -type f -size +8k -printf '%P\n' | LC_ALL=C sort | head -1)
[ -n "$h" ] || no "the store has no message over 8 KiB"
expect_rc 3 fault FAULT_OP=read FAULT_PATH="/src/$h" FAULT_AFTER=4096 $C scan "$S" -o "$T/hashed" --hash all
hit "hash EIO"
says "hash EIO" "src/$h: cannot read to hash: Input/output error"
says "hash EIO" "incomplete: 1 paths could not be read"
$C show "$T/hashed" --format jsonl | jq -r 'select(.path? == $p) | .hash // "none"' --arg p "$h" >"$T/.h"
[ "$(cat "$T/.h")" = none ] || no "the unreadable file was recorded with a hash: $(cat "$T/.h")"
expect_rc 0 sync_ # the day before, so that the pair is in parity but for the fault
expect_rc 2 fault FAULT_OP=read FAULT_PATH="/src/$h" FAULT_AFTER=4096 $C verify "$S" "$D" --content --maildir
hit "verify EIO"
says "verify EIO" "parity cannot be established"
grep -q "^PARITY" "$T/.out" && no "verify called it parity: $(cat "$T/.out")"
expect_rc 0 $C verify "$S" "$D" --content --maildir

t estale_storm_is_retried_by_scan_and_replay
# Every path's first stat and open answer ESTALE (an NFS server failover:
# each cached handle goes stale once, at every level of a path): the scan
# and the replay retry each lookup, finish with nothing missing and reach
# parity, each saying how many lookups it made again.  (Before: replay gave
# up at the second stale level of a path and counted the file vanished.)  A
# handle stale twice is reported.
# A sync pass through the storm (below) after a mail day: finished, and
# its history line (and status --json) counts the requests made again.
"$GEN" mutate "$S" --seed 330 --percent 3 >/dev/null
sleep 1.1
expect_rc 0 sync_ fault FAULT_OP=stat,open FAULT_ERRNO=ESTALE FAULT_PATH=/src/ FAULT_PER_PATH=1 FAULT_TIMES=1 &&
	hit "sync storm"
n=$(tail -1 "$ST/history" | sed -n 's/.* retried=\([0-9]*\) .*/\1/p')
[ "${n:-0}" -gt 0 ] || no "the history line counts no retries: $(tail -1 "$ST/history")"
$C status --state "$ST" --no-check --json | jq -e ".passes[-1].retried == $n" >/dev/null ||
	no "status --json: $($C status --state "$ST" --no-check --json | jq -c '.passes[-1]')"
parity "$S" "$D" "${X[@]}"
$C -q scan "$S" -o "$T/ref" && $C show "$T/ref" | grep -v '^#' >"$T/ref.txt"
for mode in local network; do
	expect_rc 0 fault CUTOVER_FS=$mode FAULT_OP=stat,open FAULT_ERRNO=ESTALE FAULT_PATH=/src/ \
		FAULT_PER_PATH=1 FAULT_TIMES=1 $C scan "$S" -o "$T/storm" && hit "scan storm"
	says "$mode scan" "scan: [1-9][0-9]* stats or opens answered ESTALE .* made again"
	$C show "$T/storm" | grep -v '^#' | cmp -s - "$T/ref.txt" || no "$mode: the manifest differs"
done
$C -q diff --from-empty "$T/ref" -o "$T/cref"
rm -rf "$T/d2"
expect_rc 0 fault FAULT_OP=stat,open FAULT_ERRNO=ESTALE FAULT_PATH=/src/ FAULT_PER_PATH=1 \
	FAULT_TIMES=1 $C replay "$T/cref" --source "$S" --target "$T/d2" && hit "replay storm"
says replay " 0 drifted, 0 vanished, 0 skipped"
says replay "replay: [1-9][0-9]* source lookups answered ESTALE .* made again"
parity "$S" "$T/d2"
expect_rc 3 fault FAULT_OP=stat FAULT_ERRNO=ESTALE FAULT_PATH="/src/$f" FAULT_TIMES=2 \
	$C scan "$S" -o "$T/storm" && hit "lasting ESTALE"
says "lasting ESTALE" "src/$f: cannot stat: Stale file handle"

t file_truncated_grown_or_replaced_while_copied
# The shim changes the file when the copy reaches 16 KiB: truncated to it,
# grown by 4 KiB, or replaced by a rename (the copy's fd keeps the old file).
# The target gets a whole version (what was read, with the attributes read
# with it: drift, exit 3; or the old file whole), never a mix; the next
# round reaches parity.
M="$T/srcm" MD="$T/dstm"
"$GEN" create "$M" --users 2 --msgs 10 --seed 33 --size-scale 0.1 >/dev/null
$C -q scan "$M" -o "$T/mm0" && $C -q diff --from-empty "$T/mm0" -o "$T/mc0" &&
	$C -q replay "$T/mc0" --source "$M" --target "$MD" || no "initial copy failed"
k=0
for how in truncate grow replace; do
	head -c 65536 /dev/urandom >"$M/big-$how"
	round "$T/mm$k" "$T/mm$((k + 1))" "$T/mc$((k + 1))" "$M" || no "scan/diff failed"
	k=$((k + 1))
	[ $how = replace ] && head -c 5000 /dev/urandom >"$M/big-$how.new"
	snap "$MD"
	cp "$M/big-$how" "$T/before/big-$how" # the version before the change
	fault MUTATE_PATH="/srcm/big-$how" MUTATE_AT=16384 MUTATE=$how \
		$C replay "$T/mc$k" --source "$M" --target "$MD" >"$T/.out" 2>"$T/.err"
	rc=$?
	hit "$how"
	case $how in
	truncate | grow)
		[ $rc = 3 ] || no "$how: exit $rc, expected 3: $(head -c 300 "$T/.err")"
		says "$how" " 1 drifted"
		cmp -s "$MD/big-$how" "$M/big-$how" || cmp -s "$MD/big-$how" "$T/before/big-$how" ||
			no "$how: the copy is neither the file before nor after" ;;
	replace)
		[ $rc = 3 ] || [ $rc = 0 ] || no "$how: exit $rc: $(head -c 300 "$T/.err")"
		cmp -s "$MD/big-$how" "$T/before/big-$how" || no "replace: the copy is not the old file whole" ;;
	esac
	whole "$MD" "$T/before" "$M"
	round "$T/mm$k" "$T/mm$((k + 1))" "$T/mc$((k + 1))" "$M" || no "scan/diff failed"
	k=$((k + 1))
	expect_rc 0 $C replay "$T/mc$k" --source "$M" --target "$MD" && parity "$M" "$MD"
done

t directory_renamed_during_a_scan
# A folder renamed right after the scan opened it (Dovecot's RENAME): the
# scan finishes; the round applies it; the next round reaches parity.
for mode in local network; do
	dir=$(cd "$M" && find . -path '*/Maildir/.*' -maxdepth 4 -type d -printf '%P\n' | LC_ALL=C sort | head -1)
	expect_rc 0 fault CUTOVER_FS=$mode RENAME_AFTER_OPEN="/srcm/$dir:.Renamed-$mode" \
		$C scan "$M" -o "$T/mm$((k + 1))" --prev "$T/mm$k"
	grep -q RENAMED "$T/flog" || no "$mode: the folder was not renamed during the scan"
	hit "rename $mode"
	$C -q diff "$T/mm$k" "$T/mm$((k + 1))" -o "$T/mc$((k + 1))" || no "diff failed"
	k=$((k + 1))
	$C -q replay "$T/mc$k" --source "$M" --target "$MD" 2>"$T/.err"
	case $? in 0 | 3) ;; *) no "$mode: replay: $(cat "$T/.err")" ;; esac
	round "$T/mm$k" "$T/mm$((k + 1))" "$T/mc$((k + 1))" "$M" || no "scan/diff failed"
	k=$((k + 1))
	expect_rc 0 $C replay "$T/mc$k" --source "$M" --target "$MD" && parity "$M" "$MD"
done

# ---------------------------------------------------------------- target
# A from-empty log of S replayed onto fresh targets.
$C -q scan "$S" -o "$T/tm" && $C -q diff --from-empty "$T/tm" -o "$T/tc" || no "scan/diff failed"
# fresh DIR: an empty target with no journal.
fresh() { rm -rf "$1" "$1.cutover-journal" "$T/j"; mkdir -p "$T/empty"; }

t target_eio_or_edquot_on_write_stops_and_resumes
# EIO 4 KiB into a file: stop (exit 2) naming the file and the errno;
# EDQUOT: exit 5 with what to do.  The failing temporaries are removed,
# nothing partial is visible; the same command, rerun, reaches parity.
for c in "EIO 2 Input/output.error" "EDQUOT 5 Disk.quota.exceeded;.free.space"; do
	set -- $c
	fresh "$T/tw"
	expect_rc $2 fault FAULT_OP=write FAULT_ERRNO=$1 FAULT_PATH=/tw/ FAULT_AFTER=4096 \
		$C replay "$T/tc" --source "$S" --target "$T/tw"
	hit "write $1"
	says "write $1" "cannot copy [^:]*: $3"
	whole "$T/tw" "$T/empty" "$S"
	expect_rc 0 $C replay "$T/tc" --source "$S" --target "$T/tw" && parity "$S" "$T/tw"
done

t target_eio_on_fsync_stops_and_resumes
# --fsync: a file's or directory's fsync fails after 15 good ones.
fresh "$T/tf"
expect_rc 2 fault FAULT_OP=fsync FAULT_PATH=/tf/ FAULT_AFTER=15 \
	$C replay "$T/tc" --source "$S" --target "$T/tf" --fsync -j 4
hit "fsync"
says fsync "cannot fsync [^:]*: Input/output error"
whole "$T/tf" "$T/empty" "$S"
expect_rc 0 $C replay "$T/tc" --source "$S" --target "$T/tf" && parity "$S" "$T/tf"

t target_eio_or_enospc_on_the_closing_syncfs_stops_and_resumes
if [ "$PORTABLE" = 1 ]; then
	skip "the shim injects this fault into syncfs, which the POSIX fallback (sync, no file descriptor to name the target by) does not call"
else
# Without --fsync: the closing syncfs fails (then the log is not marked
# complete) with EIO, or with ENOSPC.
for c in "EIO 2 Input/output.error" "ENOSPC 5 No.space.left"; do
	set -- $c
	fresh "$T/tf"
	expect_rc $2 fault FAULT_OP=fsync FAULT_ERRNO=$1 FAULT_PATH=/tf $C replay "$T/tc" --source "$S" \
		--target "$T/tf" --journal "$T/j"
	hit "syncfs $1"
	says "syncfs $1" "tf: cannot sync the target file system: $3"
	expect_rc 0 $C replay "$T/tc" --source "$S" --target "$T/tf" --journal "$T/j" &&
		parity "$S" "$T/tf"
done

fi
t target_estale_once_is_made_again_from_the_target_root
# An NFS target (or a SAN file system after a failover) answers ESTALE once
# for every target path's first stat, open of a temporary, rename or mkdir
# (FAULT_PER_PATH=1 FAULT_TIMES=1, one call at a time), and once for one
# open of a directory (the walk beneath the target root of the POSIX
# fallback; Linux resolves with openat2, which the shim does not see, and
# meets a temporary's open instead): replay makes each such operation again
# once, its paths looked up again from the target root, finishes, says how
# many, leaves no temporary and reaches parity.
for c in "stat /ts/ 1 0" "open /.cutover-tmp. 1 0" "open /ts/ 0 30" "rename /ts/ 1 0" \
	"mkdir /ts/ 1 0"; do
	set -- $c
	fresh "$T/ts"
	expect_rc 0 fault FAULT_OP=$1 FAULT_ERRNO=ESTALE FAULT_PATH=$2 FAULT_PER_PATH=$3 FAULT_AFTER=$4 \
		FAULT_TIMES=1 $C replay "$T/tc" --source "$S" --target "$T/ts" -j $((RANDOM % 4 + 1)) ||
		continue
	hit "$1 $2 ESTALE once"
	says "$1 ESTALE once" "replay: [1-9][0-9]* operations on the target answered ESTALE .* made again"
	whole "$T/ts" "$T/empty" "$S"
	parity "$S" "$T/ts"
done

t target_estale_that_lasts_stops_replay_naming_the_path
# The same calls answer ESTALE for one path every time: the operation is
# made again once, then replay stops (exit 2) naming the path on the target
# and the errno; nothing of it is under its final name and no temporary is
# left; the fault gone, the same command reaches parity.
g=$(cd "$S" && find . -path '*/cur/*' -type f -printf '%P\n' | LC_ALL=C sort | head -1)
gd=${g%/*}
for c in "stat /ts/$g cannot.stat" "open /ts/$gd/.cutover-tmp. cannot.create.a.temporary.file.for" \
	"rename /ts/$gd/.cutover-tmp. cannot.rename.into.place" "mkdir /ts/$gd cannot.create.directory"; do
	set -- $c
	fresh "$T/ts"
	expect_rc 2 fault FAULT_OP=$1 FAULT_ERRNO=ESTALE FAULT_PATH="$2" \
		$C replay "$T/tc" --source "$S" --target "$T/ts" || continue
	hit "$1 ESTALE lasting"
	says "$1 ESTALE lasting" "error: $3 $gd[^ ]* on the target: Stale file handle (again when"
	[ "$1" = mkdir ] && [ -e "$T/ts/$gd" ] && no "mkdir: $gd was made"
	[ "$1" = mkdir ] || [ ! -e "$T/ts/$g" ] || no "$1: $g is in place"
	whole "$T/ts" "$T/empty" "$S"
	expect_rc 0 $C replay "$T/tc" --source "$S" --target "$T/ts" && parity "$S" "$T/ts"
done

t target_estale_on_links_modes_times_and_directory_fsync
# The calls that make a hard link or a symlink, set a mode or times, and
# fsync a directory (--fsync) answer ESTALE: once for each path (the
# directory fsync: once in all, as an operation whose temporary and
# directory both went stale would meet it twice), then for one path every
# time.  Once: the operation is made again and replay reaches parity.
# Lasting: replay stops (exit 2) naming the path and the errno, nothing is
# half made, and the rerun without the fault reaches parity.  A small tree
# of its own: files, hard links, symlinks, a mode and old times.
L="$T/lsrc"
mkdir -p "$L/a/b" "$L/c"
echo one >"$L/a/f1" && echo two >"$L/a/b/f2"
ln "$L/a/f1" "$L/c/f1link" && ln "$L/a/b/f2" "$L/c/f2link"
ln -s ../a/f1 "$L/c/sym" && ln -s nowhere "$L/a/dangling"
chmod 0750 "$L/a/b" && chmod 0600 "$L/a/f1"
touch -d '2020-01-02 03:04:05' "$L/a/b/f2" "$L/a/b"
$C -q scan "$L" -o "$T/lm" && $C -q diff --from-empty "$T/lm" -o "$T/lc" || no "scan/diff failed"
for c in "link /tl/ 1" "symlink /tl/ 1" "chmod /tl/ 1" "utimes /tl/ 1" "fsync /tl/c 0"; do
	set -- $c
	fresh "$T/tl"
	expect_rc 0 fault FAULT_OP=$1 FAULT_ERRNO=ESTALE FAULT_PATH=$2 FAULT_PER_PATH=$3 FAULT_TIMES=1 \
		$C replay "$T/lc" --source "$L" --target "$T/tl" --fsync -j $((RANDOM % 3 + 1)) || continue
	hit "$1 ESTALE once"
	says "$1 ESTALE once" "replay: [1-9][0-9]* operations on the target answered ESTALE .* made again"
	whole "$T/tl" "$T/empty" "$L"
	parity "$L" "$T/tl"
done
for c in "link /tl/c/f1link cannot.link.c/f1link" "symlink /tl/c/ cannot.create.symlink.c/sym" \
	"chmod /tl/a/b/ cannot.set.the.mode.of.a/b/f2" "utimes /tl/a/b/ cannot.set.the.times.of.a/b/f2" \
	"fsync /tl/c cannot.fsync.the.directory.of.c/"; do
	set -- $c
	fresh "$T/tl"
	expect_rc 2 fault FAULT_OP=$1 FAULT_ERRNO=ESTALE FAULT_PATH="$2" \
		$C replay "$T/lc" --source "$L" --target "$T/tl" --fsync || continue
	hit "$1 ESTALE lasting"
	says "$1 ESTALE lasting" "error: $3[^ ]* on the target: Stale file handle (again when"
	[ "$1" = link ] && [ -e "$T/tl/c/f1link" ] && no "link: c/f1link was made"
	[ "$1" = symlink ] && [ -L "$T/tl/c/sym" ] && no "symlink: c/sym was made"
	whole "$T/tl" "$T/empty" "$L"
	expect_rc 0 $C replay "$T/lc" --source "$L" --target "$T/tl" && parity "$L" "$T/tl"
done

t target_eio_at_close_or_fsync_never_puts_the_copy_in_place
# NFS reports write-back errors at close (and at fsync): the temporary of
# the copy is removed, never renamed into place; replay stops naming the
# file and the errno (exit 2; ENOSPC at close: 5) and the same command
# copies the file.  (Under sync: below.)
for c in "close EIO 2 cannot.write.(reported.at.close) Input/output.error" \
	"close ENOSPC 5 cannot.write.(reported.at.close) No.space.left.on.device" \
	"fsync EIO 2 cannot.fsync Input/output.error"; do
	set -- $c
	fresh "$T/tk"
	expect_rc $3 fault FAULT_OP=$1 FAULT_ERRNO=$2 FAULT_PATH=/.cutover-tmp. FAULT_AFTER=$((RANDOM % 20)) \
		FAULT_TIMES=1 $C replay "$T/tc" --source "$S" --target "$T/tk" --fsync || continue
	hit "$1 $2"
	says "$1 $2" "error: $4 .*: $5"
	p=$(sed -n "s|.*error: $4 \(.*\): $5.*|\1|p" "$T/.err" | head -1)
	[ -n "$p" ] && [ ! -e "$T/tk/$p" ] || no "$1 $2: '$p' was put in place"
	whole "$T/tk" "$T/empty" "$S"
	expect_rc 0 $C replay "$T/tc" --source "$S" --target "$T/tk" && parity "$S" "$T/tk"
done
t target_full_stops_sync_with_exit_5_and_the_rerun_resumes
# A real small tmpfs under `sync`: exit 5 with what to do, the pass left
# pending, nothing partial; more space, and the next run finishes it.
mkdir -p "$T/small"
if mount -t tmpfs -o size=1m tmpfs "$T/small" 2>"$T/.merr"; then
	$C init --source "$S" --target "$T/small/d" --state "$T/st5" --maildir >/dev/null
	expect_rc 5 $C sync --state "$T/st5" --no-syslog
	says full "No space left on device"
	[ -e "$T/st5/pending" ] || no "no pending pass after the full target"
	whole "$T/small/d" "$T/empty" "$S"
	mount -o remount,size=64m "$T/small" || no "remount failed"
	expect_rc 0 $C sync --state "$T/st5" --no-syslog && parity "$S" "$T/small/d" "${X[@]}"
	umount "$T/small"
else
	no "mount -t tmpfs is not permitted here: $(cat "$T/.merr")"
fi

t target_remounted_read_only_stops_and_resumes
# A loop-mounted ext4 target remounted read-only before a pass and in the
# middle of one: exit 2 naming the path and EROFS; remounted read-write,
# the same command reaches parity and leaves no temporary.
mkdir -p "$T/ro"
truncate -s 48M "$T/ro.img"
if mkfs.ext4 -q -F "$T/ro.img" 2>"$T/.merr" && mount -o loop "$T/ro.img" "$T/ro" 2>>"$T/.merr"; then
	fresh "$T/ro/d"
	mount -o remount,ro "$T/ro"
	expect_rc 2 $C replay "$T/tc" --source "$S" --target "$T/ro/d"
	says "ro before" "Read-only file system"
	mount -o remount,rw "$T/ro"
	fresh "$T/ro/d"
	$C replay "$T/tc" --source "$S" --target "$T/ro/d" --journal "$T/j" -j 2 --fsync \
		>"$T/.out" 2>"$T/.err" &
	pid=$!
	tries=0
	until [ "$(find "$T/ro/d" -type f 2>/dev/null | head -20 | wc -l)" = 20 ] || ! kill -0 $pid 2>/dev/null; do
		sleep 0.01
	done
	until mount -o remount,ro "$T/ro" 2>/dev/null || ! kill -0 $pid 2>/dev/null; do
		tries=$((tries + 1)) # EBUSY while a file is open for writing
		sleep 0.005
	done
	wait $pid
	rc=$?
	if [ $rc = 0 ]; then
		no "the replay finished before the remount (after $tries tries)"
	else
		[ $rc = 2 ] || no "exit $rc, expected 2: $(head -c 300 "$T/.err")"
		says "ro mid-pass" "Read-only file system"
	fi
	mount -o remount,rw "$T/ro"
	expect_rc 0 $C replay "$T/tc" --source "$S" --target "$T/ro/d" --journal "$T/j" &&
		parity "$S" "$T/ro/d"
	whole "$T/ro/d" "$T/empty" "$S"
	umount "$T/ro"
else
	no "cannot make or mount a loop ext4 image here: $(cat "$T/.merr")"
fi

t out_of_file_descriptors_stops_replay_and_scan_fits_its_budget
# ulimit -n 32 (soft and hard): the scan sizes its open directories to the
# limit and finishes; the replay's 16 workers run out: it stops (exit 2)
# naming a path and EMFILE, never taking that for an unreadable source file
# (skipped, exit 3: before); with the limit back, the rerun reaches parity.
(ulimit -n 16 && exec $C -q scan "$S" -o "$T/lowfd") || no "scan under ulimit -n 16 failed"
$C show "$T/lowfd" | grep -v '^#' | cmp -s - "$T/ref.txt" || no "the scan under ulimit -n 16 differs"
fresh "$T/te"
expect_rc 2 bash -c "ulimit -n 32 && exec $C replay $T/tc --source $S --target $T/te -j 16"
says emfile ": Too many open files"
grep -q "skipped: .*Too many open files" "$T/.err" && no "EMFILE taken for an unreadable source"
whole "$T/te" "$T/empty" "$S"
expect_rc 0 $C replay "$T/tc" --source "$S" --target "$T/te" && parity "$S" "$T/te"

# --------------------------------------------------------------- process
# kill_at CMD...: runs CMD, kill -9 after a random 0-29 ms (from the seed);
# sets killed=1 when the kill found it running.
kill_at() {
	"$@" >/dev/null 2>&1 &
	local pid=$!
	if [ $((RANDOM % 2)) = 0 ]; then sleep "0.00$((RANDOM % 10))"; else sleep "0.0$((RANDOM % 3))$((RANDOM % 10))"; fi
	kill -9 $pid 2>/dev/null
	wait $pid 2>/dev/null
	[ $? = 137 ] && killed=1 || killed=0
}

t scan_and_diff_killed_at_random_points_leave_no_partial_output
# A killed scan or diff leaves its output absent or whole (written under a
# temporary name, renamed when complete); the rerun matches the reference.
# As for sync below: rounds go on (up to four times KILLS) until a kill lands.
landed=0 i=0
while [ $i -lt "$KILLS" ] || { [ $landed = 0 ] && [ $i -lt $((KILLS * 4)) ]; }; do
	i=$((i + 1))
	rm -f "$T/km" "$T/kc"
	kill_at $C scan "$S" -o "$T/km" -j 2
	landed=$((landed + killed))
	[ -e "$T/km" ] && { $C show "$T/km" >/dev/null 2>&1 || no "scan killed: a partial manifest under its name"; }
	kill_at $C diff --from-empty "$T/ref" -o "$T/kc"
	landed=$((landed + killed))
	[ -e "$T/kc" ] && { $C show "$T/kc" >/dev/null 2>&1 || no "diff killed: a partial log under its name"; }
done
echo "  $landed of $((2 * i)) kills landed while running"
[ $landed -ge 1 ] || no "no kill landed: the case proved nothing"
expect_rc 0 $C scan "$S" -o "$T/km" && $C show "$T/km" | grep -v '^#' | cmp -s - "$T/ref.txt" ||
	no "the rerun scan differs"
leftovers=$(find "$T" -maxdepth 1 -name 'k[mc].tmp.*' | wc -l)
echo "  ($leftovers temporaries of killed scans and diffs left beside their outputs)"

t target_eio_at_close_under_sync_keeps_the_old_version_and_the_pass_pending
# A sync pass after a mail day, one temporary's close failing with EIO: the
# file keeps its old version (or stays absent), the pass stops (exit 2) and
# stays pending, and the next pass copies it.
# (This case and the next change the source: they come after the cases that
# replay $T/tc or compare with $T/ref, both made from it as it was.)
day=$((day + 1))
"$GEN" mutate "$S" --seed $((700 + day)) --percent 8 >/dev/null
snap "$D"
expect_rc 2 sync_ fault FAULT_OP=close FAULT_PATH=/.cutover-tmp. FAULT_AFTER=1 FAULT_TIMES=1 &&
	hit "sync close EIO"
says "sync close EIO" "error: cannot write (reported at close) .*: Input/output error"
p=$(sed -n 's/.*error: cannot write (reported at close) \(.*\): Input.*/\1/p' "$T/.err" | head -1)
if [ -e "$T/before/$p" ]; then
	cmp -s "$D/$p" "$T/before/$p" || no "sync close EIO: $p is not its old version"
else
	[ -n "$p" ] && [ ! -e "$D/$p" ] || no "sync close EIO: '$p' was put in place"
fi
[ -e "$ST/pending" ] || no "sync close EIO: no pending pass"
whole "$D" "$T/before" "$S"
kept "$D" "$T/before" "$S"
expect_rc 0 sync_ && parity "$S" "$D" "${X[@]}"

t target_estale_under_sync_is_made_again_or_stops_the_pass
# A mail day synced while every target path's first unlink, rename and
# mkdir answers ESTALE: the pass finishes and its history counts the
# requests made again.  A pass that scans the whole target first
# (--check-target) through every path's first stat and open answering
# ESTALE: the scan of the target retries each, as the source's does.  A
# target directory stale on every open: the target's scan stops the pass
# (exit 2) naming it, before anything is changed.  A rename stale on every
# try: the replay stops (exit 2), the pass stays pending.  After each, the
# next pass reaches parity.
sync_st() { "$@" $C sync --state "$ST" --no-syslog "${SYNC_ARGS[@]}"; }
retried() { tail -1 "$ST/history" | sed -n 's/.* retried=\([0-9]*\) .*/\1/p'; }
day=$((day + 1))
"$GEN" mutate "$S" --seed $((700 + day)) --percent 8 >/dev/null
sleep 1.1
SYNC_ARGS=()
expect_rc 0 sync_st fault FAULT_OP=unlink,rename,mkdir FAULT_ERRNO=ESTALE FAULT_PATH=/dst/ FAULT_PER_PATH=1 \
	FAULT_TIMES=1 && hit "sync unlink,rename,mkdir"
[ "$(retried)" -gt 0 ] 2>/dev/null || no "the history line counts no retries: $(tail -1 "$ST/history")"
parity "$S" "$D" "${X[@]}"
SYNC_ARGS=(--check-target)
expect_rc 0 sync_st fault FAULT_OP=stat,open FAULT_ERRNO=ESTALE FAULT_PATH=/dst/ FAULT_PER_PATH=1 \
	FAULT_TIMES=1 && hit "sync --check-target storm"
[ "$(retried)" -gt 0 ] 2>/dev/null || no "--check-target: the history line counts no retries"
parity "$S" "$D" "${X[@]}"
day=$((day + 1))
"$GEN" mutate "$S" --seed $((700 + day)) --percent 8 >/dev/null
snap "$D"
expect_rc 2 sync_st fault FAULT_OP=open FAULT_ERRNO=ESTALE FAULT_PATH="/dst/$U" && hit "target scan ESTALE"
says "target scan ESTALE" "dst/$U: cannot open directory: Stale file handle"
says "target scan ESTALE" "paths of the target could not be read"
parity "$T/before" "$D" || no "the stopped pass changed the target"
SYNC_ARGS=(--full)
expect_rc 2 sync_st fault FAULT_OP=rename FAULT_ERRNO=ESTALE FAULT_PATH=/dst/ FAULT_AFTER=1 &&
	hit "sync rename ESTALE lasting"
says "sync rename ESTALE lasting" "on the target: Stale file handle (again when"
[ -e "$ST/pending" ] || no "sync rename ESTALE lasting: no pending pass"
whole "$D" "$T/before" "$S"
kept "$D" "$T/before" "$S"
expect_rc 0 sync_st && parity "$S" "$D" "${X[@]}"

t state_directory_full_at_each_file_stops_cleanly_and_resumes
# The disk of the state directory fills (ENOSPC) while the pass writes each
# of its files in turn: the source manifest, the change log, the pending
# record, the journal, the target's state, the marks, the history.  Each
# time the pass names the file and the errno (and stops, but for the marks,
# which the next pass does without; the history line, written last, fails
# a pass that is otherwise done, so that cron hears of it), no
# file on the target is partial or lost, and the next pass (space again)
# reaches parity.  Then a real small tmpfs as the state directory's disk.
for f in /manifests/ /logs/ /pending /journal /target-state /target-marks /history; do
	day=$((day + 1))
	"$GEN" mutate "$S" --seed $((600 + day)) --percent 3 >/dev/null
	snap "$D"
	sleep 1.1
	sync_ fault FAULT_OP=write FAULT_ERRNO=ENOSPC FAULT_PATH="/state$f" >/dev/null 2>"$T/.err"
	rc=$?
	if [ -s "$T/flog" ]; then
		rm -f "$T/flog"
		grep -q "state${f%/}.*No space left on device" "$T/.err" ||
			no "$f: the message does not name the file and the errno: $(head -c 400 "$T/.err")"
		case $f in
		/target-marks) [ $rc = 0 ] || no "$f: exit $rc, not 0 (the pass does without the marks)" ;;
		/history) [ $rc = 2 ] && grep -q "nightly pass [0-9]* is done and committed" "$T/.err" ||
			no "$f: exit $rc, not 2 saying the pass is done: $(head -c 400 "$T/.err")" ;;
		*) [ $rc = 0 ] && no "$f: exit 0" ;;
		esac
		echo "  ENOSPC on ${f#/}: exit $rc"
	else
		no "$f: the fault never hit (rc $rc)"
	fi
	whole "$D" "$T/before" "$S"
	kept "$D" "$T/before" "$S"
	expect_rc 0 sync_ && parity "$S" "$D" "${X[@]}" || break
done
mkdir -p "$T/sdisk"
if mount -t tmpfs -o size=512k tmpfs "$T/sdisk" 2>"$T/.merr"; then
	S6="$T/src6"
	"$GEN" create "$S6" --users 3 --msgs 40 --seed 61 --size-scale 0.3 >/dev/null || no "generator failed"
	$C init --source "$S6" --target "$T/d6" --state "$T/sdisk/st" --maildir >/dev/null
	expect_rc 0 $C sync --state "$T/sdisk/st" --no-syslog
	"$GEN" mutate "$S6" --seed 650 --percent 20 >/dev/null
	sleep 1.1
	head -c $(( $(df -k --output=avail "$T/sdisk" | tail -1) * 1024 - 8192 )) /dev/zero >"$T/sdisk/fill" 2>/dev/null
	snap "$T/d6"
	expect_rc 2 $C sync --state "$T/sdisk/st" --no-syslog
	says "state disk full" "sdisk/st/.*No space left on device"
	says "state disk full" "to fix:"
	[ -e "$T/sdisk/st/pending" ] && no "a pass is pending after a full state disk before its log"
	whole "$T/d6" "$T/before" "$S6"
	rm -f "$T/sdisk/fill"
	expect_rc 0 $C sync --state "$T/sdisk/st" --no-syslog && parity "$S6" "$T/d6" "${X[@]}"
	umount "$T/sdisk"
else
	no "mount -t tmpfs is not permitted here: $(cat "$T/.merr")"
fi

t sync_killed_at_random_points_resumes_to_parity
# Passes after mail days, each killed -9 at a random point of its scan,
# diff, replay or commit (kills found mid-replay are counted: pending
# present); the next pass resumes.  Then parity, verify and status agree.
# A pass on this small store can end before a late kill: rounds go on (up to
# four times KILLS) until at least one kill has landed, every other one
# within the first 0.1 s.
midreplay=0 landed=0 i=0
while [ $i -lt "$KILLS" ] || { [ $landed = 0 ] && [ $i -lt $((KILLS * 4)) ]; }; do
	i=$((i + 1))
	"$GEN" mutate "$S" --seed $((400 + i)) --percent 5 >/dev/null
	$C sync --state "$ST" --no-syslog >/dev/null 2>&1 &
	pid=$!
	if [ $((i % 2)) = 0 ]; then sleep "0.0$((RANDOM % 10))"; else sleep "0.$((RANDOM % 3))$((RANDOM % 10))"; fi
	[ -e "$ST/pending" ] && p=1 || p=0
	kill -9 $pid 2>/dev/null
	wait $pid 2>/dev/null
	[ $? = 137 ] && { landed=$((landed + 1)); midreplay=$((midreplay + p)); }
	expect_rc 0 $C sync --state "$ST" --no-syslog || break
done
echo "  $landed of $i kills landed ($midreplay with a pass pending)"
[ $landed -ge 1 ] || no "no kill landed: the case proved nothing"
parity "$S" "$D" "${X[@]}"
expect_rc 0 $C verify --state "$ST"
expect_rc 0 $C status --state "$ST"
[ -z "$(find "$D" -name '.cutover-tmp.*')" ] || no "temporaries left on the target"

t sync_killed_at_each_commit_point_resumes_to_parity
# The shim kills the pass (SIGKILL) right before or after each rename into
# place of the state directory: the source manifest (scan), the log (diff),
# pending, target-state and target-marks (the commit), and the lock taken
# over from a killed run.  The next pass resumes or redoes what is
# missing, then parity.
for point in manifests/:before manifests/:after logs/:after pending:after target-state:before \
	target-state:after target-marks:before target-marks:after lock:after; do
	day=$((day + 1))
	"$GEN" mutate "$S" --seed $((500 + day)) --percent 3 >/dev/null
	# (a lock is taken over, renamed, only from a killed run)
	[ $point = lock:after ] && expect_rc 137 fault KILL_AT_RENAME="$ST/pending:after" \
		$C sync --state "$ST" --no-syslog
	expect_rc 137 fault KILL_AT_RENAME="$ST/$point" $C sync --state "$ST" --no-syslog ||
		{ no "$point: not killed there"; continue; }
	expect_rc 0 $C sync --state "$ST" --no-syslog || { no "$point: the next pass failed"; continue; }
	parity "$S" "$D" "${X[@]}" || no "$point: no parity after the next pass"
done
expect_rc 0 $C verify --state "$ST"
[ -z "$(find "$D" -name '.cutover-tmp.*')" ] || no "temporaries left on the target"

t clock_step_keeps_the_racy_rule
# cutover's clock an hour ahead of the file systems' (a clock step on the
# machine running it; file times come from the servers), then an hour
# behind: a file copied within its timestamp tick is still recognised as
# racy (by the target's ctime as well as the clock), so a change in that
# tick (same size, same mtime) is copied by the next pass.  (Before: with
# the clock ahead, no copy was racy and the change was never copied.)
for off in 3600 -3600; do
	S7="$T/s7$off" D7="$T/d7$off" ST7="$T/st7$off"
	"$GEN" create "$S7" --users 2 --msgs 10 --seed 71 --size-scale 0.1 >/dev/null
	$C init --source "$S7" --target "$D7" --state "$ST7" --maildir >/dev/null
	run7() { fault CLOCK_OFFSET_S=$off $C sync --state "$ST7" --no-syslog; }
	expect_rc 0 run7
	f7=$(find "$S7" -name dovecot.index.cache | LC_ALL=C sort | head -1)
	printf 'cache written at the copy\n' >"$f7"
	expect_rc 0 run7
	touch -r "$f7" "$T/ref7"
	printf 'CACHE WRITTEN IN THE TICK\n' >"$f7"
	touch -r "$T/ref7" "$f7"
	expect_rc 0 run7
	parity "$S7" "$D7" "${X[@]}" || no "clock $off s: the change in the copy's tick was lost"
	rm -f "$T/flog"
done

finish
