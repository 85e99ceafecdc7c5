-- Specs for lumen.explain.faithfulness: deletion / insertion curves and AUC (RISE), their random-order
-- baseline, Spearman rank correlation and the cascading-randomisation sanity check.
local lumen = require "lumen"
local nn = lumen.nn
local explain = lumen.explain
local faith = require "lumen.explain.faithfulness"

local FASHION = "data/models/fashion_cnn.lumen"
local FASHION_DATA = "/usr/share/datasets/fashion-mnist"

-- Two classes with logits W x, W = {w, -w}: the contribution of pixel i to the target's margin is
-- (W_c - W_other)_i x_i, the perfect deletion order.
local function linear_model(hw)
  local w = lumen.randn { 1, hw }
  local W = lumen.cat({ w, -w }, 1)
  return function(t) return lumen.linear(t:reshape { t.shape[1], hw }, W) end, W
end

local function mean(t) local s = 0; for _, v in ipairs(t) do s = s + v end; return s / #t end

describe("lumen.explain.faithfulness", function()
  before_each(function() lumen.seed(23) end)

  it("computes the trapezoid AUC on [0, 1]", function()
    assert.equal(0.5, faith.auc { 1, 0 })
    assert.equal(1, faith.auc { 1, 1, 1 })
    assert.equal(0.375, faith.auc { 1, 0.5, 0 } - 0.125)
  end)

  it("removes pixels in map order, steps of equal size", function()
    local x = lumen.arange(1, 17):reshape { 1, 1, 4, 4 }
    local f = function(t) -- logits {sum of the pixels, 0}
      return lumen.cat({ t:sum({ 2, 3, 4 }):reshape { t.shape[1], 1 }, lumen.zeros { t.shape[1], 1 } }, 2)
    end
    local map = lumen.tensor { { 5, 1, 16, 2 }, { 3, 4, 6, 7 }, { 8, 9, 10, 11 }, { 12, 13, 14, 15 } }
    local _, curve = explain.deletion(f, x, map, { steps = 16, probabilities = false, target = 1 })
    assert.equal(17, #curve)
    assert.equal(136, curve[1])
    assert.equal(136 - 3, curve[2]) -- map's largest (16) is pixel 3
    assert.equal(136 - 3 - 16, curve[3]) -- then 15: pixel 16
    assert.equal(0, curve[17])
    local _, quarter = explain.deletion(f, lumen.ones { 1, 1, 4, 4 }, map,
                                        { steps = 4, probabilities = false, target = 1 })
    assert.same({ 16, 12, 8, 4, 0 }, quarter)
  end)

  it("starts and ends each curve at the right images", function()
    local f = linear_model(64)
    local x = lumen.rand { 1, 1, 8, 8 }
    local map = lumen.rand { 1, 1, 8, 8 }
    local auc, del, c = explain.deletion(f, x, map, { steps = 8 })
    local p = function(t) return lumen.softmax(f(t), 2):get { 1, c } end
    assert.is_true(math.abs(del[1] - p(x)) < 1e-6 and math.abs(del[9] - p(lumen.zeros_like(x))) < 1e-6)
    assert.is_true(auc > 0 and auc < 1)
    local _, ins = explain.insertion(f, x, map, { steps = 8 })
    assert.is_true(math.abs(ins[1] - p(lumen.gaussian_blur(x, 5))) < 1e-6 and math.abs(ins[9] - p(x)) < 1e-6)
  end)

  it("a faithful map beats the random order: lower deletion AUC, higher insertion AUC", function()
    local f, W = linear_model(64)
    local x = lumen.rand { 1, 1, 8, 8 }
    local c = lumen.argmax(f(x), 2):get { 1 }
    local map = (W:narrow(1, c, 1) - W:narrow(1, 3 - c, 1)):reshape { 1, 1, 8, 8 } * x
    local del = explain.deletion(f, x, map, { steps = 16 })
    local ins = explain.insertion(f, x, map, { steps = 16, baseline = 0 })
    local rd, ri = {}, {}
    for k = 1, 3 do
      rd[k] = explain.deletion(f, x, map, { steps = 16, order = "random" })
      ri[k] = explain.insertion(f, x, map, { steps = 16, baseline = 0, order = "random" })
    end
    assert.is_true(del < mean(rd), ("deletion %.4f vs random %.4f"):format(del, mean(rd)))
    assert.is_true(ins > mean(ri), ("insertion %.4f vs random %.4f"):format(ins, mean(ri)))
  end)

  if lumen.exists(FASHION) and lumen.exists(FASHION_DATA .. "/t10k-images-idx3-ubyte.gz") then
    it("Grad-CAM and (signed) saliency on the shipped Fashion-MNIST CNN delete faster than a random order", function()
      local model = lumen.load_model(FASHION)
      model:eval()
      local X = lumen.data.load_mnist(FASHION_DATA, "test")
      local auc = { gradcam = {}, saliency = {}, random = {} }
      for i = 1, 8 do
        local x = X:narrow(1, i * 100, 1)
        local cam = explain.gradcam(model, x)
        local sal = explain.saliency(model, x, { abs = false }) -- signed: evidence for the class first
        auc.gradcam[i] = explain.deletion(model, x, cam, { steps = 28 })
        auc.saliency[i] = explain.deletion(model, x, sal, { steps = 28 })
        local r = {}
        for k = 1, 3 do r[k] = explain.deletion(model, x, cam, { steps = 28, order = "random" }) end
        auc.random[i] = mean(r)
      end
      local g, s, r = mean(auc.gradcam), mean(auc.saliency), mean(auc.random)
      print(("fashion_cnn deletion AUC: grad-cam %.3f, saliency %.3f, random %.3f"):format(g, s, r))
      assert.is_true(g < r and s < r)
    end)
  else
    it("on the shipped Fashion-MNIST CNN", function()
      pending("needs " .. FASHION .. " (recipes/train_fashion_mnist.lua) and " .. FASHION_DATA)
    end)
  end

  describe("spearman()", function()
    it("is 1 for a monotone relation, -1 for a reversed one, and averages ties", function()
      local a = lumen.tensor { 1, 5, 2, 9 }
      assert.equal(1, faith.spearman(a, a:exp()))
      assert.is_true(math.abs(faith.spearman(a, -a) + 1) < 1e-12)
      -- ranks {1.5, 1.5, 3, 4} against {1, 2, 3, 4}: 4.5 / sqrt(4.5 * 5)
      local r = faith.spearman(lumen.tensor { 1, 1, 2, 3 }, lumen.tensor { 1, 2, 3, 4 })
      assert.is_true(math.abs(r - 4.5 / math.sqrt(4.5 * 5)) < 1e-12)
    end)
  end)

  describe("sanity_check()", function()
    local function cnn()
      return nn.Sequential {
        nn.Conv2d { in_channels = 1, out_channels = 4, kernel_size = 3, padding = 1, name = "conv1" }, nn.ReLU {},
        nn.Conv2d { in_channels = 4, out_channels = 4, kernel_size = 3, padding = 1, name = "conv2" }, nn.ReLU {},
        nn.Flatten {}, nn.Linear { in_features = 4 * 36, out_features = 3, name = "fc" } }
    end

    it("randomises cumulatively from the top layer down and restores the weights", function()
      local model = cnn()
      local x = lumen.rand { 1, 1, 6, 6 }
      local before = model:forward(x)
      local originals = {}
      for _, p in ipairs(model:parameters()) do originals[p.name] = lumen.tensor(p.tensor) end
      local changed, targets = {}, {}
      local function method(m, input, opts)
        local state = {} -- layer -> whether any of its tensors differs from the original
        for _, p in ipairs(m:parameters()) do
          local layer = p.name:match("^[^.]+")
          state[layer] = state[layer] or lumen.max_abs_diff(p.tensor, originals[p.name]) > 0
        end
        changed[#changed + 1] = state
        targets[#targets + 1] = opts.target
        return explain.saliency(m, input, opts)
      end
      local rows, maps, layers = explain.sanity_check(model, x, method)
      assert.same({ "fc", "conv2", "conv1" }, layers)
      assert.equal(3, #rows)
      assert.equal(4, #maps)
      assert.same({ conv1 = false, conv2 = false, fc = false }, changed[1])
      assert.same({ conv1 = false, conv2 = false, fc = true }, changed[2])
      assert.same({ conv1 = false, conv2 = true, fc = true }, changed[3])
      assert.same({ conv1 = true, conv2 = true, fc = true }, changed[4])
      for k = 2, 4 do assert.equal(targets[1], targets[k]) end -- the same class throughout
      for _, row in ipairs(rows) do assert.is_true(row.spearman >= -1 and row.spearman <= 1) end
      assert.is_true(rows[3].spearman < 0.9, "a fully random model gave the same map: " .. rows[3].spearman)
      assert.equal(0, lumen.max_abs_diff(model:forward(x), before))
    end)

    it("restores the weights when the method fails", function()
      local model = cnn()
      local x = lumen.rand { 1, 1, 6, 6 }
      local before = model:forward(x)
      local calls = 0
      assert.has_error(function()
        explain.sanity_check(model, x, function(m, input, opts)
          calls = calls + 1
          if calls == 3 then error("boom") end
          return explain.saliency(m, input, opts)
        end)
      end)
      assert.equal(0, lumen.max_abs_diff(model:forward(x), before))
    end)
  end)
end)
