-- lumen.recipe: what recipes share — loading the model and one input the same way everywhere, and
-- writing pictures, raw values (.npy) and the manifest with every file checked and registered.
-- Inputs: `image=photo.jpg` (PNG or JPEG, preprocessed as the model file records or as preset= and the
-- other image keys say; see recipe.image_args), or, for the shipped Fashion-MNIST CNN, `index=k` into
-- the Fashion-MNIST test set from Debian's dataset-fashion-mnist.
local lumen = require "lumen"
local models = require "lumen.models"

local M = {}

M.FASHION_DIR = "/usr/share/datasets/fashion-mnist" -- where Debian's dataset-fashion-mnist puts it
M.FASHION_MODEL = "data/models/fashion_cnn.lumen"

-- The keys every image recipe (and `lumen explain`) takes, as lumen.args defaults meaning "not given":
-- preset, size, crop, resize, mean, std, scale (lumen.image.input_spec) and label_offset.
M.IMAGE_KEYS = { preset = "", size = "", crop = "", resize = "", mean = "", std = "", scale = "", label_offset = 0 }

-- image_args(defaults) -> defaults with the image keys added, for lumen.args:
--   local p = lumen.args(recipe.image_args { model = ..., image = "", target = "", ... })
function M.image_args(defaults)
  local t = {}
  for k, v in pairs(M.IMAGE_KEYS) do t[k] = v end
  for k, v in pairs(defaults) do t[k] = v end
  return t
end

-- The preprocessing keys of the parameters p (what lumen.image.input_spec takes).
function M.image_opts(p)
  local o = {}
  for k in pairs(M.IMAGE_KEYS) do
    if k ~= "label_offset" then o[k] = p[k] end
  end
  return o
end

-- The Fashion-MNIST test set (cached per folder): images (N, 1, 28, 28), labels (N) 1-based. Its files are
-- declared inputs of the run on every call, so each run's manifest hashes them (lumen.begin_run, between
-- the runs of lumen batch, forgets the inputs; the cache stays).
local test_sets = {}
function M.fashion_test(dir)
  dir = dir or M.FASHION_DIR
  for _, f in ipairs(lumen.core.listdir(dir) or {}) do
    if f:match("^t10k%-") then lumen.input(dir .. "/" .. f, "fashion-mnist/" .. f) end
  end
  if not test_sets[dir] then
    local X, y = lumen.data.load_mnist(dir, "test")
    test_sets[dir] = { X = X, y = y }
  end
  return test_sets[dir].X, test_sets[dir].y
end

-- A parameter's "not set" values ("" and 0) as nil: `layer = recipe.opt(p.layer)`.
function M.opt(v)
  if v == "" or v == 0 then return nil end
  return v
end

