-- Guided backpropagation (Springenberg et al. 2015), or the deconvnet backward pass (Zeiler & Fergus
-- 2014) with mode=deconvnet, for one input: the gradient with ReLU's backward rule swapped.
--   lumen run recipes/guided_backprop.lua [index=1] [mode=guided|deconvnet]
--   lumen run recipes/guided_backprop.lua model=../shared/data/models/mobilenet_v2_1.0_224_quant.tflite \
--     labels=../shared/data/models/imagenet_labels.txt image=../shared/data/images/cat.png
-- Writes <mode>.png (input | signed gradient as a picture | per-pixel max |g|, clipped at the 99th
-- percentile) and <mode>.npy (the gradient shaped like the input).
local lumen = require "lumen"
local recipe = lumen.recipe
local viz = lumen.viz

local p = lumen.args(recipe.image_args { model = recipe.FASHION_MODEL, image = "", index = 1, labels = "", target = "",
                       mode = "guided", out = "out/guided_backprop", seed = 0 })
lumen.seed(p.seed)
local model, img, x = recipe.load(p)
local methods = { guided = "guided_backprop", deconvnet = "deconvnet" }
local method = methods[p.mode] or error("mode must be guided or deconvnet, got " .. p.mode, 0)
local g, targets = lumen.explain[method](model, x, { target = recipe.target(model, p, x) })
local name = recipe.label(model, targets[1], true)
print(("%s for class %d (%s)"):format(method, targets[1], name))

local magnitude = viz.colormap(viz.clip(viz.pixel_map(g)):squeeze(1), "inferno")
recipe.save_png(p.out, p.mode .. ".png", viz.panel({ viz.enlarge(img), viz.enlarge(viz.gradient_image(g)),
  viz.enlarge(magnitude) }, { labels = { "input", name, "magnitude" } }))
recipe.save_npy(p.out, p.mode .. ".npy", g)
recipe.finish(p, { target = targets[1], label = recipe.label(model, targets[1]), method = method })
