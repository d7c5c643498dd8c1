#!/usr/bin/env python3
"""tests/dovecot/client.py - the mail traffic of the Dovecot tests.

  client.py run --lmtp H:P --imap H:P --users U,U.. --log FILE --stop FILE
                [--seed N] [--deadline S]
      Delivers over LMTP and reads, flags, copies and expunges over IMAP, for
      random users, until FILE --stop exists and every delivery that was
      refused for now (4xx) has been retried into place, as an MTA would.
      Each event is a JSON line in --log.
  client.py check --log FILE --served DIR
      Compares what the log says each user must hold with DIR/USER (the
      "mailbox<TAB>message-id" lines a backend serves): every message
      delivered and not expunged is in INBOX exactly once, every copy is in
      Archive, nothing else is there.  Prints the longest 4xx window any user
      saw.  Exit 1 on any difference.
Only the standard library: it runs wherever python3 does.
"""
import argparse, collections, imaplib, json, os, random, re, socket, sys, time

HOLD_RETRY_S = 0.2  # how soon a refused delivery is tried again


class Log:
    def __init__(self, path):
        self.f = open(path, "a", buffering=1)

    def __call__(self, ev, **kw):
        kw.update(t=time.time(), ev=ev)
        self.f.write(json.dumps(kw) + "\n")


def hostport(s):
    h, p = s.rsplit(":", 1)
    return h, int(p)


def lmtp_deliver(addr, msgid, rcpts, body):
    """One LMTP transaction.  Returns {rcpt: code}; a code of 0 means the
    connection broke before that recipient's answer (outcome unknown)."""
    codes = {r: 0 for r in rcpts}
    s = socket.create_connection(addr, timeout=20)
    f = s.makefile("rb")

    def reply():
        code, line = 0, b""
        while True:
            line = f.readline()
            if not line:
                raise ConnectionError("lmtp: connection closed")
            if line[3:4] != b"-":
                return int(line[:3]), line

    def cmd(c):
        s.sendall(c + b"\r\n")
        return reply()

    try:
        reply()
        cmd(b"LHLO client.cutover.test")
        cmd(b"MAIL FROM:<sender@cutover.test>")
        accepted = []
        for r in rcpts:
            code, _ = cmd(b"RCPT TO:<" + r.encode() + b">")
            codes[r] = code if code >= 300 else 0
            if code < 300:
                accepted.append(r)
        if accepted:
            code, _ = cmd(b"DATA")
            if code != 354:
                for r in accepted:
                    codes[r] = code
            else:
                s.sendall(body + b"\r\n.\r\n")
                for r in accepted:
                    codes[r], _ = reply()
        cmd(b"QUIT")
    except (OSError, ConnectionError):
        pass
    finally:
        s.close()
    return codes


def message(msgid, rcpts, rng):
    lines = [
        "From: sender@cutover.test",
        "To: " + ", ".join(rcpts),
        "Subject: cutover test " + msgid,
        "Message-ID: <%s>" % msgid,
        "Date: " + time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime()),
        "",
    ]
    lines += ["x" * rng.randint(10, 76) for _ in range(rng.randint(3, 60))]
    return "\r\n".join(lines).encode()


def fetch_id(m, uid):
    typ, data = m.uid("FETCH", uid, "(BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])")
    for part in data or []:
        if isinstance(part, tuple):
            g = re.search(rb"<([^>]+)>", part[1])
            if g:
                return g.group(1).decode()
    return None


def imap_session(addr, user, rng, log):
    """Logs in, then flags, copies or expunges one random INBOX message."""
    try:
        m = imaplib.IMAP4(*addr)
        m.sock.settimeout(20)
        m.login(user, "pw")
    except (OSError, imaplib.IMAP4.error) as e:
        log("tempfail", user=user, via="imap", why=str(e)[:120])
        return
    log("login", user=user)
    mid = None
    action = rng.choice(["flag", "flag", "copy", "expunge", "read"])
    try:
        m.select("INBOX")
        typ, data = m.uid("SEARCH", None, "ALL")
        uids = data[0].split() if data and data[0] else []
        if uids:
            uid = rng.choice(uids)
            mid = fetch_id(m, uid)
            if action == "flag":
                flag = rng.choice([r"(\Seen)", r"(\Flagged)", r"(\Answered)"])
                m.uid("STORE", uid, rng.choice(["+FLAGS", "-FLAGS"]), flag)
            elif action == "copy" and mid:
                m.create("Archive")  # NO when it exists, which is fine
                log("copy-start", user=user, id=mid)
                typ, _ = m.uid("COPY", uid, "Archive")
                log("copy" if typ == "OK" else "copy-failed", user=user, id=mid)
            elif action == "expunge" and mid:
                log("expunge-start", user=user, id=mid)
                m.uid("STORE", uid, "+FLAGS", r"(\Deleted)")
                typ, _ = m.uid("EXPUNGE", uid)
                log("expunge" if typ == "OK" else "expunge-failed", user=user, id=mid)
            else:
                m.uid("FETCH", uid, "(RFC822)")
        m.logout()
    except (OSError, imaplib.IMAP4.error, imaplib.IMAP4.abort) as e:
        log("broken", user=user, via="imap", action=action, id=mid, why=str(e)[:120])


