-- Specs for the recipes: a few of them run with tiny parameters (as `lumen run`, in a child process,
-- on a random-weight Fashion-MNIST CNN and text CNN saved to a temporary folder) write every file their
-- manifest lists, with the right hashes, and running them twice with the same seed gives the same bytes.
local lumen = require "lumen"
local recipe = lumen.recipe
local support = require "support"
local run, q = support.run_recipe, support.quote

-- The manifest of an output folder, checked against the files on disk: name -> sha256.
local function files_of(dir)
  local m = support.json_file(dir .. "/manifest.json")
  for name, sha in pairs(m.files) do
    assert.equal(sha, lumen.sha256_file(dir .. "/" .. name), dir .. "/" .. name)
  end
  return m.files
end

describe("recipes", function()
  if not lumen.exists(recipe.FASHION_DIR .. "/t10k-images-idx3-ubyte.gz") then
    it("need the Fashion-MNIST test set", function()
      pending(recipe.FASHION_DIR .. " is absent (Debian package dataset-fashion-mnist)")
    end)
    return
  end

  local tmp = support.tmp_dir("recipes_spec")
  lumen.seed(0)
  local fashion = tmp .. "/fashion_cnn.lumen"
  lumen.models.fashion_cnn {}:save(fashion)
  local words = { "the", "computer", "crashed", "science", "of", "cookies" }
  local text = lumen.models.textcnn { vocab = #words + 2, dim = 8, length = 149, classes = 3 }
  text.labels, text.input_spec.vocabulary = { "a", "b", "c" }, "words.txt"
  text:save(tmp .. "/textcnn.lumen")
  assert(lumen.data.Vocabulary(words):save(tmp .. "/words.txt"))
  teardown(function() support.remove(tmp) end)

  -- Each case: a recipe, tiny parameters, files its manifest must list.
  local cases = {
    { "demo", { indices = "1", size = 28 }, { "demo.png", "1_cam.npy", "1_lrp.npy", "1_occlusion.npy" } },
    { "gradcam", { method = "gradcam_plus_plus", index = 2 }, { "gradcam_plus_plus.png", "gradcam_plus_plus.npy", "raw.npy" } },
    { "cam_family", { index = 2, batch_size = 48 }, { "cam_family.png", "cam.npy", "scorecam.npy", "fullgrad.npy" } },
    { "saliency", { n = 4, batch_size = 2 }, { "saliency.png", "smoothgrad.npy", "gradient.npy" } },
    { "lime", { segments = 8, num_samples = 24, batch_size = 24 }, { "lime.png", "lime.npy", "segments.npy" } },
    { "class_model", { classes = "2,9", steps = 3 }, { "class_model.png", "class_2.npy", "class_9.npy" } },
    { "faithfulness", { n = 2, steps = 4, batch_size = 5 }, { "faithfulness.png", "curves.npy" } },
    { "text_saliency", { model = tmp .. "/textcnn.lumen", layer = "", steps = 4, text = "The computer crashed!" },
      { "saliency.html", "integrated_gradients.html", "gradcam.html", "scores.npy" } },
  }
  for _, case in ipairs(cases) do
    local name, params, expected = case[1], case[2], case[3]
    describe(name, function()
      local outs = {}
      for k = 1, 2 do
        outs[k] = ("%s/%s_%d"):format(tmp, name, k)
        local p = { out = outs[k], model = fashion, seed = 3 }
        for key, v in pairs(params) do p[key] = v end
        run(name, p)
      end

      it("writes the files its manifest lists", function()
        local files = files_of(outs[1])
        for _, f in ipairs(expected) do assert.is_not_nil(files[f], f .. " missing from the manifest") end
      end)

      it("gives the same bytes when run again with the same seed", function()
        assert.same(files_of(outs[1]), files_of(outs[2]))
      end)
    end)
  end

  it("a different seed changes a sampling method's output", function()
    run("saliency", { out = tmp .. "/seed7", model = fashion, n = 4, batch_size = 2, seed = 7 })
    local a, b = files_of(tmp .. "/saliency_1"), files_of(tmp .. "/seed7")
    assert.equal(a["gradient.npy"], b["gradient.npy"]) -- no randomness in the plain gradient
    assert.are_not.equal(a["smoothgrad.npy"], b["smoothgrad.npy"])
  end)

  it("`lumen rerun` reproduces a manifest's outputs and reports a file that differs", function()
    local manifest = tmp .. "/gradcam_1/manifest.json"
    local function rerun()
      local out, status = support.sh(("TMPDIR=%s LUMEN_QUIET=1 %s rerun %s"):format(q(tmp), q(support.LUMEN), q(manifest))) -- kept reruns go in tmp
      return status == 0, out
    end
    local ok, out = rerun()
    assert(ok, out)
    assert.truthy(out:find("3 of 3 files reproduced byte for byte", 1, true), out)
    support.write(manifest, (support.read_file(manifest):gsub('"raw.npy": "%x+"', '"raw.npy": "' .. ("0"):rep(64) .. '"')))
    ok, out = rerun()
    assert.is_falsy(ok)
    assert.truthy(out:find("DIFFERENT  raw.npy", 1, true), out)
  end)

  it("maps come shaped like the input", function()
    assert.same({ 1, 1, 28, 28 }, lumen.read_npy(tmp .. "/demo_1/1_cam.npy").shape)
    assert.same({ 1, 1, 28, 28 }, lumen.read_npy(tmp .. "/saliency_1/gradient.npy").shape)
    assert.same({ 3, 2, 5 }, lumen.read_npy(tmp .. "/faithfulness_1/curves.npy").shape)
  end)

  it("text pages carry every token", function()
    local page = support.read_file(tmp .. "/text_saliency_1/saliency.html")
    for _, tok in ipairs { "the", "computer", "crashed", "!" } do
      assert.is_truthy(page:find(">" .. tok .. "</span>", 1, true), tok)
    end
    assert.same({ 3, 4 }, lumen.read_npy(tmp .. "/text_saliency_1/scores.npy").shape)
  end)
end)
