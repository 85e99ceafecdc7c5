-- lumen rerun DIR/manifest.json [trust=false] [tolerance=1e-4]: runs the recipe a manifest names again,
-- with the recorded parameters, into a fresh private folder, and compares every output with the run.
--
-- A manifest is code: rerunning one runs the script it names. So, before anything runs:
--   - the manifest must be a regular file of at most 16 MiB, valid JSON, with a script and a non-empty
--     `files` whose names are plain relative paths inside its folder (lumen.runs.read);
--   - the recorded outputs present in its folder must be regular files (a FIFO or link is an error);
--   - the script must still have the SHA-256 the manifest records, unless trust=true;
--   - every input file (model, image, labels, ...) must be found: at its recorded absolute path, or at
--     its recorded path relative to the manifest, so a rerun works from any directory and after the
--     run folder and its inputs moved together. A file whose SHA-256 changed is reported as CHANGED.
-- The rerun writes only into its own temporary folder ($TMPDIR or /tmp, lumen_rerun_XXXXXX) and never
-- touches the run folder. Each output is compared with the manifest's SHA-256 and, when they differ,
-- numerically with the run's file (lumen.compare: .npy max abs and relative difference, PNG pixels).
-- Exit status 0 when every output has the same bytes, or, under a different environment (BLAS kernel
-- set, threads, CPU, lumen build), is within the tolerance; 1 otherwise, also when the manifest's
-- checksum shows it was edited by hand. The rerun folder is removed when every output has the same
-- bytes or the recipe failed, and kept (and named) otherwise.
local lumen = require "lumen"
local core = lumen.core
local runs = require "lumen.runs"
local compare = require "lumen.compare"

