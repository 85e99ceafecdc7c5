-- recipes/train_fashion_mnist.lua: trains lumen.models.fashion_cnn on Fashion-MNIST (Debian package
-- dataset-fashion-mnist) with Adam and a cosine learning-rate schedule, seeded, then prints the test
-- accuracy and writes the checkpoint (with labels and input_spec) that the explanation recipes load.
--   lumen run recipes/train_fashion_mnist.lua [data=DIR] [epochs=3] [out=data/models/fashion_cnn.lumen]
local lumen = require "lumen"
local p = lumen.args { data = "/usr/share/datasets/fashion-mnist", out = "data/models/fashion_cnn.lumen",
                       epochs = 3, batch_size = 64, lr = 0.002, seed = 0, limit = 0 }
lumen.seed(p.seed)

local X, y = lumen.data.load_mnist(p.data, "train")
local Xt, yt = lumen.data.load_mnist(p.data, "test")
if p.limit > 0 then X, y = X:narrow(1, 1, p.limit), y:narrow(1, 1, p.limit) end

local model = lumen.models.fashion_cnn {}
local opt = lumen.optim.Adam(model, { lr = p.lr })
lumen.optim.fit(model, { X = X, y = y }, { epochs = p.epochs, batch_size = p.batch_size, optimizer = opt,
                                           schedule = lumen.optim.cosine_schedule(p.lr, p.epochs) })

local loss, acc = lumen.optim.evaluate(model, Xt, yt, { batch_size = 500 })
print(("test loss %.4f, accuracy %.2f%% on %d images"):format(loss, 100 * acc, yt:numel()))
lumen.mkdir(p.out:match("^(.*)/[^/]*$") or ".")
model:save(p.out)
print("wrote " .. p.out)
