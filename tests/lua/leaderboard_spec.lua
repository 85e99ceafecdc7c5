-- Specs for lumen.leaderboard, recipes/benchmark_methods.lua and lumen.viz.chart: bootstrap intervals,
-- ranking and tables; a leaderboard merged from one-input runs equals the one-run leaderboard; the
-- chart puts its curves, axes and legend where they belong.
local lumen = require "lumen"
local support = require "support"
local q, sh, read = support.quote, support.sh, support.read
local board = require "lumen.leaderboard"

local LUMEN = lumen.core.exe_path()

-- Rows as score() gives them, with made-up numbers.
local function row(input, method, d, i, m, l)
  return { input = input, method = method, deletion = d, insertion = i, road_morf = m, road_lerf = l, road_gap = l - m }
end

describe("lumen.leaderboard", function()
  it("gives each method its mean and a bootstrap interval that holds it, ranked by the ROAD gap", function()
    local rows = {}
    for k = 1, 8 do
      rows[#rows + 1] = row("in" .. k, "good", 0.2, 0.8, 0.3, 0.7 + 0.01 * k)
      rows[#rows + 1] = row("in" .. k, "random", 0.5, 0.5, 0.5, 0.5)
    end
    local s = board.summarize(rows, { boot = 500, seed = 1 })
    assert.same({ "good", "random" }, { s.rows[1].method, s.rows[2].method })
    assert.equal(8, s.inputs)
    local g = s.rows[1].road_lerf
    assert(math.abs(g.mean - 0.745) < 1e-12)
    assert(g.lo < g.mean and g.mean < g.hi and g.lo >= 0.71 and g.hi <= 0.78, ("%g %g %g"):format(g.lo, g.mean, g.hi))
    assert.same({ mean = 0.5, lo = 0.5, hi = 0.5 }, s.rows[2].deletion) -- constant values: no spread
    assert.same(s, board.summarize(rows, { boot = 500, seed = 1 })) -- the same seed, the same numbers
    local md = board.markdown(s)
    assert.truthy(md:find("| 1 | good | **0.200** [0.200, 0.200] |", 1, true), md)
    local csv = board.csv(s)
    assert.truthy(csv:find("^rank,method,n,deletion_mean,deletion_lo,deletion_hi,"), csv)
    assert.truthy(csv:find("\n2,random,8,0.500000,0.500000,0.500000,", 1, true), csv)
  end)

  it("refuses an unknown method and a method missing for some input", function()
    assert.has_error(function() board.method_list("saliency,gradcamm") end)
    assert.same({ "gradcam", "saliency", "random" }, board.method_list("gradcam, saliency,gradcam,random"))
    assert.has_error(function() board.summarize { row("a", "x", 0, 0, 0, 0), row("b", "x", 0, 0, 0, 0), row("a", "y", 0, 0, 0, 0) } end)
  end)

  it("merges one-input runs (as lumen batch makes them) into the leaderboard of all their rows", function()
    local tmp = lumen.tmpname("_board")
    finally(function() os.execute("rm -rf " .. q(tmp)) end)
    local common = "methods=saliency,gradcam steps=4 boot=200 seed=3"
    local images = { "data/images/fashion/0002_pullover.png", "data/images/fashion/0019_bag.png" }
    local function run(args)
      local text, status = sh(("LUMEN_QUIET=1 %s run recipes/benchmark_methods.lua %s %s"):format(q(LUMEN), common, args))
      assert(status == 0, text)
    end
    run(("image=%s out=%s"):format(images[1], q(tmp .. "/runs/a")))
    run(("image=%s out=%s"):format(images[2], q(tmp .. "/runs/b")))
    run("merge=" .. q(tmp .. "/runs") .. " out=" .. q(tmp .. "/runs/merged"))
    assert.is_false(lumen.exists(tmp .. "/runs/a/leaderboard.csv")) -- one input: its scores only
    -- The same scores, made here: each method seeded from seed + its name, whatever ran before it.
    local model = lumen.load_model(lumen.recipe.FASHION_MODEL)
    local rows = {}
    for k = #images, 1, -1 do
      local x = lumen.image.preprocess(assert(lumen.image.load(images[k])), model.input_spec)
      for _, r in ipairs(board.score(model, x, board.method_list("saliency,gradcam"), { seed = 3, steps = 4 })) do
        r.input, rows[#rows + 1] = images[k], r
      end
    end
    table.sort(rows, function(a, b) return a.input < b.input end) -- the merge reads the runs in folder order
    assert.equal(board.csv(board.summarize(rows, { boot = 200, seed = 3 })), read(tmp .. "/runs/merged/leaderboard.csv"))
    local m = lumen.json.decode(read(tmp .. "/runs/merged/manifest.json"))
    assert.equal(2, m.info.leaderboard.inputs)
    assert.equal(3, #m.info.faithfulness) -- saliency, gradcam, random
    -- Only complete runs of one model and the same settings are merged.
    local runs_dir = tmp .. "/runs"
    local want = { model = lumen.recipe.FASHION_MODEL, methods = "saliency,gradcam", steps = 4, noise = 0.01 }
    assert.equal(#rows, #board.read_scores(runs_dir, runs_dir .. "/merged", want))
    local function fails(want, ...)
      local ok, err = pcall(board.read_scores, runs_dir, runs_dir .. "/merged", ...)
      assert.is_false(ok)
      assert.truthy(tostring(err):find(want, 1, true), err)
    end
    fails("made with another model file than model=data/images/fashion/0019_bag.png", { model = "data/images/fashion/0019_bag.png" })
    fails(runs_dir .. "/a: made with steps=4, not steps=5: give the merge the runs' steps=", { steps = 5 })
    os.execute(("cp -r %s %s"):format(q(runs_dir .. "/b"), q(runs_dir .. "/c")))
    local manifest = read(runs_dir .. "/c/manifest.json")
    os.remove(runs_dir .. "/c/manifest.json") -- a run killed before its manifest
    fails("leaderboard: " .. runs_dir .. "/c: scores.json but no manifest.json: the run did not finish")
    local edited = manifest:gsub('"steps": 4', '"steps": 5')
    support.write(runs_dir .. "/c/manifest.json", edited)
    fails(runs_dir .. "/c: its manifest.json was edited after the run")
    local m2 = lumen.json.decode(edited)
    m2.manifest_sha256 = require("lumen.runs").checksum(m2) -- the same run, made with steps=5
    support.write(runs_dir .. "/c/manifest.json", lumen.json.encode(m2))
    fails(runs_dir .. "/c: made with steps=5, " .. runs_dir .. "/a with steps=4")
    support.write(runs_dir .. "/c/scores.json", "[]")
    fails(runs_dir .. "/c: scores.json is not the one its manifest.json lists")
  end)
end)

describe("lumen.viz.chart", function()
  -- The columns (x) of image img (3, H, W) in row y whose pixel is color.
  local function hits(img, color, fn)
    local t = img:totable() -- t[c][y][x]
    for y = 1, #t[1] do
      for x = 1, #t[1][1] do
        if math.abs(t[1][y][x] - color[1]) < 1e-6 and math.abs(t[2][y][x] - color[2]) < 1e-6
          and math.abs(t[3][y][x] - color[3]) < 1e-6 then fn(y, x) end
      end
    end
  end

  it("draws each curve at its values between the axes, with ticks and a legend swatch", function()
    local red, blue = { 1, 0, 0 }, { 0, 0, 1 }
    local img = lumen.viz.chart({ { name = "flat", y = { 0.5, 0.5, 0.5 }, color = red },
                                  { name = "rise", x = { 0, 1 }, y = { 0, 1 }, color = blue } },
                                { ylim = { 0, 1 }, title = "t", xlabel = "x", ylabel = "y", width = 300, height = 220 })
    assert.same({ 3, 220, 300 }, img.shape)
    local rows, legend = {}, 0
    hits(img, red, function(y, x) rows[y] = (rows[y] or 0) + 1 end)
    local best, count = nil, 0
    for y, n in pairs(rows) do if n > count then best, count = y, n end end
    -- The flat line's row: halfway between the blue line's lowest point (y = 0) and highest (y = 1).
    local axis, axis_row, axis_n = {}, nil, 0 -- the x axis: the row with the most axis-coloured pixels
    hits(img, { 0.25, 0.25, 0.25 }, function(y) axis[y] = (axis[y] or 0) + 1 end)
    for y, n in pairs(axis) do if n > axis_n then axis_row, axis_n = y, n end end
    local lo, hi = math.huge, -math.huge
    hits(img, blue, function(y) if y <= axis_row + 1 then lo, hi = math.min(lo, y), math.max(hi, y) end end)
    assert(math.abs(best - (lo + hi) / 2) <= 2, ("flat line at row %d, rise spans %d..%d"):format(best, lo, hi))
    assert(count > 150, "the flat line spans the plot: " .. count .. " pixels")
    for y, n in pairs(rows) do if y > hi + 10 and n > 0 then legend = legend + n end end
    assert(legend > 10, "a red legend swatch and label below the plot")
    local dark = 0
    hits(img, { 0.25, 0.25, 0.25 }, function() dark = dark + 1 end) -- axes, ticks and tick labels
    assert(dark > 400, "axes and ticks: " .. dark .. " pixels")
  end)

  it("says what is wrong with its series", function()
    assert.has_error(function() lumen.viz.chart({}) end, "viz.chart: expected a list of series {name =, y = {...}}")
    assert.has_error(function() lumen.viz.chart({ { y = { 1, 2 }, x = { 1 } } }) end, "viz.chart: series 1 has 1 x and 2 y values")
    assert.has_error(function() lumen.viz.chart({ { y = { 1, 2 } } }, { width = 40, height = 30 }) end)
  end)
end)
