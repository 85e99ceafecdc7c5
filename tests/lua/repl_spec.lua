-- tests/lua/repl_spec.lua — the `lumen` prompt (src/main.c, lua/lumen/repl.lua): how values show
-- (lumen.repl.format), the prompt reading plain lines from a pipe (`lumen -i`), and the prompt in a
-- terminal, driven through tmux: line editing, history recalled within a session and from
-- ~/.lumen_history in the next one (bounded), Ctrl-C stopping a running line with the state kept,
-- Ctrl-C discarding a line being typed, and pretty-printed tables and tensors.
local lumen = require "lumen"
local repl = require "lumen.repl"

local LUMEN = arg and arg[-1] or "lumen" -- the program running these specs (`lumen test ...`)

local function sh(cmd)
  local f = assert(io.popen(cmd .. " 2>&1"))
  local out = f:read("a")
  local ok = f:close()
  return out, ok
end

local quote = require("support").quote

describe("lumen.repl.format", function()
  it("shows a tensor as print(t) does", function()
    local t = lumen.tensor { { 1, 2 }, { 3, 4 } }
    assert.equal(tostring(t), repl.format(t))
    assert.matches("^lumen.Tensor float32 %(2, 2%)\n", repl.format(t))
  end)

  it("shows a table's keys and values compactly: array part, then the keys in order", function()
    assert.equal('{1, 2, "three", a = 1, b = {x = true}, ["not an id"] = 2.5, [10] = "ten"}',
                 repl.format { 1, 2, "three", b = { x = true }, a = 1, ["not an id"] = 2.5, [10] = "ten" })
    assert.equal("{}", repl.format {})
    assert.equal('{"a\\nb"}', repl.format { "a\nb" })
  end)

  it("shows tensors and objects inside a table by their first line", function()
    local s = repl.format { x = lumen.zeros { 2, 3 }, layer = lumen.nn.Linear { in_features = 2, out_features = 1, name = "fc" } }
    assert.equal("{layer = fc (Linear), x = lumen.Tensor float32 (2, 3)}", s)
  end)

  it("stops at a depth, a number of entries and a width", function()
    assert.equal("{a = {b = {...}}}", repl.format { a = { b = { c = { d = 1 } } } })
    local big = {}
    for i = 1, 100 do big[i] = i end
    local s = repl.format(big)
    assert.matches("^{\n  1,\n  2,\n", s)
    assert.matches("  30,\n  %.%.%. 70 more\n}$", s)
    local cycle = {}
    cycle.self = cycle
    assert.equal("{self = {self = {...}}}", repl.format(cycle))
  end)

  it("shows other values as tostring does", function()
    assert.equal("42", repl.format(42))
    assert.equal("0.5", repl.format(0.5))
    assert.equal("raw text", repl.format("raw text"))
    assert.equal("nil", repl.format(nil))
  end)
end)

describe("the prompt reading a pipe (lumen -i)", function()
  it("runs line by line, shows values, keeps state, and reports errors shortly", function()
    local input = table.concat({
      "x = 6 * 7", "x", "{a = 1, b = {2, 3}}", "lumen.zeros{2, 3}", 'error("my mistake")', "x + nil",
      "function f(n)", "  return n + 1", "end", "f(x)" }, "\n") .. "\n"
    local out, ok = sh(("printf %%s %s | env -u LUMEN_TRACE %s -i"):format(quote(input), LUMEN))
    assert(ok, out)
    assert.matches("> 42\n", out)
    assert.matches("> {a = 1, b = {2, 3}}\n", out)
    assert.matches("> lumen.Tensor float32 %(2, 3%)\n  0 0 0\n  0 0 0\n", out)
    assert.matches("> my mistake\n", out) -- a user's error: the message alone
    assert.matches("> repl:1: attempt to perform arithmetic on a nil value\n", out) -- internal: with position
    assert.not_matches("stack traceback", out)
    assert.matches(">> >> > 43\n", out) -- a chunk over three lines
  end)

  it("shows the traceback with LUMEN_TRACE=1", function()
    local out = sh(("printf 'x + nil\\n' | LUMEN_TRACE=1 %s -i"):format(LUMEN))
    assert.matches("attempt to perform arithmetic on a nil value[^\n]*\nstack traceback:\n", out)
  end)
end)

