-- lumen.onnx: ONNX models as nn.Graph. `lumen.onnx.load(path [, opts])` -> model; raises "path: reason"
-- for unreadable, corrupted or unsupported files ("m.onnx: node 'Conv_12' (ConvInteger): unsupported operator").
--
-- Every ONNX node becomes one graph node named after its first output tensor, so layers carry the
-- names the file gives its tensors: model:forward(x, {capture = {"/layer4/layer4.1/relu_1/Relu_output_0"}}).
-- Conv, ConvTranspose, Gemm and MatMul with a constant weight, BatchNormalization, activations, pools,
-- Flatten, Dropout, Softmax, LayerNormalization, LSTM, GRU and embedding Gathers become lumen.nn modules
-- holding the file's weights; other operators become function nodes over lumen ops, so the model stays
-- differentiable end to end. The SiLU, HardSwish, GELU and LayerNorm patterns exporters spell out become one layer each
-- (see `fuse`), and a zero Pad that only a Conv reads becomes the Conv's padding (ops.Pad).
-- Nodes whose inputs are all constants (initializers, Constant nodes, Shape of a statically known
-- shape, and chains of them such as the Shape/Gather/Concat that exporters emit for Reshape) are
-- evaluated once at load time and leave no node. Each node also runs once at load time on a probe
-- input (zeros, batch 1) so shapes are known and a model that cannot run fails here, naming the node.
-- With a symbolic batch size, shapes computed from the batch stay nodes (see "shapes that follow the
-- batch size" below), so the model runs any batch.
--
-- The file's metadata_props may record how to use it (written by `lumen spec`, the same keys as a lumen
-- checkpoint): "lumen.input_spec" (JSON: preset, size, resize, crop, scale, mean, std) becomes
-- model.input_spec, over the size the graph input declares; "lumen.labels" (JSON array) model.labels.
-- opts: labels = path or array (model.labels: labels[c] is line c of the file, the label of lumen class
--       id c, which is output index c - 1; over what the file records),
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
local runtime_constant_of_shape, runtime_reshape -- shapes computed at run time (below)

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

-- Raises unless a tensor of `count` elements fits lumen.limits().tensor_bytes (shapes a file computes).
local function check_count(count, what)
  if count * 8 > lumen.limits().tensor_bytes then
    error(("%s of %d elements exceeds the tensor_bytes limit (lumen.limits)"):format(what, count), 0)
  end
end
local function count_of(shape)
  local c = 1
  for _, d in ipairs(shape) do c = c * math.max(d, 0) end
  return c
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
    local extra = n.env.pad_into[n.inputs[1]] or { 0, 0, 0, 0 } -- a Pad merged in (ops.Pad)
    cfg.padding = { pads[1] + extra[1], pads[2] + extra[2], pads[3] + extra[3], pads[4] + extra[4] }
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
-- Swish (opset 24; also what the importer fuses x * Sigmoid(x) into): x * sigmoid(alpha * x), nn.SiLU at
-- alpha = 1.
ops.Swish = function(n)
  local alpha = n:attr("alpha", 1.0)
  if alpha == 1 then return { module = lumen.nn.SiLU {} } end
  return { fn = function(x) return x * lumen.sigmoid(x * alpha) end }
end
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
    if (a and b) or n:is_int(1) or n:is_int(2) then return { fn = int_safe } end
    if b then return { op = op, inputs = { n.inputs[1] }, args = { b:dim() == 0 and b:item() or b } } end
    if a then return { fn = function(_, y) return f(a, y) end } end
    return { op = op, inputs = { n.inputs[1], n.inputs[2] } }
  end
end
ops.Add, ops.Sub, ops.Mul, ops.Div = binary("add"), binary("sub"), binary("mul"), binary("div")

---------------------------------------------------------------- shapes and indexing

ops.Identity = function(n) return { alias = n.inputs[1] } end

-- ConstantOfShape of a shape computed at run time (from the batch size), bounded by tensor_bytes.
runtime_constant_of_shape = function(n)
  local v = n.attrs.value
  local dtype, fill = v and v:dtype() or "float32", v and v:flat_get(1) or 0
  return { fn = function(shape)
    local s = ints(shape)
    if #s == 0 then return lumen.tensor(fill, dtype) end
    for _, d in ipairs(s) do
      if d < 0 then error(("negative size %d"):format(d), 0) end
    end
    check_count(count_of(s), "a constant")
    return lumen.full(s, fill, dtype)
  end }
end

-- Reshape to a target computed at run time: 0 copies the input's size (unless allowzero), -1 infers one.
-- Returns nil for a constant target, and nil, target when the target computed at batch 1, with a
-- leading 1 following the batch (common.batch_reshape), also gives the right shape at batch 2: the
-- usual x.view(x.size(0), -1) then folds (to nn.Flatten) and its shape chain is dropped.
local function reshape_to(x, t, allowzero)
  local out = {}
  for i, v in ipairs(t) do out[i] = (v == 0 and not allowzero) and x:size(i) or v end
  return lumen.reshape(x, out)
end
runtime_reshape = function(n)
  if not n:has(2) or n:const(2) then return nil end
  local allowzero = n:attr("allowzero", 0) == 1
  local env, xn, sn = n.env, n.inputs[1], n.inputs[2]
  local v1, x2, v2 = env.b:value(env.alias[sn] or sn), nil, nil
  if env.p2 and not allowzero then x2, v2 = env.p2[env.alias[xn] or xn], env.p2[env.alias[sn] or sn] end
  if v1 and x2 and v2 then
    local ok, want = pcall(lumen.no_grad, reshape_to, x2, ints(v2), false)
    local ok1, got = pcall(lumen.no_grad, common.batch_reshape, x2, ints(v1))
    if ok and ok1 and lumen.same_shape(want, got) then return nil, ints(v1) end
  end
  return { fn = function(x, shape) return reshape_to(x, ints(shape), allowzero) end }
end

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
  local lo, hi = math.max(first, 0) + 1, math.min(last, r)
  local out = { table.unpack(s, lo, hi) }
  local s2 = not n:const(1) and n:shape2(1)
  if s2 then
    for d = lo, hi do
      if s2[d] ~= s[d] then -- follows the batch size: computed at run time
        return { shapeval = true, inputs = { n.inputs[1] }, fn = function(x)
          return lumen.tensor({ table.unpack(x.shape, lo, hi) }, "int64")
        end }
      end
    end
  end
  return { const = lumen.tensor(out, "int64") }
