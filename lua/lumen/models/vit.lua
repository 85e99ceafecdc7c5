-- models.vit{image = 28, channels = 1, patch = 4, dim = 64, depth = 4, heads = 4, mlp = 128, classes = 10,
-- dropout = 0}: a small Vision Transformer (Dosovitskiy et al. 2021) as torchvision builds one, in lumen.nn:
-- the picture cut into patch x patch patches by a strided convolution ("patch_embed", (N, dim, g, g) with
-- g = image / patch), flattened to g * g tokens ("tokens", (N, g * g, dim)), a learned class token in front
-- and learned positions ("pos", nn.PositionEmbedding), `depth` pre-norm encoder layers with GELU
-- ("encoder_1" ..; their attention weights are "encoder_k.self_attn:attention", (N, heads, T, T) with
-- T = g * g + 1), a final LayerNorm ("norm"), the class token's row ("class_token", (N, dim)) and a Linear
-- head ("head"). Fashion-MNIST's labels and input spec (28 x 28 gray in [0, 1]) by default.
local lumen = require "lumen"

return function(o)
  o = o or {}
  local nn = lumen.nn
  local size, p, D = o.image or 28, o.patch or 4, o.dim or 64
  if size % p ~= 0 then error(("vit: image %d is not a multiple of patch %d"):format(size, p), 2) end
  local g = size // p
  local nodes = {
    { name = "patch_embed", inputs = { "input" },
      module = nn.Conv2d { in_channels = o.channels or 1, out_channels = D, kernel_size = p, stride = p } },
    { name = "flatten", inputs = { "patch_embed" }, op = "flatten", args = { 3 } }, -- (N, D, g * g)
    { name = "tokens", inputs = { "flatten" }, op = "transpose", args = { 2, 3 } }, -- (N, g * g, D)
    { name = "pos", inputs = { "tokens" }, module = nn.PositionEmbedding { length = g * g, dim = D, class_token = true } },
  }
  local prev = "pos"
  for i = 1, o.depth or 4 do
    nodes[#nodes + 1] = { name = "encoder_" .. i, inputs = { prev },
      module = nn.TransformerEncoderLayer { d_model = D, nhead = o.heads or 4, dim_feedforward = o.mlp or 128,
                                            dropout = o.dropout or 0, activation = "gelu", norm_first = true } }
    prev = "encoder_" .. i
  end
  nodes[#nodes + 1] = { name = "norm", inputs = { prev }, module = nn.LayerNorm { normalized_shape = D } }
  nodes[#nodes + 1] = { name = "class_token", inputs = { "norm" }, op = "select", args = { 2, 1 } } -- (N, D)
  nodes[#nodes + 1] = { name = "head", inputs = { "class_token" },
                        module = nn.Linear { in_features = D, out_features = o.classes or 10 } }
  local model = nn.Graph { inputs = { "input" }, outputs = { "head" }, nodes = nodes, name = "vit" }
  if (o.classes or 10) == 10 then model.labels = { table.unpack(require("lumen.data").FASHION_MNIST_LABELS) } end
  model.input_spec = { size = { size, size }, channels = o.channels or 1, scale = { 0, 1 } }
  return model
end
