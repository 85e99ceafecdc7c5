-- nn.MaxPool1d{kernel_size, stride = kernel_size, padding = 0, ceil_mode = false, channels_last = false}:
-- max over windows of (N, C, L), or of (N, L, C) like Keras's MaxPooling1D when channels_last.
local lumen = require "lumen"
local Module = require "lumen.nn.module"

local MaxPool1d = Module.class("MaxPool1d", { keras = "MaxPooling1D", prefix = "max_pooling1d" })

function MaxPool1d:init(c)
  local k = self:need(c, "kernel_size")
  self.opts = { kernel_size = k, stride = c.stride or k, padding = c.padding or 0, ceil_mode = c.ceil_mode or false }
  self.channels_last = c.channels_last or false
end

function MaxPool1d:forward(x)
  if self.channels_last then x = lumen.transpose(x, 2, 3) end
  local y = lumen.max_pool1d(x, self.opts)
  if self.channels_last then y = lumen.transpose(y, 2, 3) end
  return y
end

return MaxPool1d
