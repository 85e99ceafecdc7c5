-- nn.TransformerEncoderLayer{d_model, nhead, dim_feedforward = 2048, dropout = 0.1, activation = "relu",
-- layer_norm_eps = 1e-5, batch_first = true, norm_first = false}: self-attention and a feed-forward
-- block, each with a residual connection and layer norm, as torch.nn.TransformerEncoderLayer (same
-- children, same tensor names). Unlike PyTorch, batch_first defaults to true.
--   post-norm: x = norm1(x + dropout1(self_attn(x)));  x = norm2(x + dropout2(ff(x)))
--   pre-norm (norm_first): x = x + dropout1(self_attn(norm1(x)));  x = x + dropout2(ff(norm2(x)))
--   ff(x) = linear2(dropout(activation(linear1(x))))
-- A composite (nn.Composite): its layers are "<name>.self_attn", "<name>.linear1", "<name>.activation",
-- "<name>.dropout", "<name>.linear2", "<name>.norm1", "<name>.norm2", "<name>.dropout1",
-- "<name>.dropout2", each capturable; the attention weights are "<name>.self_attn:attention".
-- forward(x (N, T, d_model) [, opts]) -> (N, T, d_model); opts.key_padding_mask (N, T) (int64: 1 = padding)
-- and opts.attn_mask (T, T) as in nn.MultiheadAttention; in a Graph the padding mask may be a second input.
local lumen = require "lumen"
local Module = require "lumen.nn.module"
local Composite = require "lumen.nn.composite"

local TEL = Module.class("TransformerEncoderLayer", { parent = Composite, prefix = "transformer_encoder_layer" })

function TEL:init(c)
  Composite.check_options("TransformerEncoderLayer", c, { "d_model", "nhead", "dim_feedforward", "dropout",
    "activation", "layer_norm_eps", "batch_first", "norm_first" })
  local nn = lumen.nn
  local d, h = self:need(c, "d_model"), self:need(c, "nhead")
  local ff = c.dim_feedforward or 2048
  if math.type(ff) ~= "integer" or ff < 1 then
    error(("TransformerEncoderLayer: dim_feedforward must be a positive integer, got %s"):format(tostring(ff)), 3)
  end
  local p = c.dropout or 0.1
  local act = c.activation or "relu"
  if act ~= "relu" and act ~= "gelu" then
    error(("TransformerEncoderLayer: activation must be 'relu' or 'gelu', got '%s'"):format(tostring(act)), 3)
  end
  self.batch_first, self.norm_first = c.batch_first ~= false, c.norm_first == true
  local eps = c.layer_norm_eps or 1e-5
  self:begin()
  self:add("self_attn", nn.MultiheadAttention { embed_dim = d, num_heads = h, dropout = p,
                                                 batch_first = self.batch_first })
  self:add("linear1", nn.Linear { in_features = d, out_features = ff })
  self:add("activation", act == "relu" and nn.ReLU {} or nn.GELU {})
  self:add("dropout", nn.Dropout { p = p })
  self:add("linear2", nn.Linear { in_features = ff, out_features = d })
  self:add("norm1", nn.LayerNorm { normalized_shape = d, eps = eps })
  self:add("norm2", nn.LayerNorm { normalized_shape = d, eps = eps })
  self:add("dropout1", nn.Dropout { p = p })
  self:add("dropout2", nn.Dropout { p = p })
end

function TEL:_steps(ctx, x, key_padding_mask)
  local o = self._opts or {}
  local masks = { key_padding_mask = key_padding_mask or o.key_padding_mask, attn_mask = o.attn_mask }
  local function sa(t) return self:run_child(ctx, "dropout1", self:run_child(ctx, "self_attn", t, t, t, masks)) end
  local function ff(t)
    local u = self:run_child(ctx, "activation", self:run_child(ctx, "linear1", t))
    return self:run_child(ctx, "dropout2", self:run_child(ctx, "linear2", self:run_child(ctx, "dropout", u)))
  end
  if self.norm_first then
    x = lumen.add(x, sa(self:run_child(ctx, "norm1", x)))
    return lumen.add(x, ff(self:run_child(ctx, "norm2", x)))
  end
  x = self:run_child(ctx, "norm1", lumen.add(x, sa(x)))
  return self:run_child(ctx, "norm2", lumen.add(x, ff(x)))
end

return TEL
