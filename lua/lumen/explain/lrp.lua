-- Layer-wise relevance propagation (Bach et al. 2015, "On Pixel-Wise Explanations for Non-Linear
-- Classifier Decisions"; rules as in Montavon et al. 2019, "Layer-Wise Relevance Propagation: An
-- Overview"). Relevance starts as the target score f_c at the output and is redistributed layer by
-- layer back to the input by swapping the backward rules of the ops (lumen.with_rules); the model is
-- not copied. For a layer z = W x + b (linear, conv2d) and relevance R at its output, with
-- s = R / z' and c = W'^T s:
--   zero      R_x = x * W^T (R / z)
--   epsilon   R_x = x * W^T (R / (z + eps sign(z)))                       eps = 1e-6
--   gamma     W' = W + gamma W+, b' = b + gamma b+                       gamma = 0.25
--   alphabeta alpha * (positive contributions) - beta * (negative ones)  alpha = 1, beta = 0
--   zplus     W' = W+, no bias (inputs >= 0)
--   zbox      R_x = x c - l c+ - h c-  with z = W x - W+ l - W- h        (pixel layer; l, h = bounds)
-- ReLU passes relevance unchanged; max pooling routes it to the winner; average pools and residual
-- additions share it in proportion to the contributions; BatchNorm after a convolution is folded in
-- (its relevance is rescaled so the convolution's rule acts on the folded layer; exact for zero and
-- epsilon).
-- opts: target = top class; rule = "epsilon" (applies to every linear and conv layer) or a table of
--       rules by layer type ("Conv2d", "Linear") or layer name (names win), e.g.
--       {Conv2d = "gamma", Linear = "epsilon", conv1 = "zbox"}; epsilon, gamma, alpha, beta; low, high
--       (zbox bounds: numbers, default the input's min and max).
-- Returns the relevance shaped like x, the target, and the target score (the total relevance).
local lumen = require "lumen"
local common = require "lumen.explain.common"

local M = {}
local TINY = 1e-12

-- z + eps * sign(z), with sign(0) = 1 so nothing divides by zero.
local function stabilize(z, eps)
  return z + (z:ge(0) * 2 - 1) * eps
end

-- Runs op `name` forward on args and returns the output and the gradient w.r.t. args[1] for `s`.
local function vjp(name, args, s)
  local spec = lumen.autograd.ops[name]
  local ctx = {}
  local out = spec.forward(ctx, table.unpack(args, 1, args.n))
  ctx.args, ctx.inputs, ctx.nargs, ctx.needs = args, { args[1] }, args.n, { true }
  ctx.output_shape = out.shape
  local g = spec.backward(ctx, s)
  return out, g
end

local function with_args(ctx, x, w, b)
  local a = table.pack(table.unpack(ctx.args, 1, ctx.nargs))
  a[1], a[2], a[3] = x, w, b
  a.n = ctx.nargs
  return a
end

-- The rules for linear/conv layers: fn(ctx, R, p) -> R_x.
local layer_rules = {
  zero = function(ctx, R, p)
    local x = ctx.args[1]
    local _, c = vjp(ctx.op, with_args(ctx, x, ctx.args[2], ctx.args[3]), R / stabilize(ctx.output, TINY))
    return x * c
  end,
  epsilon = function(ctx, R, p)
    local x = ctx.args[1]
    local _, c = vjp(ctx.op, with_args(ctx, x, ctx.args[2], ctx.args[3]), R / stabilize(ctx.output, p.epsilon or 1e-6))
    return x * c
  end,
  gamma = function(ctx, R, p)
    local x, w, b = ctx.args[1], ctx.args[2], ctx.args[3]
    local g = p.gamma or 0.25
    local a = with_args(ctx, x, w + w:relu() * g, b and b + b:relu() * g or nil)
    local z = vjp(ctx.op, a, lumen.zeros_like(ctx.output))
    local _, c = vjp(ctx.op, a, R / stabilize(z, TINY))
    return x * c
  end,
  alphabeta = function(ctx, R, p)
    local x, w = ctx.args[1], ctx.args[2]
    local alpha, beta = p.alpha or 1, p.beta or 0
    local xp, xn = x:relu(), x:clamp(nil, 0)
    local wp, wn = w:relu(), w:clamp(nil, 0)
    local function part(xa, wa, xb, wb)
      local za = vjp(ctx.op, with_args(ctx, xa, wa, nil), lumen.zeros_like(ctx.output))
      local zb = vjp(ctx.op, with_args(ctx, xb, wb, nil), lumen.zeros_like(ctx.output))
      local s = R / stabilize(za + zb, TINY)
      local _, ca = vjp(ctx.op, with_args(ctx, xa, wa, nil), s)
      local _, cb = vjp(ctx.op, with_args(ctx, xb, wb, nil), s)
      return xa * ca + xb * cb
    end
    local pos = part(xp, wp, xn, wn)
    if beta == 0 then return pos * alpha end
    return pos * alpha - part(xp, wn, xn, wp) * beta
  end,
  zplus = function(ctx, R, p)
    local x, w = ctx.args[1], ctx.args[2]
    local a = with_args(ctx, x, w:relu(), nil)
    local z = vjp(ctx.op, a, lumen.zeros_like(ctx.output))
    local _, c = vjp(ctx.op, a, R / stabilize(z, TINY))
    return x * c
  end,
  zbox = function(ctx, R, p)
    local x, w, b = ctx.args[1], ctx.args[2], ctx.args[3]
    local l, h = lumen.full_like(x, p.low), lumen.full_like(x, p.high)
    local wp, wn = w:relu(), w:clamp(nil, 0)
    local z = ctx.output - vjp(ctx.op, with_args(ctx, l, wp, nil), lumen.zeros_like(ctx.output))
                         - vjp(ctx.op, with_args(ctx, h, wn, nil), lumen.zeros_like(ctx.output))
    local s = R / stabilize(z, TINY)
    local _, c = vjp(ctx.op, with_args(ctx, x, w, b), s)
    local _, cp = vjp(ctx.op, with_args(ctx, l, wp, nil), s)
    local _, cn = vjp(ctx.op, with_args(ctx, h, wn, nil), s)
    return x * c - l * cp - h * cn
  end,
}
M.layer_rules = layer_rules

-- Which rule a layer gets: by name, then by type, then the default.
local function rule_for(rules, owner, default)
  return function(ctx)
    local o = owner[ctx.args[2]]
    local r = o and (rules[o.name] or rules[o.type]) or default
    if type(r) == "string" then
      r = layer_rules[r] or error(("lrp: unknown rule '%s' (zero, epsilon, gamma, alphabeta, zplus, zbox)"):format(r), 0)
    end
    return r
  end
end

-- Relevance shared in proportion to contributions, for ops that are linear in their input.
local function proportional(ctx, R)
  local x = ctx.args[1]
  return x * ctx.default(ctx, R / stabilize(ctx.output, TINY))
end

function M.lrp(model, x, opts)
  opts = opts or {}
  local rule = opts.rule or "epsilon"
  local rules = type(rule) == "table" and rule or {}
  local default = type(rule) == "string" and rule or (rules.default or "epsilon")
  local params = { epsilon = opts.epsilon, gamma = opts.gamma, alpha = opts.alpha, beta = opts.beta,
                   low = opts.low or x:min_all(), high = opts.high or x:max_all() }
  -- weight tensor -> its layer, so rules can be chosen per layer name or type
  local owner = {}
  if type(model) ~= "function" then
    local types = {}
    for _, l in ipairs(model:layers()) do types[l.name] = l.type end
    for _, p in ipairs(model:parameters()) do
      local lname = p.name:match("^(.*)%.weight$")
      if lname then owner[p.tensor] = { name = lname, type = types[lname] or (model:layer(lname) or {}).type } end
    end
  end
  local pick = rule_for(rules, owner, default)
  local function layer_rule(ctx, R) return pick(ctx)(ctx, R, params) end
  local swapped = {
    linear = layer_rule,
    conv2d = layer_rule,
    conv1d = layer_rule,
    relu = function(_, R) return R end,
    avg_pool2d = proportional,
    global_avg_pool2d = proportional,
    adaptive_avg_pool2d = proportional,
    add = function(ctx, R)
      local a, b = ctx.args[1], ctx.args[2]
      if not (lumen.is_tensor(a) and lumen.is_tensor(b) and lumen.same_shape(a, b)) then return ctx.default(ctx, R) end
      local s = R / stabilize(ctx.output, TINY)
      return a * s, b * s
    end,
    batch_norm = function(ctx, R)
      -- fold into the preceding layer: rescale R so that layer's rule sees z_folded = bn(z)
      local z = ctx.args[1]
      return ctx.default(ctx, R / stabilize(ctx.output, TINY)) * z
    end,
  }
  for k in pairs(swapped) do
    if not lumen.autograd.ops[k] then swapped[k] = nil end
  end
  return lumen.with_rules(swapped, function()
    local xg = x:detach()
    xg.requires_grad = true
    local scores = common.scores(model, xg, opts)
    local targets = common.targets(scores, opts.target)
    local onehot = common.onehot(scores.shape[1], scores.shape[2], targets)
    local R = lumen.grad(scores, xg, scores:detach() * onehot)
    return R, targets[1], scores:get { 1, targets[1] }
  end)
end

return M
