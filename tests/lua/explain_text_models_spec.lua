-- Specs for the text methods of lumen.explain (lua/lumen/explain/text.lua) on transformers and recurrent
-- nets: on PyTorch's text transformer, LSTM and bidirectional GRU (ONNX, tests/fixtures/torch) the per-token
-- saliency is PyTorch's embedding-output gradient reduced per token (L2 norm, gradient x input) within 1e-3,
-- and Integrated Gradients from the padding embedding is complete; on lumen-built LSTM / GRU classifiers the
-- saliency is the embedding weight's own gradient; on a transformer with a padding mask (which reads the
-- ids), IG's completeness gap is measured between the path's own ends.
local lumen = require "lumen"
local support = require "support"
local npy = support.npy
local nn = lumen.nn
local explain = lumen.explain

local TORCH = "tests/fixtures/torch/"
local info = support.json_file(TORCH .. "transformers.json")
local IDS = lumen.add(npy(TORCH .. "text_tokens.npy"):float(), 1):long() -- (2, 12), lumen's 1-based ids

local function scores(model, x) return lumen.no_grad(model.forward, model, x) end

describe("text methods on PyTorch's text transformer, LSTM and bidirectional GRU", function()
  for _, name in ipairs { "text_transformer", "text_lstm", "text_gru" } do
    it(name .. ": saliency per token is PyTorch's embedding-output gradient, reduced per token", function()
      local model = lumen.onnx.load(TORCH .. name .. ".onnx.gz")
      local ref = npy(TORCH .. name .. "_saliency.npy") -- (2, 12, E), each row for its top class
      local layer = info[name].embedding_layer
      for n = 1, 2 do
        local ids = IDS:narrow(1, n, 1)
        local g = ref:narrow(1, n, 1) -- (1, 12, E)
        local E = lumen.no_grad(model.forward, model, ids, { stop_at = layer })
        local sal, target = explain.text_saliency(model, ids)
        assert.equal(info[name].top_1based[n], target)
        support.assert_rel_l2(sal, (g * g):sum(3):sqrt(), 1e-3, name .. " l2, row " .. n)
        local gxi = explain.text_saliency(model, ids, { reduce = "grad_x_input" })
        support.assert_rel_l2(gxi, (g * E):sum(3), 1e-3, name .. " grad x input, row " .. n)
      end
    end)

    it(name .. ": Integrated Gradients from the padding embedding is complete", function()
      local model = lumen.onnx.load(TORCH .. name .. ".onnx.gz")
      local ids = IDS:narrow(1, 1, 1)
      local attr, gap, target = explain.text_integrated_gradients(model, ids, { steps = 64, batch_size = 65 })
      local s = scores(model, lumen.cat({ ids, lumen.ones({ 1, 12 }):long() }, 1))
      local delta = s:get { 1, target } - s:get { 2, target }
      assert.near(attr:sum_all() - delta, gap, 1e-4)
      assert.is_true(math.abs(gap) < 0.01 * math.abs(delta), ("%s: gap %g for a change of %g"):format(name, gap, delta))
    end)
  end
end)

describe("text methods on lumen-built recurrent and transformer classifiers", function()
  local V, L = 20, 9
  local ids = lumen.tensor({ { 3, 7, 12, 5, 19, 2, 9, 14, 6 } }, "int64") -- distinct, no padding
  local builds = {
    lstm = function()
      return nn.Sequential { nn.Embedding { num_embeddings = V, embedding_dim = 6, name = "embed" },
        nn.LSTM { input_size = 6, hidden_size = 5, num_layers = 2, return_sequences = false },
        nn.Linear { in_features = 5, out_features = 3 } }
    end,
    bigru = function()
      return nn.Sequential { nn.Embedding { num_embeddings = V, embedding_dim = 6, name = "embed" },
        nn.GRU { input_size = 6, hidden_size = 5, bidirectional = true, return_sequences = false },
        nn.Linear { in_features = 10, out_features = 3 } }
    end,
  }
  for kind, build in pairs(builds) do
    it(kind .. ": saliency is the norm of the embedding weight's gradient at each token", function()
      lumen.seed(11)
      local model = build():eval()
      local sal, target = explain.text_saliency(model, ids)
      assert.equal(lumen.argmax(scores(model, ids), 2):get { 1 }, target)
      local weight = model:layer("embed").weight
      local rows = lumen.grad(model:forward(ids):narrow(2, target, 1):sum(), weight):index_select(1, ids:reshape { L })
      support.assert_close(sal, (rows * rows):sum(2):sqrt():reshape { 1, L }, 1e-6, kind)
      local attr, gap = explain.text_integrated_gradients(model, ids, { steps = 64, batch_size = 65 })
      assert.same({ 1, L }, attr.shape)
      assert.is_true(math.abs(gap) < 1e-3, kind .. " gap " .. gap)
    end)
  end

  it("a transformer with a padding mask: the gap is between the path's ends, which keep the ids' mask", function()
    lumen.seed(12)
    local tt = lumen.models.text_transformer { vocab = V, length = 12, dim = 8, heads = 2, mlp = 16, classes = 3 }:eval()
    local x = lumen.tensor({ { 3, 7, 12, 5, 19, 2, 9, 1, 1, 1, 1, 1 } }, "int64")
    local attr, gap, target = explain.text_integrated_gradients(tt, x, { steps = 128, batch_size = 129 })
    -- the ends: the model from the embedding of x and of all-padding, the mask still from x
    local Eb = lumen.no_grad(tt.forward, tt, lumen.ones({ 1, 12 }):long(), { stop_at = "embed" })
    local s1 = scores(tt, x):get { 1, target }
    local s0 = lumen.no_grad(tt.forward, tt, x, { replace = { embed = Eb } }):get { 1, target }
    assert.near(attr:sum_all() - (s1 - s0), gap, 1e-5)
    assert.is_true(math.abs(gap) < 0.01 * math.abs(s1 - s0), ("gap %g for a change of %g"):format(gap, s1 - s0))
    -- the all-padding sequence itself is another input (its mask hides every token): not the path's start
    local s_pad = scores(tt, lumen.ones({ 1, 12 }):long()):get { 1, target }
    assert.is_true(math.abs(s_pad - s0) > 10 * math.abs(gap))
    for j = 8, 12 do assert.equal(0, attr:get { 1, j }) end -- padding is masked: no attribution
    local sal = explain.text_saliency(tt, x, { target = target })
    for j = 8, 12 do assert.equal(0, sal:get { 1, j }) end
    assert.is_true(sal:narrow(2, 1, 7):min_all() > 0)
  end)
end)
