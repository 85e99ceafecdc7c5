-- tests/lua/io_spec.lua — the file formats from Lua: lumen.read_npy / write_npy, lumen.read_safetensors /
-- write_safetensors, core.png_load / png_save, core.gunzip_file. Fixtures come from
-- tools/make_broken_corpus.py; every file in tests/fixtures/broken must give nil, "path: reason".
local lumen = require "lumen"
local core = lumen.core
local read_bytes = require("support").read_file
local tmp = lumen.tmpname -- tmp(".npy"): a fresh temporary path with that suffix

local FIX = "tests/fixtures/"

local function same(a, b)
  return a:dtype() == b:dtype() and lumen.same_shape(a, b) and a:bytes() == b:bytes()
end

local function ramp(shape)
  local t = lumen.zeros(shape)
  for i = 1, t:numel() do t:flat_set(i, ((i * 37 + 11) % 256) / 255) end
  return t
end

describe("lumen.read_npy", function()
  it("reads each dtype with its values", function()
    local f4 = assert(lumen.read_npy(FIX .. "npy/f4_2x3x4.npy"))
    assert.same({ 2, 3, 4 }, f4.shape)
    assert.equal("float32", f4:dtype())
    assert.equal(-3, f4:get { 1, 1, 1 })
    assert.equal(23 * 0.25 - 3, f4:get { 2, 3, 4 })
    local i8 = assert(lumen.read_npy(FIX .. "npy/i8_2x3.npy"))
    assert.equal("int64", i8:dtype())
    assert.same({ { -(1 << 62), -1, 0 }, { 1, 1 << 40, 1 << 62 } }, i8:totable()) -- plain values, no shift
    local i4 = assert(lumen.read_npy(FIX .. "npy/i4_4.npy"))
    assert.same({ -2147483648, -1, 0, 2147483647 }, i4:totable())
    assert.same({ 0, 1, 127, 128, 200, 254, 255, 3 }, lumen.read_npy(FIX .. "npy/u1_8.npy"):view({ 8 }):totable())
    assert.same({ 1, 0, 1, 1, 0 }, lumen.read_npy(FIX .. "npy/b1_5.npy"):totable())
    local s = assert(lumen.read_npy(FIX .. "npy/f4_scalar.npy"))
    assert.same({}, s.shape)
    assert.equal(3.5, s:item())
  end)

  it("returns nil and a message naming the file when it cannot", function()
    local t, msg = lumen.read_npy(FIX .. "npy/missing.npy")
    assert.is_nil(t)
    assert.matches("^tests/fixtures/npy/missing.npy: cannot open", msg)
    t, msg = lumen.read_npy(FIX .. "broken/npy_fortran_order.npy")
    assert.is_nil(t)
    assert.matches("npy_fortran_order.npy: fortran_order arrays are not supported", msg, 1, true)
  end)
end)

describe("lumen.write_npy", function()
  it("round-trips float32 and int64 of any rank", function()
    local path = tmp(".npy")
    for _, t in ipairs { lumen.randn { 2, 3, 4 }, lumen.randn { 5 }, lumen.full({}, 7), lumen.zeros { 0, 3 },
                         lumen.tensor({ { -(1 << 62), 5 }, { 0, 1 << 40 } }, "int64") } do
      assert.is_true(lumen.write_npy(path, t))
      assert.is_true(same(t, assert(lumen.read_npy(path))))
    end
    os.remove(path)
  end)

  it("writes the bytes numpy.save writes", function()
    local path = tmp(".npy")
    local t = lumen.read_npy(FIX .. "npy/f4_2x3x4.npy")
    lumen.write_npy(path, t)
    assert.equal(read_bytes(FIX .. "npy/f4_2x3x4.npy"), read_bytes(path))
    os.remove(path)
  end)

  it("raises on misuse and returns nil, msg on I/O failure", function()
    assert.has_error(function() lumen.write_npy(tmp(".npy"), { 1, 2 }) end)
    assert.has_error(function() lumen.write_npy(nil, lumen.zeros { 2 }) end)
    local ok, msg = lumen.write_npy(FIX .. "no_such_dir/x.npy", lumen.zeros { 2 })
    assert.is_nil(ok)
    assert.matches("no_such_dir/x.npy: cannot open for writing", msg, 1, true)
  end)
end)

