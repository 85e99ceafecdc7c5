-- Specs for the token pictures (lumen.html): the colour range is stated and absolute when asked, a
-- near-zero map is flagged and drawn pale instead of stretched to full colour, non-negative maps use
-- only the white-red half of the bar, unknown words are marked, and the prediction is shown.
local lumen = require "lumen"
local html = lumen.html

-- The background colour of token tok on a page, as r, g, b in 0..255.
local function background(page, tok)
  local hex = page:match('background:#(%x%x%x%x%x%x);[^>]*>' .. tok:gsub("%p", "%%%0") .. "</span>")
  assert(hex, "no span for " .. tok)
  return tonumber(hex:sub(1, 2), 16), tonumber(hex:sub(3, 4), 16), tonumber(hex:sub(5, 6), 16)
end

local function stops(page) return page:match("linear%-gradient%(to right, ([^)]*)%)") end

describe("lumen.html", function()
  local tokens = { "the", "computer", "crashed" }

  it("flags a near-zero map and draws it pale instead of stretching it to full red", function()
    local scores = { 0, 0.0024, 0.001 }
    local page = html.page(tokens, scores, { reference = 17.6, reference_label = "class score" })
    assert.truthy(page:find("Near zero: the largest |score| is 0.0024, 0.014 % of the class score 17.6", 1, true), page)
    local r, g, b = background(page, "computer")
    assert.equal(255, r)
    assert(g > 245 and b > 245, ("computer is coloured %d,%d,%d: stretched"):format(r, g, b))
    assert.truthy(page:find("white 0 to red 0.176 (1 % of the class score)", 1, true))
    -- the same map without a reference is stretched, and says so
    page = html.page(tokens, scores)
    assert.is_nil(page:find("Near zero", 1, true))
    assert.same({ 255, 0, 0 }, { background(page, "computer") })
    assert.truthy(page:find("white 0 to red 0.0024 (the largest |score| on this page)", 1, true))
    -- a map well above 1 % of the reference is not flagged
    assert.is_nil(html.page(tokens, { 0, 2, 1 }, { reference = 17.6 }):find("Near zero", 1, true))
  end)

  it("flags a map that is 0 everywhere", function()
    local page = html.page(tokens, { 0, 0, 0 })
    assert.truthy(page:find("Every score is 0", 1, true))
    assert.truthy(html.terminal(tokens, { 0, 0, 0 }, { tty = false }):find("[Every score is 0", 1, true))
  end)

  it("uses only the white-red half of the bar for non-negative maps, blue-white for non-positive", function()
    local page = html.page(tokens, { 0, 2, 1 })
    assert.truthy(stops(page):match("^#ffffff, .*#ff0000$"), stops(page))
    assert.truthy(page:find('<div class="ticks"><span>0</span><span>2</span></div>', 1, true))
    page = html.page(tokens, { 0, -2, -1 })
    assert.truthy(stops(page):match("^#0000ff, .*#ffffff$"), stops(page))
    assert.truthy(page:find('<div class="ticks"><span>-2</span><span>0</span></div>', 1, true))
    page = html.page(tokens, { -1, 2, 1 })
    assert.truthy(stops(page):match("^#0000ff, .*#ffffff.*#ff0000$"), stops(page))
    assert.truthy(page:find('<span>-2</span><span>0</span><span>2</span>', 1, true))
  end)

  it("scales colours to an absolute range when given", function()
    local page = html.page(tokens, { 0, 1, 4 }, { vmax = 2 })
    local r, g, b = background(page, "computer") -- 1 of 2: halfway to red
    local wr, wg, wb = lumen.core.cmap_color("bwr", 0.75)
    assert.same({ math.floor(wr * 255 + 0.5), math.floor(wg * 255 + 0.5), math.floor(wb * 255 + 0.5) }, { r, g, b })
    assert.same({ 255, 0, 0 }, { background(page, "crashed") }) -- clipped at the range
    assert.truthy(page:find("(a fixed range)", 1, true))
  end)

  it("marks words the model does not know, on the page and in the terminal", function()
    local page = html.page(tokens, { 0.5, 1, 0 }, { unknown = { 3 } })
    assert.truthy(page:find('class="tok unk"[^>]*>crashed</span>'), page)
    assert.is_nil(page:find('class="tok unk"[^>]*>computer</span>'))
    assert.truthy(page:find("1 word the model does not know", 1, true))
    assert.equal("the[0.5] computer[1] crashed?[0]", html.terminal(tokens, { 0.5, 1, 0 }, { tty = false, unknown = { 3 } }))
    assert.truthy(html.terminal(tokens, { 0.5, 1, 0 }, { tty = true, unknown = { 3 } }):find("\27[4mcrashed", 1, true))
    assert.has_error(function() html.page(tokens, { 1, 2, 3 }, { unknown = { 4 } }) end)
  end)

  it("shows the prediction and notes", function()
    local page = html.page(tokens, { 1, 2, 3 }, { prediction = "prediction: computers (class 4), score 8.95",
                                                  notes = { "The text has 300 tokens; the model reads the first 200." } })
    assert.truthy(page:find('<p class="prediction">prediction: computers (class 4), score 8.95</p>', 1, true))
    assert.truthy(page:find("the model reads the first 200", 1, true))
  end)
end)