-- A shell word for s (single-quoted).
local function quote(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

-- Removes a folder this command made, and everything in it, never following a link.
local function remove_tree(dir)
  for _, n in ipairs(core.listdir(dir) or {}) do
    local p = dir .. "/" .. n
    local st = core.lstat(p)
    if st and st.type == "directory" then remove_tree(p) else os.remove(p) end
  end
  os.remove(dir)
end

local function short(sha) return type(sha) == "string" and sha:sub(1, 12) or "none" end

return function(arg)
  local path = arg[1]
  if not path or path:find("=") then
    error("usage: lumen rerun DIR/manifest.json [trust=true] [tolerance=" .. compare.DEFAULT_TOLERANCE .. "]", 0)
  end
  local opts = lumen.args({ trust = false, tolerance = compare.DEFAULT_TOLERANCE }, { table.unpack(arg, 2) })
  lumen._params = nil
  if opts.tolerance < 0 then error(("tolerance=%s: must be >= 0"):format(opts.tolerance), 0) end
  local st = core.stat(path)
  if st and st.type == "directory" then path = path .. "/" .. runs.MANIFEST end

  local m, mdir, sum_ok = runs.read(path)
  local names = {}
  for name in pairs(m.files) do names[#names + 1] = name end
  table.sort(names)
  for _, name in ipairs(names) do -- the run's own outputs: regular files or absent, nothing else
    local s = core.lstat(mdir .. "/" .. name)
    if s and s.type ~= "file" then
      error(("%s: output %s is a %s, not a regular file"):format(path, name, s.type), 0)
    end
  end
  local problems = {} -- reasons the exit status is 1 besides the outputs
  if sum_ok == false then
    io.write("EDITED     the manifest's checksum does not match its contents: it was changed after the run"
      .. " (parameters, hashes or inputs may not be the recorded ones)\n")
    problems[#problems + 1] = "the manifest was edited"
  elseif sum_ok == nil then
    io.write("note: the manifest has no checksum (written by an older lumen)\n")
  end

  -- The script: found, and the same bytes as recorded unless trust=true.
  local srec = type(m.script) == "table" and m.script or { path = m.script, sha256 = m.script_sha256,
                                                             abs = core.realpath(m.script) }
  local script, where = runs.resolve(srec, mdir)
  if not script then error(("%s: the script %s is not found (looked at %s)"):format(path, tostring(srec.path), where), 0) end
  local now = core.sha256_file(script)
  if now ~= srec.sha256 then
    if not opts.trust then
      error(("%s: the script %s has changed since the run (sha256 %s, recorded %s): rerunning it would run"
        .. " different code; pass trust=true to run it anyway"):format(path, script, short(now), short(srec.sha256)), 0)
    end
    io.write(("CHANGED    script %s (sha256 %s, recorded %s): run because trust=true\n"):format(script, short(now), short(srec.sha256)))
    problems[#problems + 1] = "the script changed"
  end

  -- The parameters, with every input resolved where it is now.
  local params, has_out = {}, false
  for k, v in pairs(m.params or {}) do
    if type(k) ~= "string" or not k:match("^[%w_%.%-]+$") then error(("%s: bad parameter name %s"):format(path, tostring(k)), 0) end
    if type(v) == "table" then error(("%s: parameter %s is not a plain value"):format(path, k), 0) end
    params[k] = v
    has_out = has_out or k == "out"
  end
  if not has_out then error(path .. ": the recipe has no out= parameter, so it cannot be rerun elsewhere", 0) end
  local input_names = {}
  for k in pairs(m.inputs or {}) do input_names[#input_names + 1] = k end
  table.sort(input_names)
  local changed_inputs = {}
  for _, k in ipairs(input_names) do
    local r = m.inputs[k]
    local p, how = runs.resolve(r, mdir)
    if not p then error(("%s: input %s (%s) is not found (looked at %s)"):format(path, k, tostring(r.path), how), 0) end
    if runs.current_sha256(p) ~= r.sha256 then
      io.write(("CHANGED    input %s: %s has a different SHA-256 than at the run (recorded %s)\n"):format(k, p, short(r.sha256)))
      changed_inputs[#changed_inputs + 1] = k
    end
    if params[k] ~= nil and params[k] == r.path then params[k] = p end
  end
  if m.manifest_version == nil then -- an older manifest: paths were relative to where it was run
    for k, v in pairs(params) do
      if k ~= "out" and type(v) == "string" and v ~= "" and core.stat(v) then params[k] = core.realpath(v) or v end
    end
  end

  -- Run it in a fresh private folder, which is also its working directory.
  local tmp, terr = core.mkdtemp("lumen_rerun_")
  if not tmp then error("cannot make a temporary folder: " .. tostring(terr), 0) end
  params.out = tmp
  if params.overwrite ~= nil then params.overwrite = false end
  local keys = {}
  for k in pairs(params) do keys[#keys + 1] = k end
  table.sort(keys)
  local words = { quote(core.exe_path()), "run", quote(script) }
  for _, k in ipairs(keys) do words[#words + 1] = quote(k .. "=" .. tostring(params[k])) end
  io.write("rerunning: ", table.concat(words, " "), "\n")
  local ok, how, code = os.execute(("cd %s && %s > /dev/null"):format(quote(tmp), table.concat(words, " ")))
  if not ok then
    remove_tree(tmp)
    error(("the recipe failed (%s %s); nothing was kept"):format(tostring(how), tostring(code)), 0)
  end
  local okm, m2 = pcall(runs.read, tmp .. "/" .. runs.MANIFEST)
  if not okm then m2 = { files = {} } end

  -- Compare every output.
  local counts = { same = 0, close = 0, different = 0 }
  local width = 10
  for _, name in ipairs(names) do width = math.max(width, #name) end
  for _, name in ipairs(names) do
    local new, old = tmp .. "/" .. name, mdir .. "/" .. name
    local s = core.lstat(new)
    local verdict, detail
    if not s or s.type ~= "file" then
      verdict, detail = "MISSING", "the rerun did not write it"
    elseif core.sha256_file(new) == m.files[name] then
      verdict, detail = "same", ""
    elseif core.sha256_file(old) == m.files[name] then
      local r = compare.files(old, new, { tolerance = opts.tolerance })
      verdict, detail = r.close and "close" or "DIFFERENT", r.detail
    else
      verdict = "DIFFERENT"
      detail = "(the run's file is " .. (core.lstat(old) and "not the one recorded" or "absent") .. ": compared by hash only)"
    end
    local kind = verdict == "same" and "same" or verdict == "close" and "close" or "different"
    counts[kind] = counts[kind] + 1
    io.write(("%-10s %-" .. width .. "s  %s\n"):format(verdict, name, detail))
  end
  for name in pairs(m2.files or {}) do
    if not m.files[name] then
      counts.different = counts.different + 1
      io.write(("%-10s %-" .. width .. "s  %s\n"):format("NEW", name, "written by the rerun, not in the manifest"))
    end
  end

  -- What else decides the bytes: the environment and lumen's own code.
  local env_now, env_then = m2.environment or {}, m.environment or {}
  local env_diff = {}
  for _, f in ipairs(runs.ENV_FIELDS) do
    if env_then[f] ~= nil and tostring(env_now[f]) ~= tostring(env_then[f]) then
      env_diff[#env_diff + 1] = f
      io.write(("environment: %s is %s here, %s in the manifest\n"):format(f, tostring(env_now[f]), tostring(env_then[f])))
    end
  end
  -- A file the rerun did not load (the command's own files when the rerun runs the script directly) is
  -- compared as it is on disk here.
  local code_diff, now = {}, m2.code or {}
  local root = (package.searchpath("lumen", package.path) or ""):match("^(.*)lumen/init%.lua$")
  for file, sha in pairs(m.code or {}) do
    local here = now[file]
    if here == nil and root and lumen.exists(root .. file) then here = lumen.sha256_file(root .. file) end
    if here ~= sha then code_diff[#code_diff + 1] = file end
  end
  table.sort(code_diff)
  if #code_diff > 0 then io.write("lumen code changed since the run: ", runs.some(code_diff, 8), "\n") end

  local n = #names
  local status
  if counts.different > 0 then
    status = ("%d of %d files reproduced (%d byte for byte, %d within tolerance %g), %d differ"):format(
      counts.same + counts.close, n, counts.same, counts.close, opts.tolerance, counts.different)
  elseif counts.close > 0 and #env_diff == 0 then
    status = ("%d of %d files reproduced byte for byte; %d differ within tolerance %g although the kernel set,"
      .. " threads, CPU and lumen build are the same, so the run is not reproducible"):format(counts.same, n, counts.close, opts.tolerance)
    counts.different = counts.close
  elseif counts.close > 0 then
    status = ("%d of %d files reproduced: %d byte for byte, %d within tolerance %g under a different %s"):format(
      n, n, counts.same, counts.close, opts.tolerance, table.concat(env_diff, ", "))
  else
    status = ("%d of %d files reproduced byte for byte"):format(n, n)
  end
  if #changed_inputs > 0 then status = status .. "; changed inputs: " .. table.concat(changed_inputs, ", ") end
  io.write(status, "\n")
  if counts.same == n then
    remove_tree(tmp)
  else
    io.write("kept the rerun's outputs in ", tmp, "\n")
  end
  if counts.different > 0 or #problems > 0 then
    if #problems > 0 then io.write("not a clean reproduction: ", table.concat(problems, "; "), "\n") end
    os.exit(1)
  end
end
