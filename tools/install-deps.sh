#!/bin/sh
# Installs everything lumen needs to build, test and run its recipes, from Debian 12 packages only.
# Run as root (or with sudo available). Nothing else is downloaded.
set -e
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
PKGS="cmake gcc libc6-dev make pkg-config liblua5.4-dev lua5.4 lua-busted libopenblas-dev libpng-dev zlib1g-dev
      libprotobuf-c-dev protobuf-c-compiler dataset-fashion-mnist fortunes"
# PyTorch is only for regenerating fixtures (tools/) and for bench/: LUMEN_WITH_TORCH=1 adds it.
[ "${LUMEN_WITH_TORCH:-0}" = 1 ] && PKGS="$PKGS python3-torch python3-torchvision python3-onnx python3-numpy"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
# shellcheck disable=SC2086
$SUDO apt-get install -y -q --no-install-recommends $PKGS
