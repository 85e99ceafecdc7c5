-- bench/occlusion.lua: lumen side of the occlusion bench: explain.occlusion with 16x16 patches, stride 8
-- (27 x 27 = 729 occluded copies, batches of 32) on ResNet-18 at 224x224, the input and target of
-- tests/fixtures/torch — incremental (the default: each copy recomputes what its patch reaches) and full
-- (the model given as a plain function: every copy a full forward). Twin: bench/occlusion_torch.py (full
-- re-forwards in batches of 32). Run: ./build/lumen run bench/occlusion.lua [reps=1 threads=2 modes=
-- incremental,full size=224 map=PREFIX]. With map=PREFIX the incremental map is written to PREFIX.lumen.npy
-- and compared with PREFIX.torch.npy when the torch side wrote one (the difference goes to stderr and
-- into the JSON line as max_diff_vs_torch); the full map is always compared with the incremental one.
local lumen = require "lumen"
local B = dofile(arg[0]:match("^(.*)/") .. "/benchlib.lua")

local p = B.args { reps = 1, threads = 2, modes = "incremental,full", size = 224, map = "",
                   model = "tests/fixtures/torch/resnet18.onnx.gz" }
local modes = B.names("modes", p.modes, { "incremental", "full" })
lumen.threads(p.threads)
local model = B.load_model(p.model)
if not model then return end
local info = lumen.json.decode(assert(io.open("tests/fixtures/torch/resnet18.json")):read("a"))
local x = assert(lumen.read_npy("tests/fixtures/torch/input.npy"))
if p.size ~= 224 then x = lumen.upsample_bilinear(x, { p.size, p.size }) end
local opts = { target = info.target, patch = 16, stride = 8, batch_size = 32 }
local positions = ((p.size - 16) // 8 + 1) * ((p.size - 16) // 8 + 1)
local flop = nil -- FLOPs come from the torch side (full re-forwards); the incremental side does fewer

local maps = {}
local runs = {
  incremental = function() maps.incremental = lumen.explain.occlusion(model, x, opts) end,
  full = function()
    maps.full = lumen.explain.occlusion(function(b) return model:forward(b, { logits = true }) end, x, opts)
  end,
}
for _, mode in ipairs(modes) do
  B.try("occlusion " .. mode, function()
    local ms = B.measure(runs[mode], p.reps, 0)
    local extra
    if mode == "incremental" and p.map ~= "" then
      lumen.write_npy(p.map .. ".lumen.npy", maps.incremental)
      local theirs = lumen.exists(p.map .. ".torch.npy") and lumen.read_npy(p.map .. ".torch.npy")
      if theirs then
        extra = lumen.max_abs_diff(maps.incremental, theirs)
        io.stderr:write(("occlusion: max |lumen incremental - torch| = %g (map max %g)\n"):format(extra,
          theirs:abs():max_all()))
      end
    end
    if mode == "full" and maps.incremental then
      io.stderr:write(("occlusion: max |incremental - full| = %g\n"):format(lumen.max_abs_diff(maps.incremental,
        maps.full)))
    end
    local line = { bench = "occlusion", side = os.getenv("LUMEN_BENCH_SIDE") or "lumen", case = ("occlusion 16/8 resnet18 %d (lumen %s)"):format(p.size,
      mode), batch = 32, pass = "explain", ms = ms, flop = flop, threads = lumen.threads(),
      core = lumen.core.blas_core(), positions = positions, max_diff_vs_torch = extra }
    io.stdout:write(lumen.json.encode(line), "\n")
    io.stdout:flush()
  end)
end
