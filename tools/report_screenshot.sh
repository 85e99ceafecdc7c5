#!/bin/sh
# Makes docs/img/report.png: Grad-CAM and the faithfulness leaderboard over the ten sample pictures in
# data/images/fashion (lumen batch), the leaderboard merged over them, `lumen report`, and a screenshot
# of the page in headless Chromium (Debian chromium). Run from the repository root after tools/build.sh:
#     tools/report_screenshot.sh [OUT [PNG]]   (OUT: where the runs go, default out/report_demo;
#                                              PNG: the screenshot, default docs/img/report.png)
# tools/make_docs_img.sh runs it as one of the docs/img pictures. LUMEN=path picks the lumen program.
set -e
out="${1:-out/report_demo}"
png="${2:-docs/img/report.png}"
lumen="${LUMEN:-./build/lumen}"
methods=saliency,integrated_gradients,gradcam,occlusion,lrp
export LUMEN_QUIET=1
# overwrite=true: made again, the runs replace the earlier ones (unchanged runs are skipped).
"$lumen" batch gradcam inputs=data/images/fashion out="$out/gradcam" overwrite=true
"$lumen" batch benchmark_methods inputs=data/images/fashion out="$out/scores" methods=$methods overwrite=true
"$lumen" run recipes/benchmark_methods.lua merge="$out/scores" out="$out/leaderboard" methods=$methods overwrite=true
"$lumen" report "$out" title="lumen report: the Fashion-MNIST samples"
profile=$(mktemp -d)
chromium --headless --virtual-time-budget=3000 --run-all-compositor-stages-before-draw --no-sandbox --disable-gpu --disable-quic --no-first-run --disable-background-networking \
  --disable-component-update --disable-sync --user-data-dir="$profile" --hide-scrollbars --window-size=1400,1700 \
  --screenshot="$png" "file://$(realpath "$out")/index.html" 2>/dev/null
rm -rf "$profile"
echo "wrote $png"
