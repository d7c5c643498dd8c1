# tests/dovecot/ctl.sh - what is done to the running daemons of a Dovecot
# test: routes, kicks, what a client sees.  Sourced by tests/dovecot/lib.sh
# and by tests/dovecot/hook (cutover switch's --before and --after), so both
# act the same way.  Needs $DC (the test's daemons' directory) and a
# function `no MSG` that reports a failure.

# The client's events, a JSON line each (tests/dovecot/client.py).
DC_TRAFFIC=$DC/traffic.log

# dc_addr NAME imap|lmtp: HOST:PORT of a daemon.
dc_addr() {
	local ip imap lmtp
	read -r ip imap lmtp <"$DC/$1.addr"
	if [ "$2" = imap ]; then echo "$ip:$imap"; else echo "$ip:$lmtp"; fi
}

# dc_route NAME USER...: rewrites the users' lines of both route files at
# once (a rename each), so a lookup sees the old route or the new one.
dc_route() {
	local to=$1 ip imap lmtp svc u
	shift
	if [ "$to" = hold ]; then
		ip=127.0.0.9 imap=1 lmtp=1
	else
		read -r ip imap lmtp <"$DC/$to.addr"
	fi
	for svc in imap lmtp; do
		local f=$DC/route.$svc port=$imap pass="{plain}pw"
		[ $svc = lmtp ] && port=$lmtp pass=""
		cp "$f" "$f.new"
		for u in "$@"; do
			grep -v "^$u:" "$f.new" >"$f.tmp"
			echo "$u:$pass::::::proxy=y host=$ip port=$port" >>"$f.tmp"
			mv "$f.tmp" "$f.new"
		done
		mv "$f.new" "$f"
	done
}

# dc_drain: returns once the client finished what it was doing when called.
# A route change reaches only transactions that start after it: an LMTP
# transaction whose recipients the proxy already passed on still delivers
# to the old backend.  The client does one thing at a time and logs each
# when it ends, so its first event logged after now ends that transaction.
dc_drain() {
	local t0 i
	t0=$(date +%s.%N)
	for i in $(seq 600); do
		tail -n 1 "$DC_TRAFFIC" 2>/dev/null | python3 -c 'import json,sys
try: sys.exit(0 if json.loads(sys.stdin.read())["t"] > float(sys.argv[1]) else 1)
except ValueError: sys.exit(1)' "$t0" && return 0
		sleep 0.1
	done
	no "the client logged nothing for a minute: $(tail -n 2 "$DC_TRAFFIC")"
}

# dc_kick NAME USER...: ends the users' IMAP sessions (doveadm exits 68
# when none was open).
dc_kick() {
	local name=$1 u rc
	shift
	for u in "$@"; do
		doveadm -c "$DC/$name.conf" kick "$u" >/dev/null 2>&1
		rc=$?
		[ $rc = 0 ] || [ $rc = 68 ] || no "doveadm kick $u on $name exited $rc"
	done
}

dc_snapshot() {
	local name=$1 user=$2 out=$3
	{
		doveadm -c "$DC/$name.conf" -f tab fetch -u "$user" \
			'mailbox uid flags guid date.received size.virtual' all | LC_ALL=C sort
		doveadm -c "$DC/$name.conf" -f tab mailbox status -u "$user" \
			'messages uidvalidity uidnext' '*' | LC_ALL=C sort
	} >"$out" 2>"$out.err" || no "doveadm on $name for $user: $(head -3 "$out.err")"
}

# dc_ids NAME USER: "mailbox message-id" per message the backend serves.
dc_ids() {
	doveadm -c "$DC/$1.conf" -f tab fetch -u "$2" 'mailbox hdr.message-id' all | tail -n +2
}

