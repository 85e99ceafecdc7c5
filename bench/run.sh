#!/usr/bin/env bash
# bench/run.sh — lumen against PyTorch (and onnxruntime for forward passes) on this machine. Builds only
# bench/sgemm.c (not lumen), then for ROUNDS rounds runs the sgemm limit and, for each bench and thread count,
# each side in its own process (alternating which goes first), and prints bench/report.py's table of medians,
# ratios and peak memory. The model bench runs one process per network, so its peak RSS is that network's.
#
# usage: bench/run.sh [conv] [model] [explain] [occlusion]    (default: the first three)
# env:   ROUNDS=3  THREADS="1 2"  LUMEN=./build/lumen  PYTHON=/usr/bin/python3  NODE=node  OUT=file.jsonl
#        LUMEN_BEFORE=path/to/another/lumen: a fourth side, "before" (the before/after table)
#        MODELS="resnet18 mobilenet_v2 ..." (the model bench's networks; default: all of bench/models.json)
#        CONV_ARGS / MODEL_ARGS / EXPLAIN_ARGS / OCCLUSION_ARGS: key=value pairs given to every side,
#        e.g. CONV_ARGS="batches=1"
# OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE / OMP_WAIT_POLICY / OPENBLAS_THREAD_TIMEOUT are left as they are when set
# (when unset, see below).
# Peak RSS per workload comes from /proc (VmHWM, reset before each workload).
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-3}
THREADS=${THREADS:-1 2}
LUMEN=${LUMEN:-./build/lumen}
PYTHON=${PYTHON:-/usr/bin/python3}
NODE=${NODE:-node}
BENCHES=${*:-conv model explain}
MODELS=${MODELS:-$("$PYTHON" -c 'import json; print(" ".join(m["name"] for m in json.load(open("bench/models.json"))))')}
export LUMEN_QUIET=1

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
results=${OUT:-$work/results.jsonl}
: >"$results"

echo "cores: $(nproc) ($(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1))"
echo "OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE-<unset>} OPENBLAS_L2_SIZE=${OPENBLAS_L2_SIZE-<unset>}" \
     "OMP_WAIT_POLICY=${OMP_WAIT_POLICY-<unset>} OPENBLAS_THREAD_TIMEOUT=${OPENBLAS_THREAD_TIMEOUT-<unset>}" \
     "lumen=$LUMEN${LUMEN_BEFORE:+ before=$LUMEN_BEFORE}"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg) (other work on the machine skews every number)"
[ -x "$LUMEN" ] || echo "warning: $LUMEN not found: build lumen first; only the other sides will run" >&2
have_ort=0
if [ -d bench/node_modules/onnxruntime-node ] && command -v "$NODE" >/dev/null; then have_ort=1; else
  echo "note: no onnxruntime column (cd bench && ONNXRUNTIME_NODE_INSTALL=skip npm install)" >&2
fi

# shellcheck disable=SC2046  # pkg-config's flags are meant to split
cc -O2 -o "$work/sgemm" bench/sgemm.c $(pkg-config --cflags --libs openblas)
core=$("$work/sgemm" 1 64 | sed -n 's/.*"case":"sgemm 64 \([^"]*\)".*/\1/p')
# A DYNAMIC_ARCH OpenBLAS that does not know the CPU picks generic Prescott kernels. The lumen program then
# restarts itself with the CPU's own (src/main.c); give the torch side and the sgemm limit the same.
if [ "$core" = Prescott ] && [ -z "${OPENBLAS_CORETYPE+x}" ]; then
  best=""
  has() { for f in "$@"; do grep -qw "$f" /proc/cpuinfo || return 1; done; }
  if has avx512f avx512bw avx512dq avx512vl; then best=SkylakeX; elif has avx2 fma; then best=Haswell; fi
  if [ -n "$best" ]; then
    export OPENBLAS_CORETYPE=$best
    echo "OpenBLAS alone picks Prescott kernels here; lumen switches itself to $best, so both sides" \
         "and sgemm run with OPENBLAS_CORETYPE=$best"
  fi
fi

# lumen's program starts itself with OMP_WAIT_POLICY=passive (src/main.c: oneDNN's OpenMP threads then sleep
# when idle instead of spinning); PyTorch runs its convolutions through the same oneDNN on the same libgomp,
# so it gets the same policy. A value set outside is kept for both.
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
# Likewise the lumen program shortens OpenBLAS's spin after each product (OPENBLAS_THREAD_TIMEOUT=24, src/main.c);
# PyTorch's matrix products run on the same OpenBLAS, so it gets the same.
export OPENBLAS_THREAD_TIMEOUT=${OPENBLAS_THREAD_TIMEOUT:-24}

run_side() { # side bench threads args...
  local side=$1 b=$2 t=$3
  shift 3
  case $side in
    lumen) [ -x "$LUMEN" ] && { OPENBLAS_NUM_THREADS=$t "$LUMEN" run "bench/$b.lua" threads="$t" "$@" >>"$results" \
             || echo "lumen $b: exit $?" >&2; } ;;
    before) LUMEN_BENCH_SIDE=before OPENBLAS_NUM_THREADS=$t "$LUMEN_BEFORE" run "bench/$b.lua" threads="$t" "$@" \
             >>"$results" || echo "before $b: exit $?" >&2 ;;
    torch) OPENBLAS_NUM_THREADS=$t "$PYTHON" "bench/${b}_torch.py" threads="$t" "$@" >>"$results" \
             || echo "torch $b: exit $?" >&2 ;;
    ort) [ "$b" = model ] && [ $have_ort = 1 ] && { "$NODE" bench/ort.js threads="$t" "$@" >>"$results" \
             || echo "ort $b: exit $?" >&2; } ;;
  esac
  return 0
}

sides="lumen torch ort${LUMEN_BEFORE:+ before}"
for round in $(seq 1 "$ROUNDS"); do
  echo "round $round/$ROUNDS" >&2
  "$work/sgemm" 5 1024 2048 >>"$results"
  for t in $THREADS; do
    for b in $BENCHES; do
      var="$(echo "$b" | tr '[:lower:]' '[:upper:]')_ARGS"
      read -r -a args <<<"${!var:-}"
      [ "$b" = occlusion ] && args+=("map=$work/occlusion_$t") # each side compares its map with the other's
      order=$sides
      [ $((round % 2)) = 0 ] && order=$(echo "$sides" | tr ' ' '\n' | tac | tr '\n' ' ')
      if [ "$b" = model ]; then
        for m in $MODELS; do
          for side in $order; do run_side "$side" "$b" "$t" models="$m" ${args[@]+"${args[@]}"}; done
        done
      else
        for side in $order; do [ "$side" = ort ] || run_side "$side" "$b" "$t" ${args[@]+"${args[@]}"}; done
      fi
    done
  done
done

"$PYTHON" bench/report.py "$results"
