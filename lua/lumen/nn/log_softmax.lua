-- nn.LogSoftmax{dim = -1}: log(softmax(x)) along dim, computed stably.
local lumen = require "lumen"
local Module = require "lumen.nn.module"

local LogSoftmax = Module.class("LogSoftmax", { prefix = "log_softmax" })

function LogSoftmax:init(c) self.dim = c.dim or -1 end
function LogSoftmax:forward(x) return lumen.log_softmax(x, self.dim) end

return LogSoftmax
