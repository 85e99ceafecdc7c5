-- Integrated Gradients (Sundararajan, Taly & Yan 2017, "Axiomatic Attribution for Deep Networks").
-- attr = (x - x') * integral_0^1 dS_c/dx (x' + a (x - x')) da, for a baseline x'.
-- Quadrature: the trapezoid rule on steps+1 points a_k = k/steps, k = 0..steps (weights 1/(2 steps) at
-- the ends, 1/steps inside); exact for paths where the gradient is linear in a.
-- opts: target = top class; steps = 50; baseline = "zeros" | "blur" (Gaussian, sigma = blur_sigma = 5)
--       | a tensor shaped like x; batch_size = 10 (path points per forward); probabilities = false.
-- Returns attr (shaped like x), gap = sum(attr) - (S_c(x) - S_c(x')) (completeness: near 0), target.
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
  error("integrated_gradients: baseline must be 'zeros', 'blur' or a tensor", 3)
end

return function(model, x, opts)
  opts = opts or {}
  local steps = opts.steps or 50
  if math.type(steps) ~= "integer" or steps < 1 then error("integrated_gradients: steps must be a positive integer", 2) end
  local base = make_baseline(x, opts.baseline, opts)
  local diff = x - base
  local target = opts.target
  if target == nil then target = common.targets(lumen.no_grad(common.scores, model, x, opts))[1] end
  local total
  common.batches(steps + 1, opts.batch_size or 10, function(first, count)
    local alphas, weights = {}, {}
    for j = 1, count do
      local k = first + j - 2
      alphas[j] = k / steps
      weights[j] = (k == 0 or k == steps) and 0.5 / steps or 1 / steps
    end
    local shape = { count }
    for d = 2, #x.shape do shape[d] = 1 end
    local a = lumen.tensor(alphas):reshape(shape)
    local w = lumen.tensor(weights):reshape(shape)
    local path = base + a * diff -- (count, ...)
    local g = common.input_gradient(model, path, target, opts)
    local s = (g * w):sum(1, true)
    total = total and total + s or s
  end, "integrated gradients")
  local attr = diff * total
  local ends = lumen.no_grad(common.scores, model, lumen.cat({ x, base }, 1), opts)
  local gap = attr:sum_all() - (ends:get { 1, target } - ends:get { 2, target })
  return attr, gap, target
end
