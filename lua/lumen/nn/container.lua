-- nn.Container: what Sequential and Graph share — naming children, running a child with errors
-- prefixed by its name and type, the pass options (capture, replace, stop_at, logits), trace(),
-- layers(), layer(), the graph questions methods ask (inputs_of, ending, roles), parameters, state,
-- train/eval, summary(), save() and preprocess(). A subclass implements :_run(ctx, x), :children()
-- and :_flow(flow, inputs) (its nodes in execution order, for the graph questions).
--
-- A pass keeps its state in ctx, shared by the containers nested in the one it started from:
--   want      names to capture (a set), or true for every layer;  captured  name -> tensor
--   replace   name -> tensor standing for that layer's output (the layer does not run)
--   stop      {name =, reached =} for stop_at;  root  the container the pass started from
--   rec       {shapes = {name -> shape}, layers = {{name, type, shape}, ...}}: what trace() returns
--   logits    (per container) whether this container's final Softmax is skipped
--   fold      group -> how it runs in this pass, for the folded Conv+BN+ReLU groups (lumen.nn.fold)
-- A subclass's _run calls self:call_child(m, Container.sub_ctx(ctx, logits, m), ...) for each child and
-- Container.stops_after(ctx, name) after it; call_child does the rest (replace, capture, shapes, extras).
--
-- Extra outputs: a leaf's forward may return a second value, a table of named tensors (an attention
-- layer: `return y, {attention = A}`). Only the first value flows on; each extra is capturable, traced
-- and listed by layers() as "<layer name>:<key>". A class may declare them up front (`extras = {"attention"}`).
local lumen = require "lumen"
local Module = require "lumen.nn.module"
local fold = require "lumen.nn.fold"

local Container = Module.class("Container")
Container.is_container = true

-- Layer types the graph questions treat specially. WEIGHTED: layers that apply a weight as a linear
-- map of their input (what LRP rules and the "first" role are about); a new class joins with
-- `role_weighted = true`. PASS: layers that leave a classifier's scores as they are (an ending may
-- hold them between pool, dense layer and output).
Container.WEIGHTED = { Conv1d = true, Conv2d = true, ConvTranspose2d = true, Linear = true }
Container.PASS = { Flatten = true, Dropout = true, Identity = true, Reshape = true }
local GAP = { GlobalAvgPool2d = true, GlobalAveragePool = true }
local DENSE = { Linear = true, Gemm = true }
local SOFTMAX = { Softmax = true }

-- Gives every nameless child a Keras-like name (`conv2d_1`, `dense_2`, ...) and rejects duplicates.
-- `taken` lists names already used (graph inputs).
function Container:name_children(children, taken)
  local used, count = {}, {}
  for _, n in ipairs(taken or {}) do used[n] = "input" end
  for _, m in ipairs(children) do
    if m.name then
      if used[m.name] then error(("%s: duplicate layer name '%s'"):format(self.type, m.name), 3) end
      used[m.name] = true
    end
  end
  for _, m in ipairs(children) do
    if not m.name then
      local k = (count[m.prefix] or 0) + 1
      while used[m.prefix .. "_" .. k] do k = k + 1 end
      count[m.prefix] = k
      m.name = m.prefix .. "_" .. k
      used[m.name] = true
    end
  end
end

-- Resolves modules that refer to other layers by name (MaxUnpool2d{pool = "pool1"}) within this
-- container; names a nested container cannot resolve are resolved by the enclosing one.
function Container:link()
  for _, l in ipairs(self:layers()) do
    local m = l.module
    if m.pool_name and not m.pool then m.pool = self:layer(m.pool_name) end
  end
end

local function strip_position(msg)
  if type(msg) ~= "string" then return tostring(msg) end
  return (msg:gsub("^[^\n:]+%.lua:%d+: ", ""))
end

-- "<layer>:<key>" -> layer, key (nil when name has no such form).
local function split_extra(name)
  return name:match("^(.*):([^:]+)$")
end

