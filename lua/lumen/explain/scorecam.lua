-- Score-CAM (Wang, Wang, Du, Yang, Zhang, Ding, Mardziel & Hu 2020, "Score-CAM: Score-Weighted Visual
-- Explanations for Convolutional Neural Networks"), gradient-free. Each channel k of a layer's activations
-- A (N, K, h, w) is upsampled to the input (bilinear with aligned corners, as pytorch-grad-cam's
-- UpsamplingBilinear2d) and min-max normalised to a mask H^k in [0, 1] (zeros for a constant channel); the
-- model scores the masked inputs x * H^k, S_k = the target score (before softmax); the weights are the
-- softmax of those scores over the channels, alpha = softmax_k(S_k) (weights = "softmax": the paper's
-- Algorithm 1, and pytorch-grad-cam; the paper's baseline score f(x_b) is the same for every channel and
-- cancels in the softmax), and the map is ReLU(sum_k alpha_k A^k). weights = "probability" takes instead
-- each masked input's softmax probability of the target class, alpha_k = softmax(f(x * H^k))_c, as the
-- authors' released code does.
-- K forwards of the whole model per sample (the input is masked, so no layer can be skipped), in batches,
-- with a progress bar when there are many.
-- Inputs: images (N, C, H, W) or sequences (N, C, L) (then the layer gives (N, K, L) maps).
-- opts: target = each sample's top class; layer = the last (N, C, h, w) output with h, w > 1; reshape =
--       {h, w} for token layers and layout = 'nchw' | 'nhwc' | 'tokens' as for gradcam; batch_size = 32
--       masked inputs per forward; weights = "softmax" | "probability"; raw = false (true: the first
--       return is the raw map (N, 1, h, w)); probabilities = false (true: S_k are probabilities).
-- Returns the map (upsampled to the input and normalised to [0, 1] per sample, or raw), the targets (a Lua
-- array), the layer name, the raw map, the upsampled map, then the weights alpha (N, K) and the masked
-- scores S (N, K).
local lumen = require "lumen"
local common = require "lumen.explain.common"

local M = {}

local OPTIONS = common.cam_options("scorecam", {
  batch_size = { 32, "integer >= 1" }, weights = { "softmax", "'softmax' | 'probability'" },
  raw = { false, "boolean" },
})

-- The masks of channels first .. first+count-1 of maps a (1, K, ...) at the input size: (count, 1, ...).
local function masks(a, first, count, xs)
  local m = a:narrow(2, first, count)
  if #xs == 4 then
    m = m:reshape { count, 1, a.shape[3], a.shape[4] }
    return lumen.upsample_bilinear(m, { xs[3], xs[4] }, { align_corners = true }):normalize01 { per_sample = true }
  end
  m = m:reshape { count, 1, 1, a.shape[3] }
  return lumen.upsample_bilinear(m, { 1, xs[3] }, { align_corners = true }):normalize01 { per_sample = true }
    :reshape { count, 1, xs[3] }
end

function M.scorecam(model, x, opts)
  local o = OPTIONS(opts, model)
  if lumen.is_tensor(x) and not ((#x.shape == 4 or #x.shape == 3) and x:dtype() == "float32") then
    error(("scorecam: needs images (N, C, H, W) or sequences (N, C, L) to mask, got %s %s"):format(x:dtype(),
      lumen.shape_str(x)), 2)
  end
  local A, _, targets, layer = common.cam_pass(model, x, o, "scorecam", false)
  local N, K = A.shape[1], A.shape[2]
  local scores = lumen.zeros { N, K }
  local score_opts = { probabilities = o.probabilities or o.weights == "probability" }
  for i = 1, N do
    local a, xi, c = A:narrow(1, i, 1), x:narrow(1, i, 1):detach(), targets[i]
    common.batches(K, o.batch_size, function(first, count)
      local s = lumen.no_grad(common.scores, model, xi * masks(a, first, count, x.shape), score_opts)
      for j = 1, count do scores:set({ i, first + j - 1 }, s:get { j, c }) end
    end, "scorecam")
  end
  local alpha = o.weights == "softmax" and lumen.softmax(scores, 2) or scores
  local raw = (A * alpha:reshape { N, K, table.unpack({ 1, 1 }, 1, #A.shape - 2) }):sum(2, true):relu()
  return common.cam_result(raw, x, o, targets, layer, alpha, scores)
end

return M
