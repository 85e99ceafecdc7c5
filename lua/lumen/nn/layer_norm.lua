-- nn.LayerNorm{normalized_shape = D | {d1, ..}, eps = 1e-5, elementwise_affine = true, bias = true}:
-- normalises over the trailing dims normalized_shape names, then scales by weight and shifts by bias
-- (both shaped normalized_shape), as torch.nn.LayerNorm. Keras's LayerNormalization.
local lumen = require "lumen"
local Module = require "lumen.nn.module"

local LayerNorm = Module.class("LayerNorm", { keras = "LayerNormalization", prefix = "layer_normalization" })

function LayerNorm:init(c)
  local ns = c.normalized_shape
  if math.type(ns) == "integer" then ns = { ns } end
  local ok = type(ns) == "table" and #ns >= 1
  for i = 1, ok and #ns or 0 do ok = ok and math.type(ns[i]) == "integer" and ns[i] >= 1 end
  if not ok then
    error(("LayerNorm: normalized_shape must be a positive integer or a list of them, got %s"):format(
      tostring(c.normalized_shape)), 4)
  end
  self.normalized_shape = { table.unpack(ns) }
  self.eps = c.eps or 1e-5
  if type(self.eps) ~= "number" or self.eps < 0 then
    error(("LayerNorm: eps must be a non-negative number, got %s"):format(tostring(c.eps)), 4)
  end
  if c.elementwise_affine ~= false then
    self:register("weight", lumen.ones(self.normalized_shape))
    if c.bias ~= false then self:register("bias", lumen.zeros(self.normalized_shape)) end
  end
end

function LayerNorm:forward(x)
  return lumen.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)
end

return LayerNorm
