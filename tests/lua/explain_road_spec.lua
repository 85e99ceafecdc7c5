-- Specs for lumen.explain.road (ROAD, Rong et al. 2022): the noisy linear imputation holds its
-- defining equations and agrees with a dense solve of the authors' system (tools/ref_road.py,
-- tests/fixtures/road/), the MoRF / LeRF curves agree with the transcribed reference on a linear
-- model, and on a model that looks at one region only a map of that region scores perfectly.
local lumen = require "lumen"
local explain = lumen.explain
local support = require "support"

local FIX = "tests/fixtures/road/"

-- The in-image neighbours' weighted mean at (i, j) of plane c of y (1, C, H, W).
local W8 = { { -1, -1, 1 / 12 }, { -1, 0, 1 / 6 }, { -1, 1, 1 / 12 }, { 0, -1, 1 / 6 }, { 0, 1, 1 / 6 },
             { 1, -1, 1 / 12 }, { 1, 0, 1 / 6 }, { 1, 1, 1 / 12 } }
local function neighbour_mean(y, c, i, j)
  local H, W = y.shape[3], y.shape[4]
  local s, ws = 0, 0
  for _, d in ipairs(W8) do
    local a, b = i + d[1], j + d[2]
    if a >= 1 and a <= H and b >= 1 and b <= W then s, ws = s + d[3] * y:get { 1, c, a, b }, ws + d[3] end
  end
  return s / ws
end

-- A plain-function model: scores (N, 2) = {mean of x over the region (rows r1..r2, cols c1..c2), 0}.
local function region_model(r1, r2, c1, c2)
  return function(t)
    local n = t.shape[1]
    local s = t:narrow(3, r1, r2 - r1 + 1):narrow(4, c1, c2 - c1 + 1):mean({ 2, 3, 4 }):reshape { n, 1 }
    return lumen.cat({ s, lumen.zeros { n, 1 } }, 2)
  end
end

