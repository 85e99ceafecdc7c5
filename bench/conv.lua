-- bench/conv.lua: lumen side of the conv bench: lumen.conv2d forward and forward+backward (d/dx and d/dw)
-- on the ResNet-18 layer shapes of bench/conv_cases.json, at each batch size. FLOPs: forward
-- 2*N*O*C*kh*kw*Ho*Wo, forward+backward 3x that. Run: ./build/lumen run bench/conv.lua
-- [batches=1,32 reps=10 reps_big=3] (reps_big: batches > 1). Twin: bench/conv_torch.py.
local lumen = require "lumen"
local B = dofile(arg[0]:match("^(.*)/") .. "/benchlib.lua")

local p = B.args { batches = "1,32", reps = 10, reps_big = 3 }

local function forward_flop(c, batch)
  local ho = (c.hw + 2 * c.pad - c.k) // c.stride + 1
  return 2 * batch * c.o * c.c * c.k * c.k * ho * ho
end

local cases = B.read_json("conv_cases.json")
for _, batch in ipairs(B.int_list(p.batches)) do
  local reps = batch == 1 and p.reps or p.reps_big
  for _, c in ipairs(cases) do
    local opts = { stride = c.stride, padding = c.pad }
    local x = lumen.randn { batch, c.c, c.hw, c.hw }
    local w = lumen.normal({ c.o, c.c, c.k, c.k }, 0, 0.05)
    local flop = forward_flop(c, batch)
    B.try(c.name .. " fwd", function()
      local ms = B.measure(function() lumen.conv2d(x, w, nil, opts) end, reps)
      B.emit("conv", c.name, batch, "fwd", ms, flop)
    end)
    B.try(c.name .. " fwd+bwd", function()
      local xg, wg = x:clone(), w:clone()
      xg.requires_grad, wg.requires_grad = true, true
      local g = lumen.randn(lumen.conv2d(x, w, nil, opts).shape) -- the upstream gradient
      local ms = B.measure(function() lumen.grad(lumen.conv2d(xg, wg, nil, opts), { xg, wg }, { g }) end, reps)
      B.emit("conv", c.name, batch, "fwd+bwd", ms, 3 * flop)
    end)
  end
end
