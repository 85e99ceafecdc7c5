-- Specs for lumen.nn.incremental and the occlusion that uses it: copies of an image perturbed in a box
-- give the outputs of full forwards (within 1e-5) while recomputing only what each box reaches — on the
-- Fashion CNN, a hand-built Graph (residual add, concat, stride-2 and "same" convolutions, dilated
-- depthwise convolution, max and average pools), a net whose SiLU and HardSwish run inside its convolutions,
-- the ResNet-18 ONNX fixture at 64x64, and a model with a layer it cannot follow (from there on it runs in
-- full).
local lumen = require "lumen"
local nn = lumen.nn
local incremental = require "lumen.nn.incremental"
local support = require "support"

local TOL = 1e-5

-- The batch of copies of x with box j filled with fill (a number) or values[j].
local function occluded(x, boxes, fill)
  local s = x.shape
  local xs = x:expand { #boxes, s[2], s[3], s[4] }
  for j, b in ipairs(boxes) do
    if type(fill) == "number" then
      xs:fill_box_({ j, 1, b[1], b[2] }, { 1, s[2], b[3], b[4] }, fill)
    else
      lumen.core.image_paste_(lumen.core.view(lumen.core.narrow0(xs, j, 1), { s[2], s[3], s[4] }),
        lumen.core.view(lumen.core.narrow0(fill, j, 1), { s[2], b[3], b[4] }), b[1], b[2])
    end
  end
  return xs
end

-- inc:forward(boxes, fill) against full forwards of the occluded batch: max |difference| relative to
-- the largest output.
local function check(model, x, boxes, fill, opts)
  opts = opts or { logits = true }
  local inc = incremental.new(model, x, opts)
  local got = inc:forward(boxes, fill)
  local want = lumen.no_grad(function() return model:forward(occluded(x, boxes, fill), opts) end)
  local err = lumen.max_abs_diff(got, want) / math.max(want:abs():max_all(), 1)
  assert(err <= TOL, ("incremental forward differs from full forwards by %g"):format(err))
  return inc
end

-- n random boxes of size h x w (some at the borders) in an H x W image.
local function random_boxes(n, H, W, h, w)
  local res = {}
  for j = 1, n do
    local top = j % 4 == 1 and 1 or j % 4 == 2 and H - h + 1 or lumen.randint(H - h + 1)
    local left = j % 3 == 1 and W - w + 1 or lumen.randint(W - w + 1)
    res[j] = { top, left, h, w }
  end
  return res
end

local function kinds(inc)
  local res = {}
  for _, n in ipairs(inc.nodes) do res[n.name] = n.kind end
  return res
end

-- A Graph with what a CNN is made of: stem conv (stride 2) -> BN -> ReLU -> maxpool 3/2/1; a branch of
-- a dilated depthwise conv -> BN -> ReLU6 and a branch of a 1x1 conv; add; concat with a third branch
-- over channels; a "same" conv with stride 2; an average pool; an unfolded BatchNorm; GAP -> fc.
local function graph_net()
  lumen.seed(21)
  local function bn(c)
    local m = nn.BatchNorm2d { num_features = c }
    m:set_state("running_mean", lumen.randn { c })
    m:set_state("running_var", lumen.rand { c } + 0.5)
    m:set_state("weight", lumen.randn { c })
    return m
  end
  return nn.Graph { inputs = { "x" }, outputs = { "fc" }, nodes = {
    { name = "stem", module = nn.Conv2d { in_channels = 3, out_channels = 8, kernel_size = 3, stride = 2, padding = 1 }, inputs = { "x" } },
    { name = "stem_bn", module = bn(8), inputs = { "stem" } },
    { name = "stem_relu", module = nn.ReLU {}, inputs = { "stem_bn" } },
    { name = "pool", module = nn.MaxPool2d { kernel_size = 3, stride = 2, padding = 1 }, inputs = { "stem_relu" } },
    { name = "dw", module = nn.Conv2d { in_channels = 8, out_channels = 8, kernel_size = 3, padding = 2, dilation = 2, groups = 8 }, inputs = { "pool" } },
    { name = "dw_bn", module = bn(8), inputs = { "dw" } },
    { name = "dw_relu", module = nn.ReLU6 {}, inputs = { "dw_bn" } },
    { name = "pw", module = nn.Conv2d { in_channels = 8, out_channels = 8, kernel_size = 1 }, inputs = { "pool" } },
    { name = "add", op = "add", inputs = { "dw_relu", "pw" } },
    { name = "side", module = nn.Conv2d { in_channels = 8, out_channels = 4, kernel_size = { 1, 3 }, padding = { 0, 1 } }, inputs = { "pw" } },
    { name = "cat", type = "Concat", fn = function(a, b) return lumen.cat({ a, b }, 2) end, inputs = { "add", "side" } },
    { name = "scale", op = "mul", args = { 0.5 }, inputs = { "cat" } },
    { name = "down", module = nn.Conv2d { in_channels = 12, out_channels = 6, kernel_size = 3, stride = 2, padding = "same" }, inputs = { "scale" } },
    { name = "avg", module = nn.AvgPool2d { kernel_size = 2, stride = 1, padding = 1 }, inputs = { "down" } },
    { name = "relu_bn", module = nn.ReLU {}, inputs = { "avg" } },
    { name = "late_bn", module = bn(6), inputs = { "relu_bn" } },
    { name = "gap", module = nn.GlobalAvgPool2d {}, inputs = { "late_bn" } },
    { name = "fc", module = nn.Linear { in_features = 6, out_features = 4 }, inputs = { "gap" } },
  } }:eval()
end

describe("lumen.nn.incremental", function()
  it("gives full forwards' outputs on a Graph with residual add, concat, strides, dilation, depthwise, pools", function()
    local m = graph_net()
    local x = lumen.randn { 1, 3, 37, 41 }
    local inc = check(m, x, random_boxes(12, 37, 41, 5, 7), 0)
    local k = kinds(inc)
    assert.same({ "window", "window", "window", "window", "merge", "merge", "point", "window", "window", "point", "full" },
      { k.stem, k.pool, k.dw, k.pw, k.add, k.cat, k.scale, k.down, k.avg, k.late_bn, k.gap })
    assert.equal("point", k.stem_bn) -- folded into stem
    assert(inc:cost(random_boxes(12, 37, 41, 5, 7)) < 0.9)
    check(m, x, random_boxes(6, 37, 41, 2, 3), 1.5)
    check(m, x, { { 1, 1, 37, 41 }, { 3, 2, 1, 1 } }, -1) -- a box covering the image, a 1x1 box
    check(m, x, random_boxes(5, 37, 41, 4, 4), lumen.randn { 5, 3, 4, 4 })
    check(m, x, random_boxes(3, 37, 41, 6, 6), 0, { logits = false })
  end)

  it("gives full forwards' outputs on the Fashion CNN, recomputing part of each convolution", function()
    local m = lumen.load_model("data/models/fashion_cnn.lumen")
    local x = lumen.rand { 1, 1, 28, 28 }
    local boxes = random_boxes(16, 28, 28, 6, 6)
    local inc = check(m, x, boxes, 0)
    local cost = inc:cost(boxes)
    assert(cost > 0.2 and cost < 0.9, "cost " .. cost)
    assert.same({ name = "gap", type = "GlobalAvgPool2d" }, inc:fallback_layer({ { 1, 1, 2, 2 } }))
  end)

  it("gives full forwards' outputs where SiLU and HardSwish run inside the convolutions (fused under no_grad)", function()
    lumen.seed(21)
    local function bn(c)
      local b = nn.BatchNorm2d { num_features = c }
      b:set_state("running_mean", lumen.randn { c } * 0.1)
      b:set_state("running_var", lumen.rand { c } + 0.5)
      return b
    end
    local m = nn.Sequential {
      nn.Conv2d { in_channels = 3, out_channels = 16, kernel_size = 3, padding = 1, name = "stem" }, bn(16),
      nn.SiLU { name = "act1" },
      nn.Conv2d { in_channels = 16, out_channels = 16, kernel_size = 3, stride = 2, padding = 1, groups = 16,
                  name = "dw" }, nn.HardSwish { name = "act2" },
      nn.Conv2d { in_channels = 16, out_channels = 32, kernel_size = 1, name = "expand" }, bn(32), -- the plain path
      nn.SiLU { name = "act3" },
      nn.GlobalAvgPool2d {}, nn.Linear { in_features = 32, out_features = 4 },
    }:eval()
    assert.same({ { conv = "stem", bn = m.modules[2].name, act = "act1" }, { conv = "dw", act = "act2" },
                  { conv = "expand", bn = m.modules[7].name, act = "act3" } }, m:fold())
    local x = lumen.randn { 1, 3, 24, 24 }
    lumen.autograd.reset_counts()
    check(m, x, random_boxes(8, 24, 24, 5, 5), 0)
    local c = lumen.autograd.counts()
    assert.equal(0, c.silu + c.hardswish) -- every activation ran inside its convolution
  end)

  it("gives full forwards' outputs on ResNet-18 (the ONNX fixture at 64x64)", function()
    local m = lumen.load_model("tests/fixtures/torch/resnet18.onnx.gz")
    local x = support.npy("tests/fixtures/torch/input.npy"):narrow(3, 81, 64):narrow(4, 81, 64)
    local boxes = random_boxes(8, 64, 64, 8, 8)
    local inc = check(m, x, boxes, 0)
    local counts = {}
    for _, n in ipairs(inc.nodes) do counts[n.kind] = (counts[n.kind] or 0) + 1 end
    assert.same({ window = 21, point = 37, merge = 8, full = 3 }, counts) -- GAP, Flatten, Gemm in full
    assert(inc:cost(boxes) < 0.9, "cost " .. inc:cost(boxes))
    local map = lumen.explain.occlusion(m, x, { target = 3, patch = 16, stride = 16 })
    local plain = lumen.explain.occlusion(function(b) return m:forward(b, { logits = true }) end, x,
      { target = 3, patch = 16, stride = 16 })
    assert(lumen.max_abs_diff(map, plain) <= TOL * math.max(plain:abs():max_all(), 1), "occlusion maps differ")
  end)

  it("runs a layer it cannot follow in full, and everything after it, with the same outputs", function()
    lumen.seed(5)
    local m = nn.Graph { inputs = { "x" }, outputs = { "fc" }, nodes = {
      { name = "conv1", module = nn.Conv2d { in_channels = 2, out_channels = 4, kernel_size = 3, padding = 1 }, inputs = { "x" } },
      { name = "odd", type = "Roll", fn = function(t) return lumen.cat({ t:narrow(4, 2, t.shape[4] - 1), t:narrow(4, 1, 1) }, 4) end,
        inputs = { "conv1" } },
      { name = "conv2", module = nn.Conv2d { in_channels = 4, out_channels = 4, kernel_size = 3, padding = 1 }, inputs = { "odd" } },
      { name = "up", module = nn.ConvTranspose2d { in_channels = 4, out_channels = 3, kernel_size = 2, stride = 2 }, inputs = { "conv2" } },
      { name = "conv3", module = nn.Conv2d { in_channels = 3, out_channels = 3, kernel_size = 3, padding = 1 }, inputs = { "up" } },
      { name = "gap", module = nn.GlobalMaxPool2d {}, inputs = { "conv3" } },
      { name = "fc", module = nn.Linear { in_features = 3, out_features = 2 }, inputs = { "gap" } },
    } }:eval()
    local x = lumen.randn { 1, 2, 12, 12 }
    local boxes = random_boxes(5, 12, 12, 3, 3)
    local inc = check(m, x, boxes, 0)
    local k = kinds(inc)
    assert.same({ "window", "full", "window", "full", "window" }, { k.conv1, k.odd, k.conv2, k.up, k.conv3 })
    local lays = inc:plan(boxes)
    assert.is_nil(lays.conv1.full)
    for _, name in ipairs { "odd", "conv2", "up", "conv3" } do assert.is_true(lays[name].full, name) end
    assert.same({ name = "odd", type = "Roll" }, inc:fallback_layer({ { 5, 5, 3, 3 } }))
  end)

  it("refuses what it cannot take", function()
    local m = graph_net()
    assert.has_error(function() incremental.new(m, lumen.randn { 2, 3, 8, 8 }) end,
      "incremental: expected one image (1, C, H, W)")
    local inc = incremental.new(m, lumen.randn { 1, 3, 16, 16 })
    assert.has_error(function() inc:forward({ { 1, 1, 4, 4 } }, lumen.zeros { 1, 3, 2, 2 }) end,
      "incremental: values (1, 3, 2, 2) do not fit box 1 (4 x 4)")
    assert.has_error(function() inc:forward({ { 1, 1, 0, 4 } }, 0) end,
      "incremental: box 1 must be {top, left, height, width} (integers, sizes >= 1)")
  end)
end)

describe("explain.occlusion on images", function()
  it("gives the map of full re-forwards, running incrementally", function()
    local m = lumen.load_model("data/models/fashion_cnn.lumen")
    local x = lumen.rand { 1, 1, 28, 28 }
    for _, o in ipairs { { patch = 6, stride = 3, target = 4 }, { patch = 5, stride = 4, fill = 0.5, probabilities = true } } do
      lumen.autograd.reset_counts()
      local map, target, score = lumen.explain.occlusion(m, x, o)
      assert(lumen.autograd.counts().pad > 0, "the incremental forward pads each layer's base input once")
      local plain, t2, s2 = lumen.explain.occlusion(function(b) return m:forward(b, { logits = true }) end, x, o)
      assert.equal(t2, target)
      assert(math.abs(score - s2) <= TOL, "base score")
      assert(lumen.max_abs_diff(map, plain) <= TOL, "occlusion maps differ by " .. lumen.max_abs_diff(map, plain))
    end
  end)
end)
