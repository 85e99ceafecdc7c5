-- lumen.linalg: small dense linear algebra in float64 Lua numbers, for the local surrogate models of
-- LIME and KernelSHAP (tens to hundreds of features, a few thousand samples).
local M = {}

-- Solves A x = b (A n×n as an array of rows, b an array) by Gaussian elimination with partial pivoting.
-- Returns x, or nil and a message when A is singular.
function M.solve(A, b)
  local n = #b
  local a = {}
  for i = 1, n do
    local row = {}
    for j = 1, n do row[j] = A[i][j] end
    row[n + 1] = b[i]
    a[i] = row
  end
  for c = 1, n do
    local p, best = c, math.abs(a[c][c])
    for r = c + 1, n do
      local v = math.abs(a[r][c])
      if v > best then p, best = r, v end
    end
    if best < 1e-300 then return nil, "singular matrix" end
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

-- Weighted ridge regression y ≈ intercept + Z beta, minimising sum_i w_i (y_i - ...)^2 + ridge |beta|^2
-- (the intercept is not penalised). Z: array of rows (arrays of numbers), y, w: arrays.
-- Returns beta (array), intercept, weighted R^2 of the fit.
function M.ridge(Z, y, w, ridge, fit_intercept)
  ridge = ridge or 0
  if fit_intercept == nil then fit_intercept = true end
  local n, d = #Z, #Z[1]
  local p = fit_intercept and d + 1 or d
  local A, b = {}, {}
  for i = 1, p do
    A[i] = {}
    for j = 1, p do A[i][j] = 0 end
    b[i] = 0
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
  if not x then error("ridge: " .. err .. " (too few samples, or features that never change?)", 2) end
  local intercept = fit_intercept and x[p] or 0
  local beta = {}
  for j = 1, d do beta[j] = x[j] end
  -- weighted R^2
  local sw, my = 0, 0
  for s = 1, n do sw, my = sw + w[s], my + w[s] * y[s] end
  my = my / sw
  local ss_res, ss_tot = 0, 0
  for s = 1, n do
    local pred = intercept
    for j = 1, d do pred = pred + Z[s][j] * beta[j] end
    ss_res = ss_res + w[s] * (y[s] - pred) ^ 2
    ss_tot = ss_tot + w[s] * (y[s] - my) ^ 2
  end
  local r2 = ss_tot > 0 and 1 - ss_res / ss_tot or 1
  return beta, intercept, r2
end

return M
