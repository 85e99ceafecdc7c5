-- Class activation mapping (Zhou, Khosla, Lapedriza, Oliva & Torralba 2016, "Learning Deep Features
-- for Discriminative Localization"). For a network ending in global average pooling over feature maps
-- A^k followed by one dense layer with weights w (classes, K), CAM_c = sum_k w_{c,k} A^k (no bias).
-- The ending may be features -> GAP -> [Flatten | Dropout | Reshape] -> Dense -> [Flatten ...]
-- [-> Softmax], in a Sequential or a Graph, where GAP may also be an average pool whose window covers
-- the whole map and Dense a 1x1 convolution on the pooled 1x1 map (the MobileNet ending); a model of
-- any other shape is a clear error.
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

-- The dense weight (classes, K) of layer l, if l acts as the dense layer: a Linear, or a 1x1
-- convolution whose output is 1x1.
local function dense_weight(model, l)
  local w = model:layer(l.name).weight
  if not w then return nil end
  if DENSE[l.type] then return w end
  local s = l.shape
  if l.type == "Conv2d" and #w.shape == 4 and w.shape[3] == 1 and w.shape[4] == 1 and s and #s == 4
     and s[3] == 1 and s[4] == 1 then
    return w:reshape { w.shape[1], w.shape[2] }
  end
end

-- Whether layer l averages its whole input map `feat`: a global average pool, or an average pool
-- whose window is at least the map.
local function is_gap(model, l, feat)
  if GAP[l.type] then return true end
  if l.type ~= "AvgPool2d" or not (feat and feat.shape and #feat.shape == 4) then return false end
  local k = model:layer(l.name):config().kernel_size
  if type(k) == "number" then k = { k, k } end
  return type(k) == "table" and k[1] >= feat.shape[3] and k[2] >= feat.shape[4]
end

-- (feature layer name, dense weight (classes, K)) for a model with the CAM ending. Needs the shapes of
-- a forward pass (model:layers()).
local function cam_layers(model)
  if type(model) == "function" then error("cam: needs a lumen model, not a plain function", 3) end
  local layers = model:layers()
  local i = #layers
  if model.outputs then
    for k, l in ipairs(layers) do if l.name == model.outputs[1] then i = k end end
  end
  if layers[i] and layers[i].type == "Softmax" then i = input_of(model, layers, i) end
  while i and PASS[layers[i].type] do i = input_of(model, layers, i) end
  local w = i and dense_weight(model, layers[i])
  if w then
    i = input_of(model, layers, i)
    while i and PASS[layers[i].type] do i = input_of(model, layers, i) end
    local f = i and input_of(model, layers, i)
    if f and is_gap(model, layers[i], layers[f]) then return layers[f].name, w end
  end
  local tail = {}
  for k = math.max(1, #layers - 3), #layers do tail[#tail + 1] = layers[k].type end
  error("cam: the model must end in global average pooling and one dense layer; it ends in "
        .. table.concat(tail, " -> ") .. " (use gradcam)", 3)
end

return function(model, x, opts)
  opts = opts or {}
  if type(model) ~= "function" then lumen.no_grad(function() model:forward(x) end) end -- layer shapes
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
