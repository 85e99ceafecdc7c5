-- autograd_spec.lua — the tape itself (lua/lumen/autograd.lua): gradients of leaves and of intermediate
-- tensors, pruning below an intermediate target, .grad accumulation, no_grad, per-op backward rules
-- (guided backprop on relu) and their restoration, custom lumen.Function ops, and gradcheck's verdicts.
local lumen = require "lumen"

local function leaf(values)
  local t = lumen.tensor(values)
  t.requires_grad = true
  return t
end

local assert_values = require("support").assert_values

-- A custom op y = x^3 whose backward counts its calls; `wrong` makes the backward 2 x^2 g.
local function cube_op(counter, wrong)
  return lumen.Function {
    name = wrong and "bad_cube" or "cube",
    forward = function(ctx, x)
      ctx.x = x
      return lumen.mul(lumen.mul(x, x), x)
    end,
    backward = function(ctx, g)
      if counter then counter.n = counter.n + 1 end
      return lumen.mul(lumen.mul(lumen.square(ctx.x), wrong and 2 or 3), g)
    end,
  }
end

describe("lumen autograd", function()
  describe("lumen.grad", function()
    it("differentiates with respect to leaves", function()
      local x = leaf { -1, 0.5, 2 }
      local y = lumen.tanh(x)
      local want = {}
      for i = 1, 3 do want[i] = 1 - math.tanh(x:flat_get(i)) ^ 2 end
      assert_values(lumen.grad(y, x), want)
    end)

    it("returns one gradient per input; an input the output does not reach is an error naming it", function()
      local a, b, c = leaf { 1, 2 }, leaf { 3, 4 }, leaf { 5, 6 }
      local y = lumen.mul(a, b)
      local ok, err = pcall(lumen.grad, y, { a, b, c })
      assert.is_false(ok)
      assert.truthy(err:find("input 3 is not on the tape: the output does not depend on it", 1, true), err)
      assert.truthy(err:find("allow_unused", 1, true), err)
      local ga, gb, gc = table.unpack(lumen.grad(y, { a, b, c }, { allow_unused = true }))
      assert_values(ga, { 3, 4 })
      assert_values(gb, { 1, 2 })
      assert_values(gc, { 0, 0 })
    end)

    it("an input that does not require grad is an error telling how to mark it", function()
      local x = lumen.tensor { 1, 2, 3 } -- not marked: the tape records nothing
      local ok, err = pcall(lumen.grad, lumen.tanh(x):sum(), x)
      assert.is_false(ok)
      assert.truthy(err:find("input 1 is not on the tape: mark it with x.requires_grad = true", 1, true), err)
      assert_values(lumen.grad(lumen.tanh(x):sum(), x, { allow_unused = true }), { 0, 0, 0 })
      x.requires_grad = true
      assert_values(lumen.grad(lumen.tanh(x):sum(), x), { 1 - math.tanh(1) ^ 2, 1 - math.tanh(2) ^ 2, 1 - math.tanh(3) ^ 2 })
    end)

    it("an output computed under no_grad is named as off the tape", function()
      local x = leaf { 1, 2 }
      local y = lumen.no_grad(lumen.relu, x)
      local ok, err = pcall(lumen.grad, y, x)
      assert.is_false(ok)
      assert.truthy(err:find("input 1 is not on the tape: output 1 was computed off the tape", 1, true), err)
    end)

    it("an input reached through an op that gives it no gradient gets zeros, not an error", function()
      local x = leaf { -1, 2 }
      local stop = lumen.Function { name = "stop_gradient", forward = function(_, t) return lumen.relu(t) end,
                                    backward = function() return nil end }
      assert_values(lumen.grad(stop(x):sum(), x), { 0, 0 })
    end)

    it("takes grad_outputs and options together, and rejects an unknown option", function()
      local x = leaf { 1, 2, 3 }
      local g = lumen.tensor { 5, -1, 0.5 }
      assert_values(lumen.grad(lumen.relu(x), x, { g }, { allow_unused = true }), { 5, -1, 0.5 })
      assert_values(lumen.grad(lumen.relu(x), x, { grad_outputs = { g } }), { 5, -1, 0.5 })
      local ok, err = pcall(lumen.grad, lumen.relu(x), x, { allow_unsued = true })
      assert.is_false(ok)
      assert.truthy(err:find("unknown option 'allow_unsued'", 1, true), err)
    end)

    it("adds the gradients of every path to a tensor used twice", function()
      local x = leaf { -0.5, 1.5 }
      local y = lumen.add(lumen.sigmoid(x), lumen.relu(x))
      local want = {}
      for i = 1, 2 do
        local v = x:flat_get(i)
        local s = 1 / (1 + math.exp(-v))
        want[i] = s * (1 - s) + (v > 0 and 1 or 0)
      end
      assert_values(lumen.grad(y, x), want)
    end)

    it("weights the outputs by grad_outputs and checks their shape", function()
      local x = leaf { 1, 2, 3 }
      assert_values(lumen.grad(lumen.relu(x), x, { lumen.tensor { 5, -1, 0.5 } }), { 5, -1, 0.5 })
      assert.has_error(function() lumen.grad(lumen.relu(x), x, { lumen.ones(2) }) end)
    end)

    it("differentiates with respect to an intermediate tensor without running backward below it", function()
      local calls = { n = 0 }
      local x = leaf { 0.5, -1, 2 }
      local h = cube_op(calls)(x)
      local y = lumen.sigmoid(h)
      local gh = lumen.grad(y, h)
      local want = {}
      for i = 1, 3 do
        local s = 1 / (1 + math.exp(-h:flat_get(i)))
        want[i] = s * (1 - s)
      end
      assert_values(gh, want)
      assert.are.equal(0, calls.n)
      local gx = lumen.grad(y, x)
      assert.are.equal(1, calls.n)
      for i = 1, 3 do want[i] = want[i] * 3 * x:flat_get(i) ^ 2 end
      assert_values(gx, want, 1e-5)
    end)
  end)

  describe("backward()", function()
    it("accumulates into .grad of the leaves across calls", function()
      local x = leaf { -2, 1, 3 }
      local w = leaf { 0.5, 0.5, 2 }
      assert.is_nil(x.grad)
      lumen.mul(lumen.relu(x), w):backward()
      assert_values(x.grad, { 0, 0.5, 2 })
      assert_values(w.grad, { 0, 1, 3 })
      lumen.mul(lumen.relu(x), w):backward()
      assert_values(x.grad, { 0, 1, 4 })
      x:zero_grad()
      assert.is_nil(x.grad)
    end)

    it("is an error on a tensor that is not on the tape, instead of leaving .grad nil", function()
      local x = lumen.tensor { 1, 2 } -- never marked
      local ok, err = pcall(function() lumen.tanh(x):sum():backward() end)
      assert.is_false(ok)
      assert.truthy(err:find("backward: the tensor is not on the tape", 1, true), err)
      assert.truthy(err:find("requires_grad = true", 1, true), err)
      lumen.tanh(x):sum():backward { allow_unused = true } -- asked for: nothing to do
      assert.is_nil(x.grad)
      local w = leaf { 1, 2 }
      ok = pcall(function() lumen.no_grad(lumen.mul, w, w):sum():backward() end)
      assert.is_false(ok)
    end)

    it("leaves intermediate tensors without .grad", function()
      local x = leaf { 1, 2 }
      local h = lumen.relu(x)
      lumen.tanh(h):backward()
      assert.is_nil(h.grad)
      assert.is_not_nil(x.grad)
    end)
  end)

  describe("lumen.no_grad", function()
    it("records nothing and returns the body's results", function()
      local x = leaf { 1, -1 }
      local y, extra = lumen.no_grad(function() return lumen.relu(x), 42 end)
      assert.are.equal(42, extra)
      assert.is_false(y.requires_grad)
      assert.is_nil(y.node)
      assert.is_true(lumen.relu(x).requires_grad)
    end)

    it("restores grad mode after an error in the body", function()
      local x = leaf { 1 }
      assert.has_error(function() lumen.no_grad(function() error("boom") end) end)
      assert.is_true(lumen.autograd.is_enabled())
      assert.is_true(lumen.relu(x).requires_grad)
    end)
  end)

  describe("lumen.with_rules", function()
    -- Guided backprop: a relu passes only positive gradients, where its input was positive.
    local guided = { relu = function(ctx, g) return ctx.default(ctx, lumen.relu(g)) end }
    local x = leaf { -1, 2, 3, -4 }
    local g = lumen.tensor { 1, -1, 2, -2 }

    it("swaps relu's backward rule inside the body", function()
      local y = lumen.relu(x)
      assert_values(lumen.grad(y, x, { g }), { 0, -1, 2, 0 })
      local gg = lumen.with_rules(guided, function() return lumen.grad(y, x, { g }) end)
      assert_values(gg, { 0, 0, 2, 0 })
    end)

    it("restores the default rule after the body, also after an error", function()
      local y = lumen.relu(x)
      lumen.with_rules(guided, function() end)
      assert_values(lumen.grad(y, x, { g }), { 0, -1, 2, 0 })
      local ok, err = pcall(lumen.with_rules, guided, function()
        lumen.grad(y, x, { g })
        error("boom")
      end)
      assert.is_false(ok)
      assert.matches("boom", err)
      assert_values(lumen.grad(y, x, { g }), { 0, -1, 2, 0 })
    end)

    it("gives the rule the op's ctx, and leaves other ops alone", function()
      local seen = {}
      local rules = { relu = function(ctx, gr)
        seen[#seen + 1] = { x = ctx.x, output = ctx.output, op = ctx.op }
        return ctx.default(ctx, gr)
      end }
      local h = lumen.relu(x)
      local y = lumen.sigmoid(h)
      local plain = lumen.grad(y, x)
      local ruled = lumen.with_rules(rules, function() return lumen.grad(y, x) end)
      assert.are.equal(1, #seen)
      assert.are.equal(x, seen[1].x)
      assert.are.equal(h, seen[1].output)
      assert.are.equal("relu", seen[1].op)
      assert.are.equal(0, lumen.max_abs_diff(plain, ruled))
    end)

    it("rejects unknown ops and non-function rules", function()
      assert.has_error(function() lumen.with_rules({ nosuchop = function() end }, function() end) end,
        "with_rules: unknown op 'nosuchop'")
      assert.has_error(function() lumen.with_rules({ relu = 1 }, function() end) end,
        "with_rules: rule for 'relu' is not a function")
    end)
  end)

  describe("lumen.Function", function()
    it("runs its own backward", function()
      local x = leaf { 0.5, -2 }
      local gx = lumen.grad(cube_op()(x), x)
      assert_values(gx, { 0.75, 12 })
    end)

    it("records nothing inside its forward", function()
      local inner
      local f = lumen.Function {
        forward = function(_, x)
          inner = lumen.relu(x)
          return lumen.clone(inner)
        end,
        backward = function(_, g) return g end,
      }
      local y = f(leaf { 1 })
      assert.is_nil(inner.node)
      assert.is_true(y.requires_grad)
    end)
  end)

  -- The sweep frees a gradient it made once it is spent (its block is reused at once); never one a user
  -- holds or is given back.
  describe("spent gradients", function()
    it("are freed during the sweep: the gradients of one frontier live at a time, not of the whole chain", function()
      local x = leaf(lumen.randn { 256, 1024 }) -- 1 MiB
      local at_bottom
      local probe = lumen.Function { -- the first op on x: its backward runs last
        forward = function(_, v) return lumen.clone(v) end,
        backward = function(_, g)
          at_bottom = lumen.core.live_bytes()
          return g
        end,
      }
      local h = probe(x)
      for _ = 1, 24 do h = lumen.mul(h, 1.001) end
      local y = lumen.sum(h)
      collectgarbage()
      local before = lumen.core.live_bytes()
      collectgarbage("stop")
      local ok, gx = pcall(lumen.grad, y, x)
      collectgarbage("restart")
      assert(ok, gx)
      -- kept until the sweep ends, the chain's 24 gradients would be 24 MiB when it reaches the probe
      assert(at_bottom - before < 6 * 2 ^ 20, ("%.1f MiB alive"):format((at_bottom - before) / 2 ^ 20))
      assert.is_true(math.abs(gx:flat_get(1) - 1.001 ^ 24) < 1e-4)
    end)

    it("never frees what the caller gave or is given: grad_outputs, targets, what a custom op saw", function()
      local x = leaf { 1, 2, 3 }
      local h = lumen.mul(x, 2)
      local seen
      local keep = lumen.Function { -- a capture: keeps the gradient it receives and hands it on as it is
        forward = function(_, v) return lumen.clone(v) end,
        backward = function(_, g)
          seen = g
          return g
        end,
      }
      local go = lumen.tensor { 1, 1, 1 }
      local gx = lumen.grad(lumen.mul(keep(h), 3), x, go)
      assert.is_false(go:is_freed())
      assert_values(go, { 1, 1, 1 })
      assert.is_false(seen:is_freed())
      assert_values(seen, { 3, 3, 3 })
      assert_values(gx, { 6, 6, 6 })
      -- a custom op that keeps what it receives and returns a new tensor, or returns one it keeps
      local given
      local keep2 = lumen.Function {
        forward = function(_, v) return lumen.clone(v) end,
        backward = function(_, g)
          seen = g
          given = lumen.mul(g, 2)
          return given
        end,
      }
      gx = lumen.grad(lumen.sum(lumen.mul(keep2(lumen.mul(x, 1)), 3)), x)
      assert.is_false(seen:is_freed())
      assert.is_false(given:is_freed())
      assert_values(seen, { 3, 3, 3 })
      assert_values(given, { 6, 6, 6 })
      assert_values(gx, { 6, 6, 6 })
      -- an intermediate target's gradient, also handed on below it
      local u = lumen.mul(x, 2)
      local res = lumen.grad(lumen.sum(lumen.mul(lumen.clone(u), u)), { x, u })
      assert.is_false(res[2]:is_freed())
      assert_values(res[2], { 4, 8, 12 })
      assert_values(res[1], { 8, 16, 24 })
      -- backward(): a leaf used twice (add(z, z): one gradient tensor for both arguments)
      local z = leaf { 1, 2 }
      lumen.sum(lumen.mul(lumen.add(z, z), lumen.clone(z))):backward()
      assert_values(z.grad, { 4, 8 })
    end)

    it("are kept while a swapped rule runs (a rule may keep what it sees)", function()
      local x = leaf { -1, 2 }
      local seen
      lumen.with_rules({ relu = function(ctx, g)
        seen = g
        return ctx.default(ctx, g)
      end }, function()
        lumen.grad(lumen.sum(lumen.mul(lumen.relu(lumen.mul(x, 3)), 2)), x)
      end)
      assert.is_false(seen:is_freed())
      assert_values(seen, { 2, 2 })
    end)
  end)

  describe("lumen.gradcheck", function()
    it("accepts a correct backward", function()
      local ok, msg = lumen.gradcheck(cube_op(), { lumen.tensor { 0.3, -1.2, 2 } })
      assert.is_true(ok, msg)
    end)

    it("returns false and a message for a wrong backward", function()
      local ok, msg = lumen.gradcheck(cube_op(nil, true), { lumen.tensor { 0.3, -1.2, 2 } })
      assert.is_false(ok)
      assert.matches("gradcheck: input 1, element %d+: analytic", msg)
    end)
  end)
end)
