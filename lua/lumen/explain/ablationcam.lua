-- Ablation-CAM (Desai & Ramaswamy 2020, "Ablation-CAM: Visual Explanations for Deep Convolutional Network
-- via Gradient-free Localization"), gradient-free. The weight of channel k of a layer's activations
-- A (N, K, h, w) is the relative drop of the target score y_c when that channel is set to `fill` (0, as in
-- the paper): w_k = (y_c - y_c^k) / y_c, and the map is ReLU(sum_k w_k A^k). For token layers a channel is
-- ablated in every token (the class token too), as pytorch-grad-cam's AblationLayerVit does.
-- The ablated activations go in through model:forward's replace: only the layers after the target layer
-- run (and what a graph still needs from before it, e.g. a residual branch), K copies per sample in
-- batches, with a progress bar when there are many. pytorch-grad-cam ablates to 0 when the layer's
-- minimum is 0 (after a ReLU) and to that minimum - 1e7 otherwise; lumen uses fill whatever the layer.
-- A target score of exactly 0 leaves the relative drop undefined: an error (probabilities = true avoids it).
-- opts: target = each sample's top class; layer = the last (N, C, h, w) output with h, w > 1; reshape =
--       {h, w} for token layers and layout = 'nchw' | 'nhwc' | 'tokens' as for gradcam; batch_size = 32
--       ablated copies per forward; fill = 0 (the ablation value); raw = false (true: the first return is
--       the raw map (N, 1, h, w)); probabilities = false.
-- Returns the map (upsampled to the input and normalised to [0, 1] per sample, or raw), the targets (a Lua
-- array), the layer name, the raw map, the upsampled map, then the weights w (N, K) and the ablated scores
-- y_c^k (N, K).
local lumen = require "lumen"
local common = require "lumen.explain.common"

local M = {}

local OPTIONS = common.cam_options("ablationcam", {
  batch_size = { 32, "integer >= 1" }, fill = { 0, "number" }, raw = { false, "boolean" },
})

function M.ablationcam(model, x, opts)
  local o = OPTIONS(opts, model)
  local A, _, targets, layer, form, out, base = common.cam_pass(model, x, o, "ablationcam", false)
  local N, K = A.shape[1], A.shape[2]
  local ablated, weights = lumen.zeros { N, K }, lumen.zeros { N, K }
  local cd = form.channel -- the channel dim of the layer's own output
  for i = 1, N do
    local c = targets[i]
    local y = base:get { i, c }
    if y == 0 then
      error(("ablationcam: the target score of sample %d is 0, so its relative drop is undefined (try "
        .. "probabilities = true)"):format(i), 2)
    end
    local oi, xi = out:narrow(1, i, 1), x:narrow(1, i, 1)
    common.batches(K, o.batch_size, function(first, count)
      local copies = common.repeat_batch(oi, count)
      local starts, sizes = {}, copies.shape
      for d = 1, #sizes do starts[d] = 1 end
      sizes[1], sizes[cd] = 1, 1
      for j = 1, count do
        starts[1], starts[cd] = j, first + j - 1
        copies:fill_box_(starts, sizes, o.fill)
      end
      local s = lumen.no_grad(model.forward, model, common.repeat_batch(xi, count),
        { replace = { [layer] = copies }, logits = not o.probabilities })
      for j = 1, count do
        local yk = s:get { j, c }
        ablated:set({ i, first + j - 1 }, yk)
        weights:set({ i, first + j - 1 }, (y - yk) / y)
      end
    end, "ablationcam")
  end
  local raw = (A * weights:reshape { N, K, table.unpack({ 1, 1 }, 1, #A.shape - 2) }):sum(2, true):relu()
  return common.cam_result(raw, x, o, targets, layer, weights, ablated)
end

return M
