-- Specs for the gradient methods of lumen.explain: saliency, SmoothGrad, Integrated Gradients, guided
-- backpropagation and deconvnet. Identities on linear models (where every method has a closed form),
-- completeness and the quadrature rule on a small nonlinear conv net, hand-computed guided and deconvnet
-- gradients of a ReLU MLP, batched forwards, and argument errors.
local lumen = require "lumen"
local support = require "support"
local assert_close = support.assert_close
local recording = support.recording
local nn = lumen.nn
local explain = lumen.explain

-- S(x) = W flatten(x) + b for x (N, 2, 3, 3): a lumen model and the same map as a plain function.
local function linear_model()
  lumen.seed(11)
  local model = nn.Sequential { nn.Flatten {}, nn.Linear { in_features = 18, out_features = 4, name = "fc" } }
  local W, b = model:layer("fc").weight:detach(), model:layer("fc").bias:detach()
  return model, function(batch) return lumen.linear(batch:flatten(2), W, b) end, W
end

-- Row c of W as a (1, 2, 3, 3) map: the input gradient of the linear model's score c.
local function row(W, c) return W:narrow(1, c, 1):reshape { 1, 2, 3, 3 } end

-- A small nonlinear conv net: (N, 3, 8, 8) -> (N, 3), fixed seeded weights.
local function conv_net()
  lumen.seed(5)
  return nn.Sequential {
    nn.Conv2d { in_channels = 3, out_channels = 4, kernel_size = 3, padding = 1 }, nn.ReLU {},
    nn.Conv2d { in_channels = 4, out_channels = 6, kernel_size = 3, padding = 1 }, nn.ReLU {},
    nn.GlobalAvgPool2d {}, nn.Linear { in_features = 6, out_features = 3 },
  }
end

