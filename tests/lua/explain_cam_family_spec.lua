-- Specs for the CAM family beyond Grad-CAM: HiResCAM, LayerCAM, XGrad-CAM (cam_variants.lua), EigenCAM,
-- Score-CAM, Ablation-CAM and FullGrad. Properties on small networks (each would fail if the method were
-- wrong): HiResCAM and XGrad-CAM equal Grad-CAM where the gradient is the same at every position, LayerCAM
-- there is ReLU(sum_k ReLU(g_k) A^k), EigenCAM of a rank-one layer is its centred pattern and in general
-- the first principal component, Score-CAM's weights are the softmax of the masked inputs' scores,
-- Ablation-CAM's weights have a closed form at a GAP layer and its ablated passes run only the layers after
-- the target, FullGrad's terms add up to the score. Then agreement with PyTorch references written from the
-- papers (tools/ref_cam_family.py) on the shipped Fashion-MNIST CNN and the ResNet-18 fixture.
local lumen = require "lumen"
local support = require "support"
local assert_close = support.assert_close
local nn = lumen.nn
local explain = lumen.explain

local OURS = "tests/fixtures/explain/"

local gap_net = support.gap_net -- (N, 3, 8, 8) -> ... -> relu ("features", K x 4 x 4) -> GAP -> fc (3)

