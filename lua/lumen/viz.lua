-- lumen.viz: pictures of explanations. Colormaps for attribution maps, overlays on the input,
-- grids of filters and feature maps, side-by-side panels with labels, SLIC superpixels and their
-- boundaries; text attributions are in lumen.viz.html. Results are (3, H, W) or (C, H, W) images in
-- [0, 1], ready for img:save("x.png").
--
--   local heat = viz.colormap(cam, "jet")                        -- (3, h, w)
--   viz.panel({ img, heat, viz.overlay(img, cam) }, { labels = { "input", "cam", "overlay" } }):save("p.png")
--   viz.grid(conv1_weight, { normalize = "each", labels = true }):save("filters.png")
local core = require "lumen.core"
local lumen = require "lumen"
local image = require "lumen.image"

local viz = {}
viz.html = require "lumen.html"
viz.slic = image.slic
viz.cmaps = { "jet", "viridis", "inferno", "gray", "bwr" }

-- A map (H, W) from (H, W), (1, H, W) or (1, 1, H, W), sharing storage.
local function as_map(map, fn)
  if not core.is_tensor(map) then error(("%s: expected a map tensor, got %s"):format(fn, type(map)), 3) end
  local s = core.shape(map)
  local lead = 1
  for i = 1, #s - 2 do lead = lead * s[i] end
  if #s < 2 or lead ~= 1 then
    error(("%s: expected a map (H, W) or (1, H, W), got %s (reduce the channels first)"):format(fn,
      lumen.shape_str(map)), 3)
  end
  return core.view(map, { s[#s - 1], s[#s] })
end

-- An RGB (3, H, W) image from gray, RGB, RGBA, (1, C, H, W) or (H, W).
local function as_rgb(img, fn)
  img = image.chw(img, fn)
  if core.shape(img)[1] == 3 then return img end
  return image.to_rgb(img)
end

-- The label scale that suits a picture of height h: 1 below 200 pixels, 2 up to 300, ...
local function label_scale(h) return math.max(1, h // 100) end

-- viz.colormap(map, cmap = "jet" [, {vmin, vmax}]) -> (3, H, W). Without vmin / vmax the map's own
-- range is used (for "bwr": -m..m with m = max |map|, so 0 is white).
function viz.colormap(map, cmap, opts)
  opts = opts or {}
  return core.colormap(as_map(map, "viz.colormap"), cmap or "jet", opts.vmin, opts.vmax)
end

-- viz.overlay(img, map [, {alpha = 0.5, cmap = "jet", vmin, vmax}]) -> (3, H, W): the colormapped
-- map, resized (bilinear) to the image, blended over it.
function viz.overlay(img, map, opts)
  opts = opts or {}
  img = as_rgb(img, "viz.overlay")
  map = as_map(map, "viz.overlay")
  local s, m = core.shape(img), core.shape(map)
  if m[1] ~= s[2] or m[2] ~= s[3] then map = core.image_resize(map, s[2], s[3], "bilinear") end
  local heat = core.colormap(map, opts.cmap or "jet", opts.vmin, opts.vmax)
  return core.image_blend(img, heat, opts.alpha or 0.5)
end

-- viz.label(img, text [, {y = 1, x = 1, scale, color = {1, 1, 1}, bg = {0, 0, 0} | false}]) -> a copy
-- of img (C, H, W) with text drawn in the 5x7 font (capitals, digits, - _ . and a few signs).
function viz.label(img, text, opts)
  opts = opts or {}
  local out = core.clone(image.chw(img, "viz.label"))
  local scale = opts.scale or label_scale(core.shape(out)[2])
  return core.image_draw_text_(out, tostring(text), opts.y or 1, opts.x or 1,
    { scale = scale, color = opts.color, bg = opts.bg })
end

-- The images of a grid as one (N, C, H, W) batch. A tensor (N, C, H, W) with C = 1 or 3 is N images;
-- (1, K, H, W) and (K, H, W) are K gray maps (feature maps). A list of images is brought to the
-- first one's size and to RGB if any is RGB.
local function as_batch(images)
  if core.is_tensor(images) then
    local s = core.shape(images)
    if #s == 4 and (s[2] == 1 or s[2] == 3) then return images end
    if #s == 4 and s[1] == 1 then return core.view(images, { s[2], 1, s[3], s[4] }) end
    if #s == 3 then return core.view(images, { s[1], 1, s[2], s[3] }) end
    error("viz.grid: expected (N, 1|3, H, W), (1, K, H, W) or (K, H, W), got " .. lumen.shape_str(images), 3)
  end
  if type(images) ~= "table" or #images == 0 then error("viz.grid: expected a tensor or a list of images", 3) end
  local items, C = {}, 1
  for i, im in ipairs(images) do
    items[i] = image.chw(im, "viz.grid")
    if core.shape(items[i])[1] ~= 1 then items[i] = as_rgb(items[i], "viz.grid"); C = 3 end
  end
  local s = core.shape(items[1])
  local H, W = s[2], s[3]
  local batch = core.zeros({ #items, C, H, W })
  for i, im in ipairs(items) do
    if C == 3 then im = as_rgb(im, "viz.grid") end
    local si = core.shape(im)
    if si[2] ~= H or si[3] ~= W then im = core.image_resize(im, H, W, "bilinear") end
    core.copy_(core.narrow0(batch, i, 1), im)
  end
  return batch
end

-- viz.grid(images [, opts]) -> (C, rows * (H + pad) + pad, ncol * (W + pad) + pad).
-- opts: ncol (default ceil(sqrt(N))), pad = 2, pad_value = 1, normalize = false | "each" | "all"
-- (rescale to [0, 1] per image or over all), symmetric = false (with normalize: 0 -> 0.5, for signed
-- filters), size = {h, w} (resize each cell, method = "nearest" | "bilinear" | "area", default
-- nearest), labels = true (numbers 1..N) or a list of strings drawn in each cell's corner.
function viz.grid(images, opts)
  opts = opts or {}
  local batch = as_batch(images)
  if opts.size then
    batch = core.image_resize(batch, opts.size[1], opts.size[2], opts.method or "nearest")
  end
  if opts.normalize == "each" or opts.normalize == "all" then
    batch = core.image_normalize01(batch, opts.normalize == "each", opts.symmetric or false)
  elseif opts.normalize then
    error(("viz.grid: normalize must be \"each\", \"all\" or false, got %s"):format(tostring(opts.normalize)), 2)
  end
  local s = core.shape(batch)
  local N, C, H, W = s[1], s[2], s[3], s[4]
  local pad = opts.pad or 2
  local ncol = opts.ncol or math.ceil(math.sqrt(N))
  local nrow = (N + ncol - 1) // ncol
  local canvas = core.full({ C, nrow * (H + pad) + pad, ncol * (W + pad) + pad }, opts.pad_value or 1)
  local scale = label_scale(H)
  for i = 1, N do
    local y = pad + ((i - 1) // ncol) * (H + pad) + 1
    local x = pad + ((i - 1) % ncol) * (W + pad) + 1
    core.image_paste_(canvas, core.view(core.narrow0(batch, i, 1), { C, H, W }), y, x)
    local text = opts.labels == true and tostring(i) or (type(opts.labels) == "table" and opts.labels[i])
    if text then core.image_draw_text_(canvas, tostring(text), y, x, { scale = scale }) end
  end
  return canvas
end

-- viz.panel(images [, {pad = 2, pad_value = 1, height, labels}]) -> (3, H + 2 pad, ...): the images
-- side by side (input | map | overlay), in RGB, each resized to a common height (the tallest, or
-- opts.height) keeping its aspect; labels (a list of strings) go in each image's top-left corner.
function viz.panel(images, opts)
  opts = opts or {}
  if type(images) ~= "table" or #images == 0 then error("viz.panel: expected a list of images", 2) end
  local pad = opts.pad or 2
  local items, H = {}, opts.height or 0
  for i, im in ipairs(images) do
    items[i] = as_rgb(im, "viz.panel")
    if not opts.height then H = math.max(H, core.shape(items[i])[2]) end
  end
  local total = pad
  for i, im in ipairs(items) do
    local s = core.shape(im)
    if s[2] ~= H then
      items[i] = core.image_resize(im, H, math.max(1, math.floor(s[3] * H / s[2] + 0.5)), "bilinear")
    end
    total = total + core.shape(items[i])[3] + pad
  end
  local canvas = core.full({ 3, H + 2 * pad, total }, opts.pad_value or 1)
  local x = pad + 1
  for i, im in ipairs(items) do
    core.image_paste_(canvas, im, pad + 1, x)
    if opts.labels and opts.labels[i] then
      core.image_draw_text_(canvas, tostring(opts.labels[i]), pad + 1, x, { scale = label_scale(H) })
    end
    x = x + core.shape(im)[3] + pad
  end
  return canvas
end

---------------------------------------------------------------- explanation panels

-- viz.enlarge(t) -> small inputs (Fashion-MNIST's 28 pixels) drawn larger: a picture (C, H, W) or an
-- int64 (H, W) segment map scaled by an integer factor, nearest-neighbour, to at least 168 pixels high.
function viz.enlarge(t)
  local d = #t.shape
  local h, w = t.shape[d - 1], t.shape[d]
  local k = math.ceil(168 / h)
  if k <= 1 then return t end
  if t:dtype() == "int64" then
    return image.resize(t:float():unsqueeze(1), k * h, k * w, { method = "nearest" }):squeeze(1):long()
  end
  return image.resize(t, k * h, k * w, { method = "nearest" })
end

-- viz.clip(map [, q = 0.99]) -> the map with |values| above their q-quantile clipped to it: gradient
-- maps are heavy-tailed, and a few pixels would otherwise take the whole colour scale.
function viz.clip(map, q)
  local n = map:numel()
  local sorted = map:abs():reshape { n }:sort(1)
  local v = sorted:get { math.max(1, math.floor((q or 0.99) * n + 0.5)) }
  if v <= 0 then return map end
  return map:clamp(-v, v)
end

-- viz.pixel_map(a [, signed]) -> a per-pixel map (1, 1, H, W) from an input-shaped attribution
-- (1, C, H, W): max of |a| over channels (Simonyan et al.), or the signed sum over channels.
function viz.pixel_map(a, signed)
  if signed then return a:sum(2, true) end
  return (a:abs():max(2))
end

-- viz.gradient_image(g) -> the picture (C, H, W) of a signed input-shaped gradient (1, C, H, W): 0 at
-- mid-gray, clipped at the 99th percentile of |g| (as guided backprop pictures are shown).
function viz.gradient_image(g)
  local c = viz.clip(g:squeeze(1))
  local m = math.max(c:abs():max_all(), 1e-12)
  return c / (2 * m) + 0.5
end

-- viz.map_panel(img, map [, opts]) -> the picture of a map: input | map | overlay. map: (1, 1, H, W),
-- (1, H, W) or (H, W), clipped at its opts.clip quantile of |map| (default 0.99; false: not clipped);
-- signed maps (opts.signed) use the diverging colormap (0 white); opts.cmap, opts.alpha = 0.5;
-- opts.labels captions the three panels. Small inputs are enlarged (viz.enlarge).
function viz.map_panel(img, map, opts)
  opts = opts or {}
  local m = map:reshape { map.shape[#map.shape - 1], map.shape[#map.shape] }
  if opts.clip ~= false then m = viz.clip(m, opts.clip) end
  local cmap = opts.cmap or (opts.signed and "bwr" or "jet")
  local overlay = viz.overlay(img, m, { cmap = cmap, alpha = opts.alpha or 0.5 })
  return viz.panel({ viz.enlarge(img), viz.enlarge(viz.colormap(m, cmap)), viz.enlarge(overlay) },
    { labels = opts.labels })
end

-- viz.attribution_panel(img, attr [, labels]) -> the picture of a signed input-shaped attribution
-- (1, C, H, W) (IG, GradientSHAP, LRP): input | sum over channels (0 white, red for, blue against) |
-- overlay of the magnitude, both clipped at the 99th percentile.
function viz.attribution_panel(img, attr, labels)
  local signed = viz.clip(viz.pixel_map(attr, true)):squeeze(1)
  local magnitude = viz.clip(viz.pixel_map(attr)):squeeze(1)
  return viz.panel({ viz.enlarge(img), viz.enlarge(viz.colormap(signed, "bwr")),
    viz.enlarge(viz.overlay(img, magnitude, { alpha = 0.6 })) }, { labels = labels })
end

-- viz.mark_boundaries(img, segments [, color = {1, 1, 0}]) -> a copy of img (C, H, W) with the
-- pixels on segment borders (int64 (H, W) labels, e.g. from viz.slic) painted in color.
function viz.mark_boundaries(img, segments, color)
  img = image.chw(img, "viz.mark_boundaries")
  local s = core.shape(img)
  if s[1] ~= 1 and s[1] ~= 3 then img = image.to_rgb(img) end
  return core.mark_boundaries(img, segments, color)
end

-- viz.chart(series [, opts]) -> (3, H, W): a line chart with axes, ticks, tick labels, a title, axis
-- labels and a legend, in lumen's 5x7 font (capitals).
-- series: {{name =, y = {...}, x = {...} (default: evenly spread over [0, 1]), color = {r, g, b}
--   (default: a palette)}, ...}; values outside the y range are clipped to it.
-- opts: title, xlabel, ylabel, xlim = {lo, hi} and ylim = {lo, hi} (default: the data's range widened
--   to whole ticks), ticks = 5 (about how many per axis), width = 360, height = 240 (the whole
--   picture), scale = 1 (text size; 2 doubles it), legend = true (below the plot, one entry per series).
viz.palette = { { 0.84, 0.15, 0.16 }, { 0.12, 0.47, 0.71 }, { 0.17, 0.63, 0.17 }, { 1.0, 0.5, 0.05 },
                { 0.58, 0.4, 0.74 }, { 0.55, 0.34, 0.29 }, { 0.89, 0.47, 0.76 }, { 0.5, 0.5, 0.5 },
                { 0.74, 0.74, 0.13 }, { 0.09, 0.75, 0.81 } }

-- A tick step of about range / n: 1, 2 or 5 times a power of ten; and the decimals it needs.
local function nice_step(range, n)
  if range <= 0 then range = 1 end
  local raw = range / math.max(1, n)
  local p = 10 ^ math.floor(math.log(raw, 10))
  local m = raw / p
  local step = (m < 1.5 and 1 or m < 3.5 and 2 or m < 7.5 and 5 or 10) * p
  return step, math.max(0, -math.floor(math.log(step, 10) + 1e-9))
end

local function axis_range(lim, lo, hi, n)
  if lim then return lim[1], lim[2], nice_step(lim[2] - lim[1], n) end
  if lo == hi then lo, hi = lo - 0.5, hi + 0.5 end
  local step, digits = nice_step(hi - lo, n)
  return math.floor(lo / step + 1e-9) * step, math.ceil(hi / step - 1e-9) * step, step, digits
end

function viz.chart(series, opts)
  opts = opts or {}
  if type(series) ~= "table" or #series == 0 then error("viz.chart: expected a list of series {name =, y = {...}}", 2) end
  local W, H, sc = opts.width or 360, opts.height or 240, opts.scale or 1
  local ch, cw = 9 * sc, 6 * sc -- a line of text, a character
  local xlo, xhi, ylo, yhi = math.huge, -math.huge, math.huge, -math.huge
  for k, s in ipairs(series) do
    local y = s.y
    if type(y) ~= "table" or #y < 1 then error(("viz.chart: series %d has no y values"):format(k), 2) end
    if s.x and #s.x ~= #y then error(("viz.chart: series %d has %d x and %d y values"):format(k, #s.x, #y), 2) end
    for i, v in ipairs(y) do
      local x = s.x and s.x[i] or (#y > 1 and (i - 1) / (#y - 1) or 0)
      xlo, xhi, ylo, yhi = math.min(xlo, x), math.max(xhi, x), math.min(ylo, v), math.max(yhi, v)
    end
  end
  local nt = opts.ticks or 5
  local x0, x1, xstep, xdig = axis_range(opts.xlim, xlo, xhi, nt)
  local y0, y1, ystep, ydig = axis_range(opts.ylim, ylo, yhi, nt)
  local function label(v, d) return ("%." .. d .. "f"):format(math.abs(v) < 1e-12 and 0 or v) end
  -- Layout: title, y label; plot area with tick labels left and below; x label; legend rows.
  local ywidth = 0
  for v = y0, y1 + ystep / 2, ystep do ywidth = math.max(ywidth, #label(v, ydig)) end
  local left = ywidth * cw + 6 * sc
  local top = (opts.title and ch + 4 * sc or 0) + (opts.ylabel and ch + 2 * sc or 0) + ch // 2
  local legend_rows, row_w, rows = {}, 0, 1
  for k, s in ipairs(series) do
    local w = (4 + #tostring(s.name or k)) * cw
    if row_w + w > W - left and row_w > 0 then rows, row_w = rows + 1, 0 end
    legend_rows[k] = { rows, left + row_w }
    row_w = row_w + w
  end
  local bottom = ch + 4 * sc + (opts.xlabel and ch or 0) + (opts.legend == false and 0 or rows * ch + 2 * sc)
  local pw, ph = W - left - 3 * cw, H - top - bottom
  if pw < 20 or ph < 20 then error(("viz.chart: %dx%d is too small for its labels"):format(W, H), 2) end
  local canvas = core.full({ 3, H, W }, 1)
  local function box(y, x, h, w, c)
    for k = 1, 3 do core.fill_box_(canvas, { k, y, x }, { 1, h, w }, c[k]) end
  end
  local function text(t, y, x, c) core.image_draw_text_(canvas, tostring(t):upper(), y, x, { scale = sc, color = c or { 0, 0, 0 }, bg = false }) end
  local function px(x) return left + math.floor((x - x0) / (x1 - x0) * (pw - 1) + 0.5) end
  local function py(y) return top + ph - 1 - math.floor((math.max(y0, math.min(y1, y)) - y0) / (y1 - y0) * (ph - 1) + 0.5) end
  local grid, axis = { 0.9, 0.9, 0.9 }, { 0.25, 0.25, 0.25 }
  for v = y0, y1 + ystep / 2, ystep do -- horizontal grid lines, y ticks and their labels
    local y = py(v)
    box(y, left, 1, pw, grid)
    box(y, left - 3 * sc, 1, 3 * sc, axis)
    local t = label(v, ydig)
    text(t, y - ch // 2, left - 4 * sc - #t * cw - sc, axis)
  end
  for v = x0, x1 + xstep / 2, xstep do
    local x = px(v)
    box(top, x, ph, 1, grid)
    box(top + ph, x, 3 * sc, 1, axis)
    local t = label(v, xdig)
    text(t, top + ph + 3 * sc, x - (#t * cw) // 2, axis)
  end
  box(top, left, ph, 1, axis)
  box(top + ph - 1, left, 1, pw, axis)
  for k, s in ipairs(series) do
    local y, color = s.y, s.color or viz.palette[(k - 1) % #viz.palette + 1]
    local t = 2 * sc -- line thickness
    local function pt(i) return py(y[i]), px(s.x and s.x[i] or (#y > 1 and (i - 1) / (#y - 1) or 0)) end
    for i = 1, math.max(1, #y - 1) do -- each segment as a run of dots, one per pixel of its longer side
      local ya, xa = pt(i)
      local yb, xb = pt(math.min(i + 1, #y))
      local steps = math.max(1, math.abs(yb - ya), math.abs(xb - xa))
      for j = 0, steps do
        box(ya + math.floor((yb - ya) * j / steps + 0.5) - t // 2, xa + math.floor((xb - xa) * j / steps + 0.5) - t // 2, t, t, color)
      end
    end
    if opts.legend ~= false then
      local row, x = legend_rows[k][1], legend_rows[k][2]
      local ly = H - bottom + ch + 4 * sc + (opts.xlabel and ch or 0) + (row - 1) * ch + 2 * sc
      box(ly + 3 * sc, x, 3 * sc, 2 * cw, color)
      text(s.name or k, ly, x + 2 * cw + sc, color)
    end
  end
  if opts.title then text(opts.title, 1, left, { 0, 0, 0 }) end
  if opts.ylabel then text(opts.ylabel, top - ch - ch // 2 - sc, math.max(1, left - 4 * sc - ywidth * cw), axis) end
  if opts.xlabel then
    local t = tostring(opts.xlabel)
    text(t, top + ph + ch + 4 * sc, left + (pw - #t * cw) // 2, axis)
  end
  return canvas
end

return viz
