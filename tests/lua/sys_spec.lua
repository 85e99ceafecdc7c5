-- tests/lua/sys_spec.lua — the operating-system services of lumen.core (src/lua_sys.c): SHA-256 of
-- strings and files (nettle underneath) against the NIST vectors of FIPS 180-2 (appendix B), and the
-- errors for files that cannot be hashed.
local lumen = require "lumen"

-- FIPS 180-2, appendix B (B.1, B.2, B.3), and the empty message; the 896-bit message of the SHA-512
-- examples as a longer two-block input.
local VECTORS = {
  { "", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" },
  { "abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" },
  { "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
    "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1" },
  { "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu",
    "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1" },
  { ("a"):rep(1000000), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0" },
}

local function tmpfile(bytes)
  local name = os.tmpname()
  local f = assert(io.open(name, "wb"))
  f:write(bytes)
  f:close()
  return name
end

describe("lumen.sha256", function()
  it("gives the NIST digests of strings", function()
    for _, v in ipairs(VECTORS) do
      assert.equal(v[2], lumen.sha256(v[1]), ("sha256 of %d bytes"):format(#v[1]))
    end
  end)

  it("hashes every byte, zeros included", function()
    assert.are_not.equal(lumen.sha256("a\0b"), lumen.sha256("a\0c"))
    assert.are_not.equal(lumen.sha256("a"), lumen.sha256("a\0"))
  end)
end)

describe("lumen.sha256_file", function()
  it("gives the NIST digests of files, across many reads", function()
    for _, v in ipairs(VECTORS) do
      local name = tmpfile(v[1])
      local got = lumen.sha256_file(name)
      os.remove(name)
      assert.equal(v[2], got, ("sha256 of a file of %d bytes"):format(#v[1]))
    end
  end)

  it("returns nil and a message naming a missing file", function()
    local got, msg = lumen.sha256_file("no/such/file.bin")
    assert.is_nil(got)
    assert.matches("^no/such/file%.bin: cannot open for reading %(No such file or directory%)$", msg)
  end)

  it("refuses a directory and a FIFO at once, without waiting for a writer", function()
    local dir = os.tmpname()
    os.remove(dir)
    assert(lumen.core.mkdir_p(dir))
    local got, msg = lumen.sha256_file(dir)
    assert.is_nil(got)
    assert.equal(dir .. ": not a regular file", msg)
    local fifo = dir .. "/fifo"
    assert(os.execute("mkfifo " .. fifo), "mkfifo failed")
    local t0 = lumen.core.now()
    got, msg = lumen.sha256_file(fifo)
    assert.is_nil(got)
    assert.equal(fifo .. ": not a regular file", msg)
    assert(lumen.core.now() - t0 < 1, "sha256_file waited on a FIFO")
    os.remove(fifo)
    os.remove(dir)
  end)
end)

describe("lumen.core.listdir", function()
  it("gives a folder's names in byte order, without . and ..; nil, 'path: reason' for a missing folder", function()
    local support = require "support"
    local dir = support.tmp_dir("listdir")
    for _, n in ipairs { "b", "a", "B", "\xc3\xa9", "_", "a.png" } do support.write(dir .. "/" .. n, "") end
    assert(lumen.core.mkdir_p(dir .. "/sub"))
    assert.same({ "B", "_", "a", "a.png", "b", "sub", "\xc3\xa9" }, lumen.core.listdir(dir))
    local none, msg = lumen.core.listdir(dir .. "/nothing")
    assert.is_nil(none)
    assert.equal(dir .. "/nothing: No such file or directory", msg)
    support.remove(dir)
  end)
end)

-- src/main.c, tune_threads: the program starts itself again with passive OpenMP waiting (when built with
-- oneDNN) and a short OpenBLAS spin after each product, unless the user set either.
describe("the lumen program's thread policy", function()
  local support = require "support"
  local probe = "io.write(os.getenv('OMP_WAIT_POLICY') or '-', ' ', os.getenv('OPENBLAS_THREAD_TIMEOUT') or '-')"
  local function env_seen(assignments)
    local p = io.popen(("env -u OMP_WAIT_POLICY -u OPENBLAS_THREAD_TIMEOUT %s %s run /dev/stdin <<'EOF'\n%s\nEOF")
      :format(assignments, support.quote(support.LUMEN), probe))
    local out = p:read("a")
    p:close()
    return out
  end
  local _, have_onednn = lumen.core.conv_backend()

  it("sets OMP_WAIT_POLICY=passive and OPENBLAS_THREAD_TIMEOUT=24 when unset", function()
    assert.equal((have_onednn and "passive" or "-") .. " 24", env_seen(""))
  end)

  it("keeps the values the user set", function()
    assert.equal("active 28", env_seen("OMP_WAIT_POLICY=active OPENBLAS_THREAD_TIMEOUT=28"))
    assert.equal((have_onednn and "passive" or "-") .. " 30", env_seen("OPENBLAS_THREAD_TIMEOUT=30"))
  end)
end)
