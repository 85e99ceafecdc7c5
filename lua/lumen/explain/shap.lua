-- KernelSHAP (Lundberg & Lee 2017, "A Unified Approach to Interpreting Model Predictions").
-- Shapley values phi_j of M features for the target score f_c at x. A coalition z in {0,1}^M keeps the
-- features with z_j = 1 from x and takes the others from a background row b; its value is
-- v(z) = mean_b f_c(z ? x : b). phi solves the weighted least-squares fit v(z) - E_b[f_c(b)] ≈ sum_j z_j phi_j
-- with the Shapley kernel pi(z) = (M-1) / (C(M,|z|) |z| (M-|z|)), under efficiency
-- sum_j phi_j = f_c(x) - E_b[f_c(b)], enforced exactly by eliminating phi_M.
-- Coalitions: all 2^M - 2 when that is <= nsamples (phi are then the exact Shapley values); otherwise
-- nsamples paired samples (z and its complement, the size drawn with the kernel's mass per size).
-- opts: target = top class; baseline = tensor (1, ...) | background = tensor (K, ...) (default one
--       baseline of zeros, or of pad_id = 1 for int64 token ids); features = group ids (see
--       lumen.explain.features: default every element of x, so tokens for token ids (1, T); "superpixels"
--       (n_segments = 50, compactness = 10) or an (H, W) map for images); nsamples = 2 M + 2048 (at least
--       2 M when sampled: complementary pairs); batch_size = 64 model rows per forward; probabilities = false.
-- Returns phi shaped like x (float32; every element carries its feature's value, so sum phi over
-- features, not elements), the base value E_b[f_c(b)], the per-feature values (a Lua array, float64)
-- and the target.
local lumen = require "lumen"
local common = require "lumen.explain.common"
local features = require "lumen.explain.features"
local linalg = require "lumen.linalg"

local function choose(n, k)
  local r = 1
  for i = 1, k do r = r * (n - k + i) / i end
  return r
end

-- Coalitions as Lua arrays of 0/1, with their regression weights.
local function coalitions(m, nsamples)
  local Z, W = {}, {}
  if m <= 30 and (1 << m) - 2 <= nsamples then
    for code = 1, (1 << m) - 2 do
      local z, s = {}, 0
      for j = 1, m do
        z[j] = (code >> (j - 1)) & 1
        s = s + z[j]
      end
      Z[code], W[code] = z, (m - 1) / (choose(m, s) * s * (m - s))
    end
    return Z, W
  end
  local cumulative, total = {}, 0
  for s = 1, m - 1 do
    total = total + (m - 1) / (s * (m - s))
    cumulative[s] = total
  end
  for _ = 1, math.max(1, nsamples // 2) do
    local u, s = lumen.random() * total, 1
    while cumulative[s] < u do s = s + 1 end
    local perm = lumen.randperm(m)
    local z, zc = {}, {}
    for j = 1, m do z[j], zc[j] = 0, 1 end
    for k = 1, s do z[perm[k]], zc[perm[k]] = 1, 0 end
    Z[#Z + 1], W[#W + 1] = z, 1
    Z[#Z + 1], W[#W + 1] = zc, 1
  end
  return Z, W
end

-- Mean over the K rows of each group of K consecutive rows of scores (n*K, classes), column c.
local function group_means(s, c, n, K)
  return s:narrow(2, c, 1):reshape { n, K }:mean(2)
end

local M = {}

local OPTIONS = common.options("kernel_shap", {
  target = { nil, "target" }, baseline = { nil, "tensor" }, background = { nil, "tensor" },
  features = { nil, "tensor | 'superpixels'" }, pad_id = { 1, "integer >= 1" }, nsamples = { nil, "integer >= 1" },
  batch_size = { 64, "integer >= 1" }, n_segments = { 50, "integer >= 1" }, compactness = { 10, "number > 0" },
  probabilities = { false, "boolean" },
})

function M.kernel_shap(model, x, opts)
  local o = OPTIONS(opts, model)
  common.single(x, "kernel_shap")
  if o.baseline and o.background then
    error("kernel_shap: give baseline (one row) or background (K rows), not both", 2)
  end
  local bg = o.background or o.baseline
    or (x:dtype() == "int64" and lumen.full_like(x, o.pad_id) or lumen.zeros_like(x))
  local K = bg.shape[1]
  local ids, m = features.ids(x, o.features, o)
  if m > 4096 then
    error(("kernel_shap: %d features are too many for a local fit; group them (opts.features)"):format(m), 2)
  end
  local nsamples = o.nsamples or 2 * m + 2048
  -- sampled coalitions come in complementary pairs, which add one direction each to the fit of M - 1 values
  if m > 1 and (m > 30 or (1 << m) - 2 > nsamples) and nsamples < 2 * m then
    error(("kernel_shap: nsamples = %d is too few for %d features: give at least %d (or group the features)")
      :format(nsamples, m, 2 * m), 2)
  end
  local fx_all = lumen.no_grad(common.scores, model, x, o)
  local target = common.targets(fx_all, o.target, "kernel_shap")[1]
  local fx = fx_all:get { 1, target }
  local base = group_means(lumen.no_grad(common.scores, model, bg, o), target, 1, K):item()
  local delta = fx - base

  local Z, W = coalitions(m, nsamples)
  -- coalition j against background row k is row (j-1)*K + k: masks (n, 1, ...) mix x (1, 1, ...)
  -- with bg (1, K, ...) into (n, K, ...)
  local xs, bgs = x.shape, bg.shape
  table.insert(xs, 1, 1)
  table.insert(bgs, 1, 1)
  local x1, bg1 = x:reshape(xs), bg:reshape(bgs)
  local y = {}
  common.batches(#Z, math.max(1, o.batch_size // K), function(first, n)
    local masks = features.masks(lumen.tensor { table.unpack(Z, first, first + n - 1) }, ids, x):unsqueeze(2)
    local batch = features.mix(masks, x1, bg1)
    local shape = batch.shape
    table.remove(shape, 1)
    shape[1] = n * K
    local v = group_means(lumen.no_grad(common.scores, model, batch:reshape(shape), o), target, n, K)
    for j = 1, n do y[first + j - 1] = v:flat_get(j) - base end
  end, "kernel shap")

  local phi = { delta }
  if m > 1 then
    local A, r = {}, {}
    for i, z in ipairs(Z) do
      local row = {}
      for j = 1, m - 1 do row[j] = z[j] - z[m] end
      A[i], r[i] = row, y[i] - z[m] * delta
    end
    phi = linalg.ridge(A, r, W, 0, false)
    local rest = 0
    for j = 1, m - 1 do rest = rest + phi[j] end
    phi[m] = delta - rest
  end
  return features.spread(phi, ids, x), base, phi, target
end

return M
