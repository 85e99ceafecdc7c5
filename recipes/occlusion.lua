-- Occlusion sensitivity (Zeiler & Fergus 2014) for one input: the drop of the class score when a
-- patch x patch square of `fill` slides over the input with the given stride.
--   lumen run recipes/occlusion.lua [index=1] [patch=6] [stride=2] [fill=0]
--   lumen run recipes/occlusion.lua model=../shared/data/models/mobilenet_v2_1.0_224_quant.tflite \
--     labels=../shared/data/models/imagenet_labels.txt image=../shared/data/images/cat.png patch=48 stride=16
-- Writes occlusion.png (input | score drop, 0 white | overlay) and occlusion.npy (the map (1, 1, H, W)).
local lumen = require "lumen"
local recipe = lumen.recipe

local p = lumen.args(recipe.image_args { model = recipe.FASHION_MODEL, image = "", index = 1, labels = "", target = "",
                       patch = 6, stride = 2, fill = 0.0, batch_size = 32, out = "out/occlusion", seed = 0 })
lumen.seed(p.seed)
local model, img, x = recipe.load(p)
local map, target, score = lumen.explain.occlusion(model, x, { target = recipe.target(model, p, x), patch = p.patch,
                                                               stride = p.stride, fill = p.fill, batch_size = p.batch_size })
local name = recipe.label(model, target, true)
print(("occlusion for class %d (%s), score %.3f: largest drop %.3f, largest rise %.3f"):format(
  target, name, score, map:max_all(), -map:min_all()))

recipe.save_map(p.out, "occlusion", img, map, { signed = true, labels = { "input", name, "occlusion" } })
recipe.finish(p, { target = target, label = recipe.label(model, target), score = score })
