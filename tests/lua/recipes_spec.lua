-- Specs for the recipes: a few of them run with tiny parameters (as `lumen run`, in a child process,
-- on a random-weight Fashion-MNIST CNN and text CNN saved to a temporary folder) write every file their
-- manifest lists, with the right hashes, and running them twice with the same seed gives the same bytes.
local lumen = require "lumen"
local recipe = lumen.recipe

local LUMEN = arg and arg[-1] or "lumen" -- the program running these specs (`lumen test ...`)

-- Runs `lumen run recipes/<name>.lua k=v ...`; returns its output, raising with it on failure.
local function run(name, params)
  local args = {}
  for k, v in pairs(params) do args[#args + 1] = ("'%s=%s'"):format(k, v) end
  table.sort(args)
  local cmd = ("LUMEN_QUIET=1 %s run recipes/%s.lua %s 2>&1"):format(LUMEN, name, table.concat(args, " "))
  local f = assert(io.popen(cmd))
  local out = f:read("a")
  local ok = f:close()
  assert(ok, cmd .. "\n" .. out)
  return out
end

-- The manifest of an output folder, checked against the files on disk: name -> sha256.
local function files_of(dir)
  local f = assert(io.open(dir .. "/manifest.json"))
  local m = lumen.json.decode(f:read("a"))
  f:close()
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

  local tmp = os.tmpname()
  os.remove(tmp)
  lumen.mkdir(tmp)
  lumen.seed(0)
  local fashion = tmp .. "/fashion_cnn.lumen"
  lumen.models.fashion_cnn {}:save(fashion)
  local words = { "the", "computer", "crashed", "science", "of", "cookies" }
  local text = lumen.models.textcnn { vocab = #words + 2, dim = 8, length = 149, classes = 3 }
  text.labels, text.input_spec.vocabulary = { "a", "b", "c" }, "words.txt"
  text:save(tmp .. "/textcnn.lumen")
  assert(lumen.data.Vocabulary(words):save(tmp .. "/words.txt"))
  teardown(function() os.execute(("rm -rf '%s'"):format(tmp)) end)

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
      local f = assert(io.popen(("TMPDIR='%s' LUMEN_QUIET=1 %s rerun '%s' 2>&1"):format(tmp, LUMEN, manifest))) -- kept reruns go in tmp
      local out = f:read("a")
      return f:close(), out
    end
    local ok, out = rerun()
    assert(ok, out)
    assert.truthy(out:find("3 of 3 files reproduced byte for byte", 1, true), out)
    local f = assert(io.open(manifest))
    local text = f:read("a"):gsub('"raw.npy": "%x+"', '"raw.npy": "' .. ("0"):rep(64) .. '"')
    f:close()
    f = assert(io.open(manifest, "w"))
    f:write(text)
    f:close()
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
    local f = assert(io.open(tmp .. "/text_saliency_1/saliency.html"))
    local page = f:read("a")
    f:close()
    for _, tok in ipairs { "the", "computer", "crashed", "!" } do
      assert.is_truthy(page:find(">" .. tok .. "</span>", 1, true), tok)
    end
    assert.same({ 3, 4 }, lumen.read_npy(tmp .. "/text_saliency_1/scores.npy").shape)
  end)
end)
