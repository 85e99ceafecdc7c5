-- Class-model visualisation (Simonyan, Vedaldi & Zisserman 2014, "Deep Inside Convolutional
-- Networks"): gradient ascent on the input image I to maximise S_c(I) - lambda ||I||_2^2 (S_c the score
-- before softmax), from small noise or a given image, with optional regularisers that make the picture
-- more natural: random jitter (a roll, undone after the step), Gaussian blur every `blur_every` steps,
-- total variation (Mahendran & Vedaldi 2015).
-- opts: target (required: 1-based class id); steps = 200; lr = 0.1; l2 = 1e-3 (lambda); tv = 0;
--       jitter = 0 (pixels); blur_every = 0 (never); blur_sigma = 0.5; clamp = {lo, hi} (default none);
--       init = tensor (1, C, H, W) (default N(0, 0.01^2) noise of shape opts.shape, or (1, C, H, W) from
--       model.input_spec); probabilities = false.
-- Returns the image (1, C, H, W) and the score curve: S_c of the (jittered) image each step started
-- from, then of the final image (steps + 1 numbers).
local lumen = require "lumen"
local common = require "lumen.explain.common"
local synthesis = require "lumen.explain.synthesis"

return function(model, opts)
  opts = opts or {}
  local target = opts.target or error("class_model: opts.target (a 1-based class id) is required", 2)
  local x = opts.init
  if not x then
    local shape = opts.shape
    if not shape and type(model) == "table" and model.input_spec and model.input_spec.size then
      local s = model.input_spec
      shape = { 1, s.channels or 3, s.size[1], s.size[2] }
    end
    if not shape then error("class_model: give opts.init or opts.shape (the model has no input_spec)", 2) end
    x = lumen.randn(shape) * 0.01
  end
  x = x:detach()
  local steps, lr, l2, tv = opts.steps or 200, opts.lr or 0.1, opts.l2 or 1e-3, opts.tv or 0
  local curve = {}
  local bar = lumen.progress(steps, "class model")
  for step = 1, steps do
    local dy, dx = synthesis.jitter(opts.jitter), synthesis.jitter(opts.jitter)
    local xj = synthesis.roll(x, dy, dx):detach()
    xj.requires_grad = true
    local score = common.scores(model, xj, opts):narrow(2, target, 1):sum()
    curve[step] = score:item()
    local obj = score - (xj * xj):sum() * l2
    if tv > 0 then obj = obj - synthesis.tv(xj) * tv end
    x = synthesis.roll(xj:detach() + lumen.grad(obj, xj) * lr, -dy, -dx)
    if (opts.blur_every or 0) > 0 and step % opts.blur_every == 0 then
      x = lumen.gaussian_blur(x, opts.blur_sigma or 0.5)
    end
    if opts.clamp then x = x:clamp(opts.clamp[1], opts.clamp[2]) end
    bar:update(step, ("score %.3f"):format(curve[step]))
  end
  bar:done()
  curve[steps + 1] = lumen.no_grad(common.scores, model, x, opts):get { 1, target }
  return x, curve
end
