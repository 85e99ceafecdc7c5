-- Specs for the text methods of lumen.explain on a tiny text CNN (Embedding -> Conv1d -> ReLU ->
-- GlobalMaxPool1d -> Linear): per-token saliency against the embedding weight's own gradient, also with
-- every weight frozen; Integrated Gradients completeness in embedding space; Grad-CAM with
-- channels-last and channels-first convolutions (and the imported PyTorch text CNN of
-- tests/fixtures/torch); occlusion against the drops computed by hand.
local lumen = require "lumen"
local support = require "support"
local assert_close = support.assert_close
local nn = lumen.nn
local explain = lumen.explain

local V, D, L = 20, 6, 9

-- Keras-style: the convolution and the pool read (N, L, C).
local function text_cnn()
  lumen.seed(31)
  return nn.Sequential {
    nn.Embedding { num_embeddings = V, embedding_dim = D, name = "embed" },
    nn.Conv1d { in_channels = D, out_channels = 5, kernel_size = 3, channels_last = true, name = "conv" },
    nn.ReLU {},
    nn.GlobalMaxPool1d { channels_last = true },
    nn.Linear { in_features = 5, out_features = 3, name = "fc" },
  }
end

-- Distinct ids, none of them the padding id 1.
local function ids() return lumen.tensor({ { 3, 7, 12, 5, 19, 2, 9, 14, 6 } }, "int64") end

local function scores(model, x) return lumen.no_grad(model.forward, model, x) end

