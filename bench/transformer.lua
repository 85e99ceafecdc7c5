-- bench/transformer.lua: lumen side of the transformer bench, at 1 and 2 threads: a ViT-Ti/16 (224x224,
-- 12 layers of 3 heads, width 192, MLP 768; lumen.models.vit) forward and saliency (lumen.explain.saliency:
-- d top score / d pixels), batch 1 and 8; the shipped text transformer's shape (lumen.models.text_transformer:
-- vocabulary 8000, 100-d embedding projected to 64, 2 layers of 4 heads, 96 tokens with padding masked)
-- forward and saliency at the embedding output (d top score / d embedding output; batch 1 through
-- lumen.explain.text_saliency), batch 1 and 32. Random weights (speed does not depend on them). Run:
-- ./build/lumen run bench/transformer.lua [thread_counts=1,2 vit_batches=1,8 text_batches=1,32 reps=5 reps_big=2
-- cases=vit,text]. Twin: bench/transformer_torch.py (same shapes in torch; it reports the FLOPs).
local lumen = require "lumen"
local B = dofile(arg[0]:match("^(.*)/") .. "/benchlib.lua")

local p = B.args { thread_counts = "1,2", vit_batches = "1,8", text_batches = "1,32", reps = 5, reps_big = 2,
                   cases = "vit,text" }
local want = {}
for _, c in ipairs(B.names("cases", p.cases, { "vit", "text" })) do want[c] = true end
local VIT = "vit-ti/16 224"
local TEXT = "text transformer L=96"

-- ids (n, 96): row i holds 16 + (37 i mod 80) words (ids 3..8000), then padding (1); the same on both sides
local function text_ids(n)
  local rows = {}
  for i = 1, n do
    local len, r = 16 + (37 * i) % 80, {}
    for j = 1, 96 do r[j] = j <= len and 3 + (i * 131 + j * 17) % 7997 or 1 end
    rows[i] = r
  end
  return lumen.tensor(rows, "int64")
end

local vit = want.vit and lumen.models.vit { image = 224, channels = 3, patch = 16, dim = 192, depth = 12, heads = 3,
                                            mlp = 768, classes = 1000 }:eval()
local text = want.text and lumen.models.text_transformer { vocab = 8000, embed_dim = 100, dim = 64, depth = 2,
                                                           heads = 4, mlp = 128, length = 96, classes = 20 }:eval()
for _, model in ipairs { vit or nil, text or nil } do
  for _, prm in ipairs(model:parameters()) do prm.tensor.requires_grad = false end -- input gradients only
end

for _, t in ipairs(B.int_list(p.thread_counts)) do
  lumen.threads(t)
  local tag = (" t%d"):format(t)
  for _, n in ipairs(vit and B.int_list(p.vit_batches) or {}) do
    local reps = n == 1 and p.reps or p.reps_big
    local x = lumen.randn { n, 3, 224, 224 }
    B.try(VIT .. " fwd", function()
      B.emit("xformer", VIT .. tag, n, "fwd", B.measure(function() lumen.no_grad(vit.forward, vit, x) end, reps))
    end)
    B.try(VIT .. " saliency", function()
      B.emit("xformer", VIT .. tag, n, "saliency", B.measure(function() lumen.explain.saliency(vit, x) end, reps))
    end)
  end
  for _, n in ipairs(text and B.int_list(p.text_batches) or {}) do
    local reps = n == 1 and p.reps or p.reps_big
    local ids = text_ids(n)
    B.try(TEXT .. " fwd", function()
      B.emit("xformer", TEXT .. tag, n, "fwd", B.measure(function() lumen.no_grad(text.forward, text, ids) end, reps))
    end)
    B.try(TEXT .. " saliency", function()
      local ms = B.measure(function()
        if n == 1 then return lumen.explain.text_saliency(text, ids) end
        local E = lumen.no_grad(text.forward, text, ids, { stop_at = "embed" })
        E.requires_grad = true
        local y = text:forward(ids, { replace = { embed = E } })
        local top = lumen.argmax(y, 2):reshape { n, 1 }
        return lumen.grad(lumen.gather(y, 2, top):sum(), E)
      end, reps)
      B.emit("xformer", TEXT .. tag, n, "saliency", ms)
    end)
  end
end
