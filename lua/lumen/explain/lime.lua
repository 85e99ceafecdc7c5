-- LIME (Ribeiro, Singh & Guestrin 2016, "Why Should I Trust You?"): a weighted linear model fitted to
-- the target score of perturbed copies of x, where each interpretable feature (superpixel, token,
-- or input element) is switched on or off.
-- Samples: z ~ Bernoulli(0.5) per feature, the first sample all on. Kernel: pi(z) = sqrt(exp(-d^2 /
-- width^2)) with d the cosine distance between z and the all-on vector (LIME's own kernel). Fit:
-- weighted ridge regression (ridge = 1, as LIME's default sklearn Ridge), intercept unpenalised.
-- opts: target = top class; segments = feature ids (an (H, W) map, or see lumen.explain.features;
--       default for (1, 3, H, W) images: SLIC superpixels with n_segments = 50, compactness = 10;
--       otherwise every element / token); num_samples = 1000; fill = "mean" (each superpixel's mean
--       colour) | "blur" | a number (for token ids: the padding id); kernel_width = 0.25;
--       kernel = "exponential" | "uniform"; ridge = 1; batch_size = 50; probabilities = false.
-- Returns per-feature weights (Lua array), the segment map, the fit's weighted R^2, the intercept.
local lumen = require "lumen"
local common = require "lumen.explain.common"
local features = require "lumen.explain.features"
local linalg = require "lumen.linalg"

local M = {}

-- The replacement values for switched-off features, shaped like x.
local function fill_values(x, ids, m, fill)
  if type(fill) == "number" then return lumen.full_like(x, fill) end
  if fill == "blur" then return lumen.gaussian_blur(x, 5) end
  if fill ~= "mean" then error("lime: fill must be 'mean', 'blur' or a number", 3) end
  -- mean of x over each feature's elements, per channel when x is an image
  local xs = x.shape
  local per_channel = #xs == 4
  local C = per_channel and xs[2] or 1
  local plane = x:numel() // C
  local sums, counts = {}, {}
  for k = 1, C * m do sums[k], counts[k] = 0, 0 end
  for e = 1, x:numel() do
    local c = per_channel and (e - 1) // plane or 0
    local k = c * m + ids:flat_get(e)
    sums[k], counts[k] = sums[k] + x:flat_get(e), counts[k] + 1
  end
  local out = lumen.zeros_like(x)
  for e = 1, x:numel() do
    local c = per_channel and (e - 1) // plane or 0
    local k = c * m + ids:flat_get(e)
    out:flat_set(e, sums[k] / counts[k])
  end
  return out
end

function M.lime(model, x, opts)
  opts = opts or {}
  if x.shape[1] ~= 1 then error("lime: explain one input at a time (batch of 1)", 2) end
  local segments = opts.segments
  if segments == nil and #x.shape == 4 and x.shape[2] == 3 then
    segments = lumen.viz.slic(x:squeeze(1), { n_segments = opts.n_segments or 50, compactness = opts.compactness or 10 })
  end
  local ids, m = features.ids(x, segments)
  local n = opts.num_samples or 1000
  local width = opts.kernel_width or 0.25
  local base = lumen.no_grad(common.scores, model, x, opts)
  local target = common.targets(base, opts.target)[1]
  local off = fill_values(x, ids, m, opts.fill or (segments and "mean" or 0))
  local diff = x - off

  local Z, W, y = {}, {}, {}
  for s = 1, n do
    local z, on = {}, 0
    for j = 1, m do
      z[j] = (s == 1 or lumen.random() < 0.5) and 1 or 0
      on = on + z[j]
    end
    local d = on > 0 and 1 - on / (math.sqrt(on) * math.sqrt(m)) or 1
    Z[s] = z
    W[s] = opts.kernel == "uniform" and 1 or math.sqrt(math.exp(-(d * d) / (width * width)))
  end
  common.batches(n, opts.batch_size or 50, function(first, count)
    local rows = {}
    for j = 1, count do rows[j] = Z[first + j - 1] end
    local xs = off + features.masks(lumen.tensor(rows), ids, x) * diff
    local s = lumen.no_grad(common.scores, model, xs, opts)
    for j = 1, count do y[first + j - 1] = s:get { j, target } end
  end, "lime")
  local weights, intercept, r2 = linalg.ridge(Z, y, W, opts.ridge or 1)
  return weights, segments or ids:reshape(x.shape), r2, intercept, target
end

-- A picture of the top `num` positive (green) and negative (red) segments over the image (3, H, W).
function M.picture(img, segments, weights, opts)
  opts = opts or {}
  local num = opts.num or 5
  local order = {}
  for j = 1, #weights do order[j] = j end
  table.sort(order, function(a, b) return math.abs(weights[a]) > math.abs(weights[b]) end)
  local H, W = img.shape[2], img.shape[3]
  local tint = lumen.zeros { 3, H, W }
  local alpha = lumen.zeros { 1, H, W }
  local chosen = {}
  for k = 1, math.min(num, #order) do chosen[order[k]] = weights[order[k]] > 0 and 2 or 1 end
  for e = 1, H * W do
    local c = chosen[segments:flat_get(e)]
    if c then
      tint:flat_set((c - 1) * H * W + e, 1) -- channel 1 red (negative) or 2 green (positive)
      alpha:flat_set(e, 0.5)
    end
  end
  local pic = img * (1 - alpha) + tint * alpha
  return lumen.viz.mark_boundaries(pic, segments)
end

return M
