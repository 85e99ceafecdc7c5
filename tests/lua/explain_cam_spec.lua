-- Specs for the CAM family of lumen.explain: Grad-CAM, Grad-CAM++, Guided Grad-CAM and CAM. On a small
-- network ending in global average pooling, Grad-CAM's raw map is ReLU(CAM) / (h w) (also with frozen
-- weights) and Grad-CAM++ has a closed form; CAM finds its layers in a Sequential and in a Graph and
-- refuses other endings; the default layer choice localises the cat in cat.png with the real
-- MobileNet v1 (skipped if absent). Also the filter and feature-map pictures.
local lumen = require "lumen"
local support = require "support"
local assert_close = support.assert_close
local nn = lumen.nn
local explain = lumen.explain

local SHARED = "../shared/data/"

local gap_net = support.gap_net -- (N, 3, 8, 8) -> ... -> relu ("features", K x 4 x 4) -> GAP -> fc (3)

-- The features (N, K, 4, 4) and fc weight (3, K) of gap_net.
local function parts(model, x)
  local _, acts = lumen.no_grad(model.forward, model, x, { capture = { "features" } })
  return acts.features, model:layer("fc").weight:detach()
end

-- sum_k w[c_i, k] A[i, k] for each sample i, by loops over samples: (N, 1, h, w).
local function cam_by_hand(A, W, targets)
  local maps = {}
  for i, c in ipairs(targets) do
    local wc = W:narrow(1, c, 1):reshape { 1, -1, 1, 1 }
    maps[i] = (A:narrow(1, i, 1) * wc):sum(2, true)
  end
  return lumen.cat(maps, 1)
end

