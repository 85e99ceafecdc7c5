-- nn.Composite: the base of layers made of other layers (TransformerEncoderLayer, LSTM, GRU). A
-- composite is a container: its children are ordinary layers named "<composite>.<child>"
-- ("encoder_1.self_attn"), renamed whenever the composite's own name changes, so every layer of a model
-- has a unique name that capture, stop_at and the summary see. Tensor names (parameters(), state(),
-- set_state) are relative to the composite ("self_attn.in_proj_weight"); the enclosing container adds
-- the composite's name, so a checkpoint stores "encoder_1.self_attn.in_proj_weight". A composite is
-- rebuilt from its config() (checkpoint.lua), which must recreate the same children.
--
-- A subclass calls self:begin() and then self:add(local_name, module) in init for each child, in order,
-- and implements :_steps(ctx, x, ...) with self:run_child(ctx, local_name, args...) for each step.
local Container = require "lumen.nn.container"
local Module = require "lumen.nn.module"

local Composite = Module.class("Composite", { parent = Container })
Composite.is_composite = true

-- Raises "<Type>: unknown option 'k'" for a key of cfg not in `allowed` (an array of names).
function Composite.check_options(type_name, cfg, allowed)
  local ok = { name = true }
  for _, k in ipairs(allowed) do ok[k] = true end
  for k in pairs(cfg) do
    if not ok[k] then
      local names = {}
      for _, a in ipairs(allowed) do names[#names + 1] = a end
      table.sort(names)
      error(("%s: unknown option '%s' (known: %s)"):format(type_name, tostring(k), table.concat(names, ", ")), 5)
    end
  end
end

function Composite:begin()
  self._children, self._by_local, self._shapes = {}, {}, {}
end

function Composite:add(local_name, m)
  m.local_name = local_name
  self._children[#self._children + 1] = m
  self._by_local[local_name] = m
  return m
end

-- The children, named after the composite ("<name>.<local>"; the type's prefix while it has no name).
function Composite:children()
  local base = self.name or self.prefix
  if self._named_as ~= base then
    for _, m in ipairs(self._children) do m.name = base .. "." .. m.local_name end
    self._named_as = base
  end
  return self._children
end

function Composite:child(local_name)
  self:children()
  return self._by_local[local_name]
end

-- Runs child `local_name` on the arguments, recording its shape and capturing its output. When the
-- forward is to stop at this child (opts.stop_at), the composite's pass ends here with its output.
local Stop = {}
function Composite:run_child(ctx, local_name, ...)
  local m = self:child(local_name)
  local y = self:call_child(m, Container.sub_ctx(ctx, false, m), ...)
  self:capture(ctx, m.name, y)
  if Container.stops_after(ctx, m.name) then error(setmetatable({ value = y }, Stop), 0) end
  return y
end

function Composite:_run(ctx, ...)
  local res = table.pack(pcall(self._steps, self, ctx, ...))
  if res[1] then return table.unpack(res, 2, res.n) end
  if getmetatable(res[2]) == Stop then return res[2].value end
  error(res[2], 0)
end

-- The data flow (graph questions: roles, ending, inputs_of) sees a composite as one node: its inside is
-- code (_steps), not a graph, so what feeds it and its own name as its output is all it can say.
function Composite:_flow(flow, inputs)
  Container.flow_node(flow, self.name, self.type, self, inputs)
  return { self.name }
end

-- Tensor names relative to the composite: a child's tensors go under its local name, so
-- Container's parameters(), state() and set_state() give "self_attn.in_proj_weight".
function Composite:tensor_prefix(m) return m.local_name end

-- The pass options every container takes; the others are the composite's own (initial states, masks),
-- which forward(x, opts) hands to _run as self._opts.
local PASS_OPTIONS = { capture = true, logits = true, stop_at = true, replace = true }

function Composite:forward(x, opts)
  if not opts then return Container.forward(self, x) end
  local rest, pass = {}, {}
  for k, v in pairs(opts) do
    if PASS_OPTIONS[k] then pass[k] = v else rest[k] = v end
  end
  self._opts = rest
  local ok, y, c = pcall(Container.forward, self, x, pass)
  self._opts = nil
  if not ok then error(y, 0) end
  return y, c
end

return Composite
