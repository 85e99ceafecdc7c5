-- bench/model.lua: lumen side of the model bench: each network of bench/models.json (ResNet-18, MobileNet v1 0.5,
-- v2, v3, EfficientNet-B0, VGG-16) loaded from its ONNX file, forward and forward + backward to the input, at
-- each of its batch sizes, with the peak resident memory of each workload. Run: ./build/lumen run
-- bench/model.lua [models=all reps=5 reps_big=2 warmup=3 batches=<from models.json> threads=2] (warmup: passes
-- before the timed ones at batch 1, one at larger batches). Twins:
-- bench/model_torch.py (which also reports the FLOPs that bench/report.py uses for all sides) and bench/ort.js.
local lumen = require "lumen"
local B = dofile(arg[0]:match("^(.*)/") .. "/benchlib.lua")

local p = B.args { models = "all", batches = "", reps = 5, reps_big = 2, warmup = 3 }
local wanted = {}
local specs = B.read_json("models.json")
for _, name in ipairs(B.names("models", p.models, B.model_names(specs))) do wanted[name] = true end
for _, spec in ipairs(specs) do
  if wanted[spec.name] then
    local model = lumen.exists(spec.onnx) and B.load_model(spec.onnx)
    if not model then io.stderr:write(("bench: skipping %s (%s)\n"):format(spec.name, spec.onnx)) end
    local batches = p.batches ~= "" and B.int_list(p.batches) or spec.batches
    for _, batch in ipairs(model and batches or {}) do
      local reps, warmup = batch == 1 and p.reps or p.reps_big, batch == 1 and p.warmup or 1
      local case = ("%s %d"):format(spec.name, spec.size)
      local x = lumen.randn { batch, 3, spec.size, spec.size }
      B.try(spec.name .. " fwd", function()
        B.rss_reset()
        local ms = B.measure(function() lumen.no_grad(function() model:forward(x) end) end, reps, warmup)
        B.emit("model", case, batch, "fwd", ms, nil, B.rss_peak())
      end)
      B.try(spec.name .. " fwd+bwd(x)", function()
        local xg = x:clone()
        xg.requires_grad = true
        local g = lumen.randn(lumen.no_grad(function() return model:forward(x) end).shape)
        B.rss_reset()
        local ms = B.measure(function() lumen.grad(model:forward(xg), xg, g) end, reps, warmup)
        B.emit("model", case, batch, "fwd+bwd(x)", ms, nil, B.rss_peak())
      end)
    end
    model = nil
    collectgarbage()
  end
end
