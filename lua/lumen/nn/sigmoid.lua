-- nn.Sigmoid{}: 1 / (1 + exp(-x)) elementwise.
local lumen = require "lumen"
local Module = require "lumen.nn.module"

local Sigmoid = Module.class("Sigmoid", { keras = "Activation", prefix = "activation" })

function Sigmoid:forward(x) return lumen.sigmoid(x) end

return Sigmoid
