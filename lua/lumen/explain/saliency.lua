-- Vanilla saliency (Simonyan, Vedaldi & Zisserman 2014, "Deep Inside Convolutional Networks").
-- Computes M = |dS_c/dI| at the input I: the gradient of the target class score (before softmax)
-- with respect to every input element, for every sample of the batch.
-- opts: target = each sample's top class (a class id or one per sample); abs = true (false gives the
--       signed gradient); probabilities = false (true: differentiate softmax(scores) instead).
-- Returns the map shaped like x, the targets (a Lua array, one per sample) and the scores. For a
-- picture take the max over channels as the paper does: `map:abs():amax(2, true)`.
local common = require "lumen.explain.common"

local M = {}

local OPTIONS = common.options("saliency", {
  target = { nil, "target" }, abs = { true, "boolean" }, probabilities = { false, "boolean" },
})

function M.saliency(model, x, opts)
  local o = OPTIONS(opts, model)
  local g, scores, targets = common.input_gradient(model, x, o.target, o, "saliency")
  if o.abs then g = g:abs() end
  return g, targets, scores
end

return M
