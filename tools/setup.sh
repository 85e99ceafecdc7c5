#!/bin/sh
# One command for a fresh Debian 12 machine: install the packages, build, and run the headline demo.
set -e
cd "$(dirname "$0")/.."
tools/install-deps.sh
tools/build.sh
./build/lumen run recipes/demo.lua overwrite=true # out/demo: replaced when setup runs again
