-- nn.Module: the base of every layer. A class is made with Module.class(type, spec); an instance is
-- made by calling the class with one table (`nn.Linear{in_features = 4, out_features = 2}`), which runs
-- the class's init(cfg). Leaf modules keep their tensors as fields and list them in self._params
-- (trainable unless self._frozen[name]) and self._buffers; self._config is what config() hands back.
local lumen = require "lumen"

local Module = { type = "Module" }
Module.__index = Module

-- Module.class(type, {keras = "Conv2D", prefix = "conv2d", parent = Module}) -> class.
-- `keras` is the type shown by summary(), `prefix` the base of names derived by containers.
function Module.class(type_name, spec)
  spec = spec or {}
  local parent = spec.parent or Module
  local cls = setmetatable({}, { __index = parent, __call = function(c, cfg) return c.new(c, cfg) end })
  cls.__index = cls
  cls.__tostring = parent.__tostring
  cls.type = type_name
  cls.keras_type = spec.keras or type_name
  cls.prefix = spec.prefix or type_name:lower()
  return cls
end

local function plain(v)
  if lumen.is_tensor(v) or type(v) == "function" then return nil end
  if type(v) == "table" and getmetatable(v) ~= nil then return nil end -- modules and other objects
  return v
end

function Module.new(cls, cfg)
  cfg = cfg or {}
  if type(cfg) ~= "table" then error(("%s: expected a table of options, got %s"):format(cls.type, type(cfg)), 3) end
  local m = setmetatable({ name = cfg.name, training = true, _params = {}, _buffers = {}, _frozen = {} }, cls)
  m._config = {}
  for k, v in pairs(cfg) do
    if k ~= "name" then m._config[k] = plain(v) end
  end
  m:init(cfg)
  return m
end

function Module:init(cfg) end

-- The constructor table (plain values only, no tensors), for checkpoints.
function Module:config()
  local c = {}
  for k, v in pairs(self._config) do c[k] = v end
  return c
end

-- Requires `cfg[key]` to be a positive integer; names the option in the error.
function Module:need(cfg, key)
  local v = cfg[key]
  if math.type(v) ~= "integer" or v < 1 then
    error(("%s: %s must be a positive integer, got %s"):format(self.type, key, tostring(v)), 4)
  end
  return v
end

-- Registers a tensor: kind "param" (trainable unless frozen) or "buffer".
function Module:register(name, t, kind)
  self[name] = t
  local list = kind == "buffer" and self._buffers or self._params
  list[#list + 1] = name
  if kind ~= "buffer" and not self._frozen[name] then lumen.autograd.set_requires_grad(t, true) end
  return t
end

-- Normalises a size option: n -> {n, n}; {a, b} stays. Names the option in errors.
function Module:pair(v, what)
  if math.type(v) == "integer" then return { v, v } end
  if type(v) == "table" and #v == 2 and math.type(v[1]) == "integer" and math.type(v[2]) == "integer" then
    return { v[1], v[2] }
  end
  error(("%s: %s must be an integer or a pair of integers, got %s"):format(self.type, what, tostring(v)), 4)
end

-- While `skip_init` is set (checkpoint loading), initialisers give zeros and draw no random numbers.
Module.skip_init = false

-- PyTorch's default for conv and linear layers: kaiming_uniform(a = sqrt 5) for the weight and
-- U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for the bias: both are U(-b, b) with b = 1/sqrt(fan_in).
function Module.uniform(shape, fan_in)
  if Module.skip_init then return lumen.zeros(shape) end
  local b = 1 / math.sqrt(fan_in)
  return lumen.uniform(shape, -b, b)
end

function Module.normal(shape)
  if Module.skip_init then return lumen.zeros(shape) end
  return lumen.randn(shape)
end

-- Applies the fused activation of Keras-style layers (`activation = "relu"`), if any.
local activations = { relu = true, sigmoid = true, silu = true, tanh = true, gelu = true, relu6 = true, hardswish = true,
                      hardsigmoid = true }
function Module:check_activation(cfg)
  local a = cfg.activation
  if a ~= nil and not activations[a] then
    error(("%s: unknown activation '%s'"):format(self.type, tostring(a)), 4)
  end
  self.activation = a
end
function Module:activate(y)
  if self.activation then return lumen[self.activation](y) end
  return y
end

-- A convolution layer's weight cache (lumen.conv_cache: its weights as the kernel reads them, kept between
-- forwards instead of copied into that layout at every call) in a pass that records nothing (lumen.no_grad)
-- and follows another such pass of the layer, or nil: in the first of a run of such passes (a lone pass, as
-- an importer's shape probe or finding the top class, gains nothing from a kept copy), and on the tape, where
-- what every cache holds is freed at its first convolution (a taped pass keeps its activations; a second copy
-- of the weights would add theirs to a saliency's peak memory). The cache itself notices a write into the
-- weights, another weight tensor or another scale, and copies them again.
local clear_all = lumen.core.conv_cache_clear_all -- (returns at once when no cache holds anything)
function Module:conv_cache()
  if lumen.autograd.is_enabled() then
    clear_all()
    self._conv_untaped = nil
    return nil
  end
  local c = self._conv_cache
  if not self._conv_untaped then
    self._conv_untaped = true
    return nil
  end
  if not c then
    c = lumen.conv_cache()
    self._conv_cache = c
  end
  return c
end

-- The options a convolution layer's forward passes: self.opts, and under lumen.no_grad its weight cache
-- too, in a table kept while self.opts is the same table (its fields read through it).
function Module:conv_options()
  local cache = self:conv_cache()
  if not cache then return self.opts end
  if self._cache_opts_of ~= self.opts then
    self._cache_opts = setmetatable({ cache = cache }, { __index = self.opts })
    self._cache_opts_of = self.opts
  end
  return self._cache_opts
end

-- parameters() -> array of {name, tensor, trainable}; a leaf's names start with its own name.
function Module:parameters()
  local prefix = self.name and (self.name .. ".") or ""
  local res = {}
  for _, k in ipairs(self._params) do
    res[#res + 1] = { name = prefix .. k, tensor = self[k], trainable = not self._frozen[k] }
  end
  return res
end

-- state() -> array of {name, tensor, kind = "param" | "buffer"}: everything a checkpoint stores.
function Module:state()
  local prefix = self.name and (self.name .. ".") or ""
  local res = {}
  for _, k in ipairs(self._params) do res[#res + 1] = { name = prefix .. k, tensor = self[k], kind = "param" } end
  for _, k in ipairs(self._buffers) do res[#res + 1] = { name = prefix .. k, tensor = self[k], kind = "buffer" } end
  return res
end

-- Replaces a tensor named in state() by t (same shape), keeping its trainable flag.
function Module:set_state(local_name, t)
  local old = self[local_name]
  if not lumen.is_tensor(old) then error(("%s: no tensor named '%s'"):format(self.name or self.type, local_name), 0) end
  if not lumen.same_shape(old, t) or old:dtype() ~= t:dtype() then
    error(("%s: tensor '%s' is %s %s, expected %s %s"):format(self.name or self.type, local_name, t:dtype(),
      lumen.shape_str(t), old:dtype(), lumen.shape_str(old)), 0)
  end
  local is_param = false
  for _, k in ipairs(self._params) do if k == local_name then is_param = true end end
  self[local_name] = t
  if is_param then lumen.autograd.set_requires_grad(t, not self._frozen[local_name]) end
end

function Module:train(on)
  self.training = on ~= false
  return self
end
function Module:eval() return self:train(false) end

function Module:__tostring()
  return ("%s (%s)"):format(self.name or "?", self.type)
end

return Module
