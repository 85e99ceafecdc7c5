-- lumen.ops_act: activations, softmax, losses, batch norm, dropout and differentiable resampling, each
-- op defined once with lumen.autograd.def on the C kernels of lumen.core (src/lua_act.c).
-- Every op is both `lumen.name(x, ...)` and the method `x:name(...)`.
--
--   activations  relu(x), leaky_relu(x, slope = 0.01), relu6(x), clip(x, min, max) (either bound nil),
--                and in place: relu_(x), leaky_relu_(x, slope), relu6_(x), clip_(x, min, max), which overwrite x
--                and return it when grad mode is off (lumen.no_grad), and are relu(x) etc. (a new tensor)
--                otherwise, since a recorded node may need x's values; use the result either way. Only for a
--                tensor nothing else holds (such as the fresh output of the layer before).
--                sigmoid(x), silu(x) = x * sigmoid(x) (swish), tanh(x), gelu(x) (erf form), hardswish(x),
--                softplus(x, beta = 1, threshold = 20),
--                elu(x, alpha = 1), hardsigmoid(x, alpha = 1/6, beta = 0.5): clip(alpha * x + beta, 0, 1);
--                alpha may also be "pytorch" (1/6, 0.5), "onnx" (0.2, 0.5) or a table {alpha =, beta =}
--   softmax      softmax(x, dim = -1), log_softmax(x, dim = -1), numerically stable; dims 1-based
--   losses       nll_loss(logp (N, K), target, opts), cross_entropy(logits (N, K), target, opts):
--                target int64 (N) or a Lua array of 1-based class ids; opts.reduction (or opts itself)
--                "mean" (default), "sum" or "none" (-> (N)); mean and sum give a 0-d tensor
--   batch_norm   batch_norm(x (N, C, ...), running_mean, running_var, weight, bias,
--                {training = false, momentum = 0.1, eps = 1e-5}): training normalises with the batch
--                statistics and updates the running ones in place; differentiable in x, weight, bias;
--                batch_norm_fold(t, running_mean, running_var, weight, bias, {eps =}): the same affine map
--                along t's first dimension, to fold a BatchNorm into the weights of the layer before it
--   layer_norm   layer_norm(x, normalized_shape, weight, bias, eps = 1e-5): normalise over the trailing
--                dims normalized_shape names (a number: the last dim), as F.layer_norm; weight, bias
--                shaped normalized_shape or nil; differentiable in x, weight, bias
--   dropout      dropout(x, p = 0.5, training = true): inverted dropout on lumen's RNG; x itself when
--                not training or p = 0
--   resampling   upsample_bilinear(x (N, C, H, W), {oh, ow}, align_corners = false) (also
--                {align_corners = true}), upsample_nearest(x, {oh, ow}): F.interpolate(size = ...);
--                gaussian_blur(x (N, C, H, W), sigma, ksize = 2 * ceil(3 * sigma) + 1), or
--                gaussian_blur(x, sigma, {ksize =, padding = "reflect" | "zero"})
--
-- For lumen.with_rules, activations keep ctx.x (input), ctx.y (output) and ctx.a, ctx.b (parameters);
-- softmax keeps ctx.y and ctx.dim. Backward functions read everything from ctx.
local core = require "lumen.core"

