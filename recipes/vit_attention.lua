-- Where does a Vision Transformer look? For a few Fashion-MNIST test images (or one photo, image=, for
-- any ViT, e.g. an ONNX export, with preset= as usual): attention rollout (Abnar & Zuidema 2020) with
-- the heads averaged, rollout with the heads' max and the lowest discard_ratio of the attention dropped
-- (jacobgil/vit-explain's sharper variant), and transformer attribution (Chefer et al. 2021) for the top
-- class (or target=), and, when the build's Grad-CAM takes reshape = (tokens as a patch grid), Grad-CAM at
-- cam_layer (the last layer's first LayerNorm, as pytorch-grad-cam does for ViTs; "" = Grad-CAM's default);
-- one row per image, each map over the picture (jet: red = most), into vit_attention.png; the raw
-- patch-grid maps as <index>_<method>.npy; a manifest.
--   lumen run recipes/vit_attention.lua [indices=1,2,3,4,5,6] [discard_ratio=0.9] [out=out/vit_attention]
local lumen = require "lumen"
local recipe = lumen.recipe
local viz = lumen.viz

local p = lumen.args(recipe.image_args {
  model = "data/models/vit_fashion.lumen", image = "", indices = "1,2,3,4,5,6", labels = "", target = "",
  discard_ratio = 0.9, cam_layer = "encoder_2.norm1", cell = 112, out = "out/vit_attention", seed = 0,
})
lumen.seed(p.seed)
local inputs, model = {}, nil
if p.image ~= "" then
  local m, img, x = recipe.load(p)
  model, inputs[1] = m, { name = "image", x = x, img = img }
else
  model = recipe.load_model(p)
  local X = recipe.fashion_test()
  for _, k in ipairs(recipe.ints(p.indices)) do inputs[#inputs + 1] = { name = tostring(k), x = X:narrow(1, k, 1) } end
end

local E = lumen.explain
local methods = {
  { "rollout", function(x) return E.attention_rollout(model, x) end },
  { "rollout_max", function(x) return E.attention_rollout(model, x, { head_fusion = "max", discard_ratio = p.discard_ratio }) end },
  { "attribution", function(x) return E.transformer_attribution(model, x, { target = recipe.target(model, p, x) }) end },
}
if lumen.explain.options("gradcam").reshape then -- a build whose CAM family reads tokens as a patch grid
  methods[#methods + 1] = { "gradcam", function(x)
    return E.gradcam(model, x, { layer = recipe.opt(p.cam_layer), target = recipe.target(model, p, x) })
  end }
end
local names = { "input" }
for _, m in ipairs(methods) do names[#names + 1] = m[1]:gsub("_", " ") end

local rows, info = {}, {}
for r, input in ipairs(inputs) do
  local img = lumen.image.resize(input.img or input.x:squeeze(1), p.cell, p.cell)
  local cells, c = { img }, nil
  for _, m in ipairs(methods) do
    local map, targets, _, raw = m[2](input.x)
    c = c or targets[1]
    recipe.save_npy(p.out, ("%s_%s.npy"):format(input.name, m[1]), raw)
    cells[#cells + 1] = viz.overlay(img, map:reshape { map.shape[3], map.shape[4] }, { alpha = 0.55 })
  end
  cells[1] = viz.label(img, recipe.label(model, c, true):sub(1, 11):upper(), { y = p.cell - 8 })
  rows[r] = viz.panel(cells, { pad = 2, labels = r == 1 and names or nil })
  info[input.name] = { class = c, label = recipe.label(model, c) }
  print(("%s: predicted %s (class %d)"):format(input.name, recipe.label(model, c), c))
end
print("columns: " .. table.concat(names, " | "))
recipe.save_png(p.out, "vit_attention.png", viz.grid(rows, { ncol = 1, pad = 4 }))
recipe.finish(p, { columns = names, predictions = info })
