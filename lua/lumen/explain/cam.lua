-- Class activation mapping (Zhou, Khosla, Lapedriza, Oliva & Torralba 2016, "Learning Deep Features
-- for Discriminative Localization"). For a network ending in global average pooling over feature maps
-- A^k followed by one dense layer with weights w (classes, K), CAM_c = sum_k w_{c,k} A^k (no bias).
-- The ending is what model:ending() describes: features -> GAP -> [Flatten | Dropout | Reshape] ->
-- Dense -> [Flatten ...] [-> Softmax], in a Sequential or a Graph, where GAP may also be an average pool
-- whose window covers the whole map and Dense a 1x1 convolution on the pooled 1x1 map (the MobileNet
-- ending); a model of any other shape is a clear error. One forward (no gradient).
-- opts: target = each sample's top class; raw = false (true: the first return is (N, 1, h, w) at the
--       feature resolution, signed, no upsampling); otherwise upsampled to the input and min-max
--       normalised per sample; probabilities = false (only changes the default target).
-- Returns the map, the targets (a Lua array, one per sample), the feature layer's name, then both
-- forms: the raw map and the upsampled map.
local lumen = require "lumen"
local common = require "lumen.explain.common"

local M = {}

local OPTIONS = common.options("cam", { target = { nil, "target" }, raw = { false, "boolean" },
                                        probabilities = { false, "boolean" } })

local function refuse(why)
  error("cam: the model must end in global average pooling and one dense layer; " .. why .. " (use gradcam)", 3)
end

function M.cam(model, x, opts)
  local o = OPTIONS(opts, model)
  common.need_model(model, "cam")
  local guess, why = model:ending()
  if not guess then refuse(why) end
  local tr = lumen.no_grad(common.trace, model, x, { capture = { guess.features } }, o, "cam")
  local e
  e, why = model:ending(tr) -- now checked against this input's shapes
  if not e then refuse(why) end
  local A, w = tr.captured[e.features], e.weight -- (N, K, h, w), (classes, K)
  local targets = common.targets(tr.output, o.target, "cam")
  local K = A.shape[2]
  if #A.shape ~= 4 or w.shape[2] ~= K then
    error(("cam: features %s at '%s' do not match the dense weight %s"):format(lumen.shape_str(A), e.features,
      lumen.shape_str(w)), 2)
  end
  local wc = w:detach():index_select(1, targets):reshape { #targets, K, 1, 1 } -- (N, K, 1, 1)
  local raw = (A * wc):sum(2, true)
  local up = common.upsample_normalize(raw, x)
  return o.raw and raw or up, targets, e.features, raw, up
end

return M
