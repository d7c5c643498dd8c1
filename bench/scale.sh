#!/usr/bin/env bash
# bench/scale.sh - issue 15: every step of a migration at store sizes that
# span 10x (SCALE_SIZES, millions of entries, default "2 5 20"), each store
# on its own loop-mounted ext4 image (1 KiB blocks, one inode per entry and
# a tenth more), the target on another.  For each size, /usr/bin/time's wall
# time and peak RSS of: full scan; the initial copy (first sync); the nightly
# sync after a 1% mail day; the final pass after ~10,000 changed messages;
# verify; report; and the no-change incremental scan and diff (SCALE_OLD: a
# cutover of the previous format, built from an older commit, timed on the
# same tree for comparison).  Writes docs/scale.md (table) and docs/scale.png
# (log-log plot).  Needs root (mount) and ~1.8 GB of disk per million entries.
# SCALE_PREPARE=1 only makes the images and generates the stores (untimed,
# the longest part), and leaves them mounted for the next run, which times
# the steps on them: the generation can overlap other work, the steps not.
# Each size has its own images ($W/src-M.img, $W/dst-M.img).
. "$(dirname "$0")/lib.sh"
SIZES=${SCALE_SIZES:-"2 5 20"}
OLD=${SCALE_OLD:-}
W=${SCALE_DIR:-$B/scale}
OUT=${SCALE_OUT:-$ROOT/docs}
mkdir -p "$W" "$OUT"
[ "$(id -u)" = 0 ] || { echo "bench/scale.sh: needs root (loop mounts)" >&2; exit 2; }
# SCALE_APPEND=1 keeps the figures of earlier runs (one size at a time);
# with SCALE_SIZES=" " too, only the table and the plot are made again.
[ -n "${SCALE_APPEND:-}" ] || : >"$B/times"

# image NAME MILLIONS: a fresh ext4 image mounted on $W/NAME-MILLIONS.
image() {
	local img="$W/$1-$2.img" mnt="$W/$1-$2" inodes
	inodes=$(awk -v m="$2" 'BEGIN { printf "%d", m * 1100000 + 100000 }')
	umount "$mnt" 2>/dev/null
	rm -f "$img"
	truncate -s "$(awk -v m="$2" 'BEGIN { printf "%d", m * 1800 + 512 }')M" "$img"
	mkfs.ext4 -q -F -b 1024 -I 256 -N "$inodes" -O ^has_journal "$img" || return 1
	mkdir -p "$mnt"
	mount -o loop,noatime "$img" "$mnt" || return 1
}
# release SIZE: its images unmounted and removed.
release() { umount "$W/src-$1" "$W/dst-$1" 2>/dev/null; rm -f "$W/src-$1.img" "$W/dst-$1.img" "$W/ready-$1"; }
[ -n "${SCALE_PREPARE:-}" ] || trap 'for m in $SIZES; do release "$m"; done' EXIT

# step SIZE NAME CMD...: timed as "NAME@SIZE"; a failure stops the size.
step() {
	local m=$1 name=$2; shift 2
	echo "bench: $m M: $name" >&2
	timed "$name@$m" "$@" || { echo "bench: $name failed: $(tail -3 "$B/.err")" >&2; return 1; }
}

