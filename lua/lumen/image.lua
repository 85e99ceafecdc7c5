-- lumen.image: loading, saving and preparing pictures. An image is a float32 (C, H, W) tensor with
-- values in [0, 1] (C = 1 gray, 3 RGB; PNG files may add an alpha channel), a batch is (N, C, H, W).
-- The per-pixel work is in C (src/viz.c); nothing here records gradients (the differentiable
-- resampling ops are lumen's upsample ops).
--
--   local img = assert(lumen.image.load("cat.png"))             -- (3, H, W)
--   local x = lumen.image.preprocess(img, { size = { 160, 160 }, scale = { -1, 1 } }) -- (1, 3, 160, 160)
--   lumen.image.resize(img, 64, 64, { method = "area" }):save("small.png")
local core = require "lumen.core"
local lumen = require "lumen"

local image = {}

local function shape_str(t) return lumen.shape_str(t) end

local function check_tensor(t, fn)
  if not core.is_tensor(t) then error(("%s: expected an image tensor, got %s"):format(fn, type(t)), 3) end
end

-- image.chw(img) -> (C, H, W): accepts (H, W), (C, H, W) and (1, C, H, W); shares storage.
function image.chw(img, fn)
  fn = fn or "image"
  check_tensor(img, fn)
  local s = core.shape(img)
  if #s == 3 then return img end
  if #s == 2 then return core.view(img, { 1, s[1], s[2] }) end
  if #s == 4 and s[1] == 1 then return core.view(img, { s[2], s[3], s[4] }) end
  error(("%s: expected an image (C, H, W), (1, C, H, W) or (H, W), got %s"):format(fn, shape_str(img)), 3)
end

local function ext_of(path) return (path:match("%.(%w+)$") or ""):lower() end

-- image.load(path) -> (C, H, W) tensor in [0, 1], or nil and "path: reason". Only PNG.
function image.load(path)
  if type(path) ~= "string" then error("image.load: expected a path, got " .. type(path), 2) end
  if ext_of(path) ~= "png" then
    return nil, ("%s: unsupported image format '.%s' (lumen reads .png)"):format(path, ext_of(path))
  end
  if not core.png_load then error("image.load: this build has no PNG reader (lumen.core.png_load)", 2) end
  return core.png_load(path)
end

-- image.save(img, path) -> true, or nil and "path: reason". img is (C, H, W), (1, C, H, W) or (H, W);
-- values are clamped to [0, 1]. Any extension but .png is an error.
function image.save(img, path)
  img = image.chw(img, "image.save")
  if type(path) ~= "string" then error("image.save: expected a path, got " .. type(path), 2) end
  if ext_of(path) ~= "png" then
    error(("image.save: %s: unsupported image format '.%s' (lumen writes .png)"):format(path, ext_of(path)), 2)
  end
  if not core.png_save then error("image.save: this build has no PNG writer (lumen.core.png_save)", 2) end
  return core.png_save(img, path)
end

lumen.Tensor.save = function(t, path) return image.save(t, path) end

-- image.resize(img, h, w [, {method = "bilinear" | "area" | "nearest", align_corners = false}]):
-- (..., H, W) -> (..., h, w). bilinear matches F.interpolate without antialiasing; area averages the
-- covered pixels with fractional weights (use it to shrink photos); same size gives a copy.
function image.resize(img, h, w, opts)
  check_tensor(img, "image.resize")
  opts = opts or {}
  return core.image_resize(img, h, w, opts.method or "bilinear", opts.align_corners or false)
end

-- image.crop(img, y, x, h, w): the h x w window with top-left pixel (y, x), 1-based.
function image.crop(img, y, x, h, w)
  check_tensor(img, "image.crop")
  return core.image_crop(img, y, x, h, w)
end

-- image.center_crop(img, h, w): the central h x w window (rounded towards the top-left).
function image.center_crop(img, h, w)
  check_tensor(img, "image.center_crop")
  local s = core.shape(img)
  local H, W = s[#s - 1], s[#s]
  if not H or h > H or w > W then
    error(("image.center_crop: %dx%d does not fit in an image of shape %s"):format(h, w, shape_str(img)), 2)
  end
  return core.image_crop(img, (H - h) // 2 + 1, (W - w) // 2 + 1, h, w)
end

-- Drops an alpha channel: (2, H, W) -> (1, H, W), (4, H, W) -> (3, H, W); others unchanged.
local function drop_alpha(img)
  local s = core.shape(img)
  if #s == 3 and (s[1] == 2 or s[1] == 4) then return core.clone(core.narrow0(img, 1, s[1] - 1)) end
  return img
end

-- image.to_gray(img): (3, H, W) -> (1, H, W) (also batches), luma 0.299 R + 0.587 G + 0.114 B.
function image.to_gray(img)
  check_tensor(img, "image.to_gray")
  return core.image_to_gray(drop_alpha(img))
end

-- image.to_rgb(img): gray -> three equal channels; alpha dropped; RGB copied.
function image.to_rgb(img)
  check_tensor(img, "image.to_rgb")
  return core.image_to_rgb(drop_alpha(img))
end

-- Per-channel numbers: a number or a list (one per channel).
local function per_channel(v, what)
  if type(v) == "number" then return { v } end
  if type(v) ~= "table" or #v == 0 then error(("image: %s must be a number or a list per channel"):format(what), 3) end
  return v
end

-- image.normalize(img, mean, std): (x - mean[c]) / std[c] per channel of (C, H, W) or (N, C, H, W).
function image.normalize(img, mean, std)
  check_tensor(img, "image.normalize")
  mean, std = per_channel(mean, "mean"), per_channel(std, "std")
  if #mean ~= #std then error(("image.normalize: %d means but %d stds"):format(#mean, #std), 2) end
  local scale, shift = {}, {}
  for i = 1, #std do
    if std[i] == 0 then error(("image.normalize: std[%d] is 0"):format(i), 2) end
    scale[i], shift[i] = 1 / std[i], -mean[i] / std[i]
  end
  return core.image_channel_affine(img, scale, shift)
end

-- image.denormalize(img, mean, std): x * std[c] + mean[c], the inverse of normalize.
function image.denormalize(img, mean, std)
  check_tensor(img, "image.denormalize")
  mean, std = per_channel(mean, "mean"), per_channel(std, "std")
  if #mean ~= #std then error(("image.denormalize: %d means but %d stds"):format(#mean, #std), 2) end
  return core.image_channel_affine(img, std, mean)
end

-- image.to_batch(img): (C, H, W) -> (1, C, H, W), sharing storage; a batch is returned as is.
function image.to_batch(img)
  check_tensor(img, "image.to_batch")
  local s = core.shape(img)
  if #s == 4 then return img end
  if #s ~= 3 then error("image.to_batch: expected (C, H, W), got " .. shape_str(img), 2) end
  return core.view(img, { 1, s[1], s[2], s[3] })
end

-- image.preprocess(img, spec) -> (1, C, H, W): what a model expects, from a (C, H, W) image in [0, 1].
-- spec: size = {h, w} (resize, spec.method or bilinear); crop = true (resize the short side to cover
-- {h, w}, then take the centre) or a number (short side to that many pixels, then the centre {h, w});
-- channels = 1 | 3 (convert); scale = {lo, hi} (map [0, 1] to [lo, hi], e.g. {-1, 1}; default {0, 1});
-- mean, std (normalize after scaling).
function image.preprocess(img, spec)
  spec = spec or {}
  img = drop_alpha(image.chw(img, "image.preprocess"))
  if spec.channels == 3 then img = core.image_to_rgb(img)
  elseif spec.channels == 1 then img = core.image_to_gray(img) end
  if spec.size then
    local h, w = spec.size[1], spec.size[2]
    local s = core.shape(img)
    local method = spec.method or "bilinear"
    if spec.crop then
      local short = spec.crop == true and math.max(h, w) or spec.crop
      local k = short / math.min(s[2], s[3])
      local rh = math.max(h, math.floor(s[2] * k + 0.5))
      local rw = math.max(w, math.floor(s[3] * k + 0.5))
      img = image.center_crop(core.image_resize(img, rh, rw, method), h, w)
    else
      img = core.image_resize(img, h, w, method)
    end
  end
  if spec.scale then
    local lo, hi = spec.scale[1], spec.scale[2]
    if lo ~= 0 or hi ~= 1 then img = core.image_channel_affine(img, hi - lo, lo) end
  end
  if spec.mean or spec.std then img = image.normalize(img, spec.mean or 0, spec.std or 1) end
  return image.to_batch(img)
end

-- image.slic(img [, {n_segments = 50, compactness = 10, max_iter = 10, sigma = 0,
-- enforce_connectivity = true}]) -> int64 (H, W) superpixel labels 1..K (SLIC in CIELAB; deterministic).
function image.slic(img, opts)
  img = drop_alpha(image.chw(img, "image.slic"))
  return core.slic(img, opts)
end

return image
