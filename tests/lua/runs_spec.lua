-- Specs for run folders: lumen.args (duplicate keys, the out= folder checked before any work,
-- overwrite=true), lumen.output (plain relative names only) and lumen.manifest (what it records, the
-- folder holding exactly what it lists, its checksum). Each case runs a tiny script with `lumen run`
-- in a child process, in a private temporary folder.
local lumen = require "lumen"
local runs = require "lumen.runs"
local json = lumen.json

local support = require "support"
local LUMEN, q, write, read_json = support.LUMEN, support.quote, support.write, support.json_file

-- A script with an out= folder that writes values.npy (and more.npy with more=true), reads input=
-- when given, and counts its runs in a log next to it.
local SCRIPT = [[
local lumen = require "lumen"
local p = lumen.args { out = "out/t", n = 3, input = "", more = false, seed = 0 }
local here = arg[0]:match("^(.*)/[^/]*$") or "."
local f = assert(io.open(here .. "/ran.log", "a")); f:write("ran\n"); f:close()
lumen.seed(p.seed)
lumen.mkdir(p.out)
assert(lumen.write_npy(lumen.output(p.out, "values.npy"), lumen.rand { p.n }))
if p.more then assert(lumen.write_npy(lumen.output(p.out, "more.npy"), lumen.ones { 2 })) end
lumen.manifest(p.out, { n = p.n })
]]

