-- nn.Softmax{dim = -1}: exp(x) / sum exp(x) along dim. Containers skip a final Softmax when
-- forward is asked for logits.
local lumen = require "lumen"
local Module = require "lumen.nn.module"

local Softmax = Module.class("Softmax", { prefix = "softmax" })

function Softmax:init(c) self.dim = c.dim or -1 end
function Softmax:forward(x) return lumen.softmax(x, self.dim) end

return Softmax
