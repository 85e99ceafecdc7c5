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

-- load_model(path) -> model (an nn container with labels / input_spec when the file has them).
-- Raises "path: reason" when the file is missing or malformed.
function M.load_model(path, opts)
  local kind, err = M.sniff(path)
  if not kind then error(err, 2) end
  if kind == "tflite" then return require("lumen.tflite").load(path, opts) end
  if kind == "checkpoint" then return require("lumen.checkpoint").load(path) end
  return require("lumen.onnx").load(path, opts) -- plain or gzipped ONNX
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

return M
