-- lumen.ops_math: the differentiable tensor math, each op defined once with lumen.autograd.def
-- (forward and backward side by side) on the raw kernels of lumen.core (src/lua_math.c).
-- Every op is both `lumen.name(t, ...)` and the method `t:name(...)`.
--
--   elementwise  add sub mul div pow maximum minimum (NumPy broadcasting, numbers on either side),
--                neg exp log sqrt abs sign square reciprocal erf floor clamp where; eq ne lt le gt ge
--                give 0/1 float masks (not differentiable); sum_to(t, shape) sums a broadcast back;
--                remainder(a, b) (the sign of b, as Python and torch.remainder) and fmod(a, b) (the sign
--                of a, as C), composed of differentiable ops
--   reductions   sum mean max min amax amin argmax argmin norm var std cumsum, over dims given as a
--                number or a table, 1-based, negative from the end; keepdim as in PyTorch
--   shapes       reshape/view flatten permute transpose t narrow select select1 index_select gather
--                scatter_add cat stack squeeze unsqueeze expand/broadcast_to flip pad contiguous clone
--                tile(t, reps) (torch.tile); scatter_nd(t, idx, updates): a copy of t with the slices that
--                the rows of idx (..., k) name (1-based) replaced by updates (ONNX ScatterND)
--   products     matmul (1-D, 2-D and batched like NumPy) bmm dot; einsum(eq, a [, b]) for one or two
--                operands ("bhid,bhjd->bhij", "...ij,...jk->...ik", "ij->ji"), by permute/reshape/matmul
--   sorting      sort topk -> values, 1-based int64 indices
--   helpers      allclose max_abs_diff rel_l2 sum_all mean_all min_all max_all dot64 normalize01
--                (Lua numbers or plain tensors, not differentiable)
-- Backward rules run with grad mode off, so they call the raw kernels directly.
local core = require "lumen.core"

