-- lumen.checkpoint: a model in one file. The file is safetensors: the tensors are the model's
-- parameters and buffers by name (and tensor arguments of graph op nodes), and "__metadata__" holds
--   "lumen.format"     = "lumen-checkpoint-1"
--   "lumen.arch"       = JSON: {type, name, config} for a layer, {type = "Sequential", modules = [...]},
--                        {type = "Graph", inputs, outputs, nodes = [{name, inputs, module | op, args, type}]}
--   "lumen.labels"     = JSON array (optional), "lumen.input_spec" = JSON object (optional).
-- Loading parses the JSON (no Lua code is ever loaded), builds only known nn classes and autograd ops,
-- and checks every tensor's presence, shape and dtype. The architecture is held to what the file holds
-- before it is built: at most model_nodes layers, no layer tensor larger than the file's largest tensor
-- (the cap is set while layers are made, so a declared Linear(60000, 60000) is refused before its
-- 14 GB are allocated), and no more layer bytes in all than the file's tensors.
local lumen = require "lumen"
local json = require "lumen.json"

local M = {}
M.FORMAT = "lumen-checkpoint-1"

-- Graph op nodes may only name lumen's tensor ops: those on the autograd tape and the pure ops
-- composed of them. (A checkpoint never names functions that touch files or global state.)
local composite = {}
for _, k in ipairs { "transpose", "flatten", "squeeze", "unsqueeze", "view", "select", "contiguous", "broadcast_to",
                     "t", "cross_entropy", "var", "std", "argmax", "argmin", "eq", "ne", "lt", "le", "gt", "ge",
                     "bmm", "dot" } do
  composite[k] = true
end
local function known_op(op)
  return type(op) == "string" and (lumen.autograd.ops[op] ~= nil or composite[op] == true)
    and type(lumen[op]) == "function"
end

-- The architecture of module m as plain data; tensor arguments of op nodes go into `tensors`, named
-- like state(): `prefix` is the path of m inside the saved model ("" at the top, "block." below).
local function arch(m, tensors, prefix)
  if m.type == "Sequential" then
    local mods = {}
    for i, c in ipairs(m.modules) do mods[i] = arch(c, tensors, prefix .. c.name .. ".") end
    return { type = "Sequential", name = m.name, modules = json.array(mods) }
  elseif m.type == "Graph" then
    local nodes = {}
    for i, rec in ipairs(m.nodes) do
      local entry = { name = rec.name, inputs = json.array { table.unpack(rec.inputs) } }
      if rec.module then
        entry.module = arch(rec.module, tensors, prefix .. rec.name .. ".")
      elseif not rec.op then
        error(("save: graph node '%s' (%s) is a Lua function; only nodes built as {op = name, args = {...}} "
          .. "can be saved"):format(rec.name, rec.type), 0)
      elseif not known_op(rec.op) then
        error(("save: graph node '%s': '%s' is not a lumen op"):format(rec.name, rec.op), 0)
      else
        local args = {}
        for k, a in ipairs(rec.args) do
          if lumen.is_tensor(a) then
            local key = ("%s%s.arg%d"):format(prefix, rec.name, k)
            tensors[key] = a
            args[k] = { tensor = key }
          else
            args[k] = a
          end
        end
        entry.op, entry.type, entry.args = rec.op, rec.type, json.array(args)
      end
      nodes[i] = entry
    end
    return { type = "Graph", name = m.name, inputs = json.array { table.unpack(m.inputs) },
             outputs = json.array { table.unpack(m.outputs) }, nodes = json.array(nodes) }
  end
  return { type = m.type, name = m.name, config = m:config() }
end

-- save(model, path): writes the checkpoint; raises on failure.
function M.save(model, path)
  local tensors = {}
  for _, s in ipairs(model:state()) do tensors[s.name] = s.tensor end
  local meta = { ["lumen.format"] = M.FORMAT, ["lumen.arch"] = json.encode(arch(model, tensors, "")) }
  if model.labels then meta["lumen.labels"] = json.encode(json.array(model.labels)) end
  if model.input_spec then meta["lumen.input_spec"] = json.encode(model.input_spec) end
  local ok, err = lumen.write_safetensors(path, tensors, meta)
  if not ok then error(err, 2) end
  return true
end

-- Decoded JSON arrays carry a marker metatable; modules want plain tables.
local function plain(v)
  if type(v) ~= "table" then return v end
  local t = {}
  for k, x in pairs(v) do t[k] = plain(x) end
  return t
end

