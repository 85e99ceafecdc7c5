-- lumen.util: what scripts and recipes share — typed key=value arguments, progress bars,
-- threads, output folders and the reproducibility manifest.
local core = require "lumen.core"
local json = require "lumen.json"

return function(lumen)
  lumen.json = json

  -- lumen.args{defaults} -> params. Reads key=value pairs from the command line (`lumen run FILE k=v`),
  -- each typed by its default (number, boolean, string). Unknown keys and bad values are errors that list
  -- the known keys. `help` prints the parameters and exits.
  function lumen.args(defaults, argv)
    argv = argv or _G.arg or {}
    local p = {}
    for k, v in pairs(defaults) do p[k] = v end
    local function known()
      local ks = {}
      for k, v in pairs(defaults) do ks[#ks + 1] = ("%s=%s"):format(k, tostring(v)) end
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
      local d = defaults[k]
      if d == nil and k == "report" then d = false end -- any recipe: report=true also writes index.html (recipe.finish)
      if d == nil then error(("unknown parameter '%s' (known: %s)"):format(k, known()), 2) end
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

  -- lumen.manifest(dir, info [, files]): writes dir/manifest.json describing how the outputs were made:
  -- the script and its hash, the parameters from lumen.args, the seed, lumen's version, the SHA-256 of
  -- every file in `files` (names relative to dir; default: every file the recipe reported through
  -- lumen.output), extra `info`, and the wall time. Rerunning the `command` reproduces the same bytes.
  local outputs = {}
  function lumen.output(dir, name)
    outputs[#outputs + 1] = name
    return dir .. "/" .. name
  end
  function lumen.manifest(dir, info, files)
    local script = _G.arg and _G.arg[0]
    local m = {
      lumen_version = core.version,
      lua_version = _VERSION,
      script = script,
      script_sha256 = script and core.sha256_file(script) or nil,
      params = lumen._params,
      command = script and ("lumen run " .. script) or nil,
      threads = core.get_threads(),
      seconds = math.floor((core.now() - lumen._start) * 1000 + 0.5) / 1000,
      info = info,
      files = {},
    }
    if lumen._params then
      local kv = {}
      for k, v in pairs(lumen._params) do kv[#kv + 1] = ("%s=%s"):format(k, tostring(v)) end
      table.sort(kv)
      if m.command and #kv > 0 then m.command = m.command .. " " .. table.concat(kv, " ") end
    end
    for _, name in ipairs(files or outputs) do
      m.files[name] = core.sha256_file(dir .. "/" .. name) or error(("manifest: %s/%s is missing"):format(dir, name), 2)
    end
    lumen.mkdir(dir)
    local f = assert(io.open(dir .. "/manifest.json", "w"))
    f:write(json.encode(m, "  "), "\n")
    f:close()
    return m
  end
  lumen._start = core.now()
  -- lumen.begin_run(): forgets the outputs reported so far and restarts the clock, so that a script run
  -- again in the same Lua state (lumen batch) writes the manifest of its own run only.
  function lumen.begin_run()
    outputs, lumen._params, lumen._start = {}, nil, core.now()
  end
end