describe("lumen.explain.road", function()
  before_each(function() lumen.seed(5) end)

  describe("impute()", function()
    it("keeps the kept pixels and gives each removed one the weighted mean of its neighbours", function()
      local x = lumen.rand { 1, 2, 9, 11 }
      local keep = lumen.bernoulli({ 9, 11 }, 0.4)
      local y = explain.road_impute(x, keep, { noise = 0 })
      assert.same({ 1, 2, 9, 11 }, y.shape)
      local worst = 0
      for c = 1, 2 do
        for i = 1, 9 do
          for j = 1, 11 do
            if keep:get { i, j } == 1 then
              assert.equal(x:get { 1, c, i, j }, y:get { 1, c, i, j })
            else
              worst = math.max(worst, math.abs(y:get { 1, c, i, j } - neighbour_mean(y, c, i, j)))
            end
          end
        end
      end
      assert(worst < 1e-5, "largest violation of the mean-value equation: " .. worst)
    end)

    it("fills a hole in a linear ramp with the ramp, and a picture with nothing kept with 0", function()
      local x = lumen.zeros { 1, 1, 12, 12 }
      for i = 1, 12 do for j = 1, 12 do x:set({ 1, 1, i, j }, 0.3 + 0.05 * i - 0.02 * j) end end
      local keep = lumen.ones { 12, 12 }
      keep:fill_box_({ 3, 4 }, { 7, 6 }, 0)
      support.assert_close(explain.road_impute(x, keep, { noise = 0 }), x, 1e-5, "ramp")
      local none = explain.road_impute(x, lumen.zeros { 12, 12 }, { noise = 0 })
      assert.equal(0, none:abs():max_all())
    end)

    it("agrees with a dense solve of the reference's linear system (tools/ref_road.py)", function()
      local y = explain.road_impute(support.npy(FIX .. "x.npy"), support.npy(FIX .. "keep.npy"), { noise = 0 })
      support.assert_close(y, support.npy(FIX .. "imputed.npy"), 2e-5, "imputation")
    end)

    it("adds N(0, noise^2) to the removed pixels only, the same numbers for the same seed", function()
      local x = lumen.rand { 1, 1, 40, 40 }
      local keep = lumen.bernoulli({ 40, 40 }, 0.5)
      local clean = explain.road_impute(x, keep, { noise = 0 })
      lumen.seed(11)
      local noisy = explain.road_impute(x, keep, { noise = 0.1 })
      lumen.seed(11)
      assert.equal(0, lumen.max_abs_diff(noisy, explain.road_impute(x, keep, { noise = 0.1 })))
      local d = (noisy - clean) * (1 - keep)
      assert.equal(0, ((noisy - clean) * keep):abs():max_all())
      local n = (1 - keep):sum_all()
      local sd = math.sqrt(lumen.dot64(d, d) / n)
      assert(math.abs(sd - 0.1) < 0.01, "noise sd " .. sd)
    end)

    it("imputes a batch of masks at once, each as if alone", function()
      local x = lumen.rand { 1, 3, 8, 8 }
      local k1, k2 = lumen.bernoulli({ 1, 1, 8, 8 }, 0.3), lumen.bernoulli({ 1, 1, 8, 8 }, 0.7)
      local both = explain.road_impute(x, lumen.cat({ k1, k2 }, 1), { noise = 0 })
      support.assert_close(both:narrow(1, 2, 1), explain.road_impute(x, k2, { noise = 0 }), 1e-6, "second mask")
    end)
  end)

  describe("road()", function()
    it("gives the reference's MoRF and LeRF curves on a linear model (tools/ref_road.py)", function()
      local ref = support.json_file(FIX .. "road.json")
      local weight, bias = support.npy(FIX .. "weight.npy"), support.npy(FIX .. "bias.npy")
      local f = function(t) return lumen.linear(t:reshape { t.shape[1], weight.shape[2] }, weight, bias) end
      local morf, lerf, curves, target = explain.road(f, support.npy(FIX .. "x.npy"), support.npy(FIX .. "map.npy"),
                                                      { noise = 0 })
      assert.equal(ref.target, target)
      support.assert_values_close(curves.morf, ref.morf, 1e-5, "MoRF")
      support.assert_values_close(curves.lerf, ref.lerf, 1e-5, "LeRF")
      local m, l = 0, 0
      for i = 1, 9 do m, l = m + ref.morf[i] / 9, l + ref.lerf[i] / 9 end
      assert(math.abs(morf - m) < 1e-5 and math.abs(lerf - l) < 1e-5)
    end)

    it("scores a map of the region the model reads as perfect, and its opposite as worst", function()
      local x = lumen.zeros { 1, 1, 10, 10 }
      x:fill_box_({ 1, 1, 4, 4 }, { 1, 1, 3, 3 }, 1) -- the region: rows and cols 4..6, 9 % of the pixels
      local f = region_model(4, 6, 4, 6)
      local inside = x:clone()
      local opts = { noise = 0, probabilities = false, target = 1 }
      local morf, lerf, curves = explain.road(f, x, inside, opts)
      assert.equal(0, morf) -- the 10 % removed first hold the whole region, imputed from its 0 surroundings
      assert.equal(1, lerf) -- up to 90 % of the least relevant removed: the region is always kept
      assert.equal(9, #curves.morf)
      local worst_morf, worst_lerf = explain.road(f, x, 1 - inside, opts)
      assert.equal(1, worst_morf)
      assert.equal(0, worst_lerf)
      local rand_morf, rand_lerf = explain.road(f, x, inside, { noise = 0, probabilities = false, target = 1, order = "random" })
      assert(rand_morf > morf and rand_lerf < lerf, ("random order: MoRF %g, LeRF %g"):format(rand_morf, rand_lerf))
    end)

    it("ranks a map with channels by their sum, and runs on the Fashion CNN", function()
      local model = lumen.load_model("data/models/fashion_cnn.lumen")
      local x = lumen.rand { 1, 1, 28, 28 }
      local morf, lerf, curves, target = explain.road(model, x, lumen.rand { 1, 1, 28, 28 }, { fractions = { 0.2, 0.5 } })
      assert(morf >= 0 and morf <= 1 and lerf >= 0 and lerf <= 1)
      assert.same({ 0.2, 0.5 }, curves.fractions)
      assert.is_number(target)
    end)

    it("rejects what it cannot honour, naming it", function()
      local f = region_model(1, 2, 1, 2)
      local x = lumen.rand { 1, 1, 4, 4 }
      assert.has_error(function() explain.road(f, x, x, { nosie = 0 }) end, "road: unknown option 'nosie', did you mean 'noise'? (options: batch_size, fractions, max_iter, noise, order, probabilities, target, tie_noise, tol)")
      assert.has_error(function() explain.road(f, x, x, { order = "lerf" }) end, "road: order must be 'map' or 'random', got 'lerf'")
      assert.has_error(function() explain.road(f, x, lumen.rand { 3, 3 }) end, "road: the map has 9 values; expected 16 (H*W) or 16 (C*H*W)")
      assert.has_error(function() explain.road(f, x, x, { fractions = { 0.5, 1.5 } }) end, "road: fraction 1.5 outside [0, 1]")
      assert.has_error(function() explain.road_impute(x, lumen.ones { 3, 4 }) end, "road_impute: keep must be (4, 4) or (F, 1, 4, 4), got (3, 4)")
      assert.has_error(function() explain.road_impute(x, lumen.ones { 4, 4 }, { noise = -1 }) end, "road_impute: noise must be a number >= 0, got -1")
    end)
  end)
end)
