-- Specs for CAM methods on token and channels-last layers (lumen.explain.common.cam_form, cam_pass and
-- last_spatial_layer), with small models built from lumen.nn layers and function nodes: a token model
-- (patch convolution -> tokens -> class token -> per-token Linear -> mean -> head) and a channels-last one
-- (patch convolution -> (N, h, w, C) -> Linear over C -> mean -> head). A token or channels-last layer
-- read with reshape = / layout = holds the same values and gradients as the patch convolution's
-- (N, C, h, w) output, so every CAM method must give the same map at both; the default layer refuses
-- them with an error naming what to pass, and takes a CNN's last map, not a pooled channels-last tensor.
local lumen = require "lumen"
local support = require "support"
local assert_close = support.assert_close
local nn = lumen.nn
local explain = lumen.explain

local C = 8 -- channels (embedding width)

-- (N, 3, 8, 8) -> "patch" (N, C, 4, 4) -> "tokens" (N, 16, C) -> "cls" (N, 17, C) -> "mix" (per token) ->
-- "attend" (each token plus the mean of all: a crude attention) -> "act" -> "pool" (mean over tokens, or
-- the class token alone with cls_only, as a ViT's head reads it) -> "head" (N, 3).
local function token_model(cls_only)
  lumen.seed(21)
  local cls = lumen.randn { 1, 1, C }
  return nn.Graph { inputs = { "x" }, outputs = { "head" }, nodes = {
    { name = "patch", module = nn.Conv2d { in_channels = 3, out_channels = C, kernel_size = 2, stride = 2 },
      inputs = { "x" } },
    { name = "tokens", fn = function(p) return p:flatten(3):transpose(2, 3) end, type = "Reshape",
      inputs = { "patch" } },
    { name = "cls", fn = function(t) return lumen.cat({ cls:expand { t.shape[1], 1, C }, t }, 2) end, type = "Concat",
      inputs = { "tokens" } },
    { name = "mix", module = nn.Linear { in_features = C, out_features = C }, inputs = { "cls" } },
    { name = "attend", fn = function(t) return t + t:mean(2, true) end, type = "Mix", inputs = { "mix" } },
    { name = "act", module = nn.ReLU {}, inputs = { "attend" } },
    { name = "pool", fn = cls_only and function(t) return t:select(2, 1) end or function(t) return t:mean(2) end,
      type = "Pool", inputs = { "act" } },
    { name = "head", module = nn.Linear { in_features = C, out_features = 3 }, inputs = { "pool" } },
  } }
end

-- (N, 3, 8, 8) -> "patch" (N, C, 4, 4) -> "nhwc" (N, 4, 4, C) -> "mlp" (Linear over C) -> "act" -> "pool"
-- (mean over h, w) -> "head" (N, 3).
local function channels_last_model()
  lumen.seed(22)
  return nn.Graph { inputs = { "x" }, outputs = { "head" }, nodes = {
    { name = "patch", module = nn.Conv2d { in_channels = 3, out_channels = C, kernel_size = 2, stride = 2 },
      inputs = { "x" } },
    { name = "nhwc", fn = function(p) return p:permute { 1, 3, 4, 2 } end, type = "Transpose", inputs = { "patch" } },
    { name = "mlp", module = nn.Linear { in_features = C, out_features = C }, inputs = { "nhwc" } },
    { name = "act", module = nn.ReLU {}, inputs = { "mlp" } },
    { name = "pool", fn = function(t) return t:mean { 2, 3 } end, type = "Pool", inputs = { "act" } },
    { name = "head", module = nn.Linear { in_features = C, out_features = 3 }, inputs = { "pool" } },
  } }
end

local METHODS = { "gradcam", "gradcam_plus_plus", "hirescam", "layercam", "xgradcam", "eigencam", "scorecam",
                  "ablationcam" }

-- method at layer (with opts) gives the same raw map as at the patch convolution
local function same_as_patch(model, x, method, opts, what)
  local want, targets = explain[method](model, x, { layer = "patch", raw = true })
  local o = { raw = true, target = targets }
  for k, v in pairs(opts) do o[k] = v end
  local got, _, layer = explain[method](model, x, o)
  assert.equal(opts.layer, layer)
  assert.is_true(want:max_all() > 0, method .. ": a non-trivial map")
  assert_close(got, want, 1e-5, method .. " " .. what)
end

describe("CAM methods on token and channels-last layers", function()
  local x
  before_each(function() x = lumen.randn { 2, 3, 8, 8 } end)

  it("read tokens (N, h w, C) with reshape = {h, w} as the patch grid (N, C, h, w), every method", function()
    local model = token_model()
    for _, method in ipairs(METHODS) do
      same_as_patch(model, x, method, { layer = "tokens", reshape = { 4, 4 } }, "reshape = {4, 4}")
      same_as_patch(model, x, method, { layer = "tokens" }, "16 tokens: a 4 x 4 grid inferred")
    end
  end)

  it("drop a class token (1 + h w tokens), with the grid inferred or given", function()
    local model = token_model()
    for _, method in ipairs(METHODS) do
      if method ~= "ablationcam" then -- which ablates the class token's channel too (below)
        same_as_patch(model, x, method, { layer = "cls" }, "class token")
        same_as_patch(model, x, method, { layer = "cls", reshape = { 4, 4 }, layout = "tokens" }, "class token")
      end
    end
    -- Ablation-CAM zeroes a channel in every token: at "cls" that is the patch ablation and the class token's
    local _, targets, _, _, _, w = explain.ablationcam(model, x, { layer = "cls" })
    local base = model:forward(x)
    local _, acts = model:forward(x, { capture = { "cls" } })
    local copy = acts.cls:detach():narrow(1, 1, 1):clone()
    copy:fill_box_({ 1, 1, 3 }, { 1, 17, 1 }, 0)
    local y = model:forward(x:narrow(1, 1, 1), { replace = { cls = copy } }):get { 1, targets[1] }
    local y0 = base:get { 1, targets[1] }
    assert.near((y0 - y) / y0, w:get { 1, 3 }, 1e-5)
  end)

  it("read channels-last maps (N, h, w, C), detected or with layout = 'nhwc', every method", function()
    local model = channels_last_model()
    for _, method in ipairs(METHODS) do
      same_as_patch(model, x, method, { layer = "nhwc" }, "detected")
      same_as_patch(model, x, method, { layer = "nhwc", layout = "nhwc" }, "layout = 'nhwc'")
    end
    -- layout = 'nchw' forces the other reading: a different (4 x 8) map
    local m = explain.gradcam(model, x, { layer = "act", layout = "nchw", raw = true })
    assert.same({ 2, 1, 4, C }, m.shape)
  end)

  it("refuse a default layer for token and channels-last models, saying what to pass", function()
    assert.has_error(function() explain.gradcam(token_model(), x) end,
      "gradcam: the model's last spatial outputs are tokens (N, tokens, C), not (N, C, h, w) maps: pass layer = 'act' "
      .. "((2, 17, 8)) with reshape = {4, 4}, the last token layer whose patch tokens the score depends on (after it "
      .. "only the class token reaches the head)")
    -- with a ViT's head (the class token alone), the last layer before the tokens mix
    assert.has_error(function() explain.layercam(token_model(true), x) end,
      "layercam: the model's last spatial outputs are tokens (N, tokens, C), not (N, C, h, w) maps: pass layer = "
      .. "'mix' ((2, 17, 8)) with reshape = {4, 4}, the last token layer whose patch tokens the score depends on "
      .. "(after it only the class token reaches the head)")
    assert.has_error(function() explain.scorecam(channels_last_model(), x) end,
      "scorecam: the model's last spatial outputs are channels-last (N, h, w, C), not (N, C, h, w) maps: pass "
      .. "layer = 'act' ((2, 4, 4, 8)) with layout = 'nhwc'")
    lumen.seed(5)
    local dense = nn.Sequential { nn.Flatten {}, nn.Linear { in_features = 192, out_features = 3 } }
    assert.has_error(function() explain.eigencam(dense, x) end,
      "eigencam: no layer with a spatial output (N, C, h, w), h, w > 1, found; pass layer = (and reshape = {h, w} "
      .. "for tokens, layout = 'nhwc' for channels-last maps)")
  end)

  it("take a CNN's last map, not a pooled channels-last tensor after it (a ConvNeXt head)", function()
    lumen.seed(23)
    local model = nn.Graph { inputs = { "x" }, outputs = { "head" }, nodes = {
      { name = "feat", module = nn.Conv2d { in_channels = 3, out_channels = C, kernel_size = 3, padding = 1 },
        inputs = { "x" } },
      { name = "gap", module = nn.GlobalAvgPool2d { keepdims = true }, inputs = { "feat" } },
      { name = "nhwc", fn = function(p) return p:permute { 1, 3, 4, 2 } end, type = "Transpose", inputs = { "gap" } },
      { name = "norm", module = nn.Linear { in_features = C, out_features = C }, inputs = { "nhwc" } },
      { name = "flat", module = nn.Flatten {}, inputs = { "norm" } },
      { name = "head", module = nn.Linear { in_features = C, out_features = 3 }, inputs = { "flat" } },
    } }
    local _, _, layer, raw = explain.gradcam(model, x)
    assert.equal("feat", layer)
    assert.same({ 2, 1, 8, 8 }, raw.shape)
    -- a CNN whose GAP is a flatten + mean: (N, C, h w) is not taken for tokens
    lumen.seed(24)
    local flat = nn.Graph { inputs = { "x" }, outputs = { "head" }, nodes = {
      { name = "feat", module = nn.Conv2d { in_channels = 3, out_channels = 16, kernel_size = 3, padding = 1 },
        inputs = { "x" } },
      { name = "flat", fn = function(p) return p:flatten(3) end, type = "Reshape", inputs = { "feat" } },
      { name = "mean", fn = function(t) return t:mean(3) end, type = "ReduceMean", inputs = { "flat" } },
      { name = "head", module = nn.Linear { in_features = 16, out_features = 3 }, inputs = { "mean" } },
    } }
    assert.equal("feat", select(3, explain.hirescam(flat, x)))
  end)

  it("refuse patch tokens without gradient when only the class token reaches the head", function()
    local model = token_model(true)
    assert.has_error(function() explain.gradcam(model, x, { layer = "act" }) end,
      "gradcam: layer 'act': the target score depends only on its first 1 token(s), not on the patch tokens; choose "
      .. "an earlier layer (for a ViT the input of the last block's attention)")
    local before = explain.gradcam(model, x, { layer = "cls", raw = true }) -- before the mixing: fine
    assert.is_true(before:max_all() > 0)
  end)

  it("check reshape and layout against the layer, naming the problem", function()
    local model = token_model()
    local cases = {
      { { layer = "tokens", reshape = { 0, 4 } },
        "gradcam: reshape must be {h, w} with integers >= 1 (the patch grid), got {0, 4}" },
      { { layer = "tokens", reshape = { 4 } },
        "gradcam: reshape must be {h, w} with integers >= 1 (the patch grid), got {4}" },
      { { layer = "cls", reshape = { 5, 5 } }, "gradcam: layer 'cls' has output (2, 17, 8); reshape = {5, 5} needs 25 "
        .. "patch tokens after at most 16 others, the layer has 17 tokens" },
      { { layer = "patch", reshape = { 4, 4 } }, "gradcam: layer 'patch' has output (2, 8, 4, 4); reshape = {h, w} "
        .. "reads tokens (N, tokens, C), and this is 4-D: pass layout = 'nchw' or 'nhwc' instead" },
      { { layer = "patch", layout = "tokens" }, "gradcam: layer 'patch' has output (2, 8, 4, 4); layout = 'tokens' "
        .. "needs (N, tokens, C)" },
      { { layer = "tokens", layout = "nhwc" }, "gradcam: layer 'tokens' has output (2, 16, 8); layout = 'nhwc' needs a "
        .. "4-D output" },
      { { layout = "nwhc" }, "gradcam: layout must be 'nchw', 'nhwc' or 'tokens', got 'nwhc'" },
      { { reshape = 4 }, "gradcam: reshape must be a table, got 4" },
    }
    for _, c in ipairs(cases) do assert.has_error(function() explain.gradcam(model, x, c[1]) end, c[2]) end
    lumen.seed(25)
    local odd = nn.Graph { inputs = { "x" }, outputs = { "head" }, nodes = {
      { name = "patch", module = nn.Conv2d { in_channels = 3, out_channels = C, kernel_size = 4, stride = 2 },
        inputs = { "x" } }, -- 2 leading tokens + 3 x 3 = 9 patches: 11 tokens
      { name = "tokens", fn = function(p)
          local t = p:flatten(3):transpose(2, 3)
          return lumen.cat({ lumen.ones { t.shape[1], 2, C }, t }, 2)
        end, type = "Concat", inputs = { "patch" } },
      { name = "pool", fn = function(t) return t:mean(2) end, type = "Pool", inputs = { "tokens" } },
      { name = "head", module = nn.Linear { in_features = C, out_features = 3 }, inputs = { "pool" } },
    } }
    local lc = explain.layercam(odd, x, { layer = "tokens", reshape = { 3, 3 }, raw = true }) -- 2 tokens dropped
    assert_close(lc, explain.layercam(odd, x, { layer = "patch", raw = true }), 1e-6, "leading tokens dropped")
    assert.has_error(function() explain.layercam(odd, x, { layer = "tokens" }) end,
      "layercam: layer 'tokens' has output (2, 11, 8); 11 tokens are not a square patch grid (g*g or 1 + g*g): pass "
      .. "reshape = {h, w}")
  end)
end)
