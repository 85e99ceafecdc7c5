#!/bin/sh
# Installs the build in $1 into a temporary prefix and checks that the installed `lumen` finds its
# Lua files there (no environment variable, the source tree out of the way) and runs a script.
set -e
build="$1"
prefix=$(mktemp -d)
trap 'rm -rf "$prefix"' EXIT
cmake --install "$build" --prefix "$prefix" >/dev/null
cat > "$prefix/check.lua" <<'LUA'
local lumen = require "lumen"
assert(lumen.tensor({ 1, 2, 3 }):sum():item() == 6)
print(LUMEN_LUA_DIR)
LUA
dir=$(cd / && env -u LUMEN_LUA_DIR "$prefix/bin/lumen" run "$prefix/check.lua")
case "$dir" in
  "$prefix"/*) echo "installed lumen uses $dir" ;;
  *) echo "installed lumen took its Lua files from $dir, not from $prefix" >&2; exit 1 ;;
esac