-- Records an output of the pass: capture when wanted, its shape (and a row in rec.layers for leaves).
-- The container's record (what layers() lists) keeps last pass's shape table while the shape stays (no table
-- per layer and pass); a trace gets tables of its own, so that changing one changes nothing else.
local is_tensor, shape_or = lumen.core.is_tensor, lumen.core.shape_or
local function note(self, ctx, name, y, type_name, leaf)
  local shapes = self._shapes
  if not shapes then
    shapes = {}
    self._shapes = shapes
  end
  local tensor = is_tensor(y)
  shapes[name] = tensor and shape_or(y, shapes[name]) or nil
  if ctx.want then self:capture(ctx, name, y) end
  local rec = ctx.rec
  if rec then
    local shape = tensor and y.shape or nil
    rec.shapes[name] = shape
    if leaf then rec.layers[#rec.layers + 1] = { name = name, type = type_name, shape = shape } end
  end
end

-- Child m's output for args (run under call_child's pcall, or Graph's plain pass; a plain function, not a
-- closure per call).
local function run_child(self, m, ctx, ...)
  if m.is_container then return m:_run(ctx, ...) end
  local g = m._fold and fold.group_of(self, m)
  if g then return fold.call(g, m, ctx, ...) end
  return m:forward(...)
end
Container.run_child = run_child

-- The error of child m, msg, as a pass raises it: "name (Type): msg".
function Container.child_error(m, msg)
  return ("%s (%s): %s"):format(m.name, m.type, strip_position(msg))
end

-- Records the extra outputs (a table) of leaf m, named `name`.
function Container:note_extras(ctx, m, name, extra)
  local keys = {}
  for k in pairs(extra) do keys[#keys + 1] = tostring(k) end
  table.sort(keys)
  self._extra_keys = self._extra_keys or {}
  self._extra_keys[name] = keys
  for _, k in ipairs(keys) do note(self, ctx, name .. ":" .. k, extra[k], m.type .. ":" .. k, true) end
end

-- Runs child m on args (or takes its output from ctx.replace), prefixing any error with
-- "name (Type): "; captures and records its output and any extra outputs of a leaf.
function Container:call_child(m, ctx, ...)
  local name = m.name
  local y, extra
  if ctx.ran then ctx.ran[name] = true end
  local replaced = ctx.replace and ctx.replace[name]
  if replaced ~= nil then
    y = replaced
  else
    local ok
    ok, y, extra = pcall(run_child, self, m, ctx, ...)
    if not ok then error(Container.child_error(m, y), 0) end
  end
  note(self, ctx, name, y, m.type, not m.is_container)
  if type(extra) == "table" and not m.is_container then self:note_extras(ctx, m, name, extra) end
  return y
end

-- Blocks handed back early. A pass that records nothing (lumen.no_grad) and captures, replaces and traces
-- nothing (Container.frees) gives an intermediate tensor's memory back (core.free) as soon as its last reader has
-- run, instead of leaving it to the garbage collector: the next layer's output then takes a block that is still
-- in the cache. Only a tensor that a layer of lumen's own (OWN_LEAVES, with its class's forward) or a graph's op
-- node made in the pass goes back, and only if every layer that read it is such a layer too: a function node, a
-- nested container or a layer of the user's own may keep what it is given, so whatever it reads stays. The
-- pass's inputs and outputs, and tensors a layer hands on unchanged while another reader still needs them, stay.
local OWN_LEAVES = { "Conv1d", "Conv2d", "ConvTranspose2d", "Linear", "ReLU", "ReLU6", "LeakyReLU", "Clip", "Sigmoid",
                     "SiLU", "Tanh", "GELU", "HardSigmoid", "HardSwish", "Softmax", "LogSoftmax", "MaxPool1d",
                     "MaxPool2d", "AvgPool2d", "GlobalAvgPool2d", "GlobalMaxPool2d", "GlobalMaxPool1d", "Flatten",
                     "Dropout", "BatchNorm1d", "BatchNorm2d", "LayerNorm" }
-- The ops whose graph op nodes qualify (what the importers make): each returns a tensor it made, or its input.
local OWN_OPS = { "add", "sub", "mul", "div", "pow", "neg", "exp", "log", "sqrt", "reciprocal", "erf", "abs", "sign",
                  "floor", "permute", "relu", "relu6", "sigmoid", "tanh", "silu", "hardswish", "hardsigmoid" }
