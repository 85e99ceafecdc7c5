-- recipes/train_textcnn.lua: the seed lecture's text CNN (lumen.models.textcnn: frozen GloVe embedding,
-- three Conv1D/MaxPooling1D stages, two Dense layers) trained on the fortunes corpus (Debian package
-- fortunes: one category per file, texts separated by lines holding "%"), one class per category.
-- Prints the test accuracy; writes OUT/textcnn_fortunes.lumen and its vocabulary (one word per line)
-- with a manifest. It never writes into data/models: to ship a new model, copy both files there.
--   lumen run recipes/train_textcnn.lua [glove=PATH] [length=200] [epochs=6] [categories=a,b,...] [out=out/train_textcnn]
local lumen = require "lumen"
local data = lumen.data
local p = lumen.args {
  corpus = "/usr/share/games/fortunes", glove = "../shared/data/text/glove.6B.100d.top20k.txt.gz",
  categories = data.FORTUNE_CATEGORIES,
  length = 200, min_count = 2, epochs = 6, batch_size = 32, lr = 0.001, test_fraction = 0.2, seed = 0,
  out = "out/train_textcnn",
}
lumen.seed(p.seed)

local texts, labels, names = data.load_fortunes(p.corpus, p.categories)
local train_t, y, test_t, yt = data.holdout(texts, labels, p.test_fraction)

local vocab = data.build_vocabulary(train_t, { min_count = p.min_count })
local _, E, found = assert(data.load_glove(p.glove, { words = vocab }))
print(("%d texts in %d classes; vocabulary %d words, %d with GloVe vectors"):format(#texts, #names, vocab:size(), found))

local model = lumen.models.textcnn { vocab = vocab:size(), dim = E:size(2), length = p.length, classes = #names,
                                     embedding = E }
lumen.optim.fit(model, { X = data.encode(train_t, vocab, p.length), y = y },
  { epochs = p.epochs, batch_size = p.batch_size, optimizer = lumen.optim.Adam(model, { lr = p.lr }) })
local loss, acc = lumen.optim.evaluate(model, data.encode(test_t, vocab, p.length), yt)
print(("test loss %.4f, accuracy %.2f%% on %d texts (chance %.2f%%)"):format(loss, 100 * acc, #test_t, 100 / #names))

model.labels = names
model.input_spec.vocabulary = "textcnn_fortunes.vocab.txt"
lumen.mkdir(p.out)
assert(vocab:save(lumen.output(p.out, model.input_spec.vocabulary)))
model:save(lumen.output(p.out, "textcnn_fortunes.lumen"))
lumen.manifest(p.out, { test_loss = loss, test_accuracy = acc, texts = #texts, classes = names, vocabulary = vocab:size() })
print("wrote " .. p.out .. "/textcnn_fortunes.lumen")
