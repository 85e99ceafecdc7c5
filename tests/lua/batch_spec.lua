-- Specs for lumen.batch and `lumen batch`: input lists, names and shards; the skip rule; one recipe run
-- per input in one process with the model read once; and, as the command: three shards give the same
-- files as one run, a second run skips everything, a killed shard resumes, GNU parallel runs two
-- shards at once. (tests/lua/batch_slurm_spec.lua runs a Slurm job array.)
local lumen = require "lumen"
local batch = require "lumen.batch"
local runs = require "lumen.runs"
local support = require "support"
local q, sh, read, write = support.quote, support.sh, support.read, support.write

local LUMEN = arg and arg[-1] or "lumen" -- the program running these specs (`lumen test ...`)
local SAMPLES = "data/images/fashion"

local tree, assert_same_tree = support.tree, support.assert_same_runs

local function count(t)
  local n = 0
  for _ in pairs(t) do n = n + 1 end
  return n
end

describe("lumen.batch", function()
  local tmp = lumen.tmpname("_batch")
  lumen.mkdir(tmp)
  teardown(function() os.execute("rm -rf " .. q(tmp)) end)

  describe("inputs, names and shards", function()
    it("lists a folder's PNG and JPEG files in byte order, and a list file's lines", function()
      local dir = tmp .. "/list"
      lumen.mkdir(dir .. "/sub.png")
      for _, name in ipairs { "b.PNG", "a.png", "c.jpeg", "d.jpg", "notes.txt", ".hidden.png", "B.png" } do write(dir .. "/" .. name, "x") end
      assert.same({ dir .. "/B.png", dir .. "/a.png", dir .. "/b.PNG", dir .. "/c.jpeg", dir .. "/d.jpg" }, batch.inputs(dir))
      write(tmp .. "/list.txt", "# inputs\nx/one.png\n\n  y/two.jpg  \r\n")
      assert.same({ "x/one.png", "y/two.jpg" }, batch.inputs(tmp .. "/list.txt"))
      assert.has_error(function() batch.inputs(tmp .. "/nothing") end)
      lumen.mkdir(tmp .. "/empty")
      assert.has_error(function() batch.inputs(tmp .. "/empty") end, "batch: " .. tmp .. "/empty holds no .png, .jpg or .jpeg file")
    end)

    it("names every input uniquely and safely, the same in every shard", function()
      assert.same({ "cat", "cat_2", "Cat_3", "we_ird_name", "_hidden", "input", "index.html_2", "cat_2_2" },
        batch.stems { "a/cat.png", "b/cat.png", "c/Cat.jpg", "d/we ird#name.png", "e/.hidden.png", "f/.png", "index.html.png", "cat_2.png" })
    end)

    it("takes every N-th input from K (1-based), and reads Slurm's array variables", function()
      assert.same({ 2, 5 }, batch.shard(7, 2, 3))
      local seen = {}
      for k = 1, 3 do for _, i in ipairs(batch.shard(7, k, 3)) do assert.is_nil(seen[i]); seen[i] = k end end
      assert.equal(7, count(seen))
      assert.same({ 2, 3 }, { batch.parse_shard("2/3") })
      assert.same({ 1, 1 }, { batch.parse_shard(nil, function() return nil end) })
      local env = { SLURM_ARRAY_TASK_ID = "4", SLURM_ARRAY_TASK_MIN = "3", SLURM_ARRAY_TASK_COUNT = "2" }
      assert.same({ 2, 2 }, { batch.parse_shard(nil, function(k) return env[k] end) })
      env = { SLURM_ARRAY_TASK_ID = "0", SLURM_ARRAY_TASK_MIN = "0", SLURM_ARRAY_TASK_COUNT = "4" } -- --array=0-3
      assert.same({ 1, 4 }, { batch.parse_shard(nil, function(k) return env[k] end) })
      env = { SLURM_ARRAY_TASK_ID = "6", SLURM_ARRAY_TASK_MIN = "2", SLURM_ARRAY_TASK_STEP = "2", SLURM_ARRAY_TASK_COUNT = "3" }
      assert.same({ 3, 3 }, { batch.parse_shard(nil, function(k) return env[k] end) })
      assert.same({ 1, 2 }, { batch.parse_shard("1/2", function(k) return env[k] end) }) -- shard= wins
      assert.has_error(function() batch.parse_shard("0/4") end,
        "batch: shard=0/4: K must be 1..4 (shards are numbered from 1; for 0-based task ids such as Slurm's --array=0-3 leave shard= out and lumen counts from SLURM_ARRAY_TASK_MIN)")
      assert.has_error(function() batch.parse_shard("5/4") end)
      assert.has_error(function() batch.parse_shard("2-4") end, "batch: shard=2-4 is not K/N (for example shard=1/4)")
    end)
  end)

  describe("run()", function()
    -- A recipe that copies its input and records the model object it was given.
    local recipe = tmp .. "/copy.lua"
    write(recipe, [[
local lumen = require "lumen"
local recipe = lumen.recipe
local p = lumen.args { model = recipe.FASHION_MODEL, image = "", fail = "", out = "out/copy", seed = 0 }
local model = recipe.load_model(p)
BATCH_MODELS[#BATCH_MODELS + 1] = model
lumen.input(p.image, "copied " .. p.image:match("[^/]*$")) -- an input that is not a parameter
recipe.save_png(p.out, "copy.png", assert(lumen.image.load(p.image)))
if p.fail ~= "" and p.image:find(p.fail, 1, true) then error("this input fails on purpose") end -- after an output
recipe.finish(p, { target = 1 })
]])
    local inputs = tmp .. "/inputs.txt"
    local names = batch.inputs(SAMPLES)
    write(inputs, table.concat({ names[1], names[2], names[3] }, "\n") .. "\n")
    local stems = batch.stems(names)

    it("runs the recipe once per input in this process, reading the model once", function()
      _G.BATCH_MODELS = {}
      local done, skipped, failed = batch.run { recipe = recipe, inputs = inputs, out = tmp .. "/run" }
      assert.same({ 3, 0, 0 }, { done, skipped, failed })
      local models = _G.BATCH_MODELS
      assert.equal(3, #models)
      assert.is_true(rawequal(models[1], models[2]) and rawequal(models[2], models[3]))
      local m = support.json_file(tmp .. "/run/" .. stems[2] .. "/manifest.json")
      assert.equal(names[2], m.params.image)
      assert.same({ "copy.png" }, (function() local t = {} for k in pairs(m.files) do t[#t + 1] = k end return t end)())
      assert.equal(read(names[2]), read(tmp .. "/run/" .. stems[2] .. "/copy.png")) -- 8-bit gray in, the same bytes out
      local keys = {} -- each run's own inputs only: lumen.begin_run forgets those of the run before
      for k in pairs(m.inputs) do keys[#keys + 1] = k end
      table.sort(keys)
      assert.same({ "copied " .. names[2]:match("[^/]*$"), "image", "model" }, keys)
      local again = { batch.run { recipe = recipe, inputs = inputs, out = tmp .. "/run" } }
      assert.same({ 0, 3, 0 }, { again[1], again[2], again[3] })
    end)

    it("records a failing input in its error.txt and goes on; the next run clears its folder and runs it again", function()
      _G.BATCH_MODELS = {}
      local out = tmp .. "/fail"
      local failed_dir, marker = out .. "/" .. stems[2], out .. "/.lumen-batch/" .. stems[2] .. ".running"
      local done, _, failed, failures = batch.run { recipe = recipe, inputs = inputs, out = out, params = { fail = stems[2] } }
      assert.same({ 2, 1 }, { done, failed })
      assert.equal(names[2], failures[1].input)
      local err = read(failed_dir .. "/error.txt")
      assert.truthy(err:find("this input fails on purpose", 1, true), err)
      assert.is_false(lumen.exists(failed_dir .. "/manifest.json"))
      assert.is_true(lumen.exists(failed_dir .. "/copy.png")) -- what it wrote before failing
      assert.is_true(lumen.exists(marker)) -- batch's proof that it wrote that folder
      assert.is_false(lumen.exists(out .. "/.lumen-batch/" .. stems[1] .. ".running"))
      -- The same command: the complete inputs are skipped, the failed one is cleared and fails again.
      write(failed_dir .. "/copy.png", "partial") -- as a kill while writing would leave it
      local again = { batch.run { recipe = recipe, inputs = inputs, out = out, params = { fail = stems[2] } } }
      assert.same({ 0, 2, 1 }, { again[1], again[2], again[3] })
      assert.equal(read(names[2]), read(failed_dir .. "/copy.png")) -- written again, not the partial one
      -- Other parameters: the failed input runs (its folder is batch's), the complete runs of other
      -- parameters are not replaced without overwrite=true, and are left as they were.
      local before = read(out .. "/" .. stems[1] .. "/manifest.json")
      again = { batch.run { recipe = recipe, inputs = inputs, out = out } }
      assert.same({ 1, 0, 2 }, { again[1], again[2], again[3] })
      assert.is_true(again[4][1].refused and again[4][2].refused)
      assert.truthy(again[4][1].error:find("the folder holds the outputs of another run", 1, true), again[4][1].error)
      assert.truthy(again[4][1].error:find("pass overwrite=true", 1, true), again[4][1].error)
      assert.truthy(again[4][1].error:find("not skipped: parameter fail was " .. stems[2] .. ", now ", 1, true), again[4][1].error)
      assert.equal(before, read(out .. "/" .. stems[1] .. "/manifest.json"))
      assert.is_false(lumen.exists(out .. "/" .. stems[1] .. "/error.txt"))
      assert.is_false(lumen.exists(failed_dir .. "/error.txt"))
      assert.is_false(lumen.exists(marker))
      again = { batch.run { recipe = recipe, inputs = inputs, out = out, params = { overwrite = "true" } } }
      assert.same({ 2, 1, 0 }, { again[1], again[2], again[3] }) -- overwrite=true replaces only what differs
      assert.equal("", support.json_file(out .. "/" .. stems[1] .. "/manifest.json").params.fail)
      assert.same({}, batch.list_dir(out .. "/.lumen-batch"))
    end)

    it("refuses a folder holding files it did not write, and leaves it as it is", function()
      local out = tmp .. "/foreign"
      lumen.mkdir(out .. "/" .. stems[1])
      write(out .. "/" .. stems[1] .. "/notes.txt", "mine")
      local done, skipped, failed, failures = batch.run { recipe = recipe, inputs = inputs, out = out }
      assert.same({ 2, 0, 1 }, { done, skipped, failed })
      assert.is_true(failures[1].refused)
      assert.truthy(failures[1].error:find("holds files that are not a lumen run's (notes.txt", 1, true), failures[1].error)
      assert.same({ "notes.txt" }, batch.list_dir(out .. "/" .. stems[1]))
      assert.equal("mine", read(out .. "/" .. stems[1] .. "/notes.txt"))
      -- A folder batch was writing (its marker), where a link has appeared: batch removes the regular
      -- files it wrote, never follows the link, and refuses the input.
      write(out .. "/.lumen-batch/" .. stems[2] .. ".running", "")
      os.remove(out .. "/" .. stems[2] .. "/manifest.json")
      lumen.mkdir(out .. "/" .. stems[2] .. "/sub")
      write(out .. "/" .. stems[2] .. "/sub/part.bin", "partial")
      lumen.mkdir(tmp .. "/foreign_target")
      write(tmp .. "/foreign_target/keep.txt", "keep")
      assert(os.execute(("ln -s %s %s"):format(q(tmp .. "/foreign_target"), q(out .. "/" .. stems[2] .. "/link"))))
      done, skipped, failed, failures = batch.run { recipe = recipe, inputs = inputs, out = out }
      assert.same({ 0, 1, 2 }, { done, skipped, failed })
      assert.truthy(failures[2].error:find("holds files that are not a lumen run's (link;", 1, true), failures[2].error)
      assert.equal("keep", read(tmp .. "/foreign_target/keep.txt"))
      assert.same({ "link" }, batch.list_dir(out .. "/" .. stems[2])) -- copy.png and sub/part.bin gone
      assert.is_false(lumen.exists(out .. "/" .. stems[2] .. "/sub"))
      -- A marker of a process that is alive on this machine: another batch is running the input now.
      local pid = sh("sleep 30 > /dev/null 2>&1 & echo $!"):match("%d+")
      local start = read("/proc/" .. pid .. "/stat"):match("%)%s+(.*)$"):match(("%S+%s+"):rep(19) .. "(%d+)")
      local host = read("/proc/sys/kernel/hostname"):gsub("%s+$", "")
      write(out .. "/.lumen-batch/" .. stems[3] .. ".running", ("input: x\nhost: %s\npid: %s\npid_start: %s\n"):format(host, pid, start))
      os.remove(out .. "/" .. stems[3] .. "/manifest.json")
      done, skipped, failed, failures = batch.run { recipe = recipe, inputs = inputs, out = out }
      os.execute("kill " .. pid)
      assert.same({ 0, 0, 3 }, { done, skipped, failed })
      assert.truthy(failures[3].error:find(("process %s (started ?) on this machine is running this input now"):format(pid), 1, true), failures[3].error)
      assert.is_true(lumen.exists(out .. "/" .. stems[3] .. "/copy.png")) -- untouched
      os.execute("sleep 0.05")
      done, skipped, failed = batch.run { recipe = recipe, inputs = inputs, out = out } -- it is gone: cleared and run
      assert.same({ 1, 0, 2 }, { done, skipped, failed })
      local ok, err = pcall(batch.run, { recipe = recipe, inputs = inputs, out = out .. "/" .. stems[3] })
      assert.is_false(ok)
      assert.truthy(err:find("is the folder of one run", 1, true), err)
    end)

    it("skips only a complete run of the same recipe file, parameters, inputs and code", function()
      local dir = tmp .. "/run/" .. stems[1]
      local m = support.json_file(dir .. "/manifest.json")
      local sha = lumen.sha256_file(recipe)
      assert.is_true((batch.complete(dir, m.params, sha)))
      local p = {}
      for k, v in pairs(m.params) do p[k] = v end
      p.seed = 1
      assert.same({ false, "parameter seed was 0, now 1" }, { batch.complete(dir, p, sha) })
      p.seed, p.out, p.overwrite = 0, "elsewhere", true -- out= and overwrite= do not count
      assert.is_true((batch.complete(dir, p, sha)))
      assert.same({ false, "the recipe file has changed" }, { batch.complete(dir, m.params, ("0"):rep(64)) })
      local model = m.inputs.model.path
      local function changed(path) return path == model and ("0"):rep(64) or runs.current_sha256(path) end
      assert.same({ false, ("input model (%s) has changed"):format(model) }, { batch.complete(dir, m.params, sha, changed) })
      local function edited(path) return path:match("lumen/recipe%.lua$") and ("0"):rep(64) or runs.current_sha256(path) end
      assert.same({ false, "lumen's lumen/recipe.lua has changed" }, { batch.complete(dir, m.params, sha, edited) })
      local png = read(dir .. "/copy.png")
      write(dir .. "/copy.png", png:sub(1, 20)) -- a file cut short
      assert.same({ false, "copy.png has changed" }, { batch.complete(dir, m.params, sha) })
      os.remove(dir .. "/copy.png")
      assert.same({ false, "copy.png is missing" }, { batch.complete(dir, m.params, sha) })
      write(dir .. "/copy.png", png)
      local manifest = read(dir .. "/manifest.json")
      write(dir .. "/manifest.json", manifest:sub(1, #manifest // 2)) -- killed while writing it
      assert.is_false(batch.complete(dir, m.params, sha))
      write(dir .. "/manifest.json", (manifest:gsub('"seed": 0', '"seed": 1'))) -- edited by hand
      p.seed = 1
      assert.same({ false, "its manifest was edited after the run (the checksum does not match)" }, { batch.complete(dir, p, sha) })
      write(dir .. "/manifest.json", manifest)
      assert.is_true((batch.complete(dir, m.params, sha)))
    end)

    it("refuses what it cannot do before any input runs, naming it", function()
      assert.has_error(function() batch.run { recipe = "recipes/demo.lua", inputs = inputs, out = tmp .. "/x" } end)
      local ok, err = pcall(batch.run, { recipe = "recipes/demo.lua", inputs = inputs, out = tmp .. "/x" })
      assert.is_false(ok)
      assert.truthy(err:find("recipes/demo.lua has no image= parameter", 1, true), err)
      ok, err = pcall(batch.run, { recipe = recipe, inputs = inputs, out = tmp .. "/x", params = { nope = "1" } })
      assert.truthy(tostring(err):find("unknown parameter 'nope'", 1, true), err)
      ok, err = pcall(batch.run, { recipe = recipe, inputs = inputs, out = tmp .. "/x", params = { seed = "one" } })
      assert.truthy(tostring(err):find("parameter seed: 'one' is not a number", 1, true), err)
      assert.is_false(lumen.exists(tmp .. "/x"))
    end)
  end)

  describe("lumen batch", function()
    local inputs = tmp .. "/six"
    lumen.mkdir(inputs)
    local names = batch.inputs(SAMPLES)
    for i = 1, 6 do write(("%s/%s.png"):format(inputs, string.char(96 + i)), read(names[i])) end
    -- recipes/gradcam.lua with a way to stop inside one input: while the file LUMEN_TEST_HOLD names
    -- exists, the run whose image= is that name without ".hold" waits (the kill test kills it there).
    -- Every run of this block uses it, so their manifests name the same script.
    local recipe = tmp .. "/gradcam_hold.lua"
    write(recipe, [[
do
  local hold = os.getenv("LUMEN_TEST_HOLD")
  for _, a in ipairs(hold and arg or {}) do
    if a == "image=" .. hold:gsub("%.hold$", "") then
      while os.rename(hold, hold) do os.execute("sleep 0.05") end -- rename to itself: true while it exists
    end
  end
end
]] .. read("recipes/gradcam.lua"))
    local function lumen_batch(args)
      return sh(("LUMEN_QUIET=1 %s batch %s inputs=%s %s"):format(q(LUMEN), q(recipe), q(inputs), args))
    end
    local out = tmp .. "/gradcam"
    local reference -- the files of one unsharded run

    -- The runs compared here all write into the same absolute folder `out` (the one before is moved
    -- aside), so every output is compared byte for byte and every manifest field by field, equal in all
    -- but the wall time (`seconds`) and the checksum that covers it (support.assert_same_runs).
    it("three shards over six inputs write the same files as one unsharded run, byte for byte", function()
      local text, status = lumen_batch("out=" .. q(out))
      assert.equal(0, status, text)
      assert.truthy(text:find("batch: 6 of 6 inputs: 6 done, 0 skipped, 0 failed", 1, true), text)
      reference = tree(out)
      assert.equal(6 * 4, count(reference)) -- gradcam.png, gradcam.npy, raw.npy, manifest.json each
      assert(os.rename(out, out .. "_one"))
      for k = 1, 3 do
        text, status = lumen_batch(("out=%s shard=%d/3"):format(q(out), k))
        assert.equal(0, status, text)
        assert.truthy(text:find(("batch: shard %d/3: 2 of 6 inputs: 2 done"):format(k), 1, true), text)
      end
      assert_same_tree(reference, tree(out), "three shards")
    end)

    it("a second run skips everything in well under a second", function()
      local text, status = lumen_batch("out=" .. q(out))
      assert.equal(0, status, text)
      local seconds = tonumber(text:match("6 of 6 inputs: 0 done, 6 skipped, 0 failed in ([%d.]+) s"))
      assert(seconds, text)
      assert(seconds < 1, ("skipping took %g s"):format(seconds))
      assert.is_nil(text:find("gradcam for class", 1, true)) -- no recipe ran
    end)

    it("a killed shard resumes where it stopped, clearing the input it was writing", function()
      assert(os.rename(out, out .. "_shards"))
      -- Input c is held (see recipe above): the batch finishes a and b, then waits inside c until killed.
      local c = inputs .. "/c.png"
      write(c .. ".hold", "")
      local pid = sh(("LUMEN_TEST_HOLD=%s LUMEN_QUIET=1 %s batch %s inputs=%s out=%s > %s/killed.log 2>&1 & echo $!")
        :format(q(c .. ".hold"), q(LUMEN), q(recipe), q(inputs), q(out), q(tmp))):match("%d+")
      local waited = 0
      while not lumen.exists(out .. "/.lumen-batch/c.running") and waited < 200 do
        os.execute("sleep 0.05")
        waited = waited + 1
      end
      os.execute("sleep 0.2")
      os.execute("kill -9 " .. pid)
      os.execute("sleep 0.1")
      os.remove(c .. ".hold")
      assert.is_true(lumen.exists(out .. "/b/manifest.json"), read(tmp .. "/killed.log"))
      assert.is_true(lumen.exists(out .. "/.lumen-batch/c.running")) -- c was started and not finished
      assert.is_false(lumen.exists(out .. "/c/manifest.json"))
      assert.is_false(lumen.exists(out .. "/d"))
      lumen.mkdir(out .. "/c") -- what a kill while writing c's pictures would leave: part of one
      write(out .. "/c/gradcam.png", reference["c/gradcam.png"]:sub(1, 100))
      local text, status = lumen_batch("out=" .. q(out))
      assert.equal(0, status, text)
      assert.truthy(text:find("6 of 6 inputs: 4 done, 2 skipped, 0 failed", 1, true), text)
      assert_same_tree(reference, tree(out), "resumed") -- no marker left either
    end)

    it("a failing input is recorded, the rest go on, and the exit status counts the failures", function()
      local list = tmp .. "/with_missing.txt"
      write(list, inputs .. "/a.png\n" .. tmp .. "/no_such.png\n" .. inputs .. "/b.png\n")
      local text, status = sh(("LUMEN_QUIET=1 %s batch gradcam inputs=%s out=%s"):format(q(LUMEN), q(list), q(tmp .. "/missing")))
      assert.equal(1, status, text)
      assert.truthy(text:find("3 of 3 inputs: 2 done, 0 skipped, 1 failed", 1, true), text)
      assert.truthy(read(tmp .. "/missing/no_such/error.txt"):find("no_such.png", 1, true))
      -- Other parameters: the complete runs are refused (not replaced) and counted; no_such is tried again.
      text, status = sh(("LUMEN_QUIET=1 %s batch gradcam inputs=%s out=%s seed=1"):format(q(LUMEN), q(list), q(tmp .. "/missing")))
      assert.equal(3, status, text)
      assert.truthy(text:find("3 of 3 inputs: 0 done, 0 skipped, 3 failed (2 refused)", 1, true), text)
      assert.truthy(text:find("\n  refused: " .. inputs .. "/a.png: out=" .. tmp .. "/missing/a: the folder holds the outputs of another run", 1, true), text)
      assert.truthy(text:find("(not skipped: parameter seed was 0, now 1)", 1, true), text)
      text, status = sh(("LUMEN_QUIET=1 %s batch gradcam inputs=%s out=%s seed=1 overwrite=true"):format(q(LUMEN), q(list), q(tmp .. "/missing")))
      assert.equal(1, status, text)
      assert.truthy(text:find("3 of 3 inputs: 2 done, 0 skipped, 1 failed in", 1, true), text)
      assert.equal(1, support.json_file(tmp .. "/missing/a/manifest.json").params.seed)
      text, status = sh(("%s batch gradcam inputs=%s shard=0/2"):format(q(LUMEN), q(list)))
      assert.equal(1, status)
      assert.truthy(text:find("K must be 1..2", 1, true), text)
      text, status = sh(("%s batch gradcam inputs=%s seed=1 seed=2"):format(q(LUMEN), q(list)))
      assert.equal(1, status)
      assert.truthy(text:find("batch: seed given twice (seed=1 and seed=2)", 1, true), text)
    end)

    it("GNU parallel runs two shards at once ({%} is the 1-based shard)", function()
      if os.execute("command -v parallel > /dev/null 2>&1") ~= true then
        pending("GNU parallel is not installed (Debian package parallel)")
        return
      end
      local par = tmp .. "/parallel"
      lumen.mkdir(par)
      assert(os.rename(out, out .. "_killed"))
      local text, status = sh(("PARALLEL_HOME=%s LUMEN_QUIET=1 parallel --will-cite -j2 --joblog %s " ..
        "%s batch %s inputs=%s out=%s 'shard={%%}/2' ::: 1 2"):format(q(par), q(par .. "/jobs.log"), q(LUMEN),
        q(recipe), q(inputs), q(out)))
      assert.equal(0, status, text)
      local jobs = {}
      for line in io.lines(par .. "/jobs.log") do
        local start, runtime, exit = line:match("^%d+%s+%S+%s+([%d.]+)%s+([%d.]+)%s+%d+%s+%d+%s+(%d+)")
        if start then jobs[#jobs + 1] = { tonumber(start), tonumber(runtime), tonumber(exit) } end
      end
      assert.equal(2, #jobs)
      local a, b = jobs[1], jobs[2]
      assert.same({ 0, 0 }, { a[3], b[3] })
      assert(a[1] < b[1] + b[2] and b[1] < a[1] + a[2],
        ("the two shards did not overlap: %.3f+%.3f and %.3f+%.3f"):format(a[1], a[2], b[1], b[2]))
      assert_same_tree(reference, tree(out), "parallel")
    end)
  end)
end)
