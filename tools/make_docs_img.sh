#!/bin/sh
# Regenerates the pictures in docs/img (or checks them with check=true): builds lumen if needed, then
# runs tools/make_docs_img.lua, the one place that knows how every picture there is made. Arguments are
# passed on (only=NAME,... check=true recompute=NAME,...). The photos and ImageNet models come from
# ../shared/data; the Fashion-MNIST pictures need Debian's dataset-fashion-mnist.
set -e
cd "$(dirname "$0")/.."
tools/build.sh > /dev/null
exec ./build/lumen run tools/make_docs_img.lua "$@"
