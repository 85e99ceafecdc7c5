-- Measures of whether an explanation is faithful to the model.
--
-- Deletion / insertion (Petsiuk, Das & Saenko 2018, "RISE"): rank the pixels by the map, then remove
-- them from x (deletion: replaced by the baseline) or reveal them on the baseline (insertion) in `steps`
-- equal steps, recording the target's probability (softmax of the scores) after each. A faithful map
-- makes deletion fall fast (low AUC) and insertion rise fast (high AUC); order = "random" gives the
-- baseline to beat. AUC is the trapezoid area under the curve on [0, 1].
-- deletion(model, x, map, opts) / insertion(model, x, map, opts): x (1, C, H, W); map with H*W values
--   ((1, 1, H, W), (H, W), ...; a map with channels (1, C, H, W) is ranked by sum_C |map|).
-- opts: target = top class; steps = 50; baseline = 0 | "blur" (gaussian, sigma 5) | a number | a tensor
--       (deletion: baseline = 0, insertion: baseline = "blur"); order = "map" | "random"; batch_size = 25;
--       probabilities = true (false: the raw scores; a plain function gives scores and their softmax is
--       taken).
-- Returns auc, the curve (steps + 1 values) and the target.
--
-- Sanity checks (Adebayo et al. 2018, "Sanity Checks for Saliency Maps"): cascading randomisation of
-- the weights, from the top layer down; a map that stays the same is not explaining the model.
-- sanity_check(model, x, method, opts): method(model, x, {target = c}) -> map. opts: target = top class
-- (kept fixed for every randomised model); layers = every layer with parameters, top first; abs = true
-- (compare |maps|). Each layer's parameters are redrawn as N(0, rms^2) of their own values, cumulatively.
-- Returns rows {layer =, spearman =} (rank correlation with the original map), the maps (original
-- first) and the layer names. The model's weights are restored afterwards.
-- spearman(a, b): Spearman rank correlation of two tensors of equal size (ties get their average rank).
local lumen = require "lumen"
local common = require "lumen.explain.common"

local M = {}

local CURVE = {}
for _, method in ipairs { "deletion", "insertion" } do
  CURVE[method] = common.options(method, {
    target = { nil, "integer >= 1" }, steps = { 50, "integer >= 1" },
    baseline = { method == "deletion" and 0 or "blur", "number | 'blur' | tensor" },
    order = { "map", "'map' | 'random'" }, batch_size = { 25, "integer >= 1" }, probabilities = { true, "boolean" },
  })
end
local SANITY = common.options("sanity_check", { target = { nil, "integer >= 1" }, layers = { nil, "table" },
                                                abs = { true, "boolean" } })

-- Pixel ranks (a float tensor (H*W), 1 = first to change) by decreasing map value (|map| summed over
-- channels), or random.
local function pixel_ranks(map, hw, order)
  if order == "random" then return common.pixel_ranks(nil, hw) end
  return common.pixel_ranks(map:numel() == hw and map or map:abs():sum(2), hw)
end

