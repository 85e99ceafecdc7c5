-- tests/lua/onnx_spec.lua — lumen.onnx: imported models agree with PyTorch (logits and input
-- gradients), every mapped operator and operator form agrees with PyTorch / NumPy at opsets 9 to 17,
-- exporter shape chains fold away and batches still run, the real MobileNet v1 classifies photos,
-- and broken files give errors naming the file. Fixtures: tests/fixtures/torch (tools/export_fixtures.py)
-- and tests/fixtures/broken_models (tools/make_broken_models.py).
local lumen = require "lumen"
local support = require "support"
local npy = support.npy
local json_file = support.json_file

local TORCH = "tests/fixtures/torch/"
local BROKEN = "tests/fixtures/broken_models/"
local SEEDS = BROKEN .. "seeds/"
local SHARED = "../shared/data/"

local close = support.assert_rel_l2

-- The error lumen.onnx.load raises for path (it must raise).
local function load_error(path)
  local ok, err = pcall(lumen.onnx.load, path)
  assert.is_false(ok, path .. " loaded")
  return err
end

-- The 1-based ids lumen models take, from the 0-based ids of the fixture.
local function text_ids()
  return lumen.add(npy(TORCH .. "textcnn_tokens.npy"):float(), 1):long()
end

describe("lumen.onnx", function()
  describe("PyTorch fixtures", function()
    -- On one thread and two (oneDNN splits the work differently); the 7x7 layers take its plain-layout route.
    it("ResNet-18 gives PyTorch's logits and its input gradient (saliency), on one thread and two", function()
      local model = lumen.onnx.load(TORCH .. "resnet18.onnx.gz")
      local info = json_file(TORCH .. "resnet18.json")
      local threads = lumen.threads()
      finally(function() lumen.threads(threads) end)
      for _, n in ipairs { 1, 2 } do
        lumen.threads(n)
        local x = lumen.autograd.set_requires_grad(npy(TORCH .. "input.npy"), true)
        local y, captured = model:forward(x, { capture = { info.gradcam_layer } })
        close(y, npy(TORCH .. "resnet18_logits.npy"), 1e-4)
        assert.same({ 1, 512, 7, 7 }, captured[info.gradcam_layer].shape)
        local g = lumen.grad(lumen.select(y, 2, info.target), x)
        close(g, npy(TORCH .. "resnet18_saliency.npy"), 1e-4)
      end
    end)

    it("MobileNet v2 (through lumen.load_model, gzipped) gives PyTorch's logits", function()
      local model = lumen.load_model(TORCH .. "mobilenet_v2.onnx.gz")
      local y = lumen.no_grad(model.forward, model, npy(TORCH .. "input.npy"))
      close(y, npy(TORCH .. "mobilenet_v2_logits.npy"), 1e-4)
      assert.same({ size = { 224, 224 }, channels = 3 }, model.input_spec)
    end)

    it("the text CNN takes 1-based token ids and gives PyTorch's logits, per row of a batch", function()
      local model = lumen.onnx.load(TORCH .. "textcnn.onnx")
      local ref = npy(TORCH .. "textcnn_logits.npy")
      close(model:forward(text_ids()), ref, 1e-4)
      local batch = lumen.cat({ text_ids(), text_ids() }, 1)
      local y = model:forward(batch)
      close(lumen.narrow(y, 1, 2, 1), ref, 1e-4)
      local types = {}
      for _, l in ipairs(model:layers()) do types[l.name] = l.type end
      assert.equal("Embedding", types["/embed/Gather_output_0"])
      assert.equal("Conv1d", types["/conv1/Conv_output_0"])
      assert.equal("Linear", types["logits"])
    end)

    it("the text CNN is differentiable end to end (finite differences on the embedding table)", function()
      local model = lumen.onnx.load(TORCH .. "textcnn.onnx")
      local emb = model:layer("/embed/Gather_output_0")
      local ids = text_ids()
      local ok, msg = lumen.gradcheck(function(w)
        emb.weight = w
        return model:forward(ids)
      end, { emb.weight }, { eps = 1e-2, atol = 1e-3, rtol = 1e-2 })
      assert(ok, msg)
    end)

    it("gives lumen.grad with respect to the embedded tokens, consistent with the table's gradient", function()
      local model = lumen.onnx.load(TORCH .. "textcnn.onnx")
      local layer = "/embed/Gather_output_0"
      local ids = text_ids()
      local y, captured = model:forward(ids, { capture = { layer } })
      local grads = lumen.grad(lumen.select(y, 2, 1), { captured[layer], model:layer(layer).weight })
      local g_pos, g_table = lumen.select(grads[1], 1, 1), grads[2] -- (12, 8), (50, 8)
      assert(lumen.max_all(lumen.abs(g_pos)) > 0, "zero gradient")
      -- token 47 occurs once (position 2); token 21 at positions 1 and 4: the table row sums them
      assert(lumen.max_abs_diff(lumen.select(g_table, 1, 47), lumen.select(g_pos, 1, 2)) < 1e-6)
      local both = lumen.add(lumen.select(g_pos, 1, 1), lumen.select(g_pos, 1, 4))
      assert(lumen.max_abs_diff(lumen.select(g_table, 1, 21), both) < 1e-6)
    end)

    it("an imported model saves as a lumen checkpoint and loads back the same", function()
      local model = lumen.onnx.load(TORCH .. "textcnn.onnx")
      local path = lumen.tmpname(".lumen")
      model:save(path)
      local back = lumen.load_model(path)
      os.remove(path)
      assert.equal(0, lumen.max_abs_diff(back:forward(text_ids()), model:forward(text_ids())))
    end)
  end)

  describe("operators", function()
    for _, opset in ipairs { 9, 11, 13, 17 } do
      it(("agree with PyTorch at opset %d on a batch of 2 (exported at batch 1), shape chains folded"):format(opset), function()
        local model = lumen.onnx.load(SEEDS .. ("ops_opset%d.onnx"):format(opset))
        close(model:forward(npy(SEEDS .. "ops_input.npy")), npy(SEEDS .. "ops_output.npy"), 1e-5)
        for _, l in ipairs(model:layers()) do
          assert.is_nil(({ Shape = 1, Constant = 1, Cast = 1, ConstantOfShape = 1, Slice = 1 })[l.type],
            l.name .. " (" .. l.type .. ") should have been folded")
        end
      end)
    end

    for _, opset in ipairs { 9, 13 } do
      it(("a zero Pad that only a Conv reads becomes its padding; the other Pads stay (opset %d)"):format(opset), function()
        -- tools/export_pad_conv.py: Pad -> Conv twice (asymmetric; onto a conv's own padding), then Pads of
        -- value 0.5, read twice, and of the channels, which must stay
        local model = lumen.onnx.load(TORCH .. ("pad_conv_opset%d.onnx"):format(opset))
        local ref = lumen.read_safetensors(TORCH .. "pad_conv.safetensors")
        local types, convs = {}, {}
        for _, l in ipairs(model:layers()) do
          types[l.type] = (types[l.type] or 0) + 1
          if l.type == "Conv2d" then convs[#convs + 1] = l end
        end
        assert.equal(3, types.Pad)
        assert.same({ 0, 0, 1, 1 }, convs[1].module.opts.padding) -- (0, 1, 0, 1) in PyTorch's order
        assert.same({ 1, 2, 3, 2 }, convs[2].module.opts.padding) -- its own 1 plus (1, 1, 0, 2)
        support.assert_agrees_with_fixture(model, ref, 1e-5)
      end)
    end

    for _, opset in ipairs { 13, 17 } do
      it(("x * Sigmoid(x) becomes one SiLU layer, x * HardSigmoid(x) one HardSwish; gates of another tensor or "
        .. "a Sigmoid read twice stay (opset %d)"):format(opset), function()
        -- tools/export_silu.py: an EfficientNet-style block (Conv-BN-SiLU, depthwise, squeeze-and-excitation),
        -- then MobileNet v3's Hardswish and Hardsigmoid gate
        local model = lumen.onnx.load(TORCH .. ("silu_opset%d.onnx"):format(opset))
        local ref = lumen.read_safetensors(TORCH .. "silu.safetensors")
        local types = {}
        for _, l in ipairs(model:layers()) do types[l.type] = (types[l.type] or 0) + 1 end
        assert.equal(4, types.SiLU)
        assert.equal(2, types.Sigmoid) -- the SE gate, and the Sigmoid the mean also reads
        assert.equal(1, types.HardSwish)
        assert.equal(1, types.HardSigmoid) -- the v3 SE gate
        assert.equal(3, types.Mul)
        support.assert_agrees_with_fixture(model, ref, 1e-5)
      end)
    end

    for _, opset in ipairs { 11, 13 } do
      it(("agree with NumPy, form by form, at opset %d"):format(opset), function()
        local model = lumen.onnx.load(SEEDS .. ("forms_opset%d.onnx"):format(opset))
        local ys = model:forward(npy(SEEDS .. "forms_input.npy"))
        assert.equal(#model.outputs, #ys)
        for k, name in ipairs(model.outputs) do
          local ok, err = pcall(close, ys[k], npy(SEEDS .. ("forms_opset%d_%s.npy"):format(opset, name)), 1e-5)
          assert(ok, name .. ": " .. tostring(err))
        end
      end)
    end
  end)

  describe("the real MobileNet v1 (float ONNX)", function()
    local path = SHARED .. "models/mobilenet_v1_0.5_160_float.onnx"
    local labels = SHARED .. "models/imagenet_labels.txt"
    it("puts the right class first for five photos", function()
      if not lumen.exists(path) then return pending(path .. " is absent (../shared/data)") end
      local model = lumen.onnx.load(path, { labels = labels, input_spec = { scale = { -1, 1 } } })
      assert.equal(1001, #model.labels)
      assert.equal("background", model.labels[1]) -- lumen class id = output index + 1 = label line
      local want = { cat = "Egyptian cat", bird = "chickadee", parrot = "macaw", hot_dog = "hotdog, hot dog, red hot",
                     coffee = "espresso" }
      for name, label in pairs(want) do
        local img = assert(lumen.image.load(SHARED .. "images/" .. name .. ".png"))
        local x = lumen.image.to_batch(lumen.sub(lumen.mul(lumen.image.resize(img, 160, 160, { antialias = true }), 2), 1))
        assert.equal(0, lumen.max_abs_diff(x, model:preprocess(img)))
        local y = lumen.no_grad(model.forward, model, x)
        assert.equal(label, model.labels[lumen.argmax(y, 2):item()], name)
        assert(math.abs(lumen.sum_all(y) - 1) < 1e-4, "softmax output")
        local logits = model:forward(x, { logits = true })
        assert.equal(lumen.argmax(y, 2):item(), lumen.argmax(logits, 2):item())
      end
    end)
  end)

  describe("errors", function()
    it("names the file and the problem for every broken model", function()
      local n = 0
      for line in io.lines(BROKEN .. "expected.txt") do
        local file, piece = line:match("^([^#\t][^\t]*)\t(.+)$")
        if file and (file:match("%.onnx$") or file:match("%.onnx%.gz$")) then
          local err = load_error(BROKEN .. file)
          assert.equal(BROKEN .. file .. ": ", err:sub(1, #BROKEN + #file + 2), err)
          assert(err:find(piece, 1, true), ("%s: expected '%s' in '%s'"):format(file, piece, err))
          n = n + 1
        end
      end
      assert(n >= 15, "expected.txt lists too few ONNX files")
    end)

    it("names the file when it is missing, and when a labels file is", function()
      assert.truthy(load_error("no/such/model.onnx"):find("no/such/model.onnx", 1, true))
      local ok, err = pcall(lumen.onnx.load, TORCH .. "textcnn.onnx", { labels = "no/such/labels.txt" })
      assert.is_false(ok)
      assert.truthy(err:find("no/such/labels.txt", 1, true))
    end)
  end)
end)
