#!/usr/bin/env bash
# Configures (once) and builds into build/ (or $BUILD_DIR).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-$top/build}
if [ ! -f "$build/build.ninja" ]; then
	meson setup "$build" "$top" "$@"
fi
ninja -C "$build"
