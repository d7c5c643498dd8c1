# tests/lib.sh - the harness of the integration scripts (tests/it_*.sh).
# Each script sources it, calls `t NAME` before each case and `no MSG` (or
# the check helpers) to record a failure; a case with no failure passes.
# run-all counts the "PASS"/"FAIL" lines.  A script ends with `finish`; one
# that stops before it (a crash, an unset variable) fails its current case.
# Every script works in its own temporary directory $T, removed at exit.
set -u
BUILD=${BUILD:-build}
CUTOVER=${CUTOVER:-$PWD/$BUILD/cutover}
GEN=${GEN:-$PWD/$BUILD/gen_maildir}
T=$(mktemp -d "${TMPDIR:-/tmp}/cutover-test.XXXXXX")
# The seed of the script's random choices ($RANDOM, and the generator seeds
# of its randomized cases): a new one each run unless given, printed so that
# CUTOVER_SEED=N repeats a failure.
CUTOVER_SEED=${CUTOVER_SEED:-$((($(date +%s%N) ^ $$) % 1000000000))}
echo "seed $CUTOVER_SEED (CUTOVER_SEED=$CUTOVER_SEED repeats it)"
RANDOM=$CUTOVER_SEED
_case="" _failed=0

t() { _end; _case=$1; _failed=0; }
no() { echo "  $_case: $*"; _failed=1; }
# skip WHY: the case is not run here, and says so; it counts as neither
# passed nor failed.
skip() { echo "SKIP $_case: $*"; _case=""; }
_end() {
	[ -n "$_case" ] || return 0
	if [ $_failed = 0 ]; then echo "PASS $_case"; else echo "FAIL $_case"; fi
	_case=""
}
_finished=0
finish() { _end; _finished=1; exit 0; }
_atexit() {
	local rc=$?
	if [ $_finished = 0 ]; then
		[ -n "$_case" ] && no "the script stopped here (exit $rc)"
		_end
		rc=1
	fi
	chmod -R u+rwx "$T" 2>/dev/null
	rm -rf "$T"
	exit $rc
}
trap _atexit EXIT

# expect_rc WANT CMD...: runs CMD, records a failure unless it exits WANT.
expect_rc() {
	local want=$1; shift
	"$@" >"$T/.out" 2>"$T/.err"
	local rc=$?
	if [ $rc != "$want" ]; then
		no "'$*' exited $rc, expected $want: $(head -c 600 "$T/.err")"
		return 1
	fi
	return 0
}
# same FILE1 FILE2 WHAT: records a failure (with a diff) unless equal.
same() {
	if ! cmp -s "$1" "$2"; then
		no "$3 differ: $(diff "$1" "$2" | head -20)"
		return 1
	fi
}
