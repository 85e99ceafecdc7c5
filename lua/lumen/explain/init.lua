-- lumen.explain: one explanation method per file, loaded on first use (`lumen.explain.gradcam(...)`).
--
-- The rules every method file follows (and new ones must):
--
-- Module shape. A file lua/lumen/explain/<file>.lua returns a table of its public functions by name
-- (saliency.lua returns {saliency = fn}; gradcam.lua {gradcam =, gradcam_plus_plus =, guided_gradcam =}),
-- starts with a comment naming the paper, what it computes, every option with its default and what it
-- returns, and is listed in METHODS below (helpers that are not methods in HELPERS). It reaches the
-- model only through lumen.nn's interface (model:trace, replace, ending, roles, inputs_of, layers) and
-- the public tape (lumen.grad, lumen.with_rules, lumen.autograd.op_of) — never lumen.core.
--
-- Arguments. A method takes (model, input, opts): `model` is a lumen model or, for methods that need
-- no inner layer, a plain Lua function from a batch tensor to scores (N, classes). Class ids, layer
-- positions and token positions are 1-based; `target` omitted is the model's top class; scores are
-- those before a final softmax unless `probabilities = true` (then the softmax of the scores, whatever
-- the model ends in).
--
-- Options. Each method declares its options once, with defaults and kinds, through
-- lumen.explain.common.options(method, {name = {default, kind}, ...}) and checks opts with it at its
-- top (`local o = OPTIONS(opts, model)`): an unknown key is an error naming it and listing the valid
-- ones, a value of the wrong kind or out of range (n >= 1, noise >= 0, a layer the model has) is an
-- error naming the option, before any work. Checks that depend on the input (num_samples > features,
-- a layer's shape) follow as soon as the input tells. The header comment and the declaration agree
-- (tests/lua/explain_options_spec.lua reads both). lumen.explain.options(name) lists a method's
-- options: {name = {default =, accepts = "integer >= 1"}}.
--
-- Returns. First the explanation (map, attribution, picture); second the target: a Lua array with one
-- class id per sample for methods that explain a batch (saliency, guided backprop, CAM, Grad-CAM, LRP),
-- a number for methods that explain one input (x of batch 1); then extras, named in the header. CAM-style
-- methods (cam, gradcam, gradcam_plus_plus, guided_gradcam, text_gradcam, hirescam, layercam, xgradcam,
-- eigencam, scorecam, ablationcam, fullgrad) return map, targets, layer, then the raw map at the layer's
-- resolution and the map upsampled to the input, from the one pass (fullgrad: the names of its bias layers
-- in the layer's place, its raw map at the input's size). The layer-based ones share their options,
-- default layer and reading of token / channels-last layers (reshape =, layout =) through
-- common.cam_options and common.cam_pass.
-- Methods older than this rule keep the returns their Contract fixed: integrated_gradients (attr, gap,
-- target), text_integrated_gradients (attr, gap, target), kernel_shap (phi, base, values, target), lime
-- (weights, segments, r2, intercept, target), filters and feature_maps (picture, layer / activations),
-- class_model and deepdream (image, curve), deletion / insertion (auc, curve, target),
-- permutation_importance (importances, stds, metric), deconv (reconstruction, value, position),
-- sanity_check (rows, maps, layers).

-- Method name -> file (a file may hold several methods).
local METHODS = {
  saliency = "saliency", smoothgrad = "smoothgrad", gradcam = "gradcam", gradcam_plus_plus = "gradcam",
  guided_gradcam = "gradcam", cam = "cam", guided_backprop = "guided", deconvnet = "guided",
  integrated_gradients = "integrated_gradients", occlusion = "occlusion", filters = "filters",
  feature_maps = "feature_maps", text_saliency = "text", text_integrated_gradients = "text",
  text_gradcam = "text", text_occlusion = "text",
  lime = "lime", kernel_shap = "shap", gradient_shap = "gradient_shap", permutation_importance = "permutation",
  lrp = "lrp", class_model = "class_model", deepdream = "deepdream", deconv = "deconv", top_inputs = "deconv",
  deconv_grid = "deconv", lime_picture = "lime",
  deletion = "faithfulness", insertion = "faithfulness", sanity_check = "faithfulness",
  road = "road", road_impute = "road",
  hirescam = "cam_variants", layercam = "cam_variants", xgradcam = "cam_variants", eigencam = "eigencam",
  scorecam = "scorecam", ablationcam = "ablationcam", fullgrad = "fullgrad",
  attention_rollout = "attention", transformer_attribution = "attention",
}

-- Helpers that are public but take no options: name -> {file, field}.
local HELPERS = {
  spearman = { "faithfulness", "spearman" }, auc = { "faithfulness", "auc" },
  patches = { "permutation", "patches" }, windows = { "permutation", "windows" },
}

local explain = {}
explain.METHODS, explain.HELPERS = METHODS, HELPERS

-- options(method) -> {name = {default =, accepts =}} as the method declares them.
function explain.options(method)
  local file = METHODS[method]
  if not file then error(("explain.options: unknown method '%s'"):format(tostring(method)), 2) end
  require("lumen.explain." .. file)
  local o = require("lumen.explain.common").declared[method]
  if not o then error(("explain.options: method '%s' declares no options"):format(method), 2) end
  local res = {}
  for name, d in pairs(o.decl) do res[name] = { default = d.default, accepts = d.kind } end
  return res
end

return setmetatable(explain, {
  __index = function(t, k)
    if k == "common" then
      local v = require "lumen.explain.common"
      rawset(t, k, v)
      return v
    end
    local file, field = METHODS[k], k
    if not file and HELPERS[k] then file, field = HELPERS[k][1], HELPERS[k][2] end
    if not file then return nil end
    local v = require("lumen.explain." .. file)[field]
    if v == nil then error(("lumen.explain: %s.lua has no function '%s'"):format(file, field), 2) end
    rawset(t, k, v)
    return v
  end,
})
