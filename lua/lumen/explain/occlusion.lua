-- Occlusion sensitivity (Zeiler & Fergus 2013, "Visualizing and Understanding Convolutional Networks").
-- Slides a patch of `fill` over the input and records the drop in the target score,
-- S_c(x) - S_c(x with the patch occluded); each position's drop is spread over the patch and
-- averaged where patches overlap.
-- Inputs: images (1, C, H, W) (the patch covers all channels), sequences (1, C, L) or token ids
-- (1, L) (windows of `patch` positions; for ids use fill = the padding id), vectors (1, D).
-- opts: target = top class; patch = 16; stride = 8 (a number, or one per spatial dim; the patch is clipped
--       to the input and the last position touches the border); fill = 0; batch_size = 32 occluded copies per forward; probabilities = false.
-- Returns the map ((1, 1, H, W) for images, (1, 1, L) or (1, L) for sequences, (1, D) for vectors), the target,
-- and the unoccluded score.
local lumen = require "lumen"
local common = require "lumen.explain.common"

return function(model, x, opts)
  opts = opts or {}
  local shape = x.shape
  local nd = #shape
  if shape[1] ~= 1 then error("occlusion: explain one input at a time (batch of 1)", 2) end
  local spatial -- dims that the patch slides over
  if nd == 4 then spatial = { 3, 4 } elseif nd == 3 then spatial = { 3 } else spatial = { 2 } end
  local patch, stride = opts.patch or 16, opts.stride or 8
  local fill = opts.fill or 0
  local sizes, positions = {}, { {} }
  for k, d in ipairs(spatial) do
    local n = shape[d]
    local p = math.min(type(patch) == "table" and patch[k] or patch, n)
    local s = math.max(1, type(stride) == "table" and stride[k] or stride)
    sizes[k] = p
    local starts = {}
    for st = 1, n - p + 1, s do starts[#starts + 1] = st end
    if starts[#starts] ~= n - p + 1 then starts[#starts + 1] = n - p + 1 end -- cover the border
    local next = {}
    for _, pos in ipairs(positions) do
      for _, st in ipairs(starts) do
        local q = { table.unpack(pos) }
        q[k] = st
        next[#next + 1] = q
      end
    end
    positions = next
  end

  local base = lumen.no_grad(common.scores, model, x, opts)
  local target = common.targets(base, opts.target)[1]
  local base_score = base:get { 1, target }
  -- The map keeps x's dims, with size 1 except along the spatial ones.
  local map_shape = {}
  for d = 1, nd do map_shape[d] = 1 end
  for _, d in ipairs(spatial) do map_shape[d] = shape[d] end
  local sum, count = lumen.zeros(map_shape), lumen.zeros(map_shape)

  -- The box a patch covers, in x (all channels) or in the map.
  local function box(pos, dims)
    local starts, lens = {}, {}
    for d = 1, nd do starts[d], lens[d] = 1, dims[d] end
    for k, d in ipairs(spatial) do starts[d], lens[d] = pos[k], sizes[k] end
    return starts, lens
  end

  common.batches(#positions, opts.batch_size or 32, function(first, n)
    local xs = common.repeat_batch(x, n)
    for j = 1, n do
      local starts, lens = box(positions[first + j - 1], shape)
      starts[1], lens[1] = j, 1
      xs:fill_box_(starts, lens, fill)
    end
    local s = lumen.no_grad(common.scores, model, xs, opts)
    for j = 1, n do
      local drop = base_score - s:get { j, target }
      local starts, lens = box(positions[first + j - 1], map_shape)
      sum:fill_box_(starts, lens, drop, true)
      count:fill_box_(starts, lens, 1, true)
    end
  end, "occlusion")
  return sum / count:clamp(1, nil), target, base_score
end
