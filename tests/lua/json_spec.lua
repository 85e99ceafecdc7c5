-- tests/lua/json_spec.lua — lumen.json (lua/lumen/json.lua), the strict JSON of manifests, configs and
-- checkpoint metadata: what encode writes, what decode accepts (RFC 8259) and rejects, and that
-- numbers keep their kind (integer or float) both ways.
local lumen = require "lumen"
local json = lumen.json

local function decode_error(s)
  local ok, err = pcall(json.decode, s)
  assert(not ok, ("decode(%q) should fail"):format(s))
  return err
end

describe("lumen.json.encode", function()
  it("writes the scalars", function()
    assert.equal("null", json.encode(nil))
    assert.equal("true", json.encode(true))
    assert.equal("false", json.encode(false))
    assert.equal('"x"', json.encode("x"))
  end)

  it("writes integers as integers and floats so that they read back as floats", function()
    assert.equal("42", json.encode(42))
    assert.equal("-7", json.encode(-7))
    assert.equal("9223372036854775807", json.encode(math.maxinteger))
    assert.equal("-9223372036854775808", json.encode(math.mininteger))
    assert.equal("3.0", json.encode(3.0))
    assert.equal("-0.0", json.encode(-0.0))
    assert.equal("0.5", json.encode(0.5))
    assert.equal("1e+300", json.encode(1e300))
    assert.equal("1e+16", json.encode(1e16))
  end)

  it("writes the shortest digits that read back to the same float", function()
    assert.equal("0.1", json.encode(0.1))
    assert.equal("0.15", json.encode(0.15))
    assert.equal("0.30000000000000004", json.encode(0.1 + 0.2))
    assert.equal("3.141592653589793", json.encode(math.pi))
    for _, v in ipairs { 1 / 3, 2 / 3, 1e-300, 5e-324, 1.7976931348623157e308, 123456.789, -2.5e-8 } do
      local back = json.decode(json.encode(v))
      assert.equal(v, back)
      assert.equal("float", math.type(back))
    end
  end)

  it("refuses NaN and the infinities", function()
    for _, v in ipairs { 0 / 0, math.huge, -math.huge } do
      assert.has_error(function() json.encode(v) end)
    end
  end)

  it("escapes quotes, backslashes and control characters, and passes UTF-8 through", function()
    assert.equal([["a\"b\\c"]], json.encode('a"b\\c'))
    assert.equal([["\b\f\n\r\t"]], json.encode("\b\f\n\r\t"))
    assert.equal([["\u0000\u0001\u001f"]], json.encode("\0\1\31"))
    assert.equal('"/ é 😀"', json.encode("/ é 😀"))
  end)

  it("writes arrays as arrays, other tables as objects with sorted keys", function()
    assert.equal("[1,2,3]", json.encode { 1, 2, 3 })
    assert.equal('{"a":1,"b":[true,false],"c":{"d":"e"}}', json.encode { c = { d = "e" }, a = 1, b = { true, false } })
    assert.equal("{}", json.encode {})
    assert.equal("[]", json.encode(json.array()))
    assert.equal("[1,null,3]", json.encode(json.array { 1, nil, 3 }))
  end)

  it("indents when asked", function()
    assert.equal('{\n  "a": [\n    1,\n    2\n  ],\n  "b": {}\n}', json.encode({ a = { 1, 2 }, b = {} }, "  "))
  end)

  it("refuses what JSON cannot hold, naming it", function()
    assert.has_error(function() json.encode { [true] = 1 } end, "json: object key true is not a string")
    assert.has_error(function() json.encode { 1, 2, x = 3 } end, "json: object key 1 is not a string")
    assert.has_error(function() json.encode(print) end, "json: cannot encode a function")
    local t = {}
    t.self = t
    assert.has_error(function() json.encode(t) end, "json: nested too deep (a cycle?)")
  end)
end)

