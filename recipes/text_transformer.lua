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
local vocab_path = recipe.opt(p.vocab) or (p.model:match("^(.*)/[^/]*$") or ".") .. "/" .. model.input_spec.vocabulary
local vocab = assert(lumen.data.load_vocabulary(vocab_path))
local tokens = lumen.data.tokenize(p.text)
local L = model.input_spec.length
local ids = lumen.tensor({ vocab:encode(tokens, L) }, "int64") -- (1, L), padded with <pad> (masked by the model)
local n, notes, unknown = math.min(#tokens, L), {}, {}
if #tokens > L then notes[1] = ("The text has %d tokens; the model reads the first %d."):format(#tokens, L) end
tokens = { table.unpack(tokens, 1, n) }
for i, tok in ipairs(tokens) do if not vocab.index[tok] then unknown[#unknown + 1] = i end end

local E = lumen.explain
local target = recipe.target(model, p)
local attr, targets = E.transformer_attribution(model, ids, { target = target })
target = targets[1]
local rollout = E.attention_rollout(model, ids)
local sal = E.text_saliency(model, ids, { target = target })
local ig, gap = E.text_integrated_gradients(model, ids, { target = target, steps = p.steps })
local name = recipe.label(model, target)
local logits = lumen.no_grad(model.forward, model, ids, { logits = true })
local score, prob = logits:get { 1, target }, lumen.softmax(logits, 2):get { 1, target }
local prediction = ("prediction: %s (class %d), score %.3g, probability %.1f %%"):format(name, target, score, 100 * prob)
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
