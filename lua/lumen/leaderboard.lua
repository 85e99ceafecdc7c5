-- lumen.leaderboard: which explanation method is most faithful to a model, over a set of inputs
-- (recipes/benchmark_methods.lua). For every input and method it ranks the pixels by the method's
-- map and measures four things, each the target's probability along a curve:
--   deletion   AUC as pixels are set to 0 in map order (Petsiuk et al. 2018; lower is better)
--   insertion  AUC as pixels are revealed on a blurred copy (higher is better)
--   road_morf  ROAD, most relevant removed first, noisy linear imputation (Rong et al. 2022; lower)
--   road_lerf  ROAD, least relevant removed first (higher is better)
-- and road_gap = road_lerf - road_morf, by which the table is ranked (ROAD's own correction of the
-- deletion metrics, both orders in one number; higher is better). "random" (a random pixel order) is
-- the baseline every method should beat. The summary gives each method's mean over the inputs and a
-- 95 % percentile bootstrap interval (inputs resampled with replacement, the same resample for every
-- method).
--
--   local rows = board.score(model, x, { "gradcam", "saliency" }, { seed = 0 })   -- one input
--   local summary = board.summarize(all_rows, { boot = 1000, seed = 0 })
--   print(board.markdown(summary)); board.chart(all_rows):save("leaderboard.png")
local lumen = require "lumen"

local M = {}

M.METRICS = { "deletion", "insertion", "road_morf", "road_lerf", "road_gap" }
M.BETTER = { deletion = "lower", insertion = "higher", road_morf = "lower", road_lerf = "higher", road_gap = "higher" }

local function pixel(a) return a:abs():max(2) end -- (1, C, H, W) -> (1, H, W): max |a| over channels

