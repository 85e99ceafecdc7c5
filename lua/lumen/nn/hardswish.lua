-- nn.HardSwish{}: x * relu6(x + 3) / 6 elementwise.
local lumen = require "lumen"
local Module = require "lumen.nn.module"

local HardSwish = Module.class("HardSwish", { keras = "Activation", prefix = "activation" })

function HardSwish:forward(x) return lumen.hardswish(x) end

return HardSwish
