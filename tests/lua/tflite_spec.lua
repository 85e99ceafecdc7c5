-- tests/lua/tflite_spec.lua — lumen.tflite: a hand-written quantized model agrees with an independent
-- NumPy run in NHWC (layouts, SAME padding, depthwise multiplier, dequantization, reshape across an
-- image, softmax beta), the graph is differentiable and batch-generic, the real MobileNets classify
-- photos (and v1 agrees with its float ONNX twin), and broken files give errors naming the file.
-- Fixtures: tests/fixtures/broken_models (tools/make_broken_models.py).
local lumen = require "lumen"
local support = require "support"
local npy = support.npy

local BROKEN = "tests/fixtures/broken_models/"
local SEEDS = BROKEN .. "seeds/"
local SHARED = "../shared/data/"

local close = support.assert_rel_l2

describe("lumen.tflite", function()
  describe("the tiny quantized model", function()
    local model = lumen.tflite.load(SEEDS .. "tiny.tflite")
    local x, ref = npy(SEEDS .. "tiny_input.npy"), npy(SEEDS .. "tiny_output.npy")

    it("agrees with the NumPy reference, for every row of a batch", function()
      close(model:forward(x), ref, 1e-5)
      local y = model:forward(lumen.cat({ lumen.zeros(x.shape), x }, 1))
      close(lumen.narrow(y, 1, 2, 1), ref, 1e-5)
    end)

    it("names nodes after the file's tensors and splits fused activations", function()
      local names = {}
      for _, l in ipairs(model:layers()) do names[#names + 1] = l.name .. ":" .. l.type end
      assert.same({ "conv/Relu6/pre_activation:Conv2d", "conv/Relu6:ReLU6", "dw/BiasAdd:Conv2d",
                    "add/Relu/pre_activation:Add", "add/Relu:ReLU", "pool/AvgPool:AvgPool2d", "flat/Reshape:Reshape",
                    "prob:Softmax" }, names)
    end)

    it("says what input it takes: NCHW floats in [-1, 1]", function()
      assert.same({ size = { 5, 4 }, channels = 2, scale = { -1, 1 } }, model.input_spec)
    end)

    it("is differentiable with respect to its input", function()
      local ok, msg = lumen.gradcheck(function(t) return model:forward(t, { logits = true }) end, { x },
        { eps = 1e-3, atol = 1e-3, rtol = 2e-2 })
      assert(ok, msg)
    end)
  end)

  describe("the real MobileNets (uint8)", function()
    local labels = SHARED .. "models/imagenet_labels.txt"
    local want = { cat = "Egyptian cat", bird = "chickadee", parrot = "macaw", hot_dog = "hotdog, hot dog, red hot",
                   coffee = "espresso" }
    for _, name in ipairs { "mobilenet_v1_0.5_160_quant", "mobilenet_v2_1.0_224_quant" } do
      it(name .. " puts the right class first for five photos", function()
        local path = SHARED .. "models/" .. name .. ".tflite"
        if not lumen.exists(path) then return pending(path .. " is absent (../shared/data)") end
        local model = lumen.load_model(path, { labels = labels })
        assert.equal(1001, #model.labels)
        local size = model.input_spec.size
        for photo, label in pairs(want) do
          local img = assert(lumen.image.load(SHARED .. "images/" .. photo .. ".png"))
          local x = lumen.image.to_batch(lumen.sub(lumen.mul(lumen.image.resize(img, size[1], size[2], { antialias = true }), 2), 1))
          assert.equal(0, lumen.max_abs_diff(x, model:preprocess(img)))
          local y = lumen.no_grad(model.forward, model, x)
          assert.same({ 1, 1001 }, y.shape)
          assert.equal(label, model.labels[lumen.argmax(y, 2):item()], photo)
        end
      end)
    end

    it("mobilenet_v1 agrees with its float ONNX twin", function()
      local t, o = SHARED .. "models/mobilenet_v1_0.5_160_quant.tflite", SHARED .. "models/mobilenet_v1_0.5_160_float.onnx"
      if not (lumen.exists(t) and lumen.exists(o)) then return pending(t .. " or its ONNX twin is absent") end
      local img = assert(lumen.image.load(SHARED .. "images/parrot.png"))
      local a, b = lumen.tflite.load(t), lumen.onnx.load(o)
      local x = a:preprocess(img)
      close(a:forward(x, { logits = true }), b:forward(x, { logits = true }), 1e-4)
    end)
  end)

  describe("errors", function()
    it("names the file and the problem for every broken model", function()
      local n = 0
      for line in io.lines(BROKEN .. "expected.txt") do
        local file, piece = line:match("^([^#\t][^\t]*)\t(.+)$")
        if file and (file:match("%.tflite$") or file:match("%.tflite%.gz$")) then
          local ok, err = pcall(lumen.tflite.load, BROKEN .. file)
          assert.is_false(ok, file .. " loaded")
          assert.equal(BROKEN .. file .. ": ", err:sub(1, #BROKEN + #file + 2), err)
          assert(err:find(piece, 1, true), ("%s: expected '%s' in '%s'"):format(file, piece, err))
          n = n + 1
        end
      end
      assert(n >= 10, "expected.txt lists too few TFLite files")
    end)
  end)
end)
