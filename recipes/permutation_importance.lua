-- Permutation feature importance (Breiman 2001; Fisher et al. 2019) of the Fashion-MNIST CNN: the drop
-- in test accuracy when one patch x patch square of pixels is shuffled across the first n test images
-- (the square's pixels move together), averaged over `repeats` shuffles.
--   lumen run recipes/permutation_importance.lua [n=2000] [patch=4] [repeats=3] [metric=accuracy|neg_loss]
-- Writes permutation_importance.png (mean test image | importance per square | overlay),
-- permutation_importance.npy ((1, 1, 28, 28), each pixel its square's mean drop) and std.npy.
local lumen = require "lumen"
local recipe = lumen.recipe
local E = lumen.explain

local p = lumen.args { model = recipe.FASHION_MODEL, n = 2000, patch = 4, repeats = 3, metric = "accuracy",
                       batch_size = 500, out = "out/permutation_importance", seed = 0 }
lumen.seed(p.seed)
local model = recipe.load_model(p)
local X, y = recipe.fashion_test()
X, y = X:narrow(1, 1, p.n), y:narrow(1, 1, p.n)
local H, W = X.shape[3], X.shape[4]
local groups = E.patches(H, W, p.patch)
local mean, std, base = E.permutation_importance(model, X, y, { features = groups, repeats = p.repeats,
                                                                          metric = p.metric, batch_size = p.batch_size })
local function spread(v) return lumen.tensor(v):index_select(1, groups:reshape { H * W }):reshape { 1, 1, H, W } end
local map = spread(mean)
local best, arg = -math.huge, 1
for j, v in ipairs(mean) do if v > best then best, arg = v, j end end
print(("%s on %d test images: %.4f; %d squares of %dx%d; largest drop %.4f (square %d)"):format(
  p.metric, p.n, base, #mean, p.patch, p.patch, best, arg))

recipe.save_map(p.out, "permutation_importance", X:mean(1):squeeze(1), map,
                { labels = { "mean image", "importance", "overlay" } })
recipe.save_npy(p.out, "std.npy", spread(std))
recipe.finish(p, { metric = p.metric, baseline = base, importance = mean, std = std })
