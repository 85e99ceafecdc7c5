#!/bin/sh
# Builds lumen and runs every test: the C tests (tests/c) and the busted specs (tests/lua), through ctest.
# LUMEN_SANITIZE=1 runs the suite in a separate AddressSanitizer + UBSan build (build-asan).
set -e
cd "$(dirname "$0")/.."
if [ "${LUMEN_SANITIZE:-0}" = 1 ]; then
  export LUMEN_BUILD_DIR=build-asan LUMEN_BUILD_TYPE=Debug
  export ASAN_OPTIONS=detect_leaks=0 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
  tools/build.sh -DLUMEN_SANITIZE=ON
else
  tools/build.sh
fi
ctest --test-dir "${LUMEN_BUILD_DIR:-build}" --output-on-failure -j2
