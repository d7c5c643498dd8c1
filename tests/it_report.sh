# it_report.sh - `cutover report` on scans of real trees: each kind of
# difference (missing, extra, content, metadata, link structure), each exit
# code, --ignore, --mtime-granularity, --by-depth and the JSON output.
. tests/lib.sh

mk() {
	mkdir -p "$1/d1/u1/Maildir/cur" "$1/d1/u2/Maildir/cur" "$1/d2/u3/Maildir/cur"
	for i in 1 2 3; do
		echo "message $i" > "$1/d1/u1/Maildir/cur/$i:2,S"
		echo "message $i of u3" > "$1/d2/u3/Maildir/cur/$i:2,"
	done
	ln "$1/d1/u1/Maildir/cur/1:2,S" "$1/d1/u2/Maildir/cur/1:2,"
	ln -s Maildir "$1/d1/u1/mail"
	touch -d '2020-01-01 00:00:00.5' "$1/d2/u3/Maildir/cur/3:2,"
}
scan() { "$CUTOVER" -q scan "$1" -o "$2"; }
# report B's tree after running CMD in it; expects exit WANT; leaves JSON in $T/r.json
case_() {
	local want=$1 cmd=$2; shift 2
	rm -rf "$T/b" && cp -a "$T/a" "$T/b" && (cd "$T/b" && eval "$cmd") && scan "$T/b" "$T/b.m" ||
		{ no "setup '$cmd' failed"; return 1; }
	expect_rc "$want" "$CUTOVER" report "$T/a.m" "$T/b.m" "$@" || return 1
	"$CUTOVER" report "$T/a.m" "$T/b.m" --json "$@" >"$T/r.json"
	jq -e . "$T/r.json" >/dev/null || no "not JSON: $(head -c 300 "$T/r.json")"
}
j() { jq -r "$1" "$T/r.json"; }

mk "$T/a" && scan "$T/a" "$T/a.m"

t parity_exits_0
case_ 0 "true" && { grep -q '^parity$' "$T/.out" || no "$(cat "$T/.out")"; } &&
	[ "$(j .parity)" = true ] || no "json parity: $(cat "$T/r.json")"

t missing
case_ 1 "rm 'd1/u1/Maildir/cur/2:2,S'" &&
	[ "$(j .totals.missing.count)" = 1 ] && [ "$(j .totals.missing.bytes)" = 10 ] &&
	[ "$(j '.examples[0].path')" = "d1/u1/Maildir/cur/2:2,S" ] || no "$(cat "$T/r.json")"

t extra
case_ 1 "echo new > d2/u3/Maildir/cur/9:2," &&
	[ "$(j .totals.extra.count)" = 1 ] && [ "$(j .totals.missing.count)" = 0 ] || no "$(cat "$T/r.json")"

t content
case_ 1 "echo different-size > d2/u3/Maildir/cur/1:2, && touch -r ../a/d2/u3/Maildir/cur/1:2, d2/u3/Maildir/cur/1:2," &&
	[ "$(j .totals.content.count)" = 1 ] && j '.examples[0].fields[]' | grep -qx size || no "$(cat "$T/r.json")"
grep -q 'content *d2/u3/Maildir/cur/1:2, size' "$T/.out" || no "text: $(cat "$T/.out")"

t metadata_only
case_ 1 "chmod 600 'd1/u1/Maildir/cur/3:2,S'" &&
	[ "$(j .totals.metadata.count)" = 1 ] && [ "$(j .totals.content.count)" = 0 ] &&
	j '.examples[0].fields[]' | grep -qx mode || no "$(cat "$T/r.json")"

t ignore_turns_a_difference_off
case_ 0 "chmod 600 'd1/u1/Maildir/cur/3:2,S'" --ignore mode

t link_structure
case_ 1 "cp -p 'd1/u2/Maildir/cur/1:2,' d1/u2/Maildir/cur/x && mv d1/u2/Maildir/cur/x 'd1/u2/Maildir/cur/1:2,' && touch -r ../a/d1/u2/Maildir/cur d1/u2/Maildir/cur" &&
	[ "$(j .totals.links.count)" = 1 ] && [ "$(j .totals.content.count)" = 0 ] &&
	[ "$(j .totals.metadata.count)" = 0 ] || no "$(cat "$T/r.json")"
case_ 0 "cp -p 'd1/u2/Maildir/cur/1:2,' d1/u2/Maildir/cur/x && mv d1/u2/Maildir/cur/x 'd1/u2/Maildir/cur/1:2,' && touch -r ../a/d1/u2/Maildir/cur d1/u2/Maildir/cur" --ignore links

