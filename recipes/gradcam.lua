-- Grad-CAM (Selvaraju et al. 2017) — and Grad-CAM++ / Guided Grad-CAM with method=... — for one input.
-- Defaults explain the shipped Fashion-MNIST CNN on a test image; for a photo:
--   lumen run recipes/gradcam.lua model=../shared/data/models/mobilenet_v2_1.0_224_quant.tflite \
--     labels=../shared/data/models/imagenet_labels.txt image=../shared/data/images/cat.png
local lumen = require "lumen"
local recipe = lumen.recipe

local p = lumen.args {
  model = recipe.FASHION_MODEL, image = "", index = 1, labels = "", layer = "", target = 0,
  method = "gradcam", out = "out/gradcam", seed = 0,
}
lumen.seed(p.seed)
local model, img, x = recipe.load(p)
local methods = { gradcam = true, gradcam_plus_plus = true, guided_gradcam = true }
if not methods[p.method] then error("method must be gradcam, gradcam_plus_plus or guided_gradcam") end
local opts = { layer = p.layer ~= "" and p.layer or nil, target = p.target > 0 and p.target or nil }
local map, targets, layer = lumen.explain[p.method](model, x, opts)
local raw = lumen.explain.gradcam(model, x, { layer = layer, target = targets[1], raw = true })
local name = recipe.label(model, targets[1])
print(("%s for class %d (%s) at layer %s"):format(p.method, targets[1], name, layer))
if p.method == "guided_gradcam" then map = recipe.pixel_map(map) end
recipe.save_map(p.out, p.method, img, map, { labels = { "input", name, "overlay" } })
lumen.write_npy(lumen.output(p.out, "raw.npy"), raw)
lumen.manifest(p.out, { target = targets[1], label = name, layer = layer, model = p.model,
                        model_sha256 = lumen.sha256_file(p.model) })
