-- bench/explain.lua: lumen side of the explain bench: SmoothGrad (n = 50, batch_size = 10) and Integrated
-- Gradients (50 steps, batch_size = 10) on ResNet-18 at 224x224; KernelSHAP and LIME with 1000 model
-- evaluations in batches of 50 on MobileNet v1 0.5 160 (ONNX from ../shared/data), on an 8x8 grid of
-- 20x20 superpixels. Run: ./build/lumen run bench/explain.lua [reps=3 methods=smoothgrad,ig,kernel_shap,lime
-- model=... mobilenet=...]. Twin: bench/explain_torch.py (the FLOPs and the model-only work).
local lumen = require "lumen"
local B = dofile(arg[0]:match("^(.*)/") .. "/benchlib.lua")

local p = B.args { reps = 3, methods = "smoothgrad,ig,kernel_shap,lime",
                   model = "tests/fixtures/torch/resnet18.onnx.gz",
                   mobilenet = "../shared/data/models/mobilenet_v1_0.5_160_float.onnx" }
local want = {}
for m in p.methods:gmatch("[^,]+") do want[m] = true end
local explain = lumen.explain

local function bench(name, fn) -- warmup 0: each run is seconds long, the median drops a cold first one
  B.try(name, function() B.emit("explain", name, 1, "explain", B.measure(fn, p.reps, 0)) end)
end

local resnet = (want.smoothgrad or want.ig) and B.load_model(p.model)
if resnet then
  local x = lumen.randn { 1, 3, 224, 224 }
  local target = 155
  if want.smoothgrad then
    bench("smoothgrad n=50 bs=10 resnet18", function()
      explain.smoothgrad(resnet, x, { target = target, n = 50, noise = 0.15, batch_size = 10 })
    end)
  end
  if want.ig then
    bench("ig steps=50 bs=10 resnet18", function()
      explain.integrated_gradients(resnet, x, { target = target, steps = 50, batch_size = 10 })
    end)
  end
end

local mobilenet
if want.kernel_shap or want.lime then
  if lumen.exists(p.mobilenet) then
    mobilenet = B.load_model(p.mobilenet)
  else
    io.stderr:write(("explain.lua: skipping kernel_shap and lime: %s not found\n"):format(p.mobilenet))
  end
end
if mobilenet then
  local x = lumen.uniform({ 1, 3, 160, 160 }, -1, 1)
  local rows = {}
  for i = 0, 159 do
    local row = {}
    for j = 0, 159 do row[j + 1] = (i // 20) * 8 + j // 20 + 1 end
    rows[i + 1] = row
  end
  local segments = lumen.tensor(rows):long() -- (160, 160), ids 1..64
  if want.kernel_shap then
    bench("kernel_shap 1000 evals bs=50 mobilenet_v1", function()
      explain.kernel_shap(mobilenet, x, { target = 1, features = segments, nsamples = 1000, batch_size = 50 })
    end)
  end
  if want.lime then
    bench("lime 1000 evals bs=50 mobilenet_v1", function()
      explain.lime(mobilenet, x, { target = 1, segments = segments, num_samples = 1000, batch_size = 50 })
    end)
  end
end
