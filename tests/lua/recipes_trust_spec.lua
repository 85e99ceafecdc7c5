-- Specs for what the recipes promise about their outputs: training recipes never write into the
-- shipped data/models by default and write a manifest listing the model; classify.lua writes one too;
-- text_saliency.lua shows the prediction, marks unknown words and flags a near-zero Grad-CAM.
local lumen = require "lumen"
local recipe = lumen.recipe
local support = require "support"
local LUMEN, q, run, read, write = support.LUMEN, support.quote, support.run_recipe, support.read_file, support.write

local function manifest(dir) return support.json_file(dir .. "/manifest.json") end

describe("recipes and their outputs", function()
  local tmp = support.tmp_dir("recipes_trust")
  teardown(function() support.remove(tmp) end)

  it("training recipes write to out/, never to data/models, by default", function()
    for _, name in ipairs { "train_fashion_mnist", "train_textcnn" } do
      local p = io.popen(("%s run recipes/%s.lua help"):format(q(LUMEN), name))
      local text = p:read("a")
      p:close()
      local out = text:match("out=(%S+)")
      assert.truthy(out, text)
      assert.truthy(out:match("^out/"), name .. " writes to " .. out)
      -- and data/models, which holds files but no manifest, is refused as an out= folder
      p = io.popen(("%s run recipes/%s.lua out=data/models 2>&1"):format(q(LUMEN), name))
      text = p:read("a")
      assert.is_falsy(p:close())
      assert.truthy(text:find("out=data/models: the folder holds files that are not a lumen run's", 1, true), text)
    end
  end)

  it("train_textcnn.lua writes the model, its vocabulary and a manifest listing both", function()
    lumen.mkdir(tmp .. "/corpus")
    write(tmp .. "/corpus/tech", ("the computer crashed\n%\nthe program failed\n%\n"):rep(6))
    write(tmp .. "/corpus/food", ("the cookie was sweet\n%\nthe cake is good\n%\n"):rep(6))
    local lines = {}
    for i, w in ipairs { "the", "computer", "crashed", "program", "failed", "cookie", "was", "sweet", "cake", "is", "good" } do
      lines[i] = ("%s %g %g %g %g"):format(w, math.sin(i), math.cos(i), math.sin(2 * i), math.cos(3 * i))
    end
    write(tmp .. "/glove.txt", table.concat(lines, "\n") .. "\n")
    local out = tmp .. "/textcnn"
    run("train_textcnn", { corpus = tmp .. "/corpus", glove = tmp .. "/glove.txt", categories = "tech,food", length = 149,
                           epochs = 1, batch_size = 4, min_count = 1, out = out })
    local m = manifest(out)
    assert.same({ "textcnn_fortunes.lumen", "textcnn_fortunes.vocab.txt" }, (function()
      local n = {}
      for k in pairs(m.files) do n[#n + 1] = k end
      table.sort(n)
      return n
    end)())
    assert.equal(lumen.sha256_file(out .. "/textcnn_fortunes.lumen"), m.files["textcnn_fortunes.lumen"])
    assert.equal(lumen.sha256_file(tmp .. "/glove.txt"), m.inputs.glove.sha256)
    assert.truthy(m.inputs.corpus.sha256) -- a folder: the hash of its files
    assert.is_number(m.info.test_accuracy)
  end)

  it("train_fashion_mnist.lua writes the model and a manifest", function()
    if os.getenv("LUMEN_SLOW_TESTS") ~= "1" then
      return pending("reads all 60,000 training images: LUMEN_SLOW_TESTS=1 (train_textcnn covers the manifest)")
    end
    if not lumen.exists(recipe.FASHION_DIR .. "/train-images-idx3-ubyte.gz") then
      return pending(recipe.FASHION_DIR .. " is absent (Debian package dataset-fashion-mnist)")
    end
    local out = tmp .. "/fashion"
    run("train_fashion_mnist", { limit = 64, epochs = 1, batch_size = 32, out = out })
    local m = manifest(out)
    assert.equal(lumen.sha256_file(out .. "/fashion_cnn.lumen"), m.files["fashion_cnn.lumen"])
    assert.equal(64, m.info.test_images)
    assert.truthy(m.inputs.data.sha256)
  end)

  it("classify.lua writes the probabilities and a manifest with the top classes", function()
    lumen.seed(0)
    local model = lumen.models.fashion_cnn {}
    model:save(tmp .. "/fashion.lumen")
    assert(lumen.image.save(lumen.rand { 1, 28, 28 }, tmp .. "/x.png"))
    local out = tmp .. "/classify"
    run("classify", { model = tmp .. "/fashion.lumen", labels = "", image = tmp .. "/x.png", top = 3, out = out })
    local m = manifest(out)
    assert.equal(3, #m.info.top)
    local probs = lumen.read_npy(out .. "/probabilities.npy")
    assert.same({ 1, 10 }, probs.shape)
    assert.near(1, probs:sum_all(), 1e-5)
    assert.near(probs:max_all(), m.info.top[1].probability, 1e-6)
    assert.equal(lumen.sha256_file(tmp .. "/x.png"), m.inputs.image.sha256)
  end)

  it("text_saliency.lua shows the prediction, marks unknown words and flags a near-zero Grad-CAM", function()
    local out = tmp .. "/text"
    local text = run("text_saliency", { steps = 4, out = out, text = "The computer program crashed, flibbertigibbet!" })
    assert.truthy(text:find("flibbertigibbet?[", 1, true), text)
    for _, page in ipairs { "saliency", "integrated_gradients", "gradcam" } do
      local html = read(out .. "/" .. page .. ".html")
      assert.truthy(html:find('<p class="prediction">prediction: computers (class 4), score ', 1, true), page)
      assert.truthy(html:find('class="tok unk"[^>]*>flibbertigibbet</span>'), page)
      assert.is_nil(html:find('class="tok unk"[^>]*>computer</span>'), page)
    end
    -- Grad-CAM at the first convolution of the shipped model is a tiny fraction of the class score
    local cam = read(out .. "/gradcam.html")
    assert.truthy(cam:find("Near zero: the largest |score| is", 1, true), cam)
    assert.is_nil(read(out .. "/integrated_gradients.html"):find("Near zero", 1, true))
  end)
end)
