-- Vanilla saliency (Simonyan et al. 2014) and SmoothGrad (Smilkov et al. 2017) for one input:
-- |dS_c/dI| with the max over channels, and its SmoothGrad average over n noisy copies.
local lumen = require "lumen"
local recipe = lumen.recipe

local p = lumen.args {
  model = recipe.FASHION_MODEL, image = "", index = 1, labels = "", target = 0,
  n = 50, noise = 0.15, batch_size = 10, out = "out/saliency", seed = 0,
}
lumen.seed(p.seed)
local model, img, x = recipe.load(p)
local target = p.target > 0 and p.target or nil
local grad, targets = lumen.explain.saliency(model, x, { target = target, abs = false })
local name = recipe.label(model, targets[1])
print(("saliency for class %d (%s)"):format(targets[1], name))
lumen.write_npy(lumen.output(p.out, "gradient.npy"), grad)
recipe.save_map(p.out, "saliency", img, recipe.pixel_map(grad), { labels = { "input", "saliency", "overlay" } })
local sg = lumen.explain.smoothgrad(model, x, { target = targets[1], n = p.n, noise = p.noise,
                                                batch_size = p.batch_size })
recipe.save_map(p.out, "smoothgrad", img, recipe.pixel_map(sg), { labels = { "input", "smoothgrad", "overlay" } })
lumen.manifest(p.out, { target = targets[1], label = name, model = p.model, model_sha256 = lumen.sha256_file(p.model) })
