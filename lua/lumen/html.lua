-- lumen.html (also lumen.viz.html): text attributions for people. A self-contained HTML page with
-- every token coloured by its score, a legend and a title; or one line for the terminal (ANSI
-- 256-colour backgrounds on a tty, token[score] otherwise).
--
-- Colours: by default scores are shown on a diverging blue-white-red scale symmetric about 0
-- (negative blue, positive red; all-positive scores go from white to red). opts.cmap = "viridis",
-- "inferno", "gray" or "jet" uses that sequential map from the smallest to the largest score;
-- opts.vmin / opts.vmax fix the range.
--
--   local page = html.page(tokens, scores, { title = "IG attributions for 'positive'" })
--   assert(html.save("out/ig.html", tokens, scores, { title = "..." }))
--   print(html.terminal(tokens, scores))
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

-- The colour scale: cmap name and the range [vmin, vmax] mapped onto it.
local function scale_of(scores, opts)
  local lo, hi = math.huge, -math.huge
  for _, s in ipairs(scores) do lo, hi = math.min(lo, s), math.max(hi, s) end
  if #scores == 0 then lo, hi = 0, 0 end
  local cmap = opts.cmap or "bwr"
  if cmap == "bwr" then
    local m = math.max(math.abs(lo), math.abs(hi))
    lo, hi = -m, m
  end
  return cmap, opts.vmin or lo, opts.vmax or hi
end

local function rgb_at(cmap, vmin, vmax, s)
  local v = vmax > vmin and (s - vmin) / (vmax - vmin) or (cmap == "bwr" and 0.5 or 0)
  return core.cmap_color(cmap, v)
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
.legend { margin-top: 2em; width: 24em; line-height: 1.4; font-size: 0.85em; }
.bar { height: 1em; border: 1px solid #999; }
.ticks { display: flex; justify-content: space-between; }]]

-- html.page(tokens, scores [, {title, cmap, vmin, vmax, sep = " "}]) -> the HTML text of a page.
-- tokens: a list of strings; scores: a list of numbers or a tensor with one score per token.
function html.page(tokens, scores, opts)
  opts = opts or {}
  if type(tokens) ~= "table" then error("html.page: tokens must be a list of strings", 2) end
  scores = as_list(scores, #tokens, "html.page")
  local cmap, vmin, vmax = scale_of(scores, opts)
  local spans = {}
  for i, tok in ipairs(tokens) do
    local r, g, b = rgb_at(cmap, vmin, vmax, scores[i])
    spans[i] = ('<span class="tok" style="background:%s;color:%s" title="%.4g">%s</span>'):format(
      hex(r, g, b), luma(r, g, b) > 0.5 and "#000" or "#fff", scores[i], html.escape(tok))
  end
  local stops = {}
  for k = 0, 10 do stops[#stops + 1] = hex(core.cmap_color(cmap, k / 10)) end
  local ticks = { ("%.3g"):format(vmin) }
  if cmap == "bwr" and vmin < 0 and vmax > 0 then ticks[#ticks + 1] = "0" end
  ticks[#ticks + 1] = ("%.3g"):format(vmax)
  local title = html.escape(opts.title or "token attributions")
  return table.concat {
    '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<title>', title, "</title>\n<style>\n",
    style, "\n</style>\n</head>\n<body>\n<h1>", title, "</h1>\n<p class=\"text\">",
    table.concat(spans, opts.sep or " "), "</p>\n",
    '<div class="legend"><div class="bar" style="background:linear-gradient(to right, ',
    table.concat(stops, ", "), ')"></div><div class="ticks"><span>', table.concat(ticks, "</span><span>"),
    "</span></div>score (", html.escape(cmap), ")</div>\n</body>\n</html>\n",
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

-- html.terminal(tokens, scores [, {tty, cmap, vmin, vmax}]) -> one line of text. With tty (default:
-- whether stdout is a terminal) tokens get coloured backgrounds; otherwise each is written token[score].
function html.terminal(tokens, scores, opts)
  opts = opts or {}
  if type(tokens) ~= "table" then error("html.terminal: tokens must be a list of strings", 2) end
  scores = as_list(scores, #tokens, "html.terminal")
  local tty = opts.tty
  if tty == nil then tty = core.isatty(1) end
  local cmap, vmin, vmax = scale_of(scores, opts)
  local parts = {}
  for i, tok in ipairs(tokens) do
    if tty then
      local r, g, b = rgb_at(cmap, vmin, vmax, scores[i])
      parts[i] = ("\27[48;5;%dm\27[38;5;%dm%s\27[0m"):format(ansi256(r, g, b), luma(r, g, b) > 0.5 and 16 or 231, tok)
    else
      parts[i] = ("%s[%.3g]"):format(tok, scores[i])
    end
  end
  return table.concat(parts, " ")
end

return html
