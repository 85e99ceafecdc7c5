-- The op table spec: walks lumen.autograd.ops (every op defined with lumen.autograd.def; custom
-- lumen.Function ops excepted) and fails for any op without a gradient check here, as ggml's
-- test-backend-ops loops over its op enum. A new op cannot land untested: add its case to CASES.
-- Each case builds a small differentiable function and its inputs; the spec checks that the case really
-- calls its op forward and backward (the op counters) and that the tape's gradient matches central
-- finite differences (lumen.gradcheck). The detailed checks of each op's values stay in math_spec,
-- act_spec, conv_spec, pool_spec, linear_spec.
local lumen = require "lumen"
local support = require "support"

local randn = function(s) return lumen.randn(s) end
local distinct = support.distinct

-- Values away from the kinks of abs, relu, sign, clamp (|v| in [0.2, 1.4]), distinct.
local function away(shape)
  local t = lumen.randn(shape)
  return t:sign() * (t:abs():clamp(0, 1.2) + 0.2)
end

local function positive(shape) return lumen.rand(shape) + 0.5 end
local function ids(t) return lumen.tensor(t, "int64") end

-- op name -> function() returning fn, inputs [, gradcheck opts]
local CASES = {
  -- elementwise
  add = function() return lumen.add, { randn { 2, 3 }, randn { 3 } } end,
  sub = function() return lumen.sub, { randn { 2, 3 }, randn { 2, 1 } } end,
  mul = function() return lumen.mul, { randn { 2, 3 }, randn { 2, 3 } } end,
  div = function() return lumen.div, { randn { 2, 3 }, positive { 3 } } end,
  pow = function() return lumen.pow, { positive { 2, 3 }, randn { 2, 3 } } end,
  maximum = function() return lumen.maximum, { distinct { 2, 3 }, distinct { 2, 3 } + 0.05 } end,
  minimum = function() return lumen.minimum, { distinct { 2, 3 }, distinct { 2, 3 } + 0.05 } end,
  neg = function() return lumen.neg, { randn { 4 } } end,
  exp = function() return lumen.exp, { randn { 4 } } end,
  log = function() return lumen.log, { positive { 4 } } end,
  sqrt = function() return lumen.sqrt, { positive { 4 } } end,
  abs = function() return lumen.abs, { away { 5 } } end,
  sign = function() return lumen.sign, { away { 5 } } end,
  square = function() return lumen.square, { randn { 4 } } end,
  reciprocal = function() return lumen.reciprocal, { positive { 4 } } end,
  clamp = function() return function(t) return t:clamp(-0.5, 0.5) end, { away { 6 } * 0.3 + away { 6 } } end,
  where = function()
    local cond = lumen.tensor { 1, 0, 1, 0 }
    return function(a, b) return lumen.where(cond, a, b) end, { randn { 4 }, randn { 4 } }
  end,
  -- reductions
  sum = function() return function(t) return t:sum({ 1, 3 }) end, { randn { 2, 3, 4 } } end,
  mean = function() return function(t) return t:mean(2, true) end, { randn { 2, 3, 4 } } end,
  sum_to = function() return function(t) return lumen.sum_to(t, { 3 }) end, { randn { 2, 3 } } end,
  max = function() return function(t) return (t:max(2)) end, { distinct { 2, 5 } } end,
  min = function() return function(t) return (t:min(1)) end, { distinct { 3, 2 } } end,
  amax = function() return function(t) return t:amax { 1, 3 } end, { distinct { 2, 3, 2 } } end,
  amin = function() return function(t) return t:amin(-1, true) end, { distinct { 2, 3 } } end,
  norm = function() return function(t) return t:norm(2, -1) end, { randn { 2, 3 } } end,
  cumsum = function() return function(t) return t:cumsum(2) end, { randn { 2, 4 } } end,
  -- shapes and indexing
  reshape = function() return function(t) return t:reshape { 3, -1 } end, { randn { 2, 3 } } end,
  clone = function() return lumen.clone, { randn { 2, 3 } } end,
  permute = function() return function(t) return t:permute(3, 1, 2) end, { randn { 2, 3, 4 } } end,
  pad = function() return function(t) return t:pad({ 1, 2, 0, 1 }, 0.5) end, { randn { 2, 3 } } end,
  narrow = function() return function(t) return t:narrow(2, 2, 2) end, { randn { 2, 4 } } end,
  index_select = function() return function(t) return t:index_select(2, { 3, 1, 3 }) end, { randn { 2, 3 } } end,
  gather = function()
    local idx = ids { { 2, 1 }, { 3, 3 } }
    return function(t) return t:gather(2, idx) end, { randn { 2, 3 } }
  end,
  scatter_add = function()
    local idx = ids { { 2, 1 }, { 3, 3 } }
    return function(t, s) return t:scatter_add(2, idx, s) end, { randn { 2, 3 }, randn { 2, 2 } }
  end,
  cat = function() return function(a, b) return lumen.cat({ a, b }, 2) end, { randn { 2, 1 }, randn { 2, 3 } } end,
  expand = function() return function(t) return t:expand { 3, 4 } end, { randn { 1, 4 } } end,
  flip = function() return function(t) return t:flip { 1, 2 } end, { randn { 2, 3 } } end,
  matmul = function() return lumen.matmul, { randn { 3, 4 }, randn { 4, 2 } } end,
  sort = function() return function(t) return (t:sort(2, true)) end, { distinct { 2, 4 } } end,
  topk = function() return function(t) return (t:topk(2, -1)) end, { distinct { 2, 4 } } end,
  -- activations
  relu = function() return lumen.relu, { away { 6 } } end,
  relu6 = function() return lumen.relu6, { away { 6 } * 4 } end,
  leaky_relu = function() return function(t) return lumen.leaky_relu(t, 0.2) end, { away { 6 } } end,
  clip = function() return function(t) return lumen.clip(t, -0.5, 0.7) end, { away { 6 } * 0.3 + away { 6 } } end,
  sigmoid = function() return lumen.sigmoid, { randn { 5 } } end,
  silu = function() return lumen.silu, { randn { 5 } * 3 } end,
  tanh = function() return lumen.tanh, { randn { 5 } } end,
  gelu = function() return lumen.gelu, { randn { 5 } } end,
  elu = function() return function(t) return lumen.elu(t, 0.7) end, { away { 5 } } end,
  softplus = function() return function(t) return lumen.softplus(t, 2, 5) end, { randn { 5 } } end,
  hardsigmoid = function() return lumen.hardsigmoid, { away { 6 } } end,
  hardswish = function() return lumen.hardswish, { away { 6 } } end,
  softmax = function() return function(t) return lumen.softmax(t, 2) end, { randn { 2, 4 } } end,
  log_softmax = function() return function(t) return lumen.log_softmax(t, -1) end, { randn { 2, 4 } } end,
  nll_loss = function() return function(lp) return lumen.nll_loss(lp, { 3, 1 }) end, { randn { 2, 4 } } end,
  batch_norm = function()
    local rm, rv = randn { 3 }, positive { 3 }
    return function(x, w, b) return lumen.batch_norm(x, rm, rv, w, b) end, { randn { 2, 3, 2 }, randn { 3 }, randn { 3 } }
  end,
  batch_norm_fold = function()
    local rm, rv = randn { 3 }, positive { 3 }
    return function(t, w, b) return lumen.batch_norm_fold(t, rm, rv, w, b, { eps = 1e-3 }) end,
      { randn { 3, 2, 2 }, randn { 3 }, randn { 3 } }
  end,
  dropout = function()
    return function(t) lumen.seed(5); return lumen.dropout(t, 0.4) end, { randn { 4, 5 } }
  end,
  -- resampling
  upsample_bilinear = function() return function(t) return lumen.upsample_bilinear(t, { 5, 3 }) end, { randn { 1, 2, 3, 4 } } end,
  upsample_nearest = function() return function(t) return lumen.upsample_nearest(t, { 6, 4 }) end, { randn { 1, 2, 3, 2 } } end,
  gaussian_blur = function() return function(t) return lumen.gaussian_blur(t, 0.9) end, { randn { 1, 2, 4, 5 } } end,
  -- layers
  linear = function() return lumen.linear, { randn { 2, 5 }, randn { 3, 5 }, randn { 3 } }, { eps = 0.1 } end,
  embedding = function() return function(w) return lumen.embedding(ids { { 2, 5, 2 } }, w) end, { randn { 5, 3 } } end,
  conv2d = function()
    return function(x, w, b) return lumen.conv2d(x, w, b, { stride = 2, padding = 1 }) end,
      { randn { 1, 2, 5, 5 }, randn { 3, 2, 3, 3 }, randn { 3 } }, { eps = 0.1 }
  end,
  conv1d = function()
    return function(x, w) return lumen.conv1d(x, w, { padding = 1 }) end, { randn { 2, 2, 6 }, randn { 3, 2, 3 } }, { eps = 0.1 }
  end,
  conv_transpose2d = function()
    return function(x, w) return lumen.conv_transpose2d(x, w, { stride = 2 }) end,
      { randn { 1, 2, 3, 3 }, randn { 2, 3, 3, 3 } }, { eps = 0.1 }
  end,
  max_pool2d = function() return function(t) return (lumen.max_pool2d(t, 2)) end, { distinct { 1, 2, 4, 4 } } end,
  max_pool1d = function() return function(t) return (lumen.max_pool1d(t, 3, { stride = 2 })) end, { distinct { 2, 2, 7 } } end,
  avg_pool2d = function() return function(t) return lumen.avg_pool2d(t, 2, { padding = 1 }) end, { randn { 1, 2, 4, 4 } } end,
  avg_pool1d = function() return function(t) return lumen.avg_pool1d(t, 3, { stride = 2 }) end, { randn { 2, 2, 7 } } end,
  adaptive_avg_pool2d = function() return function(t) return lumen.adaptive_avg_pool2d(t, { 2, 3 }) end, { randn { 1, 2, 5, 4 } } end,
  global_avg_pool2d = function() return lumen.global_avg_pool2d, { randn { 2, 3, 4, 5 } } end,
  global_max_pool2d = function() return function(t) return (lumen.global_max_pool2d(t)) end, { distinct { 2, 3, 3, 3 } } end,
  global_max_pool1d = function() return function(t) return (lumen.global_max_pool1d(t)) end, { distinct { 2, 3, 6 } } end,
  max_unpool2d = function()
    local _, idx = lumen.max_pool2d(distinct { 1, 2, 4, 4 }, 2)
    return function(y) return lumen.max_unpool2d(y, idx, { 4, 4 }) end, { randn { 1, 2, 2, 2 } }, { eps = 0.1 }
  end,
  -- transformers and recurrent nets (values and torch agreement in transformer_spec)
  erf = function() return lumen.erf, { randn { 2, 3 } } end,
  floor = function() return lumen.floor, { lumen.rand { 10 } * 0.8 + 0.1 } end, -- away from the steps
  scatter_nd = function()
    local idx = ids { { 1, 2 }, { 2, 3 } }
    return function(a, u) return lumen.scatter_nd(a, idx, u) end, { randn { 2, 3, 4 }, randn { 2, 4 } }
  end,
  layer_norm = function()
    return function(t, w, b) return lumen.layer_norm(t, { 3, 4 }, w, b, 1e-3) end,
      { randn { 2, 3, 4 }, randn { 3, 4 }, randn { 3, 4 } }
  end,
  rnn = function() -- one LSTM layer, reversed: the sequence, the last hidden and cell state all checked
    local H = 2
    return function(...)
      local y, h, c = lumen.lstm(...)
      return lumen.cat({ y, lumen.unsqueeze(h, 1), lumen.unsqueeze(c, 1) }, 1)
    end, { randn { 4, 2, 3 }, randn { 4 * H, 3 }, randn { 4 * H, H }, randn { 4 * H }, randn { 4 * H },
           randn { 2, H }, randn { 2, H }, { reverse = true } }
  end,
}

