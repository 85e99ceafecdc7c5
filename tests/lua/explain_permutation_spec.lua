-- Specs for lumen.explain.permutation_importance: ignored features score 0, the drop equals a hand-made
-- shuffle, groups of pixels (patches) and of token positions (windows), metrics.
local lumen = require "lumen"
local nn = lumen.nn
local explain = lumen.explain
local permutation = require "lumen.explain.permutation"

local function labels(f, X)
  local idx = lumen.argmax(f(X), 2)
  local y = {}
  for i = 1, X.shape[1] do y[i] = idx:get { i } end
  return y
end

describe("lumen.explain.permutation_importance", function()
  before_each(function() lumen.seed(21) end)

  local w = lumen.tensor { { 2, -1, 0, 0.5 }, { -1, 2, 0, 0.3 }, { 0.5, 0.5, 0, -2 } } -- feature 3 ignored
  local f = function(t) return lumen.linear(t, w) end

  it("gives exactly 0 (and no spread) to a feature the model ignores", function()
    local X = lumen.randn { 200, 4 }
    local y = labels(f, X)
    local mean, std, base = explain.permutation_importance(f, X, y, { repeats = 4, batch_size = 64 })
    assert.equal(1, base)
    assert.equal(0, mean[3])
    assert.equal(0, std[3])
    for _, j in ipairs { 1, 2, 4 } do assert.is_true(mean[j] > 0.05, ("feature %d: %g"):format(j, mean[j])) end
    assert.is_true(std[1] > 0) -- different shuffles, different drops
  end)

  it("measures the metric drop of shuffling one column across rows", function()
    local X = lumen.randn { 60, 4 }
    local y = lumen.tensor(labels(f, X), "int64")
    lumen.seed(5)
    local mean, _, base = explain.permutation_importance(f, X, y, { repeats = 1, metric = "neg_loss" })
    -- by hand: the first permutation drawn belongs to feature 1
    lumen.seed(5)
    local perm = lumen.randperm(60)
    local Xp = lumen.tensor(X)
    for i = 1, 60 do Xp:set({ i, 1 }, X:get { perm[i], 1 }) end
    local function neg_loss(t) return -lumen.cross_entropy(f(t), y):item() end
    assert.is_true(math.abs(base - neg_loss(X)) < 1e-6)
    assert.is_true(math.abs(mean[1] - (neg_loss(X) - neg_loss(Xp))) < 1e-5)
  end)

  it("accepts a metric function", function()
    local X = lumen.randn { 30, 4 }
    local calls = 0
    local mean, _, base = explain.permutation_importance(f, X, labels(f, X), {
      repeats = 2, metric = function(scores, y) calls = calls + 1; return scores:narrow(2, 1, 1):mean_all() end })
    assert.equal(1 + 4 * 2, calls)
    assert.is_true(math.abs(base - f(X):narrow(2, 1, 1):mean_all()) < 1e-6)
    assert.is_true(math.abs(mean[3]) < 1e-6)
  end)

  it("scores image patches: only the patch the model reads matters", function()
    local wi = lumen.randn { 3, 1, 4, 4 }:pad({ 0, 4, 0, 4 }) -- (3, 1, 8, 8): reads the top-left 4x4 only
    local model = function(t) return lumen.linear(t:reshape { t.shape[1], 64 }, wi:reshape { 3, 64 }) end
    local X = lumen.randn { 80, 1, 8, 8 }
    local map = permutation.patches(8, 8, 4)
    assert.same({ { 1, 1, 1, 1, 2, 2, 2, 2 } }, map:narrow(1, 1, 1):totable())
    assert.equal(4, map:get { 8, 8 })
    local mean = explain.permutation_importance(model, X, labels(model, X), { features = map, repeats = 2 })
    assert.equal(4, #mean)
    assert.is_true(mean[1] > 0.1)
    assert.same({ 0, 0, 0 }, { mean[2], mean[3], mean[4] })
  end)

  it("scores token-position windows of a text model", function()
    local model = nn.Sequential { nn.Embedding { num_embeddings = 10, embedding_dim = 3 }, nn.Flatten {},
                                  nn.Linear { in_features = 18, out_features = 2 } }
    local lw = model:parameters()[2].tensor -- (2, 18): positions 4..6 (columns 10..18) ignored
    for o = 1, 2 do
      for c = 10, 18 do lw:set({ o, c }, 0) end
    end
    local rows = {}
    for i = 1, 100 do
      rows[i] = {}
      for t = 1, 6 do rows[i][t] = lumen.randint(10) end
    end
    local X = lumen.tensor(rows, "int64")
    local y = labels(function(t) return model:forward(t) end, X)
    local mean = explain.permutation_importance(model, X, y, { features = permutation.windows(6, 3), repeats = 3 })
    assert.equal(2, #mean)
    assert.is_true(mean[1] > 0.1)
    assert.equal(0, mean[2])
  end)

  it("checks the labels", function()
    assert.has_error(function() explain.permutation_importance(f, lumen.randn { 5, 4 }, { 1, 2 }) end)
  end)
end)
