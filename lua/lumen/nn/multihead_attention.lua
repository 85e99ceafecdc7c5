-- nn.MultiheadAttention{embed_dim, num_heads, dropout = 0, bias = true, batch_first = true}: scaled
-- dot-product attention over num_heads heads of embed_dim / num_heads, as torch.nn.MultiheadAttention
-- (Vaswani et al. 2017), with its parameter names and layout: in_proj_weight (3E, E) and in_proj_bias
-- (3E) stacking the query, key and value projections, out_proj.weight (E, E), out_proj.bias (E).
-- Unlike PyTorch, batch_first defaults to true (lumen's layers and methods take the batch first).
--
-- forward(query [, key = query [, value = key]] [, opts]) -> y, {attention = A}
--   query (N, T, E), key and value (N, S, E) (or (T, N, E) and (S, N, E) when batch_first = false);
--   y like query; A (N, num_heads, T, S): the attention weights after the softmax, before dropout.
--   Containers make A capturable as "<layer name>:attention".
--   opts.key_padding_mask (N, S) and opts.attn_mask (T, S) or (N * num_heads, T, S): an int64 mask is
--   boolean (1 = may not attend, as PyTorch's True), a float32 mask is added to the scores.
local lumen = require "lumen"
local Module = require "lumen.nn.module"
local Composite = require "lumen.nn.composite"

local MHA = Module.class("MultiheadAttention", { keras = "MultiHeadAttention", prefix = "multi_head_attention" })
MHA.extras = { "attention" } -- the weights after the softmax, capturable as "<name>:attention"

function MHA:init(c)
  Composite.check_options("MultiheadAttention", c, { "embed_dim", "num_heads", "dropout", "bias", "batch_first" })
  local E, h = self:need(c, "embed_dim"), self:need(c, "num_heads")
  if E % h ~= 0 then
    error(("MultiheadAttention: embed_dim %d is not divisible by num_heads %d"):format(E, h), 3)
  end
  self.embed_dim, self.num_heads, self.head_dim = E, h, E // h
  self.dropout = c.dropout or 0
  if type(self.dropout) ~= "number" or self.dropout < 0 or self.dropout >= 1 then
    error(("MultiheadAttention: dropout must be in [0, 1), got %s"):format(tostring(c.dropout)), 3)
  end
  self.batch_first = c.batch_first ~= false
  self._config.batch_first = self.batch_first
  -- PyTorch's initialisation: xavier_uniform for in_proj_weight (bound sqrt(6 / (E + 3E))), the
  -- Linear default for out_proj.weight, zero biases.
  self:register("in_proj_weight", Module.uniform({ 3 * E, E }, (4 * E) / 6))
  if c.bias ~= false then self:register("in_proj_bias", lumen.zeros(3 * E)) end
  self:register("out_proj.weight", Module.uniform({ E, E }, E))
  if c.bias ~= false then self:register("out_proj.bias", lumen.zeros(E)) end
end

-- (N, L, E) -> (N, heads, L, d)
local function split_heads(t, h, d)
  local s = t.shape
  return lumen.permute(lumen.reshape(t, { s[1], s[2], h, d }), { 1, 3, 2, 4 })
end

-- A mask as scores to add: int64 (boolean) -> 0 / -inf, float32 as is.
local function additive(mask)
  if mask:dtype() == "int64" then return lumen.where(mask, -math.huge, 0) end
  return mask
end

function MHA:forward(q, k, v, opts)
  if type(k) == "table" and not lumen.is_tensor(k) then k, opts = nil, k end
  if type(v) == "table" and not lumen.is_tensor(v) then v, opts = nil, v end
  opts = opts or {}
  k = k or q
  v = v or k
  local E, h, d = self.embed_dim, self.num_heads, self.head_dim
  for i, t in ipairs { q, k, v } do
    if not lumen.is_tensor(t) or t:dim() ~= 3 or t:size(3) ~= E then
      error(("%s: %s must be (N, L, %d), got %s"):format(self.type, ({ "query", "key", "value" })[i], E,
        lumen.is_tensor(t) and lumen.shape_str(t) or type(t)), 0)
    end
  end
  local self_attention = rawequal(q, k) and rawequal(k, v)
  if not self.batch_first then
    q, k, v = lumen.transpose(q, 1, 2), lumen.transpose(k, 1, 2), lumen.transpose(v, 1, 2)
  end
  local W, b = self.in_proj_weight, self.in_proj_bias
  local qp, kp, vp
  if self_attention then
    local qkv = lumen.linear(q, W, b) -- (N, T, 3E)
    qp, kp, vp = lumen.narrow(qkv, 3, 1, E), lumen.narrow(qkv, 3, E + 1, E), lumen.narrow(qkv, 3, 2 * E + 1, E)
  else
    local function part(x, i)
      return lumen.linear(x, lumen.narrow(W, 1, i * E + 1, E), b and lumen.narrow(b, 1, i * E + 1, E))
    end
    qp, kp, vp = part(q, 0), part(k, 1), part(v, 2)
  end
  local N, T, S = q:size(1), q:size(2), k:size(2)
  local qh = lumen.mul(split_heads(qp, h, d), 1 / math.sqrt(d)) -- (N, h, T, d)
  local scores = lumen.matmul(qh, lumen.transpose(split_heads(kp, h, d), 3, 4)) -- (N, h, T, S)
  if opts.attn_mask then
    local m = additive(opts.attn_mask)
    if m:dim() == 3 then m = lumen.reshape(m, { N, h, T, S }) end
    scores = lumen.add(scores, m)
  end
  if opts.key_padding_mask then
    scores = lumen.add(scores, lumen.reshape(additive(opts.key_padding_mask), { N, 1, 1, S }))
  end
  local A = lumen.softmax(scores, 4)
  local o = lumen.matmul(lumen.dropout(A, self.dropout, self.training), split_heads(vp, h, d)) -- (N, h, T, d)
  o = lumen.reshape(lumen.permute(o, { 1, 3, 2, 4 }), { N, T, E })
  local y = lumen.linear(o, self["out_proj.weight"], self["out_proj.bias"])
  if not self.batch_first then y = lumen.transpose(y, 1, 2) end
  return y, { attention = A }
end

return MHA
