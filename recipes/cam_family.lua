-- The CAM family side by side for one input: CAM, Grad-CAM, Grad-CAM++, HiResCAM, LayerCAM, XGrad-CAM,
-- EigenCAM, Score-CAM, Ablation-CAM and FullGrad, each upsampled to the input and laid over it, in one
-- picture (cam_family.png, two rows) with each method's raw map as <method>.npy and a manifest.
-- Defaults explain the shipped Fashion-MNIST CNN on a test image; for a photo:
--   lumen run recipes/cam_family.lua model=../shared/data/models/mobilenet_v2_1.0_224_quant.tflite \
--     labels=../shared/data/models/imagenet_labels.txt image=../shared/data/images/cat.png
-- layer= (default: each method's own, the last (N, C, h, w) map) applies to every method but CAM and
-- FullGrad; CAM is left out, with a note, for a model that does not end in GAP + one dense layer.
local lumen = require "lumen"
local recipe = lumen.recipe
local viz = lumen.viz

local p = lumen.args(recipe.image_args {
  model = recipe.FASHION_MODEL, image = "", index = 1, labels = "", layer = "", target = "", batch_size = 32,
  out = "out/cam_family", seed = 0,
})
lumen.seed(p.seed)
local model, img, x = recipe.load(p)
local target = recipe.target(model, p, x)
local layer = recipe.opt(p.layer)
local METHODS = { "cam", "gradcam", "gradcam_plus_plus", "hirescam", "layercam", "xgradcam", "eigencam", "scorecam",
                  "ablationcam", "fullgrad" }
local LABELS = { cam = "cam", gradcam = "grad-cam", gradcam_plus_plus = "grad-cam++", hirescam = "hirescam",
                 layercam = "layercam", xgradcam = "xgrad-cam", eigencam = "eigencam", scorecam = "score-cam",
                 ablationcam = "ablation-cam", fullgrad = "fullgrad" }

local shown = viz.enlarge(lumen.image.to_rgb(img))
local cells, names, info = { shown }, { "" }, {}
for _, m in ipairs(METHODS) do
  local opts = { target = target }
  if m ~= "cam" and m ~= "fullgrad" then opts.layer = layer end
  if m == "scorecam" or m == "ablationcam" then opts.batch_size = p.batch_size end
  local t0 = lumen.now()
  local ok, map, targets, at, raw = pcall(lumen.explain[m], model, x, opts)
  if not ok and m == "cam" then
    print("cam: left out (" .. tostring(map) .. ")")
  else
    if not ok then error(map, 0) end
    target = target or targets[1]
    recipe.save_npy(p.out, m .. ".npy", raw)
    cells[#cells + 1] = viz.enlarge(viz.overlay(img, map:reshape { map.shape[3], map.shape[4] }, { alpha = 0.6 }))
    names[#names + 1] = LABELS[m]
    local where = type(at) == "table" and (#at .. " bias layers") or at
    info[m] = { layer = where, seconds = math.floor((lumen.now() - t0) * 100 + 0.5) / 100 }
    print(("%-18s at %s (%.2f s)"):format(m, where, info[m].seconds))
  end
end
names[1] = recipe.label(model, target, true):sub(1, 12):upper() -- the class explained, over the input
print(("class %d (%s)"):format(target, recipe.label(model, target)))

recipe.save_png(p.out, "cam_family.png", viz.grid(cells, { ncol = math.ceil(#cells / 2), labels = names }))
recipe.finish(p, { target = target, label = recipe.label(model, target), methods = info })
