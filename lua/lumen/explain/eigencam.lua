-- EigenCAM (Muhammad & Yeasin 2020, "Eigen-CAM: Class Activation Map using Principal Components"): a
-- layer's activations projected on their first principal component. For each sample the activations
-- A (K, h, w) are a matrix X of h*w positions by K channels, centred per channel (center = true, as
-- pytorch-grad-cam does; center = false projects X itself, as the paper writes it); with X = U S V^T its
-- singular value decomposition, the map is X v_1 = s_1 u_1, each position's score on the first component,
-- reshaped to (h, w) and ReLU'd. v_1 comes from the eigen-decomposition of X^T X or X X^T, whichever is
-- smaller (lumen.linalg.eigh, float64). An SVD leaves the sign of v_1 open (pytorch-grad-cam keeps what
-- LAPACK returns); lumen chooses sum(v_1) >= 0, so the map grows with the total activation sum_k A^k (for
-- center = false and non-negative activations v_1 >= 0 anyway).
-- Gradient-free and class-agnostic: one forward; target only chooses the targets returned.
-- opts: target = each sample's top class; layer = the last (N, C, h, w) output with h, w > 1; reshape =
--       {h, w} for token layers and layout = 'nchw' | 'nhwc' | 'tokens' as for gradcam; center = true;
--       raw = false (true: the first return is the raw map (N, 1, h, w)); probabilities = false.
-- Returns the map (upsampled to the input and normalised to [0, 1] per sample, or raw), the targets (a Lua
-- array), the layer name, the raw map, the upsampled map, then each sample's share of the variance (of the
-- sum of squares with center = false) that the first component explains, s_1^2 / sum_i s_i^2 (a Lua array).
local lumen = require "lumen"
local linalg = require "lumen.linalg"
local common = require "lumen.explain.common"

local M = {}

local OPTIONS = common.cam_options("eigencam", { center = { true, "boolean" }, raw = { false, "boolean" } })

-- The first right singular vector v (K) of X (P, K), with sum(v) >= 0, and s_1^2 / sum_i s_i^2.
local function first_component(X)
  local P, K = X.shape[1], X.shape[2]
  local small = K <= P
  local values, vectors = linalg.eigh((small and X:t():matmul(X) or X:matmul(X:t())):totable())
  local top = {}
  for i = 1, #vectors do top[i] = vectors[i][1] end
  local v = lumen.tensor(top)
  if not small then v = X:t():matmul(v) end -- X^T u_1 = s_1 v_1
  local norm = v:norm():item()
  if norm > 0 then v = v / norm end
  if v:sum():item() < 0 then v = -v end
  local total = 0
  for _, l in ipairs(values) do total = total + math.max(l, 0) end
  return v, total > 0 and math.max(values[1], 0) / total or 0
end

function M.eigencam(model, x, opts)
  local o = OPTIONS(opts, model)
  local A, _, targets, layer = common.cam_pass(model, x, o, "eigencam", false)
  local s = A.shape
  local K, P = s[2], A:numel() // (s[1] * s[2])
  local maps, explained = {}, {}
  for i = 1, s[1] do
    local X = A:narrow(1, i, 1):reshape { K, P }:t():contiguous() -- (P, K)
    if o.center then X = X - X:mean(1, true) end
    local v
    v, explained[i] = first_component(X)
    local shape = { 1, 1, table.unpack(s, 3) }
    maps[i] = X:matmul(v):reshape(shape)
  end
  return common.cam_result(lumen.cat(maps, 1):relu(), x, o, targets, layer, explained)
end

return M