return function(lumen)
  local def = lumen.autograd.def
  local is_tensor = core.is_tensor

  local function export(name, f)
    lumen[name] = f
    lumen.Tensor[name] = f
  end

  ---------------------------------------------------------------- activations

  -- params(...) -> the kernel's two numbers from the op's extra arguments (nil: the C defaults).
  local function activation(name, params)
    local forward, backward = core[name], core[name .. "_backward"]
    export(name, def(name, {
      forward = function(ctx, x, ...)
        local a, b
        if params then a, b = params(...) end
        local y = forward(x, a, b)
        ctx.x, ctx.y, ctx.a, ctx.b = x, y, a, b
        return y
      end,
      backward = function(ctx, g) return backward(ctx.x, g, ctx.a, ctx.b) end,
    }))
  end

  local function number_or(name, what, v, default)
    if v == nil then return default end
    if type(v) ~= "number" then error(("%s: %s must be a number, got %s"):format(name, what, type(v)), 4) end
    return v
  end

  -- name_(x, ...): in place outside the tape (see the header), else the ordinary op.
  local function inplace(name, params)
    local op = lumen[name]
    export(name .. "_", function(x, ...)
      if lumen.autograd.is_enabled() then return op(x, ...) end
      local a, b
      if params then a, b = params(...) end
      return core.act_inplace(name, x, a, b)
    end)
  end

  for _, name in ipairs { "relu", "relu6", "sigmoid", "silu", "tanh", "gelu", "hardswish" } do activation(name) end
  activation("leaky_relu", function(slope) return number_or("leaky_relu", "slope", slope, 0.01), 0 end)
  activation("clip", function(lo, hi)
    return number_or("clip", "min", lo, -math.huge), number_or("clip", "max", hi, math.huge)
  end)
  activation("softplus", function(beta, threshold)
    return number_or("softplus", "beta", beta, 1), number_or("softplus", "threshold", threshold, 20)
  end)
  activation("elu", function(alpha) return number_or("elu", "alpha", alpha, 1), 0 end)
  inplace("relu")
  inplace("relu6")
  inplace("leaky_relu", function(slope) return number_or("leaky_relu_", "slope", slope, 0.01) end)
  inplace("clip", function(lo, hi) return number_or("clip_", "min", lo, -math.huge), number_or("clip_", "max", hi, math.huge) end)

  local hardsigmoid_forms = { pytorch = { 1 / 6, 0.5 }, onnx = { 0.2, 0.5 } }
  activation("hardsigmoid", function(alpha, beta)
    if type(alpha) == "string" then
      local f = hardsigmoid_forms[alpha]
      if not f then error(("hardsigmoid: unknown form '%s' (expected 'pytorch' or 'onnx')"):format(alpha), 3) end
      return f[1], f[2]
    elseif type(alpha) == "table" then
      alpha, beta = alpha.alpha, alpha.beta
    end
    return number_or("hardsigmoid", "alpha", alpha, 1 / 6), number_or("hardsigmoid", "beta", beta, 0.5)
  end)

  ---------------------------------------------------------------- softmax

  for _, name in ipairs { "softmax", "log_softmax" } do
    local forward, backward = core[name], core[name .. "_backward"]
    export(name, def(name, {
      forward = function(ctx, x, dim)
        dim = dim or -1
        local y = forward(x, dim)
        ctx.y, ctx.dim = y, dim
        return y
      end,
      backward = function(ctx, g) return backward(ctx.y, g, ctx.dim) end,
    }))
  end

  ---------------------------------------------------------------- losses

  local reductions = { mean = true, sum = true, none = true }

  export("nll_loss", def("nll_loss", {
    forward = function(ctx, logp, target, opts)
      local red = type(opts) == "table" and opts.reduction or opts or "mean"
      if not reductions[red] then
        error(("nll_loss: reduction must be 'mean', 'sum' or 'none', got '%s'"):format(tostring(red)), 3)
      end
      if type(target) == "table" then
        target = core.from_table(target, "int64")
      elseif not is_tensor(target) then
        error(("nll_loss: target must be a tensor or a Lua array of class ids, got %s"):format(type(target)), 3)
      end
      ctx.logp, ctx.target, ctx.reduction = logp, target, red
      return core.nll_loss(logp, target, red)
    end,
    backward = function(ctx, g) return core.nll_loss_backward(ctx.logp, ctx.target, g, ctx.reduction) end,
  }))

  export("cross_entropy", function(logits, target, opts)
    if not is_tensor(logits) or core.dim(logits) ~= 2 then
      local got = is_tensor(logits) and lumen.shape_str(logits) or type(logits)
      error(("cross_entropy: expected logits (N, K), got %s"):format(got), 2)
    end
    return lumen.nll_loss(lumen.log_softmax(logits, 2), target, opts)
  end)

  ---------------------------------------------------------------- batch norm

  export("batch_norm", def("batch_norm", {
    forward = function(ctx, x, running_mean, running_var, weight, bias, opts)
      opts = opts or {}
      local training = opts.training == true
      local y, mean, invstd = core.batch_norm(x, running_mean, running_var, weight, bias, training,
        opts.momentum or 0.1, opts.eps or 1e-5)
      ctx.x, ctx.weight, ctx.mean, ctx.invstd, ctx.training = x, weight, mean, invstd, training
      return y
    end,
    backward = function(ctx, g)
      local need = ctx.needs or ctx.inputs
      local gx, gw, gb = core.batch_norm_backward(ctx.x, ctx.weight, ctx.mean, ctx.invstd, g, ctx.training,
        need[1], need[4], need[5])
      return gx, nil, nil, gw, gb
    end,
  }))

  ---------------------------------------------------------------- layer norm

  local layer_norm = def("layer_norm", {
    forward = function(ctx, x, k, weight, bias, eps)
      local y, mean, rstd = core.layer_norm(x, k, weight, bias, eps)
      ctx.x, ctx.k, ctx.weight, ctx.mean, ctx.rstd = x, k, weight, mean, rstd
      return y
    end,
    backward = function(ctx, g)
      local need = ctx.needs or ctx.inputs
      local gx, gw, gb = core.layer_norm_backward(ctx.x, ctx.k, ctx.weight, ctx.mean, ctx.rstd, g,
        need[1], need[3], need[4])
      return gx, nil, gw, gb
    end,
  })

  export("layer_norm", function(x, normalized_shape, weight, bias, eps)
    if not is_tensor(x) then error("layer_norm: input must be a lumen.Tensor, got " .. type(x), 2) end
    local ns = type(normalized_shape) == "number" and { normalized_shape } or normalized_shape
    local s = core.shape(x)
    local ok = type(ns) == "table" and #ns >= 1 and #ns <= #s
    for i = 1, ok and #ns or 0 do ok = ok and ns[i] == s[#s - #ns + i] end
    if not ok then
      local got = type(ns) == "table" and ("{" .. table.concat(ns, ", ") .. "}") or tostring(normalized_shape)
      error(("layer_norm: normalized_shape %s does not match the trailing dims of input %s"):format(got,
        lumen.shape_str(x)), 2)
    end
    if eps ~= nil and type(eps) ~= "number" then error("layer_norm: eps must be a number", 2) end
    return layer_norm(x, #ns, weight, bias, eps or 1e-5)
  end)
  -- batch_norm_fold(t (O, ...), running_mean | nil, running_var, weight, bias | nil, {eps = 1e-5 [, cached]}):
  -- an eval-mode BatchNorm applied along t's first dimension, (t[o] - mean[o]) * weight[o] /
  -- sqrt(var[o] + eps) + bias[o] (a nil mean or bias is 0). It folds a BatchNorm into the layer before it:
  -- w' = batch_norm_fold(w, nil, var, gamma, nil), b' = batch_norm_fold(b, mean, var, gamma, beta).
  -- The scale is computed per row in double precision. opts.cached is the result computed before from
  -- the same tensors (lumen.nn.fold keeps it): returned as a view, so a folded layer records the tape
  -- node that carries gradients back to t, weight and bias without redoing the work. Differentiable in
  -- t, weight and bias.
  local function fold_scale(running_var, weight, eps)
    local n = core.numel(running_var)
    local s = {}
    for o = 1, n do s[o] = core.flat_get(weight, o) / math.sqrt(core.flat_get(running_var, o) + eps) end
    return core.from_table(s)
  end

  local function rows_shape(t) -- (O, 1, 1, ...) to broadcast a per-row vector against t
    local s = core.shape(t)
    for d = 2, #s do s[d] = 1 end
    return s
  end

  export("batch_norm_fold", def("batch_norm_fold", {
    forward = function(ctx, t, running_mean, running_var, weight, bias, opts)
      opts = opts or {}
      local eps = opts.eps or 1e-5
      local rows = core.shape(t)[1]
      for _, v in ipairs { running_var, weight, running_mean or running_var, bias or running_var } do
        if not is_tensor(v) or core.numel(v) ~= rows then
          error(("batch_norm_fold: statistics must be tensors of %d values (the rows of t)"):format(rows), 3)
        end
      end
      ctx.t, ctx.mean, ctx.var, ctx.weight, ctx.eps = t, running_mean, running_var, weight, eps
      if opts.cached then return core.view(opts.cached, core.shape(t)) end
      local s = fold_scale(running_var, weight, eps)
      local shift = {}
      for o = 1, rows do
        local m = running_mean and core.flat_get(running_mean, o) or 0
        shift[o] = (bias and core.flat_get(bias, o) or 0) - m * core.flat_get(s, o)
      end
      local rs = rows_shape(t)
      return core.add(core.mul(t, core.view(s, rs)), core.view(core.from_table(shift), rs))
    end,
    backward = function(ctx, g)
      local need = ctx.needs or ctx.inputs
      local rs = rows_shape(ctx.t)
      local dims = {}
      for d = 2, #rs do dims[#dims + 1] = d end
      local function per_row(v) -- sum over every dimension but the first -> (O)
        if #dims == 0 then return v end
        return core.view(core.sum(v, dims, false), { rs[1] })
      end
      local gt, gw, gb
      if need[1] then gt = core.mul(g, core.view(fold_scale(ctx.var, ctx.weight, ctx.eps), rs)) end
      if need[4] then
        local c = ctx.t
        if ctx.mean then c = core.sub(c, core.view(ctx.mean, rs)) end
        gw = core.mul(per_row(core.mul(g, c)), fold_scale(ctx.var, core.full(core.shape(ctx.weight), 1), ctx.eps))
      end
      if need[5] then gb = per_row(g) end
      return gt, nil, nil, gw, gb
    end,
  }))

  ---------------------------------------------------------------- dropout

  local dropout = def("dropout", {
    forward = function(ctx, x, p)
      local y, mask = core.dropout(x, p)
      ctx.mask = mask
      return y
    end,
    backward = function(ctx, g) return core.dropout_backward(g, ctx.mask) end,
  })

  export("dropout", function(x, p, training)
    p = p or 0.5
    if type(p) ~= "number" or not (p >= 0 and p <= 1) then
      error(("dropout: p must be a number in [0, 1], got %s"):format(tostring(p)), 2)
    end
    if training == false or p == 0 then return x end
    return dropout(x, p)
  end)

  ---------------------------------------------------------------- resampling

  -- {oh, ow} or one number for both -> oh, ow (positive integers).
  local function size_arg(name, size)
    local oh, ow = size, size
    if type(size) == "table" then oh, ow = size[1], size[2] end
    oh, ow = math.tointeger(oh), math.tointeger(ow)
    if not (oh and ow and oh >= 1 and ow >= 1) then
      local shown = type(size) == "table" and ("{%s, %s}"):format(tostring(size[1]), tostring(size[2]))
        or tostring(size)
      error(("%s: size must be {oh, ow} with positive integers, got %s"):format(name, shown), 4)
    end
    return oh, ow
  end

  for name, mode in pairs { upsample_bilinear = "bilinear", upsample_nearest = "nearest" } do
    export(name, def(name, {
      forward = function(ctx, x, size, opts)
        local oh, ow = size_arg(name, size)
        local ac = opts == true or type(opts) == "table" and opts.align_corners == true
        if ac and mode == "nearest" then error("upsample_nearest: align_corners applies only to bilinear", 3) end
        ctx.shape, ctx.align_corners = core.shape(x), ac
        return core.upsample(x, oh, ow, mode, ac)
      end,
      backward = function(ctx, g) return core.upsample_backward(g, ctx.shape, mode, ctx.align_corners) end,
    }))
  end

  export("gaussian_blur", def("gaussian_blur", {
    forward = function(ctx, x, sigma, opts)
      if type(sigma) ~= "number" or not (sigma > 0) then
        error(("gaussian_blur: sigma must be a positive number, got %s"):format(tostring(sigma)), 3)
      end
      local ksize, padding = opts, nil
      if type(opts) == "table" then ksize, padding = opts.ksize, opts.padding end
      ksize = ksize or 2 * math.ceil(3 * sigma) + 1
      padding = padding or "reflect"
      ctx.sigma, ctx.ksize, ctx.padding = sigma, ksize, padding
      return core.gaussian_blur(x, sigma, ksize, padding)
    end,
    backward = function(ctx, g) return core.gaussian_blur_backward(g, ctx.sigma, ctx.ksize, ctx.padding) end,
  }))
end
