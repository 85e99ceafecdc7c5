-- Specs for lumen.optim: SGD and Adam against PyTorch's numbers, schedules, fit and evaluate.
local lumen = require "lumen"
local optim = lumen.optim
local nn = lumen.nn

-- Three steps on p = {1, -2, 3} with fixed gradients; returns p as a table.
local function run(make)
  local p = lumen.tensor { 1, -2, 3 }
  p.requires_grad = true
  local opt = make { p }
  for _, g in ipairs { { 0.1, -0.2, 0.3 }, { -0.5, 0.4, 0.0 }, { 0.2, 0.2, -0.1 } } do
    opt:zero_grad()
    p.grad = lumen.tensor(g)
    opt:step()
  end
  return p:totable()
end

local function near(expected, got, tol)
  for i = 1, #expected do
    if math.abs(expected[i] - got[i]) > (tol or 1e-6) then
      error(("element %d: expected %.7f, got %.7f"):format(i, expected[i], got[i]), 2)
    end
  end
end

describe("lumen.optim", function()
  -- Reference values from torch.optim (PyTorch 1.13) on the same steps.
  it("SGD with momentum matches PyTorch", function()
    near({ 1.0375, -2.0450001, 2.9575 }, run(function(ps) return optim.SGD(ps, { lr = 0.1, momentum = 0.5 }) end))
  end)

  it("SGD with Nesterov momentum and weight decay matches PyTorch", function()
    near({ 1.0549973, -2.0616112, 2.8920333 }, run(function(ps)
      return optim.SGD(ps, { lr = 0.1, momentum = 0.9, nesterov = true, weight_decay = 0.01 })
    end))
  end)

  it("Adam matches PyTorch", function()
    near({ 0.9746406, -1.9773517, 2.7845819 }, run(function(ps)
      return optim.Adam(ps, { lr = 0.1, betas = { 0.9, 0.99 }, eps = 1e-8, weight_decay = 0.01 })
    end))
  end)

  it("updates parameters in place and skips frozen ones", function()
    local m = nn.Sequential { nn.Embedding { num_embeddings = 3, embedding_dim = 2, trainable = false },
                              nn.Linear { in_features = 2, out_features = 2 } }
    local opt = optim.SGD(m, { lr = 1 })
    assert.equal(2, #opt.params)
    local w = m.modules[2].weight
    local before = w:clone()
    local out = m:forward(lumen.tensor({ 1, 2 }, "int64"))
    out:sum():backward()
    opt:step()
    assert.equal(w, m.modules[2].weight)
    assert.is_true(lumen.max_abs_diff(w, before - w.grad) < 1e-6)
    assert.is_nil(m.modules[1].weight.grad)
  end)

  it("step and cosine schedules", function()
    local s = optim.step_schedule(0.1, 2, 0.5)
    assert.equal(0.1, s(0)); assert.equal(0.1, s(1.9)); assert.equal(0.05, s(2)); assert.equal(0.025, s(4.5))
    local c = optim.cosine_schedule(0.1, 10, 0.001)
    assert.is_true(math.abs(c(0) - 0.1) < 1e-12)
    assert.is_true(math.abs(c(5) - 0.0505) < 1e-12)
    assert.is_true(math.abs(c(10) - 0.001) < 1e-12)
    assert.is_true(math.abs(c(12) - 0.001) < 1e-12)
  end)

  describe("fit and evaluate", function()
    -- Two Gaussian blobs in 2-D, classes 1 and 2.
    local function blobs(n)
      local x = lumen.randn { n, 2 }
      local y = {}
      for i = 1, n do y[i] = i % 2 + 1 end
      local yt = lumen.tensor(y, "int64")
      local shift = (yt:float() * 2 - 3):view { n, 1 } * 2 -- -2 for class 1, +2 for class 2
      return x + shift, yt
    end

    it("lowers the loss and separates two blobs", function()
      lumen.seed(5)
      local X, y = blobs(200)
      local m = nn.Sequential { nn.Linear { in_features = 2, out_features = 8, activation = "relu" },
                                nn.Linear { in_features = 8, out_features = 2 } }
      local loss0, acc0 = optim.evaluate(m, X, y, { batch_size = 64 })
      local hist = optim.fit(m, { X = X, y = y }, { epochs = 5, batch_size = 20, progress = false,
                                                    optimizer = optim.Adam(m, { lr = 0.05 }) })
      local loss1, acc1 = optim.evaluate(m, X, y, { batch_size = 64 })
      assert.is_true(loss1 < loss0 / 2)
      assert.is_true(acc1 > 0.95)
      assert.is_true(hist.loss[5] < hist.loss[1])
      assert.equal(5, #hist.accuracy)
      assert.is_true(acc0 <= 1)
    end)

    it("evaluate computes the mean loss and the accuracy exactly", function()
      local m = nn.Sequential { nn.Linear { in_features = 2, out_features = 2, bias = false } }
      m.modules[1].weight:copy_(lumen.tensor { { 1, 0 }, { 0, 1 } })
      local X = lumen.tensor { { 2, 0 }, { 0, 2 }, { 2, 0 } }
      local y = lumen.tensor({ 1, 2, 2 }, "int64")
      local loss, acc = optim.evaluate(m, X, y, { batch_size = 2 })
      local l1 = math.log(1 + math.exp(-2))
      assert.is_true(math.abs(loss - (2 * l1 + (2 + l1)) / 3) < 1e-5)
      assert.is_true(math.abs(acc - 2 / 3) < 1e-12)
    end)
  end)
end)
