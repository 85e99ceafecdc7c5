-- Integrated Gradients (Sundararajan, Taly & Yan 2017, "Axiomatic Attribution for Deep Networks").
-- attr = (x - x') * integral_0^1 dS_c/dx (x' + a (x - x')) da, for a baseline x'.
-- Quadrature: the trapezoid rule on steps+1 points a_k = k/steps, k = 0..steps (weights 1/(2 steps) at
-- the ends, 1/steps inside); exact when the gradient is linear in a along the path.
-- opts: target = top class; steps = 50; baseline = "zeros" | "blur" (Gaussian, sigma = blur_sigma = 5)
--       | a tensor shaped like x; batch_size = 10 (path points per forward); probabilities = false.
-- x is one input (1, ...). Returns attr (shaped like x), gap = sum(attr) - (S_c(x) - S_c(x'))
-- (completeness: near 0) and the target.
local lumen = require "lumen"
local common = require "lumen.explain.common"

local function make_baseline(x, b, opts)
  if b == nil or b == "zeros" then return lumen.zeros_like(x) end
  if b == "blur" then return lumen.gaussian_blur(x, opts.blur_sigma or 5) end
  if lumen.is_tensor(b) then
    if not lumen.same_shape(b, x) then
      error(("integrated_gradients: baseline shape %s differs from input %s"):format(lumen.shape_str(b),
        lumen.shape_str(x)), 3)
    end
    return b
  end
  error("integrated_gradients: baseline must be 'zeros', 'blur' or a tensor, got " .. tostring(b), 3)
end

return function(model, x, opts)
  opts = opts or {}
  common.single(x, "integrated_gradients")
  local steps = opts.steps or 50
  if math.type(steps) ~= "integer" or steps < 1 then
    error("integrated_gradients: steps must be a positive integer, got " .. tostring(steps), 2)
  end
  local base = make_baseline(x, opts.baseline, opts)
  local ends = lumen.no_grad(common.scores, model, lumen.cat({ x, base }, 1), opts) -- S(x), S(x')
  local target = common.targets(ends:narrow(1, 1, 1), opts.target)[1]
  local diff = x - base
  local shape = x.shape -- (count, 1, ...) for the per-point alphas and weights
  for d = 2, #shape do shape[d] = 1 end
  local total = lumen.zeros_like(x)
  common.batches(steps + 1, opts.batch_size or 10, function(first, count)
    local alphas, weights = common.trapezoid(first, count, steps)
    shape[1] = count
    local path = base + lumen.tensor(alphas):reshape(shape) * diff -- (count, ...)
    local g = common.input_gradient(model, path, target, opts)
    total = total + (g * lumen.tensor(weights):reshape(shape)):sum(1, true)
  end, "integrated gradients")
  local attr = diff * total
  local gap = attr:sum_all() - (ends:get { 1, target } - ends:get { 2, target })
  return attr, gap, target
end
