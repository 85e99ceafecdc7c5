-- nn.Sequential{m1, m2, ..., name = }: runs its modules one after another.
local Container = require "lumen.nn.container"
local Module = require "lumen.nn.module"

local Sequential = Module.class("Sequential", { parent = Container, keras = "Sequential", prefix = "sequential" })

function Sequential:init(cfg)
  self.modules = {}
  for i, m in ipairs(cfg) do
    if type(m) ~= "table" or not m.forward then
      error(("Sequential: entry %d is not a module"):format(i), 4)
    end
    self.modules[i] = m
    self._config[i] = nil
  end
  self._shapes = {}
  self:name_children(self.modules)
  self:link()
end

function Sequential:children() return self.modules end

-- Appends a module (named like the constructor would) and returns self.
function Sequential:add(m)
  self.modules[#self.modules + 1] = m
  self:name_children(self.modules)
  self:link()
  return self
end

function Sequential:is_input(name) return name == "input_1" end

function Sequential:_run(ctx, x)
  local n = #self.modules
  self:capture(ctx, "input_1", x)
  for i, m in ipairs(self.modules) do
    if i == n and ctx.logits and m.type == "Softmax" then return x end
    x = self:call_child(m, Container.sub_ctx(ctx, i == n and ctx.logits), x)
    self:capture(ctx, m.name, x)
    if Container.stops_after(ctx, m.name) then return x end
  end
  return x
end

return Sequential
