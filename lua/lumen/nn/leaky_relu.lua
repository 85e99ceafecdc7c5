-- nn.LeakyReLU{slope = 0.01}: x if x > 0 else slope * x.
local lumen = require "lumen"
local Module = require "lumen.nn.module"

local LeakyReLU = Module.class("LeakyReLU", { prefix = "leaky_re_lu" })

function LeakyReLU:init(c)
  self.slope = c.slope or 0.01
  self._config.slope = self.slope
end
function LeakyReLU:forward(x) return lumen.leaky_relu(x, self.slope) end

return LeakyReLU