end

-- Cast between float types is the identity (lumen computes in float32); casts to integer types
-- appear in exporters' shape arithmetic, which is folded.
local float_types = { [1] = true, [10] = true, [11] = true, [16] = true } -- float, float16, double, bfloat16
ops.Cast = function(n)
  local to = n:attr("to") or n:fail("missing attribute to")
  if float_types[to] then return { fn = function(x) return x:dtype() == "int64" and x:float() or x end } end
  local bool = to == 9 -- nonzero -> 1; other integer types truncate toward zero
  local function cast(x)
    if bool then return lumen.ne(x, 0):long() end
    return x:dtype() == "int64" and x or x:long()
  end
  local c = n:const(1)
  if c then return { const = cast(c) } end
  return { fn = cast }
end

ops.ConstantOfShape = function(n)
  if n:has(1) and not n:const(1) then return runtime_constant_of_shape(n) end
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

-- Slice: starts / ends / axes attributes before opset 10, inputs (with steps, constant or computed)
-- from 10 on. Bounds are clamped as ONNX says (exporters write INT64_MAX / INT64_MIN for "to the end");
-- an empty range gives a dimension of size 0. Step 1 narrows, other steps select.
local function slice_axis(x, a, first, stop, step)
  local size = x:size(a)
  local function bound(v, lo, hi)
    if v < 0 then v = v + size end
    return math.max(lo, math.min(hi, v))
  end
  local count
  if step > 0 then
    first, stop = bound(first, 0, size), bound(stop, 0, size)
    count = math.max(0, (stop - first + step - 1) // step)
  else
    first, stop = bound(first, 0, size - 1), bound(stop, -1, size - 1)
    count = math.max(0, (first - stop - step - 1) // -step)
  end
  if step == 1 then
    if count == size then return x end
    if count > 0 then return lumen.narrow(x, a, first + 1, count) end
  end
  local picks = {}
  for k = 0, count - 1 do picks[k + 1] = first + k * step + 1 end
  return lumen.index_select(x, a, lumen.tensor(picks, "int64"))
end

ops.Slice = function(n)
  local function run(x, starts, ends, axes, steps)
    if #starts ~= #ends or (axes and #axes ~= #starts) or (steps and #steps ~= #starts) then
      error("starts, ends, axes and steps differ in length", 0)
    end
    for k = 1, #starts do
      local a = axes and axes[k] or k - 1
      a = a < 0 and a + x:dim() or a
      if a < 0 or a >= x:dim() then error(("axis %d is out of range for a %d-d input"):format(a, x:dim()), 0) end
      local step = steps and steps[k] or 1
      if step == 0 then error("step 0", 0) end
      x = slice_axis(x, a + 1, starts[k], ends[k], step)
    end
    return x
  end
  if n.opset < 10 then
    local starts, ends = n.attrs.starts or n:fail("missing attribute starts"), n.attrs.ends or n:fail("missing attribute ends")
    local axes = n.attrs.axes
    return { fn = function(x) return run(x, starts, ends, axes) end, inputs = { n.inputs[1] } }
  end
  return { fn = function(x, starts, ends, axes, steps)
    return run(x, ints(starts), ints(ends), axes and ints(axes), steps and ints(steps))
  end }
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
  local spec, folded = runtime_reshape(n) -- a target computed at run time (below)
  if spec then return spec end
  local target = folded or ints(n:need_const(2, "shape"))
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
  -- A zero Pad of the spatial dimensions that only a 2-D Conv reads (TFLite's SAME padding, converted;
  -- PyTorch's ZeroPad2d) becomes that Conv's padding: one layer, no padded copy of the activations.
  local reader = n.env.reader[n.outputs[1]]
  if value == 0 and #pads == 8 and pads[1] == 0 and pads[2] == 0 and pads[5] == 0 and pads[6] == 0
     and pads[3] >= 0 and pads[4] >= 0 and pads[7] >= 0 and pads[8] >= 0 and reader and reader.op_type == "Conv"
     and reader.inputs[1] == n.outputs[1] and (reader.attrs.auto_pad or "NOTSET") == "NOTSET" then
    n.env.pad_into[n.outputs[1]] = { pads[3], pads[4], pads[7], pads[8] }
    return { alias = n.inputs[1] }
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
  local ids = n.inputs[2]
  if data and not idx and n.env.int_inputs[ids] then
    if axis ~= 0 or data:dim() ~= 2 then
      n:fail("only embedding lookups (axis 0 of a constant 2-D table, ids from an int64 graph input) are supported")
    end
    local m = lumen.nn.Embedding { num_embeddings = data:size(1), embedding_dim = data:size(2), weight = data }
    return { module = m, inputs = { ids } }
  end
  if not idx then return { fn = function(x, i) return gather(x, axis, i) end } end -- computed indices
  return { fn = function(x) return gather(x, axis, idx) end, inputs = { n.inputs[1] } }
end

-- Reductions: axes an attribute before opset 18, an input from 18 on; no axes = every axis.
local function reduce(n, each)
  local axes = n:ints_attr_or_input("axes", 2)
  if axes and #axes == 0 then axes = nil end -- empty axes: every axis (or none, below)
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

---------------------------------------------------------------- transformers: elementwise and logic

-- Whether input i is an int64 value (a constant or, from the probe, a computed shape value).
function Node:is_int(i)
  local c = self:const(i)
  if c then return c:dtype() == "int64" end
  if not self:has(i) then return false end
  local name = self.inputs[i]
  local t = self.env.b:value(self.env.alias[name] or name)
  return t ~= nil and t:dtype() == "int64"
end

-- f over float32 copies of int64 arguments, the result back in int64 when any was (shape arithmetic,
-- exact for the sizes involved; integer division and Mod truncate as ONNX's integer ops do).
local function int_kept(f)
  return function(...)
    local args, ints = table.pack(...), false
    for i = 1, args.n do
      local a = args[i]
      if lumen.is_tensor(a) and a:dtype() == "int64" then args[i], ints = a:float(), true end
    end
    local y = f(table.unpack(args, 1, args.n))
    if ints and y:dtype() == "float32" then return y:long() end
    return y
  end
end

-- A unary op on a float tensor (a savable op node), or on int64 shape values.
local function unary(op)
  return function(n)
    if n:is_int(1) then return { fn = int_kept(lumen[op]) } end
    return { op = op, inputs = { n.inputs[1] } }
  end
end
for onnx_op, op in pairs { Neg = "neg", Exp = "exp", Log = "log", Sqrt = "sqrt", Reciprocal = "reciprocal",
                           Erf = "erf", Abs = "abs", Sign = "sign", Floor = "floor" } do
  ops[onnx_op] = unary(op)
end
ops.Ceil = function() return { fn = int_kept(function(x) return lumen.neg(lumen.floor(lumen.neg(x))) end) } end
-- Round: half to even, as ONNX; its gradient is 0 like floor's.
ops.Round = function()
  return { fn = int_kept(function(x)
    local r = lumen.floor(lumen.add(x, 0.5))
    local tie = lumen.mul(lumen.eq(lumen.sub(r, x), 0.5), lumen.eq(lumen.remainder(r, 2), 1))
    return lumen.sub(r, tie)
  end) }
end
ops.Pow = binary("pow")

-- Gelu (opset 20; also what the importer fuses the exported erf pattern into): nn.GELU.
ops.Gelu = function(n)
  local approximate = n:attr("approximate", "none")
  if approximate ~= "none" and approximate ~= "tanh" then n:fail("unsupported approximate '%s'", tostring(approximate)) end
  return { module = lumen.nn.GELU { approximate = approximate } }
end

-- Comparisons and logic give 0/1 float32 masks (ONNX's bool tensors); nonzero is true.
for onnx_op, op in pairs { Equal = "eq", Less = "lt", Greater = "gt", LessOrEqual = "le", GreaterOrEqual = "ge" } do
  ops[onnx_op] = function() return { fn = lumen[op] } end
end
ops.Not = function() return { fn = function(x) return lumen.eq(x, 0) end } end
ops.And = function() return { fn = function(a, b) return lumen.mul(lumen.ne(a, 0), lumen.ne(b, 0)) end } end
ops.Or = function() return { fn = function(a, b) return lumen.maximum(lumen.ne(a, 0), lumen.ne(b, 0)) end } end
ops.Xor = function() return { fn = function(a, b) return lumen.ne(lumen.ne(a, 0), lumen.ne(b, 0)) end } end

ops.Where = function(n)
  if n:is_int(2) or n:is_int(3) then return { fn = int_kept(lumen.where) } end
  return { fn = lumen.where }
end

-- Mod: fmod = 0 takes the divisor's sign (Python's %, integers only in ONNX), 1 the dividend's (C's fmod).
ops.Mod = function(n)
  return { fn = int_kept(n:attr("fmod", 0) == 1 and lumen.fmod or lumen.remainder) }
end

-- Variadic Min, Max, Sum, Mean with broadcasting.
local function variadic(combine, finish)
  return function(n)
    return { fn = int_kept(function(...)
      local xs = { ... }
      local y = xs[1]
      for k = 2, #xs do y = combine(y, xs[k]) end
      return finish and finish(y, #xs) or y
    end) }
  end
end
ops.Min, ops.Max = variadic(lumen.minimum), variadic(lumen.maximum)
ops.Sum = variadic(lumen.add)
ops.Mean = variadic(lumen.add, function(y, k) return lumen.div(y, k) end)

---------------------------------------------------------------- transformers: shapes

-- The integers of a constant or computed tensor (shape inputs evaluated at run time).
local function runtime_ints(t) return ints(t) end


-- Expand: bidirectional broadcast of x and the shape (ONNX: either may have the larger size).
local function broadcast_shape(s, t)
  local n, out = math.max(#s, #t), {}
  for i = 1, n do
    local a, b = s[i - (n - #s)] or 1, t[i - (n - #t)] or 1
    if a ~= b and a ~= 1 and b ~= 1 then
      error(("cannot expand (%s) to (%s)"):format(table.concat(s, ", "), table.concat(t, ", ")), 0)
    end
    out[i] = a == 1 and b or a
  end
  return out
end
ops.Expand = function(n)
  return { fn = function(x, shape)
    local s = x.shape
    local out = broadcast_shape(s, runtime_ints(shape))
    local same = #out == #s
    for i = 1, #out do same = same and out[i] == s[i] end
    if same then return x end
    check_count(count_of(out), "an expanded tensor")
    return lumen.expand(x, out)
  end }
end

ops.Tile = function(n)
  return { fn = function(x, reps)
    local r = runtime_ints(reps)
    if #r ~= x:dim() then error(("%d repeats for a %d-d input"):format(#r, x:dim()), 0) end
    check_count(x:numel() * count_of(r), "a tiled tensor")
    return lumen.tile(x, r)
  end }
end

-- Range(start, limit, delta): int64 when the inputs are.
ops.Range = function(n)
  return { fn = function(start, limit, delta)
    local a, b, d = start:flat_get(1), limit:flat_get(1), delta:flat_get(1)
    if d == 0 then error("delta is 0", 0) end
    local count = math.max(math.ceil((b - a) / d), 0)
    check_count(count, "a range")
    local v = {}
    for i = 0, count - 1 do v[i + 1] = a + i * d end
    if #v == 0 then return lumen.zeros({ 0 }):to(start:dtype()) end
    return lumen.tensor(v, start:dtype())
  end }
end

-- Split into the sizes of `split` (attribute before opset 13, input from 13), or equal parts
-- (num_outputs from opset 18, else one per output); one graph node per used output.
ops.Split = function(n)
  local axis = n:attr("axis", 0)
  local sizes = n:ints_attr_or_input("split", 2)
  local s = n:shape(1) or n:fail("the input's shape is not statically known")
  local a = axis < 0 and axis + #s or axis
  local len = s[a + 1]
  local count = #n.outputs
  if not sizes then
    local parts = n:attr("num_outputs", count)
    local each = (len + parts - 1) // parts
    sizes = {}
    for k = 1, parts do sizes[k] = math.max(0, math.min(each, len - (k - 1) * each)) end
  end
  if #sizes ~= count then n:fail("%d split sizes for %d outputs", #sizes, count) end
  local outs, start = {}, 1
  for k = 1, count do
    local first, size = start, sizes[k]
    outs[k] = { fn = function(x) return lumen.narrow(x, a + 1, first, size) end, inputs = { n.inputs[1] },
                type = "Split" }
    start = start + size
  end
  if start - 1 ~= len then n:fail("split sizes add up to %d, the axis has %d", start - 1, len) end
  return { outputs = outs }
end

-- ScatterND(data, indices, updates): ONNX's 0-based (negative from the end) index rows -> lumen's
-- 1-based scatter_nd. Rows naming one slice twice are an error (ONNX leaves their order undefined).
ops.ScatterND = function(n)
  if n:attr("reduction", "none") ~= "none" then n:fail("reduction '%s' is not supported", n:attr("reduction")) end
  return { fn = function(x, idx, upd)
    local s, is = x.shape, idx.shape
    local k = is[#is]
    local one = {}
    for i = 1, idx:numel() do
      local v = math.tointeger(idx:flat_get(i))
      local size = s[(i - 1) % k + 1]
      one[i] = v < 0 and v + size + 1 or v + 1
    end
    return lumen.scatter_nd(x, lumen.reshape(lumen.tensor(#one > 0 and one or {}, "int64"), is), upd)
  end }
end

ops.Einsum = function(n)
  local eq = n:attr("equation") or n:fail("missing attribute equation")
  if #n.inputs < 1 or #n.inputs > 2 then n:fail("%d operands (lumen's einsum takes one or two)", #n.inputs) end
  return { fn = function(a, b) return lumen.einsum(eq, a, b) end }
end

---------------------------------------------------------------- transformers: normalisation and reductions

-- LayerNormalization (opset 17; also what the importer fuses the exported mean / variance pattern
-- into): nn.LayerNorm over the dims from `axis` on, holding Scale and B. The optional Mean and
-- InvStdDev outputs are not supported.
ops.LayerNormalization = function(n)
  for k = 2, 3 do
    if n.outputs[k] and n.outputs[k] ~= "" and n.env.used[n.outputs[k]] then
      n:fail("output %d ('%s') is not supported", k, n.outputs[k])
    end
  end
  local s = n:shape(1) or n:fail("the input's shape is not statically known")
  local axis = n:attr("axis", -1)
  local a = axis < 0 and axis + #s or axis
  if a < 0 or a >= #s then n:fail("axis %d is out of range for a %d-d input", axis, #s) end
  local ns, count = {}, 1
  for d = a + 1, #s do ns[#ns + 1] = s[d]; count = count * s[d] end
  local eps = n:attr("epsilon", 1e-5)
  local w, b = n:const(2), n:const(3)
  local fits = function(t) return t == nil or t:numel() == count end
  if (not n:has(2) or w) and (not n:has(3) or b) and fits(w) and fits(b) then
    local m = lumen.nn.LayerNorm { normalized_shape = ns, eps = eps, elementwise_affine = w ~= nil, bias = b ~= nil }
    return { module = common.set_tensors(m, { weight = w and lumen.reshape(w, ns), bias = b and lumen.reshape(b, ns) }) }
  end
  -- scale or bias computed, or shaped to broadcast: normalise, then multiply and add as ONNX does
  return { type = "LayerNorm", fn = function(x, scale, bias)
    local y = lumen.layer_norm(x, ns, nil, nil, eps)
    if scale then y = lumen.mul(y, scale) end
    if bias then y = lumen.add(y, bias) end
    return y
  end }
end

ops.LogSoftmax = function(n)
  local axis = n:attr("axis", n.opset < 13 and 1 or -1)
  local r = n:rank(1)
  if n.opset >= 13 or axis == -1 or (r and axis == r - 1) then
    return { module = lumen.nn.LogSoftmax { dim = dim(axis) } }
  end
  n:fail("axis %d before opset 13 (a log-softmax of the flattened input) is not supported", axis)
end

-- Reductions beyond ReduceMean / ReduceMax (axes an attribute before opset 13 for ReduceSum, 18 for
-- the others, then an input; no axes = every axis).
local function reduced_shape(s, ds, keep)
  local gone, out = {}, {}
  for _, d in ipairs(ds) do gone[d] = true end
  for i = 1, #s do
    if not gone[i] then out[#out + 1] = s[i] elseif keep then out[#out + 1] = 1 end
  end
  return out
end
ops.ReduceSum = function(n)
  return reduce(n, int_kept(function(x, axes, keep) return lumen.sum(x, dims_of(x, axes), keep) end))
end
ops.ReduceL2 = function(n)
  return reduce(n, function(x, axes, keep) return lumen.norm(x, 2, dims_of(x, axes), keep) end)
end
ops.ReduceL1 = function(n)
  return reduce(n, function(x, axes, keep) return lumen.sum(lumen.abs(x), dims_of(x, axes), keep) end)
end
ops.ReduceSumSquare = function(n)
  return reduce(n, function(x, axes, keep) return lumen.sum(lumen.square(x), dims_of(x, axes), keep) end)
end
ops.ReduceMin = function(n)
  return reduce(n, function(x, axes, keep)
    local ds = dims_of(x, axes)
    return lumen.reshape(lumen.amin(x, ds, true), reduced_shape(x.shape, ds, keep))
  end)
end
ops.ReduceLogSumExp = function(n)
  return reduce(n, function(x, axes, keep)
    local ds = dims_of(x, axes)
    local m = lumen.autograd.detach(lumen.amax(x, ds, true))
    local y = lumen.add(lumen.log(lumen.sum(lumen.exp(lumen.sub(x, m)), ds, true)), m)
    return lumen.reshape(y, reduced_shape(x.shape, ds, keep))
  end)
end

---------------------------------------------------------------- transformers: recurrent layers

-- LSTM and GRU, the default activations only: one nn.LSTMLayer / nn.GRULayer (onnx_layout) holding the
-- file's weights as parameters, its gates reordered from ONNX's (i, o, f, c) and (z, r, h) to lumen's
-- (PyTorch's) (i, f, g, o) and (r, z, n). Y (T, D, N, H) (layout 1: (N, T, D, H)) is that layer's node;
-- Y_h, when used, is read off Y (the last step of the forward direction, the first of the reverse one);
-- Y_c, when used, is a second node running the same layer. Constant zero initial states count as absent.
local function rnn_converter(kind)
  local G = kind == "LSTM" and 4 or 3
  local order = kind == "LSTM" and { 1, 3, 4, 2 } or { 2, 1, 3 } -- lumen block k = ONNX block order[k]
  return function(n)
    for _, a in ipairs { "activations", "activation_alpha", "activation_beta", "clip" } do
      if n.attrs[a] ~= nil then n:fail("attribute %s is not supported (only the default activations, no clip)", a) end
    end
    if n:attr("input_forget", 0) ~= 0 then n:fail("input_forget = 1 is not supported") end
    local H = n:attr("hidden_size") or n:fail("missing attribute hidden_size")
    local direction = n:attr("direction", "forward")
    if direction ~= "forward" and direction ~= "reverse" and direction ~= "bidirectional" then
      n:fail("unknown direction '%s'", tostring(direction))
    end
    local D = direction == "bidirectional" and 2 or 1
    local layout = n:attr("layout", 0)
    local W, R, B = n:need_const(2, "W"), n:need_const(3, "R"), n:const(4)
    if n:has(4) and not B then n:fail("B (input 4) must be a constant") end
    if n:has(5) then
      local lens, s = n:const(5), n:shape(1)
      local T = s and s[layout == 1 and 2 or 1]
      local ok = lens ~= nil and T ~= nil
      for k = 1, ok and lens:numel() or 0 do ok = ok and lens:flat_get(k) == T end
      if not ok then n:fail("sequence_lens other than the full length is not supported") end
    end
    if kind == "LSTM" and n:has(8) then
      local p = n:const(8)
      if not p or lumen.max_all(lumen.abs(p)) ~= 0 then n:fail("peephole weights (input P) are not supported") end
    end
    if W:dim() ~= 3 or W:size(1) ~= D or W:size(2) ~= G * H or R:dim() ~= 3 or R:size(1) ~= D
       or R:size(2) ~= G * H or R:size(3) ~= H then
      n:fail("W %s and R %s do not fit hidden_size %d and %d direction(s)", lumen.shape_str(W), lumen.shape_str(R), H, D)
    end
    local function reorder(t) -- (G * H, ...) in ONNX's gate order -> lumen's
      local parts = {}
      for k = 1, G do parts[k] = lumen.narrow(t, 1, (order[k] - 1) * H + 1, H) end
      return lumen.cat(parts, 1)
    end
    local Layer = kind == "LSTM" and lumen.nn.LSTMLayer or lumen.nn.GRULayer
    local m = Layer { input_size = W:size(3), hidden_size = H, bias = B ~= nil, bidirectional = D == 2,
                      reverse = direction == "reverse", batch_first = layout == 1, onnx_layout = true,
                      linear_before_reset = kind == "GRU" and n:attr("linear_before_reset", 0) == 1 }
    local tensors = {}
    for d, suffix in ipairs(D == 2 and { "", "_reverse" } or { "" }) do
      tensors["weight_ih" .. suffix] = reorder(lumen.select(W, 1, d))
      tensors["weight_hh" .. suffix] = reorder(lumen.select(R, 1, d))
      if B then
        local b = lumen.select(B, 1, d)
        tensors["bias_ih" .. suffix] = reorder(lumen.narrow(b, 1, 1, G * H))
        tensors["bias_hh" .. suffix] = reorder(lumen.narrow(b, 1, G * H + 1, G * H))
      end
    end
    common.set_tensors(m, tensors)
    -- initial states: runtime inputs follow x in order; constants are bound (zeros dropped)
    local inputs, states, slots = { n.inputs[1] }, {}, kind == "LSTM" and { 6, 7 } or { 6 }
    local positional = true
    for k, i in ipairs(slots) do
      local c = n:const(i)
      if c and lumen.max_all(lumen.abs(c)) == 0 then c = nil end
      if c then
        states[k], positional = c, false
      elseif n:has(i) and not n:const(i) then
        if #inputs ~= k then positional = false end
        inputs[#inputs + 1], states[k] = n.inputs[i], "runtime"
      end
    end
    local function run(x, ...)
      local rest, args, j = { ... }, {}, 1
      for k = 1, #slots do
        if states[k] == "runtime" then args[k], j = rest[j], j + 1 else args[k] = states[k] end
      end
      return m:forward(x, args[1], args[2])
    end
    local y_name = n.outputs[1] ~= "" and n.outputs[1] or (n.outputs[2] .. ":Y")
    local outs = {}
    if positional then -- the layer is a module node: its weights are the model's parameters
      outs[1] = { module = m, inputs = inputs, name = y_name }
    else
      outs[1] = { type = m.type, inputs = inputs, fn = function(...) return (run(...)) end, name = y_name }
    end
    outs[2] = { type = kind .. "State", inputs = { y_name }, fn = function(y)
      if layout == 1 then y = lumen.permute(y, { 2, 3, 1, 4 }) end -- (T, D, N, H)
      local hs = {}
      for d = 1, D do
        local rev = direction == "reverse" or d == 2
        hs[d] = lumen.select(lumen.select(y, 2, d), 1, rev and 1 or y:size(1))
      end
      local h = lumen.stack(hs, 1) -- (D, N, H)
      return layout == 1 and lumen.transpose(h, 1, 2) or h
    end }
    if kind == "LSTM" then
      outs[3] = { type = "LSTMState", inputs = inputs, fn = function(...)
        local _, e = run(...)
        return e.c
      end }
    end
    return { outputs = outs }
  end
end
ops.LSTM = rnn_converter("LSTM")
ops.GRU = rnn_converter("GRU")

---------------------------------------------------------------- fusing the patterns exporters spell out

-- Exporters write SiLU, HardSwish, GELU and LayerNorm as primitive ops (PyTorch before opsets 24, 14, 20 and
-- 17). The importer puts one Swish / HardSwish / Gelu / LayerNormalization node in the pattern's place, named
-- by its last output: the model then has one SiLU / HardSwish / GELU / LayerNorm layer there, as it was
-- built, and runs one kernel. A pattern whose intermediate values are used elsewhere (or are graph outputs)
-- is left as it is.
--   SiLU:      Sigmoid(x) -> * x
--   HardSwish: HardSigmoid(x) with alpha 1/6, beta 0.5 -> * x
--   GELU:      x / sqrt(2) (or x * (1 / sqrt(2))) -> Erf -> + 1 -> * x -> * 0.5, or (x * 0.5) * (1 + erf)
--   LayerNorm: m = ReduceMean(x, trailing axes); d = x - m; d / Sqrt(ReduceMean(d ^ 2) + eps)
--              [* weight [+ bias]], weight and bias constants
local function fuse(desc)
  local nodes = desc.nodes
  local producer, uses, is_output, constant_node = {}, {}, {}, {}
  for _, o in ipairs(desc.outputs) do is_output[o.name] = true end
  for i, node in ipairs(nodes) do
    for _, o in ipairs(node.outputs) do producer[o] = i end
    for _, name in ipairs(node.inputs) do
      if name ~= "" then
        uses[name] = uses[name] or {}
        table.insert(uses[name], i)
      end
    end
    if node.op_type == "Constant" then constant_node[node.outputs[1]] = node end
  end
  local function const_value(name)
    local t = desc.initializers[name]
    if t then return t end
    local c = constant_node[name]
    if c and c.attrs.value then return c.attrs.value end
    if c and c.attrs.value_float then return lumen.tensor(c.attrs.value_float) end
    return nil
  end
  local function scalar(name)
    local t = const_value(name)
    if t and t:numel() == 1 then return t:flat_get(1) end
    return nil
  end
  local function near(v, want) return v ~= nil and math.abs(v - want) <= 1e-4 * math.max(1, math.abs(want)) end
  -- The only node reading `name` (index), when exactly one reads it once and it is no graph output.
  local function only(name, op)
    local u = uses[name]
    if not u or #u ~= 1 or is_output[name] then return nil end
    if op and nodes[u[1]].op_type ~= op then return nil end
    return u[1]
  end
  -- For a binary node: the operand other than `name`, or nil when `name` is not an operand.
  local function other(node, name)
    if node.inputs[1] == name then return node.inputs[2] end
    if node.inputs[2] == name then return node.inputs[1] end
    return nil
  end
  local gone, replaced = {}, {}

  local function gelu(ei)
    local e = nodes[ei]
    local di = producer[e.inputs[1]]
    if not di or only(e.inputs[1]) ~= ei then return end
    local d = nodes[di]
    local x
    if d.op_type == "Div" and near(scalar(d.inputs[2]), math.sqrt(2)) then
      x = d.inputs[1]
    elseif d.op_type == "Mul" then
      if near(scalar(d.inputs[2]), 1 / math.sqrt(2)) then x = d.inputs[1]
      elseif near(scalar(d.inputs[1]), 1 / math.sqrt(2)) then x = d.inputs[2] end
    end
    if not x then return end
    local ai = only(e.outputs[1], "Add")
    if not ai or not near(scalar(other(nodes[ai], e.outputs[1])), 1) then return end
    local m1 = only(nodes[ai].outputs[1], "Mul")
    if not m1 then return end
    local o = other(nodes[m1], nodes[ai].outputs[1])
    local drop, final
    if o == x then
      local m2 = only(nodes[m1].outputs[1], "Mul")
      if not m2 or not near(scalar(other(nodes[m2], nodes[m1].outputs[1])), 0.5) then return end
      drop, final = { di, ei, ai, m1 }, m2
    else
      local hi = producer[o]
      local h = hi and nodes[hi]
      if not h or h.op_type ~= "Mul" or only(o) ~= m1 or not near(scalar(other(h, x) or ""), 0.5) then return end
      drop, final = { di, ei, ai, hi }, m1
    end
    for _, k in ipairs(drop) do gone[k] = true end
    replaced[final] = { op_type = "Gelu", domain = "", name = nodes[final].name, inputs = { x },
                        outputs = { nodes[final].outputs[1] }, attrs = {} }
  end

  -- x * gate(x), the gate's output read by that Mul alone: one node of op_type (Swish, HardSwish).
  local function self_gated(si, op_type)
    local s = nodes[si]
    local x = s.inputs[1]
    local mi = only(s.outputs[1], "Mul")
    if not mi or other(nodes[mi], s.outputs[1]) ~= x then return end
    gone[si] = true
    replaced[mi] = { op_type = op_type, domain = "", name = nodes[mi].name, inputs = { x },
                     outputs = { nodes[mi].outputs[1] }, attrs = {} }
  end
  -- HardSwish is x * HardSigmoid(x) with PyTorch's alpha = 1/6 and beta = 0.5 (ONNX's defaults are 0.2, 0.5).
  local function hardswish(si)
    local a = nodes[si].attrs
    if near(a.alpha or 0.2, 1 / 6) and near(a.beta or 0.5, 0.5) then self_gated(si, "HardSwish") end
  end

  -- The axes of a ReduceMean as a key ("-2,-1"), when they are trailing negative axes and keepdims is 1.
  local function trailing_axes(node)
    if node.attrs.keepdims == 0 then return nil end
    local axes = node.attrs.axes
    if axes == nil and node.inputs[2] and node.inputs[2] ~= "" then
      local t = const_value(node.inputs[2])
      if not t then return nil end
      axes = ints(t)
    end
    if type(axes) ~= "table" or #axes == 0 then return nil end
    local sorted = { table.unpack(axes) }
    table.sort(sorted)
    for i, a in ipairs(sorted) do
      if a ~= i - 1 - #sorted then return nil end
    end
    return #sorted
  end

  local function layer_norm(ri)
    local r1 = nodes[ri]
    local k = trailing_axes(r1)
    if not k then return end
    local x = r1.inputs[1]
    local si = only(r1.outputs[1], "Sub")
    if not si or nodes[si].inputs[1] ~= x or nodes[si].inputs[2] ~= r1.outputs[1] then return end
    local d = nodes[si].outputs[1]
    local u = uses[d]
    if not u or #u ~= 2 or is_output[d] then return end
    local pi, vi = u[1], u[2]
    if nodes[pi].op_type ~= "Pow" then pi, vi = vi, pi end
    local p, dv = nodes[pi], nodes[vi]
    if p.op_type ~= "Pow" or p.inputs[1] ~= d or not near(scalar(p.inputs[2]), 2) then return end
    local r2 = only(p.outputs[1], "ReduceMean")
    if not r2 or trailing_axes(nodes[r2]) ~= k then return end
    local ad = only(nodes[r2].outputs[1], "Add")
    if not ad then return end
    local eps = scalar(other(nodes[ad], nodes[r2].outputs[1]))
    if not eps then return end
    local sq = only(nodes[ad].outputs[1], "Sqrt")
    if not sq or only(nodes[sq].outputs[1]) ~= vi or dv.op_type ~= "Div" or dv.inputs[1] ~= d
       or dv.inputs[2] ~= nodes[sq].outputs[1] then
      return
    end
    local drop, final, w, b = { ri, si, pi, r2, ad, sq }, vi, "", ""
    local mi = only(dv.outputs[1], "Mul")
    if mi and const_value(other(nodes[mi], dv.outputs[1]) or "") then
      drop[#drop + 1], final, w = vi, mi, other(nodes[mi], dv.outputs[1])
      local bi = only(nodes[mi].outputs[1], "Add")
      if bi and const_value(other(nodes[bi], nodes[mi].outputs[1]) or "") then
        drop[#drop + 1], final, b = mi, bi, other(nodes[bi], nodes[mi].outputs[1])
      end
    end
    for _, j in ipairs(drop) do gone[j] = true end
    replaced[final] = { op_type = "LayerNormalization", domain = "", name = nodes[final].name,
                        inputs = { x, w, b }, outputs = { nodes[final].outputs[1] },
                        attrs = { axis = -k, epsilon = eps } }
  end

  for i, node in ipairs(nodes) do
    if node.domain == "" or node.domain == "ai.onnx" then
      if node.op_type == "Erf" then gelu(i)
      elseif node.op_type == "ReduceMean" then layer_norm(i)
      elseif node.op_type == "Sigmoid" then self_gated(i, "Swish")
      elseif node.op_type == "HardSigmoid" then hardswish(i) end
    end
  end
  local out = {}
  for i, node in ipairs(nodes) do
    if replaced[i] then out[#out + 1] = replaced[i] elseif not gone[i] then out[#out + 1] = node end
  end
  return out
end

---------------------------------------------------------------- shapes that follow the batch size

-- A model exported with a symbolic batch size computes some shapes from it (Shape -> Gather ->
-- Concat -> Reshape, the class token's Expand, recurrent layers' zero initial states). The importer
-- learns which by running the graph a second time with a batch of 2 (started at the first Shape of a
-- computed value, replaying what came before): a Shape whose value differs between the two batch sizes
-- stays a node, and so does everything computed from it that differs; the rest folds as before.

-- Whether two probe values are the same tensor.
local function same_value(a, b)
  if a:dtype() ~= b:dtype() or not lumen.same_shape(a, b) then return false end
  if a:numel() > 4096 then return false end
  for i = 1, a:numel() do
    if a:flat_get(i) ~= b:flat_get(i) then return false end
  end
  return true
end

-- Runs spec on the batch-2 probe values, recording its output; a failure stops the second probe
-- (the model keeps what the first one learnt: shapes then fold as at batch 1).
local function probe2_run(env, spec)
  if not env.p2 then return end
  local args = {}
  for i, name in ipairs(spec.inputs) do
    args[i] = env.p2[name]
    if args[i] == nil then return end
  end
  local ok, y = pcall(lumen.no_grad, common.run, spec, args, #spec.inputs)
  if ok and lumen.is_tensor(y) then env.p2[spec.name] = y else env.p2 = false end
end

local function probe2_start(env)
  if env.p2 ~= nil then return end
  env.p2 = {}
  for _, name in ipairs(env.b.inputs) do
    env.p2[name] = env.inputs2[name]
    if env.p2[name] == nil then env.p2 = false return end
  end
  for _, spec in ipairs(env.b.nodes) do
    probe2_run(env, spec)
    if not env.p2 then return end
  end
end

-- The shape of input i at a batch of 2, or nil when unknown.
function Node:shape2(i)
  if not self.env.dynamic then return nil end
  probe2_start(self.env)
  local p2, name = self.env.p2, self.inputs[i]
  local t = p2 and p2[self.env.alias[name] or name]
  return t and t.shape
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

-- Adds a converter's spec as the graph node computing `out`: constants and aliases are recorded,
-- a node whose inputs are all constants is evaluated now, and one computed from shape values only is
-- a constant when both probes agree on it.
local function emit(env, node, spec, out)
  if env.produced[out] or env.consts[out] or env.alias[out] then error(("output '%s' is computed twice"):format(out), 0) end
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
  spec = bind(spec, node, env.consts)
  local constant, shape_only = true, true
  for _, name in ipairs(spec.inputs) do
    if not env.consts[name] then
      constant = false
      if not env.shapeval[env.alias[name] or name] then shape_only = false end
    end
  end
  if constant then
    local args = {}
    for i, name in ipairs(spec.inputs) do args[i] = env.consts[name] end
    env.consts[out] = env.b:fold(spec, args, "constant '" .. out .. "'")
    return
  end
  for i, name in ipairs(spec.inputs) do spec.inputs[i] = env.alias[name] or name end
  spec.name = out
  spec.type = spec.type or node.op_type
  if shape_only and not spec.shapeval then
    local a1, a2 = {}, {}
    for i, name in ipairs(spec.inputs) do a1[i], a2[i] = env.b:value(name), env.p2 and env.p2[name] end
    local v1 = lumen.no_grad(common.run, spec, a1, #spec.inputs)
    local ok, v2 = false, nil
    if env.p2 and #a2 == #spec.inputs then ok, v2 = pcall(lumen.no_grad, common.run, spec, a2, #spec.inputs) end
    if ok and lumen.is_tensor(v2) and same_value(v1, v2) then env.consts[out] = v1 return end
    spec.shapeval = v1:dtype() == "int64"
  end
  env.b:add(spec)
  probe2_run(env, spec)
  env.produced[out] = true
  if spec.shapeval then env.shapeval[out] = true end
end

-- Converts one node, folding it when every input is constant.
local function convert(env, node)
  local key = node.domain ~= "" and node.domain ~= "ai.onnx" and (node.domain .. "." .. node.op_type) or node.op_type
  local conv = ops[key]
  if not conv then error("unsupported operator", 0) end
  local n = setmetatable({ inputs = node.inputs, outputs = node.outputs, attrs = node.attrs, opset = env.opset,
                           env = env }, Node)
  for _, name in ipairs(node.inputs) do
    if name ~= "" and not (env.consts[name] or env.alias[name] or env.produced[name]) then
      n:fail("input '%s' is computed by no earlier node", name)
    end
    if env.int_inputs[name] and node.op_type ~= "Gather" and node.op_type ~= "Shape" then
      n:fail("int64 input '%s' may only feed an embedding Gather (or Shape)", name)
    end
  end
  local spec = conv(n)
  if spec.outputs then -- one spec per output (Split, LSTM, GRU); a spec may read an earlier output
    for k, sub in pairs(spec.outputs) do
      local out = sub.name or node.outputs[k]
      sub.name = nil
      if out and out ~= "" and (env.used[out] or k == 1) then emit(env, node, sub, out) end
    end
    return
  end
  for k = 2, #node.outputs do
    if env.used[node.outputs[k]] then n:fail("output %d ('%s') is not supported", k, node.outputs[k]) end
  end
  emit(env, node, spec, node.outputs[1])
end

-- The probe shape and dtype of a graph input (zeros for floats, ones for 1-based ids), symbolic batch
-- -> 1 (or `batch`).
local function probe_input(v, given, batch)
  local shape = given or v.shape
  if not shape then return nil end
  local s = {}
  for i, d in ipairs(shape) do
    if d < 0 and i > 1 then return nil end
    s[i] = d < 0 and (batch or 1) or d
  end
  return s, (v.elem_type == "int64" or v.elem_type == "int32") and "int64" or "float32"
end

-- model.input_spec from an image-like input (N, C, H, W) with known sizes.
local function input_spec(v)
  local s = v.shape
  if v.elem_type ~= "float" or not s or #s ~= 4 or s[3] < 1 or s[4] < 1 or s[2] < 1 then return nil end
  return { size = { s[3], s[4] }, channels = s[2] }
end

-- What the file's metadata_props record: the input spec and the labels (nil when absent).
local function recorded(desc)
  local meta, out = desc.metadata or {}, {}
  for key, field in pairs { ["lumen.input_spec"] = "spec", ["lumen.labels"] = "labels" } do
    if meta[key] then
      local ok, v = pcall(lumen.json.decode, meta[key])
      if not ok or type(v) ~= "table" then
        error(("metadata_props '%s' is not a JSON %s (%s)"):format(key, field == "spec" and "object" or "array",
          ok and type(v) or tostring(v)), 0)
      end
      out[field] = v
    end
  end
  return out
end

-- The graph of a parsed model (errors are prefixed with the file by load).
local function build(desc, opts)
  local rec = recorded(desc)
  if desc.opset < 9 then error(("opset %d is not supported (lumen reads opsets 9 to 17)"):format(desc.opset), 0) end
  if #desc.inputs == 0 then error("the graph has no inputs", 0) end
  local env = { consts = {}, alias = {}, produced = {}, used = {}, int_inputs = {}, opset = desc.opset,
                b = common.builder(), shapeval = {}, inputs2 = {}, reader = {}, pad_into = {} }
  for name, t in pairs(desc.initializers) do env.consts[name] = t end
  for i, v in ipairs(desc.inputs) do
    if v.elem_type ~= "float" and v.elem_type ~= "int64" and v.elem_type ~= "int32" then
      error(("input '%s' has type %s (lumen reads float and int64 inputs)"):format(v.name, v.elem_type), 0)
    end
    if v.elem_type ~= "float" then env.int_inputs[v.name] = true end
    env.produced[v.name] = true
    local given = i == 1 and opts.input_shape or nil
    env.b:input(v.name, probe_input(v, given))
    -- a symbolic batch size: shapes computed from it are found with a second probe at batch 2
    local first = (given or v.shape or {})[1]
    if first and first < 0 then
      local s2, dtype = probe_input(v, given, 2)
      env.dynamic = true
      if s2 then
        local bytes = dtype == "int64" and 8.0 or 4.0
        for _, d in ipairs(s2) do bytes = bytes * d end
        common.limit("probe_bytes", bytes, ("the batch-2 probe of input '%s'"):format(v.name))
        env.inputs2[v.name] = dtype == "int64" and lumen.ones(s2):long() or lumen.zeros(s2)
      end
    end
  end
  local nodes = fuse(desc)
  -- How many nodes read each value, so the probe frees each value after its last reader.
  local readers = {}
  for _, node in ipairs(nodes) do
    for _, name in ipairs(node.inputs) do
      env.used[name] = true
      if name ~= "" then readers[name] = (readers[name] or 0) + 1 end
    end
  end
  for _, o in ipairs(desc.outputs) do env.used[o.name], readers[o.name] = true, math.huge end
  for _, node in ipairs(nodes) do -- the node that alone reads a value, if one does
    for _, name in ipairs(node.inputs) do if readers[name] == 1 then env.reader[name] = node end end
  end
  for _, v in ipairs(desc.inputs) do env.b:readers(v.name, readers[v.name] or 0) end
  for _, node in ipairs(nodes) do
    local ok, err = pcall(convert, env, node)
    if not ok then error(("node '%s' (%s): %s"):format(node_label(node), node.op_type, tostring(err)), 0) end
    for _, out in ipairs(node.outputs) do -- several for Split, LSTM, GRU
      if out ~= "" and (env.produced[out] or env.alias[out]) then env.b:readers(env.alias[out] or out, readers[out] or 0) end
    end
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
  local live, kept = {}, {}
  for _, o in ipairs(outputs) do live[o] = true end
  for i = #env.b.nodes, 1, -1 do
    local spec = env.b.nodes[i]
    if live[spec.name] then
      kept[#kept + 1] = spec
      for _, name in ipairs(spec.inputs) do live[name] = true end
    end
  end
  for i = 1, #env.b.nodes do env.b.nodes[i] = kept[#kept + 1 - i] end
  local spec = input_spec(desc.inputs[1])
  if rec.spec then
    spec = spec or {}
    for k, v in pairs(rec.spec) do spec[k] = v end
  end
  local o = {}
  for k, v in pairs(opts) do o[k] = v end
  if o.labels == nil then o.labels = rec.labels end
  return common.finish(env.b, outputs, spec, o)
end

-- load(path [, opts]) -> nn.Graph; raises "path: reason".
M.load = common.loader("onnx", lumen.core.onnx_load, build)

return M
