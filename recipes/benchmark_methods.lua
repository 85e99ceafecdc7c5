-- The faithfulness leaderboard: for one model and a set of inputs, deletion and insertion AUC
-- (Petsiuk et al. 2018) and ROAD with noisy linear imputation (Rong et al. 2022), MoRF and LeRF, of each
-- method plus a random pixel order, with the mean and a 95 % bootstrap interval per method
-- (lua/lumen/leaderboard.lua says how). Inputs: n Fashion-MNIST test images from index, or image=.
--   lumen run recipes/benchmark_methods.lua [n=10] [methods=saliency,gradcam,...] [boot=1000]
-- Batchable: each run writes its per-input scores, and merge=DIR ranks every run under DIR:
--   lumen batch recipes/benchmark_methods.lua inputs=data/images/fashion out=out/bench
--   lumen run recipes/benchmark_methods.lua merge=out/bench out=out/bench/leaderboard
-- Writes scores.json / scores.csv (per input and method) and, over 2 inputs or more, leaderboard.md,
-- leaderboard.csv and leaderboard.png (the mean curves; axes, ticks, legend with each mean).
local lumen = require "lumen"
local recipe = lumen.recipe
local board = require "lumen.leaderboard"

local p = lumen.args { model = recipe.FASHION_MODEL, labels = "", image = "", index = 1, n = 10, steps = 28, noise = 0.01,
  methods = "saliency,smoothgrad,integrated_gradients,gradcam,occlusion,lrp", boot = 1000, merge = "",
  out = "out/benchmark_methods", seed = 0 }
local names = board.method_list(p.methods)
local rows, model, x = {}, nil, nil
if p.merge ~= "" then
  rows = board.read_scores(p.merge, p.out, p) -- complete runs of this model, methods, steps and noise
else
  model, _, x = recipe.load(p)
  local inputs = { { p.image ~= "" and p.image or ("test image " .. p.index), x } }
  for i = 2, p.image == "" and p.n or 1 do
    inputs[i] = { "test image " .. (p.index + i - 1), recipe.fashion_test():narrow(1, p.index + i - 1, 1) }
  end
  local bar = lumen.progress(#inputs, "benchmark")
  for i, input in ipairs(inputs) do
    for _, r in ipairs(board.score(model, input[2], names, { seed = p.seed, steps = p.steps, noise = p.noise })) do
      r.input, rows[#rows + 1] = input[1], r
    end
    bar:update(i)
  end
  bar:done()
  local f = assert(io.open(recipe.path(p.out, "scores.json"), "w"))
  f:write(lumen.json.encode(rows), "\n")
  f:close()
end

local s = board.summarize(rows, { boot = p.boot, seed = p.seed })
local function write(name, text)
  local f = assert(io.open(recipe.path(p.out, name), "w"))
  f:write(text)
  f:close()
end
write(p.merge ~= "" and "merged_scores.csv" or "scores.csv", board.scores_csv(rows))
local info = { inputs = s.inputs, faithfulness = {} }
if s.inputs == 1 and model then info.target, info.label = rows[1].target, recipe.label(model, rows[1].target) end
for _, r in ipairs(s.rows) do
  info.faithfulness[#info.faithfulness + 1] = { method = r.method, deletion = r.deletion.mean, insertion = r.insertion.mean,
    road_morf = r.road_morf.mean, road_lerf = r.road_lerf.mean }
end
if s.inputs >= 2 then
  write("leaderboard.md", board.markdown(s))
  write("leaderboard.csv", board.csv(s))
  recipe.save_png(p.out, "leaderboard.png", board.chart(rows, s))
  info.leaderboard = s
end
io.write(board.markdown(s))
recipe.finish(p, info)
