-- Which words made the text transformer choose its class? Attention rollout (Abnar & Zuidema 2020: how
-- much of the class token's input comes from each word, class-agnostic), transformer attribution
-- (Chefer et al. 2021: gradient-weighted attention for the class), per-token saliency (the gradient's L2
-- norm at each token's embedding) and Integrated Gradients in embedding space (from all-padding), each
-- as a self-contained HTML page and a line in the terminal, as recipes/text_saliency.lua shows the text
-- CNN's. The model and its vocabulary come from recipes/train_transformer_text.lua.
--   lumen run recipes/text_transformer.lua text="..." [target=0] [steps=50]
-- Writes rollout.html, attribution.html, saliency.html, integrated_gradients.html and scores.npy
-- ((4, tokens): one row per method, in that order).
local lumen = require "lumen"
local recipe = lumen.recipe

local p = lumen.args {
  model = "data/models/transformer_fortunes.lumen", vocab = "", target = "", steps = 50, out = "out/text_transformer",
  text = "The computer program crashed again, so the engineers rewrote the software and debugged the code.",
  seed = 0,
}
lumen.seed(p.seed)
local model = recipe.load_model(p)
local text = recipe.text(p, model) -- ids (1, L) padded with <pad> (masked by the model); the tokens the model reads
local ids, tokens, notes, unknown, n = text.ids, text.tokens, text.notes, text.unknown, #text.tokens

local E = lumen.explain
local target = recipe.target(model, p)
local attr, targets = E.transformer_attribution(model, ids, { target = target })
target = targets[1]
local rollout = E.attention_rollout(model, ids)
local sal = E.text_saliency(model, ids, { target = target })
local ig, gap = E.text_integrated_gradients(model, ids, { target = target, steps = p.steps })
local prediction, score, name = recipe.prediction(model, ids, target)
print(("%s; IG completeness gap %.3g"):format(prediction, gap))

local rows = {}
local shown = { { "rollout", rollout, "attention rollout (all classes)" }, { "attribution", attr },
                { "saliency", sal }, { "integrated_gradients", ig, nil, score } }
for i, m in ipairs(shown) do
  local scores = m[2]:narrow(2, 1, n)
  rows[i] = scores
  local o = { title = m[3] or ("%s for class '%s'"):format(m[1]:gsub("_", " "), name), prediction = prediction,
              notes = notes, unknown = unknown, reference = m[4], reference_label = m[4] and "class score" }
  assert(lumen.html.save(recipe.path(p.out, m[1] .. ".html"), tokens, scores, o))
  print(m[1] .. ": " .. lumen.html.terminal(tokens, scores, o))
end
recipe.save_npy(p.out, "scores.npy", lumen.cat(rows, 1))
recipe.finish(p, { target = target, label = name, tokens = tokens, ig_gap = gap })
