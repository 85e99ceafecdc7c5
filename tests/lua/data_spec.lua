-- Specs for lumen.data: idx files, Fashion-MNIST loading, text tokenizing and encoding, GloVe, batches.
local lumen = require "lumen"
local data = lumen.data

local support = require "support"
local tmp, write = support.tmp, support.write

-- An idx file of unsigned bytes with the given dims and values.
local function idx(dims, values, ty)
  local parts = { string.char(0, 0, ty or 8, #dims) }
  for _, d in ipairs(dims) do parts[#parts + 1] = string.pack(">I4", d) end
  parts[#parts + 1] = string.char(table.unpack(values))
  return table.concat(parts)
end

describe("lumen.data", function()
  describe("idx files", function()
    local path
    before_each(function() path = tmp("x.idx") end)
    after_each(function() os.remove(path) end)

    it("reads bytes as floats shaped by the header, or labels as 1-based int64", function()
      write(path, idx({ 2, 3 }, { 0, 1, 2, 253, 254, 255 }))
      local t = assert(data.read_idx(path))
      assert.same({ { 0, 1, 2 }, { 253, 254, 255 } }, t:totable())
      local l = assert(data.read_idx(path, { labels = true }))
      assert.equal("int64", l:dtype())
      assert.same({ { 1, 2, 3 }, { 254, 255, 256 } }, l:totable())
    end)

    it("reads more than one chunk of data in order", function()
      local vals = {}
      for i = 1, 70000 do vals[i] = i % 251 end
      local parts = { string.char(0, 0, 8, 1), string.pack(">I4", #vals) }
      for i = 1, #vals, 1000 do parts[#parts + 1] = string.char(table.unpack(vals, i, math.min(i + 999, #vals))) end
      write(path, table.concat(parts))
      local t = assert(data.read_idx(path))
      assert.equal(70000, t:numel())
      for _, i in ipairs { 1, 65536, 65537, 70000 } do assert.equal(vals[i], t:get(i)) end
    end)

    it("rejects bad magic, element types, dimensions and lengths with clear messages", function()
      local cases = {
        { "\1\0\8\1" .. string.pack(">I4", 1) .. "\0", "not an idx file %(bad magic 01 00%)" },
        { idx({ 2 }, { 1, 2 }, 0x0d), "unsupported idx element type 0x0d" },
        { "\0\0\8\0", "idx file with 0 dimensions" },
        { idx({ 2, 3 }, { 1, 2, 3, 4, 5 }), "idx data has 5 bytes, dimensions 2x3 need 6" },
        { idx({ 2, 3 }, { 1, 2, 3, 4, 5, 6, 7 }), "idx data has 7 bytes, dimensions 2x3 need 6" },
        { "\0\0\8\3" .. string.pack(">I4", 2), "truncated idx header %(8 bytes, need 16%)" },
        { "\0\0", "not an idx file %(2 bytes%)" },
      }
      for _, c in ipairs(cases) do
        write(path, c[1])
        local t, err = data.read_idx(path)
        assert.is_nil(t)
        assert.matches("^" .. path:gsub("%p", "%%%0") .. ": " .. c[2], err)
      end
      local t, err = data.read_idx(path .. ".missing")
      assert.is_nil(t)
      assert.is_string(err)
    end)

    it("loads an MNIST-format folder as (N, 1, 28, 28) images in [0, 1] and 1-based labels", function()
      local dir = tmp("mnist")
      lumen.mkdir(dir)
      local pix = {}
      for i = 1, 2 * 784 do pix[i] = i % 256 end
      local parts = { string.char(0, 0, 8, 3), string.pack(">I4>I4>I4", 2, 28, 28) }
      for i = 1, #pix, 784 do parts[#parts + 1] = string.char(table.unpack(pix, i, i + 783)) end
      write(dir .. "/t10k-images-idx3-ubyte", table.concat(parts))
      write(dir .. "/t10k-labels-idx1-ubyte", idx({ 2 }, { 9, 0 }))
      local X, y = data.load_mnist(dir, "test")
      assert.same({ 2, 1, 28, 28 }, X.shape)
      assert.same({ 10, 1 }, y:totable())
      assert.is_true(math.abs(X:flat_get(2) - 2 / 255) < 1e-7)
      assert.is_true(math.abs(X:max_all() - 1) < 1e-7)
      local X1, y1 = data.load_mnist(dir, "test", { limit = 1 }) -- the first one only
      assert.same({ 1, 1, 28, 28 }, X1.shape)
      assert.same({ 10 }, y1:totable())
      assert.same(X:narrow(1, 1, 1):totable(), X1:totable())
      assert.same({ 2, 1, 28, 28 }, data.load_mnist(dir, "test", { limit = 5 }).shape) -- more than there are: all
      assert.has_error(function() data.load_mnist(dir, "test", { limit = -1 }) end,
        "mnist: limit must be an integer >= 0 (0: all), got -1")
      write(dir .. "/t10k-labels-idx1-ubyte", idx({ 3 }, { 9, 0, 1 }))
      assert.has_error(function() data.load_mnist(dir, "test") end)
      assert.has_error(function() data.load_mnist(dir, "train") end)
      os.remove(dir .. "/t10k-images-idx3-ubyte"); os.remove(dir .. "/t10k-labels-idx1-ubyte"); os.remove(dir)
    end)

    it("reads the real gzipped Fashion-MNIST test set", function()
      local dir = "/usr/share/datasets/fashion-mnist"
      if not lumen.exists(dir .. "/t10k-labels-idx1-ubyte.gz") then
        return pending(dir .. " is absent (Debian package dataset-fashion-mnist)")
      end
      local X, y = data.load_mnist(dir, "test")
      assert.same({ 10000, 1, 28, 28 }, X.shape)
      assert.equal(1, y:float():min_all())
      assert.equal(10, y:float():max_all())
      assert.equal(10, y:get(1)) -- the first test item is an ankle boot (class 9, 0-based)
    end)
  end)

  describe("text", function()
    it("tokenizes lowercase words and punctuation", function()
      assert.same({ "hello", ",", "world", "!", "it", "'", "s", "3", ".", "5", "ça", "va" },
        data.tokenize("Hello, World! It's 3.5  ça\tva"))
    end)

    it("builds a vocabulary by frequency with <pad> = 1 and <unk> = 2", function()
      local v = data.build_vocabulary({ { "b", "a", "b" }, { "c", "a", "b", "d" } }, { max_size = 5 })
      assert.same({ "<pad>", "<unk>", "b", "a", "c" }, v.words)
      assert.equal(2, v:id("zzz"))
      assert.equal(3, v:id("b"))
      assert.same({ 3, 4, 2, 1, 1 }, v:encode({ "b", "a", "q" }, 5))
      assert.same({ 3, 4 }, v:encode({ "b", "a", "q" }, 2))
      assert.same({ 4, 2 }, v:encode({ "b", "a", "q" }, 2, { truncate = "pre" }))
      assert.same({ 1, 1, 3, 4, 2 }, v:encode({ "b", "a", "q" }, 5, { pad = "pre" }))
      local t = data.encode({ "B a", "c c c c c c" }, v, 4)
      assert.equal("int64", t:dtype())
      assert.same({ { 3, 4, 1, 1 }, { 5, 5, 5, 5 } }, t:totable())
    end)

    it("reads fortune files as labelled token lists and holds out a seeded fraction", function()
      local dir = tmp("fortunes")
      lumen.mkdir(dir)
      write(dir .. "/tech", "The disk is full.\n%\nReboot it\ntwice.\n%\n   \n%\n")
      write(dir .. "/food", "Eat pie.\n%\n")
      local texts, labels, names = data.load_fortunes(dir, "tech,food")
      assert.same({ "tech", "food" }, names)
      assert.same({ { "the", "disk", "is", "full", "." }, { "reboot", "it", "twice", "." }, { "eat", "pie", "." } }, texts)
      assert.same({ 1, 1, 2 }, labels) -- the blank fortune is left out
      assert.has_error(function() data.load_fortunes(dir, "tech,sports") end)
      local function split()
        lumen.seed(7)
        return { data.holdout(texts, labels, 0.34) }
      end
      local a, b = split(), split()
      assert.equal(1, #a[3]) -- floor(3 * 0.34) = 1 held out
      assert.equal(2, #a[1])
      assert.same(a[1], b[1]) -- the seed decides the split
      assert.same(a[4]:totable(), b[4]:totable())
      local seen = {}
      for _, part in ipairs { { a[1], a[2] }, { a[3], a[4] } } do
        for i, t in ipairs(part[1]) do
          seen[#seen + 1] = t[1]
          assert.equal(t[1] == "eat" and 2 or 1, part[2]:get(i)) -- each text keeps its label
        end
      end
      table.sort(seen)
      assert.same({ "eat", "reboot", "the" }, seen) -- every text once
      support.remove(dir)
    end)

    it("saves and loads a vocabulary", function()
      local path = tmp("vocab.txt")
      local v = data.Vocabulary { "x", "y" }
      assert(v:save(path))
      local back = assert(data.load_vocabulary(path))
      assert.same(v.words, back.words)
      assert.equal(4, back:id("y"))
      os.remove(path)
    end)
  end)

  describe("GloVe", function()
    local path
    before_each(function()
      path = tmp("glove.txt")
      write(path, "the 0.1 0.2 0.3\n, -1 0 1\ncat 1e-1 2 3.5\n")
    end)
    after_each(function() os.remove(path) end)

    it("loads every vector after <pad> and <unk>", function()
      local v, E, found = data.load_glove(path)
      assert.same({ "<pad>", "<unk>", "the", ",", "cat" }, v.words)
      assert.same({ 5, 3 }, E.shape)
      assert.equal(3, found)
      assert.same({ 0, 0, 0 }, E:totable()[1])
      assert.is_true(math.abs(E:get { 5, 3 } - 3.5) < 1e-7)
    end)

    it("restricts to a word list, leaving missing words at zero", function()
      local v, E, found = data.load_glove(path, { words = { "cat", "dog", "the" } })
      assert.same({ "<pad>", "<unk>", "cat", "dog", "the" }, v.words)
      assert.equal(2, found)
      local rows = E:totable()
      assert.is_true(math.abs(rows[3][1] - 0.1) < 1e-7)
      assert.same({ 0, 0, 0 }, rows[4])
      assert.is_true(math.abs(rows[5][2] - 0.2) < 1e-7)
    end)

    it("rejects ragged and malformed files", function()
      write(path, "the 0.1 0.2 0.3\ncat 1 2\n")
      local v, err = data.load_glove(path)
      assert.is_nil(v)
      assert.matches("line 2 has 2 values, expected 3", err, 1, true)
      write(path, "the 0.1 x 0.3\n")
      v, err = data.load_glove(path)
      assert.is_nil(v)
      assert.matches("line 1: 'x' is not a number", err, 1, true)
    end)

    it("reads the shared gzipped GloVe subset", function()
      local shared = "../shared/data/text/glove.6B.100d.top20k.txt.gz"
      if not lumen.exists(shared) then return pending(shared .. " is absent (../shared/data)") end
      local v, E, found = data.load_glove(shared, { words = { "the", "movie", "qqqzzzxx" } })
      assert.same({ 5, 100 }, E.shape)
      assert.equal(2, found)
      assert.equal(0, E:narrow(1, 5, 1):abs():sum_all())
      assert.is_true(E:narrow(1, 3, 1):abs():sum_all() > 1)
      assert.equal(3, v:id("the"))
    end)
  end)

  describe("batches", function()
    it("covers every row once per pass, shuffled reproducibly", function()
      local X = lumen.arange(1, 11):view { 10, 1 }
      local y = lumen.tensor({ 1, 2, 3, 4, 5, 6, 7, 8, 9, 10 }, "int64")
      local function pass()
        local seen, sizes = {}, {}
        for xb, yb, k, nb in data.batches(X, y, 4, { shuffle = true }) do
          assert.equal(3, nb)
          sizes[k] = xb:size(1)
          for i = 1, xb:size(1) do
            assert.equal(xb:flat_get(i), yb:get(i))
            seen[#seen + 1] = yb:get(i)
          end
        end
        return seen, sizes
      end
      lumen.seed(4)
      local a, sizes = pass()
      assert.same({ 4, 4, 2 }, sizes)
      local sorted = { table.unpack(a) }
      table.sort(sorted)
      assert.same({ 1, 2, 3, 4, 5, 6, 7, 8, 9, 10 }, sorted)
      assert.are_not.same({ 1, 2, 3, 4, 5, 6, 7, 8, 9, 10 }, a)
      lumen.seed(4)
      assert.same(a, (pass()))
      local plain = {}
      for xb in data.batches(X, nil, 3) do plain[#plain + 1] = xb:flat_get(1) end
      assert.same({ 1, 4, 7, 10 }, plain)
    end)
  end)
end)
