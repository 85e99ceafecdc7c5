-- tests/lua/support.lua: helpers the specs share (`require "support"`; .busted puts tests/lua on the
-- path). Each asserts with a message saying what differed.
local lumen = require "lumen"
local assert = require "luassert" -- busted gives specs this assert; a required module must ask for it

local M = {}

-- The values of a tensor as a Lua array, in row-major order.
function M.values(t)
  local v = {}
  for i = 1, t:numel() do v[i] = t:flat_get(i) end
  return v
end

-- Two Lua arrays agree element by element within tol.
function M.assert_values_close(got, want, tol, what)
  assert(#got == #want, ("%s: %d values, want %d"):format(what, #got, #want))
  for i = 1, #want do
    if math.abs(got[i] - want[i]) > tol then
      error(("%s: value %d is %.7g, want %.7g"):format(what, i, got[i], want[i]), 2)
    end
  end
end

-- Two tensors of one shape agree within tol in max |difference|.
function M.assert_close(a, b, tol, what)
  assert.same(b.shape, a.shape)
  local d = lumen.max_abs_diff(a, b)
  assert(d <= tol, ("%s: max |difference| %g"):format(what or "tensors", d))
end

-- y agrees with ref (same shape) within tol in relative L2 error.
function M.assert_rel_l2(y, ref, tol, what)
  assert.same(ref.shape, y.shape)
  local e = lumen.rel_l2(y, ref)
  assert(e < tol, ("%srelative L2 error %g (tolerance %g)"):format(what and (what .. ": ") or "", e, tol))
end

-- x[i] = 2 sin(1.7 i + seed) in row-major order, as tools/ref_conv.py builds its inputs.
function M.gen(shape, seed)
  local t = lumen.zeros(shape)
  for i = 1, t:numel() do t:flat_set(i, 2 * math.sin(1.7 * (i - 1) + seed)) end
  return t
end

-- y agrees with a PyTorch reference {shape =, values =} within tol * (1 + |value|) per element.
function M.assert_matches_torch(y, ref, tol, what)
  assert.same(ref.shape, y.shape)
  for i, v in ipairs(ref.values) do
    local got = y:flat_get(i)
    if math.abs(got - v) > tol * (1 + math.abs(v)) then
      error(("%s: element %d is %.7g, torch gives %.7g"):format(what, i, got, v), 2)
    end
  end
end

-- model's output and input gradient (of the output's sum) agree within tol with a fixture written by tools/
-- ({input, y, grad}: tools/fixturelib.py write_onnx_fixture).
function M.assert_agrees_with_fixture(model, ref, tol)
  local x = lumen.autograd.set_requires_grad(ref.input, true)
  local y = model:forward(x)
  M.assert_close(y, ref.y, tol, "output")
  M.assert_close(lumen.grad(y:sum(), x), ref.grad, tol, "input gradient")
end

-- A small CAM network in eval mode, seeded: (N, 3, 8, 8) -> conv1 -> relu1 -> maxpool -> conv2 (K = 6
-- channels) -> relu ("features", 4x4) -> GAP -> fc (3 classes).
function M.gap_net(K)
  local nn = lumen.nn
  lumen.seed(9)
  local m = nn.Sequential {
    nn.Conv2d { in_channels = 3, out_channels = 4, kernel_size = 3, padding = 1, name = "conv1" },
    nn.ReLU { name = "relu1" }, nn.MaxPool2d { kernel_size = 2 },
    nn.Conv2d { in_channels = 4, out_channels = K or 6, kernel_size = 3, padding = 1, name = "conv2" },
    nn.ReLU { name = "features" },
    nn.GlobalAvgPool2d {}, nn.Linear { in_features = K or 6, out_features = 3, name = "fc" },
  }
  m:eval()
  return m
end

