-- Sanity checks for saliency maps (Adebayo et al. 2018), cascading randomisation: the weights are
-- replaced by random ones layer by layer from the top, and each method's map is compared with the
-- original (Spearman rank correlation of |map|). A map that stays the same does not explain the model.
--   lumen run recipes/sanity_checks.lua [index=1] [methods=gradcam,saliency,guided_backprop,integrated_gradients]
--   lumen run recipes/sanity_checks.lua model=../shared/data/models/mobilenet_v1_0.5_160_float.onnx preset=tflite \
--     labels=../shared/data/models/imagenet_labels.txt image=../shared/data/images/cat.png methods=gradcam,saliency
-- Prints the table (rows: layers randomised so far; columns: methods); writes sanity_checks.png (one row
-- per method: the original map, then the map after each layer's randomisation, at most `columns` of
-- them) and <method>.npy ((1 + layers, H, W): every map).
local lumen = require "lumen"
local recipe = lumen.recipe
local viz = lumen.viz
local E = lumen.explain

local p = lumen.args(recipe.image_args { model = recipe.FASHION_MODEL, image = "", index = 1, labels = "", target = "",
                       methods = "gradcam,saliency,guided_backprop,integrated_gradients", columns = 11, out = "out/sanity_checks", seed = 0 })
lumen.seed(p.seed)
local model, _, x = recipe.load(p)
local maps = {
  gradcam = function(m, xi, o) return (E.gradcam(m, xi, o)) end,
  saliency = function(m, xi, o) return viz.pixel_map((E.saliency(m, xi, o))) end,
  guided_backprop = function(m, xi, o) return viz.pixel_map((E.guided_backprop(m, xi, o))) end,
  integrated_gradients = function(m, xi, o) return viz.pixel_map((E.integrated_gradients(m, xi, o))) end,
}
local target = recipe.target(model, p, x) or lumen.argmax(lumen.no_grad(model.forward, model, x, { logits = true }), 2):get { 1 }
local names, columns, layers, rows = {}, {}, nil, {}
for name in p.methods:gmatch("[^,]+") do
  local fn = maps[name] or error("unknown method " .. name .. " (gradcam, saliency, guided_backprop, integrated_gradients)", 0)
  local result, ms
  result, ms, layers = E.sanity_check(model, x, fn, { target = target })
  names[#names + 1], columns[#columns + 1] = name, result
  local step = math.ceil(#layers / p.columns) -- every step-th layer's map is drawn, and the last
  local tiles, labels = {}, {}
  for i, m in ipairs(ms) do
    if i <= 2 or (i - 2) % step == 0 or i == #ms then
      tiles[#tiles + 1] = viz.enlarge(viz.colormap(viz.clip(m):squeeze(1), "jet"))
      labels[#tiles] = #rows == 0 and i > 1 and layers[i - 1] or nil -- the layers along the first row
    end
  end
  labels[1] = name:upper()
  rows[#rows + 1] = viz.grid(tiles, { ncol = #tiles, labels = labels })
  recipe.save_npy(p.out, name .. ".npy", lumen.cat(ms, 1):reshape { #ms, x.shape[3], x.shape[4] })
end

print(("cascading randomisation for class %d (%s): Spearman rank correlation with the original map"):format(
  target, recipe.label(model, target)))
print(("%-20s"):format("randomised down to") .. ("%22s"):rep(#names):format(table.unpack(names)))
for i, layer in ipairs(layers) do
  local cells = {}
  for k, col in ipairs(columns) do cells[k] = ("%22.3f"):format(col[i].spearman) end
  print(("%-20s"):format(layer) .. table.concat(cells))
end
recipe.save_png(p.out, "sanity_checks.png", viz.grid(rows, { ncol = 1, pad = 4 }))
recipe.finish(p, { target = target, layers = layers, methods = names })