-- Layer entries in an architecture (containers, their layers and graph nodes), counted without
-- recursion so a deep file cannot overflow the stack.
local function count_layers(a)
  local n, stack = 0, { a }
  while #stack > 0 do
    local e = table.remove(stack)
    n = n + 1
    if type(e) == "table" then
      for _, c in ipairs(type(e.modules) == "table" and e.modules or {}) do stack[#stack + 1] = c end
      for _, c in ipairs(type(e.nodes) == "table" and e.nodes or {}) do
        stack[#stack + 1] = type(c) == "table" and c.module or false
      end
    end
  end
  return n
end

local function state_bytes(m)
  local b = 0.0
  for _, s in ipairs(m:state()) do b = b + s.tensor:numel() * (s.tensor:dtype() == "int64" and 8 or 4) end
  return b
end

-- budget = {left = bytes of the file's tensors not yet matched by layer tensors}.
local function build(a, tensors, where, budget)
  local nn = lumen.nn
  if type(a) ~= "table" or type(a.type) ~= "string" then error(where .. ": layer entry without a type", 0) end
  local cls = nn.classes[a.type]
  if not cls then error(("%s: unknown layer type '%s'"):format(where, a.type), 0) end
  local here = where .. "/" .. tostring(a.name)
  if a.type == "Sequential" then
    local mods = { name = a.name }
    for i, c in ipairs(a.modules or {}) do mods[i] = build(c, tensors, here, budget) end
    return nn.Sequential(mods)
  elseif a.type == "Graph" then
    local nodes = {}
    for i, n in ipairs(a.nodes or {}) do
      if n.module then
        nodes[i] = { name = n.name, inputs = n.inputs, module = build(n.module, tensors, here, budget) }
      else
        if not known_op(n.op) then error(("%s: node '%s': unknown op '%s'"):format(here, tostring(n.name), tostring(n.op)), 0) end
        local args = {}
        for k, x in ipairs(n.args or {}) do
          if type(x) == "table" and x.tensor then
            args[k] = tensors[x.tensor] or error(("%s: missing tensor '%s'"):format(here, tostring(x.tensor)), 0)
          else
            args[k] = x
          end
        end
        nodes[i] = { name = n.name, inputs = n.inputs, op = n.op, type = n.type, args = args }
      end
    end
    return nn.Graph { name = a.name, inputs = a.inputs, outputs = a.outputs, nodes = nodes }
  end
  local cfg = type(a.config) == "table" and a.config or {}
  cfg.name = a.name
  local m = cls(cfg)
  budget.left = budget.left - state_bytes(m)
  if budget.left < 0 then
    error(("%s (%s): the layers declare more tensor bytes than the checkpoint holds (%.0f)"):format(here, a.type,
      budget.total), 0)
  end
  return m
end

local function decode(path, meta, key)
  local s = meta[key]
  if s == nil then return nil end
  local ok, v = pcall(json.decode, s)
  if not ok then error(("%s: bad %s metadata (%s)"):format(path, key, v), 0) end
  return plain(v)
end

-- load(path) -> model; raises "path: reason" for unreadable, truncated or inconsistent files.
function M.load(path)
  local tensors, meta = lumen.read_safetensors(path)
  if not tensors then error(meta, 0) end
  meta = meta or {}
  if meta["lumen.format"] ~= M.FORMAT then
    error(("%s: not a lumen checkpoint (metadata lumen.format is %s, expected %s)"):format(path,
      tostring(meta["lumen.format"]), M.FORMAT), 0)
  end
  local a = decode(path, meta, "lumen.arch")
  if not a then error(path .. ": checkpoint has no lumen.arch metadata", 0) end
  local n = count_layers(a)
  local ok0, err0 = pcall(lumen.core.limit_check, "model_nodes", n, ("the number of layers (%d)"):format(n), path)
  if not ok0 then error(err0, 0) end
  local total, largest = 0.0, 0
  for _, t in pairs(tensors) do
    local b = t:numel() * (t:dtype() == "int64" and 8 or 4)
    total, largest = total + b, math.max(largest, b)
  end
  -- Build without drawing random numbers: every tensor is replaced from the file.
  local Module = require "lumen.nn.module"
  Module.skip_init = true
  local common = require "lumen.import_common"
  local ok, model = pcall(common.capped, math.max(largest, 1), nil,
    ("the largest tensor in the checkpoint (%d bytes): the architecture does not match its tensors"):format(largest),
    build, a, tensors, path, { left = total, total = total })
  Module.skip_init = false
  if not ok then error((tostring(model):find(path, 1, true) and "" or path .. ": ") .. tostring(model), 0) end
  for _, s in ipairs(model:state()) do
    local t = tensors[s.name]
    if not t then error(("%s: checkpoint has no tensor '%s'"):format(path, s.name), 0) end
    local ok2, err = pcall(model.set_state, model, s.name, t)
    if not ok2 then error(("%s: %s"):format(path, err), 0) end
  end
  model.labels = decode(path, meta, "lumen.labels")
  model.input_spec = decode(path, meta, "lumen.input_spec")
  model:eval()
  return model
end

return M
