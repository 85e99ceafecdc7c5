-- The headline demo: why does the shipped Fashion-MNIST CNN decide what it decides?
-- For a few test images: CAM, Grad-CAM, saliency, SmoothGrad, Integrated Gradients, occlusion and
-- LRP side by side, one row per image, into out/demo/demo.png (+ the raw maps as .npy, a manifest).
local lumen = require "lumen"
local recipe = lumen.recipe

local p = lumen.args { model = recipe.FASHION_MODEL, indices = "1,2,3,4,5,6", out = "out/demo", seed = 0 }
lumen.seed(p.seed)
local model = lumen.load_model(p.model)
local X, y = recipe.fashion_test()
local E = lumen.explain
local methods = {
  { "cam", function(x) return (E.cam(model, x)) end },
  { "gradcam", function(x) return (E.gradcam(model, x)) end },
  { "saliency", function(x) return recipe.pixel_map((E.saliency(model, x))) end },
  { "smoothgrad", function(x) return recipe.pixel_map((E.smoothgrad(model, x, { n = 25 }))) end },
  { "ig", function(x) return recipe.pixel_map((E.integrated_gradients(model, x, { steps = 32 }))) end },
  { "occlusion", function(x) return (E.occlusion(model, x, { patch = 6, stride = 2 })) end },
  { "lrp", function(x) return recipe.pixel_map((E.lrp(model, x, { rule = "epsilon" }))) end },
}
local rows = {}
for i in p.indices:gmatch("%d+") do
  local k = math.tointeger(tonumber(i))
  local x = X:narrow(1, k, 1)
  local scores = model:forward(x)
  local _, top = scores:max(2)
  local c = top:get { 1 }
  local cells = { lumen.viz.label(lumen.image.resize(x:squeeze(1), 112, 112), recipe.label(model, c):sub(1, 10)) }
  for _, m in ipairs(methods) do
    local map = m[2](x)
    lumen.write_npy(lumen.output(p.out, ("%d_%s.npy"):format(k, m[1])), map)
    cells[#cells + 1] = lumen.viz.overlay(lumen.image.resize(x:squeeze(1), 112, 112),
                                          lumen.image.resize(map:reshape { 1, 28, 28 }, 112, 112), { alpha = 0.6 })
  end
  rows[#rows + 1] = lumen.viz.panel(cells, { pad = 2 })
  print(("test image %d: true %s, predicted %s"):format(k, recipe.label(model, y:get { k }), recipe.label(model, c)))
end
local names = { "input" }
for _, m in ipairs(methods) do names[#names + 1] = m[1] end
print("columns: " .. table.concat(names, " | "))
lumen.mkdir(p.out)
lumen.viz.grid(rows, { ncol = 1, pad = 4 }):save(lumen.output(p.out, "demo.png"))
lumen.manifest(p.out, { columns = names, model_sha256 = lumen.sha256_file(p.model) })
print("wrote " .. p.out .. "/demo.png")