run_size() {
	local m=$1 users S D ST
	users=$(awk -v m="$m" 'BEGIN { printf "%d", m * 1000 }')
	S=$W/src-$m/store D=$W/dst-$m/copy ST=$W/state-$m
	if [ -f "$W/ready-$m" ] && mountpoint -q "$W/src-$m" && mountpoint -q "$W/dst-$m"; then
		echo "bench: $m M: the store SCALE_PREPARE generated" >&2
		rm -f "$W/ready-$m" # the steps below change it
	else
		image src "$m" && image dst "$m" || return 1
		echo "bench: $m M: generating $users users" >&2
		"$GEN" create "$S" --users "$users" --msgs 870 --size-scale 0.02 --seed 42 >"$W/gen-$m.txt" ||
			return 1
		if [ -n "${SCALE_PREPARE:-}" ]; then
			touch "$W/ready-$m"
			return 0
		fi
	fi
	rm -rf "$ST" "$W"/*.m
	sleep 2.5 # past the racy window
	step "$m" full_scan "$CUTOVER" -q scan "$S" -o "$W/full.m" --maildir || return 1
	entries=$(entries_of "$W/full.m")
	echo "entries@$m $entries" >>"$B/times"
	"$CUTOVER" -q init --source "$S" --target "$D" --state "$ST" --maildir || return 1
	step "$m" initial_copy "$CUTOVER" -q sync --state "$ST" --no-syslog || return 1
	"$GEN" mutate "$S" --seed 1 --percent 1 >/dev/null || return 1
	sleep 2.5
	step "$m" nightly_sync "$CUTOVER" -q sync --state "$ST" --no-syslog || return 1
	# ~10,000 changed messages whatever the size: the percent of the tree
	"$GEN" mutate "$S" --seed 2 --percent "$(awk -v e="$entries" 'BEGIN { printf "%.4f", 1e6 / e }')" >/dev/null || return 1
	sleep 2.5
	step "$m" final_pass "$CUTOVER" -q sync --state "$ST" --final --attr-cache-expired --no-syslog || return 1
	step "$m" verify "$CUTOVER" -q verify --state "$ST" || return 1
	"$CUTOVER" -q scan "$D" -o "$W/dst.m" --maildir || return 1
	"$CUTOVER" -q scan "$S" -o "$W/src.m" --maildir || return 1
	step "$m" report "$CUTOVER" -q report "$W/src.m" "$W/dst.m" || return 1
	# The no-change pass: a scan whose previous manifest was itself
	# incremental (its entries carried), then the next scan and the diff.
	"$CUTOVER" -q scan "$S" -o "$W/a.m" --prev "$W/src.m" --maildir || return 1
	sleep 2.5
	step "$m" nochange_scan "$CUTOVER" -q scan "$S" -o "$W/b.m" --prev "$W/a.m" --maildir || return 1
	step "$m" nochange_diff "$CUTOVER" -q diff "$W/a.m" "$W/b.m" -o "$W/ab.log" || return 1
	if [ -n "$OLD" ]; then
		"$OLD" -q scan "$S" -o "$W/oa0.m" --maildir && "$OLD" -q scan "$S" -o "$W/oa.m" --prev "$W/oa0.m" --maildir || return 1
		sleep 2.5
		step "$m" old_nochange_scan "$OLD" -q scan "$S" -o "$W/ob.m" --prev "$W/oa.m" --maildir || return 1
		step "$m" old_nochange_diff "$OLD" -q diff "$W/oa.m" "$W/ob.m" -o "$W/oab.log" || return 1
	fi
}

if [ -n "${SCALE_PREPARE:-}" ]; then
	for m in $SIZES; do
		run_size "$m" || { echo "bench: generating $m M failed" >&2; release "$m"; exit 1; }
	done
	echo "bench: $SIZES M generated in $W; run again with the same SCALE_SIZES to time the steps" >&2
	exit 0
fi
for m in $SIZES; do
	run_size "$m" || echo "bench: size $m M stopped early (see above)" >&2
	release "$m"
done

# The table: one row per step, seconds and peak RSS per size measured.
SIZES=$(awk -F@ '/^entries@/ { split($2, a, " "); print a[1] }' "$B/times" | sort -g | uniq | tr '\n' ' ')
steps="full_scan initial_copy nightly_sync final_pass verify report nochange_scan nochange_diff old_nochange_scan old_nochange_diff"
{
	printf '| step |'
	for m in $SIZES; do printf ' %s M: s | MiB |' "$m"; done
	printf '\n|---|'
	for m in $SIZES; do printf -- '---:|---:|'; done
	printf '\n| entries |'
	for m in $SIZES; do printf ' %s | |' "$(awk -v n="entries@$m" '$1==n {print $2}' "$B/times")"; done
	printf '\n'
	for s in $steps; do
		grep -q "^$s@" "$B/times" || continue
		printf '| %s |' "$s"
		for m in $SIZES; do
			awk -v n="$s@$m" '$1==n { printf " %.2f | %.1f |", $2, $3 / 1024; f=1 } END { if (!f) printf " | |" }' "$B/times"
		done
		printf '\n'
	done
} >"$OUT/scale.md"
cat "$OUT/scale.md"

# The plot: time and peak RSS against entries, log-log, one line per step.
for s in $steps; do
	for m in $SIZES; do
		e=$(awk -v n="entries@$m" '$1==n {print $2}' "$B/times")
		awk -v n="$s@$m" -v e="$e" '$1==n && e > 0 { print e, $2, $3 / 1024 }' "$B/times"
	done >"$W/plot-$s.dat"
done
plots_t="" plots_m=""
for s in $steps; do
	[ -s "$W/plot-$s.dat" ] || continue
	plots_t="$plots_t${plots_t:+, }'$W/plot-$s.dat' using 1:2 with linespoints title '$s'"
	plots_m="$plots_m${plots_m:+, }'$W/plot-$s.dat' using 1:3 with linespoints title '$s'"
done
[ -n "$plots_t" ] && gnuplot <<GP
set terminal pngcairo size 1200,500 font ",9" noenhanced
set output '$OUT/scale.png'
set multiplot layout 1,2
set logscale xy
set grid
set key left top
set xlabel 'entries'
set ylabel 'wall time (s)'
set title 'time per step'
plot $plots_t
set ylabel 'peak RSS (MiB)'
set title 'peak RSS per step'
plot $plots_m
unset multiplot
GP
echo "bench: table in $OUT/scale.md, plot in $OUT/scale.png" >&2
