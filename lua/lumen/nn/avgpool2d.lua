-- nn.AvgPool2d{kernel_size, stride = kernel_size, padding = 0, ceil_mode = false, count_include_pad = true}:
-- mean over windows of (N, C, H, W).
local lumen = require "lumen"
local Module = require "lumen.nn.module"

local AvgPool2d = Module.class("AvgPool2d", { keras = "AveragePooling2D", prefix = "average_pooling2d" })

function AvgPool2d:init(c)
  local k = self:pair(c.kernel_size, "kernel_size")
  self.opts = { kernel_size = k, stride = self:pair(c.stride or k, "stride"),
                padding = c.padding or 0, ceil_mode = c.ceil_mode or false,
                count_include_pad = c.count_include_pad ~= false }
end

function AvgPool2d:forward(x) return lumen.avg_pool2d(x, self.opts) end

return AvgPool2d
