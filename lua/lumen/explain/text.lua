-- Explanations for text models whose first layer is an embedding (the seed's text CNN):
-- token ids (1, L), 1-based, in; one score per token out.
--
-- text_saliency: gradient of the class score with respect to the embedding output E (1, L, D),
--   reduced per token by its L2 norm (reduce = "l2", Simonyan-style) or by gradient x input
--   (reduce = "grad_x_input": sum_D g * E, signed).
-- text_integrated_gradients: Integrated Gradients in embedding space from the embedding of a
--   padding sequence (pad_id = 1, lumen's vocabulary convention) to E, trapezoid rule with `steps` = 50,
--   summed over D per token; returns the per-token attribution and the completeness gap.
-- text_gradcam: Grad-CAM over the 1-D feature maps of a convolution (default: the last layer with a
--   sequence output), linearly stretched to the L tokens.
-- text_occlusion: the drop in the score when a window of `window` = 1 tokens is replaced by pad_id.
-- opts (all): target = top class; layer = the embedding layer (default: the first Embedding).
local lumen = require "lumen"
local common = require "lumen.explain.common"

local M = {}

local function embedding_layer(model, opts)
  if type(model) == "function" then error("text methods need a lumen model with an Embedding layer", 3) end
  if opts.embedding then return opts.embedding end
  for _, l in ipairs(model:layers()) do
    if l.type == "Embedding" then return l.name end
  end
  error("text methods: the model has no Embedding layer (pass opts.embedding)", 3)
end

local function check_ids(ids)
  if #ids.shape ~= 2 or ids.shape[1] ~= 1 then
    error(("text methods: expected token ids of shape (1, L), got %s"):format(lumen.shape_str(ids)), 3)
  end
end

function M.text_saliency(model, ids, opts)
  opts = opts or {}
  check_ids(ids)
  local name = embedding_layer(model, opts)
  local scores, acts = common.capture(model, ids, { name }, opts)
  local E = acts[name] -- (1, L, D)
  local targets = common.targets(scores, opts.target)
  local g = lumen.grad(common.target_score(scores, targets), E)
  local per_token
  if (opts.reduce or "l2") == "l2" then
    per_token = (g * g):sum(3):sqrt()
  elseif opts.reduce == "grad_x_input" then
    per_token = (g * E:detach()):sum(3)
  else
    error("text_saliency: reduce must be 'l2' or 'grad_x_input'", 2)
  end
  return per_token, targets[1]
end

-- Runs the model with the embedding layer's output replaced by E (B, L, D).
local function forward_with_embedding(model, name, ids, E, opts)
  local layer = model:layer(name)
  local B = E.shape[1]
  rawset(layer, "forward", function() return E end)
  local ok, res = pcall(common.scores, model, common.repeat_batch(ids, B), opts)
  rawset(layer, "forward", nil)
  if not ok then error(res, 0) end
  return res
end

function M.text_integrated_gradients(model, ids, opts)
  opts = opts or {}
  check_ids(ids)
  local name = embedding_layer(model, opts)
  local steps = opts.steps or 50
  local pad = lumen.full_like(ids, opts.pad_id or 1)
  local both = lumen.cat({ ids, pad }, 1)
  local scores, acts = lumen.no_grad(common.capture, model, both, { name }, opts)
  local target = common.targets(scores:narrow(1, 1, 1), opts.target)[1]
  local Ex, Eb = acts[name]:narrow(1, 1, 1), acts[name]:narrow(1, 2, 1)
  local diff = Ex - Eb
  local total
  common.batches(steps + 1, opts.batch_size or 10, function(first, count)
    local a, w = {}, {}
    for j = 1, count do
      local k = first + j - 2
      a[j] = k / steps
      w[j] = (k == 0 or k == steps) and 0.5 / steps or 1 / steps
    end
    local path = Eb + lumen.tensor(a):reshape { count, 1, 1 } * diff
    path.requires_grad = true
    local s = forward_with_embedding(model, name, ids, path, opts)
    local g = lumen.grad(s:narrow(2, target, 1):sum(), path)
    local part = (g * lumen.tensor(w):reshape { count, 1, 1 }):sum(1, true)
    total = total and total + part or part
  end, "text integrated gradients")
  local attr = (diff * total):sum(3) -- (1, L)
  local gap = attr:sum_all() - (scores:get { 1, target } - scores:get { 2, target })
  return attr, gap, target
end

function M.text_gradcam(model, ids, opts)
  opts = opts or {}
  check_ids(ids)
  local layer = opts.layer
  if not layer then
    lumen.no_grad(function() model:forward(ids) end)
    for _, l in ipairs(model:layers()) do
      local s = l.shape
      if (l.type == "Conv1d" or l.type == "Conv") and s and #s == 3 then layer = l.name end
    end
    if not layer then error("text_gradcam: no 1-D convolution found; pass opts.layer", 2) end
  end
  local scores, acts = common.capture(model, ids, { layer }, opts)
  local A = acts[layer]
  local targets = common.targets(scores, opts.target)
  local dA = lumen.grad(common.target_score(scores, targets), A)
  local m = model:layer(layer)
  local time_dim = (m and m._config and m._config.channels_last) and 2 or 3
  local chan_dim = 5 - time_dim
  local cam = (dA:mean(time_dim, true) * A:detach()):sum(chan_dim, true):relu() -- (1, L', 1) or (1, 1, L')
  cam = cam:reshape { 1, 1, 1, -1 }
  local L = ids.shape[2]
  cam = lumen.upsample_bilinear(cam, { 1, L }, false):reshape { 1, L }
  return cam, targets[1], layer
end

function M.text_occlusion(model, ids, opts)
  opts = opts or {}
  check_ids(ids)
  local w = opts.window or 1
  local map, target, base = require("lumen.explain.occlusion")(model, ids, {
    target = opts.target, patch = w, stride = 1, fill = opts.pad_id or 1, batch_size = opts.batch_size,
    probabilities = opts.probabilities })
  return map, target, base
end

return M
