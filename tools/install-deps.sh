#!/bin/sh
# Installs everything lumen needs to build, test and run its recipes, from Debian 12 packages only.
# Run as root (or with sudo available). Nothing else is downloaded.
set -e
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
PKGS="cmake gcc libc6-dev make pkg-config liblua5.4-dev lua5.4 lua-busted libopenblas-dev libpng-dev zlib1g-dev
      libprotobuf-c-dev protobuf-c-compiler libjpeg62-turbo-dev libdnnl-dev nettle-dev libedit-dev
      dataset-fashion-mnist fortunes"
# For the tests only: GNU parallel and a single-node Slurm (lumen batch), headless Chromium (the HTML
# report), clang's libFuzzer (the fuzz smoke run), tmux (the REPL test). LUMEN_TEST_DEPS=0 leaves them out.
[ "${LUMEN_TEST_DEPS:-1}" = 1 ] && PKGS="$PKGS parallel slurm-wlm munge chromium clang libclang-rt-14-dev tmux"
# PyTorch is only for regenerating fixtures (tools/) and for bench/: LUMEN_WITH_TORCH=1 adds it.
[ "${LUMEN_WITH_TORCH:-0}" = 1 ] && PKGS="$PKGS python3-torch python3-torchvision python3-onnx python3-numpy python3-pil"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
# shellcheck disable=SC2086
$SUDO apt-get install -y -q --no-install-recommends $PKGS
