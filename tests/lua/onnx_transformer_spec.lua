-- tests/lua/onnx_transformer_spec.lua — lumen.onnx on transformers and recurrent nets: PyTorch exports of a
-- ViT (opsets 13 and 17), a ConvNeXt, a Swin, a text TransformerEncoder, an LSTM and a bidirectional GRU
-- give PyTorch's logits (max |difference| <= 1e-5) and input saliency (relative L2 error <= 1e-3) on a
-- batch of 2 while exported at batch 1 with a symbolic batch size; each new operator agrees with PyTorch
-- (ops_opset*.onnx, outputs and the input gradient) and each operator form PyTorch does not export
-- with a NumPy reference from the ONNX spec (forms_opset*.onnx); exported GELU and LayerNorm patterns
-- fuse into one layer; unsupported forms are clear errors. Fixtures: tools/export_transformers.py.
local lumen = require "lumen"
local support = require "support"
local npy = support.npy

local TORCH = "tests/fixtures/torch/"
local info = support.json_file(TORCH .. "transformers.json")

-- The sum over rows of each row's top score, and the top ids.
local function top_scores(y)
  local top = lumen.argmax(y, 2)
  return lumen.sum(lumen.gather(y, 2, lumen.reshape(top, { y:size(1), 1 }))), top
end

local function types_of(model)
  local n = {}
  for _, l in ipairs(model:layers()) do n[l.type] = (n[l.type] or 0) + 1 end
  return n
end

-- lumen's 1-based ids of the fixture's tokens
local function token_ids()
  return lumen.add(npy(TORCH .. "text_tokens.npy"):float(), 1):long()
end

