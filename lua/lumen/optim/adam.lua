-- optim.Adam(params, {lr = 1e-3, betas = {0.9, 0.999}, eps = 1e-8, weight_decay = 0}): Adam (Kingma & Ba
-- 2015) as in PyTorch, weight decay added to the gradient (L2, not AdamW):
-- m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2; p = p - lr * m/(1-b1^t) / (sqrt(v/(1-b2^t)) + eps).
local lumen = require "lumen"
local Optimizer = require "lumen.optim.optimizer"

local Adam = Optimizer.class()
Adam.default_lr = 1e-3

function Adam:init(o)
  local b = o.betas or { 0.9, 0.999 }
  self.b1, self.b2, self.eps, self.weight_decay = b[1], b[2], o.eps or 1e-8, o.weight_decay or 0
  self.m, self.v, self.t = {}, {}, 0
end

function Adam:begin_step() self.t = self.t + 1 end

function Adam:update(i, p, g)
  if self.weight_decay ~= 0 then g = g + p * self.weight_decay end
  local m = self.m[i] and (self.m[i] * self.b1 + g * (1 - self.b1)) or g * (1 - self.b1)
  local v = self.v[i] and (self.v[i] * self.b2 + g * g * (1 - self.b2)) or g * g * (1 - self.b2)
  self.m[i], self.v[i] = m, v
  local c1, c2 = 1 - self.b1 ^ self.t, 1 - self.b2 ^ self.t
  local denom = lumen.sqrt(v * (1 / c2)) + self.eps
  return p - m * (self.lr / c1) / denom
end

return Adam
