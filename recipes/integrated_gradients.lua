-- Integrated Gradients (Sundararajan et al. 2017) for one input: the gradient integrated along the
-- straight path from a baseline (zeros, or a blurred copy with baseline=blur) to the input, times
-- (input - baseline). Prints the completeness gap sum(attr) - (S_c(x) - S_c(baseline)), near 0.
--   lumen run recipes/integrated_gradients.lua [index=1] [steps=50] [baseline=zeros|blur]
--   lumen run recipes/integrated_gradients.lua model=../shared/data/models/mobilenet_v2_1.0_224_quant.tflite \
--     labels=../shared/data/models/imagenet_labels.txt image=../shared/data/images/cat.png baseline=blur
-- Writes ig.png (input | sum over channels, 0 white | magnitude: viz.attribution_panel) and ig.npy
-- (the attribution shaped like the input).
local lumen = require "lumen"
local recipe = lumen.recipe
local viz = lumen.viz

local p = lumen.args(recipe.image_args { model = recipe.FASHION_MODEL, image = "", index = 1, labels = "", target = "",
                       steps = 50, baseline = "zeros", batch_size = 10, out = "out/integrated_gradients", seed = 0 })
lumen.seed(p.seed)
local model, img, x = recipe.load(p)
local attr, gap, target = lumen.explain.integrated_gradients(model, x, {
  target = recipe.target(model, p, x), steps = p.steps, baseline = p.baseline, batch_size = p.batch_size })
local name = recipe.label(model, target, true)
print(("integrated gradients for class %d (%s), %d steps from %s: completeness gap %.4g"):format(
  target, name, p.steps, p.baseline, gap))

recipe.save_png(p.out, "ig.png", viz.attribution_panel(img, attr, { "input", name, "magnitude" }))
recipe.save_npy(p.out, "ig.npy", attr)
recipe.finish(p, { target = target, label = recipe.label(model, target), completeness_gap = gap })
