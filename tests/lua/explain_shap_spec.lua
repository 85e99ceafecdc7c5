-- Specs for lumen.explain.kernel_shap (KernelSHAP) and lumen.explain.gradient_shap (expected gradients):
-- exact Shapley values against brute-force enumeration, efficiency, the linear closed form, dummies.
local lumen = require "lumen"
local nn = lumen.nn
local explain = lumen.explain

-- v(S) = mean_b f_c(x on S, b elsewhere) for every subset S of the m feature groups of x (1, D), by
-- brute force; returns the Shapley values phi_j = sum_S |S|!(m-|S|-1)!/m! (v(S+j) - v(S)).
local function brute_shapley(f, x, bg, groups, m, c)
  local D, K = x.shape[2], bg.shape[1]
  local v = {}
  for code = 0, (1 << m) - 1 do
    local rows = {}
    for k = 1, K do
      local row = {}
      for d = 1, D do
        local on = (code >> (groups[d] - 1)) & 1 == 1
        row[d] = on and x:get { 1, d } or bg:get { k, d }
      end
      rows[k] = row
    end
    local input = lumen.tensor(rows, x:dtype())
    local s = lumen.no_grad(f, input)
    local acc = 0
    for k = 1, K do acc = acc + s:get { k, c } end
    v[code] = acc / K
  end
  local fact = function(n) local r = 1; for i = 2, n do r = r * i end; return r end
  local phi = {}
  for j = 1, m do
    local bit, total = 1 << (j - 1), 0
    for code = 0, (1 << m) - 1 do
      if code & bit == 0 then
        local s = 0
        for i = 1, m do s = s + ((code >> (i - 1)) & 1) end
        total = total + fact(s) * fact(m - s - 1) / fact(m) * (v[code | bit] - v[code])
      end
    end
    phi[j] = total
  end
  return phi, v[(1 << m) - 1] - v[0]
end

local function mlp(din, dout)
  return nn.Sequential { nn.Linear { in_features = din, out_features = 8 }, nn.ReLU {},
                         nn.Linear { in_features = 8, out_features = dout } }
end

local function sum(t) local s = 0; for _, v in ipairs(t) do s = s + v end; return s end

