-- models.fashion_cnn{classes = 10}: a small CNN for 28x28 gray Fashion-MNIST, ending in global average
-- pooling and one Linear so that CAM applies (7x7 maps). conv1..conv5 are 3x3 convolutions (padding 1) of
-- 16, 32, 32, 64, 96 channels, each followed by batch norm (bn1..) and ReLU (relu1..); pool1 (after
-- relu1) and pool2 (after relu3) halve the size: 28 -> 14 -> 7. About 89k parameters.
local lumen = require "lumen"

return function(o)
  o = o or {}
  local nn = lumen.nn
  local layers = {}
  local function block(i, cin, cout)
    layers[#layers + 1] = nn.Conv2d { in_channels = cin, out_channels = cout, kernel_size = 3, padding = 1,
                                      name = "conv" .. i }
    layers[#layers + 1] = nn.BatchNorm2d { num_features = cout, name = "bn" .. i }
    layers[#layers + 1] = nn.ReLU { name = "relu" .. i }
  end
  local function pool(i) layers[#layers + 1] = nn.MaxPool2d { kernel_size = 2, name = "pool" .. i } end
  block(1, 1, 16); pool(1)
  block(2, 16, 32); block(3, 32, 32); pool(2)
  block(4, 32, 64); block(5, 64, 96)
  layers[#layers + 1] = nn.GlobalAvgPool2d { name = "gap" }
  layers[#layers + 1] = nn.Linear { in_features = 96, out_features = o.classes or 10, name = "fc" }
  layers.name = "fashion_cnn"
  local model = nn.Sequential(layers)
  model.labels = { table.unpack(require("lumen.data").FASHION_MNIST_LABELS) }
  model.input_spec = { size = { 28, 28 }, channels = 1, scale = { 0, 1 } }
  return model
end
