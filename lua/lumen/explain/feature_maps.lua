-- Feature maps: one layer's activations for the first input of a batch, as a grid of gray tiles
-- (as in Zeiler & Fergus 2014), each tile min-max normalised and labelled with its channel number.
-- opts: layer = the last layer with a spatial output; max_maps = 64; size = tile height in pixels
--       (default: the map's own height, at least 32; nearest-neighbour, keeping the aspect).
-- One forward (a trace: its shapes give the default layer; with a layer given it stops there).
-- Returns the picture (1, H, W) (lumen.viz.grid, ceil(sqrt(maps)) tiles per row, 2-pixel padding) and
-- the activation tensor (N, K, h, w) ((N, K, 1, L) for 1-D layers).
local lumen = require "lumen"
local common = require "lumen.explain.common"

local M = {}

local OPTIONS = common.options("feature_maps", {
  layer = { nil, "layer" }, max_maps = { 64, "integer >= 1" }, size = { nil, "integer >= 1" },
})

function M.feature_maps(model, x, opts)
  local o = OPTIONS(opts, model)
  local topts = o.layer and { capture = { o.layer }, stop_at = o.layer } or { capture = "all" }
  local tr = lumen.no_grad(common.trace, model, x, topts, nil, "feature_maps")
  local layer = o.layer or common.last_spatial_layer(tr, "feature_maps")
  local A = tr.captured[layer]
  if not lumen.is_tensor(A) then error(("feature_maps: layer '%s' gives no tensor"):format(layer), 2) end
  if #A.shape == 3 then A = A:unsqueeze(3) end -- (N, K, L) -> (N, K, 1, L)
  if #A.shape ~= 4 then
    error(("feature_maps: layer '%s' has output %s, not (N, K, h, w)"):format(layer, lumen.shape_str(A)), 2)
  end
  local K, h, w = A.shape[2], A.shape[3], A.shape[4]
  local n = math.min(K, o.max_maps)
  local size = o.size or math.max(32, h)
  local labels = {}
  for i = 1, n do labels[i] = tostring(i) end
  return lumen.viz.grid(A:narrow(1, 1, 1):narrow(2, 1, n):reshape { n, 1, h, w }, {
    ncol = math.ceil(math.sqrt(n)), normalize = "each", labels = labels,
    size = { size, math.max(1, math.floor(w * size / h + 0.5)) } }), A
end

return M
