-- Deconvnet reconstruction of a neuron (Zeiler & Fergus 2014, "Visualizing and Understanding
-- Convolutional Networks"). From one activation at a layer, go back to pixel space through the
-- network's own layers in reverse: max unpooling with the forward switches, "unReLU" (a ReLU on the
-- reconstruction) and transposed convolution with the same filters. This is exactly the backward
-- pass with ReLU's rule swapped for ReLU(gradient) (lumen.explain.guided's deconvnet rules); max
-- pooling's backward is unpooling by its switches and a convolution's is its transpose.
-- deconv(model, x, opts): opts: layer (required); index = 1, a channel (at its strongest position) or
--   {channel, i, j} (1-based; {channel, i} for 1-D layers). x is one input (1, ...). The forward stops at
--   the layer. Returns the reconstruction shaped like x, the activation value and {channel, i, j}.
-- top_inputs(model, X, opts): the `top` inputs of X that most activate each of `neurons` anywhere at
--   the layer. opts: layer (required); top = 9; neurons = 16 (the first 16 channels, or a list of
--   channels); batch_size = 100 inputs per forward.
--   Returns {[channel] = {{index =, value =, pos = {i, j}}, ...} best first} and the list of channels.
-- deconv_grid(model, X, opts): the figure of the paper: per neuron, a 3x3 block of reconstructions beside
--   the 3x3 input patches they come from (cropped to the reconstruction's support, resized to
--   patch_size = 32), ncol = 4 neurons per row; other opts as top_inputs. Returns an image (3, H, W)
--   and, as top_inputs does, the top list per neuron and the neurons.
local lumen = require "lumen"
local common = require "lumen.explain.common"
local guided = require "lumen.explain.guided"

local M = {}

local DECONV = common.options("deconv", { layer = { common.REQUIRED, "layer" }, index = { 1, "integer >= 1 | table" } })
local TOP = { layer = { common.REQUIRED, "layer" }, top = { 9, "integer >= 1" },
              neurons = { 16, "integer >= 1 | table" }, batch_size = { 100, "integer >= 1" } }
local TOP_INPUTS = common.options("top_inputs", TOP)
local grid_decl = { patch_size = { 32, "integer >= 1" }, ncol = { 4, "integer >= 1" } }
for k, v in pairs(TOP) do grid_decl[k] = v end
local GRID = common.options("deconv_grid", grid_decl)

-- The position {i, j} (or {i} for 1-D layers) of 1-based flat index p within a plane of A.
local function position(A, p)
  if #A.shape == 4 then return { (p - 1) // A.shape[4] + 1, (p - 1) % A.shape[4] + 1 } end
  return { p }
end

-- Position of the maximum of A[1, k] and its value.
local function strongest(A, k)
  local plane = A:narrow(1, 1, 1):narrow(2, k, 1)
  local v, idx = plane:reshape { plane:numel() }:max(1)
  return position(A, idx:item()), v:item()
end

