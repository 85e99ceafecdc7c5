-- lumen.image: loading, saving and preparing pictures. An image is a float32 (C, H, W) tensor with
-- values in [0, 1] (C = 1 gray, 3 RGB; PNG files may add an alpha channel), a batch is (N, C, H, W).
-- The per-pixel work is in C (src/viz.c, src/resample.c, src/png.c, src/jpeg.c); nothing here records
-- gradients (the differentiable resampling ops are lumen's upsample ops).
--
--   local img = assert(lumen.image.load("cat.jpg"))              -- (3, H, W), PNG or JPEG by content
--   local x, shown = lumen.image.preprocess(img, { preset = "torchvision" }) -- (1, 3, 224, 224), (3, 224, 224)
--   lumen.image.resize(img, 64, 64, { antialias = true }):save("small.jpg", { quality = 90 })
--
-- Preprocessing is one definition everywhere (recipes, `lumen explain`, batch runs): a spec table
-- resolved by image.input_spec from a preset name plus explicit keys, applied by image.preprocess.
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

-- image.load(path) -> (C, H, W) tensor in [0, 1], or nil and "path: reason". PNG or JPEG, told apart by
-- the file's first bytes (not its name); JPEGs come out upright (EXIF orientation), CMYK as RGB.
-- Pictures over lumen.limits().image_pixels are refused before they are decoded.
function image.load(path)
  if type(path) ~= "string" then error("image.load: expected a path, got " .. type(path), 2) end
  return core.image_load(path)
end

local writers = { png = "png", jpg = "jpeg", jpeg = "jpeg" }

-- image.save(img, path [, {quality = 90}]) -> true, or nil and "path: reason". img is (C, H, W),
-- (1, C, H, W) or (H, W) with values clamped to [0, 1]. The extension picks the format: .png (8-bit,
-- keeps an alpha channel) or .jpg / .jpeg (gray or RGB, quality 1..100, 4:2:0 chroma as PIL writes).
function image.save(img, path, opts)
  img = image.chw(img, "image.save")
  if type(path) ~= "string" then error("image.save: expected a path, got " .. type(path), 2) end
  local kind = writers[ext_of(path)]
  if not kind then
    error(("image.save: %s: unsupported image format '.%s' (lumen writes .png, .jpg and .jpeg)"):format(path,
      ext_of(path)), 2)
  end
  if kind == "png" then return core.png_save(img, path) end
  local q = (opts or {}).quality or 90
  if math.type(q) ~= "integer" or q < 1 or q > 100 then
    error(("image.save: quality must be an integer in [1, 100], got %s"):format(tostring(q)), 2)
  end
  return core.jpeg_save(img, path, q)
end

lumen.Tensor.save = function(t, path, opts) return image.save(t, path, opts) end

-- image.resize(img, h, w [, {method = "bilinear" | "area" | "nearest", antialias = false,
-- align_corners = false}]): (..., H, W) -> (..., h, w). bilinear matches F.interpolate; with
-- antialias = true a shrinking bilinear widens its filter by the scale (PIL's Image.resize(BILINEAR),
-- F.interpolate(antialias=True)), so a 4000 x 3000 photo does not alias; area averages the covered
-- pixels with fractional weights; same size gives a copy. One resampler in C serves all of these and
-- the upsample ops.
function image.resize(img, h, w, opts)
  check_tensor(img, "image.resize")
  opts = opts or {}
  local method = opts.method or "bilinear"
  if opts.antialias and method == "bilinear" then method = "antialias" end
  return core.image_resize(img, h, w, method, opts.align_corners or false)
end

-- image.crop(img, y, x, h, w): the h x w window with top-left pixel (y, x), 1-based.
function image.crop(img, y, x, h, w)
  check_tensor(img, "image.crop")
  return core.image_crop(img, y, x, h, w)
end

-- Python's round(): halves go to the even neighbour (torchvision's centre crop uses it).
local function round_half_even(v)
  local f = math.floor(v)
  local d = v - f
  if d > 0.5 or (d == 0.5 and f % 2 == 1) then return f + 1 end
  return f
end

