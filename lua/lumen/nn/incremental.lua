-- lumen.nn.incremental: forwards of copies of one image that differ from it in a box each (an occluding
-- patch, a local mask, a deletion step), recomputing only what each box reaches.
--
--   local inc = incremental.new(model, x, {logits = true})   -- x (1, C, H, W); runs and keeps the base
--   inc.output                                                -- the model's output for x, (1, K)
--   inc:forward(boxes, values) -> (n, K)  -- boxes: n of {top, left, height, width} (1-based); values: a
--                                         -- number (the box filled with it) or (n, C, h, w), all boxes h x w
--   inc:cost(boxes) -> the share of the full forwards' multiply-adds inc:forward makes (0..1)
--   inc.fallback -> {name =, type =} of the first layer the perturbation reaches that runs in full, or nil
--
-- The base forward keeps every layer's output. For a batch of copies each layer then holds, per copy,
-- the box where its output may differ from the base (the receptive field of the perturbation) and the
-- values there, one (n, C, h, w) tensor for the batch (the boxes share the largest size, placed inside
-- the map). Per layer kind:
--   window     Conv2d (stride, padding, "same", dilation, groups, depthwise; a folded Conv+BN+ReLU runs
--              folded), MaxPool2d, AvgPool2d (not ceil_mode; AvgPool2d counting the padding): for an
--              output box, the input rows o*s - p .. o*s - p + (k - 1) d it reads, cut from the base input
--              (padded once, with zeros or -inf for max pools) with each copy's box pasted in, and the
--              layer run without padding on these slabs;
--   point      activations, BatchNorm2d and Dropout in eval mode, elementwise graph ops with constants
--              that do not vary over the map: the same boxes, the layer run on the boxes;
--   merge      Add / Sub / Mul / Div / Max / Min of same-shaped maps, Concat over channels: the union
--              of the inputs' boxes, each input cut to it from its base and its box;
--   full       everything else (global pools, Flatten, Linear, Softmax, Pad, unknown functions), and
--              any layer whose box covers its whole output: the copies are made whole (the base with
--              the box pasted in) and the layer runs as in a plain forward — from there on every layer
--              runs in full, transparently.
-- Exact: each value is computed from the same inputs and weights as in a full forward (only the
-- summation order inside a convolution may differ with the slab size), so outputs agree with full
-- forwards within float32 rounding (tests/lua/incremental_spec.lua). No tape: run it under no_grad.
local lumen = require "lumen"
local core = lumen.core

local M = {}

local POINT_MODULES = { ReLU = true, LeakyReLU = true, ReLU6 = true, Clip = true, Sigmoid = true, SiLU = true, Tanh = true,
                        GELU = true, HardSigmoid = true, HardSwish = true, BatchNorm2d = "eval", Dropout = "eval",
                        Identity = true }
local POINT_OPS = { relu = true, leaky_relu = true, relu6 = true, clip = true, sigmoid = true, silu = true, tanh = true,
                    gelu = true, hardsigmoid = true, hardswish = true, softplus = true, elu = true, neg = true,
                    exp = true, abs = true, sqrt = true, square = true, add = true, sub = true, mul = true,
                    div = true, maximum = true, minimum = true, clamp = true }
local MERGE_OPS = { add = true, sub = true, mul = true, div = true, maximum = true, minimum = true }
local MERGE_TYPES = { Add = true, Sub = true, Mul = true, Div = true, Sum = true, Max = true, Min = true }

---------------------------------------------------------------- layer geometry

