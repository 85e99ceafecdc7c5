-- Occlusion sensitivity (Zeiler & Fergus 2014, "Visualizing and Understanding Convolutional Networks").
-- Slides a patch of `fill` over the input and records the drop in the target score,
-- S_c(x) - S_c(x with the patch occluded); each position's drop is spread over the patch and
-- averaged where patches overlap.
-- Inputs: images (1, C, H, W) (the patch covers all channels), sequences (1, C, L), token ids (1, L)
-- (windows of `patch` positions; for ids use fill = the padding id) and vectors (1, D).
-- opts: target = top class; patch = 16; stride = 8 (each a number >= 1, or a list with one per spatial
--       dim; the patch is clipped to the input and the last position touches the border); fill = 0;
--       batch_size = 32 occluded copies per forward; probabilities = false.
-- Returns the map ((1, 1, H, W) for images, (1, 1, L) for sequences, (1, L) or (1, D) otherwise),
-- the target and the unoccluded score.
-- Images on a lumen model run incrementally (lumen.nn.incremental): the unoccluded forward is kept and
-- each occluded copy recomputes only the part of each layer its patch reaches (global pools and dense
-- layers in full), the same map as full forwards within float32 rounding; when that would save under a
-- tenth of the convolutions' work (or the model cannot be followed), every copy runs a full forward.
local lumen = require "lumen"
local common = require "lumen.explain.common"
local incremental = require "lumen.nn.incremental"

-- The start positions of a patch of p along a dimension of n with stride s, the last at the border.
local function starts(n, p, s)
  local res = {}
  for st = 1, n - p + 1, s do res[#res + 1] = st end
  if res[#res] ~= n - p + 1 then res[#res + 1] = n - p + 1 end
  return res
end

local M = {}

local OPTIONS = common.options("occlusion", {
  target = { nil, "target" }, patch = { 16, "integer >= 1 | table" }, stride = { 8, "integer >= 1 | table" },
  fill = { 0, "number" }, batch_size = { 32, "integer >= 1" }, probabilities = { false, "boolean" },
})

-- A patch or stride option: a positive integer, or a list of them with one per spatial dim.
local function per_dim(v, name, k, n)
  if type(v) == "table" then
    if #v ~= n then OPTIONS:fail(name, v, ("a number or a list of %d (one per spatial dim)"):format(n), 3) end
    v = v[k]
  end
  if math.type(v) ~= "integer" or v < 1 then OPTIONS:fail(name, v, "an integer >= 1", 3) end
  return v
end

function M.occlusion(model, x, opts)
  local o = OPTIONS(opts, model)
  common.single(x, "occlusion")
  local shape = x.shape
  local nd = #shape
  local spatial = nd == 4 and { 3, 4 } or nd == 3 and { 3 } or { 2 } -- the dims the patch slides over
  local fill = o.fill
  local sizes, positions = {}, { {} } -- positions: one start per spatial dim
  for k, d in ipairs(spatial) do
    sizes[k] = math.min(per_dim(o.patch, "patch", k, #spatial), shape[d])
    local s = per_dim(o.stride, "stride", k, #spatial)
    local grown = {}
    for _, pos in ipairs(positions) do
      for _, st in ipairs(starts(shape[d], sizes[k], s)) do
        local q = { table.unpack(pos) }
        q[k] = st
        grown[#grown + 1] = q
      end
    end
    positions = grown
  end

  -- the boxes of positions first .. first + n - 1, for the incremental forward
  local function boxes(first, n)
    local res = {}
    for j = 1, n do
      local pos = positions[first + j - 1]
      res[j] = { pos[1], pos[2], sizes[1], sizes[2] }
    end
    return res
  end
  local inc, base
  if nd == 4 and type(model) ~= "function" then
    local ok, made = pcall(incremental.new, model, x, { logits = not o.probabilities })
    if ok then
      base = made.output
      local n = math.min(o.batch_size, #positions) -- a batch from the middle of the image decides
      if made:cost(boxes(math.max(1, (#positions - n) // 2 + 1), n)) < 0.9 then inc = made end
    end
  end

  base = base or lumen.no_grad(common.scores, model, x, o)
  local target = common.targets(base, o.target, "occlusion")[1]
  local base_score = base:get { 1, target }
  local map_shape = {} -- x's dims, with size 1 except along the spatial ones
  for d = 1, nd do map_shape[d] = 1 end
  for _, d in ipairs(spatial) do map_shape[d] = shape[d] end
  local sum, count = lumen.zeros(map_shape), lumen.zeros(map_shape)

  -- The box a patch at pos covers in a tensor of shape dims (all of the non-spatial dims).
  local function box(pos, dims)
    local st, lens = {}, {}
    for d = 1, nd do st[d], lens[d] = 1, dims[d] end
    for k, d in ipairs(spatial) do st[d], lens[d] = pos[k], sizes[k] end
    return st, lens
  end

  common.batches(#positions, o.batch_size, function(first, n)
    local s
    if inc then
      s = inc:forward(boxes(first, n), fill)
    else
      local xs = common.repeat_batch(x, n)
      for j = 1, n do
        local st, lens = box(positions[first + j - 1], shape)
        st[1] = j
        xs:fill_box_(st, lens, fill)
      end
      s = lumen.no_grad(common.scores, model, xs, o)
    end
    for j = 1, n do
      local st, lens = box(positions[first + j - 1], map_shape)
      sum:fill_box_(st, lens, base_score - s:get { j, target }, true)
      count:fill_box_(st, lens, 1, true)
    end
  end, "occlusion")
  return sum / count:clamp(1, nil), target, base_score
end

return M