-- A plain-function model that records the batch size of every call: fn', sizes.
function M.recording(fn)
  local sizes = {}
  return function(batch)
    sizes[#sizes + 1] = batch.shape[1]
    return fn(batch)
  end, sizes
end

-- The message of the error fn(...) raises; fails when fn(...) does not raise.
function M.error_of(fn, ...)
  local ok, err = pcall(fn, ...)
  assert(not ok, "expected an error")
  return tostring(err)
end

-- lumen.gradcheck(fn, inputs, opts) passes (opts: a table, or a number: the step eps).
function M.assert_gradcheck(fn, inputs, opts)
  if type(opts) == "number" then opts = { eps = opts } end
  local ok, msg = lumen.gradcheck(fn, inputs, opts)
  assert(ok, msg)
end

-- The values of tensor t agree with the Lua array want element by element within tol (1e-6).
function M.assert_values(t, want, tol, what)
  assert(t:numel() == #want, ("%s: %d elements, want %d"):format(what or "values", t:numel(), #want))
  M.assert_values_close(M.values(t), want, tol or 1e-6, what or "values")
end

-- A tensor of distinct values spaced by 0.1 in a random order (from lumen's RNG): max pooling,
-- sorting and max/min have no ties within a finite-difference step.
function M.distinct(shape)
  local t = lumen.zeros(shape)
  local perm = lumen.randperm(t:numel())
  for i = 1, t:numel() do t:flat_set(i, perm[i] / 10) end
  return t
end

-- The program running these specs (`lumen test ...`), as an absolute path, for child processes.
M.LUMEN = lumen.core.exe_path()

-- A fresh temporary path ending in "_<name>"; a new private folder $TMPDIR/lumen_<name>_XXXXXX;
-- remove(path) deletes a file or a whole folder (rm -rf).
function M.tmp(name) return lumen.tmpname("_" .. name) end
function M.tmp_dir(name) return assert(lumen.core.mkdtemp("lumen_" .. name .. "_")) end
function M.remove(path) os.execute("rm -rf " .. M.quote(path)) end

-- The bytes of a file, or nil and "path: reason"; read_file raises instead. write(path, bytes).
function M.read(path)
  local f, err = io.open(path, "rb")
  if not f then return nil, err end
  local s = f:read("a")
  f:close()
  return s
end
function M.read_file(path) return assert(M.read(path)) end
function M.write(path, s)
  local f = assert(io.open(path, "wb"))
  f:write(s)
  f:close()
end

function M.npy(path) return assert(lumen.read_npy(path)) end
function M.json_file(path) return lumen.json.decode(M.read_file(path)) end

-- A shell word for s (single-quoted).
function M.quote(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

-- Runs a shell command; returns its output (stdout and stderr together) and its exit status.
function M.sh(cmd)
  local f = assert(io.popen(cmd .. " 2>&1; echo \"#status=$?\""))
  local out = f:read("a")
  f:close()
  return out:gsub("#status=%d+%s*$", ""), tonumber(out:match("#status=(%d+)%s*$"))
end

-- Runs `lumen run recipes/<name>.lua k=v ...` (LUMEN_QUIET=1) in a child process; returns its output,
-- raising with the command and the output when it fails.
function M.run_recipe(name, params)
  local args = {}
  for k, v in pairs(params) do args[#args + 1] = M.quote(k .. "=" .. tostring(v)) end
  table.sort(args)
  local cmd = ("LUMEN_QUIET=1 %s run recipes/%s.lua %s"):format(M.quote(M.LUMEN), name, table.concat(args, " "))
  local out, status = M.sh(cmd)
  assert(status == 0, cmd .. "\n" .. out)
  return out
end

-- Every regular file under dir (relative names) with its bytes.
function M.tree(dir)
  local files = {}
  local function walk(path, rel)
    for _, name in ipairs(assert(lumen.core.listdir(path))) do
      local st = lumen.core.lstat(path .. "/" .. name)
      if st and st.type == "directory" then walk(path .. "/" .. name, rel .. name .. "/")
      elseif st and st.type == "file" then files[rel .. name] = M.read(path .. "/" .. name) end
    end
  end
  walk(dir, "")
  return files
end

-- The manifest fields that differ between two runs of the same thing into the same folder: the wall
-- time, and the checksum that covers it.
M.PER_RUN = { seconds = true, manifest_sha256 = true }

-- got (M.tree) holds the same run files as want: every file but the manifests byte for byte; every
-- manifest.json with a checksum that holds, and equal to want's field by field except M.PER_RUN
-- (script, params, command, inputs with their absolute and relative paths, environment, code, files
-- and info all equal; so both runs must have written into the same absolute folder).
function M.assert_same_runs(want, got, what)
  local checksum = require("lumen.runs").checksum
  for name in pairs(want) do
    assert(got[name], ("%s: %s is missing"):format(what, name))
    if name:match("manifest%.json$") then
      local a, b = lumen.json.decode(want[name]), lumen.json.decode(got[name])
      assert(checksum(b) == b.manifest_sha256, ("%s: %s: its checksum does not hold"):format(what, name))
      for k in pairs(M.PER_RUN) do a[k], b[k] = nil, nil end
      assert.same(a, b, ("%s: %s differs beyond its wall time"):format(what, name))
    else
      assert(got[name] == want[name], ("%s: %s differs"):format(what, name))
    end
  end
  for name in pairs(got) do assert(want[name], ("%s: unexpected %s"):format(what, name)) end
end

return M
