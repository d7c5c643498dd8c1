#!/usr/bin/env bash
# bench/faults.sh - the long run of the fault matrix (docs/RELIABILITY.md):
# tests/it_faults.sh with many kill -9 rounds per command (make check runs 3).
# Writes build/bench/results-faults.md: the seed, the cases passed and failed,
# and how many kills landed while the killed command ran.
#   FAULTS_KILLS=40   kill -9 rounds per command (scan, diff, sync)
#   FAULTS_SEED=N     repeats a run's kill delays (printed)
. "$(dirname "$0")/lib.sh"
KILLS=${FAULTS_KILLS:-40}
SEED=${FAULTS_SEED:-$(($(date +%s%N) % 100000))}
cd "$ROOT"
log="$B/faults.log"
start=$(date +%s)
FAULTS_KILLS=$KILLS FAULTS_SEED=$SEED BUILD=$BUILD bash tests/it_faults.sh >"$log" 2>&1
rc=$?
secs=$(($(date +%s) - start))
pass=$(grep -c '^PASS ' "$log")
fail=$(grep -c '^FAIL ' "$log")
{
	echo "# Fault matrix, long run ($(date -u +%Y-%m-%d))"
	echo
	echo "Machine: $(machine)"
	echo
	echo "Command: \`FAULTS_KILLS=$KILLS FAULTS_SEED=$SEED bash bench/faults.sh\` ($secs s)"
	echo
	echo "Cases: $pass passed, $fail failed (exit $rc); the failures, if any, in $log."
	echo
	echo "Kills (from the script's own counts):"
	echo
	grep -E 'kills? landed' "$log" | sed 's/^ */- /'
	grep '^FAIL ' "$log" | sed 's/^/- /'
} | tee "$B/results-faults.md"
[ $rc = 0 ] && [ "$fail" = 0 ]
