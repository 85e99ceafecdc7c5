-- lumen.util: what scripts and recipes share — typed key=value arguments, progress bars,
-- threads, output folders and the reproducibility manifest (the rules of run folders and manifests
-- are in lumen.runs).
local core = require "lumen.core"
local json = require "lumen.json"

return function(lumen)
  lumen.json = json

  local runs = require "lumen.runs"

  -- lumen.args{defaults} -> params. Reads key=value pairs from the command line (`lumen run FILE k=v`),
  -- each typed by its default (number, boolean, string). Unknown keys, keys given twice and bad values
  -- are errors that list the known keys. `help` prints the parameters and exits. When the defaults
  -- have an `out` folder, `overwrite = false` is a parameter too and the folder is checked here,
  -- before any work (lumen.check_out); an empty out= is left to the command, which picks the folder.
  -- opts.check_out = false parses without checking the folder, for a caller that checks it itself at
  -- the right moment (lumen batch, which may first skip or clear a folder it wrote).
  function lumen.args(defaults, argv, opts)
    argv = argv or _G.arg or {}
    opts = opts or {}
    local p, given = {}, {}
    local accepted = {}
    for k, v in pairs(defaults) do p[k], accepted[k] = v, v end
    if defaults.out ~= nil and defaults.overwrite == nil then p.overwrite, accepted.overwrite = false, false end
    local function known()
      local ks = {}
      for k, v in pairs(accepted) do ks[#ks + 1] = ("%s=%s"):format(k, tostring(v)) end
      table.sort(ks)
      return table.concat(ks, " ")
    end
    for i = 1, #argv do
      local a = argv[i]
      if a == "help" or a == "--help" then
        io.stdout:write("parameters (key=default): ", known(), "\n")
        os.exit(0)
      end
      local k, v = a:match("^([%w_%.%-]+)=(.*)$")
      if not k then error(("argument '%s' is not key=value (known: %s)"):format(a, known()), 2) end
      local d = accepted[k]
      if d == nil and k == "report" then d = false end -- any recipe: report=true also writes index.html (recipe.finish)
      if d == nil then error(("unknown parameter '%s' (known: %s)"):format(k, known()), 2) end
      if given[k] then error(("parameter %s given twice (%s and %s)"):format(k, given[k], a), 2) end
      given[k] = a
      if type(d) == "number" then
        local n = tonumber(v)
        if not n then error(("parameter %s: '%s' is not a number"):format(k, v), 2) end
        if math.type(d) == "integer" then
          n = math.tointeger(n) or error(("parameter %s: '%s' is not an integer"):format(k, v), 2)
        end
        p[k] = n
      elseif type(d) == "boolean" then
        if v == "true" or v == "1" or v == "yes" then p[k] = true
        elseif v == "false" or v == "0" or v == "no" then p[k] = false
        else error(("parameter %s: '%s' is not a boolean (true/false)"):format(k, v), 2) end
      else
        p[k] = v
      end
    end
    if type(p.out) == "string" and p.out ~= "" and opts.check_out ~= false then -- "" leaves the folder to the command (lumen explain)
      local ok, err = pcall(lumen.check_out, p.out, p.overwrite)
      if not ok then error(err, 2) end
    end
    lumen._params = p
    return p
  end

  lumen.now = core.now

  -- lumen.threads(n): threads for OpenBLAS and lumen's own loops; no argument returns the count.
  function lumen.threads(n)
    if n then core.set_threads(n) end
    return core.get_threads()
  end

  local function fmt_time(s)
    if s ~= s or s == math.huge then return "?" end
    s = math.floor(s + 0.5)
    if s >= 3600 then return ("%dh%02dm"):format(s // 3600, s % 3600 // 60) end
    return ("%d:%02d"):format(s // 60, s % 60)
  end

  -- lumen.progress(total, label) -> bar with :update(n [, text]) (n = items done so far, or nil for one more)
  -- and :done([text]). On a terminal, a redrawn bar with rate and ETA on stderr; otherwise a plain line
  -- every 10% (or 10 s), so logs stay readable. Work that finishes within a second prints nothing.
  -- LUMEN_QUIET=1 silences it.
  function lumen.progress(total, label)
    local bar = { total = total, n = 0, label = label or "", start = core.now(), last = -1, last_t = 0 }
    local tty = core.isatty(2)
    local quiet = os.getenv("LUMEN_QUIET") == "1"
    local function draw(final, text)
      local now = core.now()
      local el = now - bar.start
      if quiet or el < 1 then return end
      local rate = el > 0 and bar.n / el or 0
      local eta = rate > 0 and (bar.total - bar.n) / rate or math.huge
      local frac = bar.total > 0 and math.min(1, bar.n / bar.total) or 1
      text = text and ("  " .. text) or ""
      if tty then
        local w = 24
        local fill = math.floor(frac * w + 0.5)
        io.stderr:write(("\r%s [%s%s] %d/%d %.1f/s %s %s%s\27[K"):format(bar.label, ("#"):rep(fill),
          ("."):rep(w - fill), bar.n, bar.total, rate, final and "in" or "eta", fmt_time(final and el or eta), text))
        if final then io.stderr:write("\n") end
      else
        local decile = math.floor(frac * 10)
        if final or decile > bar.last or now - bar.last_t > 10 then
          bar.last, bar.last_t = decile, now
          io.stderr:write(("%s %d/%d (%d%%) %.1f/s %s %s%s\n"):format(bar.label, bar.n, bar.total,
            math.floor(frac * 100), rate, final and "took" or "eta", fmt_time(final and el or eta), text))
        end
      end
    end
    function bar:update(n, text)
      self.n = n or self.n + 1
      local now = core.now()
      if tty and now - self.last_t < 0.1 and self.n < self.total then return end
      if tty then self.last_t = now end
      draw(false, text)
    end
    function bar:done(text)
      self.n = math.max(self.n, self.total)
      draw(true, text)
    end
    return bar
  end

  -- lumen.mkdir(path): creates a folder and its parents; raises naming the path on failure.
  function lumen.mkdir(path)
    local ok, err = core.mkdir_p(path)
    if not ok then error(err, 2) end
    return path
  end
  lumen.exists = core.exists

  -- lumen.tmpname([suffix]): a fresh temporary path. With a suffix the placeholder file that
  -- os.tmpname creates is removed, so only the path with the suffix is ever made.
  function lumen.tmpname(suffix)
    local base = os.tmpname()
    if not suffix then return base end
    os.remove(base)
    return base .. suffix
  end
  lumen.sha256 = core.sha256
  lumen.sha256_file = core.sha256_file

  -- Output folders. lumen.check_out(dir, overwrite) raises unless dir can hold this run's outputs:
  -- it is a new folder that can be created, an empty folder, or (only with overwrite = true) the
  -- folder of an earlier run holding nothing but the files its manifest lists; those files are
  -- replaced, and the ones this run does not write again are removed when the new manifest is written.
  -- A file, or a folder holding anything else, is always an error.
  local outputs = {}   -- normalized dir -> list of names this run wrote there
  local replacing = {} -- normalized dir -> names the earlier run's manifest lists (overwrite = true)
  local inputs = {}    -- extra input files registered with lumen.input: list of {path, name}

  function lumen.check_out(dir, overwrite)
    local d = runs.normalize_dir(dir)
    local st = core.stat(d)
    if not st then
      -- creatable? make the missing folders, then remove the ones made here
      local made, cur = {}, d
      while cur ~= "" and cur ~= "." and cur ~= "/" and not core.lstat(cur) do
        table.insert(made, 1, cur)
        cur = cur:match("^(.*)/[^/]*$") or ""
      end
      local ok, err = core.mkdir_p(d)
      for i = #made, 1, -1 do os.remove(made[i]) end
      if not ok then error(("out=%s: cannot create the folder (%s)"):format(dir, err), 2) end
      return d
    end
    if st.type ~= "directory" then error(("out=%s: is a %s, not a folder"):format(dir, st.type), 2) end
    local top, lerr = core.listdir(d)
    if not top then error(("out=%s: cannot read the folder (%s)"):format(dir, lerr), 2) end
    if #top == 0 then return d end
    local st_m = core.lstat(d .. "/" .. runs.MANIFEST)
    if not st_m then
      error(("out=%s: the folder holds files that are not a lumen run's (%s; no %s): choose an empty or new"
        .. " out= folder"):format(dir, runs.some(top), runs.MANIFEST), 2)
    end
    local ok_t, files, others = pcall(runs.tree, d)
    if not ok_t then error(("out=%s: %s"):format(dir, files), 2) end
    if #others > 0 then
      error(("out=%s: the folder holds entries that are not regular files (%s): choose another out= folder")
        :format(dir, runs.some(others)), 2)
    end
    local ok, m = pcall(runs.read, d .. "/" .. runs.MANIFEST)
    if not ok then error(("out=%s: the folder holds a manifest lumen cannot use (%s): choose another out= folder")
      :format(dir, m), 2) end
    if not overwrite then
      error(("out=%s: the folder holds the outputs of another run (%s and %d files): pass overwrite=true to"
        .. " replace them, or choose another out= folder"):format(dir, runs.MANIFEST, #files - 1), 2)
    end
    local extra = {}
    for _, f in ipairs(files) do -- a page lumen report wrote (report=true) is a view of the run: replaced too
      if f ~= runs.MANIFEST and not m.files[f] and not runs.is_report(d, f) then extra[#extra + 1] = f end
    end
    if #extra > 0 then
      error(("out=%s: overwrite=true replaces only a run's own files, and the folder also holds %s, which its"
        .. " %s does not list: move them or choose another out= folder"):format(dir, runs.some(extra), runs.MANIFEST), 2)
    end
    local names = {}
    for name in pairs(m.files) do names[#names + 1] = name end
    replacing[d] = names
    return d
  end

  -- lumen.output(dir, name) -> dir/name, registering name as an output of this run for the manifest.
  -- name must be a plain relative path inside dir (no "..", not absolute).
  function lumen.output(dir, name)
    local ok, why = runs.check_name(name)
    if not ok then error(("output name '%s' %s: outputs are plain relative paths inside the run folder")
      :format(tostring(name), why), 2) end
    local d = runs.normalize_dir(dir)
    local list = outputs[d] or {}
    outputs[d] = list
    for _, n in ipairs(list) do if n == name then return d .. "/" .. name end end
    list[#list + 1] = name
    return d .. "/" .. name
  end

  -- lumen.input(path [, name]): declares a file (or folder) the run read that is not a parameter, so
  -- the manifest records its SHA-256. Parameters naming files are recorded without this.
  function lumen.input(path, name)
    inputs[#inputs + 1] = { path = path, name = name or path }
    return path
  end

  -- lumen.manifest(dir, info [, files [, run]]) writes dir/manifest.json describing how the outputs were
  -- made (run = {script =, params =}: the script and parameters that remake them, for a command that does
  -- a script's work itself, as lumen explain; default the running script, arg[0], and lumen.args'):
  --   script        {path, abs, rel, sha256}: the script as run, its absolute path, its path relative to dir
  --   params        the parameters from lumen.args; command: the `lumen run` line that makes them
  --   inputs        {param or name = {path, abs, rel, sha256, bytes | files}} for every parameter that
  --                 names an existing file or folder and every lumen.input
  --   environment   lumen_version, lumen_build, lua_version, blas, blas_kernels, threads, cpu
  --   code          {"lumen/explain/lrp.lua" = sha256, ...}: every lumen Lua file the run loaded
  --   files         {name = sha256} of every output (default: what the run registered with lumen.output
  --                 in dir), info, seconds, manifest_version, and manifest_sha256, the checksum of all
  --                 the rest (lumen rerun flags a manifest edited by hand).
  -- The folder must then hold exactly these files and the manifest: files an earlier run left (with
  -- overwrite = true) are removed; anything else there is an error.
  function lumen.manifest(dir, info, files, run)
    local d = runs.normalize_dir(dir)
    local names = {}
    for _, n in ipairs(files or outputs[d] or {}) do
      local ok, why = runs.check_name(n)
      if not ok then error(("manifest: output name '%s' %s"):format(tostring(n), why), 2) end
      names[#names + 1] = n
    end
    if #names == 0 then
      error(("manifest: no outputs were written to %s (register them with lumen.output)"):format(dir), 2)
    end
    lumen.mkdir(d)
    local set = {}
    for _, n in ipairs(names) do set[n] = true end
    for _, old in ipairs(replacing[d] or {}) do -- the earlier run's files this run did not write again
      if not set[old] then
        local st = core.lstat(d .. "/" .. old)
        if st and st.type == "file" then os.remove(d .. "/" .. old) end
        local parent = old:match("^(.*)/[^/]*$")
        while parent do -- and the folders that held only them
          if #(core.listdir(d .. "/" .. parent) or { 1 }) > 0 then break end
          os.remove(d .. "/" .. parent)
          parent = parent:match("^(.*)/[^/]*$")
        end
      end
    end
    local present, others = runs.tree(d)
    local extra = {}
    for _, f in ipairs(present) do
      if f ~= runs.MANIFEST and not set[f] then
        if replacing[d] and runs.is_report(d, f) then os.remove(d .. "/" .. f) -- the earlier run's page
        else extra[#extra + 1] = f end
      end
    end
    for _, o in ipairs(others) do extra[#extra + 1] = o end
    if #extra > 0 then
      error(("manifest: %s also holds %s, which this run did not write: a run folder holds only its own"
        .. " outputs (check the out= folder with lumen.args, or register the files with lumen.output)")
        :format(dir, runs.some(extra)), 2)
    end
    local abs = core.realpath(d)
    local script = run and run.script or (_G.arg and _G.arg[0])
    local params = run and run.params or lumen._params
    local m = {
      manifest_version = runs.VERSION,
      script = script and runs.record(script, abs) or nil,
      params = params,
      command = script and ("lumen run " .. script) or nil,
      inputs = {},
      environment = runs.environment(),
      code = runs.code(),
      seconds = math.floor((core.now() - lumen._start) * 1000 + 0.5) / 1000,
      info = info,
      files = {},
    }
    if params then
      local kv = {}
      for k, v in pairs(params) do
        kv[#kv + 1] = ("%s=%s"):format(k, tostring(v))
        if k ~= "out" and type(v) == "string" and v ~= "" then m.inputs[k] = runs.record(v, abs) end
      end
      table.sort(kv)
      if m.command and #kv > 0 then m.command = m.command .. " " .. table.concat(kv, " ") end
    end
    for _, r in ipairs(inputs) do
      local rec = runs.record(r.path, abs)
      if not rec then error(("manifest: input %s is not a file or folder"):format(r.path), 2) end
      m.inputs[r.name] = rec
    end
    for _, name in ipairs(names) do
      local path = d .. "/" .. name
      local st = core.lstat(path)
      if not st then error(("manifest: %s is missing"):format(path), 2) end
      if st.type ~= "file" then error(("manifest: %s is a %s, not a regular file"):format(path, st.type), 2) end
      m.files[name] = core.sha256_file(path) or error(("manifest: cannot read %s"):format(path), 2)
    end
    m.manifest_sha256 = runs.checksum(m)
    local tmp = d .. "/" .. runs.MANIFEST .. ".part"
    local f = assert(io.open(tmp, "w"))
    f:write(json.encode(m, "  "), "\n")
    f:close()
    local ok, err = os.rename(tmp, d .. "/" .. runs.MANIFEST)
    if not ok then os.remove(tmp); error(err, 2) end
    replacing[d] = nil
    return m
  end
  lumen._start = core.now()
  -- lumen.begin_run(): forgets the outputs and inputs reported so far (and any folder being replaced)
  -- and restarts the clock, so that a script run again in the same Lua state (lumen batch) writes the
  -- manifest of its own run only.
  function lumen.begin_run()
    outputs, inputs, replacing, lumen._params, lumen._start = {}, {}, {}, nil, core.now()
  end
end
