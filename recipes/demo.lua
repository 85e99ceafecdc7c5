-- The headline demo: why does the shipped Fashion-MNIST CNN decide what it decides?
-- For a few test images: CAM, Grad-CAM, saliency, SmoothGrad, Integrated Gradients, occlusion and
-- LRP side by side, one row per image, into out/demo/demo.png (maps clipped at their 99th percentile
-- for the picture) and the raw maps as <index>_<method>.npy, with a manifest.
--   lumen run recipes/demo.lua [indices=1,2,3,4,5,6] [out=out/demo]
local lumen = require "lumen"
local recipe = lumen.recipe
local viz = lumen.viz

local p = lumen.args { model = recipe.FASHION_MODEL, indices = "1,2,3,4,5,6", size = 112, out = "out/demo", seed = 0 }
lumen.seed(p.seed)
local model = recipe.load_model(p)
local X, y = recipe.fashion_test()
local E = lumen.explain
local methods = {
  { "cam", function(x) return (E.cam(model, x)) end },
  { "gradcam", function(x) return (E.gradcam(model, x)) end },
  { "saliency", function(x) return viz.pixel_map((E.saliency(model, x))) end },
  { "smoothgrad", function(x) return viz.pixel_map((E.smoothgrad(model, x, { n = 25 }))) end },
  { "ig", function(x) return viz.pixel_map((E.integrated_gradients(model, x, { steps = 32 }))) end },
  { "occlusion", function(x) return (E.occlusion(model, x, { patch = 6, stride = 2 })) end },
  { "lrp", function(x) return viz.pixel_map((E.lrp(model, x, { rule = "epsilon" }))) end },
}
local names = { "input" }
for _, m in ipairs(methods) do names[#names + 1] = m[1] end

local rows = {}
for r, k in ipairs(recipe.ints(p.indices)) do
  local x = X:narrow(1, k, 1)
  local c = lumen.argmax(lumen.no_grad(model.forward, model, x), 2):get { 1 }
  local img = lumen.image.resize(x:squeeze(1), p.size, p.size)
  local cells = { img }
  for _, m in ipairs(methods) do
    local map = m[2](x)
    recipe.save_npy(p.out, ("%d_%s.npy"):format(k, m[1]), map)
    local shown = lumen.image.resize(viz.clip(map):reshape { 1, 28, 28 }, p.size, p.size)
    cells[#cells + 1] = viz.overlay(img, shown, { alpha = 0.6 })
  end
  cells[1] = viz.label(img, recipe.label(model, c):sub(1, 11):upper(), { y = p.size - 8 })
  rows[r] = viz.panel(cells, { pad = 2, labels = r == 1 and names or nil })
  print(("test image %d: true %s, predicted %s"):format(k, recipe.label(model, y:get { k }), recipe.label(model, c)))
end
print("columns: " .. table.concat(names, " | "))
recipe.save_png(p.out, "demo.png", viz.grid(rows, { ncol = 1, pad = 4 }))
recipe.finish(p, { columns = names })
