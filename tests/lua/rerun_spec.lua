-- Specs for `lumen rerun`: a manifest is code, so it may do nothing but rerun its own script into a
-- private folder; hostile manifests (paths out of the folder, FIFOs, empty files, a changed script)
-- are refused before anything runs; reruns work from any directory and after the folder moved; the
-- comparison is numeric as well as by bytes, and the exit status says whether the run reproduced.
-- The "recipe" is a tiny script written here, so nothing needs the datasets.
local lumen = require "lumen"
local support = require "support"
local json = lumen.json
local LUMEN, q, read, write = support.LUMEN, support.quote, support.read_file, support.write

-- values.npy: seeded random values plus LUMEN_TEST_NOISE plus the size of input=; summary.txt: their sum
-- printed with %.4g; square.png: a fixed picture. LUMEN_TEST_FAIL makes it fail; every run is logged.
local SCRIPT = [[
local lumen = require "lumen"
local p = lumen.args { out = "out/t", n = 16, input = "", seed = 0 }
local here = arg[0]:match("^(.*)/[^/]*$") or "."
local f = assert(io.open(here .. "/ran.log", "a")); f:write("ran\n"); f:close()
if os.getenv("LUMEN_TEST_FAIL") then error("failing as asked") end
lumen.seed(p.seed)
local extra = 0
if p.input ~= "" then local g = assert(io.open(p.input, "rb")); extra = #g:read("a"); g:close() end
local v = lumen.rand { p.n } + (extra + tonumber(os.getenv("LUMEN_TEST_NOISE") or "0"))
lumen.mkdir(p.out)
assert(lumen.write_npy(lumen.output(p.out, "values.npy"), v))
local s = assert(io.open(lumen.output(p.out, "summary.txt"), "w"))
s:write(("sum %.4g\n"):format(v:sum_all())); s:close()
assert(lumen.image.save(lumen.full({ 3, 4, 4 }, 0.5), lumen.output(p.out, "square.png")))
lumen.manifest(p.out, {})
]]

