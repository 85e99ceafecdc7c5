-- Specs for the shipped Fashion-MNIST model (data/models/fashion_cnn.lumen, made by
-- recipes/train_fashion_mnist.lua): its test accuracy, and that a short training run lowers the loss.
local lumen = require "lumen"

local DIR = "/usr/share/datasets/fashion-mnist"
local CKPT = "data/models/fashion_cnn.lumen"

describe("fashion_cnn", function()
  if not lumen.exists(DIR .. "/t10k-images-idx3-ubyte.gz") then
    it("needs the Fashion-MNIST test set", function()
      pending(DIR .. " is absent (Debian package dataset-fashion-mnist)")
    end)
    return
  end
  local X, y = lumen.data.load_mnist(DIR, "test")

  it("the shipped checkpoint reaches at least 90% on the 10,000 test images", function()
    local model = lumen.load_model(CKPT)
    assert.equal("Ankle boot", model.labels[10])
    assert.same({ 28, 28 }, model.input_spec.size)
    local _, acc = lumen.optim.evaluate(model, X, y, { batch_size = 500 })
    print(("fashion_cnn test accuracy: %.2f%%"):format(100 * acc))
    assert.is_true(acc >= 0.90, ("accuracy %.4f"):format(acc))
  end)

  it("a few training batches lower the loss", function()
    lumen.seed(11)
    local model = lumen.models.fashion_cnn {}
    local Xs, ys = X:narrow(1, 1, 256), y:narrow(1, 1, 256)
    local function loss()
      model:train() -- batch statistics: the running ones have not settled after a few steps
      return lumen.no_grad(function() return lumen.cross_entropy(model:forward(Xs), ys):item() end)
    end
    local before = loss()
    lumen.optim.fit(model, { X = Xs, y = ys }, { epochs = 2, batch_size = 32, progress = false,
                                                 optimizer = lumen.optim.Adam(model, { lr = 0.003 }) })
    local after = loss()
    assert.is_true(after < 0.8 * before, ("loss %.4f -> %.4f"):format(before, after))
  end)
end)