describe("the prompt in a terminal (through tmux)", function()
  if not sh("command -v tmux"):match("tmux") then
    it("needs tmux", function() pending("tmux is not installed (Debian tmux): the terminal tests of the prompt are skipped") end)
    return
  end

  local dir = os.tmpname()
  os.remove(dir)
  lumen.mkdir(dir)
  local sock = dir .. "/tmux.sock"
  local history = dir .. "/.lumen_history"
  local function tmux(args) return sh(("tmux -S %s %s"):format(quote(sock), args)) end
  teardown(function()
    tmux("kill-server")
    os.execute(("rm -rf %s"):format(quote(dir)))
  end)

  local function start()
    tmux("kill-server")
    local cmd = ("env HOME=%s TERM=xterm LUMEN_TRACE= LUMEN_QUIET=1 %s"):format(quote(dir), LUMEN)
    local out, ok = tmux(("new-session -d -s lumen -x 120 -y 50 %s"):format(quote(cmd)))
    assert(ok, out)
  end
  -- The screen's text, without trailing blanks on lines and at the end (as tmux trims them anyway).
  local function screen()
    local s = tmux("capture-pane -p -t lumen -S -100")
    return (s:gsub("[ \t]+\n", "\n"):gsub("%s+$", ""))
  end
  -- Waits until the screen matches pattern (a Lua pattern), up to 15 s; returns the screen.
  local function wait_for(pattern, what)
    local t0 = lumen.core.now()
    repeat
      local s = screen()
      if s:match(pattern) then return s end
      os.execute("sleep 0.05")
    until lumen.core.now() - t0 > 15
    error(("%s: the screen never showed %q; it shows:\n%s"):format(what, pattern, screen()), 2)
  end
  local function keys(...)
    local args = {}
    for i, k in ipairs { ... } do args[i] = quote(k) end
    tmux("send-keys -t lumen " .. table.concat(args, " "))
  end
  local function line(text) keys(text, "Enter") end

  it("stops a running line on Ctrl-C, keeps the state, recalls history and pretty-prints", function()
    start()
    wait_for("\n>$", "the first prompt")
    line("x = 6 * 7")
    line("for i = 1, 1e12 do end")
    wait_for("> for i = 1, 1e12 do end$", "the loop starting")
    os.execute("sleep 0.3")
    keys("C-c")
    wait_for("interrupted!\n>$", "the interrupted loop")
    line("x + 1")
    wait_for("\n43\n>$", "x set before the loop")
    keys("Up", " + 1", "Enter") -- recall "x + 1" and edit it
    wait_for("> x %+ 1 %+ 1\n44\n>$", "the recalled and edited line")
    keys("abandoned line", "C-c")
    line("{a = 1, b = {2, 3}, 'x'}")
    wait_for('\n{"x", a = 1, b = {2, 3}}\n>$', "a table")
    line("lumen.zeros{2, 3}")
    wait_for("\nlumen.Tensor float32 %(2, 3%)\n  0 0 0\n  0 0 0\n>$", "a tensor")
    assert.is_nil(screen():find("near 'line'", 1, true), "the line abandoned with Ctrl-C ran")
    keys("C-d")
    os.execute("sleep 0.2")
  end)

  it("keeps the history in ~/.lumen_history for the next session, bounded", function()
    local f = assert(io.open(history, "r"))
    local saved = f:read("a")
    f:close()
    assert.matches("x\\040%+\\0401\\040%+\\0401\n", saved) -- libedit's format: spaces as \040
    assert.not_matches("abandoned", saved)
    -- 1500 old entries: the next session keeps the last 1000
    f = assert(io.open(history, "w"))
    f:write("_HiStOrY_V2_\n")
    for i = 1, 1500 do f:write(("v%d\n"):format(i)) end
    f:close()
    start()
    wait_for("\n>$", "the first prompt")
    keys("Up")
    wait_for("> v1500$", "the last line of the history file")
    keys("C-u")
    line("y = 1")
    os.execute("sleep 0.2")
    keys("C-d")
    os.execute("sleep 0.3")
    local n, last = 0, nil
    for l in io.lines(history) do n, last = n + 1, l end
    assert.equal(1001, n) -- the header line and 1000 entries
    assert.equal("y\\040=\\0401", last)
  end)
end)
