-- Classify one photo: the top classes with their labels and probabilities.
--   lumen run recipes/classify.lua image=../shared/data/images/parrot.png \
--     model=../shared/data/models/mobilenet_v2_1.0_224_quant.tflite labels=../shared/data/models/imagenet_labels.txt
-- The photo (PNG or JPEG) is preprocessed as the model file records (the TFLite MobileNets: squashed to
-- their size, [-1, 1]) or as preset= and the other image keys say (`lumen explain --list` shows the
-- presets); a file that records nothing, such as a plain ONNX export, needs preset=. Class ids are 1-based:
-- class c is output index c - 1 and line c of the labels file (line 1 of imagenet_labels.txt is
-- "background", which the 1001-class MobileNets score too; label_offset=1 drops it for 1000-class models).
-- Writes probabilities.npy ((1, classes): every class's probability) and a manifest with the top classes.
local lumen = require "lumen"
local recipe = lumen.recipe

local p = lumen.args(recipe.image_args {
  image = "../shared/data/images/parrot.png", labels = "../shared/data/models/imagenet_labels.txt",
  model = "../shared/data/models/mobilenet_v1_0.5_160_quant.tflite", top = 5, out = "out/classify", seed = 0,
})
lumen.seed(p.seed)
local model, _, x = recipe.load(p)
local ids, probs, labels, all = lumen.models.top(model, x, p.top)
print(("%s (%s, input %dx%d)"):format(p.image, p.model, x.shape[3], x.shape[4]))
local top = {}
for k = 1, #ids do
  print(("%2d. %6.2f%%  %-5d %s"):format(k, 100 * probs[k], ids[k], labels[k]))
  top[k] = { class = ids[k], label = labels[k], probability = probs[k] }
end
recipe.save_npy(p.out, "probabilities.npy", all)
recipe.finish(p, { top = top })
