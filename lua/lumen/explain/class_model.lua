-- Class-model visualisation (Simonyan, Vedaldi & Zisserman 2014, "Deep Inside Convolutional
-- Networks"): gradient ascent on the input image I to maximise S_c(I) - lambda ||I||_2^2 (S_c the score
-- before softmax), from small noise or a given image, with optional regularisers that make the picture
-- more natural: random jitter (a roll, undone after the step), Gaussian blur every `blur_every` steps,
-- total variation (Mahendran & Vedaldi 2015).
-- opts: target (required: a 1-based class id); steps = 200; lr = 0.1; l2 = 1e-3 (lambda); tv = 0;
--       jitter = 0 (pixels); blur_every = 0 (never); blur_sigma = 0.5; clamp = {lo, hi} (default none);
--       init = tensor (1, C, H, W) (default N(0, 0.01^2) noise of shape opts.shape, or (1, C, H, W) from
--       model.input_spec); probabilities = false.
-- Returns the image (1, C, H, W) and the score curve: S_c of the (jittered) image each step started
-- from, then of the final image (steps + 1 numbers).
local lumen = require "lumen"
local common = require "lumen.explain.common"
local synthesis = require "lumen.explain.synthesis"

local M = {}

local OPTIONS = common.options("class_model", {
  target = { common.REQUIRED, "integer >= 1" }, steps = { 200, "integer >= 1" }, lr = { 0.1, "number > 0" },
  l2 = { 1e-3, "number >= 0" }, tv = { 0, "number >= 0" }, jitter = { 0, "integer >= 0" },
  blur_every = { 0, "integer >= 0" }, blur_sigma = { 0.5, "number > 0" }, clamp = { nil, "table" },
  init = { nil, "tensor" }, shape = { nil, "table" }, probabilities = { false, "boolean" },
})

function M.class_model(model, opts)
  local o = OPTIONS(opts, model)
  local target = o.target
  if o.clamp and not (type(o.clamp[1]) == "number" and type(o.clamp[2]) == "number" and o.clamp[1] < o.clamp[2]) then
    OPTIONS:fail("clamp", o.clamp, "{lo, hi} with lo < hi", 2)
  end
  local x = o.init
  if not x then
    local shape = o.shape
    if not shape and type(model) == "table" and model.input_spec and model.input_spec.size then
      local s = model.input_spec
      shape = { 1, s.channels or 3, s.size[1], s.size[2] }
    end
    if not shape then error("class_model: give opts.init or opts.shape (the model has no input_spec)", 2) end
    x = lumen.randn(shape) * 0.01
  end
  x = x:detach()
  local steps, lr, l2, tv = o.steps, o.lr, o.l2, o.tv
  local curve = {}
  local bar = lumen.progress(steps, "class model")
  for step = 1, steps do
    local dy, dx = synthesis.jitter(o.jitter), synthesis.jitter(o.jitter)
    local xj = synthesis.roll(x, dy, dx):detach()
    xj.requires_grad = true
    local scores = common.scores(model, xj, o)
    if step == 1 then common.targets(scores, target, "class_model") end -- in range
    local score = scores:narrow(2, target, 1):sum()
    curve[step] = score:item()
    local obj = score - (xj * xj):sum() * l2
    if tv > 0 then obj = obj - synthesis.tv(xj) * tv end
    x = synthesis.roll(xj:detach() + lumen.grad(obj, xj) * lr, -dy, -dx)
    if o.blur_every > 0 and step % o.blur_every == 0 then
      x = lumen.gaussian_blur(x, o.blur_sigma)
    end
    if o.clamp then x = x:clamp(o.clamp[1], o.clamp[2]) end
    bar:update(step, ("score %.3f"):format(curve[step]))
  end
  bar:done()
  curve[steps + 1] = lumen.no_grad(common.scores, model, x, o):get { 1, target }
  return x, curve
end

return M