describe("lumen.json.decode", function()
  it("reads the scalars and whitespace around them", function()
    assert.is_true(json.decode(" true "))
    assert.is_false(json.decode("\tfalse\r\n"))
    assert.is_nil(json.decode("null"))
    assert.equal("x", json.decode('"x"'))
  end)

  it("reads integers as Lua integers and everything with a fraction or exponent as floats", function()
    local function kind(s) local v = json.decode(s); return v, math.type(v) end
    assert.same({ 42, "integer" }, { kind("42") })
    assert.same({ -7, "integer" }, { kind("-7") })
    assert.same({ 0, "integer" }, { kind("-0") })
    assert.same({ math.maxinteger, "integer" }, { kind("9223372036854775807") })
    assert.same({ math.mininteger, "integer" }, { kind("-9223372036854775808") })
    assert.same({ 3.0, "float" }, { kind("3.0") })
    assert.same({ 100.0, "float" }, { kind("1e2") })
    assert.same({ 0.025, "float" }, { kind("2.5E-2") })
    assert.same({ 1.5, "float" }, { kind("1.5e+0") })
    -- beyond 64 bits an integer is read as the nearest float, as JavaScript does
    assert.same({ 2 ^ 64, "float" }, { kind("18446744073709551616") })
  end)

  it("rejects numbers JSON does not allow", function()
    for _, s in ipairs { "01", "-01", "1.", ".5", "+1", "1e", "1e+", "-", "0x10", "1.5.5", "Infinity", "NaN", "- 1" } do
      assert.matches("^json: ", decode_error(s))
    end
    assert.equal("json: number 1e400 out of range at byte 1", decode_error("1e400"))
  end)

  it("reads every escape, and \\u escapes as UTF-8 (surrogate pairs joined)", function()
    assert.equal('"\\/\b\f\n\r\t', json.decode([["\"\\\/\b\f\n\r\t"]]))
    assert.equal("é", json.decode([["\u00e9"]]))
    assert.equal("€", json.decode([["\u20AC"]]))
    assert.equal("😀", json.decode([["\ud83d\ude00"]]))
    assert.equal("a\0b", json.decode([["a\u0000b"]]))
    assert.equal("/ é 😀", json.decode('"/ é 😀"'))
    assert.equal("a\127b", json.decode('"a\127b"')) -- DEL is not a control character to JSON
  end)

  it("rejects bad strings", function()
    assert.equal("json: bad escape '\\x' at byte 2", decode_error([["\x41"]]))
    assert.equal("json: bad \\u escape at byte 2", decode_error([["\u12G4"]]))
    assert.matches("^json: lone surrogate", decode_error([["\ud83d"]]))
    assert.matches("^json: lone surrogate", decode_error([["\ude00x"]]))
    assert.matches("^json: lone surrogate", decode_error([["\ud83d\u0041"]]))
    assert.equal("json: control character in string at byte 3", decode_error('"a\nb"'))
    assert.equal("json: unterminated string at byte 1", decode_error('"abc'))
    assert.equal("json: unterminated string at byte 7", decode_error('["a", "b'))
  end)

  it("reads nested arrays and objects", function()
    local v = json.decode(' {"a": [1, {"b": [[], {}]}, "c"], "d": {"e": {"f": null}}} ')
    assert.equal(1, v.a[1])
    assert.same({}, v.a[2].b[1])
    assert.same({}, v.a[2].b[2])
    assert.equal("c", v.a[3])
    assert.same({}, v.d.e)
  end)

  it("keeps the positions of nulls in arrays, and reads [] back as an array", function()
    local v = json.decode("[1, null, 3, null]")
    assert.equal(1, v[1])
    assert.is_nil(v[2])
    assert.equal(3, v[3])
    assert.equal("[1,null,3]", json.encode(v)) -- a trailing nil cannot be told from nothing
    assert.equal("[]", json.encode(json.decode("[]")))
    assert.equal("{}", json.encode(json.decode("{}")))
  end)

  it("gives back the same bytes for what it wrote", function()
    local s = '{"files":{"a.npy":"00ff"},"params":{"index":7,"noise":0.15,"out":"out/x","raw":false,"scale":[-1.0,1.0]},"version":"0.1.0"}'
    assert.equal(s, json.encode(json.decode(s)))
  end)

  it("rejects malformed documents, saying what and where", function()
    assert.equal("json: unexpected end of input at byte 1", decode_error(""))
    assert.equal("json: unexpected end of input at byte 3", decode_error("  "))
    assert.equal("json: unexpected end of input at byte 5", decode_error("[1, "))
    assert.equal("json: expected ',' or ']' at byte 4", decode_error("[1 2]"))
    assert.equal("json: expected ',' or '}' at byte 9", decode_error('{"a": 1 "b": 2}'))
    assert.equal("json: expected ':' at byte 6", decode_error('{"a" 1}'))
    assert.equal("json: expected a string key at byte 2", decode_error("{a: 1}"))
    assert.equal("json: expected a string key at byte 9", decode_error('{"a": 1,}'))
    assert.equal("json: unexpected character ']' at byte 5", decode_error("[1, ]"))
    assert.equal("json: trailing characters at byte 6", decode_error("true false"))
    assert.equal("json: unexpected character 't' at byte 1", decode_error("tru"))
    assert.equal("json: trailing characters at byte 5", decode_error("nullx"))
    assert.matches("^json: nested too deep", decode_error(("["):rep(1000) .. ("]"):rep(1000)))
    assert.equal("json: expected a string to decode, got nil", decode_error(nil))
  end)

  it("lets a later duplicate key win", function()
    assert.equal(2, json.decode('{"a": 1, "a": 2}').a)
  end)
end)
