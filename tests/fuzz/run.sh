#!/usr/bin/env bash
# Runs one libFuzzer target as a meson test: PORTCULLIS_FUZZ_SECONDS (default 20) of fuzzing, starting
# from a scratch copy of its seed corpus (what the run discovers is thrown away; the source tree is
# never written). Fails on any crash, sanitizer report, leak, timeout or out-of-memory; the input that
# caused it is kept in <build>/tests/fuzz/artifacts/<target>/ and printed in hex, and the line to
# reproduce it is printed too.
# Usage: run.sh TARGET_BINARY SEED_CORPUS_DIR [DICTIONARY]
set -uo pipefail
target=$1 seeds=$2 dict=${3:-}
seconds=${PORTCULLIS_FUZZ_SECONDS:-20}
name=$(basename "$target")
artifacts=$(cd "$(dirname "$target")" && pwd)/artifacts/$name
mkdir -p "$artifacts"
scratch=$(mktemp -d "${TMPDIR:-/tmp}/portcullis-$name.XXXXXX")
trap 'rm -rf "$scratch"' EXIT
mkdir "$scratch/corpus"
touch "$scratch/started"  # artifacts of earlier runs stay, but only this run's are reported
cp -r "$seeds/." "$scratch/corpus/"

# UBSan reports are errors here, not warnings to read past; ASan leak checking stays on (libFuzzer
# checks each input for leaks).
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
args=(-max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1
	-artifact_prefix="$artifacts/")
[ -n "$dict" ] && args+=(-dict="$dict")
# A stuck target (an input that loops without returning to libFuzzer's timer) still ends.
timeout --signal=KILL $((seconds + 120)) "$target" "${args[@]}" "$scratch/corpus"
status=$?
if [ $status -ne 0 ]; then
	echo "== $name failed (exit $status); inputs kept in $artifacts:"
	find "$artifacts" -type f -newer "$scratch/started" | while read -r f; do
		echo "-- $f ($(stat -c %s "$f") bytes), reproduce with: $target $f"
		od -A d -t x1z -v "$f" | head -40
	done
fi
exit $status
