-- ROAD: RemOve And Debias (Rong, Leemann, Borisov, Kasneci & Kasneci 2022, "A Consistent and
-- Efficient Evaluation Strategy for Attribution Methods", ICML; reference code
-- github.com/tleemann/road_evaluation). Deletion-style faithfulness without the shortcut a fixed
-- fill value gives away: the removed pixels are filled by noisy linear imputation, so the shape of
-- the mask no longer tells the model which pixels were removed.
--
-- road_impute(x, keep, opts) -> (F, C, H, W): the noisy linear imputation. Every removed pixel takes the
--   weighted mean of its 8 neighbours inside the image (1/6 for the 4 direct ones, 1/12 for the
--   diagonals), all removed pixels at once: one sparse linear system per picture and channel, solved
--   here by conjugate gradients with a diagonal preconditioner (the reference builds it with scipy
--   and calls spsolve); then N(0, noise^2) is added to the removed pixels. Kept pixels are unchanged;
--   a picture with nothing kept is filled with 0 (+ noise).
--   x (1, C, H, W) or (C, H, W); keep (H, W) or (F, 1, H, W): 1 = kept, 0 = removed.
--   opts: noise = 0.01 (in the units of x), tol = 1e-6 (relative residual), max_iter = 20 (H + W) + 100.
--
-- road(model, x, map, opts) -> morf, lerf, curves, target. The pixels are ranked by the map (summed
--   over channels when it has them, min-max normalised, ties broken by 1e-4 N(0, 1) as the reference
--   does) and, for each fraction p: MoRF removes the floor(p HW) most relevant pixels, LeRF the
--   HW - floor((1 - p) HW) least relevant ones (the reference's LeRF at th_p = 1 - p); the removed
--   pixels are imputed and the target's probability recorded. A faithful map makes MoRF fall fast
--   (low `morf`, the curve's mean) and LeRF stay high (high `lerf`). curves = {fractions =, morf =
--   {...}, lerf = {...}}. x (1, C, H, W); map with H*W values, or (1, C, H, W).
--   opts: target = top class; fractions = {0.1, 0.2, ..., 0.9}; noise = 0.01; order = "map" |
--   "random" (a random ranking: the baseline to beat); tie_noise = 1e-4; probabilities = true (false:
--   raw scores; a plain function should return scores); batch_size = 10 (pictures per forward);
--   tol = 1e-6, max_iter = 20 (H + W) + 100 as road_impute.
-- Both draw from lumen's seeded generator (noise, ties, random order): the same seed, the same numbers.
local lumen = require "lumen"
local common = require "lumen.explain.common"

local M = {}

local IMPUTE_OPTIONS = common.options("road_impute", {
  noise = { 0.01, "number >= 0" }, tol = { 1e-6, "number > 0" }, max_iter = { nil, "integer >= 1" },
})
local OPTIONS = common.options("road", {
  target = { nil, "target" }, fractions = { nil, "table" }, noise = { 0.01, "number >= 0" },
  order = { "map", "'map' | 'random'" }, tie_noise = { 1e-4, "number >= 0" }, probabilities = { true, "boolean" },
  batch_size = { 10, "integer >= 1" }, tol = { 1e-6, "number > 0" }, max_iter = { nil, "integer >= 1" },
})

-- The neighbour weights as a 3x3 convolution kernel (1, 1, 3, 3).
local function kernel()
  local d, s = 1 / 12, 1 / 6
  return lumen.tensor { { { { d, s, d }, { s, 0, s }, { d, s, d } } } }
end

-- conv of every (picture, channel) plane of v (F, C, H, W) with the kernel, zero outside the image.
local function neighbours(v, k)
  local F, C, H, W = table.unpack(v.shape)
  return lumen.conv2d(v:reshape { F * C, 1, H, W }, k, { padding = 1 }):reshape { F, C, H, W }
end

-- Per-(picture, channel) sums of a * b: (F, C, 1, 1).
local function dots(a, b) return (a * b):sum({ 3, 4 }, true) end

function M.road_impute(x, keep, opts)
  local o = IMPUTE_OPTIONS(opts)
  if #x.shape == 3 then x = x:unsqueeze(1) end
  if #x.shape ~= 4 or x.shape[1] ~= 1 then
    error(("road_impute: x must be (1, C, H, W) or (C, H, W), got %s"):format(lumen.shape_str(x)), 2)
  end
  local _, C, H, W = table.unpack(x.shape)
  if #keep.shape == 2 and keep.shape[1] == H and keep.shape[2] == W then keep = keep:reshape { 1, 1, H, W } end
  local ks = keep.shape
  if #ks ~= 4 or ks[2] ~= 1 or ks[3] ~= H or ks[4] ~= W then
    error(("road_impute: keep must be (%d, %d) or (F, 1, %d, %d), got %s"):format(H, W, H, W, lumen.shape_str(keep)), 2)
  end
  local noise, tol = o.noise, o.tol
  local max_iter = o.max_iter or 20 * (H + W) + 100
  local F = ks[1]
  return lumen.no_grad(function()
    keep = keep:float():gt(0.5):float()
    local miss = 1 - keep -- (F, 1, H, W)
    local xf = x:detach():expand { F, C, H, W } * keep -- kept pixels, 0 where removed
    local k = kernel()
    local diag = neighbours(lumen.ones { 1, 1, H, W }, k) -- (1, 1, H, W): weight of the in-image neighbours
    local function apply(v) return (diag * v - neighbours(v, k)) * miss end -- the system's matrix on v
    local b = neighbours(xf, k) * miss
    local u = lumen.zeros { F, C, H, W }
    local r = b
    local z = r / diag
    local p = z
    local rz = dots(r, z)
    local bb = lumen.dot64(b, b)
    local iter = 0
    while lumen.dot64(r, r) > tol * tol * bb and bb > 0 do
      iter = iter + 1
      if iter > max_iter then
        error(("road_impute: conjugate gradients did not reach tol %g in %d iterations (residual %g)"):format(
          tol, max_iter, math.sqrt(lumen.dot64(r, r) / bb)), 3)
      end
      local ap = apply(p)
      local den = dots(p, ap)
      local alpha = lumen.where(den:gt(0), rz / (den + den:le(0)), 0) -- 0 for planes already solved
      u = u + alpha * p
      r = r - alpha * ap
      z = r / diag
      local rz_new = dots(r, z)
      local beta = lumen.where(rz:gt(0), rz_new / (rz + rz:le(0)), 0)
      p = z + beta * p
      rz = rz_new
    end
    if noise > 0 then u = u + lumen.randn { F, C, H, W } * noise end
    return xf + u * miss
  end)
end

-- The pixel ranks (float (H*W), 1 = most relevant) of a map, as the reference orders them.
local function ranks(map, hw, opts)
  if opts.order == "random" then return common.pixel_ranks(nil, hw) end
  local m = map:numel() == hw and map:reshape { hw } or map:sum(2):reshape { hw } -- (1, C, H, W): channels summed
  local lo, hi = m:min_all(), m:max_all()
  m = (m - lo) / (hi - lo + 1e-5)
  local tie = opts.tie_noise
  if tie > 0 then m = m + lumen.randn { hw } * tie end
  return common.pixel_ranks(m, hw)
end

function M.road(model, x, map, opts)
  opts = OPTIONS(opts, model)
  common.single(x, "road")
  local _, C, H, W = table.unpack(x.shape)
  local hw = H * W
  if opts.order ~= "random" and map:numel() ~= hw and map:numel() ~= C * hw then
    error(("road: the map has %d values; expected %d (H*W) or %d (C*H*W)"):format(map:numel(), hw, C * hw), 2)
  end
  local fractions = opts.fractions or { 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9 }
  for _, f in ipairs(fractions) do
    if type(f) ~= "number" or f < 0 or f > 1 then error(("road: fraction %s outside [0, 1]"):format(tostring(f)), 2) end
  end
  local function probs(t) return lumen.no_grad(common.scores, model, t, opts) end -- softmax unless probabilities = false
  local target = common.targets(probs(x), opts.target)[1]
  local rank = ranks(map, hw, opts)
  local masks = {}
  for i, f in ipairs(fractions) do
    masks[i] = rank:gt(math.floor(hw * f)):reshape { 1, 1, H, W } -- MoRF: the most relevant removed
    masks[#fractions + i] = rank:le(math.floor(hw * (1 - f))):reshape { 1, 1, H, W } -- LeRF: only the most relevant kept
  end
  local imputed = M.road_impute(x, lumen.cat(masks, 1), { noise = opts.noise, tol = opts.tol, max_iter = opts.max_iter })
  local values = {}
  common.batches(#masks, opts.batch_size, function(first, n)
    local p = probs(imputed:narrow(1, first, n))
    for j = 1, n do values[first + j - 1] = p:get { j, target } end
  end, "road")
  local curves = { fractions = fractions, morf = {}, lerf = {} }
  local sm, sl = 0, 0
  for i = 1, #fractions do
    curves.morf[i], curves.lerf[i] = values[i], values[#fractions + i]
    sm, sl = sm + values[i], sl + values[#fractions + i]
  end
  return sm / #fractions, sl / #fractions, curves, target
end

return M
