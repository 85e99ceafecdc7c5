-- Explanations for text models that start with an embedding (a text CNN: Embedding -> Conv1d -> ReLU ->
-- GlobalMaxPool1d -> Linear; a transformer; an LSTM / GRU classifier; lumen-built or ONNX imports, whose
-- embedding Gather is an Embedding layer): token ids (1, L), int64 and 1-based, in; one score per token,
-- (1, L), out. Gradients reach the embedding output E by tracing the model with E standing in for the
-- embedding layer's output (model:trace{replace = {[embedding] = E}}): the model is never changed, and
-- layers that read the ids themselves (a transformer's padding mask) keep reading them.
--
-- text_saliency: the gradient g of the class score with respect to the embedding output E (1, L, D),
--   reduced per token by its L2 norm (reduce = "l2", Simonyan-style) or by gradient x input
--   (reduce = "grad_x_input": sum_D g * E, signed).
-- text_integrated_gradients: Integrated Gradients (Sundararajan et al. 2017) in embedding space, from
--   the embedding of an all-padding sequence (pad_id = 1, lumen's vocabulary convention) to E, trapezoid
--   rule with steps = 50, batch_size = 10 path points per forward, summed over D per token. Also returns
--   the completeness gap sum(attr) - (S_c(E) - S_c(E_padding)), the scores at the path's two ends (those
--   of the ids and of an all-padding sequence, unless a layer after the embedding reads the ids).
-- text_gradcam: Grad-CAM (Selvaraju et al. 2017) over the 1-D feature maps of a convolution
--   (layer = the last Conv1d; a layer whose output is not (1, K, L') or channels-last (1, L', K) is an
--   error), linearly stretched to the L tokens, not normalised.
-- text_occlusion: the drop S_c(ids) - S_c(ids with a window of tokens replaced by pad_id), averaged over
--   the windows covering each token; window = 1 token; batch_size = 32 copies per forward.
-- opts (all): target = top class; probabilities = false; embedding = the first Embedding layer (all but
--   text_occlusion).
-- Returns the per-token map (1, L) and the target, then text_gradcam the layer, the raw map at the
-- layer's resolution (1, L') and the stretched map (the first return again), and text_occlusion the
-- unoccluded score; text_integrated_gradients returns attr, gap, target like integrated_gradients.
local lumen = require "lumen"
local common = require "lumen.explain.common"

local M = {}

local function declare(method, extra)
  local d = { target = { nil, "target" }, probabilities = { false, "boolean" }, embedding = { nil, "layer" } }
  for k, v in pairs(extra) do d[k] = v end
  return common.options(method, d)
end
local OPTIONS = {
  text_saliency = declare("text_saliency", { reduce = { "l2", "'l2' | 'grad_x_input'" } }),
  text_integrated_gradients = declare("text_integrated_gradients", {
    steps = { 50, "integer >= 1" }, batch_size = { 10, "integer >= 1" }, pad_id = { 1, "integer >= 1" } }),
  text_gradcam = declare("text_gradcam", { layer = { nil, "layer" } }),
  text_occlusion = common.options("text_occlusion", {
    target = { nil, "target" }, probabilities = { false, "boolean" }, window = { 1, "integer >= 1" },
    pad_id = { 1, "integer >= 1" }, batch_size = { 32, "integer >= 1" } }),
}

local function check_ids(ids, method)
  if not lumen.is_tensor(ids) or #ids.shape ~= 2 or ids.shape[1] ~= 1 then
    error(("%s: expected token ids of shape (1, L), got %s"):format(method,
      lumen.is_tensor(ids) and lumen.shape_str(ids) or type(ids)), 3)
  end
end

local embedded, run_from = common.embedded, common.trace_from_embedding

function M.text_saliency(model, ids, opts)
  local o = OPTIONS.text_saliency(opts, model)
  check_ids(ids, "text_saliency")
  local name = common.embedding_layer(model, o.embedding, "text_saliency")
  local tr, E = run_from(model, name, ids, embedded(model, name, ids), o)
  local targets = common.targets(tr.output, o.target, "text_saliency")
  local g = lumen.grad(common.target_score(tr.output, targets), E) -- (1, L, D)
  if o.reduce == "l2" then return (g * g):sum(3):sqrt(), targets[1] end
  return (g * E:detach()):sum(3), targets[1]
