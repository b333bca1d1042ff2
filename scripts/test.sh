#!/usr/bin/env bash
# Quick start, command 2: install and build as needed, run the whole test suite, and end with one line
# "N passed, M failed" counted from meson's own test log.
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-$top/build}
"$top/scripts/install-deps.sh" || { echo "0 passed, 1 failed"; exit 1; }
BUILD_DIR=$build "$top/scripts/build.sh" || { echo "0 passed, 1 failed"; exit 1; }
rm -f "$build/meson-logs/testlog.json"
meson test -C "$build" --print-errorlogs --num-processes 2 "$@"
status=$?
python3 "$top/scripts/count-results.py" "$build/meson-logs/testlog.json"
counted=$?
[ $status -eq 0 ] && [ $counted -eq 0 ]
