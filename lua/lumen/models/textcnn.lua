-- models.textcnn{vocab = 174106, dim = 100, length = 1000, classes = 20, embedding = T, trainable_embedding = false}:
-- the seed lecture's text CNN (Keras's pretrained-GloVe newsgroups classifier), channels-last like Keras:
-- Embedding -> 3 x (Conv1D(128, 5) relu -> MaxPooling1D) -> GlobalMaxPooling1D -> Dense(128) relu -> Dense(classes).
-- The pools are 5, 5 and 35 wide; for inputs shorter than 1000 tokens the last pool shrinks to the
-- length left (35 needs length >= 999), which gives the same function since a global max follows.
local lumen = require "lumen"

return function(o)
  o = o or {}
  local nn = lumen.nn
  local vocab, dim, length, classes = o.vocab or 174106, o.dim or 100, o.length or 1000, o.classes or 20
  local l3 = ((length - 4) // 5 - 4) // 5 - 4 -- tokens left after the third convolution
  if l3 < 1 then error(("textcnn: length %d is too short (at least 149 tokens)"):format(length), 2) end
  local function conv(cin)
    return nn.Conv1d { in_channels = cin, out_channels = 128, kernel_size = 5, activation = "relu", channels_last = true }
  end
  local function pool(k) return nn.MaxPool1d { kernel_size = k, channels_last = true } end
  local model = nn.Sequential {
    nn.Embedding { num_embeddings = vocab, embedding_dim = dim, weight = o.embedding,
                   trainable = o.trainable_embedding or false },
    conv(dim), pool(5), conv(128), pool(5), conv(128), pool(math.min(35, l3)),
    nn.GlobalMaxPool1d { channels_last = true },
    nn.Linear { in_features = 128, out_features = 128, activation = "relu" },
    nn.Linear { in_features = 128, out_features = classes },
    name = "model_1",
  }
  model.input_spec = { length = length, dtype = "int64" }
  return model
end
