-- lumen.tensor: the Lua face of the C Tensor userdata. Installs __index (methods, `shape`,
-- numeric indexing, autograd fields), __newindex (grad, requires_grad) and the operators.
-- Ops files (ops_math.lua, ops_nn.lua, ...) add methods to `lumen.Tensor` (the method table).
local core = require "lumen.core"

return function(lumen)
  local methods = {}
  lumen.Tensor = methods
  local mt = core.Tensor_mt
  local fields = core.fields

  local props = {
    shape = core.shape,
    grad = function(t) local f = fields(t); return f and f.grad end,
    requires_grad = function(t) return lumen.autograd.requires_grad(t) end,
    ndim = core.dim,
  }

  mt.__index = function(t, k)
    local m = methods[k]
    if m ~= nil then return m end
    local p = props[k]
    if p then return p(t) end
    if math.type(k) == "integer" then return methods.select1(t, k) end
    local f = fields(t)
    return f and f[k]
  end

  mt.__newindex = function(t, k, v)
    if k == "requires_grad" then
      lumen.autograd.set_requires_grad(t, v)
    elseif k == "grad" then
      fields(t, true).grad = v
    elseif type(k) == "string" then
      fields(t, true)[k] = v
    else
      error("cannot assign to tensor[" .. tostring(k) .. "]; use t:set{...}", 2)
    end
  end

  -- Plain accessors and writers in place from the core. Each writer renews the write generation of t's storage
  -- (lumen.core.storage_gen, in C, as every in-place writer does), so what is computed from a tensor and kept
  -- (BatchNorm folded into a convolution, a convolution's weight cache) sees that it changed, through any view.
  for _, name in ipairs { "dim", "numel", "get", "item", "totable", "flat_get", "is_freed", "bytes", "dtype",
                          "set", "flat_set", "fill_", "fill_box_", "copy_" } do
    methods[name] = core[name]
  end
  methods.free = core.free
  methods.size = function(t, d)
    local s = core.shape(t)
    if d == nil then return s end
    if d < 0 then d = #s + 1 + d end
    if s[d] == nil then error(("size: dimension %d out of range for a %d-d tensor"):format(d, #s), 2) end
    return s[d]
  end

  function lumen.shape_str(t)
    return "(" .. table.concat(core.shape(t), ", ") .. ")"
  end

  function lumen.same_shape(a, b)
    local sa, sb = core.shape(a), core.shape(b)
    if #sa ~= #sb then return false end
    for i = 1, #sa do if sa[i] ~= sb[i] then return false end end
    return true
  end

  function lumen.is_tensor(x) return core.is_tensor(x) end

  -- Creation. Shapes are tables ({2, 3}) or, for 1-D, a number.
  -- A shape and dtype from (table [, dtype]) or (n1, n2, ...).
  local function shape_of(s, ...)
    if type(s) == "number" then return { s, ... } end
    return s, (...)
  end
  function lumen.zeros(s, ...) return core.zeros(shape_of(s, ...)) end
  function lumen.ones(s, ...)
    local shape, dtype = shape_of(s, ...)
    return core.full(shape, 1, dtype)
  end
  function lumen.full(s, v, dtype) return core.full(s, v, dtype) end
  function lumen.empty(s, ...) return core.zeros(shape_of(s, ...)) end
  function lumen.zeros_like(t) return core.zeros(core.shape(t), core.dtype(t)) end
  function lumen.ones_like(t) return core.full(core.shape(t), 1, core.dtype(t)) end
  function lumen.full_like(t, v) return core.full(core.shape(t), v, core.dtype(t)) end
  function lumen.tensor(x, dtype)
    if core.is_tensor(x) then return core.clone(x) end
    return core.from_table(x, dtype)
  end
  function lumen.rand(s, ...) return core.rand(shape_of(s, ...), "uniform", 0, 1) end
  function lumen.uniform(s, a, b) return core.rand(s, "uniform", a or 0, b or 1) end
  function lumen.randn(s, ...) return core.rand(shape_of(s, ...), "normal", 0, 1) end
  function lumen.normal(s, mean, std) return core.rand(s, "normal", mean or 0, std or 1) end
  function lumen.bernoulli(s, p) return core.rand(s, "bernoulli", p or 0.5) end
  function lumen.seed(n) core.seed(math.tointeger(n) or error("seed: expected an integer", 2)) end
  function lumen.randint(n) return core.rand_int(n) end
  function lumen.random() return core.rand_uniform() end
  -- A random permutation of 1..n (Fisher-Yates on lumen's RNG), as a Lua array.
  function lumen.randperm(n)
    local p = {}
    for i = 1, n do p[i] = i end
    for i = n, 2, -1 do
      local j = core.rand_int(i)
      p[i], p[j] = p[j], p[i]
    end
    return p
  end
  function lumen.arange(a, b, step)
    if b == nil then a, b = 0, a end
    step = step or 1
    local t = {}
    local v = a
    while (step > 0 and v < b) or (step < 0 and v > b) do t[#t + 1] = v; v = v + step end
    if #t == 0 then return core.zeros({ 0 }) end
    return core.from_table(t)
  end
  function lumen.linspace(a, b, n)
    local t = {}
    for i = 0, n - 1 do t[i + 1] = n == 1 and a or a + (b - a) * i / (n - 1) end
    return core.from_table(t)
  end

  methods.clone = function(t) return lumen.clone(t) end
  methods.detach = function(t) return lumen.autograd.detach(t) end
  methods.requires_grad_ = function(t, on) return lumen.autograd.set_requires_grad(t, on) end
  methods.backward = function(t, g, opts) return lumen.autograd.backward(t, g, opts) end
  methods.zero_grad = function(t) fields(t, true).grad = nil end
  methods.to = function(t, dtype) return core.to_dtype(t, dtype) end
  methods.float = function(t) return core.to_dtype(t, "float32") end
  methods.long = function(t) return core.to_dtype(t, "int64") end

  mt.__add = function(a, b) return lumen.add(a, b) end
  mt.__sub = function(a, b) return lumen.sub(a, b) end
  mt.__mul = function(a, b) return lumen.mul(a, b) end
  mt.__div = function(a, b) return lumen.div(a, b) end
  mt.__pow = function(a, b) return lumen.pow(a, b) end
  mt.__unm = function(a) return lumen.neg(a) end
  mt.__tostring = core.tostring
end
