-- Class activation mapping (Zhou et al. 2016) for one input of a network that ends in global average
-- pooling and one dense layer (the shipped Fashion-MNIST CNN does): CAM_c = sum_k w_ck A^k.
--   lumen run recipes/cam.lua [index=1] [target=0 (top class)]
-- Writes cam.png (input | map | overlay), cam.npy (upsampled, [0, 1]) and raw.npy (signed, at the
-- feature resolution).
local lumen = require "lumen"
local recipe = lumen.recipe

local p = lumen.args(recipe.image_args { model = recipe.FASHION_MODEL, image = "", index = 1, labels = "", target = "",
                       out = "out/cam", seed = 0 })
lumen.seed(p.seed)
local model, img, x = recipe.load(p)
local map, targets, layer, raw = lumen.explain.cam(model, x, { target = recipe.target(model, p, x) }) -- one forward
local name = recipe.label(model, targets[1], true)
print(("CAM for class %d (%s) from layer %s"):format(targets[1], name, layer))

recipe.save_map(p.out, "cam", img, map, { labels = { "input", name, "cam" } })
recipe.save_npy(p.out, "raw.npy", raw)
recipe.finish(p, { target = targets[1], label = recipe.label(model, targets[1]), layer = layer })