-- The methods a leaderboard can run: name -> function(model, x) -> a per-pixel map. Each calls
-- lumen.explain.<name> with the settings of recipes/demo.lua (occlusion's patch scales with the input).
M.methods = {
  saliency = function(m, x) return pixel((lumen.explain.saliency(m, x))) end,
  smoothgrad = function(m, x) return pixel((lumen.explain.smoothgrad(m, x, { n = 25 }))) end,
  integrated_gradients = function(m, x) return pixel((lumen.explain.integrated_gradients(m, x, { steps = 32 }))) end,
  gradient_shap = function(m, x) return pixel((lumen.explain.gradient_shap(m, x, { background = lumen.zeros_like(x), n = 25 }))) end,
  guided_backprop = function(m, x) return pixel((lumen.explain.guided_backprop(m, x))) end,
  lrp = function(m, x) return pixel((lumen.explain.lrp(m, x, { rule = "epsilon" }))) end,
  gradcam = function(m, x) return (lumen.explain.gradcam(m, x)) end,
  gradcam_plus_plus = function(m, x) return (lumen.explain.gradcam_plus_plus(m, x)) end,
  cam = function(m, x) return (lumen.explain.cam(m, x)) end,
  occlusion = function(m, x)
    local patch = math.max(2, x.shape[3] // 5)
    return (lumen.explain.occlusion(m, x, { patch = patch, stride = math.max(1, patch // 2) }))
  end,
}

-- A 31-bit FNV-1a hash of a string: each method's random draws start from seed + hash(name).
local function hash(s)
  local h = 2166136261
  for i = 1, #s do h = ((h ~ s:byte(i)) * 16777619) & 0xffffffff end
  return h & 0x7fffffff
end

-- methods(list) -> array of names, checked against M.methods ("random" is always added last).
function M.method_list(text)
  local names, seen = {}, {}
  for name in tostring(text):gmatch("[^,%s]+") do
    if name ~= "random" then
      if not M.methods[name] then
        local known = {}
        for k in pairs(M.methods) do known[#known + 1] = k end
        table.sort(known)
        error(("leaderboard: unknown method '%s' (known: %s)"):format(name, table.concat(known, ", ")), 2)
      end
      if not seen[name] then seen[name], names[#names + 1] = true, name end
    end
  end
  names[#names + 1] = "random"
  return names
end

-- score(model, x, names, opts) -> rows, one per method: {method =, deletion =, insertion =,
-- road_morf =, road_lerf =, road_gap =, seconds = (time to make the map), target =, curves =
-- {deletion =, insertion =, road_morf =, road_lerf =, fractions =}}. x (1, C, H, W).
-- opts: seed = 0; steps = 28 (deletion / insertion); fractions (ROAD, default its own); noise = 0.01
-- (ROAD); batch_size = 29; target = the top class.
function M.score(model, x, names, opts)
  opts = opts or {}
  local rows = {}
  local target = opts.target
  for _, name in ipairs(names) do
    lumen.seed((opts.seed or 0) + hash(name)) -- the same numbers whichever methods run with it
    local t0 = lumen.now()
    local map = name == "random" and x or M.methods[name](model, x)
    local row = { method = name, seconds = lumen.now() - t0, curves = {} }
    local order = name == "random" and "random" or nil
    local fo = { steps = opts.steps or 28, order = order, batch_size = opts.batch_size or 29, target = target }
    row.deletion, row.curves.deletion, row.target = lumen.explain.deletion(model, x, map, fo)
    row.insertion, row.curves.insertion = lumen.explain.insertion(model, x, map, fo)
    row.road_morf, row.road_lerf, row.curves.road = lumen.explain.road(model, x, map,
      { fractions = opts.fractions, noise = opts.noise, order = order, target = row.target, batch_size = opts.batch_size })
    row.road_gap = row.road_lerf - row.road_morf
    target = target or row.target
    rows[#rows + 1] = row
  end
  return rows
end

local function percentile(sorted, q) return sorted[math.max(1, math.min(#sorted, math.ceil(q * #sorted)))] end

-- summarize(rows, opts) -> {columns = M.METRICS, rows = {{method =, n =, <metric> = {mean =, lo =, hi =}}},
-- note =}, ranked by road_gap (best first; random where it falls). rows: score()'s rows of every input,
-- each with an `input` field naming it. opts: boot = 1000 resamples, seed = 0.
function M.summarize(rows, opts)
  opts = opts or {}
  local inputs, index, by = {}, {}, {}
  for _, r in ipairs(rows) do
    local key = r.input or "?"
    if not index[key] then inputs[#inputs + 1] = key; index[key] = #inputs end
    by[r.method] = by[r.method] or { method = r.method, values = {} }
    by[r.method].values[index[key]] = r
  end
  local n, B = #inputs, opts.boot or 1000
  lumen.seed(opts.seed or 0)
  local draws = {}
  for b = 1, B do
    local d = {}
    for i = 1, n do d[i] = lumen.randint(n) end
    draws[b] = d
  end
  local out = {}
  for _, m in pairs(by) do
    local row = { method = m.method, n = 0 }
    for i = 1, n do if m.values[i] then row.n = row.n + 1 end end
    if row.n ~= n then error(("leaderboard: method %s has results for %d of %d inputs"):format(m.method, row.n, n), 2) end
    for _, metric in ipairs(M.METRICS) do
      local sum = 0
      for i = 1, n do sum = sum + m.values[i][metric] end
      local means = {}
      for b = 1, B do
        local s = 0
        for _, i in ipairs(draws[b]) do s = s + m.values[i][metric] end
        means[b] = s / n
      end
      table.sort(means)
      row[metric] = { mean = sum / n, lo = B > 0 and percentile(means, 0.025) or sum / n, hi = B > 0 and percentile(means, 0.975) or sum / n }
    end
    out[#out + 1] = row
  end
  table.sort(out, function(a, b)
    if a.road_gap.mean ~= b.road_gap.mean then return a.road_gap.mean > b.road_gap.mean end
    return a.method < b.method
  end)
  return { columns = M.METRICS, rows = out, inputs = n, boot = B,
           note = ("mean over %d inputs [95 %% bootstrap interval, %d resamples]; ranked by road_gap"):format(n, B) }
end

-- The leaderboard as a Markdown table (best first; the best mean of each column in bold).
function M.markdown(s)
  local best = {}
  for _, c in ipairs(s.columns) do
    for _, r in ipairs(s.rows) do
      local v = r[c].mean
      if not best[c] or (M.BETTER[c] == "lower" and v < best[c]) or (M.BETTER[c] == "higher" and v > best[c]) then best[c] = v end
    end
  end
  local head, rule = { "rank", "method" }, { "---:", "---" }
  for _, c in ipairs(s.columns) do
    head[#head + 1] = ("%s (%s)"):format(c, M.BETTER[c] == "lower" and "lower is better" or "higher is better")
    rule[#rule + 1] = "---:"
  end
  local lines = { "| " .. table.concat(head, " | ") .. " |", "| " .. table.concat(rule, " | ") .. " |" }
  for i, r in ipairs(s.rows) do
    local cells = { tostring(i), r.method }
    for _, c in ipairs(s.columns) do
      local v = ("%.3f [%.3f, %.3f]"):format(r[c].mean, r[c].lo, r[c].hi)
      cells[#cells + 1] = r[c].mean == best[c] and ("**" .. v:gsub(" %[", "** [", 1)) or v
    end
    lines[#lines + 1] = "| " .. table.concat(cells, " | ") .. " |"
  end
  return table.concat(lines, "\n") .. "\n\n" .. s.note .. "\n"
end

-- The leaderboard as CSV: rank, method, n, then mean, lo, hi of each metric.
function M.csv(s)
  local head = { "rank", "method", "n" }
  for _, c in ipairs(s.columns) do head[#head + 1] = ("%s_mean,%s_lo,%s_hi"):format(c, c, c) end
  local lines = { table.concat(head, ",") }
  for i, r in ipairs(s.rows) do
    local cells = { tostring(i), r.method, tostring(r.n) }
    for _, c in ipairs(s.columns) do cells[#cells + 1] = ("%.6f,%.6f,%.6f"):format(r[c].mean, r[c].lo, r[c].hi) end
    lines[#lines + 1] = table.concat(cells, ",")
  end
  return table.concat(lines, "\n") .. "\n"
end

-- Per-input scores as CSV: input, method, target, the metrics, seconds.
function M.scores_csv(rows)
  local lines = { "input,method,target," .. table.concat(M.METRICS, ",") .. ",seconds" }
  for _, r in ipairs(rows) do
    local cells = { ('"%s"'):format(tostring(r.input or ""):gsub('"', '""')), r.method, tostring(r.target) }
    for _, c in ipairs(M.METRICS) do cells[#cells + 1] = ("%.6f"):format(r[c]) end
    cells[#cells + 1] = ("%.3f"):format(r.seconds)
    lines[#lines + 1] = table.concat(cells, ",")
  end
  return table.concat(lines, "\n") .. "\n"
end

-- chart(rows, summary) -> (3, H, W): the mean curves of each method, four panels (deletion, insertion,
-- ROAD MoRF, ROAD LeRF), each method's mean in its legend, in the summary's rank order.
function M.chart(rows, s)
  local panels = {
    { "deletion", "deletion", "fraction of pixels removed" }, { "insertion", "insertion", "fraction of pixels revealed" },
    { "road_morf", "ROAD MoRF", "fraction removed, most relevant first" }, { "road_lerf", "ROAD LeRF", "fraction removed, least relevant first" },
  }
  local order = {}
  for i, r in ipairs(s.rows) do order[r.method] = i end
  local charts = {}
  for _, panel in ipairs(panels) do
    local metric = panel[1]
    local sums, counts, xs = {}, {}, nil
    for _, r in ipairs(rows) do
      local curve = metric:sub(1, 5) == "road_" and r.curves.road[metric:sub(6)] or r.curves[metric]
      if metric:sub(1, 5) == "road_" then xs = r.curves.road.fractions end
      sums[r.method] = sums[r.method] or {}
      for i, v in ipairs(curve) do sums[r.method][i] = (sums[r.method][i] or 0) + v end
      counts[r.method] = (counts[r.method] or 0) + 1
    end
    local series = {}
    for _, r in ipairs(s.rows) do
      local y = {}
      for i, v in ipairs(sums[r.method]) do y[i] = v / counts[r.method] end
      series[order[r.method]] = { name = ("%s %.3f"):format(r.method, r[metric].mean), y = y, x = xs,
        color = r.method == "random" and { 0.45, 0.45, 0.45 } or nil }
    end
    charts[#charts + 1] = lumen.viz.chart(series, { title = panel[2], xlabel = panel[3], ylabel = "probability",
      ylim = { 0, 1 }, xlim = { 0, 1 }, width = 420, height = 300 })
  end
  return lumen.viz.grid(charts, { ncol = 2, pad = 6 })
end

-- The parameters that decide what the scores are: runs with different values are not merged.
M.MERGE_PARAMS = { "methods", "steps", "noise" }

-- read_scores(dir [, skip [, want]]) -> rows, runs: the rows of every scores.json under dir (runs of the recipe,
-- e.g. the per-input folders of lumen batch), in path order, and the run folders they came from;
-- folders under skip are left out. Each scores.json must belong to a complete run: its folder's
-- manifest.json (lumen.runs.read, manifest_version 2 with a checksum that holds) lists it with its
-- SHA-256, so the scores of a run that was killed, failed or edited are never merged. The runs must
-- share the model file's bytes (inputs.model.sha256) and the parameters in MERGE_PARAMS, and when
-- want is given (the merged run's own parameters: want.model a path, want.methods, ...) agree with it,
-- so that the merged run's manifest tells what was merged. Raises naming the folder otherwise.
function M.read_scores(dir, skip, want)
  local runs = require "lumen.runs"
  local base, paths = dir:gsub("/+$", ""), {}
  runs.walk(base, function(rel, ty)
    local path = base .. "/" .. rel
    if ty == "file" and rel:match("([^/]+)$") == "scores.json"
      and not (skip and path:sub(1, #skip + 1) == skip:gsub("/+$", "") .. "/") then
      paths[#paths + 1] = path
    end
  end)
  table.sort(paths)
  local rows, folders, first = {}, {}, nil
  for _, path in ipairs(paths) do
    local folder = path:match("^(.*)/[^/]*$")
    local function bad(why, ...) error(("leaderboard: %s: " .. why):format(folder, ...), 0) end
    if not lumen.exists(folder .. "/" .. runs.MANIFEST) then
      bad("scores.json but no %s: the run did not finish (run it again, e.g. the same lumen batch line)", runs.MANIFEST)
    end
    local ok, m, _, sum_ok = pcall(runs.read, folder .. "/" .. runs.MANIFEST)
    if not ok then bad("%s", m) end
    if sum_ok ~= true then bad("its %s %s", runs.MANIFEST, sum_ok == nil and "has no checksum (written by an older lumen): run it again"
      or "was edited after the run (the checksum does not match)") end
    if m.files["scores.json"] ~= lumen.sha256_file(path) then bad("scores.json is not the one its %s lists", runs.MANIFEST) end
    local model = type(m.inputs) == "table" and type(m.inputs.model) == "table" and m.inputs.model.sha256 or nil
    local params = type(m.params) == "table" and m.params or {}
    if not first then
      first = { folder = folder, model = model, params = params }
      local sha = want and type(want.model) == "string" and lumen.sha256_file(want.model)
      if want and want.model and model ~= sha then
        bad("made with another model file than model=%s (sha256 %s, not %s): give the model the runs used",
          want.model, tostring(model):sub(1, 12), tostring(sha):sub(1, 12))
      end
      for _, k in ipairs(M.MERGE_PARAMS) do
        if want and want[k] ~= nil and params[k] ~= want[k] then
          bad("made with %s=%s, not %s=%s: give the merge the runs' %s=", k, tostring(params[k]), k, tostring(want[k]), k)
        end
      end
    else
      if model ~= first.model then
        bad("made with another model file than %s (sha256 %s, not %s): a leaderboard compares methods on one model",
          first.folder, tostring(model):sub(1, 12), tostring(first.model):sub(1, 12))
      end
      for _, k in ipairs(M.MERGE_PARAMS) do
        if params[k] ~= first.params[k] then
          bad("made with %s=%s, %s with %s=%s: merge runs of the same settings", k, tostring(params[k]), first.folder, k, tostring(first.params[k]))
        end
      end
    end
    local g = assert(io.open(path, "rb"))
    local okj, t = pcall(lumen.json.decode, g:read("a"))
    g:close()
    if not okj or type(t) ~= "table" then error(("leaderboard: %s is not valid JSON (%s)"):format(path, tostring(t)), 2) end
    for _, r in ipairs(t) do rows[#rows + 1] = r end
    folders[#folders + 1] = folder
  end
  if #rows == 0 then error(("leaderboard: no scores.json under %s (run the recipe there first, e.g. with lumen batch)"):format(dir), 2) end
  return rows, folders
end

return M
