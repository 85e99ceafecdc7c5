-- Layer-wise relevance propagation (Bach et al. 2015; rules as in Montavon et al. 2019) for one input,
-- with several rules side by side: every layer on one rule (epsilon, gamma, alphabeta, zplus), and the
-- composite of the overview paper — zbox at the first layer with weights (also behind a Pad), epsilon on
-- the dense layers (a 1x1 convolution on a 1x1 map, MobileNet's classifier, is one), gamma on the other
-- convolutions (model:roles). Prints each rule's conservation: the input relevance against the score it
-- started from, and writes both to the manifest.
--   lumen run recipes/lrp.lua [index=1] [rules=epsilon,gamma,alphabeta,composite] [gamma=0.25]
--   lumen run recipes/lrp.lua model=../shared/data/models/mobilenet_v2_1.0_224_quant.tflite \
--     labels=../shared/data/models/imagenet_labels.txt image=../shared/data/images/cat.png
-- Writes lrp.png (the input, then the relevance summed over channels per rule, 0 white) and
-- lrp_<rule>.npy (shaped like the input).
local lumen = require "lumen"
local recipe = lumen.recipe
local viz = lumen.viz

local p = lumen.args(recipe.image_args { model = recipe.FASHION_MODEL, image = "", index = 1, labels = "", target = "",
                       rules = "epsilon,gamma,alphabeta,composite", epsilon = 1e-6, gamma = 0.25, alpha = 2.0, beta = 1.0,
                       out = "out/lrp", seed = 0 })
lumen.seed(p.seed)
local model, img, x = recipe.load(p)
local composite = { first = "zbox", dense = "epsilon", Conv2d = "gamma" }

local cells, names, conservation = { viz.enlarge(img) }, { "input" }, {}
for rule in p.rules:gmatch("[^,]+") do
  local R, targets, scores = lumen.explain.lrp(model, x, { target = recipe.target(model, p, x), epsilon = p.epsilon,
    gamma = p.gamma, alpha = p.alpha, beta = p.beta, rule = rule == "composite" and composite or rule })
  local total = R:sum_all()
  print(("%-10s class %d (%s): input relevance %.4g of score %.4g (%.1f%% conserved)"):format(rule, targets[1],
    recipe.label(model, targets[1]), total, scores[1], 100 * total / scores[1]))
  conservation[rule] = { relevance = total, score = scores[1] }
  cells[#cells + 1] = viz.enlarge(viz.colormap(viz.clip(viz.pixel_map(R, true)):squeeze(1), "bwr"))
  names[#names + 1] = rule
  recipe.save_npy(p.out, ("lrp_%s.npy"):format(rule), R)
end
recipe.save_png(p.out, "lrp.png", viz.panel(cells, { labels = names }))
recipe.finish(p, { rules = names, composite = composite, conservation = conservation })
