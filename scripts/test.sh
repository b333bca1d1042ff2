#!/usr/bin/env bash
# Quick start, command 2: install and build as needed, run the whole test suite on a release build, then
# the hostile-input tests again under AddressSanitizer and UndefinedBehaviorSanitizer (build-asan/), and
# end with one line "N passed, M failed" counted from meson's own test logs.
# PORTCULLIS_SANITIZE=0 skips the sanitizer run (e.g. for a quick local loop). Then a short libFuzzer run
# of each fuzz target (clang, build-fuzz/); PORTCULLIS_FUZZ=0 skips it, PORTCULLIS_FUZZ_SECONDS sets its
# length per target (default 20).
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-$top/build}
asan=${ASAN_BUILD_DIR:-$top/build-asan}
logs=()
"$top/scripts/install-deps.sh" || { echo "0 passed, 1 failed"; exit 1; }

BUILD_DIR=$build "$top/scripts/build.sh" || { echo "0 passed, 1 failed"; exit 1; }
rm -f "$build/meson-logs/testlog.json"
meson test -C "$build" --print-errorlogs --num-processes 2 "$@"
status=$?
logs+=("$build/meson-logs/testlog.json")

# stage NAME DIR SETUP TEST TARGET...: one more build directory and some of its tests, counted with the
# rest. SETUP (a command) configures DIR when it has no build.ninja yet; only the TARGETs are built; TEST
# (a command) runs meson test in DIR. A failed setup, build or test sets status; when DIR cannot be set
# up or built, its missing log counts as one failed test.
stage() {
	local name=$1 dir=$2 setup_command=$3 test_command=$4
	shift 4
	if [ ! -f "$dir/build.ninja" ]; then
		"$setup_command" >/dev/null || status=1
	fi
	if [ -f "$dir/build.ninja" ] && ninja -C "$dir" "$@"; then
		rm -f "$dir/meson-logs/testlog.json"
		"$test_command" || status=1
		logs+=("$dir/meson-logs/testlog.json")
	else
		echo "$name build failed"
		status=1
		logs+=("/nonexistent-$name-build")
	fi
}

if [ "${PORTCULLIS_SANITIZE:-1}" != 0 ]; then
	echo "== under ASan+UBSan: the tests that feed hostile input =="
	# The parser, the rule language, the flow table, the data path, payload inspection, the control
	# socket, etcd and flow-state sync's datagrams: where hostile bytes arrive; and the daemon itself, restarted and reloaded
	# (faults-restart) and following etcd (etcd-watch). Benchmarks, the classifier's long differential
	# runs, metrics, the namespace tests and the 60,000-rule SIGTERM test (minutes at -O0) add build and
	# run time (CI: 15 minutes on 2 cores) without new input paths.
	# Leak checking is off: DPDK's EAL keeps process-lifetime allocations (memory segments, lcore and
	# telemetry threads) that it never frees, which would drown real reports; address and
	# undefined-behaviour errors stop the test.
	sanitized=(packet rules flow sync pipeline inspect control etcd etcd-watch faults-restart)
	targets=(tests/packet/test-packet tests/rules/test_rules tests/flow/test-flow tests/sync/test-sync tests/pipeline/test-pipeline
		tests/inspect/test-inspect tests/control/test-control tests/etcd/test-etcd apps/portcullis
		apps/portcullisd data/demo.pcap)
	asan_setup() {
		# -O0: Catch2's assertion macros under ASan at -O2 take minutes per test file to compile (234 s for
		# test_control.cc against 37 s at -O0); the tests run for seconds either way.
		meson setup "$asan" "$top" -Db_sanitize=address,undefined -Db_lundef=false -Dbenches=false \
			-Dbuildtype=debug
	}
	asan_test() {
		UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ASAN_OPTIONS=detect_leaks=0 \
			meson test -C "$asan" --no-rebuild --print-errorlogs --num-processes 2 --timeout-multiplier 3 "${sanitized[@]}"
	}
	stage sanitizer "$asan" asan_setup asan_test "${targets[@]}"
fi

if [ "${PORTCULLIS_FUZZ:-1}" != 0 ]; then
	echo "== libFuzzer: each target for ${PORTCULLIS_FUZZ_SECONDS:-20} s =="
	# The packet parser, the rule language, control requests, the payload name extractors and address
	# feeds (with the set lookups built from them), built with clang under ASan+UBSan
	# (tests/fuzz/meson.build); only the five targets and the libraries they link are compiled. Longer
	# runs: README, "Fuzzing".
	fuzz=${FUZZ_BUILD_DIR:-$top/build-fuzz}
	fuzz_targets=(tests/fuzz/fuzz-packet tests/fuzz/fuzz-sync tests/fuzz/fuzz-rules tests/fuzz/fuzz-control tests/fuzz/fuzz-names
		tests/fuzz/fuzz-feeds)
	fuzz_setup() {
		CC=clang CXX=clang++ meson setup "$fuzz" "$top" -Dfuzz=true -Dtests=false -Dbenches=false \
			-Db_sanitize=address,undefined -Db_lundef=false -Dbuildtype=debugoptimized
	}
	fuzz_test() {
		meson test -C "$fuzz" --no-rebuild --print-errorlogs --num-processes 2 --suite fuzz
	}
	stage fuzz "$fuzz" fuzz_setup fuzz_test "${fuzz_targets[@]}"
fi

python3 "$top/scripts/count-results.py" "${logs[@]}"
counted=$?
[ $status -eq 0 ] && [ $counted -eq 0 ]
