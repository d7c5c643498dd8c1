# it_final.sh - cutover against a real Dovecot (make check-dovecot): an old
# backend on the source store, a proxy in front routing every user, and a
# client that delivers over LMTP and reads, flags, copies and expunges over
# IMAP all the time.  Nightly passes run while it does; then the whole-store
# switch: mail held (4xx through the proxy), the old backend stopped, the
# final pass, the new backend started on the target, users routed to it.
# What a client sees (uid, flags, guid, date, size, uidvalidity, uidnext)
# must be the same on both backends, and every message delivered must be
# served exactly once.  CUTOVER_SEED repeats the client's choices.
. tests/lib.sh
. tests/dovecot/lib.sh

S=$T/src D=$T/dst ST=$T/state L=$T/sync.log TRAFFIC=$DC_TRAFFIC users=$DC_USERS
sync_() { "$CUTOVER" sync --state "$ST" --log "$L" "$@"; }
# events IN TRAFFIC between two times (unix seconds, fractions allowed)
events_between() {
	python3 -c 'import json,sys
a,b=float(sys.argv[2]),float(sys.argv[3])
print(sum(1 for l in open(sys.argv[1]) if a<=json.loads(l)["t"]<=b and json.loads(l)["ev"] in ("delivered","copy","expunge","login")))' \
		"$TRAFFIC" "$1" "$2"
}

t dovecot_serves_the_source_through_the_proxy
dc_old_store "$S"
n=$(grep -c '"ev": "delivered"' "$TRAFFIC")
[ "$n" -ge 20 ] || no "only $n deliveries in a minute: $(tail -3 "$DC/client.out") $(tail -3 "$DC/proxy/log")"
# The client expunges and moves as it goes, so the files on disk can lag
# the deliveries counted: wait for them as for the deliveries.
maildir_files() { find "$S" \( -path '*/cur/*' -o -path '*/new/*' \) -type f | wc -l; }
for i in $(seq 600); do [ "$(maildir_files)" -ge 20 ] && break; sleep 0.1; done
[ "$(maildir_files)" -ge 20 ] || no "the old backend's maildirs hold $(maildir_files) messages after a minute, want 20"

t nightly_passes_while_dovecot_writes
expect_rc 0 "$CUTOVER" init --source "$S" --target "$D" --state "$ST" --maildir
for pass in 1 2 3; do
	t0=$(date +%s.%N)
	expect_rc 0 sync_ || break
	t1=$(date +%s.%N)
	raced=$(events_between "$t0" "$t1")
	echo "  pass $pass: $raced client events while it ran"
	total=$((${total:-0} + raced))
	sleep 2
done
# The passes must have raced the client, or they proved nothing.
[ "${total:-0}" -gt 0 ] || no "no client event happened during any pass"

t final_pass_with_mail_held_keeps_what_clients_see
hold0=$(date +%s.%N)
# shellcheck disable=SC2086
dc_route hold $users
dc_drain
# shellcheck disable=SC2086
dc_kick old $users
for u in $users; do dc_snapshot old "$u" "$T/old.$u"; done
dc_stop old
expect_rc 0 sync_ --final && grep -q '^PARITY' "$T/.out" || no "final pass: $(cat "$T/.out" "$T/.err" | head -5)"
dc_backend new 127.0.0.3 "$D"
for u in $users; do
	dc_snapshot new "$u" "$T/new.$u"
	same "$T/old.$u" "$T/new.$u" "what $u sees on the old and the new backend"
done
# shellcheck disable=SC2086
dc_route new $users
hold1=$(date +%s.%N)
echo "  mail held for $(echo "$hold1 - $hold0" | bc) s (the whole store)"
msgs=$(cat "$T"/old.* | grep -c $'^INBOX\t\|^Archive\t')
[ "$msgs" -ge 20 ] || no "the snapshots hold only $msgs messages"

t every_message_delivered_is_served_exactly_once
sleep 4
held=$(grep -c '"ev": "tempfail"' "$TRAFFIC")
[ "$held" -gt 0 ] || no "no delivery or login was refused while mail was held"
dc_client_check new
after=$(python3 -c 'import json,sys
print(sum(1 for l in open(sys.argv[1]) if json.loads(l)["t"]>float(sys.argv[2]) and json.loads(l)["ev"]=="delivered"))' \
	"$TRAFFIC" "$hold1")
[ "$after" -gt 0 ] || no "nothing was delivered to the new backend"
finish
