#!/usr/bin/env bash
# bench/replay-mem.sh - issue 22: replay's peak memory does not follow the
# journal the previous log left, nor the length of the log it resumes.
# On a store of REPLAY_USERS users (1000: ~1 M entries; --size-scale 0.02,
# the files' data is not what is measured), local disk, hot cache:
#   1. the initial copy (replay of the --from-empty log), timed: throughput;
#   2. the initial copy killed (kill -9) at RESUME_AT of its time, then
#      resumed: each binary on its own hard-linked copy of the killed state;
#   3. the first nightly replay after it (a 1% mail day), each on its own
#      hard-linked copy of the target: with the initial copy's journal
#      beside it, and with none.
# OLD=path/to/cutover measures another build side by side (the journal of
# the killed run is written by OLD then: a version-1 journal is read by both).
# Before all that, on a store of THRU_USERS users (default 300): replay
# throughput, the initial copy RUNS times per binary, interleaved.
# Results: $B/results-replay-mem.md.
. "$(dirname "$0")/lib.sh"
U=${REPLAY_USERS:-1000}
TU=${THRU_USERS:-300}
AT=${RESUME_AT:-0.8}
R="$B/rm"
mkdir -p "$R"
: >"$B/times"

# store U: the tree, its manifest and --from-empty log, made once.
store() {
	local s="$R/src-$1"
	if [ ! -f "$s.stamp" ]; then
		rm -rf "$s" "$s".*
		echo "bench: generating a store of $1 users in $s ..." >&2
		"$GEN" create "$s" --users "$1" --msgs 870 --size-scale 0.02 --seed 42 >"$s.gen" &&
			"$CUTOVER" -q scan "$s" -o "$s.m0" --maildir &&
			"$CUTOVER" -q diff --from-empty "$s.m0" -o "$s.l0" && touch "$s.stamp" || return 1
	fi
	echo "$s"
}
records() { "$CUTOVER" show "$1" | grep -c '^[a-z]'; }

# Throughput: the initial copy of the smaller store, interleaved.
S=$(store "$TU") || exit 1
for r in $(seq 1 "$RUNS"); do
	for b in $bins; do
		rm -rf "$R/t-$b" "$R/t-$b.j"
		timed "init${TU}_$b" "$(bin $b)" -q replay "$S.l0" --source "$S" --target "$R/t-$b" --journal "$R/t-$b.j"
	done
done
rm -rf "$R"/t-*
n_thru=$(records "$S.l0")

# 1. The initial copy of the large store, once per binary: the targets of 3.
S=$(store "$U") || exit 1
rm -rf "$R"/d-* "$R"/day-* "$R"/k*
for b in $bins; do
	timed "init${U}_$b" "$(bin $b)" -q replay "$S.l0" --source "$S" --target "$R/d-$b" --journal "$R/d-$b.j"
done
n_init=$(records "$S.l0")

# 2. The initial copy killed at RESUME_AT of its time, then resumed by each
# binary on its own copy of the killed state (hard links: a resume makes
# new names, it does not write into the files there).
"$(bin "${bins%% *}")" -q replay "$S.l0" --source "$S" --target "$R/k" --journal "$R/k.j" &
pid=$!
sleep "$(awk -v s="$(median "init${U}_new")" -v a="$AT" 'BEGIN {print s * a}')"
kill -9 $pid 2>/dev/null # (a small store may be copied before)
wait $pid 2>/dev/null
kbytes=$(stat -c %s "$R/k.j")
for b in $bins; do
	cp -al "$R/k" "$R/k-$b"
	cp "$R/k.j" "$R/k-$b.j"
	timed "resume${U}_$b" "$(bin $b)" -q replay "$S.l0" --source "$S" --target "$R/k-$b" --journal "$R/k-$b.j"
	rm -rf "$R/k-$b"
done
rm -rf "$R/k"

# 3. A 1% mail day (the store is changed: made again next time), replayed
# by each binary onto copies of its initial copy: with that copy's journal
# beside the target (and, for the new binary, the old one's), and with none.
rm -f "$S.stamp"
"$GEN" mutate "$S" --seed 9 --percent 1 >"$R/day.txt"
sleep 2.5 # let the day's last changes age past the racy window
"$CUTOVER" -q scan "$S" -o "$R/day.m1" --prev "$S.m0" --maildir || exit 1
"$CUTOVER" -q diff "$S.m0" "$R/day.m1" -o "$R/day.l1" || exit 1
: >"$B/sizes"
day() { # BINARY CASE JOURNAL_TO_COPY
	local t="$R/day-$1-$2"
	cp -al "$R/d-$1" "$t"
	rm -f "$t.j"
	[ -n "$3" ] && cp "$3" "$t.j"
	echo "day_$1_$2: $(stat -c %s "$t.j" 2>/dev/null || echo 0) bytes" >>"$B/sizes"
	timed "day_$1_$2" "$(bin $1)" -q replay "$R/day.l1" --source "$S" --target "$t" --journal "$t.j"
	rm -rf "$t" "$t.j"
}
for b in $bins; do
	day $b journal "$R/d-$b.j"
	day $b none ""
done
[ -n "$OLD" ] && day new oldjournal "$R/d-old.j"
n_day=$(records "$R/day.l1")
rm -rf "$R"/d-*

row() { # NAME RECORDS
	local s kb
	s=$(median "$1") kb=$(medkb "$1")
	[ -n "$kb" ] || return 0
	echo "| $1 | $2 | $s | $(awk -v n="$2" -v s="$s" 'BEGIN {printf "%.0f", n / s}') | $(awk -v k="$kb" 'BEGIN {printf "%.1f", k / 1024}') MiB |"
}
{
	echo "# replay memory, $(date -u +%Y-%m-%d)"
	echo
	echo "machine: $(machine)"
	echo "stores: $U users: $(cat "$R/src-$U.gen"); $TU users: $(cat "$R/src-$TU.gen")"
	echo
	echo "| replay (binary) | records | seconds (median) | records/s | peak RSS (median) |"
	echo "|---|---:|---:|---:|---:|"
	for b in $bins; do row "init${TU}_$b" "$n_thru"; done
	for b in $bins; do row "init${U}_$b" "$n_init"; done
	for b in $bins; do row "resume${U}_$b" "$n_init"; done
	for b in $bins; do row "day_${b}_journal" "$n_day"; row "day_${b}_none" "$n_day"; done
	row day_new_oldjournal "$n_day"
	echo
	echo "journals beside the target before the day's replay:"
	sed 's/^/    /' "$B/sizes"
	echo "journal of the killed initial copy: $kbytes bytes (killed at $AT of its time)"
} >"$B/results-replay-mem.md"
rm -f "$B/sizes"
cat "$B/results-replay-mem.md"