def run(a):
    seed = a.seed if a.seed is not None else random.randrange(1 << 30)
    print("client: seed %d (--seed to repeat)" % seed, flush=True)
    rng = random.Random(seed)
    log = Log(a.log)
    users = a.users.split(",")
    lmtp, imap = hostport(a.lmtp), hostport(a.imap)
    queue = collections.deque()  # (due, msgid, rcpts, body)
    n = 0
    end = time.time() + a.deadline
    while True:
        stopping = os.path.exists(a.stop)
        if stopping and not queue:
            break
        if time.time() > end:
            log("deadline", queued=len(queue))
            print("client: deadline with %d deliveries queued" % len(queue), file=sys.stderr)
            return 1
        if queue and queue[0][0] <= time.time():
            _, msgid, rcpts, body = queue.popleft()
            deliver(lmtp, msgid, rcpts, body, queue, log)
        elif not stopping and rng.random() < 0.5:
            n += 1
            msgid = "%d.%d@cutover.test" % (n, seed)
            rcpts = rng.sample(users, rng.choice([1, 1, 1, 2, 3]))
            deliver(lmtp, msgid, rcpts, message(msgid, rcpts, rng), queue, log)
        elif not stopping:
            imap_session(imap, rng.choice(users), rng, log)
        time.sleep(0.01)
    log("done", delivered=n)
    return 0


def deliver(lmtp, msgid, rcpts, body, queue, log):
    try:
        codes = lmtp_deliver(lmtp, msgid, rcpts, body)
    except OSError as e:
        codes = {r: 0 for r in rcpts}
    retry = []
    for r, code in codes.items():
        if 200 <= code < 300:
            log("delivered", user=r, id=msgid)
        elif 400 <= code < 500:
            log("tempfail", user=r, via="lmtp", id=msgid, code=code)
            retry.append(r)
        elif code == 0:
            log("unknown", user=r, id=msgid)
        else:
            log("rejected", user=r, id=msgid, code=code)
    if retry:
        queue.append((time.time() + HOLD_RETRY_S, msgid, retry, body))


def check(a):
    want = collections.defaultdict(collections.Counter)  # user -> (mailbox, id) -> n
    loose = collections.defaultdict(set)  # (user, id) whose outcome a broken session left open
    windows, held_since = {}, {}
    for line in open(a.log):
        e = json.loads(line)
        u, ev = e.get("user"), e["ev"]
        if ev == "delivered":
            want[u]["INBOX", e["id"]] += 1
        elif ev == "copy":
            want[u]["Archive", e["id"]] += 1
        elif ev == "expunge":
            want[u]["INBOX", e["id"]] -= 1
        elif ev in ("unknown", "broken", "copy-start", "expunge-start") and e.get("id"):
            loose[u].add(e["id"])
        if ev in ("copy", "expunge"):
            loose[u].discard(e["id"])
        if ev == "tempfail":
            held_since.setdefault(u, e["t"])
        elif ev in ("delivered", "login") and u in held_since:
            w = e["t"] - held_since.pop(u)
            windows[u] = max(windows.get(u, 0.0), w)
    bad = 0
    for u in sorted(want):
        have = collections.Counter()
        path = os.path.join(a.served, u)
        for line in open(path):
            box, _, mid = line.rstrip("\n").partition("\t")
            have[box, mid.strip().strip("<>")] += 1
        for key in sorted(set(want[u]) | set(have)):
            if key[1] in loose[u]:
                if have[key] > max(want[u][key], 0) + 1:
                    bad += 1
                    print("%s: %s %s served %d times" % (u, key[0], key[1], have[key]))
                continue
            if have[key] != max(want[u][key], 0):
                bad += 1
                print("%s: %s %s served %d times, the log says %d" % (u, key[0], key[1], have[key], want[u][key]))
    total = sum(sum(max(v, 0) for v in c.values()) for c in want.values())
    longest = max(windows.values()) if windows else 0.0
    # (A delivery still refused at the end would have failed the run: the
    # client waits for every one it retries.)
    print("check: %d users, %d messages expected, %d differences; longest 4xx window %.2f s; "
          "%d users saw one" % (len(want), total, bad, longest, len(windows)))
    return 1 if bad else 0


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("--lmtp", required=True)
    r.add_argument("--imap", required=True)
    r.add_argument("--users", required=True)
    r.add_argument("--log", required=True)
    r.add_argument("--stop", required=True)
    r.add_argument("--seed", type=int)
    r.add_argument("--deadline", type=float, default=600)
    c = sub.add_parser("check")
    c.add_argument("--log", required=True)
    c.add_argument("--served", required=True)
    a = p.parse_args()
    return run(a) if a.cmd == "run" else check(a)


if __name__ == "__main__":
    sys.exit(main())
