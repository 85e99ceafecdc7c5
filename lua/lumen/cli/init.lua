-- lumen.cli: the commands of the `lumen` program that are written in Lua. `lumen CMD args...` runs
-- require("lumen.cli." .. CMD)(arg) for every command listed here (arg[1..] are the words after CMD);
-- main.c knows only run, test and the REPL. A new command is one file in lua/lumen/cli/ and one line
-- in M.commands (its usage line for `lumen help`).
local M = {}

-- { name, usage line } in the order `lumen help` lists them.
M.commands = {
  { "summary", "summary MODEL [C,H,W]      print the Keras-style summary of a model file" },
  { "rerun", "rerun DIR/manifest.json    rerun a recipe and check its outputs are the same bytes" },
  { "explain", "explain METHOD MODEL INPUT explain a photo or a folder of them [key=value ...] (--list, --compare A,B)" },
  { "spec", "spec MODEL preset=NAME      copy an ONNX model or checkpoint, recording its preprocessing [labels=FILE]" },
  { "batch", "batch RECIPE inputs=DIR|LIST.txt [shard=K/N] [out=DIR] [key=value ...]  run a recipe once per input" },
  { "report", "report DIR                 write DIR/index.html: every run under DIR, its pictures and numbers" },
}

local known = {}
for _, c in ipairs(M.commands) do known[c[1]] = true end

-- Whether `lumen name` is a Lua command.
function M.has(name) return known[name] == true end

-- The usage text of `lumen help`.
function M.usage()
  local lines = {
    "usage: lumen [command] [args]",
    "  lumen run FILE [key=value ...]   run a Lua script or recipe; key=value pairs reach lumen.args{}",
    "  lumen FILE.lua [key=value ...]   the same",
  }
  for _, c in ipairs(M.commands) do lines[#lines + 1] = "  lumen " .. c[2] end
  lines[#lines + 1] = "  lumen test [SPEC ...]            run busted specs with lumen loaded"
  lines[#lines + 1] = "  lumen                            interactive prompt with lumen loaded"
  lines[#lines + 1] = "  lumen -i                         the prompt also when stdin is not a terminal"
  lines[#lines + 1] = "  lumen --version                  print the version"
  lines[#lines + 1] = "  lumen help                       this text"
  return table.concat(lines, "\n") .. "\n"
end

-- Runs command `name` with arg (the words after it); unknown names are an error listing the commands.
function M.run(name, arg)
  if not known[name] then
    io.stderr:write(("lumen: unknown command '%s'\n"):format(name), M.usage())
    os.exit(2)
  end
  return require("lumen.cli." .. name)(arg)
end

return M
