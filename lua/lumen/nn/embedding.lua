-- nn.Embedding{num_embeddings, embedding_dim, trainable = true, weight = T}: int64 ids (1-based) of
-- any shape -> (..., D) rows of weight (V, D). Initialised N(0, 1) as in PyTorch unless weight is given
-- (used as is, e.g. GloVe vectors); trainable = false freezes it.
local lumen = require "lumen"
local Module = require "lumen.nn.module"

local Embedding = Module.class("Embedding", { prefix = "embedding" })
Embedding.input_dtype = "int64"

function Embedding:init(c)
  local v, d = self:need(c, "num_embeddings"), self:need(c, "embedding_dim")
  local w = c.weight
  if w ~= nil and not (lumen.is_tensor(w) and w:dtype() == "float32" and w:dim() == 2 and w:size(1) == v
                       and w:size(2) == d) then
    error(("Embedding: weight must be a float32 (%d, %d) tensor"):format(v, d), 3)
  end
  if c.trainable == false then self._frozen.weight = true end
  self._config.trainable = c.trainable ~= false
  self:register("weight", w or Module.normal({ v, d }))
end

function Embedding:forward(ids)
  return lumen.embedding(ids, self.weight)
end

return Embedding
