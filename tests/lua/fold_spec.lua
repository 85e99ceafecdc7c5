-- Specs for lumen.nn.fold: BatchNorm folded into the convolution before it and Conv+BN+ReLU fused in
-- eval mode — the same logits, input gradients and weight gradients as the unfolded layers, names that
-- keep their meaning (capture, replace, stop_at), swapped backward rules that still apply, train()
-- unfolding, weights changed after folding, imported models folded at load; and the conv post-op.
local lumen = require "lumen"
local nn = lumen.nn
local support = require "support"

-- Random BatchNorm statistics, so a fold that ignored one would show.
local function randomize(bn)
  local n = bn.running_mean:numel()
  bn:set_state("running_mean", lumen.randn { n })
  bn:set_state("running_var", lumen.rand { n } + 0.5)
  bn:set_state("weight", lumen.randn { n })
  bn:set_state("bias", lumen.randn { n })
  return bn
end

-- conv1 -> bn1 -> relu1 -> conv2 (stride 2, groups 2) -> bn2 -> relu6 -> conv3 (depthwise, no bias)
-- -> bn3 -> gap -> fc: three groups, the last without an activation.
local function seq_net()
  lumen.seed(11)
  local m = nn.Sequential {
    nn.Conv2d { in_channels = 3, out_channels = 4, kernel_size = 3, padding = 1, name = "conv1" },
    randomize(nn.BatchNorm2d { num_features = 4, name = "bn1" }), nn.ReLU { name = "relu1" },
    nn.Conv2d { in_channels = 4, out_channels = 6, kernel_size = 3, stride = 2, padding = 1, groups = 2, name = "conv2" },
    randomize(nn.BatchNorm2d { num_features = 6, name = "bn2" }), nn.ReLU6 { name = "relu2" },
    nn.Conv2d { in_channels = 6, out_channels = 6, kernel_size = 3, padding = 1, groups = 6, bias = false, name = "conv3" },
    randomize(nn.BatchNorm2d { num_features = 6, name = "bn3" }),
    nn.GlobalAvgPool2d { name = "gap" }, nn.Linear { in_features = 6, out_features = 5, name = "fc" },
  }
  return m:eval()
end

-- A residual block as a Graph: stem conv -> bn -> relu; conv_a -> bn_a -> relu_a -> conv_b -> bn_b;
-- add(bn_b, relu) -> relu_out -> gap -> fc. bn_b feeds the Add (no activation to fuse); "tap" reads
-- conv_t's output beside its BatchNorm, so conv_t is not folded.
local function graph_net()
  lumen.seed(12)
  local function conv(cin, cout, name) return nn.Conv2d { in_channels = cin, out_channels = cout, kernel_size = 3, padding = 1, name = name } end
  local function bn(c, name) return randomize(nn.BatchNorm2d { num_features = c, name = name }) end
  return nn.Graph { inputs = { "x" }, outputs = { "fc" }, nodes = {
    { name = "stem", module = conv(3, 4), inputs = { "x" } },
    { name = "stem_bn", module = bn(4), inputs = { "stem" } },
    { name = "stem_relu", module = nn.ReLU {}, inputs = { "stem_bn" } },
    { name = "conv_a", module = conv(4, 4), inputs = { "stem_relu" } },
    { name = "bn_a", module = bn(4), inputs = { "conv_a" } },
    { name = "relu_a", module = nn.ReLU {}, inputs = { "bn_a" } },
    { name = "conv_b", module = conv(4, 4), inputs = { "relu_a" } },
    { name = "bn_b", module = bn(4), inputs = { "conv_b" } },
    { name = "add", op = "add", inputs = { "bn_b", "stem_relu" } },
    { name = "relu_out", module = nn.ReLU {}, inputs = { "add" } },
    { name = "conv_t", module = conv(4, 4), inputs = { "relu_out" } },
    { name = "bn_t", module = bn(4), inputs = { "conv_t" } },
    { name = "tap", op = "mul", inputs = { "bn_t", "conv_t" } },
    { name = "gap", module = nn.GlobalAvgPool2d {}, inputs = { "tap" } },
    { name = "fc", module = nn.Linear { in_features = 4, out_features = 3 }, inputs = { "gap" } },
  } }:eval()
end

-- max |a - b| relative to max |b|.
local function rel(a, b) return lumen.max_abs_diff(a, b) / math.max(b:abs():max_all(), 1e-30) end
local function assert_rel(a, b, tol, what)
  local e = rel(a, b)
  assert(e <= tol, ("%s: relative difference %g (tolerance %g)"):format(what, e, tol))
