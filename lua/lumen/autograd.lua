-- lumen.autograd: the define-by-run tape.
--
-- Every differentiable op is defined once with `def(name, {forward =, backward =})`, forward and
-- backward side by side. Calling the op runs `forward(ctx, ...)` on raw kernels; when grad mode is on
-- and a tensor argument requires grad, a node {op, ctx, inputs} is attached to the output. The tape is
-- the graph of these nodes: it lives exactly as long as the tensors that reach it.
--
-- `grad(outputs, inputs [, grad_outputs] [, {allow_unused =}])` walks the nodes between outputs and
-- inputs in reverse topological order and returns d(sum outputs*grad_outputs)/d(inputs) for any
-- tensors, leaves or intermediate. An input the tape does not lead to from the outputs (never marked
-- with `x.requires_grad = true`, or not used) is an error naming it unless allow_unused = true. `with_rules({relu = fn}, body)` swaps backward rules per op kind for the duration of
-- body: fn(ctx, grad_output) gets the same ctx as the default backward, plus ctx.inputs (the tensor
-- arguments, by position), ctx.args (all arguments), ctx.output and ctx.default (the built-in rule).
-- ctx.needs[i] tells a backward whether argument i needs a gradient at all in this sweep.
-- Backward passes run with grad mode off (no higher-order gradients).
--
-- `op_of(t)` names the op that recorded t (nil for leaves and untracked tensors). Every op counts its
-- calls: `counts()` -> {op = forward calls}, `counts("backward")` -> {op = calls of its own backward
-- rule (also when a swapped rule calls ctx.default)}, `reset_counts()` zeroes both; cheap enough to
-- stay on (one table increment per call), so a test can say "one forward: 5 conv2d calls".
local core = require "lumen.core"

local M = {}
local enabled = true
local rules_stack = {}
M.ops = {} -- name -> spec, the op table
local calls, back_calls = {}, {} -- name -> forward / backward calls since the last reset_counts()

local fields = core.fields

function M.is_enabled() return enabled end

function M.no_grad(fn, ...)
  local prev = enabled
  enabled = false
  local res = table.pack(pcall(fn, ...))
  enabled = prev
  if not res[1] then error(res[2], 0) end
  return table.unpack(res, 2, res.n)
end

function M.set_enabled(on) local prev = enabled; enabled = on and true or false; return prev end

function M.requires_grad(t)
  local f = fields(t)
  return f ~= nil and (f.requires_grad or f.node ~= nil) or false
end

local function needs_record(args, n)
  if not enabled then return false end
  for i = 1, n do
    local a = args[i]
    if core.is_tensor(a) and M.requires_grad(a) then return true end
  end
  return false
end

-- Defines a differentiable op. spec.forward(ctx, ...) -> output(s); spec.backward(ctx, grad_output)
-- -> one gradient per positional argument (nil where the argument is not a tensor or gets none).
-- Only the first output is differentiable; further outputs (indices, switches) are not.
function M.def(name, spec)
  assert(spec.forward and spec.backward, "op " .. name .. " needs forward and backward")
  spec.name = name
  M.ops[name] = spec
  calls[name], back_calls[name] = 0, 0
  local forward, own_backward = spec.forward, spec.backward
  local function backward(ctx, g)
    back_calls[name] = back_calls[name] + 1
    return own_backward(ctx, g)
  end
  return function(...)
    calls[name] = calls[name] + 1
    if not enabled then return forward({}, ...) end -- nothing is recorded: no argument or output lists
    local n = select("#", ...)
    local args = table.pack(...)
    local ctx = {}
    local outs = table.pack(forward(ctx, ...))
    if needs_record(args, n) then
      local out = outs[1]
      for i = 1, n do -- an op that returns its input unchanged still gets a node of its own
        if rawequal(out, args[i]) then
          out = core.view(out, core.shape(out))
          outs[1] = out
          break
        end
      end
      local inputs = {}
      for i = 1, n do
        local a = args[i]
        if core.is_tensor(a) and M.requires_grad(a) then inputs[i] = a end
      end
      ctx.args, ctx.inputs, ctx.nargs = args, inputs, n
      local f = fields(out, true)
      f.node = { op = name, ctx = ctx, backward = backward, nargs = n }
      ctx.output_shape = core.shape(out)
    end
    return table.unpack(outs, 1, outs.n)
  end
