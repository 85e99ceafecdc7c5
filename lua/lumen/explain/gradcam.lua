-- Grad-CAM (Selvaraju et al. 2017, "Grad-CAM: Visual Explanations from Deep Networks via
-- Gradient-based Localization"), Grad-CAM++ (Chattopadhyay et al. 2018) and Guided Grad-CAM.
-- Grad-CAM: weights w_k = mean over positions of g = dS_c/dA^k at a layer A (N, K, h, w) (or (N, K, L)
-- for 1-D convolutions), map = ReLU(sum_k w_k A^k).
-- Grad-CAM++: w_k = sum_ij alpha_ij relu(g_ij) with alpha_ij = g_ij^2 / (2 g_ij^2 + sum_ab A_ab g_ij^3)
-- (alpha = 0 where the denominator is 0), the closed form for exponential scores of the paper.
-- Guided Grad-CAM: guided backprop (lumen.explain.guided_backprop) times the upsampled Grad-CAM map,
-- shaped like x.
-- opts: target = each sample's top class; layer = the last layer with a spatial output; raw = false
--       (true: the map at the layer's resolution after ReLU, unnormalised, (N, 1, h, w)); otherwise the
--       map is bilinearly upsampled to the input's spatial size and min-max normalised per sample to
--       [0, 1]; probabilities = false.
-- Returns the map, the targets (a Lua array, one per sample) and the layer name.
local lumen = require "lumen"
local common = require "lumen.explain.common"

local M = {}

-- A (N, K, ...) at the layer, g = d target score / dA, targets, layer name, the spatial dims.
local function layer_grads(model, x, opts)
  local layer = opts.layer or common.last_spatial_layer(model, x)
  local scores, acts = common.capture(model, common.on_tape(x), { layer }, opts)
  local A = acts[layer]
  local nd = A and #A.shape
  if nd ~= 4 and nd ~= 3 then
    error(("gradcam: layer '%s' has output %s; need (N, K, h, w) or (N, K, L)"):format(layer,
      A and lumen.shape_str(A) or "nil"), 3)
  end
  local targets = common.targets(scores, opts.target)
  local g = lumen.grad(common.target_score(scores, targets), A)
  return A:detach(), g, targets, layer, nd == 4 and { 3, 4 } or { 3 }
end

local function finish(w, A, x, opts, targets, layer)
  local cam = (w * A):sum(2, true):relu()
  if opts.raw then return cam, targets, layer end
  return common.upsample_normalize(cam, x), targets, layer
end

function M.gradcam(model, x, opts)
  opts = opts or {}
  local A, g, targets, layer, space = layer_grads(model, x, opts)
  return finish(g:mean(space, true), A, x, opts, targets, layer)
end

function M.gradcam_plus_plus(model, x, opts)
  opts = opts or {}
  local A, g, targets, layer, space = layer_grads(model, x, opts)
  local g2 = g * g
  local denom = g2 * 2 + A:sum(space, true) * g2 * g
  local alpha = lumen.where(denom:ne(0), g2 / lumen.where(denom:ne(0), denom, 1), 0)
  return finish((alpha * g:relu()):sum(space, true), A, x, opts, targets, layer)
end

function M.guided_gradcam(model, x, opts)
  opts = opts or {}
  local cam, targets, layer = M.gradcam(model, x, { target = opts.target, layer = opts.layer,
                                                    probabilities = opts.probabilities })
  local guided = require("lumen.explain.guided").guided_backprop(model, x, { target = targets,
                                                                             probabilities = opts.probabilities })
  return guided * cam, targets, layer
end

return M