-- Padding {top, left, bottom, right} of a padding option for an input H x W (nil if not understood).
local function pad4(p, size, k, s, d)
  if p == nil or p == "valid" then return { 0, 0, 0, 0 } end
  if math.type(p) == "integer" then return { p, p, p, p } end
  if p == "same" then
    local res = {}
    for i = 1, 2 do
      local total = math.max(((size[i] + s[i] - 1) // s[i] - 1) * s[i] + (k[i] - 1) * d[i] + 1 - size[i], 0)
      res[i], res[i + 2] = total // 2, total - total // 2
    end
    return res
  end
  if type(p) == "table" and #p == 2 then return { p[1], p[2], p[1], p[2] } end
  if type(p) == "table" and #p == 4 then return { p[1], p[2], p[3], p[4] } end
  return nil
end

local function pair(v)
  if math.type(v) == "integer" then return { v, v } end
  if type(v) == "table" and #v == 2 then return { v[1], v[2] } end
  return nil
end

-- The window geometry of a module with input shape xs and output shape ys, or nil when it is not a
-- window layer incremental.lua can run on slabs: {dims = {rows, cols} each {k, s, d, lo, n, o}, padval}.
local function window_of(m, xs, ys)
  if #xs ~= 4 or #ys ~= 4 or xs[1] ~= 1 then return nil end
  local k, s, d, p, padval
  if m.type == "Conv2d" then
    local w = m.weight
    if not lumen.is_tensor(w) or w:dim() ~= 4 then return nil end
    k, s, d, p, padval = { w.shape[3], w.shape[4] }, m.opts.stride, m.opts.dilation, m.opts.padding, 0
  elseif m.type == "MaxPool2d" or m.type == "AvgPool2d" then
    local o = m.opts
    if o.ceil_mode then return nil end
    k, s, d, p = o.kernel_size, o.stride, { 1, 1 }, o.padding
    padval = m.type == "MaxPool2d" and -math.huge or 0
    if m.type == "AvgPool2d" and not o.count_include_pad and p ~= 0 then return nil end
  else
    return nil
  end
  k, s, d = pair(k), pair(s), pair(d)
  if not (k and s and d) then return nil end
  local pads = pad4(p, { xs[3], xs[4] }, k, s, d)
  if not pads then return nil end
  local dims = {}
  for i = 1, 2 do
    local n, o = xs[i + 2], ys[i + 2]
    local span = (k[i] - 1) * d[i] + 1
    if (n + pads[i] + pads[i + 2] - span) // s[i] + 1 ~= o then return nil end -- not the arithmetic we know
    dims[i] = { k = k[i], s = s[i], d = d[i], lo = pads[i], hi = pads[i + 2], n = n, o = o }
  end
  -- macs: multiply-adds per output position (all channels)
  return { dims = dims, padval = padval, macs = m.type == "Conv2d" and m.weight:numel() or 0 }
end

-- Whether a constant argument of an elementwise op is the same at every position of the map.
local function flat_constant(v)
  if type(v) == "number" or type(v) == "boolean" or v == nil then return true end
  if not lumen.is_tensor(v) then return false end
  local s = v.shape
  return (s[#s] or 1) == 1 and (s[#s - 1] or 1) == 1
end

local function same_shape(a, b)
  if #a ~= #b then return false end
  for i = 1, #a do if a[i] ~= b[i] then return false end end
  return true
end

-- The kind of flow node n ("window", "point", "merge" or "full") from the shapes of the base pass.
local function kind_of(n, shapes, ys)
  local m = n.module
  local xs = shapes[n.inputs[1]]
  if not xs or #ys ~= 4 or ys[1] ~= 1 then return "full" end
  if #n.inputs == 1 then
    if #xs ~= 4 or not same_shape(xs, ys) then
      return window_of(m, xs, ys) and "window" or "full"
    end
    local p = POINT_MODULES[n.type]
    if p and not (p == "eval" and m.training) and m.forward and getmetatable(m) then return "point" end
    if m.op and POINT_OPS[m.op] then
      for _, a in ipairs(m.args or {}) do if not flat_constant(a) then return "full" end end
      return "point"
    end
    return window_of(m, xs, ys) and "window" or "full"
  end
  local concat = n.type == "Concat" -- the shapes below show it joins channels
  local channels = 0
  for _, i in ipairs(n.inputs) do
    local s = shapes[i]
    if not s or #s ~= 4 or s[1] ~= 1 or s[3] ~= ys[3] or s[4] ~= ys[4] then return "full" end
    if not concat and not same_shape(s, ys) then return "full" end
    channels = channels + s[2]
  end
  if concat then return channels == ys[2] and "merge" or "full" end
  if (m.op and MERGE_OPS[m.op] and #(m.args or {}) == 0) or (not m.op and MERGE_TYPES[n.type]) then return "merge" end
  return "full"
end

---------------------------------------------------------------- boxes

-- Per copy j: need[j] = {r0, r1, c0, c1} (0-based, inclusive) where the output may differ from the
-- base, or false. A layout puts every copy's values in one (n, C, h, w) tensor: box j covers rows
-- r[j] .. r[j] + h - 1 and columns c[j] .. c[j] + w - 1, and holds need[j].
local function layout(need, H, W)
  local h, w, any = 0, 0, false
  for _, b in ipairs(need) do
    if b then
      any = true
      h, w = math.max(h, b[2] - b[1] + 1), math.max(w, b[4] - b[3] + 1)
    end
  end
  if not any then return nil end
  if h >= H and w >= W then return { full = true } end
  local r, c = {}, {}
  for j, b in ipairs(need) do
    r[j] = b and math.min(b[1], H - h) or 0
    c[j] = b and math.min(b[3], W - w) or 0
  end
  return { need = need, h = h, w = w, r = r, c = c }
end

local function ceil_div(a, b) return -((-a) // b) end

-- The output rows (or columns) a window layer changes when input rows a .. b change, or nil.
local function reach(dim, a, b)
  local lo = math.max(0, ceil_div(a + dim.lo - (dim.k - 1) * dim.d, dim.s))
  local hi = math.min(dim.o - 1, (b + dim.lo) // dim.s)
  if lo > hi then return nil end
  return lo, hi
end

local function window_need(geo, lay)
  local res = {}
  for j, b in ipairs(lay.need) do
    res[j] = false
    if b then
      local r0, r1 = reach(geo.dims[1], b[1], b[2])
      local c0, c1 = reach(geo.dims[2], b[3], b[4])
      if r0 and c0 then res[j] = { r0, r1, c0, c1 } end
    end
  end
  return res
end

local function union_need(lays, n)
  local res = {}
  for j = 1, n do
    local u = false
    for _, lay in ipairs(lays) do
      local b = lay.need[j]
      if b then
        u = u and { math.min(u[1], b[1]), math.max(u[2], b[2]), math.min(u[3], b[3]), math.max(u[4], b[4]) }
          or { b[1], b[2], b[3], b[4] }
      end
    end
    res[j] = u
  end
  return res
end

---------------------------------------------------------------- tensors

local function plane(t, j) -- copy j of a batch (n, C, h, w) as a (C, h, w) view
  local s = t.shape
  return core.view(core.narrow0(t, j, 1), { s[2], s[3], s[4] })
end

-- Pastes each copy's box values into dst (n, C, ., .) whose copy j starts at rows r0[j], columns c0[j].
local function paste_boxes(dst, vals, lay, r0, c0)
  for j = 1, #lay.r do
    core.image_paste_(plane(dst, j), plane(vals, j), lay.r[j] - r0[j] + 1, lay.c[j] - c0[j] + 1)
  end
  return dst
end

-- n windows h x w of base (1, C, H, W) at rows r[j], columns c[j] (0-based), as (n, C, h, w): base
-- pasted into each copy at (-r[j], -c[j]), clipped to the window (one copy of the data).
local function crops(base, r, c, h, w)
  local t = lumen.zeros { #r, base.shape[2], h, w }
  local src = plane(base, 1)
  for j = 1, #r do core.image_paste_(plane(t, j), src, 1 - r[j], 1 - c[j]) end
  return t
end

local ZERO = setmetatable({}, { __index = function() return 0 end })

-- The whole copies (n, ...) of a value: the base with each copy's box pasted in.
local function whole(base, vals, lay, n)
  if lay and lay.full then return vals end
  local s = base.shape
  s[1] = n
  local t = base:expand(s)
  if lay then paste_boxes(t, vals, lay, ZERO, ZERO) end
  return t
end

---------------------------------------------------------------- the incremental forward

local Inc = {}
Inc.__index = Inc

-- How flow node n computes its output from whole inputs, with the folded groups as the model runs them.
local function runner(n, modes)
  local m = n.module
  local g = type(m) == "table" and m._fold
  local mode = g and modes[g]
  if mode and mode ~= "off" then
    local role = g.role[m]
    if role == "conv" then return function(x) return g:run(x, mode) end, g, mode end
    if role == "bn" or mode == "fuse" then return function(x) return x end end
  end
  return function(...) return (m:forward(...)) end
end

-- The layer of a window node run on slabs (no padding).
local function slab_runner(n, g, mode)
  local m = n.module
  if m.type == "Conv2d" then
    if g then return function(x) return g:run(x, mode, 0) end end
    local o = { stride = m.opts.stride, dilation = m.opts.dilation, groups = m.opts.groups, padding = 0 }
    return function(x) return m:activate(lumen.conv2d(x, m.weight, m.bias, o)) end
  end
  local o = { kernel_size = m.opts.kernel_size, stride = m.opts.stride, padding = 0 }
  if m.type == "MaxPool2d" then return function(x) return (lumen.max_pool2d(x, o)) end end
  return function(x) return lumen.avg_pool2d(x, o) end
end

-- new(model, x, opts) -> an incremental forward for copies of x (1, C, H, W), after one base forward.
-- opts.logits as model:forward's. Raises for models it cannot follow (several inputs or outputs).
function M.new(model, x, opts)
  opts = opts or {}
  if not (lumen.is_tensor(x) and x:dim() == 4 and x.shape[1] == 1) then
    error("incremental: expected one image (1, C, H, W)", 2)
  end
  local flow = model:flow()
  if #flow.inputs ~= 1 or #flow.outputs ~= 1 then
    error("incremental: the model must have one input and one output", 2)
  end
  local self = setmetatable({ model = model, flow = flow, nodes = {}, base = {}, shapes = {}, padded = {} }, Inc)
  local out = flow.outputs[1]
  local last = flow.by_name[out]
  if opts.logits == true and last and last.type == "Softmax" then out = last.inputs[1] end
  self.out = out
  self.softmax = opts.logits == false and not model:final_softmax()
  local modes = {}
  local base, shapes = self.base, self.shapes
  base[flow.inputs[1]], shapes[flow.inputs[1]] = x, x.shape
  self.input = flow.inputs[1]
  lumen.no_grad(function()
    for _, n in ipairs(flow.nodes) do
      local m = n.module
      local g = type(m) == "table" and m._fold
      if g and modes[g] == nil then modes[g] = g:mode(nil) end
      local run, group, mode = runner(n, modes)
      local args = {}
      for i, name in ipairs(n.inputs) do args[i] = base[name] end
      local y = run(table.unpack(args, 1, #n.inputs))
      if not lumen.is_tensor(y) then error(("incremental: layer '%s' did not give a tensor"):format(n.name), 0) end
      base[n.name], shapes[n.name] = y, y.shape
      local node = { name = n.name, type = n.type, inputs = n.inputs, run = run, kind = kind_of(n, shapes, y.shape) }
      if node.kind == "window" then
        node.geo = window_of(m, shapes[n.inputs[1]], y.shape)
        node.slab = slab_runner(n, group, mode)
      end
      self.nodes[#self.nodes + 1] = node
      if n.name == out then break end
    end
  end)
  self.output = base[out]
  if self.softmax then self.output = lumen.softmax(self.output, -1) end
  return self
end

-- The base input of a window node, padded for its slabs (kept).
function Inc:padded_input(node)
  local p = self.padded[node.name]
  if p then return p end
  local d = node.geo.dims
  local x = self.base[node.inputs[1]]
  p = x
  if d[1].lo + d[1].hi + d[2].lo + d[2].hi > 0 then
    p = lumen.pad(x, { d[2].lo, d[2].hi, d[1].lo, d[1].hi }, node.geo.padval)
  end
  self.padded[node.name] = p
  return p
end

-- The layouts of every node for a batch of input boxes: name -> layout (nil: the base; {full = true}:
-- whole copies; else boxes). Also the first node reached that runs in full.
function Inc:plan(boxes)
  local n = #boxes
  local xs = self.shapes[self.input]
  local need = {}
  for j, b in ipairs(boxes) do
    local top, left = b[1] - 1, b[2] - 1
    need[j] = { math.max(top, 0), math.min(top + b[3], xs[3]) - 1, math.max(left, 0), math.min(left + b[4], xs[4]) - 1 }
    if need[j][1] > need[j][2] or need[j][3] > need[j][4] then need[j] = false end
  end
  local lays = { [self.input] = layout(need, xs[3], xs[4]) }
  local first_full
  for _, node in ipairs(self.nodes) do
    local ins, full, any = {}, false, false
    for _, name in ipairs(node.inputs) do
      local l = lays[name]
      if l then
        any = true
        if l.full then full = true end
        ins[#ins + 1] = l
      end
    end
    local ys = self.shapes[node.name]
    local lay
    if any then
      if full or node.kind == "full" then
        lay = { full = true }
      elseif node.kind == "point" then
        lay = ins[1]
      elseif node.kind == "window" then
        lay = layout(window_need(node.geo, ins[1]), ys[3], ys[4])
      else
        lay = layout(union_need(ins, n), ys[3], ys[4])
      end
      if lay and lay.full and not first_full then first_full = node end
    end
    lays[node.name] = lay
  end
  return lays, first_full
end

-- The share of the full forwards' convolution multiply-adds that forward(boxes) makes.
function Inc:cost(boxes)
  local lays = self:plan(boxes)
  local part, all = 0, 0
  for _, node in ipairs(self.nodes) do
    if node.kind == "window" and node.geo.macs > 0 then
      local ys = self.shapes[node.name]
      local full = ys[3] * ys[4] * #boxes
      local lay = lays[node.name]
      all = all + full * node.geo.macs
      if lay then part = part + (lay.full and full or lay.h * lay.w * #boxes) * node.geo.macs end
    end
  end
  if all == 0 then return 1 end
  return part / all
end

-- The first layer a batch of boxes reaches that runs in full ({name =, type =}), or nil.
function Inc:fallback_layer(boxes)
  local _, first = self:plan(boxes)
  return first and { name = first.name, type = first.type } or nil
end

-- The input's box values: the base cut to the layout, filled with `values` over each box.
local function input_values(x, lay, boxes, values)
  local t = crops(x, lay.r, lay.c, lay.h, lay.w)
  for j, b in ipairs(boxes) do
    local top, left = b[1] - 1 - lay.r[j], b[2] - 1 - lay.c[j]
    if type(values) == "number" then
      local s = t.shape
      t:fill_box_({ j, 1, top + 1, left + 1 }, { 1, s[2], b[3], b[4] }, values)
    else
      core.image_paste_(plane(t, j), plane(values, j), top + 1, left + 1)
    end
  end
  return t
end

-- forward(boxes, values) -> the model's outputs (n, K) for the n copies of the base input with box j
-- set to values (a number, or copy j of a (n, C, h, w) tensor).
function Inc:forward(boxes, values)
  local n = #boxes
  if n == 0 then error("incremental: no boxes", 2) end
  for j, b in ipairs(boxes) do
    local ok = type(b) == "table" and #b == 4
    for k = 1, 4 do ok = ok and math.type(b[k]) == "integer" and (k < 3 or b[k] >= 1) end
    if not ok then error(("incremental: box %d must be {top, left, height, width} (integers, sizes >= 1)"):format(j), 2) end
  end
  if lumen.is_tensor(values) then
    local s = values.shape
    for j, b in ipairs(boxes) do
      if #s ~= 4 or s[1] ~= n or s[2] ~= self.shapes[self.input][2] or b[3] ~= s[3] or b[4] ~= s[4] then
        error(("incremental: values %s do not fit box %d (%d x %d)"):format(lumen.shape_str(values), j, b[3], b[4]), 2)
      end
    end
  elseif type(values) ~= "number" then
    error("incremental: values must be a number or a tensor", 2)
  end
  local lays = self:plan(boxes)
  local vals = {}
  local base = self.base
  return lumen.no_grad(function()
    local lx = lays[self.input]
    if lx then
      if lx.full then
        local t = whole(base[self.input], nil, nil, n)
        for j, b in ipairs(boxes) do
          if type(values) == "number" then
            local s = t.shape
            t:fill_box_({ j, 1, b[1], b[2] }, { 1, s[2], b[3], b[4] }, values)
          else
            core.image_paste_(plane(t, j), plane(values, j), b[1], b[2])
          end
        end
        vals[self.input] = t
      else
        vals[self.input] = input_values(base[self.input], lx, boxes, values)
      end
    end
    for _, node in ipairs(self.nodes) do
      local lay = lays[node.name]
      if lay then vals[node.name] = self:step(node, lay, lays, vals, n) end
    end
    local out = vals[self.out]
    local lo = lays[self.out]
    out = lo and whole(base[self.out], out, lo, n) or whole(base[self.out], nil, nil, n)
    if self.softmax then out = lumen.softmax(out, -1) end
    return out
  end)
end

-- One node of a batch: its values in layout lay from its inputs' values.
function Inc:step(node, lay, lays, vals, n)
  local base = self.base
  if lay.full then
    local args = {}
    for i, name in ipairs(node.inputs) do args[i] = whole(base[name], vals[name], lays[name], n) end
    return node.run(table.unpack(args, 1, #node.inputs))
  end
  if node.kind == "point" then return node.run(vals[node.inputs[1]]) end
  if node.kind == "window" then
    local name = node.inputs[1]
    local d = node.geo.dims
    local r0, c0 = {}, {}
    for j = 1, n do r0[j], c0[j] = lay.r[j] * d[1].s, lay.c[j] * d[2].s end
    local slab = crops(self:padded_input(node), r0, c0, (lay.h - 1) * d[1].s + (d[1].k - 1) * d[1].d + 1,
      (lay.w - 1) * d[2].s + (d[2].k - 1) * d[2].d + 1)
    local il = lays[name]
    for j = 1, n do r0[j], c0[j] = r0[j] - d[1].lo, c0[j] - d[2].lo end -- slab origins in input coordinates
    paste_boxes(slab, vals[name], il, r0, c0)
    return node.slab(slab)
  end
  local args = {} -- merge: each input cut to the union's boxes
  for i, name in ipairs(node.inputs) do
    local il = lays[name]
    if il and il.h == lay.h and il.w == lay.w and same_shape(il.r, lay.r) and same_shape(il.c, lay.c) then
      args[i] = vals[name]
    else
      args[i] = crops(base[name], lay.r, lay.c, lay.h, lay.w)
      if il then paste_boxes(args[i], vals[name], il, lay.r, lay.c) end
    end
  end
  return node.run(table.unpack(args, 1, #node.inputs))
end

return M
