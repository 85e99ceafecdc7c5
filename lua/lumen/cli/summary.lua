-- lumen summary MODEL [C,H,W]: loads any model file lumen.load_model reads and prints its Keras-style
-- summary; the input shape (without the batch) comes from the argument ("3,224,224" or "1000") or else
-- from model.input_spec (model:summary() reads it).
local function input_shape(text)
  local dims = {}
  for d in text:gmatch("[^,x ]+") do
    dims[#dims + 1] = math.tointeger(tonumber(d)) or error(("summary: bad input shape '%s' (expected C,H,W)"):format(text), 0)
  end
  return dims
end

return function(arg)
  local path = arg[1]
  if not path then error("usage: lumen summary MODEL [C,H,W]", 0) end
  local lumen = require "lumen"
  local model = lumen.load_model(path)
  local spec = model.input_spec or {}
  if not arg[2] and not (spec.length or spec.size) then
    error("summary: the model has no input_spec; give the input shape, e.g. lumen summary MODEL 3,224,224", 0)
  end
  io.write(model:summary(arg[2] and input_shape(arg[2]) or nil))
end
