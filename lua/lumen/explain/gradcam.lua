-- Grad-CAM (Selvaraju et al. 2017, "Grad-CAM: Visual Explanations from Deep Networks via
-- Gradient-based Localization"), Grad-CAM++ (Chattopadhyay et al. 2018) and Guided Grad-CAM.
-- Grad-CAM: weights w_k = mean over positions of dS_c/dA^k at a layer A (N, K, h, w) (or (N, K, L) for
-- 1-D convolutions), map = ReLU(sum_k w_k A^k).
-- Grad-CAM++: w_k = sum_ij relu(g_ij) * g_ij^2 / (2 g_ij^2 + sum_ab A_ab g_ij^3), the closed form with
-- exponential scores used by the paper's reference code.
-- Guided Grad-CAM: guided backprop (lumen.explain.guided_backprop) times the upsampled Grad-CAM map.
-- opts: target = top class; layer = the last layer with a spatial output; raw = false (true: the
--       map at the layer's resolution after ReLU, unnormalised, (N, 1, h, w)); otherwise the map is
--       bilinearly upsampled to the input's spatial size and min-max normalised per sample to [0, 1].
-- Returns the map, the targets, and the layer name.
local lumen = require "lumen"
local common = require "lumen.explain.common"

local M = {}

local function layer_maps(model, x, opts)
  local layer = opts.layer or common.last_spatial_layer(model, x)
  local scores, acts = common.capture(model, x, { layer }, opts)
  local A = acts[layer]
  if not A then error(("gradcam: layer '%s' produced no activation"):format(layer), 3) end
  local nd = #A.shape
  if nd ~= 4 and nd ~= 3 then
    error(("gradcam: layer '%s' has output %s; need (N, K, h, w) or (N, K, L)"):format(layer, lumen.shape_str(A)), 3)
  end
  local targets = common.targets(scores, opts.target)
  local dA = lumen.grad(common.target_score(scores, targets), A)
  local space = nd == 4 and { 3, 4 } or { 3 }
  return A:detach(), dA, targets, layer, space
end

function M.gradcam(model, x, opts)
  opts = opts or {}
  local A, dA, targets, layer, space = layer_maps(model, x, opts)
  local w = dA:mean(space, true)
  local cam = (w * A):sum(2, true):relu()
  if opts.raw then return cam, targets, layer end
  return common.upsample_normalize(cam, x), targets, layer
end

function M.gradcam_plus_plus(model, x, opts)
  opts = opts or {}
  local A, g, targets, layer, space = layer_maps(model, x, opts)
  local g2 = g * g
  local g3 = g2 * g
  local sumA = A:sum(space, true)
  local denom = g2 * 2 + sumA * g3
  local alpha = g2 / lumen.where(denom:ne(0), denom, lumen.ones_like(denom))
  local w = (alpha * g:relu()):sum(space, true)
  local cam = (w * A):sum(2, true):relu()
  if opts.raw then return cam, targets, layer end
  return common.upsample_normalize(cam, x), targets, layer
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
