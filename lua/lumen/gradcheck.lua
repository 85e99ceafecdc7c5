-- lumen.gradcheck(fn, inputs [, opts]) -> true, or false and a message.
--
-- Compares the tape's gradient of sum(fn(inputs...) * r), for a fixed random r, with central finite
-- differences, element by element, accumulating the projected outputs in float64 (Lua numbers).
-- Non-tensor entries of `inputs` are passed through unchanged; int64 tensors are not checked.
-- opts: eps = 1e-3, atol = 1e-3, rtol = 1e-2, max_checks = 4000 (elements per input, evenly spread),
--       check = {true, false, ...} (which inputs to check; default all float tensors).
-- The global RNG state is left as it was.
local core = require "lumen.core"

return function(fn, inputs, opts)
  local lumen = require "lumen"
  opts = opts or {}
  local eps, atol, rtol = opts.eps or 1e-3, opts.atol or 1e-3, opts.rtol or 1e-2
  local max_checks = opts.max_checks or 4000
  local s1, s2, s3, s4 = core.rng_state()

  local args, n = {}, #inputs
  local checked = {}
  for i = 1, n do
    local x = inputs[i]
    if core.is_tensor(x) and core.dtype(x) == "float32" and (opts.check == nil or opts.check[i]) then
      args[i] = lumen.autograd.set_requires_grad(core.clone(x), true)
      checked[#checked + 1] = i
    else
      args[i] = x
    end
  end
  if #checked == 0 then return false, "gradcheck: no float32 tensor inputs to check" end

  local out = fn(table.unpack(args, 1, n))
  if not core.is_tensor(out) then return false, "gradcheck: fn must return a tensor" end
  core.seed(12345)
  local r = lumen.randn(core.shape(out))
  core.rng_state(s1, s2, s3, s4)

  local function projected()
    local y = lumen.no_grad(fn, table.unpack(args, 1, n))
    local acc = 0.0
    for j = 1, core.numel(y) do acc = acc + core.flat_get(y, j) * core.flat_get(r, j) end
    return acc
  end

  local leaves = {}
  for k, i in ipairs(checked) do leaves[k] = args[i] end
  local grads = lumen.grad(out, leaves, { r }, { allow_unused = true }) -- an unused input: 0 both ways

  for k, i in ipairs(checked) do
    local x, g = args[i], grads[k]
    local numel = core.numel(x)
    local step = math.max(1, numel // max_checks)
    for j = 1, numel, step do
      local v = core.flat_get(x, j)
      core.flat_set(x, j, v + eps)
      local fp = projected()
      core.flat_set(x, j, v - eps)
      local fm = projected()
      core.flat_set(x, j, v)
      local num = (fp - fm) / (2 * eps)
      local ana = core.flat_get(g, j)
      if math.abs(ana - num) > atol + rtol * math.abs(num) then
        return false, ("gradcheck: input %d, element %d: analytic %.6g, numeric %.6g"):format(i, j, ana, num)
      end
    end
  end
  return true
end
