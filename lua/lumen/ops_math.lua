-- lumen.ops_math: the differentiable tensor math, each op defined once with lumen.autograd.def
-- (forward and backward side by side) on the raw kernels of lumen.core (src/lua_math.c).
-- Every op is both `lumen.name(t, ...)` and the method `t:name(...)`.
--
--   elementwise  add sub mul div pow maximum minimum (NumPy broadcasting, numbers on either side),
--                neg exp log sqrt abs sign square reciprocal clamp where; eq ne lt le gt ge give
--                0/1 float masks (not differentiable); sum_to(t, shape) sums a broadcast back
--   reductions   sum mean max min amax amin argmax argmin norm var std cumsum, over dims given as a
--                number or a table, 1-based, negative from the end; keepdim as in PyTorch
--   shapes       reshape/view flatten permute transpose t narrow select select1 index_select gather
--                scatter_add cat stack squeeze unsqueeze expand/broadcast_to flip pad contiguous clone
--   products     matmul (1-D, 2-D and batched like NumPy) bmm dot
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
