-- Vanilla saliency (Simonyan, Vedaldi & Zisserman 2014, "Deep Inside Convolutional Networks").
-- Computes M = |dS_c/dI| at the input I: the gradient of the target class score (before softmax)
-- with respect to every input element.
-- opts: target = top class; abs = true (false gives the signed gradient);
--       probabilities = false (true: differentiate the softmax output instead of the score).
-- Returns the map shaped like x, the targets, and the scores. For a picture, reduce over channels
-- with lumen.explain.common or `map:abs():max(2)` (the paper takes the max over channels).
local common = require "lumen.explain.common"

return function(model, x, opts)
  opts = opts or {}
  local g, scores, targets = common.input_gradient(model, x, opts.target, opts)
  if opts.abs ~= false then g = g:abs() end
  return g, targets, scores
end
