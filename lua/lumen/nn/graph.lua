-- nn.Graph{inputs = {...}, outputs = {...}, nodes = {...}}: a directed acyclic graph of named nodes.
-- A node is {name =, inputs = {names}, module = M} or a function node {name =, inputs =, type =,
-- fn = function(a, b, ...)} or, to be savable in checkpoints, {name =, inputs =, type =, op = "add",
-- args = {...}} which calls lumen[op](inputs..., args...). Nodes may come in any order: they are
-- sorted once; during forward each intermediate tensor is dropped after its last consumer unless it
-- is an output or captured. self.nodes holds the sorted records {name, inputs, module} or
-- {name, inputs, type, fn, op, args}; layer(name) returns the module, or the record of a function node.
local lumen = require "lumen"
local Container = require "lumen.nn.container"
local Module = require "lumen.nn.module"

local Graph = Module.class("Graph", { parent = Container, keras = "Functional", prefix = "model" })

local function names(t, what, may_be_empty)
  if type(t) ~= "table" or (#t == 0 and not may_be_empty) then
    error(("Graph: %s must be a non-empty array of names"):format(what), 0)
  end
  for _, v in ipairs(t) do
    if type(v) ~= "string" then error(("Graph: %s must hold names, got a %s"):format(what, type(v)), 0) end
  end
  return { table.unpack(t) }
end

-- The record of a function or op node; it runs as rec:forward(...).
local function fn_record(spec, i)
  if type(spec.name) ~= "string" then error(("Graph: node %d has no name"):format(i), 0) end
  local rec = { name = spec.name, type = spec.type or (spec.op and spec.op:gsub("^%l", string.upper)) or "Function" }
  if spec.op then
    local f = lumen[spec.op]
    if type(f) ~= "function" then error(("Graph: node '%s': unknown op '%s'"):format(spec.name, tostring(spec.op)), 0) end
    local extra = spec.args or {}
    rec.op, rec.args, rec.call = spec.op, extra, f
    rec.fn = function(...)
      if #extra == 0 then return f(...) end -- (no table per call: importers' add and mul nodes have no args)
      local a = table.pack(...)
      for k = 1, #extra do a[a.n + k] = extra[k] end
      return f(table.unpack(a, 1, a.n + #extra))
    end
  elseif type(spec.fn) == "function" then
    rec.fn = spec.fn
  else
    error(("Graph: node %d ('%s') needs a module, fn or op"):format(i, tostring(spec.name)), 0)
  end
  rec.forward = function(_, ...) return rec.fn(...) end
  return rec
end

-- Orders records so that each comes after the producers of its inputs (depth first, stable). Iterative:
-- an explicit stack of {record, next input} frames, so 300,000 nodes in reverse order cannot overflow
-- Lua's stack; the frames on it are the path a cycle is reported along.
local function toposort(recs, inputs)
  local producer = {}
  for _, n in ipairs(inputs) do producer[n] = "input" end
  for _, r in ipairs(recs) do producer[r.name] = r end
  local state, order = {}, {}
  for _, root in ipairs(recs) do
    if state[root] == nil then
      local stack = { { root, 1 } }
      state[root] = "active"
      while #stack > 0 do
        local frame = stack[#stack]
        local r, k = frame[1], frame[2]
        local inp = r.inputs[k]
        if inp == nil then
          stack[#stack] = nil
          state[r] = "done"
          order[#order + 1] = r
        else
          frame[2] = k + 1
          local p = producer[inp]
          if p == nil then error(("Graph: node '%s' reads '%s', which no node or input produces"):format(r.name, inp), 0) end
          if p ~= "input" then
            if state[p] == "active" then
              local path = {}
              for i, f in ipairs(stack) do path[i] = f[1].name end
              error(("Graph: cycle through node '%s' (%s)"):format(p.name, table.concat(path, " -> ")), 0)
            elseif state[p] == nil then
              state[p] = "active"
              stack[#stack + 1] = { p, 1 }
            end
          end
        end
      end
    end
  end
  return order, producer
end
Graph._toposort = toposort -- for the tests

function Graph:init(cfg)
  self.inputs = names(cfg.inputs, "inputs")
  self.outputs = names(cfg.outputs, "outputs")
  self._config = {}
  local recs, named, modules = {}, {}, {}
  for i, spec in ipairs(cfg.nodes or {}) do
    local rec
    if spec.module then
      if spec.name then spec.module.name = spec.name end
      rec = { module = spec.module }
      modules[#modules + 1] = spec.module
      named[i] = spec.module
    else
      rec = fn_record(spec, i)
      named[i] = rec
    end
    rec.inputs = names(spec.inputs or {}, ("inputs of node %d"):format(i), true)
    recs[i] = rec
  end
  self:name_children(named, self.inputs)
  for _, rec in ipairs(recs) do
    if rec.module then rec.name, rec.type = rec.module.name, rec.module.type end
  end
  local order, producer = toposort(recs, self.inputs)
  for _, o in ipairs(self.outputs) do
    if not producer[o] then error(("Graph: output '%s' is not produced by any node"):format(o), 0) end
  end
  self.nodes, self.modules, self.by_name = order, modules, {}
  local last_use = {}
  for i, rec in ipairs(order) do
    self.by_name[rec.name] = rec.module or rec
    for _, inp in ipairs(rec.inputs) do last_use[inp] = i end
  end
  -- A pass keeps its values in an array: input k in slot k, node i's output in slot #inputs + i. Each record
  -- gets its inputs' slots (rec.slots) and the slots whose last reader it is (rec.drop; outputs are kept);
  -- self._out_slots are the outputs'.
  local slot, keep = {}, {}
  for k, n in ipairs(self.inputs) do slot[n] = k end
  for i, rec in ipairs(order) do slot[rec.name] = #self.inputs + i end
  self._out_slots = {}
  for k, o in ipairs(self.outputs) do keep[o], self._out_slots[k] = true, slot[o] end
  for i, rec in ipairs(order) do
    rec.slots, rec.drop = {}, {}
    local dropped = {} -- (a node that reads one value twice drops it once)
    for k, inp in ipairs(rec.inputs) do
      rec.slots[k] = slot[inp]
      if last_use[inp] == i and not keep[inp] and not dropped[inp] then
        dropped[inp] = true
        rec.drop[#rec.drop + 1] = slot[inp]
      end
    end
  end
  self._shapes = {}
  self:link()
end

function Graph:children() return self.modules end
function Graph:is_input(name)
  for _, n in ipairs(self.inputs) do if n == name then return true end end
  return false
end

function Graph:layer(name)
  return self.by_name[name] or Container.layer(self, name)
end

function Graph:layers()
  local res = {}
  for _, rec in ipairs(self.nodes) do
    local m = rec.module or rec
    if m.is_container then
      for _, l in ipairs(m:layers()) do res[#res + 1] = l end
    else
      self:_leaf_rows(res, m, rec.name, rec.type)
    end
  end
  return res
end

function Graph:input_dtype()
  for _, rec in ipairs(self.nodes) do
    for _, inp in ipairs(rec.inputs) do
      if inp == self.inputs[1] and rec.module then
        if rec.module.is_container then return rec.module:input_dtype() end
        return rec.module.input_dtype or "float32"
      end
    end
  end
  return "float32"
end

-- The nodes a pass must run (a set by name), or nil for all: with ctx.replace naming nodes here, a node
-- runs only if an output, a wanted node (captured, or where the pass stops) or a node that runs reads it.
local function to_run(self, ctx)
  local rep = ctx.replace
  if not rep then return nil end
  local any = false
  for _, rec in ipairs(self.nodes) do any = any or rep[rec.name] ~= nil end
  if not any then return nil end
  local need = {}
  for _, o in ipairs(self.outputs) do need[o] = true end
  for i = #self.nodes, 1, -1 do
    local rec = self.nodes[i]
    if not need[rec.name] and Container.wanted(ctx, rec.module or rec) then need[rec.name] = true end
    if need[rec.name] and rep[rec.name] == nil then
      for _, inp in ipairs(rec.inputs) do need[inp] = true end
    end
  end
  return need
end

-- Counts the slots that hold node rec's output y, for the blocks a pass hands back (Container.frees): a value its
-- reader may keep is dropped from the count (it never goes back), one it hands on gains a slot, and a tensor it
-- made itself starts at one.
local is_tensor, free, shape_or = lumen.core.is_tensor, lumen.core.free, lumen.core.shape_or
local run_child = Container.run_child
local function hold(held, rec, values, slots, y, tensor)
  local own = Container.makes_own(rec.module or rec)
  local read = false
  for k = 1, #slots do
    local v = values[slots[k]]
    if not own and v ~= nil then held[v] = nil end
    read = read or rawequal(v, y)
  end
  if y == nil then return end
  local c = held[y]
  if c then
    held[y] = c + 1
  elseif own and not read and (tensor or tensor == nil and is_tensor(y)) then
    local args = rec.args -- an op node's constants (a module's record has none)
    for k = 1, args and #args or 0 do
      if rawequal(args[k], y) then return end
    end
    held[y] = 1
  end
end

-- Drops the values whose last reader rec is, giving back the blocks of those no slot holds any more.
local function drop_after(rec, values, held)
  local drop = rec.drop
  for k = 1, #drop do
    local at = drop[k]
    local v = values[at]
    values[at] = nil
    local c = held and v ~= nil and held[v]
    if c == 1 then
      held[v] = nil
      free(v)
    elseif c then
      held[v] = c - 1
    end
  end
end

-- The nodes of a pass that records, captures, replaces, traces and stops at nothing (Container.frees: a plain
-- forward under lumen.no_grad, as occlusion, LIME and SHAP run them by the thousand), from values in their
-- slots: what call_child does for a leaf (its output's shape noted for layers(), extra outputs recorded, an
-- error prefixed with the layer's name and type) inline, under one pcall for the pass (st.cur: the leaf
-- running, whose name an error takes; a nested container's call_child prefixes its own). `final`: the output
-- node's name when the pass asks for logits (a final Softmax hands its input on), else nil.
local function run_frees(self, ctx, values, held, final, st)
  local nodes, base, call_child = self.nodes, #self.inputs, self.call_child
  local shapes = self._shapes
  if not shapes then
    shapes = {}
    self._shapes = shapes
  end
  for i = 1, #nodes do
    local rec = nodes[i]
    local slots = rec.slots
    local n = #slots
    local child = rec.module or rec
    local y, extra
    if final and rec.name == final and rec.type == "Softmax" then
      y = values[slots[1]]
    elseif child.is_container then
      local sub = Container.sub_ctx(ctx, final ~= nil and rec.name == final, child)
      if n == 1 then
        y = call_child(self, child, sub, values[slots[1]])
      else
        local args = {}
        for k = 1, n do args[k] = values[slots[k]] end
        y = call_child(self, child, sub, table.unpack(args, 1, n))
      end
    else
      st.cur = child
      if n == 1 then
        y, extra = run_child(self, child, ctx, values[slots[1]])
      elseif n == 2 then
        y, extra = run_child(self, child, ctx, values[slots[1]], values[slots[2]])
      else
        local args = {}
        for k = 1, n do args[k] = values[slots[k]] end
        y, extra = run_child(self, child, ctx, table.unpack(args, 1, n))
      end
      st.cur = nil
      local name = child.name
      local tensor = is_tensor(y)
      shapes[name] = tensor and shape_or(y, shapes[name]) or nil
      if type(extra) == "table" then self:note_extras(ctx, child, name, extra) end
      values[base + i] = y
      hold(held, rec, values, slots, y, tensor)
      drop_after(rec, values, held)
      goto continue
    end
    values[base + i] = y
    hold(held, rec, values, slots, y)
    drop_after(rec, values, held)
    ::continue::
  end
end

function Graph:_run(ctx, x)
  local values, inputs = {}, self.inputs -- by slot (see init)
  if lumen.is_tensor(x) then
    if #inputs ~= 1 then
      error(("%s: expects %d inputs (%s), got one tensor"):format(self.name or "Graph", #inputs,
        table.concat(inputs, ", ")), 0)
    end
    values[1] = x
  else
    for i, n in ipairs(inputs) do
      values[i] = type(x) == "table" and (x[n] or x[i]) or nil
      if not lumen.is_tensor(values[i]) then error(("%s: missing input '%s'"):format(self.name or "Graph", n), 0) end
    end
  end
  if ctx.root == self then
    for i, n in ipairs(inputs) do
      self:capture(ctx, n, values[i])
      if ctx.rec then ctx.rec.shapes[n] = values[i].shape end
    end
  end
  local final = #self.outputs == 1 and self.outputs[1]
  local need, logits_pass, stop = to_run(self, ctx), ctx.logits, ctx.stop
  local base, nodes = #inputs, self.nodes
  local held = Container.frees(ctx) and {} or nil -- tensor -> the slots holding it, for those that may go back
  if held and not need and not stop and self.call_child == Container.call_child then -- (not a class's own)
    local st = {}
    ctx.values = values -- (the slots a folded residual group reads its shortcut from: lumen.nn.fold)
    local ok, err = pcall(run_frees, self, ctx, values, held, logits_pass and final or nil, st)
    ctx.values = nil
    if not ok then error(st.cur and Container.child_error(st.cur, err) or err, 0) end
    return self:_outputs(values)
  end
  for i = 1, #nodes do
    local rec = nodes[i]
    if not need or need[rec.name] then
      local logits = logits_pass and rec.name == final
      local slots = rec.slots
      local y
      if logits and rec.type == "Softmax" then
        y = values[slots[1]]
      else
        local child = rec.module or rec
        local sub = child.is_container and Container.sub_ctx(ctx, logits, child) or ctx
        local n = #slots
        if n == 1 then
          y = self:call_child(child, sub, values[slots[1]])
        elseif n == 2 then
          y = self:call_child(child, sub, values[slots[1]], values[slots[2]])
        else
          local args = {}
          for k = 1, n do args[k] = values[slots[k]] end
          y = self:call_child(child, sub, table.unpack(args, 1, n))
        end
      end
      values[base + i] = y
      if held then hold(held, rec, values, slots, y) end
      if stop and Container.stops_after(ctx, rec.name) then return y end
    end
    drop_after(rec, values, held)
  end
  return self:_outputs(values)
end

-- The pass's output from values: the one output's value, or a list of them.
function Graph:_outputs(values)
  local out_slots = self._out_slots
  if #out_slots == 1 then return values[out_slots[1]] end
  local outs = {}
  for k, at in ipairs(out_slots) do outs[k] = values[at] end
  return outs
end

-- Data flow (Container:flow): node inputs resolved through `inputs` (what feeds the graph's inputs)
-- and through nested containers to the leaves that produce them.
function Graph:_flow(flow, inputs)
  local map = {}
  for i, n in ipairs(self.inputs) do map[n] = inputs[i] or n end
  for _, rec in ipairs(self.nodes) do
    local ins = {}
    for k, n in ipairs(rec.inputs) do ins[k] = map[n] end
    local m = rec.module
    if m and m.is_container then
      local outs = m:_flow(flow, ins)
      flow.containers[rec.name] = { inputs = ins, outputs = outs }
      map[rec.name] = outs[1]
    else
      Container.flow_node(flow, rec.name, rec.type, m or rec, ins)
      map[rec.name] = rec.name
    end
  end
  local outs = {}
  for k, o in ipairs(self.outputs) do outs[k] = map[o] end
  return outs
end

return Graph
