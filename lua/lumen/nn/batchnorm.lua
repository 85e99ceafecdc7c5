-- nn.BatchNorm1d / nn.BatchNorm2d{num_features, eps = 1e-5, momentum = 0.1}: normalise each channel
-- (dimension 2) by the batch statistics while training (updating running_mean / running_var) and by
-- the running statistics in eval mode, then scale by weight and shift by bias.
local lumen = require "lumen"
local Module = require "lumen.nn.module"

local function make(type_name, ndims)
  local BN = Module.class(type_name, { keras = "BatchNormalization", prefix = "batch_normalization" })
  function BN:init(c)
    local n = self:need(c, "num_features")
    self.eps, self.momentum = c.eps or 1e-5, c.momentum or 0.1
    self:register("weight", lumen.ones(n))
    self:register("bias", lumen.zeros(n))
    self:register("running_mean", lumen.zeros(n), "buffer")
    self:register("running_var", lumen.ones(n), "buffer")
  end
  function BN:forward(x)
    if not ndims[x:dim()] then
      error(("%s: expected a %s input, got %d-D"):format(type_name, ndims.text, x:dim()), 0)
    end
    return lumen.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
      { training = self.training, momentum = self.momentum, eps = self.eps })
  end
  return BN
end

return {
  BatchNorm1d = make("BatchNorm1d", { [2] = true, [3] = true, text = "2-D (N, C) or 3-D (N, C, L)" }),
  BatchNorm2d = make("BatchNorm2d", { [4] = true, text = "4-D (N, C, H, W)" }),
}
