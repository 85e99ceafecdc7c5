-- nn.MaxUnpool2d{pool = <MaxPool2d module or its name>}: puts each value back where the pool's last
-- forward found its maximum (Zeiler's switches), zeros elsewhere; the output has the pool's input size.
-- A pool given by name is resolved by the enclosing container (see Container:link).
local lumen = require "lumen"
local Module = require "lumen.nn.module"

local MaxUnpool2d = Module.class("MaxUnpool2d", { keras = "MaxUnpooling2D", prefix = "max_unpooling2d" })

function MaxUnpool2d:init(c)
  if type(c.pool) == "string" then
    self.pool_name = c.pool
  elseif type(c.pool) == "table" and c.pool.type == "MaxPool2d" then
    self.pool = c.pool
  else
    error("MaxUnpool2d: pool must be a MaxPool2d module or its name", 3)
  end
end

function MaxUnpool2d:config() return { pool = self.pool and self.pool.name or self.pool_name } end

function MaxUnpool2d:forward(x)
  local pool = self.pool or error(("MaxUnpool2d: pool '%s' is not linked"):format(tostring(self.pool_name)), 0)
  if not pool.indices then error(("MaxUnpool2d: pool '%s' has not run forward yet"):format(pool.name), 0) end
  return lumen.max_unpool2d(x, pool.indices, pool.input_size)
end

return MaxUnpool2d
