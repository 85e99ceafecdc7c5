-- lumen.limits: the process-wide bounds readers and importers check before allocating, and the
-- hostile files of issue 11 (tests/fixtures/broken*/expected.txt): each is a named error, or for the
-- two that are valid a load, in bounded memory and time, measured in a child process.
local lumen = require "lumen"
local support = require "support"

local FIX = "tests/fixtures/"
local NAMES = { "image_pixels", "file_bytes", "inflated_bytes", "tensor_bytes", "model_nodes", "model_tensors",
                "model_bytes", "probe_bytes", "probe_ops", "text_bytes", "jpeg_scans", "cache_bytes" }

-- Runs body with some limits changed, restoring them after (also on error).
local function with_limits(t, body)
  local before = lumen.limits(t)
  local ok, err = pcall(body)
  lumen.limits(before)
  if not ok then error(err, 0) end
end

local err_of = support.error_of

-- nil, msg readers: the message.
local function msg_of(v, msg)
  assert(v == nil, "was accepted")
  return msg
end

describe("lumen.limits", function()
  it("lists every limit with a value and a line of documentation", function()
    local values, docs = lumen.limits()
    local n = 0
    for name, v in pairs(values) do
      n = n + 1
      assert.is_true(math.type(v) == "integer" and v >= 1, name)
      assert.is_string(docs[name])
    end
    assert.is_true(n >= #NAMES)
    for _, name in ipairs(NAMES) do assert.is_number(values[name], name) end
    assert.equals(50000000, values.image_pixels)
    assert.equals(1 << 30, values.inflated_bytes)
    assert.equals(512 << 20, values.probe_bytes)
  end)

  it("sets a limit and returns the values before", function()
    local before = lumen.limits { model_nodes = 7 }
    assert.equals(7, lumen.limits().model_nodes)
    lumen.limits { model_nodes = before.model_nodes }
    assert.equals(before.model_nodes, lumen.limits().model_nodes)
  end)

  it("rejects unknown names and values below 1 without changing anything", function()
    local before = lumen.limits()
    local err = err_of(lumen.limits, { image_pixels = 5, imag_pixels = 3 })
    assert.matches("limits: unknown limit 'imag_pixels' (known: image_pixels, file_bytes, ", err, 1, true)
    for _, name in ipairs(NAMES) do assert.matches(name, err, 1, true) end
    assert.same(before, (lumen.limits()))
    assert.has_error(function() lumen.limits { image_pixels = 0 } end, "limits: image_pixels must be an integer >= 1, got 0")
    assert.has_error(function() lumen.limits { image_pixels = 2.5 } end)
  end)
end)

describe("every reader holds to the limits, naming the file, the limit and how to raise it", function()
  it("image_pixels (PNG)", function()
    with_limits({ image_pixels = 10 }, function()
      local msg = msg_of(lumen.core.png_load(FIX .. "images/rgb8.png"))
      assert.equals(FIX .. "images/rgb8.png: image of 6 x 4 = 24 pixels exceeds the image_pixels limit of 10 "
        .. "(lumen.limits{image_pixels = 24} raises it)", msg)
    end)
    assert.is_not_nil(lumen.core.png_load(FIX .. "images/rgb8.png"))
  end)

  it("file_bytes and tensor_bytes (.npy), model_tensors (safetensors)", function()
    with_limits({ file_bytes = 100 }, function()
      assert.matches("f4_2x3x4.npy: the file (224 bytes) exceeds the file_bytes limit of 100 "
        .. "(lumen.limits{file_bytes = 224} raises it)", msg_of(lumen.read_npy(FIX .. "npy/f4_2x3x4.npy")), 1, true)
      -- every reader says it in the same form (JPEG and PNG too, through lm_read_file_limited)
      for _, f in ipairs { "jpeg/rgb420.jpg", "images/rgb8.png" } do
        local size = lumen.core.stat(FIX .. f).size
        assert.matches(("%s: the file (%d bytes) exceeds the file_bytes limit of 100 (lumen.limits{file_bytes = %d} "
          .. "raises it)"):format(f:match("[^/]+$"), size, size), msg_of(lumen.image.load(FIX .. f)), 1, true)
      end
    end)
    with_limits({ tensor_bytes = 95 }, function()
      assert.matches("f4_2x3x4.npy: the array (24 elements) exceeds the tensor_bytes limit of 95",
        msg_of(lumen.read_npy(FIX .. "npy/f4_2x3x4.npy")), 1, true)
    end)
    with_limits({ model_tensors = 3 }, function()
      assert.matches("all_dtypes.safetensors: the number of tensors (more than 3) exceeds the model_tensors limit",
        msg_of(lumen.read_safetensors(FIX .. "npy/all_dtypes.safetensors")), 1, true)
    end)
  end)

  it("inflated_bytes (gzip)", function()
    with_limits({ inflated_bytes = 64 }, function()
      assert.matches("f4_2x3x4.npy.gz: the decompressed data (more than 64 bytes) exceeds the inflated_bytes limit of 64",
        msg_of(lumen.core.gunzip_file(FIX .. "npy/f4_2x3x4.npy.gz")), 1, true)
    end)
  end)

  it("model_nodes, model_tensors and model_bytes (ONNX, TFLite)", function()
    local onnx, tfl = FIX .. "torch/resnet18.onnx.gz", FIX .. "broken_models/seeds/tiny.tflite"
    with_limits({ model_nodes = 5 }, function()
      assert.matches("resnet18.onnx.gz: the number of nodes (69) exceeds the model_nodes limit of 5",
        err_of(lumen.load_model, onnx), 1, true)
      assert.matches("tiny.tflite: the number of operator codes (6) exceeds the model_nodes limit of 5",
        err_of(lumen.load_model, tfl), 1, true)
    end)
    with_limits({ model_bytes = 100000 }, function()
      assert.matches("resnet18.onnx.gz: the size of the parsed model (about 4694", err_of(lumen.load_model, onnx), 1, true)
    end)
  end)

  it("probe_bytes and probe_ops (the importers' shape probe)", function()
    local onnx = FIX .. "torch/resnet18.onnx.gz"
    with_limits({ probe_bytes = 100000 }, function()
      assert.matches("the probe of input 'input' of shape (1, 3, 224, 224) (602112 bytes) exceeds the probe_bytes limit",
        err_of(lumen.load_model, onnx), 1, true)
    end)
    with_limits({ probe_ops = 1000000 }, function()
      assert.matches("operations, with '.-'%) exceeds the probe_ops limit of 1000000", err_of(lumen.load_model, onnx))
    end)
  end)

  it("text_bytes, and regular files only (labels)", function()
    local shared = FIX .. "broken/expected.txt"
    with_limits({ text_bytes = 10 }, function()
      local _, msg = lumen.labels(shared)
      assert.matches("expected.txt: the file %(%d+ bytes%) exceeds the text_bytes limit of 10", msg)
    end)
    local t, msg = lumen.labels("/dev/zero")
    assert.is_nil(t)
    assert.equals("/dev/zero: not a regular file", msg)
    assert.equals("tests/fixtures: is a directory", select(2, lumen.labels("tests/fixtures")))
    assert.equals("/dev/zero: not a regular file or a pipe", select(2, lumen.read_npy("/dev/zero")))
    local fifo = lumen.tmpname(".fifo")
    if os.execute("mkfifo " .. fifo .. " 2>/dev/null") then
      assert.equals(fifo .. ": not a regular file", select(2, lumen.labels(fifo))) -- and no hang opening it
      os.remove(fifo)
    end
  end)

  it("sizes whose product overflows int64 are errors, not strides that wrap", function()
    assert.matches("tensor too large", err_of(lumen.zeros, { 0, 1 << 62, 1 << 62 }), 1, true)
    assert.matches("tensor too large", err_of(lumen.reshape, lumen.zeros { 4 }, { 1 << 40, 1 << 40 }), 1, true)
    assert.matches("tensor too large", err_of(lumen.reshape, lumen.zeros { 0 }, { 1 << 40, 1 << 40, 0 }), 1, true)
    assert.matches("cannot infer", err_of(lumen.reshape, lumen.zeros { 4 }, { 1 << 40, 1 << 40, -1 }), 1, true)
  end)

  it("reads a safetensors file without tensors (an empty table, no qsort of NULL)", function()
    local t, meta = lumen.read_safetensors(FIX .. "npy/empty.safetensors")
    assert.same({}, t)
    assert.same({}, meta or {})
  end)
end)

-- The hostile files: each read in a child process that reports its peak RSS (VmHWM) and time.
describe("hostile files", function()
  local exe = lumen.core.exe_path()
  local script = lumen.tmpname(".lua")
  local function write(path, s)
    local f = assert(io.open(path, "w")); f:write(s); f:close()
  end
  write(script, [[
local lumen = require "lumen"
local p = lumen.args { path = "", kind = "" }
local t0 = os.clock() -- CPU time: the machine may be busy
local readers = { png = lumen.core.png_load, npy = lumen.read_npy, safetensors = lumen.read_safetensors }
local ok, a, b
if readers[p.kind] then ok, a, b = true, readers[p.kind](p.path) if a == nil then ok, a = false, b end
elseif p.path:match("%.tflite%.gz$") then ok, a = pcall(lumen.tflite.load, p.path) -- load_model takes .gz for ONNX
else ok, a = pcall(lumen.load_model, p.path) end
local dt = os.clock() - t0
local f = io.open("/proc/self/status")
local hwm = f and tonumber(f:read("a"):match("VmHWM:%s*(%d+)")) or -1
if f then f:close() end
print(("%s\t%d\t%.3f\t%s"):format(ok and "ok" or "error", hwm, dt, ok and "" or tostring(a):gsub("\n", " ")))
]])
  -- Starts a child reading path; finish(child) -> status, peak RSS in KiB, CPU seconds, message.
  local function start(path, kind)
    return assert(io.popen(("%q run %q path=%q kind=%q 2>&1"):format(exe, script, path, kind or "model")))
  end
  local function finish(h)
    local out = h:read("a")
    h:close()
    local status, kb, dt, msg = out:match("(%a+)\t(%-?%d+)\t([%d.]+)\t([^\n]*)")
    assert(status, "no report from the child: " .. out)
    return status, tonumber(kb), tonumber(dt), msg
  end
  local function run(path, kind) return finish(start(path, kind)) end
  local asan = os.getenv("ASAN_OPTIONS") ~= nil
  local baseline = select(2, run(FIX .. "npy/f4_2x3x4.npy", "npy"))
  local BOUND_KB = 512 * 1024 -- peak RSS over the child's own baseline: refused before allocating, or bounded

  local cases = {}
  for _, dir in ipairs { "broken", "broken_models" } do
    for line in io.lines(FIX .. dir .. "/expected.txt") do
      local file, piece = line:match("^([^#\t][^\t]*)\t(.+)$")
      if file and (piece:find(" limit", 1, true) or piece:find("too large", 1, true) or piece:find("out of range", 1, true)
                   or piece:find("rank 3", 1, true) or piece:find("cannot reshape", 1, true) or piece:find("largest tensor", 1, true)) then
        cases[#cases + 1] = { path = FIX .. dir .. "/" .. file, piece = piece, kind = file:match("%.(%w+)$") }
      end
    end
  end
  cases[#cases + 1] = { path = FIX .. "broken_models/pools_400.onnx.gz", bound = 96 * 1024 } -- valid: loads, 300 MB kept before
  cases[#cases + 1] = { path = FIX .. "broken_models/shared_buffer.tflite.gz" }     -- valid: loads

  it("is a named error (or a load, for the two valid ones) in bounded memory and time", function()
    assert(#cases >= 23, "only " .. #cases .. " hostile files")
    local report, children = {}, {}
    for i, c in ipairs(cases) do -- four children at a time
      local kind = (c.kind == "png" or c.kind == "npy" or c.kind == "safetensors") and c.kind or "model"
      children[i] = start(c.path, kind)
      if i > 4 then cases[i - 4].result = table.pack(finish(children[i - 4])) end
    end
    for i = math.max(#cases - 3, 1), #cases do cases[i].result = table.pack(finish(children[i])) end
    for _, c in ipairs(cases) do
      local status, kb, dt, msg = table.unpack(c.result, 1, 4)
      if c.piece then
        assert.equals("error", status, c.path)
        assert(msg:sub(1, #c.path + 2) == c.path .. ": ", c.path .. ": message does not name the file: " .. msg)
        assert(msg:find(c.piece, 1, true), ("%s: expected '%s' in '%s'"):format(c.path, c.piece, msg))
      else
        assert.equals("ok", status, c.path .. ": " .. msg)
      end
      assert(dt < 10, ("%s took %.1f s of CPU"):format(c.path, dt))
      if kb >= 0 and not asan then
        assert(kb - baseline < (c.bound or BOUND_KB), ("%s: peak RSS %d MiB over the baseline"):format(c.path, (kb - baseline) // 1024))
      end
      report[#report + 1] = ("%-58s %6.1f MiB %6.2f s CPU"):format(c.path, (kb - baseline) / 1024, dt)
    end
    if os.getenv("LUMEN_TEST_VERBOSE") then print("\n" .. table.concat(report, "\n")) end
  end)

  it("parses 300,000 inputs against 300,000 initializers without a quadratic lookup", function()
    with_limits({ model_tensors = 1000000 }, function()
      local t0 = os.clock()
      local msg = err_of(lumen.load_model, FIX .. "broken_models/inputs_300k.onnx.gz")
      assert(os.clock() - t0 < 10, "took " .. (os.clock() - t0) .. " s of CPU") -- quadratic: minutes
      assert.matches("inputs_300k.onnx.gz: ", msg, 1, true)
    end)
  end)

  teardown(function() os.remove(script) end)
end)
