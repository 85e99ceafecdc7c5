-- lumen.explain: one explanation method per file, loaded on first use.
-- Every method takes (model, input, opts): `model` is a lumen model or, for methods that need no inner
-- layer, a plain Lua function from a batch tensor to a batch of scores (N, classes); `opts.target` is a
-- 1-based class id (default: the model's top class). Methods return the attribution first, then the
-- target — a Lua array with one per sample for methods that explain a batch (saliency, guided
-- backprop, CAM, Grad-CAM), a number for those that explain one input — then extras; each file's
-- header says what it returns (integrated_gradients: attr, gap, target).
local files = {
  saliency = "saliency", smoothgrad = "smoothgrad", gradcam = "gradcam", gradcam_plus_plus = "gradcam",
  guided_gradcam = "gradcam", cam = "cam", guided_backprop = "guided", deconvnet = "guided",
  integrated_gradients = "integrated_gradients", occlusion = "occlusion", filters = "filters",
  feature_maps = "feature_maps", text_saliency = "text", text_integrated_gradients = "text",
  text_gradcam = "text", text_occlusion = "text",
  lime = "lime", kernel_shap = "shap", gradient_shap = "gradient_shap", permutation_importance = "permutation",
  lrp = "lrp", class_model = "class_model", deepdream = "deepdream", deconv = "deconv",
  deletion = "faithfulness", insertion = "faithfulness", sanity_check = "faithfulness",
  spearman = "faithfulness", auc = "faithfulness", top_inputs = "deconv",
  deconv_grid = { "deconv", "grid" }, lime_picture = { "lime", "picture" },
  patches = "permutation", windows = "permutation",
  common = "common",
  road = "road", road_impute = { "road", "impute" },
}

return setmetatable({}, {
  __index = function(t, k)
    local f = files[k]
    if not f then return nil end
    local field = k
    if type(f) == "table" then f, field = f[1], f[2] end
    local mod = require("lumen.explain." .. f)
    local v = (type(mod) == "table" and k ~= "common") and mod[field] or mod
    rawset(t, k, v)
    return v
  end,
})
