# bench/lib.sh - shared by the benchmark scripts: the sample tree, timing
# with peak memory, medians, and the results file.
set -u
BUILD=${BUILD:-build}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CUTOVER=$ROOT/$BUILD/cutover
GEN=$ROOT/$BUILD/gen_maildir
B=${BENCH_DIR:-$ROOT/$BUILD/bench}
RUNS=${RUNS:-3}
mkdir -p "$B"

# OLD=path/to/cutover: another build measured beside this one.  $bins names
# the builds a side-by-side run loops over ("new", or "old new"); bin NAME
# prints one's path.
OLD=${OLD:-}
bins="new" && [ -n "$OLD" ] && bins="old new"
bin() { if [ "$1" = old ]; then echo "$OLD"; else echo "$CUTOVER"; fi; }

# tree NAME USERS SEED: a generated maildir store of USERS users with ~870
# messages each, made once under $B/NAME (its generator's summary in
# NAME.gen); prints its path.
tree() {
	local t="$B/$1"
	if [ ! -f "$t.stamp" ]; then
		rm -rf "$t"
		echo "bench: generating the sample store ($2 users) in $t ..." >&2
		"$GEN" create "$t" --users "$2" --msgs 870 --size-scale 0.1 --seed "$3" >"$t.gen" || return 1
		touch "$t.stamp"
	fi
	echo "$t"
}
# The ~1M-entry maildir tree (generated once, ~4 minutes, ~4.5 GB).
# BENCH_USERS scales it down for a quick run.
USERS=${BENCH_USERS:-1000}
tree_1m() { tree "src-$USERS" "$USERS" 42; }
# The store behind NAS latency (nfs.sh, switch.sh): NFS_USERS users, ~1,000 each.
NUSERS=${NFS_USERS:-200}
tree_nfs() { tree "nfs-src-$NUSERS" "$NUSERS" 7; }

# store_steady U [M]: a store of U users with M messages each (default 870;
# --size-scale 0.02) in $B/im, with its full scan M0 and two incremental
# scans, M1 of M0 and M2 of M1, nothing changed (the steady state of nightly
# passes: messages carried, blocks copied, a skeleton beside M2), made once;
# prints the tree's path (the manifests: PATH.m0 ...).
store_steady() {
	local m=${2:-870} s="$B/im/src-$1"
	[ "$m" = 870 ] || s="$s-$m"
	if [ ! -f "$s.stamp" ]; then
		mkdir -p "$B/im"
		rm -rf "$s" "$s".*
		echo "bench: generating a store of $1 users in $s ..." >&2
		"$GEN" create "$s" --users "$1" --msgs "$m" --size-scale 0.02 --seed 42 >"$s.gen" &&
			"$CUTOVER" -q scan "$s" -o "$s.m0" --maildir &&
			"$CUTOVER" -q scan "$s" -o "$s.m1" --prev "$s.m0" --maildir &&
			"$CUTOVER" -q scan "$s" -o "$s.m2" --prev "$s.m1" --maildir &&
			touch "$s.stamp" || return 1
	fi
	echo "$s"
}

# timed NAME CMD...: runs CMD, appends "NAME seconds maxrss_kb" to $B/times.
timed() {
	local name=$1; shift
	/usr/bin/time -f "%e %M" -o "$B/.time" "$@" >/dev/null 2>"$B/.err"
	local rc=$?
	read -r secs kb <"$B/.time"
	echo "$name $secs $kb $rc" >>"$B/times"
	return $rc
}
# median NAME: median seconds of the runs named NAME; medkb NAME: of peak RSS.
median() { awk -v n="$1" '$1==n {print $2}' "$B/times" | sort -g | awk '{a[NR]=$1} END {print (NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2}'; }
medkb() { awk -v n="$1" '$1==n {print $3}' "$B/times" | sort -g | awk '{a[NR]=$1} END {print (NR%2)?a[(NR+1)/2]:a[NR/2]}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }
# entries_of FILE: the entry count in a manifest's header.
entries_of() { "$CUTOVER" show "$1" | sed -n 's/^# entries: \([0-9]*\),.*/\1/p'; }
# same_body A B: whether two manifests (or two change logs) hold the same
# records; their headers, which name times and hosts, aside.
same_body() { cmp -s <("$CUTOVER" show "$1" --format jsonl | tail -n +2) <("$CUTOVER" show "$2" --format jsonl | tail -n +2); }
drop_caches() { sync; echo 3 >/proc/sys/vm/drop_caches 2>/dev/null || true; }
# settle: drop the page cache, then wait (at most 15 minutes) until the disk
# under $B has completed no read, write or discard for 5 s in a row, so that
# a timed command does not share the disk with what ran before it (the sync
# waits for the writeback; discards, on a file system mounted with
# `discard`, and other work of the device's can trail it).  What ext4 does
# after a deletion is not on the disk: copy.sh waits for that itself.
settle() {
	drop_caches
	local dev st prev="" quiet=0 waited=0
	dev=$(basename "$(df --output=source "$B" | tail -1)")
	grep -q " $dev " /proc/diskstats || return 0
	while [ $quiet -lt 5 ] && [ $waited -lt 900 ]; do
		# reads, writes, I/Os in flight, discards completed
		st=$(awk -v d="$dev" '$3 == d {print $4, $8, $12, $15}' /proc/diskstats)
		if [ "$st" = "$prev" ]; then quiet=$((quiet + 1)); else quiet=0; fi
		prev=$st
		sleep 1
		waited=$((waited + 1))
	done
	echo "bench: disk $dev settled after ${waited} s" >&2
}
machine() {
	echo "$(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')), $(free -g | awk '/Mem:/{print $2}') GiB RAM, $(uname -sr), $(df -T "$B" | awk 'NR==2{print $2}') at $B"
}
# syscalls CMD...: total system calls made by CMD and its threads (strace -c).
syscalls() {
	strace -f -c -o "$B/.strace" "$@" >/dev/null 2>&1
	awk '/^[0-9 .]+total$/ || $NF=="total" {print $(NF-2)}' "$B/.strace" | tail -1
}
