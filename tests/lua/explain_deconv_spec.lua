-- Specs for lumen.explain.deconv (Zeiler & Fergus): the adjoint identities it rests on, the
-- reconstruction of a conv-relu-pool net by hand, the strongest position, top inputs and the grid.
local lumen = require "lumen"
local nn = lumen.nn
local explain = lumen.explain
local deconv = require "lumen.explain.deconv"

local function net()
  return nn.Sequential { nn.Conv2d { in_channels = 2, out_channels = 3, kernel_size = 3, padding = 1, name = "conv" },
                         nn.ReLU { name = "relu" }, nn.MaxPool2d { kernel_size = 2, name = "pool" } }
end

describe("lumen.explain.deconv", function()
  before_each(function() lumen.seed(17) end)

  describe("rests on", function()
    it("the transposed convolution being the adjoint of the convolution: <conv(x), y> = <x, conv_t(y)>", function()
      local w = lumen.randn { 4, 3, 3, 3 }
      local x = lumen.randn { 2, 3, 7, 7 }
      local opts = { stride = 2, padding = 1 }
      local cx = lumen.conv2d(x, w, nil, opts) -- (2, 4, 4, 4)
      local y = lumen.randn(cx.shape)
      local ty = lumen.conv_transpose2d(y, w, nil, { stride = 2, padding = 1 }) -- (2, 3, 7, 7)
      assert.same(x.shape, ty.shape)
      local a, b = lumen.dot64(cx, y), lumen.dot64(x, ty)
      assert.is_true(math.abs(a - b) < 1e-4 * math.max(1, math.abs(a)), ("%.6f vs %.6f"):format(a, b))
    end)

    it("max unpooling putting each value back at its switch position, zeros elsewhere", function()
      local x = lumen.randn { 1, 2, 4, 6 }
      local y, idx = lumen.max_pool2d(x, 2)
      local up = lumen.max_unpool2d(y, idx, { 4, 6 })
      local placed = {}
      for c = 1, 2 do
        for i = 1, 2 do
          for j = 1, 3 do
            local p = idx:get { 1, c, i, j } - 1
            local r, s = p // 6 + 1, p % 6 + 1
            assert.is_true(r >= 2 * i - 1 and r <= 2 * i and s >= 2 * j - 1 and s <= 2 * j) -- inside its window
            assert.equal(x:get { 1, c, r, s }, y:get { 1, c, i, j })
            assert.equal(y:get { 1, c, i, j }, up:get { 1, c, r, s })
            placed[(c - 1) * 24 + p + 1] = true
          end
        end
      end
      for e = 1, up:numel() do
        if not placed[e] then assert.equal(0, up:flat_get(e)) end
      end
    end)
  end)

  it("reconstructs one neuron of a conv-relu-pool net as conv_transpose(relu(unpool(seed)))", function()
    local model = net()
    local x = lumen.randn { 1, 2, 6, 6 }
    local rec, value, where = explain.deconv(model, x, { layer = "pool", index = { 2, 2, 1 } })
    local _, acts = model:forward(x, { capture = { "pool" } })
    assert.equal(acts.pool:get { 1, 2, 2, 1 }, value)
    assert.same({ 2, 2, 1 }, where)
    local pool, conv = model:layer("pool"), model:layer("conv")
    local seed = lumen.zeros { 1, 3, 3, 3 }
    seed:set({ 1, 2, 2, 1 }, value)
    local want = lumen.conv_transpose2d(lumen.max_unpool2d(seed, pool.indices, pool.input_size):relu(), conv.weight,
                                        nil, { padding = 1 })
    assert.same(x.shape, rec.shape)
    assert.is_true(lumen.max_abs_diff(rec, want) < 1e-6)
    assert.is_true(rec:abs():max_all() > 0)
  end)

  it("applies unReLU to the signal coming down, whatever the forward activations were", function()
    local model = nn.Sequential {
      nn.Conv2d { in_channels = 1, out_channels = 2, kernel_size = 3, padding = 1, name = "c1" }, nn.ReLU {},
      nn.Conv2d { in_channels = 2, out_channels = 1, kernel_size = 1, name = "c2" } }
    local c2 = model:layer("c2")
    c2.weight:copy_(lumen.tensor { -1, 2 }:reshape { 1, 2, 1, 1 })
    local x = lumen.randn { 1, 1, 5, 5 }
    local rec = explain.deconv(model, x, { layer = "c2", index = { 1, 3, 3 } })
    local _, acts = model:forward(x, { capture = { "c2" } })
    local v = acts.c2:get { 1, 1, 3, 3 }
    local seed = lumen.zeros { 1, 1, 5, 5 }
    seed:set({ 1, 1, 3, 3 }, v)
    local mid = lumen.conv_transpose2d(seed, c2.weight):relu() -- unReLU: no forward mask
    local want = lumen.conv_transpose2d(mid, model:layer("c1").weight, nil, { padding = 1 })
    assert.is_true(lumen.max_abs_diff(rec, want) < 1e-6)
  end)

  it("seeds a channel at its strongest position by default", function()
    local model = net()
    local x = lumen.randn { 1, 2, 6, 6 }
    local _, value, where = explain.deconv(model, x, { layer = "pool", index = 3 })
    local _, acts = model:forward(x, { capture = { "pool" } })
    local best = -math.huge
    for i = 1, 3 do for j = 1, 3 do best = math.max(best, acts.pool:get { 1, 3, i, j }) end end
    assert.equal(best, value)
    assert.equal(best, acts.pool:get { 1, 3, where[2], where[3] })
    assert.has_error(function() explain.deconv(model, x, { layer = "pool", index = 4 }) end)
  end)

  it("finds the top inputs per neuron like a brute-force scan, and draws the grid", function()
    local model = net()
    local X = lumen.randn { 23, 2, 6, 6 }
    local best, neurons = deconv.top_inputs(model, X, { layer = "pool", top = 4, neurons = { 1, 3 }, batch_size = 5 })
    assert.same({ 1, 3 }, neurons)
    local _, acts = model:forward(X, { capture = { "pool" } })
    for _, k in ipairs { 1, 3 } do
      local scan = {}
      for n = 1, 23 do
        local m = -math.huge
        for i = 1, 3 do for j = 1, 3 do m = math.max(m, acts.pool:get { n, k, i, j }) end end
        scan[n] = { n, m }
      end
      table.sort(scan, function(a, b) return a[2] > b[2] end)
      assert.equal(4, #best[k])
      for r = 1, 4 do
        local item = best[k][r]
        assert.equal(scan[r][1], item.index)
        assert.equal(scan[r][2], item.value)
        assert.equal(item.value, acts.pool:get { item.index, k, item.pos[1], item.pos[2] })
      end
    end
    local all = deconv.top_inputs(model, X, { layer = "pool" })
    assert.equal(3, #all) -- 16 neurons asked, the layer has 3
    local img, shown, shown_neurons = deconv.deconv_grid(model, X, { layer = "pool", neurons = { 1, 2 }, patch_size = 8,
                                                              ncol = 2, top = 4 })
    assert.same({ 1, 2 }, shown_neurons)
    assert.same(deconv.top_inputs(model, X, { layer = "pool", neurons = { 1, 2 }, top = 4 }), shown)
    assert.equal(3, #img.shape)
    assert.equal(3, img.shape[1])
    assert.is_true(img.shape[3] > 2 * 2 * 3 * 8)
  end)
end)
