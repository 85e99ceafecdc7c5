-- Specs for lumen.explain.attention_rollout and transformer_attribution (lua/lumen/explain/attention.lua):
-- on a lumen-built ViT, the rollout's rows sum to 1 and the rollout equals the product of the fused,
-- residual-augmented, renormalised attentions computed here entry by entry in plain Lua (every head fusion,
-- with and without discarding); transformer attribution equals Chefer et al.'s rule computed the same way
-- from the captured attentions and their gradients, in one forward and one backward; on PyTorch's ViT
-- (opsets 13 and 17) and text transformer (tests/fixtures/torch, references by
-- tools/ref_transformer_methods.py) both agree with torch; token models give one value per token and
-- nothing to padding, also with every weight frozen; models without attention, Swin's windows and bad
-- options are clear errors.
local lumen = require "lumen"
local support = require "support"
local npy = support.npy
local explain = lumen.explain

local TORCH = "tests/fixtures/torch/"
local info = support.json_file(TORCH .. "transformer_methods.json")
local NAMES = { "encoder_1.self_attn:attention", "encoder_2.self_attn:attention" }

-- A tiny ViT: 8x8 gray pictures cut in 2x2 patches (16 patches and a class token), 2 layers of 2 heads.
local function tiny_vit()
  lumen.seed(7)
  local m = lumen.models.vit { image = 8, patch = 2, dim = 8, depth = 2, heads = 2, mlp = 16, classes = 3 }
  for _, p in ipairs(m:parameters()) do -- weights large enough that the attention is far from uniform
    if p.name:find("in_proj_weight") or p.name:find("pos_embedding") then p.tensor:copy_(p.tensor * 6) end
  end
  return m:eval()
end

local function pictures()
  lumen.seed(8)
  return lumen.rand { 2, 1, 8, 8 }
end

-- a (T, T) x b (T, T), as nested tables
local function matmul(a, b)
  local T, c = #a, {}
  for i = 1, T do
    c[i] = {}
    for j = 1, T do
      local s = 0
      for k = 1, T do s = s + a[i][k] * b[k][j] end
      c[i][j] = s
    end
  end
  return c
end

local function identity(T)
  local I = {}
  for i = 1, T do
    I[i] = {}
    for j = 1, T do I[i][j] = i == j and 1 or 0 end
  end
  return I
end

