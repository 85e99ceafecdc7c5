-- lumen rerun DIR/manifest.json: runs the recipe again with the recorded parameters into a fresh
-- folder and compares every output's SHA-256 with the manifest.
-- A shell word for s (single-quoted).
local function quote(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

return function(arg)
  local path = arg[1]
  if not path then error("usage: lumen rerun DIR/manifest.json", 0) end
  local lumen = require "lumen"
  local f, err = io.open(path, "rb")
  if not f then error(err, 0) end
  local ok, m = pcall(lumen.json.decode, f:read("a"))
  f:close()
  if not ok or type(m) ~= "table" or not m.script or type(m.files) ~= "table" then
    error(path .. ": not a lumen manifest (" .. tostring(ok and "no script or files" or m) .. ")", 0)
  end
  if m.script_sha256 and lumen.sha256_file(m.script) ~= m.script_sha256 then
    io.write(("note: %s has changed since the manifest was written\n"):format(m.script))
  end
  local out = lumen.tmpname("_rerun")
  local words = { quote(lumen.core.exe_path()), "run", quote(m.script) }
  local has_out = false
  for k, v in pairs(m.params or {}) do
    if k == "out" then v, has_out = out, true end
    words[#words + 1] = quote(k .. "=" .. tostring(v))
  end
  if not has_out then error(path .. ": the recipe has no out= parameter, so it cannot be rerun elsewhere", 0) end
  io.write("rerunning: ", table.concat(words, " "), "\n")
  if not os.execute(table.concat(words, " ") .. " > /dev/null") then error("the recipe failed", 0) end
  local names, bad = {}, 0
  for name in pairs(m.files) do names[#names + 1] = name end
  table.sort(names)
  for _, name in ipairs(names) do
    local h = lumen.sha256_file(out .. "/" .. name)
    local same = h == m.files[name]
    if not same then bad = bad + 1 end
    io.write(("%s  %s\n"):format(same and "same     " or "DIFFERENT", name))
    os.remove(out .. "/" .. name)
  end
  os.remove(out .. "/manifest.json")
  os.remove(out)
  io.write(("%d of %d files reproduced byte for byte\n"):format(#names - bad, #names))
  if bad > 0 then os.exit(1) end
end

