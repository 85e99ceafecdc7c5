-- lumen.recipe: what recipes share — loading the model and one input the same way everywhere, and
-- writing pictures, raw values (.npy) and the manifest with every file checked and registered.
-- Inputs: `image=path.png` (resized and scaled as model.input_spec says), or, for the shipped
-- Fashion-MNIST CNN, `index=k` into the Fashion-MNIST test set from Debian's dataset-fashion-mnist.
local lumen = require "lumen"

local M = {}

M.FASHION_DIR = "/usr/share/datasets/fashion-mnist" -- where Debian's dataset-fashion-mnist puts it
M.FASHION_MODEL = "data/models/fashion_cnn.lumen"
-- The input range of models whose file does not say it (ONNX): the shared MobileNets' convention.
M.DEFAULT_SCALE = { -1, 1 }

-- The Fashion-MNIST test set (cached): images (N, 1, 28, 28), labels (N) 1-based.
local test_set
function M.fashion_test(dir)
  if not test_set then
    local X, y = lumen.data.load_mnist(dir or M.FASHION_DIR, "test")
    test_set = { X = X, y = y }
  end
  return test_set.X, test_set.y
end

-- A parameter's "not set" values ("" and 0) as nil: `layer = recipe.opt(p.layer)`.
function M.opt(v)
  if v == "" or v == 0 then return nil end
  return v
end