describe("core.png_load", function()
  for _, name in ipairs { "gray8", "gray1", "gray4_interlaced", "gray8_trns", "gray16", "gray_alpha8", "gray_alpha16",
                          "rgb8", "rgb8_trns", "rgb16", "rgba8", "rgba16", "palette2", "palette8_trns",
                          "rgb8_interlaced", "rgba16_interlaced" } do
    it("reads " .. name .. ".png as the (C, H, W) tensor stored beside it", function()
      local img = assert(core.png_load(FIX .. "images/" .. name .. ".png"))
      assert.is_true(same(img, assert(lumen.read_npy(FIX .. "images/" .. name .. ".npy"))))
    end)
  end

  it("keeps the file's channels: gray+alpha is 2, palettes with tRNS are 4", function()
    assert.equal(2, core.png_load(FIX .. "images/gray_alpha8.png").shape[1])
    assert.equal(3, core.png_load(FIX .. "images/palette2.png").shape[1])
    assert.equal(4, core.png_load(FIX .. "images/palette8_trns.png").shape[1])
  end)
end)

describe("core.png_save", function()
  it("round-trips 1, 2, 3 and 4 channels exactly at 8 bits", function()
    local path = tmp(".png")
    for c = 1, 4 do
      local t = ramp { c, 5, 7 }
      assert.is_true(core.png_save(t, path))
      assert.is_true(same(t, assert(core.png_load(path))))
    end
    os.remove(path)
  end)

  it("writes (H, W) as gray and clamps and rounds values", function()
    local function f32(x) return (string.unpack("f", string.pack("f", x))) end
    local path = tmp(".png")
    assert.is_true(core.png_save(lumen.tensor { { -1, 2, 0.5, 0.1 / 255, 0.9 / 255, 0 / 0 } }, path))
    local back = core.png_load(path)
    assert.same({ 1, 1, 6 }, back.shape)
    assert.same({ 0, 1, f32(128 / 255), 0, f32(1 / 255), 0 }, back:view({ 6 }):totable())
    os.remove(path)
  end)

  it("raises on tensors that are not images and returns nil, msg on I/O failure", function()
    assert.has_error(function() core.png_save(lumen.zeros { 5, 2, 2 }, tmp(".png")) end)
    assert.has_error(function() core.png_save(lumen.zeros { 1, 1, 2, 2 }, tmp(".png")) end)
    assert.has_error(function() core.png_save(lumen.tensor({ { 1, 2 } }, "int64"), tmp(".png")) end)
    local ok, msg = core.png_save(lumen.zeros { 2, 2 }, FIX .. "no_such_dir/x.png")
    assert.is_nil(ok)
    assert.matches("no_such_dir/x.png: cannot open for writing", msg, 1, true)
  end)
end)

describe("lumen.read_safetensors", function()
  it("reads every dtype and the metadata", function()
    local ts, meta = assert(lumen.read_safetensors(FIX .. "npy/all_dtypes.safetensors"))
    assert.same({ { 0, 0.5, 1 }, { 1.5, 2, 2.5 } }, ts.a:totable())
    assert.same({ -1, 0, 1, 1 << 40 }, ts.b:totable())
    assert.equal("int64", ts.b:dtype())
    assert.same({ 1, -2.5, 65504 }, ts.c:totable())
    assert.same({ 1, -0.15625 }, ts.d:totable())
    assert.same({ { 0, 0.25 }, { 0.5, 0.75 } }, ts.e:totable())
    assert.same({ -7, 0, 7 }, ts.f:totable())
    assert.equal(42, ts.g:item())
    assert.same({ 0, 4 }, ts.h.shape)
    assert.same({ format = "pt", note = 'quote " tab \t e-acute \u{e9}' }, meta)
  end)
end)

