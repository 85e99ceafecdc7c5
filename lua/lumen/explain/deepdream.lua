-- Deep Dream (Mordvintsev, Olah & Tyka 2015, "Inceptionism"): gradient ascent on the image to
-- maximise the activation of a layer (the mean of squares of the whole layer, or the mean of one
-- channel) over several octaves (scales, smallest first), with random jitter and a normalised step
-- x += lr * g / mean(|g|). The detail added at one octave is carried up to the next.
-- opts: layer (required); channel = nil (1-based: maximise that channel's mean instead);
--       octaves = 4; octave_scale = 1.4; steps = 10 per octave; lr = 0.01; jitter = 8 (pixels);
--       clamp = {lo, hi} (default: the input's own range).
-- img: (1, C, H, W) in the model's input scale. The forward pass stops at `layer`, so only the layers
-- up to it must accept every octave's size (at least 8 pixels a side). Returns the dreamed image
-- (1, C, H, W) and the objective at the start of each step (a Lua array, octave after octave).
local lumen = require "lumen"
local common = require "lumen.explain.common"
local synthesis = require "lumen.explain.synthesis"

return function(model, img, opts)
  opts = opts or {}
  local layer = opts.layer or error("deepdream: opts.layer is required", 2)
  local lo, hi = img:min_all(), img:max_all()
  if opts.clamp then lo, hi = opts.clamp[1], opts.clamp[2] end
  local H, W = img.shape[3], img.shape[4]
  local octaves, scale = opts.octaves or 4, opts.octave_scale or 1.4
  local steps, lr, jitter = opts.steps or 10, opts.lr or 0.01, opts.jitter or 8
  local curve, detail, x = {}, nil, nil
  local bar = lumen.progress(octaves * steps, "deepdream")
  for o = octaves - 1, 0, -1 do
    local h, w = math.max(8, math.floor(H / scale ^ o + 0.5)), math.max(8, math.floor(W / scale ^ o + 0.5))
    local base = lumen.image.resize(img, h, w)
    x = detail and base + lumen.image.resize(detail, h, w) or base
    for _ = 1, steps do
      local dy, dx = synthesis.jitter(jitter), synthesis.jitter(jitter)
      local xj = synthesis.roll(x, dy, dx):detach()
      xj.requires_grad = true
      local _, acts = common.capture(model, xj, { layer }, { stop_at = layer })
      local A = acts[layer]
      local obj = opts.channel and A:narrow(2, opts.channel, 1):mean() or (A * A):mean()
      curve[#curve + 1] = obj:item()
      local g = lumen.grad(obj, xj)
      x = synthesis.roll(xj:detach() + g * (lr / (g:abs():mean_all() + 1e-12)), -dy, -dx):clamp(lo, hi)
      bar:update(#curve)
    end
    detail = x - base
  end
  bar:done()
  return x, curve
end
