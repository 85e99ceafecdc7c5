-- nn.SiLU{}: x * sigmoid(x) elementwise (swish; EfficientNet's activation). ONNX files spell it as Sigmoid
-- and Mul, which the importer puts back together as this layer.
local lumen = require "lumen"
local Module = require "lumen.nn.module"

local SiLU = Module.class("SiLU", { keras = "Activation", prefix = "activation" })

function SiLU:forward(x) return lumen.silu(x) end

return SiLU
