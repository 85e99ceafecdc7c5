-- Explanations for text models whose first layer is an embedding (e.g. Embedding -> Conv1d -> ReLU ->
-- GlobalMaxPool1d -> Linear): token ids (1, L), int64 and 1-based, in; one score per token, (1, L), out.
--
-- text_saliency: the gradient g of the class score with respect to the embedding output E (1, L, D),
--   reduced per token by its L2 norm (reduce = "l2", Simonyan-style) or by gradient x input
--   (reduce = "grad_x_input": sum_D g * E, signed).
-- text_integrated_gradients: Integrated Gradients (Sundararajan et al. 2017) in embedding space, from
--   the embedding of an all-padding sequence (pad_id = 1, lumen's vocabulary convention) to E, trapezoid
--   rule with steps = 50, batch_size = 10 path points per forward, summed over D per token. Also returns
--   the completeness gap sum(attr) - (S_c(ids) - S_c(padding)).
-- text_gradcam: Grad-CAM (Selvaraju et al. 2017) over the 1-D feature maps of a convolution
--   (layer = the last Conv1d), linearly stretched to the L tokens, not normalised.
-- text_occlusion: the drop S_c(ids) - S_c(ids with a window of `window` = 1 tokens replaced by pad_id),
--   averaged over the windows covering each token.
-- opts (all): target = top class; embedding = the first Embedding layer; probabilities = false.
-- Returns the per-token map (1, L) and the target, then text_gradcam the layer and text_occlusion the
-- unoccluded score; text_integrated_gradients returns attr, gap, target like integrated_gradients.
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

-- The embedding output E (B, L, D) of ids (B, L), off the tape.
local function embedded(model, name, ids, opts)
  local _, acts = lumen.no_grad(common.capture, model, ids, { name }, opts)
  return acts[name]
end

-- Runs the model on ids (1, L) with the embedding layer's output replaced by E (B, L, D), marked as
-- requiring grad so that gradients reach E and every layer after it even when the weights are frozen
-- (GloVe). Returns the scores (B, classes), the captured activations of `names` and E.
local function run_from(model, name, ids, E, opts, names)
  E = common.on_tape(E)
  local layer = model:layer(name)
  local own = rawget(layer, "forward")
  rawset(layer, "forward", function() return E end)
  local ok, scores, acts = pcall(common.capture, model, common.repeat_batch(ids, E.shape[1]), names or {}, opts)
  rawset(layer, "forward", own)
  if not ok then error(scores, 0) end
  return scores, acts, E
end

function M.text_saliency(model, ids, opts)
  opts = opts or {}
  check_ids(ids)
  local name = embedding_layer(model, opts)
  local scores, _, E = run_from(model, name, ids, embedded(model, name, ids, opts), opts)
  local targets = common.targets(scores, opts.target)
  local g = lumen.grad(common.target_score(scores, targets), E) -- (1, L, D)
  local reduce = opts.reduce or "l2"
  if reduce == "l2" then return (g * g):sum(3):sqrt(), targets[1] end
  if reduce == "grad_x_input" then return (g * E:detach()):sum(3), targets[1] end
  error("text_saliency: reduce must be 'l2' or 'grad_x_input', got " .. tostring(reduce), 2)
end

function M.text_integrated_gradients(model, ids, opts)
  opts = opts or {}
  check_ids(ids)
  local name = embedding_layer(model, opts)
  local steps = opts.steps or 50
  local pad = lumen.full_like(ids, opts.pad_id or 1)
  local scores, acts = lumen.no_grad(common.capture, model, lumen.cat({ ids, pad }, 1), { name }, opts)
  local target = common.targets(scores:narrow(1, 1, 1), opts.target)[1]
  local Ex, Eb = acts[name]:narrow(1, 1, 1), acts[name]:narrow(1, 2, 1) -- (1, L, D)
  local diff = Ex - Eb
  local total = lumen.zeros_like(diff)
  common.batches(steps + 1, opts.batch_size or 10, function(first, count)
    local a, w = common.trapezoid(first, count, steps)
    local s, _, path = run_from(model, name, ids, Eb + lumen.tensor(a):reshape { count, 1, 1 } * diff, opts)
    local g = lumen.grad(s:narrow(2, target, 1):sum(), path)
    total = total + (g * lumen.tensor(w):reshape { count, 1, 1 }):sum(1, true)
  end, "text integrated gradients")
  local attr = (diff * total):sum(3) -- (1, L)
  local gap = attr:sum_all() - (scores:get { 1, target } - scores:get { 2, target })
  return attr, gap, target
end

function M.text_gradcam(model, ids, opts)
  opts = opts or {}
  check_ids(ids)
  local name = embedding_layer(model, opts)
  local E = embedded(model, name, ids, opts)
  local layer = opts.layer
  if not layer then
    for _, l in ipairs(model:layers()) do
      if l.type == "Conv1d" and l.shape and #l.shape == 3 then layer = l.name end
    end
    if not layer then error("text_gradcam: no 1-D convolution found; pass opts.layer", 2) end
  end
  local scores, acts = run_from(model, name, ids, E, opts, { layer })
  local A = acts[layer]
  local targets = common.targets(scores, opts.target)
  local dA = lumen.grad(common.target_score(scores, targets), A)
  local time_dim = model:layer(layer).channels_last and 2 or 3 -- (1, K, L') or (1, L', K)
  local cam = (dA:mean(time_dim, true) * A:detach()):sum(5 - time_dim, true):relu()
  local L = ids.shape[2]
  cam = lumen.upsample_bilinear(cam:reshape { 1, 1, 1, -1 }, { 1, L }):reshape { 1, L }
  return cam, targets[1], layer
end

function M.text_occlusion(model, ids, opts)
  opts = opts or {}
  check_ids(ids)
  return require("lumen.explain.occlusion")(model, ids, {
    target = opts.target, patch = opts.window or 1, stride = 1, fill = opts.pad_id or 1,
    batch_size = opts.batch_size, probabilities = opts.probabilities })
end

return M
