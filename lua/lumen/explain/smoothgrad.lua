-- SmoothGrad (Smilkov, Thorat, Kim, Viégas & Wattenberg 2017, "SmoothGrad: removing noise by adding noise").
-- Averages gradients of the target score at n noisy copies x + N(0, sigma^2), with
-- sigma = noise * (max(x) - min(x)).
-- opts: target = top class; n = 50; noise = 0.15; batch_size = 10 (noisy copies per forward);
--       variant = "mean" | "squared" (mean of g^2) | "vargrad" (variance of g); abs = false.
-- x is one input (1, ...). Returns the map shaped like x and the target.
local lumen = require "lumen"
local common = require "lumen.explain.common"

return function(model, x, opts)
  opts = opts or {}
  local n, noise, bs = opts.n or 50, opts.noise or 0.15, opts.batch_size or 10
  local variant = opts.variant or "mean"
  if variant ~= "mean" and variant ~= "squared" and variant ~= "vargrad" then
    error("smoothgrad: variant must be 'mean', 'squared' or 'vargrad', got " .. tostring(variant), 2)
  end
  local sigma = noise * (x:max_all() - x:min_all())
  local target = opts.target
  if target == nil then
    target = common.targets(lumen.no_grad(common.scores, model, x, opts))[1]
  end
  local sum, sumsq
  common.batches(n, bs, function(_, count)
    local xs = common.repeat_batch(x, count)
    xs = xs + lumen.randn(xs.shape) * sigma
    local g = common.input_gradient(model, xs, target, opts)
    local gs = g:sum(1, true)
    sum = sum and sum + gs or gs
    if variant ~= "mean" then
      local g2 = (g * g):sum(1, true)
      sumsq = sumsq and sumsq + g2 or g2
    end
  end, "smoothgrad")
  local mean = sum / n
  local out
  if variant == "mean" then out = mean
  elseif variant == "squared" then out = sumsq / n
  else out = sumsq / n - mean * mean end
  if opts.abs then out = out:abs() end
  return out, target
end
