#!/usr/bin/env bash
# bench/nochange.sh - a pass over an unchanged store (issue 15): the
# incremental scan against the last manifest and the diff of the two, the
# cost left when nothing changed.  Stores (store_steady):
#   NOCHANGE_USERS (default "1000 5000"): ~1 M and ~5 M entries, 870
#     messages a user: the same pass on 5x the users and directories;
#   200 users with 870 and with 4350 messages (~200 k and ~1 M entries):
#     the same users and directories, 5x the messages.
# Each store's last manifest is rescanned by this build first, so that it
# has a skeleton (format/FORMAT.md 3.6).  With OLD=path/to/cutover another
# build runs beside this one on the same manifests (a build without
# skeletons reads the blocks); RUNS interleaved runs, medians; both builds'
# manifests must hold the same entries.  Results: $B/results-nochange.md.
. "$(dirname "$0")/lib.sh"
: >"$B/times"
out="$B/results-nochange.md"
{
	echo "| store | entries | directories | binary | scan s | diff s | scan + diff s | scan peak RSS MiB |"
	echo "|---|---:|---:|---|---:|---:|---:|---:|"
} >"$out"
one() { # one USERS MSGS LABEL (no spaces: times are split on them)
	local s
	s=$(store_steady "$1" "$2") || exit 1
	"$CUTOVER" -q scan "$s" -o "$s.m3" --prev "$s.m2" --maildir || exit 1
	for r in $(seq "$RUNS"); do
		for b in $bins; do
			timed "$3-$b-scan" "$(bin "$b")" -q scan "$s" -o "$s.out-$b" --prev "$s.m3" --maildir ||
				{ cat "$B/.err" >&2; exit 1; }
			timed "$3-$b-diff" "$(bin "$b")" -q diff "$s.m3" "$s.out-$b" -o "$s.log-$b" ||
				{ cat "$B/.err" >&2; exit 1; }
		done
	done
	[ "$bins" = new ] || same_body "$s.out-old" "$s.out-new" ||
		{ echo "bench: the two builds' manifests differ ($3)" >&2; exit 1; }
	local n d
	n=$(entries_of "$s.m3")
	d=$("$CUTOVER" show "$s.m3" --format jsonl | grep -c '"type":"dir"')
	for b in $bins; do
		local sc df
		sc=$(median "$3-$b-scan") df=$(median "$3-$b-diff")
		echo "| $3 | $n | $d | $b | $sc | $df | $(awk -v a="$sc" -v b="$df" 'BEGIN { printf "%.2f", a + b }') |" \
			"$(awk -v k="$(medkb "$3-$b-scan")" 'BEGIN { printf "%.1f", k / 1024 }') |" >>"$out"
	done
	rm -f "$s".out-* "$s".out-*.skel "$s".log-*
}
for u in ${NOCHANGE_USERS:-1000 5000}; do
	one "$u" 870 "$u-users"
done
one 200 870 "200-users-x870"
one 200 4350 "200-users-x4350"
cat "$out"
