-- tests/lua/models_spec.lua — what every front end asks of a model file (lumen.models): the preprocessing
-- to use (no silent guess), label lists checked against the class count (label_offset), targets by id
-- or by label name, the top classes; ONNX files that record their spec in metadata_props; and the
-- checks recipe.load makes (index range, image keys without a photo).
local lumen = require "lumen"
local support = require "support"
local models = lumen.models
local recipe = lumen.recipe

local SMALL = "tests/fixtures/broken_models/seeds/ops_opset13.onnx" -- (N, 3, 8, 8) -> 20 classes
local JPEG = "tests/fixtures/jpeg/"
local tmp = lumen.tmpname -- tmp(".txt"): a fresh temporary path with that suffix

local function write_lines(path, n, first)
  local f = assert(io.open(path, "w"))
  for i = 1, n do f:write(i == 1 and first or ("label " .. i), "\n") end
  f:close()
end
local error_of = support.error_of

describe("lumen.models", function()
  describe("input_spec()", function()
    it("stops for a model that records no preprocessing, naming the file and the presets", function()
      local model = lumen.load_model(SMALL)
      assert.same({ size = { 8, 8 }, channels = 3 }, model.input_spec)
      local msg = error_of(models.input_spec, model, {}, SMALL)
      assert.equal(SMALL .. ": the model does not record how its input was preprocessed; give preset=inception, "
        .. "raw, tflite or torchvision (or scale=, mean=, std=), or record it once with `lumen spec " .. SMALL
        .. " preset=...`", msg)
      local spec = models.input_spec(model, { preset = "tflite" }, SMALL)
      assert.same({ 8, 8 }, spec.size)
      assert.same({ -1, 1 }, spec.scale)
      -- an explicit range is a choice too
      assert.same({ 0, 255 }, models.input_spec(model, { scale = "0,255" }, SMALL).scale)
      -- a preset that does not fit the model names the file
      assert.matches("^" .. SMALL:gsub("%p", "%%%0") .. ": preset torchvision crops 224x224 but the model takes 8x8",
        error_of(models.input_spec, model, { preset = "torchvision" }, SMALL))
    end)

    it("uses what a checkpoint records, and a preset overrides it", function()
      local model = lumen.models.fashion_cnn {}
      local spec = models.input_spec(model, {}, "fashion.lumen")
      assert.same({ 28, 28 }, spec.size)
      assert.same({ 0, 1 }, spec.scale)
      assert.same({ -1, 1 }, models.input_spec(model, { preset = "tflite" }, "fashion.lumen").scale)
    end)
  end)

  describe("check_labels()", function()
    local lines = {}
    for i = 1, 1001 do lines[i] = i == 1 and "background" or ("class " .. (i - 1)) end

    it("refuses a label list of another length, naming both counts", function()
      assert.equal("imagenet_labels.txt has 1001 labels but resnet18.onnx has 1000 classes (label_offset=1 skips a first "
        .. "'background' line)", error_of(models.check_labels, lines, 1000, { path = "imagenet_labels.txt", model = "resnet18.onnx" }))
      assert.equal("the label list has 1001 labels but the model has 10 classes",
        error_of(models.check_labels, lines, 10))
    end)

    it("label_offset=1 drops the background line; the same list fits a 1001-class model as it is", function()
      local l = models.check_labels(lines, 1000, { offset = 1 })
      assert.equal(1000, #l)
      assert.equal("class 1", l[1])
      assert.equal(1001, #models.check_labels(lines, 1001))
      assert.matches("1001 labels %(1000 after label_offset=1%) but the model has 1001 classes",
        error_of(models.check_labels, lines, 1001, { offset = 1 }))
      assert.matches("label_offset=%-1: expected a whole number", error_of(models.check_labels, lines, 1001, { offset = -1 }))
    end)
  end)

  describe("class_id()", function()
    local model = { labels = { "background", "tabby, tabby cat", "tiger cat", "Egyptian cat", "macaw", "cat" } }

    it("takes an id or a label name: exact (any of its comma-separated names) before substring, any case", function()
      assert.is_nil(models.class_id(model, ""))
      assert.is_nil(models.class_id(model, 0))
      assert.equal(3, models.class_id(model, 3))
      assert.equal(4, models.class_id(model, "4"))
      assert.equal(5, models.class_id(model, "MACAW"))
      assert.equal(5, models.class_id(model, "mac"))
      assert.equal(2, models.class_id(model, "tabby cat"))
      assert.equal(6, models.class_id(model, "cat")) -- the label that is exactly "cat"
      assert.equal(4, models.class_id(model, "egyptian"))
    end)

    it("lists the candidates of an ambiguous name and names what is out of range or unknown", function()
      assert.equal("target=ti: 2 labels match (3 tiger cat; 4 Egyptian cat); give the id or more of the name",
        error_of(models.class_id, model, "ti"))
      assert.equal("target=zebra: no label contains 'zebra'", error_of(models.class_id, model, "zebra"))
      assert.equal("target=7: class ids are 1..6", error_of(models.class_id, model, 7))
      assert.matches("the model has no labels", error_of(models.class_id, {}, "macaw"))
    end)
  end)

  describe("classes() and top()", function()
    it("counts the classes from a probe input and ranks them by probability", function()
      local model = lumen.load_model(SMALL)
      assert.equal(20, models.classes(model))
      lumen.seed(1)
      local x = lumen.rand { 1, 3, 8, 8 }
      local ids, probs, labels = models.top(model, x, 3)
      assert.equal(3, #ids)
      assert(probs[1] >= probs[2] and probs[2] >= probs[3])
      assert.equal("class " .. ids[1], labels[1])
      local logits = lumen.no_grad(model.forward, model, x, { logits = true })
      assert.equal(lumen.argmax(logits, 2):item(), ids[1])
    end)
  end)

  describe("ONNX metadata_props", function()
    it("a copy with lumen.input_spec and lumen.labels loads with them and computes the same", function()
      local out, labels = tmp(".onnx"), tmp(".txt")
      write_lines(labels, 21, "background")
      local ok, msg = pcall(require "lumen.cli.spec", { SMALL, "preset=raw", "labels=" .. labels })
      assert.is_false(ok)
      assert.matches("has 21 labels but .* has 20 classes %(label_offset=1 skips", msg)
      require "lumen.cli.spec" { SMALL, "preset=raw", "labels=" .. labels, "label_offset=1", "out=" .. out }
      local a, b = lumen.load_model(SMALL), lumen.load_model(out)
      assert.equal("raw", b.input_spec.preset)
      assert.same({ 8, 8 }, b.input_spec.size)
      assert.same({ 0, 1 }, b.input_spec.scale)
      assert.equal(20, #b.labels)
      assert.equal("label 2", b.labels[1])
      assert.is_nil(a.labels)
      lumen.seed(2)
      local x = lumen.rand { 2, 3, 8, 8 }
      assert.equal(0, lumen.max_abs_diff(a:forward(x), b:forward(x)))
      -- the recorded spec is enough: no preset needed, and a given one still wins
      assert.equal("raw", models.input_spec(b, {}, out).preset)
      assert.equal("tflite", models.input_spec(b, { preset = "tflite" }, out).preset)
      -- written again over its own metadata: replaced, not repeated
      local again = tmp(".onnx")
      require "lumen.cli.spec" { out, "preset=tflite", "out=" .. again }
      local desc = lumen.core.onnx_load(again)
      local n = 0
      for k in pairs(desc.metadata) do n = n + 1 end
      assert.equal(2, n)
      assert.equal("tflite", lumen.load_model(again).input_spec.preset)
      os.remove(out)
      os.remove(again)
      os.remove(labels)
    end)

    it("lumen spec rewrites a lumen checkpoint with the new spec, to the same outputs", function()
      local out = tmp(".lumen")
      require "lumen.cli.spec" { recipe.FASHION_MODEL, "preset=raw", "out=" .. out }
      local a, b = lumen.load_model(recipe.FASHION_MODEL), lumen.load_model(out)
      assert.equal("raw", b.input_spec.preset)
      assert.same(a.labels, b.labels)
      lumen.seed(3)
      local x = lumen.rand { 2, 1, 28, 28 }
      assert.equal(0, lumen.max_abs_diff(a:forward(x), b:forward(x)))
      os.remove(out)
    end)

    it("lumen spec needs a preset, refuses TFLite and its own path, and a bad JSON record is an error naming the file", function()
      assert.matches("does not record how its input was preprocessed", error_of(require "lumen.cli.spec", { SMALL }))
      assert.matches("tiny%.tflite: lumen spec rewrites ONNX files and lumen checkpoints",
        error_of(require "lumen.cli.spec", { "tests/fixtures/broken_models/seeds/tiny.tflite", "preset=tflite" }))
      assert.matches("give another path", error_of(require "lumen.cli.spec", { SMALL, "preset=raw", "out=" .. SMALL }))
      local bad = tmp(".onnx")
      assert(lumen.core.onnx_write_metadata(SMALL, bad, { ["lumen.input_spec"] = "{not json" }))
      assert.matches("^" .. bad:gsub("%p", "%%%0") .. ": metadata_props 'lumen.input_spec' is not a JSON object",
        error_of(lumen.load_model, bad))
      os.remove(bad)
    end)
  end)
end)

describe("recipe.load", function()
  it("stops for an ONNX model without a preset, naming the model and the presets", function()
    local p = recipe.image_args { model = SMALL, image = JPEG .. "coffee.jpg", labels = "", index = 1 }
    assert.matches("^" .. SMALL:gsub("%p", "%%%0") .. ": the model does not record .* give preset=inception, raw, tflite or torchvision",
      error_of(recipe.load, p))
    p.preset = "tflite"
    local model, img, x = recipe.load(p)
    assert.same({ 1, 3, 8, 8 }, x.shape)
    assert.same({ 3, 8, 8 }, img.shape)
    assert.equal("tflite", model.input_spec.preset)
  end)

  it("checks index= against the test set and image keys without a photo", function()
    if not lumen.exists(recipe.FASHION_DIR .. "/t10k-images-idx3-ubyte.gz") then
      return pending(recipe.FASHION_DIR .. " is absent (Debian package dataset-fashion-mnist)")
    end
    local p = recipe.image_args { model = recipe.FASHION_MODEL, image = "", labels = "", index = 0 }
    assert.equal("index=0: images are numbered from 1", error_of(recipe.load, p))
    p.index = 10001
    assert.equal("index=10001: the test set has 10000 images", error_of(recipe.load, p))
    p.index, p.preset = 1, "tflite"
    assert.equal("preset=tflite applies to photos (image=); the test images are used as they are", error_of(recipe.load, p))
  end)

  it("resolves target= by label name with the model's labels", function()
    local model = lumen.models.fashion_cnn {}
    model.labels = { "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot" }
    assert.equal(9, recipe.target(model, { target = "bag" }))
    assert.equal(2, recipe.target(model, { target = "2" }))
    assert.is_nil(recipe.target(model, { target = "" }))
    assert.matches("target=s: %d+ labels match", error_of(recipe.target, model, { target = "s" }))
  end)
end)