describe("lumen.explain gradients", function()
  describe("saliency()", function()
    it("is the target's weight row on a linear model, signed or absolute, for a model or a function", function()
      local model, fn, W = linear_model()
      local x = lumen.randn { 1, 2, 3, 3 }
      local g, targets = explain.saliency(model, x, { target = 2, abs = false })
      assert.same({ 2 }, targets)
      assert_close(g, row(W, 2), 1e-6, "signed")
      assert_close(explain.saliency(fn, x, { target = 2, abs = false }), row(W, 2), 1e-6, "function")
      assert_close(explain.saliency(model, x, { target = 2 }), row(W, 2):abs(), 1e-6, "abs")
      local _, top = explain.saliency(model, x)
      assert.equal(lumen.argmax(fn(x), 2):get { 1 }, top[1])
    end)

    it("explains each sample of a batch with its own target", function()
      local model, _, W = linear_model()
      local g, targets = explain.saliency(model, lumen.randn { 2, 2, 3, 3 }, { target = { 3, 1 }, abs = false })
      assert.same({ 3, 1 }, targets)
      assert_close(g, lumen.cat({ row(W, 3), row(W, 1) }, 1), 1e-6, "batch")
    end)

    it("explains the score before a final softmax unless probabilities is set", function()
      local model, fn, W = linear_model()
      model:add(nn.Softmax {})
      local x = lumen.randn { 1, 2, 3, 3 }
      assert_close(explain.saliency(model, x, { target = 1, abs = false }), row(W, 1), 1e-6, "logit")
      -- d p_1 / dx = p_1 (W_1 - sum_k p_k W_k)
      local p = lumen.softmax(fn(x), 2)
      local expected = (row(W, 1) - lumen.matmul(p, W):reshape { 1, 2, 3, 3 }) * p:get { 1, 1 }
      assert_close(explain.saliency(model, x, { target = 1, abs = false, probabilities = true }), expected, 1e-6,
        "probability")
    end)

    it("differentiates the softmax of the scores with probabilities = true whatever the model ends in", function()
      local model, fn, W = linear_model() -- no softmax at the end, like the Fashion CNN
      local x = lumen.randn { 1, 2, 3, 3 }
      local p = lumen.softmax(fn(x), 2)
      local expected = (row(W, 1) - lumen.matmul(p, W):reshape { 1, 2, 3, 3 }) * p:get { 1, 1 }
      local opts = { target = 1, abs = false, probabilities = true }
      assert_close(explain.saliency(model, x, opts), expected, 1e-6, "model without softmax")
      assert_close(explain.saliency(fn, x, opts), expected, 1e-6, "plain function")
      local cnn = lumen.models.fashion_cnn {}
      cnn:eval()
      local img = lumen.rand { 1, 1, 28, 28 }
      local g_logit = explain.saliency(cnn, img, { target = 3, abs = false })
      local g_prob = explain.saliency(cnn, img, { target = 3, abs = false, probabilities = true })
      assert.is_true(lumen.max_abs_diff(g_logit, g_prob) > 1e-6, "probabilities change the gradient")
      local xg = img:detach()
      xg.requires_grad = true
      local want = lumen.grad(lumen.softmax(cnn:forward(xg), 2):narrow(2, 3, 1):sum(), xg)
      assert_close(g_prob, want, 1e-6, "d softmax(scores)_3 / dx")
    end)

    it("rejects a target out of range", function()
      local model = linear_model()
      assert.has_error(function() explain.saliency(model, lumen.randn { 1, 2, 3, 3 }, { target = 5 }) end,
        "saliency: target = 5 is out of range: the model has 4 classes (ids 1..4)")
    end)
  end)

  describe("smoothgrad()", function()
    it("equals the gradient of a linear model whatever the noise; its square and zero variance", function()
      local _, fn, W = linear_model()
      local x = lumen.randn { 1, 2, 3, 3 }
      local sg, target = explain.smoothgrad(fn, x, { target = 3, n = 20, noise = 0.5 })
      assert.equal(3, target)
      assert_close(sg, row(W, 3), 1e-5, "mean")
      local W3 = row(W, 3)
      assert_close(explain.smoothgrad(fn, x, { target = 3, n = 20, variant = "squared" }), W3 * W3, 1e-5, "squared")
      assert_close(explain.smoothgrad(fn, x, { target = 3, n = 20, variant = "vargrad" }), lumen.zeros_like(x), 1e-5,
        "vargrad")
    end)

    it("is the plain gradient without noise, differs with noise, and repeats with the seed", function()
      local model = conv_net()
      local x = lumen.randn { 1, 3, 8, 8 }
      local g, targets = explain.saliency(model, x, { abs = false })
      local sg0, target = explain.smoothgrad(model, x, { noise = 0, n = 4 })
      assert.equal(targets[1], target)
      assert_close(sg0, g, 1e-6, "noise 0")
      lumen.seed(1)
      local a = explain.smoothgrad(model, x, { n = 10 })
      lumen.seed(1)
      local b = explain.smoothgrad(model, x, { n = 10 })
      assert_close(a, b, 0, "same seed")
      assert.is_true(lumen.max_abs_diff(a, g) > 1e-4, "noise changes the map")
    end)

    it("runs its forwards in batches of batch_size", function()
      local _, fn = linear_model()
      local rec, sizes = recording(fn)
      explain.smoothgrad(rec, lumen.randn { 1, 2, 3, 3 }, { n = 25, batch_size = 10 })
      assert.same({ 1, 10, 10, 5 }, sizes) -- the top class, then the noisy copies
    end)

    it("rejects a batch of inputs and unknown variants", function()
      local _, fn = linear_model()
      assert.has_error(function() explain.smoothgrad(fn, lumen.randn { 2, 2, 3, 3 }) end,
        "smoothgrad: explain one input at a time (a batch of 1), got (2, 2, 3, 3)")
      assert.has_error(function() explain.smoothgrad(fn, lumen.randn { 1, 2, 3, 3 }, { variant = "max" }) end,
        "smoothgrad: variant must be 'mean', 'squared' or 'vargrad', got 'max'")
    end)
  end)

  describe("integrated_gradients()", function()
    it("is w * (x - baseline) on a linear model, with no gap", function()
      local _, fn, W = linear_model()
      local x, base = lumen.randn { 1, 2, 3, 3 }, lumen.randn { 1, 2, 3, 3 }
      local attr, gap, target = explain.integrated_gradients(fn, x, { target = 4, steps = 3, baseline = base })
      assert.equal(4, target)
      assert_close(attr, row(W, 4) * (x - base), 1e-5, "attribution")
      assert.is_true(math.abs(gap) < 1e-4, "gap " .. gap)
    end)

    it("uses the trapezoid rule: one step averages the gradients at the baseline and at x", function()
      local model = conv_net()
      local x, base = lumen.randn { 1, 3, 8, 8 }, lumen.randn { 1, 3, 8, 8 } * 0.5
      local gx = explain.saliency(model, x, { target = 2, abs = false })
      local gb = explain.saliency(model, base, { target = 2, abs = false })
      local attr = explain.integrated_gradients(model, x, { target = 2, steps = 1, baseline = base })
      assert_close(attr, (x - base) * (gx + gb) * 0.5, 1e-6, "one step")
    end)

    it("is complete within 1% at 128 steps on a nonlinear conv net", function()
      local model = conv_net()
      local x = lumen.randn { 1, 3, 8, 8 } * 4
      local change = lumen.no_grad(model.forward, model, x) - lumen.no_grad(model.forward, model, lumen.zeros_like(x))
      local target = lumen.argmax(change:abs(), 2):get { 1 } -- the class whose score moves most
      local delta = change:get { 1, target }
      assert.is_true(math.abs(delta) > 0.02, "the score must move along the path, moved " .. delta)
      local attr, gap = explain.integrated_gradients(model, x, { target = target, steps = 128, batch_size = 16 })
      assert.near(attr:sum_all() - delta, gap, 1e-4)
      assert.is_true(math.abs(gap) < 0.01 * math.abs(delta), ("gap %g for a change of %g"):format(gap, delta))
      -- The net is not linear on the path: gradient x input is not complete.
      local g = explain.saliency(model, x, { target = target, abs = false })
      local lin_gap = (g * x):sum_all() - delta
      assert.is_true(math.abs(lin_gap) > 10 * math.abs(gap), "gradient x input gap " .. lin_gap)
    end)

    it("runs batch_size path points per forward", function()
      local _, fn = linear_model()
      local rec, sizes = recording(fn)
      explain.integrated_gradients(rec, lumen.randn { 1, 2, 3, 3 }, { steps = 20, batch_size = 8 })
      assert.same({ 2, 8, 8, 5 }, sizes) -- x and the baseline, then 21 path points
    end)

    it("takes a blurred baseline", function()
      local model = conv_net()
      local x = lumen.randn { 1, 3, 8, 8 }
      local a = explain.integrated_gradients(model, x, { steps = 8, baseline = "blur", blur_sigma = 1 })
      local b = explain.integrated_gradients(model, x, { steps = 8, baseline = lumen.gaussian_blur(x, 1) })
      assert_close(a, b, 1e-6, "blur")
    end)

    it("rejects batches, mismatched baselines and bad step counts", function()
      local _, fn = linear_model()
      local x = lumen.randn { 1, 2, 3, 3 }
      assert.has_error(function() explain.integrated_gradients(fn, lumen.randn { 3, 2, 3, 3 }) end,
        "integrated_gradients: explain one input at a time (a batch of 1), got (3, 2, 3, 3)")
      assert.has_error(function() explain.integrated_gradients(fn, x, { baseline = lumen.zeros { 1, 18 } }) end,
        "integrated_gradients: baseline shape (1, 18) differs from input (1, 2, 3, 3)")
      assert.has_error(function() explain.integrated_gradients(fn, x, { steps = 0 }) end,
        "integrated_gradients: steps must be an integer >= 1, got 0")
    end)
  end)

  describe("guided_backprop() and deconvnet()", function()
    -- x (1, 5) -> l1 -> relu -> l2 -> relu -> l3 -> (1, 3). Returns the model, x and its parts.
    local function mlp(act)
      lumen.seed(7)
      act = act or nn.ReLU
      local model = nn.Sequential {
        nn.Linear { in_features = 5, out_features = 6, name = "l1" }, act {},
        nn.Linear { in_features = 6, out_features = 6, name = "l2" }, act {},
        nn.Linear { in_features = 6, out_features = 3, name = "l3" },
      }
      return model, lumen.randn { 1, 5 }
    end

    -- The input gradient of score c, by hand: through each ReLU pass rule(g) where its input was
    -- positive (mask = true) or everywhere (mask = false). Also returns the gradients that reach the
    -- two ReLUs under the vanilla rule.
    local function by_hand(model, x, c, rule, mask)
      local W = {}
      for _, n in ipairs { "l1", "l2", "l3" } do W[n] = model:layer(n).weight:detach() end
      local _, acts = lumen.no_grad(model.forward, model, x, { capture = { "l1", "l2" } })
      local m1, m2 = acts.l1:gt(0), acts.l2:gt(0)
      local function through(g, m) g = rule(g); return mask and g * m or g end
      local g2 = through(W.l3:narrow(1, c, 1), m2)   -- (1, 6) at the output of relu 2
      local g1 = through(lumen.matmul(g2, W.l2), m1) -- (1, 6) at the output of relu 1
      return lumen.matmul(g1, W.l1)
    end
    local id = function(g) return g end
    local relu = function(g) return g:relu() end

    it("passes only positive gradients through each ReLU, where its input was positive", function()
      local model, x = mlp()
      local _, acts = lumen.no_grad(model.forward, model, x, { capture = { "l1", "l2" } })
      -- Preconditions: negative gradients flow through both ReLUs under the vanilla rule.
      local g2 = model:layer("l3").weight:detach():narrow(1, 1, 1) * acts.l2:gt(0)
      assert.is_true(g2:min_all() < 0, "a negative gradient passes relu 2")
      assert.is_true((lumen.matmul(g2, model:layer("l2").weight:detach()) * acts.l1:gt(0)):min_all() < 0,
        "a negative gradient passes relu 1")
      local g, targets = explain.guided_backprop(model, x, { target = 1 })
      assert.same({ 1 }, targets)
      assert_close(g, by_hand(model, x, 1, relu, true), 1e-6, "guided")
      local vanilla = explain.saliency(model, x, { target = 1, abs = false })
      assert_close(vanilla, by_hand(model, x, 1, id, true), 1e-6, "vanilla")
      assert.is_true(lumen.max_abs_diff(g, vanilla) > 1e-3, "guided differs from the vanilla gradient")
    end)

    it("deconvnet passes ReLU(gradient) whatever the forward input", function()
      local model, x = mlp()
      assert_close(explain.deconvnet(model, x, { target = 2 }), by_hand(model, x, 2, relu, false), 1e-6, "deconvnet")
    end)

    it("leaves the model's own backward rules in place afterwards", function()
      local model, x = mlp()
      explain.guided_backprop(model, x)
      assert_close(explain.saliency(model, x, { target = 1, abs = false }), by_hand(model, x, 1, id, true), 1e-6,
        "vanilla after guided")
    end)

    it("treats ReLU6 like ReLU below 6", function()
      local model, x = mlp(nn.ReLU6)
      local _, acts = lumen.no_grad(model.forward, model, x, { capture = { "l1", "l2" } })
      assert.is_true(acts.l1:max_all() < 6 and acts.l2:max_all() < 6)
      assert_close(explain.guided_backprop(model, x, { target = 3 }), by_hand(model, x, 3, relu, true), 1e-6,
        "guided relu6")
    end)
  end)
end)