t nlink_only_when_asked
case_ 1 "cp -p 'd1/u2/Maildir/cur/1:2,' d1/u2/Maildir/cur/x && mv d1/u2/Maildir/cur/x 'd1/u2/Maildir/cur/1:2,' && touch -r ../a/d1/u2/Maildir/cur d1/u2/Maildir/cur" --ignore links --compare nlink &&
	j '.examples[].fields[]?' | grep -qx nlink || no "$(cat "$T/r.json")"

t mtime_granularity
case_ 1 "touch -d '2020-01-01 00:00:00.0' 'd2/u3/Maildir/cur/3:2,'" &&
	case_ 0 "touch -d '2020-01-01 00:00:00.0' 'd2/u3/Maildir/cur/3:2,'" --mtime-granularity 1000000000

t by_depth_groups
case_ 1 "rm d1/u1/Maildir/cur/2:2,S && echo x > d2/u3/Maildir/cur/8:2, && touch -r ../a/d2/u3/Maildir/cur d2/u3/Maildir/cur && touch -r ../a/d1/u1/Maildir/cur d1/u1/Maildir/cur" --by-depth 2 &&
	[ "$(j '[.groups[].group] | join(" ")')" = "d1/u1 d2/u3" ] &&
	[ "$(j '.groups[0].missing.count')" = 1 ] && [ "$(j '.groups[1].extra.count')" = 1 ] ||
	no "$(cat "$T/r.json")"
grep -q '^  d1/u1 ' "$T/.out" || no "text groups: $(cat "$T/.out")"

t many_groups_spill_past_the_memory_limit_and_keep_their_order
# 3000 users who each lack a message: their group lines go past a 64 KiB
# limit into temporary files and must come back whole and in order.
(cd "$T" && mkdir -p g/a g/b && cd g && mkdir -p {a,b}/d{1,2,3}/u{1..1000}/cur &&
	for d in a/*/*/cur; do echo "m $d" >"$d/1:2,S"; done)
scan "$T/g/a" "$T/g/a.m" && scan "$T/g/b" "$T/g/b.m"
n=$(ls -d "$T"/g/a/*/* | wc -l)
for f in "" --json; do
	expect_rc 1 env TMPDIR="$T/g" "$CUTOVER" report "$T/g/a.m" "$T/g/b.m" --by-depth 2 --mem-limit 64k $f
	mv "$T/.out" "$T/small$f"
	expect_rc 1 "$CUTOVER" report "$T/g/a.m" "$T/g/b.m" --by-depth 2 $f
	cmp -s "$T/.out" "$T/small$f" || no "output $f differs with --mem-limit 64k: $(diff "$T/.out" "$T/small$f" | head -5)"
done
[ "$(grep -c '^  d[123]/u[0-9]* .*missing 1 ' "$T/small")" = "$n" ] || no "text lists $(grep -c '^  d' "$T/small") of $n groups"
# (the root and d1..d3 differ too, in their directory times)
jq -e --argjson n "$n" '[.groups[] | select(.missing.count == 1)] | length == $n' "$T/small--json" >/dev/null ||
	no "json groups: $(head -c 300 "$T/small--json")"
# the order is canonical: what a sort of the directories gives
[ "$(jq -r '.groups[].group | select(contains("/"))' "$T/small--json" | tr '\n' ' ')" = \
	"$(cd "$T/g/a" && ls -d */* | LC_ALL=C sort | tr '\n' ' ')" ] || no "groups out of order"

t link_lists_without_a_memory_limit_stay_in_memory
# With no --mem-limit the link-structure lists get the same default as the
# other lists (megabytes), so 1500 linked pairs (some 300 KiB of list) need no
# temporary file: a --tmpdir that does not exist is never used.
long=$(printf 'x%.0s' $(seq 100))
(mkdir -p "$T/l/cur" && cd "$T/l/cur" && for i in $(seq 1500); do
	echo "m $i" >"$i.$long" && ln "$i.$long" "$i.$long.2"; done)
scan "$T/l" "$T/l.m"
expect_rc 0 "$CUTOVER" report "$T/l.m" "$T/l.m" --tmpdir "$T/no-such-dir"

t errors_exit_2_usage_64
expect_rc 2 "$CUTOVER" report "$T/a.m" "$T/missing.m"
cp "$T/a.m" "$T/bad.m" && printf '\377' | dd of="$T/bad.m" bs=1 seek=20 conv=notrunc status=none
expect_rc 2 "$CUTOVER" report "$T/a.m" "$T/bad.m" && { grep -q 'bad.m' "$T/.err" || no "$(cat "$T/.err")"; }
expect_rc 64 "$CUTOVER" report "$T/a.m"
expect_rc 64 "$CUTOVER" report "$T/a.m" "$T/a.m" --ignore colour
expect_rc 64 "$CUTOVER" report "$T/a.m" "$T/a.m" --mem-limit 0
finish
