-- nn.Flatten{start_dim = 2}: merges dimensions start_dim.. into one: (N, C, H, W) -> (N, C*H*W).
local lumen = require "lumen"
local Module = require "lumen.nn.module"

local Flatten = Module.class("Flatten", { prefix = "flatten" })

function Flatten:init(c) self.start_dim = c.start_dim or 2 end
function Flatten:forward(x)
  local s = x.shape
  local shape, n = {}, 1
  for i = 1, self.start_dim - 1 do shape[i] = s[i] end
  for i = self.start_dim, #s do n = n * s[i] end
  shape[self.start_dim] = n
  return lumen.reshape(x, shape)
end

return Flatten
