-- Filter visualisation: a layer's convolution kernels as pictures (as in Krizhevsky et al. 2012 and
-- Zeiler & Fergus 2014). Kernels with 3 input channels (a first layer on RGB) become one RGB tile each,
-- ceil(sqrt(filters)) per row; other layers become a grid with one row per filter and one gray tile per
-- input channel (at most max_channels of them).
-- opts: layer = the first Conv2d; symmetric = false (true: one scale for all tiles with 0 as
--       mid-gray; otherwise each tile min-max normalised); max_filters = 64; max_channels = 16;
--       scale = 4 (pixels per kernel cell). The input argument is not used.
-- Returns the picture (C, H, W) (lumen.viz.grid, 2-pixel padding) and the layer name.
local lumen = require "lumen"
local common = require "lumen.explain.common"

local M = {}

local OPTIONS = common.options("filters", {
  layer = { nil, "layer" }, symmetric = { false, "boolean" }, max_filters = { 64, "integer >= 1" },
  max_channels = { 16, "integer >= 1" }, scale = { 4, "integer >= 1" },
})

local function first_conv(model)
  for _, l in ipairs(model:layers()) do
    if l.type == "Conv2d" then return l.name end
  end
  error("filters: the model has no 2-D convolution layer", 3)
end

function M.filters(model, _, opts)
  local o = OPTIONS(opts, model)
  common.need_model(model, "filters")
  local name = o.layer or first_conv(model)
  local layer = model:layer(name) or error(("filters: layer '%s' has no kernel"):format(name), 2)
  local w = layer.weight
  if not lumen.is_tensor(w) or #w.shape ~= 4 then error(("filters: layer '%s' has no 4-D kernel"):format(name), 2) end
  local O, C, kh, kw = table.unpack(w.shape)
  local nf, scale = math.min(O, o.max_filters), o.scale
  local tiles, ncol = w:detach():narrow(1, 1, nf), math.ceil(math.sqrt(nf))
  if C ~= 3 then
    local nc = math.min(C, o.max_channels)
    tiles = tiles:narrow(2, 1, nc):reshape { nf * nc, 1, kh, kw }
    if nc > 1 then ncol = nc end
  end
  return lumen.viz.grid(tiles, { ncol = ncol, size = { kh * scale, kw * scale },
                                 normalize = o.symmetric and "all" or "each", symmetric = o.symmetric }), name
end

return M
