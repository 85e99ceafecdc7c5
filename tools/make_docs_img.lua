-- tools/make_docs_img.lua: the one place that knows how every picture in docs/img is made. Run it
-- through tools/make_docs_img.sh (which builds first), from anywhere:
--   tools/make_docs_img.sh                      regenerate every picture and docs/img/pictures.json
--   tools/make_docs_img.sh only=lrp_cat.png     just those (comma-separated)
--   tools/make_docs_img.sh check=true           is every picture current? exit 1 naming the stale ones
--   tools/make_docs_img.sh check=true recompute=demo.png   ... and make these again and compare
--
-- Each picture is made by running its recipe with the parameters below into out/docs_img/<name>/
-- (overwrite=true) and copying one output file. docs/img/pictures.json records, per picture, the
-- command, the picture's SHA-256, and what decided it, from the run's manifest: the recipe's SHA-256,
-- the input files' SHA-256 (model, image, labels, dataset), every lumen Lua file the run loaded (but
-- the manifest machinery: util, json, runs, compare, gradcheck) and the environment.
-- A picture is current when its bytes, its command, its recipe, its inputs and that Lua code are all
-- as recorded: a cheap check that needs no run. Inputs that are absent here (../shared/data on a
-- clone) are skipped and counted. Changes in the C core are seen only by recompute=: the picture is
-- made again and must have the same bytes when the environment (BLAS kernels, threads, CPU, build) is
-- the recorded one; under another environment, it must be close (lumen.compare), and a picture that
-- is not (gradient maps flip where ReLU and max-pool switches are near ties) is reported as
-- unverifiable here, not as stale.
local lumen = require "lumen"
local compare = require "lumen.compare"
local runs = require "lumen.runs"
local core = lumen.core

local p = lumen.args { only = "", check = false, recompute = "", docs = "docs/img" }

local root = (arg[0]:match("^(.*)/tools/[^/]*$") or ".")
local function q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end
local function at_root(path) return path:sub(1, 1) == "/" and path or (root .. "/" .. path) end

local SHARED = "../shared/data"
local MOBILENET_V2 = SHARED .. "/models/mobilenet_v2_1.0_224_quant.tflite"
local MOBILENET_V1_ONNX = SHARED .. "/models/mobilenet_v1_0.5_160_float.onnx"
local LABELS = SHARED .. "/models/imagenet_labels.txt"
local function photo(name) return SHARED .. "/images/" .. name .. ".png" end

