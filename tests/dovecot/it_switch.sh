# it_switch.sh - users moved to the new side a few at a time, against a real
# Dovecot (make check-dovecot): an old backend on the source, a new one on the
# target, a proxy routing each user, and a client delivering over LMTP and
# reading, flagging, copying and expunging over IMAP for every user all the
# time.  Users are switched in batches by `cutover switch` with
# tests/dovecot/hook as --before and --after, while nightly passes go on
# for the rest.  Then: what a client saw of each user on the old backend at
# the switch is what the new one serves; every message delivered is served
# exactly once; no user but those being moved ever got a 4xx; and a message
# put straight into a switched user's old maildir is reported by the next
# pass.  CUTOVER_SEED repeats the client's choices.
. tests/lib.sh
. tests/dovecot/lib.sh

S=$T/src D=$T/dst ST=$T/state TRAFFIC=$DC_TRAFFIC users=$DC_USERS
subtree() { echo "${1#*@}/${1%@*}"; }
sync_() { "$CUTOVER" sync --state "$ST" --no-syslog "$@"; }
export DC

t both_backends_serve_through_the_proxy
dc_old_store "$S"
expect_rc 0 "$CUTOVER" init --source "$S" --target "$D" --state "$ST" --maildir
expect_rc 0 sync_ || true
# The new backend serves the target from now on, for switched users only.
dc_backend new 127.0.0.3 "$D"

t users_switch_in_batches_while_mail_flows
batch=1
for b in "ann@example.org bob@example.org cat@example.org" "dan@example.org eve@example.net" \
	"fay@example.net gus@example.net hal@example.net"; do
	subs=$(for u in $b; do subtree "$u"; done)
	t0=$(date +%s.%N)
	# shellcheck disable=SC2086
	expect_rc 0 "$CUTOVER" switch --state "$ST" --no-syslog -v \
		--before "bash tests/dovecot/hook hold" --after "bash tests/dovecot/hook switch" $subs ||
		break
	t1=$(date +%s.%N)
	for u in $b; do echo "$u $t0 $t1"; done >>"$T/held-windows"
	echo "  batch $batch ($(echo $b | wc -w) users): $(echo "$t1 - $t0" | bc) s with the hooks;" \
		"cutover's own: $(sed -n 's/.*ops, \(scan .*\)/\1/p' "$T/.out")"
	[ "$(grep -c '^SWITCHED ' "$T/.out")" = "$(echo $b | wc -w)" ] || no "$(cat "$T/.out")"
	batch=$((batch + 1))
	sleep 2
	# The users left keep their nightly passes; nothing reaches the old
	# store for the switched ones, so no late write.
	expect_rc 0 sync_ || true
done
for u in $users; do
	same "$DC/snap/old.$u" "$DC/snap/new.$u" "what a client of $u saw on the old backend and sees on the new"
done
msgs=$(cat "$DC"/snap/old.* | grep -c $'^INBOX\t\|^Archive\t')
[ "$msgs" -ge 20 ] || no "the snapshots hold only $msgs messages"

t every_message_is_served_once_and_only_movers_were_held
sleep 3
dc_client_check new
# Each user was held only for its own batch: every 4xx the client saw for a
# user was answered between the start of that user's switch and a little
# after its end (a refused IMAP login is answered after Dovecot's delay of
# a few seconds, and a slow machine stretches that).
python3 - "$TRAFFIC" "$T/held-windows" <<'PY' || no "a user was held outside its own switch"
import json, sys
LATE_S = 15
window = {}
for line in open(sys.argv[2]):
    u, t0, t1 = line.split()
    window[u] = (float(t0), float(t1))
held, bad = {}, []
for line in open(sys.argv[1]):
    e = json.loads(line)
    if e["ev"] == "tempfail":
        u, t = e["user"], e["t"]
        held.setdefault(u, []).append(t)
        w = window.get(u)
        if not w or not (w[0] <= t <= w[1] + LATE_S):
            bad.append("%s at %.1f (its switch: %s)" % (u, t, "%.1f-%.1f" % w if w else "none"))
print("  users refused at some moment: %d; each one's refusals after its switch began: %s" % (
    len(held), ", ".join("%.1f-%.1fs" % (min(ts) - window[u][0], max(ts) - window[u][0])
                          for u, ts in held.items() if u in window)))
for b in bad[:10]:
    print("  refused outside its switch: " + b)
sys.exit(1 if bad else 0)
PY

t a_late_delivery_to_the_old_store_is_reported
m=$S/example.org/ann/Maildir
f="$(date +%s).M1P1.late,S=30"
printf 'From: x\r\nMessage-ID: <late@t>\r\n\r\nlate\r\n' >"$m/tmp/$f"
chown nobody:nogroup "$m/tmp/$f"
mv "$m/tmp/$f" "$m/new/$f"
sleep 1.1
expect_rc 7 sync_ && grep -q "late write.*example.org/ann/Maildir/new/$f" "$T/.err" ||
	no "the late delivery was not reported: $(head -c 500 "$T/.err")"
[ -e "$D/example.org/ann/Maildir/new/$f" ] && no "the late delivery was copied over the new side"
finish
