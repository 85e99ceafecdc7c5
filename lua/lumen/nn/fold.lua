-- lumen.nn.fold: BatchNorm folded into the convolution before it, and Conv+BN+ReLU fused, for models
-- in eval mode. A container's eval() folds (lumen.load_model ends with eval(), so every loaded or
-- imported model is folded), train() unfolds; model:fold() / model:unfold() do it by hand.
--
-- A group is a Conv2d (or Conv1d over (N, C, L)) whose output feeds only a BatchNorm of the same
-- container, plus the ReLU, ReLU6, SiLU or HardSwish that alone reads the BatchNorm, if there is one.
-- Folding changes no layer, name or tensor of the model: the convolution keeps its weights, the BatchNorm
-- its statistics.
-- The group keeps s = gamma / sqrt(var + eps) (per output channel, in double precision) and
-- b' = (b - mean) * s + beta, and in a pass the convolution computes conv(x, w', b') with w' = w * s and
-- the ReLU as its post-op; the BatchNorm and the ReLU then hand their input on. Exact up to rounding: the
-- output, the input gradient and the weights' gradients agree with the unfolded layers within float32
-- error (tests/lua/fold_spec.lua).
-- A Conv whose output only such an activation reads, with no BatchNorm between (an exporter folded it
-- already: torchvision's ONNX files, TFLite's), is a group too: the activation runs as the convolution's
-- post-op ("fuse") or the two run as they are ("off": the pass asks for the convolution's output, or a rule
-- is active for it or the activation). SiLU and HardSwish are fused only in a pass that records nothing
-- (lumen.no_grad: occlusion, LIME, SHAP, plain forwards): their gradient needs the pre-activation, which a
-- fused convolution never makes, so on the tape such a group runs "fold" (or "off" without a BatchNorm).
--
-- A Graph's group whose BatchNorm (no activation) is read only by an add — lumen's own, of two different values,
-- the other one made before the convolution runs (a residual block's shortcut) and claimed by no other group —
-- takes that add, and the ReLU, ReLU6, SiLU or HardSwish that alone reads it, into its convolution in a pass
-- that records, captures, replaces and stops at nothing (Graph's run_frees, whose value slots ctx.values names):
-- conv(x, w', b') + shortcut, then the activation (conv2d's `residual` option), where the shortcut has the
-- output's shape (the kernel says; an add that broadcasts runs as an op). The pass's mode is then "res": the
-- BatchNorm, the add and the activation hand the convolution's output on. Any other pass runs the add and the
-- activation as ops. A convolution read only by such an add, with no BatchNorm between (an exporter folded it),
-- is a group of its own for this: "fuse" in such a pass (planned, with the add where it fits), else "off".
-- Names keep their meaning. Per pass, each group runs
--   "fuse"  conv(x, w', b', relu) — nobody asks for the BatchNorm's output or the convolution's;
--   "fold"  conv(x, w', b') and the ReLU as its own op — the pass captures the BatchNorm's output (or
--           stops there), or a swapped backward rule (lumen.with_rules) is active for relu/relu6: the
--           BatchNorm's name answers with the folded convolution's output, the ReLU obeys the rule;
--   "off"   the three layers as they are — the pass captures, replaces or stops at the convolution,
--           replaces the BatchNorm, captures every layer ("all"), the BatchNorm is in training mode,
--           or a rule is active for the convolution or batch_norm (LRP folds BatchNorm itself).
-- w' is never made: the convolution reads w and multiplies each output channel's weights by s as it
-- reads them (conv2d's `scale` option: oneDNN scales them in the reorder it makes anyway), so a folded
-- model holds its weights once. s and b' are kept and recomputed when a source tensor changes: another
-- tensor set in its place (set_state, assignment), or one written in place, by any writer and through any
-- view (its storage's write generation, lumen.core.storage_gen, which every in-place write renews). On the
-- tape, s and b' are the outputs of batch_norm_fold ops that return the kept values, and conv2d is
-- differentiable in its scale, so gradients reach the convolution's and the BatchNorm's parameters as
-- without folding.
local lumen = require "lumen"

local M = {}

local BN_OF = { Conv2d = "BatchNorm2d", Conv1d = "BatchNorm1d" }
local ACT_OP = { ReLU = "relu", ReLU6 = "relu6", SiLU = "silu", HardSwish = "hardswish" }
-- The activations a fused convolution cannot differentiate through (no mask from its output): fused only in
-- a pass that records nothing (lumen.no_grad); on the tape the group runs "fold" (or "off" without a BN).
local FORWARD_ONLY = { SiLU = true, HardSwish = true }
local CONV_OP = { Conv2d = "conv2d", Conv1d = "conv1d" }

local Group = {}
Group.__index = Group

-- The tensors w', b' are made from, in a fixed order, and their names in their layers.
local SOURCE_NAMES = { "weight", "bias", "weight", "bias", "running_mean", "running_var" }
local function sources(g)
  local c, bn = g.conv, g.bn
  return { c.weight, c.bias or false, bn.weight, bn.bias, bn.running_mean, bn.running_var }
end

-- The write generation of t's storage (this runs for every convolution of every pass).
local version_of = lumen.core.storage_gen

-- Whether kept source i is t (false for no tensor), unchanged since.
local function same_source(kept, i, t)
  return kept.src[i] == t and (not t or kept.version[i] == version_of(t))
end

local last_touch = lumen.core.last_touch

-- Whether the kept w', b' were made from the tensors the layers hold now, unchanged since (sources' order,
-- without making its table: this runs for every convolution of every pass). While no storage has been written
-- in place since the generations were last compared (lumen.core.last_touch unchanged), they are all as they
-- were then, and the same tensors are all there is to check.
local function fresh(g)
  local kept = g.kept
  if not kept or kept.eps ~= g.bn.eps then return false end
  local c, bn = g.conv, g.bn
  local touch = last_touch()
  if kept.touch == touch then
    local src = kept.src
    return src[1] == c.weight and src[2] == (c.bias or false) and src[3] == bn.weight and src[4] == bn.bias
      and src[5] == bn.running_mean and src[6] == bn.running_var
  end
  local same = same_source(kept, 1, c.weight) and same_source(kept, 2, c.bias or false)
    and same_source(kept, 3, bn.weight) and same_source(kept, 4, bn.bias)
    and same_source(kept, 5, bn.running_mean) and same_source(kept, 6, bn.running_var)
  if same then kept.touch = touch end
  return same
end

-- (Re)computes w' and b' from the layers' tensors (a group without BatchNorm keeps nothing).
function Group:refresh()
  if not self.bn then return {} end
  if fresh(self) then return self.kept end
  local c, bn = self.conv, self.bn
  local src = sources(self)
  local version, touch = {}, last_touch()
  for i, t in ipairs(src) do
    if t and not lumen.is_tensor(t) then
      local layer = i <= 2 and c or bn
      error(("%s's %s must be a lumen.Tensor, got %s"):format(layer.name or layer.type, SOURCE_NAMES[i], type(t)), 0)
    end
    if t then version[i] = version_of(t) end
  end
  local fold = lumen.batch_norm_fold
  local eps = { eps = bn.eps }
  local zero = lumen.zeros(bn.running_mean.shape)
  local one = lumen.ones(bn.running_mean.shape)
  self.kept = lumen.no_grad(function()
    return { src = src, version = version, touch = touch, eps = bn.eps, zero = zero, one = one,
             s = fold(one, nil, bn.running_var, bn.weight, nil, eps),
             b = fold(c.bias or zero, bn.running_mean, bn.running_var, bn.weight, bn.bias, eps) }
  end)
  return self.kept
end

-- s, b' for a pass: the kept tensors, or on the tape the batch_norm_fold nodes that return them.
function Group:weights()
  if not self.bn then return nil, self.conv.bias end -- Conv + ReLU: the convolution's own weights
  local k = self:refresh()
  local c, bn = self.conv, self.bn
  if not lumen.autograd.is_enabled() then return k.s, k.b end
  local fold = lumen.batch_norm_fold
  return fold(k.one, nil, bn.running_var, bn.weight, nil, { eps = bn.eps, cached = k.s }),
    fold(c.bias or k.zero, bn.running_mean, bn.running_var, bn.weight, bn.bias, { eps = bn.eps, cached = k.b })
end

-- The convolution's options with the weights' scale s and the activation as a post-op when fused (padding
-- may be overridden, for the incremental forward's slabs), and without such a padding the convolution
-- layer's weight cache under lumen.no_grad (Module:conv_cache).
-- Without a padding the table is kept for the next pass and handed out again while it says the same: the
-- convolution's options unchanged, the same mode, scale and cache (self.kept_opts; nothing writes into it).
function Group:options(mode, scale, padding)
  local src, act = self.conv.opts, mode == "fuse" and self.act and ACT_OP[self.act.type] or nil
  local cache = padding == nil and self.conv:conv_cache() or nil
  local o = padding == nil and self.kept_opts
  if o and o.scale == scale and o.activation == act and o.cache == cache then
    local n = 0
    for k, v in pairs(src) do
      if o[k] ~= v then n = -1; break end
      n = n + 1
    end
    if n == self.kept_opts_n then return o end
  end
  o = {}
  local n = 0
  for k, v in pairs(src) do o[k] = v; n = n + 1 end
  if padding ~= nil then o.padding = padding end
  o.activation = act
  o.scale = scale
  o.cache = cache
  if padding == nil then self.kept_opts, self.kept_opts_n = o, n end
  return o
end

-- Whether plan p still holds for options table o and weight w: made for the same table and weight, and each of
-- o's table entries (stride, dilation, padding) holds the values it held then.
local function plan_holds(p, o, w)
  if p.o ~= o or p.w ~= w then return false end
  local tables, values = p.tables, p.values
  for i = 1, #tables do
    local t, v = tables[i], values[i]
    if #t ~= #v then return false end
    for k = 1, #v do
      if t[k] ~= v[k] then return false end
    end
  end
  return true
end

-- The planned call for options o (lumen.ops_nn's conv_op plan: its checks made once), or nil when o cannot be
-- planned; o's table entries noted with their values.
local function make_plan(op, x, w, o)
  local ko = lumen.autograd.conv_plans[op].plan(x, w, o)
  if not ko then return nil end
  local p = { o = o, w = w, ko = ko, kernel = lumen.autograd.conv_plans[op].kernel, tables = {}, values = {} }
  for _, v in pairs(o) do
    if type(v) == "table" then
      local copy = {}
      for k = 1, #v do copy[k] = v[k] end
      p.tables[#p.tables + 1], p.values[#p.values + 1] = v, copy
    end
  end
  return p
end

local is_enabled, is_tensor, count = lumen.autograd.is_enabled, lumen.core.is_tensor, lumen.autograd.count
local any_rule = lumen.autograd.any_rule

-- The group's output for input x in a pass of the given mode ("fold" or "fuse"). Under lumen.no_grad (and
-- without a padding of the incremental forward's) the convolution's checks are made once for the options
-- table and weight it runs with (a plan, kept while they hold) and the kernel is called directly, counted as
-- the op: a pass over a network's layers repeats the same calls (MobileNet v3's 62 convolutions). Not while
-- lumen.conv2d (conv1d) is a function set in lumen's place: that one is called, as on every other path.
-- sc (a residual group's shortcut, M.call): on the planned call, added to the output with the group's activation
-- after the sum (conv2d's option `residual`) where it has the output's shape; the second result is then whether
-- it was added (nil where the call was not planned: not added).
function Group:run(x, mode, padding, sc)
  local s, b = self:weights()
  local o, op, w = self:options(mode, s, padding), CONV_OP[self.conv.type], self.conv.weight
  if padding == nil and not is_enabled() and lumen[op] == lumen.autograd.conv_plans[op].call and is_tensor(x) then
    local p = self.plan
    if not (p and plan_holds(p, o, w)) then
      p = make_plan(op, x, w, o)
      self.plan = p
    end
    if p then
      count(op)
      local ko = p.ko -- (its residual entries set at every call: none left by a call that raised reaches the next)
      ko.residual, ko.residual_activation = sc, sc and self.ract and ACT_OP[self.ract.type] or nil
      if not sc then return p.kernel(x, w, b, ko) end
      local y, added = p.kernel(x, w, b, ko)
      ko.residual, ko.residual_activation = nil, nil -- (the shortcut not held past its call)
      return y, added
    end
  end
  return lumen[op](x, w, b, o)
end

-- Whether the group's layers still sit together in their container.
function Group:intact()
  return self.check(self)
end

local NONE = {} -- (no layer replaced)

local function wants(ctx, name)
  if not ctx then return false end
  if ctx.want == true then return true end
  if ctx.want and ctx.want[name] then return true end
  return ctx.stop ~= nil and ctx.stop.name == name
end

-- How the group runs in a pass (ctx: the container pass state, or nil for a pass that asks nothing). With no
-- rule swapped in and a pass that wants, replaces and stops at nothing (`asks` false: every forward of occlusion,
-- LIME, SHAP), the questions about rules, names and replacements are not asked (they would all answer no): the
-- group's layers decide.
function Group:mode(ctx)
  if not self:intact() then return "off" end
  local c, bn, act = self.conv, self.bn, self.act
  local asks = any_rule() or (ctx and (ctx.want or ctx.replace or ctx.stop))
  local rule, rep = lumen.autograd.active_rule, ctx and ctx.replace or NONE
  if asks and (rule(CONV_OP[c.type]) or wants(ctx, c.name) or rep[c.name] ~= nil) then return "off" end
  local taped = act and FORWARD_ONLY[act.type] and is_enabled()
  -- Conv + residual add alone: the convolution planned, with the add, in a pass that gives its values (M.call)
  if not bn and not act then return ctx and ctx.values and "fuse" or "off" end
  -- Conv + act: fused, or as they are
  if not bn then return (taped or asks and rule(ACT_OP[act.type])) and "off" or "fuse" end
  if bn.training or asks and (rule("batch_norm") or rep[bn.name] ~= nil) then return "off" end
  if not act or taped or asks and (wants(ctx, bn.name) or rule(ACT_OP[act.type])) then return "fold" end
  return "fuse"
end

---------------------------------------------------------------- finding groups

-- Whether m (a module or nil) is a convolution a group can run: a Conv2d / Conv1d layer with weights,
-- no activation of its own, channels first.
local function group_conv(m)
  return m ~= nil and not m.is_container and CONV_OP[m.type] ~= nil and not m.activation and not m.channels_last
    and lumen.is_tensor(m.weight)
end

-- Whether m (a module or nil) is a ReLU / ReLU6 / SiLU / HardSwish layer, which a convolution can carry as
-- its post-op.
local function fusable_act(m) return m ~= nil and not m.is_container and ACT_OP[m.type] ~= nil end

local function convertible(conv, bn)
  if not group_conv(conv) or bn == nil or bn.is_container or BN_OF[conv.type] ~= bn.type then return false end
  local mean = bn.running_mean
  return lumen.is_tensor(mean) and lumen.is_tensor(bn.weight) and lumen.is_tensor(bn.bias)
    and lumen.is_tensor(bn.running_var) and conv.weight.shape[1] == mean:numel()
end

-- A group of conv [, bn] [, act]; check(g) tells whether its layers still sit together.
local function new_group(owner, conv, bn, act, check)
  local g = setmetatable({ owner = owner, conv = conv, bn = bn, act = act, check = check }, Group)
  g.role = { [conv] = "conv" }
  if bn then g.role[bn] = "bn" end
  if act then g.role[act] = "act" end
  return g
end

-- The groups among a Sequential's modules: consecutive Conv, BatchNorm [, ReLU].
local function sequential_groups(seq)
  local ms, res = seq.modules, {}
  local i = 1
  while i < #ms do
    local c, bn, act = ms[i], ms[i + 1], ms[i + 2]
    if convertible(c, bn) then
      if not fusable_act(act) then act = nil end
    elseif group_conv(c) and fusable_act(bn) then -- Conv + ReLU
      bn, act = nil, bn
    else
      c = nil
    end
    if c then
      local k, chain = i, bn and { c, bn, act } or { c, act } -- the group's layers in order
      res[#res + 1] = new_group(seq, c, bn, act, function()
        for j, m in ipairs(chain) do
          if seq.modules[k + j - 1] ~= m then return false end
        end
        return true
      end)
      i = i + #chain
    else
      i = i + 1
    end
  end
  return res
end

-- The groups among a Graph's nodes: a Conv node read only by a BatchNorm node (and not an output),
-- the BatchNorm read only by a ReLU node, if any.
local function graph_groups(graph)
  local readers, is_out = {}, {}
  for _, o in ipairs(graph.outputs) do is_out[o] = true end
  for _, rec in ipairs(graph.nodes) do
    for _, inp in ipairs(rec.inputs) do
      readers[inp] = readers[inp] or {}
      table.insert(readers[inp], rec)
    end
  end
  local function only_reader(name)
    local r = readers[name]
    if is_out[name] or not r or #r ~= 1 or #r[1].inputs ~= 1 then return nil end
    return r[1].module
  end
  local index, add = {}, lumen.autograd.builtin.add
  for i, rec in ipairs(graph.nodes) do index[rec.name] = i end
  -- A folded convolution's residual add (see the top): the add that alone reads `name` (the group's BatchNorm, or
  -- node i itself), lumen's own add of two different values, the other one made before node i (or a graph input),
  -- in no other group; returns the add's record, name's position among its inputs and the other's slot.
  local function residual(name, i)
    local r = readers[name]
    r = not is_out[name] and r and #r == 1 and r[1]
    if not (r and r.op == "add" and r.call == add and #r.args == 0 and #r.inputs == 2 and r.inputs[1] ~= r.inputs[2]
        and not r._fold) then
      return nil
    end
    local pos = r.inputs[1] == name and 1 or 2
    local other = r.inputs[3 - pos]
    if (index[other] or 0) >= i then return nil end
    return r, pos, r.slots[3 - pos]
  end
  -- Gives group g the residual add of `name` (residual), if there is one, and the activation that alone reads it;
  -- whether it did.
  local function take_residual(g, name, i)
    local r, pos, slot = residual(name, i)
    if not r then return false end
    g.add, g.add_pos, g.sc_slot, g.role[r] = r, pos, slot, "add"
    local ract = only_reader(r.name)
    if fusable_act(ract) then g.ract, g.role[ract] = ract, "ract" end
    r._fold = g -- (claimed here: the other group that reads it, if any, sees it taken)
    return true
  end
  local res = {}
  for i, rec in ipairs(graph.nodes) do
    local c = rec.module
    local reader = group_conv(c) and only_reader(rec.name) or nil
    if convertible(c, reader) then
      local act = only_reader(reader.name)
      if not fusable_act(act) then act = nil end
      local g = new_group(graph, c, reader, act, function() return true end) -- a Graph's nodes are fixed
      if not act then take_residual(g, reader.name, i) end
      res[#res + 1] = g
    elseif fusable_act(reader) then -- Conv + ReLU (an exporter folded the BatchNorm already)
      res[#res + 1] = new_group(graph, c, nil, reader, function() return true end)
    elseif group_conv(c) then -- Conv + residual add (likewise): a group only with the add
      local g = new_group(graph, c, nil, nil, function() return true end)
      if take_residual(g, rec.name, i) then res[#res + 1] = g end
    end
  end
  return res
end

-- Folds the groups among container's own children (nested containers fold their own): marks their
-- layers and computes w', b'. Returns the groups.
function M.fold(container)
  M.unfold(container)
  local groups = container.type == "Sequential" and container.modules and sequential_groups(container)
    or container.nodes and graph_groups(container) or {}
  for _, g in ipairs(groups) do
    for m in pairs(g.role) do m._fold = g end
    g:refresh()
  end
  container._folds = groups
  return groups
end

-- Undoes M.fold for container's own children.
function M.unfold(container)
  for _, g in ipairs(container._folds or {}) do
    for m in pairs(g.role) do
      if m._fold == g then m._fold = nil end
    end
  end
  container._folds = nil
end

-- Folds (on = true) or unfolds container and the containers nested in it; returns the folded groups
-- as {conv =, bn =, act = names}.
function M.tree(container, on)
  local res = {}
  for _, m in ipairs(container:children()) do
    if m.is_container then
      for _, r in ipairs(M.tree(m, on)) do res[#res + 1] = r end
    end
  end
  if not on then
    M.unfold(container)
    return res
  end
  for _, g in ipairs(M.fold(container)) do
    res[#res + 1] = { conv = g.conv.name, bn = g.bn and g.bn.name or nil, act = g.act and g.act.name or nil }
  end
  return res
end

-- The group m belongs to in container (folded there and still in place), or nil.
function M.group_of(container, m)
  local g = m._fold
  if g and g.owner == container then return g end
  return nil
end

-- Container:call_child's hook for a layer of a folded group: runs it as the pass's mode says.
-- pass: the table the pass keeps its groups' modes in.
function M.call(g, m, ctx, x, ...)
  local role, pass = g.role[m], ctx.fold
  if role == "conv" then
    local mode = g:mode(ctx)
    if pass then pass[g] = mode end
    if mode == "off" then return m:forward(x, ...) end
    local values = g.add and pass and ctx.values
    if values then
      local y, added = g:run(x, mode, nil, values[g.sc_slot])
      if added then pass[g] = "res" end
      return y
    end
    return g:run(x, mode)
  end
  local mode = pass and pass[g]
  if mode == "res" then
    if role == "add" then return (select(g.add_pos, x, ...)) end
    return x
  end
  if role == "add" or role == "ract" then return m:forward(x, ...) end -- (the add not taken: it runs)
  if mode == "fuse" or (mode == "fold" and role == "bn") then return x end
  return m:forward(x, ...)
end

return M
