-- Specs for the input-synthesis methods: lumen.explain.class_model (Simonyan et al.), lumen.explain.deepdream
-- and their shared helpers (roll, total variation, jitter).
local lumen = require "lumen"
local nn = lumen.nn
local explain = lumen.explain
local synthesis = require "lumen.explain.synthesis"

local FASHION = "data/models/fashion_cnn.lumen"

-- A smooth CNN (tanh, average pools) ending in global average pooling: any input size, and gradient
-- ascent with a small enough step must raise the score at every step.
local function small_cnn()
  local model = nn.Sequential {
    nn.Conv2d { in_channels = 1, out_channels = 8, kernel_size = 3, padding = 1, name = "conv1" }, nn.Tanh {},
    nn.AvgPool2d { kernel_size = 2 },
    nn.Conv2d { in_channels = 8, out_channels = 8, kernel_size = 3, padding = 1, name = "conv2" },
    nn.Tanh { name = "act2" },
    nn.GlobalAvgPool2d {}, nn.Linear { in_features = 8, out_features = 3 } }
  for _, p in ipairs(model:parameters()) do
    if p.name:match("weight$") then p.tensor:copy_(p.tensor * 3) end
  end
  return model
end

local function increasing(curve)
  for k = 1, #curve - 1 do
    if not (curve[k + 1] > curve[k]) then return false, ("step %d: %.6f -> %.6f"):format(k, curve[k], curve[k + 1]) end
  end
  return true
end

describe("lumen.explain.synthesis", function()
  before_each(function() lumen.seed(31) end)

  it("rolls with wrap-around, and rolling back restores the image", function()
    local x = lumen.randn { 1, 2, 4, 5 }
    local y = synthesis.roll(x, 1, -2)
    for i = 1, 4 do
      for j = 1, 5 do
        assert.equal(x:get { 1, 2, (i - 2) % 4 + 1, (j + 1) % 5 + 1 }, y:get { 1, 2, i, j })
      end
    end
    assert.equal(0, lumen.max_abs_diff(synthesis.roll(y, -1, 2), x))
    local ok, msg = lumen.gradcheck(function(t) return synthesis.roll(t, 2, 3) end, { lumen.randn { 1, 1, 3, 4 } })
    assert(ok, msg)
  end)

  it("computes the total variation and its gradient", function()
    local x = lumen.tensor { { { { 1, 2, 4 }, { 0, 2, 1 } } } } -- (1, 1, 2, 3)
    -- vertical: (0-1)^2 + (2-2)^2 + (1-4)^2 = 10; horizontal: 1 + 4 + 4 + 1 = 10
    assert.equal(20, synthesis.tv(x):item())
    local ok, msg = lumen.gradcheck(synthesis.tv, { lumen.randn { 1, 2, 3, 4 } })
    assert(ok, msg)
  end)

  it("jitters within [-j, j] and not at all for 0", function()
    local seen = {}
    for _ = 1, 200 do
      local d = synthesis.jitter(2)
      assert.is_true(d >= -2 and d <= 2)
      seen[d] = true
    end
    for d = -2, 2 do assert.is_true(seen[d]) end
    assert.equal(0, synthesis.jitter(0))
    assert.equal(0, synthesis.jitter(nil))
  end)
end)

describe("lumen.explain.class_model", function()
  before_each(function() lumen.seed(31) end)

  it("raises the class score at every step on a small CNN", function()
    local model = small_cnn()
    local img, curve = explain.class_model(model, { target = 2, shape = { 1, 1, 12, 12 }, steps = 15, lr = 1 })
    assert.same({ 1, 1, 12, 12 }, img.shape)
    assert.equal(16, #curve)
    assert(increasing(curve))
    assert.is_true(curve[16] > curve[1] + 0.3, ("%.4f -> %.4f"):format(curve[1], curve[16]))
    assert.is_true(math.abs(curve[16] - model:forward(img):get { 1, 2 }) < 1e-5)
  end)

  it("keeps its regularisers (jitter, blur, TV, clamp) and still raises the score overall", function()
    local model = small_cnn()
    local img, curve = explain.class_model(model, { target = 1, shape = { 1, 1, 12, 12 }, steps = 20, lr = 1,
      jitter = 1, blur_every = 5, tv = 0.01, clamp = { -1, 1 } })
    assert.is_true(img:max_all() <= 1 and img:min_all() >= -1)
    assert.is_true(curve[21] > curve[1] + 0.2, ("%.4f -> %.4f"):format(curve[1], curve[21]))
  end)

  it("needs a target and a shape", function()
    assert.has_error(function() explain.class_model(small_cnn(), { shape = { 1, 1, 8, 8 } }) end)
    assert.has_error(function() explain.class_model(small_cnn(), { target = 1 }) end)
  end)

  if lumen.exists(FASHION) then
    it("raises the class score at every step on the shipped Fashion-MNIST CNN", function()
      local model = lumen.load_model(FASHION)
      model:eval()
      local _, curve = explain.class_model(model, { target = 10, steps = 10, lr = 0.01 })
      assert(increasing(curve))
    end)
  else
    it("on the shipped Fashion-MNIST CNN", function()
      pending(FASHION .. " is absent (made by recipes/train_fashion_mnist.lua)")
    end)
  end
end)

describe("lumen.explain.deepdream", function()
  before_each(function() lumen.seed(31) end)

  it("raises the layer's activation at every step without jitter, over two octaves", function()
    local model = small_cnn()
    local img = lumen.rand { 1, 1, 12, 12 }
    local out, curve = explain.deepdream(model, img, { layer = "act2", octaves = 2, steps = 4, jitter = 0, lr = 0.02 })
    assert.same(img.shape, out.shape)
    assert.equal(8, #curve)
    assert(increasing({ table.unpack(curve, 5, 8) }))
    local function objective(t)
      local _, acts = model:forward(t, { capture = { "act2" } })
      return (acts.act2 * acts.act2):mean_all()
    end
    assert.is_true(objective(out) > objective(img))
    assert.is_true(out:min_all() >= img:min_all() and out:max_all() <= img:max_all())
  end)

  it("maximises one channel's mean when asked", function()
    local model = small_cnn()
    local img = lumen.rand { 1, 1, 10, 10 }
    local function channel_mean(t)
      local _, acts = model:forward(t, { capture = { "conv2" } })
      return acts.conv2:narrow(2, 3, 1):mean_all()
    end
    local out = explain.deepdream(model, img, { layer = "conv2", channel = 3, octaves = 1, steps = 5, jitter = 1 })
    assert.is_true(channel_mean(out) > channel_mean(img))
  end)
end)
