# it_json.sh - every JSON output (show --format jsonl, report --json,
# verify --json, status --json) goes through jq, on a tree whose names hold
# UTF-8 ("é", "日本"), bytes that are not UTF-8 (latin-1 "\xe9", a lone
# "\xff"), quotes, backslashes and control characters.  UTF-8 must come out as
# UTF-8 (not "Ã©"), and every name must decode back to its exact bytes with
# Python's surrogateescape (docs/cutover.1, JSON OUTPUT).
. tests/lib.sh

# odd NAME-BYTES (printf %b escapes): the names of the tree
names='caf\303\251 \346\227\245\346\234\254 lat\351n lone\377 quote" back\\slash tab\tname nl\nname del\177 ctl\001'
mktree() {
	local n
	mkdir -p "$1/d"
	for n in $names; do
		printf '%b' "$n" | { IFS= read -r -d '' x; echo body >"$1/d/$x"; mkdir -p "$1/$x"; }
	done
}
# The exact bytes of every name, one per line as a Python repr (a name with a
# newline stays on one line).
names_repr() {
	python3 -c 'import os, sys
for n in sorted(os.listdir(os.fsencode(sys.argv[1] + "/d"))): print(repr(n))' "$1" | sort
}
# strings FILE PYEXPR: the exact bytes (repr) of the strings PYEXPR picks from
# each JSON value v of FILE (one per line for jsonl), names under d/ only,
# sorted.  Python, not jq: jq turns a lone surrogate into U+FFFD.
strings() {
	python3 -c 'import json, sys
out = []
for line in open(sys.argv[1], encoding="utf-8", errors="surrogateescape"):
    v = json.loads(line)
    for s in eval(sys.argv[2]):
        b = s.encode("utf-8", "surrogateescape")
        if b.startswith(b"d/"): out.append(repr(b[2:]))
print("\n".join(sorted(out)))' "$@"
}
# jq_ok FILE: every line (jsonl) or the whole file parses
jq_ok() { jq -e . "$1" >/dev/null 2>"$T/jq.err" || no "$1 is not JSON: $(head -c 300 "$T/jq.err")"; }
S="$T/src-é-$(printf '\377')" D="$T/dst" ST="$T/state"
mktree "$S"
names_repr "$S" >"$T/want"

t show_jsonl_names_decode_to_their_bytes
expect_rc 0 "$CUTOVER" -q scan "$S" -o "$T/a.m" && "$CUTOVER" show "$T/a.m" --format jsonl >"$T/a.jsonl"
jq_ok "$T/a.jsonl"
strings "$T/a.jsonl" '[v["path"]] if "path" in v else []' >"$T/got"
same "$T/want" "$T/got" "show's names"
jq -r 'select(.path == "d/café") | .path' "$T/a.jsonl" | grep -qx 'd/café' || no "é is not written as UTF-8"
grep -q 'Ã' "$T/a.jsonl" && no "UTF-8 bytes escaped one by one"
head -1 "$T/a.jsonl" | jq -r .manifest.root | grep -q "^$T/src-é-" || no "root: $(head -1 "$T/a.jsonl")"

t show_jsonl_of_a_change_log
expect_rc 0 "$CUTOVER" -q diff --from-empty "$T/a.m" -o "$T/a.c" && "$CUTOVER" show "$T/a.c" --format jsonl >"$T/c.jsonl"
jq_ok "$T/c.jsonl"
strings "$T/c.jsonl" '[v["path"]] if "path" in v else []' >"$T/got"
same "$T/want" "$T/got" "the log's names"

t report_json_names_decode_to_their_bytes
mkdir -p "$T/empty/d" && expect_rc 0 "$CUTOVER" -q scan "$T/empty" -o "$T/e.m"
"$CUTOVER" report "$T/a.m" "$T/e.m" --json --examples 100 --by-depth 2 >"$T/r.json"
jq_ok "$T/r.json"
strings "$T/r.json" '[x["path"] for x in v["examples"] if x["kind"] == "missing"]' >"$T/got"
same "$T/want" "$T/got" "report's example names"
strings "$T/r.json" '[g["group"] for g in v["groups"]]' >"$T/got"
same "$T/want" "$T/got" "report's group names"
jq -r '.examples[].path' "$T/r.json" | grep -qx 'd/café' || no "é is not written as UTF-8: $(grep -o '"d/caf[^"]*"' "$T/r.json")"
jq -r .a.root "$T/r.json" | grep -q "^$T/src-é-" || no "root: $(jq .a "$T/r.json")"

t verify_json_names_decode_to_their_bytes
mkdir -p "$T/v/d"
expect_rc 1 "$CUTOVER" verify "$S" "$T/v" --json --examples 100
cp "$T/.out" "$T/v.json"
jq_ok "$T/v.json"
strings "$T/v.json" '[x["path"] for x in v["examples"]]' >"$T/got"
same "$T/want" "$T/got" "verify's names"

t status_json_paths_and_passes
expect_rc 0 "$CUTOVER" init --source "$S" --target "$D" --state "$ST" &&
	expect_rc 0 "$CUTOVER" sync --state "$ST" --no-syslog
"$CUTOVER" status --state "$ST" --json >"$T/s.json"
jq_ok "$T/s.json"
python3 -c 'import json, os, sys
v = json.load(open(sys.argv[1], encoding="utf-8", errors="surrogateescape"))
got = v["source"].encode("utf-8", "surrogateescape")
sys.exit(0 if got == os.fsencode(sys.argv[2]) else "source %r" % got)' "$T/s.json" "$S" 2>"$T/py.err" ||
	no "status's source: $(cat "$T/py.err")"
[ "$(jq -r '.passes[0].kind' "$T/s.json")" = initial ] || no "passes: $(jq -c .passes "$T/s.json")"

t status_json_of_a_history_edited_by_hand
# The history is a text file an operator may edit: what status reads from it
# is escaped like any other string, and a number that is not one is null.
printf 'seq=2 kind=ni"ght\\ly verdict=a"b scan_s=nan replay_s=inf exit=0\n' >>"$ST/history"
"$CUTOVER" status --state "$ST" --json >"$T/s.json"
jq_ok "$T/s.json"
[ "$(jq -r '.passes[1].kind' "$T/s.json")" = 'ni"ght\ly' ] &&
	[ "$(jq -r '.passes[1].verdict' "$T/s.json")" = 'a"b' ] &&
	[ "$(jq -r '.passes[1].scan_s' "$T/s.json")" = null ] &&
	[ "$(jq -r '.passes[1].replay_s' "$T/s.json")" = null ] || no "passes: $(head -c 2000 "$T/s.json")"
finish
