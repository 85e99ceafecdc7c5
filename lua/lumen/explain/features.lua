-- lumen.explain.features: feature groups for the sampling methods (KernelSHAP, LIME, permutation).
-- A feature map assigns every element of one input (1, ...) a feature id in 1..M: the elements
-- themselves (default), superpixels (an (H, W) map broadcast over channels), token positions, ...
-- Coalitions z (B, M) of 0/1 become element masks (B, ...) by one index_select.
local lumen = require "lumen"

local M = {}

-- Normalises `groups` for input x (1, ...): returns ids (int64, numel(x) elements, 1-based), M.
-- groups may be nil (each element its own feature), a tensor shaped like x or like x without its
-- batch dim, or like x's trailing dims (e.g. (H, W) for (1, C, H, W)), broadcast over the rest.
function M.ids(x, groups)
  local xs = x.shape
  local n = x:numel()
  if groups == nil then
    return lumen.arange(1, n + 1):long(), n
  end
  local gs = groups.shape
  local g = groups:float()
  if #gs < #xs then
    -- align to the trailing dims, broadcast over the leading ones
    local shape = {}
    for d = 1, #xs - #gs do shape[d] = 1 end
    for d = 1, #gs do shape[#xs - #gs + d] = gs[d] end
    g = g:reshape(shape):expand(xs)
  end
  if g:numel() ~= n then
    error(("features: groups of shape %s do not fit an input of shape %s"):format(lumen.shape_str(groups),
      lumen.shape_str(x)), 3)
  end
  local ids = g:reshape { n }:long()
  local m = math.tointeger(ids:float():max_all())
  if ids:float():min_all() < 1 then error("features: group ids must be 1-based (>= 1)", 3) end
  return ids, m
end

-- Element masks (B, ...) for coalitions Z (B, M) (float 0/1), laid out like x.
function M.masks(Z, ids, x)
  local B = Z.shape[1]
  local shape = x.shape
  shape[1] = B
  return Z:index_select(2, ids):reshape(shape)
end

-- Per-element values from per-feature values v (Lua array or 1-D tensor of M), shaped like x.
function M.spread(v, ids, x)
  if not lumen.is_tensor(v) then v = lumen.tensor(v) end
  return v:index_select(1, ids):reshape(x.shape)
end

return M
