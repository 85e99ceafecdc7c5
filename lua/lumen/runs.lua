-- lumen.runs: run folders and their manifests, shared by lumen.args / lumen.output / lumen.manifest
-- (lua/lumen/util.lua) and `lumen rerun` (lua/lumen/cli/rerun.lua).
--
-- A run folder holds exactly the files its manifest.json lists, plus the manifest. Output names are
-- plain relative paths inside the folder: no absolute paths, no "." or ".." components, no empty
-- components, and only regular files (no links, FIFOs or devices). These rules are checked when a
-- recipe registers an output and again whenever a manifest is read, so a manifest can never make
-- lumen read, hash or remove anything outside its own folder.
local core = require "lumen.core"
local json = require "lumen.json"

local M = {}

M.MANIFEST = "manifest.json"
M.VERSION = 2 -- manifest_version written by lumen.manifest
M.MAX_MANIFEST_BYTES = 16 * 1024 * 1024 -- a manifest is a few KB; refuse anything absurd before reading it

-- check_name(name) -> true, or nil and why `name` is not a plain relative path inside a run folder.
function M.check_name(name)
  if type(name) ~= "string" then return nil, "is not a string" end
  if name == "" then return nil, "is empty" end
  if name:find("[%z\1-\31\127]") then return nil, "contains a control character" end
  if name:sub(1, 1) == "/" then return nil, "is an absolute path" end
  if #name > 1024 then return nil, "is longer than 1024 characters" end
  for part in (name .. "/"):gmatch("([^/]*)/") do
    if part == "" then return nil, "has an empty path component" end
    if part == "." or part == ".." then return nil, "has a '" .. part .. "' component" end
  end
  if name == M.MANIFEST then return nil, "is the manifest itself" end
  return true
end

