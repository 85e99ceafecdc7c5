-- nn.PositionEmbedding{length, dim, class_token = false}: learned absolute positions for a transformer's
-- tokens, as in BERT and ViT (Dosovitskiy et al. 2021): x (N, T, dim) -> (N, T', dim) with T' = T + 1 and
-- a learned class token first when class_token, T' = T otherwise, plus the first T' rows of the learned
-- positions. Parameters as torchvision's VisionTransformer names them: pos_embedding (1, length + 1, dim)
-- with a class token, (1, length, dim) without, N(0, 0.02); class_token (1, 1, dim), zeros. T up to
-- `length` (a shorter sequence takes the first positions); more is an error naming both.
local lumen = require "lumen"
local Module = require "lumen.nn.module"

local PE = Module.class("PositionEmbedding", { keras = "PositionEmbedding", prefix = "position_embedding" })

function PE:init(c)
  local L, D = self:need(c, "length"), self:need(c, "dim")
  for k in pairs(c) do
    if k ~= "name" and k ~= "length" and k ~= "dim" and k ~= "class_token" then
      error(("PositionEmbedding: unknown option '%s' (known: class_token, dim, length)"):format(tostring(k)), 3)
    end
  end
  self.length, self.dim, self.class_token_first = L, D, c.class_token == true
  self._config.class_token = self.class_token_first
  local extra = self.class_token_first and 1 or 0
  if self.class_token_first then self:register("class_token", lumen.zeros { 1, 1, D }) end
  local pos = Module.skip_init and lumen.zeros { 1, L + extra, D } or lumen.randn { 1, L + extra, D } * 0.02
  self:register("pos_embedding", pos)
end

function PE:forward(x)
  local D = self.dim
  if not lumen.is_tensor(x) or x:dim() ~= 3 or x:size(3) ~= D then
    error(("%s: expected (N, T, %d), got %s"):format(self.name or self.type, D,
      lumen.is_tensor(x) and lumen.shape_str(x) or type(x)), 0)
  end
  local N, T = x:size(1), x:size(2)
  if T > self.length then
    error(("%s: %d tokens, but the model has positions for %d"):format(self.name or self.type, T, self.length), 0)
  end
  if self.class_token_first then
    x = lumen.cat({ lumen.expand(self.class_token, { N, 1, D }), x }, 2)
    T = T + 1
  end
  return lumen.add(x, lumen.narrow(self.pos_embedding, 2, 1, T))
end

return PE
