"""Writes tests/fixtures/torch/silu_opset{13,17}.onnx and silu.safetensors: a small EfficientNet-style block
(Conv-BN-SiLU, depthwise Conv-BN-SiLU, squeeze-and-excitation with its own SiLU and a Sigmoid gate, the
projection, a residual) whose SiLUs PyTorch exports as Sigmoid -> Mul and lumen.onnx puts back together as
nn.SiLU, next to Sigmoids it must keep: the SE gate (it multiplies another tensor) and a Sigmoid whose output
is also read elsewhere; then MobileNet v3's Hardswish (HardSigmoid -> Mul at opset 13, one HardSwish op at
17) and a Hardsigmoid SE gate, which must stay. The safetensors file holds the input, PyTorch's output and its input gradient (of the
output's sum), at batch 2. Run with Debian's PyTorch: /usr/bin/python3 tools/export_silu.py
"""
import os
import sys

import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fixturelib import write_onnx_fixture  # noqa: E402

OUT = os.path.join("tests", "fixtures", "torch")


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(8), nn.SiLU())
        self.expand = nn.Sequential(nn.Conv2d(8, 16, 1, bias=False), nn.BatchNorm2d(16), nn.SiLU())
        self.dw = nn.Sequential(nn.Conv2d(16, 16, 3, padding=1, groups=16, bias=False), nn.BatchNorm2d(16), nn.SiLU())
        self.se = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(16, 4, 1), nn.SiLU(), nn.Conv2d(4, 16, 1),
                                nn.Sigmoid())
        self.project = nn.Sequential(nn.Conv2d(16, 8, 1, bias=False), nn.BatchNorm2d(8))
        # MobileNet v3's pair: Hardswish (x * HardSigmoid(x) before opset 14) and a Hardsigmoid SE gate
        self.v3 = nn.Sequential(nn.Conv2d(8, 8, 1), nn.Hardswish())
        self.v3_se = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(8, 8, 1), nn.Hardsigmoid())
        self.head = nn.Linear(8, 5)

    def forward(self, x):
        x = self.stem(x)
        h = self.dw(self.expand(x))
        h = h * self.se(h)
        x = x + self.project(h)
        s = torch.sigmoid(x)  # read by the Mul with x and by the mean: stays a Sigmoid and a Mul
        x = x * s + s.mean()
        x = self.v3(x)
        x = x * self.v3_se(x)
        return self.head(x.mean((2, 3)))


def main():
    torch.manual_seed(0)
    net = Block()
    with torch.no_grad():  # BatchNorm statistics that are not the identity
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.3, 0.3)
    net.eval()
    write_onnx_fixture(OUT, "silu", net, torch.randn(2, 3, 16, 16), (13, 17))


if __name__ == "__main__":
    main()
