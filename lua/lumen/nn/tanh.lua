-- nn.Tanh{}: tanh(x) elementwise.
local lumen = require "lumen"
local Module = require "lumen.nn.module"

local Tanh = Module.class("Tanh", { keras = "Activation", prefix = "activation" })

function Tanh:forward(x) return lumen.tanh(x) end

return Tanh