end

function M.text_integrated_gradients(model, ids, opts)
  local o = OPTIONS.text_integrated_gradients(opts, model)
  check_ids(ids, "text_integrated_gradients")
  local name = common.embedding_layer(model, o.embedding, "text_integrated_gradients")
  local steps = o.steps
  local pad = lumen.full_like(ids, o.pad_id)
  local tr = lumen.no_grad(common.trace, model, lumen.cat({ ids, pad }, 1), { capture = { name } }, o)
  local target = common.targets(tr.output:narrow(1, 1, 1), o.target, "text_integrated_gradients")[1]
  local Ex, Eb = tr.captured[name]:narrow(1, 1, 1), tr.captured[name]:narrow(1, 2, 1) -- (1, L, D)
  local diff = Ex - Eb
  local total = lumen.zeros_like(diff)
  local ends = {} -- the target score at alpha = 0 and 1, as the path computes it
  common.batches(steps + 1, o.batch_size, function(first, count)
    local a, w = common.trapezoid(first, count, steps)
    local path_tr, path = run_from(model, name, ids, Eb + lumen.tensor(a):reshape { count, 1, 1 } * diff, o)
    local s = path_tr.output:narrow(2, target, 1)
    for j = 1, count do
      if a[j] == 0 or a[j] == 1 then ends[a[j]] = s:get { j, 1 } end
    end
    local g = lumen.grad(s:sum(), path)
    total = total + (g * lumen.tensor(w):reshape { count, 1, 1 }):sum(1, true)
  end, "text integrated gradients")
  local attr = (diff * total):sum(3) -- (1, L)
  local gap = attr:sum_all() - (ends[1] - ends[0])
  return attr, gap, target
end

function M.text_gradcam(model, ids, opts)
  local o = OPTIONS.text_gradcam(opts, model)
  check_ids(ids, "text_gradcam")
  local name = common.embedding_layer(model, o.embedding, "text_gradcam")
  local E = embedded(model, name, ids)
  local layer = o.layer
  local tr, cap
  if layer then
    tr = run_from(model, name, ids, E, o, { layer })
  else
    tr = run_from(model, name, ids, E, o, "all")
    for _, l in ipairs(tr.layers) do
      if l.type == "Conv1d" and l.shape and #l.shape == 3 then layer = l.name end
    end
    if not layer then error("text_gradcam: no 1-D convolution found; pass opts.layer", 2) end
  end
  cap = tr.captured[layer]
  local m = model:layer(layer)
  local time_dim = (type(m) == "table" and m.channels_last) and 2 or 3 -- (1, K, L') or (1, L', K)
  if not lumen.is_tensor(cap) or #cap.shape ~= 3 then
    error(("text_gradcam: layer '%s' has output %s; Grad-CAM needs 1-D feature maps (1, K, L) or channels-last"
      .. " (1, L, K), e.g. a Conv1d"):format(layer, lumen.is_tensor(cap) and lumen.shape_str(cap) or "nil"), 2)
  end
  local targets = common.targets(tr.output, o.target, "text_gradcam")
  local dA = lumen.grad(common.target_score(tr.output, targets), cap)
  local raw = (dA:mean(time_dim, true) * cap:detach()):sum(5 - time_dim, true):relu():reshape { 1, -1 } -- (1, L')
  local L = ids.shape[2]
  local cam = lumen.upsample_bilinear(raw:reshape { 1, 1, 1, -1 }, { 1, L }):reshape { 1, L }
  return cam, targets[1], layer, raw, cam
end

function M.text_occlusion(model, ids, opts)
  local o = OPTIONS.text_occlusion(opts, model)
  check_ids(ids, "text_occlusion")
  return require("lumen.explain.occlusion").occlusion(model, ids, {
    target = o.target, patch = o.window, stride = 1, fill = o.pad_id, batch_size = o.batch_size,
    probabilities = o.probabilities })
end

return M
