-- nn.Conv1d{in_channels, out_channels, kernel_size, stride = 1, padding = 0 (n | {left, right} | "same"),
-- dilation = 1, groups = 1, bias = true, activation = nil, channels_last = false}: 1-D convolution
-- over (N, C, L), or over (N, L, C) like Keras's Conv1D when channels_last (transposed internally).
-- weight (O, C/groups, k).
local lumen = require "lumen"
local Module = require "lumen.nn.module"

local Conv1d = Module.class("Conv1d", { keras = "Conv1D", prefix = "conv1d" })

function Conv1d:init(c)
  local cin, cout = self:need(c, "in_channels"), self:need(c, "out_channels")
  local k = self:need(c, "kernel_size")
  local groups = c.groups or 1
  if cin % groups ~= 0 or cout % groups ~= 0 then
    error(("Conv1d: groups %d must divide in_channels %d and out_channels %d"):format(groups, cin, cout), 3)
  end
  self.opts = { stride = c.stride or 1, padding = c.padding or 0, dilation = c.dilation or 1, groups = groups }
  self.channels_last = c.channels_last or false
  local fan_in = cin // groups * k
  self:register("weight", Module.uniform({ cout, cin // groups, k }, fan_in))
  if c.bias ~= false then self:register("bias", Module.uniform({ cout }, fan_in)) end
  self:check_activation(c)
end

function Conv1d:forward(x)
  if self.channels_last then x = lumen.transpose(x, 2, 3) end
  local y = self:activate(lumen.conv1d(x, self.weight, self.bias, self:conv_options()))
  if self.channels_last then y = lumen.transpose(y, 2, 3) end
  return y
end

return Conv1d
