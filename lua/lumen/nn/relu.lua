-- nn.ReLU{}: max(0, x) elementwise.
local lumen = require "lumen"
local Module = require "lumen.nn.module"

local ReLU = Module.class("ReLU", { keras = "ReLU", prefix = "re_lu" })

function ReLU:forward(x) return lumen.relu(x) end

return ReLU
