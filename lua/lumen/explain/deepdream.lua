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

local M = {}

local OPTIONS = common.options("deepdream", {
  layer = { common.REQUIRED, "layer" }, channel = { nil, "integer >= 1" }, octaves = { 4, "integer >= 1" },
  octave_scale = { 1.4, "number > 1" }, steps = { 10, "integer >= 1" }, lr = { 0.01, "number > 0" },
  jitter = { 8, "integer >= 0" }, clamp = { nil, "table" },
})

function M.deepdream(model, img, opts)
  local o = OPTIONS(opts, model)
  common.need_model(model, "deepdream")
  if not lumen.is_tensor(img) or #img.shape ~= 4 or img.shape[1] ~= 1 then
    error(("deepdream: expected an image (1, C, H, W), got %s"):format(lumen.is_tensor(img) and lumen.shape_str(img)
      or type(img)), 2)
  end
  local layer = o.layer
  local lo, hi = img:min_all(), img:max_all()
  if o.clamp then lo, hi = o.clamp[1], o.clamp[2] end
  local H, W = img.shape[3], img.shape[4]
  local octaves, scale = o.octaves, o.octave_scale
  local steps, lr, jitter = o.steps, o.lr, o.jitter
  local curve, detail, x = {}, nil, nil
  local bar = lumen.progress(octaves * steps, "deepdream")
  for oct = octaves - 1, 0, -1 do
    local h, w = math.max(8, math.floor(H / scale ^ oct + 0.5)), math.max(8, math.floor(W / scale ^ oct + 0.5))
    local base = lumen.image.resize(img, h, w)
    x = detail and base + lumen.image.resize(detail, h, w) or base
    for _ = 1, steps do
      local dy, dx = synthesis.jitter(jitter), synthesis.jitter(jitter)
      local xj = synthesis.roll(x, dy, dx):detach()
      xj.requires_grad = true
      local A = model:trace(xj, { capture = { layer }, stop_at = layer }).captured[layer]
      if o.channel and o.channel > A.shape[2] then
        error(("deepdream: channel = %d is out of range: layer '%s' has %d channels"):format(o.channel, layer,
          A.shape[2]), 2)
      end
      local obj = o.channel and A:narrow(2, o.channel, 1):mean() or (A * A):mean()
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

return M