-- A comma-separated list of integers ("1,2,3") as a Lua array.
function M.ints(s)
  local t = {}
  for v in tostring(s):gmatch("[^,%s]+") do
    t[#t + 1] = math.tointeger(tonumber(v)) or error(("'%s' is not an integer in '%s'"):format(v, s), 2)
  end
  return t
end

-- load_model(p) -> the model of p.model, with p.labels (a label file, may be "") as its labels and an
-- input scale when the file gives none.
function M.load_model(p)
  local model = lumen.load_model(p.model)
  if p.labels and p.labels ~= "" then model.labels = assert(lumen.labels(p.labels)) end
  if model.input_spec and model.input_spec.size and not model.input_spec.scale then
    model.input_spec.scale = M.DEFAULT_SCALE
  end
  return model
end

-- load(p [, size]) -> model, img (C, H, W) as shown, x (1, C, H, W) as the model takes it, true label
-- or nil. Reads p.model, p.labels, p.image (may be "") and p.index (the Fashion-MNIST test image
-- otherwise). size = {h, w} resizes a photo to that instead of the model's input size.
function M.load(p, size)
  local model = M.load_model(p)
  if p.image and p.image ~= "" then
    local img, err = lumen.image.load(p.image)
    if not img then error(err, 2) end
    local spec = setmetatable({ size = size }, { __index = model.input_spec })
    local x = lumen.image.preprocess(img, spec)
    return model, M.to_image(model, x), x, nil
  end
  local X, y = M.fashion_test()
  local x = X:narrow(1, p.index, 1)
  return model, x:squeeze(1), x, y:get { p.index }
end

-- The picture (C, H, W) in [0, 1] of a model input (1, C, H, W): preprocess's scaling undone.
function M.to_image(model, x)
  local s = model.input_spec or {}
  local img = x:squeeze(1)
  if s.mean or s.std then img = lumen.image.denormalize(img, s.mean or 0, s.std or 1) end
  local lo, hi = table.unpack(s.scale or { 0, 1 })
  return ((img - lo) / (hi - lo)):clamp(0, 1)
end

-- The class name of a 1-based class id, or its number; short: only up to the first comma (captions).
function M.label(model, c, short)
  local name = (model.labels and model.labels[c]) or tostring(c)
  return short and name:match("^[^,]*") or name
end

-- path(dir, name): creates dir, registers name for the manifest, returns dir/name.
function M.path(dir, name)
  lumen.mkdir(dir)
  return lumen.output(dir, name)
end

-- Writes a picture (C, H, W) / a tensor as dir/name, raising "path: reason" on failure.
function M.save_png(dir, name, img)
  local ok, err = lumen.image.save(img, M.path(dir, name))
  if not ok then error(err, 2) end
end
function M.save_npy(dir, name, t)
  local ok, err = lumen.write_npy(M.path(dir, name), t)
  if not ok then error(err, 2) end
end

-- Small inputs (Fashion-MNIST's 28 pixels) drawn larger: a picture (C, H, W) or an int64 (H, W)
-- segment map scaled by an integer factor, nearest-neighbour, to at least 168 pixels high.
function M.enlarge(t)
  local d = #t.shape
  local h, w = t.shape[d - 1], t.shape[d]
  local k = math.ceil(168 / h)
  if k <= 1 then return t end
  if t:dtype() == "int64" then
    return lumen.image.resize(t:float():unsqueeze(1), k * h, k * w, { method = "nearest" }):squeeze(1):long()
  end
  return lumen.image.resize(t, k * h, k * w, { method = "nearest" })
end

-- The picture of a map: input | map | overlay. map: (1, 1, H, W), (1, H, W) or (H, W), clipped at its
-- opts.clip quantile of |map| (default 0.99; false: not clipped); signed maps (opts.signed) use the
-- diverging colormap (0 white); opts.labels captions the three panels.
function M.map_panel(img, map, opts)
  opts = opts or {}
  local m = map:reshape { map.shape[#map.shape - 1], map.shape[#map.shape] }
  if opts.clip ~= false then m = M.clip(m, opts.clip) end
  local cmap = opts.cmap or (opts.signed and "bwr" or "jet")
  local overlay = lumen.viz.overlay(img, m, { cmap = cmap, alpha = opts.alpha or 0.5 })
  return lumen.viz.panel({ M.enlarge(img), M.enlarge(lumen.viz.colormap(m, cmap)), M.enlarge(overlay) },
    { labels = opts.labels })
end

-- Writes <name>.png (M.map_panel) and <name>.npy (the map as given) into dir.
function M.save_map(dir, name, img, map, opts)
  M.save_png(dir, name .. ".png", M.map_panel(img, map, opts))
  M.save_npy(dir, name .. ".npy", map)
end

-- A per-pixel map from an input-shaped attribution (1, C, H, W): max of |a| over channels
-- (Simonyan et al.), or the signed sum over channels.
function M.pixel_map(a, signed)
  if signed then return a:sum(2, true) end
  return (a:abs():max(2))
end

-- The map with |values| above their q-quantile (default 0.99) clipped to it: gradient maps are
-- heavy-tailed, and a few pixels would otherwise take the whole colour scale.
function M.clip(map, q)
  local n = map:numel()
  local sorted = map:abs():reshape { n }:sort(1)
  local v = sorted:get { math.max(1, math.floor((q or 0.99) * n + 0.5)) }
  if v <= 0 then return map end
  return map:clamp(-v, v)
end

-- The picture (C, H, W) of a signed input-shaped gradient (1, C, H, W): 0 at mid-gray, clipped at the
-- 99th percentile of |g| (as guided backprop pictures are shown).
function M.gradient_image(g)
  local c = M.clip(g:squeeze(1))
  local m = math.max(c:abs():max_all(), 1e-12)
  return c / (2 * m) + 0.5
end

-- The picture of a signed input-shaped attribution (1, C, H, W) (IG, GradientSHAP, LRP): input |
-- sum over channels (0 white, red for, blue against) | overlay of the magnitude, both clipped at the
-- 99th percentile.
function M.attribution_panel(img, attr, labels)
  local signed = M.clip(M.pixel_map(attr, true)):squeeze(1)
  local magnitude = M.clip(M.pixel_map(attr)):squeeze(1)
  return lumen.viz.panel({ M.enlarge(img), M.enlarge(lumen.viz.colormap(signed, "bwr")),
    M.enlarge(lumen.viz.overlay(img, magnitude, { alpha = 0.6 })) }, { labels = labels })
end

-- finish(p, info): writes p.out/manifest.json (info plus the model file's SHA-256) and says where.
function M.finish(p, info)
  info = info or {}
  if p.model and p.model ~= "" then info.model_sha256 = lumen.sha256_file(p.model) end
  lumen.manifest(p.out, info)
  print("wrote " .. p.out)
  if p.report then print("wrote " .. require("lumen.report").write(p.out)) end -- report=true (lumen.args)
end

return M
