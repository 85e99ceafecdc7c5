-- FullGrad (Srinivas & Fleuret 2019, "Full-Gradient Representation for Neural Network Visualization").
-- A ReLU network's score splits exactly into an input-gradient term and one bias-gradient term per layer
-- with a bias: S_c(x) = sum(dS_c/dx * x) + sum over layers l of sum(dS_c/dz_l * b_l), z_l the layer's
-- output before any fused activation. The map is psi(|dS_c/dx * x|) + sum over the layers l with maps
-- (N, C, h, w) and their channels of psi(|dS_c/dz_l * b_l|), where psi min-max normalises each sample's
-- channel to [0, 1] and upsamples it bilinearly to the input: psi per channel, as the paper's formula has
-- it and pytorch-grad-cam computes it (normalised at the layer's resolution, then resized like its
-- cv2.resize: align_corners = false); the authors' code normalises each layer over all its channels at once.
-- The bias layers: Conv1d, Conv2d, ConvTranspose2d (a bias per channel, dim 2), Linear and LayerNorm (along
-- the last dim) with a bias, and BatchNorm in eval mode, whose bias is bias - weight * running_mean /
-- sqrt(running_var + eps); fused relu, relu6, sigmoid and tanh activations are undone through their output.
-- Biases of layers without (N, C, h, w) maps (Linear, LayerNorm) enter the decomposition but not the map;
-- biases that graph function nodes add (an ONNX MatMul + Add) are not seen. One forward and one backward.
-- opts: target = each sample's top class; raw = false (true: the first return is the summed map before
--       the final normalisation); probabilities = false.
-- Returns the map (N, 1, H, W) normalised to [0, 1] per sample (or raw), the targets (a Lua array), the
-- names of the layers whose biases make the map (a Lua array), the raw map, the normalised map, and per
-- sample what the decomposition leaves of the score, S_c - sum(dS/dx * x) - sum_l sum(dS/dz_l * b_l)
-- (a Lua array: 0 up to rounding for piecewise-linear networks; more for GELU, softmax attention, or biases
-- in function nodes that no layer declares).
local lumen = require "lumen"
local common = require "lumen.explain.common"

local M = {}

local OPTIONS = common.options("fullgrad", {
  target = { nil, "target" }, raw = { false, "boolean" }, probabilities = { false, "boolean" },
})

-- d(activation)/d(pre-activation) from the output y, for fused activations.
local UNDO = {
  relu = function(y) return y:gt(0) end,
  relu6 = function(y) return y:gt(0) * y:lt(6) end,
  sigmoid = function(y) return y * (1 - y) end,
  tanh = function(y) return 1 - y * y end,
}

-- Where each layer type adds its bias: along the channels (dim 2) or the last dim.
local ALONG = { Conv1d = "channels", Conv2d = "channels", ConvTranspose2d = "channels", BatchNorm1d = "channels",
                BatchNorm2d = "channels", Linear = "last", LayerNorm = "last" }

-- The bias b (C) of a leaf layer and where it is added, or nil; raises for what the decomposition
-- cannot undo.
local function bias_of(m, name)
  local along = type(m) == "table" and ALONG[m.type]
  if not along or not lumen.is_tensor(m.bias) or #m.bias.shape ~= 1 then return nil end
  local b = m.bias:detach()
  if m.running_mean then -- BatchNorm
    if m.training then
      error(("fullgrad: %s '%s' is in training mode (its bias depends on the batch); call model:eval()")
        :format(m.type, name), 4)
    end
    local scale = m.weight:detach() / (m.running_var:detach() + m.eps):sqrt()
    b = b - scale * m.running_mean:detach()
  end
  if m.activation and not UNDO[m.activation] then
    error(("fullgrad: layer '%s' fuses a %s activation, whose pre-activation gradient its output does not give")
      :format(name, m.activation), 4)
  end
  return b, along
end

-- The bias b broadcast against a layer output of shape s: along dim 2 ((N, C, ...)) or the last dim.
local function broadcast(b, s, along)
  local shape = {}
  for d = 1, #s do shape[d] = 1 end
  shape[along == "last" and #s or 2] = b.shape[1]
  return b:reshape(shape)
end

-- psi per channel: |t| (N, C, h, w) min-max normalised per sample and channel, upsampled to (H, W) and
-- summed over channels: (N, 1, H, W). Upsampling is linear, so the channels are summed first.
local function psi(t, H, W)
  local s = t.shape
  local m = t:abs():reshape { s[1] * s[2], 1, s[3], s[4] }:normalize01 { per_sample = true }
  m = m:reshape(s):sum(2, true)
  if s[3] == H and s[4] == W then return m end
  return lumen.upsample_bilinear(m, { H, W })
end

function M.fullgrad(model, x, opts)
  local o = OPTIONS(opts, model)
  common.need_model(model, "fullgrad")
  if not (lumen.is_tensor(x) and #x.shape == 4 and x:dtype() == "float32") then
    error(("fullgrad: needs images (N, C, H, W), got %s"):format(lumen.is_tensor(x) and lumen.shape_str(x)
      or type(x)), 2)
  end
  local layers = {}
  for _, l in ipairs(model:layers()) do
    if not l.extra then
      local b, along = bias_of(l.module, l.name)
      if b then layers[#layers + 1] = { name = l.name, bias = b, along = along, module = l.module } end
    end
  end
  local names = {}
  for i, l in ipairs(layers) do names[i] = l.name end
  local xg = common.on_tape(x)
  local tr = common.trace(model, xg, { capture = names }, o, "fullgrad")
  local targets = common.targets(tr.output, o.target, "fullgrad")
  local wrt = { xg }
  for i, l in ipairs(layers) do wrt[i + 1] = tr.captured[l.name] end
  local grads = lumen.grad(common.target_score(tr.output, targets), wrt)
  local N, H, W = x.shape[1], x.shape[3], x.shape[4]
  local gx = grads[1] * x
  local raw = psi(gx, H, W)
  local parts = gx:flatten(2):sum(2) -- (N): the decomposition of each sample's score
  local mapped = {}
  for i, l in ipairs(layers) do
    local y, g = tr.captured[l.name]:detach(), grads[i + 1]
    if l.module.activation then g = g * UNDO[l.module.activation](y) end
    local s = y.shape
    if s[1] ~= N or s[l.along == "last" and #s or 2] ~= l.bias.shape[1] then
      error(("fullgrad: layer '%s' has output %s and a bias of %d values"):format(l.name, lumen.shape_str(y),
        l.bias.shape[1]), 2)
    end
    local gb = g * broadcast(l.bias, s, l.along)
    parts = parts + gb:flatten(2):sum(2)
    if #s == 4 and l.along == "channels" then
      raw = raw + psi(gb, H, W)
      mapped[#mapped + 1] = l.name
    end
  end
  local residual = {}
  local scores = tr.output:detach()
  for i = 1, N do residual[i] = scores:get { i, targets[i] } - parts:get { i } end
  local up = raw:normalize01 { per_sample = true }
  return o.raw and raw or up, targets, mapped, raw, up, residual
end

return M
