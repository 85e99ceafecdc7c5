-- tests/lua/errors_spec.lua — how the `lumen` program (src/main.c) reports errors: a user's mistake
-- (an error raised on purpose with error() or assert(v, message)) is one line `lumen: <message>` and
-- exit status 1; an internal error (a Lua runtime error, a C function's error, an error object,
-- assert without a message) keeps its traceback; LUMEN_TRACE=1 shows the traceback for every error.
local support = require "support"

local LUMEN = support.LUMEN
local tmp = support.tmp_dir("errors_spec")

-- Runs `lumen <args>` (with LUMEN_TRACE as given, unset otherwise); returns stderr+stdout, exit status.
local function lumen_run(args, trace)
  local env = trace and ("LUMEN_TRACE=" .. trace) or "env -u LUMEN_TRACE"
  return support.sh(("LUMEN_QUIET=1 %s %s %s"):format(env, support.quote(LUMEN), args))
end

-- A script in the temporary folder.
local function script(name, code)
  local path = tmp .. "/" .. name
  support.write(path, code)
  return path
end

local function lines(s)
  local t = {}
  for l in s:gmatch("[^\n]+") do t[#t + 1] = l end
  return t
end

local function one_line(out, want)
  assert.same({ want }, lines(out))
end

describe("the lumen program", function()
  teardown(function() support.remove(tmp) end)

  describe("a user's mistake", function()
    it("in a recipe's parameters is one line, exit 1", function()
      local out, status = lumen_run("run recipes/gradcam.lua index=abc")
      assert.equal(1, status)
      one_line(out, "lumen: parameter index: 'abc' is not a number")
      out, status = lumen_run("run recipes/gradcam.lua colour=red")
      assert.equal(1, status)
      assert.equal(1, #lines(out))
      assert.matches("^lumen: unknown parameter 'colour' %(known: ", out)
    end)

    it("naming a missing file is one line, exit 1", function()
      local out, status = lumen_run(("run recipes/gradcam.lua image=no/such.png out=%s/gc"):format(tmp))
      assert.equal(1, status)
      one_line(out, "lumen: no/such.png: cannot open: No such file or directory")
      out, status = lumen_run("run no/such/script.lua")
      assert.equal(1, status)
      one_line(out, "lumen: cannot open no/such/script.lua: No such file or directory")
    end)

    it("raised with error() or assert() anywhere is its message alone, without the position", function()
      local cases = {
        { 'local function f() error("bad value 3") end\nf()', "bad value 3" },
        { 'error("level two", 2)', "level two" },
        { 'error("no position", 0)', "no position" },
        { 'assert(io.open("no/such/file.txt"))', "no/such/file.txt: No such file or directory" },
        { 'assert(false, "said so")', "said so" },
        -- raised again by the library's wrappers (a pcall, then error(e, 0)) keeps being the user's
        { 'local lumen = require "lumen"\nlumen.no_grad(function() error("index=0: images are numbered from 1") end)',
          "index=0: images are numbered from 1" },
      }
      for i, c in ipairs(cases) do
        local out, status = lumen_run("run " .. script(("user%d.lua"):format(i), c[1]))
        assert.equal(1, status)
        one_line(out, "lumen: " .. c[2])
      end
    end)

    it("shows its traceback with LUMEN_TRACE=1", function()
      local out, status = lumen_run("run recipes/gradcam.lua index=abc", "1")
      assert.equal(1, status)
      assert.matches("^lumen: recipes/gradcam%.lua:%d+: parameter index: 'abc' is not a number\nstack traceback:\n", out)
      assert.matches("in function 'lumen.args'", out)
    end)
  end)

  describe("an internal error", function()
    it("keeps the message, its position and the traceback, exit 1", function()
      local cases = {
        { "local t = nil\nreturn t.x", "attempt to index a nil value %(local 't'%)" },
        { "return 1 + {}", "attempt to perform arithmetic on a table value" },
        { "local f\nf()", "attempt to call a nil value %(local 'f'%)" },
        -- a runtime error a pcall caught and error(e, 0) raised again is still one
        { 'local lumen = require "lumen"\nlumen.no_grad(function() local t; return t.y end)', "attempt to index a nil value" },
        -- raised by a C function
        { 'local lumen = require "lumen"\nlumen.zeros("x")', "zeros: expected a table of sizes, got string" },
        { "string.rep()", "bad argument #1 to 'rep'" },
        -- an assert without a message of its own, an error object
        { "assert(1 == 2)", "assertion failed!" },
        { 'error(setmetatable({}, {__tostring = function() return "an error object" end}))', "an error object" },
        { "error({})", "%(error object is a table value%)" },
      }
      for i, c in ipairs(cases) do
        local out, status = lumen_run("run " .. script(("internal%d.lua"):format(i), c[1]))
        assert.equal(1, status, c[1])
        assert.matches("^lumen: [^\n]*" .. c[2], out)
        assert.matches("\nstack traceback:\n", out, nil, nil, c[1])
      end
    end)

    it("is not taken for a user's one by a script that replaces error()", function()
      local out, status = lumen_run("run " .. script("shadow.lua", "error = function(m) local t; return t[m] end\nerror('x')"))
      assert.equal(1, status)
      assert.matches("attempt to index a nil value", out)
      assert.matches("\nstack traceback:\n", out)
    end)
  end)

  it("exits 0 and prints nothing extra when the script succeeds", function()
    local out, status = lumen_run("run " .. script("ok.lua", "print('fine')"))
    assert.equal(0, status)
    assert.equal("fine\n", out)
  end)

  it("reports a syntax error in one line", function()
    local path = script("syntax.lua", "x = = 1")
    local out, status = lumen_run("run " .. path)
    assert.equal(1, status)
    one_line(out, "lumen: " .. path .. ":1: unexpected symbol near '='")
  end)
end)
