#!/usr/bin/env bash
# it_latfs.sh - bench/latfs (the NAS simulator the benchmarks and the budget
# tests mount) serves a source tree that other clients change while it is
# mounted: a mail day run on the backing tree.  New files reuse the inode
# numbers of expunged ones (ext4 hands a freed number out again at once),
# messages move new/ -> cur/, folders are renamed.  Every name seen through
# the mount must open and read the content of the file it names now.
# Needs /dev/fuse, fusermount3 and libfuse3-dev; without them the script
# says SKIP and records no case.
. tests/lib.sh
LM=$PWD/bench/latmount
export LATFS=${LATFS:-$PWD/$BUILD/latfs} LATMOUNT_STATE=$T/state
SRC=$T/src MNT=$T/mnt

if [ ! -c /dev/fuse ] || ! command -v fusermount3 >/dev/null ||
	! pkg-config --exists fuse3 2>/dev/null; then
	echo "SKIP it_latfs.sh: no /dev/fuse, fusermount3 or libfuse3-dev"
	finish
fi
trap 'rc=$?; "$LM" stop "$MNT" >/dev/null 2>&1; (exit $rc); _atexit' EXIT

N=300
mkdir -p "$SRC/Maildir/cur" "$SRC/Maildir/new" "$SRC/Maildir/tmp" "$SRC/Maildir/.Sent/cur"
for i in $(seq $N); do printf 'old message %d\n' "$i" >"$SRC/Maildir/cur/m$i:2,S"; done
echo sent >"$SRC/Maildir/.Sent/cur/s1:2,S"

t latfs_mounts
"$LM" start "$SRC" "$MNT" 20 >"$T/mount.log" 2>&1 || no "latmount start failed: $(cat "$T/mount.log")"

