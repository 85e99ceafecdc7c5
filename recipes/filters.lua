-- Filters: a convolution layer's kernels as pictures. The first layer by default (on RGB models one
-- colour tile per filter); a deeper layer (layer=conv2) gives one row per filter, one gray tile per
-- input channel.
--   lumen run recipes/filters.lua [layer=conv1] [symmetric=false] [scale=8]
--   lumen run recipes/filters.lua model=../shared/data/models/mobilenet_v2_1.0_224_quant.tflite
-- Writes filters.png and filters.npy (the layer's weight (O, C, kh, kw)).
local lumen = require "lumen"
local recipe = lumen.recipe

local p = lumen.args { model = recipe.FASHION_MODEL, layer = "", symmetric = false, scale = 8, max_filters = 64,
                       max_channels = 16, out = "out/filters", seed = 0 }
lumen.seed(p.seed)
local model = recipe.load_model(p)
local pic, layer = lumen.explain.filters(model, nil, { layer = recipe.opt(p.layer), symmetric = p.symmetric,
  scale = p.scale, max_filters = p.max_filters, max_channels = p.max_channels })
local w = model:layer(layer).weight
print(("filters of layer %s: weight %s"):format(layer, lumen.shape_str(w)))

recipe.save_png(p.out, "filters.png", pic)
recipe.save_npy(p.out, "filters.npy", w:detach())
recipe.finish(p, { layer = layer })
