-- recipes/train_transformer_text.lua: a small transformer text classifier (lumen.models.text_transformer:
-- frozen 100-d GloVe embedding projected to 64, a learned class token and positions, 2 pre-norm encoder
-- layers of 4 heads, a padding mask) trained on the fortunes corpus exactly as recipes/train_textcnn.lua
-- reads it (Debian package fortunes, one category per file, the same 20 categories, split, tokenizer and
-- vocabulary rule: words seen min_count times in the training texts, here at most max_vocab of them, the
-- most frequent, to keep the file small). Prints the test accuracy; writes OUT/transformer_fortunes.lumen
-- and its vocabulary with a manifest; never into data/models (copy both files there to ship them).
--   lumen run recipes/train_transformer_text.lua [glove=PATH] [length=96] [epochs=8] [out=out/train_transformer_text]
local lumen = require "lumen"
local data = lumen.data
local p = lumen.args {
  corpus = "/usr/share/games/fortunes", glove = "../shared/data/text/glove.6B.100d.top20k.txt.gz",
  categories = data.FORTUNE_CATEGORIES,
  length = 96, min_count = 2, max_vocab = 8000, dim = 64, depth = 2, heads = 4, mlp = 128, dropout = 0.1,
  epochs = 8, batch_size = 32, lr = 0.001, test_fraction = 0.2, seed = 0, out = "out/train_transformer_text",
}
lumen.seed(p.seed)

local texts, labels, names = data.load_fortunes(p.corpus, p.categories)
local train_t, y, test_t, yt = data.holdout(texts, labels, p.test_fraction)

local vocab = data.build_vocabulary(train_t, { min_count = p.min_count, max_size = p.max_vocab })
local _, E, found = assert(data.load_glove(p.glove, { words = vocab }))
print(("%d texts in %d classes; vocabulary %d words, %d with GloVe vectors"):format(#texts, #names, vocab:size(), found))

local model = lumen.models.text_transformer { vocab = vocab:size(), embedding = E, length = p.length, dim = p.dim,
  depth = p.depth, heads = p.heads, mlp = p.mlp, dropout = p.dropout, classes = #names }
local start = lumen.now()
lumen.optim.fit(model, { X = data.encode(train_t, vocab, p.length), y = y },
  { epochs = p.epochs, batch_size = p.batch_size, optimizer = lumen.optim.Adam(model, { lr = p.lr }),
    schedule = lumen.optim.cosine_schedule(p.lr, p.epochs) })
local seconds = lumen.now() - start
local loss, acc = lumen.optim.evaluate(model, data.encode(test_t, vocab, p.length), yt)
print(("test loss %.4f, accuracy %.2f%% on %d texts (chance %.2f%%); trained in %.0f s"):format(loss, 100 * acc,
  #test_t, 100 / #names, seconds))

model:eval()
model.labels = names
model.input_spec.vocabulary = "transformer_fortunes.vocab.txt"
lumen.mkdir(p.out)
assert(vocab:save(lumen.output(p.out, model.input_spec.vocabulary)))
model:save(lumen.output(p.out, "transformer_fortunes.lumen"))
lumen.manifest(p.out, { test_loss = loss, test_accuracy = acc, texts = #texts, classes = names, vocabulary = vocab:size() })
print("wrote " .. p.out .. "/transformer_fortunes.lumen")
