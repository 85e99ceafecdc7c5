-- Class-model visualisation (Simonyan et al. 2014): for each class, the input that maximises the class
-- score minus lambda ||I||^2, by gradient ascent from faint noise, with jitter and an occasional blur
-- to keep the pictures natural, clamped to the data's range [0, 1] (clamp=false: free). One picture per
-- class of the Fashion-MNIST CNN.
--   lumen run recipes/class_model.lua [classes=1,...,10] [steps=200] [lr=0.1] [l2=0.001] [tv=0]
-- Writes class_model.png (one tile per class, each min-max normalised, labelled) and class_<c>.npy.
local lumen = require "lumen"
local recipe = lumen.recipe
local viz = lumen.viz

local p = lumen.args { model = recipe.FASHION_MODEL, classes = "1,2,3,4,5,6,7,8,9,10", steps = 200, lr = 0.1,
                       l2 = 1e-3, tv = 0.0, clamp = true, jitter = 1, blur_every = 10, blur_sigma = 0.5,
                       out = "out/class_model", seed = 0 }
lumen.seed(p.seed)
local model = recipe.load_model(p)
local tiles, names = {}, {}
for i, c in ipairs(recipe.ints(p.classes)) do
  local img, curve = lumen.explain.class_model(model, { target = c, steps = p.steps, lr = p.lr, l2 = p.l2, tv = p.tv,
    jitter = p.jitter, blur_every = p.blur_every, blur_sigma = p.blur_sigma, clamp = p.clamp and { 0, 1 } or nil })
  names[i] = recipe.label(model, c)
  print(("class %d (%s): score %.3f after %d steps"):format(c, names[i], curve[#curve], p.steps))
  recipe.save_npy(p.out, ("class_%d.npy"):format(c), img)
  tiles[i] = viz.enlarge(img:squeeze(1):normalize01())
end
for i, n in ipairs(names) do names[i] = n:upper():sub(1, 11) end
recipe.save_png(p.out, "class_model.png", viz.grid(tiles, { ncol = 5, labels = names }))
recipe.finish(p, { classes = names })
