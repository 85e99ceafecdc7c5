-- Classify one photo: the top classes with their labels and probabilities.
--   lumen run recipes/classify.lua image=../shared/data/images/parrot.png \
--     model=../shared/data/models/mobilenet_v2_1.0_224_quant.tflite labels=../shared/data/models/imagenet_labels.txt
-- The photo is resized whole (bilinear, no crop) to the model's input size and scaled as model.input_spec
-- says; models whose file does not say how (ONNX) get the range scale=lo,hi ([-1, 1], the convention of
-- the shared MobileNets). Class ids are 1-based: class c is output index c - 1 and line c of the labels
-- file (line 1 of imagenet_labels.txt is "background").
-- Writes probabilities.npy ((1, classes): every class's probability) and a manifest with the top classes.
local lumen = require "lumen"

local p = lumen.args {
  image = "../shared/data/images/parrot.png", labels = "../shared/data/models/imagenet_labels.txt",
  model = "../shared/data/models/mobilenet_v1_0.5_160_quant.tflite", top = 5, scale = "-1,1",
  out = "out/classify", seed = 0,
}
lumen.seed(p.seed)
local model = lumen.load_model(p.model)
if p.labels ~= "" then model.labels = assert(lumen.labels(p.labels)) end
local spec = model.input_spec or {}
if not spec.size then error(p.model .. ": the model does not say its input size (no input_spec)") end
if not spec.scale then
  local lo, hi = p.scale:match("^%s*([-%d.]+)%s*,%s*([-%d.]+)%s*$")
  if not lo then error(("scale=%s: expected lo,hi such as -1,1"):format(p.scale)) end
  spec.scale = { tonumber(lo), tonumber(hi) }
end
local img = assert(lumen.image.load(p.image))
local x = lumen.image.preprocess(img, spec)

-- The scores before a final softmax, turned into probabilities (so models without one work too).
local logits = lumen.no_grad(model.forward, model, x, { logits = true })
local probs = lumen.softmax(logits, 2)
local values, ids = lumen.topk(probs, math.min(p.top, probs.shape[2]), 2)
print(("%s (%s, input %dx%d)"):format(p.image, p.model, spec.size[1], spec.size[2]))
local top = {}
for k = 1, values.shape[2] do
  local c = ids:get { 1, k }
  local label = model.labels and model.labels[c] or "?"
  top[k] = { class = c, label = label, probability = values:get { 1, k } }
  print(("%2d. %6.2f%%  %-5d %s"):format(k, 100 * values:get { 1, k }, c, label))
end
lumen.recipe.save_npy(p.out, "probabilities.npy", probs)
lumen.recipe.finish(p, { top = top })
