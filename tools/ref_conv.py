"""ref_conv.py — PyTorch reference values for tests/lua/conv_spec.lua and tests/lua/pool_spec.lua.

Run once with a Python that has torch (Debian: /usr/bin/python3) and paste the printed Lua tables into
the spec between the "torch reference" markers:

    /usr/bin/python3 tools/ref_conv.py conv    # for conv_spec.lua
    /usr/bin/python3 tools/ref_conv.py pool    # for pool_spec.lua

Inputs are not stored: both sides build them with the same formula, x[i] = 2 sin(1.7 i + seed)
(i = 0, 1, ... in row-major order), rounded to float32.
"""
import math
import sys

import torch
import torch.nn.functional as F


def gen(shape, seed):
    n = math.prod(shape)
    return torch.tensor([2 * math.sin(1.7 * i + seed) for i in range(n)], dtype=torch.float64).float().reshape(shape)


def lua(name, t, comment):
    """Prints `name = { shape = {...}, values = {...} },` wrapped at about 110 columns."""
    vals = ["%.7g," % v for v in t.flatten().tolist()]
    shape = ", ".join(str(s) for s in t.shape)
    print("  -- %s" % comment)
    print("  %s = { shape = { %s }, values = {" % (name, shape))
    line = "   "
    for v in vals:
        if len(line) + len(v) + 1 > 110:
            print(line)
            line = "   "
        line += " " + v
    print(line)
    print("  } },")


def conv_refs():
    x, w, b = gen((1, 2, 5, 6), 0.1), gen((3, 2, 3, 3), 0.2), gen((3,), 0.3)
    lua("stride_pad", F.conv2d(x, w, b, stride=2, padding=(1, 2)), "x (1,2,5,6) s0.1, w (3,2,3,3) s0.2, b (3) s0.3; stride 2, padding {1, 2}")
    x, w = gen((1, 4, 5, 4), 0.4), gen((4, 2, 2, 3), 0.5)
    lua("groups_dilation", F.conv2d(x, w, None, padding=1, dilation=(2, 1), groups=2), "x (1,4,5,4) s0.4, w (4,2,2,3) s0.5; padding 1, dilation {2, 1}, groups 2")
    x, w, b = gen((1, 3, 6, 6), 0.6), gen((6, 1, 3, 3), 0.7), gen((6,), 0.8)
    lua("depthwise", F.conv2d(x, w, b, stride=(1, 2), padding=(1, 0), groups=3), "x (1,3,6,6) s0.6, w (6,1,3,3) s0.7, b (6) s0.8; stride {1, 2}, padding {1, 0}, groups 3")
    x, w = gen((1, 2, 5, 5), 0.9), gen((2, 2, 3, 3), 1.0)
    lua("asymmetric", F.conv2d(F.pad(x, (1, 1, 0, 2)), w), "x (1,2,5,5) s0.9, w (2,2,3,3) s1.0; padding {top 0, left 1, bottom 2, right 1}")
    x, w, b = gen((2, 3, 9), 1.1), gen((2, 3, 3), 1.2), gen((2,), 1.3)
    lua("conv1d", F.conv1d(x, w, b, stride=2, padding=2, dilation=2), "x (2,3,9) s1.1, w (2,3,3) s1.2, b (2) s1.3; stride 2, padding 2, dilation 2")
    x, w, b = gen((1, 3, 3, 4), 1.4), gen((3, 2, 3, 3), 1.5), gen((2,), 1.6)
    lua("transpose", F.conv_transpose2d(x, w, b, stride=2, padding=1, output_padding=1), "x (1,3,3,4) s1.4, w (3,2,3,3) s1.5, b (2) s1.6; stride 2, padding 1, output_padding 1")
    x, w = gen((2, 4, 3, 3), 1.7), gen((4, 1, 2, 2), 1.8)
    lua("transpose_groups", F.conv_transpose2d(x, w, None, stride=(2, 1), dilation=(1, 2), groups=2), "x (2,4,3,3) s1.7, w (4,1,2,2) s1.8; stride {2, 1}, dilation {1, 2}, groups 2")


def pool_refs():
    x = gen((1, 2, 7, 7), 2.1)
    y, i = F.max_pool2d(x, 3, stride=2, padding=1, ceil_mode=True, return_indices=True)
    lua("max_ceil", y, "x (1,2,7,7) s2.1; k 3, stride 2, padding 1, ceil_mode")
    lua("max_ceil_idx", i + 1, "its indices, 1-based")
    x = gen((1, 1, 6, 8), 2.2)
    y, i = F.max_pool2d(x, (2, 3), stride=2, padding=1, dilation=(2, 1), return_indices=True)
    lua("max_dilated", y, "x (1,1,6,8) s2.2; k {2, 3}, stride 2, padding 1, dilation {2, 1}")
    lua("max_dilated_idx", i + 1, "its indices, 1-based")
    x = gen((2, 2, 9), 2.3)
    y, i = F.max_pool1d(x, 3, stride=2, padding=1, return_indices=True)
    lua("max1d", y, "x (2,2,9) s2.3; k 3, stride 2, padding 1")
    lua("max1d_idx", i + 1, "its indices, 1-based")
    x = gen((1, 2, 7, 6), 2.4)
    lua("avg_exclude", F.avg_pool2d(x, 3, stride=2, padding=1, ceil_mode=True, count_include_pad=False), "x (1,2,7,6) s2.4; k 3, stride 2, padding 1, ceil_mode, count_include_pad false")
    lua("avg_include", F.avg_pool2d(x, 3, stride=2, padding=1, ceil_mode=True, count_include_pad=True), "same x; count_include_pad true")
    x = gen((1, 2, 8), 2.5)
    lua("avg1d", F.avg_pool1d(x, 3, stride=2, padding=1, count_include_pad=False), "x (1,2,8) s2.5; k 3, stride 2, padding 1, count_include_pad false")
    x = gen((1, 2, 7, 5), 2.6)
    lua("adaptive", F.adaptive_avg_pool2d(x, (3, 2)), "x (1,2,7,5) s2.6; output {3, 2}")


if __name__ == "__main__":
    which = sys.argv[1] if len(sys.argv) > 1 else ""
    if which not in ("conv", "pool"):
        sys.exit("usage: ref_conv.py conv|pool")
    print("  -- torch reference (tools/ref_conv.py %s, torch %s)" % (which, torch.__version__))
    (conv_refs if which == "conv" else pool_refs)()
    print("  -- end torch reference")
