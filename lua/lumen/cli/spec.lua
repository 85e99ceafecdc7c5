-- lumen spec MODEL preset=NAME [size= crop= resize= mean= std= scale=] [labels=FILE [label_offset=1]] [out=PATH]:
-- writes a copy of the model that records how its input is preprocessed (and its labels), so that
-- `lumen explain`, the recipes and lumen.load_model use it with no flags.
-- ONNX: the copy is the same file (plain ONNX, every field kept) with two metadata_props entries,
-- "lumen.input_spec" (JSON: preset, size, resize, crop, scale, mean, std, channels) and "lumen.labels"
-- (JSON array), which ONNX tools show as model metadata; default out = MODEL's folder/<stem>.spec.onnx.
-- lumen checkpoints: saved again with the new input_spec and labels (default <stem>.spec.lumen).
-- TFLite files are not rewritten: their input quantization already gives the range (preset=tflite).
-- The labels are checked against the model's class count (label_offset=1 drops a first "background"
-- line) and stored already offset, so the copy needs no label_offset.
local KEYS = { preset = "", size = "", crop = "", resize = "", mean = "", std = "", scale = "", labels = "",
               label_offset = 0 } -- and out=, a file (lumen.args takes out= for a run folder)
local USAGE = "usage: lumen spec MODEL preset=NAME [size= crop= resize= mean= std= scale=] [labels=FILE [label_offset=1]] [out=PATH]"

-- The spec as stored: what says how to preprocess, defaults left out.
local function stored(spec)
  local s = {}
  for _, k in ipairs { "preset", "size", "channels", "resize", "crop", "scale", "mean", "std" } do s[k] = spec[k] end
  if spec.method and spec.method ~= "bilinear" then s.method = spec.method end
  if spec.antialias == false then s.antialias = false end
  return s
end

return function(words)
  local lumen = require "lumen"
  local models = require "lumen.models"
  local recipe = require "lumen.recipe"
  local path = words[1]
  if not path or path:find("=", 1, true) then error(USAGE, 0) end
  local rest, out = {}, nil
  for i = 2, #words do
    local v = words[i]:match("^out=(.*)$")
    if v and out then error(("parameter out given twice (out=%s and out=%s)"):format(out, v), 0) end
    if v then out = v else rest[#rest + 1] = words[i] end
  end
  local p = lumen.args(KEYS, rest)
  p.out = out or ""
  local kind = models.sniff(path)
  if kind == "tflite" then
    error(path .. ": lumen spec rewrites ONNX files and lumen checkpoints; a TFLite file's input quantization "
      .. "already gives its range (use preset=tflite for a float one)", 0)
  end
  local model = lumen.load_model(path)
  local spec = models.input_spec(model, recipe.image_opts(p), path)
  model.input_spec = spec
  local classes = models.classes(model)
  local labels = model.labels
  if p.labels ~= "" then
    local lines, err = lumen.labels(p.labels)
    if not lines then error("labels=" .. p.labels .. ": " .. tostring(err), 0) end
    labels = models.check_labels(lines, classes, { offset = p.label_offset, path = p.labels, model = path })
  elseif p.label_offset ~= 0 then
    error("label_offset= applies to labels=FILE", 0)
  end
  local dir, name = path:match("^(.-)([^/]*)$")
  local base = name:gsub("%.gz$", ""):gsub("%.[^.]*$", "")
  local out = p.out ~= "" and p.out or (dir .. base .. (kind == "checkpoint" and ".spec.lumen" or ".spec.onnx"))
  if out == path then error(("out=%s: give another path than the model's own"):format(out), 0) end
  local json = lumen.json
  if kind == "checkpoint" then
    model.labels = labels
    model.input_spec = stored(spec)
    model:save(out)
  else
    local meta = { ["lumen.input_spec"] = json.encode(stored(spec)) }
    if labels then meta["lumen.labels"] = json.encode(labels) end
    local ok, err = lumen.core.onnx_write_metadata(path, out, meta)
    if not ok then error(err, 0) end
  end
  -- read it back: the copy must load with the spec and labels it was given
  local back = lumen.load_model(out)
  if not back.input_spec or back.input_spec.preset ~= spec.preset or (labels and #(back.labels or {}) ~= #labels) then
    error(out .. ": the written copy does not read back with its spec", 0)
  end
  print(("wrote %s: %s%s, input %s"):format(out, spec.preset and ("preset " .. spec.preset) or "scale " ..
    table.concat(spec.scale, ","), labels and (", %d labels"):format(#labels) or "",
    spec.size and (spec.size[1] .. "x" .. spec.size[2]) or "of any size"))
  return out
end
