-- Specs for the pictures in docs/img: tools/make_docs_img.lua knows how each is made and records what
-- decided it in docs/img/pictures.json; its check passes on the repository as committed and fails,
-- naming the picture and the cause, when a picture is stale (its recipe or Lua code changed, its bytes
-- were replaced) or unknown. The headline demo is also made again and compared.
local lumen = require "lumen"
local support = require "support"
local LUMEN, q, read, write = support.LUMEN, support.quote, support.read_file, support.write

local function check(...)
  local p = io.popen(("LUMEN_QUIET=1 %s run tools/make_docs_img.lua check=true %s 2>&1"):format(q(LUMEN),
    table.concat({ ... }, " ")))
  local out = p:read("a")
  return p:close(), out
end

describe("docs/img", function()
  it("every picture is current: recipe, inputs and Lua code as recorded", function()
    local ok, out = check()
    assert(ok, out)
    assert.truthy(out:find("all 19 pictures in docs/img are current", 1, true), out)
  end)

  describe("a stale picture fails the check, named with its cause", function()
    local tmp = support.tmp_dir("docs_img_spec")
    teardown(function() support.remove(tmp) end)
    local records = lumen.json.decode(read("docs/img/pictures.json"))
    local function copy(edit)
      os.execute(("rm -rf %s/* && cp docs/img/*.png docs/img/pictures.json %s/"):format(q(tmp), q(tmp)))
      local r = lumen.json.decode(lumen.json.encode(records))
      if edit then edit(r) end
      write(tmp .. "/pictures.json", lumen.json.encode(r, "  "))
    end

    it("when a Lua file the picture was made with changed", function()
      copy(function(r) r["lrp_cat.png"].code["lumen/explain/lrp.lua"] = ("0"):rep(64) end)
      local ok, out = check("docs=" .. tmp)
      assert.is_falsy(ok)
      assert.truthy(out:find("STALE lrp_cat.png: lua/lumen/explain/lrp.lua changed", 1, true), out)
      assert.truthy(out:find("1 of 19 pictures", 1, true), out)
    end)

    it("when its recipe changed", function()
      copy(function(r) r["demo.png"].script_sha256 = ("0"):rep(64) end)
      local ok, out = check("docs=" .. tmp)
      assert.is_falsy(ok)
      assert.truthy(out:find("STALE demo.png: recipes/demo.lua changed", 1, true), out)
    end)

    it("when the picture was replaced, or its command changed, or nobody knows how it is made", function()
      copy(function(r) r["deconv.png"].command = r["deconv.png"].command .. " top=4" end)
      write(tmp .. "/class_model.png", read("docs/img/deconv.png"))
      write(tmp .. "/mystery.png", read("docs/img/deconv.png"))
      local ok, out = check("docs=" .. tmp)
      assert.is_falsy(ok)
      assert.truthy(out:find("STALE class_model.png: the picture is not the one recorded", 1, true), out)
      assert.truthy(out:find("STALE deconv.png: made by 'lumen run recipes/deconv.lua top=4'", 1, true), out)
      assert.truthy(out:find("STALE mystery.png: in " .. tmp .. " but tools/make_docs_img.lua does not know", 1, true), out)
    end)
  end)

  it("the headline demo made again is the recorded picture", function()
    if not lumen.exists(lumen.recipe.FASHION_DIR .. "/t10k-images-idx3-ubyte.gz") then
      return pending(lumen.recipe.FASHION_DIR .. " is absent (Debian package dataset-fashion-mnist)")
    end
    local ok, out = check("recompute=demo.png")
    assert(ok, out)
    if out:find("unverifiable here", 1, true) then
      return pending("another BLAS kernel set here: " .. out:match("unverifiable here: ([^\n]*)"))
    end
  end)
end)
