-- LIME (Ribeiro et al. 2016) on superpixels: a weighted linear model fitted to the class score of
-- num_samples copies of the input with random SLIC superpixels replaced by their mean colour.
--   lumen run recipes/lime.lua [index=1] [segments=30] [num_samples=1000] [top=5]
--   lumen run recipes/lime.lua model=../shared/data/models/mobilenet_v2_1.0_224_quant.tflite \
--     labels=../shared/data/models/imagenet_labels.txt image=../shared/data/images/cat.png segments=50
-- Writes lime.png (superpixels | weight per superpixel, 0 white | the top segments, green for, red
-- against), lime.npy (the weights spread over the pixels) and segments.npy.
local lumen = require "lumen"
local recipe = lumen.recipe
local viz = lumen.viz

local p = lumen.args(recipe.image_args { model = recipe.FASHION_MODEL, image = "", index = 1, labels = "", target = "",
                       segments = 30, compactness = 10.0, num_samples = 1000, top = 5, batch_size = 50,
                       out = "out/lime", seed = 0 })
lumen.seed(p.seed)
local model, img, x = recipe.load(p)
local rgb = lumen.image.to_rgb(img)
local segments = viz.slic(rgb, { n_segments = p.segments, compactness = p.compactness })
local weights, _, r2, _, target = lumen.explain.lime(model, x, { target = recipe.target(model, p, x), segments = segments,
                                                        num_samples = p.num_samples, batch_size = p.batch_size })
local name = recipe.label(model, target, true)
print(("LIME for class %d (%s): %d superpixels, weighted R^2 of the fit %.3f"):format(target, name, #weights, r2))

local map = lumen.tensor(weights):index_select(1, segments:reshape { segments:numel() })
  :reshape { 1, 1, img.shape[2], img.shape[3] } -- each pixel carries its superpixel's weight
local big, seg = viz.enlarge(rgb), viz.enlarge(segments)
recipe.save_png(p.out, "lime.png", viz.panel({ viz.mark_boundaries(big, seg),
    viz.colormap(viz.enlarge(map:squeeze(1)), "bwr"), lumen.explain.lime_picture(big, seg, weights, { num = p.top }) },
  { labels = { "superpixels", name, "top " .. p.top } }))
recipe.save_npy(p.out, "lime.npy", map)
recipe.save_npy(p.out, "segments.npy", segments:float())
recipe.finish(p, { target = target, label = recipe.label(model, target), r2 = r2, weights = weights })
