-- optim.SGD(params, {lr = 0.01, momentum = 0, nesterov = false, weight_decay = 0}): stochastic gradient
-- descent as in PyTorch: g = grad + wd * p; v = momentum * v + g; step = nesterov and g + momentum * v or v;
-- p = p - lr * step. params: a model or an array from model:parameters() (frozen ones are skipped).
local lumen = require "lumen"
local Optimizer = require "lumen.optim.optimizer"

local SGD = Optimizer.class()
SGD.default_lr = 0.01

function SGD:init(o)
  self.momentum, self.nesterov, self.weight_decay = o.momentum or 0, o.nesterov or false, o.weight_decay or 0
  if self.nesterov and self.momentum <= 0 then error("SGD: nesterov needs momentum > 0", 4) end
  self.velocity = {}
end

function SGD:update(i, p, g)
  if self.weight_decay ~= 0 then g = g + p * self.weight_decay end
  if self.momentum ~= 0 then
    local v = self.velocity[i]
    v = v and (v * self.momentum + g) or g
    self.velocity[i] = v
    g = self.nesterov and (g + v * self.momentum) or v
  end
  return p - g * self.lr
end

return SGD
