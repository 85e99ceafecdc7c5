-- Learning-rate schedules: functions of training progress e (in epochs, from 0; fractional within an
-- epoch) returning the rate. optim.fit calls them before every batch.
local M = {}

-- step(lr, step_size, gamma = 0.1): lr * gamma^floor(e / step_size).
function M.step(lr, step_size, gamma)
  gamma = gamma or 0.1
  return function(e) return lr * gamma ^ math.floor(e / step_size) end
end

-- cosine(lr, total, min_lr = 0): min_lr + (lr - min_lr) * (1 + cos(pi * e / total)) / 2.
function M.cosine(lr, total, min_lr)
  min_lr = min_lr or 0
  return function(e) return min_lr + (lr - min_lr) * (1 + math.cos(math.pi * math.min(e, total) / total)) / 2 end
end

return M
