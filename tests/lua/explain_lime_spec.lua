-- Specs for lumen.explain.lime: recovering linear models (tabular, segments, tokens), the fit's R^2,
-- same seed -> same bytes, and lime_picture.
local lumen = require "lumen"
local nn = lumen.nn
local explain = lumen.explain
local lime = require "lumen.explain.lime"

local EXACT = { kernel = "uniform", ridge = 0, num_samples = 200 }
local function with(t, extra)
  local r = {}
  for k, v in pairs(t) do r[k] = v end
  for k, v in pairs(extra) do r[k] = v end
  return r
end

describe("lumen.explain.lime", function()
  before_each(function() lumen.seed(9) end)

  describe("with a uniform kernel and no ridge, recovers a linear model's coefficients", function()
    local w, b = lumen.randn { 3, 5 }, lumen.randn { 3 }
    local f = function(t) return lumen.linear(t, w, b) end
    local x = lumen.randn { 1, 5 }

    it("sampling around a tabular instance (scale 1)", function()
      local weights, ids, r2, intercept, target = explain.lime(f, x, with(EXACT, { target = 2 }))
      assert.equal(2, target)
      assert.same({ 1, 5 }, ids.shape)
      for j = 1, 5 do
        assert.is_true(math.abs(weights[j] - w:get { 2, j }) < 1e-4,
          ("w[%d] %.6f vs %.6f"):format(j, weights[j], w:get { 2, j }))
      end
      assert.is_true(math.abs(intercept - f(x):get { 1, 2 }) < 1e-4) -- offsets are 0 at x
      assert.is_true(r2 > 1 - 1e-6)
    end)

    it("in units of the data's standard deviation", function()
      local data = lumen.randn { 50, 5 } * lumen.tensor { { 1, 2, 3, 0.5, 4 } }
      local weights = explain.lime(f, x, with(EXACT, { target = 1, data = data }))
      local sd = data:std(1, false)
      for j = 1, 5 do assert.is_true(math.abs(weights[j] - w:get { 1, j } * sd:get { j }) < 1e-3) end
    end)

    it("switching segments of an image off to a constant", function()
      local wi = lumen.randn { 2, 36 }
      local g = function(t) return lumen.linear(t:reshape { t.shape[1], 36 }, wi) end
      local img = lumen.rand { 1, 1, 6, 6 }
      local seg = lumen.tensor({ { 1, 1, 1, 2, 2, 2 }, { 1, 1, 1, 2, 2, 2 }, { 1, 1, 1, 2, 2, 2 },
                                 { 3, 3, 3, 4, 4, 4 }, { 3, 3, 3, 4, 4, 4 }, { 4, 4, 4, 4, 4, 4 } }, "int64")
      local weights, segments = explain.lime(g, img, with(EXACT, { target = 1, segments = seg, fill = 0.5 }))
      assert.equal(seg, segments)
      local want = { 0, 0, 0, 0 }
      for e = 1, 36 do
        local k = seg:flat_get(e)
        want[k] = want[k] + wi:get { 1, e } * (img:flat_get(e) - 0.5)
      end
      for k = 1, 4 do assert.is_true(math.abs(weights[k] - want[k]) < 1e-4, ("segment %d"):format(k)) end
      -- the mean-colour fill: each segment switched off to its own mean
      local wm = explain.lime(g, img, with(EXACT, { target = 1, segments = seg }))
      for k = 1, 4 do
        local sum, cnt, sw = 0, 0, 0
        for e = 1, 36 do
          if seg:flat_get(e) == k then sum, cnt = sum + img:flat_get(e), cnt + 1 end
        end
        for e = 1, 36 do
          if seg:flat_get(e) == k then sw = sw + wi:get { 1, e } * (img:flat_get(e) - sum / cnt) end
        end
        assert.is_true(math.abs(wm[k] - sw) < 1e-4, ("mean fill, segment %d"):format(k))
      end
    end)

    it("switching words off to the padding id", function()
      local model = nn.Sequential { nn.Embedding { num_embeddings = 12, embedding_dim = 4 }, nn.Flatten {},
                                    nn.Linear { in_features = 20, out_features = 3 } }
      local ids = lumen.tensor({ { 5, 11, 3, 8, 2 } }, "int64")
      local weights = explain.lime(model, ids, with(EXACT, { target = 3 }))
      local fx = model:forward(ids):get { 1, 3 }
      for t = 1, 5 do
        local off = lumen.tensor(ids)
        off:set({ 1, t }, 1)
        local want = fx - model:forward(off):get { 1, 3 }
        assert.is_true(math.abs(weights[t] - want) < 1e-4, ("token %d: %.6f vs %.6f"):format(t, weights[t], want))
      end
    end)
  end)

  it("reports a weighted R^2 near 1 for a linear model and lower for a non-linear one", function()
    local w = lumen.randn { 2, 4 }
    local x = lumen.randn { 1, 4 }
    local _, _, r2 = explain.lime(function(t) return lumen.linear(t, w) end, x, { num_samples = 300 })
    assert.is_true(r2 > 0.99, "linear r2 " .. r2)
    local _, _, r2n = explain.lime(function(t) return lumen.linear(t:square() * 3, w) end, x, { num_samples = 300 })
    assert.is_true(r2n < 0.9, "quadratic r2 " .. r2n)
  end)

  it("gives the same bytes for the same seed on an image (SLIC superpixels, mean fill)", function()
    local model = nn.Sequential { nn.Conv2d { in_channels = 3, out_channels = 4, kernel_size = 3 }, nn.ReLU {},
                                  nn.GlobalAvgPool2d {}, nn.Linear { in_features = 4, out_features = 3 } }
    local img = lumen.rand { 1, 3, 20, 20 }
    local function run(seed)
      lumen.seed(seed)
      local weights, seg, r2 = explain.lime(model, img, { num_samples = 120, n_segments = 8 })
      local parts = { ("%a"):format(r2) }
      for j, v in ipairs(weights) do parts[j + 1] = ("%a"):format(v) end
      return table.concat(parts, ","), seg
    end
    local a, seg_a = run(42)
    local b, seg_b = run(42)
    assert.equal(a, b)
    assert.is_true(lumen.max_abs_diff(seg_a:float(), seg_b:float()) == 0)
    assert.are_not.equal(a, (run(43))) -- the samples do depend on the seed
  end)

  it("draws the top positive segments green and the top negative ones red", function()
    local img = lumen.full({ 3, 10, 10 }, 0.5)
    local rows = {}
    for i = 1, 10 do
      rows[i] = {}
      for j = 1, 10 do rows[i][j] = (i > 5 and 2 or 0) + (j > 5 and 2 or 1) end
    end
    local seg = lumen.tensor(rows, "int64") -- quadrants 1 2 / 3 4
    local pic = lime.lime_picture(img, seg, { 0.9, -0.7, 0.1, -0.05 }, { num = 1 })
    assert.same({ 3, 10, 10 }, pic.shape)
    local function rgb(i, j) return pic:get { 1, i, j }, pic:get { 2, i, j }, pic:get { 3, i, j } end
    local r, g = rgb(2, 2)
    assert.is_true(g > r, "segment 1 (most positive) should be green")
    r, g = rgb(2, 9)
    assert.is_true(r > g, "segment 2 (most negative) should be red")
    local r3, g3, b3 = rgb(9, 2) -- segment 3: not among the top 1 of either sign
    assert.is_true(math.abs(r3 - 0.5) < 1e-6 and math.abs(g3 - 0.5) < 1e-6 and math.abs(b3 - 0.5) < 1e-6)
  end)
end)
