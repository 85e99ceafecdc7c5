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
local text = recipe.text(p, model) -- ids (1, L) padded with <pad>; the tokens the model reads
local ids, tokens, notes, unknown, n = text.ids, text.tokens, text.notes, text.unknown, #text.tokens

local E = lumen.explain
local sal, target = E.text_saliency(model, ids, { target = recipe.target(model, p) })
local ig, gap = E.text_integrated_gradients(model, ids, { target = target, steps = p.steps })
local cam, _, layer = E.text_gradcam(model, ids, { target = target, layer = recipe.opt(p.layer) })
local prediction, score, name = recipe.prediction(model, ids, target)
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
