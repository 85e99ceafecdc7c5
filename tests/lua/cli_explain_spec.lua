-- tests/lua/cli_explain_spec.lua — `lumen explain` with no Lua written: on a torchvision ResNet-18 ONNX
-- export (tests/fixtures/torch) and a JPEG it writes the panel, the raw map and a manifest that
-- `lumen rerun` reproduces; a model without a spec or preset, a label file of the wrong length, an
-- unknown key or method each stop with a message naming it; every method of the table runs; a folder
-- is explained file by file; --compare puts methods side by side; --list lists them.
local lumen = require "lumen"
local explain = require "lumen.cli.explain"
local support = require "support"

local LUMEN = arg and arg[-1] or "lumen"
local RESNET = "tests/fixtures/torch/resnet18.onnx.gz"
local MOBILENET = "tests/fixtures/torch/mobilenet_v2.onnx.gz" -- 1000 classes
local SMALL = "tests/fixtures/broken_models/seeds/ops_opset13.onnx"
local JPEG = "tests/fixtures/jpeg/"

-- Runs `lumen <words>` in a child process; returns ok, output (stdout and stderr).
local function lumen_cmd(words)
  local f = assert(io.popen(("LUMEN_QUIET=1 %s %s 2>&1"):format(LUMEN, words)))
  local out = f:read("a")
  return f:close(), out
end

local function manifest(dir) return support.json_file(dir .. "/manifest.json") end

