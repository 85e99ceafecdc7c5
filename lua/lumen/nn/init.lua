-- lumen.nn: Torch-style layers and the two containers (Sequential, Graph); see notes in nn_api.md.
-- Every module is a class called with one table of options: nn.Conv2d{in_channels = 3, ...}.
local nn = {}

nn.Module = require "lumen.nn.module"
nn.Sequential = require "lumen.nn.sequential"
nn.Graph = require "lumen.nn.graph"

local leaves = {
  Conv2d = "conv2d", Conv1d = "conv1d", ConvTranspose2d = "conv_transpose2d", Linear = "linear",
  Embedding = "embedding", ReLU = "relu", LeakyReLU = "leaky_relu", ReLU6 = "relu6", Clip = "clip",
  Sigmoid = "sigmoid", SiLU = "silu", Tanh = "tanh", GELU = "gelu", HardSigmoid = "hardsigmoid", HardSwish = "hardswish",
  Softmax = "softmax", LogSoftmax = "log_softmax", MaxPool1d = "maxpool1d", MaxPool2d = "maxpool2d",
  AvgPool2d = "avgpool2d", GlobalAvgPool2d = "global_avg_pool2d", GlobalMaxPool2d = "global_max_pool2d",
  GlobalMaxPool1d = "global_max_pool1d", MaxUnpool2d = "max_unpool2d", Flatten = "flatten", Dropout = "dropout",
}
for name, file in pairs(leaves) do nn[name] = require("lumen.nn." .. file) end
local bn = require "lumen.nn.batchnorm"
nn.BatchNorm1d, nn.BatchNorm2d = bn.BatchNorm1d, bn.BatchNorm2d
-- Transformer and recurrent layers; the composite ones (TransformerEncoderLayer, LSTM, GRU) are
-- containers of named children (lumen.nn.composite).
nn.Composite = require "lumen.nn.composite"
nn.LayerNorm = require "lumen.nn.layer_norm"
nn.MultiheadAttention = require "lumen.nn.multihead_attention"
nn.TransformerEncoderLayer = require "lumen.nn.transformer_encoder_layer"
nn.PositionEmbedding = require "lumen.nn.position_embedding"
local rnn = require "lumen.nn.rnn"
nn.LSTM, nn.GRU, nn.LSTMLayer, nn.GRULayer = rnn.LSTM, rnn.GRU, rnn.LSTMLayer, rnn.GRULayer

-- The classes a checkpoint may name, by type.
nn.classes = {}
for k, v in pairs(nn) do
  if type(v) == "table" and v.type == k then nn.classes[k] = v end
end
nn.classes.Module, nn.classes.Container, nn.classes.Composite = nil, nil, nil

return nn
