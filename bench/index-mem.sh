#!/usr/bin/env bash
# bench/index-mem.sh - issue 22: the memory of a no-change `diff` and of a
# no-change incremental `scan` does not follow the manifests' indexes.
# For each store of U users in INDEX_USERS (default "1000 5000": ~1 M and
# ~5 M entries, --size-scale 0.02), its full scan m0 and two incremental
# scans, m1 of m0 and m2 of m1, nothing changed, are made once (the steady
# state of nightly passes: messages carried, blocks copied); then RUNS
# times, interleaved, each binary runs `scan --prev m1 --maildir` and
# `diff m1 m2` (every block pair skipped), hot cache, timed with their peak
# RSS.  OLD=path/to/cutover measures another build
# side by side.  Results: $B/results-index-mem.md.
. "$(dirname "$0")/lib.sh"
R="$B/im"
: >"$B/times"

out="$B/results-index-mem.md"
{
	echo "| store | entries | step | binary | median s | median peak RSS MiB |"
	echo "|---|---:|---|---|---:|---:|"
} >"$out"
for u in ${INDEX_USERS:-1000 5000}; do
	s=$(store_steady "$u") || exit 1
	for r in $(seq "$RUNS"); do
		for b in $bins; do
			timed "$u-$b-scan" "$(bin "$b")" -q scan "$s" -o "$R/out-$b" --prev "$s.m1" --maildir ||
				{ cat "$B/.err" >&2; exit 1; }
			rm -f "$R/out-$b"
			timed "$u-$b-diff" "$(bin "$b")" -q diff "$s.m1" "$s.m2" -o "$R/log-$b" ||
				{ cat "$B/.err" >&2; exit 1; }
			rm -f "$R/log-$b"
		done
	done
	n=$(sed -n 's/.*entries=\([0-9]*\).*/\1/p' "$s.gen")
	for step in scan diff; do
		for b in $bins; do
			echo "| $u users | $n | $step | $b | $(median "$u-$b-$step") |" \
				"$(awk -v k="$(medkb "$u-$b-$step")" 'BEGIN { printf "%.1f", k / 1024 }') |" >>"$out"
		done
	done
done
cat "$out"
