-- lumen.linalg: small dense linear algebra in float64 Lua numbers, for the local surrogate models of
-- LIME and KernelSHAP (tens to hundreds of features, a few thousand samples) and the principal component
-- of EigenCAM. Matrices are arrays of rows, vectors arrays of numbers.
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

-- Eigen-decomposition of a symmetric matrix A (n×n, arrays of rows; only its values are read):
-- Householder reduction to tridiagonal form, then the implicit QL algorithm (tred2 / tql2 of EISPACK, as
-- in JAMA), in float64. Returns the eigenvalues in descending order and the unit eigenvectors as the
-- columns of V (V[i][k] is entry i of the vector of value k): A V = V diag(values), V^T V = I.
-- Raises when A is not square or QL does not converge (30 iterations per value).
function M.eigh(A)
  local n = #A
  local V, d, e = {}, {}, {}
  for i = 1, n do
    if #A[i] ~= n then
      error(("eigh: expected a square matrix, row %d has %d entries for %d rows"):format(i, #A[i], n), 2)
    end
    V[i] = {}
    for j = 1, n do V[i][j] = A[i][j] end
  end
  if n == 0 then return {}, {} end
  -- tred2: V becomes the orthogonal transformation, d the diagonal, e the off-diagonal
  for j = 1, n do d[j] = V[n][j] end
  for i = n, 2, -1 do
    local scale, h = 0, 0
    for k = 1, i - 1 do scale = scale + math.abs(d[k]) end
    if scale == 0 then
      e[i] = d[i - 1]
      for j = 1, i - 1 do
        d[j] = V[i - 1][j]
        V[i][j], V[j][i] = 0, 0
      end
    else
      for k = 1, i - 1 do
        d[k] = d[k] / scale
        h = h + d[k] * d[k]
      end
      local f = d[i - 1]
      local g = math.sqrt(h)
      if f > 0 then g = -g end
      e[i] = scale * g
      h = h - f * g
      d[i - 1] = f - g
      for j = 1, i - 1 do e[j] = 0 end
      for j = 1, i - 1 do
        f = d[j]
        V[j][i] = f
        g = e[j] + V[j][j] * f
        for k = j + 1, i - 1 do
          g = g + V[k][j] * d[k]
          e[k] = e[k] + V[k][j] * f
        end
        e[j] = g
      end
      f = 0
      for j = 1, i - 1 do
        e[j] = e[j] / h
        f = f + e[j] * d[j]
      end
      local hh = f / (h + h)
      for j = 1, i - 1 do e[j] = e[j] - hh * d[j] end
      for j = 1, i - 1 do
        f, g = d[j], e[j]
        for k = j, i - 1 do V[k][j] = V[k][j] - (f * e[k] + g * d[k]) end
        d[j] = V[i - 1][j]
        V[i][j] = 0
      end
    end
    d[i] = h
  end
  for i = 1, n - 1 do -- accumulate the transformations
    V[n][i] = V[i][i]
    V[i][i] = 1
    local h = d[i + 1]
    if h ~= 0 then
      for k = 1, i do d[k] = V[k][i + 1] / h end
      for j = 1, i do
        local g = 0
        for k = 1, i do g = g + V[k][i + 1] * V[k][j] end
        for k = 1, i do V[k][j] = V[k][j] - g * d[k] end
      end
    end
    for k = 1, i do V[k][i + 1] = 0 end
  end
  for j = 1, n do
    d[j] = V[n][j]
    V[n][j] = 0
  end
  V[n][n] = 1
  e[1] = 0
  -- tql2: QL iterations with implicit shifts on the tridiagonal (d, e)
  for i = 2, n do e[i - 1] = e[i] end
  e[n] = 0
  local f, tst1, eps = 0, 0, 2.0 ^ -52
  for l = 1, n do
    tst1 = math.max(tst1, math.abs(d[l]) + math.abs(e[l]))
    local m = l
    while m < n and math.abs(e[m]) > eps * tst1 do m = m + 1 end
    if m > l then
      local iter = 0
      repeat
        iter = iter + 1
        if iter > 30 then error("eigh: no convergence after 30 QL iterations", 2) end
        local g = d[l]
        local p = (d[l + 1] - g) / (2 * e[l])
        local r = math.sqrt(p * p + 1)
        if p < 0 then r = -r end
        d[l] = e[l] / (p + r)
        d[l + 1] = e[l] * (p + r)
        local dl1 = d[l + 1]
        local h = g - d[l]
        for i = l + 2, n do d[i] = d[i] - h end
        f = f + h
        p = d[m]
        local c, c2, c3, el1, s, s2 = 1, 1, 1, e[l + 1], 0, 0
        for i = m - 1, l, -1 do
          c3, c2, s2 = c2, c, s
          g = c * e[i]
          h = c * p
          r = math.sqrt(p * p + e[i] * e[i])
          e[i + 1] = s * r
          s = e[i] / r
          c = p / r
          p = c * d[i] - s * g
          d[i + 1] = h + s * (c * g + s * d[i])
          for k = 1, n do
            local row = V[k]
            h = row[i + 1]
            row[i + 1] = s * row[i] + c * h
            row[i] = c * row[i] - s * h
          end
        end
        p = -s * s2 * c3 * el1 * e[l] / dl1
        e[l] = s * p
        d[l] = c * p
      until math.abs(e[l]) <= eps * tst1
    end
    d[l] = d[l] + f
    e[l] = 0
  end
  -- descending order
  local order = {}
  for i = 1, n do order[i] = i end
  table.sort(order, function(a, b) return d[a] > d[b] end)
  local values, vectors = {}, {}
  for k, j in ipairs(order) do values[k] = d[j] end
  for i = 1, n do
    local row, src = {}, V[i]
    for k, j in ipairs(order) do row[k] = src[j] end
    vectors[i] = row
  end
  return values, vectors
end

return M
