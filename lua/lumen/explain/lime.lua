-- LIME (Ribeiro, Singh & Guestrin 2016, "Why Should I Trust You?"): a weighted linear model fitted to
-- the target score of perturbed copies of x; its coefficients explain the prediction locally.
-- Two samplers:
--   "switch" (images, token ids, or any input given segments): interpretable features (superpixels,
--     tokens, elements) switched on or off, z ~ Bernoulli(0.5) per feature, the first sample all on;
--     off features take the fill values. Kernel: sqrt(exp(-d^2 / width^2)) with d the cosine distance
--     between z and the all-on vector, width = 0.25 (LIME's image and text kernel).
--   "tabular" (default for float vectors (1, D) without segments): samples around the instance,
--     x + scale * N(0, I), the first sample x itself; the fit is on the standardised offsets (samples -
--     x) / scale, so a weight is the effect of one `scale` step (w_i scale_i for a linear model);
--     d = their euclidean norm, width = 0.75 sqrt(D) (LIME's tabular kernel).
-- Fit: weighted ridge regression with an unpenalised intercept (ridge = 1, sklearn's Ridge as in LIME).
-- opts: target = top class; segments = feature ids (an (H, W) map or see lumen.explain.features;
--       default for images (1, C, H, W): SLIC superpixels, n_segments = 50, compactness = 10; otherwise
--       every element, i.e. every token for token ids (1, T)); mode = "switch" | "tabular";
--       num_samples = 1000 (more than the number of features: the fit needs them); fill = "mean" (each
--       superpixel's mean colour, the image default) | "blur" (gaussian, blur_sigma = 5) | a number
--       (default 0, or pad_id = 1 for token ids); scale = number or tensor (1, D) (tabular; default the
--       column std of data (N, D), else 1); kernel = "exponential" | "uniform"; kernel_width (default
--       0.25 switch, 0.75 sqrt(D) tabular); ridge = 1; batch_size = 50; probabilities = false.
-- Returns per-feature weights (Lua array), the segment map (the (H, W) superpixels, else ids shaped like
-- x), the fit's weighted R^2, its intercept and the target.
-- lumen.explain.lime_picture(img, segments, weights [, {num = 5}]): img (C, H, W) with the `num` most
-- positive segments tinted green, the `num` most negative red, and the segment borders drawn: (3, H, W).
local lumen = require "lumen"
local common = require "lumen.explain.common"
local features = require "lumen.explain.features"
local linalg = require "lumen.linalg"

local M = {}

local OPTIONS = common.options("lime", {
  target = { nil, "target" }, segments = { nil, "tensor | 'superpixels'" }, mode = { nil, "'switch' | 'tabular'" },
  num_samples = { 1000, "integer >= 1" }, fill = { nil, "'mean' | 'blur' | number" }, pad_id = { 1, "integer >= 1" },
  blur_sigma = { 5, "number > 0" }, scale = { nil, "number | tensor" }, data = { nil, "tensor" },
  kernel = { "exponential", "'exponential' | 'uniform'" }, kernel_width = { nil, "number > 0" },
  ridge = { 1, "number >= 0" }, batch_size = { 50, "integer >= 1" }, n_segments = { 50, "integer >= 1" },
  compactness = { 10, "number > 0" }, probabilities = { false, "boolean" },
})
local PICTURE = common.options("lime_picture", { num = { 5, "integer >= 0" } })

-- The replacement values for switched-off features, shaped like x.
local function fill_values(x, ids, m, opts)
  local fill = opts.fill
  if fill == nil then
    fill = x:dtype() == "int64" and opts.pad_id or (#x.shape == 4 and "mean" or 0)
  end
  if type(fill) == "number" then return lumen.full_like(x, fill) end
  if fill == "blur" then return lumen.gaussian_blur(x, opts.blur_sigma) end
  local s = x.shape
  local C = #s == 4 and s[2] or 1 -- per channel for images
  local xr, idx = x:reshape { C, -1 }, ids:reshape { C, -1 }
  local sums = lumen.zeros { C, m }:scatter_add(2, idx, xr)
  local counts = lumen.zeros { C, m }:scatter_add(2, idx, lumen.ones_like(xr))
  return (sums / counts:clamp(1)):gather(2, idx):reshape(s)
end

local function weight(opts, d, width)
  if opts.kernel == "uniform" then return 1 end
  return math.sqrt(math.exp(-(d * d) / (width * width)))
end

-- Switch sampler: Z (n arrays of m 0/1), kernel weights, and make(first, count) -> the inputs.
local function switch_samples(x, ids, m, n, opts)
  local off = fill_values(x, ids, m, opts)
  local width = opts.kernel_width or 0.25
  local Z, W = {}, {}
  for s = 1, n do
    local z, on = {}, 0
    for j = 1, m do
      z[j] = (s == 1 or lumen.random() < 0.5) and 1 or 0
      on = on + z[j]
    end
    Z[s], W[s] = z, weight(opts, 1 - math.sqrt(on / m), width)
  end
  return Z, W, function(first, count)
    return features.mix(features.masks(lumen.tensor { table.unpack(Z, first, first + count - 1) }, ids, x), x, off)
  end
end

local function tabular_scale(x, opts)
  if opts.scale then return opts.scale end
  if not opts.data then return 1 end
  local sd = opts.data:std(1, false, true)
  return lumen.where(sd:gt(0), sd, 1)
end

-- Tabular sampler: Z = the standardised offsets, kernel weights, make(first, count) -> the inputs.
local function tabular_samples(x, n, opts)
  if #x.shape ~= 2 then
    error("lime: the tabular sampler needs a vector input (1, D), got " .. lumen.shape_str(x), 3)
  end
  local D = x:numel()
  local noise = lumen.zeros { 1, D } -- the first sample is x itself
  if n > 1 then noise = lumen.cat({ noise, lumen.randn { n - 1, D } }, 1) end
  local width = opts.kernel_width or 0.75 * math.sqrt(D)
  local Z, W = noise:totable(), {}
  for s = 1, n do
    local d2 = 0
    for j = 1, D do d2 = d2 + Z[s][j] ^ 2 end
    W[s] = weight(opts, math.sqrt(d2), width)
  end
  local scale = tabular_scale(x, opts)
  return Z, W, function(first, count) return x + noise:narrow(1, first, count) * scale end
end

function M.lime(model, x, opts)
  local o = OPTIONS(opts, model)
  common.single(x, "lime")
  local segments, what = o.segments, "segments"
  if (segments == nil and #x.shape == 4) or segments == "superpixels" then
    segments, what = features.superpixels(x, o), "superpixels"
  end
  local mode = o.mode or ((segments == nil and #x.shape == 2 and x:dtype() == "float32") and "tabular" or "switch")
  local ids, m = features.ids(x, segments)
  local n = o.num_samples
  if mode == "tabular" then m = x:numel() end
  if n <= m then
    error(("lime: num_samples = %d must be more than the %d features the fit has to weigh (%s)"):format(n, m,
      (segments and mode ~= "tabular") and what or "elements of the input"), 2)
  end
  local scores = lumen.no_grad(common.scores, model, x, o)
  local target = common.targets(scores, o.target, "lime")[1]
  local Z, W, make
  if mode == "tabular" then
    Z, W, make = tabular_samples(x, n, o)
  else
    Z, W, make = switch_samples(x, ids, m, n, o)
  end
  local y = {}
  common.batches(n, o.batch_size, function(first, count)
    local s = lumen.no_grad(common.scores, model, make(first, count), o)
    for j = 1, count do y[first + j - 1] = s:get { j, target } end
  end, "lime")
  local weights, intercept, r2 = linalg.ridge(Z, y, W, o.ridge)
  return weights, segments or ids:reshape(x.shape), r2, intercept, target
end

function M.lime_picture(img, segments, weights, opts)
  local num = PICTURE(opts).num
  img = lumen.image.chw(img, "lime_picture")
  local H, W = img.shape[2], img.shape[3]
  if img.shape[1] == 1 then img = img:expand { 3, H, W } end
  local order = {}
  for j = 1, #weights do order[j] = j end
  table.sort(order, function(a, b) return weights[a] > weights[b] end)
  local pos, neg = {}, {}
  for j = 1, #weights do pos[j], neg[j] = 0, 0 end
  for k = 1, math.min(num, #order) do
    local top, bottom = order[k], order[#order + 1 - k]
    if weights[top] > 0 then pos[top] = 1 end
    if weights[bottom] < 0 then neg[bottom] = 1 end
  end
  local flat = segments:reshape { H * W }
  local function plane(v) return lumen.tensor(v):index_select(1, flat):reshape { 1, H, W } end
  local p, q = plane(pos), plane(neg)
  local tint = lumen.cat({ q, p, lumen.zeros { 1, H, W } }, 1) -- red for negative, green for positive
  local alpha = (p + q) * 0.5
  return lumen.viz.mark_boundaries(img * (1 - alpha) + tint * alpha, segments)
end

return M
