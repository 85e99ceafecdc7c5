-- KernelSHAP (Lundberg & Lee 2017, "A Unified Approach to Interpreting Model Predictions").
-- Shapley values phi_j of M features for f_c at x, against a background set: coalitions z in {0,1}^M
-- are evaluated as f(b + z*(x - b)) averaged over background rows b, and phi solves the weighted least
-- squares fit with the Shapley kernel pi(z) = (M-1) / (C(M,|z|) |z| (M-|z|)), subject to efficiency:
-- sum(phi) = f(x) - E_b[f(b)] (enforced exactly by eliminating one variable).
-- Coalitions: all 2^M - 2 when that is <= nsamples (the result is then the exact Shapley values);
-- otherwise nsamples paired samples (z and its complement), sizes drawn from the kernel.
-- opts: target = top class; baseline = tensor (1, ...) | background = tensor (K, ...) (default: zeros);
--       features = group ids (see lumen.explain.features; default: every element); nsamples = 2048;
--       batch_size = 64; probabilities = false.
-- Returns phi shaped like x (each element carries its feature's value), the base value E_b[f(b)], and
-- the per-feature values as a Lua array.
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
local function coalitions(M, nsamples)
  local Z, W = {}, {}
  if M <= 30 and 2 ^ M - 2 <= nsamples then
    for code = 1, 2 ^ M - 2 do
      local z, s = {}, 0
      for j = 1, M do
        z[j] = (code >> (j - 1)) & 1
        s = s + z[j]
      end
      Z[#Z + 1], W[#W + 1] = z, (M - 1) / (choose(M, s) * s * (M - s))
    end
    return Z, W
  end
  local sizes, total = {}, 0
  for s = 1, M - 1 do
    total = total + (M - 1) / (s * (M - s))
    sizes[s] = total
  end
  for _ = 1, math.max(1, nsamples // 2) do
    local u, s = lumen.random() * total, 1
    while sizes[s] < u do s = s + 1 end
    local perm = lumen.randperm(M)
    local z, zc = {}, {}
    for j = 1, M do z[j], zc[j] = 0, 1 end
    for k = 1, s do z[perm[k]], zc[perm[k]] = 1, 0 end
    Z[#Z + 1], W[#W + 1] = z, 1
    Z[#Z + 1], W[#W + 1] = zc, 1
  end
  return Z, W
end

return function(model, x, opts)
  opts = opts or {}
  if x.shape[1] ~= 1 then error("kernel_shap: explain one input at a time (batch of 1)", 2) end
  local bg = opts.background or opts.baseline or lumen.zeros_like(x)
  local K = bg.shape[1]
  local ids, M = features.ids(x, opts.features)
  if M > 4096 then
    error(("kernel_shap: %d features is too many for a local fit; group them (opts.features, e.g. superpixels)"):format(M), 2)
  end
  local fx_all = lumen.no_grad(common.scores, model, x, opts)
  local target = common.targets(fx_all, opts.target)[1]
  local fx = fx_all:get { 1, target }
  local fb = lumen.no_grad(common.scores, model, bg, opts)
  local base = 0
  for k = 1, K do base = base + fb:get { k, target } end
  base = base / K
  local delta = fx - base

  local Z, W = coalitions(M, opts.nsamples or 2048)
  local y = {}
  local diff = x - bg -- (K, ...)
  local per = math.max(1, (opts.batch_size or 64) // K) -- coalitions per forward
  common.batches(#Z, per, function(first, n)
    local rows = {}
    for j = 1, n do rows[j] = Z[first + j - 1] end
    local masks = features.masks(lumen.tensor(rows), ids, x) -- (n, ...)
    -- every coalition against every background row: (n*K, ...)
    local xs = {}
    for j = 1, n do xs[j] = bg + masks:narrow(1, j, 1) * diff end
    local s = lumen.no_grad(common.scores, model, lumen.cat(xs, 1), opts)
    for j = 1, n do
      local acc = 0
      for k = 1, K do acc = acc + s:get { (j - 1) * K + k, target } end
      y[first + j - 1] = acc / K - base
    end
  end, "kernel shap")

  local phi = {}
  if M == 1 then
    phi[1] = delta
  else
    local A, r = {}, {}
    for i, z in ipairs(Z) do
      local row = {}
      for j = 1, M - 1 do row[j] = z[j] - z[M] end
      A[i], r[i] = row, y[i] - z[M] * delta
    end
    local beta = linalg.ridge(A, r, W, 0, false)
    local rest = 0
    for j = 1, M - 1 do phi[j], rest = beta[j], rest + beta[j] end
    phi[M] = delta - rest
  end
  return features.spread(phi, ids, x), base, phi
end
