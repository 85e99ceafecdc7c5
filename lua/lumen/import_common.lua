-- lumen.import_common: what the ONNX and TFLite importers share.
--
--   builder()            collects nn.Graph nodes and runs each one, as it is added, on a probe input
--                        (no grad, eval mode): importers learn every intermediate shape, and a model
--                        that cannot run fails at load time, naming the node, not at first use.
--                        The probe is bounded (limits.c): probe tensors alive at once by probe_bytes
--                        (each freed after its last reader when the importer says how many there are),
--                        the operations of every node, estimated before it runs, by probe_ops in all,
--                        and the weights the built layers hold by model_bytes.
--   run(spec, args)      evaluates a node spec ({module =} | {fn =} | {op =, args =}) on tensors.
--   same_pads(...)       SAME padding as TensorFlow / ONNX SAME_UPPER compute it (odd extra at the end).
--   batch_reshape(t, x)  a reshape where a leading 1 (the batch of the exporting run) follows x's batch;
--   reshape_shape(s, x)  the shape it gives for an input of shape s, without a tensor.
--   finish(b, ...)       the nn.Graph, in eval mode (so BatchNorm folded: lumen.nn.fold), with labels and
--                        input_spec.
--   named_errors(path, fn, ...)  fn(...), its errors prefixed with the file when they do not name it.
--   loader(format, read, build)  a format's load(path [, opts]): read the file, build the graph, every
--                        tensor made meanwhile held to tensor_bytes.
local lumen = require "lumen"
local core = lumen.core

local M = {}

