-- Class activation mapping (Zhou, Khosla, Lapedriza, Oliva & Torralba 2016, "Learning Deep Features
-- for Discriminative Localization"). For a network ending in global average pooling over feature maps
-- A^k followed by one dense layer with weights w, CAM_c = sum_k w_{c,k} A^k. A model of any other shape
-- is a clear error.
-- opts: target = top class; raw = false (true: (N, 1, h, w) at the feature resolution, signed, no
--       upsampling); otherwise upsampled to the input and min-max normalised per sample.
-- Returns the map, the targets, and the feature layer's name.
local lumen = require "lumen"
local common = require "lumen.explain.common"

local GAP = { GlobalAvgPool2d = true, GlobalAveragePool = true }
local PASS = { Flatten = true, Dropout = true, Identity = true, Reshape = true }
local DENSE = { Linear = true, Gemm = true }

-- Finds (feature layer, dense module) for a ...-> features -> GAP -> [Flatten] -> Dense [-> Softmax] model.
local function cam_layers(model, x)
  if type(model) == "function" then error("cam: needs a lumen model, not a plain function", 3) end
  lumen.no_grad(function() model:forward(x) end)
  local layers = model:layers()
  local i = #layers
  if layers[i] and layers[i].type == "Softmax" then i = i - 1 end
  local dense = layers[i]
  local function shape_msg()
    local t = {}
    for k = math.max(1, #layers - 3), #layers do t[#t + 1] = layers[k].type end
    return table.concat(t, " -> ")
  end
  if not (dense and DENSE[dense.type]) then
    error("cam: the model must end in global average pooling + one dense layer (it ends in " .. shape_msg() .. ")", 3)
  end
  i = i - 1
  while layers[i] and PASS[layers[i].type] do i = i - 1 end
  if not (layers[i] and GAP[layers[i].type]) or not layers[i - 1] then
    error("cam: the model must end in global average pooling + one dense layer (it ends in " .. shape_msg() .. ")", 3)
  end
  local module = model:layer(dense.name)
  local w = module.weight
  if not w then error("cam: dense layer '" .. dense.name .. "' has no weight", 3) end
  return layers[i - 1].name, w
end

return function(model, x, opts)
  opts = opts or {}
  local feat, w = cam_layers(model, x)
  local scores, acts = lumen.no_grad(common.capture, model, x, { feat }, opts)
  local A = acts[feat] -- (N, K, h, w)
  local targets = common.targets(scores, opts.target)
  local maps = {}
  for i, c in ipairs(targets) do
    local wc = w:narrow(1, c, 1):reshape { 1, -1, 1, 1 } -- (1, K, 1, 1)
    maps[i] = (A:narrow(1, i, 1) * wc):sum(2, true)
  end
  local cam = lumen.cat(maps, 1)
  if opts.raw then return cam, targets, feat end
  return common.upsample_normalize(cam, x), targets, feat
end
