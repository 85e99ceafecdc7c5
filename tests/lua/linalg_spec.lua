-- Specs for lumen.linalg: the float64 solver and weighted ridge regression behind LIME and KernelSHAP, and the
-- symmetric eigen-decomposition behind EigenCAM.
local lumen = require "lumen"
local linalg = lumen.linalg

local function near(a, b, tol) return math.abs(a - b) <= (tol or 1e-10) * math.max(1, math.abs(b)) end

describe("lumen.linalg", function()
  describe("solve()", function()
    it("solves a system that needs pivoting", function()
      local A = { { 0, 2, 1 }, { 1, 1, 1 }, { 4, -1, 3 } } -- A[1][1] = 0: no pivoting would divide by 0
      local x = linalg.solve(A, { 7, 6, 11 })
      for i = 1, 3 do
        local s = 0
        for j = 1, 3 do s = s + A[i][j] * x[j] end
        assert.is_true(near(s, ({ 7, 6, 11 })[i]), ("row %d: %g"):format(i, s))
      end
      assert.is_true(near(x[1], 1) and near(x[2], 2) and near(x[3], 3))
    end)

    it("reports a singular matrix instead of returning garbage", function()
      local x, msg = linalg.solve({ { 1, 2 }, { 2, 4 } }, { 1, 2 })
      assert.is_nil(x)
      assert.matches("singular", msg)
      assert.is_nil((linalg.solve({ { 0, 0 }, { 0, 0 } }, { 0, 0 })))
    end)
  end)

  describe("ridge()", function()
    -- y = 3 + 2 z1 - z2 exactly, on 20 points
    local Z, y, w = {}, {}, {}
    for s = 1, 20 do
      local z1, z2 = math.sin(s), math.cos(3 * s)
      Z[s], y[s], w[s] = { z1, z2 }, 3 + 2 * z1 - z2, 1 + s % 3
    end

    it("recovers an exact linear relation with R^2 = 1", function()
      local beta, b0, r2 = linalg.ridge(Z, y, w)
      assert.is_true(near(beta[1], 2) and near(beta[2], -1) and near(b0, 3))
      assert.is_true(near(r2, 1))
    end)

    it("without an intercept fits through the origin", function()
      local y0 = {}
      for s = 1, 20 do y0[s] = y[s] - 3 end
      local beta, b0 = linalg.ridge(Z, y0, w, 0, false)
      assert.equal(0, b0)
      assert.is_true(near(beta[1], 2) and near(beta[2], -1))
    end)

    it("matches the closed form (Z'WZ + ridge I) beta = Z'Wy with a penalised slope", function()
      -- one feature, centred data and no intercept: beta = sum w z y / (sum w z^2 + ridge)
      local Z1, y1, w1 = { { -1 }, { 0 }, { 2 } }, { -2, 1, 3 }, { 1, 2, 0.5 }
      local beta = linalg.ridge(Z1, y1, w1, 1.5, false)
      assert.is_true(near(beta[1], (2 + 0 + 3) / (1 + 0 + 2 + 1.5)))
    end)

    it("weights samples: a zero weight removes a sample, and R^2 is the weighted one", function()
      local Z2, y2 = { { 0 }, { 1 }, { 2 }, { 3 } }, { 0, 1, 2, 100 }
      local beta, b0, r2 = linalg.ridge(Z2, y2, { 1, 1, 1, 0 })
      assert.is_true(near(beta[1], 1) and near(b0, 0) and near(r2, 1))
      local _, _, r2b = linalg.ridge(Z2, y2, { 1, 1, 1, 1 })
      assert.is_true(r2b < 0.9)
    end)

    it("raises on a feature that never changes without an intercept's help", function()
      assert.has_error(function() linalg.ridge({ { 1, 1 }, { 1, 1 }, { 1, 1 } }, { 1, 2, 3 }, { 1, 1, 1 }) end)
    end)
  end)
  describe("eigh()", function()
    it("decomposes a known matrix, with values in descending order", function()
      local values, V = linalg.eigh { { 2, 1 }, { 1, 2 } }
      assert.is_true(near(values[1], 3) and near(values[2], 1))
      assert.is_true(near(math.abs(V[1][1]), math.sqrt(0.5)) and near(V[1][1], V[2][1]))
      assert.is_true(near(V[1][2], -V[2][2]))
    end)

    it("gives A V = V diag(values) and V^T V = I for random symmetric matrices up to 60 x 60", function()
      lumen.seed(4)
      for _, n in ipairs { 1, 2, 3, 7, 24, 60 } do
        local B = lumen.randn { n, n }
        local A = (B + B:t()):totable()
        local values, V = linalg.eigh(A)
        for k = 1, n do
          if k > 1 then assert.is_true(values[k] <= values[k - 1], "descending") end
          for i = 1, n do
            local s = 0
            for j = 1, n do s = s + A[i][j] * V[j][k] end
            assert.is_true(math.abs(s - values[k] * V[i][k]) < 1e-11 * n, ("n = %d: A v - lambda v"):format(n))
          end
          for k2 = k, n do
            local d = 0
            for i = 1, n do d = d + V[i][k] * V[i][k2] end
            assert.is_true(math.abs(d - (k == k2 and 1 or 0)) < 1e-12 * n, ("n = %d: orthonormal"):format(n))
          end
        end
      end
    end)

    it("handles repeated and zero eigenvalues, and refuses a matrix that is not square", function()
      local values, V = linalg.eigh { { 2, 0, 0 }, { 0, 0, 0 }, { 0, 0, 2 } }
      assert.same({ 2, 2, 0 }, values)
      assert.is_true(near(math.abs(V[2][3]), 1))
      values = linalg.eigh { { 0, 0 }, { 0, 0 } }
      assert.same({ 0, 0 }, values)
      assert.same({}, (linalg.eigh {}))
      assert.has_error(function() linalg.eigh { { 1, 2 }, { 3 } } end,
        "eigh: expected a square matrix, row 2 has 1 entries for 2 rows")
    end)
  end)
end)
