"""Writes tests/fixtures/torch/pad_conv_opset{9,13}.onnx and pad_conv.safetensors: a small net whose zero Pads
feed convolutions (what TFLite's SAME padding becomes in ONNX, and PyTorch's ZeroPad2d) and which lumen.onnx
turns into the convolutions' padding, next to Pads it must keep (a nonzero value, a Pad read twice, a Pad
of the channels). The safetensors file holds the input, PyTorch's output and its input gradient (of the
output's sum). Run with Debian's PyTorch: /usr/bin/python3 tools/export_pad_conv.py
"""
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fixturelib import write_onnx_fixture  # noqa: E402

OUT = os.path.join("tests", "fixtures", "torch")


class PadConv(nn.Module):
    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(3, 4, 3, stride=2)               # after an asymmetric zero Pad: merged
        self.c2 = nn.Conv2d(4, 4, 3, groups=4, padding=1)     # depthwise, own padding + a zero Pad: merged
        self.c3 = nn.Conv2d(4, 3, 1)                          # after a Pad of value 0.5: kept
        self.c4 = nn.Conv2d(3, 2, 3)                          # after a Pad also read by the sum: kept
        self.c5 = nn.Conv2d(3, 2, 3, padding=1)               # after a Pad of the channels: kept

    def forward(self, x):
        x = torch.relu(self.c1(F.pad(x, (0, 1, 0, 1))))
        x = self.c2(F.pad(x, (1, 1, 0, 2)))
        x = self.c3(F.pad(x, (1, 1, 1, 1), value=0.5))
        p = F.pad(x, (1, 1, 1, 1))
        y = self.c4(p) + p[:, :2, 1:-1, 1:-1].mean()
        z = self.c5(F.pad(x, (0, 0, 0, 0, 0, 1))[:, :3])
        return y.flatten(1).sum(1, keepdim=True) + z.flatten(1).mean(1, keepdim=True)


def main():
    torch.manual_seed(0)
    net = PadConv().eval()
    write_onnx_fixture(OUT, "pad_conv", net, torch.randn(2, 3, 15, 15), (9, 13))


if __name__ == "__main__":
    main()
