-- lumen.explain.synthesis: what the input-synthesis methods (class_model, deepdream) share: jitter as a
-- random roll of the image with wrap-around (undone after each step) and the total-variation penalty.
local lumen = require "lumen"

local M = {}

-- Rolls (N, C, H, W) by (dy, dx) pixels with wrap-around: out[i, j] = x[i - dy, j - dx].
function M.roll(x, dy, dx)
  local function roll_dim(t, d, k)
    local n = t.shape[d]
    k = k % n
    if k == 0 then return t end
    return lumen.cat({ t:narrow(d, n - k + 1, k), t:narrow(d, 1, n - k) }, d)
  end
  return roll_dim(roll_dim(x, 3, dy), 4, dx)
end

-- Total variation of (N, C, H, W): the sum of squared differences between neighbouring pixels.
function M.tv(x)
  local H, W = x.shape[3], x.shape[4]
  local dy = x:narrow(3, 2, H - 1) - x:narrow(3, 1, H - 1)
  local dx = x:narrow(4, 2, W - 1) - x:narrow(4, 1, W - 1)
  return (dy * dy):sum() + (dx * dx):sum()
end

-- A random integer in [-j, j] from lumen's RNG (0 when j is nil or 0).
function M.jitter(j)
  if not j or j <= 0 then return 0 end
  return lumen.randint(2 * j + 1) - j - 1
end

return M
