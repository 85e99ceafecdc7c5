-- nn.Clip{min =, max =}: min(max(x, min), max) elementwise (ONNX Clip; either bound may be absent).
local lumen = require "lumen"
local Module = require "lumen.nn.module"

local Clip = Module.class("Clip", { prefix = "clip" })

function Clip:init(c) self.min, self.max = c.min, c.max end
function Clip:forward(x) return lumen.clip(x, self.min, self.max) end

return Clip
