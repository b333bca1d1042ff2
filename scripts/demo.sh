#!/usr/bin/env bash
# The main job on the embedded default: compile rules/gateway.rules and classify the bundled sample flows.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-$top/build}
"$build/apps/portcullis" check "$top/rules/gateway.rules"
"$build/apps/portcullis" classify "$top/rules/gateway.rules" "$top/rules/sample.flows"
