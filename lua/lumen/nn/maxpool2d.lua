-- nn.MaxPool2d{kernel_size, stride = kernel_size, padding = 0, ceil_mode = false}: max over windows of
-- (N, C, H, W). Keeps the switches of its last forward (self.indices, self.input_size) for MaxUnpool2d.
local lumen = require "lumen"
local Module = require "lumen.nn.module"

local MaxPool2d = Module.class("MaxPool2d", { keras = "MaxPooling2D", prefix = "max_pooling2d" })

function MaxPool2d:init(c)
  local k = self:pair(c.kernel_size, "kernel_size")
  self.opts = { kernel_size = k, stride = self:pair(c.stride or k, "stride"),
                padding = c.padding or 0, ceil_mode = c.ceil_mode or false }
end

function MaxPool2d:forward(x)
  local y, idx = lumen.max_pool2d(x, self.opts)
  self.indices, self.input_size = idx, { x:size(3), x:size(4) }
  return y
end

return MaxPool2d
