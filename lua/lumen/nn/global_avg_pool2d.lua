-- nn.GlobalAvgPool2d{keepdims = false}: (N, C, H, W) -> (N, C) means over H and W ((N, C, 1, 1) with
-- keepdims). A network ending in it and one Linear admits CAM.
local lumen = require "lumen"
local Module = require "lumen.nn.module"

local GlobalAvgPool2d = Module.class("GlobalAvgPool2d", { keras = "GlobalAveragePooling2D",
                                                          prefix = "global_average_pooling2d" })

function GlobalAvgPool2d:init(c) self.keepdims = c.keepdims or false end
function GlobalAvgPool2d:forward(x) return lumen.global_avg_pool2d(x, self.keepdims) end

return GlobalAvgPool2d
