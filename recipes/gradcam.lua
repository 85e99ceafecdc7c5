-- Grad-CAM (Selvaraju et al. 2017) — and Grad-CAM++ / Guided Grad-CAM with method=... — for one input.
-- Defaults explain the shipped Fashion-MNIST CNN on a test image; for a photo:
--   lumen run recipes/gradcam.lua model=../shared/data/models/mobilenet_v2_1.0_224_quant.tflite \
--     labels=../shared/data/models/imagenet_labels.txt image=../shared/data/images/cat.png
-- Writes <method>.png (input | map | overlay), <method>.npy (the map at the input's size) and raw.npy
-- (the Grad-CAM / Grad-CAM++ map at the layer's resolution).
local lumen = require "lumen"
local recipe = lumen.recipe
local viz = lumen.viz

local p = lumen.args(recipe.image_args {
  model = recipe.FASHION_MODEL, image = "", index = 1, labels = "", layer = "", target = "",
  method = "gradcam", out = "out/gradcam", seed = 0,
})
lumen.seed(p.seed)
local model, img, x = recipe.load(p)
local methods = { gradcam = true, gradcam_plus_plus = true, guided_gradcam = true }
if not methods[p.method] then error("method must be gradcam, gradcam_plus_plus or guided_gradcam", 0) end

-- one call: the picture-sized map and the raw map at the layer (one forward and one backward)
local opts = { layer = recipe.opt(p.layer), target = recipe.target(model, p, x) }
local map, targets, layer, raw = lumen.explain[p.method](model, x, opts)
local name = recipe.label(model, targets[1], true)
print(("%s for class %d (%s) at layer %s"):format(p.method, targets[1], name, layer))

if p.method == "guided_gradcam" then map = viz.pixel_map(map) end
recipe.save_map(p.out, p.method, img, map, { labels = { "input", name, p.method } })
recipe.save_npy(p.out, "raw.npy", raw)
recipe.finish(p, { target = targets[1], label = recipe.label(model, targets[1]), layer = layer })
