-- KernelSHAP (Lundberg & Lee 2017) with SLIC superpixels as the features: Shapley values of the
-- class score, superpixels switched off to a baseline (zeros, or blur), fitted on nsamples coalitions.
-- Prints the efficiency check: the values sum to f(x) - f(baseline).
--   lumen run recipes/kernel_shap.lua [index=1] [segments=30] [nsamples=2048] [baseline=zeros|blur]
--   lumen run recipes/kernel_shap.lua model=../shared/data/models/mobilenet_v2_1.0_224_quant.tflite \
--     labels=../shared/data/models/imagenet_labels.txt image=../shared/data/images/cat.png nsamples=512
-- Writes kernel_shap.png (superpixels | value per superpixel, 0 white | overlay), kernel_shap.npy
-- (shaped like the input) and segments.npy.
local lumen = require "lumen"
local recipe = lumen.recipe
local viz = lumen.viz

local p = lumen.args(recipe.image_args { model = recipe.FASHION_MODEL, image = "", index = 1, labels = "", target = "",
                       segments = 30, compactness = 10.0, nsamples = 2048, baseline = "zeros", batch_size = 64,
                       out = "out/kernel_shap", seed = 0 })
lumen.seed(p.seed)
local model, img, x = recipe.load(p)
local rgb = lumen.image.to_rgb(img)
local segments = viz.slic(rgb, { n_segments = p.segments, compactness = p.compactness })
local baselines = { zeros = lumen.zeros_like(x), blur = lumen.gaussian_blur(x, 5) }
local baseline = baselines[p.baseline] or error("baseline must be zeros or blur, got " .. p.baseline, 0)
local phi, base, values, target = lumen.explain.kernel_shap(model, x, { target = recipe.target(model, p, x),
  baseline = baseline, features = segments, nsamples = p.nsamples, batch_size = p.batch_size })
local name = recipe.label(model, target, true)
local total = 0
for _, v in ipairs(values) do total = total + v end
print(("KernelSHAP for class %d (%s), %d superpixels: base value %.4f + sum of values %.4f = f(x)"):format(
  target, name, #values, base, total))

local map = viz.enlarge(phi:narrow(2, 1, 1):squeeze(1)) -- every channel of a superpixel carries its value
local big = viz.enlarge(rgb)
recipe.save_png(p.out, "kernel_shap.png", viz.panel({ viz.mark_boundaries(big, viz.enlarge(segments)),
    viz.colormap(map, "bwr"), viz.overlay(big, map, { cmap = "bwr" }) },
  { labels = { "superpixels", name, "overlay" } }))
recipe.save_npy(p.out, "kernel_shap.npy", phi)
recipe.save_npy(p.out, "segments.npy", segments:float())
recipe.finish(p, { target = target, label = recipe.label(model, target), base_value = base, values = values })
