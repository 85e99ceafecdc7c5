-- Specs for lumen.explain.occlusion: on a linear model a 1x1 patch gives w * x (summed over channels,
-- or w * (x - fill)); larger patches average the drops of every window covering a position, the last
-- window touching the border; images, sequences and vectors; batched forwards; errors.
local lumen = require "lumen"
local support = require "support"
local assert_close = support.assert_close
local recording = support.recording
local explain = lumen.explain

-- S(x) = W flatten(x) + b for inputs of shape (N, ...) with prod(...) = D, as a plain function.
local function linear(D, K)
  lumen.seed(17)
  local W, b = lumen.randn { K, D }, lumen.randn { K }
  return function(batch) return lumen.linear(batch:flatten(2), W, b) end, W
end

describe("lumen.explain.occlusion()", function()
  it("with a 1x1 patch on a linear model is w * x, summed over the channels it covers", function()
    local fn, W = linear(20, 3)
    local x = lumen.randn { 1, 1, 4, 5 }
    local map, target, base = explain.occlusion(fn, x, { target = 2, patch = 1, stride = 1 })
    assert.equal(2, target)
    assert.near(fn(x):get { 1, 2 }, base, 1e-6)
    assert_close(map, W:narrow(1, 2, 1):reshape { 1, 1, 4, 5 } * x, 1e-5, "one channel")
    local fn2, W2 = linear(40, 3)
    local x2 = lumen.randn { 1, 2, 4, 5 }
    local map2 = explain.occlusion(fn2, x2, { target = 3, patch = 1, stride = 1, fill = 0.5 })
    local expected = (W2:narrow(1, 3, 1):reshape { 1, 2, 4, 5 } * (x2 - 0.5)):sum(2, true)
    assert_close(map2, expected, 1e-5, "two channels, fill 0.5")
  end)

  it("averages the drops of the windows covering each position, the last one at the border", function()
    local fn, W = linear(6, 2)
    local x = lumen.randn { 1, 6 }
    local map = explain.occlusion(fn, x, { target = 1, patch = 3, stride = 2 })
    local contrib = {} -- w_i x_i
    for i = 1, 6 do contrib[i] = W:get { 1, i } * x:get { 1, i } end
    local drop = {} -- windows start at 1, 3 and 4 (touching the border)
    for _, s in ipairs { 1, 3, 4 } do drop[s] = contrib[s] + contrib[s + 1] + contrib[s + 2] end
    local expected = { drop[1], drop[1], (drop[1] + drop[3]) / 2, (drop[3] + drop[4]) / 2,
                       (drop[3] + drop[4]) / 2, drop[4] }
    assert_close(map, lumen.tensor { expected }, 1e-5, "vector")
  end)

  it("slides along the last dimension of sequences (1, C, L)", function()
    local fn, W = linear(12, 2)
    local x = lumen.randn { 1, 3, 4 }
    local map = explain.occlusion(fn, x, { target = 2, patch = 1, stride = 1 })
    assert_close(map, (W:narrow(1, 2, 1):reshape { 1, 3, 4 } * x):sum(2, true), 1e-5, "sequence")
  end)

  it("covers a 32x32 image with 3x3 patches of 16 at stride 8 by default, in batches", function()
    local fn = linear(32 * 32, 2)
    local rec, sizes = recording(fn)
    local map = explain.occlusion(rec, lumen.randn { 1, 1, 32, 32 })
    assert.same({ 1, 1, 32, 32 }, map.shape)
    assert.same({ 1, 9 }, sizes)
    local rec2, sizes2 = recording(fn)
    explain.occlusion(rec2, lumen.randn { 1, 1, 32, 32 }, { patch = 8, stride = 8, batch_size = 5 })
    assert.same({ 1, 5, 5, 5, 1 }, sizes2) -- the unoccluded input, then 16 windows
  end)

  it("occludes token ids with the fill id", function()
    local seen
    local fn = function(ids)
      seen = ids
      return ids:float()
    end
    local ids = lumen.tensor({ { 4, 5, 6 } }, "int64")
    local map = explain.occlusion(fn, ids, { target = 2, patch = 1, stride = 1, fill = 1 })
    assert.same({ { 4, 1, 6 } }, seen:narrow(1, 2, 1):totable())
    assert_close(map, lumen.tensor { { 0, 4, 0 } }, 0, "ids")
  end)

  it("explains one input at a time", function()
    local fn = linear(6, 2)
    assert.has_error(function() explain.occlusion(fn, lumen.randn { 2, 6 }) end,
      "occlusion: explain one input at a time (a batch of 1), got (2, 6)")
  end)
end)
