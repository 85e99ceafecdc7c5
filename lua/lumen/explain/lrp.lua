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
--       "zbox", or a composite: a table of rules keyed by layer name, by role — "first" (the first layer
--       with weights, even behind a Pad), "classifier" (the dense layer making the scores), "dense"
--       (every dense-like layer: Linear, or a 1x1 convolution on a 1x1 map, as MobileNet's classifier)
--       (model:roles) —, by layer type ("Conv2d", "Linear", "Conv1d"), by op ("linear", "conv2d";
--       for plain functions, where "first" is the op reading the input) and "default", tried in that
--       order, e.g. {first = "zbox", dense = "epsilon", Conv2d = "gamma"}; a key that matches no layer
--       is an error. A rule may be a table {rule = "gamma", gamma = 0.1} with its own parameters.
--       Parameters: epsilon = 1e-6, gamma = 0.25, alpha = 1, beta = 0, low, high (zbox bounds: numbers
--       or tensors broadcast to the layer input; default x's min and max); probabilities = false.
-- Returns the relevance shaped like x, the targets (a Lua array, one per sample) and their scores
-- (the relevance each sample started with); compare R:sum() with them to see how much is conserved.
local lumen = require "lumen"
local common = require "lumen.explain.common"

local M = {}
local TINY = 1e-12
local LAYER_OPS = { linear = true, conv2d = true, conv1d = true }
local PASS = { "relu", "leaky_relu", "relu6", "clip", "gelu", "hardswish", "hardsigmoid", "elu", "softplus",
               "sigmoid", "silu", "tanh" }
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
  epsilon = function(L, R, p) return L.x * L.bwd(L.x, L.w, R / stabilize(L.z, p.epsilon)) end,
  gamma = function(L, R, p)
    -- boost the contributions that share the sign of the output: A = w + g w+ on x+ and B = w + g w-
    -- on x- where z_j > 0, the other way round where z_j <= 0
    local g = p.gamma
    local xp, xn = pos(L.x), neg(L.x)
    local A, B = L.w + pos(L.w) * g, L.w + neg(L.w) * g
    local up = L.z:gt(0)
    local sp = R * up / stabilize(L.fwd(xp, A, L.b and L.b + pos(L.b) * g) + L.fwd(xn, B, nil), TINY)
    local sn = R * (1 - up) / stabilize(L.fwd(xp, B, L.b and L.b + neg(L.b) * g) + L.fwd(xn, A, nil), TINY)
    return xp * (L.bwd(xp, A, sp) + L.bwd(xp, B, sn)) + xn * (L.bwd(xn, B, sp) + L.bwd(xn, A, sn))
  end,
  alphabeta = function(L, R, p)
    local alpha, beta = p.alpha, p.beta
    local r = share(L, R, 1, L.b and pos(L.b)) * alpha
    if beta ~= 0 then r = r - share(L, R, -1, L.b and neg(L.b)) * beta end
    return r
  end,
  zplus = function(L, R) return share(L, R, 1, nil) end,
  zbox = function(L, R, p)
    local function bound(v)
      if not lumen.is_tensor(v) then return lumen.full_like(L.x, v) end
      local ok, t = pcall(v.expand, v, L.x.shape)
      if not ok then
        error(("lrp: zbox bound %s does not broadcast to the layer input %s"):format(lumen.shape_str(v),
          lumen.shape_str(L.x)), 0)
      end
      return t
    end
    local l, h, wp, wn = bound(p.low), bound(p.high), pos(L.w), neg(L.w)
    local s = R / stabilize(L.fwd(L.x, L.w, nil) - L.fwd(l, wp, nil) - L.fwd(h, wn, nil), TINY)
    return L.x * L.bwd(L.x, L.w, s) - l * L.bwd(l, wp, s) - h * L.bwd(h, wn, s)
  end,
}

local RULE_PARAMS = { epsilon = true, gamma = true, alpha = true, beta = true, low = true, high = true }

-- A rule as given (a name or {rule =, params...}) -> the rule function and its parameters (the
-- method's, overridden by the rule's own); errors name the key the rule came from.
local function resolve(r, key, params)
  local p = params
  if type(r) == "table" then
    p = {}
    for k, v in pairs(params) do p[k] = v end
    for k, v in pairs(r) do
      if k ~= "rule" and not RULE_PARAMS[k] then
        error(("lrp: rule for '%s' has an unknown parameter '%s' (epsilon, gamma, alpha, beta, low, high)"):format(
          key, tostring(k)), 0)
      end
      p[k] = v
    end
    r = r.rule
  end
  local fn = RULES[r]
  if not fn then
    error(("lrp: unknown rule '%s' for '%s' (zero, epsilon, gamma, alphabeta, zplus, zbox)"):format(tostring(r), key),
      0)
  end
  if r == "alphabeta" and (p.alpha < 0 or p.beta < 0 or math.abs(p.alpha - p.beta - 1) > 1e-9) then
    error(("lrp: alphabeta for '%s' needs alpha - beta = 1 with both >= 0 (conservation), got alpha = %g, beta = %g")
      :format(key, p.alpha, p.beta), 0)
  end
  return { fn = fn, p = p }
end

local ROLE_ORDER = { "first", "classifier", "dense" }
local TYPE_OP = { Linear = "linear", Conv2d = "conv2d", Conv1d = "conv1d" }

-- For a lumen model: weight tensor -> resolved rule, every key of the composite checked against the
-- model's layers, roles (from the trace's shapes) and types. Returns the table and the fallback.
local function assign(model, by, params, trace)
  local roles = model:roles(trace)
  local role_of = {} -- layer name -> set of roles
  for role, names in pairs(roles) do
    for _, n in ipairs(names) do
      role_of[n] = role_of[n] or {}
      role_of[n][role] = true
    end
  end
  local matched, by_weight = {}, {}
  local layers = {}
  for _, l in ipairs(model:layers()) do
    local m = l.module
    if not l.extra and type(m) == "table" and lumen.is_tensor(m.weight) and TYPE_OP[l.type] then
      layers[#layers + 1] = l
    end
  end
  for _, l in ipairs(layers) do
    local keys = { l.name }
    for _, role in ipairs(ROLE_ORDER) do
      if role_of[l.name] and role_of[l.name][role] then keys[#keys + 1] = role end
    end
    keys[#keys + 1] = l.type
    keys[#keys + 1] = TYPE_OP[l.type]
    local chosen
    for _, k in ipairs(keys) do
      if by[k] ~= nil then
        matched[k] = true
        chosen = chosen or k
      end
    end
    chosen = chosen or "default"
    by_weight[l.module.weight] = resolve(by[chosen] or "epsilon", chosen, params)
  end
  for k in pairs(by) do
    if k ~= "default" and not matched[k] then
      local types, seen = {}, {}
      for _, l in ipairs(layers) do
        if not seen[l.type] then seen[l.type], types[#types + 1] = true, l.type end
      end
      error(("lrp: rule key '%s' matches no layer with weights (keys: a layer name such as '%s', a role: first,"
        .. " classifier, dense, a type: %s, or default)"):format(tostring(k), layers[1] and layers[1].name or "?",
        table.concat(types, ", ")), 0)
    end
  end
  return by_weight, resolve(by.default or "epsilon", "default", params)
end

-- pick(ctx) -> {fn =, p =} for the layer whose weight is ctx.args[2]. For a plain function the keys are
-- "first" (the op reading the input), op names and "default"; a key no op matched is an error after
-- the sweep (check()).
local function chooser(model, rule, input, params, trace)
  local by = type(rule) == "table" and rule or { default = rule }
  for k, r in pairs(by) do resolve(r, tostring(k), params) end -- unknown rules fail before any work
  if type(model) ~= "function" then
    local by_weight, fallback = assign(model, by, params, trace)
    return function(ctx) return by_weight[ctx.args[2]] or fallback end, function() end
  end
  local matched = {}
  local function pick(ctx)
    local key
    if ctx.args[1] == input and by.first ~= nil then key = "first"; matched.first = true end
    if by[ctx.op] ~= nil then matched[ctx.op] = true; key = key or ctx.op end
    key = key or "default"
    return resolve(by[key] or "epsilon", key, params)
  end
  local function check()
    for k in pairs(by) do
      if k ~= "default" and not matched[k] then
        error(("lrp: rule key '%s' matches no op of the function (first, linear, conv1d, conv2d)"):format(
          tostring(k)), 0)
      end
    end
  end
  return pick, check
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

local OPTIONS = common.options("lrp", {
  target = { nil, "target" }, rule = { "epsilon", "string | table" }, epsilon = { 1e-6, "number >= 0" },
  gamma = { 0.25, "number >= 0" }, alpha = { 1, "number" }, beta = { 0, "number" }, low = { nil, "number | tensor" },
  high = { nil, "number | tensor" }, probabilities = { false, "boolean" },
})

function M.lrp(model, x, opts)
  local o = OPTIONS(opts, model)
  local xg = x:detach()
  xg.requires_grad = true
  local params = { epsilon = o.epsilon, gamma = o.gamma, alpha = o.alpha, beta = o.beta,
                   low = o.low or x:min_all(), high = o.high or x:max_all() }
  local folded = {} -- conv/linear output -> the BatchNorm that follows it
  local pick, check
  local rules = { add = add, mul = scaling, div = scaling }
  for op in pairs(LAYER_OPS) do
    rules[op] = function(ctx, R)
      local r = pick(ctx)
      return r.fn(layer_of(ctx, folded), R, r.p)
    end
  end
  for _, op in ipairs(PASS) do rules[op] = pass end
  for _, op in ipairs(PROPORTIONAL) do rules[op] = proportional end
  rules.batch_norm = function(ctx, R)
    local z = ctx.args[1]
    local scale = ctx.weight and ctx.weight * ctx.invstd or ctx.invstd
    local shift = (lumen.is_tensor(ctx.args[5]) and ctx.args[5] or 0) - ctx.mean * scale
    if LAYER_OPS[lumen.autograd.op_of(z)] then
      folded[z] = { scale = scale, shift = shift, output = ctx.output }
      return R
    end
    return proportional(ctx, R)
  end
  for k in pairs(rules) do
    if not lumen.autograd.ops[k] then rules[k] = nil end
  end
  return lumen.with_rules(rules, function()
    local scores, trace
    if type(model) == "function" then
      scores = common.scores(model, xg, o)
    else
      trace = common.trace(model, xg, {}, o, "lrp")
      scores = trace.output
    end
    pick, check = chooser(model, o.rule, xg, params, trace)
    local targets = common.targets(scores, o.target, "lrp")
    local start = scores:detach() * common.onehot(scores.shape[1], scores.shape[2], targets)
    local R = lumen.grad(scores, xg, start)
    check()
    local totals = {}
    for i, c in ipairs(targets) do totals[i] = scores:get { i, c } end
    return R, targets, totals
  end)
end

return M
