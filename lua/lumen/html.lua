-- lumen.html (also lumen.viz.html): text attributions for people. A self-contained HTML page with
-- every token coloured by its score, the prediction, a legend that states the colour range, and
-- flags; or one line for the terminal (ANSI 256-colour backgrounds on a tty, token[score] otherwise).
--
-- Colours: by default scores are shown on the diverging blue-white-red scale, 0 white, symmetric
-- about 0: ±vmax, where vmax is opts.vmax (an absolute range), or else the largest |score| on the
-- page. Scores that are all >= 0 use only the white-red half (legend 0 .. vmax), all <= 0 only the
-- blue-white half. opts.cmap = "viridis", "inferno", "gray" or "jet" uses that sequential map from
-- opts.vmin (default: the smallest score) to opts.vmax (default: the largest).
-- Flags, shown above the text (and appended to the terminal line):
--   - every score 0: the map says nothing;
--   - near zero: with opts.reference (a number in the scores' units, e.g. the class score that the
--     attributions share out), a largest |score| below near_zero (default 0.01) x |reference| is
--     flagged, and the colour range becomes near_zero x |reference|, so such a map is drawn pale
--     instead of being stretched to full colour;
--   - opts.unknown: positions (1-based) of tokens the model does not know (it saw <unk>): drawn with
--     a dashed outline and named in the legend (token? in the terminal).
-- opts.prediction (a line such as "computers (class 4), score 4.97, probability 62 %") is shown under
-- the title; opts.notes (a list of lines) below it.
--
--   local page = html.page(tokens, scores, { title = "IG attributions for 'positive'", prediction = "...",
--                                            reference = score, reference_label = "class score", unknown = {3} })
--   assert(html.save("out/ig.html", tokens, scores, { title = "..." }))
--   print(html.terminal(tokens, scores, { reference = score }))
local core = require "lumen.core"

local html = {}

local function as_list(scores, n, fn)
  local list = scores
  if core.is_tensor(scores) then
    list = {}
    for i = 1, core.numel(scores) do list[i] = core.flat_get(scores, i) end
  end
  if type(list) ~= "table" then error(fn .. ": scores must be a list of numbers or a tensor", 3) end
  if #list ~= n then error(("%s: %d tokens but %d scores"):format(fn, n, #list), 3) end
  return list
end

local function fmt(v) return ("%.3g"):format(v) end

