-- optim.fit(model, data, opts) and optim.evaluate(model, X, y, opts): the training loop for classifiers.
--   data = {X = inputs (N, ...), y = int64 class ids (N)} (or {X, y})
--   opts: epochs = 1, batch_size = 64, optimizer = Adam(model) (or any optim object), loss = "cross_entropy"
--         (or "nll_loss", or a function(output, y) -> scalar), schedule = fn(epoch progress) -> lr,
--         shuffle = true, progress = true (a bar per epoch on stderr: batch, loss, accuracy, ETA),
--         validation = {X =, y =} (evaluated after each epoch), max_batches (stop early, for tests).
-- fit returns the history {loss = {...}, accuracy = {...}, val_loss =, val_accuracy =} per epoch.
local lumen = require "lumen"
local Adam = require "lumen.optim.adam"

local M = {}

local function loss_fn(loss)
  if type(loss) == "function" then return loss end
  loss = loss or "cross_entropy"
  local f = lumen[loss]
  if loss ~= "cross_entropy" and loss ~= "nll_loss" or type(f) ~= "function" then
    error(("fit: unknown loss '%s' (cross_entropy, nll_loss or a function)"):format(tostring(loss)), 3)
  end
  return f
end

-- Number of rows where argmax(output) == y.
local function correct(out, y)
  local pred = lumen.argmax(out, 2)
  local n = 0
  for i = 1, y:numel() do
    if pred:flat_get(i) == y:flat_get(i) then n = n + 1 end
  end
  return n
end

local function unpack_data(data)
  local X, y = data.X or data[1], data.y or data[2]
  if not (lumen.is_tensor(X) and lumen.is_tensor(y)) then error("fit: data must be {X = tensor, y = tensor}", 3) end
  return X, y
end

function M.evaluate(model, X, y, opts)
  opts = opts or {}
  local f = loss_fn(opts.loss)
  local was = model.training
  model:eval()
  local total, right, n = 0, 0, X:size(1)
  lumen.no_grad(function()
    for xb, yb in lumen.data.batches(X, y, opts.batch_size or 256) do
      local out = model:forward(xb)
      total = total + f(out, yb):item() * yb:size(1)
      right = right + correct(out, yb)
    end
  end)
  model:train(was)
  return total / n, right / n
end

function M.fit(model, data, opts)
  opts = opts or {}
  local X, y = unpack_data(data)
  local f = loss_fn(opts.loss)
  local epochs, bs = opts.epochs or 1, opts.batch_size or 64
  local opt = opts.optimizer or Adam(model)
  local hist = { loss = {}, accuracy = {}, val_loss = {}, val_accuracy = {} }
  local nb = (X:size(1) + bs - 1) // bs
  if opts.max_batches then nb = math.min(nb, opts.max_batches) end
  for e = 1, epochs do
    model:train()
    local bar = opts.progress ~= false and lumen.progress and lumen.progress(nb, ("epoch %d/%d"):format(e, epochs))
    local sum, right, seen = 0, 0, 0
    for xb, yb, k in lumen.data.batches(X, y, bs, { shuffle = opts.shuffle ~= false }) do
      if k > nb then break end
      if opts.schedule then opt.lr = opts.schedule(e - 1 + (k - 1) / nb) end
      opt:zero_grad()
      local out = model:forward(xb)
      local loss = f(out, yb)
      loss:backward()
      opt:step()
      local m = yb:size(1)
      sum, seen = sum + loss:item() * m, seen + m
      right = right + correct(out, yb)
      if bar then bar:update(k, ("loss %.4f acc %.4f"):format(sum / seen, right / seen)) end
    end
    hist.loss[e], hist.accuracy[e] = sum / seen, right / seen
    local text = ("loss %.4f acc %.4f"):format(sum / seen, right / seen)
    if opts.validation then
      local vl, va = M.evaluate(model, opts.validation.X or opts.validation[1], opts.validation.y or opts.validation[2],
        { batch_size = opts.batch_size, loss = opts.loss })
      hist.val_loss[e], hist.val_accuracy[e] = vl, va
      text = text .. (" val_loss %.4f val_acc %.4f"):format(vl, va)
    end
    if bar then bar:done(text) end
  end
  return hist
end

return M
