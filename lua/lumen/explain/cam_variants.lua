-- Gradient CAMs that weigh a layer's activations A (N, K, h, w) position by position, each from one forward
-- and one backward like Grad-CAM (lumen.explain.gradcam), with g = dS_c/dA the gradient of the target score:
-- HiResCAM (Draelos & Carin 2020, "Use HiResCAM instead of Grad-CAM for faithful explanations of
--   convolutional neural networks"): map = ReLU(sum_k g^k * A^k), the elementwise product summed over the
--   channels. Grad-CAM averages g over the positions first; the two agree when g is the same at every
--   position (the last layer of a network ending in global average pooling and one dense layer).
-- LayerCAM (Jiang, Zhang, Hou, Cheng & Wei 2021, "LayerCAM: Exploring Hierarchical Class Activation Maps
--   for Localization"): map = ReLU(sum_k ReLU(g^k) * A^k), the positive gradients position by position, so
--   shallow layers give usable maps too.
-- XGrad-CAM (Fu, Hu, Dong, Guo, Gao & Li 2020, "Axiom-based Grad-CAM: Towards Accurate Visualization and
--   Explanation of CNNs"): w_k = sum_ij (A^k_ij / sum_ab A^k_ab) g^k_ij (0 for a channel that sums to 0),
--   map = ReLU(sum_k w_k A^k).
-- These are pytorch-grad-cam's HiResCAM, LayerCAM and XGradCAM (which adds 1e-7 to XGrad-CAM's denominator
-- instead of giving a zero-sum channel no weight).
-- opts: target = each sample's top class; layer = the last (N, C, h, w) output with h, w > 1; reshape =
--       {h, w} for token layers and layout = 'nchw' | 'nhwc' | 'tokens' as for gradcam; raw = false (true:
--       the first return is the raw map (N, 1, h, w)); probabilities = false.
-- Returns the map (upsampled to the input and normalised to [0, 1] per sample, or raw), the targets (a Lua
-- array), the layer name, the raw map and the upsampled map; xgradcam also its weights (N, K).
local lumen = require "lumen"
local common = require "lumen.explain.common"

local M = {}

local OPTIONS = {}
for _, method in ipairs { "hirescam", "layercam", "xgradcam" } do
  OPTIONS[method] = common.cam_options(method, { raw = { false, "boolean" } })
end

local function pass(model, x, opts, method)
  local o = OPTIONS[method](opts, model)
  local A, g, targets, layer = common.cam_pass(model, x, o, method, true)
  return o, A, g, targets, layer
end

function M.hirescam(model, x, opts)
  local o, A, g, targets, layer = pass(model, x, opts, "hirescam")
  return common.cam_result((g * A):sum(2, true):relu(), x, o, targets, layer)
end

function M.layercam(model, x, opts)
  local o, A, g, targets, layer = pass(model, x, opts, "layercam")
  return common.cam_result((g:relu() * A):sum(2, true):relu(), x, o, targets, layer)
end

function M.xgradcam(model, x, opts)
  local o, A, g, targets, layer = pass(model, x, opts, "xgradcam")
  local space = #A.shape == 4 and { 3, 4 } or { 3 }
  local total = A:sum(space, true)
  local nz = total:ne(0)
  local w = ((g * A):sum(space, true) / lumen.where(nz, total, 1)) * nz -- (N, K, 1, 1)
  return common.cam_result((w * A):sum(2, true):relu(), x, o, targets, layer, w:flatten(2))
end

return M
