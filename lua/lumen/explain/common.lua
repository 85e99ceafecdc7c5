-- lumen.explain.common: what the methods share — calling a lumen model or a plain function, choosing
-- and checking targets, differentiating target scores, running work in batches, and the layer choice
-- and picture form of CAM-style maps.
local lumen = require "lumen"

local M = {}

-- Scores (N, classes) for a batch. A lumen model explains the score before a final softmax unless
-- opts.probabilities is set (DESIGN.md: "Scores"). A plain function is called as it is.
function M.scores(model, x, opts)
  opts = opts or {}
  if type(model) == "function" then return model(x) end
  return model:forward(x, { logits = not opts.probabilities })
end

-- Forward with captured activations: returns scores, captured table (name -> tensor).
function M.capture(model, x, names, opts)
  if type(model) == "function" then
    error("this method needs a lumen model (it reads inner layers), not a plain function", 3)
  end
  opts = opts or {}
  return model:forward(x, { capture = names, logits = not opts.probabilities, stop_at = opts.stop_at })
end

-- Targets for each row of scores (N, K): a Lua array of 1-based class ids. `target` is nil (each
-- row's top class), one class id for all rows, or an array with one id per row.
function M.targets(scores, target)
  local shape = scores.shape
  if #shape ~= 2 then
    error(("expected scores of shape (N, classes), got %s"):format(lumen.shape_str(scores)), 3)
  end
  local n, k = shape[1], shape[2]
  local t = {}
  if target == nil then
    local idx = lumen.argmax(scores, 2)
    for i = 1, n do t[i] = idx:get { i } end
  elseif type(target) == "number" then
    for i = 1, n do t[i] = target end
  elseif type(target) == "table" then
    for i = 1, n do t[i] = target[i] or error(("target table has no entry for sample %d"):format(i), 3) end
  else
    error("target must be a 1-based class id, a table of them, or nil", 3)
  end
  for i = 1, n do
    if math.type(t[i]) ~= "integer" or t[i] < 1 or t[i] > k then
      error(("target %s out of range [1, %d]"):format(tostring(t[i]), k), 3)
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
function M.input_gradient(model, x, target, opts)
  local xg = M.on_tape(x)
  local scores = M.scores(model, xg, opts)
  local targets = M.targets(scores, target)
  local g = lumen.grad(M.target_score(scores, targets), xg)
  return g, scores, targets
end

-- Raises "<method>: explain one input at a time ..." unless x is a batch of one.
function M.single(x, method)
  if x.shape[1] ~= 1 then
    error(("%s: explain one input at a time (a batch of 1), got %s"):format(method, lumen.shape_str(x)), 3)
  end
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

-- The last layer whose output is spatial: 4-D (N, C, h, w) with h*w > 1, or 3-D (N, C, L) with L > 1.
-- Reads the shapes of the model's last forward (runs one on x when there is none).
function M.last_spatial_layer(model, x)
  if type(model) == "function" then error("this method needs a lumen model, not a plain function", 3) end
  local layers = model:layers()
  if #layers == 0 or layers[#layers].shape == nil then
    lumen.no_grad(function() model:forward(x) end)
    layers = model:layers()
  end
  for i = #layers, 1, -1 do
    local s = layers[i].shape
    if s and ((#s == 4 and s[3] * s[4] > 1) or (#s == 3 and s[3] > 1 and s[2] > 1)) then return layers[i].name end
  end
  error("no layer with a spatial output (N, C, h, w) found; pass opts.layer", 3)
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
  return lumen.core.image_normalize01(cam, true, false) -- each sample to [0, 1]
end

return M