describe("lumen.write_safetensors", function()
  it("round-trips several tensors and the metadata", function()
    local path = tmp(".safetensors")
    local ts = { ["layer1.weight"] = lumen.randn { 3, 4 }, ["layer1.bias"] = lumen.randn { 3 },
                 steps = lumen.tensor({ 1, 2, 3 }, "int64"), scalar = lumen.full({}, 2), empty = lumen.zeros { 0 } }
    assert.is_true(lumen.write_safetensors(path, ts, { format = "pt", ["key \"q\""] = "line\nbreak" }))
    local back, meta = assert(lumen.read_safetensors(path))
    for name, t in pairs(ts) do assert.is_true(same(t, back[name]), name) end
    assert.same({ format = "pt", ["key \"q\""] = "line\nbreak" }, meta)
    assert.is_true(lumen.write_safetensors(path, ts)) -- no metadata: an empty table comes back
    assert.same({}, select(2, lumen.read_safetensors(path)))
    os.remove(path)
  end)

  it("lays the file out as the reference writer does (sorted names, padded header)", function()
    local path = tmp(".safetensors")
    lumen.write_safetensors(path, { weight = lumen.tensor { { 0, 1, 2 }, { 3, 4, 5 } }, bias = lumen.tensor { 1, 2, 3 } },
                            { format = "pt" })
    assert.equal(read_bytes(FIX .. "npy/f32_sorted.safetensors"), read_bytes(path))
    os.remove(path)
  end)

  it("raises on misuse", function()
    local path = tmp(".safetensors")
    assert.has_error(function() lumen.write_safetensors(path, { w = 3 }) end)
    assert.has_error(function() lumen.write_safetensors(path, { lumen.zeros { 2 } }) end)
    assert.has_error(function() lumen.write_safetensors(path, { __metadata__ = lumen.zeros { 2 } }) end)
    assert.has_error(function() lumen.write_safetensors(path, { w = lumen.zeros { 2 } }, { k = 1 }) end)
    assert.has_error(function() lumen.write_safetensors(path, { w = lumen.zeros { 2 } }, { k = "a\0b" }) end)
    assert.has_error(function() lumen.write_safetensors(path, { ["a\0b"] = lumen.zeros { 2 } }) end)
    assert.has_error(function() lumen.write_safetensors(path, "w") end)
    assert.is_nil(io.open(path))
  end)
end)

describe("core.gunzip_file", function()
  it("decompresses one or several members to the original bytes", function()
    local plain = read_bytes(FIX .. "npy/f4_2x3x4.npy")
    assert.equal(plain, core.gunzip_file(FIX .. "npy/f4_2x3x4.npy.gz"))
    assert.equal(plain, core.gunzip_file(FIX .. "npy/f4_2x3x4_two_members.npy.gz"))
  end)

  it("stops at the size cap", function()
    local n = #read_bytes(FIX .. "npy/f4_2x3x4.npy")
    assert.equal(n, #core.gunzip_file(FIX .. "npy/f4_2x3x4.npy.gz", n))
    local s, msg = core.gunzip_file(FIX .. "npy/f4_2x3x4.npy.gz", n - 1)
    assert.is_nil(s)
    assert.matches("f4_2x3x4.npy.gz: decompressed size exceeds", msg, 1, true)
  end)
end)

describe("the broken corpus", function()
  local readers = {
    png = core.png_load, jpg = core.jpeg_load, npy = lumen.read_npy, safetensors = lumen.read_safetensors, gz = core.gunzip_file,
  }
  it("is refused file by file with nil, 'path: reason'", function()
    local dir, count, expected, hostile = FIX .. "broken", 0, {}, 0
    for line in io.lines(dir .. "/expected.txt") do
      local file, piece = line:match("^([^#\t][^\t]*)\t(.+)$")
      if file then expected[file] = piece end
    end
    for _, name in ipairs(assert(core.listdir(dir))) do
      if name:sub(1, 1) ~= "." and name ~= "expected.txt" then
        local path = dir .. "/" .. name
        local read = readers[name:match("%.(%w+)$")]
        assert(read, "no reader for " .. name)
        local v, msg = read(path)
        assert(v == nil, path .. " was accepted")
        assert(type(msg) == "string" and msg:sub(1, #path + 2) == path .. ": " and #msg > #path + 4,
               path .. ": bad message " .. tostring(msg))
        if expected[name] then
          assert(msg:find(expected[name], 1, true), ("%s: expected '%s' in '%s'"):format(name, expected[name], msg))
          hostile = hostile + 1
        end
        count = count + 1
      end
    end
    assert(count >= 200, "only " .. count .. " broken files")
    assert(hostile >= 5, "expected.txt names only " .. hostile .. " files")
  end)
end)
