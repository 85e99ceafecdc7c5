-- bench/benchlib.lua: what the lumen bench scripts share: arguments (threads = 2 unless given), wall-clock
-- timing (lumen.now), peak RSS per workload, and the JSON lines that bench/report.py reads: {"bench",
-- "side": "lumen", "case", "batch", "pass", "ms": [...], "flop", "threads", "rss_mib"}. Mirrors
-- bench/benchlib.py on the PyTorch side and bench/ort.js on onnxruntime's.
-- Load it from a bench script with: local B = dofile(arg[0]:match("^(.*)/") .. "/benchlib.lua")
local lumen = require "lumen"

local B = { dir = arg[0]:match("^(.*)/") or "." }

-- lumen.args (plus threads = 2: lumen.threads(n) sets OpenBLAS, oneDNN and lumen's own loops) and a fixed seed.
function B.args(defaults)
  defaults.threads = defaults.threads or 2
  local p = lumen.args(defaults)
  lumen.threads(p.threads)
  lumen.seed(0)
  return p
end

-- Peak resident memory per workload: B.rss_reset() before it (drops lumen's caches of freed blocks and
-- resets the kernel's high-water mark), B.rss_peak() after it, in MiB (nil where /proc is missing).
function B.rss_reset()
  collectgarbage()
  collectgarbage()
  if lumen.core.release_caches then lumen.core.release_caches() end -- (older builds: LUMEN_BEFORE)
  local f = io.open("/proc/self/clear_refs", "w")
  if f then f:write("5") f:close() end
end

function B.rss_peak()
  local f = io.open("/proc/self/status")
  if not f then return nil end
  local kb = f:read("a"):match("VmHWM:%s*(%d+)")
  f:close()
  return kb and math.floor(tonumber(kb) / 1024 + 0.5)
end

-- The comma list `s` (argument `key`) as a list of names, each one of `known` ("all": every known name). A
-- name that matches none is an error naming it and the known ones, before any work: a typo must not run an
-- empty bench that reports nothing.
function B.names(key, s, known)
  if s == "all" then return table.move(known, 1, #known, 1, {}) end
  local ok, out = {}, {}
  for _, k in ipairs(known) do ok[k] = true end
  for v in tostring(s):gmatch("[^,]+") do
    if not ok[v] then
      error(("%s: %s=%s: no '%s' (known: %s)"):format(arg[0], key, s, v, table.concat(known, ",")), 0)
    end
    out[#out + 1] = v
  end
  return out
end

-- The names of the networks `specs` (bench/models.json's list), in its order.
function B.model_names(specs)
  local out = {}
  for _, spec in ipairs(specs) do out[#out + 1] = spec.name end
  return out
end

function B.int_list(s)
  local out = {}
  for v in tostring(s):gmatch("[^,]+") do out[#out + 1] = math.tointeger(tonumber(v)) end
  return out
end

function B.read_json(name)
  local f = assert(io.open(B.dir .. "/" .. name, "rb"))
  local s = f:read("a")
  f:close()
  return lumen.json.decode(s)
end

-- Wall-clock milliseconds of fn() for each of reps runs, after warmup runs. The garbage of the
-- previous run is collected before each timed run, outside the timing. B.last_cpu gets the process CPU
-- milliseconds of the same runs (all threads): at one thread, a figure that holds on a loaded machine.
function B.measure(fn, reps, warmup)
  for _ = 1, warmup or 1 do
    fn()
    collectgarbage() -- as between the timed runs: the peak memory is one run's
  end
  local out, cpu = {}, {}
  for r = 1, reps do
    collectgarbage()
    local t0, c0 = lumen.now(), os.clock()
    fn()
    out[r] = math.floor((lumen.now() - t0) * 1e7 + 0.5) / 1e4
    cpu[r] = math.floor((os.clock() - c0) * 1e7 + 0.5) / 1e4
  end
  collectgarbage()
  B.last_cpu = cpu
  return out
end

function B.emit(bench, case, batch, pass, ms, flop, rss)
  local conv = lumen.core.conv_backend and lumen.core.conv_backend() or "im2col"
  io.stdout:write(lumen.json.encode { bench = bench, side = os.getenv("LUMEN_BENCH_SIDE") or "lumen", case = case,
                                      batch = batch, pass = pass, ms = ms, flop = flop, threads = lumen.threads(),
                                      rss_mib = rss, cpu_ms = B.last_cpu, core = lumen.core.blas_core(),
                                      conv = conv }, "\n")
  B.last_cpu = nil
  io.stdout:flush()
end

-- Runs fn() and, if it raises (an API not written yet), reports the error on stderr instead of dying,
-- so the other cases of the script still run.
function B.try(label, fn)
  local ok, err = pcall(fn)
  if not ok then io.stderr:write(("bench %s: skipped (%s)\n"):format(label, tostring(err))) end
  return ok
end

-- lumen.load_model(path), or nil after reporting on stderr why it could not be loaded.
function B.load_model(path)
  local ok, model, err = pcall(lumen.load_model, path)
  if ok and model then return model end
  io.stderr:write(("bench: cannot load %s: %s\n"):format(path, tostring(ok and err or model)))
  return nil
end

return B
