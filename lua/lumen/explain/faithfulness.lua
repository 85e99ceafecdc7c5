-- Measures of whether an explanation is faithful to the model.
--
-- Deletion / insertion (Petsiuk, Das & Saenko 2018, "RISE"): rank pixels by the map, then remove them
-- from x (deletion: replaced by the baseline) or reveal them on the baseline (insertion), in `steps`
-- equal steps, recording the target's probability. A faithful map makes deletion fall fast (low AUC)
-- and insertion rise fast (high AUC). AUC is the trapezoid area under the curve on [0, 1].
-- opts: target = top class; steps = 50; baseline = 0 | "blur" (deletion default 0, insertion default
--       "blur", sigma 5) | a tensor; order = "map" | "random"; batch_size = 25; probabilities = true.
-- Returns auc, curve (Lua array of steps+1 values).
--
-- Sanity checks (Adebayo et al. 2018, "Sanity Checks for Saliency Maps"): cascading randomisation of
-- the weights from the top layer down; a map that does not change is not explaining the model.
-- sanity_check(model, x, method, opts): method(model, x, {target = c}) -> map; opts.target; opts.layers
-- (default: every layer with parameters, top first); opts.abs = true (compare |maps|).
-- Returns rows {layer =, spearman =}, the maps (original first) and the layer names. The model's weights
-- are restored afterwards.
local lumen = require "lumen"
local common = require "lumen.explain.common"

local M = {}

-- Pixel order (1-based flat indices into H*W) by decreasing map value, or random.
local function pixel_order(map, hw, order)
  local n = hw
  if order == "random" then return lumen.randperm(n) end
  local m = map
  if #m.shape == 4 then m = m:abs():sum(2) end -- channels reduced
  m = m:reshape { n }
  local _, idx = m:sort(1, true)
  local t = {}
  for i = 1, n do t[i] = idx:get { i } end
  return t
end

local function auc_of(curve)
  local s = 0
  for i = 1, #curve - 1 do s = s + (curve[i] + curve[i + 1]) / 2 end
  return s / (#curve - 1)
end
M.auc = auc_of

local function make_baseline(x, b)
  if lumen.is_tensor(b) then return b end
  if b == "blur" then return lumen.gaussian_blur(x, 5) end
  return lumen.full_like(x, b or 0)
end

local function curve(model, x, map, opts, insertion)
  opts = opts or {}
  local xs = x.shape
  local H, W = xs[3], xs[4]
  local hw = H * W
  local steps = opts.steps or 50
  local base = make_baseline(x, opts.baseline or (insertion and "blur" or 0))
  local probs = opts.probabilities ~= false
  local s0 = lumen.no_grad(common.scores, model, x, { probabilities = probs })
  local target = common.targets(s0, opts.target)[1]
  local order = pixel_order(map, hw, opts.order)
  -- mask value per pixel: the step at which it flips
  local rank = {}
  for i, p in ipairs(order) do rank[p] = i end
  local out = {}
  common.batches(steps + 1, opts.batch_size or 25, function(first, n)
    local masks = {}
    for j = 1, n do
      local k = math.floor((first + j - 2) * hw / steps + 0.5) -- pixels changed at this step
      local m = {}
      for p = 1, hw do m[p] = rank[p] <= k and 1 or 0 end
      masks[j] = m
    end
    local mk = lumen.tensor(masks):reshape { n, 1, H, W } -- 1 where changed
    local from, to = x, base
    if insertion then from, to = base, x end
    local imgs = from + mk * (to - from)
    local s = lumen.no_grad(common.scores, model, imgs, { probabilities = probs })
    for j = 1, n do out[first + j - 1] = s:get { j, target } end
  end)
  return auc_of(out), out, target
end

function M.deletion(model, x, map, opts) return curve(model, x, map, opts, false) end
function M.insertion(model, x, map, opts) return curve(model, x, map, opts, true) end

-- Spearman rank correlation of two tensors with the same number of elements.
function M.spearman(a, b)
  local n = a:numel()
  local function ranks(t)
    local _, idx = t:reshape { n }:sort(1)
    local r = {}
    for i = 1, n do r[idx:get { i }] = i end
    return r
  end
  local ra, rb = ranks(a), ranks(b)
  local ma = (n + 1) / 2
  local sab, saa, sbb = 0, 0, 0
  for i = 1, n do
    local da, db = ra[i] - ma, rb[i] - ma
    sab, saa, sbb = sab + da * db, saa + da * da, sbb + db * db
  end
  if saa == 0 or sbb == 0 then return 0 end
  return sab / math.sqrt(saa * sbb)
end

function M.sanity_check(model, x, method, opts)
  opts = opts or {}
  local function run()
    local map = method(model, x, { target = opts.target })
    return opts.abs == false and map or map:abs()
  end
  local original = run()
  -- layers with parameters, top first
  local layers = opts.layers
  local params = model:parameters()
  if not layers then
    layers = {}
    local seen = {}
    for i = #params, 1, -1 do
      local lname = params[i].name:match("^(.*)%.[^.]+$") or params[i].name
      if not seen[lname] then seen[lname] = true; layers[#layers + 1] = lname end
    end
  end
  local saved = {}
  for _, p in ipairs(params) do saved[p.tensor] = p.tensor:clone() end
  local rows, maps = {}, { original }
  local ok, err = pcall(function()
    for _, lname in ipairs(layers) do
      for _, p in ipairs(params) do
        if p.name:sub(1, #lname + 1) == lname .. "." then
          local t = p.tensor
          local sd = math.sqrt((t * t):mean_all())
          t:copy_(lumen.randn(t.shape) * (sd > 0 and sd or 0.01))
        end
      end
      local map = run()
      rows[#rows + 1] = { layer = lname, spearman = M.spearman(original, map) }
      maps[#maps + 1] = map
    end
  end)
  for t, v in pairs(saved) do t:copy_(v) end
  if not ok then error(err, 0) end
  return rows, maps, layers
end

return M
