-- Vanilla saliency (Simonyan et al. 2014) and SmoothGrad (Smilkov et al. 2017) for one input:
-- |dS_c/dI| with the max over channels, and its SmoothGrad average over n noisy copies.
--   lumen run recipes/saliency.lua [index=1] [n=50] [noise=0.15]
--   lumen run recipes/saliency.lua model=../shared/data/models/mobilenet_v2_1.0_224_quant.tflite \
--     labels=../shared/data/models/imagenet_labels.txt image=../shared/data/images/cat.png
-- Writes saliency.png/.npy and smoothgrad.png/.npy (per-pixel maps) and gradient.npy (the signed
-- gradient shaped like the input).
local lumen = require "lumen"
local recipe = lumen.recipe
local viz = lumen.viz

local p = lumen.args(recipe.image_args {
  model = recipe.FASHION_MODEL, image = "", index = 1, labels = "", target = "",
  n = 50, noise = 0.15, batch_size = 10, out = "out/saliency", seed = 0,
})
lumen.seed(p.seed)
local model, img, x = recipe.load(p)
local grad, targets = lumen.explain.saliency(model, x, { target = recipe.target(model, p, x), abs = false })
local sg = lumen.explain.smoothgrad(model, x, { target = targets[1], n = p.n, noise = p.noise, batch_size = p.batch_size })
local name = recipe.label(model, targets[1], true)
print(("saliency and smoothgrad for class %d (%s)"):format(targets[1], name))

recipe.save_npy(p.out, "gradient.npy", grad)
recipe.save_map(p.out, "saliency", img, viz.pixel_map(grad), { labels = { "input", name, "saliency" } })
recipe.save_map(p.out, "smoothgrad", img, viz.pixel_map(sg), { labels = { "input", name, "smoothgrad" } })
recipe.finish(p, { target = targets[1], label = recipe.label(model, targets[1]) })
