-- nn.GELU{approximate = "none"}: x * Phi(x) elementwise: the exact erf form, or with approximate =
-- "tanh" 0.5 x (1 + tanh(sqrt(2 / pi) (x + 0.044715 x^3))), as torch.nn.GELU.
local lumen = require "lumen"
local Module = require "lumen.nn.module"

local GELU = Module.class("GELU", { keras = "Activation", prefix = "activation" })

function GELU:init(c)
  self.approximate = c.approximate or "none"
  if self.approximate ~= "none" and self.approximate ~= "tanh" then
    error(("GELU: approximate must be 'none' or 'tanh', got '%s'"):format(tostring(c.approximate)), 4)
  end
end

local k = math.sqrt(2 / math.pi)

function GELU:forward(x)
  if self.approximate == "none" then return lumen.gelu(x) end
  local inner = lumen.mul(lumen.add(x, lumen.mul(lumen.pow(x, 3), 0.044715)), k)
  return lumen.mul(lumen.mul(x, 0.5), lumen.add(lumen.tanh(inner), 1))
end

return GELU
