-- Specs for lumen.nn: modules, Sequential and Graph (capture, logits, errors, layers, parameters).
local lumen = require "lumen"
local nn = lumen.nn

local function close(a, b, tol)
  return lumen.max_abs_diff(a, b) <= (tol or 1e-5)
end

describe("lumen.nn", function()
  before_each(function() lumen.seed(7) end)

  describe("Module", function()
    it("initialises conv and linear weights U(-1/sqrt(fan_in), 1/sqrt(fan_in)) from the seeded RNG", function()
      local c = nn.Conv2d { in_channels = 8, out_channels = 16, kernel_size = 3 }
      local b = 1 / math.sqrt(8 * 9)
      assert.is_true(c.weight:max_all() <= b and c.weight:min_all() >= -b)
      assert.is_true(c.weight:max_all() > 0.95 * b and c.weight:min_all() < -0.95 * b)
      assert.is_true(math.abs(c.weight:mean_all()) < 0.1 * b)
      assert.is_true(c.bias:max_all() <= b and c.bias:min_all() >= -b)
      lumen.seed(7)
      local c2 = nn.Conv2d { in_channels = 8, out_channels = 16, kernel_size = 3 }
      assert.is_true(close(c.weight, c2.weight, 0))
      local c3 = nn.Conv2d { in_channels = 8, out_channels = 16, kernel_size = 3 }
      assert.is_false(close(c.weight, c3.weight, 1e-3))
    end)

    it("lists parameters with trainable flags and config without tensors", function()
      local e = nn.Embedding { num_embeddings = 5, embedding_dim = 3, trainable = false, name = "emb" }
      local ps = e:parameters()
      assert.equal(1, #ps)
      assert.equal("emb.weight", ps[1].name)
      assert.is_false(ps[1].trainable)
      assert.is_false(e.weight.requires_grad)
      local l = nn.Linear { in_features = 3, out_features = 2, bias = false }
      assert.equal(1, #l:parameters())
      assert.is_true(l.weight.requires_grad)
      assert.same({ in_features = 3, out_features = 2, bias = false }, l:config())
      local w = lumen.randn { 5, 3 }
      local e2 = nn.Embedding { num_embeddings = 5, embedding_dim = 3, weight = w }
      assert.same({ num_embeddings = 5, embedding_dim = 3, trainable = true }, e2:config())
      assert.has_error(function() nn.Embedding { num_embeddings = 4, embedding_dim = 3, weight = w } end)
    end)

    it("rejects bad options naming them", function()
      assert.has_error(function() nn.Conv2d { in_channels = 3, out_channels = 4 } end,
        "Conv2d: kernel_size must be an integer or a pair of integers, got nil")
      assert.has_error(function() nn.Linear { in_features = 0, out_features = 2 } end)
      assert.has_error(function() nn.Conv1d { in_channels = 3, out_channels = 4, kernel_size = 3, activation = "foo" } end)
    end)
  end)

  describe("layers", function()
    it("Linear computes x W^T + b with the fused activation", function()
      local l = nn.Linear { in_features = 4, out_features = 3, activation = "relu" }
      local x = lumen.randn { 2, 4 }
      local ref = lumen.relu(lumen.matmul(x, lumen.transpose(l.weight, 1, 2)) + l.bias)
      assert.is_true(close(l:forward(x), ref))
      assert.is_true(l:forward(x):min_all() >= 0)
    end)

    it("Conv1d with channels_last is the channels-first conv on transposed data", function()
      local a = nn.Conv1d { in_channels = 6, out_channels = 5, kernel_size = 3, channels_last = true }
      local b = nn.Conv1d { in_channels = 6, out_channels = 5, kernel_size = 3 }
      b.weight, b.bias = a.weight, a.bias
      local x = lumen.randn { 2, 10, 6 } -- (N, L, C)
      local ya = a:forward(x)
      assert.same({ 2, 8, 5 }, ya.shape)
      assert.is_true(close(ya, lumen.transpose(b:forward(lumen.transpose(x, 2, 3)), 2, 3)))
    end)

    it("MaxPool1d and GlobalMaxPool1d honour channels_last", function()
      local x = lumen.randn { 2, 10, 3 }
      local p = nn.MaxPool1d { kernel_size = 5, channels_last = true }:forward(x)
      assert.same({ 2, 2, 3 }, p.shape)
      local g = nn.GlobalMaxPool1d { channels_last = true }:forward(x)
      assert.same({ 2, 3 }, g.shape)
      assert.is_true(close(g, (lumen.max(p, 2))))
    end)

    it("Embedding picks rows by 1-based id", function()
      local e = nn.Embedding { num_embeddings = 4, embedding_dim = 2, weight = lumen.tensor { { 1, 2 }, { 3, 4 }, { 5, 6 }, { 7, 8 } } }
      local y = e:forward(lumen.tensor({ { 4, 1 } }, "int64"))
      assert.same({ { { 7, 8 }, { 1, 2 } } }, y:totable())
    end)

    it("BatchNorm2d uses batch statistics while training and running ones in eval", function()
      local bn = nn.BatchNorm2d { num_features = 3, momentum = 0.5 }
      local x = lumen.randn { 4, 3, 5, 5 } * 2 + 1
      local y = bn:forward(x)
      assert.is_true(lumen.mean(y, { 1, 3, 4 }):abs():max_all() < 1e-4)
      assert.is_true(math.abs(lumen.var(y, { 1, 3, 4 }, false):mean_all() - 1) < 1e-2)
      assert.is_true(math.abs(bn.running_mean:mean_all() - 0.5) < 0.3) -- half way from 0 to about 1
      bn:eval()
      local ye = bn:forward(x)
      local rm, rv = bn.running_mean:view { 1, 3, 1, 1 }, bn.running_var:view { 1, 3, 1, 1 }
      assert.is_true(close(ye, (x - rm) / lumen.sqrt(rv + 1e-5), 1e-4))
      assert.equal(2, #bn:parameters())
      assert.equal(4, #bn:state())
    end)

    it("Dropout drops and rescales while training and is the identity in eval", function()
      local d = nn.Dropout { p = 0.25 }
      local x = lumen.ones { 1000 }
      local y = d:forward(x)
      local zeros = y:eq(0):sum_all()
      assert.is_true(zeros > 150 and zeros < 350)
      assert.is_true(math.abs(y:max_all() - 1 / 0.75) < 1e-6)
      d:eval()
      assert.is_true(close(d:forward(x), x, 0))
    end)

    it("MaxUnpool2d puts the maxima back where its pool found them", function()
      local pool = nn.MaxPool2d { kernel_size = 2, name = "pool" }
      local m = nn.Sequential { pool, nn.MaxUnpool2d { pool = "pool" } }
      local x = lumen.rand { 1, 2, 4, 4 } + 0.5
      local y = m:forward(x)
      assert.same({ 1, 2, 4, 4 }, y.shape)
      -- every nonzero of y equals x there, and each 2x2 window keeps exactly its maximum
      assert.is_true(close(y * y:ne(0), x * y:ne(0), 0))
      assert.equal(8, y:ne(0):sum_all())
      assert.is_true(close((lumen.max_pool2d(y, 2)), (lumen.max_pool2d(x, 2))))
    end)

    it("Flatten, GlobalAvgPool2d and the activations have the expected values", function()
      local x = lumen.randn { 2, 3, 4, 5 }
      assert.same({ 2, 60 }, nn.Flatten {}:forward(x).shape)
      assert.is_true(close(nn.GlobalAvgPool2d {}:forward(x), lumen.mean(x, { 3, 4 })))
      local v = lumen.tensor { -2, -0.5, 0.5, 8 }
      assert.same({ 0, 0, 0.5, 8 }, nn.ReLU {}:forward(v):totable())
      assert.same({ 0, 0, 0.5, 6 }, nn.ReLU6 {}:forward(v):totable())
      assert.same({ -1, -0.5, 0.5, 1 }, nn.Clip { min = -1, max = 1 }:forward(v):totable())
      assert.is_true(close(nn.LeakyReLU { slope = 0.1 }:forward(v), lumen.tensor { -0.2, -0.05, 0.5, 8 }))
      assert.is_true(close(nn.Softmax {}:forward(v):sum(1), lumen.tensor(1)))
      assert.is_true(close(nn.LogSoftmax {}:forward(v):exp(), nn.Softmax {}:forward(v)))
    end)

    it("passes a finite-difference gradient check through a small network", function()
      local m = nn.Sequential {
        nn.Conv1d { in_channels = 3, out_channels = 4, kernel_size = 3, activation = "tanh", channels_last = true },
        nn.GlobalMaxPool1d { channels_last = true },
        nn.Linear { in_features = 4, out_features = 2 },
      }
      local ok, msg = lumen.gradcheck(function(x, w) m.modules[1].weight = w; return m:forward(x) end,
        { lumen.randn { 2, 6, 3 }, m.modules[1].weight })
      assert(ok, msg)
    end)
  end)

  describe("Sequential", function()
    local function net()
      return nn.Sequential {
        nn.Conv2d { in_channels = 1, out_channels = 2, kernel_size = 3, padding = 1 },
        nn.ReLU {},
        nn.GlobalAvgPool2d {},
        nn.Linear { in_features = 2, out_features = 3 },
        nn.Softmax {},
      }
    end

    it("under no_grad hands back each layer's output once the next layer of lumen's own has read it", function()
      local kept = {}
      local Keep = nn.Module.class("Keep")
      function Keep:forward(t) kept.t = t; return t * 1 end -- a layer of the user's own: may keep what it reads
      local conv = function(i) return nn.Conv2d { in_channels = i, out_channels = 4, kernel_size = 3, padding = 1 } end
      local s = nn.Sequential { conv(2), nn.ReLU {}, nn.Dropout {}, conv(4), Keep {}, nn.ReLU {}, conv(4), nn.Flatten {} }
      s:eval()
      local x = lumen.randn { 1, 2, 16, 16 }
      local plane = 4 * 16 * 16 * 4
      local collect = function()
        collectgarbage(); collectgarbage()
        collectgarbage("stop")
        return lumen.core.live_bytes()
      end
      local before = collect()
      local want = lumen.no_grad(function() return s:forward(x, { capture = { "keep_1" } }) end)
      local all = lumen.core.live_bytes() - before
      collectgarbage("restart")
      before = collect()
      local y = lumen.no_grad(function() return s:forward(x) end)
      local grew = lumen.core.live_bytes() - before
      collectgarbage("restart")
      -- three convolutions (the first with its ReLU fused), Keep's output, the ReLU after it (Flatten: a view)
      assert.is_true(all >= 5 * plane, all)
      assert.is_true(grew <= 3 * plane + 1024, grew) -- what Keep read and made, and the output stay
      assert.is_true(close(y, want))
      assert.is_false(kept.t:is_freed())
      assert.is_false(x:is_freed())
    end)

    it("names layers like Keras and records output shapes", function()
      local m = net()
      m:forward(lumen.randn { 2, 1, 6, 6 })
      local ls = m:layers()
      local names = {}
      for i, l in ipairs(ls) do names[i] = l.name end
      assert.same({ "conv2d_1", "re_lu_1", "global_average_pooling2d_1", "dense_1", "softmax_1" }, names)
      assert.same({ 2, 2, 6, 6 }, ls[1].shape)
      assert.same({ 2, 3 }, ls[5].shape)
      assert.equal("Linear", ls[4].type)
      assert.equal(m.modules[4], m:layer("dense_1"))
      assert.has_error(function() nn.Sequential { nn.ReLU { name = "a" }, nn.ReLU { name = "a" } } end)
    end)

    it("captures layers and returns logits before a final softmax", function()
      local m = net()
      local x = lumen.randn { 2, 1, 6, 6 }
      local p, cap = m:forward(x, { capture = { "dense_1", "re_lu_1" } })
      assert.is_true(close(p, lumen.softmax(cap.dense_1, -1)))
      assert.same({ 2, 2, 6, 6 }, cap.re_lu_1.shape)
      local z = m:forward(x, { logits = true })
      assert.is_true(close(z, cap.dense_1))
    end)

    it("stops after the layer named by stop_at; later layers never run", function()
      local m = net()
      local x = lumen.randn { 2, 1, 6, 6 }
      local _, cap = m:forward(x, { capture = { "re_lu_1" } })
      local ran = false
      m:add { name = "spy", type = "Spy", forward = function() ran = true end }
      local y = m:forward(x, { stop_at = "re_lu_1" })
      assert.is_true(close(y, cap.re_lu_1))
      assert.is_false(ran)
      assert.has_error(function() m:forward(x, { stop_at = "relu1" }) end)
    end)

    it("prefixes errors with the failing layer and suggests close names", function()
      local m = net()
      local ok, err = pcall(m.forward, m, lumen.randn { 2, 3, 6, 6 })
      assert.is_false(ok)
      assert.matches("^conv2d_1 %(Conv2d%): ", err)
      ok, err = pcall(m.forward, m, lumen.randn { 2, 1, 6, 6 }, { capture = { "dense1" } })
      assert.is_false(ok)
      assert.matches("no layer named 'dense1' %(did you mean dense_1%?%)", err)
    end)

    it("propagates train/eval and nests containers with prefixed parameter names", function()
      local inner = nn.Sequential { nn.Linear { in_features = 2, out_features = 2, name = "fc" }, nn.Dropout {},
                                    name = "block" }
      local m = nn.Sequential { inner, nn.Linear { in_features = 2, out_features = 1, name = "out" } }
      local names = {}
      for _, p in ipairs(m:parameters()) do names[#names + 1] = p.name end
      assert.same({ "block.fc.weight", "block.fc.bias", "out.weight", "out.bias" }, names)
      m:eval()
      assert.is_false(inner.modules[2].training)
      m:train()
      assert.is_true(inner.modules[2].training)
      local _, cap = m:forward(lumen.randn { 3, 2 }, { capture = { "fc" } })
      assert.same({ 3, 2 }, cap.fc.shape)
      assert.equal(inner.modules[1], m:layer("fc"))
    end)
  end)

  describe("Graph", function()
    local function residual()
      return nn.Graph {
        inputs = { "x" }, outputs = { "probs" },
        nodes = { -- deliberately out of order
          { name = "probs", module = nn.Softmax {}, inputs = { "sum" } },
          { name = "sum", op = "add", type = "Add", inputs = { "fc1", "x" } },
          { name = "fc1", module = nn.Linear { in_features = 3, out_features = 3 }, inputs = { "x" } },
        },
      }
    end

    it("sorts nodes and computes residual connections", function()
      local g = residual()
      local order = {}
      for i, l in ipairs(g:layers()) do order[i] = l.name .. ":" .. l.type end
      assert.same({ "fc1:Linear", "sum:Add", "probs:Softmax" }, order)
      local x = lumen.randn { 2, 3 }
      local y, cap = g:forward(x, { capture = { "sum", "x" } })
      local fc = g:layer("fc1")
      assert.is_true(close(cap.sum, fc:forward(x) + x))
      assert.is_true(close(y, lumen.softmax(cap.sum, -1)))
      assert.is_true(close(g:forward(x, { logits = true }), cap.sum))
      assert.equal(x, cap.x)
      assert.is_true(close(g:forward(x, { stop_at = "fc1" }), fc:forward(x)))
    end)

    it("drops intermediate tensors after their last use unless captured", function()
      local seen = setmetatable({}, { __mode = "k" })
      local g = nn.Graph {
        inputs = { "x" }, outputs = { "out" },
        nodes = {
          { name = "a", fn = function(x) local t = x * 2; seen[t] = "a"; return t end, inputs = { "x" } },
          { name = "b", fn = function(a) local t = a + 1; seen[t] = "b"; return t end, inputs = { "a" } },
          { name = "out", fn = function(b) return b * 3 end, inputs = { "b" } },
        },
      }
      local keep = {}
      lumen.no_grad(function()
        keep.y = g:forward(lumen.ones { 4 })
        keep.y2, keep.cap = g:forward(lumen.ones { 4 }, { capture = { "a" } })
      end)
      collectgarbage(); collectgarbage()
      local left = {}
      for _, v in pairs(seen) do left[#left + 1] = v end
      assert.same({ "a" }, left) -- only the captured one survives
      assert.same({ 9, 9, 9, 9 }, keep.y:totable())
    end)

    -- Live tensor bytes a pass leaves with the collector stopped (nothing goes back but what the pass hands back).
    local function left_by(fn)
      collectgarbage(); collectgarbage()
      collectgarbage("stop")
      local before = lumen.core.live_bytes()
      local ok, y = pcall(fn)
      local grew = lumen.core.live_bytes() - before
      collectgarbage("restart")
      assert(ok, y)
      return grew, y
    end

    it("under no_grad hands back what its own layers made once read, never what a reader may keep", function()
      local kept = {}
      local g = nn.Graph { inputs = { "x" }, outputs = { "out" }, nodes = {
        { name = "c1", module = nn.Conv2d { in_channels = 2, out_channels = 4, kernel_size = 3, padding = 1 }, inputs = { "x" } },
        { name = "r1", module = nn.ReLU {}, inputs = { "c1" } },
        { name = "d", module = nn.Dropout { p = 0.5 }, inputs = { "r1" } }, -- in eval: r1 handed on as it is
        { name = "c2", module = nn.Conv2d { in_channels = 4, out_channels = 4, kernel_size = 3, padding = 1 }, inputs = { "d" } },
        { name = "sum", op = "add", inputs = { "c2", "r1" } }, -- r1 read again after the pass-through
        { name = "peek", fn = function(t) kept.t = t; return t * 1 end, inputs = { "sum" } }, -- may keep what it reads
        { name = "out", module = nn.GlobalAvgPool2d {}, inputs = { "peek" } },
      } }
      g:eval()
      local x = lumen.randn { 1, 2, 32, 32 }
      local plane = 4 * 32 * 32 * 4 -- bytes of one (1, 4, 32, 32) tensor
      local all, want = left_by(function() return lumen.no_grad(function() return g:forward(x, { capture = { "out" } }) end) end)
      -- a capturing pass hands nothing back: c1 (its ReLU fused: lumen.nn.fold), c2, sum, peek's output
      assert.is_true(all >= 4 * plane, all)
      local grew, y = left_by(function() return lumen.no_grad(function() return g:forward(x) end) end)
      assert.is_true(close(y, want))
      assert.is_true(grew <= 2 * plane + 1024, grew) -- sum (kept by peek) and peek's output stay; c1, c2 went back
      assert.is_false(kept.t:is_freed())
      assert.is_false(x:is_freed())
      assert.is_true(close(kept.t, lumen.relu(g:layer("c1"):forward(x)) + g:layer("c2"):forward(lumen.relu(g:layer("c1"):forward(x)))))
      local taped = left_by(function() return g:forward(x) end) -- on the tape: nothing goes back
      assert.is_true(taped >= 4 * plane, taped)
    end)

    it("hands back what an op node read only while the node calls lumen's own op", function()
      local kept, add = {}, lumen.add
      local function graph()
        return nn.Graph { inputs = { "x" }, outputs = { "out" }, nodes = {
          { name = "c", module = nn.Conv2d { in_channels = 2, out_channels = 4, kernel_size = 3, padding = 1 }, inputs = { "x" } },
          { name = "s", op = "add", inputs = { "c", "c" } },
          { name = "out", module = nn.GlobalAvgPool2d {}, inputs = { "s" } },
        } }
      end
      lumen.add = function(a, b) kept.a = a; return add(a, b) end -- set in lumen's place: may keep what it reads
      local ok, g = pcall(graph)
      lumen.add = add
      assert(ok, g)
      local x = lumen.randn { 1, 2, 8, 8 }
      local y = lumen.no_grad(function() return g:forward(x) end)
      assert.is_false(kept.a:is_freed())
      assert.is_true(close(y, g:layer("out"):forward(kept.a * 2)))
      local plane = 4 * 8 * 8 * 4
      local mine = graph()
      local grew = left_by(function() return lumen.no_grad(function() return mine:forward(x) end) end)
      assert.is_true(grew < plane, grew) -- with lumen's own add, c and s went back
    end)

    -- a plain pass under no_grad runs its nodes under one pcall (graph.lua, run_frees) instead of one per node
    it("names the failing node under no_grad as on the tape, nested too, and keeps logits, shapes and extras", function()
      local inner = nn.Graph { inputs = { "a" }, outputs = { "bad" }, name = "inner", nodes = {
        { name = "bad", fn = function() error("boom") end, inputs = { "a" } } } }
      local g = nn.Graph { inputs = { "x" }, outputs = { "out" }, nodes = {
        { name = "f", fn = function(a) return a * 2 end, inputs = { "x" } },
        { module = inner, inputs = { "f" } },
        { name = "out", op = "add", inputs = { "inner", "x" } } } }
      for _, pass in ipairs { function(fn) return fn() end, lumen.no_grad } do
        local ok, err = pcall(pass, function() return g:forward(lumen.ones { 2 }) end)
        assert.is_false(ok)
        assert.equal("inner (Graph): bad (Function): boom", err)
      end
      local Extra = nn.Module.class("GraphExtraOut", { prefix = "extra" })
      Extra.extras = { "attention" }
      function Extra:forward(x) return x * 2, { attention = x:sum(2, true) } end
      local c = nn.Graph { inputs = { "x" }, outputs = { "p" }, nodes = {
        { name = "lin", module = nn.Linear { in_features = 2, out_features = 3 }, inputs = { "x" } },
        { name = "e", module = Extra {}, inputs = { "lin" } },
        { name = "p", module = nn.Softmax {}, inputs = { "e" } } } }
      local x = lumen.randn { 4, 2 }
      local function shapes()
        local res = {}
        for _, l in ipairs(c:layers()) do res[l.name] = l.shape end
        return res
      end
      local logits = lumen.no_grad(function() return c:forward(x, { logits = true }) end)
      assert.is_true(close(logits, c:layer("lin"):forward(x) * 2))
      assert.same({ lin = { 4, 3 }, e = { 4, 3 }, ["e:attention"] = { 4, 1 } }, shapes()) -- the Softmax never ran
      lumen.no_grad(function() return c:forward(x) end)
      assert.same({ lin = { 4, 3 }, e = { 4, 3 }, ["e:attention"] = { 4, 1 }, p = { 4, 3 } }, shapes())
      local ok, err = pcall(lumen.no_grad, function() return c:forward(lumen.randn { 1, 5 }) end)
      assert.is_false(ok)
      assert.matches("^lin %(Linear%): ", err)
    end)

    it("takes several inputs by name or position", function()
      local g = nn.Graph {
        inputs = { "a", "b" }, outputs = { "d" },
        nodes = { { name = "d", fn = function(a, b) return a - b end, type = "Sub", inputs = { "a", "b" } } },
      }
      local a, b = lumen.tensor { 5, 7 }, lumen.tensor { 1, 2 }
      assert.same({ 4, 5 }, g:forward({ a = a, b = b }):totable())
      assert.same({ 4, 5 }, g:forward({ a, b }):totable())
      assert.has_error(function() g:forward(a) end)
    end)

    it("nests a graph as a node without mixing up their inputs", function()
      local inner = nn.Graph { inputs = { "u" }, outputs = { "v" }, name = "inner",
                               nodes = { { name = "v", op = "mul", args = { 3 }, inputs = { "u" } } } }
      local g = nn.Graph { inputs = { "x" }, outputs = { "z" }, nodes = {
        { name = "twice", op = "add", inputs = { "x", "x" } },
        { module = inner, inputs = { "twice" } },
        { name = "z", op = "sub", inputs = { "inner", "x" } },
      } }
      assert.same({ "u" }, inner.inputs)
      local y, cap = g:forward(lumen.tensor { 1, 2 }, { capture = { "v" } })
      assert.same({ 5, 10 }, y:totable())
      assert.same({ 6, 12 }, cap.v:totable())
      assert.equal(inner, g:layer("inner"))
    end)

    it("keeps outputs that later nodes read, feeds three inputs, and drops a value read twice once", function()
      local g = nn.Graph { inputs = { "x", "y" }, outputs = { "s", "t", "u" }, nodes = {
        { name = "s", op = "add", inputs = { "x", "y" } },
        { name = "sq", op = "mul", inputs = { "s", "s" } },
        { name = "t", fn = function(a, b, c) return a * 100 + b * 10 + c end, type = "Mix", inputs = { "sq", "x", "s" } },
        { name = "u", op = "sub", inputs = { "t", "s" } },
      } }
      for _, n in ipairs { 1, 2 } do -- a second pass reuses nothing of the first
        local x, y = lumen.tensor { 1, 2 }, lumen.tensor { 3, n }
        local outs = g:forward({ x = x, y = y })
        local s = { 4, 2 + n }
        assert.same(s, outs[1]:totable())
        local t = { 16 * 100 + 10 + 4, s[2] ^ 2 * 100 + 20 + s[2] }
        assert.same(t, outs[2]:totable())
        assert.same({ t[1] - 4, t[2] - s[2] }, outs[3]:totable())
      end
    end)

    it("lists the shapes of the last pass, also when the input size changes", function()
      local g = nn.Graph { inputs = { "x" }, outputs = { "p" }, nodes = {
        { name = "c", module = nn.Conv2d { in_channels = 1, out_channels = 2, kernel_size = 3 }, inputs = { "x" } },
        { name = "p", module = nn.MaxPool2d { kernel_size = 2 }, inputs = { "c" } },
      } }
      local function shapes()
        local res = {}
        for _, l in ipairs(g:layers()) do res[l.name] = l.shape end
        return res
      end
      lumen.no_grad(function() g:forward(lumen.randn { 1, 1, 10, 10 }) end)
      local first = shapes()
      assert.same({ c = { 1, 2, 8, 8 }, p = { 1, 2, 4, 4 } }, first)
      lumen.no_grad(function() g:forward(lumen.randn { 1, 1, 10, 10 }) end)
      assert.same(first, shapes())
      lumen.no_grad(function() g:forward(lumen.randn { 2, 1, 6, 8 }) end)
      assert.same({ c = { 2, 2, 4, 6 }, p = { 2, 2, 2, 3 } }, shapes())
      local tr = g:trace(lumen.randn { 1, 1, 6, 6 })
      assert.same({ 1, 2, 4, 4 }, tr.shapes.c)
      tr.shapes.c[1] = 99 -- a trace's tables are its own
      assert.same({ c = { 1, 2, 4, 4 }, p = { 1, 2, 2, 2 } }, shapes())
    end)

    it("reports cycles, unknown inputs and failing nodes by name and type", function()
      assert.has_error(function()
        nn.Graph { inputs = { "x" }, outputs = { "b" }, nodes = {
          { name = "a", op = "relu", inputs = { "b" } }, { name = "b", op = "relu", inputs = { "a" } } } }
      end, "Graph: cycle through node 'a' (a -> b)")
      assert.has_error(function()
        nn.Graph { inputs = { "x" }, outputs = { "a" }, nodes = { { name = "a", op = "relu", inputs = { "y" } } } }
      end, "Graph: node 'a' reads 'y', which no node or input produces")
      local g = nn.Graph { inputs = { "x" }, outputs = { "m" }, nodes = {
        { name = "m", op = "matmul", type = "MatMul", inputs = { "x", "x" } } } }
      local ok, err = pcall(g.forward, g, lumen.randn { 2, 3 })
      assert.is_false(ok)
      assert.matches("^m %(MatMul%): ", err)
    end)
  end)
end)
