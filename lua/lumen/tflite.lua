-- lumen.tflite: TFLite models as nn.Graph, run in float. `lumen.tflite.load(path [, opts])` -> model;
-- raises "path: reason" ("m.tflite: operator 3 'dense/BiasAdd' (FULLY_CONNECTED): unsupported operator").
--
-- Operators: CONV_2D, DEPTHWISE_CONV_2D (depth_multiplier), AVERAGE_POOL_2D, ADD, RESHAPE, SOFTMAX;
-- fused activations NONE, RELU, RELU6, RELU_N1_TO_1, TANH; SAME / VALID padding (SAME computed
-- exactly as TFLite does, asymmetric when the total is odd: the extra row / column at the end),
-- strides and dilation. Quantized (uint8 / int8) weights arrive dequantized from the C parser:
-- real = scale * (q - zero_point), per channel where the file says so, int32 biases with
-- scale = input_scale * weight_scale. Activations are not re-quantized: the model runs in float.
--
-- Layout: TFLite is NHWC, lumen NCHW. Weights are converted (OHWI -> OIHW, depthwise 1HW(C*M) ->
-- (C*M)1HW with groups = C), so the lumen model takes (N, C, H, W) like every other model and gives
-- what the file's output gives ((N, 1001) for the MobileNets). A quantized input takes the float the
-- quantized value stands for: for the MobileNets (uint8, scale 1/128, zero point 128) that is the
-- image scaled to [-1, 1], and model.input_spec says so. Node names are the file's tensor names; an
-- operator with a fused activation gives two nodes: "<tensor>/pre_activation" and "<tensor>".
-- opts: labels = path or array (model.labels: labels[c] is line c of the file, the label of lumen class
-- id c, which is output index c - 1), input_spec = {...} (merged into model.input_spec).
local lumen = require "lumen"
local common = require "lumen.import_common"

local M = {}

local activations = {
  RELU = function() return lumen.nn.ReLU {} end,
  RELU6 = function() return lumen.nn.ReLU6 {} end,
  RELU_N1_TO_1 = function() return lumen.nn.Clip { min = -1, max = 1 } end,
  TANH = function() return lumen.nn.Tanh {} end,
}

-- The context of one operator: its tensors and the model-wide tables.
local Op = {}
Op.__index = Op

function Op:fail(fmt, ...) error(fmt:format(...), 0) end

function Op:tensor(k) return self.desc.tensors[self.op.inputs[k]] end

function Op:const(k, what)
  local t = self:tensor(k)
  if not (t and t.data) then self:fail("%s (input %d) must be a constant", what, k) end
  return t.data
end

-- The graph value that input k names (a constant is an error: only weights may be constant here).
function Op:value(k)
  local id = self.op.inputs[k]
  local name = self.env.names[id]
  if not name then self:fail("input %d (tensor %d) is neither a graph input nor computed before", k, id) end
  return name
end

-- Padding {top, left, bottom, right} for a window of kernel k over the NHWC input of the op.
function Op:pads(kh, kw)
  local o = self.op.options
  if o.padding == "VALID" then return { 0, 0, 0, 0 } end
  if o.padding ~= "SAME" then self:fail("unknown padding") end
  local s = self:tensor(1).shape
  local t, b = common.same_pads(s[2], kh, o.stride_h, o.dilation_h or 1)
  local l, r = common.same_pads(s[3], kw, o.stride_w, o.dilation_w or 1)
  return { t, l, b, r }
end

function Op:check_strides()
  local o = self.op.options
  if o.stride_h < 1 or o.stride_w < 1 or o.dilation_h < 1 or o.dilation_w < 1 then
    self:fail("invalid strides (%d, %d) or dilation (%d, %d)", o.stride_h, o.stride_w, o.dilation_h, o.dilation_w)
  end
end

-- The weight of a convolution in lumen's layout, made once per file tensor (operators may share one);
-- second, whether an earlier operator already had it.
local function layout(c, w, perm)
  local key = c.op.inputs[2] .. ":" .. table.concat(perm, ",")
  local t = c.env.permuted[key]
  if t then return t, true end
  t = lumen.permute(w, perm)
  c.env.permuted[key] = t
  return t, false
end