describe("lumen.explain.kernel_shap", function()
  before_each(function() lumen.seed(3) end)

  it("equals brute-force Shapley values when the enumeration is exact, and a dummy feature gets 0", function()
    local model = mlp(6, 3)
    local w1 = model:parameters()[1].tensor -- (8, 6): feature 6 is ignored
    for i = 1, 8 do w1:set({ i, 6 }, 0) end
    local x, bg = lumen.randn { 1, 6 }, lumen.randn { 3, 6 }
    local want, gap = brute_shapley(function(t) return model:forward(t) end, x, bg, { 1, 2, 3, 4, 5, 6 }, 6, 2)
    local phi, base, values, target = explain.kernel_shap(model, x, { target = 2, background = bg, nsamples = 62 })
    assert.equal(2, target)
    assert.same({ 1, 6 }, phi.shape)
    for j = 1, 6 do
      assert.is_true(math.abs(values[j] - want[j]) < 1e-5,
        ("phi[%d] = %.7f, Shapley %.7f"):format(j, values[j], want[j]))
      assert.is_true(math.abs(phi:get { 1, j } - values[j]) < 1e-6)
    end
    assert.is_true(math.abs(values[6]) < 1e-6, "the ignored feature got " .. values[6])
    assert.is_true(math.abs(sum(want) - gap) < 1e-6) -- the reference itself is efficient
    local fb = lumen.no_grad(function() return model:forward(bg) end)
    assert.is_true(math.abs(base - (fb:get { 1, 2 } + fb:get { 2, 2 } + fb:get { 3, 2 }) / 3) < 1e-6)
  end)

  it("gives each feature group its Shapley value and spreads it over the group's elements", function()
    local model = mlp(6, 2)
    local x, bg = lumen.randn { 1, 6 }, lumen.randn { 2, 6 }
    local groups = { 1, 1, 2, 3, 3, 2 }
    local want = brute_shapley(function(t) return model:forward(t) end, x, bg, groups, 3, 1)
    local phi, _, values = explain.kernel_shap(model, x,
      { target = 1, background = bg, features = lumen.tensor(groups, "int64") })
    assert.equal(3, #values)
    for d = 1, 6 do
      local j = groups[d]
      assert.is_true(math.abs(values[j] - want[j]) < 1e-5, ("group %d: %.7f vs %.7f"):format(j, values[j], want[j]))
      assert.is_true(math.abs(phi:get { 1, d } - want[j]) < 1e-5)
    end
  end)

  it("switches token ids against the padding id and keeps them int64", function()
    local model = nn.Sequential { nn.Embedding { num_embeddings = 9, embedding_dim = 3 }, nn.Flatten {},
                                  nn.Linear { in_features = 12, out_features = 2 }, nn.Tanh {} }
    local ids = lumen.tensor({ { 4, 7, 2, 9 } }, "int64")
    local want = brute_shapley(function(t) return model:forward(t) end, ids, lumen.full_like(ids, 1),
                               { 1, 2, 3, 4 }, 4, 2)
    local _, _, values = explain.kernel_shap(model, ids, { target = 2 })
    for j = 1, 4 do assert.is_true(math.abs(values[j] - want[j]) < 1e-5) end
  end)

  it("holds efficiency to float precision with sampled coalitions", function()
    local model = mlp(12, 2)
    local x, bg = lumen.randn { 1, 12 }, lumen.randn { 4, 12 }
    local _, base, values, target = explain.kernel_shap(model, x, { background = bg, nsamples = 300 })
    local fx = lumen.no_grad(function() return model:forward(x) end):get { 1, target }
    assert.is_true(math.abs(sum(values) - (fx - base)) < 1e-9 * math.max(1, math.abs(fx)),
      ("sum(phi) = %.12f, f(x) - E f(b) = %.12f"):format(sum(values), fx - base))
  end)

  it("gives phi_i = w_i (x_i - b_i) for a linear function and one baseline, also when sampling", function()
    local D = 20 -- 2^20 - 2 coalitions: the sampled path
    local w, bias = lumen.randn { 3, D }, lumen.randn { 3 }
    local f = function(t) return lumen.linear(t, w, bias) end
    local x, b = lumen.randn { 1, D }, lumen.randn { 1, D }
    local phi, base = explain.kernel_shap(f, x, { target = 3, baseline = b, nsamples = 400 })
    local want = w:narrow(1, 3, 1) * (x - b)
    assert.is_true(lumen.max_abs_diff(phi, want) < 1e-4, "max diff " .. lumen.max_abs_diff(phi, want))
    assert.is_true(math.abs(base - f(b):get { 1, 3 }) < 1e-6)
  end)

  it("uses superpixels as image features", function()
    local model = nn.Sequential { nn.Conv2d { in_channels = 3, out_channels = 4, kernel_size = 3, padding = 1 },
                                  nn.ReLU {}, nn.GlobalAvgPool2d {}, nn.Linear { in_features = 4, out_features = 2 } }
    local x = lumen.rand { 1, 3, 16, 16 }
    local phi, base, values, target = explain.kernel_shap(model, x, { features = "superpixels", n_segments = 6 })
    local seg = require("lumen.explain.features").superpixels(x, { n_segments = 6 })
    assert.is_true(#values >= 2 and #values <= 12)
    for i = 1, 16 do
      for j = 1, 16 do
        assert.is_true(math.abs(phi:get { 1, 2, i, j } - values[seg:get { i, j }]) < 1e-6)
      end
    end
    local fx = lumen.no_grad(function() return model:forward(x) end):get { 1, target }
    assert.is_true(math.abs(sum(values) - (fx - base)) < 1e-9)
  end)

  it("explains one input at a time", function()
    assert.has_error(function() explain.kernel_shap(mlp(3, 2), lumen.randn { 2, 3 }) end)
  end)
end)

describe("lumen.explain.gradient_shap", function()
  before_each(function() lumen.seed(5) end)

  it("is (x - E b) * w for a linear function", function()
    local w = lumen.randn { 2, 5 }
    local f = function(t) return lumen.linear(t, w) end
    local x, bg = lumen.randn { 1, 5 }, lumen.randn { 1, 5 }
    local attr, target = explain.gradient_shap(f, x, { background = bg, target = 1, n = 7 })
    assert.equal(1, target)
    assert.is_true(lumen.max_abs_diff(attr, w:narrow(1, 1, 1) * (x - bg)) < 1e-5)
  end)

  it("is complete in expectation: sum attr ≈ f(x) - E f(b) on a nonlinear model", function()
    local model = mlp(4, 2)
    local x, bg = lumen.randn { 1, 4 }, lumen.randn { 3, 4 }
    local attr, target = explain.gradient_shap(model, x, { background = bg, n = 600, batch_size = 100 })
    local fx = lumen.no_grad(function() return model:forward(x) end):get { 1, target }
    local fb = lumen.no_grad(function() return model:forward(bg) end)
    local gap = fx - (fb:get { 1, target } + fb:get { 2, target } + fb:get { 3, target }) / 3
    assert.is_true(math.abs(attr:sum_all() - gap) < 0.05 * math.abs(gap) + 0.02,
      ("sum %.4f vs gap %.4f"):format(attr:sum_all(), gap))
  end)
end)
