-- lumen.onnx: ONNX models as nn.Graph. `lumen.onnx.load(path [, opts])` -> model; raises "path: reason"
-- for unreadable, corrupted or unsupported files ("m.onnx: node 'Conv_12' (ConvInteger): unsupported operator").
--
-- Every ONNX node becomes one graph node named after its first output tensor, so layers carry the
-- names the file gives its tensors: model:forward(x, {capture = {"/layer4/layer4.1/relu_1/Relu_output_0"}}).
-- Conv, ConvTranspose, Gemm and MatMul with a constant weight, BatchNormalization, activations, pools,
-- Flatten, Dropout, Softmax and embedding Gathers become lumen.nn modules holding the file's weights;
-- other operators become function nodes over lumen ops, so the model stays differentiable end to end.
-- Nodes whose inputs are all constants (initializers, Constant nodes, Shape of a statically known
-- shape, and chains of them such as the Shape/Gather/Concat that exporters emit for Reshape) are
-- evaluated once at load time and leave no node. Each node also runs once at load time on a probe
-- input (zeros, batch 1) so shapes are known and a model that cannot run fails here, naming the node.
--
-- opts: labels = path or array (model.labels: labels[c] is line c of the file, the label of lumen class
--       id c, which is output index c - 1),
--       input_shape = {...} (of the first input, when it has symbolic sizes other than the batch),
--       input_spec = {...} (merged into model.input_spec, e.g. scale = {-1, 1}).
-- Conventions: float inputs are used as the file declares them (NCHW for exported CNNs). Int64 token-id
-- inputs take lumen's 1-based ids: a Gather on an embedding initializer becomes nn.Embedding, which
-- reads 1-based ids, so a token the ONNX model knows as id k is passed as k + 1. A leading 1 in a
-- Reshape target of a model exported at batch 1 follows the input's batch. Opsets 9 to 17 (later
-- opsets load where the operators used are unchanged).
local lumen = require "lumen"
local common = require "lumen.import_common"

local M = {}
local ops = {} -- op_type -> converter(n) -> spec (see `Node` below)

---------------------------------------------------------------- the per-node view converters get

-- n.inputs / n.outputs / n.attrs are the node's; n.opset the model's. A converter returns one of
--   {module = m}                      input: the node's first input
--   {fn = f [, inputs = names]}       f(all inputs, constants bound, omitted ones nil); or only `inputs`
--   {op = "add", inputs =, args =}    a savable graph op node: lumen[op](inputs..., args...)
--   {const = tensor} | {alias = name}
local Node = {}
Node.__index = Node

function Node:fail(fmt, ...) error(fmt:format(...), 0) end

function Node:attr(k, default)
  local v = self.attrs[k]
  if v == nil then return default end
  return v
end

-- Input i is present (a non-empty name).
function Node:has(i) return self.inputs[i] ~= nil and self.inputs[i] ~= "" end

-- The constant value of input i, or nil (omitted or computed at run time).
function Node:const(i)
  if not self:has(i) then return nil end
  return self.env.consts[self.inputs[i]]
end

function Node:need_const(i, what)
  local c = self:const(i)
  if c == nil then self:fail("%s (input %d) must be a constant", what, i) end
  return c
end

-- The static shape of input i (from the probe or the constant), or nil.
function Node:shape(i)
  local c = self:const(i)
  if c then return c.shape end
  local name = self.inputs[i]
  return self.env.b:shape(self.env.alias[name] or name)
end

function Node:rank(i)
  local s = self:shape(i)
  return s and #s
end

-- A Lua array of the integers in a constant tensor.
local function ints(t)
  local r = {}
  for k = 1, t:numel() do r[k] = math.tointeger(t:flat_get(k)) end
  return r
end

-- An integer list that newer opsets moved from attribute k to (constant) input i.
function Node:ints_attr_or_input(k, i)
  local v = self.attrs[k]
  if v == nil and self:has(i) then v = ints(self:need_const(i, k)) end
  return v
end

-- ONNX axis (0-based, negative from the end) -> lumen dimension (1-based, negative from the end).
local function dim(axis) return axis >= 0 and axis + 1 or axis end

-- ONNX axes of a rank-r value -> lumen dimensions (1-based, positive).
local function dims1(axes, r)
  local ds = {}
  for i, a in ipairs(axes) do ds[i] = (a < 0 and a + r or a) + 1 end
  return ds
