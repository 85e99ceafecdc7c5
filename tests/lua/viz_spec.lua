-- tests/lua/viz_spec.lua — lumen.viz and lumen.viz.html: colormap endpoints, overlays, grid and
-- panel layout arithmetic, labels, SLIC segments (contiguous, connected, about n_segments,
-- deterministic) and their boundaries; the HTML page and the terminal line for token scores.
local lumen = require "lumen"
local support = require "support"
local values = support.values
local assert_close = support.assert_values_close
local core = lumen.core
local viz = lumen.viz

-- The RGB colour at pixel (y, x) of a (3, H, W) image.
local function pixel(img, y, x) return { img:get({ 1, y, x }), img:get({ 2, y, x }), img:get({ 3, y, x }) } end

-- A smooth, textured (3, 48, 64) test picture.
local function picture()
  local img = core.zeros({ 3, 48, 64 })
  for y = 1, 48 do
    for x = 1, 64 do
      img:set({ 1, y, x }, 0.5 + 0.4 * math.sin(0.15 * x) * math.cos(0.1 * y))
      img:set({ 2, y, x }, y / 48)
      img:set({ 3, y, x }, ((x * 13 + y * 7) % 17) / 40)
    end
  end
  return img
end

-- Number of segments and of 4-connected components of an int64 (H, W) label map.
local function segments_and_components(seg)
  local H, W = seg.shape[1], seg.shape[2]
  local L = values(seg)
  local seen, comps, labels = {}, 0, {}
  for p = 1, H * W do
    labels[L[p]] = true
    if not seen[p] then
      comps = comps + 1
      local stack = { p }
      seen[p] = true
      while #stack > 0 do
        local q = table.remove(stack)
        local x = (q - 1) % W
        for _, n in ipairs { x > 0 and q - 1, x < W - 1 and q + 1, q > W and q - W, q <= H * W - W and q + W } do
          if n and not seen[n] and L[n] == L[q] then seen[n] = true; stack[#stack + 1] = n end
        end
      end
    end
  end
  local K = 0
  for k in pairs(labels) do K = math.max(K, k) end
  local used = 0
  for _ in pairs(labels) do used = used + 1 end
  return K, comps, used
end

describe("lumen.viz", function()
  describe("colormap()", function()
    local ramp = lumen.tensor({ { 0, 1 } })

    it("draws jet(0) dark blue and jet(1) dark red", function()
      local c = viz.colormap(ramp, "jet")
      assert.same({ 3, 1, 2 }, c.shape)
      assert_close(pixel(c, 1, 1), { 0, 0, 0.5 }, 1e-6, "jet(0)")
      assert_close(pixel(c, 1, 2), { 0.5, 0, 0 }, 1e-6, "jet(1)")
    end)

    it("keeps 0 white in bwr, symmetric about 0", function()
      local c = viz.colormap(lumen.tensor({ { -2, 0, 1 } }), "bwr")
      assert_close(pixel(c, 1, 1), { 0, 0, 1 }, 1e-6, "bwr(-max)")
      assert_close(pixel(c, 1, 2), { 1, 1, 1 }, 1e-6, "bwr(0)")
      assert_close(pixel(c, 1, 3), { 1, 0.5, 0.5 }, 1e-6, "bwr(max / 2)")
    end)

    it("uses a given vmin / vmax instead of the map's range", function()
      local c = viz.colormap(lumen.tensor({ { 0.25, 0.5 } }), "gray", { vmin = 0, vmax = 1 })
      assert_close(values(c), { 0.25, 0.5, 0.25, 0.5, 0.25, 0.5 }, 1e-6, "gray")
    end)

    it("accepts (1, 1, H, W) maps, rejects multi-channel ones and unknown names", function()
      assert.same({ 3, 4, 5 }, viz.colormap(lumen.rand({ 1, 1, 4, 5 }), "viridis").shape)
      assert.has_error(function() viz.colormap(lumen.rand({ 3, 4, 5 })) end)
      local ok, msg = pcall(viz.colormap, ramp, "rainbow")
      assert.is_false(ok)
      assert.matches("unknown colormap 'rainbow'.*inferno", msg)
    end)
  end)

  describe("overlay()", function()
    it("resizes the map to the image and blends with alpha", function()
      local img = lumen.full({ 1, 8, 10 }, 0.25) -- gray input becomes RGB
      local map = lumen.rand({ 1, 1, 4, 5 })
      local o = viz.overlay(img, map)
      assert.same({ 3, 8, 10 }, o.shape)
      assert_close(values(viz.overlay(img, map, { alpha = 0 })), values(lumen.full({ 3, 8, 10 }, 0.25)), 1e-6, "alpha 0")
      local heat = viz.colormap(lumen.image.resize(map, 8, 10), "inferno")
      assert_close(values(viz.overlay(img, map, { alpha = 1, cmap = "inferno" })), values(heat), 1e-6, "alpha 1")
      local half = viz.overlay(img, map, { alpha = 0.5, cmap = "inferno" })
      assert.near(0.5 * 0.25 + 0.5 * heat:get({ 2, 3, 4 }), half:get({ 2, 3, 4 }), 1e-6)
    end)
  end)

  describe("grid()", function()
    it("lays out cells of H x W with pad pixels around each", function()
      local g = viz.grid(lumen.rand({ 10, 3, 8, 8 }))
      assert.same({ 3, 3 * 8 + 4 * 2, 4 * 8 + 5 * 2 }, g.shape) -- ncol = ceil(sqrt(10)) = 4, 3 rows
      g = viz.grid(lumen.rand({ 10, 1, 8, 6 }), { ncol = 5, pad = 1 })
      assert.same({ 1, 2 * 8 + 3, 5 * 6 + 6 }, g.shape)
    end)

    it("puts image i at its cell and pad_value between cells", function()
      local imgs = {}
      for i = 1, 5 do imgs[i] = lumen.full({ 1, 3, 4 }, i / 10) end
      local g = viz.grid(imgs, { ncol = 2, pad = 2, pad_value = 0.9 })
      assert.same({ 1, 3 * 3 + 4 * 2, 2 * 4 + 3 * 2 }, g.shape)
      assert.near(0.1, g:get({ 1, 3, 3 }), 1e-6)   -- cell 1: rows 3..5, columns 3..6
      assert.near(0.2, g:get({ 1, 3, 9 }), 1e-6)   -- cell 2: columns 9..12
      assert.near(0.5, g:get({ 1, 13, 3 }), 1e-6)  -- cell 5: third row, rows 13..15
      assert.near(0.9, g:get({ 1, 3, 7 }), 1e-6)   -- pad between cells 1 and 2
      assert.near(0.9, g:get({ 1, 13, 9 }), 1e-6)  -- the empty sixth cell
    end)

    it("normalizes each image or all together", function()
      local batch = lumen.tensor({ { { { 0, 1 } } }, { { { 0, 3 } } } }) -- (2, 1, 1, 2)
      local each = viz.grid(batch, { ncol = 2, pad = 0, normalize = "each" })
      assert.same({ 0, 1, 0, 1 }, values(each))
      local all = viz.grid(batch, { ncol = 2, pad = 0, normalize = "all" })
      assert_close(values(all), { 0, 1 / 3, 0, 1 }, 1e-6, "all")
      local sym = viz.grid(lumen.tensor({ { { { -2, 1 } } } }), { pad = 0, normalize = "all", symmetric = true })
      assert_close(values(sym), { 0, 0.75 }, 1e-6, "symmetric")
      assert.has_error(function() viz.grid(batch, { normalize = "some" }) end)
    end)

    it("shows feature maps (1, K, h, w) as K gray cells, resized and numbered", function()
      local fm = lumen.rand({ 1, 6, 5, 5 })
      local plain = viz.grid(fm, { size = { 20, 20 }, ncol = 3 })
      assert.same({ 1, 2 * 20 + 3 * 2, 3 * 20 + 4 * 2 }, plain.shape)
      local labelled = viz.grid(fm, { size = { 20, 20 }, ncol = 3, labels = true })
      -- the label box of cell 1 is black behind white font pixels; the rest of the cell is unchanged
      assert.equal(0, labelled:get({ 1, 3, 3 }))
      assert.equal(plain:get({ 1, 20, 20 }), labelled:get({ 1, 20, 20 }))
    end)

    it("brings a list of mixed images to one size and to RGB", function()
      local g = viz.grid({ lumen.zeros({ 3, 4, 4 }), lumen.ones({ 1, 8, 8 }) }, { pad = 0 })
      assert.same({ 3, 4, 8 }, g.shape)
      assert.same({ 1, 1, 1 }, pixel(g, 2, 6))
    end)
  end)

  describe("panel()", function()
    it("puts RGB images side by side at a common height", function()
      local p = viz.panel({ lumen.zeros({ 3, 20, 30 }), lumen.ones({ 10, 10 }), lumen.zeros({ 1, 1, 40, 20 }) },
        { pad = 2 })
      -- heights 20, 10, 40 -> 40: widths 60, 40, 20
      assert.same({ 3, 40 + 4, 60 + 40 + 20 + 4 * 2 }, p.shape)
      assert.same({ 1, 1, 1 }, pixel(p, 10, 2 + 60 + 2 + 5)) -- inside the gray image, now RGB
      assert.same({ 0, 0, 0 }, pixel(p, 10, 4))
    end)

    it("draws labels in each image's corner", function()
      local imgs = { lumen.full({ 3, 30, 30 }, 0.5), lumen.full({ 3, 30, 30 }, 0.5) }
      local p = viz.panel(imgs, { labels = { "input", "cam" } })
      assert.same({ 0, 0, 0 }, pixel(p, 3, 3)) -- label box
      assert.same({ 0.5, 0.5, 0.5 }, pixel(p, 25, 25))
    end)
  end)

  describe("label()", function()
    it("returns a copy with the text drawn", function()
      local img = lumen.full({ 3, 12, 20 }, 0.5)
      local out = viz.label(img, "a1", { color = { 1, 0, 0 } })
      assert.same({ 0.5, 0.5, 0.5 }, pixel(img, 1, 1))
      assert.same({ 0, 0, 0 }, pixel(out, 1, 1))
      local red = 0
      for y = 1, 12 do for x = 1, 20 do if out:get({ 1, y, x }) == 1 and out:get({ 2, y, x }) == 0 then red = red + 1 end end end
      assert.is_true(red > 10, "font pixels drawn in red")
    end)
  end)

  describe("slic()", function()
    it("gives about n_segments contiguous, connected labels, deterministically", function()
      local img = picture()
      local seg = viz.slic(img, { n_segments = 30, compactness = 10 })
      assert.equal("int64", seg:dtype())
      assert.same({ 48, 64 }, seg.shape)
      local K, comps, used = segments_and_components(seg)
      assert.equal(K, used, "labels are 1..K without gaps")
      assert.equal(K, comps, "every segment is one connected piece")
      assert.is_true(K >= 15 and K <= 60, "about 30 segments, got " .. K)
      assert.same(values(seg), values(lumen.image.slic(img, { n_segments = 30, compactness = 10 })))
    end)

    it("makes more segments when asked and can skip the connectivity pass", function()
      local img = picture()
      local few = segments_and_components(viz.slic(img, { n_segments = 10 }))
      local many = segments_and_components(viz.slic(img, { n_segments = 80 }))
      assert.is_true(many > 2 * few, ("%d segments for 80, %d for 10"):format(many, few))
      local K, _, used = segments_and_components(viz.slic(img, { n_segments = 30, enforce_connectivity = false }))
      assert.equal(K, used)
      assert.has_error(function() viz.slic(img, { n_segments = 0 }) end)
    end)

    it("segments a real photo into connected pieces", function()
      local path = "../shared/data/images/chelsea.png"
      if not lumen.exists(path) then return pending(path .. " is absent (../shared/data)") end
      local img = lumen.image.resize(assert(lumen.image.load(path)), 100, 150, { method = "area" })
      local K, comps = segments_and_components(viz.slic(img, { n_segments = 40 }))
      assert.equal(K, comps)
      assert.is_true(K >= 20 and K <= 80, "about 40 segments, got " .. K)
    end)
  end)

  describe("mark_boundaries()", function()
    it("paints the pixels on both sides of a border", function()
      local seg = lumen.tensor({ { 1, 1, 2, 2 }, { 1, 1, 2, 2 } }, "int64")
      local out = viz.mark_boundaries(lumen.zeros({ 3, 2, 4 }), seg, { 0, 1, 0 })
      assert.same({ 0, 0, 0 }, pixel(out, 1, 1))
      assert.same({ 0, 1, 0 }, pixel(out, 1, 2))
      assert.same({ 0, 1, 0 }, pixel(out, 2, 3))
      assert.same({ 1, 1, 0 }, pixel(viz.mark_boundaries(lumen.zeros({ 3, 2, 4 }), seg), 1, 3))
      assert.has_error(function() viz.mark_boundaries(lumen.zeros({ 3, 3, 4 }), seg) end)
    end)
  end)
end)

describe("lumen.viz.html", function()
  local html = viz.html
  local tokens = { "the", "<b>movie</b>", "was", "\"great\"", "&", "fun" }
  local scores = { 0.1, -0.8, 0, 1.2, 0.3, 0.6 }

  it("is lumen.html", function() assert.equal(require "lumen.html", html) end)

  describe("page()", function()
    it("escapes tokens and contains every token", function()
      local page = html.page(tokens, scores, { title = "IG <pos>" })
      assert.is_nil(page:find("<b>movie", 1, true))
      assert.truthy(page:find("&lt;b&gt;movie&lt;/b&gt;", 1, true))
      assert.truthy(page:find("<title>IG &lt;pos&gt;</title>", 1, true))
      for _, tok in ipairs(tokens) do assert.truthy(page:find(">" .. html.escape(tok) .. "</span>", 1, true), tok) end
      assert.truthy(page:find("linear-gradient", 1, true))
      assert.truthy(page:match("^<!DOCTYPE html>"))
    end)

    it("colours signed scores blue-white-red, 0 white", function()
      local page = html.page({ "neg", "zero", "pos" }, lumen.tensor({ -1, 0, 1 }))
      assert.truthy(page:find('background:#0000ff;color:#fff" title="-1">neg', 1, true))
      assert.truthy(page:find('background:#ffffff;color:#000" title="0">zero', 1, true))
      assert.truthy(page:find('background:#ff0000', 1, true))
    end)

    it("rejects a score list of the wrong length", function()
      assert.has_error(function() html.page({ "a", "b" }, { 1 }) end)
    end)

    it("saves the page, or returns nil and a message", function()
      local path = os.tmpname()
      assert.is_true(html.save(path, tokens, scores))
      local f = assert(io.open(path))
      local text = f:read("a")
      f:close()
      os.remove(path)
      assert.equal(html.page(tokens, scores), text)
      local ok, msg = html.save("/nonexistent-dir/x.html", tokens, scores)
      assert.is_nil(ok)
      assert.matches("^/nonexistent%-dir/x%.html:", msg)
    end)
  end)

  describe("terminal()", function()
    it("writes token[score] without a tty", function()
      assert.equal("the[0.1] <b>movie</b>[-0.8] was[0] \"great\"[1.2] &[0.3] fun[0.6]",
        html.terminal(tokens, scores, { tty = false }))
    end)

    it("colours backgrounds with ANSI 256 codes on a tty", function()
      local line = html.terminal({ "neg", "pos" }, { -1, 1 }, { tty = true })
      assert.equal("\27[48;5;21m\27[38;5;231mneg\27[0m \27[48;5;196m\27[38;5;231mpos\27[0m  [Colours: blue -1, white 0,"
        .. " red 1 (the largest |score| on this page).]", line)
    end)
  end)
end)
