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

return function(model, x, opts)
  opts = opts or {}
  common.single(x, "gradient_shap")
  local bg = opts.background or lumen.zeros_like(x)
  local K, n, stdevs = bg.shape[1], opts.n or 50, opts.stdevs or 0
  local target = common.targets(lumen.no_grad(common.scores, model, x, opts), opts.target)[1]
  local shape = x.shape -- (count, 1, 1, ...) for the path positions
  for d = 2, #shape do shape[d] = 1 end
  local total
  common.batches(n, opts.batch_size or 10, function(_, count)
    local rows, alphas = {}, {}
    for j = 1, count do rows[j], alphas[j] = lumen.randint(K), lumen.random() end
    local b = bg:index_select(1, lumen.tensor(rows, "int64")) -- (count, ...)
    shape[1] = count
    local xn = stdevs > 0 and x + lumen.randn(b.shape) * stdevs or x
    local point = b + lumen.tensor(alphas):reshape(shape) * (xn - b)
    local g = common.input_gradient(model, point, target, opts)
    local s = ((xn - b) * g):sum(1, true)
    total = total and total + s or s
  end, "gradient shap")
  return total / n, target
end
