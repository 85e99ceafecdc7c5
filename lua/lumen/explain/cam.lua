-- Class activation mapping (Zhou, Khosla, Lapedriza, Oliva & Torralba 2016, "Learning Deep Features
-- for Discriminative Localization"). For a network ending in global average pooling over feature maps
-- A^k followed by one dense layer with weights w (classes, K), CAM_c = sum_k w_{c,k} A^k (no bias).
-- The ending may be features -> GAP -> [Flatten | Dropout | Reshape] -> Dense [-> Softmax], in a
-- Sequential or a Graph; a model of any other shape is a clear error.
-- opts: target = each sample's top class; raw = false (true: (N, 1, h, w) at the feature resolution,
--       signed, no upsampling); otherwise upsampled to the input and min-max normalised per sample;
--       probabilities = false (only changes the default target).
-- Returns the map, the targets (a Lua array, one per sample) and the feature layer's name.
local lumen = require "lumen"
local common = require "lumen.explain.common"

local GAP = { GlobalAvgPool2d = true, GlobalAveragePool = true }
local PASS = { Flatten = true, Dropout = true, Identity = true, Reshape = true }
local DENSE = { Linear = true, Gemm = true }

-- The index in layers of the layer that feeds layers[i] (its single input), or nil.
local function input_of(model, layers, i)
  if not model.node_inputs then return i > 1 and i - 1 or nil end
  local ins = model:node_inputs(layers[i].name)
  if not ins or #ins ~= 1 then return nil end
  for k = i - 1, 1, -1 do
    if layers[k].name == ins[1] then return k end
  end
end

-- (feature layer name, dense weight (classes, K)) for a model with the CAM ending.
local function cam_layers(model)
  if type(model) == "function" then error("cam: needs a lumen model, not a plain function", 3) end
  local layers = model:layers()
  local i = #layers
  if model.outputs then
    for k, l in ipairs(layers) do if l.name == model.outputs[1] then i = k end end
  end
  local dense = layers[i]
  if dense and dense.type == "Softmax" then
    i = input_of(model, layers, i)
    dense = i and layers[i]
  end
  if dense and DENSE[dense.type] then
    i = input_of(model, layers, i)
    while i and PASS[layers[i].type] do i = input_of(model, layers, i) end
    local feat = i and GAP[layers[i].type] and input_of(model, layers, i)
    local w = model:layer(dense.name).weight
    if feat and w then return layers[feat].name, w end
  end
  local tail = {}
  for k = math.max(1, #layers - 3), #layers do tail[#tail + 1] = layers[k].type end
  error("cam: the model must end in global average pooling and one dense layer; it ends in "
        .. table.concat(tail, " -> ") .. " (use gradcam)", 3)
end

return function(model, x, opts)
  opts = opts or {}
  local feat, w = cam_layers(model)
  local scores, acts = lumen.no_grad(common.capture, model, x, { feat }, opts)
  local A = acts[feat] -- (N, K, h, w)
  local targets = common.targets(scores, opts.target)
  local K = A.shape[2]
  if #A.shape ~= 4 or w.shape[2] ~= K then
    error(("cam: features %s at '%s' do not match the dense weight %s"):format(lumen.shape_str(A), feat,
      lumen.shape_str(w)), 2)
  end
  local wc = w:detach():index_select(1, targets):reshape { #targets, K, 1, 1 } -- (N, K, 1, 1)
  local cam = (A * wc):sum(2, true)
  if opts.raw then return cam, targets, feat end
  return common.upsample_normalize(cam, x), targets, feat
end
