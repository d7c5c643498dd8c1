#!/usr/bin/env bash
# bench/splice.sh - the commit of a switch (sync_switched_splice, issue 17):
# the base rewritten with one user's record spliced in, timed alone on the
# stores of index-mem.sh (SPLICE_USERS, default "1000 5000": ~1 M and ~5 M
# entries; the base is their M1, whose blocks are as a nightly pass leaves
# them).  bench/splice.c is built against this build's libcutover.a, and
# against OLD_SRC's (a source tree of another commit, built) when set;
# RUNS interleaved runs of each, medians.  Results:
# $B/results-splice.md.
. "$(dirname "$0")/lib.sh"
R="$B/splice"
mkdir -p "$R"
: >"$B/times"
libs=$(pkg-config --libs libxxhash liblz4)
drv() { # drv NAME SRC: the driver built against SRC's build
	${CC:-cc} -O2 -std=c11 -I"$2" -o "$R/splice-$1" "$ROOT/bench/splice.c" \
		"$2/$BUILD/libcutover.a" $libs -lpthread || exit 1
}
make -s -C "$ROOT" "$BUILD/libcutover.a" >/dev/null || exit 1
drv new "$ROOT"
sides="new"
if [ -n "${OLD_SRC:-}" ]; then
	drv old "$OLD_SRC"
	sides="old new"
fi
out="$B/results-splice.md"
{
	echo "| base entries | binary | median s | µs per entry | median peak RSS MiB |"
	echo "|---:|---|---:|---:|---:|"
} >"$out"
for u in ${SPLICE_USERS:-1000 5000}; do
	s=$(store_steady "$u") || exit 1
	sub=$(cd "$s" && ls -d */* | LC_ALL=C sort | sed -n "$((u / 2))p")
	"$CUTOVER" -q scan "$s/$sub" -o "$R/rec" --maildir || exit 1
	for r in $(seq "$RUNS"); do
		for b in $sides; do
			timed "$u-$b" "$R/splice-$b" "$R" "$s.m1" "$sub" rec "$R/out-$b" ||
				{ cat "$B/.err" >&2; exit 1; }
		done
	done
	[ "$sides" = new ] || cmp -s "$R/out-old" "$R/out-new" ||
		{ echo "bench: the two builds' bases differ" >&2; exit 1; }
	n=$(entries_of "$s.m1")
	for b in $sides; do
		m=$(median "$u-$b")
		echo "| $n | $b | $m | $(awk -v m="$m" -v n="$n" 'BEGIN { printf "%.2f", m * 1e6 / n }') |" \
			"$(awk -v k="$(medkb "$u-$b")" 'BEGIN { printf "%.1f", k / 1024 }') |" >>"$out"
	done
	rm -f "$R"/out-*
done
cat "$out"
