#!/usr/bin/env bash
# bench/run.sh — lumen against PyTorch on this machine. Builds only bench/sgemm.c (not lumen), then for
# ROUNDS rounds runs the sgemm limit and, for each bench, the lumen side and the torch side (alternating
# which goes first), and prints bench/report.py's table of medians and ratios.
#
# usage: bench/run.sh [conv] [model] [explain]          (default: all three)
# env:   ROUNDS=3  LUMEN=./build/lumen  PYTHON=/usr/bin/python3  OUT=file.jsonl (keep the raw lines)
#        CONV_ARGS / MODEL_ARGS / EXPLAIN_ARGS: key=value pairs given to both sides, e.g. CONV_ARGS="batches=1"
# OPENBLAS_NUM_THREADS is set to 2 and torch uses 2 threads; OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE are left
# as they are when set (when unset, see below).
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-3}
LUMEN=${LUMEN:-./build/lumen}
PYTHON=${PYTHON:-/usr/bin/python3}
BENCHES=${*:-conv model explain}
export OPENBLAS_NUM_THREADS=2 LUMEN_QUIET=1

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
results=${OUT:-$work/results.jsonl}
: >"$results"

echo "cores: $(nproc) ($(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1))"
echo "OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE-<unset>} OPENBLAS_L2_SIZE=${OPENBLAS_L2_SIZE-<unset>}" \
     "OMP_WAIT_POLICY=${OMP_WAIT_POLICY-<unset>} lumen=$LUMEN"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg) (other work on the machine skews every number)"
[ -x "$LUMEN" ] || echo "warning: $LUMEN not found: build lumen first; only the torch sides will run" >&2

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

run_side() { # side bench args...
  local side=$1 b=$2
  shift 2
  if [ "$side" = lumen ]; then
    [ -x "$LUMEN" ] && { "$LUMEN" run "bench/$b.lua" "$@" >>"$results" || echo "lumen $b: exit $?" >&2; }
  else
    "$PYTHON" "bench/${b}_torch.py" "$@" >>"$results" || echo "torch $b: exit $?" >&2
  fi
  return 0
}

for round in $(seq 1 "$ROUNDS"); do
  echo "round $round/$ROUNDS" >&2
  "$work/sgemm" 5 1024 2048 >>"$results"
  for b in $BENCHES; do
    var="$(echo "$b" | tr '[:lower:]' '[:upper:]')_ARGS"
    read -r -a args <<<"${!var:-}"
    if [ $((round % 2)) = 1 ]; then order="lumen torch"; else order="torch lumen"; fi
    for side in $order; do run_side "$side" "$b" ${args[@]+"${args[@]}"}; done
  done
done

"$PYTHON" bench/report.py "$results"
