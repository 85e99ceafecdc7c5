-- tests/lua/transformer_spec.lua — the ops and layers transformers and recurrent nets need: every new op
-- against finite differences (lumen.gradcheck) and known values, its errors; lumen.nn's LayerNorm,
-- MultiheadAttention, TransformerEncoderLayer, LSTM and GRU against torch.nn on the same weights
-- (tests/fixtures/torch/layers.safetensors, tools/export_transformers.py), their naming as composites,
-- capture, stop_at, summary and checkpoints.
local lumen = require "lumen"
local support = require "support"
local nn = lumen.nn

local TORCH = "tests/fixtures/torch/"

-- gradchecks of the new ops in every form they take (tests/lua/ops_spec.lua holds the op table's walk)
local function grad_ok(op, fn, inputs, opts)
  local ok, msg = lumen.gradcheck(fn, inputs, opts)
  assert(ok, op .. ": " .. tostring(msg))
end

local err_of = support.error_of

describe("transformer and recurrent ops", function()
  lumen.seed(11)
  local x = lumen.randn { 2, 3, 4 }

  it("erf and floor: values and gradients", function()
    local t = lumen.tensor { -2, -0.5, 0, 0.5, 2 }
    support.assert_values_close(support.values(lumen.erf(t)), { -0.9953223, -0.5204999, 0, 0.5204999, 0.9953223 }, 1e-6, "erf")
    support.assert_values_close(support.values(lumen.floor(lumen.tensor { -1.5, -1, 0.2, 2.7 })), { -2, -1, 0, 2 }, 0, "floor")
    grad_ok("erf", lumen.erf, { x })
    grad_ok("floor", lumen.floor, { lumen.add(lumen.mul(lumen.rand { 10 }, 0.8), 0.1) })
  end)

  it("remainder takes the divisor's sign, fmod the dividend's; both differentiable", function()
    local a, b = lumen.tensor { -7, 7, -7, 7 }, lumen.tensor { 3, 3, -3, -3 }
    assert.same({ 2, 1, -1, -2 }, support.values(lumen.remainder(a, b)))
    assert.same({ -1, 1, -1, 1 }, support.values(lumen.fmod(a, b)))
    local d = lumen.add(lumen.rand { 4 }, 0.6)
    assert(lumen.gradcheck(lumen.remainder, { x, d }))
    assert(lumen.gradcheck(lumen.fmod, { x, d }))
  end)

  it("tile repeats like torch.tile, with a gradient that sums the copies", function()
    local t = lumen.tensor { { 1, 2 }, { 3, 4 } }
    assert.same({ { 1, 2, 1, 2 }, { 3, 4, 3, 4 }, { 1, 2, 1, 2 }, { 3, 4, 3, 4 } }, lumen.tile(t, { 2, 2 }):totable())
    assert.same({ 3, 2, 6, 4 }, lumen.tile(x, { 3, 1, 2, 1 }).shape) -- a longer reps adds dims
    grad_ok("expand", function(a) return lumen.tile(a, { 2, 1, 3 }) end, { x })
    assert.truthy(err_of(lumen.tile, t, { -1, 1 }):find("non-negative", 1, true))
  end)

  it("scatter_nd replaces the slices the index rows name", function()
    local y = lumen.scatter_nd(lumen.zeros { 3, 2 }, lumen.tensor({ { 2 } }, "int64"), lumen.tensor { { 5, 6 } })
    assert.same({ { 0, 0 }, { 5, 6 }, { 0, 0 } }, y:totable())
    local idx = lumen.tensor({ { 1, 2 }, { 2, 3 } }, "int64")
    grad_ok("scatter_nd", function(a, u) return lumen.scatter_nd(a, idx, u) end, { x, lumen.randn { 2, 4 } })
    local i3 = lumen.tensor({ { 2, 3, 1 } }, "int64")
    grad_ok("scatter_nd", function(a, u) return lumen.scatter_nd(a, i3, u) end, { x, lumen.randn { 1 } })
    assert.truthy(err_of(lumen.scatter_nd, x, lumen.tensor({ { 1, 1 }, { 1, 1 } }, "int64"), lumen.randn { 2, 4 })
      :find("the same slice is named twice", 1, true))
    assert.truthy(err_of(lumen.scatter_nd, x, lumen.tensor({ { 3, 1 } }, "int64"), lumen.randn { 1, 4 })
      :find("index 3 out of range for dimension 1 of size 2", 1, true))
    assert.truthy(err_of(lumen.scatter_nd, x, lumen.tensor({ { 1, 1 } }, "int64"), lumen.randn { 2, 4 })
      :find("updates must be (1, 4)", 1, true))
  end)

  it("einsum: matmul, batched attention scores, broadcasting ellipsis, sums, permutations", function()
    local a, b = lumen.randn { 2, 3, 4, 5 }, lumen.randn { 2, 3, 6, 5 }
    local ref = lumen.matmul(a, lumen.transpose(b, 3, 4))
    assert(lumen.max_abs_diff(lumen.einsum("bhid,bhjd->bhij", a, b), ref) < 1e-6)
    assert(lumen.max_abs_diff(lumen.einsum("...ij,...kj", a, b), ref) < 1e-6) -- implicit output
    local m, w = lumen.randn { 3, 4 }, lumen.randn { 4, 2 }
    assert(lumen.max_abs_diff(lumen.einsum("ij,jk->ik", m, w), lumen.matmul(m, w)) < 1e-6)
    assert(lumen.max_abs_diff(lumen.einsum("ij->ji", m), lumen.t(m)) == 0)
    assert(math.abs(lumen.einsum("ij->", m):item() - lumen.sum_all(m)) < 1e-5)
    local v = lumen.randn { 4 }
    assert(math.abs(lumen.einsum("i,i->", v, v):item() - lumen.dot64(v, v)) < 1e-5)
    -- a letter one operand has and the output lacks is summed first; size-1 batch dims broadcast
    local p, q = lumen.randn { 1, 3, 4 }, lumen.randn { 2, 4, 5 }
    local want = lumen.matmul(lumen.expand(p, { 2, 3, 4 }), q)
    assert(lumen.max_abs_diff(lumen.einsum("bij,bjk->bik", p, q), want) < 1e-5)
    grad_ok("matmul", function(s, t) return lumen.einsum("bhid,bhjd->bhij", s, t) end, { a, b })
    grad_ok("matmul", function(s, t) return lumen.einsum("bij,bjk->bik", s, t) end, { p, q })
    assert.truthy(err_of(lumen.einsum, "ii->i", m):find("repeats within one operand", 1, true))
    assert.truthy(err_of(lumen.einsum, "ij,jk->ik", m, m):find("letter 'j' has size 4 in one operand and 3", 1, true))
    assert.truthy(err_of(lumen.einsum, "ij,jk,kl->il", m, m):find("3 operand terms for 2 tensors", 1, true))
  end)

  it("layer_norm over one or two trailing dims, with and without weight and bias", function()
    local y = lumen.layer_norm(x, 4)
    local mean, var = lumen.mean(y, 3), lumen.var(y, 3, false)
    assert(lumen.max_all(lumen.abs(mean)) < 1e-6)
    assert(lumen.max_all(lumen.abs(lumen.sub(var, 1))) < 1e-3)
    grad_ok("layer_norm", function(t, w, b) return lumen.layer_norm(t, { 3, 4 }, w, b, 1e-3) end,
      { x, lumen.randn { 3, 4 }, lumen.randn { 3, 4 } })
    grad_ok("layer_norm", function(t) return lumen.layer_norm(t, 4) end, { x })
    assert.truthy(err_of(lumen.layer_norm, x, { 4, 4 }):find("normalized_shape {4, 4} does not match", 1, true))
  end)

  it("lstm and gru: every output differentiable in every input, both directions, both GRU forms", function()
    local s = lumen.randn { 4, 2, 3 } -- (T, N, I)
    local H = 2
    local function lstm_all(...)
      local y, h, c = lumen.lstm(...)
      return lumen.cat({ y, lumen.unsqueeze(h, 1), lumen.unsqueeze(c, 1) }, 1)
    end
    for _, reverse in ipairs { false, true } do
      grad_ok("rnn", lstm_all, { s, lumen.randn { 4 * H, 3 }, lumen.randn { 4 * H, H }, lumen.randn { 4 * H },
        lumen.randn { 4 * H }, lumen.randn { 2, H }, lumen.randn { 2, H }, { reverse = reverse } })
    end
    local function gru_all(...)
      local y, h = lumen.gru(...)
      return lumen.cat({ y, lumen.unsqueeze(h, 1) }, 1)
    end
    for _, lbr in ipairs { true, false } do
      grad_ok("rnn", gru_all, { s, lumen.randn { 3 * H, 3 }, lumen.randn { 3 * H, H }, lumen.randn { 3 * H },
        lumen.randn { 3 * H }, lumen.randn { 2, H }, { reverse = lbr, linear_before_reset = lbr } })
    end
    -- h_n is the state after the last step processed: the last row forward, the first reversed
    local y, h = lumen.gru(s, lumen.randn { 3 * H, 3 }, lumen.randn { 3 * H, H }, nil, nil, nil, { reverse = true })
    assert.equal(0, lumen.max_abs_diff(h, lumen.select(y, 1, 1)))
    assert.truthy(err_of(lumen.lstm, s, lumen.randn { 4 * H, 5 }, lumen.randn { 4 * H, H })
      :find("input weight must be (8, 3)", 1, true))
    assert.truthy(err_of(lumen.gru, s, lumen.randn { 3 * H, 3 }, lumen.randn { 3 * H, H }, nil, nil, nil, { reversed = true })
      :find("unknown option 'reversed'", 1, true))
  end)

end)

---------------------------------------------------------------- lumen.nn against torch.nn

local T = lumen.read_safetensors(TORCH .. "layers.safetensors")

-- Loads the tensors of fixture `prefix` (those that are not inputs, outputs or masks) into m.
local function load(m, prefix, rename)
  for k, t in pairs(T) do
    local name = k:sub(#prefix + 2)
    if k:sub(1, #prefix + 1) == prefix .. "." and not name:match("^g?x%d$") and name ~= "y" and name ~= "r"
       and name ~= "attention" and name ~= "key_padding_mask" then
      m:set_state(rename and rename(name) or name, t)
    end
  end
  m:eval()
  return m
end

-- torch.nn.LSTM / GRU names -> lumen's: weight_ih_l0_reverse -> layer1.weight_ih_reverse
local function rnn_name(n)
  local w, l, rev = n:match("^(%a+_%a+)_l(%d)(.*)$")
  return ("layer%d.%s%s"):format(tonumber(l) + 1, w, rev)
end

-- Runs call(m, inputs...) on the fixture's inputs; checks the output, the gradients of <y, r> with
-- respect to each input and (when given) the attention weights, all within 1e-5.
local function agrees(name, m, call)
  local xs = {}
  for i = 1, 3 do
    if T[name .. ".x" .. i] then xs[i] = lumen.autograd.set_requires_grad(lumen.clone(T[name .. ".x" .. i]), true) end
  end
  local y, extra = call(m, table.unpack(xs))
  support.assert_close(y, T[name .. ".y"], 1e-5, name .. " output")
  local g = lumen.grad(lumen.sum(lumen.mul(y, T[name .. ".r"])), xs)
  for i = 1, #xs do support.assert_close(g[i], T[name .. ".gx" .. i], 1e-5, name .. " gradient " .. i) end
  if T[name .. ".attention"] then support.assert_close(extra.attention, T[name .. ".attention"], 1e-6, name .. " attention") end
end

describe("lumen.nn transformer and recurrent layers", function()
  it("LayerNorm agrees with torch.nn.LayerNorm", function()
    agrees("ln", load(nn.LayerNorm { normalized_shape = { 4, 6 } }, "ln"), function(m, x) return m:forward(x) end)
  end)

  it("MultiheadAttention agrees with torch (cross-attention with a padding mask, self-attention) and returns its attention weights", function()
    agrees("mha", load(nn.MultiheadAttention { embed_dim = 8, num_heads = 2 }, "mha"),
      function(m, q, kv) return m:forward(q, kv, kv, { key_padding_mask = T["mha.key_padding_mask"] }) end)
    local m = load(nn.MultiheadAttention { embed_dim = 8, num_heads = 2 }, "mha_self")
    agrees("mha_self", m, function(mm, q) return mm:forward(q) end)
    local _, extra = m:forward(T["mha_self.x1"])
    assert.same({ 2, 2, 5, 5 }, extra.attention.shape) -- (N, heads, T, S)
    assert(lumen.max_abs_diff(lumen.sum(extra.attention, 4), lumen.ones { 2, 2, 5 }) < 1e-6, "rows sum to 1")
    -- the padding mask gives zero weight to the padded keys
    local _, e2 = m:forward(T["mha.x1"], T["mha.x2"], T["mha.x2"], { key_padding_mask = T["mha.key_padding_mask"] })
    assert.equal(0, lumen.max_all(lumen.abs(lumen.narrow(lumen.select(e2.attention, 1, 1), 3, 6, 2))))
  end)

  it("MultiheadAttention: a causal attn_mask, per-head masks, and batch_first = false", function()
    lumen.seed(9)
    local m = nn.MultiheadAttention { embed_dim = 4, num_heads = 2 }
    local x = lumen.randn { 2, 3, 4 }
    local causal = lumen.tensor({ { 0, 1, 1 }, { 0, 0, 1 }, { 0, 0, 0 } }, "int64")
    local y, e = m:forward(x, { attn_mask = causal })
    for i = 1, 3 do
      for j = i + 1, 3 do assert.equal(0, lumen.max_all(lumen.abs(lumen.select(lumen.select(e.attention, 3, i), 3, j)))) end
    end
    local per_head = lumen.reshape(lumen.expand(lumen.reshape(causal:float(), { 1, 3, 3 }), { 4, 3, 3 }), { 4, 3, 3 })
    local y2 = m:forward(x, { attn_mask = lumen.mul(per_head, -1e9) }) -- an additive float mask, one per head
    support.assert_close(y2, y, 1e-5, "float mask")
    local t = nn.MultiheadAttention { embed_dim = 4, num_heads = 2, batch_first = false }
    for _, p in ipairs(m:parameters()) do t:set_state(p.name, p.tensor) end -- a nameless layer: local names
    local yt = t:forward(lumen.transpose(x, 1, 2))
    support.assert_close(lumen.transpose(yt, 1, 2), m:forward(x), 1e-6, "time first")
  end)

  it("TransformerEncoderLayer agrees with torch: post-norm ReLU, pre-norm GELU, with a padding mask", function()
    local cfg = { d_model = 8, nhead = 2, dim_feedforward = 16 }
    agrees("tel_post", load(nn.TransformerEncoderLayer(cfg), "tel_post"), function(m, x) return m:forward(x) end)
    local pre = { d_model = 8, nhead = 2, dim_feedforward = 16, activation = "gelu", norm_first = true }
    agrees("tel_pre", load(nn.TransformerEncoderLayer(pre), "tel_pre"), function(m, x) return m:forward(x) end)
    agrees("tel_mask", load(nn.TransformerEncoderLayer(cfg), "tel_mask"),
      function(m, x) return m:forward(x, { key_padding_mask = T["tel_mask.key_padding_mask"] }) end)
  end)

  it("LSTM and GRU agree with torch: 2 layers, bidirectional, initial states, and time-first", function()
    agrees("lstm", load(nn.LSTM { input_size = 4, hidden_size = 3, num_layers = 2, bidirectional = true }, "lstm", rnn_name),
      function(m, x, h, c) return m:forward(x, { h0 = h, c0 = c }) end)
    agrees("gru", load(nn.GRU { input_size = 4, hidden_size = 3, num_layers = 2, bidirectional = true }, "gru", rnn_name),
      function(m, x, h) return m:forward(x, { h0 = h }) end)
    agrees("gru_time_first", load(nn.GRU { input_size = 4, hidden_size = 3, batch_first = false }, "gru_time_first", rnn_name),
      function(m, x) return m:forward(x) end)
  end)

  it("return_sequences = false gives the last state of each direction, which torch's h_n holds", function()
    local m = load(nn.GRU { input_size = 4, hidden_size = 3, num_layers = 2, bidirectional = true, return_sequences = false },
      "gru", rnn_name)
    local x, h0 = T["gru.x1"], T["gru.x2"]
    local y = m:forward(x, { h0 = h0 })
    local seq = T["gru.y"] -- (N, T, 2H)
    local want = lumen.cat({ lumen.select(lumen.narrow(seq, 3, 1, 3), 2, 5), lumen.select(lumen.narrow(seq, 3, 4, 3), 2, 1) }, 2)
    support.assert_close(y, want, 1e-6, "last states")
  end)

  it("parameters of the layers are differentiable (finite differences through the modules)", function()
    lumen.seed(5)
    local mha = nn.MultiheadAttention { embed_dim = 4, num_heads = 2 }
    local q = lumen.randn { 1, 3, 4 }
    assert(lumen.gradcheck(function(w, b)
      mha.in_proj_weight, mha.in_proj_bias = w, b
      return (mha:forward(q))
    end, { mha.in_proj_weight, mha.in_proj_bias }))
    local lstm = nn.LSTM { input_size = 2, hidden_size = 2, bidirectional = true }
    local l1 = lstm:child("layer1")
    local s = lumen.randn { 2, 3, 2 }
    assert(lumen.gradcheck(function(w, r)
      l1.weight_ih, l1.weight_hh_reverse = w, r
      return lstm:forward(s)
    end, { l1.weight_ih, l1.weight_hh_reverse }))
  end)

  describe("as composites", function()
    local function text_model()
      lumen.seed(3)
      return nn.Sequential {
        nn.Embedding { num_embeddings = 20, embedding_dim = 8 },
        nn.TransformerEncoderLayer { d_model = 8, nhead = 2, dim_feedforward = 16, name = "encoder_1" },
        nn.TransformerEncoderLayer { d_model = 8, nhead = 2, dim_feedforward = 16, norm_first = true },
        nn.LSTM { input_size = 8, hidden_size = 5, num_layers = 2, bidirectional = true, return_sequences = false },
        nn.Linear { in_features = 10, out_features = 3 },
      }
    end
    local ids = lumen.tensor({ { 1, 2, 3, 4, 5, 6 }, { 6, 5, 4, 3, 2, 1 } }, "int64")

    it("name their children '<layer>.<child>', follow the name the container gives them, and capture them", function()
      local model = text_model():eval()
      local names, extras = {}, {}
      for _, l in ipairs(model:layers()) do
        if l.extra then extras[#extras + 1] = l.name else names[#names + 1] = l.name end
      end
      assert.equal("encoder_1.self_attn:attention", extras[1]) -- the attention weights, capturable
      assert.equal("encoder_1.self_attn", names[2])
      assert.equal("transformer_encoder_layer_1.self_attn", names[11])
      assert.equal("lstm_1.layer1", names[20])
      local seen = {}
      for _, n in ipairs(names) do
        assert.is_nil(seen[n], "duplicate " .. n)
        seen[n] = true
      end
      local y, cap = model:forward(ids, { capture = { "encoder_1.self_attn", "encoder_1", "lstm_1.layer2",
                                                      "encoder_1.norm2" } })
      assert.same({ 2, 3 }, y.shape)
      assert.same({ 2, 6, 8 }, cap["encoder_1.self_attn"].shape)
      assert.same({ 2, 6, 10 }, cap["lstm_1.layer2"].shape)
      assert.equal(0, lumen.max_abs_diff(cap["encoder_1"], cap["encoder_1.norm2"])) -- post-norm: the layer ends in norm2
    end)

    it("stop at a child layer when asked", function()
      local model = text_model():eval()
      local y = model:forward(ids, { stop_at = "encoder_1.linear1" })
      assert.same({ 2, 6, 16 }, y.shape)
      local _, cap = model:forward(ids, { capture = { "encoder_1.linear1" } })
      assert.equal(0, lumen.max_abs_diff(y, cap["encoder_1.linear1"]))
    end)

    it("show in the summary with PyTorch's parameter counts, and save and load through a checkpoint", function()
      local model = text_model()
      local s = model:summary { 6 }
      assert.truthy(s:find("encoder_1.self_attn (MultiHeadAttention)", 1, true))
      assert.truthy(s:find("lstm_1.layer1 (LSTM)", 1, true))
      -- torch: MultiheadAttention(8, 2) 288, TransformerEncoderLayer(8, 2, 16) 600, LSTM(8, 5, 2 layers,
      -- bidirectional) 600 + 680, Embedding 160, Linear 33
      assert.truthy(s:find("Total params: 2,673", 1, true))
      local n = 0
      for _, p in ipairs(model:parameters()) do
        if p.name:find("^encoder_1%.") then n = n + p.tensor:numel() end
      end
      assert.equal(600, n)
      model:eval()
      local path = lumen.tmpname(".lumen")
      model:save(path)
      local back = lumen.load_model(path)
      os.remove(path)
      assert.equal(0, lumen.max_abs_diff(back:forward(ids), model:forward(ids)))
      assert.is_not_nil(back:layer("encoder_1.self_attn"))
    end)

    it("train: dropout is active while training and the identity in eval", function()
      local m = nn.TransformerEncoderLayer { d_model = 8, nhead = 2, dim_feedforward = 16, dropout = 0.5 }
      local x = lumen.randn { 1, 4, 8 }
      m:eval()
      local a, b = m:forward(x), m:forward(x)
      assert.equal(0, lumen.max_abs_diff(a, b))
      m:train()
      assert(lumen.max_abs_diff(m:forward(x), a) > 0)
    end)
  end)

  it("errors name the layer and the option", function()
    assert.truthy(err_of(nn.MultiheadAttention, { embed_dim = 6, num_heads = 4 })
      :find("embed_dim 6 is not divisible by num_heads 4", 1, true))
    assert.truthy(err_of(nn.TransformerEncoderLayer, { d_model = 8, nhead = 2, activaton = "gelu" })
      :find("TransformerEncoderLayer: unknown option 'activaton'", 1, true))
    assert.truthy(err_of(nn.TransformerEncoderLayer, { d_model = 8, nhead = 2, activation = "tanh" })
      :find("activation must be 'relu' or 'gelu'", 1, true))
    assert.truthy(err_of(nn.LSTM, { input_size = 4, hidden_size = 3, num_layers = 0 })
      :find("num_layers must be a positive integer", 1, true))
    assert.truthy(err_of(nn.LayerNorm, { normalized_shape = 0 }):find("normalized_shape must be", 1, true))
    local lstm = nn.LSTM { input_size = 4, hidden_size = 3, num_layers = 2 }
    assert.truthy(err_of(lstm.forward, lstm, lumen.randn { 2, 5, 4 }, { h0 = lumen.zeros { 1, 2, 3 } })
      :find("initial states must be (2, N, 3), got (1, 2, 3)", 1, true))
    local gru = nn.GRU { input_size = 4, hidden_size = 3 }
    assert.truthy(err_of(gru.forward, gru, lumen.randn { 2, 5, 4 }, { c0 = lumen.zeros { 1, 2, 3 } })
      :find("GRU: has no cell state", 1, true))
    local mha = nn.MultiheadAttention { embed_dim = 8, num_heads = 2 }
    assert.truthy(err_of(mha.forward, mha, lumen.randn { 2, 5, 6 }):find("query must be (N, L, 8), got (2, 5, 6)", 1, true))
  end)
end)
