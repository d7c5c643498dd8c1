#!/usr/bin/env python3
"""tests/day_counts.py CUTOVER OLD NEW - what a mail day did between two
manifests, by identity rather than by what a diff made of it; prints
"MOVES FRESH".  The same rule as test_diff.c's day_counts():
  MOVES  files (one link at both ends, same inode, size and mtime) and
         directories (same inode and mtime) found under another parent or
         name: a log must do each as a rename (or more, through parking
         names), never as a delete and a create;
  FRESH  files whose identity OLD does not hold, counted once per identity,
         but for those that replace a file of OLD at their path that NEW no
         longer holds (an update): the most a log may create."""
import json
import subprocess
import sys


def entries(cutover, manifest):
    out = subprocess.run([cutover, "show", manifest, "--format", "jsonl"], check=True,
                         capture_output=True, text=True).stdout.splitlines()[1:]
    v = [json.loads(line) for line in out]
    ino = {e["path"]: e["ino"] for e in v}
    for e in v:
        e["parent"] = ino.get(e["path"].rpartition("/")[0]) if e["path"] else None
    return v


def main():
    cutover, old, new = sys.argv[1:4]
    o, at = {}, {}
    for e in entries(cutover, old):
        o.setdefault((e["ino"], e["mtime_ns"]), e)
        if e["type"] == "file":
            at[e["path"]] = (e["ino"], e["mtime_ns"])
    moves, fresh, seen = 0, 0, set()
    nv = entries(cutover, new)
    kept = {(e["ino"], e["mtime_ns"]) for e in nv}
    for b in nv:
        key = (b["ino"], b["mtime_ns"])
        a = o.get(key)
        if b["type"] not in ("file", "dir"):
            continue
        same = a is not None and a["type"] == b["type"] and (
            b["type"] == "dir" or (a["size"] == b["size"] and a["nlink"] == 1 and b["nlink"] == 1))
        if same and b["path"] and (a["parent"] != b["parent"] or
                                   a["path"].rpartition("/")[2] != b["path"].rpartition("/")[2]):
            moves += 1
        known = (a is not None and a["type"] == "file" and a["size"] == b["size"]) or \
            (b["path"] in at and at[b["path"]] not in kept)  # replaced: an update
        if b["type"] == "file" and not known and key not in seen:
            fresh += 1
        seen.add(key)
    print(moves, fresh)


main()
