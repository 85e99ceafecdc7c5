-- nn.GlobalMaxPool2d{keepdims = false}: (N, C, H, W) -> (N, C) maxima over H and W ((N, C, 1, 1) with keepdims).
local lumen = require "lumen"
local Module = require "lumen.nn.module"

local GlobalMaxPool2d = Module.class("GlobalMaxPool2d", { keras = "GlobalMaxPooling2D", prefix = "global_max_pooling2d" })

function GlobalMaxPool2d:init(c) self.keepdims = c.keepdims or false end
function GlobalMaxPool2d:forward(x) return lumen.global_max_pool2d(x, self.keepdims) end

return GlobalMaxPool2d
