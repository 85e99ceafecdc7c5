-- tensor_spec.lua — the Tensor basics of src/lua_tensor.c and lua/lumen/tensor.lua: creation,
-- element access (1-based), shape, printing, lifetime (free, <close>, GC pressure), views, RNG.
local lumen = require "lumen"
local core = lumen.core

describe("lumen.Tensor", function()
  describe("creation", function()
    it("makes zeros, ones and full tensors of a shape", function()
      local z = lumen.zeros { 2, 3 }
      assert.same({ 2, 3 }, z.shape)
      assert.same({ { 0, 0, 0 }, { 0, 0, 0 } }, z:totable())
      assert.same({ 1, 1 }, lumen.ones(2):totable())
      assert.same({ { 7, 7 } }, lumen.full({ 1, 2 }, 7):totable())
      assert.same({ 4 }, lumen.zeros(4).shape)
    end)

    it("builds from nested tables, float32 by default or int64", function()
      local t = lumen.tensor { { 1, 2, 3 }, { 4, 5, 6 } }
      assert.same({ 2, 3 }, t.shape)
      assert.are.equal("float32", t:dtype())
      assert.are.equal(6, t:get { 2, 3 })
      local i = lumen.tensor({ 1, 2 }, "int64")
      assert.are.equal("int64", i:dtype())
      assert.are.equal(math.type(1), math.type(i:get(2)))
      assert.has_error(function() return lumen.tensor { { 1, 2 }, { 3 } } end)
      assert.has_error(function() return lumen.tensor { 1, "x" } end)
    end)

    it("makes ranges and *_like tensors", function()
      assert.same({ 0, 1, 2 }, lumen.arange(3):totable())
      assert.same({ 0, 0.5, 1 }, lumen.linspace(0, 1, 3):totable())
      local t = lumen.tensor { { 1, 2 } }
      assert.same({ { 0, 0 } }, lumen.zeros_like(t):totable())
      assert.same({ { 1, 1 } }, lumen.ones_like(t):totable())
    end)
  end)

  describe("shape_or", function()
    it("hands back the table given when it holds the shape, else a new shape table", function()
      local t = lumen.zeros { 2, 3, 4 }
      local kept = { 2, 3, 4 }
      assert.equal(kept, core.shape_or(t, kept))
      for _, other in ipairs { { 2, 3 }, { 2, 3, 4, 1 }, { 2, 3, 5 }, { 2, "3", 4 }, { 2, 3.5, 4 } } do
        local s = core.shape_or(t, other)
        assert.are_not.equal(other, s)
        assert.same({ 2, 3, 4 }, s)
      end
      assert.same({ 2, 3, 4 }, core.shape_or(t, nil))
      assert.same({ 2, 3, 4 }, core.shape_or(t, "2x3x4"))
      assert.has_error(function() core.shape_or({}, kept) end)
    end)
  end)

  describe("element access", function()
    it("gets and sets with 1-based indices", function()
      local t = lumen.zeros { 2, 3 }
      t:set({ 2, 3 }, 5)
      assert.are.equal(5, t:get { 2, 3 })
      assert.are.equal(5, t:flat_get(6))
      local v = lumen.zeros { 3 }
      v:set(1, 2.5)
      assert.are.equal(2.5, v:get(1))
      assert.are.equal(2.5, v[1])
      assert.has_error(function() return t:get { 3, 1 } end)
      assert.has_error(function() return t:get { 0, 1 } end)
      assert.has_error(function() return v:get(4) end)
    end)

    it("knows its length, shape, dims and element count", function()
      local t = lumen.zeros { 4, 2, 3 }
      assert.are.equal(4, #t)
      assert.same({ 4, 2, 3 }, t.shape)
      assert.are.equal(3, t:dim())
      assert.are.equal(24, t:numel())
      assert.are.equal(2, t:size(2))
      assert.are.equal(3, t:size(-1))
    end)

    it("gives item() of one-element tensors only", function()
      assert.are.equal(3, lumen.full({ 1, 1 }, 3):item())
      local ok, err = pcall(function() return lumen.zeros(2):item() end)
      assert.is_false(ok)
      assert.matches("2 elements", err)
    end)

    it("converts to nested tables", function()
      local t = lumen.arange(6):reshape { 2, 3 }
      assert.same({ { 0, 1, 2 }, { 3, 4, 5 } }, t:totable())
    end)
  end)

  describe("tostring", function()
    it("names dtype and shape and shows the values", function()
      local s = tostring(lumen.tensor { { 1, 2 }, { 3, 4 } })
      assert.matches("lumen.Tensor float32 %(2, 2%)", s)
      assert.matches("1 2\n  3 4", s)
    end)
    it("abbreviates long rows and columns", function()
      local s = tostring(lumen.arange(400):reshape { 20, 20 })
      assert.matches("%.%.%.", s)
      assert.is_true(#s < 400)
      assert.matches("399", s)
    end)
  end)

  describe("lifetime", function()
    it("errors naming 'freed' when a freed tensor is used", function()
      local t = lumen.zeros { 2 }
      t:free()
      assert.is_true(t:is_freed())
      local ok, err = pcall(function() return t:get(1) end)
      assert.is_false(ok)
      assert.matches("freed", err)
      t:free() -- twice is fine
      assert.matches("freed", tostring(t))
    end)

    it("releases a <close> tensor at the end of its scope", function()
      local keep
      do
        local t <close> = lumen.zeros { 3 }
        keep = t
      end
      assert.is_true(keep:is_freed())
      assert.has_error(function() return keep + 1 end)
    end)

    it("keeps live bytes bounded in a loop of temporary 1 MB tensors", function()
      collectgarbage()
      local peak = 0
      for _ = 1, 10000 do
        local t = lumen.empty(262144) -- 1 MB of float32
        t:set(1, 1)
        local live = core.live_bytes()
        if live > peak then peak = live end
      end
      collectgarbage()
      assert(peak < 200 * 2 ^ 20, ("live bytes peaked at %.0f MB"):format(peak / 2 ^ 20))
    end)

    it("frees tensors that died old within a few collections (the collector is generational)", function()
      assert.equals("generational", collectgarbage("generational")) -- the previous mode; stays generational
      collectgarbage()
      local MB, base = 2 ^ 20, core.live_bytes()
      local held = {}
      for i = 1, 64 do -- 64 MB kept while garbage makes the collector run: they grow old
        held[i] = lumen.empty(262144)
        for _ = 1, 8 do lumen.empty(262144):set(1, 1) end
      end
      held = nil -- now 64 MB of old garbage, which a young collection does not see
      local peak = 0
      for _ = 1, 400 do
        lumen.empty(262144):set(1, 1)
        peak = math.max(peak, core.live_bytes() - base)
      end
      local left = core.live_bytes() - base
      assert(left < 40 * MB, ("%.0f MB still live: the old garbage was not freed"):format(left / MB))
      assert(peak < 100 * MB, ("live bytes peaked at %.0f MB"):format(peak / MB))
    end)
  end)

  describe("views", function()
    it("reshape shares storage with the original", function()
      local t = lumen.zeros { 2, 3 }
      local r = t:reshape { 3, 2 }
      r:set({ 3, 2 }, 9)
      assert.are.equal(9, t:get { 2, 3 })
      assert.is_true(core.same_storage(t, r))
    end)

    it("clone does not", function()
      local t = lumen.zeros { 2 }
      local c = t:clone()
      c:set(1, 1)
      assert.are.equal(0, t:get(1))
    end)
  end)

  describe("random numbers", function()
    it("are reproducible from a seed", function()
      lumen.seed(11)
      local a, an = lumen.rand { 4, 4 }, lumen.randn { 100 }
      lumen.seed(11)
      local b, bn = lumen.rand { 4, 4 }, lumen.randn { 100 }
      assert.are.equal(a:bytes(), b:bytes())
      assert.are.equal(an:bytes(), bn:bytes())
      lumen.seed(12)
      assert.are_not.equal(a:bytes(), lumen.rand { 4, 4 }:bytes())
    end)

    it("draw uniform values in [0, 1) and normal values around 0 with unit spread", function()
      lumen.seed(3)
      local u = lumen.rand { 10000 }
      assert.is_true(u:min_all() >= 0 and u:max_all() < 1)
      assert.is_true(math.abs(u:mean_all() - 0.5) < 0.02)
      local n = lumen.randn { 10000 }
      assert.is_true(math.abs(n:mean_all()) < 0.05)
      assert.is_true(math.abs(n:std():item() - 1) < 0.05)
    end)
  end)
end)
