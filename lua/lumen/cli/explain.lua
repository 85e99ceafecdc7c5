-- lumen explain METHOD MODEL INPUT [key=value ...]: explains a model's prediction on a photo, or on every
-- PNG / JPEG in a folder, with no Lua written. Prints the top classes, then writes into out= (default
-- out/<method>/<image stem>/) the input | map | overlay panel (<method>.png), the method's raw result
-- (<method>.npy) and manifest.json, which `lumen rerun` reruns.
--   lumen explain gradcam resnet18.onnx cat.jpg preset=torchvision labels=imagenet.txt label_offset=1
--   lumen explain --compare gradcam,saliency,occlusion MODEL INPUT [key=value ...]   (one panel, out/compare/...)
--   lumen explain --list                                                           (methods and presets)
-- Keys for every method: target (a class id or a label name), labels, label_offset, out, overwrite,
-- seed, top, and the image keys preset, size, crop, resize, mean, std, scale (lumen.image.input_spec);
-- each method adds its own options, which it declares itself (lumen.explain.options; M.options below
-- says what the command line changes). An unknown key, a key given twice, a value of the wrong kind or
-- out of the method's range is an error before any work.
--
-- The method table M.methods is the one place that knows the methods: a new method (say a CAM variant)
-- is one line there. `lumen rerun` runs this file as a script (`lumen run .../cli/explain.lua
-- method=... model=... input=... key=value ...`), which is what manifest.json records.
local lumen = require "lumen"
local models = require "lumen.models"
local recipe = require "lumen.recipe"
local common = require "lumen.explain.common"

local M = {}

