-- Grad-CAM (Selvaraju et al. 2017, "Grad-CAM: Visual Explanations from Deep Networks via
-- Gradient-based Localization"), Grad-CAM++ (Chattopadhyay et al. 2018) and Guided Grad-CAM.
-- Grad-CAM: weights w_k = mean over positions of g = dS_c/dA^k at a layer A (N, K, h, w) (or (N, K, L)
-- for 1-D convolutions), map = ReLU(sum_k w_k A^k).
-- Grad-CAM++: w_k = sum_ij alpha_ij relu(g_ij) with alpha_ij = g_ij^2 / (2 g_ij^2 + sum_ab A_ab g_ij^3)
-- (alpha = 0 where the denominator is 0), the closed form for exponential scores of the paper.
-- Guided Grad-CAM: guided backprop (lumen.explain.guided_backprop) times the upsampled Grad-CAM map,
-- shaped like x.
-- One forward (a trace, which also tells the layers' shapes) and one backward per call.
-- opts: target = each sample's top class; layer = the last layer with a spatial output; raw = false
--       (true: the first return is the map at the layer's resolution after ReLU, unnormalised,
--       (N, 1, h, w)); otherwise the map bilinearly upsampled to the input's spatial size and min-max
--       normalised per sample to [0, 1]; probabilities = false (guided_gradcam takes no raw).
-- Returns the map, the targets (a Lua array, one per sample), the layer name, then both forms: the raw
-- map and the upsampled map (guided_gradcam: Grad-CAM's raw and upsampled maps).
local lumen = require "lumen"
local common = require "lumen.explain.common"

local M = {}

local OPTIONS = {}
for _, method in ipairs { "gradcam", "gradcam_plus_plus" } do
  OPTIONS[method] = common.options(method, { target = { nil, "target" }, layer = { nil, "layer" },
                                             raw = { false, "boolean" }, probabilities = { false, "boolean" } })
end
local GUIDED = common.options("guided_gradcam", { target = { nil, "target" }, layer = { nil, "layer" },
                                                  probabilities = { false, "boolean" } })

-- A (N, K, ...) at the layer, g = d target score / dA, targets, layer name, the spatial dims.
local function layer_grads(model, x, o, method)
  local tr = common.trace(model, common.on_tape(x), { capture = o.layer and { o.layer } or "all" }, o, method)
  local layer = o.layer or common.last_spatial_layer(tr, method)
  local A = tr.captured[layer]
  local nd = lumen.is_tensor(A) and #A.shape
  if nd ~= 4 and nd ~= 3 then
    error(("%s: layer '%s' has output %s; need (N, K, h, w) or (N, K, L)"):format(method, layer,
      lumen.is_tensor(A) and lumen.shape_str(A) or "nil"), 3)
  end
  local targets = common.targets(tr.output, o.target, method)
  local g = lumen.grad(common.target_score(tr.output, targets), A)
  return A:detach(), g, targets, layer, nd == 4 and { 3, 4 } or { 3 }
end

local function finish(w, A, x, o, targets, layer)
  local raw = (w * A):sum(2, true):relu()
  local up = common.upsample_normalize(raw, x)
  return o.raw and raw or up, targets, layer, raw, up
end

function M.gradcam(model, x, opts)
  local o = OPTIONS.gradcam(opts, model)
  local A, g, targets, layer, space = layer_grads(model, x, o, "gradcam")
  return finish(g:mean(space, true), A, x, o, targets, layer)
end

function M.gradcam_plus_plus(model, x, opts)
  local o = OPTIONS.gradcam_plus_plus(opts, model)
  local A, g, targets, layer, space = layer_grads(model, x, o, "gradcam_plus_plus")
  local g2 = g * g
  local denom = g2 * 2 + A:sum(space, true) * g2 * g
  local alpha = lumen.where(denom:ne(0), g2 / lumen.where(denom:ne(0), denom, 1), 0)
  return finish((alpha * g:relu()):sum(space, true), A, x, o, targets, layer)
end

function M.guided_gradcam(model, x, opts)
  local o = GUIDED(opts, model)
  local _, targets, layer, raw, up = M.gradcam(model, x, o)
  local guided = require("lumen.explain.guided").guided_backprop(model, x, { target = targets,
                                                                             probabilities = o.probabilities })
  return guided * up, targets, layer, raw, up
end

return M
