-- Attention rollout (Abnar & Zuidema 2020, "Quantifying Attention Flow in Transformers") and transformer
-- attribution (Chefer, Gur & Wolf 2021, "Generic Attention-model Explainability for Interpreting Bi-Modal
-- and Encoder-Decoder Transformers"): how much each input token (a ViT's patch, a text transformer's
-- word) feeds the token the model classifies from, read off the attention weights A (N, heads, T, T) of
-- every self-attention layer, first to last.
--
-- attention_rollout: per layer the heads fused, F = their mean, max or min (head_fusion = "mean"); then
--   the lowest discard_ratio = 0 of F's T x T entries set to 0, per sample (the k = floor(T * T *
--   discard_ratio) smallest, sparing the class token's attention to itself, as jacobgil/vit-explain does);
--   the identity added for the residual connection and each row renormalised, Â = (F + I) / 2 with rows
--   divided by their sums (vit-explain divides by a.sum(dim=-1) without keepdim, which scales columns, not
--   rows: its issue 16; here every row of Â and of the rollout sums to 1); the rollout R = Â_L ... Â_2 Â_1.
--   One forward, no backward; it explains no class (the targets returned are the top classes, for
--   information).
-- transformer_attribution: R = I, then layer by layer R = R + mean_heads(ReLU(dA * A)) R, dA the gradient
--   of the target score with respect to A (the paper's rules 5 and 6 for self-attention, as its ViT
--   notebook computes them); one forward, one backward (down to the first attention). target = each
--   sample's top class; probabilities = false (true: the softmax of the scores).
-- The map is a row of R, one value per input token or patch: the class token's row when the model puts
--   a class token in front of the tokens, the mean of the rows when it pools every token; a token the
--   model adds in front has its column dropped. tokens = "auto" tells them apart by the count: T =
--   patches + 1 or ids + 1 -> "class", T = patches or ids -> "mean"; "class" with T = ids takes the first
--   input token as the class token (BERT's [CLS]).
--   Pictures x (N, C, H, W): the row as the patch grid (N, 1, h, w) (h * w patches with h / w = H / W, or
--   grid = {h, w}), upsampled bilinearly to H x W and min-max normalised per sample like the CAM methods
--   (raw = false; true: the grid itself). Token ids (N, L): one value per token (N, L), not normalised.
-- Attention weights: attention = the layers holding them, in order (by default every "<layer>:attention"
--   extra of lumen's MultiheadAttention, (N, heads, T, S), or if the model has none every Softmax layer
--   over (N * heads, T, T): ONNX exports of PyTorch's attention). Finding none is an error, and so are
--   layers over different token counts or over windows rather than the model's tokens (Swin). Token
--   models run from their embedding output (embedding = the first Embedding layer) so that the attention
--   is on the tape even when every weight is frozen.
-- Returns the map, the targets (a Lua array), the attention layers used, the raw map ((N, 1, h, w), or
-- (N, L) for tokens), the upsampled map ((N, 1, H, W); for tokens the raw map again) and R (N, T, T).
local lumen = require "lumen"
local common = require "lumen.explain.common"

local M = {}

local function declare(method, extra)
  local d = { attention = { nil, "table" }, tokens = { "auto", "'auto' | 'class' | 'mean'" }, grid = { nil, "table" },
              raw = { false, "boolean" }, embedding = { nil, "layer" } }
  for k, v in pairs(extra) do d[k] = v end
  return common.options(method, d)
end
local ROLLOUT = declare("attention_rollout", { head_fusion = { "mean", "'mean' | 'max' | 'min'" },
                                               discard_ratio = { 0, "number >= 0" } })
local ATTRIBUTION = declare("transformer_attribution", { target = { nil, "target" },
                                                         probabilities = { false, "boolean" } })

-- The identity (T, T).
local function eye(T)
  local i = lumen.arange(T)
  return lumen.eq(i:reshape { T, 1 }, i:reshape { 1, T })
end

-- How the input's tokens sit in the attention's T: {class = read the class token's row (else the rows'
-- mean), extra = 1 when the model puts a token in front of the input's (0 otherwise), grid = {h, w} for
-- pictures}. Token ids: T = L + 1 is a class token in front ("auto": class), T = L no extra token ("auto":
-- mean; "class": the first input token is the class token, as BERT's [CLS]).
local function layout(x, T, o, method)
  local s = x.shape
  if #s == 2 then
    local extra = T - s[2]
    if extra ~= 0 and extra ~= 1 then
      error(("%s: the attention covers %d tokens, but the input has %d"):format(method, T, s[2]), 3)
    end
    local class = o.tokens == "class" or (o.tokens == "auto" and extra == 1)
    return { class = class, extra = extra }
  end
  if #s ~= 4 then error(("%s: expected pictures (N, C, H, W) or token ids (N, L), got %s"):format(method,
    lumen.shape_str(x)), 3) end
  local H, W = s[3], s[4]
  -- pictures: a class token is always one in front of the patches; "mean" may have one too
  local extras = o.tokens == "class" and { 1 } or o.tokens == "mean" and { 0, 1 } or { 1, 0 }
  local g = o.grid
  if g then
    if #g ~= 2 or math.type(g[1]) ~= "integer" or math.type(g[2]) ~= "integer" or g[1] < 1 or g[2] < 1 then
      error(("%s: grid must be {h, w}, two positive integers"):format(method), 3)
    end
    for _, extra in ipairs(extras) do
      if T == g[1] * g[2] + extra then return { class = o.tokens ~= "mean" and extra == 1, extra = extra, grid = g } end
    end
    error(("%s: the attention covers %d tokens, which a %d x %d grid of patches does not make (tokens = '%s')")
      :format(method, T, g[1], g[2], o.tokens), 3)
  end
  local function fit(n) -- h * w = n with h / w = H / W
    for h = 1, n do
      if n % h == 0 and h * W == (n // h) * H then return { h, n // h } end
    end
  end
  for _, extra in ipairs(extras) do
    local grid = T - extra >= 1 and fit(T - extra)
    if grid then return { class = o.tokens ~= "mean" and extra == 1, extra = extra, grid = grid } end
  end
  error(("%s: %d tokens do not make a grid of patches with the picture's proportions %d x %d (tokens = '%s'); "
    .. "pass grid = {h, w}"):format(method, T, H, W, o.tokens), 3)
end

-- The attention weights of one pass on x: the trace, the maps (N, heads, T, T), their names and the captured
-- tensors they come from. With grad, those are on the tape (token models run from their embedding output).
local function attention_pass(model, x, o, method, grad)
  common.need_model(model, method)
  if not lumen.is_tensor(x) then error(("%s: expected an input tensor, got %s"):format(method, type(x)), 3) end
  local names, found = o.attention, nil
  if names then
    for i, n in ipairs(names) do
      if type(n) ~= "string" or not model:knows(n) then
        error(("%s: attention[%d] = %s is not a layer of the model"):format(method, i, tostring(n)), 3)
      end
    end
  else
    names, found = common.attention_layers(model)
    if #names == 0 then
      error(("%s: no attention weights found: the model has no MultiheadAttention layer and no Softmax; pass "
        .. "attention = {names}"):format(method), 3)
    end
  end
  local tr
  if x:dtype() == "int64" and grad then
    local emb = common.embedding_layer(model, o.embedding, method)
    tr = common.trace_from_embedding(model, emb, x, common.embedded(model, emb, x), o, names)
  elseif grad then
    tr = common.trace(model, common.on_tape(x), { capture = names }, o, method)
  else
    tr = lumen.no_grad(common.trace, model, x, { capture = names }, o, method)
  end
  local maps, kept, captured = common.attentions(tr, names, found, x.shape[1], method)
  return tr, maps, kept, captured
end

-- The map (a row of R) in its returned forms: map, raw, upsampled.
local function finish(R, x, lay, o)
  local N, T = R:size(1), R:size(2)
  local row = lay.class and R:narrow(2, 1, 1):reshape { N, T } or R:mean(2) -- the class token's row, or the mean
  row = row:narrow(2, 1 + lay.extra, T - lay.extra) -- one value per input token or patch
  if not lay.grid then return row, row, row end
  local raw = row:reshape { N, 1, lay.grid[1], lay.grid[2] }
  local up = common.upsample_normalize(raw, x)
  return o.raw and raw or up, raw, up
end

function M.attention_rollout(model, x, opts)
  local o = ROLLOUT(opts, model)
  if o.discard_ratio >= 1 then ROLLOUT:fail("discard_ratio", o.discard_ratio, "a number in [0, 1)", 2) end
  local tr, maps, names = attention_pass(model, x, o, "attention_rollout", false)
  local N, T = maps[1]:size(1), maps[1]:size(3)
  local lay = layout(x, T, o, "attention_rollout")
  local targets = common.targets(tr.output, nil, "attention_rollout")
  local I = eye(T)
  local k = math.floor(T * T * o.discard_ratio)
  local R = I:reshape { 1, T, T }:expand { N, T, T }
  for _, A in ipairs(maps) do
    A = A:detach()
    local F = o.head_fusion == "mean" and A:mean(2) or (o.head_fusion == "max" and A:max(2) or A:min(2)) -- (N, T, T)
    if k > 0 then
      local _, idx = lumen.topk(F:reshape { N, T * T }, k, 2, false) -- (N, k), 1-based
      local keep, rows = {}, idx:totable()
      for i = 1, N do
        local r = {}
        for j = 1, T * T do r[j] = 1 end
        for _, j in ipairs(rows[i]) do
          if not (lay.class and j == 1) then r[j] = 0 end
        end
        keep[i] = r
      end
      F = F * lumen.tensor(keep):reshape { N, T, T }
    end
    local a = (F + I) * 0.5
    a = a / a:sum(3, true)
    R = lumen.matmul(a, R)
  end
  local map, raw, up = finish(R, x, lay, o)
  return map, targets, names, raw, up, R
end

function M.transformer_attribution(model, x, opts)
  local o = ATTRIBUTION(opts, model)
  local tr, maps, names, captured = attention_pass(model, x, o, "transformer_attribution", true)
  local N, T = maps[1]:size(1), maps[1]:size(3)
  local lay = layout(x, T, o, "transformer_attribution")
  local targets = common.targets(tr.output, o.target, "transformer_attribution")
  local grads = lumen.grad(common.target_score(tr.output, targets), captured)
  local R = eye(T):reshape { 1, T, T }:expand { N, T, T }
  for i, A in ipairs(maps) do
    local cam = (grads[i]:reshape(A.shape) * A:detach()):relu():mean(2) -- (N, T, T)
    R = R + lumen.matmul(cam, R)
  end
  local map, raw, up = finish(R, x, lay, o)
  return map, targets, names, raw, up, R
end

return M
