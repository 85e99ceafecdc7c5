-- nn.Dropout{p = 0.5}: while training, zeroes each element with probability p and scales the rest
-- by 1/(1-p) (lumen's seeded RNG); the identity in eval mode.
local lumen = require "lumen"
local Module = require "lumen.nn.module"

local Dropout = Module.class("Dropout", { prefix = "dropout" })

function Dropout:init(c)
  self.p = c.p or 0.5
  if self.p < 0 or self.p >= 1 then error(("Dropout: p must be in [0, 1), got %s"):format(self.p), 3) end
end
function Dropout:forward(x) return lumen.dropout(x, self.p, self.training) end

return Dropout
