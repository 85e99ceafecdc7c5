-- Specs for the transformer recipes (run as `lumen run`, in a child process, on tiny random-weight models
-- saved to a temporary folder): recipes/vit_attention.lua and recipes/text_transformer.lua write every file
-- their manifest lists and the same bytes when run again; recipes/train_vit_fashion.lua trains a few steps
-- and writes a checkpoint that loads; the shipped transformers load and put the defaults where the README
-- says.
local lumen = require "lumen"
local recipe = lumen.recipe
local support = require "support"

local LUMEN = arg and arg[-1] or "lumen"

local function run(name, params)
  local args = {}
  for k, v in pairs(params) do args[#args + 1] = ("%s=%s"):format(k, support.quote(v)) end
  table.sort(args)
  local cmd = ("LUMEN_QUIET=1 %s run recipes/%s.lua %s 2>&1"):format(LUMEN, name, table.concat(args, " "))
  local f = assert(io.popen(cmd))
  local out = f:read("a")
  assert(f:close(), cmd .. "\n" .. out)
  return out
end

local function files_of(dir)
  local f = assert(io.open(dir .. "/manifest.json"))
  local m = lumen.json.decode(f:read("a"))
  f:close()
  for name, sha in pairs(m.files) do assert.equal(sha, lumen.sha256_file(dir .. "/" .. name), name) end
  return m.files
end

describe("transformer recipes", function()
  local tmp = os.tmpname()
  os.remove(tmp)
  lumen.mkdir(tmp)
  teardown(function() os.execute(("rm -rf '%s'"):format(tmp)) end)
  lumen.seed(0)
  local words = { "the", "computer", "crashed", "science", "of", "cookies" }
  local tt = lumen.models.text_transformer { vocab = #words + 2, embed_dim = 6, dim = 8, heads = 2, mlp = 16, length = 12,
                                             classes = 3 }
  tt.labels, tt.input_spec.vocabulary = { "a", "b", "c" }, "words.txt"
  tt:eval():save(tmp .. "/tt.lumen")
  assert(lumen.data.Vocabulary(words):save(tmp .. "/words.txt"))

  it("text_transformer writes its four pages and scores, the same bytes twice", function()
    local outs = {}
    for k = 1, 2 do
      outs[k] = tmp .. "/text_" .. k
      local printed = run("text_transformer", { model = tmp .. "/tt.lumen", steps = 4, out = outs[k],
                                                 text = "The computer crashed, science of cookies!" })
      assert.truthy(printed:find("rollout: ", 1, true), printed)
    end
    local files = files_of(outs[1])
    for _, f in ipairs { "rollout.html", "attribution.html", "saliency.html", "integrated_gradients.html", "scores.npy" } do
      assert.is_not_nil(files[f], f)
    end
    assert.same(files, files_of(outs[2]))
    assert.same({ 4, 8 }, lumen.read_npy(outs[1] .. "/scores.npy").shape) -- 8 tokens, the text is not padded
  end)

  if not lumen.exists(recipe.FASHION_DIR .. "/t10k-images-idx3-ubyte.gz") then
    it("ViT recipes need the Fashion-MNIST test set", function()
      pending(recipe.FASHION_DIR .. " is absent (Debian package dataset-fashion-mnist)")
    end)
    return
  end

  it("vit_attention writes its picture and one raw grid per image and method, the same bytes twice", function()
    lumen.seed(1)
    lumen.models.vit { dim = 16, depth = 2, heads = 2, mlp = 32 }:eval():save(tmp .. "/vit.lumen")
    local outs = {}
    for k = 1, 2 do
      outs[k] = tmp .. "/vit_" .. k
      run("vit_attention", { model = tmp .. "/vit.lumen", indices = "1,2", cell = 56, out = outs[k] })
    end
    local files = files_of(outs[1])
    for _, f in ipairs { "vit_attention.png", "1_rollout.npy", "2_rollout_max.npy", "2_attribution.npy" } do
      assert.is_not_nil(files[f], f)
    end
    assert.same(files, files_of(outs[2]))
    assert.same({ 1, 1, 7, 7 }, lumen.read_npy(outs[1] .. "/1_attribution.npy").shape)
  end)

  it("train_vit_fashion trains and writes a checkpoint that loads", function()
    -- a Fashion-MNIST of 96 pictures (the first test images) as idx files, for both splits
    local X, y = recipe.fashion_test()
    local pix, lab = X:narrow(1, 1, 96):reshape { 96 * 784 }:totable(), y:narrow(1, 1, 96):totable()
    local bytes, labels = {}, {}
    for i, v in ipairs(pix) do bytes[i] = string.char(math.floor(v * 255 + 0.5)) end
    for i, v in ipairs(lab) do labels[i] = string.char(v - 1) end
    local data = tmp .. "/mini_fashion"
    lumen.mkdir(data)
    for _, split in ipairs { "train", "t10k" } do
      support.write(("%s/%s-images-idx3-ubyte"):format(data, split),
        string.pack(">I4I4I4I4", 0x803, 96, 28, 28) .. table.concat(bytes))
      support.write(("%s/%s-labels-idx1-ubyte"):format(data, split), string.pack(">I4I4", 0x801, 96) .. table.concat(labels))
    end
    local out = tmp .. "/train_vit"
    local printed = run("train_vit_fashion", { data = data, epochs = 1, batch_size = 48, dim = 16, mlp = 32, out = out })
    assert.truthy(printed:find("accuracy", 1, true), printed)
    local m = lumen.load_model(out .. "/vit_fashion.lumen", { cache = false })
    assert.same({ 1, 10 }, m:forward(lumen.zeros { 1, 1, 28, 28 }).shape)
    assert.is_not_nil(files_of(out)["vit_fashion.lumen"])
  end)

  it("the shipped ViT and text transformer load and classify", function()
    local vit = lumen.load_model("data/models/vit_fashion.lumen")
    local X, y = recipe.fashion_test()
    local scores = lumen.no_grad(vit.forward, vit, X:narrow(1, 1, 100))
    local right = lumen.eq(lumen.argmax(scores, 2):float(), y:narrow(1, 1, 100):float()):sum_all()
    assert.is_true(right >= 80, right .. " of the first 100 test images right")
    local tt_shipped = lumen.load_model("data/models/transformer_fortunes.lumen")
    assert.equal(20, #tt_shipped.labels)
    assert.equal("transformer_fortunes.vocab.txt", tt_shipped.input_spec.vocabulary)
  end)
end)
