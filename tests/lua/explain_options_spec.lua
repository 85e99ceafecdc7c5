-- Specs for the rules every explanation method follows (lua/lumen/explain/init.lua): walks the method
-- table, so a method added later is held to them too. Each method declares its options (and the file's
-- header comment names every one with its default); an unknown option is an error naming it and
-- listing the valid ones; values of the wrong kind or out of range are errors naming the option before
-- any work; every file returns a table of its methods and none reaches into lumen.core.
local lumen = require "lumen"
local nn = lumen.nn
local explain = lumen.explain

-- The leading comment block of a file.
local function header(path)
  local f = assert(io.open(path))
  local lines = {}
  for line in f:lines() do
    local c = line:match("^%-%-(.*)$")
    if not c then break end
    lines[#lines + 1] = c
  end
  f:close()
  return table.concat(lines, "\n")
end

local function file_of(method) return "lua/lumen/explain/" .. explain.METHODS[method] .. ".lua" end

-- Whether the header says `name = default` for a default that is a number, string or boolean.
local function states_default(text, name, default)
  for value in text:gmatch("%f[%w_]" .. name .. " = ([^;,)\n]+)") do
    value = value:match("^%s*(.-)%s*$")
    if type(default) == "number" and tonumber(value:match("^[-%d.e]+")) == default then return true end
    if type(default) == "string" and value:match('^"([^"]*)"') == default then return true end
    if type(default) == "boolean" and value:match("^%a+") == tostring(default) then return true end
  end
  return false
end

local function sorted_methods()
  local names = {}
  for name in pairs(explain.METHODS) do names[#names + 1] = name end
  table.sort(names)
  return names
end

-- A small image classifier: (N, 3, 8, 8) -> conv -> relu -> GAP -> fc (4).
local function net()
  lumen.seed(2)
  return nn.Sequential { nn.Conv2d { in_channels = 3, out_channels = 4, kernel_size = 3, padding = 1, name = "conv" },
                         nn.ReLU { name = "relu" }, nn.GlobalAvgPool2d {}, nn.Linear { in_features = 4, out_features = 4 } }
end

describe("lumen.explain methods", function()
  for _, method in ipairs(sorted_methods()) do
    it(method .. " declares its options and its file's header names each with its default", function()
      local decl = explain.options(method)
      local text = header(file_of(method))
      assert.truthy(next(decl), method .. " declares no options")
      for name, d in pairs(decl) do
        assert.truthy(text:find("%f[%w_]" .. name .. "%f[^%w_]"), ("%s: the header does not mention option %s"):format(
          method, name))
        if type(d.default) ~= "table" and d.default ~= nil then
          assert.truthy(states_default(text, name, d.default), ("%s: the header does not say %s = %s"):format(method,
            name, tostring(d.default)))
        end
      end
      assert.is_function(explain[method], method)
    end)
  end

  it("every file returns a table of its methods, and none requires or touches lumen.core", function()
    local files = {}
    for method, file in pairs(explain.METHODS) do
      files[file] = true
      assert.is_function(require("lumen.explain." .. file)[method], file .. "." .. method)
    end
    files.common, files.features, files.synthesis = true, true, true
    local ls = assert(io.popen("ls lua/lumen/explain"))
    for name in ls:lines() do
      local f = assert(io.open("lua/lumen/explain/" .. name))
      local src = f:read("a"):gsub("%-%-[^\n]*", "") -- code, not comments
      f:close()
      assert.falsy(src:find("lumen%.core") or src:find("lumen/core"), name .. " reaches into lumen.core")
      assert.truthy(files[name:match("^(.-)%.lua$")] or name == "init.lua", name .. " is not listed in explain/init.lua")
    end
    ls:close()
  end)

  it("reject an unknown option, naming it, guessing the intended one and listing the valid ones", function()
    local x = lumen.randn { 1, 3, 8, 8 }
    assert.has_error(function() explain.saliency(net(), x, { targte = 3 }) end,
      "saliency: unknown option 'targte', did you mean 'target'? (options: abs, probabilities, target)")
    assert.has_error(function() explain.integrated_gradients(net(), x, { step = 5 }) end,
      "integrated_gradients: unknown option 'step', did you mean 'steps'? (options: baseline, batch_size, blur_sigma,"
      .. " probabilities, steps, target)")
    assert.has_error(function() explain.gradcam(net(), x, { colour = "red" }) end,
      "gradcam: unknown option 'colour' (options: layer, layout, probabilities, raw, reshape, target)")
    assert.has_error(function() explain.saliency(net(), x, 3) end, "saliency: options must be a table, got 3")
  end)

  it("reject values out of range or of the wrong kind, in the user's terms, before any work", function()
    local model, x = net(), lumen.randn { 1, 3, 8, 8 }
    local calls = 0
    local f = function(b) calls = calls + 1; return model:forward(b) end
    local cases = {
      { "smoothgrad", { n = 0 }, "smoothgrad: n must be an integer >= 1, got 0" },
      { "smoothgrad", { noise = -0.1 }, "smoothgrad: noise must be a number >= 0, got -0.1" },
      { "smoothgrad", { batch_size = 0 }, "smoothgrad: batch_size must be an integer >= 1, got 0" },
      { "integrated_gradients", { steps = 0 }, "integrated_gradients: steps must be an integer >= 1, got 0" },
      { "integrated_gradients", { steps = 2.5 }, "integrated_gradients: steps must be an integer >= 1, got 2.5" },
      { "occlusion", { patch = 0 }, "occlusion: patch must be an integer >= 1 or a table, got 0" },
      { "occlusion", { stride = 0 }, "occlusion: stride must be an integer >= 1 or a table, got 0" },
      { "occlusion", { stride = { 2 } }, "occlusion: stride must be a number or a list of 2 (one per spatial dim), got a table" },
      { "gradient_shap", { n = 0 }, "gradient_shap: n must be an integer >= 1, got 0" },
      { "scorecam", { batch_size = 0 }, "scorecam: batch_size must be an integer >= 1, got 0" },
      { "ablationcam", { fill = "min" }, "ablationcam: fill must be a number, got 'min'" },
      { "eigencam", { center = 1 }, "eigencam: center must be true or false, got 1" },
      { "saliency", { target = 0 }, "saliency: target must be a 1-based class id or a list of them (one per sample), got 0" },
      { "saliency", { target = 5 }, "saliency: target = 5 is out of range: the model has 4 classes (ids 1..4)" },
      { "saliency", { abs = "yes" }, "saliency: abs must be true or false, got 'yes'" },
      { "lime", { num_samples = 3 }, "lime: num_samples = 3 must be more than the ...(superpixels)" },
      { "lime", { num_samples = 3, segments = lumen.explain.patches(8, 8, 4) },
        "lime: num_samples = 3 must be more than the 4 features the fit has to weigh (segments)" },
      { "kernel_shap", { nsamples = 10, features = lumen.tensor({ { 1, 2, 3, 4, 5, 6, 7, 8 } }, "int64"):expand { 8, 8 } },
        "kernel_shap: nsamples = 10 is too few for 8 features: give at least ... (or group the features)" },
    }
    for _, c in ipairs(cases) do
      local method, opts, want = c[1], c[2], c[3]
      local ok, err = pcall(explain[method], f, x, opts)
      assert.is_false(ok, method)
      if want:find("...", 1, true) then
        local head, tail = want:match("^(.-) %.%.%.(.*)$")
        assert.truthy(err:find(head, 1, true) and err:find(tail, 1, true), err)
      else
        assert.equal(want, err)
      end
    end
    assert.equal(1, calls) -- only the target out of range needed the scores
  end)

  it("check layers by name against the model", function()
    local x = lumen.randn { 1, 3, 8, 8 }
    assert.has_error(function() explain.gradcam(net(), x, { layer = "relu9" }) end,
      "gradcam: layer = 'relu9' is not a layer of the model (did you mean relu?)")
    assert.has_error(function() explain.feature_maps(net(), x, { layer = 3 }) end,
      "feature_maps: layer must be a layer name, got 3")
    assert.has_error(function() explain.deepdream(net(), x, {}) end, "deepdream: option layer is required (a layer name)")
    assert.has_error(function() explain.class_model(net(), { steps = 2 }) end,
      "class_model: option target is required (an integer >= 1)")
  end)

  it("list their options", function()
    local o = explain.options("smoothgrad")
    assert.same({ default = 50, accepts = "integer >= 1" }, o.n)
    assert.same({ default = "mean", accepts = "'mean' | 'squared' | 'vargrad'" }, o.variant)
    assert.has_error(function() explain.options("nonsense") end, "explain.options: unknown method 'nonsense'")
  end)
end)
