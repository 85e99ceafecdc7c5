-- lumen.ops_nn: the differentiable nn ops over the C kernels in lumen.core (src/lua_nn.c):
--   conv2d(x (N, C, H, W), w (O, C/groups, kh, kw) [, b (O)] [, opts])        -> (N, O, OH, OW)
--   conv1d(x (N, C, L), w (O, C/groups, k) [, b] [, opts])                      -> (N, O, OL)
--   conv_transpose2d(x (N, C, H, W), w (C, O/groups, kh, kw) [, b (O)] [, opts]) -> (N, O, OH, OW)
--   max_pool2d(x, k [, opts]) -> y, indices; max_pool1d(x, k [, opts]) likewise on (N, C, L)
--   max_unpool2d(y, indices, output_size {H, W})                                 -> (N, C, H, W)
--   avg_pool2d(x, k [, opts]), avg_pool1d(x, k [, opts]), adaptive_avg_pool2d(x, {oh, ow})
--   global_avg_pool2d(x [, keepdims = true]), global_max_pool2d(x [, keepdims = true])
--                                                  -> (N, C, 1, 1), or (N, C) when keepdims is false
--   global_max_pool1d(x (N, C, L)) -> (N, C)
--   linear(x (..., in), w (out, in) [, b (out)]) -> (..., out)
--   embedding(ids (...) int64 1-based, weight (V, D)) -> (..., D)
--   lstm(x (T, N, I), w_ih (4H, I), w_hh (4H, H) [, b_ih, b_hh (4H), h0, c0 (N, H), opts])
--                                                  -> y (T, N, H), h_n (N, H), c_n (N, H)
--   gru(x (T, N, I), w_ih (3H, I), w_hh (3H, H) [, b_ih, b_hh (3H), h0 (N, H), opts]) -> y, h_n
--       one layer, one direction, PyTorch's gate order (i, f, g, o / r, z, n); nil biases and states
--       are zeros. opts: reverse [false] (run from the last step; y stays in time order, h_n is the
--       state after the first step), linear_before_reset [true] (GRU: PyTorch's form; false is
--       ONNX's default). Every output is differentiable in every input.
-- Options (each size a number or a pair; defaults in brackets):
--   conv: stride [1], dilation [1], groups [1], activation [none]: "relu" | "relu6" applied to the output
--         in the same op (a post-op; "silu" | "hardswish" too where no gradient is recorded, as under
--         lumen.no_grad); scale [none] (conv2d, conv1d): a tensor (O), the weights multiplied by
--         scale[o] per output channel as the kernel reads them, no scaled copy made (a folded BatchNorm:
--         lumen.nn.fold), differentiable in scale too; cache [none] (conv2d, conv1d): a lumen.conv_cache()
--         where the forward keeps the weights as its kernel reads them (oneDNN's layout, times scale) for the
--         next call with the same weight and scale, unwritten since (a write in place is seen: it copies them
--         again); one per layer, as nn.Conv2d keeps under lumen.no_grad;
--         padding [0]: n, {ph, pw}, {top, left, bottom, right}
--         (ONNX order), "valid" or "same" (TF/ONNX SAME_UPPER: output = ceil(input / stride), the odd
--         extra row/column at the bottom/right). conv1d: padding n, {left, right}, "same" or "valid".
--         conv_transpose2d also takes output_padding [0] (PyTorch semantics).
--   pools: k = kernel size (or an options table holding kernel_size); stride [k], padding [0] (as conv,
--         padded cells are -inf for max and 0 for avg), dilation [1] (max only), ceil_mode [false],
--         count_include_pad [true] (avg only; TF-style "same" average pooling wants false).
-- Max-pool indices are int64, 1-based flat positions within each (H*W) plane (within L for 1-D).
--
-- For lumen.with_rules, each op's ctx holds: ctx.args / ctx.inputs (by position, as the autograd
-- keeps them), ctx.opts (the options normalized as above: sizes as pairs, padding as 4 numbers, or
-- stride/dilation numbers and padding {left, right} for 1-D; passing it back to the op reproduces
-- the call), and for max pools ctx.indices (the 1-based switches) and ctx.input_shape. Backward
-- functions read everything from ctx, so a rule can call ctx.default on a ctx with swapped args.
local core = require "lumen.core"

return function(lumen)
  local def = lumen.autograd.def
  local is_tensor = core.is_tensor
  local function requires_grad(t) return is_tensor(t) and lumen.autograd.requires_grad(t) end

  local function show(v)
    if type(v) == "table" then return "a table of " .. #v end
    return tostring(v)
  end

  -- Option tables an op hands straight to the kernel and drops: where nothing is recorded (lumen.no_grad), the
  -- kernel reads the caller's own valid pairs and these shared ones, instead of a copy made for each call (a
  -- recorded op keeps its options for the backward, so it gets copies the caller cannot change meanwhile).
  local SHARED_PAIRS = {}
  for n = 0, 8 do SHARED_PAIRS[n] = { n, n } end
  local function sharing() return not lumen.autograd.is_enabled() end

  -- n or {a, b} -> {a, b}, both integers (v itself, or a shared pair, when `share`).
  local function pair(op, name, v, share)
    local n = math.tointeger(v)
    if n then return share and SHARED_PAIRS[n] or { n, n } end
    if type(v) == "table" and #v == 2 then
      local a, b = math.tointeger(v[1]), math.tointeger(v[2])
      if a and b then return share and v or { a, b } end
    end
    error(("%s: option '%s' must be an integer or a pair of integers, got %s"):format(op, name, show(v)), 0)
  end

  local function int(op, name, v)
    local n = math.tointeger(v)
    if n then return n end
    error(("%s: option '%s' must be an integer, got %s"):format(op, name, show(v)), 0)
  end

  -- SAME_UPPER padding of one dimension: output ceil(n / s), the odd extra at the end.
  local function same(n, k, s, d)
    local total = math.max(((n + s - 1) // s - 1) * s + (k - 1) * d + 1 - n, 0)
    return total // 2, total - total // 2
  end

  local function spatial(t, nd) -- the last nd sizes of t, or nil when t is no tensor of nd + 2 dimensions
    if not is_tensor(t) then return nil end
    local s = core.shape(t)
    if #s < nd + 2 then return nil end
    return nd == 2 and { s[#s - 1], s[#s] } or s[#s]
  end

  -- 2-D padding -> {top, left, bottom, right}. x is the input and k the kernel (a pair, or the weight tensor),
  -- read for "same" only. With `share`, a valid 4-table is handed on as it is (see SHARED_PAIRS).
  local function pad4(op, p, x, k, stride, dilation, share)
    if p == "valid" then return { 0, 0, 0, 0 } end
    if p == "same" then
      local size = spatial(x, 2)
      if is_tensor(k) then k = spatial(k, 2) end
      if not (size and k) then return { 0, 0, 0, 0 } end -- a bad input or weight shape; the kernel names it
      local t, b = same(size[1], k[1], stride[1], dilation[1])
      local l, r = same(size[2], k[2], stride[2], dilation[2])
      return { t, l, b, r }
    end
    if type(p) == "table" and #p == 4 then
      if share and math.tointeger(p[1]) and math.tointeger(p[2]) and math.tointeger(p[3]) and math.tointeger(p[4]) then
        return p
      end
      local q = {}
      for i = 1, 4 do q[i] = int(op, "padding", p[i]) end
      return q
    end
    local ph = pair(op, "padding", p)
    return { ph[1], ph[2], ph[1], ph[2] }
  end

  -- 1-D padding -> {left, right}.
  local function pad2(op, p, len, k, stride, dilation)
    if p == "valid" then return { 0, 0 } end
    if p == "same" then
      if not len then return { 0, 0 } end
      local l, r = same(len, k, stride, dilation)
      return { l, r }
    end
    if type(p) == "table" and #p == 2 then return pair(op, "padding", p) end
    local n = int(op, "padding", p)
    return { n, n }
  end

  -- The bias and options of conv(x, w [, b] [, opts]): a table in the bias slot is the options.
  local function bias_opts(b, opts)
    if b ~= nil and not is_tensor(b) and opts == nil then return nil, b end
    return b, opts or {}
  end

  -- Raises "op: <what> (argument i) must be a lumen.Tensor, got <type>" unless v is a tensor.
  local function need(op, i, what, v)
    if not is_tensor(v) then
      error(("%s: %s (argument %d) must be a lumen.Tensor, got %s"):format(op, what, i, type(v)), 0)
    end
  end

  local function wants(ctx, i)
    if ctx.needs then return ctx.needs[i] == true end
    return ctx.inputs[i] ~= nil
  end

  local function bias_arg(ctx)
    local b = ctx.args[3]
    return is_tensor(b) and b or nil
  end

  ---- convolution ----

  local function conv2d_opts(op, x, w, o, transposed)
    local share = sharing()
    local stride, dilation = pair(op, "stride", o.stride or 1, share), pair(op, "dilation", o.dilation or 1, share)
    if transposed and o.padding == "same" then error(op .. ": padding 'same' is not supported", 0) end
    local p = { stride = stride, dilation = dilation, groups = int(op, "groups", o.groups or 1),
                padding = pad4(op, o.padding or 0, x, w, stride, dilation, share) }
    if transposed then p.output_padding = pair(op, "output_padding", o.output_padding or 0) end
    return p
  end

  local function conv1d_opts(x, w, o)
    local op = "conv1d"
    local stride, dilation = int(op, "stride", o.stride or 1), int(op, "dilation", o.dilation or 1)
    return { stride = stride, dilation = dilation, groups = int(op, "groups", o.groups or 1),
             padding = pad2(op, o.padding or 0, spatial(x, 1), spatial(w, 1), stride, dilation) }
  end

  -- The activations a convolution may apply to its output in the same op (opts.activation, a post-op:
  -- the fused Conv+BN+ReLU of lumen.nn.fold). The backward masks the gradient by the output, which is
  -- exact for these two: relu's y > 0 and relu6's 0 < y < 6 are where the pre-activation was inside.
  -- silu and hardswish have no such mask (their gradient needs the pre-activation), so they are fused
  -- only where nothing is recorded: under lumen.no_grad, or when no argument needs a gradient.
  local POST_OPS = { relu = true, relu6 = true, silu = "forward", hardswish = "forward" }
  local POST_NAMES = "'relu' or 'relu6' (or 'silu' or 'hardswish' where no gradient is recorded)"

  -- The op's output with its post-op applied. A kernel that fuses the activation into the convolution
  -- replaces the two calls here (the only place that computes a post-op).
  local function post(y, act)
    if act == nil then return y end
    return (core[act] or lumen[act])(y)
  end

  -- One conv-like op: forward fwd(x, w, b, p), backward bwd(x, w, gy, p, want_x, want_w, want_b [, scale,
  -- want_scale]). ctx.opts never holds the activation or the scale (passing it back reproduces the convolution
  -- alone); ctx.activation and ctx.y keep the post-op and the output its backward needs, ctx.scale the weights'
  -- scale (also ctx.args[5]). With `fused`, fwd takes the activation and the scale itself (core.conv2d,
  -- core.conv1d: a post-op of the convolution kernel, no second pass; the scale applied as the weights are read).
  local CACHE_MT = getmetatable(core.conv_cache()) -- what lumen.conv_cache() makes

  local function conv_op(name, make_opts, fwd, bwd, fused)
    local function check_activation(act)
      if act ~= nil and not POST_OPS[act] then
        error(("%s: activation must be %s, got %s"):format(name, POST_NAMES, show(act)), 0)
      end
      return act
    end
    local op = def(name, {
      forward = function(ctx, x, w, b, opts, scale)
        need(name, 1, "input", x)
        need(name, 2, "weight", w)
        b, opts = bias_opts(b, opts)
        local act = check_activation(opts.activation)
        if POST_OPS[act] == "forward" and lumen.autograd.is_enabled()
          and (requires_grad(x) or requires_grad(w) or requires_grad(b) or requires_grad(scale)) then
          error(("%s: activation '%s' has no backward through the convolution's output; fuse it under lumen.no_grad"
            .. " (or apply lumen.%s after the convolution)"):format(name, act, act), 0)
        end
        ctx.opts = make_opts(x, w, opts)
        local y, cache = nil, opts.cache
        if (act or scale or cache) and fused and sharing() then -- nothing keeps ctx.opts: the post-ops go in it
          ctx.opts.activation, ctx.opts.scale, ctx.opts.cache = act, scale, cache
          y = fwd(x, w, b, ctx.opts)
        elseif (act or scale or cache) and fused then
          y = fwd(x, w, b, setmetatable({ activation = act, scale = scale, cache = cache }, { __index = ctx.opts }))
        else
          y = post(fwd(x, w, b, ctx.opts), act)
        end
        if act then ctx.activation, ctx.y = act, y end
        ctx.scale = scale
        return y
      end,
      backward = function(ctx, gy)
        local masked
        if ctx.activation then
          masked = core[ctx.activation .. "_backward"](ctx.y, gy)
          gy = masked
        end
        local b = bias_arg(ctx)
        local gx, gw, gb, gs = bwd(ctx.args[1], ctx.args[2], gy, ctx.opts, wants(ctx, 1), wants(ctx, 2),
          b ~= nil and wants(ctx, 3), ctx.scale, ctx.scale ~= nil and wants(ctx, 5))
        if masked then core.free(masked) end -- made here, read by nothing else: its block goes back at once
        return gx, gw, gb, nil, gs
      end,
    })
    -- opts.scale (a tensor (O)) travels as the op's fifth argument, so that the tape sees it. A key that
    -- is no option of the op is an error naming it (a misspelt `strides` would otherwise mean stride 1).
    local names = { "activation", "cache", "dilation", "groups", "padding", "scale", "stride" } -- scale, cache:
    if not fused then table.insert(names, 5, "output_padding") end                  -- refused below where unfused
    local valid = {}
    for _, k in ipairs(names) do valid[k] = true end
    -- The options table o's keys, cache and scale checked (errors at `level` from the caller's caller); its scale.
    local function check_options(o, level)
      if type(o) == "table" then
        for k in pairs(o) do
          if not valid[k] then
            error(("%s: unknown option '%s' (options: %s)"):format(name, tostring(k), table.concat(names, ", ")),
              level + 1)
          end
        end
      end
      local cache = type(o) == "table" and o.cache or nil
      if cache ~= nil and (not fused or getmetatable(cache) ~= CACHE_MT) then
        error(not fused and ("%s: option 'cache' is for conv2d and conv1d"):format(name)
          or ("%s: option 'cache' must be a lumen.conv_cache(), got %s"):format(name, type(cache)), level + 1)
      end
      local scale = type(o) == "table" and o.scale or nil
      if scale == nil then return nil end
      if not fused then error(("%s: option 'scale' is for conv2d and conv1d"):format(name), level + 1) end
      if not is_tensor(scale) then
        error(("%s: option 'scale' must be a lumen.Tensor of one value per output channel, got %s"):format(name,
          type(scale)), level + 1)
      end
      return scale
    end
    local function call(x, w, b, opts)
      local o = opts
      if o == nil and b ~= nil and not is_tensor(b) then o = b end
      local scale = check_options(o, 2)
      if scale == nil then return op(x, w, b, opts) end
      return op(x, w, b, opts, scale)
    end
    -- A call planned once for lumen.nn.fold, which runs the same convolution pass after pass under lumen.no_grad:
    -- plan(x, w, opts) makes every check call(x, w, b, opts) would make with grad mode off (none reads b when
    -- opts is a table) and returns the options table the kernel then reads, for fwd(x, w, b, kernel_options)
    -- counted as this op (lumen.autograd.count); nil where the options cannot be planned (padding "same" reads
    -- the input's size). The table holds opts's own stride, dilation and padding tables where they are valid
    -- (the kernel reads them as they are then), so the caller plans again when opts's entries change.
    local function plan(x, w, opts)
      if not fused or lumen.autograd.is_enabled() or type(opts) ~= "table" or opts.padding == "same" then return nil end
      local scale = check_options(opts, 2)
      need(name, 1, "input", x)
      need(name, 2, "weight", w)
      local ko = make_opts(x, w, opts)
      ko.activation, ko.scale, ko.cache = check_activation(opts.activation), scale, opts.cache
      return ko
    end
    return call, plan, fwd
  end

  -- An empty weight cache for one convolution (option `cache` of conv2d and conv1d).
  lumen.conv_cache = core.conv_cache

  -- conv_plans[name] = {plan, kernel, call}: lumen.nn.fold's planned calls (conv_op's plan), used while lumen[name]
  -- is still `call` (a function set in its place is called instead)
  local conv_plans = {}
  local function planned(name, call, plan, kernel)
    conv_plans[name] = { plan = plan, kernel = kernel, call = call }
    return call
  end
  lumen.conv2d = planned("conv2d", conv_op("conv2d", function(x, w, o) return conv2d_opts("conv2d", x, w, o) end,
                                           core.conv2d, core.conv2d_backward, true))
  lumen.conv1d = planned("conv1d", conv_op("conv1d", conv1d_opts, core.conv1d, core.conv1d_backward, true))
  lumen.autograd.conv_plans = conv_plans
  lumen.conv_transpose2d = conv_op("conv_transpose2d",
                                   function(x, w, o) return conv2d_opts("conv_transpose2d", x, w, o, true) end,
                                   core.conv_transpose2d, core.conv_transpose2d_backward)

  ---- pooling ----

  -- Options of pool(x, k [, opts]); k may itself be the options table (with kernel_size).
  local function pool_opts(op, nd, x, k, o, max)
    if type(k) == "table" and k.kernel_size ~= nil then k, o = k.kernel_size, k end
    o = o or {}
    if k == nil then error(op .. ": missing kernel size", 0) end
    local p = { ceil_mode = o.ceil_mode or false }
    if nd == 2 then
      p.kernel_size = pair(op, "kernel_size", k)
      p.stride = pair(op, "stride", o.stride or p.kernel_size)
      p.dilation = pair(op, "dilation", max and o.dilation or 1)
      p.padding = pad4(op, o.padding or 0, x, p.kernel_size, p.stride, p.dilation)
    else
      p.kernel_size = int(op, "kernel_size", k)
      p.stride = int(op, "stride", o.stride or p.kernel_size)
      p.dilation = int(op, "dilation", max and o.dilation or 1)
      p.padding = pad2(op, o.padding or 0, spatial(x, 1), p.kernel_size, p.stride, p.dilation)
    end
    if not max then p.count_include_pad = o.count_include_pad ~= false end
    return p
  end

  local function max_pool_op(name, nd, fwd)
    return def(name, {
      forward = function(ctx, x, k, opts)
        need(name, 1, "input", x)
        ctx.opts = pool_opts(name, nd, x, k, opts, true)
        local y, idx = fwd(x, ctx.opts)
        ctx.indices, ctx.input_shape = idx, core.shape(x)
        return y, idx
      end,
      backward = function(ctx, gy) return core.max_pool_backward(gy, ctx.indices, ctx.input_shape) end,
    })
  end
  lumen.max_pool2d = max_pool_op("max_pool2d", 2, core.max_pool2d)
  lumen.max_pool1d = max_pool_op("max_pool1d", 1, core.max_pool1d)

  local function avg_pool_op(name, nd, fwd)
    return def(name, {
      forward = function(ctx, x, k, opts)
        need(name, 1, "input", x)
        ctx.opts = pool_opts(name, nd, x, k, opts, false)
        return fwd(x, ctx.opts)
      end,
      backward = function(ctx, gy) return core.avg_pool_backward(gy, ctx.opts, core.shape(ctx.args[1])) end,
    })
  end
  lumen.avg_pool2d = avg_pool_op("avg_pool2d", 2, core.avg_pool2d)
  lumen.avg_pool1d = avg_pool_op("avg_pool1d", 1, core.avg_pool1d)

  -- output_size: {H, W} or a full shape {N, C, H, W}.
  lumen.max_unpool2d = def("max_unpool2d", {
    forward = function(ctx, y, indices, output_size)
      need("max_unpool2d", 1, "input", y)
      need("max_unpool2d", 2, "indices", indices)
      local s = type(output_size) == "table" and output_size or {}
      local H, W = math.tointeger(s[#s - 1]), math.tointeger(s[#s])
      if not (H and W) or (#s ~= 2 and #s ~= 4) then
        error("max_unpool2d: output_size must be {H, W} or {N, C, H, W}, got " .. show(output_size), 0)
      end
      ctx.output_size = { H, W }
      return core.max_unpool2d(y, indices, H, W)
    end,
    backward = function(ctx, g) return core.max_unpool2d_backward(g, ctx.args[2]) end,
  })

  -- size: {oh, ow} (nil entries keep the input size) or one number for both.
  lumen.adaptive_avg_pool2d = def("adaptive_avg_pool2d", {
    forward = function(ctx, x, size)
      need("adaptive_avg_pool2d", 1, "input", x)
      local s = core.shape(x)
      if #s ~= 4 then error(("adaptive_avg_pool2d: expected 4-D input (N, C, H, W), got %d-D"):format(#s), 0) end
      local o = type(size) == "table" and { size[1] or s[3], size[2] or s[4] } or { size, size }
      ctx.size = pair("adaptive_avg_pool2d", "output_size", o)
      return core.adaptive_avg_pool2d(x, ctx.size[1], ctx.size[2])
    end,
    backward = function(ctx, gy) return core.adaptive_avg_pool2d_backward(gy, core.shape(ctx.args[1])) end,
  })

  local function check4(op, x)
    need(op, 1, "input", x)
    local s = core.shape(x)
    if #s ~= 4 then error(("%s: expected 4-D input (N, C, H, W), got %d-D"):format(op, #s), 0) end
    return s
  end

  -- (N, C, 1, 1) -> (N, C) unless keepdims.
  local function squeeze_hw(y, s, keepdims)
    if keepdims == false then return core.view(y, { s[1], s[2] }) end
    return y
  end

  lumen.global_avg_pool2d = def("global_avg_pool2d", {
    forward = function(ctx, x, keepdims)
      local s = check4("global_avg_pool2d", x)
      return squeeze_hw(core.adaptive_avg_pool2d(x, 1, 1), s, keepdims)
    end,
    backward = function(ctx, gy)
      local s = core.shape(ctx.args[1])
      return core.adaptive_avg_pool2d_backward(core.view(gy, { s[1], s[2], 1, 1 }), s)
    end,
  })

  lumen.global_max_pool2d = def("global_max_pool2d", {
    forward = function(ctx, x, keepdims)
      local s = check4("global_max_pool2d", x)
      ctx.opts = { kernel_size = { s[3], s[4] }, padding = { 0, 0, 0, 0 } }
      local y, idx = core.max_pool2d(x, ctx.opts)
      ctx.indices, ctx.input_shape = idx, s
      return squeeze_hw(y, s, keepdims), squeeze_hw(idx, s, keepdims)
    end,
    backward = function(ctx, gy)
      local s = ctx.input_shape
      return core.max_pool_backward(core.view(gy, { s[1], s[2], 1, 1 }), ctx.indices, s)
    end,
  })

  lumen.global_max_pool1d = def("global_max_pool1d", {
    forward = function(ctx, x)
      need("global_max_pool1d", 1, "input", x)
      local s = core.shape(x)
      if #s ~= 3 then error(("global_max_pool1d: expected 3-D input (N, C, L), got %d-D"):format(#s), 0) end
      ctx.opts = { kernel_size = s[3], padding = { 0, 0 } }
      local y, idx = core.max_pool1d(x, ctx.opts)
      ctx.indices, ctx.input_shape = idx, s
      return core.view(y, { s[1], s[2] }), core.view(idx, { s[1], s[2] })
    end,
    backward = function(ctx, gy)
      local s = ctx.input_shape
      return core.max_pool_backward(core.view(gy, { s[1], s[2], 1 }), ctx.indices, s)
    end,
  })

  ---- linear and embedding ----

  lumen.linear = def("linear", {
    forward = function(ctx, x, w, b)
      need("linear", 1, "input", x)
      need("linear", 2, "weight", w)
      return core.linear(x, w, b)
    end,
    backward = function(ctx, gy)
      local b = bias_arg(ctx)
      return core.linear_backward(ctx.args[1], ctx.args[2], gy, wants(ctx, 1), wants(ctx, 2),
                                  b ~= nil and wants(ctx, 3))
    end,
  })

  lumen.embedding = def("embedding", {
    forward = function(ctx, ids, weight)
      need("embedding", 1, "ids", ids)
      need("embedding", 2, "weight", weight)
      return core.embedding(ids, weight)
    end,
    backward = function(ctx, gy)
      local w = ctx.args[2]
      return nil, core.embedding_backward(ctx.args[1], gy, core.shape(w)[1])
    end,
  })

  ---- recurrent layers ----

  -- The op: for the LSTM its output packs y and the last cell state as (T + 1, N, H), so that both
  -- are differentiable (the tape differentiates an op's first output); lstm() unpacks them.
  local rnn = def("rnn", {
    forward = function(ctx, x, w_ih, w_hh, b_ih, b_hh, h0, c0, cell, reverse, lbr)
      local y, cn, saved = core.rnn(x, w_ih, w_hh, b_ih, b_hh, h0, c0, cell, reverse, lbr)
      ctx.y, ctx.saved, ctx.cell, ctx.reverse, ctx.lbr = y, saved, cell, reverse, lbr
      if cell ~= "lstm" then return y end
      local s = core.shape(cn)
      return core.cat({ y, core.view(cn, { 1, s[1], s[2] }) }, 1)
    end,
    backward = function(ctx, g)
      local a, need = ctx.args, ctx.needs or ctx.inputs
      local gy, gcn = g, nil
      if ctx.cell == "lstm" then
        local T = core.shape(g)[1] - 1
        gy, gcn = core.narrow(g, 1, 1, T), core.view(core.narrow(g, 1, T + 1, 1), { core.shape(g)[2], core.shape(g)[3] })
      end
      local wants = {}
      for i = 1, 7 do wants[i] = need[i] == true end
      return core.rnn_backward(a[1], a[2], a[3], a[6], a[7], ctx.y, ctx.saved, gy, gcn, ctx.cell, ctx.reverse,
        ctx.lbr, wants)
    end,
  })

  local function rnn_opts(op, opts)
    opts = opts or {}
    if type(opts) ~= "table" then error(op .. ": options must be a table", 3) end
    for k in pairs(opts) do
      if k ~= "reverse" and k ~= "linear_before_reset" then error(("%s: unknown option '%s'"):format(op, tostring(k)), 3) end
    end
    return opts.reverse == true, opts.linear_before_reset ~= false
  end

  local function last_state(y, reverse)
    local s = core.shape(y)
    if s[1] == 0 then return nil end
    return lumen.select(y, 1, reverse and 1 or s[1])
  end

  function lumen.lstm(x, w_ih, w_hh, b_ih, b_hh, h0, c0, opts)
    need("lstm", 1, "input", x)
    local reverse = rnn_opts("lstm", opts)
    local packed = rnn(x, w_ih, w_hh, b_ih, b_hh, h0, c0, "lstm", reverse, false)
    local T = core.shape(x)[1]
    local y = lumen.narrow(packed, 1, 1, T)
    return y, last_state(y, reverse) or h0 or lumen.zeros(core.shape(packed)[2], core.shape(packed)[3]),
      lumen.select(packed, 1, T + 1)
  end

  function lumen.gru(x, w_ih, w_hh, b_ih, b_hh, h0, opts)
    need("gru", 1, "input", x)
    local reverse, lbr = rnn_opts("gru", opts)
    local y = rnn(x, w_ih, w_hh, b_ih, b_hh, h0, nil, "gru", reverse, lbr)
    return y, last_state(y, reverse) or h0 or lumen.zeros(core.shape(y)[2], core.shape(y)[3])
  end
end
