-- Filter visualisation: a layer's convolution kernels as pictures (as in Krizhevsky et al. 2012 and
-- Zeiler & Fergus 2014). Kernels with 3 input channels (a first layer on RGB) become one RGB tile each,
-- ceil(sqrt(filters)) per row; other layers become a grid with one row per filter and one gray tile per
-- input channel (at most max_channels of them).
-- opts: layer = the first Conv2d; symmetric = false (true: one scale for all tiles with 0 as
--       mid-gray; otherwise each tile min-max normalised); max_filters = 64; max_channels = 16;
--       scale = 4 (pixels per kernel cell). The input argument is not used.
-- Returns the picture (C, H, W) (lumen.viz.grid, 2-pixel padding) and the layer name.
local lumen = require "lumen"

local function first_conv(model)
  for _, l in ipairs(model:layers()) do
    if l.type == "Conv2d" then return l.name end
  end
  error("filters: the model has no 2-D convolution layer", 3)
end

return function(model, _, opts)
  opts = opts or {}
  if type(model) == "function" then error("filters: needs a lumen model, not a plain function", 2) end
  local name = opts.layer or first_conv(model)
  local layer = model:layer(name) or error(("filters: unknown layer '%s'"):format(name), 2)
  local w = layer.weight
  if not w or #w.shape ~= 4 then error(("filters: layer '%s' has no 4-D kernel"):format(name), 2) end
  local O, C, kh, kw = table.unpack(w.shape)
  local nf, scale = math.min(O, opts.max_filters or 64), opts.scale or 4
  local tiles, ncol = w:detach():narrow(1, 1, nf), math.ceil(math.sqrt(nf))
  if C ~= 3 then
    local nc = math.min(C, opts.max_channels or 16)
    tiles = tiles:narrow(2, 1, nc):reshape { nf * nc, 1, kh, kw }
    if nc > 1 then ncol = nc end
  end
  return lumen.viz.grid(tiles, { ncol = ncol, size = { kh * scale, kw * scale },
                                 normalize = opts.symmetric and "all" or "each", symmetric = opts.symmetric }), name
end