describe("lumen.explain text methods", function()
  describe("text_saliency()", function()
    it("is the norm of the gradient at each token's embedding (distinct tokens: the weight rows' gradient)", function()
      local model, x = text_cnn(), ids()
      local sal, target = explain.text_saliency(model, x)
      assert.equal(lumen.argmax(scores(model, x), 2):get { 1 }, target)
      assert.same({ 1, L }, sal.shape)
      local weight = model:layer("embed").weight
      local gw = lumen.grad(model:forward(x):narrow(2, target, 1):sum(), weight) -- (V, D)
      local rows = gw:index_select(1, x:reshape { L }) -- (L, D), token order
      assert_close(sal, (rows * rows):sum(2):sqrt():reshape { 1, L }, 1e-6, "l2")
      assert.is_true(sal:max_all() > 0)
      local gxi = explain.text_saliency(model, x, { reduce = "grad_x_input", target = target })
      local E = weight:detach():index_select(1, x:reshape { L })
      assert_close(gxi, (rows * E):sum(2):reshape { 1, L }, 1e-6, "grad x input")
    end)

    it("reaches the embedding when every weight is frozen (GloVe)", function()
      local model, x = text_cnn(), ids()
      local sal, target = explain.text_saliency(model, x)
      local cam = explain.text_gradcam(model, x)
      for _, p in ipairs(model:parameters()) do p.tensor.requires_grad = false end
      assert_close(explain.text_saliency(model, x, { target = target }), sal, 0, "frozen saliency")
      assert_close(explain.text_gradcam(model, x, { target = target }), cam, 0, "frozen grad-cam")
    end)

    it("rejects batches of sequences and models without an embedding", function()
      local model = text_cnn()
      assert.has_error(function() explain.text_saliency(model, lumen.ones({ 2, L }):long()) end,
        "text_saliency: expected token ids of shape (1, L), got (2, 9)")
      assert.has_error(function() explain.text_saliency(function(b) return b end, ids()) end,
        "text_saliency: needs a lumen model, not a plain function")
    end)
  end)

  describe("text_integrated_gradients()", function()
    it("is complete within 1% at 256 steps and gives padding tokens nothing", function()
      local model = text_cnn()
      local x = ids()
      x:set({ 1, 4 }, 1) -- one padding token
      -- ReLU and max pooling make the gradient piecewise constant along the path: the trapezoid
      -- error falls like 1/steps here (1.4% at 128 steps, 0.45% at 256).
      local attr, gap, target = explain.text_integrated_gradients(model, x, { steps = 256, batch_size = 64 })
      assert.same({ 1, L }, attr.shape)
      local s = scores(model, lumen.cat({ x, lumen.ones({ 1, L }):long() }, 1))
      local delta = s:get { 1, target } - s:get { 2, target }
      assert.is_true(math.abs(delta) > 0.05, "the score moves from the padding sequence, by " .. delta)
      assert.near(attr:sum_all() - delta, gap, 1e-5)
      assert.is_true(math.abs(gap) < 0.01 * math.abs(delta), ("gap %g for a change of %g"):format(gap, delta))
      assert.equal(0, attr:get { 1, 4 })
    end)

    it("leaves the model as it was", function()
      local model = text_cnn()
      local before = scores(model, ids())
      lumen.autograd.reset_counts()
      explain.text_integrated_gradients(model, ids(), { steps = 4 })
      assert.equal(1, lumen.autograd.counts().embedding) -- the path points replace the embedding's output
      assert_close(scores(model, ids()), before, 0, "scores")
      assert.is_nil(rawget(model:layer("embed"), "forward"))
    end)
  end)

  describe("text_gradcam()", function()
    it("reads channels-last and channels-first convolutions alike", function()
      local last = text_cnn()
      local conv, fc = last:layer("conv"), last:layer("fc")
      local first = nn.Graph { inputs = { "ids" }, outputs = { "fc" }, nodes = {
        { name = "embed", module = last:layer("embed"), inputs = { "ids" } },
        { name = "t", fn = function(e) return e:transpose(2, 3) end, type = "Transpose", inputs = { "embed" } },
        { name = "conv", module = nn.Conv1d { in_channels = D, out_channels = 5, kernel_size = 3 }, inputs = { "t" } },
        { name = "relu", module = nn.ReLU {}, inputs = { "conv" } },
        { name = "pool", module = nn.GlobalMaxPool1d {}, inputs = { "relu" } },
        { name = "fc", module = nn.Linear { in_features = 5, out_features = 3 }, inputs = { "pool" } },
      } }
      first:layer("conv").weight:copy_(conv.weight)
      first:layer("conv").bias:copy_(conv.bias)
      first:layer("fc").weight:copy_(fc.weight)
      first:layer("fc").bias:copy_(fc.bias)
      local x = ids()
      local a, target, layer = explain.text_gradcam(last, x)
      assert.equal("conv", layer)
      assert.same({ 1, L }, a.shape)
      assert.is_true(a:min_all() >= 0 and a:max_all() > 0)
      assert_close(explain.text_gradcam(first, x), a, 1e-6, "channels first")
      -- stretched from the L - 2 conv positions: the raw Grad-CAM of the channels-first model
      local raw = explain.gradcam(first, x, { layer = "conv", raw = true, target = target }) -- (1, 1, L - 2)
      assert_close(a, lumen.upsample_bilinear(raw:unsqueeze(3), { 1, L }):reshape { 1, L }, 1e-6, "stretched")
    end)

    it("refuses a layer without 1-D feature maps in words, and returns the raw map beside the stretched one", function()
      local model, x = text_cnn(), ids()
      assert.has_error(function() explain.text_gradcam(model, x, { layer = "fc" }) end,
        "text_gradcam: layer 'fc' has output (1, 3); Grad-CAM needs 1-D feature maps (1, K, L) or channels-last"
        .. " (1, L, K), e.g. a Conv1d")
      assert.has_error(function() explain.text_gradcam(model, x, { layer = "dense_1" }) end,
        "text_gradcam: layer = 'dense_1' is not a layer of the model")
      local seed = lumen.models.textcnn { vocab = 30, dim = 4, length = 149, classes = 3 }
      assert.has_error(function() explain.text_gradcam(seed, lumen.ones({ 1, 149 }):long(), { layer = "dense_1" }) end,
        "text_gradcam: layer 'dense_1' has output (1, 128); Grad-CAM needs 1-D feature maps (1, K, L) or channels-last"
        .. " (1, L, K), e.g. a Conv1d")
      local cam, _, layer, raw, up = explain.text_gradcam(model, x)
      assert.equal("conv", layer)
      assert.same({ 1, L - 2 }, raw.shape)
      assert.equal(cam, up)
    end)

    it("finds the last convolution of the imported PyTorch text CNN", function()
      local model = assert(lumen.load_model("tests/fixtures/torch/textcnn.onnx"))
      local x = lumen.add(lumen.read_npy("tests/fixtures/torch/textcnn_tokens.npy"):float(), 1):long()
      local a, _, layer = explain.text_gradcam(model, x)
      assert.equal("/conv2/Conv_output_0", layer)
      assert.same({ 1, 12 }, a.shape)
      local attr, gap = explain.text_integrated_gradients(model, x, { steps = 64 })
      assert.same({ 1, 12 }, attr.shape)
      assert.is_true(math.abs(gap) < 0.01 * math.abs(attr:sum_all()), "gap " .. gap)
    end)
  end)

  describe("text_occlusion()", function()
    it("is the drop in the score when a token is replaced by padding", function()
      local model, x = text_cnn(), ids()
      local map, target, base = explain.text_occlusion(model, x)
      assert.same({ 1, L }, map.shape)
      assert.near(scores(model, x):get { 1, target }, base, 1e-6)
      for i = 1, L do
        local y = lumen.tensor(x)
        y:set({ 1, i }, 1)
        assert.near(base - scores(model, y):get { 1, target }, map:get { 1, i }, 1e-5)
      end
      assert.is_true(map:abs():max_all() > 1e-3)
    end)

    it("averages the windows covering each token", function()
      local model, x = text_cnn(), ids()
      local one = explain.text_occlusion(model, x, { target = 2 })
      local two = explain.text_occlusion(model, x, { target = 2, window = 2, pad_id = 3 })
      local y = lumen.tensor(x)
      y:set({ 1, 1 }, 3)
      y:set({ 1, 2 }, 3)
      local s = scores(model, lumen.cat({ x, y }, 1))
      assert.near(s:get { 1, 2 } - s:get { 2, 2 }, two:get { 1, 1 }, 1e-5)
      assert.is_true(lumen.max_abs_diff(one, two) > 1e-4)
    end)
  end)
end)
