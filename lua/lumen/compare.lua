-- lumen.compare: are two output files the same, and if not, how far apart? Used by `lumen rerun`
-- and by the check that docs/img is current.
--
--   local r = compare.files("run/gradcam.npy", "rerun/gradcam.npy", { tolerance = 1e-4 })
--   r.same    byte for byte
--   r.close   numerically within the tolerance (true when same)
--   r.detail  one line: "max |diff| 2.4e-07, relative 3.1e-07" / "12 of 50176 pixels differ, by at most 1/255"
--
-- By kind (the name's extension):
--   .npy                 shapes must agree; relative difference = max |a - b| / max |a| (the reference's
--                        largest magnitude), close when <= tolerance
--   .lumen .safetensors  every tensor as for .npy (the names and metadata must agree)
--   .png                 same size; close when no channel of any pixel differs by more than
--                        max(1, tolerance * 255) levels of 255 (a rounding step of the 8-bit colour)
--   .html .json .txt .csv .md .svg   text whose numbers may differ: the text between numbers must be
--                        equal; each number within tolerance relative to it, or one unit in its last
--                        printed digit (a value printed with %.4g that rounds the other way); each
--                        #rrggbb colour within the PNG rule
--   anything else        bytes only
local core = require "lumen.core"

local M = {}

M.DEFAULT_TOLERANCE = 1e-4

local function ext(name) return (name:match("%.([%w]+)$") or ""):lower() end

local function tensor_diff(lumen, a, b)
  if #a.shape ~= #b.shape then return nil, ("shapes differ: %s vs %s"):format(lumen.shape_str(a), lumen.shape_str(b)) end
  for i = 1, #a.shape do
    if a.shape[i] ~= b.shape[i] then return nil, ("shapes differ: %s vs %s"):format(lumen.shape_str(a), lumen.shape_str(b)) end
  end
  if a:numel() == 0 then return 0, 0, 0 end
  local fa, fb = a:float(), b:float()
  local d = lumen.max_abs_diff(fa, fb)
  local scale = math.max(math.abs(fa:max_all()), math.abs(fa:min_all()))
  local rel = d == 0 and 0 or (scale > 0 and d / scale or math.huge)
  return d, rel, scale
end

local function numeric_result(r, d, rel, tol)
  if d ~= d or rel ~= rel then
    r.close, r.detail = false, "not-a-number values differ"
  else
    r.close = rel <= tol
    r.detail = ("max |diff| %.3g, relative %.3g"):format(d, rel)
  end
  r.max_abs, r.relative = d, rel
  return r
end

local function npy(a, b, r, tol)
  local lumen = require "lumen"
  local ta, ea = lumen.read_npy(a)
  local tb, eb = lumen.read_npy(b)
  if not ta or not tb then r.close, r.detail = false, ea or eb; return r end
  local d, rel = tensor_diff(lumen, ta, tb)
  if not d then r.close, r.detail = false, rel; return r end
  return numeric_result(r, d, rel, tol)
end

local function safetensors(a, b, r, tol)
  local lumen = require "lumen"
  local wa, ma = lumen.read_safetensors(a)
  local wb, mb = lumen.read_safetensors(b)
  if not wa or not wb then r.close, r.detail = false, (not wa and ma) or mb; return r end
  local names = {}
  for k in pairs(wa) do names[#names + 1] = k end
  for k in pairs(wb) do if wa[k] == nil then r.close, r.detail = false, "tensor " .. k .. " is new"; return r end end
  table.sort(names)
  local worst, worst_rel, worst_name = 0, 0, nil
  for _, k in ipairs(names) do
    if wb[k] == nil then r.close, r.detail = false, "tensor " .. k .. " is missing"; return r end
    local d, rel = tensor_diff(lumen, wa[k], wb[k])
    if not d then r.close, r.detail = false, k .. ": " .. rel; return r end
    if rel > worst_rel or rel ~= rel then worst, worst_rel, worst_name = d, rel, k end
  end
  for k, v in pairs(ma or {}) do
    if (mb or {})[k] ~= v then r.close, r.detail = false, "metadata '" .. k .. "' differs"; return r end
  end
  numeric_result(r, worst, worst_rel, tol)
  if worst_name then r.detail = r.detail .. " (" .. worst_name .. ")" end
  return r
end

local function png(a, b, r, tol)
  local lumen = require "lumen"
  local ia, ea = lumen.image.load(a)
  local ib, eb = lumen.image.load(b)
  if not ia or not ib then r.close, r.detail = false, ea or eb; return r end
  if not lumen.same_shape(ia, ib) then
    r.close, r.detail = false, ("sizes differ: %s vs %s"):format(lumen.shape_str(ia), lumen.shape_str(ib))
    return r
  end
  local diff = (ia - ib):abs()                         -- (C, H, W)
  local levels = math.floor(diff:max_all() * 255 + 0.5)
  local per_pixel = diff:max(1)                        -- (H, W)
  local differing = math.floor((per_pixel:gt(0.5 / 255)):sum_all() + 0.5)
  local npix = per_pixel:numel()
  r.pixels, r.levels = differing, levels
  r.close = levels <= math.max(1, math.floor(tol * 255))
  r.detail = ("%d of %d pixels differ, by at most %d/255"):format(differing, npix, levels)
  return r
end

-- Splits text into pieces: {text =}, {num =} and {color = "#rrggbb"} (HTML colours).
local function pieces(s)
  local out, pos = {}, 1
  while true do
    local i, j = s:find("[-+]?%d+%.?%d*[eE]?[-+]?%d*", pos)
    local ci, cj = s:find("#%x%x%x%x%x%x%f[^%w]", pos)
    if ci and (not i or ci <= i) then
      out[#out + 1] = { text = s:sub(pos, ci - 1) }
      out[#out + 1] = { color = s:sub(ci, cj) }
      pos = cj + 1
    elseif i then
      local num = s:sub(i, j)
      if num:match("[eE][-+]?$") then num = num:gsub("[eE][-+]?$", ""); j = i + #num - 1 end
      out[#out + 1] = { text = s:sub(pos, i - 1) }
      out[#out + 1] = { num = num }
      pos = j + 1
    else
      break
    end
  end
  out[#out + 1] = { text = s:sub(pos) }
  return out
end

-- One unit in the last printed digit of a number as written ("0.0246" -> 1e-4, "4.97e+01" -> 0.1).
local function last_unit(s)
  local mant, e = s:match("^[-+]?([%d.]+)[eE]([-+]?%d+)$")
  mant = mant or s:match("^[-+]?([%d.]+)$") or "0"
  local frac = mant:match("%.(%d*)$") or ""
  return 10 ^ (-(#frac) + (tonumber(e) or 0))
end

local function text(a, b, r, tol)
  local fa, fb = io.open(a, "rb"), io.open(b, "rb")
  local sa, sb = fa and fa:read("a"), fb and fb:read("a")
  if fa then fa:close() end
  if fb then fb:close() end
  if not sa or not sb then r.close, r.detail = false, "unreadable"; return r end
  local pa, pb = pieces(sa), pieces(sb)
  if #pa ~= #pb then r.close, r.detail = false, "the text differs (not only in numbers)"; return r end
  local n, worst = 0, 0
  for k = 1, #pa do
    local x, y = pa[k], pb[k]
    if x.text or x.color then
      if x.color and y.color then
        for c = 2, 6, 2 do
          local d = math.abs(tonumber(x.color:sub(c, c + 1), 16) - tonumber(y.color:sub(c, c + 1), 16))
          if d > math.max(1, math.floor(tol * 255)) then
            r.close, r.detail = false, ("the colour %s became %s"):format(x.color, y.color)
            return r
          end
        end
      elseif x.text ~= y.text then r.close, r.detail = false, "the text differs (not only in numbers)"; return r end
    elseif not y.num then
      r.close, r.detail = false, "the text differs (not only in numbers)"; return r
    elseif x.num ~= y.num then
      local vx, vy = tonumber(x.num), tonumber(y.num)
      if not vx or not vy then r.close, r.detail = false, "the text differs"; return r end
      n = n + 1
      local allowed = math.max(tol * math.abs(vx), last_unit(x.num), last_unit(y.num)) * (1 + 1e-9)
      local d = math.abs(vx - vy)
      worst = math.max(worst, d / allowed)
      if d > allowed then
        r.close, r.detail = false, ("the number %s became %s"):format(x.num, y.num)
        return r
      end
    end
  end
  r.close = true
  r.detail = ("%d numbers differ, each within tolerance or its last printed digit"):format(n)
  return r
end

local by_ext = { npy = npy, lumen = safetensors, safetensors = safetensors, png = png,
                 html = text, json = text, txt = text, csv = text, md = text, svg = text }

-- files(reference, other [, {tolerance =}]) -> {same, close, detail, kind}.
function M.files(a, b, opts)
  local tol = (opts and opts.tolerance) or M.DEFAULT_TOLERANCE
  local ha, hb = core.sha256_file(a), core.sha256_file(b)
  local kind = ext(a)
  local r = { kind = kind, same = ha ~= nil and ha == hb }
  if r.same then r.close, r.detail = true, "same bytes"; return r end
  if not ha or not hb then r.close, r.detail = false, "missing or not a regular file"; return r end
  local fn = by_ext[kind]
  if not fn then r.close, r.detail = false, "bytes differ"; return r end
  local ok, res = pcall(fn, a, b, r, tol)
  if not ok then r.close, r.detail = false, tostring(res) end
  return ok and res or r
end

return M
