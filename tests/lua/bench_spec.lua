-- Specs for bench/'s lumen side: a workload's JSON lines come out for a name it knows, and a name it does not
-- know (a typo in models=, methods=, samplers=, modes=, cases=) is an error naming it before any work, never an
-- empty run that reports nothing. (The PyTorch and onnxruntime twins check the same way; the suite never needs
-- Python or node.)
local lumen = require "lumen"
local support = require "support"
local q, sh = support.quote, support.sh

local LUMEN = lumen.core.exe_path()

local function bench(script, args)
  return sh(("LUMEN_QUIET=1 %s run bench/%s threads=1 %s"):format(q(LUMEN), script, args))
end

describe("bench/", function()
  it("times a network it knows: one line per pass, with its case, batch and milliseconds", function()
    local text, status = bench("model.lua", "models=resnet18 batches=1 reps=1 warmup=0")
    assert.equal(0, status, text)
    local passes = {}
    for line in text:gmatch("[^\n]+") do
      local r = lumen.json.decode(line)
      assert.equal("resnet18 224", r.case)
      assert.equal(1, r.batch)
      assert.equal(1, #r.ms)
      assert(r.ms[1] > 0)
      passes[#passes + 1] = r.pass
    end
    assert.same({ "fwd", "fwd+bwd(x)" }, passes)
  end)

  it("refuses a name that matches nothing, naming it and the known ones, before any work", function()
    for _, c in ipairs {
      { "model.lua", "models=resnet18,resnet81", "models=resnet18,resnet81: no 'resnet81' (known: resnet18," },
      { "explain.lua", "methods=saliency,lim", "no 'lim' (known: saliency,smoothgrad,ig,kernel_shap,lime)" },
      { "explain.lua", "methods=lime samplers=mobilenet_v9", "samplers=mobilenet_v9: no 'mobilenet_v9'" },
      { "occlusion.lua", "modes=incremental,ful", "no 'ful' (known: incremental,full)" },
      { "transformer.lua", "cases=vit,txt", "no 'txt' (known: vit,text)" },
    } do
      local text, status = bench(c[1], c[2])
      assert.are_not.equal(0, status, c[1] .. " " .. c[2])
      assert.truthy(text:find(c[3], 1, true), text)
      assert.falsy(text:find('"bench"', 1, true), text) -- no workload ran
    end
  end)
end)
