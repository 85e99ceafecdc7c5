-- Guided backpropagation (Springenberg, Dosovitskiy, Brox & Riedmiller 2015, "Striving for
-- Simplicity: The All Convolutional Net") and the deconvnet backward pass (Zeiler & Fergus 2014), both
-- as swapped backward rules of the ReLU-like ops (relu, relu6, clip, leaky_relu) — the model is not
-- copied or modified. Guided: a ReLU passes a gradient only where its input was positive AND the
-- gradient is positive. Deconvnet: a ReLU passes ReLU(gradient), ignoring the forward input.
-- opts: target = each sample's top class; probabilities = false.
-- Returns the map shaped like x and the targets (a Lua array, one per sample).
-- rules(kind) gives the rule set ("guided" or "deconvnet") for lumen.with_rules, for other methods.
local lumen = require "lumen"
local common = require "lumen.explain.common"

local M = {}

local RELU_LIKE = { "relu", "relu6", "clip", "leaky_relu" }

local KINDS = {
  -- The op's own gradient, kept where it is positive and the op's input was positive.
  guided = function(ctx, g) return ctx.default(ctx, g):relu() * ctx.x:gt(0) end,
  deconvnet = function(_, g) return g:relu() end,
}

function M.rules(kind)
  local rule = KINDS[kind] or error(("rules: kind must be 'guided' or 'deconvnet', got %s"):format(tostring(kind)), 2)
  local r = {}
  for _, op in ipairs(RELU_LIKE) do r[op] = rule end
  return r
end

local OPTIONS = {}
for _, method in ipairs { "guided_backprop", "deconvnet" } do
  OPTIONS[method] = common.options(method, { target = { nil, "target" }, probabilities = { false, "boolean" } })
end

local function run(kind, method, model, x, opts)
  local o = OPTIONS[method](opts, model)
  return lumen.with_rules(M.rules(kind), function()
    local g, _, targets = common.input_gradient(model, x, o.target, o, method)
    return g, targets
  end)
end

function M.guided_backprop(model, x, opts) return run("guided", "guided_backprop", model, x, opts) end
function M.deconvnet(model, x, opts) return run("deconvnet", "deconvnet", model, x, opts) end

return M
