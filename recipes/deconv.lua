-- Zeiler & Fergus (2014), figure 2: for `neurons` channels of a layer of the Fashion-MNIST CNN, the `top`
-- test images that activate each most, the deconvnet reconstruction of that activation (unpooling by
-- the max switches, ReLU, transposed convolution) beside the image patch it comes from.
--   lumen run recipes/deconv.lua [layer=relu3] [neurons=16] [top=9] [n=10000]
-- Writes deconv.png: per neuron, a 3x3 block of reconstructions beside the 3x3 block of patches; the
-- manifest lists each neuron's top images (test-set index, activation, position).
local lumen = require "lumen"
local recipe = lumen.recipe

local p = lumen.args { model = recipe.FASHION_MODEL, layer = "relu3", neurons = 16, top = 9, n = 10000,
                       patch_size = 32, batch_size = 500, out = "out/deconv", seed = 0 }
lumen.seed(p.seed)
local model = recipe.load_model(p)
local X = recipe.fashion_test():narrow(1, 1, p.n)
local grid, best, neurons = lumen.explain.deconv_grid(model, X, { layer = p.layer, neurons = p.neurons, top = p.top,
                                                                 batch_size = p.batch_size, patch_size = p.patch_size })
print(("layer %s: the top %d of %d test images for each of %d neurons"):format(p.layer, p.top, p.n, p.neurons))
recipe.save_png(p.out, "deconv.png", grid)
-- which test images (1-based), activations and positions each neuron's block shows
local top = {}
for _, k in ipairs(neurons) do top[tostring(k)] = best[k] end
recipe.finish(p, { layer = p.layer, top = top })
