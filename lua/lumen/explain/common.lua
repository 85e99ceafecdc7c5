-- lumen.explain.common: what the methods share — the options declaration every method uses, calling
-- a lumen model or a plain function (scores, traces), choosing and checking targets, differentiating
-- target scores, running work in batches, and the layer choice and picture form of CAM-style maps.
local lumen = require "lumen"

local M = {}

---------------------------------------------------------------- options

-- The default of an option the caller must give.
M.REQUIRED = setmetatable({}, { __tostring = function() return "required" end })

-- What a kind accepts, in words, for messages.
local WORDS = {
  integer = "an integer", number = "a number", boolean = "true or false", string = "a string",
  tensor = "a tensor", table = "a table", ["function"] = "a function", any = "any value",
  layer = "a layer name", target = "a 1-based class id or a list of them (one per sample)",
}

-- Parses one alternative of a kind string: "'text'", "integer >= 1", "number > 0", "tensor", ...
local function alternative(method, name, s)
  s = s:match("^%s*(.-)%s*$")
  local lit = s:match("^'(.*)'$")
  if lit then return { literal = lit, words = "'" .. lit .. "'" } end
  local base, op, bound = s:match("^(%a+)%s*([<>]=?)%s*(%-?[%d%.e%-]+)$")
  base = base or s
  if not WORDS[base] then
    error(("%s: option %s declares an unknown kind '%s'"):format(method, name, s), 4)
  end
  local alt = { base = base, op = op, bound = tonumber(bound), words = WORDS[base] }
  if op then
    if not (base == "integer" or base == "number") or not alt.bound then
      error(("%s: option %s: a bound needs an integer or number kind, got '%s'"):format(method, name, s), 4)
    end
    alt.words = ("%s %s %s"):format(WORDS[base], op, bound)
  end
  return alt
end

local function in_bound(alt, v)
  local b = alt.bound
  if not alt.op then return true end
  if alt.op == ">=" then return v >= b elseif alt.op == ">" then return v > b
  elseif alt.op == "<=" then return v <= b else return v < b end
end

local function is_id(v) return math.type(v) == "integer" and v >= 1 end

-- The value v as alternative alt accepts it (integral floats become integers), or nil.
local function accept(alt, v, model)
  if alt.literal then
    if v == alt.literal then return v end
    return nil
  end
  local b = alt.base
  if b == "any" then return v end
  if b == "integer" or b == "number" then
    if type(v) ~= "number" then return nil end
    if b == "integer" then
      v = math.tointeger(v)
      if v == nil then return nil end
    end
    return in_bound(alt, v) and v or nil
  end
  if b == "tensor" then return lumen.is_tensor(v) and v or nil end
  if b == "layer" then
    if type(v) ~= "string" then return nil end
    if type(model) == "table" and model.knows and not model:knows(v) then return nil, "layer" end
    return v
  end
  if b == "target" then
    if type(v) == "number" then return is_id(math.tointeger(v)) and math.tointeger(v) or nil end
    if type(v) ~= "table" or #v == 0 then return nil end
    local t = {}
    for i, c in ipairs(v) do
      t[i] = math.tointeger(c)
      if not is_id(t[i]) then return nil end
    end
    return t
  end
  if type(v) == b then return v end
  return nil
end

local function show(v)
  if type(v) == "string" then return "'" .. v .. "'" end
  if lumen.is_tensor(v) then return "a tensor " .. lumen.shape_str(v) end
  if type(v) == "table" then return "a table" end
  return tostring(v)
end

