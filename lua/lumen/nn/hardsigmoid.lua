-- nn.HardSigmoid{alpha = 1/6, beta = 0.5}: max(0, min(1, alpha * x + beta)) (ONNX's form).
local lumen = require "lumen"
local Module = require "lumen.nn.module"

local HardSigmoid = Module.class("HardSigmoid", { keras = "Activation", prefix = "activation" })

function HardSigmoid:init(c) self.alpha, self.beta = c.alpha or 1 / 6, c.beta or 0.5 end
function HardSigmoid:forward(x) return lumen.hardsigmoid(x, self.alpha, self.beta) end

return HardSigmoid
