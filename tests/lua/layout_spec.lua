-- tests/lua/layout_spec.lua — the C sources keep the layout DESIGN.md describes: includes and calls
-- go one way (no file includes its own includer; no circle of calls between binding files), the
-- binding is split like Lua's own (helpers, the Tensor type, libraries, assembly), and only the
-- binding and the program include lua.h.
local lumen = require "lumen"
local read = require("support").read_file

local SRC = "src/"

local function sources(pattern)
  local files = {}
  for _, name in ipairs(assert(lumen.core.listdir(SRC))) do
    if name:match(pattern) then files[#files + 1] = name end
  end
  table.sort(files)
  return files
end

-- A cycle in graph (name -> set of names) as "a -> b -> a", or nil.
local function find_cycle(graph)
  local state, stack = {}, {}
  local function visit(n)
    state[n] = "open"
    stack[#stack + 1] = n
    local next_names = {}
    for m in pairs(graph[n] or {}) do next_names[#next_names + 1] = m end
    table.sort(next_names)
    for _, m in ipairs(next_names) do
      if state[m] == "open" then
        local from
        for i, s in ipairs(stack) do if s == m then from = i end end
        return table.concat(stack, " -> ", from) .. " -> " .. m
      elseif not state[m] then
        local c = visit(m)
        if c then return c end
      end
    end
    stack[#stack] = nil
    state[n] = "done"
  end
  local names = {}
  for n in pairs(graph) do names[#names + 1] = n end
  table.sort(names)
  for _, n in ipairs(names) do
    if not state[n] then
      local c = visit(n)
      if c then return c end
    end
  end
end

describe("the C sources", function()
  it("include one another in one direction only", function()
    local graph = {}
    for _, name in ipairs(sources("%.[ch]$")) do
      graph[name] = {}
      for inc in read(SRC .. name):gmatch('\n#include "([^"]+)"') do graph[name][inc] = true end
    end
    assert.is_nil(find_cycle(graph))
    -- and the chapters of lumen.h refuse to be included on their own
    for _, name in ipairs(sources("^lm_.*%.h$")) do
      assert.matches("#ifndef LUMEN_H\n#error", read(SRC .. name), nil, nil, name)
    end
  end)

  it("include lua.h only in the binding and the program", function()
    for _, name in ipairs(sources("%.[ch]$")) do
      local s = read(SRC .. name)
      if s:match('\n#include <lua%.h>') or s:match('\n#include <lauxlib%.h>') or s:match('\n#include "lumen_lua%.h"') then
        assert(name:match("^lua_.*%.c$") or name == "lumen_lua.h" or name == "main.c",
               name .. " includes Lua's headers")
      end
    end
  end)
end)

describe("the binding (src/lua_*.c)", function()
  -- Which file defines each lmL_ function, and which lmL_ functions each file calls.
  local defined, calls = {}, {}
  for _, name in ipairs(sources("^lua_.*%.c$")) do
    calls[name] = {}
    for line in read(SRC .. name):gmatch("[^\n]+") do
      local def = line:match("^[%w_][%w_ %*]-%f[%w_](lmL_[%w_]+)%b()%s*{")
      if def then defined[def] = name end
      for fn in line:gmatch("%f[%w_](lmL_[%w_]+)%s*%(") do
        if fn ~= def then calls[name][fn] = true end
      end
    end
  end
  local graph = {}
  for file, fns in pairs(calls) do
    graph[file] = {}
    for fn in pairs(fns) do
      local to = defined[fn]
      if to and to ~= file then graph[file][to] = true end
    end
  end

  it("has no circle of calls between its files", function()
    assert.is_nil(find_cycle(graph))
  end)

  it("is split like Lua's own: helpers, the Tensor type, libraries, and one assembly file", function()
    assert.equal("lua_aux.c", defined.lmL_check_shape)
    assert.equal("lua_tensor.c", defined.lmL_check)
    assert.equal("lua_tensor.c", defined.lmL_newtensor)
    assert.matches("int luaopen_lumen_core", read(SRC .. "lua_init.c"))
    assert.same({}, graph["lua_aux.c"], "lua_aux.c calls into other binding files")
    for to in pairs(graph["lua_tensor.c"]) do
      assert.equal("lua_aux.c", to, "lua_tensor.c calls into " .. to)
    end
    -- only the assembly file opens libraries
    for file, fns in pairs(calls) do
      for fn in pairs(fns) do
        if fn:match("^lmL_open_") then assert.equal("lua_init.c", file, file .. " calls " .. fn) end
      end
    end
  end)
end)