# Read everything through the mount: the kernel now holds a node for each file.
cat "$MNT"/Maildir/cur/* "$MNT/Maildir/.Sent/cur/s1:2,S" >/dev/null 2>&1 || no "first read through the mount failed"

t latfs_reused_inodes_serve_the_new_file
# A mail day on the backing tree: expunge every message, deliver N new ones
# as Dovecot does (tmp/ -> new/), mark every second one seen (new/ -> cur/).
# One perl, not 900 forks.  ext4 usually hands the freed inode numbers out
# again at once, but not always (it may pick another block group): repeat
# the day, reading everything through the mount first so the kernel holds
# a node for each old file, until a number was reused.
mail_day() {
	perl -e 'my ($d, $n, $day) = @ARGV;
		unlink glob("$d/cur/*"), glob("$d/new/*");
		for my $i (1 .. $n) {
			open(my $f, ">", "$d/tmp/d$day-$i") or die; print $f "day $day message $i\n"; close $f;
			rename("$d/tmp/d$day-$i", "$d/new/d$day-$i") or die;
		}
		for (my $i = 2; $i <= $n; $i += 2) { rename("$d/new/d$day-$i", "$d/cur/d$day-$i:2,S") or die }' "$SRC/Maildir" $N "$1"
}
inodes() { (ls -i "$SRC/Maildir/new"; ls -i "$SRC/Maildir/cur") | awk '{ print $1 }' | sort; }
reused=0
for day in 1 2 3 4 5; do
	cat "$MNT"/Maildir/cur/* "$MNT"/Maildir/new/* >/dev/null 2>&1
	inodes >"$T/old.ino"
	mail_day $day
	inodes >"$T/new.ino"
	reused=$(comm -12 "$T/old.ino" "$T/new.ino" | wc -l)
	[ "$reused" -gt 0 ] && break
done
echo "  day $day: $reused of $N new files reuse an expunged file's inode number"
[ "$reused" -gt 0 ] || no "no inode number was reused in 5 days: the case was not exercised"
(cd "$SRC" && find . -type f | sort) >"$T/src.list"
# Every file through the mount against the source: the names that differ.
perl -e 'my ($src, $mnt) = @ARGV[0, 1];
	sub slurp { open(my $f, "<", $_[0]) or return "open: $!"; local $/; my $c = <$f>; $c }
	open(my $l, "<", $ARGV[2]) or die;
	while (my $n = <$l>) {
		chomp $n;
		my $got = slurp("$mnt/$n");
		print "$n: $got\n" if slurp("$src/$n") ne $got;
	}' "$SRC" "$MNT" "$T/src.list" >"$T/bad"
bad=$(wc -l <"$T/bad")
[ "$bad" = 0 ] || no "$bad of $(wc -l <"$T/src.list") files do not read their content through the mount, e.g. $(head -3 "$T/bad")"
(cd "$MNT" && find . -type f | sort) >"$T/mnt.list" 2>&1
same "$T/src.list" "$T/mnt.list" "the file lists of the source and the mount"
[ ! -e "$MNT/Maildir/cur/m1:2,S" ] || no "an expunged name is still served"

t latfs_renamed_folder
cat "$MNT/Maildir/.Sent/cur/s1:2,S" >/dev/null
mv "$SRC/Maildir/.Sent" "$SRC/Maildir/.Sent Items"
got=$(cat "$MNT/Maildir/.Sent Items/cur/s1:2,S" 2>&1)
[ "$got" = sent ] || no "a message in a renamed folder reads '$got'"
[ ! -e "$MNT/Maildir/.Sent" ] || no "the old folder name is still served"

t latfs_open_file_survives_rename
want="day $day message 2"
if exec 3<"$MNT/Maildir/cur/d$day-2:2,S"; then
	mv "$SRC/Maildir/cur/d$day-2:2,S" "$SRC/Maildir/cur/d$day-2:2,RS"
	got=$(cat <&3 2>&1)
	size=$(stat -c %s - <&3 2>&1)                 # fstat: a GETATTR of the moved node
	exec 3<&-
	[ "$got" = "$want" ] || no "an open file renamed behind the mount reads '$got'"
	[ "$size" = $((${#want} + 1)) ] || no "fstat of an open file renamed behind the mount says '$size'"
else
	no "cannot open a delivered message through the mount"
	mv "$SRC/Maildir/cur/d$day-2:2,S" "$SRC/Maildir/cur/d$day-2:2,RS"
fi
got=$(stat -c %s "$MNT/Maildir/cur/d$day-2:2,RS" 2>&1)
[ "$got" = $((${#want} + 1)) ] || no "the renamed file's size is '$got'"

"$LM" stop "$MNT" >/dev/null 2>&1

# The load model: wall times of 8 parallel first stat()s of distinct names
# (each one LOOKUP), against bounds with wide margins for a busy machine.
ms() { echo $(($(date +%s%N) / 1000000)); }
par_stat() {   # par_stat ROUND: ms for 8 stats at once
	# Threads behind a barrier, so the 8 requests are in flight together even
	# on a busy machine (8 processes could start one after another).
	python3 - "$MNT/Maildir/cur" "$day" "$1" <<'PY'
import os, sys, threading, time
cur, day, rnd = sys.argv[1], sys.argv[2], int(sys.argv[3])
go = threading.Barrier(8)
def one(i):
    go.wait()
    os.stat("%s/d%s-%d:2,S" % (cur, day, 2 * i + 2 * 8 * rnd))
ts = [threading.Thread(target=one, args=(i,)) for i in range(1, 9)]
t0 = time.monotonic()
for t in ts: t.start()
for t in ts: t.join()
print(int((time.monotonic() - t0) * 1000))
PY
}
t latfs_delay_changes_while_mounted
"$LM" start "$SRC" "$MNT" 200000 >"$T/mount.log" 2>&1 || no "latmount start failed: $(cat "$T/mount.log")"
slow=$(par_stat 1)
"$LM" delay "$MNT" 0 || no "latmount delay failed"
fast=$(par_stat 2)
echo "  8 stats at once: $slow ms at 200 ms per op, $fast ms after latmount delay MNT 0"
# 3 round trips each (Maildir, cur, the name: entry_timeout=0), overlapped
[ "$slow" -ge 590 ] || no "8 stats at 200 ms took $slow ms"
[ "$fast" -lt 400 ] && [ $((2 * fast)) -lt "$slow" ] || no "8 stats after the delay went to 0 took $fast ms"
"$LM" stats "$MNT" | grep -q ' delay_us=0 ' || no "the stats do not show the new delay"
"$LM" stop "$MNT" >/dev/null 2>&1

t latfs_server_slots_queue
LATFS_OPTS=slots=1 "$LM" start "$SRC" "$MNT" 50000 >"$T/mount.log" 2>&1 || no "latmount start failed: $(cat "$T/mount.log")"
one=$(par_stat 3)    # 8 x 3 x 50 ms in one slot: >= 1200 ms
"$LM" stop "$MNT" >/dev/null 2>&1
LATFS_OPTS=load_us=200000 "$LM" start "$SRC" "$MNT" 0 >"$T/mount.log" 2>&1 || no "latmount start failed: $(cat "$T/mount.log")"
# Up to 7 others in flight x 200 ms, 3 round trips each.  With no base
# delay a lone request is answered at once, so the 8 may not overlap at
# all (seen once in ~20 runs: 6 ms): up to three rounds, until one raced.
lin=0
for r in 4 5 6; do
	l=$(par_stat $r)
	[ "$l" -gt "$lin" ] && lin=$l
	[ "$lin" -ge 500 ] && break
done
"$LM" stop "$MNT" >/dev/null 2>&1
echo "  8 stats at once: $one ms with one 50 ms slot, $lin ms at 0 + 200 ms per request in flight"
[ "$one" -ge 1190 ] || no "8 stats through one 50 ms slot took $one ms"
[ "$lin" -ge 500 ] || no "8 stats at 200 ms per request in flight took $lin ms"
finish