function M.deconv(model, x, opts)
  local o = DECONV(opts, model)
  common.single(x, "deconv")
  local layer, index = o.layer, o.index
  return lumen.with_rules(guided.rules("deconvnet"), function()
    local xg = x:detach()
    xg.requires_grad = true
    local A = common.trace(model, xg, { capture = { layer }, stop_at = layer }, nil, "deconv").captured[layer]
    local k = type(index) == "table" and index[1] or index
    if math.type(k) ~= "integer" or k < 1 or k > A.shape[2] then
      error(("deconv: channel %s out of range [1, %d] at layer '%s'"):format(tostring(k), A.shape[2], layer), 0)
    end
    local pos, value
    if type(index) == "table" then
      pos = { table.unpack(index, 2) }
      if #pos ~= #A.shape - 2 then
        error(("deconv: index {channel, %s} needs %d positions for layer '%s' of shape %s"):format(
          #A.shape == 4 and "i, j" or "i", #A.shape - 2, layer, lumen.shape_str(A)), 0)
      end
      for d, v in ipairs(pos) do
        if math.type(v) ~= "integer" or v < 1 or v > A.shape[d + 2] then
          error(("deconv: position %s out of range [1, %d] at layer '%s'"):format(tostring(v), A.shape[d + 2],
            layer), 0)
        end
      end
      value = A:get { 1, k, table.unpack(pos) }
    else
      pos, value = strongest(A, k)
    end
    local seed = lumen.zeros_like(A)
    seed:set({ 1, k, table.unpack(pos) }, value)
    local rec = lumen.grad(A, xg, seed)
    return rec, value, { k, table.unpack(pos) }
  end)
end

local function top_inputs(model, X, o)
  local layer, top, neurons = o.layer, o.top, o.neurons
  local best = {}
  common.batches(X.shape[1], o.batch_size, function(first, n)
    local A = lumen.no_grad(common.trace, model, X:narrow(1, first, n), { capture = { layer }, stop_at = layer }, nil,
      "top_inputs").captured[layer]
    if type(neurons) == "number" then
      local list = {}
      for k = 1, math.min(neurons, A.shape[2]) do list[k] = k end
      neurons = list
    end
    local flat = A:reshape { n, A.shape[2], -1 }
    local vals, idx = flat:max(3) -- (n, K)
    for _, k in ipairs(neurons) do
      local list = best[k] or {}
      best[k] = list
      for b = 1, n do
        local v = vals:get { b, k }
        if #list < top or v > list[#list].value then
          list[#list + 1] = { index = first + b - 1, value = v, pos = position(A, idx:get { b, k }) }
          table.sort(list, function(a, c) return a.value > c.value end)
          if #list > top then list[#list] = nil end
        end
      end
    end
  end, "top activations")
  return best, neurons
end

function M.top_inputs(model, X, opts) return top_inputs(model, X, TOP_INPUTS(opts, model)) end

-- The bounding box of |t| > 1% of its max over an (1, C, H, W) tensor: y0, x0, h, w.
local function support(t)
  local m = t:abs():sum(2):reshape { t.shape[3], t.shape[4] }
  local thr = m:max_all() * 0.01
  local H, W = t.shape[3], t.shape[4]
  local y0, y1, x0, x1 = H, 1, W, 1
  for i = 1, H do
    for j = 1, W do
      if m:get { i, j } > thr then
        y0, y1, x0, x1 = math.min(y0, i), math.max(y1, i), math.min(x0, j), math.max(x1, j)
      end
    end
  end
  if y1 < y0 then return 1, 1, H, W end
  return y0, x0, y1 - y0 + 1, x1 - x0 + 1
end

function M.deconv_grid(model, X, opts)
  local o = GRID(opts, model)
  local size = o.patch_size
  local best, neurons = top_inputs(model, X, o)
  local blocks = {}
  for _, k in ipairs(neurons) do
    local recs, patches = {}, {}
    for _, item in ipairs(best[k]) do
      local x = X:narrow(1, item.index, 1)
      local rec = M.deconv(model, x, { layer = o.layer, index = { k, table.unpack(item.pos) } })
      local y0, x0, h, w = support(rec)
      local function crop(t) -- a picture: 1 or 3 channels (others are averaged)
        t = t:narrow(3, y0, h):narrow(4, x0, w)
        return (t.shape[2] == 1 or t.shape[2] == 3) and t or t:mean(2, true)
      end
      local r = crop(rec)
      local rm = math.max(r:abs():max_all(), 1e-12)
      recs[#recs + 1] = lumen.image.resize(r / (2 * rm) + 0.5, size, size)
      patches[#patches + 1] = lumen.image.resize(crop(x), size, size)
    end
    local pair = lumen.viz.panel({ lumen.viz.grid(lumen.cat(recs, 1), { ncol = 3, normalize = false }),
                                   lumen.viz.grid(lumen.cat(patches, 1), { ncol = 3, normalize = "all" }) })
    blocks[#blocks + 1] = pair:unsqueeze(1)
  end
  return lumen.viz.grid(lumen.cat(blocks, 1), { ncol = o.ncol, pad = 6, normalize = false }), best, neurons
end

return M
