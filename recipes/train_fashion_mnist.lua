-- recipes/train_fashion_mnist.lua: trains lumen.models.fashion_cnn on Fashion-MNIST (Debian package
-- dataset-fashion-mnist) with Adam and a cosine learning-rate schedule, seeded, then prints the test
-- accuracy and writes the checkpoint (with labels and input_spec) that the explanation recipes load,
-- OUT/fashion_cnn.lumen, with a manifest. It never writes into data/models: to ship a new model,
-- copy it there yourself (cp out/train_fashion_mnist/fashion_cnn.lumen data/models/).
--   lumen run recipes/train_fashion_mnist.lua [data=DIR] [epochs=3] [limit=0 (all 60,000)] [out=out/train_fashion_mnist]
local lumen = require "lumen"
local p = lumen.args { data = "/usr/share/datasets/fashion-mnist", out = "out/train_fashion_mnist",
                       epochs = 3, batch_size = 64, lr = 0.002, seed = 0, limit = 0 }
lumen.seed(p.seed)

local X, y = lumen.data.load_mnist(p.data, "train", { limit = p.limit }) -- limit > 0: a quick check
local Xt, yt = lumen.data.load_mnist(p.data, "test", { limit = p.limit })

local model = lumen.models.fashion_cnn {}
local opt = lumen.optim.Adam(model, { lr = p.lr })
lumen.optim.fit(model, { X = X, y = y }, { epochs = p.epochs, batch_size = p.batch_size, optimizer = opt,
                                           schedule = lumen.optim.cosine_schedule(p.lr, p.epochs) })

local loss, acc = lumen.optim.evaluate(model, Xt, yt, { batch_size = 500 })
print(("test loss %.4f, accuracy %.2f%% on %d images"):format(loss, 100 * acc, yt:numel()))
lumen.mkdir(p.out)
model:save(lumen.output(p.out, "fashion_cnn.lumen"))
lumen.manifest(p.out, { test_loss = loss, test_accuracy = acc, train_images = X:size(1), test_images = yt:numel() })
print("wrote " .. p.out .. "/fashion_cnn.lumen")
