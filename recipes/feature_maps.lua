-- Feature maps: one layer's activations for one input, a tile per channel (Zeiler & Fergus 2014).
--   lumen run recipes/feature_maps.lua [index=1] [layer=relu1] [max_maps=64]
--   lumen run recipes/feature_maps.lua model=../shared/data/models/mobilenet_v2_1.0_224_quant.tflite \
--     image=../shared/data/images/cat.png layer=MobilenetV2/expanded_conv_1/expand/Relu6
-- Writes feature_maps.png (the input beside the grid) and feature_maps.npy (the activations).
local lumen = require "lumen"
local recipe = lumen.recipe
local viz = lumen.viz

local p = lumen.args(recipe.image_args { model = recipe.FASHION_MODEL, image = "", index = 1, labels = "", layer = "relu1",
                       max_maps = 64, cell = 0, out = "out/feature_maps", seed = 0 })
lumen.seed(p.seed)
local model, img, x = recipe.load(p)
local grid, A = lumen.explain.feature_maps(model, x, { layer = recipe.opt(p.layer), max_maps = p.max_maps,
                                                       size = recipe.opt(p.cell) })
print(("feature maps of layer %s: %s"):format(p.layer, lumen.shape_str(A)))

recipe.save_png(p.out, "feature_maps.png", viz.panel({ img, grid }, { height = grid.shape[2], pad = 4 }))
recipe.save_npy(p.out, "feature_maps.npy", A)
recipe.finish(p, { layer = p.layer, shape = A.shape })