-- { picture in docs/img, recipe, parameters (besides out), the output file it copies [, prepare =
-- function() that makes the run's input files] }, or { picture, shell = script, output = file }: a shell
-- script run as `sh script DIR DIR/file` that makes several runs under DIR and writes the picture (a
-- screenshot); its record takes the code and inputs of every run under DIR.
local JPEG = "out/docs_img/chelsea.jpg" -- a phone-like JPEG of chelsea.png, for the `lumen explain` picture
local PICTURES = {
  { "demo.png", "recipes/demo.lua", {}, "demo.png" },
  { "gradcam_cat.png", "recipes/gradcam.lua", { model = MOBILENET_V2, labels = LABELS, image = photo "cat" }, "gradcam.png" },
  { "gradcam_parrot.png", "recipes/gradcam.lua", { model = MOBILENET_V2, labels = LABELS, image = photo "parrot" }, "gradcam.png" },
  { "gradcam_dog.png", "recipes/gradcam.lua", { model = MOBILENET_V2, labels = LABELS, image = photo "dog" }, "gradcam.png" },
  { "guided_backprop_cat.png", "recipes/guided_backprop.lua", { model = MOBILENET_V2, labels = LABELS, image = photo "cat" },
    "guided.png" },
  { "occlusion_cat.png", "recipes/occlusion.lua", { model = MOBILENET_V2, labels = LABELS, image = photo "cat", patch = 48,
    stride = 16 }, "occlusion.png" },
  { "lime_cat.png", "recipes/lime.lua", { model = MOBILENET_V2, labels = LABELS, image = photo "cat", segments = 50,
    num_samples = 500 }, "lime.png" },
  { "lrp_cat.png", "recipes/lrp.lua", { model = MOBILENET_V1_ONNX, preset = "tflite", labels = LABELS,
    image = photo "cat" }, "lrp.png" },
  { "deepdream_sunflower.png", "recipes/deepdream.lua", { model = MOBILENET_V1_ONNX, preset = "tflite",
    labels = LABELS, image = photo "sunflower", layer = "/27/Clip_output_0", size = 320 }, "deepdream.png" },
  { "deconv.png", "recipes/deconv.lua", {}, "deconv.png" },
  { "class_model.png", "recipes/class_model.lua", {}, "class_model.png" },
  { "faithfulness.png", "recipes/faithfulness.lua", {}, "faithfulness.png" },
  { "sanity_checks.png", "recipes/sanity_checks.lua", {}, "sanity_checks.png" },
  { "cam_family_cat.png", "recipes/cam_family.lua", { model = MOBILENET_V2, labels = LABELS, image = photo "cat" },
    "cam_family.png" },
  { "permutation_importance.png", "recipes/permutation_importance.lua", {}, "permutation_importance.png" },
  { "explain_chelsea.png", "lua/lumen/cli/explain.lua", { method = "gradcam,integrated_gradients,occlusion",
    model = MOBILENET_V1_ONNX, input = JPEG, preset = "tflite", labels = LABELS, baseline = "blur", patch = 24,
    stride = 8 }, "compare.png",
    prepare = function()
      local img = assert(lumen.image.load(at_root(photo "chelsea")))
      lumen.mkdir(at_root("out/docs_img"))
      assert(lumen.image.save(img, at_root(JPEG), { quality = 90 }))
    end },
  { "report.png", shell = "tools/report_screenshot.sh", output = "report.png" },
  { "vit_attention.png", "recipes/vit_attention.lua", {}, "vit_attention.png" },
  { "text_transformer.png", shell = "tools/text_screenshot.sh", output = "text_transformer.png" },
}

-- Lua files that write manifests and check pictures, not pictures: their changes make nothing stale.
local MACHINERY = { ["lumen/util.lua"] = true, ["lumen/json.lua"] = true, ["lumen/runs.lua"] = true,
                    ["lumen/compare.lua"] = true, ["lumen/gradcheck.lua"] = true }

local read = runs.read_file -- the bytes of a file, or nil

local function write(path, s)
  local f = assert(io.open(path, "wb"))
  f:write(s)
  f:close()
end

-- The command line of a picture (run from the repository root, out= added by the tool).
local function command(entry)
  if entry.shell then return "sh " .. entry.shell end
  local kv = {}
  for k, v in pairs(entry[3]) do kv[#kv + 1] = ("%s=%s"):format(k, tostring(v)) end
  table.sort(kv)
  return table.concat({ "lumen run", entry[2], table.unpack(kv) }, " ")
end

local function stem(entry) return (entry[1]:gsub("%.png$", "")) end

-- The manifests of every run under dir, merged into one: the shell script as the script, the union of
-- the runs' inputs and code, the first run's environment.
local function merged_manifest(entry, dir)
  local m = { script = { sha256 = core.sha256_file(at_root(entry.shell)) }, inputs = {}, code = {} }
  runs.walk(dir, function(rel)
    if rel:match("([^/]+)$") == runs.MANIFEST then
      local r = runs.read(dir .. "/" .. rel)
      m.environment = m.environment or r.environment
      for k, v in pairs(r.inputs or {}) do m.inputs[k .. "@" .. rel] = v end
      for k, v in pairs(r.code or {}) do m.code[k] = v end
    end
  end)
  return m
end

-- Runs a picture's recipe (or shell script) into out/docs_img/<stem> (or dir) and returns the folder and
-- its manifest.
local function make(entry, dir)
  dir = dir or ("out/docs_img/" .. stem(entry))
  local words
  if entry.shell then
    -- the last picture goes first: a script whose run writes into dir would take it for another run's file
    os.remove(at_root(dir .. "/" .. entry.output))
    words = { "sh", q(entry.shell), q(dir), q(dir .. "/" .. entry.output) }
  else
    if entry.prepare then entry.prepare() end
    words = { q(core.exe_path()), "run", q(entry[2]), q("out=" .. dir), "overwrite=true" }
    for k, v in pairs(entry[3]) do words[#words + 1] = q(k .. "=" .. tostring(v)) end
  end
  lumen.mkdir(at_root("out/docs_img"))
  local log = "out/docs_img/" .. stem(entry) .. ".log"
  local t0 = core.now()
  local ok = os.execute(("cd %s && LUMEN_QUIET=1 LUMEN=%s %s > %s 2>&1"):format(q(root), q(core.exe_path()),
    table.concat(words, " "), q(log)))
  if not ok then error(("%s: %s failed; see %s\n%s"):format(entry[1], command(entry), log, read(at_root(log)) or ""), 0) end
  local m = entry.shell and merged_manifest(entry, at_root(dir)) or runs.read(at_root(dir) .. "/manifest.json")
  return at_root(dir), m, core.now() - t0
end

-- The record of a picture made by a run with manifest m.
local function record(entry, m, picture_sha)
  local r = { command = command(entry), sha256 = picture_sha, script_sha256 = m.script.sha256, inputs = {}, code = {},
              environment = m.environment, output = entry[4] or entry.output }
  for name, inp in pairs(m.inputs or {}) do r.inputs[name] = { path = inp.path, sha256 = inp.sha256 } end
  for file, sha in pairs(m.code or {}) do
    if not MACHINERY[file] then r.code[file] = sha end
  end
  return r
end

local records_path = at_root(p.docs .. "/pictures.json")
local records = {}
do
  local text = read(records_path)
  if text then records = lumen.json.decode(text) end
end
local wanted = {}
for name in p.only:gmatch("[^,%s]+") do wanted[name] = true end
local recompute = {}
for name in p.recompute:gmatch("[^,%s]+") do recompute[name] = true end
local known = {}
for _, e in ipairs(PICTURES) do known[e[1]] = true end
for name in pairs(wanted) do
  if not known[name] then error(("only=%s: no such picture (see the list in tools/make_docs_img.lua)"):format(name), 0) end
end
for name in pairs(recompute) do
  if not known[name] then error(("recompute=%s: no such picture"):format(name), 0) end
end

if not p.check then
  for _, e in ipairs(PICTURES) do
    if not next(wanted) or wanted[e[1]] then
      io.write(("%-28s %s ... "):format(e[1], command(e)))
      io.flush()
      local dir, m, secs = make(e)
      local out = e[4] or e.output
      local bytes = assert(read(dir .. "/" .. out), dir .. "/" .. out .. " missing")
      local target = at_root(p.docs .. "/" .. e[1])
      local before = core.sha256_file(target)
      write(target, bytes)
      records[e[1]] = record(e, m, core.sha256(bytes))
      write(records_path, lumen.json.encode(records, "  ") .. "\n") -- after each: a failure keeps the others
      io.write(("%.1f s, %s\n"):format(secs, before == core.sha256(bytes) and "unchanged" or "NEW PICTURE"))
    end
  end
  print("wrote " .. records_path)
  return
end

-- check=true: is every picture current?
local stale, skipped, unverifiable = {}, 0, {}
local hashed = {} -- path -> sha256 or false: each file is hashed once
local function sha_here(path)
  if hashed[path] == nil then hashed[path] = runs.current_sha256(at_root(path)) or false end
  return hashed[path] or nil
end
for _, name in ipairs(core.listdir(at_root(p.docs)) or {}) do
  if name:match("%.png$") and not known[name] then
    stale[#stale + 1] = ("%s: in %s but tools/make_docs_img.lua does not know how it is made"):format(name, p.docs)
  end
end
for _, e in ipairs(PICTURES) do
  local name, r = e[1], records[e[1]]
  local why = {}
  if not r then
    why[#why + 1] = "no record in pictures.json"
  else
    if core.sha256_file(at_root(p.docs .. "/" .. name)) ~= r.sha256 then why[#why + 1] = "the picture is not the one recorded" end
    if r.command ~= command(e) then why[#why + 1] = ("made by '%s', now '%s'"):format(r.command, command(e)) end
    local script = e.shell or e[2]
    if sha_here(script) ~= r.script_sha256 then why[#why + 1] = script .. " changed" end
    for file, sha in pairs(r.code or {}) do
      if sha_here("lua/" .. file) ~= sha then why[#why + 1] = "lua/" .. file .. " changed" end
    end
    for input, rec in pairs(r.inputs or {}) do
      local now = sha_here(rec.path)
      if now == nil then skipped = skipped + 1
      elseif now ~= rec.sha256 then why[#why + 1] = ("input %s (%s) changed"):format(input, rec.path) end
    end
  end
  if #why == 0 and recompute[name] then
    local tmp = assert(core.mkdtemp("lumen_docs_img_"))
    local ok, dir, m = pcall(make, e, tmp .. "/run")
    if not ok then
      why[#why + 1] = "recomputing failed: " .. tostring(dir)
    else
      local env_same = true
      for _, f in ipairs(runs.ENV_FIELDS) do
        if tostring((m.environment or {})[f]) ~= tostring((r.environment or {})[f]) then env_same = false end
      end
      local c = compare.files(at_root(p.docs .. "/" .. name), dir .. "/" .. (e[4] or e.output))
      if not c.same and env_same then
        why[#why + 1] = "made again in the recorded environment, it differs: " .. c.detail
      elseif not c.close then
        unverifiable[#unverifiable + 1] = ("%s: made again under another environment it differs (%s)"):format(name, c.detail)
      end
    end
    os.execute("rm -rf " .. q(tmp))
  end
  if #why > 0 then stale[#stale + 1] = name .. ": " .. table.concat(why, "; ") end
end
for _, u in ipairs(unverifiable) do print("unverifiable here: " .. u) end
if #stale > 0 then
  for _, s in ipairs(stale) do print("STALE " .. s) end
  print(("%d of %d pictures in %s are stale: run tools/make_docs_img.sh"):format(#stale, #PICTURES, p.docs))
  os.exit(1)
end
print(("all %d pictures in %s are current%s"):format(#PICTURES, p.docs,
  skipped > 0 and (" (%d recorded inputs absent here were not checked)"):format(skipped) or ""))