-- The features A (N, K, 4, 4) of gap_net and g_k = W[c_i, k] / 16 as (N, K, 1, 1): the gradient of the
-- target score at every position of the GAP layer.
local function gap_parts(model, x, targets)
  local _, acts = lumen.no_grad(model.forward, model, x, { capture = { "features" } })
  local W = model:layer("fc").weight:detach()
  local K = W.shape[2]
  return acts.features, W:index_select(1, targets):reshape { #targets, K, 1, 1 } / 16
end

describe("lumen.explain CAM family", function()
  local model, x

  before_each(function()
    model = gap_net()
    x = lumen.randn { 2, 3, 8, 8 }
  end)

  it("return map, targets, layer, raw and upsampled maps (then their extras), one forward and one backward",
    function()
      for _, method in ipairs { "hirescam", "layercam", "xgradcam", "eigencam", "scorecam", "ablationcam" } do
        local map, targets, layer, raw, up = explain[method](model, x, { target = { 1, 2 } })
        assert.same({ 1, 2 }, targets, method)
        assert.equal("features", layer, method)
        assert.same({ 2, 1, 4, 4 }, raw.shape, method)
        assert.same({ 2, 1, 8, 8 }, up.shape, method)
        assert.equal(map, up, method)
        assert.is_true(raw:min_all() >= 0 and up:max_all() <= 1, method)
        local r2 = explain[method](model, x, { target = { 1, 2 }, raw = true })
        assert_close(r2, raw, 1e-6, method .. " raw")
      end
      for _, method in ipairs { "hirescam", "layercam", "xgradcam" } do
        lumen.autograd.reset_counts()
        explain[method](model, x)
        assert.equal(2, lumen.autograd.counts().conv2d, method)
        assert.equal(1, lumen.autograd.counts("backward").linear, method)
        assert.equal(0, lumen.autograd.counts("backward").conv2d, method) -- stops at the layer
      end
    end)

  describe("hirescam()", function()
    it("equals Grad-CAM where the gradient is the same at every position (before GAP), not elsewhere", function()
      local hr, targets = explain.hirescam(model, x, { raw = true })
      local gc = explain.gradcam(model, x, { raw = true, target = targets })
      assert.is_true(gc:max_all() > 0)
      assert_close(hr, gc, 1e-6, "hirescam vs gradcam")
      local A, g = gap_parts(model, x, targets)
      assert_close(hr, (g * A):sum(2, true):relu(), 1e-6, "sum_k g_k A^k")
      local inner = explain.hirescam(model, x, { raw = true, layer = "relu1", target = targets })
      local inner_gc = explain.gradcam(model, x, { raw = true, layer = "relu1", target = targets })
      assert.is_true(lumen.rel_l2(inner, inner_gc) > 0.05, "the gradient varies at relu1")
    end)
  end)

  describe("layercam()", function()
    it("is ReLU(sum_k ReLU(g_k) A^k) at the last layer of a GAP network", function()
      local lc, targets = explain.layercam(model, x, { raw = true })
      local A, g = gap_parts(model, x, targets)
      assert.is_true(g:min_all() < 0, "some negative weights, which LayerCAM drops")
      assert_close(lc, (g:relu() * A):sum(2, true):relu(), 1e-6, "layercam")
      assert.is_true(lumen.rel_l2(lc, explain.gradcam(model, x, { raw = true, target = targets })) > 0.05)
    end)
  end)

  describe("xgradcam()", function()
    it("weighs each channel by its activation-weighted gradient; equal to Grad-CAM before GAP", function()
      local xg, targets, _, _, _, w = explain.xgradcam(model, x, { raw = true })
      local A, g = gap_parts(model, x, targets)
      local live = A:sum({ 3, 4 }, true):gt(0) -- channels that sum to 0 get no weight
      assert_close(w, (g * live):reshape { 2, 6 }, 1e-6, "weights")
      assert_close(xg, explain.gradcam(model, x, { raw = true, target = targets }), 1e-6, "xgradcam vs gradcam")
      -- at an inner layer: w_k = sum(A g) / sum(A), with g from the tape
      local _, _, _, _, _, wi = explain.xgradcam(model, x, { layer = "relu1", target = targets })
      local _, acts = model:forward(x, { capture = { "relu1" } })
      local Ai = acts.relu1:detach()
      Ai.requires_grad = true
      local s = model:forward(x, { replace = { relu1 = Ai } })
      local gi = lumen.grad((s * explain.common.onehot(2, 3, targets)):sum(), Ai)
      local want = (gi * Ai):sum({ 3, 4 }) / Ai:sum({ 3, 4 })
      assert_close(wi, want:detach(), 1e-5, "inner weights")
    end)
  end)

  describe("eigencam()", function()
    it("maps a rank-one layer A_k = a_k x to its centred pattern |a| (x - mean x), or |a| x uncentred", function()
      lumen.seed(3)
      local conv = nn.Conv2d { in_channels = 1, out_channels = 5, kernel_size = 1, bias = false, name = "proj" }
      local m = nn.Sequential { conv, nn.GlobalAvgPool2d {}, nn.Linear { in_features = 5, out_features = 2 } }
      local xi = lumen.rand { 1, 1, 6, 6 }
      local a = conv.weight:detach():reshape { 5 }
      local map, _, layer, _, _, explained = explain.eigencam(m, xi, { raw = true })
      assert.equal("proj", layer)
      local norm = a:norm():item()
      assert_close(map, ((xi - xi:mean_all()) * norm):relu(), 1e-5, "centred")
      assert.near(1, explained[1], 1e-6) -- one component explains it all
      local un = explain.eigencam(m, xi, { raw = true, center = false })
      assert_close(un, xi * norm, 1e-5, "uncentred")
      -- a layer of negated loadings gives the same map: the sign of v_1 follows the total activation
      conv.weight = conv.weight:detach() * -1
      assert_close(explain.eigencam(m, xi, { raw = true, center = false }), lumen.zeros { 1, 1, 6, 6 }, 1e-6, "neg")
    end)

    it("projects on the direction of largest variance (power iteration on X^T X)", function()
      local map, _, _, _, _, explained = explain.eigencam(model, x, { raw = true })
      local _, acts = model:forward(x, { capture = { "features" } })
      for i = 1, 2 do
        local X = acts.features:narrow(1, i, 1):reshape { 6, 16 }:t()
        X = X - X:mean(1, true)
        local C = X:t():matmul(X)
        local v = lumen.ones { 6 }
        for _ = 1, 500 do v = C:matmul(v); v = v / v:norm():item() end
        local lambda = v:dot(C:matmul(v)):item()
        if v:sum():item() < 0 then v = -v end
        local want = X:matmul(v):reshape { 1, 1, 4, 4 }:relu()
        assert_close(map:narrow(1, i, 1), want, 1e-4, "sample " .. i)
        local total = 0
        for k = 1, 6 do total = total + C:get { k, k } end
        assert.near(lambda / total, explained[i], 1e-4)
      end
    end)
  end)

  describe("scorecam()", function()
    it("weighs channels by the softmax of the masked inputs' scores (the paper's Algorithm 1)", function()
      local map, targets, _, _, _, alpha, scores = explain.scorecam(model, x, { raw = true, batch_size = 4 })
      local _, acts = model:forward(x, { capture = { "features" } })
      local A = acts.features
      local _, _, _, _, _, p = explain.scorecam(model, x, { weights = "probability", target = targets })
      local _, _, _, _, _, _, sp = explain.scorecam(model, x, { probabilities = true, target = targets })
      for i = 1, 2 do
        local masked = {}
        for k = 1, 6 do -- channel k upsampled with aligned corners, min-max normalised, times the input
          local up = lumen.upsample_bilinear(A:narrow(1, i, 1):narrow(2, k, 1), { 8, 8 }, { align_corners = true })
          local lo, hi = up:min_all(), up:max_all()
          local mask = hi > lo and (up - lo) / (hi - lo) or up * 0
          masked[k] = x:narrow(1, i, 1) * mask
        end
        local out = model:forward(lumen.cat(masked, 1))
        local s = out:narrow(2, targets[i], 1):reshape { 1, 6 }
        assert_close(scores:narrow(1, i, 1), s, 1e-5, "masked scores")
        assert_close(alpha:narrow(1, i, 1), lumen.softmax(s, 2), 1e-6, "softmax over channels")
        local prob = lumen.softmax(out, 2):narrow(2, targets[i], 1):reshape { 1, 6 }
        assert_close(p:narrow(1, i, 1), prob, 1e-6, "weights = probability: each masked input's probability")
        assert_close(sp:narrow(1, i, 1), prob, 1e-6, "probabilities = true scores probabilities")
      end
      assert_close(map, (A * alpha:reshape { 2, 6, 1, 1 }):sum(2, true):relu(), 1e-6, "map")
      assert_close(explain.scorecam(model, x, { raw = true, batch_size = 32 }), map, 1e-6, "batch size")
    end)

    it("needs images or sequences to mask", function()
      assert.has_error(function() explain.scorecam(model, lumen.ones({ 1, 8 }):long()) end,
        "scorecam: needs images (N, C, H, W) or sequences (N, C, L) to mask, got int64 (1, 8)")
      assert.has_error(function() explain.scorecam(model, x, { weights = "mean" }) end,
        "scorecam: weights must be 'softmax' or 'probability', got 'mean'")
    end)
  end)

  describe("ablationcam()", function()
    it("has w_k = W[c, k] mean(A^k) / y_c at a GAP layer, and runs only the layers after it", function()
      lumen.autograd.reset_counts()
      local map, targets, _, _, _, w, ablated = explain.ablationcam(model, x, { raw = true, batch_size = 4 })
      assert.equal(2, lumen.autograd.counts().conv2d) -- the first pass only: the ablated ones start after
      local A, g = gap_parts(model, x, targets)
      local y = model:forward(x)
      local drop = (g * A:sum({ 3, 4 }, true)):reshape { 2, 6 } -- W[c, k] mean(A^k)
      for i = 1, 2 do
        local yi = y:get { i, targets[i] }
        assert_close(w:narrow(1, i, 1), drop:narrow(1, i, 1) / yi, 1e-5, "weights " .. i)
        assert_close(ablated:narrow(1, i, 1), (drop:narrow(1, i, 1) * -1) + yi, 1e-5, "ablated scores " .. i)
      end
      assert_close(map, (A * w:reshape { 2, 6, 1, 1 }):sum(2, true):relu(), 1e-6, "map")
      assert_close(explain.ablationcam(model, x, { raw = true, target = targets }), map, 1e-6, "batch size")
    end)

    it("ablates to fill, and refuses a zero target score", function()
      local _, targets, _, _, _, w0 = explain.ablationcam(model, x, { raw = true })
      local _, _, _, _, _, w1 = explain.ablationcam(model, x, { raw = true, fill = 1, target = targets })
      local A, g = gap_parts(model, x, targets)
      local y = model:forward(x)
      local shift = (g * (A - 1):sum({ 3, 4 }, true)):reshape { 2, 6 }
      for i = 1, 2 do
        assert_close(w1:narrow(1, i, 1), shift:narrow(1, i, 1) / y:get { i, targets[i] }, 1e-5, "fill = 1")
      end
      assert.is_true(lumen.rel_l2(w0, w1) > 0.01)
      local zero = nn.Sequential { nn.Conv2d { in_channels = 3, out_channels = 2, kernel_size = 1, bias = false },
                                   nn.GlobalAvgPool2d {},
                                   nn.Linear { in_features = 2, out_features = 2, bias = false } }
      assert.has_error(function() explain.ablationcam(zero, lumen.zeros { 1, 3, 4, 4 }) end,
        "ablationcam: the target score of sample 1 is 0, so its relative drop is undefined (try probabilities = true)")
    end)
  end)

  describe("fullgrad()", function()
    -- conv (bias) -> BN -> ReLU -> maxpool -> conv (fused ReLU) -> GAP -> fc: every bias counts.
    local function bn_net()
      lumen.seed(12)
      local bn = nn.BatchNorm2d { num_features = 4, name = "bn" }
      bn.running_mean = lumen.randn { 4 } * 0.3
      bn.running_var = lumen.rand { 4 } + 0.5
      bn.weight = lumen.rand { 4 } + 0.5
      bn.bias = lumen.randn { 4 } * 0.2
      local m = nn.Sequential {
        nn.Conv2d { in_channels = 3, out_channels = 4, kernel_size = 3, padding = 1, name = "c1" }, bn, nn.ReLU {},
        nn.MaxPool2d { kernel_size = 2 },
        nn.Conv2d { in_channels = 4, out_channels = 5, kernel_size = 3, padding = 1, activation = "relu", name = "c2" },
        nn.GlobalAvgPool2d {}, nn.Linear { in_features = 5, out_features = 3, name = "fc" },
      }
      m:eval()
      return m
    end

    it("splits the score into input-gradient and bias-gradient terms exactly (completeness)", function()
      local m = bn_net()
      local map, targets, layers, raw, up, residual = explain.fullgrad(m, x)
      assert.same({ "c1", "bn", "c2" }, layers)
      assert.same({ 2, 1, 8, 8 }, raw.shape)
      assert.equal(map, up)
      local y = m:forward(x)
      for i = 1, 2 do
        local s = y:get { i, targets[i] }
        assert.is_true(math.abs(residual[i]) < 1e-5 * (1 + math.abs(s)),
          ("residual %g of score %g"):format(residual[i], s))
      end
      -- the fc bias is in the decomposition: without it the residual is that bias
      local fc = m:layer("fc")
      local b = fc.bias
      fc.bias = nil
      local _, _, _, _, _, r2 = explain.fullgrad(m, x, { target = targets })
      fc.bias = b
      assert.is_true(math.abs(r2[1]) < 1e-5 and math.abs(r2[2]) < 1e-5)
      -- and the input term alone is psi(|g x|): with no bias layers the map is that
      assert.is_true(up:max_all() == 1 and up:min_all() >= 0)
    end)

    it("does not change when the scores are scaled (exact per-channel normalisation)", function()
      local m = bn_net()
      local map, targets = explain.fullgrad(m, x)
      local fc = m:layer("fc")
      fc.weight, fc.bias = fc.weight:detach() * 1000, fc.bias:detach() * 1000
      assert_close(explain.fullgrad(m, x, { target = targets }), map, 1e-5, "scores x 1000")
    end)

    it("refuses BatchNorm in training mode and activations it cannot undo", function()
      local m = bn_net()
      m:train()
      assert.has_error(function() explain.fullgrad(m, x) end,
        "fullgrad: BatchNorm2d 'bn' is in training mode (its bias depends on the batch); call model:eval()")
      lumen.seed(1)
      local g = nn.Sequential { nn.Conv2d { in_channels = 3, out_channels = 2, kernel_size = 3, activation = "gelu",
                                            name = "cg" },
                                nn.GlobalAvgPool2d {}, nn.Linear { in_features = 2, out_features = 2 } }
      assert.has_error(function() explain.fullgrad(g, x) end,
        "fullgrad: layer 'cg' fuses a gelu activation, whose pre-activation gradient its output does not give")
      assert.has_error(function() explain.fullgrad(g, lumen.randn { 1, 3, 8 }) end,
        "fullgrad: needs images (N, C, H, W), got (1, 3, 8)")
    end)
  end)
end)

describe("lumen.explain CAM family agrees with PyTorch references of the papers", function()
  local meta = support.json_file(OURS .. "cam_family.json")
  local refs = assert(lumen.read_safetensors(OURS .. "cam_family.safetensors"))
  local TOL = 1e-4

  local function ref(name) return refs[name] or error("no reference " .. name) end
  -- XGrad-CAM divides by each channel's sum; a LayerNorm's signed channels sum to as little as 0.026 over
  -- 16 positions in the ViT, so float32 rounding of those sums (in either order) reaches 1e-4 there.
  local LOOSER = { vit_xgradcam = 1e-3 }
  local function agrees(y, name)
    support.assert_rel_l2(y, ref(name), LOOSER[name] or TOL, name)
  end

  it("on the Fashion-MNIST CNN (2 test images): at relu3 (14x14) and relu5 (7x7)", function()
    local model = assert(lumen.load_model("data/models/fashion_cnn.lumen"))
    local x = ref("fashion_input")
    local target = meta.fashion.target
    for _, layer in ipairs { "relu3", "relu5" } do
      local o = { layer = layer, raw = true, target = target }
      local pre = "fashion_" .. layer .. "_"
      agrees(explain.hirescam(model, x, o), pre .. "hirescam")
      agrees(explain.layercam(model, x, o), pre .. "layercam")
      local xg, _, _, _, _, w = explain.xgradcam(model, x, o)
      agrees(xg, pre .. "xgradcam")
      agrees(w, pre .. "xgradcam_weights")
      local ec, _, _, _, _, explained = explain.eigencam(model, x, o)
      agrees(ec, pre .. "eigencam")
      local want = meta.tensors[pre .. "eigencam"].explained
      for i = 1, 2 do assert.near(want[i], explained[i], 1e-5) end
      agrees(explain.eigencam(model, x, { layer = layer, raw = true, center = false }), pre .. "eigencam_uncentred")
      local sc, _, _, _, _, alpha, scores = explain.scorecam(model, x, o)
      agrees(sc, pre .. "scorecam")
      agrees(alpha, pre .. "scorecam_weights")
      agrees(scores, pre .. "scorecam_scores")
      local ab, _, _, _, _, wa = explain.ablationcam(model, x, o)
      agrees(ab, pre .. "ablationcam")
      agrees(wa, pre .. "ablationcam_weights")
    end
    local fg, _, layers, _, _, residual = explain.fullgrad(model, x, { raw = true, target = target })
    assert.equal(10, #layers) -- conv1..5 and bn1..5
    agrees(fg, "fashion_fullgrad")
    for i = 1, 2 do assert.is_true(math.abs(residual[i]) < 1e-4, "residual " .. residual[i]) end
  end)

  -- (the fixture also holds layer4's maps; layer3, where the gradient varies over positions, is the
  -- stronger test, and each ResNet-18 pass costs a second under ASan)
  it("on the ResNet-18 fixture (96x96): layer3 (6x6), Ablation-CAM at layer4 (3x3) and FullGrad", function()
    local model = assert(lumen.load_model("tests/fixtures/torch/resnet18.onnx.gz"))
    local x = ref("resnet18_input")
    local r = meta.resnet18
    for _, layer in ipairs { "layer3" } do
      local o = { layer = r.layers[layer], raw = true, target = r.target }
      local pre = "resnet18_" .. layer .. "_"
      agrees(explain.hirescam(model, x, o), pre .. "hirescam")
      agrees(explain.layercam(model, x, o), pre .. "layercam")
      agrees((explain.xgradcam(model, x, o)), pre .. "xgradcam")
      agrees(explain.eigencam(model, x, o), pre .. "eigencam")
    end
    local ab, _, layer, _, _, w = explain.ablationcam(model, x, { raw = true, target = r.target })
    assert.equal(r.layers.layer4, layer) -- the default layer
    agrees(ab, "resnet18_layer4_ablationcam")
    agrees(w, "resnet18_layer4_ablationcam_weights")
    local fg, _, _, _, _, residual = explain.fullgrad(model, x, { raw = true, target = r.target })
    agrees(fg, "resnet18_fullgrad")
    assert.is_true(math.abs(residual[1]) < 1e-3, "residual " .. residual[1])
  end)
  it("on the ViT (tokens, reshape = {4, 4}), Swin and ConvNeXt fixtures: the default layer or its error", function()
    local x = ref("vision_input")
    local T = "tests/fixtures/torch/"
    for _, name in ipairs { "vit", "swin", "convnext" } do
      local info = meta.transformers[name]
      local model = assert(lumen.load_model(T .. (name == "vit" and "vit_opset17" or name) .. ".onnx.gz"))
      local o = { raw = true, target = info.target }
      if name == "vit" then
        -- no (N, C, h, w) map after the patch embedding: the default refuses, naming the last block's ln_1
        local ok, err = pcall(explain.gradcam, model, x)
        assert.is_false(ok)
        assert.truthy(err:find("pass layer = '" .. info.layer .. "' ((2, 17, 48)) with reshape = {4, 4}", 1, true), err)
        o.layer, o.reshape = info.layer, info.reshape
      end
      for _, method in ipairs { "gradcam", "hirescam", "layercam", "xgradcam", "eigencam", "scorecam",
                                "ablationcam" } do
        local map, _, layer, _, _, w = explain[method](model, x, o)
        assert.equal(info.layer, layer, name .. " " .. method)
        agrees(map, name .. "_" .. method)
        if method == "scorecam" or method == "ablationcam" then agrees(w, name .. "_" .. method .. "_weights") end
      end
      if name == "swin" then -- the channels-last output of its norm, before the permute: the same maps
        local at = { raw = true, target = info.target, layer = "/norm/Add_1_output_0" }
        agrees(explain.hirescam(model, x, at), "swin_hirescam")
        agrees(explain.eigencam(model, x, at), "swin_eigencam")
      end
    end
  end)
end)
