-- Permutation feature importance (Breiman 2001; Fisher, Rudin & Dominici 2019): how much a model's
-- metric drops when one feature (or feature group) is shuffled across the rows of a dataset, breaking
-- its link to the labels while keeping its distribution. A feature the model ignores scores exactly 0.
-- permutation_importance(model, X, y, opts): X (N, ...) inputs (float, or int64 token ids); y labels
-- (int64 (N) 1-based class ids, or a Lua array).
-- opts: repeats = 5 shuffles per feature; features = group ids for one row (see lumen.explain.features;
--       default every element of a row; patches(H, W, size) for image patches, windows(T, w) for
--       token-position windows (lumen.explain.patches, lumen.explain.windows), or a superpixel map);
--       metric = "accuracy" | "neg_loss" | fn(scores (N, K), y) -> number (higher is better);
--       batch_size = 256; probabilities = false.
-- Returns the importances (Lua array, mean drop per feature), their standard deviations over the repeats
-- (the spread) and the unshuffled metric.
local lumen = require "lumen"
local common = require "lumen.explain.common"
local features = require "lumen.explain.features"

local M = {}

local function labels_of(y)
  if not lumen.is_tensor(y) then return y end
  local t = {}
  for i = 1, y:numel() do t[i] = math.tointeger(y:flat_get(i)) end
  return t
end

local metrics = {
  accuracy = function(scores, y)
    local _, idx = scores:max(2)
    local hit = 0
    for i = 1, #y do if idx:get { i } == y[i] then hit = hit + 1 end end
    return hit / #y
  end,
  neg_loss = function(scores, y) return -lumen.cross_entropy(scores, y):item() end,
}

local OPTIONS = common.options("permutation_importance", {
  repeats = { 5, "integer >= 1" }, features = { nil, "tensor" },
  metric = { "accuracy", "'accuracy' | 'neg_loss' | function" },
  batch_size = { 256, "integer >= 1" }, probabilities = { false, "boolean" },
})

local function evaluate(model, X, y, metric, opts)
  local parts = {}
  common.batches(X.shape[1], opts.batch_size, function(first, n)
    parts[#parts + 1] = lumen.no_grad(common.scores, model, X:narrow(1, first, n), opts)
  end)
  return metric(lumen.cat(parts, 1), y)
end

-- Patch ids for an (H, W) grid of size x size patches: a `features` map for images.
function M.patches(h, w, size)
  local cols = (w + size - 1) // size
  local t = {}
  for i = 1, h do
    t[i] = {}
    for j = 1, w do t[i][j] = ((i - 1) // size) * cols + (j - 1) // size + 1 end
  end
  return lumen.tensor(t, "int64")
end

-- Window ids for a sequence of length L: positions 1..w -> 1, w+1..2w -> 2, ...
function M.windows(L, w)
  local t = {}
  for i = 1, L do t[i] = (i - 1) // w + 1 end
  return lumen.tensor(t, "int64")
end

function M.permutation_importance(model, X, y, opts)
  local o = OPTIONS(opts, model)
  y = labels_of(y)
  local N = X.shape[1]
  if #y ~= N then error(("permutation_importance: %d labels for %d rows"):format(#y, N), 2) end
  if N < 2 then error("permutation_importance: needs at least 2 rows to shuffle, got " .. N, 2) end
  local metric = o.metric
  if type(metric) == "string" then metric = metrics[metric] end
  local repeats = o.repeats
  local row = X:narrow(1, 1, 1)
  local ids, m = features.ids(row, o.features)
  local base = evaluate(model, X, y, metric, o)
  local mean, std = {}, {}
  local bar = lumen.progress(m * repeats, "permutation importance")
  for j = 1, m do
    local z = {}
    for k = 1, m do z[k] = k == j and 1 or 0 end
    local mask = features.masks(lumen.tensor { z }, ids, row) -- (1, ...): 1 on feature j
    local drops, s1 = {}, 0
    for r = 1, repeats do
      local shuffled = X:index_select(1, lumen.tensor(lumen.randperm(N), "int64"))
      drops[r] = base - evaluate(model, features.mix(mask, shuffled, X), y, metric, o)
      s1 = s1 + drops[r]
      bar:update((j - 1) * repeats + r)
    end
    mean[j] = s1 / repeats
    local s2 = 0
    for r = 1, repeats do s2 = s2 + (drops[r] - mean[j]) ^ 2 end
    std[j] = repeats > 1 and math.sqrt(s2 / (repeats - 1)) or 0
  end
  bar:done()
  return mean, std, base
end

return M