-- The ops of lumen's own table, sorted (Function ops made by users are not part of it).
local function table_ops()
  local names = {}
  for name, spec in pairs(lumen.autograd.ops) do
    if not spec.custom then names[#names + 1] = name end
  end
  table.sort(names)
  return names
end

describe("the op table", function()
  it("has a gradient check for every op", function()
    local missing = {}
    for _, name in ipairs(table_ops()) do
      if not CASES[name] then missing[#missing + 1] = name end
    end
    assert(#missing == 0, "ops without a gradient check in tests/lua/ops_spec.lua: " .. table.concat(missing, ", "))
    for name in pairs(CASES) do
      assert(lumen.autograd.ops[name], "ops_spec has a case for '" .. name .. "', which is not in the op table")
    end
  end)

  for _, name in ipairs(table_ops()) do
    if CASES[name] then
      it(name .. ": the case runs the op forward and backward, and passes gradcheck", function()
        lumen.seed(7)
        local fn, inputs, opts = CASES[name]()
        lumen.autograd.reset_counts()
        support.assert_gradcheck(fn, inputs, opts)
        assert(lumen.autograd.counts()[name] > 0, name .. ": the case never calls the op")
        assert(lumen.autograd.counts("backward")[name] > 0, name .. ": the case never runs the op's backward")
      end)
    end
  end

  it("counts calls: a Function op is custom and counted too", function()
    local cube = lumen.Function { name = "ops_spec_cube", forward = function(_, x) return x * x * x end,
                                  backward = function(ctx, g) return g end }
    assert.is_true(lumen.autograd.ops.ops_spec_cube.custom)
    lumen.autograd.reset_counts()
    cube(lumen.ones { 2 })
    cube(lumen.ones { 2 })
    assert.equal(2, lumen.autograd.counts().ops_spec_cube)
    assert.equal(4, lumen.autograd.counts().mul)
    assert.has_error(function() lumen.autograd.counts("sideways") end,
      "counts: kind must be 'forward' or 'backward', got sideways")
  end)

  it("op_of names the op that recorded a tensor", function()
    local x = lumen.randn { 3 }
    x.requires_grad = true
    local y = lumen.relu(x * 2)
    assert.equal("relu", lumen.autograd.op_of(y))
    assert.is_nil(lumen.autograd.op_of(x))
    assert.is_nil(lumen.autograd.op_of(y:detach()))
    assert.is_nil(lumen.autograd.op_of(lumen.no_grad(lumen.relu, x)))
  end)
end)
