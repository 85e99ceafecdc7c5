-- Which words made the text CNN choose its class? Per-token saliency (the gradient's L2 norm at each
-- token's embedding), Integrated Gradients in embedding space (from all-padding) and 1-D Grad-CAM (at
-- the first convolution by default: per-token resolution; the last one has 3 positions), each as a
-- self-contained HTML page and a line in the terminal. Each page shows the prediction, states its
-- colour range, marks words the model does not know (it saw <unk>) and flags a map that is near zero
-- (IG and Grad-CAM: largest |score| under 1 % of the class score; drawn pale, not stretched).
-- The model and its vocabulary come from recipes/train_textcnn.lua.
--   lumen run recipes/text_saliency.lua text="..." [target=0] [steps=50]
-- Writes saliency.html, integrated_gradients.html, gradcam.html and scores.npy ((3, tokens): one row
-- per method, in that order).
local lumen = require "lumen"
local recipe = lumen.recipe

local p = lumen.args {
  model = "data/models/textcnn_fortunes.lumen", vocab = "", target = "", steps = 50, layer = "conv1d_1",
  out = "out/text_saliency",
  text = "The computer program crashed again, so the engineers rewrote the software and debugged the code.",
  seed = 0,
}
lumen.seed(p.seed)
local model = recipe.load_model(p)
local vocab_path = recipe.opt(p.vocab) or (p.model:match("^(.*)/[^/]*$") or ".") .. "/" .. model.input_spec.vocabulary
local vocab = assert(lumen.data.load_vocabulary(vocab_path))
local tokens = lumen.data.tokenize(p.text)
local L = model.input_spec.length
local ids = lumen.tensor({ vocab:encode(tokens, L) }, "int64") -- (1, L), padded with <pad>
local n, notes, unknown = math.min(#tokens, L), {}, {}
if #tokens > L then notes[1] = ("The text has %d tokens; the model reads the first %d."):format(#tokens, L) end
tokens = { table.unpack(tokens, 1, n) }
for i, tok in ipairs(tokens) do if not vocab.index[tok] then unknown[#unknown + 1] = i end end

local E = lumen.explain
local sal, target = E.text_saliency(model, ids, { target = recipe.target(model, p) })
local ig, gap = E.text_integrated_gradients(model, ids, { target = target, steps = p.steps })
local cam, _, layer = E.text_gradcam(model, ids, { target = target, layer = recipe.opt(p.layer) })
local name = recipe.label(model, target)
local logits = lumen.no_grad(model.forward, model, ids, { logits = true })
local score, prob = logits:get { 1, target }, lumen.softmax(logits, 2):get { 1, target }
local prediction = ("prediction: %s (class %d), score %.3g, probability %.1f %%"):format(name, target, score, 100 * prob)
print(("%s; IG completeness gap %.3g; Grad-CAM at layer %s"):format(prediction, gap, layer))

local rows = {}
for i, m in ipairs { { "saliency", sal }, { "integrated_gradients", ig, score }, { "gradcam", cam, score } } do
  local scores = m[2]:narrow(2, 1, n)
  rows[i] = scores
  local o = { title = ("%s for class '%s'"):format(m[1]:gsub("_", " "), name), prediction = prediction, notes = notes,
              unknown = unknown, reference = m[3], reference_label = "class score" }
  assert(lumen.html.save(recipe.path(p.out, m[1] .. ".html"), tokens, scores, o))
  print(m[1] .. ": " .. lumen.html.terminal(tokens, scores, o))
end
recipe.save_npy(p.out, "scores.npy", lumen.cat(rows, 1))
recipe.finish(p, { target = target, label = name, tokens = tokens, ig_gap = gap, gradcam_layer = layer })
