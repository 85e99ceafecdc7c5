-- lumen: explain neural networks. `local lumen = require "lumen"`.
-- This file assembles the library from its parts; see DESIGN.md for the map.
local core = require "lumen.core"

local lumen = { core = core, version = core.version }
package.loaded.lumen = lumen -- parts may `require "lumen"` while we build

lumen.autograd = require "lumen.autograd"
lumen.autograd.lumen = lumen
require "lumen.tensor"(lumen)
require "lumen.ops_math"(lumen)
require "lumen.ops_nn"(lumen)
require "lumen.ops_act"(lumen)
require "lumen.io"(lumen)

local ag = lumen.autograd
lumen.grad = ag.grad
lumen.no_grad = ag.no_grad
lumen.with_rules = ag.with_rules
lumen.Function = ag.Function
lumen.def = ag.def
lumen.gradcheck = require "lumen.gradcheck"

-- Modules loaded on first use: lumen.nn, lumen.image, lumen.explain, ...
local lazy = {
  nn = "lumen.nn", optim = "lumen.optim", data = "lumen.data", image = "lumen.image", viz = "lumen.viz",
  explain = "lumen.explain", models = "lumen.models", onnx = "lumen.onnx", tflite = "lumen.tflite",
  html = "lumen.html", recipe = "lumen.recipe", linalg = "lumen.linalg",
}
setmetatable(lumen, {
  __index = function(t, k)
    local mod = lazy[k]
    if mod then
      local v = require(mod)
      rawset(t, k, v)
      return v
    end
    return nil
  end,
})

require "lumen.util"(lumen)

-- lumen's own op functions by name, as defined here (lumen.nn trusts a graph's op node that calls one of them).
ag.builtin = {}
for name in pairs(ag.ops) do
  if type(rawget(lumen, name)) == "function" then ag.builtin[name] = rawget(lumen, name) end
end

-- Tensor methods that live in lazily loaded modules.
function lumen.Tensor.save(t, path, opts) return lumen.image.save(t, path, opts) end

-- Models: lumen.load_model(path) reads ONNX (.onnx, .onnx.gz), TFLite and lumen checkpoints;
-- lumen.labels(path) reads a label file, one label per line.
function lumen.load_model(path, opts) return require("lumen.models").load_model(path, opts) end
function lumen.labels(path) return require("lumen.models").labels(path) end

-- lumen.limits() -> {name = value}, {name = doc}: the bounds readers and importers check before they
-- allocate (image_pixels, file_bytes, inflated_bytes, tensor_bytes, model_nodes, model_tensors).
-- lumen.limits{image_pixels = 2e8} raises some for the whole process and returns the values before.
lumen.limits = core.limits
return lumen
