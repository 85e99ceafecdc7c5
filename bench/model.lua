-- bench/model.lua: lumen side of the model bench: ResNet-18 loaded from ONNX (lumen.load_model), forward
-- and forward + backward to the input, at each batch size. Run: ./build/lumen run bench/model.lua
-- [batches=1,32 reps=5 reps_big=2 model=tests/fixtures/torch/resnet18.onnx.gz]. Twin: bench/model_torch.py
-- (which also reports the FLOPs that bench/report.py uses for both sides).
local lumen = require "lumen"
local B = dofile(arg[0]:match("^(.*)/") .. "/benchlib.lua")

local p = B.args { batches = "1,32", reps = 5, reps_big = 2, model = "tests/fixtures/torch/resnet18.onnx.gz" }
local model = B.load_model(p.model)
for _, batch in ipairs(model and B.int_list(p.batches) or {}) do
  local reps = batch == 1 and p.reps or p.reps_big
  local x = lumen.randn { batch, 3, 224, 224 }
  B.try("resnet18 fwd", function()
    local ms = B.measure(function() lumen.no_grad(function() model:forward(x) end) end, reps)
    B.emit("model", "resnet18 224", batch, "fwd", ms)
  end)
  B.try("resnet18 fwd+bwd(x)", function()
    local xg = x:clone()
    xg.requires_grad = true
    local g = lumen.randn { batch, 1000 }
    local ms = B.measure(function() lumen.grad(model:forward(xg), xg, g) end, reps)
    B.emit("model", "resnet18 224", batch, "fwd+bwd(x)", ms)
  end)
end
