-- Specs for lumen checkpoints (model:save, lumen.load_model) and the model-file dispatch.
local lumen = require "lumen"
local nn = lumen.nn
local models = require "lumen.models"

local support = require "support"
local tmp, read, write = support.tmp, support.read_file, support.write

describe("lumen checkpoints", function()
  local path
  before_each(function() lumen.seed(3); path = tmp("model.lumen") end)
  after_each(function() os.remove(path) end)

  it("reloads a trained CNN to the same outputs bit for bit, with labels and input_spec", function()
    local m = models.fashion_cnn {}
    local x = lumen.rand { 4, 1, 28, 28 }
    m:train()
    m:forward(x) -- moves the batch-norm running statistics away from their initial values
    m:eval()
    local y = m:forward(x)
    m:save(path)
    local back = lumen.load_model(path)
    assert.equal(0, lumen.max_abs_diff(back:forward(x), y))
    assert.same(m.labels, back.labels)
    assert.same(m.input_spec, back.input_spec)
    assert.is_false(back.training)
    local names = {}
    for i, l in ipairs(back:layers()) do names[i] = l.name end
    assert.equal("conv1", names[1])
    assert.equal("fc", names[#names])
    assert.is_true(back:layer("fc").weight.requires_grad)
  end)

  it("does not consume random numbers while loading", function()
    local m = nn.Sequential { nn.Linear { in_features = 3, out_features = 2 } }
    m:save(path)
    lumen.seed(9)
    lumen.load_model(path)
    local a = lumen.random()
    lumen.seed(9)
    assert.equal(lumen.random(), a)
  end)

  it("saves graphs made of modules and lumen ops, tensor arguments included", function()
    local g = nn.Graph {
      inputs = { "x" }, outputs = { "y" },
      nodes = {
        { name = "fc", module = nn.Linear { in_features = 3, out_features = 3 }, inputs = { "x" } },
        { name = "shift", op = "add", args = { lumen.tensor { 1, 2, 3 } }, type = "Add", inputs = { "fc" } },
        { name = "y", op = "add", type = "Add", inputs = { "shift", "x" } },
      },
    }
    g = nn.Graph { inputs = { "x" }, outputs = { "out" }, nodes = {
      { name = "block", module = g, inputs = { "x" } },
      { name = "out", op = "relu", inputs = { "block" } } } }
    local x = lumen.randn { 2, 3 }
    g:save(path)
    local back = lumen.load_model(path)
    assert.equal(0, lumen.max_abs_diff(back:forward(x), g:forward(x)))
    assert.equal("Add", back:layer("shift").type)
  end)

  it("keeps frozen embeddings frozen and channels-last options", function()
    local m = models.textcnn { vocab = 50, dim = 8, length = 150, classes = 3 }
    local row = {}
    for i = 1, 150 do row[i] = lumen.randint(50) end
    local ids = lumen.tensor({ row }, "int64")
    m:eval()
    local y = m:forward(ids)
    m:save(path)
    local back = lumen.load_model(path)
    assert.equal(0, lumen.max_abs_diff(back:forward(ids), y))
    assert.is_false(back:parameters()[1].trainable)
  end)

  it("refuses graphs with Lua function nodes, naming the node", function()
    local g = nn.Graph { inputs = { "x" }, outputs = { "y" },
                         nodes = { { name = "y", fn = function(x) return x end, type = "Identity", inputs = { "x" } } } }
    assert.has_error(function() g:save(path) end,
      "save: graph node 'y' (Identity) is a Lua function; only nodes built as {op = name, args = {...}} can be saved")
  end)

  describe("bad files", function()
    local good
    before_each(function()
      nn.Sequential { nn.Linear { in_features = 3, out_features = 2, name = "fc" } }:save(path)
      good = read(path)
    end)

    local function load_err(bytes)
      write(path, bytes)
      local ok, err = pcall(lumen.load_model, path)
      assert.is_false(ok)
      return err
    end

    it("names a truncated file", function()
      local err = load_err(good:sub(1, #good - 5))
      assert.matches(path, err, 1, true)
      err = load_err(good:sub(1, 40))
      assert.matches(path, err, 1, true)
    end)

    it("rejects a corrupted architecture", function()
      local err = load_err((good:gsub('\\"type\\":\\"Linear\\"', '\\"type\\":\\"Linxar\\"')))
      assert.matches("unknown layer type 'Linxar'", err, 1, true)
      err = load_err((good:gsub('\\"config\\":{', '\\"config\\":[')))
      assert.matches("bad lumen.arch metadata", err, 1, true)
    end)

    it("rejects tensors with the wrong shape", function()
      local big = nn.Sequential { nn.Linear { in_features = 4, out_features = 2, name = "fc" } }
      local tensors = {}
      for _, s in ipairs(big:state()) do tensors[s.name] = s.tensor end
      local _, meta = lumen.read_safetensors(path)
      assert(lumen.write_safetensors(path, tensors, meta))
      local ok, err = pcall(lumen.load_model, path)
      assert.is_false(ok)
      assert.matches("tensor 'weight' is float32 (2, 4), expected float32 (2, 3)", err, 1, true)
    end)

    it("refuses the hostile checkpoints of the corpus before building their layers", function()
      local dir, n = "tests/fixtures/broken_models/", 0
      for line in io.lines(dir .. "expected.txt") do
        local file, piece = line:match("^([^#\t][^\t]*)\t(.+)$")
        if file and file:match("%.lumen$") then
          local ok, err = pcall(lumen.load_model, dir .. file)
          assert.is_false(ok, file .. " loaded")
          assert.equal(dir .. file .. ": ", err:sub(1, #dir + #file + 2), err)
          assert(err:find(piece, 1, true), ("%s: expected '%s' in '%s'"):format(file, piece, err))
          n = n + 1
        end
      end
      assert(n >= 1, "expected.txt lists no checkpoint")
    end)

    it("refuses layers that declare more bytes in all than the file's tensors", function()
      local _, meta = lumen.read_safetensors(path)
      local arch = { type = "Sequential", name = "m", modules = {} }
      for i = 1, 50 do
        arch.modules[i] = { type = "Linear", name = "fc" .. i, config = { in_features = 3, out_features = 2 } }
      end
      meta["lumen.arch"] = require("lumen.json").encode(arch)
      assert(lumen.write_safetensors(path, { ["fc1.weight"] = lumen.zeros { 2, 3 }, ["fc1.bias"] = lumen.zeros { 2 } }, meta))
      local err = select(2, pcall(lumen.load_model, path))
      assert.matches("m/fc2 (Linear): the layers declare more tensor bytes than the checkpoint holds (32)", err, 1, true)
    end)

    it("holds the architecture to model_nodes", function()
      local before = lumen.limits { model_nodes = 1 }
      local ok, err = pcall(lumen.load_model, path)
      lumen.limits(before)
      assert.is_false(ok)
      assert.matches(path .. ": the number of layers (2) exceeds the model_nodes limit of 1", err, 1, true)
    end)

    it("loads a graph whose 2,000 nodes come in reverse order", function()
      local nodes, N = {}, 2000
      for i = 1, N do nodes[i] = { name = "n" .. (N - i + 1), inputs = { i == N and "x" or ("n" .. (N - i)) }, op = "relu" } end
      nn.Graph { inputs = { "x" }, outputs = { "n" .. N }, nodes = nodes }:save(path)
      local m = lumen.load_model(path)
      assert.same({ 0, 2 }, m:forward(lumen.tensor { -1, 2 }):totable())
      assert.equal("n1", m.nodes[1].name)
    end)
  end)

  describe("nn.Graph's sort", function()
    it("orders 120,000 nodes given in reverse without recursing (the recursive sort overflowed at 100,000)", function()
      local recs, N = {}, 120000
      for i = 1, N do recs[i] = { name = "n" .. (N - i + 1), inputs = { i == N and "x" or ("n" .. (N - i)) } } end
      local order = nn.Graph._toposort(recs, { "x" })
      assert.equal(N, #order)
      for i = 1, N, 997 do assert.equal("n" .. i, order[i].name) end
    end)

    it("still names the path of a cycle", function()
      local recs = { { name = "a", inputs = { "c" } }, { name = "b", inputs = { "a" } }, { name = "c", inputs = { "b" } } }
      assert.has_error(function() nn.Graph._toposort(recs, { "x" }) end, "Graph: cycle through node 'a' (a -> c -> b)")
    end)
  end)

  describe("bad files, continued", function()
    it("rejects safetensors files that are not lumen checkpoints", function()
      assert(lumen.write_safetensors(path, { w = lumen.zeros { 2 } }, { format = "pt" }))
      local ok, err = pcall(lumen.load_model, path)
      assert.is_false(ok)
      assert.matches("not a lumen checkpoint", err, 1, true)
    end)
  end)

  describe("models.sniff and models.labels", function()
    it("tells file kinds apart by content", function()
      write(path, "\0\0\0\0TFL3rest of a flatbuffer")
      assert.equal("tflite", models.sniff(path))
      write(path, "\31\139\8\0")
      assert.equal("gzip", models.sniff(path))
      write(path, "\8\18\4lumen") -- a protobuf: ONNX
      assert.equal("onnx", models.sniff(path))
      nn.Sequential { nn.ReLU {} }:save(path)
      assert.equal("checkpoint", models.sniff(path))
      assert.is_nil(models.sniff(path .. ".missing"))
    end)

    it("reads every line as a label", function()
      write(path, "background\ntench\n\ngoldfish\n")
      assert.same({ "background", "tench", "", "goldfish" }, models.labels(path))
      local shared = "../shared/data/models/imagenet_labels.txt"
      if lumen.exists(shared) then
        local l = models.labels(shared)
        assert.equal(1001, #l)
        assert.equal("background", l[1])
      else
        pending(shared .. " is absent (../shared/data)")
      end
    end)
  end)
end)
