-- Specs for model:summary(): the Keras table of the seed text CNN, row by row, and totals.
local lumen = require "lumen"
local nn = lumen.nn

-- The rows of a summary as {name_type, shape, params}.
local function rows(s)
  local res = {}
  for line in s:gmatch("[^\n]+") do
    local a, shape, n = line:match("^(%S+ %(%S+%))%s+(%(.-%))%s+([%d,]+)%s*$")
    if a then res[#res + 1] = { a, shape, n } end
  end
  return res
end

describe("model:summary", function()
  it("prints the seed lecture's text CNN table exactly", function()
    lumen.seed(1)
    local m = lumen.models.textcnn {}
    local s = m:summary({ 1000 })
    assert.same({
      { "input_1 (InputLayer)", "(None, 1000)", "0" },
      { "embedding_1 (Embedding)", "(None, 1000, 100)", "17,410,600" },
      { "conv1d_1 (Conv1D)", "(None, 996, 128)", "64,128" },
      { "max_pooling1d_1 (MaxPooling1D)", "(None, 199, 128)", "0" },
      { "conv1d_2 (Conv1D)", "(None, 195, 128)", "82,048" },
      { "max_pooling1d_2 (MaxPooling1D)", "(None, 39, 128)", "0" },
      { "conv1d_3 (Conv1D)", "(None, 35, 128)", "82,048" },
      { "max_pooling1d_3 (MaxPooling1D)", "(None, 1, 128)", "0" },
      { "global_max_pooling1d_1 (GlobalMaxPooling1D)", "(None, 128)", "0" },
      { "dense_1 (Dense)", "(None, 128)", "16,512" },
      { "dense_2 (Dense)", "(None, 20)", "2,580" },
    }, rows(s))
    assert.matches("\nTotal params: 17,657,916\n", s, 1, true)
    assert.matches("\nTrainable params: 247,316\n", s, 1, true)
    assert.matches("\nNon-trainable params: 17,410,600\n", s, 1, true)
    assert.matches("Layer %(type%)%s+Output Shape%s+Param #", s)
    assert.is_true(s:find('^Model: "model_1"\n') ~= nil)
  end)

  it("counts batch-norm statistics as non-trainable and leaves the mode alone", function()
    local m = lumen.models.fashion_cnn {}
    local s = m:summary({ 1, 28, 28 })
    local r = rows(s)
    assert.same({ "conv1 (Conv2D)", "(None, 16, 28, 28)", "160" }, r[2])
    assert.same({ "bn1 (BatchNormalization)", "(None, 16, 28, 28)", "64" }, r[3])
    assert.same({ "gap (GlobalAveragePooling2D)", "(None, 96)", "0" }, r[#r - 1])
    assert.same({ "fc (Dense)", "(None, 10)", "970" }, r[#r])
    local tr, fixed = 0, 0
    for _, p in ipairs(m:parameters()) do tr = tr + p.tensor:numel() end
    for _, st in ipairs(m:state()) do if st.kind == "buffer" then fixed = fixed + st.tensor:numel() end end
    assert.equal(2 * (16 + 32 + 32 + 64 + 96), fixed)
    local function num(label) return tonumber((s:match(label .. ": ([%d,]+)"):gsub(",", ""))) end
    assert.equal(tr, num("\nTrainable params"))
    assert.equal(fixed, num("Non%-trainable params"))
    assert.equal(tr + fixed, num("Total params"))
    assert.is_true(m.training)
  end)

  it("lists graph inputs and function nodes", function()
    local g = nn.Graph {
      inputs = { "image" }, outputs = { "out" },
      nodes = {
        { name = "conv", module = nn.Conv2d { in_channels = 3, out_channels = 4, kernel_size = 3 }, inputs = { "image" } },
        { name = "out", op = "relu", type = "Relu", inputs = { "conv" } },
      },
    }
    local r = rows(g:summary({ 3, 8, 8 }))
    assert.same({ { "image (InputLayer)", "(None, 3, 8, 8)", "0" }, { "conv (Conv2D)", "(None, 4, 6, 6)", "112" },
                  { "out (Relu)", "(None, 4, 6, 6)", "0" } }, r)
  end)

  it("is what `lumen summary MODEL [C,H,W]` prints for a model file", function()
    local path = lumen.tmpname("_fashion.lumen")
    local m = lumen.models.fashion_cnn {}
    m:save(path)
    local out = {}
    local write = io.write
    io.write = function(...) for _, v in ipairs { ... } do out[#out + 1] = v end end
    local ok, err = pcall(function()
      require("lumen.cli.summary") { path }              -- shape from input_spec
      require("lumen.cli.summary") { path, "1,28,28" }
    end)
    io.write = write
    os.remove(path)
    assert(ok, err)
    local expected = m:summary({ 1, 28, 28 })
    assert.equal(expected, out[1])
    assert.equal(expected, out[2])
    assert.has_error(function() require("lumen.cli.summary") {} end, "usage: lumen summary MODEL [C,H,W]")
  end)
end)