describe("lumen.onnx: transformers and recurrent nets from PyTorch", function()
  local images = {
    { "vit_opset13.onnx.gz", "vit" }, { "vit_opset17.onnx.gz", "vit" }, { "convnext.onnx.gz", "convnext" },
    { "swin.onnx.gz", "swin" },
  }
  for _, case in ipairs(images) do
    local file, ref = case[1], case[2]
    it(file .. " gives PyTorch's logits and input saliency on a batch of 2", function()
      local model = lumen.onnx.load(TORCH .. file)
      local x = lumen.autograd.set_requires_grad(npy(TORCH .. "vision_input.npy"), true)
      local y = model:forward(x)
      support.assert_close(y, npy(TORCH .. ref .. "_logits.npy"), 1e-5, file .. " logits")
      local score, top = top_scores(y)
      assert.same(info[ref].top_1based, support.values(top))
      support.assert_rel_l2(lumen.grad(score, x), npy(TORCH .. ref .. "_saliency.npy"), 1e-3, file .. " saliency")
    end)
  end

  for _, name in ipairs { "text_transformer", "text_lstm", "text_gru" } do
    it(name .. " gives PyTorch's logits and saliency at the embedding output", function()
      local model = lumen.onnx.load(TORCH .. name .. ".onnx.gz")
      local layer = info[name].embedding_layer
      local y, cap = model:forward(token_ids(), { capture = { layer } })
      support.assert_close(y, npy(TORCH .. name .. "_logits.npy"), 1e-5, name .. " logits")
      local g = lumen.grad((top_scores(y)), cap[layer])
      support.assert_rel_l2(g, npy(TORCH .. name .. "_saliency.npy"), 1e-3, name .. " saliency")
    end)
  end

  it("shapes computed from the batch size follow it: batches of 1 and 3 give the same rows", function()
    local vit = lumen.onnx.load(TORCH .. "vit_opset13.onnx.gz")
    local x, ref = npy(TORCH .. "vision_input.npy"), npy(TORCH .. "vit_logits.npy")
    support.assert_close(vit:forward(lumen.narrow(x, 1, 2, 1)), lumen.narrow(ref, 1, 2, 1), 1e-5, "ViT, batch 1")
    for _, name in ipairs { "text_transformer", "text_lstm", "text_gru" } do
      local model = lumen.onnx.load(TORCH .. name .. ".onnx.gz")
      local ids = token_ids()
      local three = lumen.cat({ ids, lumen.narrow(ids, 1, 1, 1) }, 1)
      local r = npy(TORCH .. name .. "_logits.npy")
      support.assert_close(model:forward(three), lumen.cat({ r, lumen.narrow(r, 1, 1, 1) }, 1), 1e-5, name .. ", batch 3")
    end
  end)

  it("ViT's attention probabilities are Softmax layers that capture as (batch * heads, tokens, tokens)", function()
    local model = lumen.onnx.load(TORCH .. "vit_opset17.onnx.gz")
    local names = info.vit.softmax_nodes["vit_opset17.onnx.gz"]
    assert.equal(2, #names) -- one per encoder layer
    local _, cap = model:forward(npy(TORCH .. "vision_input.npy"), { capture = names })
    for _, n in ipairs(names) do
      assert.same({ 2 * 3, 17, 17 }, cap[n].shape) -- 3 heads, 16 patches + the class token
      assert(lumen.max_abs_diff(lumen.sum(cap[n], 3), lumen.ones { 6, 17 }) < 1e-5)
    end
  end)

  it("fuses the exported GELU and LayerNorm patterns into one layer each", function()
    local t13, t17 = types_of(lumen.onnx.load(TORCH .. "vit_opset13.onnx.gz")), types_of(lumen.onnx.load(TORCH .. "vit_opset17.onnx.gz"))
    assert.equal(5, t13.LayerNorm) -- 2 per encoder layer and the final one
    assert.equal(2, t13.GELU)
    assert.is_nil(t13.Pow)
    assert.is_nil(t13.Sqrt)
    assert.equal(5, t17.LayerNorm)
    local convnext = types_of(lumen.onnx.load(TORCH .. "convnext.onnx.gz"))
    assert.equal(6, convnext.LayerNorm) -- the channels-last LayerNorm2d of 3 blocks, 2 downsamplers, the head
    assert.equal(3, convnext.GELU)
  end)

  it("recurrent layers are layers holding PyTorch's parameters, and give the state outputs the classifier reads", function()
    local counts = { text_lstm = 2304, text_gru = 1584 } -- torch: LSTM(8, 12, num_layers=2), GRU(8, 12, bidirectional)
    for name, want in pairs(counts) do
      local model = lumen.onnx.load(TORCH .. name .. ".onnx.gz")
      local n = 0
      for _, p in ipairs(model:parameters()) do
        if p.name:find("^/rnn/") then n = n + p.tensor:numel() end
      end
      assert.equal(want, n, name)
    end
    local lstm, gru = types_of(lumen.onnx.load(TORCH .. "text_lstm.onnx.gz")), types_of(lumen.onnx.load(TORCH .. "text_gru.onnx.gz"))
    assert.equal(2, lstm.LSTMLayer)
    assert.equal(4, lstm.LSTMState) -- Y_h and Y_c of both layers
    assert.equal(1, gru.GRULayer)
    assert.equal(1, gru.GRUState)
  end)

  it("the imported GRU is differentiable end to end (finite differences on the embedding table)", function()
    local model = lumen.onnx.load(TORCH .. "text_gru.onnx.gz")
    local emb = model:layer(info.text_gru.embedding_layer)
    local ids = lumen.narrow(token_ids(), 1, 1, 1)
    local ok, msg = lumen.gradcheck(function(w)
      emb.weight = w
      return model:forward(ids)
    end, { emb.weight }, { eps = 1e-2, max_checks = 120 })
    assert(ok, msg)
  end)
end)

describe("lumen.onnx: each new operator", function()
  local ref = lumen.read_safetensors(TORCH .. "ops.safetensors")
  for _, opset in ipairs { 12, 13, 17 } do
    it(("agrees with PyTorch at opset %d, outputs and input gradient, on a batch of 2"):format(opset), function()
      local model = lumen.onnx.load(TORCH .. ("ops_opset%d.onnx"):format(opset))
      local x = lumen.autograd.set_requires_grad(npy(TORCH .. "ops_input.npy"), true)
      local ys = model:forward(x)
      local total = lumen.zeros {}
      for k, name in ipairs(model.outputs) do
        support.assert_close(ys[k], ref["out." .. name], 1e-5, name)
        total = lumen.add(total, lumen.sum(lumen.mul(ys[k], ref["proj." .. name])))
      end
      assert.equal(17, #model.outputs)
      support.assert_close(lumen.grad(total, x), npy(TORCH .. "ops_grad.npy"), 1e-5, "input gradient")
    end)
  end

  local forms = lumen.read_safetensors(TORCH .. "forms.safetensors")
  for _, opset in ipairs { 11, 17 } do
    it(("agrees with the ONNX spec, form by form, at opset %d"):format(opset), function()
      local model = lumen.onnx.load(TORCH .. ("forms_opset%d.onnx"):format(opset))
      local ys = model:forward(npy(TORCH .. "forms_input.npy"))
      for k, name in ipairs(model.outputs) do
        support.assert_close(ys[k], forms[("opset%d.%s"):format(opset, name)], 1e-5, name)
      end
      assert(#model.outputs >= (opset == 11 and 6 or 30))
    end)
  end

  it("refuses what it cannot run exactly, naming the file, the node and the reason", function()
    local want = {
      lstm_activations = "node 'LSTM_3' (LSTM): attribute activations is not supported",
      lstm_peepholes = "node 'LSTM_4' (LSTM): peephole weights (input P) are not supported",
      lstm_sequence_lens = "sequence_lens other than the full length is not supported",
      gru_clip = "node 'GRU_3' (GRU): attribute clip is not supported",
      einsum_three = "3 operands (lumen's einsum takes one or two)",
      scatternd_add = "reduction 'add' is not supported",
      nonzero = "node 'NonZero_1' (NonZero): unsupported operator",
    }
    for name, piece in pairs(want) do
      local path = TORCH .. "unsupported_" .. name .. ".onnx"
      local ok, err = pcall(lumen.onnx.load, path)
      assert.is_false(ok, name)
      assert.equal(path .. ": ", err:sub(1, #path + 2))
      assert(err:find(piece, 1, true), ("%s: expected '%s' in '%s'"):format(name, piece, err))
    end
  end)
end)
