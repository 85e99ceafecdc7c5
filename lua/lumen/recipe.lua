-- lumen.recipe: what recipes share — loading the model and one input the same way everywhere,
-- and writing a map as a picture (input | map | overlay), its raw values (.npy) and the manifest.
-- Inputs: `image=path.png` (resized and normalised as model.input_spec says), or, for the shipped
-- Fashion-MNIST CNN, `index=k` into the Fashion-MNIST test set from Debian's dataset-fashion-mnist.
local lumen = require "lumen"

local M = {}

M.FASHION_DIR = "/usr/share/datasets/fashion-mnist" -- where Debian's dataset-fashion-mnist puts it
M.FASHION_MODEL = "data/models/fashion_cnn.lumen"

-- The Fashion-MNIST test set (cached): images (N, 1, 28, 28), labels (N) 1-based.
local test_set
function M.fashion_test(dir)
  if not test_set then
    local X, y = lumen.data.load_mnist(dir or M.FASHION_DIR, "test")
    test_set = { X = X, y = y }
  end
  return test_set.X, test_set.y
end

-- load(p) -> model, img (C, H, W) as shown, x (1, C, H, W) as the model takes it, true label or nil.
-- Reads p.model, p.image (may be ""), p.index, p.labels (may be "").
function M.load(p)
  local model = lumen.load_model(p.model)
  if p.labels and p.labels ~= "" then model.labels = lumen.labels(p.labels) end
  if p.image and p.image ~= "" then
    local img, err = lumen.image.load(p.image)
    if not img then error(err, 2) end
    local x = model:preprocess(img)
    return model, lumen.image.resize(img, x.shape[3], x.shape[4]), x, nil
  end
  local X, y = M.fashion_test()
  local x = X:narrow(1, p.index, 1)
  return model, x:squeeze(1), x, y:get { p.index }
end

-- The class name of a 1-based class id, or its number.
function M.label(model, c)
  return (model.labels and model.labels[c]) or tostring(c)
end

-- Writes <name>.png (input | map | overlay) and <name>.npy (the raw map) into dir.
-- map: (1, 1, H, W) or (1, H, W) or (H, W); signed maps use the diverging colormap; opts.labels
-- captions the three panels.
function M.save_map(dir, name, img, map, opts)
  opts = opts or {}
  lumen.mkdir(dir)
  local m = map:reshape { map.shape[#map.shape - 1], map.shape[#map.shape] }
  local cmap = opts.cmap or (opts.signed and "bwr" or "jet")
  local heat = lumen.viz.colormap(m, cmap)
  local panel = lumen.viz.panel({ img, heat, lumen.viz.overlay(img, m, { cmap = cmap, alpha = opts.alpha or 0.5 }) },
    { height = math.max(168, img.shape[2]), labels = opts.labels })
  lumen.image.save(panel, lumen.output(dir, name .. ".png"))
  lumen.write_npy(lumen.output(dir, name .. ".npy"), map)
end

-- A per-pixel map from an input-shaped attribution (1, C, H, W): max of |a| over channels
-- (Simonyan et al.), or the signed sum over channels.
function M.pixel_map(a, signed)
  if signed then return a:sum(2, true) end
  return (a:abs():max(2))
end

return M
