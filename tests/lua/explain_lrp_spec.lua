-- Specs for lumen.explain.lrp: LRP-0 conservation and gradient x input, every rule against its closed
-- form on one linear and one conv layer, composites by name / type / first layer, BatchNorm folding.
local lumen = require "lumen"
local nn = lumen.nn
local explain = lumen.explain

local P = function(v) return math.max(v, 0) end
local N = function(v) return math.min(v, 0) end

-- The closed form of `rule` for one output j: terms = {{i =, x =, w =}, ...} are the contributions
-- x_i w_ij to z_j, b its bias, R its relevance. Adds each input's share into out[i].
local function closed_form(rule, terms, b, R, p, out)
  local function total(f, bias)
    local s = bias
    for _, t in ipairs(terms) do s = s + f(t) end
    return s
  end
  local function spread(f, den)
    for _, t in ipairs(terms) do out[t.i] = (out[t.i] or 0) + f(t) / den * R end
  end
  local xw = function(t) return t.x * t.w end
  if rule == "zero" then
    spread(xw, total(xw, b))
  elseif rule == "epsilon" then
    local z = total(xw, b)
    spread(xw, z + p.epsilon * (z >= 0 and 1 or -1))
  elseif rule == "gamma" then -- boosts the contributions that share the output's sign
    local up = total(xw, b) > 0
    local boost_x_pos = up and P or N
    local boost_x_neg = up and N or P
    local f = function(t)
      return P(t.x) * (t.w + p.gamma * boost_x_pos(t.w)) + N(t.x) * (t.w + p.gamma * boost_x_neg(t.w))
    end
    spread(f, total(f, b + p.gamma * boost_x_pos(b)))
  elseif rule == "alphabeta" then
    local fp, fn = function(t) return p.alpha * P(t.x * t.w) end, function(t) return -p.beta * N(t.x * t.w) end
    spread(fp, total(function(t) return P(t.x * t.w) end, P(b)))
    local zn = total(function(t) return N(t.x * t.w) end, N(b))
    if zn ~= 0 then spread(fn, zn) end
  elseif rule == "zplus" then
    local f = function(t) return P(t.x * t.w) end
    spread(f, total(f, 0))
  elseif rule == "zbox" then
    local f = function(t) return t.x * t.w - p.low * P(t.w) - p.high * N(t.w) end
    spread(f, total(f, 0))
  end
  return out
end

local function as_tensor(out, shape)
  local n = 1
  for _, s in ipairs(shape) do n = n * s end
  local t = {}
  for i = 1, n do t[i] = out[i] or 0 end
  return lumen.tensor(t):reshape(shape)
end

-- Relative to b's largest magnitude.
local function close(a, b, tol)
  local scale = math.max(b:abs():max_all(), 1e-30)
  return lumen.max_abs_diff(a, b) <= (tol or 1e-4) * scale, ("max diff %.3g"):format(lumen.max_abs_diff(a, b))
end

local RULES = {
  { "zero", {} }, { "epsilon", { epsilon = 0.3 } }, { "gamma", { gamma = 0.25 } },
  { "alphabeta", { alpha = 1, beta = 0 } }, { "alphabeta", { alpha = 2, beta = 1 } }, { "zplus", {} },
  { "zbox", { low = -1.5, high = 1.5 } },
}

