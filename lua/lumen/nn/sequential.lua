-- nn.Sequential{m1, m2, ..., name = }: runs its modules one after another.
local lumen = require "lumen"
local Container = require "lumen.nn.container"
local Module = require "lumen.nn.module"

local is_tensor, free = lumen.core.is_tensor, lumen.core.free

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

-- The first module a pass must run: with ctx.replace naming module k, modules before k only feed it
-- and are skipped unless the pass wants one of them (captured, or where it stops).
local function first_to_run(self, ctx)
  if not ctx.replace then return 1 end
  for k = #self.modules, 1, -1 do
    if ctx.replace[self.modules[k].name] ~= nil then
      for j = 1, k - 1 do
        if Container.wanted(ctx, self.modules[j]) then return 1 end
      end
      return k
    end
  end
  return 1
end

function Sequential:_run(ctx, x)
  local n = #self.modules
  if ctx.root == self then
    self:capture(ctx, "input_1", x)
    if ctx.rec and lumen.is_tensor(x) then ctx.rec.shapes.input_1 = x.shape end
  end
  -- own: x is a tensor a layer made in this pass that nothing else holds, its block handed back once the next
  -- layer has read it (Container.frees).
  local frees, own = Container.frees(ctx), false
  for i = first_to_run(self, ctx), n do
    local m = self.modules[i]
    if i == n and ctx.logits and m.type == "Softmax" then return x end
    local y = self:call_child(m, Container.sub_ctx(ctx, i == n and ctx.logits, m), x)
    if frees then
      local makes, same = Container.makes_own(m), rawequal(y, x)
      if own and makes and not same then free(x) end
      own = makes and (same and own or not same and is_tensor(y))
    end
    x = y
    if Container.stops_after(ctx, m.name) then return x end
  end
  return x
end

-- Data flow (Container:flow): each module reads the one before it, the first reads `inputs`.
function Sequential:_flow(flow, inputs)
  local cur = inputs
  for _, m in ipairs(self.modules) do
    if m.is_container then
      local outs = m:_flow(flow, cur)
      flow.containers[m.name] = { inputs = cur, outputs = outs }
      cur = outs
    else
      Container.flow_node(flow, m.name, m.type, m, cur)
      cur = { m.name }
    end
  end
  return cur
end

return Sequential
