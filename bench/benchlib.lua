-- bench/benchlib.lua: what the lumen bench scripts share: arguments, 2 threads, wall-clock timing
-- (lumen.now) and the JSON lines that bench/report.py reads: {"bench", "side": "lumen", "case", "batch",
-- "pass", "ms": [...], "flop"}. Mirrors bench/benchlib.py on the PyTorch side.
-- Load it from a bench script with: local B = dofile(arg[0]:match("^(.*)/") .. "/benchlib.lua")
local lumen = require "lumen"

local B = { dir = arg[0]:match("^(.*)/") or "." }

-- lumen.args with 2 threads for lumen's own loops and a fixed seed.
function B.args(defaults)
  local p = lumen.args(defaults)
  lumen.threads(2)
  lumen.seed(0)
  return p
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
-- previous run is collected before each timed run, outside the timing.
function B.measure(fn, reps, warmup)
  for _ = 1, warmup or 1 do fn() end
  local out = {}
  for r = 1, reps do
    collectgarbage()
    local t0 = lumen.now()
    fn()
    out[r] = math.floor((lumen.now() - t0) * 1e7 + 0.5) / 1e4
  end
  collectgarbage()
  return out
end

function B.emit(bench, case, batch, pass, ms, flop)
  io.stdout:write(lumen.json.encode { bench = bench, side = "lumen", case = case, batch = batch, pass = pass,
                                      ms = ms, flop = flop, threads = lumen.threads(),
                                      core = lumen.core.blas_core() }, "\n")
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
