-- lumen.models: the shipped architectures (textcnn, fashion_cnn, vit, text_transformer), load_model (lumen checkpoints,
-- ONNX, TFLite, told apart by content), labels (label files, one label per line) and what every
-- front end (recipes, `lumen explain`, batch runs) asks of a model file the same way:
--   input_spec(model, opts, path)   the preprocessing to use, or an error naming the file and the presets
--   classes(model [, x])             how many classes the model scores
--   check_labels(labels, n, opts)    a label list of the right length (label_offset), or an error
--   class_id(model, target [, n])    a class from an id or a label name ("macaw")
--   top(model, x [, k])              the k best classes of an input: ids, probabilities, labels
local M = {}

M.textcnn = require "lumen.models.textcnn"
M.fashion_cnn = require "lumen.models.fashion_cnn"
M.vit = require "lumen.models.vit"
M.text_transformer = require "lumen.models.text_transformer"

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
  local text, err = require("lumen").core.read_text(path) -- regular files within text_bytes (gz.c)
  if not text then return nil, err end
  local res = {}
  for line in text:gmatch("([^\n]*)\n") do res[#res + 1] = line:gsub("\r$", "") end
  local last = text:match("[^\n]+$")
  if last then res[#res + 1] = last:gsub("\r$", "") end
  return res
end

-- The keys of a model's input_spec that say how to preprocess (not only its size): present when the
-- file records its preprocessing (a lumen checkpoint, an ONNX file with lumen.input_spec metadata, a
-- TFLite file whose uint8 input quantization gives the range).
local function records_preprocessing(spec)
  return spec and (spec.preset or spec.scale or spec.mean or spec.std) and true or false
end

-- input_spec(model, opts, path) -> the resolved spec (lumen.image.input_spec) for an image model:
-- what opts gives (preset, size, crop, resize, mean, std, scale; "" = not given) over what the file
-- records. With neither a recorded preprocessing nor a preset (or scale / mean / std) it is an error
-- naming the model file and the presets: lumen does not guess an input range.
function M.input_spec(model, opts, path)
  local image = require "lumen.image"
  local base = model.input_spec or {}
  if base.length or base.dtype == "int64" then
    error(("%s: a text model takes token ids, not pictures"):format(path), 0)
  end
  local given = false
  for _, k in ipairs { "preset", "scale", "mean", "std" } do given = given or (opts[k] ~= nil and opts[k] ~= "") end
  if not given and not records_preprocessing(base) then
    local names = image.preset_names()
    error(("%s: the model does not record how its input was preprocessed; give preset=%s or %s (or scale=, "
      .. "mean=, std=), or record it once with `lumen spec %s preset=...`"):format(path,
      table.concat(names, ", ", 1, #names - 1), names[#names], path), 0)
  end
  local ok, spec = pcall(image.input_spec, opts, base)
  if not ok then error(("%s: %s"):format(path, spec), 0) end
  return spec
end

-- The model's scores (N, classes) for x, before a final softmax, without recording gradients.
local function scores(model, x)
  local lumen = require "lumen"
  return lumen.no_grad(model.forward, model, x, { logits = true })
end

-- The class count read off the weights, with no pass: when the model's output is made by a Linear
-- layer (or a Softmax straight after one), its out_features. nil otherwise.
local function dense_classes(model)
  if type(model) ~= "table" or not model.flow then return nil end
  local flow = model:flow()
  local n = #flow.outputs == 1 and flow.by_name[flow.outputs[1]]
  if n and (n.type == "Softmax" or n.type == "LogSoftmax") and #n.inputs == 1 then n = flow.by_name[n.inputs[1]] end
  local m = n and n.module
  if m and m.type == "Linear" and m.weight then return m.weight.shape[1] end
  return nil
end

-- classes(model [, x]) -> the number of classes: read off a final Linear layer's weights, else the last
-- size of the output for x, or for a probe of zeros (or ids 1) shaped as model.input_spec says. nil
-- when none of these is known.
function M.classes(model, x)
  local lumen = require "lumen"
  local n = dense_classes(model)
  if n then return n end
  if not x then
    local s = model.input_spec or {}
    if s.size then x = lumen.zeros { 1, s.channels or 3, s.size[1], s.size[2] }
    elseif s.length then x = lumen.ones({ 1, s.length }):long()
    else return nil end
  end
  local y = scores(model, x)
  return y.shape[#y.shape]
end

-- check_labels(labels, n, {offset = 0, path =, model =}) -> labels[offset + 1 ..]: the label list of
-- a model with n classes. A list of another length is an error naming both counts; offset = 1 drops a
-- first "background" line (the 1001-line ImageNet files of the TFLite / Coral models, on a 1000-class
-- model).
function M.check_labels(labels, n, opts)
  opts = opts or {}
  local offset = opts.offset or 0
  if math.type(offset) ~= "integer" or offset < 0 then
    error(("label_offset=%s: expected a whole number >= 0"):format(tostring(offset)), 0)
  end
  local out = { table.unpack(labels, offset + 1) }
  if n and #out ~= n then
    local what = opts.path or "the label list"
    local hint = #out == n + 1 and " (label_offset=1 skips a first 'background' line)" or ""
    error(("%s has %d labels%s but %s has %d classes%s"):format(what, #labels,
      offset > 0 and (" (%d after label_offset=%d)"):format(#out, offset) or "", opts.model or "the model", n, hint), 0)
  end
  return out
end

-- class_id(model, target [, n]) -> a 1-based class id, or nil for "the top class" (nil, "", 0).
-- target: an id (number or digits) in 1..n, or a label name: the label that equals it or one of its
-- comma-separated names (case-insensitive), else the one label containing it; several matches are an
-- error listing them.
function M.class_id(model, target, n)
  if target == nil or target == "" or target == 0 then return nil end
  local id = math.tointeger(tonumber(target))
  if id then
    n = n or (model.labels and #model.labels)
    if id < 1 or (n and id > n) then
      error(("target=%s: class ids are 1..%s"):format(tostring(target), n and tostring(n) or "the number of classes"), 0)
    end
    return id
  end
  if type(target) ~= "string" then error(("target: expected a class id or a label, got %s"):format(type(target)), 0) end
  local labels = model.labels
  if not labels then error(("target=%s: the model has no labels to look the name up in (give labels=FILE)"):format(target), 0) end
  local want = target:lower()
  local exact, partial = {}, {}
  for c, label in ipairs(labels) do
    local l = label:lower()
    local hit = l == want
    for name in l:gmatch("[^,]+") do hit = hit or name:match("^%s*(.-)%s*$") == want end
    if hit then exact[#exact + 1] = c end
    if l:find(want, 1, true) then partial[#partial + 1] = c end
  end
  local found = #exact > 0 and exact or partial
  if #found == 1 then return found[1] end
  if #found == 0 then error(("target=%s: no label contains '%s'"):format(target, target), 0) end
  local list = {}
  for i = 1, math.min(#found, 10) do list[i] = ("%d %s"):format(found[i], labels[found[i]]) end
  error(("target=%s: %d labels match (%s%s); give the id or more of the name"):format(target, #found,
    table.concat(list, "; "), #found > 10 and "; ..." or ""), 0)
end

-- top(model, x [, k = 5]) -> ids, probabilities (softmax of the scores before any final softmax) and
-- labels (or "class N") of the k best classes of the first input in x, best first; then every class's
-- probability, (N, classes).
function M.top(model, x, k)
  local lumen = require "lumen"
  local probs = lumen.softmax(scores(model, x), 2)
  local values, ids = lumen.topk(probs, math.min(k or 5, probs.shape[2]), 2)
  local r = { ids = {}, probs = {}, labels = {} }
  for i = 1, values.shape[2] do
    r.ids[i], r.probs[i] = ids:get { 1, i }, values:get { 1, i }
    r.labels[i] = model.labels and model.labels[r.ids[i]] or ("class " .. r.ids[i])
  end
  return r.ids, r.probs, r.labels, probs
end

return M
