-- GradientSHAP / expected gradients (Lundberg & Lee 2017; Erion et al. 2021): Integrated Gradients
-- averaged over baselines drawn from a background set, estimated with n random (baseline, point on the
-- path) samples. The background: `background` random Fashion-MNIST test images (background=test), or a
-- single black / blurred copy of the input (zeros, blur: for photos).
--   lumen run recipes/gradient_shap.lua [index=1] [n=200] [background=test] [background_size=50]
--   lumen run recipes/gradient_shap.lua model=../shared/data/models/mobilenet_v2_1.0_224_quant.tflite \
--     labels=../shared/data/models/imagenet_labels.txt image=../shared/data/images/cat.png background=blur
-- Writes gradient_shap.png (viz.attribution_panel) and gradient_shap.npy (shaped like the input).
local lumen = require "lumen"
local recipe = lumen.recipe
local viz = lumen.viz

local p = lumen.args(recipe.image_args { model = recipe.FASHION_MODEL, image = "", index = 1, labels = "", target = "",
                       n = 200, background = "test", background_size = 50, stdevs = 0.0, batch_size = 10,
                       out = "out/gradient_shap", seed = 0 })
lumen.seed(p.seed)
local model, img, x = recipe.load(p)
local function test_images()
  local X = recipe.fashion_test()
  local pick = { table.unpack(lumen.randperm(X.shape[1]), 1, p.background_size) }
  return X:index_select(1, lumen.tensor(pick, "int64"))
end
local backgrounds = { test = test_images, zeros = function() return lumen.zeros_like(x) end,
                      blur = function() return lumen.gaussian_blur(x, 5) end }
local bg = (backgrounds[p.background] or error("background must be test, zeros or blur, got " .. p.background, 0))()
local attr, target = lumen.explain.gradient_shap(model, x, { target = recipe.target(model, p, x), background = bg, n = p.n,
                                                             stdevs = p.stdevs, batch_size = p.batch_size })
local name = recipe.label(model, target, true)
local fx = lumen.no_grad(model.forward, model, x, { logits = true }):get { 1, target }
local fb = lumen.no_grad(model.forward, model, bg, { logits = true }):narrow(2, target, 1):mean_all()
print(("GradientSHAP for class %d (%s), %d samples over %d background inputs: sum of attributions %.4f,"
  .. " f(x) - E f(background) = %.4f"):format(target, name, p.n, bg.shape[1], attr:sum_all(), fx - fb))

recipe.save_png(p.out, "gradient_shap.png", viz.attribution_panel(img, attr, { "input", name, "magnitude" }))
recipe.save_npy(p.out, "gradient_shap.npy", attr)
recipe.finish(p, { target = target, label = recipe.label(model, target), background = bg.shape[1] })
