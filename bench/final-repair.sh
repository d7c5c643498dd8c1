#!/usr/bin/env bash
# bench/final-repair.sh - what a repair costs the final pass.  Two identical
# store pairs get the same mail day (0.5%) after their last sync; on one, a
# message is also removed from the target by hand where the nightly check
# does not look (a file the marks did not sample, its folder's mtime put
# back), in a user the day changed.  Both final passes run side by side,
# in alternating order, RUNS times.  Results: $B/results-final-repair-P.md.
#   REPAIR_USERS=200 (default; ~78k entries per tree)
#   REPAIR_PERCENT=0.5 (default): the mail day; more than 32 users change, so
#     the whole store is verified.  0: only the user with the hole changes
#     (a new message), so one subtree is verified.
. "$(dirname "$0")/lib.sh"
U=${REPAIR_USERS:-200}
P=${REPAIR_PERCENT:-0.5}
W="$B/final-repair"
rm -rf "$W"
mkdir -p "$W"
for v in clean hole; do
	mkdir -p "$W/$v"
	"$GEN" create "$W/$v/src" --users "$U" --msgs 300 --size-scale 0.1 --seed 7 >/dev/null || exit 1
	"$CUTOVER" init --source "$W/$v/src" --target "$W/$v/dst" --state "$W/$v/st" --maildir || exit 1
	"$CUTOVER" sync --state "$W/$v/st" --no-syslog || exit 1
done
# The user whose message goes missing; its INBOX changes in both pairs.
u=$(cd "$W/clean/src" && ls -d */* | LC_ALL=C sort | sed -n 2p)
punch() {
	local f d m
	f=$(cd "$W/hole/dst" && find "$u/Maildir/cur" -type f | LC_ALL=C sort |
		while IFS= read -r f; do grep -qF " $f" "$W/hole/st/target-marks" || { echo "$f"; break; }; done)
	[ -n "$f" ] || { echo "final-repair: every message of $u is sampled" >&2; return 1; }
	d=$(dirname "$W/hole/dst/$f")
	m=$(stat -c %y "$d")
	rm "$W/hole/dst/$f" && touch -d "$m" "$d"
	hole="$W/hole/dst/$f"
}
sed -i '/^final-/d' "$B/times" 2>/dev/null
for r in $(seq 1 "$RUNS"); do
	for v in clean hole; do
		if [ "$P" != 0 ]; then
			"$GEN" mutate "$W/$v/src" --seed $((100 + r)) --percent "$P" >/dev/null || exit 1
		fi
		printf 'Subject: %s\n\nhi\n' "$r" >"$W/$v/src/$u/Maildir/new/1800000000.M${r}P1.bench,S=19"
		touch -d '1 hour ago' "$W/$v/src/$u/Maildir/new/1800000000.M${r}P1.bench,S=19"
	done
	punch || exit 1
	sleep 2.2 # past the scanner's racy guard, as after stopping mail
	order="clean hole"
	[ $((r % 2)) = 0 ] && order="hole clean"
	for v in $order; do
		timed "final-$v" "$CUTOVER" sync --state "$W/$v/st" --no-syslog --final --force \
			--attr-cache-expired || { echo "final-repair: $v: $(tail -3 "$B/.err")" >&2; exit 1; }
		awk -v n="final-$v-verify" '{for (i = 1; i <= NF; i++) if ($i ~ /^check_s=/) {
			split($i, a, "="); c = a[2]}} END {print n, c, 0, 0}' "$W/$v/st/history" >>"$B/times"
	done
	[ -e "$hole" ] || { echo "final-repair: the final pass did not repair $hole" >&2; exit 1; }
done
out="$B/results-final-repair-$P.md"
{
	echo "# final pass with and without a hole to repair ($(date -u +%Y-%m-%d), $(nproc) CPUs)"
	echo
	echo "Store: gen_maildir create --users $U --msgs 300 --size-scale 0.1 --seed 7" \
		"($(find "$W/clean/src" | wc -l) entries); each run: mutate --percent $P (0: none)," \
		"a message delivered to the user with the hole, then" \
		"sync --final --attr-cache-expired; medians of $RUNS runs side by side."
	echo
	echo "| | total s | verify (+ repair) s |"
	echo "|---|---|---|"
	for v in clean hole; do
		echo "| $v | $(median "final-$v") | $(median "final-$v-verify") |"
	done
	echo
	echo "hole / clean: total $(ratio "$(median final-hole)" "$(median final-clean)")," \
		"verify $(ratio "$(median final-hole-verify)" "$(median final-clean-verify)")"
} >"$out"
cat "$out"
