-- nn.GlobalMaxPool1d{channels_last = false}: (N, C, L) -> (N, C) maxima over L; with channels_last the
-- input is (N, L, C) as in Keras's GlobalMaxPooling1D.
local lumen = require "lumen"
local Module = require "lumen.nn.module"

local GlobalMaxPool1d = Module.class("GlobalMaxPool1d", { keras = "GlobalMaxPooling1D", prefix = "global_max_pooling1d" })

function GlobalMaxPool1d:init(c) self.channels_last = c.channels_last or false end
function GlobalMaxPool1d:forward(x)
  if self.channels_last then x = lumen.transpose(x, 2, 3) end
  return (lumen.global_max_pool1d(x))
end

return GlobalMaxPool1d
