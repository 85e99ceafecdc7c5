-- Specs for the model interface every method goes through (lua/lumen/nn/container.lua): trace() with
-- its shapes, capture = "all", replace (the replaced layer and what only feeds it never run), stop_at,
-- capture and replace inside nested containers, extra outputs of a leaf ("<layer>:<key>"),
-- logits = false (probabilities whatever the ending), and the graph questions: inputs_of, ending (GAP +
-- dense, also the MobileNet form), roles (first weighted layer behind a Pad, dense-like 1x1
-- convolutions, the classifier); summary() of a model that knows its input.
local lumen = require "lumen"
local support = require "support"
local assert_close = support.assert_close
local nn = lumen.nn

-- A module that records whether it ran.
local function spy(name, log)
  return { name = name, type = "Spy", forward = function(_, x) log[#log + 1] = name; return x end }
end

-- An attention-like leaf: y = x, plus an extra tensor.
local Extra = nn.Module.class("ExtraOut", { prefix = "extra" })
Extra.extras = { "attention" }
function Extra:forward(x) return x * 2, { attention = x:sum(2, true) } end

-- (N, 3, 8, 8) -> conv -> relu -> GAP -> fc (4)
local function small(softmax)
  lumen.seed(3)
  local layers = { nn.Conv2d { in_channels = 3, out_channels = 5, kernel_size = 3, padding = 1, name = "conv" },
                   nn.ReLU { name = "relu" }, nn.GlobalAvgPool2d { name = "gap" },
                   nn.Linear { in_features = 5, out_features = 4, name = "fc" } }
  if softmax then layers[#layers + 1] = nn.Softmax { name = "prob" } end
  return nn.Sequential(layers)
end

describe("model:trace()", function()
  it("returns the output, the captures and the shape of every layer it passed, in one pass", function()
    local m = small(true)
    local x = lumen.randn { 2, 3, 8, 8 }
    lumen.autograd.reset_counts()
    local tr = m:trace(x, { capture = { "relu" }, logits = true })
    assert.equal(1, lumen.autograd.counts().conv2d)
    assert_close(tr.output, m:forward(x, { logits = true }), 0, "output")
    assert.same({ 2, 5, 8, 8 }, tr.captured.relu.shape)
    assert.same({ 2, 3, 8, 8 }, tr.shapes.input_1)
    assert.same({ 2, 5 }, tr.shapes.gap)
    assert.same({ 2, 4 }, tr.shapes.fc)
    local names = {}
    for i, l in ipairs(tr.layers) do names[i] = l.name .. ":" .. l.type end
    assert.same({ "conv:Conv2d", "relu:ReLU", "gap:GlobalAvgPool2d", "fc:Linear" }, names) -- the softmax was skipped
    assert.is_nil(tr.stopped_at)
  end)

  it("captures every layer and input with capture = \"all\"", function()
    local m = small()
    local tr = m:trace(lumen.randn { 1, 3, 8, 8 }, { capture = "all" })
    for _, n in ipairs { "input_1", "conv", "relu", "gap", "fc" } do assert.is_true(lumen.is_tensor(tr.captured[n]), n) end
  end)

  it("keeps forward's results and refuses unknown options and names", function()
    local m = small(true)
    local x = lumen.randn { 1, 3, 8, 8 }
    local y, cap = m:forward(x, { capture = { "fc" } })
    assert_close(y, lumen.softmax(cap.fc, -1), 1e-6, "forward")
    assert.has_error(function() m:forward(x, { captur = { "fc" } }) end,
      "Sequential: unknown forward option 'captur' (capture, logits, replace, stop_at)")
    assert.has_error(function() m:trace(x, { replace = { fcc = x } }) end,
      "Sequential: no layer named 'fcc' (did you mean gap, fc?)")
    assert.has_error(function() m:trace(x, { logits = "yes" }) end)
  end)

  it("stops where asked and says so", function()
    local m = small()
    local tr = m:trace(lumen.randn { 1, 3, 8, 8 }, { stop_at = "relu" })
    assert.equal("relu", tr.stopped_at)
    assert.same({ 1, 5, 8, 8 }, tr.output.shape)
    assert.is_nil(tr.shapes.fc)
  end)
end)

describe("replace", function()
  it("sets a layer's output; neither it nor the layers that only feed it run", function()
    local log = {}
    local m = nn.Sequential { spy("a", log), nn.Linear { in_features = 3, out_features = 3, name = "b" }, spy("c", log),
                              nn.Linear { in_features = 3, out_features = 2, name = "d" } }
    local r = lumen.randn { 4, 3 }
    local y = m:forward(lumen.randn { 1, 3 }, { replace = { b = r } })
    assert.same({ "c" }, log)
    assert_close(y, m:layer("d"):forward(r), 1e-6, "output from the replacement")
    log[1] = nil
    m:forward(lumen.randn { 1, 3 }, { replace = { b = r }, capture = { "a" } })
    assert.same({ "a", "c" }, log) -- a captured layer still runs
  end)

  it("works on a Graph, running only the nodes that something still needs", function()
    local log = {}
    local g = nn.Graph { inputs = { "x" }, outputs = { "out" }, nodes = {
      { name = "a", module = spy("a", log), inputs = { "x" } },
      { name = "b", fn = function(t) log[#log + 1] = "b"; return t * 2 end, inputs = { "a" } },
      { name = "c", fn = function(t) log[#log + 1] = "c"; return t + 1 end, inputs = { "x" } },
      { name = "out", op = "add", inputs = { "b", "c" } },
    } }
    local y = g:forward(lumen.ones { 2 }, { replace = { b = lumen.full({ 2 }, 10) } })
    assert.same({ 12, 12 }, y:totable()) -- 10 + (1 + 1)
    assert.same({ "c" }, log)
  end)

  it("reaches layers inside nested containers, with capture and stop_at", function()
    local log = {}
    local inner = nn.Sequential { spy("i1", log), nn.ReLU { name = "i2" }, spy("i3", log), name = "block" }
    local m = nn.Sequential { spy("o1", log), inner, nn.Linear { in_features = 2, out_features = 1, name = "head" } }
    local r = lumen.tensor { { -1, 3 } }
    local tr = m:trace(lumen.randn { 1, 2 }, { replace = { i2 = r }, capture = { "i3", "block" } })
    assert.same({ -1, 3 }, tr.captured.i3:reshape { 2 }:totable())
    assert.equal(tr.captured.i3, tr.captured.block)
    assert.same({ 1, 2 }, tr.shapes.block)
    assert_close(tr.output, m:layer("head"):forward(r), 1e-6, "nested replace")
    assert.same({ "o1", "i3" }, log) -- i1 only fed the replaced layer
    local y = m:forward(lumen.randn { 1, 2 }, { stop_at = "i2" })
    assert.same({ 1, 2 }, y.shape)
  end)

  it("reaches a node of a Graph nested in a Graph", function()
    local inner = nn.Graph { inputs = { "u" }, outputs = { "v" }, name = "inner",
                             nodes = { { name = "w", op = "mul", args = { 3 }, inputs = { "u" } },
                                       { name = "v", op = "add", args = { 1 }, inputs = { "w" } } } }
    local g = nn.Graph { inputs = { "x" }, outputs = { "z" }, nodes = {
      { name = "twice", op = "add", inputs = { "x", "x" } },
      { module = inner, inputs = { "twice" } },
      { name = "z", op = "sub", inputs = { "inner", "x" } },
    } }
    local x = lumen.tensor { 1, 2 }
    local tr = g:trace(x, { replace = { w = lumen.tensor { 100, 200 } }, capture = { "v" } })
    assert.same({ 101, 201 }, tr.captured.v:totable())
    assert.same({ 100, 199 }, tr.output:totable())
    assert.same({ 2 }, tr.shapes.inner)
  end)
end)

describe("extra outputs of a leaf", function()
  it("flow on as the first value only and are captured, traced and listed as <layer>:<key>", function()
    local m = nn.Sequential { nn.Linear { in_features = 3, out_features = 4, name = "proj" }, Extra { name = "attn" },
                              nn.Linear { in_features = 4, out_features = 2, name = "out" } }
    local x = lumen.randn { 2, 3 }
    local tr = m:trace(x, { capture = { "attn:attention" } })
    local h = m:layer("proj"):forward(x)
    assert_close(tr.captured["attn:attention"], h:sum(2, true), 1e-6, "extra")
    assert_close(tr.output, m:layer("out"):forward(h * 2), 1e-6, "first value flows on")
    assert.same({ 2, 1 }, tr.shapes["attn:attention"])
    local names = {}
    for i, l in ipairs(m:layers()) do names[i] = l.name end
    assert.same({ "proj", "attn", "attn:attention", "out" }, names)
    assert.has_error(function() m:forward(x, { capture = { "attn:weights" } }) end,
      "Sequential: no layer named 'attn:weights' (did you mean attn?)") -- the class declares its keys
    Extra.extras = nil
    assert.has_error(function() m:forward(x, { capture = { "attn:weights" } }) end,
      "Sequential: layer 'attn' returned no extra output 'weights'")
    Extra.extras = { "attention" }
    assert.truthy(m:summary({ 3 }):find("attn (ExtraOut)", 1, true))
    assert.falsy(m:summary({ 3 }):find("attn:attention", 1, true))
  end)
end)

describe("logits", function()
  it("= false gives probabilities whatever the ending; nil the model's own output; true the scores", function()
    local plain, with = small(false), small(true)
    local x = lumen.randn { 2, 3, 8, 8 }
    local z = plain:forward(x)
    assert_close(plain:forward(x, { logits = false }), lumen.softmax(z, -1), 1e-7, "no softmax at the end")
    assert_close(with:forward(x, { logits = false }), with:forward(x), 0, "the model's own softmax")
    assert_close(with:forward(x, { logits = true }), z, 1e-6, "the scores")
    local p = plain:trace(x, { logits = false }).output
    assert_close(p:sum(2), lumen.ones { 2 }, 1e-6, "rows sum to 1")
  end)
end)

describe("graph questions", function()
  it("inputs_of names what feeds a layer, through nested containers", function()
    local inner = nn.Sequential { nn.ReLU { name = "r1" }, nn.ReLU { name = "r2" }, name = "block" }
    local m = nn.Sequential { nn.Linear { in_features = 2, out_features = 2, name = "fc" }, inner, nn.Tanh { name = "t" } }
    assert.same({ "input_1" }, m:inputs_of("fc"))
    assert.same({ "fc" }, m:inputs_of("r1"))
    assert.same({ "r2" }, m:inputs_of("t"))
    assert.same({ "fc" }, m:inputs_of("block"))
    assert.has_error(function() m:inputs_of("r3") end)
    local g = nn.Graph { inputs = { "x" }, outputs = { "s" }, nodes = {
      { name = "s", op = "add", type = "Add", inputs = { "a", "x" } },
      { name = "a", module = nn.ReLU {}, inputs = { "x" } } } }
    assert.same({ "a", "x" }, g:inputs_of("s"))
  end)

  it("ending() describes GAP + dense, with or without a final softmax", function()
    local m = small(true)
    local e = m:ending()
    assert.equal("relu", e.features)
    assert.equal("gap", e.pool)
    assert.equal("fc", e.dense)
    assert.equal("prob", e.softmax)
    assert.equal(m:layer("fc").weight, e.weight)
    assert.is_true(e.verified)
    local flat = nn.Sequential { nn.Conv2d { in_channels = 3, out_channels = 2, kernel_size = 1 }, nn.Flatten {},
                                 nn.Linear { in_features = 32, out_features = 3 } }
    local none, why = flat:ending()
    assert.is_nil(none)
    assert.equal("it ends in Conv2d -> Flatten -> Linear", why)
  end)

  it("ending() takes the MobileNet form (whole-map average pool + 1x1 conv), checked on a trace", function()
    lumen.seed(5)
    local head = nn.Conv2d { in_channels = 4, out_channels = 3, kernel_size = 1, name = "head" }
    local m = nn.Sequential { nn.Conv2d { in_channels = 3, out_channels = 4, kernel_size = 3, padding = 1, name = "features" },
                              nn.AvgPool2d { kernel_size = 5, name = "pool" }, head, nn.Flatten {}, nn.Softmax {} }
    local guess = m:ending()
    assert.equal("features", guess.features)
    assert.is_false(guess.verified)
    local e = m:ending(m:trace(lumen.randn { 1, 3, 5, 5 }, { capture = { "features" } }))
    assert.is_true(e.verified)
    assert.equal("head", e.dense)
    assert.same({ 3, 4 }, e.weight.shape)
    assert.is_nil(m:ending(m:trace(lumen.randn { 1, 3, 9, 9 }))) -- the pool no longer covers the map
  end)

  it("roles() finds the first weighted layer behind a Pad, 1x1 convolutions on 1x1 maps and the classifier", function()
    lumen.seed(6)
    local g = nn.Graph { inputs = { "x" }, outputs = { "prob" }, nodes = {
      { name = "pad", op = "pad", type = "Pad", args = { { 1, 1, 1, 1 } }, inputs = { "x" } },
      { name = "conv1", module = nn.Conv2d { in_channels = 3, out_channels = 4, kernel_size = 3 }, inputs = { "pad" } },
      { name = "conv2", module = nn.Conv2d { in_channels = 4, out_channels = 4, kernel_size = 3, padding = 1 }, inputs = { "conv1" } },
      { name = "gap", module = nn.GlobalAvgPool2d { keepdims = true }, inputs = { "conv2" } },
      { name = "head", module = nn.Conv2d { in_channels = 4, out_channels = 3, kernel_size = 1 }, inputs = { "gap" } },
      { name = "flat", module = nn.Flatten {}, inputs = { "head" } },
      { name = "prob", module = nn.Softmax {}, inputs = { "flat" } },
    } }
    local tr = g:trace(lumen.randn { 1, 3, 6, 6 })
    assert.same({ first = { "conv1" }, dense = { "head" }, classifier = { "head" } }, g:roles(tr))
    assert.same({ first = { "conv1" }, dense = {}, classifier = {} }, g:roles()) -- no shapes: no 1x1 maps
    local seq = small()
    assert.same({ first = { "conv" }, dense = { "fc" }, classifier = { "fc" } }, seq:roles())
  end)
end)

describe("model:summary()", function()
  it("needs no argument when the model knows its input (the seed text CNN, length 1000)", function()
    local m = lumen.models.textcnn { vocab = 50, dim = 8, length = 1000, classes = 20 }
    local s = m:summary()
    assert.equal(m:summary({ 1000 }), s)
    assert.truthy(s:find("(None, 996, 128)", 1, true), s)
    assert.equal(small():summary({ 3, 8, 8 }), small():summary({ 3, 8, 8 }))
    assert.has_error(function() small():summary() end,
      "summary: the model does not say its input shape (no input_spec); pass one such as {3, 224, 224}")
    local fashion = lumen.models.fashion_cnn {}
    assert.equal(fashion:summary({ 1, 28, 28 }), fashion:summary())
  end)
end)
