#!/usr/bin/env bash
# bench/switch.sh - moving users a few at a time (cutover switch) against the
# whole-store final pass, on the store of nfs.sh (NFS_USERS users of ~1,000
# messages) mounted through latfs at DELAY_US per operation; the target is
# local.  The target is adopted from a copy (`sync --rebase`), a 1% mail day
# is synced, then after 0.05% more: the whole-store final pass (`sync
# --final`, mail stopped, every entry stat'ed), and after 0.05% more: one user
# switched at a time (three users), then SWITCH_BATCH users in one call.
# Writes build/bench/results-switch.md.
. "$(dirname "$0")/lib.sh"
DELAY=${DELAY_US:-200}
BATCH=${SWITCH_BATCH:-100}
SRC=$(tree_nfs) || exit 1
MNT="$B/sw-mnt" D="$B/sw-dst" ST="$B/sw-state"
LM="$ROOT/bench/latmount"
export LATFS="$ROOT/$BUILD/latfs"

cleanup() { "$LM" stop "$MNT" >/dev/null 2>&1 || true; }
trap cleanup EXIT
mount_src() { "$LM" start "$SRC" "$MNT" "$DELAY" >/dev/null || { echo "bench: cannot mount latfs" >&2; exit 1; }; }
# day SEED PERCENT: a mail day on the server (the mount is read-only, and
# latfs is remounted around changes made behind it).
day() {
	"$LM" stop "$MNT" >/dev/null
	"$GEN" mutate "$SRC" --seed "$1" --percent "$2" >"$B/sw-day-$1.txt"
	sleep 2.5
	mount_src
}
SYNC=("$CUTOVER" sync --state "$ST" --no-syslog)

cleanup
rm -rf "$D" "$ST"
mkdir -p "$MNT"
cp -a "$SRC" "$D"
# As nfs.sh: the copy is what cutover's own initial copy makes, without
# partial deliveries or lock files (the maildir policy leaves them out).
find "$D" -path '*/tmp/*' -delete
find "$D" -name '*.lock' -type f -delete
mount_src
"$CUTOVER" init --source "$MNT" --target "$D" --state "$ST" --maildir >/dev/null || exit 1
: >"$B/times"
timed adopt "${SYNC[@]}" --rebase || { echo "bench: sync --rebase failed: $(cat "$B/.err")" >&2; exit 1; }
day 21 1
timed nightly "${SYNC[@]}" || { echo "bench: nightly sync failed: $(cat "$B/.err")" >&2; exit 1; }
day 22 0.05
timed final "${SYNC[@]}" --final || { echo "bench: final pass failed: $(cat "$B/.err")" >&2; exit 1; }
entries=$(tail -1 "$ST/history" | tr ' ' '\n' | sed -n 's/^entries=//p')
day 23 0.05
(cd "$SRC" && ls -d */* | LC_ALL=C sort) >"$B/sw-users"
for u in $(sed -n 1,3p "$B/sw-users"); do
	timed one "$CUTOVER" switch --state "$ST" --no-syslog "$u" || echo "bench: switch $u: $(cat "$B/.err")" >&2
	msgs=$(find "$SRC/$u" -path '*/cur/*' -o -path '*/new/*' | wc -l)
	echo "one_msgs $msgs 0 0" >>"$B/times"
done
sed -n "4,$((BATCH + 3))p" "$B/sw-users" >"$B/sw-batch"
timed batch "$CUTOVER" switch --state "$ST" --no-syslog --from "$B/sw-batch" ||
	echo "bench: switch of $BATCH users: $(cat "$B/.err")" >&2
"$LM" stop "$MNT" >/dev/null

# Every switched user equals its source (checked locally, outside the timing).
par=0
for u in $(sed -n "1,$((BATCH + 3))p" "$B/sw-users"); do
	n=$(rsync -anciH --delete --exclude='tmp/*' --exclude='*.lock' "$SRC/$u/" "$D/$u/" | wc -l)
	par=$((par + n))
done

sec() { median "$1"; }
{
echo "## Switching users (issue 17) — $(date -u +%Y-%m-%d), $(machine)"
echo
echo "Source: the $entries-entry store of nfs.sh ($NUSERS users) through latfs at $DELAY µs per"
echo "operation; target on local disk. Each switch scans the user in full on both sides, copies what"
echo "changed since the last pass, verifies (the target in full, the source's directories and"
echo "control files again) and records the user."
echo
echo "| pass | seconds |"
echo "|---|---:|"
echo "| whole-store final pass, \`sync --final\` (0.05% changed, every entry stat'ed, verified) | $(sec final) |"
echo "| \`switch\` of one user (~$(median one_msgs) messages), median of 3: $(grep '^one ' "$B/times" | cut -d' ' -f2 | tr '\n' ' ')s | $(sec one) |"
echo "| \`switch\` of $BATCH users in one call | $(sec batch) |"
echo "| (nightly pass after a 1% day, for scale) | $(sec nightly) |"
echo
echo "Peak RSS: one user $(medkb one) KiB, $BATCH users $(medkb batch) KiB, final pass $(medkb final) KiB."
echo "Parity of the $((BATCH + 3)) switched users afterwards (lines of \`rsync -anciH --delete\`): $par."
} | tee "$B/results-switch.md"