return function(lumen)
  local def = lumen.autograd.def
  local M = lumen.Tensor
  local shape, numel, ndim, view, is_tensor = core.shape, core.numel, core.dim, core.view, core.is_tensor

  local function export(name, f)
    lumen[name] = f
    M[name] = f
  end

  -- d (1-based or negative) as a dimension in [1, n].
  local function dim1(d, n, fname)
    local i = math.tointeger(d)
    if i == nil then error(("%s: dimension must be an integer, got %s"):format(fname, tostring(d)), 3) end
    local r = i < 0 and n + 1 + i or i
    if r < 1 or r > n then error(("%s: dimension %d out of range for a %d-d tensor"):format(fname, i, n), 3) end
    return r
  end

  local function same(a, b)
    if #a ~= #b then return false end
    for i = 1, #a do if a[i] ~= b[i] then return false end end
    return true
  end

  local function prod(s)
    local n = 1
    for i = 1, #s do n = n * s[i] end
    return n
  end

  -- The gradient g of a broadcast result, summed back to the shape of argument x (nil for numbers).
  local function unbroadcast(g, x)
    if not is_tensor(x) then return nil end
    local s = shape(x)
    if same(shape(g), s) then return g end
    return core.sum_to(g, s)
  end

  export("sum_to", def("sum_to", {
    forward = function(ctx, x, s)
      ctx.shape = shape(x)
      return core.sum_to(x, s)
    end,
    backward = function(ctx, g) return core.expand(g, ctx.shape) end,
  }))

  ---------------------------------------------------------------- elementwise

  -- da(ctx, g), db(ctx, g): the gradients for a and b at the broadcast shape (unbroadcast here).
  local function binary(name, da, db)
    local kernel = core[name]
    export(name, def(name, {
      forward = function(ctx, a, b)
        local out = kernel(a, b)
        ctx.a, ctx.b, ctx.out = a, b, out
        return out
      end,
      backward = function(ctx, g)
        local ga = ctx.inputs[1] and unbroadcast(da(ctx, g), ctx.a) or nil
        local gb = ctx.inputs[2] and unbroadcast(db(ctx, g), ctx.b) or nil
        return ga, gb
      end,
    }))
  end

  local function pass(_, g) return g end
  binary("add", pass, pass)
  binary("sub", pass, function(_, g) return core.neg(g) end)
  binary("mul", function(c, g) return core.mul(g, c.b) end, function(c, g) return core.mul(g, c.a) end)
  binary("div", function(c, g) return core.div(g, c.b) end,
         function(c, g) return core.neg(core.div(core.mul(g, c.out), c.b)) end)
  binary("pow", function(c, g) -- b * a^(b-1)
    local b = c.b
    return core.mul(core.mul(g, b), core.pow(c.a, type(b) == "number" and b - 1 or core.sub(b, 1)))
  end, function(c, g) -- a^b * log(a)
    return core.mul(core.mul(g, c.out), type(c.a) == "number" and math.log(c.a) or core.log(c.a))
  end)
  -- Ties split the gradient evenly, as in PyTorch.
  local function share(c, first) return core.add(first(c.a, c.b), core.mul(core.eq(c.a, c.b), 0.5)) end
  binary("maximum", function(c, g) return core.mul(g, share(c, core.gt)) end,
         function(c, g) return core.mul(g, share(c, core.lt)) end)
  binary("minimum", function(c, g) return core.mul(g, share(c, core.lt)) end,
         function(c, g) return core.mul(g, share(c, core.gt)) end)

  for _, name in ipairs { "eq", "ne", "lt", "le", "gt", "ge" } do export(name, core[name]) end

  -- grad(x, out, g) -> gradient for x.
  local function unary(name, grad)
    local kernel = core[name]
    export(name, def(name, {
      forward = function(ctx, x)
        local out = kernel(x)
        ctx.x, ctx.out = x, out
        return out
      end,
      backward = function(ctx, g) return grad(ctx.x, ctx.out, g) end,
    }))
  end

  unary("neg", function(_, _, g) return core.neg(g) end)
  unary("exp", function(_, y, g) return core.mul(g, y) end)
  unary("log", function(x, _, g) return core.div(g, x) end)
  unary("sqrt", function(_, y, g) return core.div(core.mul(g, 0.5), y) end)
  unary("abs", function(x, _, g) return core.mul(g, core.sign(x)) end)
  unary("sign", function(x) return core.zeros(shape(x)) end)
  unary("square", function(x, _, g) return core.mul(g, core.mul(x, 2)) end)
  unary("reciprocal", function(_, y, g) return core.neg(core.mul(g, core.square(y))) end)
  local two_over_sqrt_pi = 2 / math.sqrt(math.pi)
  unary("erf", function(x, _, g) return core.mul(g, core.mul(core.exp(core.neg(core.square(x))), two_over_sqrt_pi)) end)
  unary("floor", function(x) return core.zeros(shape(x)) end)

  -- remainder(a, b) = a - b * floor(a / b); fmod(a, b) = a - b * trunc(a / b). Either may be a number.
  export("remainder", function(a, b) return lumen.sub(a, lumen.mul(b, lumen.floor(lumen.div(a, b)))) end)
  export("fmod", function(a, b)
    local q = lumen.div(a, b)
    return lumen.sub(a, lumen.mul(b, lumen.mul(lumen.sign(q), lumen.floor(lumen.abs(q)))))
  end)

  -- The gradient passes where min <= x <= max.
  export("clamp", def("clamp", {
    forward = function(ctx, x, lo, hi)
      ctx.x, ctx.lo, ctx.hi = x, lo, hi
      return core.clamp(x, lo, hi)
    end,
    backward = function(ctx, g)
      if ctx.lo then g = core.mul(g, core.ge(ctx.x, ctx.lo)) end
      if ctx.hi then g = core.mul(g, core.le(ctx.x, ctx.hi)) end
      return g
    end,
  }))

  -- where(cond, a, b): cond is a mask (nonzero = take a); a and b may be numbers.
  export("where", def("where", {
    forward = function(ctx, cond, a, b)
      ctx.cond, ctx.a, ctx.b = cond, a, b
      return core.where(cond, a, b)
    end,
    backward = function(ctx, g)
      local ga = ctx.inputs[2] and unbroadcast(core.mul(g, core.ne(ctx.cond, 0)), ctx.a) or nil
      local gb = ctx.inputs[3] and unbroadcast(core.mul(g, core.eq(ctx.cond, 0)), ctx.b) or nil
      return nil, ga, gb
    end,
  }))

  ---------------------------------------------------------------- reductions

  -- Reductions remember the keepdim shape so backward can broadcast g back to x.
  local function reduction(name, scale_grad)
    local kernel = core[name]
    export(name, def(name, {
      forward = function(ctx, x, dims, keepdim)
        local out = kernel(x, dims, keepdim)
        ctx.shape, ctx.kshape = shape(x), core.reduce_shape(x, dims)
        ctx.scale = scale_grad and numel(out) / numel(x)
        return out
      end,
      backward = function(ctx, g)
        local gx = core.expand(view(g, ctx.kshape), ctx.shape)
        if ctx.scale then gx = core.mul(gx, ctx.scale) end
        return gx
      end,
    }))
  end
  reduction("sum", false)
  reduction("mean", true)

  -- max/min: no dim -> a 0-d tensor of the value; with dim -> values, 1-based indices. The
  -- gradient goes to the (first) position of the extreme. max(a, b) with a tensor b is maximum.
  local function extreme(name, kernel, elementwise)
    local op = def(name, {
      forward = function(ctx, x, dim, keepdim)
        ctx.shape = shape(x)
        if dim == nil then
          local v, i = kernel(view(x, { numel(x) }), 1, false)
          ctx.flat, ctx.dim, ctx.idx, ctx.kshape = true, 1, i, { 1 }
          return v
        end
        local v, i = kernel(x, dim, keepdim)
        ctx.dim, ctx.idx, ctx.kshape = dim, i, core.reduce_shape(x, dim)
        return v, i
      end,
      backward = function(ctx, g)
        local gx = core.zeros(ctx.flat and { prod(ctx.shape) } or ctx.shape)
        core.scatter_add_(gx, ctx.dim, view(ctx.idx, ctx.kshape), view(g, ctx.kshape))
        return ctx.flat and view(gx, ctx.shape) or gx
      end,
    })
    export(name, function(x, dim, keepdim)
      if is_tensor(dim) then return elementwise(x, dim) end
      if type(dim) == "table" then error(("%s: expected one dimension; use a%s for several"):format(name, name), 2) end
      return op(x, dim, keepdim)
    end)
  end
  extreme("max", core.max_dim, lumen.maximum)
  extreme("min", core.min_dim, lumen.minimum)

  -- amax/amin(t, dims = all, keepdim): the extreme over a set of dims; ties share the gradient.
  local function extreme_over(name)
    local kernel = core[name]
    export(name, def(name, {
      forward = function(ctx, x, dims, keepdim)
        local out = kernel(x, dims, keepdim)
        ctx.x, ctx.out, ctx.dims, ctx.kshape = x, out, dims, core.reduce_shape(x, dims)
        return out
      end,
      backward = function(ctx, g)
        local hit = core.eq(ctx.x, view(ctx.out, ctx.kshape))
        return core.mul(hit, core.div(view(g, ctx.kshape), core.sum(hit, ctx.dims, true)))
      end,
    }))
  end
  extreme_over("amax")
  extreme_over("amin")

  local function arg_extreme(name, kernel)
    export(name, function(x, dim, keepdim)
      if dim == nil then x, dim, keepdim = view(x, { numel(x) }), 1, false end
      local _, i = kernel(x, dim, keepdim)
      return i
    end)
  end
  arg_extreme("argmax", core.max_dim)
  arg_extreme("argmin", core.min_dim)

  -- norm(t, p = 2, dims = all, keepdim): (sum |x|^p)^(1/p), any p > 0; gradient 0 where the norm is 0.
  export("norm", def("norm", {
    forward = function(ctx, x, p, dims, keepdim)
      p = p or 2
      if type(p) ~= "number" or not (p > 0) or p == math.huge then
        error(("norm: p must be a positive finite number, got %s"):format(tostring(p)), 3)
      end
      local n
      if p == 2 then
        n = core.sqrt(core.sum(core.square(x), dims, keepdim))
      elseif p == 1 then
        n = core.sum(core.abs(x), dims, keepdim)
      else
        n = core.pow(core.sum(core.pow(core.abs(x), p), dims, keepdim), 1 / p)
      end
      ctx.x, ctx.p, ctx.n, ctx.kshape = x, p, n, core.reduce_shape(x, dims)
      return n
    end,
    backward = function(ctx, g)
      local x, p = ctx.x, ctx.p
      local n = view(ctx.n, ctx.kshape)
      g = view(g, ctx.kshape)
      if p == 1 then return core.mul(core.sign(x), g) end
      local scale = core.where(core.eq(n, 0), 0, core.div(g, p == 2 and n or core.pow(n, p - 1)))
      local dir = p == 2 and x or core.mul(core.sign(x), core.pow(core.abs(x), p - 1))
      return core.mul(dir, scale)
    end,
  }))

  -- var(t, dims = all, unbiased = true, keepdim): composed from differentiable ops.
  export("var", function(x, dims, unbiased, keepdim)
    local count = numel(x) / prod(core.reduce_shape(x, dims))
    local d = lumen.sub(x, lumen.mean(x, dims, true))
    return lumen.div(lumen.sum(lumen.mul(d, d), dims, keepdim), count - (unbiased == false and 0 or 1))
  end)
  export("std", function(x, dims, unbiased, keepdim) return lumen.sqrt(lumen.var(x, dims, unbiased, keepdim)) end)

  export("cumsum", def("cumsum", {
    forward = function(ctx, x, dim)
      ctx.dim = dim
      return core.cumsum(x, dim)
    end,
    backward = function(ctx, g) return core.cumsum_backward(g, ctx.dim) end,
  }))

  ---------------------------------------------------------------- shapes

  -- reshape shares storage with its input (a view); -1 infers one size.
  local reshape = def("reshape", {
    forward = function(ctx, x, s)
      ctx.shape = shape(x)
      return view(x, s)
    end,
    backward = function(ctx, g) return view(g, ctx.shape) end,
  })
  local function reshape_any(x, s, ...)
    if type(s) == "number" then s = { s, ... } end
    return reshape(x, s)
  end
  export("reshape", reshape_any)
  export("view", reshape_any)
  export("contiguous", function(x) return x end)

  export("clone", def("clone", {
    forward = function(_, x) return core.clone(x) end,
    backward = function(_, g) return g end,
  }))

  -- flatten(t, start_dim = 1, end_dim = -1)
  export("flatten", function(x, start_dim, end_dim)
    local s, n = shape(x), ndim(x)
    if n == 0 then return reshape(x, { 1 }) end
    local a, b = dim1(start_dim or 1, n, "flatten"), dim1(end_dim or -1, n, "flatten")
    local out = {}
    for i = 1, a - 1 do out[#out + 1] = s[i] end
    local m = 1
    for i = a, b do m = m * s[i] end
    out[#out + 1] = m
    for i = b + 1, n do out[#out + 1] = s[i] end
    return reshape(x, out)
  end)

  -- squeeze(t [, dim]): drops dim if it has size 1, or every size-1 dim.
  export("squeeze", function(x, dim)
    local s, out = shape(x), {}
    local d = dim and dim1(dim, #s, "squeeze")
    for i = 1, #s do
      if not (s[i] == 1 and (d == nil or d == i)) then out[#out + 1] = s[i] end
    end
    return reshape(x, out)
  end)

  -- unsqueeze(t, dim): a new size-1 dim at position dim in the result (-1 = last).
  export("unsqueeze", function(x, dim)
    local s = shape(x)
    local d = dim1(dim, #s + 1, "unsqueeze")
    table.insert(s, d, 1)
    return reshape(x, s)
  end)

  local permute = def("permute", {
    forward = function(ctx, x, perm)
      local n, inv = ndim(x), {}
      for i = 1, #perm do inv[dim1(perm[i], n, "permute")] = i end
      ctx.inv = inv
      return core.permute(x, perm)
    end,
    backward = function(ctx, g) return core.permute(g, ctx.inv) end,
  })
  export("permute", function(x, p, ...)
    if type(p) == "number" then p = { p, ... } end
    return permute(x, p)
  end)

  export("transpose", function(x, d1, d2)
    local n = ndim(x)
    local p = {}
    for i = 1, n do p[i] = i end
    local a, b = dim1(d1, n, "transpose"), dim1(d2, n, "transpose")
    p[a], p[b] = p[b], p[a]
    return permute(x, p)
  end)

  export("t", function(x)
    local n = ndim(x)
    if n > 2 then error(("t: expected a tensor of at most 2 dimensions, got %d-D"):format(n), 2) end
    if n < 2 then return reshape(x, shape(x)) end
    return permute(x, { 2, 1 })
  end)

  -- pads of a (1-based) dim d in an n-D tensor, in PyTorch's last-dim-first order.
  local function pads_for(n, d, left, right)
    local pads = {}
    for k = 1, 2 * (n - d + 1) do pads[k] = 0 end
    pads[2 * (n - d) + 1], pads[2 * (n - d) + 2] = left, right
    return pads
  end

  -- pad(t, {left, right, top, bottom, ...}, value = 0); negative pads crop.
  export("pad", def("pad", {
    forward = function(ctx, x, pads, value)
      ctx.neg = {}
      for k = 1, #pads do ctx.neg[k] = -pads[k] end
      return core.pad(x, pads, value)
    end,
    backward = function(ctx, g) return core.pad(g, ctx.neg, 0) end,
  }))

  -- narrow(t, dim, start, len): positions start .. start+len-1 (start may count from the end).
  export("narrow", def("narrow", {
    forward = function(ctx, x, dim, start, len)
      local s = shape(x)
      local d = dim1(dim, #s, "narrow")
      local out = core.narrow(x, d, start, len)
      local first = start < 0 and s[d] + start or start - 1
      ctx.pads = pads_for(#s, d, first, s[d] - first - len)
      return out
    end,
    backward = function(ctx, g) return core.pad(g, ctx.pads, 0) end,
  }))

  -- select(t, dim, i): the slice at position i, without dimension dim.
  export("select", function(x, dim, i)
    local s = shape(x)
    local d = dim1(dim, #s, "select")
    local out = lumen.narrow(x, d, i, 1)
    table.remove(s, d)
    return reshape(out, s)
  end)

  -- t[i]: on a 1-D tensor the number at position i, else the slice t[i] along the first dimension.
  M.select1 = function(x, i)
    local n = ndim(x)
    if n == 1 then
      local len = numel(x)
      return core.flat_get(x, i < 0 and len + 1 + i or i)
    end
    if n == 0 then error("cannot index a 0-d tensor; use t:item()", 2) end
    return lumen.select(x, 1, i)
  end

  local function as_index(idx)
    if is_tensor(idx) then return idx end
    if type(idx) == "number" then idx = { idx } end
    return core.from_table(idx, "int64")
  end

  local index_select = def("index_select", {
    forward = function(ctx, x, dim, idx)
      ctx.shape, ctx.dim, ctx.idx = shape(x), dim, idx
      return core.index_select(x, dim, idx)
    end,
    backward = function(ctx, g) return core.index_add_(core.zeros(ctx.shape), ctx.dim, ctx.idx, g) end,
  })
  export("index_select", function(x, dim, idx) return index_select(x, dim, as_index(idx)) end)

  export("gather", def("gather", {
    forward = function(ctx, x, dim, idx)
      ctx.shape, ctx.dim, ctx.idx = shape(x), dim, idx
      return core.gather(x, dim, idx)
    end,
    backward = function(ctx, g) return core.scatter_add_(core.zeros(ctx.shape), ctx.dim, ctx.idx, g) end,
  }))

  -- scatter_add(t, dim, idx, src): a copy of t with src added at idx along dim.
  export("scatter_add", def("scatter_add", {
    forward = function(ctx, x, dim, idx, src)
      ctx.dim, ctx.idx = dim, idx
      return core.scatter_add_(core.clone(x), dim, idx, src)
    end,
    backward = function(ctx, g) return g, nil, nil, ctx.inputs[4] and core.gather(g, ctx.dim, ctx.idx) or nil end,
  }))

  -- cat is recorded with the tensors as positional arguments, so the tape sees each of them.
  local cat = def("cat", {
    forward = function(ctx, d, ...)
      local xs = { ... }
      local out = core.cat(xs, d)
      ctx.d, ctx.sizes = d, {}
      for k = 1, #xs do ctx.sizes[k] = shape(xs[k])[d] end
      return out
    end,
    backward = function(ctx, g)
      local grads, at = {}, 1
      for k, n in ipairs(ctx.sizes) do
        if ctx.inputs[k + 1] then grads[k + 1] = core.narrow(g, ctx.d, at, n) end
        at = at + n
      end
      return table.unpack(grads, 1, #ctx.sizes + 1)
    end,
  })
  -- cat(list, dim = 1)
  function lumen.cat(list, dim)
    if type(list) ~= "table" or not is_tensor(list[1]) then error("cat: expected a non-empty list of tensors", 2) end
    return cat(dim1(dim or 1, ndim(list[1]), "cat"), table.unpack(list))
  end
  -- stack(list, dim = 1): a new dimension dim (-1 = last).
  function lumen.stack(list, dim)
    if type(list) ~= "table" or not is_tensor(list[1]) then error("stack: expected a non-empty list of tensors", 2) end
    local d = dim1(dim or 1, ndim(list[1]) + 1, "stack")
    local xs = {}
    for k, x in ipairs(list) do xs[k] = lumen.unsqueeze(x, d) end
    return cat(d, table.unpack(xs))
  end

  -- expand(t, shape): broadcast to shape (a copy); -1 keeps a size.
  local expand = def("expand", {
    forward = function(ctx, x, s)
      ctx.shape = shape(x)
      return core.expand(x, s)
    end,
    backward = function(ctx, g) return core.sum_to(g, ctx.shape) end,
  })
  local function expand_any(x, s, ...)
    if type(s) == "number" then s = { s, ... } end
    local xs, out = shape(x), {}
    for i = 1, #s do
      local j = i - (#s - #xs)
      out[i] = (s[i] == -1 and j >= 1) and xs[j] or s[i]
    end
    return expand(x, out)
  end
  export("expand", expand_any)
  export("broadcast_to", expand_any)

  -- flip(t, dims): reverses the listed dimensions (a number or a table).
  export("flip", def("flip", {
    forward = function(ctx, x, dims)
      ctx.dims = dims
      return core.flip(x, dims)
    end,
    backward = function(ctx, g) return core.flip(g, ctx.dims) end,
  }))

  -- tile(t, reps): t repeated reps[d] times along each dimension d (torch.tile: a shorter reps is
  -- padded with leading 1s, a longer one adds leading dimensions), as reshape + expand + reshape.
  export("tile", function(x, reps)
    if type(reps) == "number" then reps = { reps } end
    local s = shape(x)
    local n = math.max(#s, #reps)
    local mid, big, out = {}, {}, {}
    for d = 1, n do
      local size = s[d - (n - #s)] or 1
      local r = math.tointeger(reps[d - (n - #reps)] or 1)
      if r == nil or r < 0 then error(("tile: repeats must be non-negative integers, got %s"):format(
        tostring(reps[d - (n - #reps)])), 2) end
      mid[#mid + 1], mid[#mid + 2] = 1, size
      big[#big + 1], big[#big + 2] = r, size
      out[d] = r * size
    end
    return reshape(lumen.expand(reshape(x, mid), big), out)
  end)

  -- scatter_nd(t, idx, updates): idx int64 (..., k), 1-based, each row naming a slice t[i1, .., ik];
  -- updates (..., t.shape[k+1:]) replaces those slices. Rows must not repeat.
  local function nd_positions(s, idx)
    local is = shape(idx)
    local k = is[#is]
    if k == nil or k < 1 or k > #s then
      error(("scatter_nd: index rows of length %s for a %d-d tensor"):format(tostring(k), #s), 4)
    end
    local strides, inner = {}, 1
    for d = #s, 1, -1 do strides[d] = inner; inner = inner * s[d] end
    local slice = 1
    for d = k + 1, #s do slice = slice * s[d] end
    local rows, pos, seen = numel(idx) // k, {}, {}
    for r = 0, rows - 1 do
      local base = 0
      for j = 1, k do
        local v = math.tointeger(core.flat_get(idx, r * k + j))
        if v == nil or v < 1 or v > s[j] then
          error(("scatter_nd: index %s out of range for dimension %d of size %d"):format(tostring(v), j, s[j]), 4)
        end
        base = base + (v - 1) * strides[j]
      end
      if seen[base] then error("scatter_nd: the same slice is named twice", 4) end
      seen[base] = true
      for e = 1, slice do pos[#pos + 1] = base + e end
    end
    local want = {}
    for d = 1, #is - 1 do want[#want + 1] = is[d] end
    for d = k + 1, #s do want[#want + 1] = s[d] end
    return core.from_table(pos, "int64"), want
  end

  local scatter_nd = def("scatter_nd", {
    forward = function(ctx, x, idx, upd)
      local s = shape(x)
      local p, want = nd_positions(s, idx)
      if not same(shape(upd), want) then
        error(("scatter_nd: updates must be %s, got %s"):format("(" .. table.concat(want, ", ") .. ")",
          lumen.shape_str(upd)), 3)
      end
      ctx.p, ctx.s, ctx.us = p, s, shape(upd)
      local flat = core.clone(view(x, { numel(x) }))
      if numel(p) > 0 then
        core.index_add_(flat, 1, p, core.sub(view(upd, { numel(p) }), core.index_select(flat, 1, p)))
      end
      return view(flat, s)
    end,
    backward = function(ctx, g)
      local flat = view(g, { numel(g) })
      if numel(ctx.p) == 0 then return g, nil, core.zeros(ctx.us) end
      local picked = core.index_select(flat, 1, ctx.p)
      local gx = core.index_add_(core.clone(flat), 1, ctx.p, core.neg(picked))
      return view(gx, ctx.s), nil, view(picked, ctx.us)
    end,
  })
  export("scatter_nd", function(x, idx, upd)
    if core.dtype(x) == "int64" then -- shape arithmetic: through float32, exact for these sizes
      return core.to_dtype(scatter_nd(core.to_dtype(x, "float32"), idx, core.to_dtype(upd, "float32")), "int64")
    end
    return scatter_nd(x, idx, upd)
  end)

  ---------------------------------------------------------------- products

  local matmul = def("matmul", {
    forward = function(ctx, a, b)
      ctx.a, ctx.b = a, b
      return core.matmul(a, b)
    end,
    backward = function(ctx, g)
      local ga = ctx.inputs[1] and unbroadcast(core.matmul(g, ctx.b, false, true), ctx.a)
      local gb = ctx.inputs[2] and unbroadcast(core.matmul(ctx.a, g, true, false), ctx.b)
      return ga, gb
    end,
  })

  -- matmul(a, b) like NumPy: 1-D operands become a row (left) or a column (right), removed afterwards.
  export("matmul", function(a, b)
    local na, nb = ndim(a), ndim(b)
    if na == 0 or nb == 0 then error("matmul: 0-d operands are not matrices; use mul", 2) end
    if na >= 2 and nb >= 2 then return matmul(a, b) end
    local out = matmul(na == 1 and lumen.unsqueeze(a, 1) or a, nb == 1 and lumen.unsqueeze(b, 2) or b)
    if nb == 1 then out = lumen.squeeze(out, -1) end
    if na == 1 then out = lumen.squeeze(out, nb == 1 and -1 or -2) end
    return out
  end)

  export("bmm", function(a, b)
    local sa, sb = shape(a), shape(b)
    if #sa ~= 3 or #sb ~= 3 or sa[1] ~= sb[1] then
      error(("bmm: expected two 3-D tensors with the same batch size, got %s and %s"):format(
        lumen.shape_str(a), lumen.shape_str(b)), 2)
    end
    return matmul(a, b)
  end)

  export("dot", function(a, b)
    if ndim(a) ~= 1 or ndim(b) ~= 1 then
      error(("dot: expected two 1-D tensors, got %s and %s"):format(lumen.shape_str(a), lumen.shape_str(b)), 2)
    end
    return lumen.matmul(a, b)
  end)

  -- einsum(eq, a [, b]): one or two operands. Letters of one operand missing from the output are
  -- summed first; with two operands, letters in both and in the output are batch dimensions (size-1
  -- sizes broadcast), letters in both but not in the output are contracted by one batched matmul.
  -- "..." stands for the leading dimensions not named. A letter repeated within one operand (a
  -- diagonal) is not supported.
  local function einsum_fail(eq, fmt, ...) error(("einsum '%s': " .. fmt):format(eq, ...), 3) end

  -- The letters of one operand term for a tensor of n dims ("..." -> capital letters), as an array.
  local function einsum_letters(eq, term, n, ell)
    local pre, post = term:match("^(.-)%.%.%.(.*)$")
    local named = (pre or term):len() + (post or ""):len()
    local out = {}
    local function add(part)
      for c in part:gmatch(".") do
        if not c:match("%l") then einsum_fail(eq, "'%s' is not a lowercase letter", c) end
        out[#out + 1] = c
      end
    end
    if pre then
      if n < named then einsum_fail(eq, "'%s' names %d dimensions of a %d-d operand", term, named, n) end
      add(pre)
      for k = 1, n - named do out[#out + 1] = ell[#ell - (n - named) + k] end
      add(post)
    else
      if named ~= n then einsum_fail(eq, "'%s' names %d dimensions of a %d-d operand", term, named, n) end
      add(term)
    end
    local seen = {}
    for _, c in ipairs(out) do
      if seen[c] then einsum_fail(eq, "letter '%s' repeats within one operand (diagonals are not supported)", c) end
      seen[c] = true
    end
    return out
  end

  local function index_of(list)
    local r = {}
    for i, c in ipairs(list) do r[c] = i end
    return r
  end

  -- Sums x (letters ls) over the letters not in keep; returns x, the remaining letters.
  local function einsum_reduce(x, ls, keep)
    local dims, rest = {}, {}
    for i, c in ipairs(ls) do
      if keep[c] then rest[#rest + 1] = c else dims[#dims + 1] = i end
    end
    if #dims > 0 then x = lumen.sum(x, dims) end
    return x, rest
  end

  -- x with letters ls permuted into the order of `order` (every letter of ls in it).
  local function einsum_order(x, ls, order)
    local at, p = index_of(ls), {}
    for i, c in ipairs(order) do p[i] = at[c] end
    local identity = true
    for i = 1, #p do identity = identity and p[i] == i end
    if identity then return x end
    return permute(x, p)
  end

  export("einsum", function(eq, a, b)
    if type(eq) ~= "string" then error("einsum: expected an equation string", 2) end
    local spec = eq:gsub("%s", "")
    local lhs, rhs = spec:match("^(.-)%->(.*)$")
    lhs = lhs or spec
    local terms = {}
    for t in (lhs .. ","):gmatch("([^,]*),") do terms[#terms + 1] = t end
    local ops = { a, b }
    if #terms ~= (b and 2 or 1) then einsum_fail(eq, "%d operand terms for %d tensors", #terms, b and 2 or 1) end
    local nmax = 0
    for i = 1, #terms do nmax = math.max(nmax, ndim(ops[i])) end
    local ell = {}
    for k = 1, nmax do ell[k] = string.char(64 + k) end -- "A", "B", ...: the dims "..." covers
    local ls, count = {}, {}
    for i = 1, #terms do
      ls[i] = einsum_letters(eq, terms[i], ndim(ops[i]), ell)
      for _, c in ipairs(ls[i]) do count[c] = (count[c] or 0) + 1 end
    end
    local out
    if rhs then
      local n_ell = 0
      for i = 1, #terms do
        local pre, post = terms[i]:match("^(.-)%.%.%.(.*)$")
        if pre then n_ell = math.max(n_ell, ndim(ops[i]) - #pre - #post) end
      end
      out = einsum_letters(eq, rhs, rhs:find("...", 1, true) and (#rhs - 3 + n_ell) or #rhs, ell)
      for _, c in ipairs(out) do
        if not count[c] then einsum_fail(eq, "output letter '%s' is in no operand", c) end
      end
    else -- implicit output: "..." first, then the letters seen once, in alphabetical order
      out = {}
      for _, c in ipairs(ell) do if count[c] then out[#out + 1] = c end end
      local once = {}
      for c, k in pairs(count) do if k == 1 and c:match("%l") then once[#once + 1] = c end end
      table.sort(once)
      for _, c in ipairs(once) do out[#out + 1] = c end
    end
    local keep_out = index_of(out)
    if not b then
      local x, rest = einsum_reduce(a, ls[1], keep_out)
      return einsum_order(x, rest, out)
    end
    -- two operands: first sum letters only one side has and the output lacks
    local in_a, in_b = index_of(ls[1]), index_of(ls[2])
    local keep_a, keep_b = {}, {}
    for c in pairs(in_a) do keep_a[c] = keep_out[c] or in_b[c] end
    for c in pairs(in_b) do keep_b[c] = keep_out[c] or in_a[c] end
    local x, la = einsum_reduce(a, ls[1], keep_a)
    local y, lb = einsum_reduce(b, ls[2], keep_b)
    in_a, in_b = index_of(la), index_of(lb)
    local sa, sb = shape(x), shape(y)
    local B, K, Mi, Ni = {}, {}, {}, {}
    for _, c in ipairs(out) do
      if in_a[c] and in_b[c] then B[#B + 1] = c elseif in_a[c] then Mi[#Mi + 1] = c else Ni[#Ni + 1] = c end
    end
    for _, c in ipairs(la) do if in_b[c] and not keep_out[c] then K[#K + 1] = c end end
    -- sizes: batch letters broadcast (1 against n), contracted ones must agree
    local size = {}
    for _, c in ipairs(la) do size[c] = sa[in_a[c]] end
    for _, c in ipairs(lb) do
      local n = sb[in_b[c]]
      if size[c] and size[c] ~= n then
        if keep_out[c] and (size[c] == 1 or n == 1) then
          size[c] = math.max(size[c], n)
        else
          einsum_fail(eq, "letter '%s' has size %d in one operand and %d in the other", c, size[c], n)
        end
      else
        size[c] = size[c] or n
      end
    end
    local function grow(t, ls_, at)
      local s, want, differ = shape(t), {}, false
      for i, c in ipairs(ls_) do want[i] = size[c]; differ = differ or want[i] ~= s[at[c]] end
      return differ and lumen.expand(t, want) or t
    end
    x, y = grow(x, la, in_a), grow(y, lb, in_b)
    local function prod_of(list)
      local n = 1
      for _, c in ipairs(list) do n = n * size[c] end
      return n
    end
    local oa, ob = {}, {}
    for _, l in ipairs { B, Mi, K } do for _, c in ipairs(l) do oa[#oa + 1] = c end end
    for _, l in ipairs { B, K, Ni } do for _, c in ipairs(l) do ob[#ob + 1] = c end end
    local bn, mn, kn, nn = prod_of(B), prod_of(Mi), prod_of(K), prod_of(Ni)
    x = reshape(einsum_order(x, la, oa), { bn, mn, kn })
    y = reshape(einsum_order(y, lb, ob), { bn, kn, nn })
    local r = matmul(x, y) -- (B, M, N)
    local ls_r, s_r = {}, {}
    for _, l in ipairs { B, Mi, Ni } do
      for _, c in ipairs(l) do ls_r[#ls_r + 1] = c; s_r[#s_r + 1] = size[c] end
    end
    return einsum_order(reshape(r, s_r), ls_r, out)
  end)

  ---------------------------------------------------------------- sorting

  -- Values are differentiable: the gradient goes back to the positions the indices name.
  local function sorted(name, args)
    return def(name, {
      forward = function(ctx, x, ...)
        local dim, descending, k = args(x, ...)
        local v, i = core.sort(x, dim, descending, k)
        ctx.shape, ctx.dim, ctx.idx = shape(x), dim, i
        return v, i
      end,
      backward = function(ctx, g) return core.scatter_add_(core.zeros(ctx.shape), ctx.dim, ctx.idx, g) end,
    })
  end
  -- sort(t, dim = -1, descending = false) -> values, indices (stable).
  export("sort", sorted("sort", function(_, dim, descending) return dim or -1, descending end))
  -- topk(t, k, dim = -1, largest = true) -> values, indices, best first.
  export("topk", sorted("topk", function(_, k, dim, largest) return dim or -1, largest ~= false, k end))

  ---------------------------------------------------------------- helpers (Lua numbers)

  for _, name in ipairs { "sum_all", "min_all", "max_all", "max_abs_diff", "rel_l2", "dot64" } do
    export(name, core[name])
  end
  -- normalize01(t [, {per_sample = false, symmetric = false}]): (t - min) / (max - min) over the whole
  -- tensor, or over each t[i] of the first dim (per_sample); symmetric maps [-m, m] (m = max |t|) to
  -- [0, 1] so 0 lands on 0.5. A constant tensor (or sample) gives zeros. Not differentiable.
  export("normalize01", function(x, opts)
    if opts ~= nil and type(opts) ~= "table" then
      error(("normalize01: expected an options table {per_sample =, symmetric =}, got %s"):format(type(opts)), 2)
    end
    opts = opts or {}
    for k in pairs(opts) do
      if k ~= "per_sample" and k ~= "symmetric" then
        error(("normalize01: unknown option '%s' (per_sample, symmetric)"):format(tostring(k)), 2)
      end
    end
    return core.image_normalize01(x, opts.per_sample == true, opts.symmetric == true)
  end)
  export("mean_all", function(x) return core.sum_all(x) / numel(x) end)
  -- allclose(a, b, rtol = 1e-5, atol = 1e-8): |a - b| <= atol + rtol * |b| everywhere.
  export("allclose", core.allclose)
end
