#!/bin/sh
# Configures and builds lumen into ./build (or $LUMEN_BUILD_DIR); extra arguments go to cmake.
set -e
cd "$(dirname "$0")/.."
B="${LUMEN_BUILD_DIR:-build}"
cmake -S . -B "$B" -DCMAKE_BUILD_TYPE="${LUMEN_BUILD_TYPE:-Release}" "$@" >/dev/null
cmake --build "$B" -j"$(nproc)"
