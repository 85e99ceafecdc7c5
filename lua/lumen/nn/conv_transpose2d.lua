-- nn.ConvTranspose2d{in_channels, out_channels, kernel_size, stride = 1, padding = 0, output_padding = 0,
-- dilation = 1, groups = 1, bias = true}: the adjoint of Conv2d (PyTorch's layout: weight
-- (C_in, C_out/groups, kh, kw)).
local lumen = require "lumen"
local Module = require "lumen.nn.module"

local ConvTranspose2d = Module.class("ConvTranspose2d", { keras = "Conv2DTranspose", prefix = "conv2d_transpose" })

function ConvTranspose2d:init(c)
  local cin, cout = self:need(c, "in_channels"), self:need(c, "out_channels")
  local groups = c.groups or 1
  if cin % groups ~= 0 or cout % groups ~= 0 then
    error(("ConvTranspose2d: groups %d must divide in_channels %d and out_channels %d"):format(groups, cin, cout), 3)
  end
  local k = self:pair(c.kernel_size, "kernel_size")
  local dilation = self:pair(c.dilation or 1, "dilation")
  self.opts = { stride = self:pair(c.stride or 1, "stride"), padding = c.padding or 0,
                output_padding = self:pair(c.output_padding or 0, "output_padding"), dilation = dilation,
                groups = groups }
  -- PyTorch computes fan_in from weight.size(1) * kh * kw for transposed convolutions.
  local fan_in = cout // groups * k[1] * k[2]
  self:register("weight", Module.uniform({ cin, cout // groups, k[1], k[2] }, fan_in))
  if c.bias ~= false then self:register("bias", Module.uniform({ cout }, fan_in)) end
end

function ConvTranspose2d:forward(x)
  return lumen.conv_transpose2d(x, self.weight, self.bias, self.opts)
end

return ConvTranspose2d
