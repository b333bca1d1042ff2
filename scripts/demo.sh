#!/usr/bin/env bash
# The main job on the embedded default: check rules/gateway.rules, then run the real daemon on the
# pcap-replay profile over the bundled capture (a gateway's traffic, both directions) and print what it
# forwarded and dropped, and why. Forwarded packets land in build/demo/{outside,inside}-tx.pcap.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-$top/build}
out=$build/demo
mkdir -p "$out"
"$build/apps/portcullis" check "$top/rules/gateway.rules"
"$build/apps/portcullisd" --profile "$top/drivers-config/pcap-replay.conf" --rules "$top/rules/gateway.rules" \
	--replay.capture "$build/data/demo.pcap" --replay.output-dir "$out" --control.socket "$out/control.sock"
