-- nn.Container: what Sequential and Graph share — naming children, running a child with errors
-- prefixed by its name and type, capture and logits options, layers(), layer(), parameters, state,
-- train/eval, summary(), save() and preprocess(). A subclass implements :_run(ctx, x) and :children().
local lumen = require "lumen"
local Module = require "lumen.nn.module"

local Container = Module.class("Container")
Container.is_container = true

-- Gives every nameless child a Keras-like name (`conv2d_1`, `dense_2`, ...) and rejects duplicates.
-- `taken` lists names already used (graph inputs).
function Container:name_children(children, taken)
  local used, count = {}, {}
  for _, n in ipairs(taken or {}) do used[n] = "input" end
  for _, m in ipairs(children) do
    if m.name then
      if used[m.name] then error(("%s: duplicate layer name '%s'"):format(self.type, m.name), 3) end
      used[m.name] = true
    end
  end
  for _, m in ipairs(children) do
    if not m.name then
      local k = (count[m.prefix] or 0) + 1
      while used[m.prefix .. "_" .. k] do k = k + 1 end
      count[m.prefix] = k
      m.name = m.prefix .. "_" .. k
      used[m.name] = true
    end
  end
end

-- Resolves modules that refer to other layers by name (MaxUnpool2d{pool = "pool1"}) within this
-- container; names a nested container cannot resolve are resolved by the enclosing one.
function Container:link()
  for _, l in ipairs(self:layers()) do
    local m = l.module
    if m.pool_name and not m.pool then m.pool = self:layer(m.pool_name) end
  end
end

local function strip_position(msg)
  if type(msg) ~= "string" then return tostring(msg) end
  return (msg:gsub("^[^\n:]+%.lua:%d+: ", ""))
end

-- Runs child m on args, prefixing any error with "name (Type): ".
function Container:call_child(m, ctx, ...)
  local ok, y = pcall(function(...)
    if m.is_container then return m:_run(ctx, ...) end
    return m:forward(...)
  end, ...)
  if not ok then error(("%s (%s): %s"):format(m.name, m.type, strip_position(y)), 0) end
  self._shapes[m.name] = lumen.is_tensor(y) and y.shape or nil
  return y
end

-- The context for a nested container: same captures and stop, logits only when asked.
function Container.sub_ctx(ctx, logits)
  return { want = ctx.want, captured = ctx.captured, logits = logits, stop = ctx.stop }
end

-- Whether the forward should end after layer `name` (opts.stop_at); marks it reached.
function Container.stops_after(ctx, name)
  local stop = ctx.stop
  if stop and (stop.reached or stop.name == name) then
    stop.reached = true
    return true
  end
  return false
end

function Container:capture(ctx, name, y)
  if ctx.want and ctx.want[name] then ctx.captured[name] = y end
end

-- Names close to `name` (edit distance <= 3 or sharing a prefix), for error messages.
local function distance(a, b)
  local prev = {}
  for j = 0, #b do prev[j] = j end
  for i = 1, #a do
    local cur = { [0] = i }
    for j = 1, #b do
      local cost = a:sub(i, i) == b:sub(j, j) and 0 or 1
      cur[j] = math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
    end
    prev = cur
  end
  return prev[#b]
end

function Container:close_names(name)
  local res = {}
  for _, l in ipairs(self:layers()) do
    if distance(name, l.name) <= 3 or l.name:find(name, 1, true) or name:find(l.name, 1, true) then
      res[#res + 1] = l.name
    end
  end
  return res
end

-- forward(x [, opts]) -> y, or y, captured when opts.capture is given. See nn_api.md.
-- opts.stop_at = name ends the pass after that layer and returns its output (layers after it never
-- run: Deep Dream uses it on inputs the rest of the network could not take).
function Container:forward(x, opts)
  local ctx = { logits = opts and opts.logits }
  local function check(n)
    if not self:layer(n) and not self:is_input(n) then
      local close = self:close_names(n)
      error(("%s: no layer named '%s'%s"):format(self.name or self.type, tostring(n),
        #close > 0 and (" (did you mean " .. table.concat(close, ", ") .. "?)") or ""), 3)
    end
  end
  if opts and opts.capture then
    ctx.want, ctx.captured = {}, {}
    for _, n in ipairs(opts.capture) do
      check(n)
      ctx.want[n] = true
    end
  end
  if opts and opts.stop_at then
    check(opts.stop_at)
    ctx.stop = { name = opts.stop_at }
  end
  local y = self:_run(ctx, x)
  if ctx.want then return y, ctx.captured end
  return y
end

function Container:is_input(name) return false end

-- layers() -> array of {name, type, shape, module}, nested containers flattened into their layers.
function Container:layers()
  local res = {}
  for _, m in ipairs(self:children()) do
    if m.is_container then
      for _, l in ipairs(m:layers()) do res[#res + 1] = l end
    else
      res[#res + 1] = { name = m.name, type = m.type, shape = self._shapes[m.name], module = m }
    end
  end
  return res
end

function Container:layer(name)
  for _, m in ipairs(self:children()) do
    if m.name == name then return m end
    if m.is_container then
      local found = m:layer(name)
      if found then return found end
    end
  end
  return nil
end

-- Collects child entries of `method` ("parameters" or "state"), nested containers' names prefixed.
local function collect(self, method)
  local res = {}
  for _, m in ipairs(self:children()) do
    local prefix = m.is_container and (m.name .. ".") or ""
    for _, p in ipairs(m[method](m)) do
      p.name = prefix .. p.name
      res[#res + 1] = p
    end
  end
  return res
end
function Container:parameters() return collect(self, "parameters") end
function Container:state() return collect(self, "state") end

-- Replaces the tensor of state name "a.b.weight" (see Module:set_state).
function Container:set_state(name, t)
  for _, m in ipairs(self:children()) do
    local n = #m.name
    if name:sub(1, n + 1) == m.name .. "." then
      local rest = name:sub(n + 2)
      if m.is_container then return m:set_state(rest, t) end
      local ok = false
      for _, k in ipairs(m._params) do ok = ok or k == rest end
      for _, k in ipairs(m._buffers) do ok = ok or k == rest end
      if ok then return m:set_state(rest, t) end
    end
  end
  error(("%s: no tensor named '%s'"):format(self.name or self.type, name), 0)
end

function Container:train(on)
  self.training = on ~= false
  for _, m in ipairs(self:children()) do m:train(on) end
  return self
end

-- The dtype the model's first layer wants ("int64" for embeddings), for summary().
function Container:input_dtype()
  local first = self:children()[1]
  if not first then return "float32" end
  if first.is_container then return first:input_dtype() end
  return first.input_dtype or "float32"
end

function Container:summary(input_shape) return require("lumen.nn.summary")(self, input_shape) end
function Container:save(path) return require("lumen.checkpoint").save(self, path) end

-- model:preprocess(img) -> (1, C, H, W) as model.input_spec says (lumen.image.preprocess).
function Container:preprocess(img)
  if not self.input_spec then error((self.name or self.type) .. ": preprocess needs model.input_spec", 2) end
  return lumen.image.preprocess(img, self.input_spec)
end

return Container
