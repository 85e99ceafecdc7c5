-- Grad-CAM (Selvaraju et al. 2017, "Grad-CAM: Visual Explanations from Deep Networks via
-- Gradient-based Localization"), Grad-CAM++ (Chattopadhyay et al. 2018) and Guided Grad-CAM.
-- Grad-CAM: weights w_k = mean over positions of g = dS_c/dA^k at a layer A (N, K, h, w) (or (N, K, L)
-- for 1-D convolutions), map = ReLU(sum_k w_k A^k).
-- Grad-CAM++: w_k = sum_ij alpha_ij relu(g_ij) with alpha_ij = g_ij^2 / (2 g_ij^2 + sum_ab A_ab g_ij^3)
-- (alpha = 0 where the denominator is 0), the closed form for exponential scores of the paper.
-- Guided Grad-CAM: guided backprop (lumen.explain.guided_backprop) times the upsampled Grad-CAM map,
-- shaped like x.
-- One forward (a trace, which also tells the layers' shapes) and one backward per call.
-- opts: target = each sample's top class; layer = the last (N, C, h, w) output with h, w > 1 (an error
--       naming the layer and reshape = / layout = to pass when tokens or channels-last maps come after it
--       or there is none); reshape = {h, w}: a token layer (N, tokens, C) read as a patch grid h x w (the
--       leading class, distillation or register tokens dropped; without it T = g^2 or 1 + g^2 tokens
--       give a g x g grid); layout = 'nchw' | 'nhwc' | 'tokens' (default: from the shape, see
--       lumen.explain.common.cam_form); raw = false (true: the first return is the map at the layer's
--       resolution after ReLU, unnormalised, (N, 1, h, w)); otherwise the map bilinearly upsampled to the
--       input's spatial size and min-max normalised per sample to [0, 1]; probabilities = false
--       (guided_gradcam takes no raw).
-- Returns the map, the targets (a Lua array, one per sample), the layer name, then both forms: the raw
-- map and the upsampled map (guided_gradcam: Grad-CAM's raw and upsampled maps).
local lumen = require "lumen"
local common = require "lumen.explain.common"

local M = {}

local OPTIONS = {}
for _, method in ipairs { "gradcam", "gradcam_plus_plus" } do
  OPTIONS[method] = common.cam_options(method, { raw = { false, "boolean" } })
end
local GUIDED = common.cam_options("guided_gradcam")

-- ReLU(sum_k w_k A^k): the raw map (N, 1, ...), and the method's returns.
local function finish(w, A, x, o, targets, layer)
  return common.cam_result((w * A):sum(2, true):relu(), x, o, targets, layer)
end

-- The spatial dims of maps A: {3, 4} for (N, K, h, w), {3} for (N, K, L).
local function space(A) return #A.shape == 4 and { 3, 4 } or { 3 } end

function M.gradcam(model, x, opts)
  local o = OPTIONS.gradcam(opts, model)
  local A, g, targets, layer = common.cam_pass(model, x, o, "gradcam", true)
  return finish(g:mean(space(A), true), A, x, o, targets, layer)
end

function M.gradcam_plus_plus(model, x, opts)
  local o = OPTIONS.gradcam_plus_plus(opts, model)
  local A, g, targets, layer = common.cam_pass(model, x, o, "gradcam_plus_plus", true)
  local g2 = g * g
  local denom = g2 * 2 + A:sum(space(A), true) * g2 * g
  local alpha = lumen.where(denom:ne(0), g2 / lumen.where(denom:ne(0), denom, 1), 0)
  return finish((alpha * g:relu()):sum(space(A), true), A, x, o, targets, layer)
end

function M.guided_gradcam(model, x, opts)
  local o = GUIDED(opts, model)
  local _, targets, layer, raw, up = M.gradcam(model, x, o)
  local guided = require("lumen.explain.guided").guided_backprop(model, x, { target = targets,
                                                                             probabilities = o.probabilities })
  return guided * up, targets, layer, raw, up
end

return M
