-- Guided backpropagation (Springenberg et al. 2015, "Striving for Simplicity") and the deconvnet
-- backward pass (Zeiler & Fergus 2014), both as swapped backward rules of ReLU-like ops — the model is
-- not copied or modified. Guided: a ReLU passes a gradient only where its input was positive AND the
-- gradient is positive. Deconvnet: a ReLU passes ReLU(gradient), ignoring the forward input.
-- opts: target = top class; probabilities = false. Returns the map shaped like x and the targets.
local lumen = require "lumen"
local common = require "lumen.explain.common"

local M = {}

local function positive(g) return g:relu() end

-- The rules, by op name; exported so other methods (Guided Grad-CAM, deconv) can reuse them.
M.guided_rules = {
  relu = function(ctx, g) return positive(g) * ctx.inputs[1]:gt(0) end,
}
M.deconvnet_rules = {
  relu = function(ctx, g) return positive(g) end,
}

local function clip_rule(kind)
  return function(ctx, g)
    local x = ctx.args[1]
    local default = ctx.default(ctx, g)
    if kind == "deconvnet" then return positive(g) end
    return positive(default) * x:gt(0)
  end
end

local function with_clip(rules, kind)
  local r = {}
  for k, v in pairs(rules) do r[k] = v end
  for _, op in ipairs { "relu6", "clip", "leaky_relu" } do
    if lumen.autograd.ops[op] then r[op] = clip_rule(kind) end
  end
  return r
end

-- The full rule set of a kind ("guided" or "deconvnet"), covering ReLU and the ReLU-like ops.
function M.rules(kind)
  return with_clip(kind == "deconvnet" and M.deconvnet_rules or M.guided_rules, kind)
end

local function run(rules, model, x, opts)
  opts = opts or {}
  return lumen.with_rules(rules, function()
    local g, _, targets = common.input_gradient(model, x, opts.target, opts)
    return g, targets
  end)
end

function M.guided_backprop(model, x, opts) return run(M.rules("guided"), model, x, opts) end
function M.deconvnet(model, x, opts) return run(M.rules("deconvnet"), model, x, opts) end

return M
