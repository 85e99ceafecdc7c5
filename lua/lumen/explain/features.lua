-- lumen.explain.features: feature groups for the sampling methods (KernelSHAP, LIME, permutation importance).
-- A feature map gives every element of one input (1, ...) a feature id in 1..M: the elements themselves
-- (the default), superpixels (an (H, W) map broadcast over channels), token positions or windows, patches.
-- Coalitions Z (B, M) of 0/1 become element masks (B, ...) by one index_select, and masks mix an input
-- with its replacement values in the input's own dtype (token ids stay int64).
local lumen = require "lumen"

local M = {}

-- SLIC superpixels (lumen.viz.slic) of an image batch of one (1, C, H, W), min-max scaled to [0, 1]
-- first so any input scale works. opts: n_segments = 50, compactness = 10. Returns int64 (H, W).
function M.superpixels(x, opts)
  opts = opts or {}
  local s = x.shape
  if #s ~= 4 or s[1] ~= 1 then
    error(("features: superpixels need an image (1, C, H, W), got %s"):format(lumen.shape_str(x)), 3)
  end
  local img = x:float():reshape { s[2], s[3], s[4] }:normalize01()
  return lumen.viz.slic(img, { n_segments = opts.n_segments or 50, compactness = opts.compactness or 10 })
end

-- Feature ids for input x (1, ...): returns ids (int64, numel(x) elements, values 1..m) and m.
-- groups: nil (each element its own feature), "superpixels" (M.superpixels(x, opts)), or a tensor
-- shaped like x, like x without its batch dim, or like x's trailing dims (e.g. (H, W) for (1, C, H, W)),
-- broadcast over the leading ones.
function M.ids(x, groups, opts)
  local xs, n = x.shape, x:numel()
  if groups == nil then return lumen.arange(1, n + 1):long(), n end
  if groups == "superpixels" then groups = M.superpixels(x, opts) end
  if not lumen.is_tensor(groups) then error("features: groups must be a tensor of ids or 'superpixels'", 3) end
  local gs = groups.shape
  local g = groups:float()
  local lead = #xs - #gs
  if lead > 0 then
    local shape, fits = {}, true
    for d = 1, #xs do
      shape[d] = d > lead and gs[d - lead] or 1
      fits = fits and (d <= lead or shape[d] == xs[d])
    end
    if fits then g = g:reshape(shape):expand(xs) end
  end
  if g:numel() ~= n then
    error(("features: groups of shape %s do not fit an input of shape %s"):format(lumen.shape_str(groups),
      lumen.shape_str(x)), 3)
  end
  if g:min_all() < 1 then error("features: group ids must be 1-based (>= 1)", 3) end
  return g:reshape { n }:long(), math.tointeger(g:max_all())
end

-- Element masks (B, ...) for coalitions Z (B, M) (float 0/1), laid out like x.
function M.masks(Z, ids, x)
  local shape = x.shape
  shape[1] = Z.shape[1]
  return Z:index_select(2, ids):reshape(shape)
end

-- where(mask, on, off) broadcast, in on's dtype (int64 token ids stay int64).
function M.mix(mask, on, off)
  local y = lumen.where(mask, on, off)
  if on:dtype() == "int64" then return y:long() end
  return y
end

-- Per-element values from per-feature values v (Lua array or 1-D tensor of m), shaped like x.
function M.spread(v, ids, x)
  if not lumen.is_tensor(v) then v = lumen.tensor(v) end
  return v:index_select(1, ids):reshape(x.shape)
end

return M
