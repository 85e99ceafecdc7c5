-- lumen report DIR [title=...]: writes DIR/index.html, one self-contained page over every run under
-- DIR (lumen.report): pictures, method, classes, parameters, timings, faithfulness numbers, links.
return function(arg)
  local dir = arg[1]
  if not dir or dir:find("=", 1, true) then error("usage: lumen report DIR [title=TEXT]", 0) end
  local title
  for i = 2, #arg do
    local k, v = arg[i]:match("^([%w_]+)=(.*)$")
    if k ~= "title" then error(("report: unknown argument '%s' (known: title=)"):format(arg[i]), 0) end
    title = v
  end
  local report = require "lumen.report"
  local ok, path, runs = pcall(report.write, dir, title)
  if not ok then error(tostring(path):gsub("^[^:]*%.lua:%d+: ", ""), 0) end
  local failed = 0
  for _, r in ipairs(runs) do if r.error then failed = failed + 1 end end
  io.stdout:write(("wrote %s (%d runs, %d failed)\n"):format(path, #runs, failed))
end
