-- lumen.models: the shipped architectures (textcnn, fashion_cnn), load_model (lumen checkpoints,
-- ONNX, TFLite, told apart by content) and labels (label files, one label per line).
local M = {}

M.textcnn = require "lumen.models.textcnn"
M.fashion_cnn = require "lumen.models.fashion_cnn"

-- What a model file is, from its first bytes: "tflite", "checkpoint", "gzip" or "onnx" (the rest).
function M.sniff(path)
  local f, err = io.open(path, "rb")
  if not f then return nil, err end
  local head = f:read(16) or ""
  local size = f:seek("end")
  f:close()
  if #head >= 8 and head:sub(5, 8) == "TFL3" then return "tflite" end
  if head:sub(1, 2) == "\31\139" then return "gzip" end
  if #head >= 9 and head:sub(9, 9) == "{" then
    local n = string.unpack("<I8", head)
    if n > 0 and n <= size - 8 then return "checkpoint" end
    return nil, ("%s: truncated safetensors file (header of %d bytes, file of %d)"):format(path, n, size)
  end
  return "onnx"
end

local function read_model(path, opts)
  local kind, err = M.sniff(path)
  if not kind then error(err, 3) end
  if kind == "tflite" then return require("lumen.tflite").load(path, opts) end
  if kind == "checkpoint" then return require("lumen.checkpoint").load(path) end
  return require("lumen.onnx").load(path, opts) -- plain or gzipped ONNX
end

-- The model cache. A script run again in the same Lua state (`lumen batch` runs a recipe once per
-- input in one process) gets the model it loaded before instead of reading the file again. An entry
-- is keyed by the path, the file's SHA-256 (a changed file is read again) and the options; at most
-- M.cache_size models are kept (least recently used out first). On a hit the model's labels,
-- input_spec and train/eval mode are put back as the file gave them, so what a recipe set for one
-- run (labels=, an input scale) does not leak into the next; the weights are shared, so a script
-- that changes them in place and does not restore them loads with opts.cache = false.
-- LUMEN_MODEL_CACHE=0 in the environment, or M.cache_size = 0, turns the cache off.
M.cache_size = 4
local cache = {} -- array of { key =, model =, labels =, spec =, training = }, most recent last

local function copy(t)
  if type(t) ~= "table" then return t end
  local c = {}
  for k, v in pairs(t) do c[k] = copy(v) end
  return c
end

local function cache_key(path, opts)
  local plain = {}
  for k, v in pairs(opts or {}) do
    if k ~= "cache" then plain[k] = v end
  end
  local ok, o = pcall(require("lumen.json").encode, plain) -- options holding functions or tensors: no caching
  local sha = require("lumen.core").sha256_file(path)
  if not ok or not sha then return nil end
  return path .. "\0" .. sha .. "\0" .. o
end

-- M.clear_cache(): forgets every cached model.
function M.clear_cache() cache = {} end

-- load_model(path [, opts]) -> model (an nn container with labels / input_spec when the file has
-- them), from the cache above when it holds the same file; opts.cache = false reads the file anyway
-- and keeps nothing. Raises "path: reason" when the file is missing or malformed.
function M.load_model(path, opts)
  local use = M.cache_size > 0 and not (opts and opts.cache == false) and os.getenv("LUMEN_MODEL_CACHE") ~= "0"
  local key = use and cache_key(path, opts)
  if not key then return read_model(path, opts) end
  for i, e in ipairs(cache) do
    if e.key == key then
      table.remove(cache, i)
      cache[#cache + 1] = e
      local m = e.model
      m.labels, m.input_spec = copy(e.labels), copy(e.spec)
      if m.training ~= e.training then
        if e.training then m:train() else m:eval() end
      end
      return m
    end
  end
  local m = read_model(path, opts)
  cache[#cache + 1] = { key = key, model = m, labels = copy(m.labels), spec = copy(m.input_spec), training = m.training }
  while #cache > M.cache_size do table.remove(cache, 1) end
  return m
end

-- labels(path) -> array of every line of the file (a final newline ends the last line), or nil, msg.
function M.labels(path)
  local f, err = io.open(path, "r")
  if not f then return nil, err end
  local res = {}
  for line in f:lines() do res[#res + 1] = line:gsub("\r$", "") end
  f:close()
  return res
end

return M
