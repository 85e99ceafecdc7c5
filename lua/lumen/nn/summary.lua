-- model:summary([input_shape]) -> the Keras-style table as a string: one row per input and layer with
-- its output shape (from a trace of a batch of one under no_grad, batch shown as None) and parameter
-- count, then the totals. Buffers (batch-norm running statistics) count as non-trainable, as in Keras.
-- input_shape excludes the batch: {1000} or {3, 224, 224}; several inputs: {{...}, {...}}. Without it,
-- the model's input_spec says the shape: {length} for token models, {channels (3), H, W} for images.
local lumen = require "lumen"

local function thousands(n)
  local s = tostring(math.tointeger(n) or n)
  local k
  repeat s, k = s:gsub("^(-?%d+)(%d%d%d)", "%1,%2") until k == 0
  return s
end

local function shape_str(shape)
  if not shape then return "?" end
  local parts = { "None" }
  for i = 2, #shape do parts[i] = tostring(shape[i]) end
  if #shape == 1 then return "(None,)" end
  return "(" .. table.concat(parts, ", ") .. ")"
end

-- A layer's tensor counts: trainable, non-trainable (frozen parameters and buffers).
local function count(m)
  local tr, fixed = 0, 0
  for _, k in ipairs(m._params or {}) do
    if m._frozen[k] then fixed = fixed + m[k]:numel() else tr = tr + m[k]:numel() end
  end
  for _, k in ipairs(m._buffers or {}) do fixed = fixed + m[k]:numel() end
  return tr, fixed
end

-- The input shape (without the batch) model.input_spec describes, or nil.
local function spec_shape(model)
  local s = model.input_spec
  if type(s) ~= "table" then return nil end
  if math.type(s.length) == "integer" then return { s.length } end
  if type(s.size) == "table" and #s.size == 2 then return { s.channels or 3, s.size[1], s.size[2] } end
  return nil
end

return function(model, input_shape)
  if input_shape == nil then
    input_shape = spec_shape(model)
      or error("summary: the model does not say its input shape (no input_spec); pass one such as {3, 224, 224}", 3)
  end
  if type(input_shape) ~= "table" then error("summary: expected an input shape such as {3, 224, 224}", 3) end
  local shapes = type(input_shape[1]) == "table" and input_shape or { input_shape }
  local names = model.inputs or { "input_1" }
  local xs = {}
  for i, s in ipairs(shapes) do
    local full = { 1, table.unpack(s) }
    xs[i] = model:input_dtype() == "int64" and lumen.full(full, 1, "int64") or lumen.zeros(full)
  end
  local was_training = model.training
  model:eval()
  local ok, tr = pcall(lumen.no_grad, model.trace, model, #xs == 1 and xs[1] or xs)
  model:train(was_training)
  if not ok then error(tr, 0) end

  local rows = {}
  for i, n in ipairs(names) do
    rows[#rows + 1] = { n .. " (InputLayer)", shape_str(xs[i] and xs[i].shape), "0" }
  end
  local total_tr, total_fixed = 0, 0
  for _, l in ipairs(model:layers()) do
    if not l.extra then
      local n_tr, fixed = count(l.module)
      total_tr, total_fixed = total_tr + n_tr, total_fixed + fixed
      local ty = l.module.keras_type or l.type
      rows[#rows + 1] = { ("%s (%s)"):format(l.name, ty), shape_str(tr.shapes[l.name]), thousands(n_tr + fixed) }
    end
  end

  local w = { 29, 26, 10 }
  for _, r in ipairs(rows) do
    for k = 1, 2 do w[k] = math.max(w[k], #r[k] + 2) end
  end
  local width = w[1] + w[2] + w[3]
  local function row(r) return (("%-" .. w[1] .. "s%-" .. w[2] .. "s%s"):format(r[1], r[2], r[3])) end
  local out = { ('Model: "%s"'):format(model.name or "model"), ("_"):rep(width),
                row { "Layer (type)", "Output Shape", "Param #" }, ("="):rep(width) }
  for i, r in ipairs(rows) do
    out[#out + 1] = row(r)
    out[#out + 1] = i < #rows and ("_"):rep(width) or ("="):rep(width)
  end
  out[#out + 1] = "Total params: " .. thousands(total_tr + total_fixed)
  out[#out + 1] = "Trainable params: " .. thousands(total_tr)
  out[#out + 1] = "Non-trainable params: " .. thousands(total_fixed)
  out[#out + 1] = ("_"):rep(width)
  return table.concat(out, "\n") .. "\n"
end
