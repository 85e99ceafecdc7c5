-- GradientSHAP / expected gradients (Lundberg & Lee 2017; Erion et al. 2021, "Improving performance
-- of deep learning models with axiomatic attribution priors and expected gradients").
-- attr = E_{b ~ background, a ~ U(0,1)} [(x - b) * dS_c/dx (b + a (x - b) + noise)]: Integrated
-- Gradients averaged over baselines, estimated by sampling.
-- opts: target = top class; background = tensor (K, ...) (default: one zero baseline); n = 50 samples;
--       stdevs = 0 (Gaussian noise added to each point, as Captum's GradientShap); batch_size = 10.
-- Returns attr shaped like x and the target.
local lumen = require "lumen"
local common = require "lumen.explain.common"

return function(model, x, opts)
  opts = opts or {}
  local bg = opts.background or lumen.zeros_like(x)
  local K = bg.shape[1]
  local n = opts.n or 50
  local target = opts.target
  if target == nil then target = common.targets(lumen.no_grad(common.scores, model, x, opts))[1] end
  local total
  local bshape = {}
  for d = 1, #x.shape do bshape[d] = d == 1 and 0 or 1 end
  common.batches(n, opts.batch_size or 10, function(_, count)
    local rows, alphas = {}, {}
    for j = 1, count do
      rows[j] = lumen.randint(K)
      alphas[j] = lumen.random()
    end
    local b = bg:index_select(1, lumen.tensor(rows, "int64")) -- (count, ...)
    bshape[1] = count
    local a = lumen.tensor(alphas):reshape(bshape)
    local point = b + a * (x - b)
    if (opts.stdevs or 0) > 0 then point = point + lumen.randn(point.shape) * opts.stdevs end
    local g = common.input_gradient(model, point, target, opts)
    local s = ((x - b) * g):sum(1, true)
    total = total and total + s or s
  end, "gradient shap")
  return total / n, target
end