local own_forward, own_op -- the forwards of OWN_LEAVES, lumen's functions of OWN_OPS (made at first use)

function Container.frees(ctx)
  return not (lumen.autograd.is_enabled() or ctx.want or ctx.rec or ctx.replace)
end

-- Whether child m (a module, or a graph's function or op record) makes its output itself and keeps neither it
-- nor what it reads: a leaf of OWN_LEAVES running its class's forward, or an op node of OWN_OPS calling lumen's own
-- function of that name (as lumen defined it, not one set in its place).
function Container.makes_own(m)
  if not own_forward then
    own_forward, own_op = {}, {}
    local nn = require "lumen.nn"
    for _, name in ipairs(OWN_LEAVES) do own_forward[nn[name].forward] = true end
    for _, name in ipairs(OWN_OPS) do own_op[name] = lumen.autograd.builtin[name] end
  end
  if m.is_container then return false end
  if getmetatable(m) == nil then return m.op ~= nil and m.call ~= nil and own_op[m.op] == m.call end -- a record
  return own_forward[m.forward] == true
end

-- The context for child m: for a nested container the same pass state with logits only when asked; a leaf
-- (which never reads logits) shares the pass's own table.
function Container.sub_ctx(ctx, logits, m)
  if m and not m.is_container then return ctx end
  return { want = ctx.want, captured = ctx.captured, replace = ctx.replace, stop = ctx.stop, rec = ctx.rec,
           root = ctx.root, ran = ctx.ran, logits = logits, fold = ctx.fold }
end

-- Whether the forward should end after layer `name` (opts.stop_at); marks it reached.
function Container.stops_after(ctx, name)
  local stop = ctx.stop
  if stop and (stop.reached or stop.name == name) then
    stop.reached = true
    return true
  end
  return false
end

function Container:capture(ctx, name, y)
  if ctx.want and (ctx.want == true or ctx.want[name]) then ctx.captured[name] = y end
end

-- Whether module m is, holds or owns (as an extra) the layer `name`.
local function holds(m, name)
  local base = split_extra(name)
  if m.name == name or m.name == base then return true end
  return m.is_container and (m:layer(name) ~= nil or (base ~= nil and m:layer(base) ~= nil)) or false
end

-- Whether the pass needs m's output for its own sake (captured, or where it stops), not only as an
-- input of later layers: layers that feed only a replaced layer are skipped otherwise.
function Container.wanted(ctx, m)
  if ctx.want == true then return true end
  if ctx.stop and holds(m, ctx.stop.name) then return true end
  for n in pairs(ctx.want or {}) do
    if holds(m, n) then return true end
  end
  return false
end

-- The edit distance (Levenshtein) between strings a and b, for "did you mean" in error messages
-- (Container.edit_distance; lumen.explain's option checks use it too).
local function distance(a, b)
  local prev = {}
  for j = 0, #b do prev[j] = j end
  for i = 1, #a do
    local cur = { [0] = i }
    for j = 1, #b do
      local cost = a:sub(i, i) == b:sub(j, j) and 0 or 1
      cur[j] = math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
    end
    prev = cur
  end
  return prev[#b]
end
Container.edit_distance = distance

-- Names close to `name` (edit distance <= 3 or sharing a prefix), for error messages.
function Container:close_names(name)
  local res = {}
  for _, l in ipairs(self:layers()) do
    if distance(name, l.name) <= 3 or l.name:find(name, 1, true) or name:find(l.name, 1, true) then
      res[#res + 1] = l.name
    end
  end
  return res
end

-- Raises "<model>: no layer named 'x' (did you mean ...?)" at `level`.
function Container:no_layer(n, level)
  local close = self:close_names(tostring(n))
  error(("%s: no layer named '%s'%s"):format(self.name or self.type, tostring(n),
    #close > 0 and (" (did you mean " .. table.concat(close, ", ") .. "?)") or ""), level + 1)
end

-- Whether `name` can be captured: a layer, a model input, or an extra "<layer>:<key>" of a leaf (one
-- its class declares, or any key when the class declares none).
function Container:knows(name)
  if type(name) ~= "string" then return false end
  if self:layer(name) or self:is_input(name) then return true end
  local base, key = split_extra(name)
  local m = base and self:layer(base)
  if not m or m.is_container then return false end
  if type(m.extras) ~= "table" then return true end
  for _, k in ipairs(m.extras) do if k == key then return true end end
  return false
end

local PASS_OPTIONS = { capture = true, replace = true, stop_at = true, logits = true }

-- The pass behind forward() and trace(): returns the output, the context (captures, records).
function Container:_pass(x, opts, tracing, level)
  level = level + 1
  if opts ~= nil and type(opts) ~= "table" then
    error(("%s: forward options must be a table, got %s"):format(self.name or self.type, type(opts)), level)
  end
  opts = opts or {}
  for k in pairs(opts) do
    if not PASS_OPTIONS[k] then
      error(("%s: unknown forward option '%s' (capture, logits, replace, stop_at)"):format(self.name or self.type,
        tostring(k)), level)
    end
  end
  local logits = opts.logits
  if logits ~= nil and type(logits) ~= "boolean" then
    error(("%s: logits must be true, false or nil, got %s"):format(self.name or self.type, tostring(logits)), level)
  end
  local ctx = { logits = logits == true, root = self, fold = {} }
  local function check(n)
    if not self:knows(n) then self:no_layer(n, level + 1) end
  end
  local cap = opts.capture
  if cap == "all" then
    ctx.want, ctx.captured = true, {}
  elseif cap ~= nil then
    if type(cap) ~= "table" then
      error(("%s: capture must be a list of layer names or \"all\", got %s"):format(self.name or self.type,
        tostring(cap)), level)
    end
    ctx.want, ctx.captured = {}, {}
    for _, n in ipairs(cap) do
      check(n)
      ctx.want[n] = true
      if not (self:layer(n) or self:is_input(n)) then ctx.ran = {} end -- an extra: checked after the pass
    end
  end
  if opts.replace ~= nil then
    if type(opts.replace) ~= "table" then
      error(("%s: replace must be a table {[layer name] = tensor}"):format(self.name or self.type), level)
    end
    ctx.replace = {}
    for n, t in pairs(opts.replace) do
      if not (self:layer(n) and not self:is_input(n)) then self:no_layer(n, level) end
      if not lumen.is_tensor(t) then
        error(("%s: replace['%s'] must be a tensor, got %s"):format(self.name or self.type, n, type(t)), level)
      end
      ctx.replace[n] = t
    end
  end
  if opts.stop_at then
    check(opts.stop_at)
    ctx.stop = { name = opts.stop_at }
  end
  if tracing then ctx.rec = { shapes = {}, layers = {} } end
  if ctx.want == nil and ctx.rec then ctx.captured = {} end
  local y = self:_run(ctx, x)
  for n in pairs(ctx.ran and ctx.want or {}) do
    local base, key = split_extra(n)
    if ctx.captured[n] == nil and base and ctx.ran[base] and not (ctx.replace and ctx.replace[base]) then
      error(("%s: layer '%s' returned no extra output '%s'"):format(self.name or self.type, base, key), level)
    end
  end
  if logits == false and not (ctx.stop and ctx.stop.reached) then
    if not lumen.is_tensor(y) then
      error(("%s: logits = false (probabilities) needs a model with one output"):format(self.name or self.type), level)
    end
    if not self:final_softmax() then y = lumen.softmax(y, -1) end
  end
  return y, ctx
end

-- forward(x [, opts]) -> y, or y, captured when opts.capture is given.
-- opts: capture = {names} | "all"; replace = {[name] = tensor} (that layer's output, the layer does not
-- run, nor the layers that only feed it); stop_at = name (ends the pass after that layer and returns
-- its output: layers after it never run); logits = true (stop before a final Softmax: the scores) |
-- false (probabilities: the model's own output when it ends in a Softmax, else softmax over the last
-- dim of its output) | nil (the model's own output).
function Container:forward(x, opts)
  local y, ctx = self:_pass(x, opts, false, 2)
  if ctx.want then return y, ctx.captured end
  return y
end

-- trace(x [, opts]) -> {output =, captured = {name -> tensor}, shapes = {name -> shape}, layers =
-- {{name =, type =, shape =}, ...}, stopped_at = name | nil}: one pass with forward's options that also
-- records the output shape of every input, layer, nested container and extra it passed (`layers`
-- lists the leaves and extras in the order they ran). Shapes answer "which layer is spatial" without
-- another pass.
function Container:trace(x, opts)
  local y, ctx = self:_pass(x, opts, true, 2)
  return { output = y, captured = ctx.captured, shapes = ctx.rec.shapes, layers = ctx.rec.layers,
           stopped_at = ctx.stop and ctx.stop.reached and ctx.stop.name or nil }
end

function Container:is_input(name) return false end

-- The rows layers() lists for leaf m: its own, then its extras (declared or seen in a pass).
function Container:_leaf_rows(res, m, name, type_name)
  res[#res + 1] = { name = name, type = type_name, shape = self._shapes[name], module = m }
  local keys = (self._extra_keys and self._extra_keys[name]) or (type(m) == "table" and m.extras)
  for _, k in ipairs(type(keys) == "table" and keys or {}) do
    local n = name .. ":" .. k
    res[#res + 1] = { name = n, type = type_name .. ":" .. k, shape = self._shapes[n], module = m, extra = k }
  end
end

-- layers() -> array of {name, type, shape, module [, extra]}, nested containers flattened into their
-- layers; shape is the output shape of the last pass (nil before one); an extra output is listed
-- after its layer with extra = its key.
function Container:layers()
  local res = {}
  for _, m in ipairs(self:children()) do
    if m.is_container then
      for _, l in ipairs(m:layers()) do res[#res + 1] = l end
    else
      self:_leaf_rows(res, m, m.name, m.type)
    end
  end
  return res
end

function Container:layer(name)
  for _, m in ipairs(self:children()) do
    if m.name == name then return m end
    if m.is_container then
      local found = m:layer(name)
      if found then return found end
    end
  end
  return nil
end

---------------------------------------------------------------- graph questions

-- The model's data flow with nested containers resolved: {nodes = {{name, type, module, inputs}, ...}
-- in execution order (leaves and function nodes), by_name, inputs (the model's input names), outputs
-- (names of the nodes producing the outputs), containers = {[name] = {inputs =, outputs =}}}.
function Container:flow()
  local flow = { nodes = {}, by_name = {}, containers = {} }
  flow.inputs = self.inputs and { table.unpack(self.inputs) } or { "input_1" }
  flow.outputs = self:_flow(flow, flow.inputs)
  for _, n in ipairs(flow.nodes) do flow.by_name[n.name] = n end
  return flow
end

-- Adds a leaf (or function node) to a flow.
function Container.flow_node(flow, name, type_name, m, inputs)
  flow.nodes[#flow.nodes + 1] = { name = name, type = type_name, module = m, inputs = inputs }
end

-- inputs_of(name) -> the names of what feeds layer `name` (layers or model inputs), in order; a
-- nested container's name gives what feeds the container.
function Container:inputs_of(name)
  local flow = self:flow()
  local n = flow.by_name[name] or flow.containers[name]
  if n then return { table.unpack(n.inputs) } end
  for _, i in ipairs(flow.inputs) do if i == name then return {} end end
  self:no_layer(name, 2)
end

-- The shape of `name` in a trace (or the table name -> shape given), or nil.
local function shape_in(shapes, name)
  if not shapes then return nil end
  return (shapes.shapes or shapes)[name]
end

local function spatial_dims(m, shape)
  if not shape then return nil end
  if m.type == "Conv1d" then
    if #shape ~= 3 then return nil end
    return m.channels_last and { shape[2] } or { shape[3] }
  end
  if #shape ~= 4 then return nil end
  return { shape[3], shape[4] }
end

local function all_ones(dims)
  if not dims then return false end
  for _, d in ipairs(dims) do if d ~= 1 then return false end end
  return true
end

-- Whether flow node n applies its weight as a dense layer: a Linear, or a Conv1d/Conv2d whose input
-- and output are 1 position (a 1x1 convolution on a 1x1 map, MobileNet's classifier). Convolutions
-- need shapes (a trace); without them the answer is nil (unknown).
local function dense_like(n, shapes)
  local m = n.module
  if DENSE[n.type] then return true end
  if n.type ~= "Conv2d" and n.type ~= "Conv1d" then return false end
  local out, inp = shape_in(shapes, n.name), shape_in(shapes, n.inputs[1])
  if not (out and inp) then return nil end
  return all_ones(spatial_dims(m, out)) and all_ones(spatial_dims(m, inp))
end

local function weighted(n)
  local m = n.module
  return Container.WEIGHTED[n.type] == true or (type(m) == "table" and m.role_weighted == true)
end

-- The single input node of flow node n (nil when it has several, or reads a model input).
local function single_input(flow, n)
  if not n or #n.inputs ~= 1 then return nil end
  return flow.by_name[n.inputs[1]]
end

-- The types of the last four layers, "A -> B -> C -> D", for messages.
function Container:tail()
  local types, ls = {}, {}
  for _, l in ipairs(self:layers()) do if not l.extra then ls[#ls + 1] = l end end
  for k = math.max(1, #ls - 3), #ls do types[#types + 1] = ls[k].type end
  return table.concat(types, " -> ")
end

-- ending([trace]) -> a description of a classifier head of global average pooling and one dense layer,
-- or nil and why not. The head may read: features -> GAP -> [Flatten | Dropout | Identity | Reshape]
-- -> dense -> [Flatten ...] [-> Softmax], where GAP may be an average pool whose window covers the
-- whole map and dense a 1x1 convolution on the pooled 1x1 map (the MobileNet ending). Returns
-- {features =, pool =, dense =, softmax = name | nil, weight = (classes, K) view of the dense weight,
--  bias = (classes) | nil, verified = bool}. Whole-map pools and 1x1 maps need shapes: given a trace
-- they are checked (verified = true); without one they are assumed (verified = false) — trace the
-- features once and ask again.
function Container:ending(trace)
  local flow = self:flow()
  local why = "it ends in " .. self:tail()
  if #flow.outputs ~= 1 then return nil, ("it has %d outputs"):format(#flow.outputs) end
  local verified = true
  local n = flow.by_name[flow.outputs[1]]
  local res = {}
  if n and SOFTMAX[n.type] then res.softmax = n.name; n = single_input(flow, n) end
  while n and Container.PASS[n.type] do n = single_input(flow, n) end
  if not n then return nil, why end
  local dense = dense_like(n, trace)
  local w = type(n.module) == "table" and n.module.weight
  if dense == nil then
    -- a convolution with unknown shapes: a dense layer if it is 1x1 and the map turns out 1x1
    local ws = lumen.is_tensor(w) and w.shape
    dense = ws and #ws >= 3 and all_ones({ table.unpack(ws, 3) }) or false
    verified = false
  end
  if not dense or not lumen.is_tensor(w) then return nil, why end
  res.dense = n.name
  res.weight = #w.shape == 2 and w or w:reshape { w.shape[1], w.shape[2] }
  res.bias = lumen.is_tensor(n.module.bias) and n.module.bias or nil
  n = single_input(flow, n)
  while n and Container.PASS[n.type] do n = single_input(flow, n) end
  local feat = single_input(flow, n) or (n and #n.inputs == 1 and { name = n.inputs[1] }) or nil
  if not (n and feat) then return nil, why end
  if not GAP[n.type] then
    if n.type ~= "AvgPool2d" then return nil, why end
    local k = type(n.module.config) == "function" and n.module:config().kernel_size
    if type(k) == "number" then k = { k, k } end
    if type(k) ~= "table" then return nil, why end
    local fs = shape_in(trace, feat.name)
    if fs then
      if not (#fs == 4 and k[1] >= fs[3] and k[2] >= fs[4]) then return nil, why end
    else
      verified = false
    end
  end
  res.pool, res.features, res.verified = n.name, feat.name, verified
  return res
end

-- roles([trace]) -> {first = {names}, dense = {names}, classifier = {names}}: the layers a rule set
-- (LRP composites) can refer to by role.
--   first       weighted layers (Conv1d, Conv2d, ConvTranspose2d, Linear) with no weighted layer
--               before them — the layer that reads the pixels, even behind a Pad or a scaling
--   dense       layers that act as a dense layer: Linear, and 1x1 convolutions on 1x1 maps (these
--               need the shapes of a trace)
--   classifier  the dense layer that makes the scores (only pass-through layers and a Softmax after it)
function Container:roles(trace)
  local flow = self:flow()
  local res = { first = {}, dense = {}, classifier = {} }
  local behind = {} -- name -> whether a weighted layer comes before it
  for _, n in ipairs(flow.nodes) do
    local before = false
    for _, i in ipairs(n.inputs) do
      local p = flow.by_name[i]
      if p and (behind[i] or weighted(p)) then before = true end
    end
    behind[n.name] = before
    if weighted(n) then
      if not before then res.first[#res.first + 1] = n.name end
      if dense_like(n, trace) then res.dense[#res.dense + 1] = n.name end
    end
  end
  if #flow.outputs == 1 then
    local n = flow.by_name[flow.outputs[1]]
    while n and (SOFTMAX[n.type] or n.type == "LogSoftmax" or Container.PASS[n.type]) do n = single_input(flow, n) end
    if n and weighted(n) and dense_like(n, trace) then res.classifier[1] = n.name end
  end
  return res
end

-- Whether the model's output is made by a Softmax (what forward{logits = true} skips).
function Container:final_softmax()
  local flow = self:flow()
  local n = #flow.outputs == 1 and flow.by_name[flow.outputs[1]]
  return n and SOFTMAX[n.type] or false
end

-- The name child m's tensors go under in this container's tensor names ("<prefix>.weight"): its layer
-- name (nn.Composite uses the child's local name instead).
function Container:tensor_prefix(m) return m.name end

-- Collects child entries of `method` ("parameters" or "state") under each child's tensor_prefix: a
-- leaf's own "<m.name>.weight" re-prefixed, a nested container's names prefixed.
local function collect(self, method)
  local res = {}
  for _, m in ipairs(self:children()) do
    local prefix = self:tensor_prefix(m)
    for _, p in ipairs(m[method](m)) do
      if m.is_container then p.name = prefix .. "." .. p.name
      elseif prefix ~= m.name then p.name = prefix .. p.name:sub(#m.name + 1) end
      res[#res + 1] = p
    end
  end
  return res
end
function Container:parameters() return collect(self, "parameters") end
function Container:state() return collect(self, "state") end

-- Replaces the tensor of state name "a.b.weight" (see Module:set_state).
function Container:set_state(name, t)
  for _, m in ipairs(self:children()) do
    local prefix = self:tensor_prefix(m)
    local n = #prefix
    if name:sub(1, n + 1) == prefix .. "." then
      local rest = name:sub(n + 2)
      if m.is_container then return m:set_state(rest, t) end
      local ok = false
      for _, k in ipairs(m._params) do ok = ok or k == rest end
      for _, k in ipairs(m._buffers) do ok = ok or k == rest end
      if ok then return m:set_state(rest, t) end
    end
  end
  error(("%s: no tensor named '%s'"):format(self.name or self.type, name), 0)
end

-- train() / eval(): eval() also folds each BatchNorm into the convolution before it (lumen.nn.fold),
-- train() unfolds.
function Container:train(on)
  self.training = on ~= false
  for _, m in ipairs(self:children()) do m:train(on) end
  if self.training then fold.unfold(self) else fold.fold(self) end
  return self
end

-- fold() -> {{conv =, bn =, act = names}, ...}: folds the model's Conv+BN[+ReLU] groups (eval() does);
-- unfold() undoes it (eval mode stays) and returns the model. See lumen.nn.fold.
function Container:fold() return fold.tree(self, true) end
function Container:unfold()
  fold.tree(self, false)
  return self
end

-- The dtype the model's first layer wants ("int64" for embeddings), for summary().
function Container:input_dtype()
  local first = self:children()[1]
  if not first then return "float32" end
  if first.is_container then return first:input_dtype() end
  return first.input_dtype or "float32"
end

function Container:summary(input_shape) return require("lumen.nn.summary")(self, input_shape) end
function Container:save(path) return require("lumen.checkpoint").save(self, path) end

-- model:preprocess(img) -> (1, C, H, W) as model.input_spec says (lumen.image.preprocess).
function Container:preprocess(img)
  if not self.input_spec then error((self.name or self.type) .. ": preprocess needs model.input_spec", 2) end
  return lumen.image.preprocess(img, self.input_spec)
end

return Container
