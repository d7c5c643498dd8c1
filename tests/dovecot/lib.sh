# tests/dovecot/lib.sh - real Dovecot 2.3 servers for the mail tests, sourced
# after tests/lib.sh.  Every daemon is this test's own: its own config,
# base_dir, state_dir and log under $T/dc, listening on loopback addresses
# only (the old backend on 127.0.0.2, the new one on 127.0.0.3, the proxy on
# 127.0.0.1), on free ports chosen at start; dc_stop_all (run at exit) stops
# them.  Users are virtual (user@domain, password "pw"); their maildirs are
# ROOT/domain/user/Maildir, written as the user nobody, as a mail store
# owned by one system user is.
#
#   dc_backend NAME IP ROOT    start a backend serving ROOT
#   dc_proxy                   start the proxy (IMAP and LMTP) on 127.0.0.1
#   dc_route HOST USER...      route users to a backend NAME, or to "hold":
#                              an address nothing listens on, so deliveries
#                              get 451 (the MTA retries) and logins fail
#   dc_stop NAME               stop one daemon
#   dc_snapshot NAME USER OUT  what a client sees of USER on backend NAME
#                              (per message: mailbox uid flags guid date size;
#                              per mailbox: messages uidvalidity uidnext)

DC=$T/dc
DC_DAEMONS=""
DC_USERS_FILE=$DC/users
mkdir -p "$DC"
# Dovecot's mail processes run as nobody: every directory above the stores
# must let it through.
chmod 755 "$T" "$DC"

. tests/dovecot/ctl.sh

command -v dovecot >/dev/null && command -v doveadm >/dev/null ||
	{ echo "tests/dovecot: Dovecot is not installed (make check-dovecot installs it)" >&2; exit 1; }

# dc_port IP: a TCP port nothing listens on at IP.
dc_port() {
	python3 -c 'import socket,sys
s=socket.socket(); s.bind((sys.argv[1],0)); print(s.getsockname()[1])' "$1"
}

# dc_conf NAME IP IMAP LMTP: the part of a config every daemon shares.
dc_conf() {
	local name=$1 ip=$2 imap=$3 lmtp=$4
	mkdir -p "$DC/$name/run" "$DC/$name/state"
	cat <<C
base_dir = $DC/$name/run
state_dir = $DC/$name/state
instance_name = cutover-test-$name
log_path = $DC/$name/log
protocols = imap lmtp
listen = $ip
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain
default_login_user = dovenull
default_internal_user = dovecot
service imap-login {
  inet_listener imap {
    address = $ip
    port = $imap
  }
  inet_listener imaps {
    port = 0
  }
}
service lmtp {
  inet_listener lmtp {
    address = $ip
    port = $lmtp
  }
}
service doveadm {
  inet_listener {
    port = 0
  }
}
C
}

dc_start() {
	local name=$1
	dovecot -c "$DC/$name.conf" || { no "dovecot $name did not start: $(tail -5 "$DC/$name/log" 2>/dev/null)"; return 1; }
	DC_DAEMONS="$DC_DAEMONS $name"
	local i
	for i in $(seq 300); do
		grep -q "starting up" "$DC/$name/log" 2>/dev/null && return 0
		sleep 0.1
	done
	no "dovecot $name did not say it started: $(tail -5 "$DC/$name/log" 2>/dev/null)"
	return 1
}

# dc_users USER...: the users every daemon knows (password "pw").
dc_users() { printf '%s\n' "$@" >"$DC_USERS_FILE"; }

dc_backend() {
	local name=$1 ip=$2 root=$3 imap lmtp
	imap=$(dc_port "$ip") lmtp=$(dc_port "$ip")
	echo "$ip $imap $lmtp" >"$DC/$name.addr"
	mkdir -p "$root"
	chown nobody:nogroup "$root"
	sed 's/$/:{plain}pw/' "$DC_USERS_FILE" >"$DC/$name.passwd"
	{
		dc_conf "$name" "$ip" "$imap" "$lmtp"
		cat <<C
mail_uid = nobody
mail_gid = nogroup
first_valid_uid = 1
mail_location = maildir:~/Maildir
passdb {
  driver = passwd-file
  args = $DC/$name.passwd
}
userdb {
  driver = static
  args = home=$root/%d/%n
}
C
	} >"$DC/$name.conf"
	dc_start "$name"
}

