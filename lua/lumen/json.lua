-- lumen.json: a small strict JSON (RFC 8259) encoder/decoder for manifests, configs and checkpoint
-- metadata. tests/lua/json_spec.lua holds it to what follows.
--
-- encode(value [, indent]) -> string. Object keys are sorted, so the same table always gives the same
-- bytes. Lua arrays (keys 1..n, no holes) become JSON arrays; empty tables become {} unless marked with
-- json.array(t), which also lets an array hold nil (written null). Integers are written as integers;
-- floats with the fewest digits that read back to the same float, and always with a '.' or an
-- exponent (3.0, not 3), so they read back as floats. NaN, infinities, functions, userdata,
-- non-string keys and cycles are errors naming the thing.
--
-- decode(string) -> value; raises "json: <reason> at byte N" on input that is not JSON. A number
-- without a fraction or exponent is a Lua integer (a float beyond 64 bits); any other number is a
-- float. null is nil: absent in objects, a hole in arrays (the positions of later elements are kept,
-- a trailing null is lost). Arrays come back marked with json.array, so [] re-encodes as []. \u
-- escapes become UTF-8 (surrogate pairs joined; a lone surrogate is an error). A later duplicate key
-- wins. Nesting deeper than 200 is an error.
local M = {}

local array_mt = { __name = "json.array" }
function M.array(t) return setmetatable(t or {}, array_mt) end

local escapes = { ['"'] = '\\"', ["\\"] = "\\\\", ["\b"] = "\\b", ["\f"] = "\\f", ["\n"] = "\\n",
                  ["\r"] = "\\r", ["\t"] = "\\t" }

local function encode_string(s)
  return '"' .. s:gsub('[%c"\\]', function(c)
    return escapes[c] or ("\\u%04x"):format(c:byte())
  end) .. '"'
end

-- The fewest significant digits (up to 17, which always suffice) that read back to v, with a '.'
-- added when the digits alone would read as an integer.
local function encode_float(v)
  local s
  for digits = 1, 17 do
    s = ("%." .. digits .. "g"):format(v):gsub(",", ".") -- a locale may write a decimal comma
    if tonumber(s) == v then break end
  end
  if not s:find("[.e]") then s = s .. ".0" end
  return s
end

-- The length of t if it is to be written as a JSON array, else nil.
local function array_length(t)
  if getmetatable(t) == array_mt then -- marked: may hold nils, so count to the largest key
    local n = 0
    for k in pairs(t) do
      if math.type(k) ~= "integer" or k < 1 then error("json: array key " .. tostring(k) .. " is not a position") end
      if k > n then n = k end
    end
    return n
  end
  local n = #t
  if n == 0 then return nil end
  for k in pairs(t) do
    if math.type(k) ~= "integer" or k < 1 or k > n then return nil end
  end
  return n
end