end

-- The name of the op that recorded t ("conv2d", ...), or nil for a leaf, a detached or untracked tensor.
function M.op_of(t)
  local f = core.is_tensor(t) and fields(t)
  return f and f.node and f.node.op or nil
end

-- Counts one forward call of op `name` made without its wrapper (a planned call: lumen.nn.fold's convolutions
-- under no_grad), so that counts() still tells every call.
function M.count(name) calls[name] = calls[name] + 1 end

-- Op call counts since the last reset: kind "forward" (default) or "backward"; a fresh table
-- {op name = calls} holding every op of the table (0 for those not called).
function M.counts(kind)
  local src = (kind == nil or kind == "forward") and calls or kind == "backward" and back_calls
  if not src then error(("counts: kind must be 'forward' or 'backward', got %s"):format(tostring(kind)), 2) end
  local res = {}
  for k, v in pairs(src) do res[k] = v end
  return res
end

function M.reset_counts()
  for k in pairs(calls) do calls[k], back_calls[k] = 0, 0 end
end

-- Marks a tensor as a leaf that requires grad (returns it).
function M.set_requires_grad(t, on)
  local f = fields(t, true)
  f.requires_grad = on ~= false
  return t
end

local function active_rule(op)
  for i = #rules_stack, 1, -1 do
    local r = rules_stack[i][op]
    if r ~= nil then return r end
  end
  return nil
end
-- The backward rule with_rules has swapped in for `op` right now, or nil (lumen.nn.fold keeps a layer
-- as its own op while one is active, so the rule applies to it).
M.active_rule = active_rule
-- Whether with_rules has swapped in any rule right now (while not, active_rule answers nil for every op).
function M.any_rule() return #rules_stack > 0 end

