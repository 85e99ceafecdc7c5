#!/bin/sh
# Coverage-guided fuzzing of lumen's readers with libFuzzer (clang, AddressSanitizer + UBSan).
#
#   tools/fuzz.sh TARGET [SECONDS]   fuzz one reader (default 60 s); its corpus grows in out/fuzz/TARGET
#   tools/fuzz.sh all [SECONDS]      every target, one after the other
#   tools/fuzz.sh --smoke [SECONDS]  every target for SECONDS (default 4) from its seeds alone, in a
#                                    scratch corpus (what ctest's fuzz_smoke runs)
#   tools/fuzz.sh --list             the targets
#
# Targets are the TARGET(...) lines of tests/fuzz/targets.h (jpeg, png, npy, safetensors, gzip, onnx, tflite),
# seeded from the fixture corpora they name. The targets lower lumen's limits (tests/fuzz/fuzz.c), and
# the fuzzer runs with -malloc_limit_mb=$FUZZ_MALLOC_MB (128) and -rss_limit_mb=$FUZZ_RSS_MB (1024), so an
# allocation bomb is a failure like a crash; so is one input taking over -timeout=10 seconds. Failing
# inputs are written to out/fuzz/TARGET-crashes/ (reproduce: build-fuzz/fuzz_TARGET FILE).
# Builds build-fuzz/ with clang when needed. Exits 77 (ctest's "skipped") when clang or libFuzzer is missing.
set -e
cd "$(dirname "$0")/.."
B="${LUMEN_FUZZ_BUILD_DIR:-build-fuzz}"
TARGETS_H=tests/fuzz/targets.h
MALLOC_MB="${FUZZ_MALLOC_MB:-128}"
RSS_MB="${FUZZ_RSS_MB:-1024}"

targets() { sed -n 's/^TARGET(\([a-z0-9_]*\),.*/\1/p' "$TARGETS_H"; }
seeds() { sed -n "s/^TARGET($1, \"\([^\"]*\)\".*/\1/p" "$TARGETS_H"; }

usage() { sed -n '3,8p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }

[ $# -ge 1 ] || usage
case "$1" in
  --list) targets; exit 0 ;;
  --smoke) mode=smoke; secs="${2:-4}"; list=$(targets) ;;
  all) mode=fuzz; secs="${2:-60}"; list=$(targets) ;;
  -*) usage ;;
  *) mode=fuzz; secs="${2:-60}"; list="$1"
     targets | grep -qx "$1" || { echo "fuzz.sh: no target '$1' (targets: $(targets | tr '\n' ' '))" >&2; exit 2; } ;;
esac

CC_FUZZ="${CC_FUZZ:-$(command -v clang || command -v clang-14 || true)}"
if [ -z "$CC_FUZZ" ]; then
  echo "fuzz.sh: SKIPPED: no clang (Debian: apt-get install clang libclang-rt-14-dev)" >&2
  exit 77
fi
probe_dir=$(mktemp -d)
trap 'rm -rf "$probe_dir"' EXIT
printf 'int LLVMFuzzerTestOneInput(const char *d, unsigned long n) { return 0; }\n' > "$probe_dir/p.c"
if ! "$CC_FUZZ" -fsanitize=fuzzer,address,undefined "$probe_dir/p.c" -o "$probe_dir/p" 2>/dev/null; then
  echo "fuzz.sh: SKIPPED: $CC_FUZZ cannot link libFuzzer (Debian: apt-get install libclang-rt-14-dev)" >&2
  exit 77
fi

cmake -S tests/fuzz -B "$B" -DCMAKE_C_COMPILER="$CC_FUZZ" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$B" -j2 >/dev/null

status=0
for t in $list; do
  if [ "$mode" = smoke ]; then
    corpus="$B/smoke/$t"
    rm -rf "$corpus"
  else
    corpus="out/fuzz/$t"
  fi
  crashes="out/fuzz/$t-crashes"
  mkdir -p "$corpus" "$crashes"
  for g in $(seeds "$t"); do
    for f in $g; do [ -f "$f" ] && cp "$f" "$corpus/" 2>/dev/null || true; done
  done
  log="$B/$t.log"
  start=$(date +%s)
  if "$B/fuzz_$t" "$corpus" -max_total_time="$secs" -timeout=10 -rss_limit_mb="$RSS_MB" \
       -malloc_limit_mb="$MALLOC_MB" -max_len=65536 -artifact_prefix="$crashes/" -print_final_stats=1 \
       >"$log" 2>&1; then
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1)
    echo "fuzz $t: ok, ${runs:-?} inputs in $(( $(date +%s) - start )) s, $cov, corpus $(ls "$corpus" | wc -l) files"
  else
    status=1
    echo "fuzz $t: FAILED (log: $log; input in $crashes/)" >&2
    grep -E 'ERROR|SUMMARY|==[0-9]+==|Test unit written' "$log" | head -8 >&2
  fi
done
exit $status