-- Runs a node spec on args (an array of tensors, one per spec input).
function M.run(spec, args, n)
  if spec.module then return spec.module:forward(table.unpack(args, 1, n)) end
  if spec.fn then return spec.fn(table.unpack(args, 1, n)) end
  local a = { table.unpack(args, 1, n) }
  for k, v in ipairs(spec.args or {}) do a[n + k] = v end
  return lumen[spec.op](table.unpack(a, 1, n + #(spec.args or {})))
end

---------------------------------------------------------------- sizes, in floats (no integer wrap-around)

local function numel(shape)
  local n = 1.0
  for _, d in ipairs(shape) do n = n * d end
  return n
end

local function shape_str(s)
  local parts = {}
  for i, d in ipairs(s) do parts[i] = tostring(math.tointeger(d) or d) end
  return "(" .. table.concat(parts, ", ") .. (#s == 1 and ",)" or ")")
end
M.shape_str = shape_str

local function bytes_of(t) return t:numel() * (t:dtype() == "int64" and 8.0 or 4.0) end

-- Raises unless value is within limit `name` ("<what> exceeds the <name> limit of ... (lumen.limits{...})").
function M.limit(name, value, what) core.limit_check(name, value, what) end

-- A constant of `shape` (dtype "float32" | "int64") about to be made by a converter: within tensor_bytes.
function M.check_const(shape, dtype, what)
  local bytes = numel(shape) * (dtype == "int64" and 8 or 4)
  M.limit("tensor_bytes", bytes, ("%s of shape %s (%.0f bytes)"):format(what, shape_str(shape), bytes))
end

-- Runs fn(...) with every tensor made meanwhile capped at `bytes` (named by limit `name`, or larger than
-- `why`), restoring the cap before; errors pass through, a limit's without the Lua position the op that
-- met it added ("ops_math.lua:377: a tensor of shape ... exceeds the probe_bytes limit ...").
function M.capped(bytes, name, why, fn, ...)
  local prev = table.pack(core.tensor_cap())
  core.tensor_cap(bytes, name, why or "")
  local res = table.pack(pcall(fn, ...))
  core.tensor_cap(prev[1], prev[2], prev[3])
  if not res[1] then
    local msg = res[2]
    if type(msg) == "string" and (msg:find(" limit of ", 1, true) or msg:find("is larger than the largest tensor", 1, true)) then
      msg = msg:gsub("^[^%s:]+%.lua:%d+: ", "")
    end
    error(msg, 0)
  end
  return table.unpack(res, 2, res.n)
end

---------------------------------------------------------------- the work of a node, before it runs

-- Output size of one spatial dimension.
local function out_size(n, k, s, before, after, d, ceil)
  local span = n + before + after - d * (k - 1) - 1
  if span < 0 then return 0 end
  return (ceil and math.ceil(span / s) or span // s) + 1
end

-- The padding of module options as {before..., after...} for nd spatial dimensions.
local function pads_of(p, nd, size, k, stride, dil)
  if p == "valid" or p == nil then p = 0 end
  if p == "same" then
    local r = {}
    for i = 1, nd do
      local total = math.max(((size[i] + stride[i] - 1) // stride[i] - 1) * stride[i] + (k[i] - 1) * dil[i] + 1 - size[i], 0)
      r[i], r[nd + i] = total // 2, total - total // 2
    end
    return r
  end
  if type(p) == "number" then p = { p } end
  if #p == 2 * nd then
    if nd == 2 then return { p[1], p[2], p[3], p[4] } end -- {top, left, bottom, right}
    return { p[1], p[2] }
  end
  local r = {}
  for i = 1, nd do r[i], r[nd + i] = p[i] or p[1], p[i] or p[1] end
  return r
end

local function as_list(v, nd)
  if type(v) == "table" then return v end
  local r = {}
  for i = 1, nd do r[i] = v end
  return r
end

-- Output elements and operations per output element of a windowed module (conv, pool) on input
-- shape x, or nil when its options are not the usual ones.
local function window_work(m, x, nd, per_out)
  local o = m.opts
  if type(o) ~= "table" or #x ~= nd + 2 then return nil end
  local k = o.kernel_size and as_list(o.kernel_size, nd) or {}
  if not o.kernel_size then
    local w = m.weight.shape
    for i = 1, nd do k[i] = w[2 + i] end
  end
  local stride, dil = as_list(o.stride or 1, nd), as_list(o.dilation or 1, nd)
  local size = {}
  for i = 1, nd do size[i] = x[2 + i] end
  local ok, pads = pcall(pads_of, o.padding, nd, size, k, stride, dil)
  if not ok or type(pads) ~= "table" then return nil end
  local out, window = x[1] * 1.0, 1.0
  for i = 1, nd do
    local st = math.max(tonumber(stride[i]) or 1, 1)
    out = out * out_size(size[i], k[i], st, pads[i] or 0, pads[nd + i] or 0, tonumber(dil[i]) or 1, o.ceil_mode)
    window = window * k[i]
  end
  return out, per_out or window
end

-- Operations a node will do on inputs of these shapes, estimated before it runs: convolutions and
-- dense layers count multiply-adds, pools their window elements, matmul its products; any other
-- node the elements it reads (what it writes is counted after it runs).
function M.work(spec, shapes)
  local read = 0.0
  for _, s in ipairs(shapes) do read = read + numel(s) end
  local m, x = spec.module, shapes[1]
  if m and x then
    local t = m.type
    if (t == "Conv2d" or t == "Conv1d") and m.weight then
      local nd = t == "Conv2d" and 2 or 1
      local w = m.weight
      local out, per = window_work(m, x, nd, w:numel() / w:size(1))
      if out then return out * w:size(1) * per end
    elseif t == "ConvTranspose2d" and m.weight then
      return read * m.weight:numel() / m.weight:size(1) -- each input element meets every weight of its channel
    elseif t == "MaxPool2d" or t == "AvgPool2d" or t == "MaxPool1d" then
      local out, per = window_work(m, x, t == "MaxPool1d" and 1 or 2)
      if out then return out * x[2] * per end
    elseif t == "Linear" and m.weight then
      return read * m.weight:size(1)
    end
  end
  if (spec.fn == lumen.matmul or spec.op == "matmul") and #shapes == 2 then
    local a, b = shapes[1], shapes[2]
    local n, rows = #b >= 2 and b[#b] or 1, #a >= 2 and a[#a - 1] or 1
    return math.max(numel(a) * n, numel(b) * rows)
  end
  return read
end

---------------------------------------------------------------- the builder

local Builder = {}
Builder.__index = Builder

local COLLECT_BYTES = 16 * 2 ^ 20 -- dropped probe bytes (or the live ones, if more) that make the builder collect

function M.builder()
  local lim = lumen.limits()
  return setmetatable({ inputs = {}, nodes = {}, probe = {}, shapes = {}, left = {}, holders = {},
                        live = 0, ops = 0, weights = 0, dropped = 0, limits = lim }, Builder)
end

-- Takes a probe tensor for `name`: counts its bytes once per tensor object, within probe_bytes.
function Builder:hold(name, t)
  self.shapes[name] = t.shape
  local n = self.holders[t] or 0
  if n == 0 then
    local b = bytes_of(t)
    M.limit("probe_bytes", self.live + b, ("the size of the probe tensors alive (%.0f bytes, with '%s' of shape %s)"):format(
      self.live + b, name, shape_str(t.shape)))
    self.live = self.live + b
  end
  self.holders[t] = n + 1
  self.probe[name] = t
end

-- Drops the probe tensor of `name` (its shape stays known).
function Builder:drop(name)
  local t = self.probe[name]
  if not t then return end
  self.probe[name] = nil
  local n = self.holders[t] - 1
  self.holders[t] = n > 0 and n or nil
  if n > 0 then return end
  local b = bytes_of(t)
  self.live, self.dropped = self.live - b, self.dropped + b
  if self.dropped >= math.max(COLLECT_BYTES, self.live) then
    collectgarbage()
    core.cache_release() -- the blocks of the dropped values go back: a load's peak is not a pass's
    self.dropped = 0
  end
end

-- A graph input of `shape` (nil when unknown) and dtype "float32" (probed with zeros) or "int64" (ones:
-- 1-based ids). The probe is made only once its size is known to fit probe_bytes. (A probe tensor in
-- place of the shape is taken as it is.)
function Builder:input(name, shape, dtype)
  self.inputs[#self.inputs + 1] = name
  if lumen.is_tensor(shape) then return self:hold(name, shape) end -- a probe made by the caller
  if not shape then return end
  self.shapes[name] = shape
  local b = numel(shape) * (dtype == "int64" and 8 or 4)
  M.limit("probe_bytes", self.live + b, ("the probe of input '%s' of shape %s (%.0f bytes)"):format(name, shape_str(shape), b))
  self:hold(name, dtype == "int64" and lumen.ones(shape):long() or lumen.zeros(shape))
end

-- Freeing probes: readers(name, n) says n more nodes read `name` (math.huge for graph outputs);
-- read(name) that one of them has. At zero the probe tensor is dropped. Values whose readers were never
-- given are kept.
function Builder:readers(name, n)
  self.left[name] = (self.left[name] or 0) + n
  if self.left[name] <= 0 then self:drop(name) end
end

function Builder:read(name)
  local n = self.left[name]
  if n == nil then return end
  self.left[name] = n - 1
  if n - 1 <= 0 then self:drop(name) end
end

-- Counts `bytes` more of weights held by the built layers (each layer's own; a tensor shared by n
-- layers counts n times), within model_bytes.
function Builder:count_weights(bytes, what)
  self.weights = self.weights + bytes
  M.limit("model_bytes", self.weights, ("the size of the built layers' weights (%.0f bytes, with %s)"):format(self.weights, what))
end

local function spec_weights(spec)
  local b = 0.0
  if spec.module and spec.module.state then
    for _, s in ipairs(spec.module:state()) do b = b + bytes_of(s.tensor) end
  end
  for _, a in ipairs(spec.args or {}) do
    if lumen.is_tensor(a) then b = b + bytes_of(a) end
  end
  return b
end

-- Counts a node's operations (estimated by M.work from the probe shapes) within probe_ops.
function Builder:count_ops(ops, what)
  self.ops = self.ops + ops
  M.limit("probe_ops", self.ops, ("the work of the shape probe (%.0f operations, with %s)"):format(self.ops, what))
end

-- Runs spec on args the way the probe does: its work counted before, every tensor it makes capped at
-- `cap` bytes (named by limit `name`), what it writes counted after.
function Builder:evaluate(spec, args, cap, name, what)
  local shapes = {}
  for i, a in ipairs(args) do shapes[i] = a.shape end
  self:count_ops(M.work(spec, shapes), what)
  local y = M.capped(cap, name, nil, lumen.no_grad, M.run, spec, args, #spec.inputs)
  if not lumen.is_tensor(y) then error("did not produce a tensor", 0) end
  self:count_ops(y:numel(), what)
  return y
end

-- Adds a node {name =, inputs =, module = | fn =, type = | op =, args =} and probes it.
function Builder:add(spec)
  if spec.module then spec.module:eval() end
  self.nodes[#self.nodes + 1] = spec
  self:count_weights(spec_weights(spec), "'" .. tostring(spec.name) .. "'")
  local args = {}
  for i, name in ipairs(spec.inputs) do
    args[i] = self.probe[name]
    if args[i] == nil then
      if self.shapes[name] and self.left[name] ~= nil then
        error(("the probe of '%s' was dropped before its last reader"):format(name), 0) -- an importer's miscount
      end
      return
    end
  end
  local y = self:evaluate(spec, args, self.limits.probe_bytes, "probe_bytes", "'" .. tostring(spec.name) .. "'")
  if spec.module and spec.module.indices then spec.module.indices = nil end -- MaxPool2d's switches of the probe
  self:hold(spec.name, y)
end

-- Evaluates a node whose inputs are all constants (constant folding): its work counted as the probe's,
-- what it makes within tensor_bytes, the result counted as weights.
function Builder:fold(spec, args, what)
  local y = self:evaluate(spec, args, self.limits.tensor_bytes, "tensor_bytes", what)
  self:count_weights(bytes_of(y), what)
  return y
end

-- The probe value of a graph value (a tensor), or nil when unknown.
function Builder:value(name) return self.probe[name] end

-- The probed shape of a graph value, or nil when unknown.
function Builder:shape(name)
  return self.shapes[name]
end

-- Padding (before, after) of one spatial dimension for SAME: out = ceil(in / stride).
function M.same_pads(size, kernel, stride, dilation, extra_before)
  local out = (size + stride - 1) // stride
  local total = math.max((out - 1) * stride + (kernel - 1) * dilation + 1 - size, 0)
  local small = total // 2
  if extra_before then return total - small, small end
  return small, total - small
end

-- Reshapes x to target (0 copies x's size at that position, -1 infers one size). When the model was
-- exported with a batch of 1, the literal 1 leading the target follows x's first dimension, so a
-- model traced at batch 1 still runs batches.
local function batch_target(s, target)
  local out = {}
  for i, v in ipairs(target) do out[i] = v == 0 and s[i] or v end
  if out[1] == 1 and s[1] ~= 1 then out[1] = s[1] end
  return out
end

function M.batch_reshape(x, target)
  return lumen.reshape(x, batch_target(x.shape, target))
end

-- The shape batch_reshape gives an input of shape s, or nil, reason: no tensor is made.
function M.reshape_shape(s, target)
  local out, known, infer = batch_target(s, target), 1.0, nil
  for i, v in ipairs(out) do
    if v == -1 and not infer then infer = i
    elseif v == nil or v < 0 then return nil, ("size %s at position %d"):format(tostring(v), i)
    else known = known * v end
  end
  local n = numel(s)
  if infer then
    if known == 0 or n % known ~= 0 then return nil, ("cannot infer -1 for %.0f elements"):format(n) end
    out[infer] = math.tointeger(n // known) or n // known
  elseif known ~= n then
    return nil, ("%.0f elements cannot take shape %s"):format(n, shape_str(out))
  end
  return out
end

-- The nn.Graph of a builder, in eval mode (eval() folds each BatchNorm into its convolution), with opts.labels (a path or an array) and an input_spec
-- made of `spec` (what the file says) overridden by opts.input_spec.
function M.finish(b, outputs, spec, opts)
  local model = lumen.nn.Graph { inputs = b.inputs, outputs = outputs, nodes = b.nodes }
  model:eval()
  local labels = opts.labels
  if type(labels) == "string" then
    local lines, err = lumen.labels(labels)
    if not lines then error("labels: " .. err, 0) end
    labels = lines
  end
  model.labels = labels
  if spec or opts.input_spec then
    model.input_spec = {}
    for k, v in pairs(spec or {}) do model.input_spec[k] = v end
    for k, v in pairs(opts.input_spec or {}) do model.input_spec[k] = v end
  end
  return model
end

-- Calls fn(...) and re-raises any error as "path: reason" (importers' own messages already are).
function M.named_errors(path, fn, ...)
  local res = table.pack(pcall(fn, ...))
  if res[1] then return table.unpack(res, 2, res.n) end
  local msg = tostring(res[2])
  if msg:sub(1, #path + 2) ~= path .. ": " then msg = path .. ": " .. msg end
  error(msg, 0)
end

-- The load(path [, opts]) -> nn.Graph of a format: `read` (lumen.core.onnx_load, ...) gives a
-- description or nil, message; `build(desc, opts)` makes the graph, every tensor made meanwhile within
-- tensor_bytes (the probe lowers the cap to probe_bytes while it runs). Raises "path: reason".
function M.loader(format, read, build)
  return function(path, opts)
    if type(path) ~= "string" then error(format .. ".load: expected a file path, got " .. type(path), 2) end
    local desc, err = read(path)
    if not desc then error(err, 0) end
    -- Every layer's tensors come from the file: no random initial values to draw, and zeros that are never
    -- written stay out of memory (fresh pages) until the file's tensors take their place.
    local Module = require "lumen.nn.module"
    local before = Module.skip_init
    Module.skip_init = true
    local ok, model = pcall(M.named_errors, path, M.capped, lumen.limits().tensor_bytes, "tensor_bytes", nil, build,
      desc, opts or {})
    Module.skip_init = before
    if not ok then error(model, 0) end
    -- What the build left (the parsed file, probe tensors, folding's temporaries) goes now, and the blocks
    -- it freed go back to the system: they are of other sizes than a pass needs, and a model's first pass
    -- would otherwise add to them (peak memory).
    desc = nil -- luacheck: ignore
    collectgarbage()
    core.cache_release()
    return model
  end
end

-- Sets a module's tensors from a table name -> tensor (nil entries skipped), checking shapes.
function M.set_tensors(m, tensors)
  for k, t in pairs(tensors) do m:set_state(k, t) end
  return m
end

return M
