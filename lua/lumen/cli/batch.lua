-- lumen batch RECIPE inputs=DIR|LIST.txt [shard=K/N] [out=DIR] [report=true] [key=value ...]: runs
-- RECIPE once per input into <out>/<stem>/ (lumen.batch says how inputs, names, shards and skipping
-- work). RECIPE is a recipe file, or the name of one in recipes/. out defaults to out/<recipe name>.
-- report=true writes <out>/index.html (lumen report) when the shard is done. Prints a summary and one
-- line per failed input (its error.txt) or refused one (its folder is not one batch may write into:
-- another run's, which overwrite=true replaces, or files lumen did not write); the exit status is 0
-- when no input failed, else the number that failed or were refused (at most 125). A usage error stops
-- before any work with status 1.
local usage = "usage: lumen batch RECIPE inputs=DIR|LIST.txt [shard=K/N] [out=DIR] [report=true] [key=value ...]"

return function(arg)
  local lumen = require "lumen"
  local batch = require "lumen.batch"
  local recipe = arg[1]
  if not recipe or recipe:find("=", 1, true) then error(usage, 0) end
  if not lumen.exists(recipe) and lumen.exists("recipes/" .. recipe .. ".lua") then recipe = "recipes/" .. recipe .. ".lua" end
  if not lumen.exists(recipe) then error(("batch: no recipe %s (a file, or a name in recipes/)"):format(recipe), 0) end
  local o = { recipe = recipe, params = {} }
  local report, given = false, {}
  for i = 2, #arg do
    local k, v = arg[i]:match("^([%w_%.%-]+)=(.*)$")
    if not k then error(("batch: argument '%s' is not key=value\n%s"):format(arg[i], usage), 0) end
    if given[k] then error(("batch: %s given twice (%s and %s)"):format(k, given[k], arg[i]), 0) end
    given[k] = arg[i]
    if k == "inputs" or k == "out" then o[k] = v
    elseif k == "shard" then o.shard_text = v
    elseif k == "report" then
      if v ~= "true" and v ~= "false" then error(("batch: report=%s is not true or false"):format(v), 0) end
      report = v == "true"
    else o.params[k] = v end
  end
  o.out = o.out or ("out/" .. recipe:match("([^/]+)$"):gsub("%.lua$", ""))
  o.shard = { batch.parse_shard(o.shard_text) }
  local t0 = lumen.now()
  local done, skipped, failed, failures, s = batch.run(o)
  local shard = s.N > 1 and (" shard %d/%d:"):format(s.K, s.N) or ""
  local refused = 0
  for _, f in ipairs(failures) do refused = refused + (f.refused and 1 or 0) end
  io.stdout:write(("batch:%s %d of %d inputs: %d done, %d skipped, %d failed%s in %.1f s -> %s\n"):format(
    shard, s.shard, s.total, done, skipped, failed, refused > 0 and (" (%d refused)"):format(refused) or "",
    lumen.now() - t0, o.out))
  for _, f in ipairs(failures) do
    if f.refused then io.stdout:write(("  refused: %s: %s\n"):format(f.input, f.error))
    else io.stdout:write(("  failed: %s (%s/%s/error.txt)\n"):format(f.input, o.out, f.stem)) end
  end
  if report then io.stdout:write("wrote ", require("lumen.report").write(o.out), "\n") end
  io.stdout:flush()
  if failed > 0 then os.exit(math.min(failed, 125), true) end
end
