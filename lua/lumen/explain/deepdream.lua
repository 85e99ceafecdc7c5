-- Deep Dream (Mordvintsev, Olah & Tyka 2015, "Inceptionism"): gradient ascent on the image to
-- maximise the activation of a layer — mean of squares of the whole layer, or the mean of one
-- channel (filter) — over several octaves (scales), with random jitter and a normalised step
-- x += lr * g / mean(|g|). Details found at a coarse scale are carried up to finer ones.
-- opts: layer (required); channel = nil (1-based: maximise that channel's mean instead);
--       octaves = 4; octave_scale = 1.4; steps = 10 per octave; lr = 0.01; jitter = 8;
--       clamp = {lo, hi} (default: the input's own range).
-- img: (1, C, H, W) in the model's input scale. Returns the dreamed image (1, C, H, W).
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
  local steps, lr = opts.steps or 10, opts.lr or 0.01
  local sizes = {}
  for o = octaves - 1, 0, -1 do
    sizes[#sizes + 1] = { math.max(8, math.floor(H / scale ^ o + 0.5)), math.max(8, math.floor(W / scale ^ o + 0.5)) }
  end
  local detail = nil
  local x
  local bar = lumen.progress(#sizes * steps, "deepdream")
  for k, size in ipairs(sizes) do
    local base = lumen.image.resize(img, size[1], size[2])
    if detail then base = base + lumen.image.resize(detail, size[1], size[2]) end
    x = base
    for s = 1, steps do
      local dy, dx = synthesis.jitter(opts.jitter or 8), synthesis.jitter(opts.jitter or 8)
      local xj = synthesis.roll(x, dy, dx)
      xj.requires_grad = true
      local _, acts = common.capture(model, xj, { layer })
      local A = acts[layer]
      if opts.channel then A = A:narrow(2, opts.channel, 1) end
      local obj = opts.channel and A:mean() or (A * A):mean()
      local g = lumen.grad(obj, xj)
      g = g / (g:abs():mean_all() + 1e-8)
      x = synthesis.roll(xj:detach() + g * lr, -dy, -dx):clamp(lo, hi)
      bar:update((k - 1) * steps + s)
    end
    detail = x - lumen.image.resize(img, size[1], size[2])
  end
  bar:done()
  return x
end
