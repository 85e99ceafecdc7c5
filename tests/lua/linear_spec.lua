-- tests/lua/linear_spec.lua — lumen.linear (y = x w^T + b over the last dimension, PyTorch layout) and
-- lumen.embedding (row lookup with 1-based ids, scatter-add backward): values, gradients, errors.
local lumen = require "lumen"
local support = require "support"

-- both ops are linear in each argument: a large step is exact
local function gradcheck(fn, inputs) support.assert_gradcheck(fn, inputs, 0.1) end

describe("lumen.linear", function()
  lumen.seed(8)

  it("computes x w^T + b", function()
    local x = lumen.tensor { { 1, 2, 3 }, { -1, 0, 2 } }
    local w = lumen.tensor { { 1, 0, 1 }, { 0.5, -1, 2 } }
    local y = lumen.linear(x, w, lumen.tensor { 10, 20 })
    assert.same({ { 14, 24.5 }, { 11, 23.5 } }, y:totable())
    assert.same({ { 4, 4.5 }, { 1, 3.5 } }, lumen.linear(x, w):totable())
  end)

  it("maps the last dimension of any input", function()
    local y = lumen.linear(lumen.randn { 2, 3, 4, 5 }, lumen.randn { 6, 5 })
    assert.same({ 2, 3, 4, 6 }, y.shape)
    assert.same({ 6 }, lumen.linear(lumen.randn { 5 }, lumen.randn { 6, 5 }).shape)
  end)

  it("gradients", function()
    gradcheck(function(x, w, b) return lumen.linear(x, w, b) end,
              { lumen.randn { 4, 5 }, lumen.randn { 3, 5 }, lumen.randn { 3 } })
    gradcheck(function(x, w) return lumen.linear(x, w) end, { lumen.randn { 2, 3, 5 }, lumen.randn { 4, 5 } })
  end)

  it("names the shapes in errors", function()
    local ok, err = pcall(lumen.linear, lumen.randn { 2, 4 }, lumen.randn { 3, 5 })
    assert.is_false(ok)
    assert.truthy(err:find("linear: input (2, 4) has 4 features but weight (3, 5) expects 5", 1, true))
    ok, err = pcall(lumen.linear, lumen.randn { 2, 5 }, lumen.randn { 3, 5 }, lumen.randn { 4 })
    assert.is_false(ok)
    assert.truthy(err:find("linear: bias (4,) does not match weight (3, 5)", 1, true))
  end)
end)

describe("lumen.embedding", function()
  lumen.seed(9)

  it("picks rows by 1-based id", function()
    local w = lumen.tensor { { 1, 2 }, { 3, 4 }, { 5, 6 } }
    local y = lumen.embedding(lumen.tensor({ { 3, 1 }, { 2, 2 } }, "int64"), w)
    assert.same({ { { 5, 6 }, { 1, 2 } }, { { 3, 4 }, { 3, 4 } } }, y:totable())
  end)

  it("adds the gradients of repeated ids", function()
    local w = lumen.randn { 4, 3 }
    w.requires_grad = true
    local ids = lumen.tensor({ { 2, 4, 2 } }, "int64")
    local gy = lumen.tensor { { { 1, 2, 3 }, { 10, 20, 30 }, { 100, 200, 300 } } }
    local g = lumen.grad(lumen.embedding(ids, w), w, { gy })
    assert.same({ { 0, 0, 0 }, { 101, 202, 303 }, { 0, 0, 0 }, { 10, 20, 30 } }, g:totable())
  end)

  it("gradients", function()
    local ids = lumen.tensor({ { 1, 5, 2, 5 }, { 3, 3, 1, 4 } }, "int64")
    gradcheck(function(ids, w) return lumen.embedding(ids, w) end, { ids, lumen.randn { 5, 3 } })
  end)

  it("names the id and the vocabulary size when an id is out of range", function()
    local w = lumen.randn { 5, 2 }
    local ok, err = pcall(lumen.embedding, lumen.tensor({ { 1, 6 } }, "int64"), w)
    assert.is_false(ok)
    assert.truthy(err:find("embedding: id 6 is out of range for a vocabulary of 5 (ids are 1-based)", 1, true))
    ok, err = pcall(lumen.embedding, lumen.tensor({ 0 }, "int64"), w)
    assert.is_false(ok)
    assert.truthy(err:find("embedding: id 0 is out of range", 1, true))
  end)
end)