-- A folder path without trailing slashes, "//" or "./" parts, so one folder has one spelling.
function M.normalize_dir(dir)
  if type(dir) ~= "string" or dir == "" then error("output folder: expected a non-empty path, got " .. tostring(dir), 3) end
  local abs = dir:sub(1, 1) == "/"
  local parts = {}
  for part in dir:gmatch("[^/]+") do
    if part ~= "." then parts[#parts + 1] = part end
  end
  local s = table.concat(parts, "/")
  if abs then return "/" .. s end
  return s == "" and "." or s
end

-- The bytes of a file, or nil.
function M.read_file(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local text = f:read("a")
  f:close()
  return text
end

-- walk(dir, fn): calls fn(rel, type) for every entry under dir: rel its path relative to dir, type
-- what lstat says ("file", "directory", "link", "fifo", "socket", "device", or "gone" when it vanished
-- meanwhile). Names in byte order; a folder's entries before the folder itself; folders are entered,
-- never through a link. A folder that cannot be listed is an error "path: reason". Nothing is opened,
-- so a FIFO in the tree never blocks.
function M.walk(dir, fn)
  local function visit(rel)
    local names, err = core.listdir(rel == "" and dir or (dir .. "/" .. rel))
    if not names then error(err, 0) end
    for _, n in ipairs(names) do
      local r = rel == "" and n or (rel .. "/" .. n)
      local st = core.lstat(dir .. "/" .. r)
      local ty = st and st.type or "gone"
      if ty == "directory" then visit(r) end
      fn(r, ty)
    end
  end
  visit("")
end

-- tree(dir) -> files, others: the regular files under dir as sorted relative names, and every
-- entry that is not a regular file or a folder (links, FIFOs, sockets, devices) as "name (type)".
-- Folders are walked but never followed through a link; more than MAX_ENTRIES entries is an error
-- (a run folder holds a handful of files).
M.MAX_ENTRIES = 100000
function M.tree(dir)
  local files, others, seen = {}, {}, 0
  M.walk(dir, function(r, ty)
    seen = seen + 1
    if seen > M.MAX_ENTRIES then
      error(("%s: more than %d entries, not a run folder"):format(dir, M.MAX_ENTRIES), 0)
    end
    if ty == "file" then files[#files + 1] = r
    elseif ty ~= "directory" then others[#others + 1] = ("%s (%s)"):format(r, ty) end
  end)
  table.sort(files)
  return files, others
end

-- A run folder may also hold the page `lumen report` writes over it (report=true on a recipe): a view
-- of the run, not an output, so the manifest does not list it. is_report(dir, name) says whether
-- dir/name is such a page: index.html, a regular file, starting with the report's generator tag.
M.REPORT = "index.html"
M.REPORT_TAG = '<meta name="generator" content="lumen report">'
function M.is_report(dir, name)
  if name ~= M.REPORT then return false end
  local st = core.lstat(dir .. "/" .. name)
  if not st or st.type ~= "file" then return false end
  local f = io.open(dir .. "/" .. name, "rb")
  if not f then return false end
  local head = f:read(512) or ""
  f:close()
  return head:find(M.REPORT_TAG, 1, true) ~= nil
end

-- clear(dir) -> the entries left: removes every regular file under dir and every folder that is then
-- empty, never following a link; links, FIFOs, sockets and devices stay and are listed ("name (type)").
-- Only for a folder lumen itself was writing (lumen batch, after a kill or a failure).
function M.clear(dir)
  local left = {}
  local function walk(rel)
    local names = core.listdir(rel == "" and dir or (dir .. "/" .. rel)) or {}
    for _, n in ipairs(names) do
      local r = rel == "" and n or (rel .. "/" .. n)
      local st = core.lstat(dir .. "/" .. r)
      local ty = st and st.type or "gone"
      if ty == "file" then
        if not os.remove(dir .. "/" .. r) then left[#left + 1] = r end
      elseif ty == "directory" then
        walk(r)
        if #(core.listdir(dir .. "/" .. r) or { 1 }) == 0 then os.remove(dir .. "/" .. r) end
      elseif ty ~= "gone" then
        left[#left + 1] = ("%s (%s)"):format(r, ty)
      end
    end
  end
  walk("")
  return left
end

-- A short list of names for a message: the first few, then how many more.
function M.some(list, n)
  n = n or 5
  if #list <= n then return table.concat(list, ", ") end
  return table.concat(list, ", ", 1, n) .. (", and %d more"):format(#list - n)
end

-- The SHA-256 of a manifest's content: its compact JSON encoding (keys sorted) without the
-- manifest_sha256 field. Reading and re-encoding gives the same bytes, so an edit shows.
function M.checksum(m)
  local saved = m.manifest_sha256
  m.manifest_sha256 = nil
  local text = json.encode(m)
  m.manifest_sha256 = saved
  return core.sha256(text)
end

-- Reads a small regular text file; raises "path: reason".
function M.read_text(path, max)
  local st, err = core.lstat(path)
  if not st then error(err, 0) end
  if st.type ~= "file" then error(("%s: not a regular file (%s)"):format(path, st.type), 0) end
  if st.size > (max or M.MAX_MANIFEST_BYTES) then
    error(("%s: %d bytes, more than a manifest can be (%d)"):format(path, st.size, max or M.MAX_MANIFEST_BYTES), 0)
  end
  local f, ferr = io.open(path, "rb")
  if not f then error(ferr, 0) end
  local s = f:read("a")
  f:close()
  return s
end

-- read(path) -> m, dir, checksum_ok. Reads and validates a manifest: JSON object, a script, params,
-- a non-empty files table whose names are all plain relative paths with SHA-256 values. Raises
-- "path: reason" naming the offending entry. checksum_ok is nil for manifests written before
-- checksums (manifest_version 1).
function M.read(path)
  local text = M.read_text(path)
  local ok, m = pcall(json.decode, text)
  if not ok then error(("%s: not a lumen manifest (%s)"):format(path, m), 0) end
  local function bad(why, ...) error(("%s: not a usable lumen manifest: " .. why):format(path, ...), 0) end
  if type(m) ~= "table" then bad("not a JSON object") end
  local script = type(m.script) == "table" and m.script.path or m.script
  if type(script) ~= "string" or script == "" then bad("no script") end
  if m.params ~= nil and type(m.params) ~= "table" then bad("params is not an object") end
  if type(m.files) ~= "table" then bad("no files") end
  local n = 0
  for name, sha in pairs(m.files) do
    n = n + 1
    local okn, why = M.check_name(name)
    if not okn then bad("output name '%s' %s (names must be plain relative paths inside the run folder)", tostring(name), why) end
    if type(sha) ~= "string" or not sha:match("^%x+$") or #sha ~= 64 then bad("files['%s'] is not a SHA-256", name) end
  end
  if n == 0 then bad("files is empty, so there is nothing to reproduce") end
  local dir = path:match("^(.*)/[^/]*$") or "."
  local sum_ok
  if m.manifest_sha256 ~= nil then sum_ok = M.checksum(m) == m.manifest_sha256 end
  return m, dir, sum_ok
end

-- relpath(from_dir, to): the relative path from folder from_dir to to, both absolute and resolved.
function M.relpath(from_dir, to)
  local a, b = {}, {}
  for p in from_dir:gmatch("[^/]+") do a[#a + 1] = p end
  for p in to:gmatch("[^/]+") do b[#b + 1] = p end
  local i = 1
  while i <= #a and i <= #b and a[i] == b[i] do i = i + 1 end
  local parts = {}
  for _ = i, #a do parts[#parts + 1] = ".." end
  for k = i, #b do parts[#parts + 1] = b[k] end
  return #parts == 0 and "." or table.concat(parts, "/")
end

-- The SHA-256 of a folder: over the sorted "name sha256" lines of the regular files directly in it.
local function dir_sha256(dir)
  local names = core.listdir(dir) or {}
  local lines = {}
  for _, n in ipairs(names) do
    local st = core.stat(dir .. "/" .. n)
    if st and st.type == "file" then
      lines[#lines + 1] = n .. " " .. (core.sha256_file(dir .. "/" .. n) or "unreadable")
    end
  end
  return core.sha256(table.concat(lines, "\n")), #lines
end

-- record(path, run_dir_abs) -> {path =, abs =, rel =, sha256 =, bytes = | files =} for an input file
-- or folder, or nil when path names neither. rel is relative to the run folder.
function M.record(path, run_abs)
  local st = core.stat(path)
  if not st or (st.type ~= "file" and st.type ~= "directory") then return nil end
  local abs = core.realpath(path)
  if not abs then return nil end
  local r = { path = path, abs = abs, rel = run_abs and M.relpath(run_abs, abs) or nil }
  if st.type == "file" then
    r.sha256, r.bytes = core.sha256_file(abs), st.size
  else
    r.sha256, r.files = dir_sha256(abs)
  end
  return r
end

-- sha256 of what a record points at now (file or folder), or nil.
function M.current_sha256(path)
  local st = core.stat(path)
  if not st then return nil end
  if st.type == "directory" then return (dir_sha256(path)) end
  if st.type ~= "file" then return nil end
  return core.sha256_file(path)
end

-- resolve(r, manifest_dir) -> path, how: where an input recorded by M.record is now. Tried in order:
-- the absolute path it had, then the same place relative to the manifest's folder. nil, tried if
-- neither exists.
function M.resolve(r, manifest_dir)
  if type(r) ~= "table" then return nil, "no record" end
  if type(r.abs) == "string" and core.stat(r.abs) then return r.abs, "absolute" end
  if type(r.rel) == "string" then
    local p = manifest_dir .. "/" .. r.rel
    if core.stat(p) then return core.realpath(p) or p, "relative to the manifest" end
  end
  return nil, ("%s, %s/%s"):format(tostring(r.abs), manifest_dir, tostring(r.rel))
end

-- The CPU's model name (Linux /proc/cpuinfo), or nil.
local function cpu_model()
  local f = io.open("/proc/cpuinfo", "r")
  if not f then return nil end
  local name
  for line in f:lines() do
    local k, v = line:match("^([^:]-)%s*:%s*(.-)%s*$")
    if k == "model name" or k == "Model" or k == "Hardware" or k == "cpu model" then name = v; break end
  end
  f:close()
  return name
end

-- What decides the bytes of a run besides the script, its parameters and inputs.
function M.environment()
  local b = core.build()
  local kernels = core.blas_core()
  return {
    lumen_version = core.version,
    lumen_build = ("%s, %s, sanitizers %s%s"):format(b.compiler, b.optimized and "optimized" or "not optimized",
      b.sanitizers, b.dnnl and ", oneDNN" or ""),
    lua_version = _VERSION,
    blas = (b.blas:gsub(" " .. kernels:gsub("%p", "%%%0") .. " ", " ")), -- the library; its kernels apart
    blas_kernels = kernels,
    threads = core.get_threads(),
    cpu = cpu_model(),
  }
end

-- The environment fields that decide the bytes, in the order a report names them.
M.ENV_FIELDS = { "blas_kernels", "threads", "cpu", "blas", "lumen_version", "lumen_build" }

-- code() -> {["lumen/explain/lrp.lua"] = sha256, ...}: every Lua file of lumen loaded so far.
function M.code()
  local code = {}
  for name in pairs(package.loaded) do
    if type(name) == "string" and (name == "lumen" or name:match("^lumen%.")) then
      local path = package.searchpath(name, package.path)
      if path then
        local rel = name:gsub("%.", "/")
        local key = path:sub(-#(rel .. ".lua")) == rel .. ".lua" and rel .. ".lua" or rel .. "/init.lua"
        code[key] = core.sha256_file(path)
      end
    end
  end
  return code
end

return M
