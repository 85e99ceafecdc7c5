-- Layer-wise relevance propagation (Bach et al. 2015, "On Pixel-Wise Explanations for Non-Linear
-- Classifier Decisions"; rules as in Montavon et al. 2019, "Layer-Wise Relevance Propagation: An
-- Overview"). Relevance starts as the target score f_c at the output and is redistributed layer by
-- layer down to the input by swapping the backward rules of the ops (lumen.with_rules); the model is
-- neither copied nor changed. For a layer z_j = sum_i x_i w_ij + b_j (linear, conv1d, conv2d) with
-- relevance R_j at its output:
--   zero       R_i = sum_j x_i w_ij / z_j R_j                                       (LRP-0)
--   epsilon    R_i = sum_j x_i w_ij / (z_j + eps sign z_j) R_j                      epsilon = 1e-6
--   gamma      LRP-0 with w + gamma w+ and b + gamma b+ where z_j > 0 and x >= 0      gamma = 0.25
--              (signed inputs: x+ (w + gamma w+) + x- (w + gamma w-) where z_j > 0, and
--              x+ (w + gamma w-) + x- (w + gamma w+) with b + gamma b- where z_j <= 0, so the
--              contributions that share the output's sign are boosted and no denominator nears 0)
--   alphabeta  alpha (x_i w_ij)+ / (sum_i (x_i w_ij)+ + b_j+) R_j
--              - beta (x_i w_ij)- / (sum_i (x_i w_ij)- + b_j-) R_j                  alpha = 1, beta = 0
--   zplus      (x_i w_ij)+ / sum_i (x_i w_ij)+ R_j, biases ignored (alphabeta 1, 0 without bias)
--   zbox       (x_i w_ij - l_i w_ij+ - h_i w_ij-) / sum_i (same) R_j   for the pixel layer, x in [l, h]
-- (t+ = max(t, 0), t- = min(t, 0).) Elementwise activations pass relevance unchanged, max pools route it
-- to the winner, average pools, sums, means and residual additions share it in proportion to the
-- contributions, scaling by a constant passes it. A BatchNorm that directly follows a linear or conv
-- layer is folded into it (w' = w s, b' = b s + t, where BN(z) = s z + t) before the layer's rule
-- applies; any other BatchNorm acts as a diagonal layer under LRP-0.
-- opts: target = top class (per sample); rule = "epsilon" | "zero" | "gamma" | "alphabeta" | "zplus" |
--       "zbox", or a composite: a table of rules by layer name, "first" (the layer reading the input),
--       layer type ("Conv2d", "Linear", "Conv1d"; or op name, for plain functions) and "default", tried
--       in that order, e.g. {first = "zbox", Conv2d = "gamma", Linear = "epsilon"}; a rule may be a
--       table {rule = "gamma", gamma = 0.1} with its own parameters. Parameters: epsilon, gamma, alpha,
--       beta, low, high (zbox bounds: numbers or tensors broadcast to x; default x's min and max);
--       probabilities = false.
-- Returns the relevance shaped like x, the targets (a Lua array, one per sample) and their scores
-- (the relevance each sample started with).
local lumen = require "lumen"
local core = require "lumen.core"
local common = require "lumen.explain.common"

local M = {}
local TINY = 1e-12
local LAYER_OPS = { linear = true, conv2d = true, conv1d = true }
local PASS = { "relu", "leaky_relu", "relu6", "clip", "gelu", "hardswish", "hardsigmoid", "elu", "softplus",
               "sigmoid", "tanh" }
local PROPORTIONAL = { "avg_pool2d", "avg_pool1d", "global_avg_pool2d", "adaptive_avg_pool2d", "mean", "sum" }

-- z + eps sign(z), with sign(0) = 1 so nothing divides by zero.
local function stabilize(z, eps) return z + (z:ge(0) * 2 - 1) * eps end
local function pos(t) return t:relu() end
local function neg(t) return t - t:relu() end

-- The layer a linear/conv node computes: x, w, b, its output z (BatchNorm folded in when one follows)
-- and fwd(x, w, b) -> z, bwd(x, w, s) -> W^T s for swapped arguments (ops_nn's ctx conventions).
local function layer_of(ctx, folded)
  local x, w, z = ctx.args[1], ctx.args[2], ctx.output
  local b = lumen.is_tensor(ctx.args[3]) and ctx.args[3] or nil
  local fold = folded[z]
  if fold then
    local shape = { w.shape[1] }
    for d = 2, #w.shape do shape[d] = 1 end
    w = w * fold.scale:reshape(shape)
    b = b and b * fold.scale + fold.shift or fold.shift
    z = fold.output
  end
  local op, opts, default = lumen[ctx.op], ctx.opts, ctx.default
  return { x = x, w = w, b = b, z = z,
    fwd = function(xx, ww, bb) return op(xx, ww, bb, opts) end,
    bwd = function(xx, ww, s)
      return (default({ args = { xx, ww, nil, opts }, nargs = 4, inputs = { xx }, needs = { true }, opts = opts }, s))
    end }
end

-- Relevance in proportion to the positive (sign 1) or negative (sign -1) contributions x_i w_ij, plus b.
local function share(L, R, sign, b)
  local xp, xn, wp, wn = pos(L.x), neg(L.x), pos(L.w), neg(L.w)
  if sign < 0 then wp, wn = wn, wp end
  local s = R / stabilize(L.fwd(xp, wp, b) + L.fwd(xn, wn, nil), TINY)
  return xp * L.bwd(xp, wp, s) + xn * L.bwd(xn, wn, s)
end

-- The rules for one layer L: fn(L, R, params) -> relevance of L.x.
local RULES = {
  zero = function(L, R) return L.x * L.bwd(L.x, L.w, R / stabilize(L.z, TINY)) end,
  epsilon = function(L, R, p) return L.x * L.bwd(L.x, L.w, R / stabilize(L.z, p.epsilon or 1e-6)) end,
  gamma = function(L, R, p)
    -- boost the contributions that share the sign of the output: A = w + g w+ on x+ and B = w + g w-
    -- on x- where z_j > 0, the other way round where z_j <= 0
    local g = p.gamma or 0.25
    local xp, xn = pos(L.x), neg(L.x)
    local A, B = L.w + pos(L.w) * g, L.w + neg(L.w) * g
    local up = L.z:gt(0)
    local sp = R * up / stabilize(L.fwd(xp, A, L.b and L.b + pos(L.b) * g) + L.fwd(xn, B, nil), TINY)
    local sn = R * (1 - up) / stabilize(L.fwd(xp, B, L.b and L.b + neg(L.b) * g) + L.fwd(xn, A, nil), TINY)
    return xp * (L.bwd(xp, A, sp) + L.bwd(xp, B, sn)) + xn * (L.bwd(xn, B, sp) + L.bwd(xn, A, sn))
  end,
  alphabeta = function(L, R, p)
    local alpha, beta = p.alpha or 1, p.beta or 0
    local r = share(L, R, 1, L.b and pos(L.b)) * alpha
    if beta ~= 0 then r = r - share(L, R, -1, L.b and neg(L.b)) * beta end
    return r
  end,
  zplus = function(L, R) return share(L, R, 1, nil) end,
  zbox = function(L, R, p)
    local function bound(v) return lumen.is_tensor(v) and v:expand(L.x.shape) or lumen.full_like(L.x, v) end
    local l, h, wp, wn = bound(p.low), bound(p.high), pos(L.w), neg(L.w)
    local s = R / stabilize(L.fwd(L.x, L.w, nil) - L.fwd(l, wp, nil) - L.fwd(h, wn, nil), TINY)
    return L.x * L.bwd(L.x, L.w, s) - l * L.bwd(l, wp, s) - h * L.bwd(h, wn, s)
  end,
}

-- pick(ctx) -> rule function and its parameters, for the layer whose weight is ctx.args[2].
local function chooser(model, rule, input, params)
  local by = type(rule) == "table" and rule or { default = rule or "epsilon" }
  local owner = {}
  if type(model) ~= "function" then
    for _, l in ipairs(model:layers()) do
      local m = l.module
      if type(m) == "table" and lumen.is_tensor(m.weight) then owner[m.weight] = l end
    end
  end
  return function(ctx)
    local l = owner[ctx.args[2]]
    local r = (l and by[l.name]) or (ctx.args[1] == input and by.first) or (l and by[l.type]) or by[ctx.op]
      or by.default or "epsilon"
    local p = params
    if type(r) == "table" then
      p = {}
      for k, v in pairs(params) do p[k] = v end
      for k, v in pairs(r) do p[k] = v end
      r = r.rule
    end
    local fn = RULES[r]
    if not fn then
      error(("lrp: unknown rule '%s' (zero, epsilon, gamma, alphabeta, zplus, zbox)"):format(tostring(r)), 0)
    end
    return fn, p
  end
end

local function pass(_, R) return R end

-- Relevance shared in proportion to the contributions, for ops linear in their first argument.
local function proportional(ctx, R)
  return ctx.args[1] * ctx.default(ctx, R / stabilize(ctx.output, TINY))
end

local function add(ctx, R)
  local a, b = ctx.args[1], ctx.args[2]
  if not (lumen.is_tensor(a) and lumen.is_tensor(b) and lumen.same_shape(a, b)) then return ctx.default(ctx, R) end
  local s = R / stabilize(ctx.output, TINY)
  return a * s, b * s
end

-- x * c or x / c with c constant (e.g. input scaling inside the model): elementwise, relevance passes.
local function scaling(ctx, R)
  local needs = ctx.needs
  if needs[1] and not needs[2] and lumen.same_shape(ctx.args[1], R) then return R end
  if ctx.op == "mul" and needs[2] and not needs[1] and lumen.same_shape(ctx.args[2], R) then return nil, R end
  return ctx.default(ctx, R)
end

function M.lrp(model, x, opts)
  opts = opts or {}
  local xg = x:detach()
  xg.requires_grad = true
  local params = { epsilon = opts.epsilon, gamma = opts.gamma, alpha = opts.alpha, beta = opts.beta,
                   low = opts.low or x:min_all(), high = opts.high or x:max_all() }
  local pick = chooser(model, opts.rule, xg, params)
  local folded = {} -- conv/linear output -> the BatchNorm that follows it
  local rules = { add = add, mul = scaling, div = scaling }
  for op in pairs(LAYER_OPS) do
    rules[op] = function(ctx, R)
      local fn, p = pick(ctx)
      return fn(layer_of(ctx, folded), R, p)
    end
  end
  for _, op in ipairs(PASS) do rules[op] = pass end
  for _, op in ipairs(PROPORTIONAL) do rules[op] = proportional end
  rules.batch_norm = function(ctx, R)
    local z = ctx.args[1]
    local scale = ctx.weight and ctx.weight * ctx.invstd or ctx.invstd
    local shift = (lumen.is_tensor(ctx.args[5]) and ctx.args[5] or 0) - ctx.mean * scale
    local f = core.fields(z)
    if f and f.node and LAYER_OPS[f.node.op] then
      folded[z] = { scale = scale, shift = shift, output = ctx.output }
      return R
    end
    return proportional(ctx, R)
  end
  for k in pairs(rules) do
    if not lumen.autograd.ops[k] then rules[k] = nil end
  end
  return lumen.with_rules(rules, function()
    local scores = common.scores(model, xg, opts)
    local targets = common.targets(scores, opts.target)
    local start = scores:detach() * common.onehot(scores.shape[1], scores.shape[2], targets)
    local R = lumen.grad(scores, xg, start)
    local totals = {}
    for i, c in ipairs(targets) do totals[i] = scores:get { i, c } end
    return R, targets, totals
  end)
end

return M
