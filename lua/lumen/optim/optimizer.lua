-- The optimizer base: holds the trainable parameters, zero_grad() and step(). A subclass defines
-- init(opts) and update(i, p, g) -> new value of parameter i (p and g are tensors; the result is
-- copied into p in place, so modules keep their tensors). step() runs without recording gradients.
local lumen = require "lumen"

local Optimizer = {}
Optimizer.__index = Optimizer

function Optimizer.class()
  local cls = setmetatable({}, { __index = Optimizer, __call = function(c, params, o) return c.new(c, params, o) end })
  cls.__index = cls
  return cls
end

function Optimizer.new(cls, params, o)
  o = o or {}
  if type(params) == "table" and params.parameters then params = params:parameters() end
  local list = {}
  for _, p in ipairs(params or {}) do
    if p.trainable ~= false then list[#list + 1] = p.tensor or p end
  end
  local opt = setmetatable({ params = list, lr = o.lr or (cls.default_lr or 1e-3) }, cls)
  opt:init(o)
  return opt
end

function Optimizer:zero_grad()
  for _, p in ipairs(self.params) do p:zero_grad() end
end

function Optimizer:begin_step() end

function Optimizer:step()
  lumen.no_grad(function()
    self:begin_step()
    for i, p in ipairs(self.params) do
      local g = p.grad
      if g then p:copy_(self:update(i, p, g)) end
    end
  end)
end

return Optimizer
