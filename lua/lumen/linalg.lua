-- lumen.linalg: small dense linear algebra in float64 Lua numbers, for the local surrogate models of
-- LIME and KernelSHAP (tens to hundreds of features, a few thousand samples). Matrices are arrays of
-- rows, vectors arrays of numbers.
local M = {}

-- Solves A x = b (A n×n) by Gaussian elimination with partial pivoting. Returns x, or nil and a message
-- when A is singular (a pivot below 1e-13 of A's largest entry).
function M.solve(A, b)
  local n = #b
  local a, scale = {}, 0
  for i = 1, n do
    local row = {}
    for j = 1, n do
      row[j] = A[i][j]
      scale = math.max(scale, math.abs(row[j]))
    end
    row[n + 1] = b[i]
    a[i] = row
  end
  for c = 1, n do
    local p, best = c, math.abs(a[c][c])
    for r = c + 1, n do
      local v = math.abs(a[r][c])
      if v > best then p, best = r, v end
    end
    if best <= scale * 1e-13 then return nil, ("singular matrix (column %d)"):format(c) end
    a[c], a[p] = a[p], a[c]
    local pivot = a[c]
    for r = c + 1, n do
      local row = a[r]
      local f = row[c] / pivot[c]
      if f ~= 0 then
        for j = c, n + 1 do row[j] = row[j] - f * pivot[j] end
      end
    end
  end
  local x = {}
  for i = n, 1, -1 do
    local s = a[i][n + 1]
    for j = i + 1, n do s = s - a[i][j] * x[j] end
    x[i] = s / a[i][i]
  end
  return x
end

-- Weighted ridge regression y ≈ intercept + Z beta, minimising sum_s w_s (y_s - ...)^2 + ridge |beta|^2
-- (the intercept is not penalised), through the normal equations. Z: n rows of d numbers; y, w: n numbers;
-- ridge = 0; fit_intercept = true. Returns beta (d numbers), the intercept (0 without one) and the
-- weighted R^2 of the fit (1 when y is constant). Raises when the system is singular.
function M.ridge(Z, y, w, ridge, fit_intercept)
  ridge = ridge or 0
  if fit_intercept == nil then fit_intercept = true end
  local n, d = #Z, #Z[1]
  local p = fit_intercept and d + 1 or d
  local A, b = {}, {}
  for i = 1, p do
    A[i], b[i] = {}, 0
    for j = 1, p do A[i][j] = 0 end
  end
  local row = {}
  for s = 1, n do
    local z, ws, ys = Z[s], w[s], y[s]
    for j = 1, d do row[j] = z[j] end
    if fit_intercept then row[p] = 1 end
    for i = 1, p do
      local ri = row[i] * ws
      if ri ~= 0 then
        local Ai = A[i]
        for j = i, p do Ai[j] = Ai[j] + ri * row[j] end
        b[i] = b[i] + ri * ys
      end
    end
  end
  for i = 1, p do
    for j = 1, i - 1 do A[i][j] = A[j][i] end
    if i <= d then A[i][i] = A[i][i] + ridge end
  end
  local x, err = M.solve(A, b)
  if not x then error("ridge: " .. err .. " (too few samples, or a feature that never changes?)", 2) end
  local intercept = fit_intercept and x[p] or 0
  local beta = { table.unpack(x, 1, d) }
  local sw, my = 0, 0
  for s = 1, n do sw, my = sw + w[s], my + w[s] * y[s] end
  my = my / sw
  local ss_res, ss_tot = 0, 0
  for s = 1, n do
    local pred, z = intercept, Z[s]
    for j = 1, d do pred = pred + z[j] * beta[j] end
    ss_res = ss_res + w[s] * (y[s] - pred) ^ 2
    ss_tot = ss_tot + w[s] * (y[s] - my) ^ 2
  end
  return beta, intercept, ss_tot > 0 and 1 - ss_res / ss_tot or 1
end

return M
