-- lumen.batch: one recipe over many inputs, in shards that an existing scheduler (a Slurm job array,
-- GNU parallel, a Kubernetes indexed Job) spreads over machines; `lumen batch` is its command line.
--
--   batch.run { recipe = "recipes/gradcam.lua", inputs = "photos/", out = "out/gradcam",
--               shard = { 2, 4 }, params = { layer = "relu5" } }   -> done, skipped, failed (counts)
--
-- Inputs: the PNG and JPEG files (.png .jpg .jpeg, any case; not dot-files) of a folder in byte order
-- of their names, or a list file with one path per line (relative paths from the current folder;
-- blank lines and lines starting with # are skipped). Input i of n gets the folder <out>/<stem>: its
-- file name without the extension, with characters other than letters, digits, '.', '-' and '_'
-- made '_'; names that would clash (also by case) get _2, _3, ... in list order, so every shard
-- names every input the same way.
-- Shards: shard K/N (K = 1..N, 1-based like every index lumen shows) takes inputs K, K + N, K + 2N...
-- Without shard, inside a Slurm job array, K and N come from SLURM_ARRAY_TASK_ID (counted from
-- SLURM_ARRAY_TASK_MIN in steps of SLURM_ARRAY_TASK_STEP) and SLURM_ARRAY_TASK_COUNT.
-- The recipe runs in this process once per input, with image=<input> out=<out>/<stem> and every other
-- parameter passed through, through lumen.load_model's cache, so the model is read once. An input is
-- skipped when its folder holds a complete run of the same recipe file with the same parameters
-- (batch.complete); a failing input leaves its error in <out>/<stem>/error.txt and the rest go on.
-- Folders follow the out= rules of lumen.check_out; batch's own state (which inputs it started and did
-- not finish, so it may clear their folders) is in <out>/.lumen-batch/ (M.run says how).
local lumen = require "lumen"
local runs = require "lumen.runs"
local core = lumen.core

local M = {}

M.EXTENSIONS = { png = true, jpg = true, jpeg = true }