end

-- fn(model) run folded and unfolded (the same model, unfolded by hand): both results.
local function both(model, fn)
  model:fold()
  local folded = table.pack(fn(model))
  model:unfold()
  local plain = table.pack(fn(model))
  model:fold()
  return folded, plain
end

local function input_gradient(model, x, opts)
  local xg = x:detach()
  xg.requires_grad = true
  local y, cap = model:forward(xg, opts)
  local score = y:select(2, 1):sum()
  return y, lumen.grad(score, xg), cap
end

describe("lumen.nn.fold", function()
  it("eval() folds each Conv+BN and fuses the ReLU or ReLU6 that alone reads the BatchNorm", function()
    local m = seq_net()
    assert.same({ { conv = "conv1", bn = "bn1", act = "relu1" }, { conv = "conv2", bn = "bn2", act = "relu2" },
                  { conv = "conv3", bn = "bn3" } }, m:fold())
    local g = graph_net()
    assert.same({ { conv = "stem", bn = "stem_bn", act = "stem_relu" }, { conv = "conv_a", bn = "bn_a", act = "relu_a" },
                  { conv = "conv_b", bn = "bn_b" } }, g:fold())
    m:train()
    assert.same({}, m._folds or {})
  end)

  it("gives the unfolded logits and input gradients within 1e-6, running one op per group", function()
    for _, make in ipairs { seq_net, graph_net } do
      local m = make()
      local x = lumen.randn { 2, 3, 9, 9 }
      local bns = {}
      local f, p = both(m, function(model)
        lumen.autograd.reset_counts()
        local y, g = input_gradient(model, x)
        bns[#bns + 1] = lumen.autograd.counts().batch_norm
        return y, g
      end)
      assert_rel(f[1], p[1], 1e-6, "logits")
      assert_rel(f[2], p[2], 1e-6, "input gradient")
      assert.equal(#m:fold(), bns[2] - bns[1]) -- the folded pass runs only the BatchNorms it could not fold
    end
    local m = seq_net()
    lumen.autograd.reset_counts()
    lumen.no_grad(function() m:forward(lumen.randn { 1, 3, 8, 8 }) end)
    local c = lumen.autograd.counts()
    assert.same({ 3, 0, 0, 0 }, { c.conv2d, c.batch_norm, c.relu, c.relu6 })
  end)

  it("lets gradients reach the convolution's and the BatchNorm's parameters as without folding", function()
    local m = graph_net()
    local x = lumen.randn { 2, 3, 6, 6 }
    local names = { "stem.weight", "stem.bias", "stem_bn.weight", "stem_bn.bias", "conv_b.weight", "bn_b.bias" }
    local function grads(model)
      for _, p in ipairs(model:parameters()) do p.tensor:zero_grad() end
      model:forward(x):sum():backward()
      local res = {}
      for _, p in ipairs(model:parameters()) do res[p.name] = p.tensor.grad end
      return res
    end
    local f, p = both(m, grads)
    for _, n in ipairs(names) do
      assert(f[1][n], n .. ": no gradient through the folded layers")
      assert_rel(f[1][n], p[1][n], 1e-5, n)
    end
    local w = m:layer("conv_a").weight
    local gw = lumen.grad(m:forward(x):sum(), w)
    assert_rel(gw, p[1]["conv_a.weight"], 1e-5, "lumen.grad of a folded weight")
  end)

  it("keeps the meaning of names: capture, replace and stop_at give the unfolded tensors", function()
    local m = seq_net()
    local x = lumen.randn { 2, 3, 8, 8 }
    for _, name in ipairs { "conv1", "bn1", "relu1", "bn2", "relu2", "bn3" } do
      local f, p = both(m, function(model) return input_gradient(model, x, { capture = { name } }) end)
      assert_rel(f[3][name], p[3][name], 1e-6, "capture " .. name)
      assert_rel(f[2], p[2], 1e-6, "input gradient with " .. name .. " captured")
      if name == "conv1" then assert.equal(0, lumen.max_abs_diff(f[3][name], p[3][name])) end -- run unfolded
    end
    local r = lumen.randn { 2, 4, 8, 8 }
    for _, name in ipairs { "conv1", "bn1", "relu1" } do
      local f, p = both(m, function(model) return model:forward(x, { replace = { [name] = r } }) end)
      assert_rel(f[1], p[1], 1e-6, "replace " .. name)
    end
    for _, name in ipairs { "conv2", "bn2", "relu2" } do
      local f, p = both(m, function(model) return model:forward(x, { stop_at = name }) end)
      assert_rel(f[1], p[1], 1e-6, "stop_at " .. name)
    end
    local f = both(m, function(model) return model:trace(x, { capture = "all" }) end)
    assert.same({ 2, 4, 8, 8 }, f[1].captured.conv1.shape)
    lumen.autograd.reset_counts()
    m:forward(x, { capture = { "bn1" } })
    assert.equal(1, lumen.autograd.counts().relu) -- the ReLU after a captured BatchNorm is its own op
  end)

  it("keeps a ReLU its own op while a rule is swapped for it, and the whole group while LRP runs", function()
    local m = graph_net()
    local x = lumen.randn { 1, 3, 8, 8 }
    for _, method in ipairs { "guided_backprop", "deconvnet", "lrp" } do
      local f, p = both(m, function(model) return lumen.explain[method](model, x, { target = 2 }) end)
      assert_rel(f[1], p[1], 1e-5, method)
    end
    local seen = 0
    lumen.with_rules({ relu = function(ctx, g) seen = seen + 1; return ctx.default(ctx, g) end }, function()
      local xg = x:detach()
      xg.requires_grad = true
      lumen.grad(m:forward(xg):sum(), xg)
    end)
    assert.equal(3, seen) -- stem_relu, relu_a, relu_out: every ReLU of the model
  end)

  it("train() unfolds (BatchNorm learns from the batch) and eval() folds the new statistics", function()
    local m = seq_net()
    local x = lumen.randn { 4, 3, 8, 8 }
    m:train()
    lumen.autograd.reset_counts()
    m:forward(x)
    assert.equal(3, lumen.autograd.counts().batch_norm)
    m:eval()
    local f, p = both(m, function(model) return model:forward(x) end)
    assert_rel(f[1], p[1], 1e-6, "after training")
  end)

  it("follows weights changed after folding: set_state, in-place writes (through views and lumen.core too), a BatchNorm back in training", function()
    local m = graph_net()
    local x = lumen.randn { 1, 3, 6, 6 }
    local before = m:forward(x)
    m:set_state("stem.weight", lumen.randn { 4, 3, 3, 3 })
    m:layer("bn_a").running_var:copy_(lumen.rand { 4 } + 2)
    m:layer("bn_a").weight:set({ 2 }, 3.5)
    m:layer("conv_b").bias:fill_(0.25)
    local after = m:forward(x)
    assert(rel(after, before) > 1e-2, "the changes make no difference")
    local _, p = both(m, function(model) return model:forward(x) end)
    assert_rel(after, p[1], 1e-6, "changed weights")
    lumen.core.fill_(lumen.core.view(m:layer("bn_b").running_mean, { 2, 2 }), 0.75) -- a view of it
    lumen.core.flat_set(m:layer("bn_b").weight, 3, -2) -- past the methods
    local again = m:forward(x)
    assert(rel(again, after) > 1e-2, "the writes through a view and lumen.core make no difference")
    _, p = both(m, function(model) return model:forward(x) end)
    assert_rel(again, p[1], 1e-6, "weights written through a view and lumen.core")
    m:layer("bn_a"):train()
    lumen.autograd.reset_counts()
    m:forward(lumen.randn { 2, 3, 6, 6 })
    assert.equal(2, lumen.autograd.counts().batch_norm) -- bn_a, and bn_t (conv_t is read twice: never folded)
  end)

  it("follows a convolution's options changed after folding (the group keeps its options table between passes)", function()
    local m = seq_net()
    local x = lumen.randn { 1, 3, 8, 8 }
    local conv2 = m:layer("conv2")
    -- The folded model as it is (its groups, made before the change, hold the last pass's options) against the
    -- unfolded layers; then a pass under no_grad, as the next check's first pass follows one.
    local function check(what)
      local y, c = lumen.no_grad(function() return m:forward(x, { capture = { "relu2" } }) end)
      local yt, ct = m:forward(x, { capture = { "relu2" } })
      local _, p = both(m, function(model) return model:forward(x, { capture = { "relu2" } }) end)
      assert_rel(y, p[1], 1e-6, what)
      assert_rel(yt, p[1], 1e-6, what .. " (on the tape)")
      assert.same(p[2].relu2.shape, c.relu2.shape)
      assert.same(p[2].relu2.shape, ct.relu2.shape)
      lumen.no_grad(function() m:forward(x) end)
      return y, c
    end
    local _, c = check("as built")
    assert.same({ 1, 6, 4, 4 }, c.relu2.shape)
    conv2.opts.stride = { 1, 1 } -- a new value
    _, c = check("stride 1")
    assert.same({ 1, 6, 8, 8 }, c.relu2.shape)
    conv2.opts.stride[2] = 2 -- ... and one changed in place
    _, c = check("stride (1, 2)")
    assert.same({ 1, 6, 8, 4 }, c.relu2.shape)
    conv2.opts.padding = { 0, 1, 2, 1 }
    _, c = check("padding (0, 1, 2, 1)")
    assert.same({ 1, 6, 8, 4 }, c.relu2.shape)
    -- under no_grad the group checks its options once and calls the kernel with them while they hold (passes in
    -- the same mode: check's last pass and this one): a value changed in place is checked again (an error naming
    -- it), as is a weight set in its place
    lumen.no_grad(function() m:forward(x) end)
    conv2.opts.padding[3] = 1.5
    local ok, err = pcall(lumen.no_grad, function() return m:forward(x) end)
    assert.is_false(ok)
    assert.matches("conv2d: option 'padding' must be an integer", err, 1, true)
    conv2.opts.padding[3] = 2
    conv2.weight = "not a tensor"
    ok, err = pcall(lumen.no_grad, function() return m:forward(x) end)
    assert.is_false(ok)
    assert.matches("conv2's weight must be a lumen.Tensor, got string", err, 1, true)
    conv2.weight = lumen.randn { 6, 2, 3, 3 }
    check("new weights")
    -- a function set in lumen.conv2d's place is what the folded groups call, planned or not
    local conv2d, seen = lumen.conv2d, 0
    lumen.conv2d = function(...) seen = seen + 1; return conv2d(...) end
    local ok2, y = pcall(function()
      for _ = 1, 3 do lumen.no_grad(function() m:forward(x) end) end
      return lumen.no_grad(function() return m:forward(x) end)
    end)
    lumen.conv2d = conv2d
    assert(ok2, y)
    assert.equal(4 * 3, seen)
    assert_rel(y, lumen.no_grad(function() return m:forward(x) end), 0, "through the function set in its place")
  end)

  it("stays correct when a folded Sequential is rearranged", function()
    local m = seq_net()
    local x = lumen.randn { 1, 3, 8, 8 }
    m.modules[2] = nn.ReLU { name = "bn1" } -- the BatchNorm replaced by hand
    local f, p = both(m, function(model) return model:forward(x) end)
    assert_rel(f[1], p[1], 1e-6, "conv1 without its BatchNorm")
  end)

  it("folds imported models at load (MobileNet v2 ONNX: 52 groups, 35 with ReLU6)", function()
    local m = lumen.load_model("tests/fixtures/torch/mobilenet_v2.onnx.gz")
    local groups = m:fold()
    local fused = 0
    for _, g in ipairs(groups) do fused = fused + (g.act and 1 or 0) end
    assert.same({ 52, 35 }, { #groups, fused })
    local x = support.npy("tests/fixtures/torch/input.npy")
    local f, p = both(m, function(model) return model:forward(x) end)
    -- float32 rounding through 52 layers: the same size as lumen's unfolded forward against PyTorch's
    support.assert_rel_l2(f[1], p[1], 5e-6, "folded MobileNet v2")
    support.assert_rel_l2(f[1], support.npy("tests/fixtures/torch/mobilenet_v2_logits.npy"), 1e-4, "PyTorch")
  end)

  it("fuses a ReLU or ReLU6 that alone reads a convolution with no BatchNorm (as exporters leave them)", function()
    lumen.seed(13)
    local function conv(cin, cout, name, o)
      local c = { in_channels = cin, out_channels = cout, kernel_size = 3, padding = 1, name = name }
      for k, v in pairs(o or {}) do c[k] = v end
      return nn.Conv2d(c)
    end
    local seq = nn.Sequential {
      conv(3, 4, "c1"), nn.ReLU { name = "r1" }, conv(4, 4, "c2", { stride = 2, groups = 2, bias = false }),
      nn.ReLU6 { name = "r2" }, conv(4, 4, "c3"), nn.Sigmoid { name = "s3" }, nn.GlobalAvgPool2d { name = "gap" },
      nn.Linear { in_features = 4, out_features = 3, name = "fc" },
    }:eval()
    local graph = nn.Graph { inputs = { "x" }, outputs = { "fc" }, nodes = {
      { name = "c1", module = conv(3, 4), inputs = { "x" } },
      { name = "r1", module = nn.ReLU6 {}, inputs = { "c1" } },
      { name = "c2", module = conv(4, 4), inputs = { "r1" } },
      { name = "r2", module = nn.ReLU {}, inputs = { "c2" } },
      { name = "add", op = "add", inputs = { "r2", "c2" } }, -- c2 has two readers: not fused
      { name = "gap", module = nn.GlobalAvgPool2d {}, inputs = { "add" } },
      { name = "fc", module = nn.Linear { in_features = 4, out_features = 3 }, inputs = { "gap" } },
    } }:eval()
    assert.same({ { conv = "c1", act = "r1" }, { conv = "c2", act = "r2" } }, seq:fold())
    assert.same({ { conv = "c1", act = "r1" } }, graph:fold())
    local x = lumen.randn { 2, 3, 8, 8 }
    for _, m in ipairs { seq, graph } do
      local f, p = both(m, function(model) return input_gradient(model, x) end)
      assert_rel(f[1], p[1], 1e-6, "logits")
      assert_rel(f[2], p[2], 1e-6, "input gradient")
      -- names keep their meaning: c1 is the convolution's own output (the pair runs unfused then)
      f, p = both(m, function(model) return input_gradient(model, x, { capture = { "c1", "r1" } }) end)
      assert.equal(0, lumen.max_abs_diff(f[3].c1, p[3].c1))
      assert_rel(f[3].r1, p[3].r1, 1e-6, "r1 captured")
    end
    lumen.autograd.reset_counts()
    lumen.no_grad(function() seq:forward(x) end)
    local c = lumen.autograd.counts()
    assert.same({ 3, 0, 0, 1 }, { c.conv2d, c.relu or 0, c.relu6 or 0, c.sigmoid })
    -- a weight set in place of c1's after passes that planned its call: checked again, the error names it
    lumen.no_grad(function() seq:forward(x) end)
    local w1 = seq:layer("c1").weight
    seq:layer("c1").weight = "not a tensor"
    local ok, err = pcall(lumen.no_grad, function() return seq:forward(x) end)
    assert.is_false(ok)
    assert.matches("c1 (Conv2d): conv2d: weight (argument 2) must be a lumen.Tensor, got string", err, 1, true)
    seq:layer("c1").weight = w1
    local seen = 0 -- a rule swapped for relu: the ReLU runs as its own op and obeys it
    lumen.with_rules({ relu = function(ctx, g) seen = seen + 1; return ctx.default(ctx, g) end }, function()
      local xg = x:detach()
      xg.requires_grad = true
      lumen.grad(seq:forward(xg):sum(), xg)
    end)
    assert.equal(1, seen)
    local f, p = both(seq, function(model) return lumen.explain.guided_backprop(model, x, { target = 2 }) end)
    assert_rel(f[1], p[1], 1e-6, "guided backprop")
  end)

  it("fuses an imported Conv -> Relu (the exporter's BatchNorm-free form) and keeps PyTorch's numbers", function()
    local m = lumen.load_model("tests/fixtures/torch/pad_conv_opset13.onnx") -- tools/export_pad_conv.py
    local groups = m:fold()
    assert.equal(1, #groups)
    assert.is_nil(groups[1].bn)
    assert.equal("ReLU", m:layer(groups[1].act).type)
    local ref = lumen.read_safetensors("tests/fixtures/torch/pad_conv.safetensors")
    lumen.autograd.reset_counts()
    support.assert_agrees_with_fixture(m, ref, 1e-5)
    assert.equal(0, lumen.autograd.counts().relu or 0) -- the ReLU ran as the convolution's post-op
  end)

  it("saves the original weights: a checkpoint reloads to the same bytes", function()
    local m = graph_net()
    local path = os.tmpname()
    m:save(path)
    local back = lumen.load_model(path)
    os.remove(path)
    local x = lumen.randn { 1, 3, 6, 6 }
    assert.equal(0, lumen.max_abs_diff(back:forward(x), m:forward(x)))
    assert.equal(0, lumen.max_abs_diff(back:layer("bn_a").running_var, m:layer("bn_a").running_var))
  end)
end)

describe("conv2d's activation post-op", function()
  it("equals the activation after the convolution, with its gradients", function()
    lumen.seed(3)
    local x, w, b = lumen.randn { 1, 2, 5, 5 }, lumen.randn { 3, 2, 3, 3 }, lumen.randn { 3 }
    for _, act in ipairs { "relu", "relu6" } do
      local o = { padding = 1, activation = act }
      local y = lumen.conv2d(x * 4, w, b, o)
      assert.equal(0, lumen.max_abs_diff(y, lumen[act](lumen.conv2d(x * 4, w, b, { padding = 1 }))))
      support.assert_gradcheck(function(xx, ww, bb) return lumen.conv2d(xx, ww, bb, o) end, { x, w, b }, { eps = 0.01 })
    end
    assert.has_error(function() lumen.conv2d(x, w, b, { activation = "gelu" }) end,
      "conv2d: activation must be 'relu' or 'relu6' (or 'silu' or 'hardswish' where no gradient is recorded), got gelu")
  end)

  it("fuses silu and hardswish where no gradient is recorded, and refuses them on the tape", function()
    lumen.seed(4)
    local x, w, b = lumen.randn { 2, 16, 7, 7 }, lumen.randn { 16, 16, 3, 3 }, lumen.randn { 16 }
    for _, act in ipairs { "silu", "hardswish" } do
      local o = { padding = 1, activation = act }
      local want = lumen.no_grad(function() return lumen[act](lumen.conv2d(x, w, b, { padding = 1 })) end)
      assert_rel(lumen.no_grad(function() return lumen.conv2d(x, w, b, o) end), want, 1e-5, act .. " under no_grad")
      assert_rel(lumen.conv2d(x, w, b, o), want, 1e-5, act .. " with nothing needing a gradient")
      local xg = x:detach()
      xg.requires_grad = true
      assert.has_error(function() lumen.conv2d(xg, w, b, o) end, ("conv2d: activation '%s' has no backward "
        .. "through the convolution's output; fuse it under lumen.no_grad (or apply lumen.%s after the "
        .. "convolution)"):format(act, act))
    end
  end)
end)

-- conv -> bn -> silu -> depthwise conv -> hardswish -> gap -> fc: a Conv+BN+SiLU group and a Conv+HardSwish one
-- (no BatchNorm: as an exporter that folded it writes them).
local function swish_net()
  lumen.seed(13)
  return nn.Sequential {
    nn.Conv2d { in_channels = 3, out_channels = 16, kernel_size = 3, padding = 1, name = "conv1" },
    randomize(nn.BatchNorm2d { num_features = 16, name = "bn1" }), nn.SiLU { name = "silu1" },
    nn.Conv2d { in_channels = 16, out_channels = 16, kernel_size = 3, padding = 1, groups = 16, name = "dw" },
    nn.HardSwish { name = "hs" },
    nn.GlobalAvgPool2d { name = "gap" }, nn.Linear { in_features = 16, out_features = 5, name = "fc" },
  }:eval()
end

describe("lumen.nn.fold with SiLU and HardSwish", function()
  it("fuses them into the convolution in a pass that records nothing, and runs them as layers on the tape", function()
    local m = swish_net()
    assert.same({ { conv = "conv1", bn = "bn1", act = "silu1" }, { conv = "dw", act = "hs" } }, m:fold())
    local x = lumen.randn { 2, 3, 9, 9 }
    local calls = {}
    local folded, plain = both(m, function(mm)
      lumen.autograd.reset_counts()
      local y = lumen.no_grad(function() return mm:forward(x) end)
      local c = lumen.autograd.counts()
      calls[#calls + 1] = { c.silu, c.hardswish, c.batch_norm }
      return y
    end)
    assert_rel(folded[1], plain[1], 1e-5, "logits under no_grad")
    assert.same({ 0, 0, 0 }, calls[1]) -- fused: neither activation nor the BatchNorm ran as an op
    assert.same({ 1, 1, 1 }, calls[2])
    calls = {}
    folded, plain = both(m, function(mm)
      lumen.autograd.reset_counts()
      local y, g = input_gradient(mm, x)
      local c = lumen.autograd.counts()
      calls[#calls + 1] = { c.silu, c.hardswish, c.batch_norm }
      return y, g
    end)
    assert_rel(folded[1], plain[1], 1e-5, "logits on the tape")
    assert_rel(folded[2], plain[2], 1e-5, "input gradients")
    assert.same({ 1, 1, 0 }, calls[1]) -- folded BatchNorm, activations as their own ops
    assert.same({ 1, 1, 1 }, calls[2])
  end)
end)

describe("lumen.nn.fold with weight caches", function()
  it("keeps a folded convolution's scaled weights under no_grad and follows the BatchNorm and the weights", function()
    local _, have_onednn = lumen.core.conv_backend()
    if not have_onednn then
      pending("built without oneDNN: im2col reads the weights where they are, nothing to cache")
      return
    end
    local m = seq_net()
    m:fold()
    local x = lumen.randn { 1, 3, 16, 16 }
    local conv1, bn1 = m:layer("conv1"), m:layer("bn1")
    local function folded() return lumen.no_grad(function() return m:forward(x) end) end
    local function plain()
      m:unfold()
      local y = lumen.no_grad(function() return m:forward(x) end)
      m:fold()
      return y
    end
    local y = folded()
    assert.equal(0, lumen.max_abs_diff(folded(), y)) -- (a lone pass keeps nothing: the second one fills)
    local c = conv1._conv_cache
    local fills = c:fills()
    assert.is_true(fills >= 1 and c:bytes() > 0)
    assert.equal(0, lumen.max_abs_diff(folded(), y))
    assert.equal(fills, c:fills()) -- the scaled weights read from the cache
    assert_rel(y, plain(), 1e-5, "logits")
    bn1.running_var:copy_(bn1.running_var * 2) -- a new scale
    local y2 = folded()
    assert.is_true(c:fills() > fills and lumen.max_abs_diff(y2, y) > 0)
    assert_rel(y2, plain(), 1e-5, "logits after the BatchNorm changed")
    fills = c:fills()
    lumen.core.fill_(conv1.weight, 0.1) -- the weights, past their Lua methods
    local y3 = folded()
    assert.is_true(c:fills() > fills and lumen.max_abs_diff(y3, y2) > 0)
    assert_rel(y3, plain(), 1e-5, "logits after the weights changed")
  end)
end)

-- x -> conv_s -> bn_s -> relu_s (the shortcut); conv_m -> bn_m -> add(shortcut, bn_m) -> act -> gap -> fc, with
-- `extra` nodes spliced in before gap (their names may be read by the add through opts.other); opts.no_bn: the add
-- reads conv_m (an exporter's folded form).
local function residual_net(opts)
  opts = opts or {}
  lumen.seed(14)
  local function conv(cin, cout, k) return nn.Conv2d { in_channels = cin, out_channels = cout, kernel_size = k or 3, padding = (k or 3) // 2 } end
  local function bn(c) return randomize(nn.BatchNorm2d { num_features = c }) end
  local nodes = {
    { name = "conv_s", module = conv(3, 6), inputs = { "x" } },
    { name = "bn_s", module = bn(6), inputs = { "conv_s" } },
    { name = "relu_s", module = nn.ReLU {}, inputs = { "bn_s" } },
    { name = "conv_m", module = conv(6, 6, opts.k), inputs = { "relu_s" } },
    { name = "bn_m", module = bn(6), inputs = { "conv_m" } },
  }
  local m = "bn_m"
  if opts.no_bn then nodes[#nodes], m = nil, "conv_m" end
  nodes[#nodes + 1] = { name = "add", op = "add", inputs = opts.swap and { m, opts.other or "relu_s" } or { opts.other or "relu_s", m } }
  local last = "add"
  if opts.act then
    nodes[#nodes + 1] = { name = "act", module = nn[opts.act] {}, inputs = { "add" } }
    last = "act"
  end
  for _, n in ipairs(opts.extra or {}) do table.insert(nodes, n.at or #nodes + 1, n) end
  nodes[#nodes + 1] = { name = "gap", module = nn.GlobalAvgPool2d {}, inputs = { last } }
  nodes[#nodes + 1] = { name = "fc", module = nn.Linear { in_features = 6, out_features = 3 }, inputs = { "gap" } }
  return nn.Graph { inputs = { "x" }, outputs = { "fc" }, nodes = nodes }:eval()
end

-- The model's output under no_grad and the op counts of that pass.
local function counted(m, x, opts)
  lumen.autograd.reset_counts()
  local y = lumen.no_grad(function() return m:forward(x, opts) end)
  return y, lumen.autograd.counts()
end

describe("lumen.nn.fold with residual adds", function()
  it("adds the shortcut, and the activation after the add, inside the convolution in a pass that records nothing", function()
    local x = lumen.randn { 2, 3, 9, 9 }
    for _, case in ipairs { { act = "ReLU", op = "relu" }, { act = "ReLU6", op = "relu6", swap = true },
                            { act = "SiLU", op = "silu" }, { act = "HardSwish", op = "hardswish", k = 1 }, {},
                            { act = "ReLU", op = "relu", no_bn = true }, { no_bn = true, swap = true } } do
      local m = residual_net(case)
      local g = m:layer("conv_m")._fold
      assert.is_truthy(g and g.add, "conv_m's group takes the add")
      assert.equal(case.act and m:layer("act") or nil, g.ract)
      local folded, c = counted(m, x)
      m:unfold()
      local plain, cp = counted(m, x)
      m:fold()
      assert_rel(folded, plain, 1e-5, "logits with " .. (case.act or "no activation"))
      assert.same({ 0, 0, 1 }, { c.add, case.op and c[case.op] or 0, cp.add }) -- (relu_s fused too)
      assert.is_true(not case.op or cp[case.op] >= 1)
      assert.is_nil(g.plan.ko.residual) -- (set for the call only)
      -- on the tape the add and the activation run as ops, with the same gradients as unfolded
      local f, p = both(m, function(model) return input_gradient(model, x) end)
      assert_rel(f[1], folded, 1e-5, "logits on the tape")
      assert_rel(f[2], p[2], 1e-5, "input gradient")
    end
  end)

  it("leaves the add to itself where it broadcasts, where its other input comes later, or where a pass asks for names", function()
    local x = lumen.randn { 1, 3, 8, 8 }
    -- the other input (N, C, 1, 1): a mean of the shortcut, which the convolution's output cannot take as it is
    local m = residual_net { act = "ReLU", other = "pooled",
                             extra = { { at = 4, name = "pooled", module = nn.GlobalAvgPool2d { keepdims = true }, inputs = { "relu_s" } } } }
    assert.is_truthy(m:layer("conv_m")._fold.add) -- (taken at fold time: the shapes show in the pass)
    local y, c = counted(m, x)
    m:unfold()
    local plain = counted(m, x)
    m:fold()
    assert_rel(y, plain, 1e-5, "logits with a broadcasting add")
    assert.same({ 1, 1 }, { c.add, c.relu })
    m = residual_net { no_bn = true, other = "pooled", -- a convolution whose add (not taken) still runs
                       extra = { { at = 4, name = "pooled", module = nn.GlobalAvgPool2d { keepdims = true }, inputs = { "relu_s" } } } }
    assert.same({ conv = "conv_m" }, m:fold()[2])
    y, c = counted(m, x)
    m:unfold()
    plain = counted(m, x)
    m:fold()
    assert_rel(y, plain, 1e-5, "logits with a broadcasting add after a convolution alone")
    assert.equal(1, c.add)
    -- the other input made after conv_m: not a residual of conv_m's
    m = residual_net { other = "late", extra = { { name = "late", module = nn.ReLU {}, inputs = { "bn_s" } } } }
    assert.is_nil(m:layer("conv_m")._fold.add)
    -- capture, replace and stop_at see the BatchNorm's output before the add
    m = residual_net { act = "ReLU" }
    local plain_bn
    lumen.no_grad(function()
      m:unfold()
      local _, cap = m:forward(x, { capture = { "bn_m" } })
      plain_bn = cap.bn_m
      m:fold()
    end)
    local out, cap = lumen.no_grad(function() return m:forward(x, { capture = { "bn_m" } }) end)
    assert_rel(cap.bn_m, plain_bn, 1e-5, "captured bn_m")
    assert_rel(lumen.no_grad(function() return m:forward(x, { stop_at = "bn_m" }) end), plain_bn, 1e-5, "stop_at bn_m")
    assert_rel(out, (counted(m, x)), 1e-5, "logits with a capture")
  end)

  it("gives an add two groups read to the later one (a downsampling shortcut), with the unfolded logits", function()
    lumen.seed(15)
    local function bn(c) return randomize(nn.BatchNorm2d { num_features = c }) end
    local m = nn.Graph { inputs = { "x" }, outputs = { "fc" }, nodes = {
      { name = "conv_a", module = nn.Conv2d { in_channels = 3, out_channels = 8, kernel_size = 3, stride = 2, padding = 1 }, inputs = { "x" } },
      { name = "bn_a", module = bn(8), inputs = { "conv_a" } },
      { name = "conv_d", module = nn.Conv2d { in_channels = 3, out_channels = 8, kernel_size = 1, stride = 2 }, inputs = { "x" } },
      { name = "bn_d", module = bn(8), inputs = { "conv_d" } },
      { name = "add", op = "add", inputs = { "bn_a", "bn_d" } },
      { name = "relu", module = nn.ReLU {}, inputs = { "add" } },
      { name = "gap", module = nn.GlobalAvgPool2d {}, inputs = { "relu" } },
      { name = "fc", module = nn.Linear { in_features = 8, out_features = 3 }, inputs = { "gap" } },
    } }:eval()
    assert.is_nil(m:layer("conv_a")._fold.add)
    assert.equal("add", m:layer("conv_d")._fold.add.name)
    local x = lumen.randn { 2, 3, 10, 10 }
    local y, c = counted(m, x)
    m:unfold()
    local plain = counted(m, x)
    assert_rel(y, plain, 1e-5, "logits")
    assert.same({ 0, 0 }, { c.add or 0, c.relu or 0 })
  end)
end)