describe("lumen rerun", function()
  local root = support.tmp_dir("rerun_spec")
  teardown(function() support.remove(root) end)
  local tmpdir = root .. "/tmp" -- TMPDIR of every rerun: must be empty again after each
  lumen.mkdir(tmpdir)
  local home = root .. "/home"
  lumen.mkdir(home)
  write(home .. "/script.lua", SCRIPT)
  write(home .. "/input.txt", "hello")

  local function ran() return select(2, (support.read(home .. "/ran.log") or ""):gsub("\n", "")) end

  -- Runs a shell command line with TMPDIR set; returns ok, output.
  local function sh(cmd, env)
    local p = io.popen(("cd %s && TMPDIR=%s LUMEN_QUIET=1 %s timeout 60 %s 2>&1"):format(q(root), q(tmpdir), env or "", cmd))
    local out = p:read("a")
    return p:close(), out
  end
  local function run(out, ...)
    local words = {}
    for _, w in ipairs { ... } do words[#words + 1] = q(w) end
    return sh(("sh -c %s"):format(q(("cd %s && %s run script.lua out=%s %s"):format(q(home), q(LUMEN), q(out), table.concat(words, " ")))))
  end
  local function rerun(manifest, env, ...)
    local words = {}
    for _, w in ipairs { ... } do words[#words + 1] = q(w) end
    return sh(("%s rerun %s %s"):format(q(LUMEN), q(manifest), table.concat(words, " ")), env)
  end
  local function stray() return #(lumen.core.listdir(tmpdir) or {}) end

  local ok, out = run("runs/r1", "input=input.txt")
  assert(ok, out)
  local manifest = home .. "/runs/r1/manifest.json"

  it("reproduces a run byte for byte from another directory, and leaves no folder behind", function()
    local okr, text = rerun(manifest)
    assert(okr, text)
    assert.truthy(text:find("3 of 3 files reproduced byte for byte", 1, true), text)
    assert.equal(0, stray())
  end)

  it("finds the script and inputs relative to the manifest after everything moved", function()
    assert(os.rename(home, root .. "/moved"))
    local okr, text = rerun(root .. "/moved/runs/r1/manifest.json")
    assert(os.rename(root .. "/moved", home))
    assert(okr, text)
    assert.truthy(text:find("3 of 3 files reproduced byte for byte", 1, true), text)
    assert.truthy(text:find("/moved/input.txt", 1, true), text) -- run with the moved input
  end)

  it("reports a changed input file as such", function()
    write(home .. "/input.txt", "hello, world")
    local okr, text = rerun(manifest)
    write(home .. "/input.txt", "hello")
    assert.is_falsy(okr)
    assert.truthy(text:find("CHANGED    input input: ", 1, true), text)
    assert.truthy(text:find("DIFFERENT  values.npy", 1, true), text)
    assert.truthy(text:find("kept the rerun's outputs in " .. tmpdir, 1, true), text)
    os.execute("rm -rf " .. q(tmpdir) .. "/*")
  end)

  it("flags a manifest whose parameters were edited by hand", function()
    local r2 = home .. "/runs/r2"
    os.execute(("cp -r %s %s"):format(q(home .. "/runs/r1"), q(r2)))
    write(r2 .. "/manifest.json", (read(r2 .. "/manifest.json"):gsub('"seed": 0', '"seed": 1')))
    local okr, text = rerun(r2 .. "/manifest.json")
    assert.is_falsy(okr)
    assert.truthy(text:find("EDITED", 1, true), text)
    assert.truthy(text:find("not a clean reproduction: the manifest was edited", 1, true), text)
    os.execute("rm -rf " .. q(tmpdir) .. "/*")
  end)

  it("names the lumen code that changed since the run, comparing what the rerun did not load as it is on disk", function()
    local r5 = home .. "/runs/r5"
    os.execute(("cp -r %s %s"):format(q(home .. "/runs/r1"), q(r5)))
    local m = json.decode(read(r5 .. "/manifest.json"))
    assert.is_string(m.code["lumen/json.lua"]) -- the script loads lumen, hence json
    m.code["lumen/json.lua"] = string.rep("0", 64) -- as if json.lua were another file then
    local explain = "lumen/cli/explain.lua" -- not loaded by the rerun (a `lumen explain` run's own file)
    m.code[explain] = lumen.sha256_file(package.searchpath("lumen.cli.explain", package.path))
    m.manifest_sha256 = require("lumen.runs").checksum(m)
    write(r5 .. "/manifest.json", json.encode(m, "  ") .. "\n")
    local okr, text = rerun(r5 .. "/manifest.json")
    assert(okr, text) -- the outputs are the same bytes: code that changed is reported, not a failure
    assert.truthy(text:find("lumen code changed since the run: lumen/json.lua\n", 1, true), text)
  end)

  describe("compares numerically", function()
    -- The same values plus 1e-7 under another BLAS kernel set is a reproduction; on the same kernels it
    -- is not; plus 0.1 is not either, unless the tolerance says so.
    local kernels = {}
    for _, k in ipairs { "Prescott", "Nehalem" } do
      local p = io.popen(("OPENBLAS_CORETYPE=%s %s run /dev/stdin <<'EOF'\nio.write(require'lumen'.core.blas_core())\nEOF")
        :format(k, q(LUMEN)))
      kernels[k] = p:read("a")
      p:close()
    end
    local r3 = home .. "/runs/r3"
    local setup_ok, setup_out = sh(("sh -c %s"):format(q(("cd %s && %s run script.lua out=runs/r3"):format(q(home), q(LUMEN)))),
      "OPENBLAS_CORETYPE=Prescott")

    it("accepts a difference within tolerance only under a different kernel set", function()
      if kernels.Prescott == kernels.Nehalem then
        return pending("OPENBLAS_CORETYPE does not switch OpenBLAS's kernels on this machine")
      end
      assert(setup_ok, setup_out)
      local okr, text = rerun(r3 .. "/manifest.json", "OPENBLAS_CORETYPE=Nehalem LUMEN_TEST_NOISE=1e-7")
      assert(okr, text)
      assert.truthy(text:find("close      values.npy   max |diff| ", 1, true), text)
      assert.truthy(text:find("same       square.png", 1, true), text)
      assert.truthy(text:find("within tolerance 0.0001 under a different blas_kernels", 1, true), text)
      assert.truthy(text:find("kept the rerun's outputs in", 1, true), text)
      os.execute("rm -rf " .. q(tmpdir) .. "/*")

      okr, text = rerun(r3 .. "/manifest.json", "OPENBLAS_CORETYPE=Prescott LUMEN_TEST_NOISE=1e-7")
      assert.is_falsy(okr)
      assert.truthy(text:find("although the kernel set, threads, CPU and lumen build are the same", 1, true), text)
      os.execute("rm -rf " .. q(tmpdir) .. "/*")
    end)

    it("reports max abs and relative difference of a .npy that differs, and obeys tolerance=", function()
      assert(setup_ok, setup_out)
      local okr, text = rerun(r3 .. "/manifest.json", "OPENBLAS_CORETYPE=Nehalem LUMEN_TEST_NOISE=0.1")
      assert.is_falsy(okr)
      assert.truthy(text:find("DIFFERENT  values.npy   max |diff| 0.1, relative", 1, true), text)
      assert.truthy(text:find("DIFFERENT  summary.txt  the number", 1, true), text)
      os.execute("rm -rf " .. q(tmpdir) .. "/*")
      if kernels.Prescott ~= kernels.Nehalem then
        okr, text = rerun(r3 .. "/manifest.json", "OPENBLAS_CORETYPE=Nehalem LUMEN_TEST_NOISE=0.1", "tolerance=0.5")
        assert(okr, text)
        os.execute("rm -rf " .. q(tmpdir) .. "/*")
      end
    end)
  end)

  describe("refuses hostile manifests before running anything", function()
    -- A manifest made by hand in its own folder, with files = entries.
    local function hostile(name, files, extra)
      local dir = home .. "/hostile_" .. name
      lumen.mkdir(dir)
      local m = json.decode(read(manifest))
      m.files = files
      for k, v in pairs(extra or {}) do m[k] = v end
      write(dir .. "/manifest.json", json.encode(m, "  "))
      return dir .. "/manifest.json"
    end

    it("an output name that leaves the folder, aimed at a file that must survive", function()
      local victim = root .. "/victim"
      lumen.mkdir(victim)
      write(victim .. "/important.txt", "precious")
      local before = ran()
      for _, name in ipairs { "../../../victim/important.txt", root .. "/victim/important.txt", "a/../../x" } do
        local path = hostile("escape", { [name] = ("0"):rep(64) })
        local okr, text = rerun(path)
        assert.is_falsy(okr)
        assert.truthy(text:find("not a usable lumen manifest: output name", 1, true), text)
        assert.truthy(text:find("plain relative paths inside the run folder", 1, true), text)
      end
      assert.equal("precious", read(victim .. "/important.txt"))
      assert.equal(before, ran())
      assert.equal(0, stray())
    end)

    it("a FIFO where an output should be, without hanging", function()
      local path = hostile("fifo", { ["values.npy"] = ("0"):rep(64) })
      assert(os.execute("mkfifo " .. q(home .. "/hostile_fifo/values.npy")))
      local before = ran()
      local okr, text = rerun(path)
      assert.is_falsy(okr)
      assert.truthy(text:find("output values.npy is a fifo, not a regular file", 1, true), text)
      -- and a FIFO as the manifest itself
      assert(os.execute("mkfifo " .. q(home .. "/hostile_fifo/fifo.json")))
      okr, text = rerun(home .. "/hostile_fifo/fifo.json")
      assert.is_falsy(okr)
      assert.truthy(text:find("fifo.json: not a regular file (fifo)", 1, true), text)
      assert.equal(before, ran())
      assert.equal(0, stray())
    end)

    it("an empty files table", function()
      local before = ran()
      local okr, text = rerun(hostile("empty", json.array()))
      assert.is_falsy(okr)
      assert.truthy(text:find("files is empty, so there is nothing to reproduce", 1, true), text)
      okr, text = rerun(hostile("empty_object", {}))
      assert.is_falsy(okr)
      assert.truthy(text:find("files is empty", 1, true), text)
      assert.equal(before, ran())
    end)

    it("a script whose hash differs runs only with trust=true", function()
      local m = json.decode(read(manifest))
      m.script.sha256 = ("ab"):rep(32)
      local path = hostile("wrong_hash", m.files, { script = m.script })
      local before = ran()
      local okr, text = rerun(path)
      assert.is_falsy(okr)
      assert.truthy(text:find("has changed since the run", 1, true), text)
      assert.truthy(text:find("pass trust=true to run it anyway", 1, true), text)
      assert.equal(before, ran())
      assert.equal(0, stray())
      okr, text = rerun(path, nil, "trust=true")
      assert.is_falsy(okr) -- it ran, but a different script is not a reproduction
      assert.equal(before + 1, ran())
      assert.truthy(text:find("CHANGED    script", 1, true), text)
      assert.truthy(text:find("3 of 3 files reproduced byte for byte", 1, true), text)
      assert.equal(0, stray())
    end)
  end)

  it("a failed rerun leaves no temporary folder behind", function()
    local okr, text = rerun(manifest, "LUMEN_TEST_FAIL=1")
    assert.is_falsy(okr)
    assert.truthy(text:find("the recipe failed", 1, true), text)
    assert.equal(0, stray())
  end)
end)