function M.with_rules(rules, body, ...)
  assert(type(rules) == "table", "with_rules: expected a table of rules by op name")
  for k, v in pairs(rules) do
    if not M.ops[k] then error(("with_rules: unknown op '%s'"):format(tostring(k)), 2) end
    if type(v) ~= "function" then error(("with_rules: rule for '%s' is not a function"):format(k), 2) end
  end
  rules_stack[#rules_stack + 1] = rules
  local res = table.pack(pcall(body, ...))
  table.remove(rules_stack)
  if not res[1] then error(res[2], 0) end
  return table.unpack(res, 2, res.n)
end

-- Collects the nodes on paths from `outputs` down to any of `targets` (a set of tensors; nil means
-- every leaf), in an order where every node comes after all nodes that consume its output. A node
-- runs only if something it consumes leads to a target, so asking for the gradient of an
-- intermediate tensor does not backpropagate below it.
local function plan(outputs, targets)
  local reaches, order = {}, {}
  local function visit(t)
    local v = reaches[t]
    if v ~= nil then return v end
    reaches[t] = false
    local f = fields(t)
    local node = f and f.node
    local below = false
    if node then
      for _, inp in pairs(node.ctx.inputs) do
        if visit(inp) then below = true end
      end
    end
    if below then order[#order + 1] = t end
    v = below or targets == nil or targets[t] == true
    reaches[t] = v
    return v
  end
  for _, o in ipairs(outputs) do visit(o) end
  return order, reaches
end

local function as_list(x)
  if x == nil then return {} end
  if core.is_tensor(x) then return { x }, true end
  return x, false
end

-- The gradients of one sweep, tensor -> gradient, and which of them the sweep may free: a gradient it
-- made (a built-in op's backward, a sum of two) is freed as soon as no entry holds it any more, so its
-- block is reused at once by the next gradient of its size instead of waiting for the collector. Never
-- freed: the caller's grad_outputs, what a swapped rule or a custom op (lumen.Function) saw or returned
-- (they may keep it), a tensor the node holds in its arguments, and the results asked for.
local Grads = {}
Grads.__index = Grads

local function new_grads(free_ok)
  return setmetatable({ g = {}, holders = {}, foreign = {}, free_ok = free_ok }, Grads)
end

function Grads:release(g)
  if self.holders[g] == nil and not self.foreign[g] and self.free_ok then core.free(g) end
end

function Grads:put(t, g)
  self.g[t] = g
  self.holders[g] = (self.holders[g] or 0) + 1
end

-- Removes t's entry; returns the gradient, which no entry may hold any more (then the caller may release it).
function Grads:take(t)
  local g = self.g[t]
  if g == nil then return nil end
  self.g[t] = nil
  local n = self.holders[g] - 1
  self.holders[g] = n > 0 and n or nil
  return g
end

-- Adds g into t's gradient. Returns the tensors that may have become garbage (to release once the node's
-- other gradients are in: one tensor may be the gradient of two arguments).
function Grads:accumulate(t, g)
  local prev = self.g[t]
  if prev == nil then
    self:put(t, g)
    return nil
  end
  self:take(t)
  self:put(t, M.lumen.add(prev, g))
  return prev, g
end

-- The backward sweep. Returns the table tensor -> accumulated gradient.
local function sweep(outputs, grad_outputs, targets)
  local lumen = M.lumen
  local order, reaches = plan(outputs, targets)
  local grads = new_grads(#rules_stack == 0)
  local spare = {}
  local function settle() -- releases what accumulate left, once no entry holds it
    for i = #spare, 1, -1 do
      grads:release(spare[i])
      spare[i] = nil
    end
  end
  for i, o in ipairs(outputs) do
    local g = grad_outputs and grad_outputs[i]
    if g == nil then g = lumen.ones_like(o) else grads.foreign[g] = true end
    if not lumen.same_shape(g, o) then
      error(("grad: grad_outputs[%d] has shape %s, output has %s"):format(i, lumen.shape_str(g), lumen.shape_str(o)), 3)
    end
    local a, b = grads:accumulate(o, g)
    spare[#spare + 1], spare[#spare + 2] = a, b
  end
  settle()
  local prev = enabled
  enabled = false
  local ok, err = pcall(function()
    for k = #order, 1, -1 do
      local t = order[k]
      local node = fields(t).node
      local g = grads.g[t]
      if g ~= nil and node then
        local ctx = node.ctx
        -- ctx.needs[i]: whether argument i needs a gradient in this sweep, so a backward can skip
        -- work nobody asked for (e.g. weight gradients when explaining an input).
        local needs = {}
        for i, inp in pairs(ctx.inputs) do needs[i] = reaches[inp] == true end
        ctx.needs = needs
        local rule = active_rule(node.op)
        local custom = rule or M.ops[node.op].custom
        local res
        if rule then
          ctx.output, ctx.default, ctx.op = t, node.backward, node.op
          res = table.pack(rule(ctx, g))
          ctx.output, ctx.default = nil, nil
        else
          res = table.pack(node.backward(ctx, g))
        end
        if custom then grads.foreign[g] = true end
        for i = 1, ctx.nargs do -- a tensor the node holds is never freed, whatever its backward returns
          local a = ctx.args[i]
          if core.is_tensor(a) then grads.foreign[a] = true end
        end
        for i, inp in pairs(ctx.inputs) do
          local gi = res[i]
          if gi ~= nil then
            if not lumen.same_shape(gi, inp) then
              error(("backward of '%s' gave a gradient of shape %s for argument %d of shape %s"):format(
                node.op, lumen.shape_str(gi), i, lumen.shape_str(inp)))
            end
            if custom then grads.foreign[gi] = true end
            local a, b = grads:accumulate(inp, gi)
            spare[#spare + 1], spare[#spare + 2] = a, b
          end
        end
        -- t's gradient is spent (the order visits every consumer of t before t): it goes, so that the
        -- sweep holds the gradients of one frontier of the graph, not of every tensor on it.
        if not (targets and targets[t]) then spare[#spare + 1] = grads:take(t) end
        settle()
      end
    end
  end)
  enabled = prev
  if not ok then error(err, 0) end
  return grads.g, reaches
end

-- Options of grad() and backward(): a table with string keys (grad_outputs lists have integer keys).
local grad_options = { allow_unused = true, grad_outputs = true }
local function is_options(t)
  if type(t) ~= "table" or core.is_tensor(t) then return false end
  for k in pairs(t) do
    if type(k) == "string" then return true end
  end
  return false
end
local function check_options(opts, fn)
  for k in pairs(opts) do
    if not grad_options[k] then
      error(("%s: unknown option '%s' (known: allow_unused, grad_outputs)"):format(fn, tostring(k)), 3)
    end
  end
  return opts
end

-- Why input i of grad() is not on the tape that leads to the outputs: one line naming it.
local function unused_message(i, t, outs)
  local head = ("lumen.grad: input %d is not on the tape"):format(i)
  if not M.requires_grad(t) then
    return head .. ": mark it with x.requires_grad = true before computing the output from it"
      .. " (or pass {allow_unused = true} to get zeros)"
  end
  for k, o in ipairs(outs) do
    if not M.requires_grad(o) then
      return ("%s: output %d was computed off the tape (under lumen.no_grad, or from tensors that do not"
        .. " require grad)"):format(head, k)
    end
  end
  return head .. ": the output does not depend on it (or it was marked after the output was computed);"
    .. " pass {allow_unused = true} to get zeros"
end

-- grad(outputs, inputs [, grad_outputs] [, opts]) -> gradient(s) shaped like inputs. An input the
-- outputs do not reach through the tape is an error naming it, unless opts.allow_unused = true (then
-- its gradient is zeros). An input that is reached but gets no gradient (say, through a comparison)
-- gets zeros. opts may also carry grad_outputs: lumen.grad(y, x, {grad_outputs = g, allow_unused = true}).
function M.grad(outputs, inputs, grad_outputs, opts)
  if opts == nil and is_options(grad_outputs) then grad_outputs, opts = nil, grad_outputs end
  opts = check_options(opts or {}, "lumen.grad")
  if grad_outputs == nil then grad_outputs = opts.grad_outputs end
  local outs = as_list(outputs)
  local ins, single = as_list(inputs)
  local gos = grad_outputs and as_list(grad_outputs) or nil
  local targets = {}
  for _, t in ipairs(ins) do targets[t] = true end
  local grads, reaches = sweep(outs, gos, targets)
  local res = {}
  for i, t in ipairs(ins) do
    if not reaches[t] and not opts.allow_unused then error(unused_message(i, t, outs), 2) end
    res[i] = grads[t] or M.lumen.zeros_like(t)
  end
  if single then return res[1] end
  return res
end

-- t:backward([g] [, opts]): accumulates into .grad of every leaf that requires grad. A t that is not
-- on the tape (nothing it was computed from requires grad) is an error, since no .grad would be set,
-- unless opts.allow_unused = true.
function M.backward(t, g, opts)
  if opts == nil and is_options(g) then g, opts = nil, g end
  opts = check_options(opts or {}, "backward")
  if g == nil then g = opts.grad_outputs end
  if not M.requires_grad(t) then
    if opts.allow_unused then return end
    error("backward: the tensor is not on the tape (computed under lumen.no_grad, or from tensors that do not"
      .. " require grad), so no .grad would be set: mark the inputs with x.requires_grad = true first", 2)
  end
  local grads = sweep({ t }, g and { g } or nil, nil)
  for x, gx in pairs(grads) do
    local f = fields(x)
    if f and f.requires_grad and not f.node then
      f.grad = f.grad and M.lumen.add(f.grad, gx) or gx
    end
  end
end

-- Detaches a tensor from the tape: a new tensor sharing storage, with no node.
function M.detach(t)
  return core.view(t, core.shape(t))
end

-- Custom ops written in Lua: lumen.Function{forward = fn(ctx, ...), backward = fn(ctx, g), name = "myop"}.
-- forward runs with grad mode off; save what backward needs in ctx.
local nfun = 0
function M.Function(spec)
  nfun = nfun + 1
  local name = spec.name or ("function_" .. nfun)
  local fwd = spec.forward
  local op = M.def(name, {
    forward = function(ctx, ...)
      local prev = enabled
      enabled = false
      local res = table.pack(pcall(fwd, ctx, ...))
      enabled = prev
      if not res[1] then error(res[2], 0) end
      return table.unpack(res, 2, res.n)
    end,
    backward = spec.backward,
  })
  M.ops[name].custom = true -- written by a user, not part of lumen's op table
  return op
end

return M
