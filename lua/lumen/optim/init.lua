-- lumen.optim: optimizers (SGD, Adam), learning-rate schedules and the classifier training loop.
--   local opt = optim.Adam(model, {lr = 1e-3}); opt:zero_grad(); loss:backward(); opt:step()
--   optim.fit(model, {X = X, y = y}, {epochs = 2, batch_size = 64, optimizer = opt})
--   local loss, acc = optim.evaluate(model, Xtest, ytest, {batch_size = 256})
local schedule = require "lumen.optim.schedule"
local fit = require "lumen.optim.fit"

return {
  SGD = require "lumen.optim.sgd",
  Adam = require "lumen.optim.adam",
  step_schedule = schedule.step,     -- (lr, step_size, gamma) -> fn(epoch progress) -> lr
  cosine_schedule = schedule.cosine, -- (lr, total_epochs, min_lr) -> fn(epoch progress) -> lr
  fit = fit.fit,
  evaluate = fit.evaluate,
}
