#!/bin/sh
# Makes docs/img/text_transformer.png: recipes/text_transformer.lua on its default sentence with the shipped
# text transformer, and the top of each of its four pages (rollout, attribution, saliency, Integrated
# Gradients: title, prediction, the coloured words and the colour bar) in headless Chromium (Debian
# chromium), stacked into one picture by lumen. Run from the repository root after tools/build.sh:
#     tools/text_screenshot.sh [OUT [PNG]]    (OUT: where the run goes, default out/text_transformer_demo;
#                                             PNG: the picture, default docs/img/text_transformer.png)
# As report_screenshot.sh, so that make_docs_img can run it as `sh script DIR DIR/file`. LUMEN=path picks
# the lumen program.
set -e
out="${1:-out/text_transformer_demo}"
png="${2:-docs/img/text_transformer.png}"
lumen="${LUMEN:-./build/lumen}"
export LUMEN_QUIET=1
"$lumen" run recipes/text_transformer.lua out="$out" overwrite=true
profile=$(mktemp -d)
for page in rollout attribution saliency integrated_gradients; do
  chromium --headless --virtual-time-budget=3000 --run-all-compositor-stages-before-draw --no-sandbox --disable-gpu --disable-quic --no-first-run --disable-background-networking \
    --disable-component-update --disable-sync --user-data-dir="$profile" --hide-scrollbars --window-size=960,300 \
    --screenshot="$profile/$page.png" "file://$(realpath "$out")/$page.html" 2>/dev/null
done
"$lumen" <<LUA
local lumen = require "lumen"
local shots = {}
for _, page in ipairs { "rollout", "attribution", "saliency", "integrated_gradients" } do
  shots[#shots + 1] = assert(lumen.image.load("$profile/" .. page .. ".png")):narrow(1, 1, 3)
end
assert(lumen.image.save(lumen.viz.grid(lumen.stack(shots), { ncol = 1, pad = 6, pad_value = 0.75 }), "$png"))
LUA
rm -rf "$profile"
echo "wrote $png"