describe("lumen.explain CAM family", function()
  describe("gradcam()", function()
    it("equals ReLU(CAM) / (h w) on a network ending in GAP + dense (raw maps)", function()
      local model = gap_net()
      local x = lumen.randn { 2, 3, 8, 8 }
      for _, target in ipairs { { 1, 3 }, { 2, 2 } } do
        local gc, targets, layer = explain.gradcam(model, x, { target = target, raw = true })
        local cam = explain.cam(model, x, { target = target, raw = true })
        assert.same(target, targets)
        assert.equal("features", layer)
        assert.same({ 2, 1, 4, 4 }, gc.shape)
        assert_close(gc, cam:relu() / 16, 1e-6, "gradcam vs cam")
        assert.is_true(gc:max_all() > 0, "a non-trivial map")
      end
    end)

    it("upsamples to the input and normalises each sample to [0, 1] unless raw", function()
      local model = gap_net()
      local x = lumen.randn { 2, 3, 8, 8 }
      local raw, targets = explain.gradcam(model, x, { raw = true })
      local map = explain.gradcam(model, x, { target = targets })
      assert.same({ 2, 1, 8, 8 }, map.shape)
      for i = 1, 2 do
        local up = lumen.upsample_bilinear(raw:narrow(1, i, 1), { 8, 8 })
        assert_close(map:narrow(1, i, 1), up:normalize01(), 1e-6, "sample " .. i)
      end
    end)

    it("returns the raw and the upsampled map from one forward and one backward", function()
      local model = gap_net()
      local x = lumen.randn { 2, 3, 8, 8 }
      lumen.autograd.reset_counts()
      local map, targets, layer, raw, up = explain.gradcam(model, x)
      assert.equal(2, lumen.autograd.counts().conv2d) -- the net's two convolutions, once
      local back = lumen.autograd.counts("backward")
      assert.equal(1, back.linear) -- one backward ...
      assert.equal(0, back.relu + back.conv2d) -- ... that stops at the layer
      assert.equal(map, up)
      assert_close(raw, explain.gradcam(model, x, { raw = true, target = targets }), 0, "raw")
      assert.equal("features", layer)
      local m2, _, _, raw2, up2 = explain.gradcam(model, x, { raw = true, target = targets })
      assert.equal(m2, raw2)
      assert_close(up2, map, 0, "upsampled")
      for _, method in ipairs { "gradcam_plus_plus", "guided_gradcam", "cam" } do
        local r = table.pack(explain[method](model, x, { target = targets }))
        assert.equal(5, r.n, method)
        assert.same({ 2, 1, 4, 4 }, r[4].shape, method)
        assert.same({ 2, 1, 8, 8 }, r[5].shape, method)
      end
    end)

    it("the gradcam recipe on the Fashion CNN makes 5 conv2d calls in all (one forward)", function()
      local dir = os.tmpname()
      os.remove(dir)
      lumen.mkdir(dir)
      local png = dir .. "/boot.png"
      assert(lumen.image.save(lumen.rand { 1, 28, 28 }, png))
      local saved = _G.arg
      _G.arg = { [0] = "recipes/gradcam.lua", "image=" .. png, "out=" .. dir .. "/out" }
      lumen.autograd.reset_counts()
      local ok, err = pcall(dofile, "recipes/gradcam.lua")
      _G.arg = saved
      local forward, backward = lumen.autograd.counts(), lumen.autograd.counts("backward")
      os.execute(("rm -rf '%s'"):format(dir))
      assert(ok, err)
      assert.equal(5, forward.conv2d)
      assert.equal(0, backward.conv2d) -- the gradient stops at the last ReLU
      assert.equal(1, forward.global_avg_pool2d)
    end)

    it("explains the layer it is given", function()
      local model = gap_net()
      local x = lumen.randn { 1, 3, 8, 8 }
      local gc, _, layer = explain.gradcam(model, x, { layer = "conv1", raw = true, target = 1 })
      assert.equal("conv1", layer)
      assert.same({ 1, 1, 8, 8 }, gc.shape)
      assert.has_error(function() explain.gradcam(model, x, { layer = "fc" }) end,
        "gradcam: layer 'fc' has output (1, 3); need maps (N, C, h, w), (N, h, w, C), tokens (N, tokens, C) or 1-D maps "
        .. "(N, C, L)")
      assert.has_error(function() explain.gradcam(model, x, { layer = "fc2" }) end,
        "gradcam: layer = 'fc2' is not a layer of the model (did you mean fc?)")
    end)

    it("works when every weight is frozen", function()
      local model = gap_net()
      local x = lumen.randn { 1, 3, 8, 8 }
      local gc = explain.gradcam(model, x, { raw = true, target = 1 })
      for _, p in ipairs(model:parameters()) do p.tensor.requires_grad = false end
      assert_close(explain.gradcam(model, x, { raw = true, target = 1 }), gc, 0, "frozen")
      assert.is_true(gc:max_all() > 0)
    end)

    it("needs a lumen model, not a plain function", function()
      assert.has_error(function() explain.gradcam(function(b) return b:flatten(2) end, lumen.randn { 1, 3, 4, 4 }) end,
        "gradcam: needs a lumen model, not a plain function")
    end)
  end)

  describe("gradcam_plus_plus()", function()
    it("has the closed form w_k = h w relu(g_k) / (2 + g_k sum A^k) on a GAP network (g_k = W[c, k] / (h w))", function()
      local model = gap_net()
      local x = lumen.randn { 2, 3, 8, 8 }
      local map, targets = explain.gradcam_plus_plus(model, x, { raw = true })
      local A, W = parts(model, x)
      local g = W:index_select(1, targets):reshape { 2, 6, 1, 1 } / 16
      local w = g:relu() * 16 / (g * A:sum({ 3, 4 }, true) + 2)
      assert.same({ 2, 1, 4, 4 }, map.shape)
      assert.is_true(map:min_all() >= 0)
      assert_close(map, (w * A):sum(2, true):relu(), 1e-6, "grad-cam++")
    end)

    it("equals Grad-CAM when the layer has one channel", function()
      local model = gap_net(1)
      local x = lumen.randn { 1, 3, 8, 8 }
      local _, W = parts(model, x)
      local c = lumen.argmax(W:reshape { 3 }):item() -- a class with a positive weight
      assert.is_true(W:get { c, 1 } > 0)
      local pp = explain.gradcam_plus_plus(model, x, { target = c })
      local gc = explain.gradcam(model, x, { target = c })
      assert.is_true(gc:max_all() > 0.99)
      assert_close(pp, gc, 1e-5, "one channel")
    end)
  end)

  describe("guided_gradcam()", function()
    it("is guided backprop times the upsampled, normalised Grad-CAM, shaped like x", function()
      local model = gap_net()
      local x = lumen.randn { 2, 3, 8, 8 }
      local ggc, targets, layer = explain.guided_gradcam(model, x, { target = { 2, 3 } })
      assert.same({ 2, 3 }, targets)
      assert.equal("features", layer)
      local gb = explain.guided_backprop(model, x, { target = targets })
      assert_close(ggc, gb * explain.gradcam(model, x, { target = targets }), 1e-7, "guided grad-cam")
    end)
  end)

  describe("cam()", function()
    it("is sum_k w_ck A^k at the features before GAP, signed", function()
      local model = gap_net()
      local x = lumen.randn { 2, 3, 8, 8 }
      local cam, targets, layer = explain.cam(model, x, { raw = true })
      local A, W = parts(model, x)
      assert.equal("features", layer)
      assert_close(cam, cam_by_hand(A, W, targets), 1e-6, "cam")
      assert.is_true(cam:min_all() < 0, "raw CAM keeps negative evidence")
    end)

    it("finds the features of a Graph ending in GAP -> Flatten -> Linear -> Softmax", function()
      lumen.seed(4)
      local model = nn.Graph { inputs = { "x" }, outputs = { "prob" }, nodes = {
        { name = "prob", module = nn.Softmax {}, inputs = { "fc" } },
        { name = "fc", module = nn.Linear { in_features = 5, out_features = 3 }, inputs = { "flat" } },
        { name = "flat", module = nn.Flatten {}, inputs = { "gap" } },
        { name = "gap", module = nn.GlobalAvgPool2d { keepdims = true }, inputs = { "sum" } },
        { name = "sum", fn = function(a, b) return a + b end, type = "Add", inputs = { "c1", "c2" } },
        { name = "c1", module = nn.Conv2d { in_channels = 3, out_channels = 5, kernel_size = 3, padding = 1 }, inputs = { "x" } },
        { name = "c2", module = nn.Conv2d { in_channels = 3, out_channels = 5, kernel_size = 1 }, inputs = { "x" } },
      } }
      local x = lumen.randn { 1, 3, 6, 6 }
      local cam, targets, layer = explain.cam(model, x, { raw = true })
      assert.equal("sum", layer)
      local _, acts = model:forward(x, { capture = { "sum" } })
      assert_close(cam, cam_by_hand(acts.sum, model:layer("fc").weight, targets), 1e-6, "graph cam")
    end)

    it("takes a whole-map average pool and a 1x1 convolution as GAP + dense (the MobileNet ending)", function()
      lumen.seed(5)
      local conv = nn.Conv2d { in_channels = 3, out_channels = 4, kernel_size = 3, padding = 1, name = "features" }
      local head = nn.Conv2d { in_channels = 4, out_channels = 3, kernel_size = 1, name = "head" }
      local model = nn.Sequential { conv, nn.AvgPool2d { kernel_size = 5 }, head, nn.Flatten {}, nn.Softmax {} }
      local x = lumen.randn { 2, 3, 5, 5 }
      local cam, targets, layer = explain.cam(model, x, { raw = true })
      assert.equal("features", layer)
      local _, acts = model:forward(x, { capture = { "features" } })
      assert_close(cam, cam_by_hand(acts.features, head.weight:reshape { 3, 4 }, targets), 1e-6, "1x1 conv cam")
      local partial = nn.Sequential { nn.Conv2d { in_channels = 3, out_channels = 4, kernel_size = 3, padding = 1 },
                                      nn.AvgPool2d { kernel_size = 3 }, nn.Conv2d { in_channels = 4, out_channels = 3,
                                      kernel_size = 1 }, nn.Flatten {} }
      assert.has_error(function() explain.cam(partial, lumen.randn { 1, 3, 4, 4 }) end) -- pools 3x3 of 4x4
    end)

    it("refuses models without the GAP + dense ending, naming what it found", function()
      lumen.seed(2)
      local x = lumen.randn { 1, 3, 4, 4 }
      local flat = nn.Sequential { nn.Conv2d { in_channels = 3, out_channels = 2, kernel_size = 1 }, nn.ReLU {},
                                   nn.Flatten {}, nn.Linear { in_features = 32, out_features = 3 } }
      assert.has_error(function() explain.cam(flat, x) end, "cam: the model must end in global average pooling and "
        .. "one dense layer; it ends in Conv2d -> ReLU -> Flatten -> Linear (use gradcam)")
      local deep = nn.Sequential { nn.Conv2d { in_channels = 3, out_channels = 2, kernel_size = 1 }, nn.GlobalAvgPool2d {},
                                   nn.Linear { in_features = 2, out_features = 4 }, nn.ReLU {},
                                   nn.Linear { in_features = 4, out_features = 3 } }
      assert.has_error(function() explain.cam(deep, x) end, "cam: the model must end in global average pooling and "
        .. "one dense layer; it ends in GlobalAvgPool2d -> Linear -> ReLU -> Linear (use gradcam)")
      assert.has_error(function() explain.cam(function(b) return b end, x) end,
        "cam: needs a lumen model, not a plain function")
    end)
  end)

  describe("filters() and feature_maps()", function()
    it("draw the first layer's RGB kernels and a deeper layer's kernels per input channel", function()
      local model = gap_net()
      local pic, layer = explain.filters(model)
      assert.equal("conv1", layer)
      -- 4 RGB tiles of 3x3 cells of 4 pixels, 2 per row, 2-pixel padding
      assert.same({ 3, 2 * (12 + 2) + 2, 2 * (12 + 2) + 2 }, pic.shape)
      assert.is_true(pic:min_all() >= 0 and pic:max_all() <= 1)
      -- 6 filters x 4 input channels, one row per filter; the symmetric scale puts 0 at mid-gray
      local deep = explain.filters(model, nil, { layer = "conv2", scale = 2, symmetric = true })
      assert.same({ 1, 6 * (6 + 2) + 2, 4 * (6 + 2) + 2 }, deep.shape)
      local w = model:layer("conv2").weight
      local m = w:abs():max_all()
      assert.near(0.5 + 0.5 * w:get { 1, 1, 1, 1 } / m, deep:get { 1, 3, 3 }, 1e-6)
    end)

    it("draw one tile per channel of a layer's output, at least 32 pixels high", function()
      local model = gap_net()
      local x = lumen.randn { 1, 3, 8, 8 }
      local pic, A = explain.feature_maps(model, x)
      assert.same({ 1, 6, 4, 4 }, A.shape) -- the last spatial layer, "features"
      assert.same({ 1, 2 * (32 + 2) + 2, 3 * (32 + 2) + 2 }, pic.shape)
      local five = explain.feature_maps(model, x, { layer = "conv1", max_maps = 3, size = 16 })
      assert.same({ 1, 2 * (16 + 2) + 2, 2 * (16 + 2) + 2 }, five.shape)
    end)
  end)

  describe("the default layer on a real network", function()
    it("localises the cat in cat.png with MobileNet v1 (the last spatial layer)", function()
      local model_path, image_path = SHARED .. "models/mobilenet_v1_0.5_160_float.onnx", SHARED .. "images/cat.png"
      if not (lumen.exists(model_path) and lumen.exists(image_path)) then
        return pending(model_path .. " or " .. image_path .. " is absent (../shared/data)")
      end
      local model = assert(lumen.load_model(model_path))
      local x = lumen.image.preprocess(assert(lumen.image.load(image_path)), { size = { 160, 160 }, scale = { -1, 1 } })
      local cam, targets, layer = explain.gradcam(model, x, { raw = true })
      local labels = lumen.labels(SHARED .. "models/imagenet_labels.txt")
      assert.truthy(labels[targets[1]]:find("cat"), "top class " .. labels[targets[1]])
      local layers = model:layers()
      for i, l in ipairs(layers) do
        if l.name == layer then assert.equal("GlobalAvgPool2d", layers[i + 1].type) end
      end
      local h, w = cam.shape[3], cam.shape[4]
      local inner = cam:narrow(3, 2, h - 2):narrow(4, 2, w - 2)
      local inner_mean = inner:mean_all()
      local border_mean = (cam:sum_all() - inner:sum_all()) / (h * w - (h - 2) * (w - 2))
      assert.is_true(inner_mean > 1.5 * border_mean, ("centre %g vs border %g"):format(inner_mean, border_mean))
      -- its ending (global pool -> 1x1 conv) is a CAM ending too: Grad-CAM = ReLU(CAM) / (h w)
      local cmap = explain.cam(model, x, { raw = true, target = targets[1] })
      local rel = lumen.rel_l2(cmap:relu() / (h * w), cam)
      assert.is_true(rel < 1e-5, ("CAM vs Grad-CAM on MobileNet v1: relative L2 %g"):format(rel))
    end)
  end)
end)
