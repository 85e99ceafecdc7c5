-- Filter visualisation: a layer's convolution kernels as pictures.
-- First-layer kernels with 3 input channels become one RGB tile each; deeper layers become a grid
-- with one row per filter and one gray tile per input channel (at most max_channels of them).
-- opts: layer = the first convolution; symmetric = false (true: scale so 0 is mid-gray, the same
--       scale for all tiles); max_filters = 64; max_channels = 16; scale = 4 (pixels per kernel cell).
-- Returns the picture (3, H, W) and the layer name.
local lumen = require "lumen"

local CONV = { Conv2d = true, Conv = true }

local function first_conv(model)
  for _, l in ipairs(model:layers()) do
    if CONV[l.type] then return l.name end
  end
  error("filters: the model has no 2-D convolution layer", 3)
end

return function(model, _, opts)
  opts = opts or {}
  local name = opts.layer or first_conv(model)
  local layer = model:layer(name) or error(("filters: unknown layer '%s'"):format(name), 2)
  local w = layer.weight
  if not w or #w.shape ~= 4 then error(("filters: layer '%s' has no 4-D kernel"):format(name), 2) end
  local O, C, kh, kw = table.unpack(w.shape)
  local nf = math.min(O, opts.max_filters or 64)
  local scale = opts.scale or 4
  w = w:narrow(1, 1, nf)
  local function rescale(t)
    if opts.symmetric then
      local m = math.max(t:abs():max_all(), 1e-12)
      return t / (2 * m) + 0.5
    end
    return t
  end
  local tiles
  if C == 3 then
    tiles = rescale(w)
    tiles = lumen.image.resize(tiles, kh * scale, kw * scale, { method = "nearest" })
    return lumen.viz.grid(tiles, { ncol = math.ceil(math.sqrt(nf)), normalize = not opts.symmetric and "each" or false }),
      name
  end
  local nc = math.min(C, opts.max_channels or 16)
  tiles = rescale(w:narrow(2, 1, nc)):reshape { nf * nc, 1, kh, kw }
  tiles = lumen.image.resize(tiles, kh * scale, kw * scale, { method = "nearest" })
  return lumen.viz.grid(tiles, { ncol = nc, normalize = not opts.symmetric and "each" or false }), name
end
