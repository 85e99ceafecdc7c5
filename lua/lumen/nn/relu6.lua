-- nn.ReLU6{}: min(max(0, x), 6) elementwise.
local lumen = require "lumen"
local Module = require "lumen.nn.module"

local ReLU6 = Module.class("ReLU6", { keras = "ReLU", prefix = "re_lu" })

function ReLU6:forward(x) return lumen.relu6(x) end

return ReLU6
