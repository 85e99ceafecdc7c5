-- nn.Conv2d{in_channels, out_channels, kernel_size, stride = 1, padding = 0, dilation = 1, groups = 1,
-- bias = true, activation = nil}: 2-D convolution over (N, C, H, W); weight (O, C/groups, kh, kw).
-- padding: n, {ph, pw}, {top, left, bottom, right} or "same".
local lumen = require "lumen"
local Module = require "lumen.nn.module"

local Conv2d = Module.class("Conv2d", { keras = "Conv2D", prefix = "conv2d" })

function Conv2d:init(c)
  local cin, cout = self:need(c, "in_channels"), self:need(c, "out_channels")
  local groups = c.groups or 1
  if cin % groups ~= 0 or cout % groups ~= 0 then
    error(("Conv2d: groups %d must divide in_channels %d and out_channels %d"):format(groups, cin, cout), 3)
  end
  local k = self:pair(c.kernel_size, "kernel_size")
  local dilation = self:pair(c.dilation or 1, "dilation")
  self.opts = { stride = self:pair(c.stride or 1, "stride"), padding = c.padding or 0,
                dilation = dilation, groups = groups }
  local fan_in = cin // groups * k[1] * k[2]
  self:register("weight", Module.uniform({ cout, cin // groups, k[1], k[2] }, fan_in))
  if c.bias ~= false then self:register("bias", Module.uniform({ cout }, fan_in)) end
  self:check_activation(c)
end

function Conv2d:forward(x)
  return self:activate(lumen.conv2d(x, self.weight, self.bias, self:conv_options()))
end

return Conv2d
