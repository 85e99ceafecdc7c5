-- Feature maps: one layer's activations for one input, as a labelled grid of gray tiles
-- (channel numbers under each tile), each tile min-max normalised.
-- opts: layer (required, as the model names it); max_maps = 64; size = tile height in pixels (default:
--       the map's own size, at least 32).
-- Returns the picture and the activation tensor (1, K, h, w).
local lumen = require "lumen"
local common = require "lumen.explain.common"

return function(model, x, opts)
  opts = opts or {}
  local layer = opts.layer or common.last_spatial_layer(model, x)
  local _, acts = lumen.no_grad(common.capture, model, x, { layer })
  local A = acts[layer]
  if #A.shape == 3 then A = A:unsqueeze(3) end -- (N, K, L) -> (N, K, 1, L)
  if #A.shape ~= 4 then
    error(("feature_maps: layer '%s' has output %s, not (N, K, h, w)"):format(layer, lumen.shape_str(A)), 2)
  end
  local K, h, w = A.shape[2], A.shape[3], A.shape[4]
  local n = math.min(K, opts.max_maps or 64)
  local tiles = A:narrow(1, 1, 1):narrow(2, 1, n):reshape { n, 1, h, w }
  local size = opts.size or math.max(32, h)
  if size ~= h then tiles = lumen.image.resize(tiles, size, math.max(1, math.floor(w * size / h + 0.5)), { method = "nearest" }) end
  local labels = {}
  for i = 1, n do labels[i] = tostring(i) end
  return lumen.viz.grid(tiles, { ncol = math.ceil(math.sqrt(n)), normalize = "each", labels = labels }), A
end
