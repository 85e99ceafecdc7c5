-- bench/explain.lua: lumen side of the explain bench: saliency (one input gradient), SmoothGrad (n = 50,
-- batch_size = 10) and Integrated Gradients (50 steps, batch_size = 10) on ResNet-18 at 224x224; KernelSHAP and
-- LIME with 1000 model evaluations in batches of 50 on each network of `samplers` (bench/models.json: MobileNet
-- v1 0.5 at 160, v2, v3 and EfficientNet-B0 at 224), on a grid of 20x20 superpixels; the peak resident memory
-- of each. Run: ./build/lumen run bench/explain.lua [reps=3 methods=saliency,smoothgrad,ig,kernel_shap,lime
-- model=... samplers=... threads=2]. Twin: bench/explain_torch.py (the FLOPs and the model-only work).
local lumen = require "lumen"
local B = dofile(arg[0]:match("^(.*)/") .. "/benchlib.lua")

local p = B.args { reps = 3, methods = "saliency,smoothgrad,ig,kernel_shap,lime",
                   model = "tests/fixtures/torch/resnet18.onnx.gz",
                   samplers = "mobilenet_v1_0.5,mobilenet_v2,mobilenet_v3_large,efficientnet_b0" }
local want = {}
for _, m in ipairs(B.names("methods", p.methods, { "saliency", "smoothgrad", "ig", "kernel_shap", "lime" })) do
  want[m] = true
end
local model_specs = B.read_json("models.json")
local samplers = B.names("samplers", p.samplers, B.model_names(model_specs))
local explain = lumen.explain

-- warmup 0: each run is seconds long, the median drops a cold first one; a method of a fraction of a second
-- (the saliency: one gradient) gets `fast` = 2 warm-up calls and 3x the reps, as a cold first call (oneDNN making
-- its primitives) would otherwise be one of three samples.
local function bench(name, fn, fast)
  B.try(name, function()
    B.rss_reset()
    local ms = B.measure(fn, fast and 3 * p.reps or p.reps, fast and 2 or 0)
    B.emit("explain", name, 1, "explain", ms, nil, B.rss_peak())
  end)
end

local resnet = (want.saliency or want.smoothgrad or want.ig) and B.load_model(p.model)
if resnet then
  local x = lumen.randn { 1, 3, 224, 224 }
  local target = 155
  if want.saliency then
    bench("saliency resnet18", function() explain.saliency(resnet, x, { target = target }) end, true)
  end
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
  resnet = nil
end

local specs = {}
for _, s in ipairs(model_specs) do specs[s.name] = s end
for _, name in ipairs(samplers) do
  local spec = specs[name]
  if not (want.kernel_shap or want.lime) then break end
  local model = spec and lumen.exists(spec.onnx) and B.load_model(spec.onnx)
  if not model then
    io.stderr:write(("explain.lua: skipping kernel_shap and lime on %s: no model file\n"):format(name))
  else
    local S = spec.size
    local x = lumen.uniform({ 1, 3, S, S }, -1, 1)
    local cols = (S + 19) // 20
    local rows = {}
    for i = 0, S - 1 do
      local row = {}
      for j = 0, S - 1 do row[j + 1] = (i // 20) * cols + j // 20 + 1 end
      rows[i + 1] = row
    end
    local segments = lumen.tensor(rows):long() -- (S, S), ids 1..cols^2
    if want.kernel_shap then
      bench("kernel_shap 1000 evals bs=50 " .. name, function()
        explain.kernel_shap(model, x, { target = 1, features = segments, nsamples = 1000, batch_size = 50 })
      end)
    end
    if want.lime then
      bench("lime 1000 evals bs=50 " .. name, function()
        explain.lime(model, x, { target = 1, segments = segments, num_samples = 1000, batch_size = 50 })
      end)
    end
  end
end