describe("lumen.explain.lrp", function()
  before_each(function() lumen.seed(13) end)

  it("LRP-0 on a bias-free ReLU net conserves relevance and equals gradient x input", function()
    local model = nn.Sequential {
      nn.Conv2d { in_channels = 2, out_channels = 4, kernel_size = 3, padding = 1, bias = false }, nn.ReLU {},
      nn.MaxPool2d { kernel_size = 2 },
      nn.Conv2d { in_channels = 4, out_channels = 6, kernel_size = 3, padding = 1, bias = false }, nn.ReLU {},
      nn.GlobalAvgPool2d {}, nn.Linear { in_features = 6, out_features = 5, bias = false }, nn.ReLU {},
      nn.Linear { in_features = 5, out_features = 3, bias = false },
    }
    for _ = 1, 3 do
      local x = lumen.randn { 1, 2, 8, 8 }
      local R, targets, totals = explain.lrp(model, x, { rule = "zero" })
      local s = model:forward(x)
      assert.equal(lumen.argmax(s, 2):get { 1 }, targets[1])
      assert.is_true(math.abs(totals[1] - s:get { 1, targets[1] }) < 1e-6)
      assert.is_true(math.abs(R:sum_all() - totals[1]) < 1e-4 * math.max(1, math.abs(totals[1])),
        ("sum R %.6f vs f_c %.6f"):format(R:sum_all(), totals[1]))
      local g = explain.common.input_gradient(model, x, targets[1])
      assert.is_true(close(R, g * x, 1e-5))
    end
  end)

  describe("matches each rule's closed form on one layer", function()
    it("linear", function()
      local w, b = lumen.randn { 3, 5 }, lumen.randn { 3 }
      local f = function(t) return lumen.linear(t, w, b) end
      local x = lumen.randn { 1, 5 }
      for _, case in ipairs(RULES) do
        local rule, p = case[1], case[2]
        local opts = { rule = rule, target = 2 }
        for k, v in pairs(p) do opts[k] = v end
        local R = explain.lrp(f, x, opts)
        local terms = {}
        for i = 1, 5 do terms[i] = { i = i, x = x:get { 1, i }, w = w:get { 2, i } } end
        local want = as_tensor(closed_form(rule, terms, b:get { 2 }, f(x):get { 1, 2 }, p, {}), { 1, 5 })
        local ok, msg = close(R, want)
        assert(ok, rule .. ": " .. msg)
      end
    end)

    it("conv2d (padding 1)", function()
      local w, b = lumen.randn { 3, 2, 3, 3 }, lumen.randn { 3 }
      local f = function(t) return lumen.conv2d(t, w, b, { padding = 1 }):reshape { t.shape[1], 3 * 4 * 4 } end
      local x = lumen.randn { 1, 2, 4, 4 }
      local o, p0, q0 = 2, 1, 3 -- the target output: channel 2 at row 1, column 3 (at the border)
      local target = (o - 1) * 16 + (p0 - 1) * 4 + q0
      for _, case in ipairs(RULES) do
        local rule, p = case[1], case[2]
        local opts = { rule = rule, target = target }
        for k, v in pairs(p) do opts[k] = v end
        local R = explain.lrp(f, x, opts)
        local terms = {}
        for c = 1, 2 do
          for u = 1, 3 do
            for v = 1, 3 do
              local i, j = p0 + u - 2, q0 + v - 2
              if i >= 1 and i <= 4 and j >= 1 and j <= 4 then
                terms[#terms + 1] = { i = (c - 1) * 16 + (i - 1) * 4 + j, x = x:get { 1, c, i, j },
                                      w = w:get { o, c, u, v } }
              end
            end
          end
        end
        local want = as_tensor(closed_form(rule, terms, b:get { o }, f(x):get { 1, target }, p, {}), { 1, 2, 4, 4 })
        local ok, msg = close(R, want)
        assert(ok, rule .. ": " .. msg)
      end
    end)
  end)

  describe("composites", function()
    local function net()
      return nn.Sequential { nn.Linear { in_features = 4, out_features = 5, name = "fc1" }, nn.ReLU {},
                             nn.Linear { in_features = 5, out_features = 3, name = "fc2" } }
    end

    it("apply rules by layer name and to the first layer, chained through the ReLU", function()
      local model = net()
      local w1, b1 = model:layer("fc1").weight, model:layer("fc1").bias
      local w2, b2 = model:layer("fc2").weight, model:layer("fc2").bias
      local x = lumen.randn { 1, 4 }
      local pe, pb = { epsilon = 0.2 }, { low = -3, high = 3 }
      local rule = { fc2 = { rule = "epsilon", epsilon = 0.2 }, first = "zbox", default = "zero" }
      local R = explain.lrp(model, x, { target = 1, low = -3, high = 3, rule = rule })
      local h = lumen.linear(x, w1, b1):relu()
      local terms = {}
      for i = 1, 5 do terms[i] = { i = i, x = h:get { 1, i }, w = w2:get { 1, i } } end
      local Rh = closed_form("epsilon", terms, b2:get { 1 }, model:forward(x):get { 1, 1 }, pe, {})
      local out = {}
      for j = 1, 5 do
        local t1 = {}
        for i = 1, 4 do t1[i] = { i = i, x = x:get { 1, i }, w = w1:get { j, i } } end
        closed_form("zbox", t1, b1:get { j }, Rh[j] or 0, pb, out)
      end
      local ok, msg = close(R, as_tensor(out, { 1, 4 }))
      assert(ok, msg)
    end)

    it("apply rules by layer type, names first", function()
      local model = net()
      local x = lumen.randn { 1, 4 }
      local by_type = explain.lrp(model, x, { rule = { Linear = "zplus" } })
      local by_name = explain.lrp(model, x, { rule = { fc1 = "zplus", fc2 = "zplus" } })
      assert.is_true(lumen.max_abs_diff(by_type, by_name) == 0)
      local mixed = explain.lrp(model, x, { rule = { Linear = "zplus", fc2 = "zero" } })
      assert.is_true(lumen.max_abs_diff(mixed, by_name) > 1e-4)
      assert.is_true(lumen.max_abs_diff(mixed, explain.lrp(model, x, { rule = { fc1 = "zplus", fc2 = "zero" } })) == 0)
    end)

    -- pad -> conv1 -> relu -> conv2 -> relu -> GAP (1x1) -> 1x1 conv "head" -> flatten: the MobileNet layout,
    -- where the first conv does not read the input and the classifier is a convolution
    local function padded()
      lumen.seed(21)
      return nn.Graph { inputs = { "x" }, outputs = { "flat" }, nodes = {
        { name = "pad", op = "pad", type = "Pad", args = { { 1, 1, 1, 1 } }, inputs = { "x" } },
        { name = "conv1", module = nn.Conv2d { in_channels = 2, out_channels = 4, kernel_size = 3 }, inputs = { "pad" } },
        { name = "r1", module = nn.ReLU {}, inputs = { "conv1" } },
        { name = "conv2", module = nn.Conv2d { in_channels = 4, out_channels = 4, kernel_size = 3, padding = 1 },
          inputs = { "r1" } },
        { name = "r2", module = nn.ReLU {}, inputs = { "conv2" } },
        { name = "gap", module = nn.GlobalAvgPool2d { keepdims = true }, inputs = { "r2" } },
        { name = "head", module = nn.Conv2d { in_channels = 4, out_channels = 3, kernel_size = 1 }, inputs = { "gap" } },
        { name = "flat", module = nn.Flatten {}, inputs = { "head" } },
      } }
    end

    it("attach to roles: the first layer with weights behind a Pad, a 1x1 convolution classifier", function()
      local model = padded()
      local x = lumen.randn { 1, 2, 5, 5 }
      local composite = explain.lrp(model, x, { target = 2, rule = { first = "zbox", dense = "epsilon", Conv2d = "gamma" } })
      local by_name = explain.lrp(model, x, { target = 2, rule = { conv1 = "zbox", head = "epsilon", conv2 = "gamma" } })
      assert.equal(0, lumen.max_abs_diff(composite, by_name))
      local gamma = explain.lrp(model, x, { target = 2, rule = "gamma" })
      assert.is_true(lumen.max_abs_diff(composite, gamma) > 1e-4, "the composite is not plain gamma")
      local classifier = explain.lrp(model, x, { target = 2, rule = { classifier = "epsilon", default = "gamma" } })
      assert.equal(0, lumen.max_abs_diff(classifier, explain.lrp(model, x, { target = 2,
        rule = { head = "epsilon", default = "gamma" } })))
    end)

    it("refuse a key that matches no layer, and rules or parameters they do not know, before the backward", function()
      local model = padded()
      local x = lumen.randn { 1, 2, 5, 5 }
      assert.has_error(function() explain.lrp(model, x, { rule = { Linear = "epsilon" } }) end,
        "lrp: rule key 'Linear' matches no layer with weights (keys: a layer name such as 'conv1', a role: first,"
        .. " classifier, dense, a type: Conv2d, or default)")
      assert.has_error(function() explain.lrp(model, x, { rule = { r1 = "zero" } }) end)
      assert.has_error(function() explain.lrp(model, x, { rule = { conv1 = "magic" } }) end,
        "lrp: unknown rule 'magic' for 'conv1' (zero, epsilon, gamma, alphabeta, zplus, zbox)")
      assert.has_error(function() explain.lrp(model, x, { rule = { conv1 = { rule = "gamma", gama = 1 } } }) end,
        "lrp: rule for 'conv1' has an unknown parameter 'gama' (epsilon, gamma, alpha, beta, low, high)")
      assert.has_error(function() explain.lrp(model, x, { rule = "alphabeta", alpha = 2, beta = 0 }) end,
        "lrp: alphabeta for 'default' needs alpha - beta = 1 with both >= 0 (conservation), got alpha = 2, beta = 0")
      local f = function(t) return lumen.linear(t, lumen.ones { 3, 4 }) end
      assert.has_error(function() explain.lrp(f, lumen.randn { 1, 4 }, { rule = { conv2d = "zero" } }) end,
        "lrp: rule key 'conv2d' matches no op of the function (first, linear, conv1d, conv2d)")
    end)

    -- the ONNX MobileNet v1 and cat.png, or nil and why not
    local function mobilenet()
      local path, img = "../shared/data/models/mobilenet_v1_0.5_160_float.onnx", "../shared/data/images/cat.png"
      if not (lumen.exists(path) and lumen.exists(img)) then return nil, path .. " or " .. img .. " is absent (../shared/data)" end
      local model = assert(lumen.load_model(path))
      return model, lumen.image.preprocess(assert(lumen.image.load(img)), { size = { 160, 160 }, scale = { -1, 1 } })
    end

    it("find the ONNX MobileNet v1's first conv (its Pad merged in) and its 1x1-convolution classifier", function()
      local model, x = mobilenet()
      if not model then return pending(x) end
      local roles = model:roles(lumen.no_grad(model.trace, model, x))
      assert.same({ "/1/Conv_output_0" }, roles.first)
      assert.same({ "/69/Conv_output_0" }, roles.classifier)
      assert.equal("Conv2d", model:layers()[1].type) -- the file's Pad is its padding now (lumen.onnx)
      assert.same({ 0, 0, 1, 1 }, model:layers()[1].module.opts.padding)
    end)

    it("on the ONNX MobileNet v1 are no longer plain gamma (LUMEN_SLOW_TESTS=1)", function()
      if os.getenv("LUMEN_SLOW_TESTS") ~= "1" then
        return pending("three LRP passes at 160x160; set LUMEN_SLOW_TESTS=1 (the Pad graph above checks the same)")
      end
      local model, x = mobilenet()
      if not model then return pending(x) end
      local composite = explain.lrp(model, x, { rule = { first = "zbox", dense = "epsilon", Conv2d = "gamma" } })
      local by_name = explain.lrp(model, x, { rule = { ["/1/Conv_output_0"] = "zbox", ["/69/Conv_output_0"] = "epsilon",
                                                       Conv2d = "gamma" } })
      assert.equal(0, lumen.max_abs_diff(composite, by_name))
      assert.is_true(lumen.max_abs_diff(composite, explain.lrp(model, x, { rule = "gamma" })) > 0)
  end)

    it("rejects an unknown rule", function()
      assert.has_error(function() explain.lrp(net(), lumen.randn { 1, 4 }, { rule = "magic" }) end)
    end)
  end)

  it("folds a BatchNorm into the convolution before it, for every rule", function()
    local conv = nn.Conv2d { in_channels = 2, out_channels = 3, kernel_size = 3, padding = 1 }
    local bn = nn.BatchNorm2d { num_features = 3 }
    bn.running_mean:copy_(lumen.randn { 3 })
    bn.running_var:copy_(lumen.rand { 3 } + 0.5)
    bn.weight:copy_(lumen.tensor { 1.5, -0.7, 0.4 })
    bn.bias:copy_(lumen.randn { 3 })
    local fc = nn.Linear { in_features = 3 * 16, out_features = 4 }
    local with_bn = nn.Sequential { conv, bn, nn.ReLU {}, nn.Flatten {}, fc }
    with_bn:eval()
    local s = bn.weight / (bn.running_var + 1e-5):sqrt()
    local folded = nn.Conv2d { in_channels = 2, out_channels = 3, kernel_size = 3, padding = 1 }
    folded.weight:copy_(conv.weight * s:reshape { 3, 1, 1, 1 })
    folded.bias:copy_((conv.bias - bn.running_mean) * s + bn.bias)
    local plain = nn.Sequential { folded, nn.ReLU {}, nn.Flatten {}, fc }
    local x = lumen.randn { 1, 2, 4, 4 }
    assert.is_true(close(with_bn:forward(x), plain:forward(x), 1e-5))
    for _, case in ipairs(RULES) do
      local opts = { rule = case[1], target = 3 }
      for k, v in pairs(case[2]) do opts[k] = v end
      local ok, msg = close(explain.lrp(with_bn, x, opts), explain.lrp(plain, x, opts), 1e-4)
      assert(ok, case[1] .. ": " .. msg)
    end
  end)

  it("LRP-0 equals gradient x input on the Fashion CNN architecture (biases, folded BatchNorm, pools, GAP)", function()
    local model = lumen.models.fashion_cnn {}
    for _, l in ipairs(model:layers()) do
      if l.type == "BatchNorm2d" then
        local c = l.module.running_mean:numel()
        l.module.running_mean:copy_(lumen.randn { c } * 0.1)
        l.module.running_var:copy_(lumen.rand { c } + 0.5)
        l.module.weight:copy_(lumen.randn { c })
      end
    end
    model:eval()
    local x = lumen.rand { 1, 1, 28, 28 }
    local R, targets = explain.lrp(model, x, { rule = "zero" })
    local g = explain.common.input_gradient(model, x, targets[1])
    local ok, msg = close(R, g * x, 1e-4)
    assert(ok, msg)
  end)

  it("explains the score before a final softmax", function()
    local model = nn.Sequential { nn.Linear { in_features = 3, out_features = 4, bias = false }, nn.Softmax {} }
    local x = lumen.randn { 1, 3 }
    local R, targets, totals = explain.lrp(model, x, { rule = "zero" })
    local logits = model:forward(x, { logits = true })
    assert.is_true(math.abs(totals[1] - logits:get { 1, targets[1] }) < 1e-6)
    assert.is_true(math.abs(R:sum_all() - totals[1]) < 1e-5)
  end)
end)