-- The colour scale of a list of scores: {cmap, lo, hi (the range shown), color(s) -> r, g, b,
-- stops (the bar's colours), ticks, text (one sentence saying the range), flags (lines)}.
local function scale_of(scores, opts)
  local lo, hi = math.huge, -math.huge
  for _, s in ipairs(scores) do lo, hi = math.min(lo, s), math.max(hi, s) end
  if #scores == 0 then lo, hi = 0, 0 end
  local m = math.max(math.abs(lo), math.abs(hi))
  local sc = { cmap = opts.cmap or "bwr", flags = {} }
  local near = opts.near_zero or 0.01
  local ref = opts.reference
  local ref_label = opts.reference_label or "reference"
  if m == 0 and #scores > 0 then
    sc.flags[#sc.flags + 1] = "Every score is 0: this map says nothing about the tokens."
  elseif ref and ref ~= 0 and m < near * math.abs(ref) then
    sc.flags[#sc.flags + 1] = ("Near zero: the largest |score| is %s, %.2g %% of the %s %s, so the colours"
      .. " span %s (%g %% of it) and the map shows pale."):format(fmt(m), 100 * m / math.abs(ref), ref_label,
      fmt(ref), fmt(near * math.abs(ref)), 100 * near)
    sc.floor = near * math.abs(ref)
  end
  if sc.cmap == "bwr" then
    local v = opts.vmax and math.max(math.abs(opts.vmax), math.abs(opts.vmin or 0)) or sc.floor or m
    local half = lo >= 0 and "pos" or (hi <= 0 and "neg" or nil)
    sc.lo, sc.hi = half == "pos" and 0 or -v, half == "neg" and 0 or v
    function sc.color(s)
      local t = v > 0 and math.max(-1, math.min(1, s / v)) or 0
      return core.cmap_color("bwr", 0.5 + 0.5 * t)
    end
    local a, b = half == "pos" and 0.5 or 0, half == "neg" and 0.5 or 1
    sc.stops = {}
    for k = 0, 10 do sc.stops[#sc.stops + 1] = { core.cmap_color("bwr", a + (b - a) * k / 10) } end
    sc.ticks = { fmt(sc.lo) }
    if not half then sc.ticks[#sc.ticks + 1] = "0" end
    sc.ticks[#sc.ticks + 1] = fmt(sc.hi)
    local how = opts.vmax and "a fixed range" or (sc.floor and ("%g %% of the %s"):format(100 * near, ref_label))
      or "the largest |score| on this page"
    if half == "pos" then
      sc.text = ("Colours: white 0 to red %s (%s); every score is >= 0."):format(fmt(v), how)
    elseif half == "neg" then
      sc.text = ("Colours: blue %s to white 0 (%s); every score is <= 0."):format(fmt(-v), how)
    else
      sc.text = ("Colours: blue %s, white 0, red %s (%s)."):format(fmt(-v), fmt(v), how)
    end
  else
    sc.lo, sc.hi = opts.vmin or lo, opts.vmax or hi
    function sc.color(s)
      local t = sc.hi > sc.lo and (s - sc.lo) / (sc.hi - sc.lo) or 0
      return core.cmap_color(sc.cmap, math.max(0, math.min(1, t)))
    end
    sc.stops = {}
    for k = 0, 10 do sc.stops[#sc.stops + 1] = { core.cmap_color(sc.cmap, k / 10) } end
    sc.ticks = { fmt(sc.lo), fmt(sc.hi) }
    sc.text = ("Colours: %s from %s to %s (%s)."):format(sc.cmap, fmt(sc.lo), fmt(sc.hi),
      (opts.vmin or opts.vmax) and "a fixed range" or "the smallest to the largest score")
  end
  return sc
end

-- The 1-based positions of opts.unknown as a set.
local function unknown_set(opts, n)
  local set = {}
  for _, i in ipairs(opts.unknown or {}) do
    if math.type(i) ~= "integer" or i < 1 or i > n then
      error(("html: unknown token position %s out of range [1, %d]"):format(tostring(i), n), 3)
    end
    set[i] = true
  end
  return set
end

local function luma(r, g, b) return 0.299 * r + 0.587 * g + 0.114 * b end

local function hex(r, g, b)
  return ("#%02x%02x%02x"):format(math.floor(r * 255 + 0.5), math.floor(g * 255 + 0.5), math.floor(b * 255 + 0.5))
end

local escapes = { ["&"] = "&amp;", ["<"] = "&lt;", [">"] = "&gt;", ['"'] = "&quot;", ["'"] = "&#39;" }

-- html.escape(s): s with & < > " ' as HTML entities.
function html.escape(s) return (tostring(s):gsub("[&<>\"']", escapes)) end

local style = [[
body { font-family: sans-serif; max-width: 60em; margin: 2em auto; line-height: 2.2; color: #222; }
.tok { padding: 0.15em 0.25em; border-radius: 0.25em; }
.unk { outline: 2px dashed #555; outline-offset: 1px; }
.prediction { font-size: 1.1em; line-height: 1.4; }
.note { line-height: 1.4; color: #555; }
.flag { line-height: 1.4; background: #fff3cd; border: 1px solid #e0b000; padding: 0.4em 0.6em; }
.legend { margin-top: 2em; width: 36em; line-height: 1.4; font-size: 0.85em; }
.legend div.key { margin-top: 0.6em; }
.bar { height: 1em; border: 1px solid #999; }
.ticks { display: flex; justify-content: space-between; }]]

-- html.page(tokens, scores [, {title, prediction, notes, reference, reference_label, near_zero, unknown,
-- cmap, vmin, vmax, sep = " "}]) -> the HTML text of a page. tokens: a list of strings; scores: a list of
-- numbers or a tensor with one score per token.
function html.page(tokens, scores, opts)
  opts = opts or {}
  if type(tokens) ~= "table" then error("html.page: tokens must be a list of strings", 2) end
  scores = as_list(scores, #tokens, "html.page")
  local sc = scale_of(scores, opts)
  local unk = unknown_set(opts, #tokens)
  local spans = {}
  for i, tok in ipairs(tokens) do
    local r, g, b = sc.color(scores[i])
    spans[i] = ('<span class="tok%s" style="background:%s;color:%s" title="%.4g%s">%s</span>'):format(
      unk[i] and " unk" or "", hex(r, g, b), luma(r, g, b) > 0.5 and "#000" or "#fff", scores[i],
      unk[i] and " (unknown word: the model saw &lt;unk&gt;)" or "", html.escape(tok))
  end
  local stops = {}
  for k, c in ipairs(sc.stops) do stops[k] = hex(c[1], c[2], c[3]) end
  local title = html.escape(opts.title or "token attributions")
  local head = {}
  if opts.prediction then head[#head + 1] = '<p class="prediction">' .. html.escape(opts.prediction) .. "</p>\n" end
  for _, n in ipairs(opts.notes or {}) do head[#head + 1] = '<p class="note">' .. html.escape(n) .. "</p>\n" end
  for _, f in ipairs(sc.flags) do head[#head + 1] = '<p class="flag">' .. html.escape(f) .. "</p>\n" end
  local legend = { '<div class="key">' .. html.escape(sc.text) .. "</div>" }
  if next(unk) then
    local n = 0
    for _ in pairs(unk) do n = n + 1 end
    legend[#legend + 1] = ('<div class="key"><span class="tok unk">dashed</span>: %d word%s the model does not know (it saw'
      .. " &lt;unk&gt;; attributions from a padding baseline give such a word 0 when &lt;unk&gt; and padding"
      .. " share an embedding)</div>"):format(n, n == 1 and "" or "s")
  end
  return table.concat {
    '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<title>', title, "</title>\n<style>\n",
    style, "\n</style>\n</head>\n<body>\n<h1>", title, "</h1>\n", table.concat(head), '<p class="text">',
    table.concat(spans, opts.sep or " "), "</p>\n",
    '<div class="legend"><div class="bar" style="background:linear-gradient(to right, ',
    table.concat(stops, ", "), ')"></div><div class="ticks"><span>', table.concat(sc.ticks, "</span><span>"),
    "</span></div>", table.concat(legend), "</div>\n</body>\n</html>\n",
  }
end

-- html.save(path, tokens, scores [, opts]) -> true, or nil and "path: reason".
function html.save(path, tokens, scores, opts)
  local text = html.page(tokens, scores, opts)
  local f, err = io.open(path, "wb")
  if not f then return nil, err end
  local ok, werr = f:write(text)
  f:close()
  if not ok then return nil, ("%s: %s"):format(path, werr) end
  return true
end

-- The xterm 256-colour cube entry nearest to an RGB colour.
local function ansi256(r, g, b)
  local function q(v) return math.floor(v * 5 + 0.5) end
  return 16 + 36 * q(r) + 6 * q(g) + q(b)
end

-- html.terminal(tokens, scores [, opts]) -> one line of text. With tty (default: whether stdout is a
-- terminal) tokens get coloured backgrounds (unknown words underlined); otherwise each is written
-- token[score] (unknown words token?[score]). On a tty the colour range follows in brackets; flags
-- (all zero, near zero) always do. opts as for html.page.
function html.terminal(tokens, scores, opts)
  opts = opts or {}
  if type(tokens) ~= "table" then error("html.terminal: tokens must be a list of strings", 2) end
  scores = as_list(scores, #tokens, "html.terminal")
  local tty = opts.tty
  if tty == nil then tty = core.isatty(1) end
  local sc = scale_of(scores, opts)
  local unk = unknown_set(opts, #tokens)
  local parts = {}
  for i, tok in ipairs(tokens) do
    if tty then
      local r, g, b = sc.color(scores[i])
      parts[i] = ("\27[48;5;%dm\27[38;5;%dm%s%s\27[0m"):format(ansi256(r, g, b), luma(r, g, b) > 0.5 and 16 or 231,
        unk[i] and "\27[4m" or "", tok)
    else
      parts[i] = ("%s%s[%.3g]"):format(tok, unk[i] and "?" or "", scores[i])
    end
  end
  local line = table.concat(parts, " ")
  if tty then line = line .. "  [" .. sc.text .. "]" end
  for _, f in ipairs(sc.flags) do line = line .. "  [" .. f .. "]" end
  return line
end

return html