-- image.center_crop(img, h, w): the central h x w window, placed as torchvision's CenterCrop does
-- (top = round((H - h) / 2), halves to even).
function image.center_crop(img, h, w)
  check_tensor(img, "image.center_crop")
  local s = core.shape(img)
  local H, W = s[#s - 1], s[#s]
  if not H or h > H or w > W then
    error(("image.center_crop: %dx%d does not fit in an image of shape %s"):format(h, w, shape_str(img)), 2)
  end
  return core.image_crop(img, round_half_even((H - h) / 2) + 1, round_half_even((W - w) / 2) + 1, h, w)
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

-- One value per channel for both lists: a single value is repeated to the other's length.
local function pair(mean, std, fn)
  if #mean == 1 and #std > 1 then mean = { table.unpack(mean, 1, 1) } for i = 2, #std do mean[i] = mean[1] end end
  if #std == 1 and #mean > 1 then std = { table.unpack(std, 1, 1) } for i = 2, #mean do std[i] = std[1] end end
  if #mean ~= #std then error(("%s: %d means but %d stds"):format(fn, #mean, #std), 3) end
  return mean, std
end

-- image.normalize(img, mean, std): (x - mean[c]) / std[c] per channel of (C, H, W) or (N, C, H, W);
-- a single mean or std serves every channel.
function image.normalize(img, mean, std)
  check_tensor(img, "image.normalize")
  mean, std = pair(per_channel(mean, "mean"), per_channel(std, "std"), "image.normalize")
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
  mean, std = pair(per_channel(mean, "mean"), per_channel(std, "std"), "image.denormalize")
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

---------------------------------------------------------------- preprocessing presets

local IMAGENET_MEAN, IMAGENET_STD = { 0.485, 0.456, 0.406 }, { 0.229, 0.224, 0.225 }

-- The presets, by name: what each sets in a spec (see image.preprocess) and a line for help texts.
image.presets = {
  torchvision = { resize = 256, crop = 224, scale = { 0, 1 }, mean = IMAGENET_MEAN, std = IMAGENET_STD,
    doc = "shorter side to 256 (antialiased bilinear), centre crop 224, ImageNet mean/std: torchvision's eval transform (ResNet, VGG, DenseNet, MobileNet, ...)" },
  inception = { resize = 342, crop = 299, scale = { 0, 1 }, mean = IMAGENET_MEAN, std = IMAGENET_STD,
    doc = "shorter side to 342, centre crop 299, ImageNet mean/std: torchvision's Inception v3" },
  tflite = { scale = { -1, 1 },
    doc = "the whole picture squashed to the model's size (antialiased bilinear), scaled to [-1, 1]: the Coral / TF Lite MobileNets" },
  raw = { scale = { 0, 1 },
    doc = "the whole picture squashed to the model's size, values in [0, 1]" },
}

-- The preset names, sorted, and one line listing them with what they do.
function image.preset_names()
  local names = {}
  for k in pairs(image.presets) do names[#names + 1] = k end
  table.sort(names)
  return names
end
function image.preset_help()
  local lines = {}
  for _, k in ipairs(image.preset_names()) do lines[#lines + 1] = ("  %-12s %s"):format(k, image.presets[k].doc) end
  return table.concat(lines, "\n")
end

-- The keys of a spec that say how to preprocess (the rest, size and channels, come from the model file).
image.SPEC_KEYS = { "preset", "size", "resize", "crop", "scale", "mean", "std", "method", "antialias" }

-- A list of numbers from a number, a Lua list or a string "0.485,0.456,0.406"; n = how many are allowed
-- ({1, 3}: one or three). Errors name the key.
local function numbers(v, key, counts)
  local out = {}
  if type(v) == "number" then out = { v }
  elseif type(v) == "table" then
    for i, x in ipairs(v) do out[i] = x end
  elseif type(v) == "string" then
    for w in v:gmatch("[^,%s]+") do
      out[#out + 1] = tonumber(w) or error(("%s=%s: '%s' is not a number"):format(key, v, w), 0)
    end
  else
    error(("%s: expected numbers, got %s"):format(key, type(v)), 0)
  end
  for _, x in ipairs(out) do
    if type(x) ~= "number" then error(("%s: expected numbers, got a %s"):format(key, type(x)), 0) end
  end
  local ok = false
  for _, c in ipairs(counts) do ok = ok or #out == c end
  if not ok then
    local want = {}
    for _, c in ipairs(counts) do want[#want + 1] = tostring(c) end
    error(("%s=%s: expected %s number(s), got %d"):format(key, type(v) == "table" and table.concat(v, ",") or
      tostring(v), table.concat(want, " or "), #out), 0)
  end
  return out
end

-- A size {h, w} from a number (square), {h, w} or "h,w" / "h"; positive integers.
local function hw(v, key)
  local n = numbers(v, key, { 1, 2 })
  local h, w = n[1], n[2] or n[1]
  if math.type(h) ~= "integer" and h == math.floor(h) then h = math.tointeger(h) end
  if math.type(w) ~= "integer" and w == math.floor(w) then w = math.tointeger(w) end
  if math.type(h) ~= "integer" or math.type(w) ~= "integer" or h < 1 or w < 1 then
    error(("%s: expected positive integers, got %s"):format(key, table.concat(n, ",")), 0)
  end
  return { h, w }
end

-- image.input_spec(opts [, base]) -> spec: the preprocessing of a model input, resolved. base is what
-- the model records (model.input_spec: size, channels, maybe a preset or scale / mean / std); opts
-- holds what the user gives: preset = name, then any of size, resize, crop, scale, mean, std (numbers,
-- lists or strings such as "224", "256", "-1,1", "0.485,0.456,0.406"), method, antialias, which override
-- the preset's values. Empty strings count as not given. A preset whose crop differs from a
-- recorded size is an error naming both (give size= or crop= to choose). The result:
--   { preset =, size = {h, w} | nil, channels =, resize = n | {h, w} | nil, crop = {h, w} | nil,
--     scale = {lo, hi}, mean = {...} | nil, std = {...} | nil, method = "bilinear", antialias = true }
function image.input_spec(opts, base)
  opts = opts or {}
  local given = {}
  for _, k in ipairs(image.SPEC_KEYS) do
    local v = opts[k]
    if v ~= nil and v ~= "" then given[k] = v end
  end
  for k in pairs(opts) do
    local known = k == "channels"
    for _, name in ipairs(image.SPEC_KEYS) do known = known or k == name end
    if not known then
      error(("input spec: unknown key '%s' (known: %s, channels)"):format(k, table.concat(image.SPEC_KEYS, ", ")), 0)
    end
  end
  local spec = {}
  for k, v in pairs(base or {}) do spec[k] = v end
  local preset_name = given.preset
  if preset_name then
    local p = image.presets[preset_name]
    if not p then
      error(("preset=%s: unknown preset (known: %s)"):format(tostring(preset_name),
        table.concat(image.preset_names(), ", ")), 0)
    end
    for _, k in ipairs { "resize", "crop", "scale", "mean", "std", "method", "antialias" } do spec[k] = p[k] end
    spec.preset = preset_name
  end
  if given.size then spec.size = hw(given.size, "size") end
  if given.resize then
    local r = numbers(given.resize, "resize", { 1, 2 })
    spec.resize = #r == 1 and hw(r, "resize")[1] or hw(r, "resize")
  end
  if given.crop then spec.crop = hw(given.crop, "crop") end
  if given.scale then spec.scale = numbers(given.scale, "scale", { 2 }) end
  if given.mean then spec.mean = numbers(given.mean, "mean", { 1, 3 }) end
  if given.std then spec.std = numbers(given.std, "std", { 1, 3 }) end
  if given.method then spec.method = given.method end
  if given.antialias ~= nil then spec.antialias = given.antialias end
  if opts.channels then spec.channels = opts.channels end
  if type(spec.crop) == "number" then spec.crop = { spec.crop, spec.crop } end
  -- the size the model sees: the crop when there is one
  if spec.crop and spec.crop ~= true then
    if spec.size and not given.size and (spec.size[1] ~= spec.crop[1] or spec.size[2] ~= spec.crop[2]) then
      local r = type(spec.resize) == "number" and math.floor(spec.size[1] * spec.resize / spec.crop[1] + 0.5)
      error(("%s %dx%d but the model takes %dx%d (give crop=%d%s)"):format(
        given.crop and "crop=" .. given.crop .. " crops" or ("preset %s crops"):format(spec.preset),
        spec.crop[1], spec.crop[2], spec.size[1], spec.size[2], spec.size[1],
        r and (" resize=%d for the same proportions"):format(r) or ""), 0)
    end
    if given.size and not given.crop and not (spec.size[1] == spec.crop[1] and spec.size[2] == spec.crop[2]) then
      spec.crop = { spec.size[1], spec.size[2] } -- size= wins over a preset's crop
    end
    spec.size = { spec.crop[1], spec.crop[2] }
  end
  for _, k in ipairs { "mean", "std" } do
    if spec[k] and spec.channels and #spec[k] ~= 1 and #spec[k] ~= spec.channels then
      error(("%s has %d values but the model takes %d channel(s)"):format(k, #spec[k], spec.channels), 0)
    end
  end
  spec.scale = spec.scale or { 0, 1 }
  spec.method = spec.method or "bilinear"
  if spec.antialias == nil then spec.antialias = true end
  return spec
end

-- Resizes a (C, H, W) picture as spec says: method, antialiased when shrinking unless antialias = false.
local function spec_resize(img, h, w, spec)
  local s = core.shape(img)
  if s[2] == h and s[3] == w then return img end
  local method = spec.method or "bilinear"
  if method == "bilinear" and spec.antialias ~= false then method = "antialias" end
  return core.image_resize(img, h, w, method, false)
end

-- image.preprocess(img, spec) -> x (1, C, h, w) as the model takes it, and the picture the model sees
-- (C, h, w) in [0, 1] (after resizing and cropping, before scaling), for drawing maps over.
-- spec: a preset name (spec.preset) and/or the keys image.input_spec resolves, in this order:
--   channels = 1 | 3           convert (alpha is always dropped);
--   resize = n                 the shorter side to n, the longer to floor(n * long / short) (torchvision's
--                              Resize(n)); resize = {h, w}: exactly that size;
--   crop = {h, w} | n          the centre window, as torchvision's CenterCrop (crop = true: resize the
--                              shorter side to cover size, then crop size);
--   size = {h, w}              with no resize and no crop: the whole picture squashed to {h, w};
--   scale = {lo, hi}           [0, 1] mapped to [lo, hi] (default {0, 1}); then mean, std per channel.
-- Resizing is bilinear (spec.method: "bilinear" | "area" | "nearest"), antialiased when shrinking
-- unless spec.antialias = false, in C (src/resample.c).
function image.preprocess(img, spec)
  spec = spec or {}
  if spec.preset and not spec.scale then -- a bare {preset = name, ...}: fill in the preset
    local opts = { channels = spec.channels }
    for _, k in ipairs(image.SPEC_KEYS) do opts[k] = spec[k] end
    spec = image.input_spec(opts)
  end
  img = drop_alpha(image.chw(img, "image.preprocess"))
  if spec.channels == 3 then img = core.image_to_rgb(img)
  elseif spec.channels == 1 then img = core.image_to_gray(img) end
  local s = core.shape(img)
  local crop = spec.crop
  if type(crop) == "number" then crop = { crop, crop } end
  if type(spec.resize) == "number" then
    local short, n = math.min(s[2], s[3]), spec.resize
    local long = n * math.max(s[2], s[3]) // short
    if s[2] <= s[3] then img = spec_resize(img, n, long, spec) else img = spec_resize(img, long, n, spec) end
  elseif type(spec.resize) == "table" then
    img = spec_resize(img, spec.resize[1], spec.resize[2], spec)
  elseif crop == true and spec.size then
    local h, w = spec.size[1], spec.size[2]
    local k = math.max(h, w) / math.min(s[2], s[3])
    img = spec_resize(img, math.max(h, math.floor(s[2] * k + 0.5)), math.max(w, math.floor(s[3] * k + 0.5)), spec)
  elseif not crop and spec.size then
    img = spec_resize(img, spec.size[1], spec.size[2], spec)
  end
  if crop == true then crop = spec.size end
  if crop then
    local r = core.shape(img)
    if crop[1] > r[2] or crop[2] > r[3] then
      error(("image.preprocess: crop %dx%d does not fit in the resized picture %dx%d (give a larger resize=)")
        :format(crop[1], crop[2], r[2], r[3]), 2)
    end
    img = image.center_crop(img, crop[1], crop[2])
  end
  local shown, x = img, img
  if spec.scale then
    local lo, hi = spec.scale[1], spec.scale[2]
    if lo ~= 0 or hi ~= 1 then x = core.image_channel_affine(x, hi - lo, lo) end
  end
  if spec.mean or spec.std then x = image.normalize(x, spec.mean or 0, spec.std or 1) end
  if x == shown then x = core.clone(x) end
  return image.to_batch(x), shown
end

-- image.unprocess(x, spec) -> (C, h, w) in [0, 1]: a model input (1, C, h, w) back as a picture (mean,
-- std and scale undone, clamped), for showing inputs a method changed (Deep Dream, class models).
function image.unprocess(x, spec)
  spec = spec or {}
  local img = image.chw(x, "image.unprocess")
  if spec.mean or spec.std then img = image.denormalize(img, spec.mean or 0, spec.std or 1) end
  local lo, hi = table.unpack(spec.scale or { 0, 1 })
  return ((img - lo) / (hi - lo)):clamp(0, 1)
end

-- image.slic(img [, {n_segments = 50, compactness = 10, max_iter = 10, sigma = 0,
-- enforce_connectivity = true}]) -> int64 (H, W) superpixel labels 1..K (SLIC in CIELAB; deterministic).
function image.slic(img, opts)
  img = drop_alpha(image.chw(img, "image.slic"))
  return core.slic(img, opts)
end

return image