-- A module whose tensors are all given: built without drawing an initial weight when `shared` (its
-- weight is another operator's), so 1,000 operators on one weight cost no 1,000 random draws of it.
local function with_tensors(Module, cfg, tensors, shared)
  local Base = require "lumen.nn.module"
  local before = Base.skip_init
  Base.skip_init = before or shared
  local ok, m = pcall(Module, cfg)
  Base.skip_init = before
  if not ok then error(m, 0) end
  return common.set_tensors(m, tensors)
end

local function conv(c, depthwise)
  c:check_strides()
  local o = c.op.options
  local w = c:const(2, "weight")                        -- (O, KH, KW, I) or depthwise (1, KH, KW, C*M)
  local b = c.op.inputs[3] and c.op.inputs[3] > 0 and c:const(3, "bias") or nil
  local cin = c:tensor(1).shape[4]
  local s = w.shape
  if #s ~= 4 or #c:tensor(1).shape ~= 4 then
    c:fail("weight %s and input %s must both be 4-D", lumen.shape_str(w), common.shape_str(c:tensor(1).shape))
  end
  local kh, kw = s[2], s[3]
  local shared
  local cfg = { kernel_size = { kh, kw }, stride = { o.stride_h, o.stride_w }, bias = b ~= nil,
                dilation = { o.dilation_h, o.dilation_w }, padding = c:pads(kh, kw) }
  if depthwise then
    if s[1] ~= 1 or s[4] % cin ~= 0 then c:fail("depthwise weight %s does not fit %d input channels", lumen.shape_str(w), cin) end
    cfg.in_channels, cfg.out_channels, cfg.groups = cin, s[4], cin
    w, shared = layout(c, w, { 4, 1, 2, 3 })            -- (C*M, 1, KH, KW): output c*M + m reads input c
  else
    if s[4] < 1 or cin % s[4] ~= 0 then c:fail("weight %s does not fit %d input channels", lumen.shape_str(w), cin) end
    cfg.in_channels, cfg.out_channels, cfg.groups = cin, s[1], cin // s[4]
    w, shared = layout(c, w, { 1, 4, 2, 3 })            -- (O, I, KH, KW)
  end
  return { module = with_tensors(lumen.nn.Conv2d, cfg, { weight = w, bias = b }, shared) }
end

-- A constant operand of an elementwise op, in the runtime layout (4-D NHWC -> NCHW; a vector of
-- channels -> (C, 1, 1) when the other operand is an image).
local function nchw_const(t, other_rank)
  if t:dim() == 4 then return lumen.permute(t, { 1, 4, 2, 3 }) end
  if t:dim() == 1 and other_rank == 4 then return lumen.reshape(t, { t:numel(), 1, 1 }) end
  return t
end

local ops = {}

ops.CONV_2D = function(c) return conv(c, false) end
ops.DEPTHWISE_CONV_2D = function(c) return conv(c, true) end

ops.AVERAGE_POOL_2D = function(c)
  c:check_strides()
  local o = c.op.options
  local m = lumen.nn.AvgPool2d { kernel_size = { o.filter_h, o.filter_w }, stride = { o.stride_h, o.stride_w },
                                 padding = c:pads(o.filter_h, o.filter_w), count_include_pad = false }
  return { module = m }
end

ops.ADD = function(c)
  local a, b = c:tensor(1), c:tensor(2)
  if a.data and b.data then c:fail("both operands are constant") end
  if b.data then return { op = "add", inputs = { c:value(1) }, args = { nchw_const(b.data, #a.shape) } } end
  if a.data then return { op = "add", inputs = { c:value(2) }, args = { nchw_const(a.data, #b.shape) } } end
  return { op = "add", inputs = { c:value(1), c:value(2) } }
end

-- RESHAPE works on the NHWC order of the data: 4-D values are permuted to NHWC and back around it
-- (a no-op when H = W = 1, where the usual flatten before the classifier becomes nn.Flatten).
ops.RESHAPE = function(c)
  local target = c.op.options.new_shape
  if not target then
    local t = c:const(2, "shape")
    target = {}
    for k = 1, t:numel() do target[k] = math.tointeger(t:flat_get(k)) end
  end
  local s = c:tensor(1).shape
  if #s == 4 and #target == 2 and s[2] * s[3] == 1 then return { module = lumen.nn.Flatten { start_dim = 2 } } end
  return { fn = function(x)
    if x:dim() == 4 then x = lumen.permute(x, { 1, 3, 4, 2 }) end
    local y = common.batch_reshape(x, target)
    if y:dim() == 4 then y = lumen.permute(y, { 1, 4, 2, 3 }) end
    return y
  end }
end

-- SOFTMAX over the channels (the last NHWC dimension), of beta * x.
ops.SOFTMAX = function(c)
  local beta = c.op.options.beta
  local d = #c:tensor(1).shape == 4 and 2 or -1
  if beta == 1 then return { module = lumen.nn.Softmax { dim = d } } end
  return { type = "Softmax", fn = function(x) return lumen.softmax(lumen.mul(x, beta), d) end }
end

-- Unique node names for the graph values (inputs and operator results) from the file's tensor
-- names. The MLIR converter joins the names of the TensorFlow ops it fused with ";"; the first is
-- the op whose result the tensor is.
local function value_names(desc)
  local names, seen = {}, {}
  local function name(id)
    local n = desc.tensors[id].name:match("^[^;]+") or ("tensor_" .. id)
    if seen[n] then n = n .. "_" .. id end
    seen[n] = true
    names[id] = n
  end
  for _, id in ipairs(desc.inputs) do name(id) end
  for _, op in ipairs(desc.operators) do
    for _, id in ipairs(op.outputs) do name(id) end
  end
  return names
end

-- The float range a quantized image input stands for, as input_spec.scale ({-1, 1} for the
-- MobileNets), or nil for float inputs.
local function input_scale(t)
  if not t.scale or #t.scale ~= 1 then return nil end
  local qmin, qmax = 0, 255
  if t.type == "int8" then qmin, qmax = -128, 127 end
  local lo, hi = t.scale[1] * (qmin - t.zero_point[1]), t.scale[1] * (qmax - t.zero_point[1])
  for _, r in ipairs { { -1, 1 }, { 0, 1 } } do
    if math.abs(lo - r[1]) < 0.02 and math.abs(hi - r[2]) < 0.02 then return r end
  end
  return { lo, hi }
end

local function add_inputs(desc, b, env)
  local spec
  for k, id in ipairs(desc.inputs) do
    local t = desc.tensors[id]
    local s = t.shape
    if t.data then error(("input %d ('%s') is a constant"):format(k, env.value_names[id]), 0) end
    local name = env.value_names[id]
    env.names[id] = name
    b:input(name, #s == 4 and { s[1], s[4], s[2], s[3] } or s, "float32")
    b:readers(name, env.readers[id] or 0)
    if k == 1 and #s == 4 then spec = { size = { s[2], s[3] }, channels = s[4], scale = input_scale(t) } end
  end
  return spec
end

local function add_op(desc, env, b, op)
  local c = setmetatable({ desc = desc, op = op, env = env }, Op)
  local convert = ops[op.op]
  if not convert then c:fail("unsupported operator") end
  local o = op.options
  local act = op.op ~= "RESHAPE" and op.op ~= "SOFTMAX" and o.activation ~= "NONE" and o.activation or nil
  if act and not activations[act] then c:fail("unsupported fused activation %s", act) end
  if env.names[op.outputs[1]] then c:fail("its output (tensor %d) is computed by an earlier operator too", op.outputs[1]) end
  local spec = convert(c)
  local out = env.value_names[op.outputs[1]]
  spec.inputs = spec.inputs or { c:value(1) }
  spec.name = act and (out .. "/pre_activation") or out
  if not spec.module then spec.type = spec.type or (op.op:sub(1, 1) .. op.op:sub(2):lower()) end
  b:add(spec)
  if act then
    b:readers(spec.name, 1)
    b:add { name = out, inputs = { spec.name }, module = activations[act]() }
    b:read(spec.name)
  end
  env.names[op.outputs[1]] = out
  b:readers(out, env.readers[op.outputs[1]] or 0)
  for _, id in ipairs(op.inputs) do
    if id > 0 and not desc.tensors[id].data then b:read(env.names[id]) end
  end
end

-- How many operators read each tensor (graph outputs: always kept), so the probe frees each value after
-- its last reader.
local function count_readers(desc)
  local readers = {}
  for _, op in ipairs(desc.operators) do
    for _, id in ipairs(op.inputs) do
      if id > 0 then readers[id] = (readers[id] or 0) + 1 end
    end
  end
  for _, id in ipairs(desc.outputs) do readers[id] = math.huge end
  return readers
end

local function build(desc, opts)
  if #desc.inputs == 0 or #desc.outputs == 0 then error("the model has no inputs or outputs", 0) end
  local env = { value_names = value_names(desc), names = {}, permuted = {}, readers = count_readers(desc) }
  local b = common.builder()
  local spec = add_inputs(desc, b, env)
  for index, op in ipairs(desc.operators) do
    local ok, err = pcall(add_op, desc, env, b, op)
    if not ok then
      local out = op.outputs[1] and env.value_names[op.outputs[1]] or "?"
      error(("operator %d '%s' (%s): %s"):format(index, out, op.op, tostring(err)), 0)
    end
  end
  local outputs = {}
  for k, id in ipairs(desc.outputs) do
    outputs[k] = env.names[id] or error(("output '%s' is computed by no operator"):format(desc.tensors[id].name), 0)
  end
  return common.finish(b, outputs, spec, opts)
end

-- load(path [, opts]) -> nn.Graph; raises "path: reason".
M.load = common.loader("tflite", lumen.core.tflite_load, build)

return M
