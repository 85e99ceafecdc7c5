-- nn.LSTM and nn.GRU{input_size, hidden_size, num_layers = 1, bias = true, batch_first = true,
-- dropout = 0, bidirectional = false, return_sequences = true}: stacked recurrent layers, as torch.nn.LSTM
-- and torch.nn.GRU (same gates, same initialisation U(-1/sqrt(H), 1/sqrt(H))), over lumen.lstm /
-- lumen.gru (C kernels, backpropagation through time). Unlike PyTorch, batch_first defaults to true.
--
-- forward(x [, opts]) -> y: x (N, T, input_size) (or (T, N, input_size) with batch_first = false);
-- y (N, T, D * hidden_size) with D = 2 when bidirectional (forward and backward halves side by side),
-- or with return_sequences = false the last hidden state (N, D * hidden_size) of the last layer (the
-- backward direction's is the one after the first step), which is what a classifier reads.
-- opts.h0 (and for the LSTM opts.c0): initial states (num_layers * D, N, hidden_size), zeros if omitted;
-- in a Graph they may be the second and third inputs. dropout applies to each layer's output except the
-- last while training.
--
-- A composite (nn.Composite): one child per layer, "<name>.layer1", "<name>.layer2", ... (type LSTMLayer /
-- GRULayer, shown as LSTM / GRU in summaries), each returning y and {h =, c =} (its final states
-- (D, N, hidden_size), capturable as "<name>.layer1:h"). Tensor names map to PyTorch's: layerK.weight_ih
-- = weight_ih_l{K-1}, ..._reverse = ..._l{K-1}_reverse, likewise weight_hh, bias_ih, bias_hh.
local lumen = require "lumen"
local Module = require "lumen.nn.module"
local Composite = require "lumen.nn.composite"

local M = {}

---------------------------------------------------------------- one layer, one or two directions

-- The layer class: {input_size, hidden_size, bias = true, bidirectional = false, batch_first = true,
-- reverse = false (one direction, run from the last step), linear_before_reset = true (GRU; false is
-- ONNX's default form), onnx_layout = false}. With onnx_layout (what the ONNX importer builds) the output
-- is ONNX's Y (T, D, N, H) and the states (D, N, H), or with batch_first (ONNX's layout 1) (N, T, D, H)
-- and (N, D, H).
local function layer_class(type_name, keras, gates, cell)
  local L = Module.class(type_name, { keras = keras, prefix = keras:lower() })
  L.extras = cell == "lstm" and { "h", "c" } or { "h" } -- the final states, capturable as "<name>:h"
  function L:init(c)
    Composite.check_options(type_name, c, { "input_size", "hidden_size", "bias", "bidirectional", "batch_first",
      "reverse", "linear_before_reset", "onnx_layout" })
    local I, H = self:need(c, "input_size"), self:need(c, "hidden_size")
    self.hidden_size, self.bidirectional, self.batch_first = H, c.bidirectional == true, c.batch_first ~= false
    self.linear_before_reset = c.linear_before_reset ~= false
    self.reverse, self.onnx_layout = c.reverse == true and not self.bidirectional, c.onnx_layout == true
    for _, suffix in ipairs(self.bidirectional and { "", "_reverse" } or { "" }) do
      self:register("weight_ih" .. suffix, Module.uniform({ gates * H, I }, H))
      self:register("weight_hh" .. suffix, Module.uniform({ gates * H, H }, H))
      if c.bias ~= false then
        self:register("bias_ih" .. suffix, Module.uniform({ gates * H }, H))
        self:register("bias_hh" .. suffix, Module.uniform({ gates * H }, H))
      end
    end
  end

  -- forward(x [, h0 [, c0]]) -> y, {h = (D, N, H), c = (D, N, H)}
  function L:forward(x, h0, c0)
    local onnx_first = self.onnx_layout and self.batch_first -- states (N, D, H)
    local xt = self.batch_first and lumen.transpose(x, 1, 2) or x -- (T, N, I)
    local ys, hs, cs = {}, {}, {}
    for d, suffix in ipairs(self.bidirectional and { "", "_reverse" } or { "" }) do
      local function state(t) return t and lumen.select(t, onnx_first and 2 or 1, d) end
      local args = { xt, self["weight_ih" .. suffix], self["weight_hh" .. suffix], self["bias_ih" .. suffix],
                     self["bias_hh" .. suffix], state(h0) }
      local opts = { reverse = d == 2 or self.reverse }
      if cell == "lstm" then
        ys[d], hs[d], cs[d] = lumen.lstm(args[1], args[2], args[3], args[4], args[5], args[6], state(c0), opts)
      else
        opts.linear_before_reset = self.linear_before_reset
        ys[d], hs[d] = lumen.gru(args[1], args[2], args[3], args[4], args[5], args[6], opts)
      end
    end
    local h, c = lumen.stack(hs, 1), cell == "lstm" and lumen.stack(cs, 1) or nil -- (D, N, H)
    if self.onnx_layout then
      local y = lumen.stack(ys, 2) -- (T, D, N, H)
      if not onnx_first then return y, { h = h, c = c } end
      return lumen.permute(y, { 3, 1, 2, 4 }), { h = lumen.transpose(h, 1, 2), c = c and lumen.transpose(c, 1, 2) }
    end
    local y = #ys == 1 and ys[1] or lumen.cat(ys, 3) -- (T, N, D * H)
    if self.batch_first then y = lumen.transpose(y, 1, 2) end
    return y, { h = h, c = c }
  end
  return L
end

M.LSTMLayer = layer_class("LSTMLayer", "LSTM", 4, "lstm")
M.GRULayer = layer_class("GRULayer", "GRU", 3, "gru")

---------------------------------------------------------------- stacked

local function stack_class(type_name, Layer, cell)
  local S = Module.class(type_name, { parent = Composite, prefix = type_name:lower() })
  function S:init(c)
    Composite.check_options(type_name, c, { "input_size", "hidden_size", "num_layers", "bias", "batch_first",
      "dropout", "bidirectional", "return_sequences" })
    local I, H = self:need(c, "input_size"), self:need(c, "hidden_size")
    local L = c.num_layers or 1
    if math.type(L) ~= "integer" or L < 1 then
      error(("%s: num_layers must be a positive integer, got %s"):format(type_name, tostring(c.num_layers)), 3)
    end
    self.p = c.dropout or 0
    if type(self.p) ~= "number" or self.p < 0 or self.p >= 1 then
      error(("%s: dropout must be in [0, 1), got %s"):format(type_name, tostring(c.dropout)), 3)
    end
    self.num_layers, self.hidden_size = L, H
    self.dirs = c.bidirectional == true and 2 or 1
    self.batch_first, self.return_sequences = c.batch_first ~= false, c.return_sequences ~= false
    self:begin()
    for l = 1, L do
      self:add("layer" .. l, Layer { input_size = l == 1 and I or self.dirs * H, hidden_size = H, bias = c.bias,
                                     bidirectional = c.bidirectional == true, batch_first = self.batch_first })
    end
  end

  -- The initial states of layer l: rows (l - 1) * D + 1 .. l * D of (L * D, N, H).
  local function rows(t, l, D)
    if t == nil then return nil end
    return lumen.narrow(t, 1, (l - 1) * D + 1, D)
  end

  function S:_steps(ctx, x, h0, c0)
    local o = self._opts or {}
    h0, c0 = h0 or o.h0, c0 or o.c0
    if c0 and cell ~= "lstm" then error(type_name .. ": has no cell state (c0)", 0) end
    local D, H, want = self.dirs, self.hidden_size, self.num_layers * self.dirs
    for _, st in ipairs { h0 or false, c0 or false } do
      if st and (st:dim() ~= 3 or st:size(1) ~= want or st:size(3) ~= H) then
        error(("%s: initial states must be (%d, N, %d), got %s"):format(type_name, want, H, lumen.shape_str(st)), 0)
      end
    end
    for l = 1, self.num_layers do
      x = self:run_child(ctx, "layer" .. l, x, rows(h0, l, D), rows(c0, l, D))
      if l < self.num_layers and self.p > 0 then x = lumen.dropout(x, self.p, self.training) end
    end
    if self.return_sequences then return x end
    local td = self.batch_first and 2 or 1 -- the time dimension
    local T = x:size(td)
    local last = lumen.select(lumen.narrow(x, 3, 1, H), td, T)
    if D == 1 then return last end
    return lumen.cat({ last, lumen.select(lumen.narrow(x, 3, H + 1, H), td, 1) }, 2)
  end
  return S
end

M.LSTM = stack_class("LSTM", M.LSTMLayer, "lstm")
M.GRU = stack_class("GRU", M.GRULayer, "gru")

return M
