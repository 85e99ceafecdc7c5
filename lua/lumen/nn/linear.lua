-- nn.Linear{in_features, out_features, bias = true, activation = nil}: y = x W^T + b over the last
-- dimension; weight (out, in) as in PyTorch. Keras's Dense (with `activation = "relu"` fused).
local lumen = require "lumen"
local Module = require "lumen.nn.module"

local Linear = Module.class("Linear", { keras = "Dense", prefix = "dense" })

function Linear:init(c)
  local fin, fout = self:need(c, "in_features"), self:need(c, "out_features")
  self:register("weight", Module.uniform({ fout, fin }, fin))
  if c.bias ~= false then self:register("bias", Module.uniform({ fout }, fin)) end
  self:check_activation(c)
end

function Linear:forward(x)
  return self:activate(lumen.linear(x, self.weight, self.bias))
end

return Linear
