-- models.text_transformer{vocab, length = 128, classes = 20, dim = 64, embed_dim = dim, depth = 2, heads = 4,
-- mlp = 128, dropout = 0.1, embedding = T, trainable_embedding = (no embedding given)}: a small transformer
-- text classifier in lumen.nn. Token ids (N, L), 1-based, padded with 1 (<pad>), L up to `length`:
--   "embed"  Embedding (vocab x embed_dim; `embedding` gives the table, e.g. GloVe vectors, frozen unless
--            trainable_embedding), "project" Linear(embed_dim, dim) when embed_dim ~= dim,
--   "pos"    nn.PositionEmbedding: a learned class token in front and learned positions (N, L + 1, dim),
--   "key_mask" the padding mask as scores to add, -1e9 at <pad> keys (computed from the ids: "padding",
--            "mask_front" adds the class token's column), so no token attends to padding,
--   "encoder_1" .. pre-norm TransformerEncoderLayers with GELU (attention weights
--            "encoder_k.self_attn:attention", (N, heads, L + 1, L + 1)), "norm" a LayerNorm,
--   "class_token" the class token's row (N, dim), "head" Linear(dim, classes).
local lumen = require "lumen"

return function(o)
  o = o or {}
  local nn = lumen.nn
  local D, L = o.dim or 64, o.length or 128
  local E = o.embed_dim or (o.embedding and o.embedding:size(2)) or D
  if not (math.type(o.vocab) == "integer" and o.vocab >= 2) then
    error("text_transformer: vocab must be the vocabulary size (an integer >= 2)", 2)
  end
  local trainable = o.trainable_embedding
  if trainable == nil then trainable = o.embedding == nil end
  local nodes = {
    { name = "embed", inputs = { "tokens" }, module = nn.Embedding { num_embeddings = o.vocab, embedding_dim = E,
                                                                    weight = o.embedding, trainable = trainable } },
  }
  local prev = "embed"
  if E ~= D then
    nodes[#nodes + 1] = { name = "project", inputs = { "embed" }, module = nn.Linear { in_features = E, out_features = D } }
    prev = "project"
  end
  nodes[#nodes + 1] = { name = "pos", inputs = { prev },
                        module = nn.PositionEmbedding { length = L, dim = D, class_token = true } }
  nodes[#nodes + 1] = { name = "padding", inputs = { "tokens" }, op = "eq", args = { 1 } }           -- (N, L) 1 at <pad>
  nodes[#nodes + 1] = { name = "mask_front", inputs = { "padding" }, op = "pad", args = { { 1, 0 } } } -- (N, L + 1)
  nodes[#nodes + 1] = { name = "key_mask", inputs = { "mask_front" }, op = "mul", args = { -1e9 } }
  prev = "pos"
  for i = 1, o.depth or 2 do
    nodes[#nodes + 1] = { name = "encoder_" .. i, inputs = { prev, "key_mask" },
      module = nn.TransformerEncoderLayer { d_model = D, nhead = o.heads or 4, dim_feedforward = o.mlp or 128,
                                            dropout = o.dropout or 0.1, activation = "gelu", norm_first = true } }
    prev = "encoder_" .. i
  end
  nodes[#nodes + 1] = { name = "norm", inputs = { prev }, module = nn.LayerNorm { normalized_shape = D } }
  nodes[#nodes + 1] = { name = "class_token", inputs = { "norm" }, op = "select", args = { 2, 1 } }
  nodes[#nodes + 1] = { name = "head", inputs = { "class_token" },
                        module = nn.Linear { in_features = D, out_features = o.classes or 20 } }
  local model = nn.Graph { inputs = { "tokens" }, outputs = { "head" }, nodes = nodes, name = "text_transformer" }
  model.input_spec = { length = L, dtype = "int64" }
  return model
end