-- A comma-separated list of integers ("1,2,3") as a Lua array.
function M.ints(s)
  local t = {}
  for v in tostring(s):gmatch("[^,%s]+") do
    t[#t + 1] = math.tointeger(tonumber(v)) or error(("'%s' is not an integer in '%s'"):format(v, s), 2)
  end
  return t
end

-- The labels of p.labels (a file; "" = none) or the ones the model file records, checked against the
-- model's class count (from x, or a probe input) with p.label_offset: the wrong length is an error
-- naming both counts.
function M.attach_labels(model, p, x)
  local given = p.labels and p.labels ~= ""
  local offset = p.label_offset or 0
  if not given and not model.labels then
    if offset ~= 0 then error(("label_offset=%s: there are no labels to offset (give labels=FILE)"):format(offset), 0) end
    return model
  end
  local lines = model.labels
  if given then
    local err
    lines, err = lumen.labels(p.labels)
    if not lines then error("labels=" .. p.labels .. ": " .. tostring(err), 0) end
  end
  model.labels = models.check_labels(lines, models.classes(model, x), { offset = offset,
    path = given and p.labels or (p.model .. "'s recorded labels"), model = p.model })
  return model
end

-- load_model(p) -> the model of p.model with its labels (p.labels, p.label_offset; see attach_labels).
function M.load_model(p)
  return M.attach_labels(lumen.load_model(p.model), p)
end

-- load(p) -> model, img (C, H, W) as the model sees it (resized and cropped, in [0, 1]), x (1, C, H, W)
-- as the model takes it, the true label or nil. A photo when p.image is set: PNG or JPEG, preprocessed
-- by lumen.models.input_spec (the file's record or p.preset and the other image keys; model.input_spec
-- becomes that spec); otherwise Fashion-MNIST test image p.index (1-based), where image keys are an error.
function M.load(p)
  if p.image and p.image ~= "" then
    local model = lumen.load_model(p.model)
    local spec = models.input_spec(model, M.image_opts(p), p.model)
    local img, err = lumen.image.load(p.image)
    if not img then error(err, 0) end
    model.input_spec = spec
    local x, shown = lumen.image.preprocess(img, spec)
    M.attach_labels(model, p, x)
    return model, shown, x, nil
  end
  for k, v in pairs(M.image_opts(p)) do
    if v ~= nil and v ~= "" then error(("%s=%s applies to photos (image=); the test images are used as they are"):format(k, v), 0) end
  end
  local model = M.load_model(p)
  local X, y = M.fashion_test()
  local n, i = X.shape[1], p.index
  if math.type(i) ~= "integer" or i < 1 then error(("index=%s: images are numbered from 1"):format(tostring(i)), 0) end
  if i > n then error(("index=%d: the test set has %d images"):format(i, n), 0) end
  local x = X:narrow(1, i, 1)
  return model, x:squeeze(1), x, y:get { i }
end

-- target(model, p [, x]) -> the class p.target names (an id or a label name, "" = the top class: nil).
function M.target(model, p, x)
  local t = p.target
  if t == nil or t == "" or t == 0 then return nil end
  -- an id above the class count is caught by the method's own target check, before its main work:
  -- no extra pass here to count the classes
  return models.class_id(model, t, model.labels and #model.labels or nil)
end

-- text(p, model) -> {ids = (1, L) int64, tokens, vocab, notes, unknown}: p.text for a text model, through
-- p.vocab or the vocabulary file its input_spec names (next to p.model). ids are padded with <pad> to the
-- model's length L; tokens are those the model reads (the first L), unknown the positions of the ones
-- outside the vocabulary, notes what the picture should say (a text cut to L tokens).
function M.text(p, model)
  local vocab_path = M.opt(p.vocab) or (p.model:match("^(.*)/[^/]*$") or ".") .. "/" .. model.input_spec.vocabulary
  local vocab = assert(lumen.data.load_vocabulary(vocab_path))
  local tokens = lumen.data.tokenize(p.text)
  local L = model.input_spec.length
  local t = { vocab = vocab, ids = lumen.tensor({ vocab:encode(tokens, L) }, "int64"), notes = {}, unknown = {} }
  if #tokens > L then t.notes[1] = ("The text has %d tokens; the model reads the first %d."):format(#tokens, L) end
  t.tokens = { table.unpack(tokens, 1, math.min(#tokens, L)) }
  for i, tok in ipairs(t.tokens) do if not vocab.index[tok] then t.unknown[#t.unknown + 1] = i end end
  return t
end

-- prediction(model, x, target) -> "prediction: NAME (class c), score s, probability p %", the score, the
-- label: the model's logit and softmax probability for class `target` of input x (batch of 1).
function M.prediction(model, x, target)
  local name = M.label(model, target)
  local logits = lumen.no_grad(model.forward, model, x, { logits = true })
  local score, prob = logits:get { 1, target }, lumen.softmax(logits, 2):get { 1, target }
  return ("prediction: %s (class %d), score %.3g, probability %.1f %%"):format(name, target, score, 100 * prob), score,
    name
end

-- The picture (C, H, W) in [0, 1] of a model input (1, C, H, W): model.input_spec's scaling undone.
function M.to_image(model, x)
  return lumen.image.unprocess(x, model.input_spec)
end

-- The class name of a 1-based class id, or its number; short: only up to the first comma (captions).
function M.label(model, c, short)
  local name = (model.labels and model.labels[c]) or tostring(c)
  return short and name:match("^[^,]*") or name
end

-- path(dir, name): creates dir, registers name for the manifest, returns dir/name.
function M.path(dir, name)
  lumen.mkdir(dir)
  return lumen.output(dir, name)
end

-- Writes a picture (C, H, W) / a tensor as dir/name, raising "path: reason" on failure.
function M.save_png(dir, name, img)
  local ok, err = lumen.image.save(img, M.path(dir, name))
  if not ok then error(err, 2) end
end
function M.save_npy(dir, name, t)
  local ok, err = lumen.write_npy(M.path(dir, name), t)
  if not ok then error(err, 2) end
end

-- Writes <name>.png (lumen.viz.map_panel: input | map | overlay, opts as there) and <name>.npy (the map
-- as given) into dir.
function M.save_map(dir, name, img, map, opts)
  M.save_png(dir, name .. ".png", lumen.viz.map_panel(img, map, opts))
  M.save_npy(dir, name .. ".npy", map)
end

-- finish(p, info): writes p.out/manifest.json (info; the model and other input files are hashed there)
-- and says where.
function M.finish(p, info)
  info = info or {}
  lumen.manifest(p.out, info)
  print("wrote " .. p.out)
  if p.report then print("wrote " .. require("lumen.report").write(p.out)) end -- report=true (lumen.args)
end

return M
