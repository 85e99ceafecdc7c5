-- Are the maps faithful to the model? Deletion and insertion curves (Petsiuk et al. 2018): pixels are
-- removed (set to 0) or revealed (on a blurred copy) in the order a map ranks them, and the class
-- probability is recorded; a faithful map makes deletion fall fast (low AUC) and insertion rise fast
-- (high AUC). Grad-CAM, saliency and a random order, averaged over n Fashion-MNIST test images
-- (or one photo with image=...).
--   lumen run recipes/faithfulness.lua [n=20] [steps=28]
--   lumen run recipes/faithfulness.lua model=../shared/data/models/mobilenet_v2_1.0_224_quant.tflite \
--     labels=../shared/data/models/imagenet_labels.txt image=../shared/data/images/cat.png
-- Prints the AUC table; writes faithfulness.png (mean deletion | mean insertion curves) and curves.npy
-- ((methods, 2, steps + 1): deletion then insertion).
local lumen = require "lumen"
local recipe = lumen.recipe
local viz = lumen.viz
local E = lumen.explain
local auc = E.auc

local p = lumen.args(recipe.image_args { model = recipe.FASHION_MODEL, image = "", labels = "", index = 1, n = 20, steps = 28, batch_size = 29,
                       out = "out/faithfulness", seed = 0 })
lumen.seed(p.seed)
local methods = {
  { name = "gradcam", color = { 0.85, 0.1, 0.1 }, map = function(m, x) return (E.gradcam(m, x)) end },
  { name = "saliency", color = { 0.1, 0.3, 0.9 }, map = function(m, x) return viz.pixel_map((E.saliency(m, x))) end },
  { name = "random", color = { 0.4, 0.4, 0.4 }, order = "random" },
}
local model, _, x = recipe.load(p)
local inputs = { x } -- the photo, or test images index .. index + n - 1
if p.image == "" then for i = 2, p.n do inputs[i] = recipe.fashion_test():narrow(1, p.index + i - 1, 1) end end

local rows = {}
for _, m in ipairs(methods) do
  m.deletion, m.insertion = {}, {}
  for _, xi in ipairs(inputs) do
    local map = m.map and m.map(model, xi) or xi
    for _, kind in ipairs { "deletion", "insertion" } do
      local _, curve = E[kind](model, xi, map, { steps = p.steps, order = m.order, batch_size = p.batch_size })
      for s, v in ipairs(curve) do m[kind][s] = (m[kind][s] or 0) + v / #inputs end
    end
  end
  rows[#rows + 1] = { method = m.name, deletion_auc = auc(m.deletion), insertion_auc = auc(m.insertion) }
end
print(("%-10s %13s %14s   (mean over %d inputs)"):format("method", "deletion AUC", "insertion AUC", #inputs))
for _, r in ipairs(rows) do print(("%-10s %13.4f %14.4f"):format(r.method, r.deletion_auc, r.insertion_auc)) end

local charts, curves = {}, {}
for _, kind in ipairs { "deletion", "insertion" } do
  local lines = {}
  for i, m in ipairs(methods) do lines[i] = { y = m[kind], color = m.color, name = ("%s %.3f"):format(m.name, auc(m[kind])) } end
  charts[#charts + 1] = lumen.viz.chart(lines, { title = kind .. " (AUC)", ylabel = "probability", ylim = { 0, 1 },
    xlabel = "fraction of pixels " .. (kind == "deletion" and "removed" or "revealed") })
end
for _, m in ipairs(methods) do curves[#curves + 1] = lumen.tensor { m.deletion, m.insertion } end
recipe.save_png(p.out, "faithfulness.png", viz.panel(charts))
recipe.save_npy(p.out, "curves.npy", lumen.stack(curves, 1))
recipe.finish(p, { auc = rows, inputs = #inputs })
