-- lumen.repl: how the `lumen` prompt shows values (main.c calls format on each result of a line).
--
-- format(v [, opts]) -> string. A tensor shows its dtype, shape and an excerpt, as print(t) does. A
-- table shows its keys and values compactly: the array part first, then the other keys in order,
-- nested tables to opts.depth levels (default 2; deeper ones show as {...}), at most opts.items
-- entries per table (default 30; then "... N more"), on one line when it fits in opts.width columns
-- (default 100), else one entry per line. Strings are quoted inside tables and raw at the top, as
-- Lua's own prompt prints them. A value with a __tostring metamethod (a model, a layer) shows that.
local M = {}

local DEFAULTS = { depth = 2, items = 30, width = 100 }

local function is_identifier(k)
  return type(k) == "string" and k:match("^[%a_][%w_]*$") ~= nil and not ({
    ["and"] = 1, ["break"] = 1, ["do"] = 1, ["else"] = 1, ["elseif"] = 1, ["end"] = 1, ["false"] = 1,
    ["for"] = 1, ["function"] = 1, ["goto"] = 1, ["if"] = 1, ["in"] = 1, ["local"] = 1, ["nil"] = 1,
    ["not"] = 1, ["or"] = 1, ["repeat"] = 1, ["return"] = 1, ["then"] = 1, ["true"] = 1, ["until"] = 1,
    ["while"] = 1 })[k]
end

-- Keys in a stable order: strings, then numbers, then the rest, each group sorted.
local KIND_ORDER = { string = 1, number = 2 }
local function key_less(a, b)
  local ka, kb = KIND_ORDER[type(a)] or 3, KIND_ORDER[type(b)] or 3
  if ka ~= kb then return ka < kb end
  if ka == 3 then return tostring(a) < tostring(b) end
  return a < b
end

local function has_tostring(v)
  local mt = getmetatable(v)
  return type(mt) == "table" and rawget(mt, "__tostring") ~= nil
end

-- One line for a value inside a table: a tensor by its header line, a string quoted.
local function short(v)
  if type(v) == "string" then return (("%q"):format(v):gsub("\\\n", "\\n")) end
  if has_tostring(v) then return (tostring(v):match("^[^\n]*")) end
  return tostring(v)
end

local function format_table(t, opts, depth, indent)
  if depth > opts.depth then return "{...}" end
  local n = rawlen(t)
  local keys, entries = {}, {}
  for k in pairs(t) do
    if not (math.type(k) == "integer" and k >= 1 and k <= n) then keys[#keys + 1] = k end
  end
  table.sort(keys, key_less)
  local total = n + #keys
  local function value(v)
    if type(v) == "table" and not has_tostring(v) then return format_table(v, opts, depth + 1, indent .. "  ") end
    return short(v)
  end
  for i = 1, math.min(n, opts.items) do entries[#entries + 1] = value(t[i]) end
  for _, k in ipairs(keys) do
    if #entries >= opts.items then break end
    local name = is_identifier(k) and k or ("[" .. short(k) .. "]")
    entries[#entries + 1] = name .. " = " .. value(t[k])
  end
  if total > #entries then entries[#entries + 1] = ("... %d more"):format(total - #entries) end
  if #entries == 0 then return "{}" end
  local line = "{" .. table.concat(entries, ", ") .. "}"
  if #indent + #line <= opts.width and not line:find("\n") then return line end
  local inner = indent .. "  "
  return "{\n" .. inner .. table.concat(entries, ",\n" .. inner) .. "\n" .. indent .. "}"
end

function M.format(v, opts)
  opts = opts or {}
  for k, d in pairs(DEFAULTS) do if opts[k] == nil then opts[k] = d end end
  if type(v) == "table" and not has_tostring(v) then return format_table(v, opts, 1, "") end
  return tostring(v)
end

return M