-- Attention rollout written out entry by entry: As[l][n][h][i][j] (nested tables).
local function rollout_by_hand(As, fusion, ratio, class)
  local N, H, T = #As[1], #As[1][1], #As[1][1][1]
  local R = {}
  for n = 1, N do R[n] = identity(T) end
  for _, A in ipairs(As) do
    for n = 1, N do
      local F, list = {}, {}
      for i = 1, T do
        F[i] = {}
        for j = 1, T do
          local v = A[n][1][i][j]
          for h = 2, H do
            local w = A[n][h][i][j]
            if fusion == "mean" then v = v + w elseif fusion == "max" then v = math.max(v, w) else v = math.min(v, w) end
          end
          F[i][j] = fusion == "mean" and v / H or v
          list[#list + 1] = { v = F[i][j], i = i, j = j }
        end
      end
      table.sort(list, function(a, b) return a.v < b.v end)
      for q = 1, math.floor(T * T * ratio) do
        local e = list[q]
        if not (class and e.i == 1 and e.j == 1) then F[e.i][e.j] = 0 end
      end
      for i = 1, T do
        local s = 0
        for j = 1, T do
          F[i][j] = (F[i][j] + (i == j and 1 or 0)) / 2
          s = s + F[i][j]
        end
        for j = 1, T do F[i][j] = F[i][j] / s end
      end
      R[n] = matmul(F, R[n])
    end
  end
  return lumen.tensor(R)
end

-- The attentions of a pass as nested tables, in layer order.
local function captured(model, x, names)
  local tr = lumen.no_grad(model.trace, model, x, { capture = names })
  local As = {}
  for i, n in ipairs(names) do As[i] = tr.captured[n]:totable() end
  return As
end

describe("lumen.explain.attention_rollout", function()
  local model, x = tiny_vit(), pictures()
  local As = captured(model, x, NAMES)

  for _, case in ipairs { { "mean", 0 }, { "max", 0 }, { "min", 0 }, { "mean", 0.5 }, { "max", 0.9 }, { "min", 0.3 } } do
    it(("is the product of the fused, residual-augmented attentions (head_fusion %s, discard_ratio %g)"):format(
      case[1], case[2]), function()
      local map, targets, names, raw, up, R = explain.attention_rollout(model, x,
        { head_fusion = case[1], discard_ratio = case[2] })
      assert.same(NAMES, names)
      assert.same({ 2, 17, 17 }, R.shape)
      support.assert_close(R:sum(3), lumen.ones { 2, 17 }, 1e-6, "rows sum to 1")
      support.assert_close(R, rollout_by_hand(As, case[1], case[2], true), 1e-6, "rollout")
      -- the class token's row, its own column dropped, as the 4 x 4 grid of patches
      support.assert_close(raw, R:narrow(2, 1, 1):narrow(3, 2, 16):reshape { 2, 1, 4, 4 }, 0, "raw map")
      assert.same({ 2, 1, 8, 8 }, map.shape)
      assert.equal(map, up)
      for n = 1, 2 do
        local m = map:narrow(1, n, 1)
        assert.near(0, m:min_all(), 1e-6)
        assert.near(1, m:max_all(), 1e-6)
      end
      local top = lumen.argmax(model:forward(x), 2)
      assert.same({ top:get { 1 }, top:get { 2 } }, targets)
    end)
  end

  it("returns the raw grid with raw = true, and a discard that changes the map", function()
    local raw = explain.attention_rollout(model, x, { raw = true })
    assert.same({ 2, 1, 4, 4 }, raw.shape)
    local dropped = explain.attention_rollout(model, x, { raw = true, discard_ratio = 0.9 })
    assert.is_true(lumen.max_abs_diff(raw, dropped) > 1e-3)
  end)

  it("agrees with PyTorch (vit-explain's rule, rows renormalised) on the ViT at opsets 13 and 17", function()
    local vx = npy(TORCH .. "vision_input.npy")
    for _, file in ipairs { "vit_opset13.onnx.gz", "vit_opset17.onnx.gz" } do
      local vit = lumen.onnx.load(TORCH .. file)
      for case, o in pairs(info.cases) do
        local _, targets, names, raw, _, R = explain.attention_rollout(vit, vx, o)
        local ref = npy(TORCH .. "vit_rollout_" .. case .. ".npy")
        support.assert_close(R, ref, 1e-5, file .. " " .. case)
        support.assert_close(raw, ref:narrow(2, 1, 1):narrow(3, 2, 16):reshape { 2, 1, 4, 4 }, 1e-5, "grid")
        assert.equal(info.vit.layers, #names)
        assert.same(info.vit.top_1based, targets)
      end
    end
  end)

  it("agrees with PyTorch on the mean-pooled text transformer: one value per token, the rows' mean", function()
    local tm = lumen.onnx.load(TORCH .. "text_transformer.onnx.gz")
    local ids = lumen.add(npy(TORCH .. "text_tokens.npy"):float(), 1):long()
    for case, o in pairs(info.cases) do
      local map, _, _, _, _, R = explain.attention_rollout(tm, ids, o)
      local ref = npy(TORCH .. "text_transformer_rollout_" .. case .. ".npy")
      support.assert_close(R, ref, 1e-5, case)
      support.assert_close(map, ref:mean(2), 1e-5, case .. " map")
    end
  end)

  it("reads the rows' mean (tokens = 'mean'), or the first input token as the class token (BERT's [CLS])", function()
    local _, _, _, raw, _, R = explain.attention_rollout(model, x, { tokens = "mean", raw = true })
    support.assert_close(raw, R:mean(2):narrow(2, 2, 16):reshape { 2, 1, 4, 4 }, 0, "mean over the rows, patches only")
    local tm = lumen.onnx.load(TORCH .. "text_transformer.onnx.gz")
    local ids = lumen.add(npy(TORCH .. "text_tokens.npy"):float(), 1):long()
    local first, _, _, _, _, R2 = explain.attention_rollout(tm, ids, { tokens = "class" })
    support.assert_close(first, R2:narrow(2, 1, 1):reshape { 2, 12 }, 0, "row 1, every token")
  end)

  it("gives a text transformer's padding nothing, per token", function()
    lumen.seed(3)
    local tt = lumen.models.text_transformer { vocab = 30, length = 10, dim = 8, heads = 2, mlp = 16, classes = 3,
                                               embed_dim = 6 }:eval()
    local ids = lumen.tensor({ { 5, 6, 7, 8, 9, 1, 1, 1, 1, 1 }, { 9, 3, 4, 1, 1, 1, 1, 1, 1, 1 } }, "int64")
    for _, fn in ipairs { explain.attention_rollout, explain.transformer_attribution } do
      local map, _, _, _, _, R = fn(tt, ids)
      assert.same({ 2, 10 }, map.shape) -- the class token the model adds is not an input token
      assert.same({ 2, 11, 11 }, R.shape)
      for j = 6, 10 do assert.equal(0, map:get { 1, j }) end
      for j = 4, 10 do assert.equal(0, map:get { 2, j }) end
      assert.is_true(map:narrow(2, 1, 3):min_all() > 0)
    end
  end)
end)

describe("lumen.explain.transformer_attribution", function()
  local model, x = tiny_vit(), pictures()

  it("is R = R + mean_heads(ReLU(dA * A)) R from the identity, in one forward and one backward", function()
    lumen.autograd.reset_counts()
    local map, targets, names, raw, _, R = explain.transformer_attribution(model, x, { target = 2 })
    assert.same({ 2, 2 }, targets)
    assert.equal(2, lumen.autograd.counts().softmax) -- the two attention layers, once
    assert.equal(1, lumen.autograd.counts("backward").softmax) -- the backward stops at the first attention
    assert.equal(1, lumen.autograd.counts().conv2d)
    assert.equal(0, lumen.autograd.counts("backward").conv2d)
    -- by hand, from the captured attentions and their gradients
    local xg = lumen.autograd.set_requires_grad(x:clone(), true)
    local tr = model:trace(xg, { capture = names })
    local As = { tr.captured[names[1]], tr.captured[names[2]] }
    local gs = lumen.grad(tr.output:narrow(2, 2, 1):sum(), As)
    local want = {}
    for n = 1, 2 do
      local Rn = identity(17)
      for l = 1, 2 do
        local A, g = As[l]:totable()[n], gs[l]:totable()[n]
        local cam = {}
        for i = 1, 17 do
          cam[i] = {}
          for j = 1, 17 do
            local s = 0
            for h = 1, 2 do s = s + math.max(0, g[h][i][j] * A[h][i][j]) end
            cam[i][j] = s / 2
          end
        end
        local add = matmul(cam, Rn)
        for i = 1, 17 do for j = 1, 17 do Rn[i][j] = Rn[i][j] + add[i][j] end end
      end
      want[n] = Rn
    end
    support.assert_close(R, lumen.tensor(want), 1e-6, "relevance")
    support.assert_close(raw, R:narrow(2, 1, 1):narrow(3, 2, 16):reshape { 2, 1, 4, 4 }, 0, "raw map")
    assert.is_true(raw:max_all() > 1e-3, "the class token gets relevance from the patches")
    assert.same({ 2, 1, 8, 8 }, map.shape)
  end)

  it("agrees with PyTorch (the authors' ViT notebook rule) on the ViT and the text transformer", function()
    local cases = {
      { "vit_opset13.onnx.gz", "vit", npy(TORCH .. "vision_input.npy") },
      { "vit_opset17.onnx.gz", "vit", npy(TORCH .. "vision_input.npy") },
      { "text_transformer.onnx.gz", "text_transformer", lumen.add(npy(TORCH .. "text_tokens.npy"):float(), 1):long() },
    }
    for _, c in ipairs(cases) do
      local m = lumen.onnx.load(TORCH .. c[1])
      local _, targets, _, _, _, R = explain.transformer_attribution(m, c[3])
      local ref = npy(TORCH .. c[2] .. "_attribution.npy")
      assert.same(info[c[2]].top_1based, targets)
      local T = ref:size(2)
      local I = lumen.eq(lumen.arange(T):reshape { T, 1 }, lumen.arange(T):reshape { 1, T })
      support.assert_close(R, ref, 1e-5, c[1])
      support.assert_rel_l2(R - I, ref - I, 1e-4, c[1] .. " (R - I)")
    end
  end)

  it("reaches the attention of a token model whose weights are all frozen", function()
    lumen.seed(4)
    local tt = lumen.models.text_transformer { vocab = 30, length = 8, dim = 8, heads = 2, mlp = 16, classes = 3 }:eval()
    local ids = lumen.tensor({ { 5, 6, 7, 8, 9, 2, 1, 1 } }, "int64")
    local want = explain.transformer_attribution(tt, ids, { target = 3 })
    for _, p in ipairs(tt:parameters()) do p.tensor.requires_grad = false end
    support.assert_close(explain.transformer_attribution(tt, ids, { target = 3 }), want, 0, "frozen")
    assert.is_true(want:max_all() > 0)
  end)
end)

describe("attention methods: errors", function()
  local model, x = tiny_vit(), pictures()

  it("name what is wrong before any work", function()
    assert.has_error(function() explain.attention_rollout(model, x, { discard_ratio = 1 }) end,
      "attention_rollout: discard_ratio must be a number in [0, 1), got 1")
    assert.has_error(function() explain.attention_rollout(model, x, { head_fusion = "median" }) end,
      "attention_rollout: head_fusion must be 'mean', 'max' or 'min', got 'median'")
    assert.has_error(function() explain.attention_rollout(model, x, { attention = { "nope" } }) end,
      "attention_rollout: attention[1] = nope is not a layer of the model")
    assert.has_error(function() explain.transformer_attribution(model, x, { attention = { "head" } }) end,
      "transformer_attribution: attention layer 'head' is (2, 3); self-attention weights are (N, heads, T, T) or "
      .. "(N * heads, T, T) for a batch of 2")
    assert.has_error(function() explain.attention_rollout(model, x, { grid = { 3, 3 } }) end,
      "attention_rollout: the attention covers 17 tokens, which a 3 x 3 grid of patches does not make (tokens = 'auto')")
  end)

  it("say that a model has no attention, or only windowed attention (Swin)", function()
    local ids = lumen.add(npy(TORCH .. "text_tokens.npy"):float(), 1):long()
    assert.has_error(function() explain.attention_rollout(lumen.onnx.load(TORCH .. "text_lstm.onnx.gz"), ids) end,
      "attention_rollout: no attention weights found: the model has no MultiheadAttention layer and no Softmax; pass "
      .. "attention = {names}")
    local ok, err = pcall(explain.transformer_attribution, lumen.onnx.load(TORCH .. "swin.onnx.gz"),
      npy(TORCH .. "vision_input.npy"))
    assert.is_false(ok)
    assert.truthy(tostring(err):find("windowed attention, as Swin's, is not attention over the model's tokens", 1, true))
  end)
end)
