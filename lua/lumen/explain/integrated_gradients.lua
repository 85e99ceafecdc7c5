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

local M = {}

local OPTIONS = common.options("integrated_gradients", {
  target = { nil, "target" }, steps = { 50, "integer >= 1" }, baseline = { "zeros", "'zeros' | 'blur' | tensor" },
  blur_sigma = { 5, "number > 0" }, batch_size = { 10, "integer >= 1" }, probabilities = { false, "boolean" },
})

local function make_baseline(x, o)
  local b = o.baseline
  if b == "zeros" then return lumen.zeros_like(x) end
  if b == "blur" then return lumen.gaussian_blur(x, o.blur_sigma) end
  if not lumen.same_shape(b, x) then
    error(("integrated_gradients: baseline shape %s differs from input %s"):format(lumen.shape_str(b),
      lumen.shape_str(x)), 3)
  end
  return b
end

function M.integrated_gradients(model, x, opts)
  local o = OPTIONS(opts, model)
  common.single(x, "integrated_gradients")
  local steps = o.steps
  local base = make_baseline(x, o)
  local ends = lumen.no_grad(common.scores, model, lumen.cat({ x, base }, 1), o) -- S(x), S(x')
  local target = common.targets(ends:narrow(1, 1, 1), o.target, "integrated_gradients")[1]
  local diff = x - base
  local shape = x.shape -- (count, 1, ...) for the per-point alphas and weights
  for d = 2, #shape do shape[d] = 1 end
  local total = lumen.zeros_like(x)
  common.batches(steps + 1, o.batch_size, function(first, count)
    local alphas, weights = common.trapezoid(first, count, steps)
    shape[1] = count
    local path = base + lumen.tensor(alphas):reshape(shape) * diff -- (count, ...)
    local g = common.input_gradient(model, path, target, o)
    total = total + (g * lumen.tensor(weights):reshape(shape)):sum(1, true)
  end, "integrated gradients")
  local attr = diff * total
  local gap = attr:sum_all() - (ends:get { 1, target } - ends:get { 2, target })
  return attr, gap, target
end

return M