function M.auc(curve)
  local s = 0
  for i = 1, #curve - 1 do s = s + (curve[i] + curve[i + 1]) / 2 end
  return s / (#curve - 1)
end

local function make_baseline(x, b)
  if lumen.is_tensor(b) then return b end
  if b == "blur" then return lumen.gaussian_blur(x, 5) end
  return lumen.full_like(x, b or 0)
end

local function curve(model, x, map, opts, insertion)
  local method = insertion and "insertion" or "deletion"
  local o = CURVE[method](opts, model)
  common.single(x, method)
  if #x.shape ~= 4 then error(("%s: expected an image (1, C, H, W), got %s"):format(method, lumen.shape_str(x)), 3) end
  local _, _, H, W = table.unpack(x.shape)
  local hw, steps = H * W, o.steps
  if not lumen.is_tensor(map) or (map:numel() ~= hw and map:numel() ~= x:numel()) then
    error(("%s: the map must have H*W = %d values (or be shaped like x), got %s"):format(method, hw,
      lumen.is_tensor(map) and lumen.shape_str(map) or type(map)), 3)
  end
  local base = make_baseline(x, o.baseline)
  if not lumen.same_shape(base, x) then
    error(("%s: baseline %s differs from the input %s"):format(method, lumen.shape_str(base), lumen.shape_str(x)), 3)
  end
  local function probs(t) return lumen.no_grad(common.scores, model, t, o) end
  local target = common.targets(probs(x), o.target, method)[1]
  local rank = pixel_ranks(map, hw, o.order)
  local from, to = x, base
  if insertion then from, to = base, x end
  local out = {}
  common.batches(steps + 1, o.batch_size, function(first, n)
    local masks = {}
    for j = 1, n do -- 1 where changed: the first k pixels of the order after step first + j - 2
      masks[j] = rank:le(math.floor((first + j - 2) * hw / steps + 0.5)):reshape { 1, 1, H, W }
    end
    local mk = lumen.cat(masks, 1)
    local p = probs(from + mk * (to - from))
    for j = 1, n do out[first + j - 1] = p:get { j, target } end
  end, insertion and "insertion" or "deletion")
  return M.auc(out), out, target
end

function M.deletion(model, x, map, opts) return curve(model, x, map, opts, false) end
function M.insertion(model, x, map, opts) return curve(model, x, map, opts, true) end

-- Average ranks (1..n, ties averaged) of the n values of t, as a Lua array by position.
local function ranks(t, n)
  local v, idx = t:reshape { n }:sort(1)
  local r, i = {}, 1
  while i <= n do
    local j = i
    while j < n and v:get { j + 1 } == v:get { i } do j = j + 1 end
    for k = i, j do r[idx:get { k }] = (i + j) / 2 end
    i = j + 1
  end
  return r
end

function M.spearman(a, b)
  local n = a:numel()
  if b:numel() ~= n then error(("spearman: %d and %d values"):format(n, b:numel()), 2) end
  local ra, rb = ranks(a, n), ranks(b, n)
  local m = (n + 1) / 2
  local sab, saa, sbb = 0, 0, 0
  for i = 1, n do
    local da, db = ra[i] - m, rb[i] - m
    sab, saa, sbb = sab + da * db, saa + da * da, sbb + db * db
  end
  if saa == 0 or sbb == 0 then return 0 end
  return sab / math.sqrt(saa * sbb)
end

function M.sanity_check(model, x, method, opts)
  local o = SANITY(opts, model)
  common.need_model(model, "sanity_check")
  if type(method) ~= "function" then
    error(("sanity_check: method must be a function (model, x, opts) -> map, got %s"):format(type(method)), 2)
  end
  local target = common.targets(lumen.no_grad(common.scores, model, x), o.target, "sanity_check")[1]
  local function run()
    local map = method(model, x, { target = target })
    return o.abs and map:abs() or map
  end
  local params = model:parameters()
  local layers = o.layers
  if not layers then
    layers = {}
    local seen = {}
    for i = #params, 1, -1 do
      local name = params[i].name:match("^(.*)%.[^.]+$") or params[i].name
      if not seen[name] then seen[name], layers[#layers + 1] = true, name end
    end
  end
  local saved = {}
  for _, p in ipairs(params) do saved[p.tensor] = lumen.tensor(p.tensor) end
  local original = run()
  local rows, maps = {}, { original }
  local ok, err = pcall(function()
    for _, name in ipairs(layers) do
      for _, p in ipairs(params) do
        if p.name:sub(1, #name + 1) == name .. "." then
          local t = p.tensor
          local rms = math.sqrt(lumen.dot64(t, t) / t:numel())
          t:copy_(lumen.randn(t.shape) * (rms > 0 and rms or 0.01))
        end
      end
      local map = run()
      rows[#rows + 1] = { layer = name, spearman = M.spearman(original, map) }
      maps[#maps + 1] = map
    end
  end)
  for t, v in pairs(saved) do t:copy_(v) end
  if not ok then error(err, 0) end
  return rows, maps, layers
end

return M
