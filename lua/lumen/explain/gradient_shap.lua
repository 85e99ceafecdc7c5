-- GradientSHAP / expected gradients (Lundberg & Lee 2017; Erion et al. 2021, "Improving performance of
-- deep learning models with axiomatic attribution priors and expected gradients").
-- attr = E_{b ~ background, a ~ U(0,1)} [(x' - b) * dS_c/dx (b + a (x' - b))] with x' = x + N(0, stdevs^2)
-- noise (as Captum's GradientShap; x' = x when stdevs = 0): Integrated Gradients averaged over
-- baselines, estimated by sampling. Complete in expectation: sum(attr) ≈ S_c(x) - E_b[S_c(b)].
-- opts: target = top class; background = tensor (K, ...) (default: one zero baseline); n = 50 samples;
--       stdevs = 0; batch_size = 10; probabilities = false.
-- Returns attr shaped like x and the target.
local lumen = require "lumen"
local common = require "lumen.explain.common"

local M = {}

local OPTIONS = common.options("gradient_shap", {
  target = { nil, "target" }, background = { nil, "tensor" }, n = { 50, "integer >= 1" },
  stdevs = { 0, "number >= 0" }, batch_size = { 10, "integer >= 1" }, probabilities = { false, "boolean" },
})

function M.gradient_shap(model, x, opts)
  local o = OPTIONS(opts, model)
  common.single(x, "gradient_shap")
  local bg = o.background or lumen.zeros_like(x)
  local xs, bs = x.shape, bg.shape
  local fits = #xs == #bs
  for d = 2, #xs do fits = fits and xs[d] == bs[d] end
  if not fits then
    error(("gradient_shap: background rows %s do not match the input %s"):format(lumen.shape_str(bg),
      lumen.shape_str(x)), 2)
  end
  local K, n, stdevs = bg.shape[1], o.n, o.stdevs
  local target = common.targets(lumen.no_grad(common.scores, model, x, o), o.target, "gradient_shap")[1]
  local shape = x.shape -- (count, 1, 1, ...) for the path positions
  for d = 2, #shape do shape[d] = 1 end
  local total
  common.batches(n, o.batch_size, function(_, count)
    local rows, alphas = {}, {}
    for j = 1, count do rows[j], alphas[j] = lumen.randint(K), lumen.random() end
    local b = bg:index_select(1, lumen.tensor(rows, "int64")) -- (count, ...)
    shape[1] = count
    local xn = stdevs > 0 and x + lumen.randn(b.shape) * stdevs or x
    local point = b + lumen.tensor(alphas):reshape(shape) * (xn - b)
    local g = common.input_gradient(model, point, target, o)
    local s = ((xn - b) * g):sum(1, true)
    total = total and total + s or s
  end, "gradient shap")
  return total / n, target
end

return M
