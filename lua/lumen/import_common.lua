-- lumen.import_common: what the ONNX and TFLite importers share.
--
--   builder()            collects nn.Graph nodes and runs each one, as it is added, on a probe input
--                        (no grad, eval mode): importers learn every intermediate shape, and a model
--                        that cannot run fails at load time, naming the node, not at first use.
--   run(spec, args)      evaluates a node spec ({module =} | {fn =} | {op =, args =}) on tensors.
--   same_pads(...)       SAME padding as TensorFlow / ONNX SAME_UPPER compute it (odd extra at the end).
--   batch_reshape(t, x)  a reshape where a leading 1 (the batch of the exporting run) follows x's batch.
--   finish(b, ...)       the nn.Graph, in eval mode (so BatchNorm folded: lumen.nn.fold), with labels and
--                        input_spec.
--   named_errors(path, fn, ...)  fn(...), its errors prefixed with the file when they do not name it.
--   loader(format, read, build)  a format's load(path [, opts]): read the file, build the graph.
local lumen = require "lumen"

local M = {}

-- Runs a node spec on args (an array of tensors, one per spec input).
function M.run(spec, args, n)
  if spec.module then return spec.module:forward(table.unpack(args, 1, n)) end
  if spec.fn then return spec.fn(table.unpack(args, 1, n)) end
  local a = { table.unpack(args, 1, n) }
  for k, v in ipairs(spec.args or {}) do a[n + k] = v end
  return lumen[spec.op](table.unpack(a, 1, n + #(spec.args or {})))
end

local Builder = {}
Builder.__index = Builder

function M.builder()
  return setmetatable({ inputs = {}, nodes = {}, probe = {} }, Builder)
end

-- A graph input; `probe` is the tensor shapes are learnt from (nil when its shape is unknown).
function Builder:input(name, probe)
  self.inputs[#self.inputs + 1] = name
  self.probe[name] = probe
end

-- Adds a node {name =, inputs =, module = | fn =, type = | op =, args =} and probes it.
function Builder:add(spec)
  if spec.module then spec.module:eval() end
  self.nodes[#self.nodes + 1] = spec
  local args = {}
  for i, name in ipairs(spec.inputs) do
    args[i] = self.probe[name]
    if args[i] == nil then return end
  end
  local y = lumen.no_grad(M.run, spec, args, #spec.inputs)
  if not lumen.is_tensor(y) then error("did not produce a tensor", 0) end
  self.probe[spec.name] = y
end

-- The probed shape of a graph value, or nil when unknown.
function Builder:shape(name)
  local t = self.probe[name]
  return t and t.shape
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
function M.batch_reshape(x, target)
  local s, out = x.shape, {}
  for i, v in ipairs(target) do out[i] = v == 0 and s[i] or v end
  if out[1] == 1 and s[1] ~= 1 then out[1] = s[1] end
  return lumen.reshape(x, out)
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
-- description or nil, message; `build(desc, opts)` makes the graph. Raises "path: reason".
function M.loader(format, read, build)
  return function(path, opts)
    if type(path) ~= "string" then error(format .. ".load: expected a file path, got " .. type(path), 2) end
    local desc, err = read(path)
    if not desc then error(err, 0) end
    return M.named_errors(path, build, desc, opts or {})
  end
end

-- Sets a module's tensors from a table name -> tensor (nil entries skipped), checking shapes.
function M.set_tensors(m, tensors)
  for k, t in pairs(tensors) do m:set_state(k, t) end
  return m
end

return M