# The proxy looks each user up in route.imap or route.lmtp (%s: the
# service), so one passwd-file line says where IMAP and LMTP go.
dc_proxy() {
	local imap lmtp
	imap=$(dc_port 127.0.0.1) lmtp=$(dc_port 127.0.0.1)
	echo "127.0.0.1 $imap $lmtp" >"$DC/proxy.addr"
	{
		dc_conf proxy 127.0.0.1 "$imap" "$lmtp"
		cat <<C
lmtp_proxy = yes
passdb {
  driver = passwd-file
  args = $DC/route.%s
}
C
	} >"$DC/proxy.conf"
	: >"$DC/route.imap"
	: >"$DC/route.lmtp"
	dc_start proxy
}

dc_stop() {
	doveadm -c "$DC/$1.conf" stop 2>/dev/null
	local i
	for i in $(seq 300); do
		[ -e "$DC/$1/run/master.pid" ] || return 0
		sleep 0.1
	done
	no "dovecot $1 did not stop"
}
dc_stop_all() {
	local n
	for n in $DC_DAEMONS; do doveadm -c "$DC/$n.conf" stop 2>/dev/null; done
	return 0
}

# The users of the mail tests, on two domains.
DC_USERS="ann@example.org bob@example.org cat@example.org dan@example.org"
DC_USERS="$DC_USERS eve@example.net fay@example.net gus@example.net hal@example.net"

# dc_old_store ROOT: the old backend serving ROOT behind the proxy, every
# user routed to it, and the client delivering and reading for all of them
# (pid $DC_CLIENT, events in $DC_TRAFFIC, CUTOVER_SEED repeats its choices);
# returns once N messages (default 20) were delivered, or after a minute.
dc_old_store() {
	# shellcheck disable=SC2086
	dc_users $DC_USERS
	dc_backend old 127.0.0.2 "$1"
	dc_proxy
	# shellcheck disable=SC2086
	dc_route old $DC_USERS
	python3 tests/dovecot/client.py run --lmtp "$(dc_addr proxy lmtp)" --imap "$(dc_addr proxy imap)" \
		--users "$(echo $DC_USERS | tr ' ' ,)" --log "$DC_TRAFFIC" --stop "$DC/stop" \
		${CUTOVER_SEED:+--seed "$CUTOVER_SEED"} >"$DC/client.out" 2>&1 &
	DC_CLIENT=$!
	local i
	for i in $(seq 600); do
		[ "$(cat "$DC_TRAFFIC" 2>/dev/null | grep -c '"ev": "delivered"')" -ge "${2:-20}" ] && break
		sleep 0.1
	done
	grep -h "seed" "$DC/client.out"
}

# dc_client_check BACKEND: stops the client once its retries are through,
# then checks that BACKEND serves every message it delivered exactly once.
dc_client_check() {
	touch "$DC/stop"
	wait "$DC_CLIENT" || no "the client failed: $(tail -5 "$DC/client.out")"
	mkdir -p "$DC/served"
	local u
	for u in $DC_USERS; do dc_ids "$1" "$u" >"$DC/served/$u"; done
	python3 tests/dovecot/client.py check --log "$DC_TRAFFIC" --served "$DC/served" >"$DC/check.out" ||
		no "$(head -20 "$DC/check.out")"
	tail -2 "$DC/check.out"
}

# The daemons go with the test, however it ends (tests/lib.sh's handler then
# sees the script's own exit status).
trap '_rc=$?; dc_stop_all; (exit $_rc); _atexit' EXIT