-- The names in folder dir (no dot-files, no folders; a link to a folder counts as a file), in byte
-- order; raises naming the folder if it cannot be read. Nothing is opened (lstat only), so a named pipe
-- among the inputs blocks only when its turn comes.
function M.list_dir(dir)
  local all, err = core.listdir(dir)
  if not all then error(("%s: cannot list the folder (%s)"):format(dir, err:sub(#dir + 3)), 0) end
  local names = {}
  for _, name in ipairs(all) do
    local st = name:sub(1, 1) ~= "." and core.lstat(dir .. "/" .. name)
    if st and st.type ~= "directory" then names[#names + 1] = name end
  end
  return names
end

-- inputs(spec) -> array of paths: the pictures of folder spec, or the lines of list file spec.
function M.inputs(spec)
  if type(spec) ~= "string" or spec == "" then error("batch: inputs= is required (a folder of pictures or a list file)", 0) end
  local paths = {}
  local st = core.stat(spec)
  if st and st.type == "directory" then
    local dir = spec:gsub("/+$", "")
    for _, name in ipairs(M.list_dir(spec)) do
      local ext = name:match("%.([^.]+)$")
      if ext and M.EXTENSIONS[ext:lower()] then paths[#paths + 1] = dir .. "/" .. name end
    end
    if #paths == 0 then error(("batch: %s holds no .png, .jpg or .jpeg file"):format(spec), 0) end
  else
    local f, err = io.open(spec, "r")
    if not f then error("batch: inputs=" .. err, 0) end
    for line in f:lines() do
      line = line:gsub("\r$", ""):match("^%s*(.-)%s*$")
      if line ~= "" and line:sub(1, 1) ~= "#" then paths[#paths + 1] = line end
    end
    f:close()
    if #paths == 0 then error(("batch: %s lists no input"):format(spec), 0) end
  end
  return paths
end

-- stems(paths) -> array of unique folder names, one per path (see the header).
function M.stems(paths)
  local taken, out = { ["index.html"] = true }, {}
  for i, path in ipairs(paths) do
    local name = path:match("([^/]*)$"):gsub("%.[^.]*$", "")
    local stem = name:gsub("[^%w%.%-_]", "_"):gsub("^%.", "_")
    if stem == "" then stem = "input" end
    local candidate, k = stem, 1
    while taken[candidate:lower()] do
      k = k + 1
      candidate = ("%s_%d"):format(stem, k)
    end
    taken[candidate:lower()], out[i] = true, candidate
  end
  return out
end

-- parse_shard(text [, getenv]) -> K, N. text "K/N" (1 <= K <= N), or nil/"" for the Slurm array
-- variables when they are set (else 1, 1).
function M.parse_shard(text, getenv)
  getenv = getenv or os.getenv
  local K, N
  if text and text ~= "" then
    local k, n = tostring(text):match("^%s*(%-?%d+)%s*/%s*(%-?%d+)%s*$")
    K, N = math.tointeger(tonumber(k)), math.tointeger(tonumber(n))
    if not K then error(("batch: shard=%s is not K/N (for example shard=1/4)"):format(text), 0) end
    if N < 1 then error(("batch: shard=%s: N must be at least 1"):format(text), 0) end
    if K < 1 or K > N then
      error(("batch: shard=%s: K must be 1..%d (shards are numbered from 1; for 0-based task ids such as " ..
        "Slurm's --array=0-%d leave shard= out and lumen counts from SLURM_ARRAY_TASK_MIN)"):format(text, N, N - 1), 0)
    end
    return K, N
  end
  local id = getenv("SLURM_ARRAY_TASK_ID")
  if not id or id == "" then return 1, 1 end
  local function num(name, default)
    local v = getenv(name)
    if (not v or v == "") and default then return default end
    return math.tointeger(tonumber(v)) or error(("batch: %s=%s is not an integer (a Slurm job array sets it)"):format(name, tostring(v)), 0)
  end
  local task, first, step, count = num("SLURM_ARRAY_TASK_ID"), num("SLURM_ARRAY_TASK_MIN", 0), num("SLURM_ARRAY_TASK_STEP", 1), num("SLURM_ARRAY_TASK_COUNT")
  if step < 1 or (task - first) % step ~= 0 then
    error(("batch: SLURM_ARRAY_TASK_ID=%d is not SLURM_ARRAY_TASK_MIN=%d plus a multiple of SLURM_ARRAY_TASK_STEP=%d " ..
      "(use a range --array=A-B[:S], or give shard=K/N)"):format(task, first, step), 0)
  end
  K, N = (task - first) // step + 1, count
  if K < 1 or K > N then
    error(("batch: Slurm task %d is shard %d of SLURM_ARRAY_TASK_COUNT=%d (use a range --array=A-B, or give shard=K/N)"):format(task, K, N), 0)
  end
  return K, N
end

-- shard(n, K, N) -> the 1-based positions K, K + N, ... up to n.
function M.shard(n, K, N)
  local idx = {}
  for i = K, n, N do idx[#idx + 1] = i end
  return idx
end

-- Parameters that do not decide a run's outputs: where they go, whether an earlier run there may be
-- replaced, whether a report page is written next to them.
M.IGNORED = { out = true, overwrite = true, report = true }

-- The path of the Lua file a manifest's `code` key names ("lumen/explain/lrp.lua", "lumen/nn/init.lua"),
-- as require would find it now, or nil.
local code_paths = {}
local function code_path(key)
  if code_paths[key] == nil then
    local name = key:gsub("%.lua$", ""):gsub("/init$", ""):gsub("/", ".")
    code_paths[key] = package.searchpath(name, package.path) or false
  end
  return code_paths[key] or nil
end

-- complete(dir, params, script_sha256 [, sha_of]) -> true and the manifest, or false and why. A run in dir is complete
-- when dir/manifest.json is a lumen manifest (version 2: lumen.runs.read) whose checksum holds (an
-- edited manifest is not complete), written by the recipe file whose SHA-256 is script_sha256
-- (script.sha256), with the same parameters as params (out=, overwrite= and report= aside), every input
-- it records (inputs: model, image, labels, ... and lumen.input files) still the same bytes, where
-- params puts it now, no other parameter naming a file, every lumen Lua file it loaded (code) still the
-- same, and every file it lists (files) there as a regular file with its recorded SHA-256.
-- sha_of(path) hashes a file or folder (a memo can be passed so the model is hashed once per batch).
function M.complete(dir, params, script_sha256, sha_of)
  sha_of = sha_of or runs.current_sha256
  local path = dir .. "/" .. runs.MANIFEST
  if not core.lstat(path) then return false, "no " .. runs.MANIFEST end
  local ok, m, _, sum_ok = pcall(runs.read, path)
  if not ok then return false, tostring(m) end
  if sum_ok == nil then return false, "its manifest has no checksum (written by an older lumen)" end
  if not sum_ok then return false, "its manifest was edited after the run (the checksum does not match)" end
  local script = type(m.script) == "table" and m.script or {}
  if script.sha256 ~= script_sha256 then return false, "the recipe file has changed" end
  local recorded = type(m.params) == "table" and m.params or {}
  local keys = {}
  for k in pairs(params) do keys[k] = true end
  for k in pairs(recorded) do keys[k] = true end
  for k in pairs(keys) do
    if not M.IGNORED[k] and params[k] ~= recorded[k] then -- numbers by value: 1 == 1.0
      return false, ("parameter %s was %s, now %s"):format(k, tostring(recorded[k]), tostring(params[k]))
    end
  end
  local inputs = type(m.inputs) == "table" and m.inputs or {}
  for name, r in pairs(inputs) do
    local now = type(params[name]) == "string" and params[name] ~= "" and params[name] or type(r) == "table" and r.path
    if type(now) ~= "string" or type(r) ~= "table" or sha_of(now) ~= r.sha256 then
      return false, ("input %s (%s) has changed"):format(tostring(name), tostring(now))
    end
  end
  for k, v in pairs(params) do -- the manifest records every parameter naming a file as an input
    if not M.IGNORED[k] and inputs[k] == nil and type(v) == "string" and v ~= "" and core.stat(v) then
      return false, ("parameter %s=%s now names a file"):format(k, v)
    end
  end
  for key, sha in pairs(type(m.code) == "table" and m.code or {}) do
    local file = code_path(tostring(key))
    if not file or sha_of(file) ~= sha then return false, ("lumen's %s has changed"):format(tostring(key)) end
  end
  for name, sha in pairs(m.files) do
    local st = core.lstat(dir .. "/" .. name)
    if not st or st.type ~= "file" then return false, name .. " is missing" end
    if core.sha256_file(dir .. "/" .. name) ~= sha then return false, name .. " has changed" end
  end
  return true, m
end

-- The parameters a recipe declares: its chunk runs until it calls lumen.args{...}, which here stops it.
local stop = setmetatable({}, { __name = "batch.stop" })
function M.recipe_defaults(chunk, path)
  local real = lumen.args
  local defaults
  lumen.args = function(d)
    defaults = d
    error(stop, 0)
  end
  local ok, err = pcall(chunk)
  lumen.args = real
  if defaults then return defaults end
  if ok then error(("batch: %s never calls lumen.args{...}, so it takes no image= parameter"):format(path), 0) end
  error(("batch: %s fails before lumen.args{...}: %s"):format(path, tostring(err)), 0)
end

local function write_file(path, text)
  local f, err = io.open(path, "w")
  if not f then error(err, 0) end
  f:write(text)
  f:close()
end

-- The argument words of one run: image=, out= and the passed-through parameters, sorted by key.
local function words_of(params, image, out)
  local w = { "image=" .. image, "out=" .. out }
  local keys = {}
  for k in pairs(params) do keys[#keys + 1] = k end
  table.sort(keys)
  for _, k in ipairs(keys) do w[#w + 1] = k .. "=" .. tostring(params[k]) end
  return w
end

-- Folder <out>/.lumen-batch holds one marker per input batch has started and not finished:
-- <stem>.running, written before the recipe runs and removed once the run is complete. A marker left by
-- a kill or a failure is batch's proof that the input's folder holds only what batch wrote.
M.STATE = ".lumen-batch"

-- The id and start time (in clock ticks since boot) of process pid ("self" for this one), from Linux's
-- /proc, and its state letter; nil elsewhere or when there is no such process. The pair names one
-- process: ids are reused, start times with them are not.
local function process(pid)
  local text = runs.read_file("/proc/" .. pid .. "/stat")
  local rest = text and text:match("%)%s+(.*)$") -- after the command name, which may hold spaces
  if not rest then return nil end
  local fields = {}
  for w in rest:gmatch("%S+") do fields[#fields + 1] = w end
  return text:match("^(%d+)"), fields[20], fields[1] -- fields 1, 22 and 3 (state) of proc(5)
end
local function hostname()
  return ((runs.read_file("/proc/sys/kernel/hostname") or os.getenv("HOSTNAME") or ""):gsub("%s+$", ""))
end

-- The marker of an input batch is about to run, and whether a marker says the input is being run by
-- another live process on this machine (then its folder must not be touched).
local function marker_text(input, recipe)
  local pid, start = process("self")
  return ("input: %s\nrecipe: %s\nstarted: %s\nhost: %s\npid: %s\npid_start: %s\n"):format(input, recipe,
    os.date("!%Y-%m-%dT%H:%M:%SZ"), hostname(), tostring(pid), tostring(start))
end
local function live_writer(marker)
  local text = runs.read_file(marker) or ""
  local host, pid, start = text:match("\nhost: ([^\n]*)"), text:match("\npid: (%d+)"), text:match("\npid_start: (%d+)")
  if not pid or host ~= hostname() or pid == process("self") then return nil end
  local _, now, state = process(pid)
  if now and now == start and state ~= "Z" and state ~= "X" then -- a zombie is dead, just not reaped yet
    return ("process %s (started %s)"):format(pid, text:match("\nstarted: ([^\n]*)") or "?")
  end
end

-- Drops the "file:line: " an error raised with a level may carry.
local function message(err) return (tostring(err):gsub("^[^:\n]*:%d+: ", "")) end

-- run{recipe =, inputs =, out =, shard = {K, N}, params = {k = v}, log = function(line)} -> done,
-- skipped, failed, failures ({stem =, input =, error =, refused = true when batch did not run it because
-- its folder is not one it may write into}), {K, N, total, shard}. Errors about the batch itself (no such
-- recipe, a parameter it does not have, out= not a folder) are raised before any input runs.
-- Per input, in order:
--   1. a complete run of the same recipe and parameters in its folder (M.complete): skipped;
--   2. otherwise, a marker <out>/.lumen-batch/<stem>.running from an earlier attempt: batch wrote that
--      folder and did not finish it (killed, or the recipe failed), so it removes the folder's regular
--      files (never through a link; error.txt too) and runs the input again. Unless the marker names a
--      process on this machine that is still alive (its id and start time): then another lumen batch is
--      running the input now, and it is refused;
--   3. the folder must then pass lumen.check_out with the input's overwrite=: new, empty, or (only with
--      overwrite=true) an earlier run's files and nothing else. Otherwise the input is refused: counted
--      as failed, named in the summary, and its folder left as it is (no error.txt: it is not batch's);
--   4. batch writes the marker, removes what an overwritten run left, and runs the recipe, which writes
--      its manifest last; then the marker goes. A failure writes <out>/<stem>/error.txt and keeps the
--      marker, so the next run clears the folder and tries again.
function M.run(o)
  local recipe = o.recipe
  local chunk, lerr = loadfile(recipe)
  if not chunk then error("batch: " .. lerr, 0) end
  local script_sha = lumen.sha256_file(recipe)
  local params = o.params or {}
  for _, k in ipairs { "image", "out" } do
    if params[k] ~= nil then error(("batch: %s= is set by batch for each input; give inputs= and out= instead"):format(k), 0) end
  end
  local defaults = M.recipe_defaults(chunk, recipe)
  for _, k in ipairs { "image", "out" } do
    if defaults[k] == nil then
      local known = {}
      for name in pairs(defaults) do known[#known + 1] = name end
      table.sort(known)
      error(("batch: %s has no %s= parameter, so it cannot run once per input (its parameters: %s)"):format(
        recipe, k, table.concat(known, ", ")), 0)
    end
  end
  local paths = M.inputs(o.inputs)
  local stems = M.stems(paths)
  local K, N = table.unpack(o.shard or { 1, 1 })
  local mine = M.shard(#paths, K, N)
  local out = (o.out or "out"):gsub("/+$", "")
  if out == "" then out = "/" end
  local function args_of(i) return words_of(params, paths[i], out .. "/" .. stems[i]) end
  -- Every parameter checked once, before any work (the words differ only in image= and out=); the
  -- input folders are checked one by one below, after the skip rule.
  local ok, err = pcall(lumen.args, defaults, args_of(mine[1] or 1), { check_out = false })
  if not ok then error("batch: " .. message(err), 0) end
  local st = core.stat(out)
  if st and st.type ~= "directory" then error(("batch: out=%s is a %s, not a folder"):format(out, st.type), 0) end
  if st and core.lstat(out .. "/" .. runs.MANIFEST) then
    error(("batch: out=%s is the folder of one run (it holds %s); batch writes one folder per input under out=:"
      .. " choose another out="):format(out, runs.MANIFEST), 0)
  end
  local made, merr = core.mkdir_p(out .. "/" .. M.STATE)
  if not made then error(("batch: out=%s: cannot create the folder (%s)"):format(out, merr), 0) end
  local state = out .. "/" .. M.STATE

  local hashes = {}
  local function sha_of(path)
    if path:sub(1, #out + 1) ~= out .. "/" then -- inputs, models and lumen's Lua files: once per batch
      hashes[path] = hashes[path] or runs.current_sha256(path) or false
      return hashes[path]
    end
    return runs.current_sha256(path)
  end
  local log = o.log or function(line) io.stderr:write(line, "\n") end
  local done, skipped, failures = 0, 0, {}
  local bar = lumen.progress(#mine, ("batch %d/%d"):format(K, N))
  local saved_arg = _G.arg
  for n, i in ipairs(mine) do
    local stem = stems[i]
    local dir, words = out .. "/" .. stem, args_of(i)
    local marker = state .. "/" .. stem .. ".running"
    local p = lumen.args(defaults, words, { check_out = false })
    local ours = core.lstat(marker) ~= nil
    local complete, why = M.complete(dir, p, script_sha, sha_of)
    local refused
    if complete then
      skipped = skipped + 1
      if ours then -- killed between its manifest and the marker's removal, or an old error.txt left over
        if not why.files["error.txt"] then os.remove(dir .. "/error.txt") end
        os.remove(marker)
      end
    else
      local dst = core.lstat(dir)
      local writer = ours and live_writer(marker)
      if ours and not writer and dst and dst.type == "directory" then runs.clear(dir) end
      local okc, cerr = true, nil
      if not writer then okc, cerr = pcall(lumen.check_out, dir, p.overwrite) end
      if writer then
        refused = ("%s: %s on this machine is running this input now (%s); a shard runs once at a time")
          :format(dir, writer, marker)
      elseif not okc then
        refused = message(cerr)
        if core.lstat(dir .. "/" .. runs.MANIFEST) then refused = refused .. " (not skipped: " .. why .. ")" end
      else
        local f, ferr = io.open(marker, "w")
        if not f then
          refused = ("%s: cannot write the marker %s (%s)"):format(dir, marker, ferr)
        else
          f:write(marker_text(paths[i], recipe))
          f:close()
        end
      end
      if refused then
        failures[#failures + 1] = { stem = stem, input = paths[i], error = refused, refused = true }
        log(("batch: %s refused: %s"):format(paths[i], refused))
      else
        if dst and dst.type == "directory" then runs.clear(dir) end -- a run overwrite=true replaces
        lumen.begin_run()
        _G.arg = { [0] = recipe, table.unpack(words) }
        local ran, msg = xpcall(chunk, debug.traceback, table.unpack(words))
        if ran and not core.lstat(dir .. "/" .. runs.MANIFEST) then
          ran, msg = false, ("%s finished without writing %s/%s"):format(recipe, dir, runs.MANIFEST)
        end
        if ran then
          done = done + 1
          os.remove(marker)
        else
          msg = tostring(msg)
          failures[#failures + 1] = { stem = stem, input = paths[i], error = msg }
          pcall(function()
            lumen.mkdir(dir)
            write_file(dir .. "/error.txt", ("input: %s\nrecipe: %s\ncommand: lumen run %s %s\n\n%s\n"):format(
              paths[i], recipe, recipe, table.concat(words, " "), msg))
          end)
          log(("batch: %s failed: %s"):format(paths[i], msg:match("^[^\n]*")))
        end
      end
    end
    bar:update(n, stem)
  end
  _G.arg = saved_arg
  bar:done()
  return done, skipped, #failures, failures, { K = K, N = N, total = #paths, shard = #mine }
end

return M
