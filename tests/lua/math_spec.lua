-- math_spec.lua — lumen's tensor math (lua/lumen/ops_math.lua): values against hand-computed
-- results, shapes, 1-based and negative dims, and a finite-difference gradient check for every
-- differentiable op, including broadcasting cases.
local lumen = require "lumen"
local support = require "support"

local grad_ok = support.assert_gradcheck

local function same_values(t, want, tol)
  local got = t:totable()
  local function walk(a, b, path)
    if type(b) == "table" then
      assert.are.equal(#b, #a, "length at " .. path)
      for i = 1, #b do walk(a[i], b[i], path .. "[" .. i .. "]") end
    else
      assert(math.abs(a - b) <= (tol or 1e-5), ("at %s: got %s, want %s"):format(path, tostring(a), tostring(b)))
    end
  end
  walk(got, want, "")
end

local function randn(s, offset)
  local t = lumen.randn(s)
  if offset then t = t + offset end
  return t
end

describe("lumen math", function()
  before_each(function() lumen.seed(42) end)

  describe("elementwise", function()
    local a = lumen.tensor { { 1, 2, 3 }, { 4, 5, 6 } }

    it("broadcasts like NumPy, with numbers on either side", function()
      same_values(a + lumen.tensor { 10, 20, 30 }, { { 11, 22, 33 }, { 14, 25, 36 } })
      same_values(a - lumen.tensor { { 1 }, { 2 } }, { { 0, 1, 2 }, { 2, 3, 4 } })
      same_values(10 - a, { { 9, 8, 7 }, { 6, 5, 4 } })
      same_values(a / 2, { { 0.5, 1, 1.5 }, { 2, 2.5, 3 } })
      same_values(12 / a, { { 12, 6, 4 }, { 3, 2.4, 2 } })
      same_values(a ^ 2, { { 1, 4, 9 }, { 16, 25, 36 } })
      same_values(2 ^ lumen.tensor { 0, 1, 3 }, { 1, 2, 8 })
      same_values(-a, { { -1, -2, -3 }, { -4, -5, -6 } })
      assert.same({ 2, 3, 4 }, (lumen.ones { 2, 1, 4 } * lumen.ones { 3, 1 }).shape)
    end)

    it("refuses shapes that do not broadcast, naming the sizes", function()
      assert.has_error(function() return a + lumen.ones { 2 } end)
      local ok, err = pcall(function() return a + lumen.ones { 4 } end)
      assert.is_false(ok)
      assert.matches("3 vs 4", err)
    end)

    it("computes maximum, minimum and the unary ops", function()
      local b = lumen.tensor { -2, 0.5, 4 }
      same_values(lumen.maximum(b, 0), { 0, 0.5, 4 })
      same_values(b:minimum(lumen.tensor { 1, 1, 1 }), { -2, 0.5, 1 })
      same_values(b:abs(), { 2, 0.5, 4 })
      same_values(b:sign(), { -1, 1, 1 })
      same_values(b:square(), { 4, 0.25, 16 })
      same_values(b:reciprocal(), { -0.5, 2, 0.25 })
      same_values(b:abs():sqrt(), { math.sqrt(2), math.sqrt(0.5), 2 })
      same_values(b:exp():log(), { -2, 0.5, 4 })
      same_values(b:clamp(-1, 1), { -1, 0.5, 1 })
      same_values(b:clamp(nil, 1), { -2, 0.5, 1 })
      same_values(b:clamp(0), { 0, 0.5, 4 })
    end)

    it("gives float 0/1 masks for comparisons and selects with where", function()
      local b = lumen.tensor { 1, 2, 3 }
      local m = b:gt(2)
      assert.are.equal("float32", m:dtype())
      same_values(m, { 0, 0, 1 })
      same_values(b:le(2), { 1, 1, 0 })
      same_values(b:eq(lumen.tensor { 1, 0, 3 }), { 1, 0, 1 })
      same_values(b:ne(2), { 1, 0, 1 })
      same_values(lumen.lt(1.5, b), { 0, 1, 1 })
      same_values(b:ge(3), { 0, 0, 1 })
      same_values(lumen.where(b:gt(1), b, 0), { 0, 2, 3 })
      same_values(lumen.where(lumen.tensor { { 1 }, { 0 } }, b, -b), { { 1, 2, 3 }, { -1, -2, -3 } })
    end)

    it("compares int64 index tensors with float ones", function()
      local pred = lumen.tensor({ 1, 2, 3 }, "int64")
      same_values(pred:eq(lumen.tensor { 1, 5, 3 }), { 1, 0, 1 })
    end)

    it("sums a broadcast back with sum_to", function()
      local t = lumen.ones { 2, 3, 4 }
      local s = lumen.sum_to(t, { 3, 1 })
      assert.same({ 3, 1 }, s.shape)
      same_values(s, { { 8 }, { 8 }, { 8 } })
    end)

    describe("gradients", function()
      local x, y = randn { 2, 3 }, randn { 2, 3 }
      local row, col = randn { 3 }, randn { 2, 1 }
      local pos = lumen.rand { 2, 3 } + 0.5
      it("add sub mul div, same shape and broadcast", function()
        for _, op in ipairs { "add", "sub", "mul", "div" } do
          local f = lumen[op]
          local denom_safe = op == "div" and pos or y
          grad_ok(f, { x, denom_safe })
          grad_ok(f, { x, op == "div" and (row:abs() + 0.5) or row })
          grad_ok(f, { op == "div" and (col:abs() + 0.5) or col, op == "div" and pos or x })
          grad_ok(function(t) return f(t, 3) end, { x })
          grad_ok(function(t) return f(2, t) end, { pos })
        end
      end)
      it("pow: tensor^number, tensor^tensor, number^tensor", function()
        grad_ok(function(t) return t ^ 3 end, { x })
        grad_ok(function(t) return t ^ 0.5 end, { pos })
        grad_ok(lumen.pow, { pos, y })
        grad_ok(lumen.pow, { pos, row })
        grad_ok(function(t) return 2 ^ t end, { x })
      end)
      it("maximum and minimum, with broadcasting", function()
        grad_ok(lumen.maximum, { x, y })
        grad_ok(lumen.minimum, { x, row })
        grad_ok(function(t) return lumen.maximum(t, 0.1) end, { x })
      end)
      it("unary ops", function()
        for _, op in ipairs { "neg", "exp", "square", "abs", "sign" } do grad_ok(lumen[op], { x }) end
        for _, op in ipairs { "log", "sqrt", "reciprocal" } do grad_ok(lumen[op], { pos }) end
      end)
      it("clamp passes the gradient only inside the bounds", function()
        grad_ok(function(t) return t:clamp(-0.5, 0.5) end, { x })
        grad_ok(function(t) return t:clamp(nil, 0.2) end, { x })
        local t = lumen.tensor { -2, 0, 2 }
        t.requires_grad = true
        same_values(lumen.grad(t:clamp(-1, 1):sum(), t), { 0, 1, 0 })
      end)
      it("where, broadcasting a row and a number", function()
        local cond = x:gt(0)
        grad_ok(function(a, b) return lumen.where(cond, a, b) end, { y, row })
        grad_ok(function(a) return lumen.where(cond, 1, a) end, { y })
      end)
      it("sum_to", function() grad_ok(function(t) return lumen.sum_to(t, { 3 }) end, { x }) end)
    end)
  end)

  describe("reductions", function()
    local a = lumen.tensor { { 1, 5, 3 }, { 4, 2, 6 } }

    it("sum and mean over all, one, several and negative dims", function()
      local s = a:sum()
      assert.same({}, s.shape)
      assert.are.equal(21, s:item())
      same_values(a:sum(2), { 9, 12 })
      same_values(a:sum(-1), { 9, 12 })
      same_values(a:sum(1, true), { { 5, 7, 9 } })
      same_values(a:mean(1), { 2.5, 3.5, 4.5 })
      local t = lumen.ones { 2, 3, 4, 5 }
      local k = t:sum({ 3, 4 }, true)
      assert.same({ 2, 3, 1, 1 }, k.shape)
      assert.are.equal(20, k:get { 2, 3, 1, 1 })
      assert.same({ 3, 4 }, t:mean { 1, -1 }.shape)
      assert.has_error(function() return a:sum(3) end)
    end)

    it("max and min: a value, or values and 1-based indices along a dim", function()
      assert.are.equal(6, a:max():item())
      assert.are.equal(1, a:min():item())
      local v, i = a:max(2)
      same_values(v, { 5, 6 })
      assert.are.equal("int64", i:dtype())
      assert.same({ 2, 3 }, i:totable())
      local v2, i2 = a:min(1, true)
      same_values(v2, { { 1, 2, 3 } })
      assert.same({ { 1, 2, 1 } }, i2:totable())
      same_values(lumen.max(a, lumen.full({ 2, 3 }, 4)), { { 4, 5, 4 }, { 4, 4, 6 } })
    end)

    it("amax and amin over a set of dims", function()
      assert.are.equal(6, a:amax():item())
      same_values(a:amin(2), { 1, 2 })
      same_values(lumen.ones { 2, 3, 4 }:amax({ 1, 3 }, true), { { { 1 }, { 1 }, { 1 } } })
    end)

    it("argmax and argmin, flat without a dim", function()
      assert.are.equal(6, a:argmax():item())
      assert.are.equal(1, a:argmin():item())
      assert.same({ 2, 1, 2 }, a:argmax(1):totable())
      assert.same({ { 1 }, { 2 } }, a:argmin(-1, true):totable())
    end)

    it("norm, var (unbiased by default) and std", function()
      local v = lumen.tensor { 3, 4 }
      assert.is_true(math.abs(v:norm():item() - 5) < 1e-6)
      assert.is_true(math.abs(v:norm(1):item() - 7) < 1e-6)
      same_values(a:norm(2, 2), { math.sqrt(35), math.sqrt(56) })
      local w = lumen.tensor { 1, 2, 3, 4 }
      assert.is_true(math.abs(w:var():item() - 5 / 3) < 1e-6)
      assert.is_true(math.abs(w:var(nil, false):item() - 1.25) < 1e-6)
      assert.is_true(math.abs(w:std():item() - math.sqrt(5 / 3)) < 1e-6)
      same_values(a:var(2), { 4, 4 })
    end)

    it("cumsum along a dim", function()
      same_values(a:cumsum(2), { { 1, 6, 9 }, { 4, 6, 12 } })
      same_values(a:cumsum(-2), { { 1, 5, 3 }, { 5, 7, 9 } })
    end)

    it("accumulates sums in double", function()
      local big = lumen.full({ 1000001 }, 0.1)
      local exact = 1000001 * big[1] -- the float32 nearest 0.1, a million times
      assert.is_true(math.abs(big:sum():item() - exact) < 0.01) -- float32 accumulation is off by ~1
      assert.is_true(math.abs(big:sum_all() - exact) < 1e-6)
      local cols = big:reshape { 9901, 101 }:sum(1) -- the middle-dim path, 9901 terms each
      assert.is_true(cols:max_abs_diff(lumen.full({ 101 }, 9901 * big[1])) < 1e-3)
    end)

    describe("gradients", function()
      local x = randn { 2, 3, 4 }
      it("sum and mean", function()
        grad_ok(function(t) return t:sum() end, { x })
        grad_ok(function(t) return t:sum({ 1, 3 }) end, { x })
        grad_ok(function(t) return t:sum(-1, true) end, { x })
        grad_ok(function(t) return t:mean(2) end, { x })
        grad_ok(function(t) return t:mean({ 2, 3 }, true) end, { x })
      end)
      it("max and min, with and without a dim", function()
        grad_ok(function(t) return t:max() end, { x })
        grad_ok(function(t) return (t:max(2)) end, { x })
        grad_ok(function(t) return (t:min(-1, true)) end, { x })
        grad_ok(function(t) return t:amax { 1, 3 } end, { x })
        grad_ok(function(t) return t:amin(-1, true) end, { x })
      end)
      it("amax shares the gradient between ties", function()
        local t = lumen.tensor { 1, 3, 3 }
        t.requires_grad = true
        same_values(lumen.grad(t:amax(), t), { 0, 0.5, 0.5 })
      end)
      it("norm, var, std", function()
        grad_ok(function(t) return t:norm() end, { x })
        grad_ok(function(t) return t:norm(2, -1) end, { x })
        grad_ok(function(t) return t:norm(3, { 1, 2 }) end, { x })
        grad_ok(function(t) return t:norm(1) end, { x })
        grad_ok(function(t) return t:var(2) end, { x })
        grad_ok(function(t) return t:std(-1, false, true) end, { x })
      end)
      it("cumsum", function() grad_ok(function(t) return t:cumsum(2) end, { x }) end)
      it("gives the norm of zero a zero gradient", function()
        local z = lumen.zeros { 3 }
        z.requires_grad = true
        same_values(lumen.grad(z:norm(), z), { 0, 0, 0 })
      end)
    end)
  end)

  describe("shape ops", function()
    local a = lumen.tensor { { 1, 2, 3 }, { 4, 5, 6 } }

    it("reshape and view share storage and infer -1", function()
      local r = a:reshape { 3, -1 }
      assert.same({ 3, 2 }, r.shape)
      assert.is_true(lumen.core.same_storage(a, r))
      assert.same({ 6 }, a:view(6).shape)
      assert.same({ 1, 6 }, a:reshape(1, -1).shape)
      assert.has_error(function() return a:reshape { 4, -1 } end)
    end)

    it("flatten, squeeze, unsqueeze", function()
      local t = lumen.zeros { 2, 1, 3, 1 }
      assert.same({ 6 }, t:flatten().shape)
      assert.same({ 2, 3 }, t:flatten(2).shape)
      assert.same({ 2, 3 }, t:squeeze().shape)
      assert.same({ 2, 3, 1 }, t:squeeze(2).shape)
      assert.same({ 2, 1, 3, 1 }, t:squeeze(1).shape)
      assert.same({ 2, 3, 1 }, a:unsqueeze(-1).shape)
      assert.same({ 1, 2, 3 }, a:unsqueeze(1).shape)
    end)

    it("permute, transpose and t", function()
      same_values(a:t(), { { 1, 4 }, { 2, 5 }, { 3, 6 } })
      local t = lumen.arange(24):reshape { 2, 3, 4 }
      local p = t:permute(3, 1, 2)
      assert.same({ 4, 2, 3 }, p.shape)
      assert.are.equal(t:get { 2, 3, 4 }, p:get { 4, 2, 3 })
      local q = t:transpose(1, -1)
      assert.same({ 4, 3, 2 }, q.shape)
      assert.are.equal(t:get { 1, 2, 3 }, q:get { 3, 2, 1 })
    end)

    it("narrow, select and t[i]", function()
      same_values(a:narrow(2, 2, 2), { { 2, 3 }, { 5, 6 } })
      same_values(a:narrow(2, -1, 1), { { 3 }, { 6 } })
      same_values(a:select(2, 1), { 1, 4 })
      same_values(a:select(1, -1), { 4, 5, 6 })
      same_values(a[2], { 4, 5, 6 })
      assert.are.equal(5, a[2][2])
      assert.are.equal(6, a[2][-1])
      assert.has_error(function() return a:narrow(2, 3, 2) end)
    end)

    it("index_select (tensor or table of 1-based indices), gather, scatter_add", function()
      same_values(a:index_select(2, { 3, 1 }), { { 3, 1 }, { 6, 4 } })
      same_values(a:index_select(1, lumen.tensor({ 2, 2 }, "int64")), { { 4, 5, 6 }, { 4, 5, 6 } })
      local idx = lumen.tensor({ { 3, 1 }, { 2, 2 } }, "int64")
      same_values(a:gather(2, idx), { { 3, 1 }, { 5, 5 } })
      same_values(lumen.zeros { 2, 3 }:scatter_add(2, idx, lumen.ones { 2, 2 }), { { 1, 0, 1 }, { 0, 2, 0 } })
      assert.has_error(function() return a:index_select(2, { 4 }) end)
      assert.has_error(function() return a:index_select(2, { 0 }) end)
    end)

    it("cat and stack", function()
      local b = lumen.tensor { { 7, 8, 9 } }
      same_values(lumen.cat({ a, b }, 1), { { 1, 2, 3 }, { 4, 5, 6 }, { 7, 8, 9 } })
      same_values(lumen.cat({ a, a }, -1), { { 1, 2, 3, 1, 2, 3 }, { 4, 5, 6, 4, 5, 6 } })
      assert.same({ 2, 2, 3 }, lumen.stack { a, a }.shape)
      assert.same({ 2, 3, 2 }, lumen.stack({ a, a }, -1).shape)
      same_values(lumen.stack({ a, a * 2 }, 3)[2], { { 4, 8 }, { 5, 10 }, { 6, 12 } })
      assert.has_error(function() return lumen.cat({ a, b }, 2) end)
    end)

    it("expand / broadcast_to, flip, pad (last dim first), contiguous, clone", function()
      same_values(lumen.tensor { 1, 2 }:expand { 2, 2 }, { { 1, 2 }, { 1, 2 } })
      same_values(lumen.tensor { { 1 }, { 2 } }:broadcast_to { -1, 3 }, { { 1, 1, 1 }, { 2, 2, 2 } })
      same_values(a:flip(2), { { 3, 2, 1 }, { 6, 5, 4 } })
      same_values(a:flip { 1, 2 }, { { 6, 5, 4 }, { 3, 2, 1 } })
      same_values(a:pad({ 1, 0, 0, 1 }, 9), { { 9, 1, 2, 3 }, { 9, 4, 5, 6 }, { 9, 9, 9, 9 } })
      same_values(a:pad { -1, -1 }, { { 2 }, { 5 } })
      assert.are.equal(a, a:contiguous())
      local c = a:clone()
      c:set({ 1, 1 }, 100)
      assert.are.equal(1, a:get { 1, 1 })
      assert.is_false(lumen.core.same_storage(a, lumen.clone(a)))
    end)

    describe("gradients", function()
      local x = randn { 2, 3, 4 }
      it("reshape, view, flatten, squeeze, unsqueeze", function()
        grad_ok(function(t) return t:reshape { 4, -1 } end, { x })
        grad_ok(function(t) return t:view(24) end, { x })
        grad_ok(function(t) return t:flatten(2) end, { x })
        grad_ok(function(t) return t:unsqueeze(2):squeeze(2) end, { x })
      end)
      it("permute, transpose, t", function()
        grad_ok(function(t) return t:permute(3, 1, 2) end, { x })
        grad_ok(function(t) return t:transpose(1, -1) end, { x })
        grad_ok(function(t) return t:t() end, { randn { 3, 4 } })
      end)
      it("narrow, select, index_select, gather, scatter_add", function()
        grad_ok(function(t) return t:narrow(-1, 2, 2) end, { x })
        grad_ok(function(t) return t:select(2, -1) end, { x })
        grad_ok(function(t) return t[2] end, { x })
        grad_ok(function(t) return t:index_select(3, { 4, 1, 4 }) end, { x })
        local idx = lumen.tensor({ { 1, 3 }, { 2, 2 } }, "int64")
        grad_ok(function(t) return t:gather(2, idx) end, { randn { 2, 3 } })
        grad_ok(function(t, s) return t:scatter_add(2, idx, s) end, { randn { 2, 3 }, randn { 2, 2 } })
      end)
      it("cat and stack", function()
        grad_ok(function(p, q) return lumen.cat({ p, q }, 2) end, { x, randn { 2, 1, 4 } })
        grad_ok(function(p, q) return lumen.stack({ p, q }, -1) end, { x, randn { 2, 3, 4 } })
      end)
      it("expand, flip, pad, clone", function()
        grad_ok(function(t) return t:expand { 2, 2, 3, 4 } end, { x })
        grad_ok(function(t) return t:broadcast_to { 3, -1 } end, { randn { 1, 4 } })
        grad_ok(function(t) return t:flip { 1, 3 } end, { x })
        grad_ok(function(t) return t:pad({ 1, 2, -1, 0 }, 0.5) end, { x })
        grad_ok(function(t) return t:clone() end, { x })
      end)
    end)
  end)

  describe("matmul", function()
    local function naive(a, b) -- (M, K) @ (K, N) from the definition
      local A, B = a:totable(), b:totable()
      local C = {}
      for i = 1, #A do
        C[i] = {}
        for j = 1, #B[1] do
          local s = 0
          for k = 1, #B do s = s + A[i][k] * B[k][j] end
          C[i][j] = s
        end
      end
      return C
    end

    it("matches the definition for 2-D, batched and broadcast-batched operands", function()
      local a, b = randn { 3, 4 }, randn { 4, 5 }
      same_values(a:matmul(b), naive(a, b), 1e-5)
      local ab = randn { 2, 3, 4 }
      local c = lumen.matmul(ab, b)
      assert.same({ 2, 3, 5 }, c.shape)
      same_values(c[2], naive(ab[2], b), 1e-5)
      local bb = randn { 2, 4, 5 }
      same_values(lumen.bmm(ab, bb)[1], naive(ab[1], bb[1]), 1e-5)
      local d = lumen.matmul(randn { 1, 3, 4 }, bb)
      assert.same({ 2, 3, 5 }, d.shape)
      assert.has_error(function() return lumen.bmm(ab, b) end)
      assert.has_error(function() return a:matmul(a) end)
    end)

    it("treats 1-D operands like NumPy, and dot gives a 0-d tensor", function()
      local m, v = lumen.tensor { { 1, 2 }, { 3, 4 } }, lumen.tensor { 1, 1 }
      same_values(m:matmul(v), { 3, 7 })
      same_values(v:matmul(m), { 4, 6 })
      assert.same({ 2, 2 }, lumen.matmul(v, randn { 2, 2, 2 }).shape)
      local d = lumen.dot(lumen.tensor { 1, 2, 3 }, lumen.tensor { 4, 5, 6 })
      assert.same({}, d.shape)
      assert.are.equal(32, d:item())
    end)

    it("has gradients for every case", function()
      grad_ok(lumen.matmul, { randn { 3, 4 }, randn { 4, 2 } })
      grad_ok(lumen.matmul, { randn { 2, 3, 4 }, randn { 4, 2 } })
      grad_ok(lumen.matmul, { randn { 1, 3, 4 }, randn { 2, 4, 2 } })
      grad_ok(lumen.bmm, { randn { 2, 3, 4 }, randn { 2, 4, 2 } })
      grad_ok(lumen.matmul, { randn { 4 }, randn { 4, 2 } })
      grad_ok(lumen.matmul, { randn { 3, 4 }, randn { 4 } })
      grad_ok(lumen.dot, { randn { 4 }, randn { 4 } })
    end)
  end)

  describe("sort and topk", function()
    it("sorts stably with 1-based indices", function()
      local v, i = lumen.tensor { 3, 1, 2, 1 }:sort()
      same_values(v, { 1, 1, 2, 3 })
      assert.same({ 2, 4, 3, 1 }, i:totable())
      local vd, id = lumen.tensor { { 1, 3, 3, 2 } }:sort(-1, true)
      same_values(vd, { { 3, 3, 2, 1 } })
      assert.same({ { 2, 3, 4, 1 } }, id:totable())
      local vc, ic = lumen.tensor { { 2, 1 }, { 1, 2 } }:sort(1)
      same_values(vc, { { 1, 1 }, { 2, 2 } })
      assert.same({ { 2, 1 }, { 1, 2 } }, ic:totable())
    end)

    it("topk gives the k largest (or smallest) first", function()
      local t = lumen.tensor { { 5, 1, 4, 2 }, { 0, 9, 8, 7 } }
      local v, i = t:topk(2)
      same_values(v, { { 5, 4 }, { 9, 8 } })
      assert.same({ { 1, 3 }, { 2, 3 } }, i:totable())
      local vs, is = t:topk(1, 1, false)
      same_values(vs, { { 0, 1, 4, 2 } })
      assert.same({ { 2, 1, 1, 1 } }, is:totable())
      assert.has_error(function() return t:topk(5) end)
    end)

    it("passes gradients back to the sorted positions", function()
      local x = randn { 3, 5 }
      grad_ok(function(t) return (t:sort(2, true)) end, { x })
      grad_ok(function(t) return (t:sort(1)) end, { x })
      grad_ok(function(t) return (t:topk(2, -1)) end, { x })
    end)
  end)

  describe("helpers", function()
    local a = lumen.tensor { { 1, -2 }, { 3, 4 } }

    it("give Lua numbers", function()
      assert.are.equal(6, a:sum_all())
      assert.are.equal(1.5, a:mean_all())
      assert.are.equal(-2, a:min_all())
      assert.are.equal(4, a:max_all())
      assert.are.equal(30, lumen.dot64(a, a))
      assert.are.equal(0.5, a:max_abs_diff(a + lumen.tensor { 0, 0.5 }))
      assert.is_true(math.abs(lumen.rel_l2(a * 1.1, a) - 0.1) < 1e-6)
      assert.are.equal(0, lumen.rel_l2(lumen.zeros { 2 }, lumen.zeros { 2 }))
    end)

    it("allclose uses rtol and atol", function()
      assert.is_true(lumen.allclose(a, a + 1e-6))
      assert.is_false(lumen.allclose(a, a + 1e-3))
      assert.is_true(lumen.allclose(a, a + 1e-3, 0, 2e-3))
      assert.is_true(a:allclose(a * 1.001, 2e-3))
      assert.has_error(function() return lumen.allclose(a, lumen.zeros { 4 }) end)
    end)

    it("normalize01 maps to [0, 1], a constant tensor to zeros", function()
      same_values(lumen.tensor { 2, 4, 3 }:normalize01(), { 0, 1, 0.5 })
      same_values(lumen.full({ 3 }, 7):normalize01(), { 0, 0, 0 })
    end)
  end)
end)
