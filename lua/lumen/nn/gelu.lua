-- nn.GELU{}: x * Phi(x) elementwise (exact, erf form).
local lumen = require "lumen"
local Module = require "lumen.nn.module"

local GELU = Module.class("GELU", { keras = "Activation", prefix = "activation" })

function GELU:forward(x) return lumen.gelu(x) end

return GELU