-- Whether b is within 2 edits of a, for "did you mean".
local edit_distance = require("lumen.nn.container").edit_distance
local function near(a, b) return math.abs(#a - #b) <= 2 and edit_distance(a, b) <= 2 end

local Options = {}
Options.__index = Options

-- Every method's declaration, by method name (lumen.explain.options reads it).
M.declared = {}

-- options(method, {name = {default, kind}, ...}) -> a checker, called as o = OPTS(opts [, model]) at the
-- top of the method: unknown keys are errors naming the key and listing the valid ones; each given
-- value must match its kind; missing ones take their default (M.REQUIRED: the caller must give it).
-- o is a fresh table, opts is not changed. Kinds are alternatives separated by "|":
--   'text' (that string)  integer, number (optionally bounded: "integer >= 1", "number > 0")
--   boolean  string  tensor  table  function  any  layer (a layer name of the model)
--   target (a 1-based class id or a list of them; range is checked against the scores by targets())
-- e.g. common.options("smoothgrad", { n = { 50, "integer >= 1" }, noise = { 0.15, "number >= 0" },
--                                     variant = { "mean", "'mean' | 'squared' | 'vargrad'" } })
function M.options(method, decl)
  local o = setmetatable({ method = method, decl = {}, names = {} }, Options)
  for name, d in pairs(decl) do
    if type(d) ~= "table" or type(d[2]) ~= "string" then
      error(("%s: option %s must be declared as {default, kind}"):format(method, tostring(name)), 2)
    end
    local alts, words = {}, {}
    for part in (d[2] .. "|"):gmatch("([^|]*)|") do
      alts[#alts + 1] = alternative(method, name, part)
      words[#words + 1] = alts[#alts].words
    end
    local said = #words == 1 and words[1] or table.concat(words, ", ", 1, #words - 1) .. " or " .. words[#words]
    o.decl[name] = { default = d[1], kind = d[2], alts = alts, words = said }
    o.names[#o.names + 1] = name
  end
  table.sort(o.names)
  M.declared[method] = o
  return o
end

-- Raises "<method>: <name> must be <what>, got <value>".
function Options:fail(name, value, what, level)
  error(("%s: %s must be %s, got %s"):format(self.method, name, what, show(value)), (level or 1) + 1)
end

function Options:__call(opts, model)
  local method = self.method
  if opts == nil then opts = {} end
  if type(opts) ~= "table" or lumen.is_tensor(opts) then
    error(("%s: options must be a table, got %s"):format(method, show(opts)), 3)
  end
  for k in pairs(opts) do
    if not self.decl[k] then
      local key, hint = tostring(k), ""
      for _, n in ipairs(self.names) do
        if near(key, n) then hint = (", did you mean '%s'?"):format(n); break end
      end
      error(("%s: unknown option '%s'%s (options: %s)"):format(method, key, hint, table.concat(self.names, ", ")), 3)
    end
  end
  local o = {}
  for _, name in ipairs(self.names) do
    local d, v = self.decl[name], opts[name]
    if v == nil then
      if d.default == M.REQUIRED then error(("%s: option %s is required (%s)"):format(method, name, d.words), 3) end
      o[name] = d.default
    else
      local got, why
      for _, alt in ipairs(d.alts) do
        got, why = accept(alt, v, model)
        if got ~= nil or why then break end
      end
      if why == "layer" then
        local close = model:close_names(v)
        error(("%s: %s = '%s' is not a layer of the model%s"):format(method, name, v,
          #close > 0 and (" (did you mean " .. table.concat(close, ", ") .. "?)") or ""), 3)
      end
      if got == nil then self:fail(name, v, d.words, 3) end
      o[name] = got
    end
  end
  return o
end

---------------------------------------------------------------- models and scores

-- Raises "<method>: needs a lumen model, not a plain function" for plain-function models.
function M.need_model(model, method)
  if type(model) == "function" or type(model) ~= "table" or not model.trace then
    error(("%s: needs a lumen model, not a plain function"):format(method), 3)
  end
end

-- Scores (N, classes) for a batch: the scores before a final softmax (DESIGN.md: "Scores"), or with
-- o.probabilities the softmax of those scores whatever the model ends in. A plain function gives
-- scores; its softmax is taken likewise.
function M.scores(model, x, o)
  local probabilities = o and o.probabilities
  if type(model) == "function" then
    local s = model(x)
    if probabilities then s = lumen.softmax(s, -1) end
    return s
  end
  return model:forward(x, { logits = not probabilities })
end

-- model:trace(x, topts) with the scores o asks for (see M.scores): trace.output is (N, classes).
function M.trace(model, x, topts, o, method)
  M.need_model(model, method or "this method")
  local t = { logits = not (o and o.probabilities) }
  for k, v in pairs(topts or {}) do t[k] = v end
  return model:trace(x, t)
end

-- Targets for each row of scores (N, K): a Lua array of 1-based class ids. `target` is nil (each
-- row's top class), one class id for all rows, or an array with one id per row.
function M.targets(scores, target, method)
  local shape = scores.shape
  local who = method and (method .. ": ") or ""
  if #shape ~= 2 then
    error(("%sexpected scores of shape (N, classes), got %s"):format(who, lumen.shape_str(scores)), 0)
  end
  local n, k = shape[1], shape[2]
  local t = {}
  if target == nil then
    local idx = lumen.argmax(scores, 2)
    for i = 1, n do t[i] = idx:get { i } end
  elseif type(target) == "number" then
    for i = 1, n do t[i] = target end
  elseif type(target) == "table" then
    for i = 1, n do t[i] = target[i] or error(("%starget has no entry for sample %d"):format(who, i), 0) end
  else
    error(who .. "target must be a 1-based class id, a table of them, or nil", 0)
  end
  for i = 1, n do
    if math.type(t[i]) ~= "integer" or t[i] < 1 or t[i] > k then
      error(("%starget = %s is out of range: the model has %d classes (ids 1..%d)"):format(who, tostring(t[i]), k, k),
        0)
    end
  end
  return t
end

-- One-hot (N, K) mask for targets.
function M.onehot(n, k, targets)
  local m = lumen.zeros { n, k }
  for i = 1, n do m:set({ i, targets[i] }, 1) end
  return m
end

-- Sum over the batch of each sample's target score (differentiable): the scalar to differentiate.
function M.target_score(scores, targets)
  local s = scores.shape
  return (scores * M.onehot(s[1], s[2], targets)):sum()
end

-- x detached from any tape and marked as requiring grad (float inputs; token ids pass through), so
-- the tape records the model even when all its weights are frozen.
function M.on_tape(x)
  if x:dtype() ~= "float32" then return x end
  local xg = x:detach()
  xg.requires_grad = true
  return xg
end

-- d(target score)/d(x) for a batch x; returns grad (shaped like x), scores, targets.
function M.input_gradient(model, x, target, o, method)
  local xg = M.on_tape(x)
  local scores = M.scores(model, xg, o)
  local targets = M.targets(scores, target, method)
  local g = lumen.grad(M.target_score(scores, targets), xg)
  return g, scores, targets
end

-- Raises "<method>: explain one input at a time ..." unless x is a batch of one.
function M.single(x, method)
  if not lumen.is_tensor(x) then error(("%s: expected an input tensor, got %s"):format(method, type(x)), 3) end
  if x.shape[1] ~= 1 then
    error(("%s: explain one input at a time (a batch of 1), got %s"):format(method, lumen.shape_str(x)), 3)
  end
end

-- The order in which perturbation metrics (deletion / insertion, ROAD) change pixels: a float tensor
-- (n) of ranks, 1 = first, by decreasing value of the n values given (a tensor), or a random order
-- (lumen.randperm) when values is nil.
function M.pixel_ranks(values, n)
  local idx
  if values then
    local _, sorted = values:reshape { n }:sort(1, true)
    idx = sorted:totable()
  else
    idx = lumen.randperm(n)
  end
  local rank = {}
  for i, p in ipairs(idx) do rank[p] = i end
  return lumen.tensor(rank)
end

-- Points k = first-1 .. first+count-2 of the trapezoid rule on [0, 1] with `steps` intervals
-- (steps + 1 points in all): alphas k/steps and weights 1/steps, halved at both ends.
function M.trapezoid(first, count, steps)
  local alphas, weights = {}, {}
  for j = 1, count do
    local k = first + j - 2
    alphas[j] = k / steps
    weights[j] = (k == 0 or k == steps) and 0.5 / steps or 1 / steps
  end
  return alphas, weights
end

-- Calls fn(first, count) over 1..n in chunks of batch_size, with a progress bar when there are many.
function M.batches(n, batch_size, fn, label)
  batch_size = math.max(1, batch_size or n)
  local bar = (n > batch_size * 4 and label) and lumen.progress(n, label) or nil
  local first = 1
  while first <= n do
    local count = math.min(batch_size, n - first + 1)
    fn(first, count)
    first = first + count
    if bar then bar:update(first - 1) end
  end
  if bar then bar:done() end
end

-- Repeats a (1, ...) tensor into a new (n, ...) tensor, off the tape.
function M.repeat_batch(x, n)
  local s = x.shape
  s[1] = n
  return x:detach():expand(s)
end

---------------------------------------------------------------- CAM-style maps

-- A shape table as "(1, 197, 768)".
local function dims(s) return "(" .. table.concat(s, ", ") .. ")" end

local function need_input(x, method)
  if not lumen.is_tensor(x) then error(("%s: expected an input tensor, got %s"):format(method, type(x)), 4) end
end

-- Whether a layer output shape is spatial: (N, C, h, w) with h, w > 1, or (N, C, L) with C, L > 1.
function M.spatial(s)
  return s ~= nil and ((#s == 4 and s[3] > 1 and s[4] > 1) or (#s == 3 and s[3] > 1 and s[2] > 1))
end

-- The options every CAM-style method shares; common.cam_options(method, {own ...}) declares them with
-- the method's own (see M.cam_form for reshape and layout).
local CAM_OPTIONS = {
  target = { nil, "target" }, layer = { nil, "layer" }, reshape = { nil, "table" },
  layout = { nil, "'nchw' | 'nhwc' | 'tokens'" }, probabilities = { false, "boolean" },
}
function M.cam_options(method, own)
  local decl = {}
  for k, v in pairs(CAM_OPTIONS) do decl[k] = v end
  for k, v in pairs(own or {}) do decl[k] = v end
  return M.options(method, decl)
end

-- Whether a map of h x w can come from an input of H x W: no larger, and the same aspect up to the
-- rounding of strided layers (h = H / s and w = W / s, each within 1).
local function fits(h, w, H, W)
  return h >= 1 and w >= 1 and h <= H and w <= W and math.abs(h * W - w * H) <= H + W
end

-- The square patch grid of T tokens, with a class token or without: T = g^2 or 1 + g^2 (g >= 2).
local function token_grid(T)
  for skip = 0, 1 do
    local g = math.floor(math.sqrt(T - skip) + 0.5)
    if g >= 2 and g * g == T - skip then return g, skip end
  end
end

local MAX_LEADING = 16 -- leading tokens (class, distillation, register) reshape may drop

-- How a layer's output (shape s) reads as CAM maps, for an input of shape xs:
--   'nchw'   (N, C, h, w) as it is;   'ncl' (N, C, L) 1-D maps (inputs that are not images);
--   'nhwc'   (N, h, w, C), channels last (Swin, ConvNeXt blocks): permuted to (N, C, h, w);
--   'tokens' (N, T, C) of a transformer: the last h*w tokens are the patch grid in row-major order, the
--            T - h*w before them (class, distillation, register tokens, at most 16) are dropped.
-- o.reshape = {h, w} gives the grid of tokens; without it an image model's (N, T, C) is read as tokens
-- with T = g^2 or 1 + g^2 (a g x g grid, after a class token). o.layout says the layout; without it a
-- 4-D output is (N, C, h, w) when (h, w) fits the input's size and aspect and (N, h, w, C) when only that
-- fits. Returns {layout =, h =, w =, skip = dropped tokens, channel = the channel dim of the output}.
function M.cam_form(s, xs, o, layer, method)
  local image, rank = #xs == 4, #s
  local function fail(what)
    error(("%s: layer '%s' has output %s; %s"):format(method, layer, dims(s), what), 5)
  end
  local layout, reshape = o.layout, o.reshape
  if reshape ~= nil then
    local h, w = math.tointeger(reshape[1]), math.tointeger(reshape[2])
    if #reshape ~= 2 or not (h and w and h >= 1 and w >= 1) then
      local got = {}
      for i, v in ipairs(reshape) do got[i] = tostring(v) end
      error(("%s: reshape must be {h, w} with integers >= 1 (the patch grid), got {%s}"):format(method,
        table.concat(got, ", ")), 4)
    end
    if rank ~= 3 or (layout and layout ~= "tokens") then
      fail("reshape = {h, w} reads tokens (N, tokens, C)" .. (rank == 4 and
        ", and this is 4-D: pass layout = 'nchw' or 'nhwc' instead" or ""))
    end
    local skip = s[2] - h * w
    if skip < 0 or skip > MAX_LEADING then
      fail(("reshape = {%d, %d} needs %d patch tokens after at most %d others, the layer has %d tokens")
        :format(h, w, h * w, MAX_LEADING, s[2]))
    end
    return { layout = "tokens", h = h, w = w, skip = skip, channel = 3 }
  end
  if rank == 3 then
    if layout == "tokens" or (layout == nil and image) then
      local g, skip = token_grid(s[2])
      if not g then
        fail(("%d tokens are not a square patch grid (g*g or 1 + g*g): pass reshape = {h, w}"):format(s[2]))
      end
      return { layout = "tokens", h = g, w = g, skip = skip, channel = 3 }
    end
    if layout then fail(("layout = '%s' needs a 4-D output"):format(layout)) end
    return { layout = "ncl", skip = 0, channel = 2 }
  end
  if rank ~= 4 then
    fail("need maps (N, C, h, w), (N, h, w, C), tokens (N, tokens, C) or 1-D maps (N, C, L)")
  end
  if layout == "tokens" then fail("layout = 'tokens' needs (N, tokens, C)") end
  if layout == nil and image and not fits(s[3], s[4], xs[3], xs[4]) and fits(s[2], s[3], xs[3], xs[4]) then
    layout = "nhwc"
  end
  if layout == "nhwc" then return { layout = "nhwc", h = s[2], w = s[3], skip = 0, channel = 4 } end
  return { layout = "nchw", h = s[3], w = s[4], skip = 0, channel = 2 }
end

-- t (a layer's output, or its gradient) as maps (N, C, h, w) ((N, C, L) for 'ncl'), per M.cam_form.
function M.to_maps(t, form)
  if form.layout == "nhwc" then return t:permute { 1, 4, 2, 3 }:contiguous() end
  if form.layout == "tokens" then
    local s = t.shape
    local patches = t:narrow(2, form.skip + 1, form.h * form.w) -- (N, h w, C)
    return patches:transpose(2, 3):contiguous():reshape { s[1], s[3], form.h, form.w }
  end
  return t
end

-- The default layer of a CAM-style method from a trace of the input x: for images the last (N, C, h, w)
-- output with h, w > 1 (fitting the input, see M.cam_form; N the input's batch), provided no tokens
-- (N, T, C) or channels-last maps (N, h, w, C) come after it — then, and when there is none, an error that names the layer and the
-- reshape = / layout = to pass; for other inputs the last spatial output (M.spatial). For tokens the
-- layer named is the last whose patch tokens the score depends on, when `reach(names, skip)` (given by
-- cam_pass) finds it among the token layers; else the last token layer.
function M.last_spatial_layer(trace, method, xs, reach)
  local layers = trace.layers
  if not (xs and #xs == 4) then
    for i = #layers, 1, -1 do
      if M.spatial(layers[i].shape) then return layers[i].name end
    end
    error(("%s: no layer with a spatial output (N, C, h, w) found; pass opts.layer"):format(method), 3)
  end
  local H, W = xs[3], xs[4]
  local flat = {} -- (C, h*w) of every map: a map flattened is not tokens
  for _, l in ipairs(layers) do
    local s = l.shape
    if s and #s == 4 then flat[s[2] .. "x" .. s[3] * s[4]] = true end
  end
  local later, how, tokens = nil, nil, {} -- the last token or channels-last output; the token layers
  for i = #layers, 1, -1 do
    local l = layers[i]
    local s = l.shape
    if s and s[1] ~= xs[1] then s = nil end -- (batch x heads, ...) inside attention, windows of a Swin
    if s and #s == 4 and s[3] > 1 and s[4] > 1 and fits(s[3], s[4], H, W) then
      if not later then return l.name end
      break
    end
    if not later and s and #s == 4 and s[2] > 1 and s[3] > 1 and fits(s[2], s[3], H, W) then
      later, how = l, "layout = 'nhwc'"
    elseif s and #s == 3 and not flat[s[2] .. "x" .. s[3]] then
      local g, skip = token_grid(s[2])
      if g and (not later or (#later.shape == 3 and later.shape[2] == s[2])) then
        later, how = later or l, ("reshape = {%d, %d}"):format(g, g)
        table.insert(tokens, 1, { name = l.name, shape = s, skip = skip })
      end
    end
  end
  if later and #later.shape == 3 then
    local names = {}
    for i, t in ipairs(tokens) do names[i] = t.name end
    local found = reach and reach(names, tokens[1].skip)
    local pick = later
    for _, t in ipairs(tokens) do if t.name == found then pick = t end end
    error(("%s: the model's last spatial outputs are tokens (N, tokens, C), not (N, C, h, w) maps: pass layer = "
      .. "'%s' (%s) with %s%s"):format(method, pick.name, dims(pick.shape), how, found and (", the last token layer "
      .. "whose patch tokens the score depends on (after it only the class token reaches the head)") or (", or an "
      .. "earlier token layer if its patch tokens get no gradient (for a ViT the input of the last block's "
      .. "attention)")), 3)
  elseif later then
    error(("%s: the model's last spatial outputs are channels-last (N, h, w, C), not (N, C, h, w) maps: pass layer "
      .. "= '%s' (%s) with %s"):format(method, later.name, dims(later.shape), how), 3)
  end
  error(("%s: no layer with a spatial output (N, C, h, w), h, w > 1, found; pass layer = (and reshape = {h, w} "
    .. "for tokens, layout = 'nhwc' for channels-last maps)"):format(method), 3)
end

-- The last of the token layers `names` (outputs (N, T, C), `skip` leading tokens) whose patch tokens the
-- target score depends on: one more pass and backward, only to word the default layer's error.
local function reaching(model, x, o, method)
  return function(names, skip)
    local ok, found = pcall(function()
      local tr = M.trace(model, M.on_tape(x), { capture = names }, o, method)
      local outs = {}
      for i, n in ipairs(names) do outs[i] = tr.captured[n] end
      local gs = lumen.grad(M.target_score(tr.output, M.targets(tr.output, o.target, method)), outs)
      local last
      for i, g in ipairs(gs) do
        if g:narrow(2, skip + 1, g.shape[2] - skip):abs():max_all() > 0 then last = names[i] end
      end
      return last
    end)
    return ok and found or nil
  end
end

-- One traced pass for a CAM-style method (o from M.cam_options): the layer's output as maps A
-- (N, K, h, w) (or (N, K, L)), detached; with `grad`, g = d(target scores)/dA shaped like A (one
-- backward, stopping at the layer); the targets, the layer name, the form (M.cam_form), the output
-- as the layer gives it and the scores (N, classes), detached. Raises when a token layer's patch tokens
-- get no gradient but its class token does.
function M.cam_pass(model, x, o, method, grad)
  need_input(x, method)
  local xin = grad and M.on_tape(x) or x
  local topts = { capture = o.layer and { o.layer } or "all" }
  local tr = grad and M.trace(model, xin, topts, o, method) or lumen.no_grad(M.trace, model, xin, topts, o, method)
  local layer = o.layer or M.last_spatial_layer(tr, method, x.shape, reaching(model, x, o, method))
  local out = tr.captured[layer]
  if not lumen.is_tensor(out) then error(("%s: layer '%s' gives no tensor"):format(method, layer), 3) end
  local form = M.cam_form(out.shape, x.shape, o, layer, method)
  local targets = M.targets(tr.output, o.target, method)
  local g
  if grad then
    local gout = lumen.grad(M.target_score(tr.output, targets), out)
    g = M.to_maps(gout, form)
    if form.skip > 0 and g:abs():max_all() == 0 and gout:abs():max_all() > 0 then
      error(("%s: layer '%s': the target score depends only on its first %d token(s), not on the patch tokens; "
        .. "choose an earlier layer (for a ViT the input of the last block's attention)"):format(method, layer,
          form.skip), 3)
    end
  end
  out = out:detach()
  return M.to_maps(out, form), g, targets, layer, form, out, tr.output:detach()
end

-- The returns of a CAM-style method from its raw map (N, 1, h, w) (or (N, 1, L)): the map (raw with
-- o.raw, else upsampled to x and normalised), the targets, the layer, the raw map, the upsampled map,
-- then any extras given.
function M.cam_result(raw, x, o, targets, layer, ...)
  local up = M.upsample_normalize(raw, x)
  return o.raw and raw or up, targets, layer, raw, up, ...
end

-- Upsamples maps (N, 1, h, w) (or (N, 1, L) for sequence inputs (N, C, L)) to x's spatial size
-- (bilinear) and min-max normalises each sample to [0, 1]: the picture form of CAM-style maps.
function M.upsample_normalize(cam, x)
  local xs = x.shape
  if #cam.shape == 4 then
    cam = lumen.upsample_bilinear(cam, { xs[#xs - 1], xs[#xs] })
  elseif #xs == 3 then
    cam = lumen.upsample_bilinear(cam:unsqueeze(3), { 1, xs[3] }):squeeze(3)
  end
  return cam:normalize01 { per_sample = true }
end

---------------------------------------------------------------- token models and attention

-- The embedding layer of a token model: `name` checked to be an Embedding (ONNX imports turn an
-- embedding's Gather into one), or else the model's first Embedding layer; none is an error.
function M.embedding_layer(model, name, method)
  M.need_model(model, method)
  if name then
    local t = model:layer(name).type
    if t ~= "Embedding" then error(("%s: embedding = '%s' is a %s layer, not an Embedding"):format(method, name, t), 3) end
    return name
  end
  for _, l in ipairs(model:layers()) do
    if l.type == "Embedding" then return l.name end
  end
  error(("%s: the model has no Embedding layer (pass opts.embedding)"):format(method), 3)
end

-- The output E (N, L, D) of embedding layer `name` for ids (N, L), off the tape.
function M.embedded(model, name, ids)
  return lumen.no_grad(model.forward, model, ids, { stop_at = name })
end

-- Traces the model on ids (n, L) (or (1, L), repeated to E's batch) with the embedding layer's output
-- replaced by E (B, L, D), marked as requiring grad so that gradients reach E and every layer after it
-- even when the weights are frozen (GloVe); layers after it that read the ids (a padding mask) still
-- read them. Returns the trace (output: scores (B, classes)) and E.
function M.trace_from_embedding(model, name, ids, E, o, capture)
  E = M.on_tape(E)
  if ids.shape[1] ~= E.shape[1] then ids = M.repeat_batch(ids, E.shape[1]) end
  return M.trace(model, ids, { replace = { [name] = E }, capture = capture }, o), E
end

-- The names of the layers whose outputs are attention weights, in the model's order: every extra output
-- "<layer>:attention" (lumen's MultiheadAttention, (N, heads, T, S)) or, when the model has none, every
-- Softmax layer (an ONNX import: PyTorch's attention softmax is (N * heads, T, S)); M.attentions drops
-- the Softmax layers that turn out not to be attention (a classifier's final softmax). The second return
-- is "extra" or "softmax".
function M.attention_layers(model)
  local names = {}
  for _, l in ipairs(model:layers()) do
    if l.extra == "attention" then names[#names + 1] = l.name end
  end
  if #names > 0 then return names, "extra" end
  for _, l in ipairs(model:layers()) do
    if l.type == "Softmax" then names[#names + 1] = l.name end
  end
  return names, "softmax"
end

-- The attention weights of a trace as (N, heads, T, T) tensors, one per name (captured in tr), in order;
-- `found` tells how the names came (M.attention_layers' "extra" or "softmax", nil: named by the caller).
-- A captured (N * heads, T, S) is split batch-major into (N, heads, T, S). Softmax layers found by
-- discovery that are not self-attention over the model's tokens (2-D, T ~= S, a batch that N does not
-- divide) are skipped; named ones are errors. Every attention must have the same T, and for a 3-D
-- softmax some layer of the pass must carry T tokens per sample ((N, T, D)): windowed attention (Swin:
-- (N * windows * heads, w * w, w * w)) is not attention over the model's tokens. Returns the tensors, the
-- names kept and the captured tensors they come from (to differentiate with respect to); none is an error
-- saying what to pass.
function M.attentions(tr, names, found, N, method)
  local kept, maps, captured = {}, {}, {}
  local tokens = {} -- T -> true for layers shaped (N, T, D)
  for _, l in ipairs(tr.layers) do
    local s = l.shape
    if s and #s == 3 and s[1] == N then tokens[s[2]] = true end
  end
  local why = {}
  for _, name in ipairs(names) do
    local A = tr.captured[name]
    local s = lumen.is_tensor(A) and A.shape or {}
    if #s == 4 and s[1] == N and s[3] == s[4] then
      maps[#maps + 1], kept[#kept + 1], captured[#captured + 1] = A, name, A
    elseif #s == 3 and s[2] == s[3] and s[1] % N == 0 and tokens[s[2]] then
      maps[#maps + 1], kept[#kept + 1], captured[#captured + 1] = A:reshape { N, s[1] // N, s[2], s[3] }, name, A
    elseif (#s == 3 or #s == 4) and s[#s - 1] == s[#s] and s[1] % N == 0 then
      why[#why + 1] = ("layer '%s' is %s, but no layer of the model carries %d tokens per sample (windowed "
        .. "attention, as Swin's, is not attention over the model's tokens)"):format(name, lumen.shape_str(A), s[#s])
    elseif found ~= "softmax" or #s >= 3 then
      why[#why + 1] = ("layer '%s' is %s; self-attention weights are (N, heads, T, T) or (N * heads, T, T) for a "
        .. "batch of %d"):format(name, lumen.is_tensor(A) and lumen.shape_str(A) or "not a tensor", N)
    end
    if found == nil and #why > 0 then error(("%s: attention %s"):format(method, why[1]), 4) end
  end
  if #maps == 0 then
    error(("%s: no attention weights found%s; pass attention = {names}"):format(method, #why > 0
      and (": " .. why[1]) or ": the model has no MultiheadAttention layer and no Softmax over (batch x heads, "
      .. "tokens, tokens)"), 4)
  end
  for i = 2, #maps do
    if maps[i]:size(3) ~= maps[1]:size(3) then
      error(("%s: attention layers '%s' and '%s' cover %d and %d tokens; rollout needs the same tokens at every "
        .. "layer"):format(method, kept[1], kept[i], maps[1]:size(3), maps[i]:size(3)), 4)
    end
  end
  return maps, kept, captured
end

return M
