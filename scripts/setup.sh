#!/usr/bin/env bash
# Quick start, command 1: install everything, build, and run the main job on the embedded default.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
"$top/scripts/install-deps.sh"
"$top/scripts/build.sh"
"$top/scripts/demo.sh"