describe("lumen explain", function()
  local tmp = support.tmp_dir("cli_explain")
  teardown(function() support.remove(tmp) end)

  it("explains a JPEG with a torchvision ResNet-18 ONNX export: top 5, panel, raw map, manifest", function()
    local out = tmp .. "/resnet"
    local ok, text = lumen_cmd(("explain gradcam %s %scoffee.jpg preset=torchvision out=%s"):format(RESNET, JPEG, out))
    assert(ok, text)
    assert.truthy(text:find("coffee.jpg (224x224 as torchvision):", 1, true), text)
    assert.truthy(text:find("  5. ", 1, true), text)
    assert.truthy(text:find("gradcam for class %d+ %(%d+%) at layer /layer4/layer4.1/relu_1/Relu_output_0"), text)
    local m = manifest(out)
    for _, f in ipairs { "gradcam.png", "gradcam.npy" } do
      assert.equal(m.files[f], lumen.sha256_file(out .. "/" .. f), f)
    end
    assert.same({ 1, 1, 224, 224 }, lumen.read_npy(out .. "/gradcam.npy").shape)
    assert.equal("torchvision", m.info.input_spec.preset)
    assert.equal(5, #m.info.top)
    assert.equal("gradcam", m.params.method)
    local img = assert(lumen.image.load(out .. "/gradcam.png"))
    assert.equal(3, img.shape[1])
  end)

  it("does not write over another run's folder unless overwrite=true, and says so before any work", function()
    local out = tmp .. "/again"
    local cmd = ("explain saliency %s %scoffee.jpg preset=torchvision out=%s"):format(RESNET, JPEG, out)
    assert(lumen_cmd(cmd))
    local before = manifest(out)
    local ok, text = lumen_cmd(cmd)
    assert.is_falsy(ok)
    assert.truthy(text:find("out=" .. out .. ": the folder holds the outputs of another run", 1, true), text)
    assert.is_falsy(text:find("saliency for class", 1, true), text) -- refused before the explanation
    local ok2, text2 = lumen_cmd(cmd .. " overwrite=true")
    assert(ok2, text2)
    assert.equal(before.files["saliency.npy"], manifest(out).files["saliency.npy"])
  end)

  it("stops for an ONNX model without a spec or preset, naming the file and the presets", function()
    local ok, text = lumen_cmd(("explain gradcam %s %scoffee.jpg out=%s/none"):format(SMALL, JPEG, tmp))
    assert.is_falsy(ok)
    assert.truthy(text:find(SMALL .. ": the model does not record how its input was preprocessed; give "
      .. "preset=inception, raw, tflite or torchvision", 1, true), text)
    assert.is_false(lumen.exists(tmp .. "/none"))
  end)

  it("refuses a 1001-line label file on a 1000-class model, naming 1001 and 1000", function()
    local labels = tmp .. "/imagenet_1001.txt"
    local lines = { "background" }
    for i = 1, 1000 do lines[#lines + 1] = "class " .. i end
    support.write(labels, table.concat(lines, "\n") .. "\n")
    local ok, text = lumen_cmd(("explain saliency %s %scoffee.jpg preset=torchvision labels=%s out=%s/labels")
      :format(MOBILENET, JPEG, labels, tmp))
    assert.is_falsy(ok)
    assert.truthy(text:find(labels .. " has 1001 labels but " .. MOBILENET .. " has 1000 classes (label_offset=1 skips a "
      .. "first 'background' line)", 1, true), text)
  end)

  it("names an unknown key with the valid ones, an unknown method with the methods, and a bad choice", function()
    local function err(words) return select(2, pcall(explain.parse, words)) end
    assert.equal("explain: unknown key 'layr' for gradcam (valid: crop, label_offset, labels, layer, layout, mean, "
      .. "out, overwrite, preset, reshape, resize, scale, seed, size, std, target, top)", err { "gradcam", "m.onnx", "x.jpg", "layr=3" })
    assert.matches("^explain: unknown method 'gradcm' %(known: gradcam, gradcam_plus_plus, cam, ", err { "gradcm", "m", "x" })
    assert.equal("explain: baseline=black (one of: zeros, blur)", err { "integrated_gradients", "m", "x", "baseline=black" })
    assert.equal("explain: steps=ten is not a number", err { "integrated_gradients", "m", "x", "steps=ten" })
    assert.matches("^usage: lumen explain", err { "gradcam", "m" })
    local p = explain.parse { "--compare", "gradcam,occlusion", "m.onnx", "x.jpg", "patch=8", "layer=conv" }
    assert.equal(2, #p.methods)
    assert.equal(8, p.patch)
    assert.equal("conv", p.layer)
  end)

  it("types every key by the method's own declaration and checks it before any work", function()
    local function err(words) return select(2, pcall(explain.parse, words)) end
    -- a boolean is a boolean: overwrite=false must not replace a run (the word "false" is not false)
    assert.is_false(explain.parse { "saliency", "m", "x", "overwrite=false" }.overwrite)
    assert.equal("explain: overwrite=maybe is not true or false", err { "saliency", "m", "x", "overwrite=maybe" })
    assert.equal("explain: n given twice (n=4 and n=5)", err { "smoothgrad", "m", "x", "n=4", "n=5" })
    -- the method's own range check, at parse time
    assert.equal("smoothgrad: n must be an integer >= 1, got 0", err { "smoothgrad", "m", "x", "n=0" })
    assert.equal("explain: rule=foo (one of: epsilon, zero, gamma, alphabeta, zplus, zbox, composite)",
      err { "lrp", "m", "x", "rule=foo" })
    assert.same({ 14, 14 }, explain.parse { "gradcam", "m", "x", "reshape=14,14" }.reshape)
    -- options come from the declarations: each method's own, with the command's defaults for photos
    for _, m in ipairs(explain.methods) do
      local declared = lumen.explain.options(m[1])
      for k in pairs(m[5]) do
        assert(declared[k] or k == "segments", m[1] .. ": " .. k .. " is not an option the method declares")
      end
    end
    assert.equal(32, explain.options("occlusion").patch.default) -- occlusion on photos: 32-pixel patches
    assert.equal(true, explain.options("saliency").abs.default)
    -- --compare: a method not given a key keeps its own default, not another method's
    local p = explain.parse { "--compare", "smoothgrad,occlusion", "m", "x", "n=12" }
    p.class = 1
    local fn, sizes = support.recording(function(b) return b:reshape { b.shape[1], 16 }:narrow(2, 1, 3) end)
    explain.run_method("smoothgrad", fn, lumen.rand { 1, 1, 4, 4 }, nil, p)
    assert.same({ 1, 10, 2 }, sizes) -- the input, then batches of smoothgrad's 10, not occlusion's 32
  end)

  it("records itself as the script in the manifest also when called from Lua with no arg table", function()
    local saved = _G.arg
    _G.arg = nil -- as at the prompt of an embedded Lua
    local ok, dirs = pcall(explain.main, { "saliency", "data/models/fashion_cnn.lumen", JPEG .. "crop.png", "out=" .. tmp .. "/noarg" })
    _G.arg = saved
    assert(ok, dirs)
    local m = manifest(dirs[1])
    assert.truthy(m.script and m.script.path:match("lumen/cli/explain%.lua$"), "no script recorded")
    assert.equal("saliency", m.params.method)
  end)

  it("--list shows every method of the table and every preset", function()
    local text = explain.list()
    for _, m in ipairs(explain.methods) do assert.truthy(text:find("  " .. m[1] .. " ", 1, true), m[1]) end
    for _, name in ipairs(lumen.image.preset_names()) do assert.truthy(text:find("  " .. name .. " ", 1, true), name) end
  end)

  it("runs every method of the table to a per-pixel map and a target (the Fashion CNN or ViT on a photo)", function()
    local cnn = lumen.load_model("data/models/fashion_cnn.lumen")
    local vit = lumen.load_model("data/models/vit_fashion.lumen") -- for the attention methods
    local img = assert(lumen.image.load(JPEG .. "orient_6.jpg"))
    local x, shown = lumen.image.preprocess(img, cnn.input_spec)
    local small = { segments = 6, nsamples = 40, num_samples = 40, n = 4, steps = 4, patch = 8, stride = 4 }
    for _, m in ipairs(explain.methods) do
      local p = { target = "" }
      for k, v in pairs(m[5]) do p[k] = small[k] or v end
      lumen.seed(0)
      local model = ({ attention_rollout = vit, transformer_attribution = vit })[m[1]] or cnn
      local r = explain.run_method(m, model, x, shown, p)
      if model == vit then -- the map is the method's own upsampled map
        assert.same(lumen.explain[m[1]](model, x):totable(), r.map:totable(), m[1])
      end
      assert.same({ 1, 1, 28, 28 }, r.map.shape, m[1])
      assert(lumen.is_tensor(r.raw), m[1])
      assert(math.type(r.target) == "integer" and r.target >= 1 and r.target <= 10, m[1])
    end
  end)

  it("takes a folder's regular PNG / JPEG files in byte order, skipping a named pipe without opening it", function()
    local dir = tmp .. "/with_fifo"
    lumen.mkdir(dir)
    support.write(dir .. "/b.png", support.read_file(JPEG .. "crop.png"))
    support.write(dir .. "/a.jpg", support.read_file(JPEG .. "rgb420.jpg"))
    assert(os.execute("mkfifo " .. support.quote(dir .. "/0.png"))) -- opening it would wait for a writer
    assert.same({ dir .. "/a.jpg", dir .. "/b.png" }, explain.inputs(dir))
    assert.same({ "x.jpg" }, explain.inputs("x.jpg"))
  end)

  it("explains every PNG and JPEG of a folder into out/<stem>, and --compare puts methods in one panel", function()
    local dir = tmp .. "/photos"
    lumen.mkdir(dir)
    for _, n in ipairs { "rgb420.jpg", "crop.png" } do support.write(dir .. "/" .. n, support.read_file(JPEG .. n)) end
    support.write(dir .. "/notes.txt", "not a picture\n")
    local out = tmp .. "/folder"
    local ok, text = lumen_cmd(("explain --compare gradcam,saliency data/models/fashion_cnn.lumen %s out=%s target=bag")
      :format(dir, out))
    assert(ok, text)
    assert.truthy(text:find("2 PNG/JPEG files (1 other files skipped)", 1, true), text)
    for _, stem in ipairs { "rgb420", "crop" } do
      local m = manifest(out .. "/" .. stem)
      assert.is_not_nil(m.files["compare.png"], stem)
      assert.is_not_nil(m.files["gradcam.npy"], stem)
      assert.is_not_nil(m.files["saliency.npy"], stem)
      assert.equal(9, m.info.methods.gradcam.target) -- "bag": class 9 of the Fashion CNN's labels
      assert.equal("Bag", m.info.methods.saliency.label)
    end
    -- each photo's manifest reruns that photo alone, to the same bytes
    ok, text = lumen_cmd(("rerun %s/crop/manifest.json"):format(out))
    assert(ok, text)
    assert.truthy(text:find("3 of 3 files reproduced byte for byte", 1, true), text)
  end)
end)