describe("run folders", function()
  local tmp = support.tmp_dir("runs_spec")
  teardown(function() support.remove(tmp) end)
  local script = tmp .. "/script.lua"
  write(script, SCRIPT)

  local function runs_so_far() return select(2, (support.read(tmp .. "/ran.log") or ""):gsub("\n", "")) end

  -- Runs the script with key=value words; returns ok, output.
  local function run(...)
    local words = {}
    for _, w in ipairs { ... } do words[#words + 1] = q(w) end
    local p = io.popen(("cd %s && LUMEN_QUIET=1 %s run script.lua %s 2>&1"):format(q(tmp), q(LUMEN), table.concat(words, " ")))
    local out = p:read("a")
    return p:close(), out
  end

  describe("lumen.args", function()
    it("refuses a key given twice, naming both", function()
      local before = runs_so_far()
      local ok, out = run("n=2", "out=a", "n=5")
      assert.is_falsy(ok)
      assert.truthy(out:find("parameter n given twice (n=2 and n=5)", 1, true), out)
      assert.equal(before, runs_so_far())
    end)

    it("refuses an out= that is a file, before any work", function()
      write(tmp .. "/afile", "x")
      local before = runs_so_far()
      local ok, out = run("out=afile")
      assert.is_falsy(ok)
      assert.truthy(out:find("out=afile: is a file, not a folder", 1, true), out)
      ok, out = run("out=afile/below")
      assert.is_falsy(ok)
      assert.truthy(out:find("out=afile/below: cannot create the folder", 1, true), out)
      assert.equal(before, runs_so_far())
    end)

    it("checks that out= can be created without leaving it behind", function()
      local ok, out = run("out=new/deep/folder", "n=0") -- n=0: rand{0} is empty, the run still writes
      assert(ok, out)
      assert.equal("directory", lumen.core.lstat(tmp .. "/new/deep/folder").type)
    end)

    it("refuses a folder holding another run's outputs unless overwrite=true", function()
      local ok, out = run("out=r1", "more=true")
      assert(ok, out)
      local before = runs_so_far()
      ok, out = run("out=r1")
      assert.is_falsy(ok)
      assert.truthy(out:find("out=r1: the folder holds the outputs of another run", 1, true), out)
      assert.truthy(out:find("overwrite=true", 1, true), out)
      assert.equal(before, runs_so_far())
    end)

    it("with overwrite=true removes the earlier run's stale files: the manifest lists exactly the folder", function()
      local ok, out = run("out=r2", "more=true")
      assert(ok, out)
      assert.truthy(lumen.core.lstat(tmp .. "/r2/more.npy"))
      ok, out = run("out=r2", "overwrite=true", "n=5")
      assert(ok, out)
      assert.is_nil(lumen.core.lstat(tmp .. "/r2/more.npy"))
      local m = read_json(tmp .. "/r2/manifest.json")
      local listed = {}
      for name in pairs(m.files) do listed[#listed + 1] = name end
      table.sort(listed)
      listed[#listed + 1] = "manifest.json"
      table.sort(listed)
      assert.same(listed, (runs.tree(tmp .. "/r2")))
      assert.same({ 5 }, lumen.read_npy(tmp .. "/r2/values.npy").shape)
    end)

    it("never clears a folder holding files that are not a run's, even with overwrite=true", function()
      lumen.mkdir(tmp .. "/mine")
      write(tmp .. "/mine/notes.txt", "keep me")
      for _, extra in ipairs { {}, { "overwrite=true" } } do
        local ok, out = run("out=mine", table.unpack(extra))
        assert.is_falsy(ok)
        assert.truthy(out:find("out=mine: the folder holds files that are not a lumen run's (notes.txt", 1, true), out)
      end
      -- a run folder with one foreign file in it
      local ok, out = run("out=r3")
      assert(ok, out)
      write(tmp .. "/r3/notes.txt", "keep me too")
      ok, out = run("out=r3", "overwrite=true")
      assert.is_falsy(ok)
      assert.truthy(out:find("the folder also holds notes.txt", 1, true), out)
      assert.truthy(lumen.core.lstat(tmp .. "/r3/notes.txt"))
      assert.truthy(lumen.core.lstat(tmp .. "/mine/notes.txt"))
    end)
  end)

  describe("lumen.output", function()
    it("accepts only plain relative names inside the folder", function()
      for _, bad in ipairs { "../x.npy", "/tmp/x.npy", "a/../../x", "./x", "a//b", "", "manifest.json" } do
        local ok, err = pcall(lumen.output, tmp .. "/o", bad)
        assert.is_false(ok, bad)
        assert.truthy(err:find("plain relative paths inside the run folder", 1, true), err)
      end
      assert.equal(tmp .. "/o/maps/a.npy", lumen.output(tmp .. "/o/", "maps/a.npy"))
    end)
  end)

  describe("lumen.manifest", function()
    local ok, out = run("out=m1", "input=script.lua")
    assert(ok, out)
    local m = read_json(tmp .. "/m1/manifest.json")

    it("records what decides the bytes: environment, script, inputs and lumen's code", function()
      local env = m.environment
      for _, k in ipairs { "lumen_version", "lumen_build", "blas", "blas_kernels", "threads", "lua_version" } do
        assert.is_not_nil(env[k], k)
      end
      assert.equal(lumen.core.blas_core(), env.blas_kernels)
      assert.equal(lumen.version, env.lumen_version)
      assert.equal(lumen.sha256_file(script), m.script.sha256)
      assert.equal("../script.lua", m.script.rel)
      assert.equal(lumen.core.realpath(script), m.script.abs)
      assert.equal(lumen.sha256_file(script), m.inputs.input.sha256)
      assert.equal("script.lua", m.inputs.input.path)
      assert.equal("../script.lua", m.inputs.input.rel)
      assert.truthy(m.code["lumen/util.lua"])
      assert.truthy(m.command:find("lumen run script.lua", 1, true))
    end)

    it("is checksummed: an edit shows", function()
      assert.equal(m.manifest_sha256, runs.checksum(m))
      m.params.n = 4
      assert.are_not.equal(m.manifest_sha256, runs.checksum(m))
      m.params.n = 3
    end)

    it("refuses a run that wrote nothing, and a file the run did not register", function()
      local okn, err = pcall(lumen.manifest, tmp .. "/empty_run", {}, {})
      assert.is_false(okn)
      assert.truthy(err:find("no outputs were written", 1, true), err)
      lumen.mkdir(tmp .. "/sneaky")
      write(tmp .. "/sneaky/a.txt", "a")
      write(tmp .. "/sneaky/b.txt", "b")
      okn, err = pcall(lumen.manifest, tmp .. "/sneaky", {}, { "a.txt" })
      assert.is_false(okn)
      assert.truthy(err:find("also holds b.txt, which this run did not write", 1, true), err)
    end)
  end)
end)