local function encode(v, indent, depth, out)
  local ty = type(v)
  if ty == "nil" then out[#out + 1] = "null"
  elseif ty == "boolean" then out[#out + 1] = tostring(v)
  elseif ty == "number" then
    if v ~= v or v == math.huge or v == -math.huge then error("json: cannot encode " .. tostring(v)) end
    out[#out + 1] = math.type(v) == "integer" and tostring(v) or encode_float(v)
  elseif ty == "string" then out[#out + 1] = encode_string(v)
  elseif ty == "table" then
    if depth > 100 then error("json: nested too deep (a cycle?)") end
    local nl = indent and ("\n" .. indent:rep(depth + 1)) or ""
    local close = indent and ("\n" .. indent:rep(depth)) or ""
    local sep = indent and ": " or ":"
    local n = array_length(v)
    if n then
      out[#out + 1] = "["
      for i = 1, n do
        if i > 1 then out[#out + 1] = "," end
        out[#out + 1] = nl
        encode(v[i], indent, depth + 1, out)
      end
      out[#out + 1] = (n > 0 and close or "") .. "]"
    else
      local keys = {}
      for k in pairs(v) do
        if type(k) ~= "string" then error("json: object key " .. tostring(k) .. " is not a string") end
        keys[#keys + 1] = k
      end
      table.sort(keys)
      out[#out + 1] = "{"
      for i, k in ipairs(keys) do
        if i > 1 then out[#out + 1] = "," end
        out[#out + 1] = nl .. encode_string(k) .. sep
        encode(v[k], indent, depth + 1, out)
      end
      out[#out + 1] = (#keys > 0 and close or "") .. "}"
    end
  else
    error("json: cannot encode a " .. ty)
  end
end

-- encode(value [, indent]) -> string
function M.encode(v, indent)
  local out = {}
  encode(v, indent, 0, out)
  return table.concat(out)
end

local unescape = { b = "\b", f = "\f", n = "\n", r = "\r", t = "\t", ['"'] = '"', ["\\"] = "\\", ["/"] = "/" }

-- decode(string) -> value; raises "json: <reason> at byte N" on malformed input.
function M.decode(s)
  if type(s) ~= "string" then error("json: expected a string to decode, got " .. type(s), 2) end
  local pos = 1
  local function fail(msg, at) error(("json: %s at byte %d"):format(msg, at or pos), 0) end
  local function ws() pos = s:find("[^ \t\r\n]", pos) or #s + 1 end
  local function peek() return s:sub(pos, pos) end

  -- The code unit of the \uXXXX escape at pos.
  local function hex4()
    local hex = s:sub(pos + 2, pos + 5)
    if not hex:match("^%x%x%x%x$") then fail("bad \\u escape") end
    pos = pos + 6
    return tonumber(hex, 16)
  end

  local function str()
    local start, buf = pos, {}
    pos = pos + 1
    while true do
      local c = peek()
      if c == "" then fail("unterminated string", start) end
      if c == '"' then pos = pos + 1; return table.concat(buf) end
      if c == "\\" then
        local e = s:sub(pos + 1, pos + 1)
        if unescape[e] then buf[#buf + 1] = unescape[e]; pos = pos + 2
        elseif e == "u" then
          local at = pos
          local u = hex4()
          if u >= 0xDC00 and u <= 0xDFFF then fail(("lone surrogate \\u%04x"):format(u), at) end
          if u >= 0xD800 and u <= 0xDBFF then -- a high surrogate: its low half must follow
            local lo = s:sub(pos, pos + 1) == "\\u" and hex4()
            if not lo or lo < 0xDC00 or lo > 0xDFFF then fail(("lone surrogate \\u%04x"):format(u), at) end
            u = 0x10000 + (u - 0xD800) * 0x400 + (lo - 0xDC00)
          end
          buf[#buf + 1] = utf8.char(u)
        else fail(("bad escape '\\%s'"):format(e)) end
      elseif c:byte() < 32 then fail("control character in string")
      else
        local j = s:find('["\\\0-\31]', pos) or #s + 1
        buf[#buf + 1] = s:sub(pos, j - 1)
        pos = j
      end
    end
  end

  -- A number as RFC 8259 spells it: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?
  local function number()
    local start = pos
    local p = s:find("^-", pos) and pos + 1 or pos
    local int = s:match("^0", p) or s:match("^[1-9]%d*", p)
    if not int then fail(p > #s and "unexpected end of input" or ("unexpected character '" .. s:sub(p, p) .. "'"), p) end
    p = p + #int
    local frac = s:match("^%.%d*", p)
    if frac then
      if #frac == 1 then fail("bad number (no digits after '.')", p) end
      p = p + #frac
    end
    local exp = s:match("^[eE][-+]?%d*", p)
    if exp then
      if not exp:find("%d") then fail("bad number (no digits in the exponent)", p) end
      p = p + #exp
    end
    local text = s:sub(start, p - 1)
    local v = tonumber(text) -- Lua's own reading: an integer unless there is a fraction or exponent
    if v == math.huge or v == -math.huge then fail("number " .. text .. " out of range", start) end
    pos = p
    return v
  end

  -- After an element of an object or array: true (and past it) when `close` ends the container,
  -- false (and past the ',') when another element follows.
  local function closes(close)
    ws()
    local d = peek()
    if d == close then pos = pos + 1; return true end
    if d ~= "," then fail(d == "" and "unexpected end of input" or ("expected ',' or '" .. close .. "'")) end
    pos = pos + 1
    return false
  end

  local value
  function value(depth)
    if depth > 200 then fail("nested too deep") end
    ws()
    local c = peek()
    if c == "{" then
      local t = {}
      pos = pos + 1; ws()
      if peek() == "}" then pos = pos + 1; return t end
      repeat
        ws()
        if peek() == "" then fail("unexpected end of input") end
        if peek() ~= '"' then fail("expected a string key") end
        local k = str(); ws()
        if peek() ~= ":" then fail(peek() == "" and "unexpected end of input" or "expected ':'") end
        pos = pos + 1
        t[k] = value(depth + 1)
      until closes("}")
      return t
    elseif c == "[" then
      local t, n = M.array(), 0
      pos = pos + 1; ws()
      if peek() == "]" then pos = pos + 1; return t end
      repeat
        n = n + 1
        t[n] = value(depth + 1)
      until closes("]")
      return t
    elseif c == '"' then return str()
    elseif s:find("^true", pos) then pos = pos + 4; return true
    elseif s:find("^false", pos) then pos = pos + 5; return false
    elseif s:find("^null", pos) then pos = pos + 4; return nil
    else return number() end
  end

  local v = value(0)
  ws()
  if pos <= #s then fail("trailing characters") end
  return v
end

return M
