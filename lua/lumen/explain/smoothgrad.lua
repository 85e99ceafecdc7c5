-- SmoothGrad (Smilkov, Thorat, Kim, Viégas & Wattenberg 2017, "SmoothGrad: removing noise by adding noise").
-- Averages the gradients of the target score at n noisy copies x + N(0, sigma^2), with
-- sigma = noise * (max(x) - min(x)), drawn from lumen's seeded RNG.
-- opts: target = top class; n = 50; noise = 0.15; batch_size = 10 (noisy copies per forward);
--       variant = "mean" | "squared" (mean of g^2) | "vargrad" (variance of g); abs = false;
--       probabilities = false.
-- x is one input (1, ...). Returns the map shaped like x and the target.
local lumen = require "lumen"
local common = require "lumen.explain.common"

local M = {}

local OPTIONS = common.options("smoothgrad", {
  target = { nil, "target" }, n = { 50, "integer >= 1" }, noise = { 0.15, "number >= 0" },
  batch_size = { 10, "integer >= 1" }, variant = { "mean", "'mean' | 'squared' | 'vargrad'" },
  abs = { false, "boolean" }, probabilities = { false, "boolean" },
})

function M.smoothgrad(model, x, opts)
  local o = OPTIONS(opts, model)
  common.single(x, "smoothgrad")
  local n, variant = o.n, o.variant
  local sigma = o.noise * (x:max_all() - x:min_all())
  local target = common.targets(lumen.no_grad(common.scores, model, x, o), o.target, "smoothgrad")[1]
  local sum, sumsq = lumen.zeros_like(x), lumen.zeros_like(x)
  common.batches(n, o.batch_size, function(_, count)
    local xs = common.repeat_batch(x, count)
    local g = common.input_gradient(model, xs + lumen.randn(xs.shape) * sigma, target, o)
    sum = sum + g:sum(1, true)
    if variant ~= "mean" then sumsq = sumsq + (g * g):sum(1, true) end
  end, "smoothgrad")
  local mean = sum / n
  local out = variant == "mean" and mean or variant == "squared" and sumsq / n or sumsq / n - mean * mean
  if o.abs then out = out:abs() end
  return out, target
end

return M
