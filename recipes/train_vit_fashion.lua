-- recipes/train_vit_fashion.lua: trains lumen.models.vit (a small Vision Transformer: 4x4 patches of the
-- 28x28 picture = 49 tokens and a class token, pre-norm encoder layers with GELU) on Fashion-MNIST (Debian
-- package dataset-fashion-mnist) with Adam and a cosine learning-rate schedule, seeded, then prints the
-- test accuracy and writes OUT/vit_fashion.lumen (with labels and input_spec) and a manifest. It never
-- writes into data/models: to ship a new model, copy it there (cp out/train_vit_fashion/vit_fashion.lumen
-- data/models/). Its attention weights are the layers "encoder_k.self_attn:attention".
--   lumen run recipes/train_vit_fashion.lua [epochs=8] [depth=2] [dim=64] [limit=0 (all 60,000)] [out=out/train_vit_fashion]
local lumen = require "lumen"
local p = lumen.args { data = "/usr/share/datasets/fashion-mnist", out = "out/train_vit_fashion", epochs = 8,
                       batch_size = 128, lr = 0.002, patch = 4, dim = 64, depth = 2, heads = 4, mlp = 128,
                       seed = 0, limit = 0 }
lumen.seed(p.seed)

local X, y = lumen.data.load_mnist(p.data, "train", { limit = p.limit }) -- limit > 0: a quick check
local Xt, yt = lumen.data.load_mnist(p.data, "test", { limit = p.limit })

local model = lumen.models.vit { patch = p.patch, dim = p.dim, depth = p.depth, heads = p.heads, mlp = p.mlp }
local opt = lumen.optim.Adam(model, { lr = p.lr })
local start = lumen.now()
lumen.optim.fit(model, { X = X, y = y }, { epochs = p.epochs, batch_size = p.batch_size, optimizer = opt,
                                           schedule = lumen.optim.cosine_schedule(p.lr, p.epochs) })
local seconds = lumen.now() - start

local loss, acc = lumen.optim.evaluate(model, Xt, yt, { batch_size = 500 })
print(("test loss %.4f, accuracy %.2f%% on %d images; trained in %.0f s"):format(loss, 100 * acc, yt:numel(), seconds))
lumen.mkdir(p.out)
model:save(lumen.output(p.out, "vit_fashion.lumen"))
lumen.manifest(p.out, { test_loss = loss, test_accuracy = acc, train_images = X:size(1), test_images = yt:numel() })
print("wrote " .. p.out .. "/vit_fashion.lumen")
