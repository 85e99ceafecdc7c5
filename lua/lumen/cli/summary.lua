-- lumen summary MODEL [C,H,W]: loads any model file lumen.load_model reads and prints its Keras-style
-- summary; the input shape (without the batch) comes from the argument ("3,224,224" or "1000") or else
-- from model.input_spec.
local function input_shape(model, text)
  if text then
    local dims = {}
    for d in text:gmatch("[^,x ]+") do
      dims[#dims + 1] = math.tointeger(tonumber(d)) or error(("summary: bad input shape '%s' (expected C,H,W)"):format(text), 0)
    end
    return dims
  end
  local spec = model.input_spec or {}
  if spec.length then return { spec.length } end
  if spec.size then return { spec.channels or 3, spec.size[1], spec.size[2] } end
  error("summary: the model has no input_spec; give the input shape, e.g. lumen summary MODEL 3,224,224", 0)
end

return function(arg)
  local path = arg[1]
  if not path then error("usage: lumen summary MODEL [C,H,W]", 0) end
  local lumen = require "lumen"
  local model = lumen.load_model(path)
  io.write(model:summary(input_shape(model, arg[2])))
end

