#!/usr/bin/env bash
# tests/fuzz/seed.sh [BUILD] - remakes the seed corpus kept in the repository,
# tests/fuzz/corpus/TARGET/, from a build made by `make fuzz-build` (default
# build/fuzz).  The files are small; commit them.
#   fuzz_format: a manifest, an incremental manifest against it and its
#                skeleton, the change log between them and one from empty,
#                all written by the build's own cutover from a generated
#                maildir store
#   fuzz_replay: the inputs fuzz_replay.c's seeds[] describes (its decoder
#                is their only definition)
set -eu
cd "$(dirname "$0")/../.."
B=${1:-build/fuzz}
C="$B/cutover" G="$B/gen_maildir" D=tests/fuzz/corpus
w=$(mktemp -d "${TMPDIR:-/tmp}/cutover-fuzz-seed.XXXXXX")
trap 'rm -rf "$w"' EXIT

rm -rf "$D/fuzz_format" "$D/fuzz_replay"
mkdir -p "$D/fuzz_format" "$D/fuzz_replay"
"$G" create "$w/src" --users 2 --msgs 6 --seed 7 >/dev/null
"$C" -q scan "$w/src" -o "$D/fuzz_format/manifest"
"$G" mutate "$w/src" --seed 8 --percent 30 >/dev/null
"$C" -q scan "$w/src" -o "$D/fuzz_format/manifest-incremental" --prev "$D/fuzz_format/manifest" --maildir
"$C" -q diff "$D/fuzz_format/manifest" "$D/fuzz_format/manifest-incremental" -o "$D/fuzz_format/changes"
"$C" -q diff --from-empty "$D/fuzz_format/manifest" -o "$D/fuzz_format/changes-from-empty"
CUTOVER_FUZZ_SEEDS="$D/fuzz_replay" "$B/fuzz_replay"
ls -l "$D"/*