-- One line per method: name, kind (how its result becomes a per-pixel map: see KINDS), the position of
-- the target among its return values, a description. Its options (row[5], key = default, "" = none
-- given: the method's own) are filled in from its declaration below.
M.methods = {
  { "gradcam", "cam", 2, "Grad-CAM (Selvaraju et al. 2017): activations of a conv layer weighted by the mean gradient" },
  { "gradcam_plus_plus", "cam", 2, "Grad-CAM++ (Chattopadhyay et al. 2018): Grad-CAM with higher-order weights" },
  { "cam", "cam", 2, "CAM (Zhou et al. 2016): the class's dense weights over the last feature maps (GAP + dense models)" },
  { "guided_gradcam", "gradient", 2, "Guided Grad-CAM: guided backprop times the Grad-CAM map" },
  { "hirescam", "cam", 2, "HiResCAM (Draelos & Carin 2020): gradient times activation at each position, summed over channels" },
  { "layercam", "cam", 2, "LayerCAM (Jiang et al. 2021): positive gradient times activation at each position" },
  { "xgradcam", "cam", 2, "XGrad-CAM (Fu et al. 2020): channels weighted by their activation-normalised gradients" },
  { "eigencam", "cam", 2, "EigenCAM (Muhammad & Yeasin 2020): a layer's first principal component (no gradient, no class)" },
  { "scorecam", "cam", 2, "Score-CAM (Wang et al. 2020): channels weighted by the scores of the input masked by each" },
  { "ablationcam", "cam", 2, "Ablation-CAM (Desai & Ramaswamy 2020): channels weighted by the score drop when each is zeroed" },
  { "fullgrad", "cam", 2, "FullGrad (Srinivas & Fleuret 2019): input gradient and every layer's bias gradients" },
  { "saliency", "gradient", 2, "Vanilla saliency (Simonyan et al. 2014): |d score / d pixel|, max over channels" },
  { "smoothgrad", "gradient", 2, "SmoothGrad (Smilkov et al. 2017): saliency averaged over noisy copies" },
  { "guided_backprop", "gradient", 2, "Guided backpropagation (Springenberg et al. 2015): gradients through positive ReLU paths" },
  { "integrated_gradients", "signed", 3, "Integrated Gradients (Sundararajan et al. 2017): gradients along a path from a baseline" },
  { "gradient_shap", "signed", 2, "GradientSHAP / expected gradients (Lundberg & Lee 2017): IG over sampled baselines" },
  { "occlusion", "signed", 2, "Occlusion (Zeiler & Fergus 2014): the score drop when a patch is covered" },
  { "lrp", "signed", 2, "Layer-wise relevance propagation (Bach et al. 2015; rules of Montavon et al. 2019)" },
  { "lime", "segments", 5, "LIME (Ribeiro et al. 2016): a linear model of the score over SLIC superpixels" },
  { "kernel_shap", "signed", 4, "KernelSHAP (Lundberg & Lee 2017): Shapley values of SLIC superpixels" },
  { "attention_rollout", "cam", 2, "Attention rollout (Abnar & Zuidema 2020): attention flow to the class token (ViTs; explains no class)" },
  { "transformer_attribution", "cam", 2, "Transformer attribution (Chefer et al. 2021): gradient-weighted attention relevance (ViTs)" },
}
-- Methods whose map is the same whatever the class (their target is the top class, for information).
local CLASS_FREE = { eigencam = true, attention_rollout = true }
local by_name = {}
for _, m in ipairs(M.methods) do by_name[m[1]] = m end

-- Keys every method takes, with their "not given" defaults (typed by them); the image keys come from
-- lumen.recipe.
M.COMMON = { target = "", labels = "", out = "", overwrite = false, seed = 0, top = 5 }
for k, v in pairs(recipe.IMAGE_KEYS) do M.COMMON[k] = v end

-- What the command line changes in the methods' declared options.
-- Left out everywhere: target (a common key below: a class id or a label name), probabilities (the
-- command explains the scores, as the papers do) and raw (the command draws the map it returns first).
local NOT_OFFERED = { target = true, probabilities = true, raw = true }
-- Per method: `skip`, options for other inputs than photos (LIME's and KernelSHAP's text and tabular
-- modes) or spelled differently here (segments= below); `defaults`, the command's own for photos;
-- `made`, options made from the photo, {default, kinds}: baseline / background zeros | blur (a tensor
-- of zeros or the blurred input), segments = the number of SLIC superpixels of the picture (KernelSHAP
-- calls the map features); `kinds`, the words a string option takes (LRP's rules, and composite:
-- first = zbox, Conv2d = gamma, Linear = epsilon). Kinds are common.options' parsed alternatives.
local function words(...)
  local t = {}
  for i, w in ipairs { ... } do t[i] = { literal = w } end
  return t
end
local ZEROS_OR_BLUR, INTEGER = words("zeros", "blur"), { { base = "integer" } }
local CLI = {
  gradient_shap = { made = { background = { "zeros", ZEROS_OR_BLUR } } },
  occlusion = { defaults = { patch = 32, stride = 16 } },
  lrp = { kinds = { rule = words("epsilon", "zero", "gamma", "alphabeta", "zplus", "zbox", "composite") } },
  lime = { skip = { "mode", "pad_id", "scale", "n_segments" }, made = { segments = { 50, INTEGER } } },
  kernel_shap = { skip = { "pad_id", "n_segments", "features" }, defaults = { nsamples = 1000 },
                  made = { baseline = { "zeros", ZEROS_OR_BLUR }, segments = { 50, INTEGER, as = "features" } } },
}

-- Kinds a word can spell (a tensor or a function it cannot).
local WRITABLE = { integer = true, number = true, boolean = true, string = true, layer = true, table = true }

-- options(name) -> {key = {default = value | "", alts = kinds [, made = true, as = the method's name]}}:
-- a method's options on the command line.
local options_of = {}
function M.options(name)
  if options_of[name] then return options_of[name] end
  lumen.explain.options(name) -- loads the method's file, which declares its options
  local cli, res, skip = CLI[name] or {}, {}, {}
  for _, k in ipairs(cli.skip or {}) do skip[k] = true end
  for k, d in pairs(common.declared[name].decl) do
    local writable = false
    for _, a in ipairs(d.alts) do writable = writable or a.literal ~= nil or WRITABLE[a.base] ~= nil end
    if writable and not NOT_OFFERED[k] and not skip[k] then
      if M.COMMON[k] ~= nil then error(("explain: %s's option %s is also a common key"):format(name, k)) end
      local default = (cli.defaults or {})[k]
      if default == nil then default = d.default end
      res[k] = { default = default == nil and "" or default, alts = (cli.kinds or {})[k] or d.alts }
    end
  end
  for k, made in pairs(cli.made or {}) do res[k] = { default = made[1], alts = made[2], made = true, as = made.as } end
  options_of[name] = res
  return res
end
for _, m in ipairs(M.methods) do
  m[5] = {}
  for k, o in pairs(M.options(m[1])) do m[5][k] = o.default end
end

local USAGE = "usage: lumen explain METHOD MODEL INPUT [key=value ...] | --compare A,B,... MODEL INPUT [key=value ...] | --list"

local function sorted_keys(t)
  local ks = {}
  for k in pairs(t) do ks[#ks + 1] = k end
  table.sort(ks)
  return ks
end

local function method_names()
  local n = {}
  for i, m in ipairs(M.methods) do n[i] = m[1] end
  return table.concat(n, ", ")
end

-- The words an option takes, for --list: the default, then the other choices (zeros|blur).
local function shown(o)
  local words = {}
  if o.default ~= "" then words[1] = tostring(o.default) end
  for _, a in ipairs(o.alts) do
    if a.literal and a.literal ~= o.default then words[#words + 1] = a.literal end
  end
  return table.concat(words, "|")
end

-- The text of `lumen explain --list`.
function M.list()
  local lines = { "methods (lumen explain METHOD MODEL INPUT [key=value ...]):" }
  for _, m in ipairs(M.methods) do
    local opts, o = M.options(m[1]), {}
    for _, k in ipairs(sorted_keys(opts)) do o[#o + 1] = ("%s=%s"):format(k, shown(opts[k])) end
    lines[#lines + 1] = ("  %-22s %s"):format(m[1], m[4])
    if #o > 0 then lines[#lines + 1] = ("  %-22s options: %s"):format("", table.concat(o, " ")) end
  end
  lines[#lines + 1] = "presets (preset=NAME; size=, crop=, resize=, mean=, std=, scale= override them):"
  lines[#lines + 1] = lumen.image.preset_help()
  lines[#lines + 1] = "every method also takes: " .. table.concat(sorted_keys(M.COMMON), ", ")
  return table.concat(lines, "\n") .. "\n"
end

---------------------------------------------------------------- arguments

-- The kinds of a common key, from its default (as lumen.args types a recipe's parameters).
local function kinds_of(default)
  local t = math.type(default) or type(default)
  return { { base = t == "float" and "number" or t } }
end

-- The value of word v for key k of kinds alts: a choice, a number (an integer for integer kinds),
-- true / false, a string, or a list of integers (reshape=14,14); raises "explain: k=v ..." otherwise.
local function typed(k, v, alts)
  local choices, base = {}, {}
  for _, a in ipairs(alts) do
    if a.literal then
      if v == a.literal then return v end
      choices[#choices + 1] = a.literal
    else
      base[a.base] = true
    end
  end
  local n = tonumber(v)
  if n and (base.integer or base.number) then
    if base.integer and not base.number then
      n = math.tointeger(n) or error(("explain: %s=%s is not an integer"):format(k, v), 0)
    end
    return n
  end
  if base.boolean then
    if v == "true" or v == "1" or v == "yes" then return true end
    if v == "false" or v == "0" or v == "no" then return false end
  end
  if base.string or base.layer then return v end
  if base.table then -- a list of integers: reshape=14,14
    local ok, list = pcall(recipe.ints, v)
    if ok and #list > 0 then return list end
    error(("explain: %s=%s is not a list of integers (e.g. %s=14,14)"):format(k, v, k), 0)
  end
  if (base.integer or base.number) and #choices > 0 then
    error(("explain: %s=%s (one of: %s, or a number)"):format(k, v, table.concat(choices, ", ")), 0)
  end
  if base.integer or base.number then error(("explain: %s=%s is not a number"):format(k, v), 0) end
  if base.boolean then error(("explain: %s=%s is not true or false"):format(k, v), 0) end
  error(("explain: %s=%s (one of: %s)"):format(k, v, table.concat(choices, ", ")), 0)
end

-- The words after `explain` -> params: method(s), model, input and every key=value, typed and checked
-- against the methods' options (an unknown key is an error listing the valid ones; each chosen
-- method's own check of its options runs on the values given, so n=0 or an unknown rule stops here).
function M.parse(words)
  local p, pos, given = {}, {}, {}
  local i = 1
  while i <= #words do
    local w = words[i]
    if w == "--compare" then
      p.compare = words[i + 1] or error("--compare: give the methods, e.g. --compare gradcam,saliency", 0)
      i = i + 1
    elseif w == "--list" then
      p.list = true
    else
      local k, v = w:match("^([%w_]+)=(.*)$")
      if not k then pos[#pos + 1] = w
      elseif k == "model" or k == "input" or k == "method" or k == "compare" then p[k] = v
      elseif given[k] then error(("explain: %s given twice (%s=%s and %s)"):format(k, k, given[k], w), 0)
      else given[k] = v end
    end
    i = i + 1
  end
  if p.list then return p end
  local names = p.compare or p.method
  if not names then names = table.remove(pos, 1) end
  p.model = p.model or table.remove(pos, 1)
  p.input = p.input or table.remove(pos, 1)
  if #pos > 0 then error(("explain: unexpected argument '%s' (%s)"):format(pos[1], USAGE), 0) end
  if not names or not p.model or not p.input then error(USAGE, 0) end
  p.methods = {}
  for name in names:gmatch("[^,%s]+") do
    p.methods[#p.methods + 1] = by_name[name] or error(("explain: unknown method '%s' (known: %s)"):format(name, method_names()), 0)
  end
  if #p.methods == 0 then error(USAGE, 0) end
  if #p.methods > 1 and not p.compare then p.compare = names end
  local valid = {}
  for k in pairs(M.COMMON) do valid[k] = true end
  for _, m in ipairs(p.methods) do
    for k in pairs(M.options(m[1])) do valid[k] = true end
  end
  for k in pairs(given) do
    if not valid[k] then
      error(("explain: unknown key '%s' for %s (valid: %s)"):format(k, names, table.concat(sorted_keys(valid), ", ")), 0)
    end
  end
  for k, d in pairs(M.COMMON) do
    if given[k] == nil then p[k] = d else p[k] = typed(k, given[k], kinds_of(d)) end
  end
  for _, m in ipairs(p.methods) do -- each method types the words of its options and checks the values
    local opts, check = M.options(m[1]), {}
    for k, o in pairs(opts) do
      if given[k] ~= nil then
        local v = typed(k, given[k], o.alts)
        if p[k] == nil then p[k] = v end
        if not o.made and v ~= "composite" then check[k] = v end
      end
    end
    local ok, err = pcall(common.declared[m[1]], check)
    if not ok then error((tostring(err):gsub("^[^:\n]*:%d+: ", "")), 0) end
  end
  p.given = given
  return p
end

---------------------------------------------------------------- running one method

-- The method's options from the parameters: its own keys (the value given, else the command's
-- default), "" left out, and the values made from the photo (baselines, superpixels) or standing for a
-- table (LRP's composite).
local function method_opts(m, p, x, img)
  local o = { target = p.class }
  local segments
  for k, opt in pairs(M.options(m[1])) do
    local v = p[k]
    if v == nil then v = opt.default end
    if v == "" then -- the method's own default
    elseif k == "segments" and opt.made then segments = { opt.as or k, v }
    elseif opt.made and v == "zeros" then o[k] = lumen.zeros_like(x)
    elseif opt.made and v == "blur" then o[k] = lumen.gaussian_blur(x, 5)
    else o[k] = v end
  end
  if segments then
    o[segments[1]] = lumen.viz.slic(lumen.image.to_rgb(img), { n_segments = segments[2], compactness = o.compactness })
    o.compactness = nil
  end
  if o.rule == "composite" then o.rule = { first = "zbox", Conv2d = "gamma", Linear = "epsilon" } end
  return o
end

-- How a result becomes a per-pixel map (1, 1, H, W) and which colormap shows it.
local KINDS = {
  cam = function(r) return r[1], false end,                                    -- (1, 1, H, W) in [0, 1]
  gradient = function(r) return (r[1]:abs():max(2, true)), false end,          -- max |g| over channels
  signed = function(r) return r[1]:sum(2, true), true end,                     -- sum over channels
  segments = function(r, x) -- LIME: each pixel carries its superpixel's weight
    local seg = r[2]
    return lumen.tensor(r[1]):index_select(1, seg:reshape { seg:numel() }):reshape { 1, 1, x.shape[3], x.shape[4] }, true
  end,
}

-- run_method(m, model, x, img, p) -> {name, raw = the method's first result, map = (1, 1, H, W),
-- signed, target, info}; m is an entry of M.methods (or its name).
function M.run_method(m, model, x, img, p)
  if type(m) == "string" then m = by_name[m] or error("explain: unknown method " .. m, 2) end
  local r = table.pack(lumen.explain[m[1]](model, x, method_opts(m, p, x, img)))
  local map, signed = KINDS[m[2]](r, x)
  local t = r[m[3]]
  local info = {}
  if m[2] == "cam" and type(r[3]) == "string" then info.layer = r[3] end -- (fullgrad's are many)
  -- the raw result is a tensor (LIME's is a list of superpixel weights: its per-pixel map stands for it)
  local raw = lumen.is_tensor(r[1]) and r[1] or map
  return { name = m[1], raw = raw, map = map, signed = signed, target = type(t) == "table" and t[1] or t, info = info }
end

---------------------------------------------------------------- pictures and files

local function stem(path) return (path:match("([^/]+)$") or path):gsub("%.[^.]*$", "") end

-- Whether a file is a PNG or a JPEG (by its first bytes).
local function is_image(path)
  local f = io.open(path, "rb")
  if not f then return false end
  local head = f:read(8) or ""
  f:close()
  return head == "\137PNG\r\n\26\n" or head:sub(1, 3) == "\255\216\255"
end

-- The images of INPUT: the file itself, or the PNG / JPEG files of a folder (sorted; only regular
-- files are opened, so a named pipe in the folder is skipped, not waited on).
function M.inputs(input)
  local core = lumen.core
  local st = core.stat(input)
  if not (st and st.type == "directory") then return { input } end
  local names, err = core.listdir(input)
  if not names then error(("%s: cannot open folder (%s)"):format(input, err:sub(#input + 3)), 0) end
  local files, skipped = {}, 0
  for _, n in ipairs(names) do
    local path = input:gsub("/$", "") .. "/" .. n
    local f = core.stat(path)
    if f and f.type == "file" and is_image(path) then files[#files + 1] = path else skipped = skipped + 1 end
  end
  if #files == 0 then error(("%s: no PNG or JPEG files in this folder"):format(input), 0) end
  if skipped > 0 then print(("%s: %d PNG/JPEG files (%d other files skipped)"):format(input, #files, skipped)) end
  return files
end

-- Captions that fit a panel cell of the enlarged picture (the 5x7 font is drawn at scale h // 100).
local function fitted(img, texts)
  local cell = lumen.viz.enlarge(img)
  local h, w = cell.shape[2], cell.shape[3]
  local scale = math.max(1, h // 100)
  local n = (w - 2 * scale) // (6 * scale)
  local out = {}
  for i, t in ipairs(texts) do out[i] = #t > n and (t:sub(1, n - 1) .. ".") or t end
  return out
end

-- Writes one image's panel, maps and manifest into dir; returns the written file names.
local function write_outputs(dir, results, img, model, compare)
  lumen.mkdir(dir)
  local files = {}
  local function save(name, t, as_png)
    local path = dir .. "/" .. name
    local ok, err
    if as_png then ok, err = lumen.image.save(t, path) else ok, err = lumen.write_npy(path, t) end
    if not ok then error(err, 0) end
    files[#files + 1] = name
  end
  if compare then
    local cells, labels = { lumen.viz.enlarge(img) }, { "input" }
    for _, r in ipairs(results) do
      local m = lumen.viz.clip(r.map:reshape { r.map.shape[3], r.map.shape[4] })
      cells[#cells + 1] = lumen.viz.enlarge(lumen.viz.overlay(img, m, { cmap = r.signed and "bwr" or "jet", alpha = 0.6 }))
      labels[#labels + 1] = r.name
      save(r.name .. ".npy", r.raw)
    end
    save("compare.png", lumen.viz.panel(cells, { labels = fitted(img, labels) }), true)
  else
    local r = results[1]
    local labels = fitted(img, { "input", recipe.label(model, r.target, true), r.name })
    save(r.name .. ".png", lumen.viz.map_panel(img, r.map, { signed = r.signed, labels = labels }), true)
    save(r.name .. ".npy", r.raw)
  end
  return files
end

-- The script this file is, for manifests (`lumen rerun` runs it with `lumen run`).
local function script_path()
  local dir = rawget(_G, "LUMEN_LUA_DIR")
  return dir and (dir .. "/lumen/cli/explain.lua") or package.searchpath("lumen.cli.explain", package.path)
end

-- Explains one image; returns the output folder.
local function explain_image(path, model, spec, p, dir)
  lumen.seed(p.seed)
  local img, err = lumen.image.load(path)
  if not img then error(err, 0) end
  local x, shown = lumen.image.preprocess(img, spec)
  if not p.labels_checked then
    recipe.attach_labels(model, p, x)
    p.labels_checked = true
  end
  p.class = models.class_id(model, p.target, model.labels and #model.labels or models.classes(model, x))
  local ids, probs, labels = models.top(model, x, p.top)
  print(("%s (%dx%d as %s):"):format(path, x.shape[3], x.shape[4], spec.preset or "the model records"))
  local top = {}
  for k = 1, #ids do
    print(("  %d. %6.2f%%  %-5d %s"):format(k, 100 * probs[k], ids[k], labels[k]))
    top[k] = { class = ids[k], probability = probs[k], label = labels[k] }
  end
  local results = {}
  for _, m in ipairs(p.methods) do
    local r = M.run_method(m, model, x, shown, p)
    results[#results + 1] = r
    print(("  %s %s class %d (%s)%s"):format(r.name, CLASS_FREE[r.name] and "explains no class; top" or "for",
      r.target, recipe.label(model, r.target), r.info.layer and (" at layer " .. r.info.layer) or ""))
  end
  local files = write_outputs(dir, results, shown, model, p.compare)
  -- the manifest: the parameters that rerun exactly this image into dir
  local params = { method = p.compare or p.methods[1][1], model = p.model, input = path, out = dir }
  for k, v in pairs(p.given) do params[k] = v end
  local words = { "lumen explain", p.compare and ("--compare " .. p.compare) or p.methods[1][1], p.model, path }
  for _, k in ipairs(sorted_keys(p.given)) do if k ~= "out" then words[#words + 1] = k .. "=" .. p.given[k] end end
  words[#words + 1] = "out=" .. dir
  local info = { explain = table.concat(words, " "), top = top, input_spec = spec,
                 model_sha256 = lumen.sha256_file(p.model), methods = {} }
  for _, r in ipairs(results) do info.methods[r.name] = { target = r.target, label = recipe.label(model, r.target), layer = r.info.layer } end
  lumen.manifest(dir, info, files, { script = script_path(), params = params })
  print(("  wrote %s/%s"):format(dir, p.compare and "compare.png" or (p.methods[1][1] .. ".png")))
  return dir
end

-- main(words): `lumen explain ...`; returns the output folders.
function M.main(words)
  local p = M.parse(words)
  if p.list then
    io.write(M.list())
    return {}
  end
  local model = lumen.load_model(p.model)
  local spec = models.input_spec(model, recipe.image_opts(p), p.model)
  model.input_spec = spec
  if spec.size then -- labels checked before any picture is read (else on the first one)
    recipe.attach_labels(model, p)
    p.labels_checked = true
  end
  local files = M.inputs(p.input)
  local name = p.compare and "compare" or p.methods[1][1]
  local bar = #files > 1 and lumen.progress(#files, "explain " .. name) or nil
  -- every output folder checked before any work: new, empty, or (overwrite=true) an earlier run's
  local dirs = {}
  for i, path in ipairs(files) do
    local dir = p.out ~= "" and p.out or ("out/" .. name)
    if #files > 1 or p.out == "" then dir = dir .. "/" .. stem(path) end
    dirs[i] = dir
    lumen.check_out(dir, p.overwrite)
  end
  local outs = {}
  for i, path in ipairs(files) do
    outs[i] = explain_image(path, model, spec, p, dirs[i])
    if bar then bar:update(i) end
  end
  if bar then bar:done() end
  return outs
end

-- As a module (`lumen explain ...` through lumen.cli) M is called with the words; as a script
-- (`lumen run .../explain.lua key=value ...`, what lumen rerun does) it runs with the command line.
local as_module = ... == "lumen.cli.explain"
if not as_module then return M.main(_G.arg or {}) end
return setmetatable(M, { __call = function(_, words) return M.main(words) end })