end

local function rep(v, n)
  local r = {}
  for i = 1, n do r[i] = v end
  return r
end

---------------------------------------------------------------- convolutions and pools

-- The pads {begin..., end...} of a conv or pool with spatial kernel k, from `pads` or `auto_pad`.
function Node:spatial_pads(k, strides, dilations)
  local nd = #k
  local auto = self:attr("auto_pad", "NOTSET")
  if auto == "NOTSET" then return self:attr("pads", rep(0, 2 * nd)) end
  if auto == "VALID" then return rep(0, 2 * nd) end
  if auto ~= "SAME_UPPER" and auto ~= "SAME_LOWER" then self:fail("unsupported auto_pad '%s'", auto) end
  local s = self:shape(1) or self:fail("auto_pad %s needs a statically known input size", auto)
  local pads = {}
  for d = 1, nd do
    pads[d], pads[nd + d] = common.same_pads(s[2 + d], k[d], strides[d], dilations[d], auto == "SAME_LOWER")
  end
  return pads
end

-- kernel, strides, dilations, pads of a conv/pool node with an nd-D kernel.
function Node:window(k)
  local nd = #k
  local strides = self:attr("strides", rep(1, nd))
  local dilations = self:attr("dilations", rep(1, nd))
  local pads = self:spatial_pads(k, strides, dilations)
  if #strides ~= nd or #dilations ~= nd or #pads ~= 2 * nd then
    self:fail("%d strides, %d dilations and %d pads do not fit a %d-D kernel", #strides, #dilations, #pads, nd)
  end
  return strides, dilations, pads
end

ops.Conv = function(n)
  local w = n:need_const(2, "weight")
  local b = n:const(3)
  local s = w.shape
  if #s < 3 then n:fail("weight of shape %s: a convolution weight has rank 3 or more (out, in / group, kernel...)", common.shape_str(s)) end
  local k = { table.unpack(s, 3) }
  local strides, dilations, pads = n:window(k)
  local groups = n:attr("group", 1)
  local cfg = { in_channels = s[2] * groups, out_channels = s[1], groups = groups, bias = b ~= nil }
  local m
  if #k == 2 then
    cfg.kernel_size, cfg.stride, cfg.dilation = k, strides, dilations
    cfg.padding = { pads[1], pads[2], pads[3], pads[4] }
    m = lumen.nn.Conv2d(cfg)
  elseif #k == 1 then
    cfg.kernel_size, cfg.stride, cfg.dilation, cfg.padding = k[1], strides[1], dilations[1], { pads[1], pads[2] }
    m = lumen.nn.Conv1d(cfg)
  else
    n:fail("%d-D convolution is not supported (only 1-D and 2-D)", #k)
  end
  return { module = common.set_tensors(m, { weight = w, bias = b }) }
end

ops.ConvTranspose = function(n)
  local w = n:need_const(2, "weight")
  local b = n:const(3)
  local s = w.shape
  if #s ~= 4 then n:fail("only 2-D transposed convolution is supported") end
  if n.attrs.output_shape then n:fail("attribute output_shape is not supported (give pads instead)") end
  local auto = n:attr("auto_pad", "NOTSET")
  if auto ~= "NOTSET" and auto ~= "VALID" then n:fail("unsupported auto_pad '%s'", auto) end
  local k = { s[3], s[4] }
  local pads = n:attr("pads", { 0, 0, 0, 0 })
  local groups = n:attr("group", 1)
  local m = lumen.nn.ConvTranspose2d {
    in_channels = s[1], out_channels = s[2] * groups, kernel_size = k, groups = groups, bias = b ~= nil,
    stride = n:attr("strides", { 1, 1 }), dilation = n:attr("dilations", { 1, 1 }),
    padding = { pads[1], pads[2], pads[3], pads[4] }, output_padding = n:attr("output_padding", { 0, 0 }),
  }
  return { module = common.set_tensors(m, { weight = w, bias = b }) }
end

local function pool(n, kind)
  local k = n:attr("kernel_shape") or n:fail("missing attribute kernel_shape")
  local strides, dilations, pads = n:window(k)
  for _, d in ipairs(dilations) do
    if d ~= 1 then n:fail("dilated pooling is not supported") end
  end
  local ceil = n:attr("ceil_mode", 0) == 1
  if #k == 2 then
    local cfg = { kernel_size = k, stride = strides, padding = { pads[1], pads[2], pads[3], pads[4] }, ceil_mode = ceil }
    if kind == "max" then return { module = lumen.nn.MaxPool2d(cfg) } end
    cfg.count_include_pad = n:attr("count_include_pad", 0) == 1
    return { module = lumen.nn.AvgPool2d(cfg) }
  end
  if #k == 1 and kind == "max" then
    if pads[1] ~= pads[2] then n:fail("asymmetric 1-D pooling pads are not supported") end
    return { module = lumen.nn.MaxPool1d { kernel_size = k[1], stride = strides[1], padding = pads[1], ceil_mode = ceil } }
  end
  n:fail("%d-D %s pooling is not supported", #k, kind)
end
ops.MaxPool = function(n) return pool(n, "max") end
ops.AveragePool = function(n) return pool(n, "average") end

-- Global pools keep the spatial dimensions (size 1), as ONNX does.
local function global_pool(n, Module, reduce)
  local r = n:rank(1)
  if r == nil or r == 4 then return { module = Module { keepdims = true } } end
  return { fn = function(x)
    for d = x:dim(), 3, -1 do x = reduce(x, d) end
    return x
  end }
end
ops.GlobalAveragePool = function(n)
  return global_pool(n, lumen.nn.GlobalAvgPool2d, function(x, d) return lumen.mean(x, d, true) end)
end
ops.GlobalMaxPool = function(n)
  return global_pool(n, lumen.nn.GlobalMaxPool2d, function(x, d) return (lumen.max(x, d, true)) end)
end

ops.BatchNormalization = function(n)
  local scale = n:need_const(2, "scale")
  local r = n:rank(1) or 4
  local BN = r == 4 and lumen.nn.BatchNorm2d or (r == 2 or r == 3) and lumen.nn.BatchNorm1d
  if not BN then n:fail("batch normalization of a %d-D input is not supported", r) end
  local m = BN { num_features = scale:numel(), eps = n:attr("epsilon", 1e-5), momentum = 1 - n:attr("momentum", 0.9) }
  return { module = common.set_tensors(m, { weight = scale, bias = n:need_const(3, "bias"),
    running_mean = n:need_const(4, "mean"), running_var = n:need_const(5, "var") }) }
end

---------------------------------------------------------------- dense layers

ops.Gemm = function(n)
  local alpha, beta = n:attr("alpha", 1.0), n:attr("beta", 1.0)
  local ta, tb = n:attr("transA", 0) == 1, n:attr("transB", 0) == 1
  local b, c = n:const(2), n:const(3)
  if b and not ta and not n:const(1) then
    local w = tb and b or lumen.transpose(b, 1, 2)
    local out = w:size(1)
    if c == nil or c:numel() == out or c:numel() == 1 then
      if alpha ~= 1 then w = lumen.mul(w, alpha) end
      local bias = c and (c:numel() == 1 and lumen.full({ out }, c:item()) or lumen.reshape(c, { out }))
      if bias and beta ~= 1 then bias = lumen.mul(bias, beta) end
      local m = lumen.nn.Linear { in_features = w:size(2), out_features = out, bias = c ~= nil }
      return { module = common.set_tensors(m, { weight = w, bias = bias }) }
    end
  end
  return { fn = function(x, y, z)
    local r = lumen.matmul(ta and lumen.transpose(x, 1, 2) or x, tb and lumen.transpose(y, 1, 2) or y)
    if alpha ~= 1 then r = lumen.mul(r, alpha) end
    if z then r = lumen.add(r, beta ~= 1 and lumen.mul(z, beta) or z) end
    return r
  end }
end

ops.MatMul = function(n)
  local b = n:const(2)
  if b and b:dim() == 2 and not n:const(1) then
    local m = lumen.nn.Linear { in_features = b:size(1), out_features = b:size(2), bias = false }
    return { module = common.set_tensors(m, { weight = lumen.transpose(b, 1, 2) }) }
  end
  return { fn = lumen.matmul }
end

---------------------------------------------------------------- activations and friends

local function module_op(Module, cfg_of)
  return function(n) return { module = Module(cfg_of and cfg_of(n) or {}) } end
end
ops.Relu = module_op(lumen.nn.ReLU)
ops.Sigmoid = module_op(lumen.nn.Sigmoid)
ops.Tanh = module_op(lumen.nn.Tanh)
ops.HardSwish = module_op(lumen.nn.HardSwish)
ops.LeakyRelu = module_op(lumen.nn.LeakyReLU, function(n) return { slope = n:attr("alpha", 0.01) } end)
ops.HardSigmoid = module_op(lumen.nn.HardSigmoid,
  function(n) return { alpha = n:attr("alpha", 0.2), beta = n:attr("beta", 0.5) } end)

-- Clip: bounds are attributes before opset 11, optional constant inputs from 11 on.
ops.Clip = function(n)
  local lo, hi
  if n.opset < 11 then
    lo, hi = n.attrs.min, n.attrs.max
  else
    lo = n:has(2) and n:need_const(2, "min"):item() or nil
    hi = n:has(3) and n:need_const(3, "max"):item() or nil
  end
  if lo == 0 and hi == 6 then return { module = lumen.nn.ReLU6 {} } end
  return { module = lumen.nn.Clip { min = lo, max = hi } }
end

ops.Dropout = function(n)
  local p = n.opset < 12 and n:attr("ratio", 0.5) or (n:has(2) and n:need_const(2, "ratio"):item() or 0.5)
  return { module = lumen.nn.Dropout { p = p } }
end

-- Softmax: from opset 13 over one axis (default -1); before, over the input flattened to 2-D at
-- `axis` (default 1), which is the same thing when axis is the last dimension.
ops.Softmax = function(n)
  local axis = n:attr("axis", n.opset < 13 and 1 or -1)
  local r = n:rank(1)
  if n.opset >= 13 or axis == -1 or (r and (axis == r - 1)) then
    return { module = lumen.nn.Softmax { dim = dim(axis) } }
  end
  return { type = "Softmax", fn = function(x)
    local s = x.shape
    local a = axis < 0 and axis + #s or axis
    local outer = 1
    for i = 1, a do outer = outer * s[i] end
    return lumen.reshape(lumen.softmax(lumen.reshape(x, { outer, -1 }), 2), s)
  end }
end

---------------------------------------------------------------- elementwise arithmetic

-- Integer constants (shape arithmetic in folded chains) are computed in float32, which is exact
-- for the sizes involved, and truncated back.
local function binary(op)
  local f = lumen[op]
  local function int_safe(a, b)
    if a:dtype() == "int64" and b:dtype() == "int64" then return f(a:float(), b:float()):long() end
    return f(a, b)
  end
  return function(n)
    local a, b = n:const(1), n:const(2)
    if a and b then return { fn = int_safe } end
    if b then return { op = op, inputs = { n.inputs[1] }, args = { b:dim() == 0 and b:item() or b } } end
    if a then return { fn = function(_, y) return f(a, y) end } end
    return { op = op, inputs = { n.inputs[1], n.inputs[2] } }
  end
end
ops.Add, ops.Sub, ops.Mul, ops.Div = binary("add"), binary("sub"), binary("mul"), binary("div")

---------------------------------------------------------------- shapes and indexing

ops.Identity = function(n) return { alias = n.inputs[1] } end

ops.Constant = function(n)
  local a = n.attrs
  if a.value then return { const = a.value } end
  if a.value_float then return { const = lumen.tensor(a.value_float) } end
  if a.value_int then return { const = lumen.tensor(a.value_int, "int64") } end
  if a.value_floats then return { const = lumen.tensor(a.value_floats) } end
  if a.value_ints then return { const = lumen.tensor(a.value_ints, "int64") } end
  n:fail("only tensor, float and int values are supported")
end

-- Shape of a statically known shape (opset 15 adds start / end).
ops.Shape = function(n)
  local s = n:shape(1) or n:fail("the input's shape is not statically known (give opts.input_shape)")
  local r = #s
  local first, last = n:attr("start", 0), n:attr("end", r)
  if first < 0 then first = first + r end
  if last < 0 then last = last + r end
  local out = { table.unpack(s, math.max(first, 0) + 1, math.min(last, r)) }
  return { const = lumen.tensor(out, "int64") }
end

-- Cast between float types is the identity (lumen computes in float32); casts to integer types
-- appear in exporters' shape arithmetic, which is folded.
local float_types = { [1] = true, [10] = true, [11] = true, [16] = true } -- float, float16, double, bfloat16
ops.Cast = function(n)
  local to = n:attr("to") or n:fail("missing attribute to")
  if float_types[to] then return { fn = function(x) return x:dtype() == "int64" and x:float() or x end } end
  local c = n:const(1) or n:fail("a cast to an integer type is only supported on constants")
  return { const = c:dtype() == "int64" and c or c:long() }
end

ops.ConstantOfShape = function(n)
  local shape = ints(n:need_const(1, "shape"))
  local v = n.attrs.value
  local dtype = v and v:dtype() or "float32"
  if #shape == 0 then return { const = lumen.tensor(v and v:flat_get(1) or 0, dtype) } end
  for i, d in ipairs(shape) do
    if d < 0 then n:fail("negative size %d at position %d of the shape", d, i) end
  end
  common.check_const(shape, dtype, "the constant")
  return { const = lumen.full(shape, v and v:flat_get(1) or 0, dtype) }
end

-- Slice: starts / ends / axes attributes before opset 10, inputs (with steps) from 10 on. Any step,
-- as an index selection; ends past the dimension (exporters write INT64_MAX) are clamped.
ops.Slice = function(n)
  local starts, ends, axes, steps
  if n.opset < 10 then
    starts, ends, axes = n.attrs.starts or n:fail("missing attribute starts"), n.attrs.ends or n:fail("missing attribute ends"), n.attrs.axes
  else
    starts, ends = ints(n:need_const(2, "starts")), ints(n:need_const(3, "ends"))
    axes = n:has(4) and ints(n:need_const(4, "axes")) or nil
    steps = n:has(5) and ints(n:need_const(5, "steps")) or nil
  end
  local function bound(v, size, lo, hi)
    if v < 0 then v = v + size end
    return math.max(lo, math.min(hi, v))
  end
  return { fn = function(x)
    for k = 1, #starts do
      local a = axes and axes[k] or k - 1
      a = a < 0 and a + x:dim() or a
      local size, step = x:size(a + 1), steps and steps[k] or 1
      local first, last, picks = nil, nil, {}
      if step > 0 then
        first, last = bound(starts[k], size, 0, size), bound(ends[k], size, 0, size)
        for i = first, last - 1, step do picks[#picks + 1] = i + 1 end
      elseif step < 0 then
        first, last = bound(starts[k], size, 0, size - 1), bound(ends[k], size, -1, size - 1)
        for i = first, last + 1, step do picks[#picks + 1] = i + 1 end
      end
      if #picks == 0 then error("empty slices (or step 0) are not supported", 0) end
      x = lumen.index_select(x, a + 1, lumen.tensor(picks, "int64"))
    end
    return x
  end, inputs = { n.inputs[1] } }
end

ops.Flatten = function(n)
  local axis = n:attr("axis", 1)
  local r = n:rank(1)
  if r and (axis < -r or axis > r) then n:fail("axis %d is out of range for an input of rank %d", axis, r) end
  if axis == 1 then return { module = lumen.nn.Flatten { start_dim = 2 } } end
  return { fn = function(x)
    local s = x.shape
    local a = axis < 0 and axis + #s or axis
    if a < 0 or a > #s then error(("Flatten: axis %d is out of range for an input of rank %d"):format(axis, #s), 0) end
    local outer = 1
    for i = 1, a do outer = outer * s[i] end
    return lumen.reshape(x, { outer, -1 })
  end }
end

ops.Reshape = function(n)
  local target = ints(n:need_const(2, "shape"))
  if n:attr("allowzero", 0) == 1 then
    for _, v in ipairs(target) do
      if v == 0 then n:fail("allowzero with a zero size is not supported") end
    end
  end
  -- The usual flatten before a classifier: a batch-generic nn.Flatten.
  local s = n:shape(1)
  if s then
    local y, why = common.reshape_shape(s, target)
    if not y then n:fail("cannot reshape %s to %s: %s", common.shape_str(s), common.shape_str(target), why) end
    if #s > 2 and #y == 2 and y[1] == s[1] and not n:const(1) then return { module = lumen.nn.Flatten { start_dim = 2 } } end
  end
  return { fn = function(x) return common.batch_reshape(x, target) end, inputs = { n.inputs[1] } }
end

ops.Transpose = function(n)
  local perm = n.attrs.perm
  if perm then
    local p = {}
    for i, v in ipairs(perm) do p[i] = v + 1 end
    return { op = "permute", inputs = { n.inputs[1] }, args = { p } }
  end
  return { fn = function(x)
    local p = {}
    for i = 1, x:dim() do p[i] = x:dim() + 1 - i end
    return lumen.permute(x, p)
  end }
end

ops.Concat = function(n)
  local axis = n:attr("axis") or n:fail("missing attribute axis")
  return { fn = function(...) return lumen.cat({ ... }, dim(axis)) end }
end

-- Squeeze / Unsqueeze: axes an attribute before opset 13, an input from 13 on.
ops.Squeeze = function(n)
  local axes = n:ints_attr_or_input("axes", 2)
  return { fn = function(x)
    if not axes then return lumen.squeeze(x) end
    local ds = dims1(axes, x:dim())
    table.sort(ds, function(p, q) return p > q end)
    for _, d in ipairs(ds) do
      if x:size(d) ~= 1 then error(("cannot squeeze dimension %d of size %d"):format(d, x:size(d)), 0) end
      x = lumen.squeeze(x, d)
    end
    return x
  end, inputs = { n.inputs[1] } }
end

ops.Unsqueeze = function(n)
  local axes = n:ints_attr_or_input("axes", 2) or n:fail("missing axes")
  return { fn = function(x)
    local ds = dims1(axes, x:dim() + #axes)
    table.sort(ds)
    for _, d in ipairs(ds) do x = lumen.unsqueeze(x, d) end
    return x
  end, inputs = { n.inputs[1] } }
end

-- Pad, constant mode: pads {x1_begin, x2_begin, ..., x1_end, ...} as an attribute before opset 11, an
-- input from 11 on; lumen.pad takes PyTorch's order (last dimension first).
ops.Pad = function(n)
  local mode = n:attr("mode", "constant")
  if mode ~= "constant" then n:fail("pad mode '%s' is not supported (only 'constant')", mode) end
  local pads, value
  if n.opset < 11 then
    pads, value = n:attr("pads") or n:fail("missing attribute pads"), n:attr("value", 0)
  else
    pads = ints(n:need_const(2, "pads"))
    value = n:has(3) and n:need_const(3, "constant_value"):item() or 0
    if n:has(4) then n:fail("the axes input is not supported") end
  end
  local r = #pads // 2
  local s = n:shape(1)
  if s then
    if #pads ~= 2 * #s then n:fail("%d pads for an input of rank %d", #pads, #s) end
    local out = {}
    for d = 1, #s do
      out[d] = s[d] + pads[d] + pads[r + d]
      if out[d] < 0 then n:fail("pads %d, %d leave dimension %d of size %d negative", pads[d], pads[r + d], d, s[d]) end
    end
    if n:const(1) then common.check_const(out, n:const(1):dtype(), "the padded constant") end
  end
  local torch = {}
  for d = r, 1, -1 do
    torch[#torch + 1], torch[#torch + 2] = pads[d], pads[r + d]
  end
  while #torch > 0 and torch[#torch] == 0 and torch[#torch - 1] == 0 do torch[#torch], torch[#torch - 1] = nil, nil end
  if #torch == 0 then return { alias = n.inputs[1] } end
  return { fn = function(x) return lumen.pad(x, torch, value) end, inputs = { n.inputs[1] } }
end

-- Gather along `axis` with ONNX's 0-based (negative from the end) indices of any shape.
local function gather(x, axis, idx)
  local s = x.shape
  local a = axis < 0 and axis + #s or axis
  local picks = {}
  for k = 1, idx:numel() do
    local v = math.tointeger(idx:flat_get(k))
    picks[k] = (v < 0 and v + s[a + 1] or v) + 1
  end
  local y = lumen.index_select(x, a + 1, lumen.tensor(picks, "int64"))
  local out = { table.unpack(s, 1, a) }
  for _, v in ipairs(idx.shape) do out[#out + 1] = v end
  for i = a + 2, #s do out[#out + 1] = s[i] end
  return lumen.reshape(y, out)
end

-- Gather: an embedding lookup (constant 2-D table, token ids from an int64 graph input) becomes
-- nn.Embedding, which takes lumen's 1-based ids; constant indices select slices of a computed tensor.
ops.Gather = function(n)
  local axis = n:attr("axis", 0)
  local data, idx = n:const(1), n:const(2)
  if data and not idx then
    local ids = n.inputs[2]
    if axis ~= 0 or data:dim() ~= 2 or not n.env.int_inputs[ids] then
      n:fail("only embedding lookups (axis 0 of a constant 2-D table, ids from an int64 graph input) are supported")
    end
    local m = lumen.nn.Embedding { num_embeddings = data:size(1), embedding_dim = data:size(2), weight = data }
    return { module = m, inputs = { ids } }
  end
  if not idx then n:fail("the indices must be constant when the data is computed") end
  return { fn = function(x) return gather(x, axis, idx) end, inputs = { n.inputs[1] } }
end

-- Reductions: axes an attribute before opset 18, an input from 18 on; no axes = every axis.
local function reduce(n, each)
  local axes = n:ints_attr_or_input("axes", 2)
  local keep = n:attr("keepdims", 1) == 1
  if not axes and n:attr("noop_with_empty_axes", 0) == 1 then return { alias = n.inputs[1] } end
  return { fn = function(x) return each(x, axes, keep) end, inputs = { n.inputs[1] } }
end

-- The lumen dimensions a reduction over `axes` (nil: all) covers.
local function dims_of(x, axes)
  if axes then return dims1(axes, x:dim()) end
  local ds = {}
  for i = 1, x:dim() do ds[i] = i end
  return ds
end

ops.ReduceMean = function(n)
  return reduce(n, function(x, axes, keep) return lumen.mean(x, dims_of(x, axes), keep) end)
end

ops.ReduceMax = function(n)
  return reduce(n, function(x, axes, keep)
    local ds, s = dims_of(x, axes), x.shape
    for _, d in ipairs(ds) do x = (lumen.max(x, d, true)) end
    if keep then return x end
    local gone, out = {}, {}
    for _, d in ipairs(ds) do gone[d] = true end
    for i = 1, #s do if not gone[i] then out[#out + 1] = s[i] end end
    return lumen.reshape(x, out)
  end)
end

---------------------------------------------------------------- the walk

local function node_label(node)
  return node.name ~= "" and node.name or node.outputs[1]
end

-- A converter's spec as a graph node spec: fn specs get their constant inputs bound, so the node
-- reads only what is computed at run time.
local function bind(spec, node, consts)
  if spec.inputs then return spec end
  if spec.module then
    spec.inputs = { node.inputs[1] }
    return spec
  end
  local f, names, slots, fixed = spec.fn, {}, {}, {}
  for i, name in ipairs(node.inputs) do
    if name ~= "" then
      if consts[name] then fixed[i] = consts[name] else names[#names + 1], slots[#slots + 1] = name, i end
    end
  end
  local n = #node.inputs
  spec.inputs = names
  spec.fn = function(...)
    local args = {}
    for i, v in pairs(fixed) do args[i] = v end
    for k, i in ipairs(slots) do args[i] = select(k, ...) end
    return f(table.unpack(args, 1, n))
  end
  return spec
end

-- Converts one node, folding it when every input is constant.
local function convert(env, node)
  local key = node.domain ~= "" and node.domain ~= "ai.onnx" and (node.domain .. "." .. node.op_type) or node.op_type
  local conv = ops[key]
  if not conv then error("unsupported operator", 0) end
  local n = setmetatable({ inputs = node.inputs, outputs = node.outputs, attrs = node.attrs, opset = env.opset,
                           env = env }, Node)
  for k = 2, #node.outputs do
    if env.used[node.outputs[k]] then n:fail("output %d ('%s') is not supported", k, node.outputs[k]) end
  end
  for _, name in ipairs(node.inputs) do
    if name ~= "" and not (env.consts[name] or env.alias[name] or env.produced[name]) then
      n:fail("input '%s' is computed by no earlier node", name)
    end
    if env.int_inputs[name] and node.op_type ~= "Gather" and node.op_type ~= "Shape" then
      n:fail("int64 input '%s' may only feed an embedding Gather (or Shape)", name)
    end
  end
  local out = node.outputs[1]
  if env.produced[out] or env.consts[out] or env.alias[out] then n:fail("output '%s' is computed twice", out) end
  local spec = conv(n)
  if spec.const then
    env.b:count_weights(spec.const:numel() * (spec.const:dtype() == "int64" and 8 or 4), "constant '" .. out .. "'")
    env.consts[out] = spec.const
    return
  end
  if spec.alias then
    local src = env.alias[spec.alias] or spec.alias
    if env.consts[src] then env.consts[out] = env.consts[src] else env.alias[out] = src end
    return
  end
  local constant = true
  for _, name in ipairs(node.inputs) do
    if name ~= "" and not env.consts[name] then constant = false end
  end
  spec = bind(spec, node, env.consts)
  if constant then
    local args = {}
    for i, name in ipairs(spec.inputs) do args[i] = env.consts[name] end
    env.consts[out] = env.b:fold(spec, args, "constant '" .. out .. "'")
    return
  end
  for i, name in ipairs(spec.inputs) do spec.inputs[i] = env.alias[name] or name end
  spec.name = out
  spec.type = spec.type or node.op_type
  env.b:add(spec)
  env.produced[out] = true
end

-- The probe shape and dtype of a graph input (zeros for floats, ones for 1-based ids), symbolic batch -> 1.
local function probe_input(v, given)
  local shape = given or v.shape
  if not shape then return nil end
  local s = {}
  for i, d in ipairs(shape) do
    if d < 0 and i > 1 then return nil end
    s[i] = d < 0 and 1 or d
  end
  return s, (v.elem_type == "int64" or v.elem_type == "int32") and "int64" or "float32"
end

-- model.input_spec from an image-like input (N, C, H, W) with known sizes.
local function input_spec(v)
  local s = v.shape
  if v.elem_type ~= "float" or not s or #s ~= 4 or s[3] < 1 or s[4] < 1 or s[2] < 1 then return nil end
  return { size = { s[3], s[4] }, channels = s[2] }
end

-- The graph of a parsed model (errors are prefixed with the file by load).
local function build(desc, opts)
  if desc.opset < 9 then error(("opset %d is not supported (lumen reads opsets 9 to 17)"):format(desc.opset), 0) end
  if #desc.inputs == 0 then error("the graph has no inputs", 0) end
  local env = { consts = {}, alias = {}, produced = {}, used = {}, int_inputs = {}, opset = desc.opset,
                b = common.builder() }
  for name, t in pairs(desc.initializers) do env.consts[name] = t end
  for i, v in ipairs(desc.inputs) do
    if v.elem_type ~= "float" and v.elem_type ~= "int64" and v.elem_type ~= "int32" then
      error(("input '%s' has type %s (lumen reads float and int64 inputs)"):format(v.name, v.elem_type), 0)
    end
    if v.elem_type ~= "float" then env.int_inputs[v.name] = true end
    env.produced[v.name] = true
    env.b:input(v.name, probe_input(v, i == 1 and opts.input_shape or nil))
  end
  -- How many nodes read each value, so the probe frees each value after its last reader.
  local readers = {}
  for _, node in ipairs(desc.nodes) do
    for _, name in ipairs(node.inputs) do
      env.used[name] = true
      if name ~= "" then readers[name] = (readers[name] or 0) + 1 end
    end
  end
  for _, o in ipairs(desc.outputs) do env.used[o.name], readers[o.name] = true, math.huge end
  for _, v in ipairs(desc.inputs) do env.b:readers(v.name, readers[v.name] or 0) end
  for _, node in ipairs(desc.nodes) do
    local ok, err = pcall(convert, env, node)
    if not ok then error(("node '%s' (%s): %s"):format(node_label(node), node.op_type, tostring(err)), 0) end
    local out = node.outputs[1]
    if env.produced[out] or env.alias[out] then env.b:readers(env.alias[out] or out, readers[out] or 0) end
    for _, name in ipairs(node.inputs) do
      if name ~= "" and not env.consts[name] then env.b:read(env.alias[name] or name) end
    end
  end
  local outputs = {}
  for k, o in ipairs(desc.outputs) do
    if env.consts[o.name] then error(("output '%s' is a constant"):format(o.name), 0) end
    local src = env.alias[o.name]
    if src then env.b:add { name = o.name, type = "Identity", inputs = { src }, fn = function(x) return x end } end
    outputs[k] = o.name
  end
  return common.finish(env.b, outputs, input_spec(desc.inputs[1]), opts)
end

-- load(path [, opts]) -> nn.Graph; raises "path: reason".
M.load = common.loader("onnx", lumen.core.onnx_load, build)

return M
