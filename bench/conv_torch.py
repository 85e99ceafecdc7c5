"""PyTorch side of the conv bench: conv2d forward and forward+backward (d/dx and d/dw) on the ResNet-18
layer shapes of bench/conv_cases.json. Run: /usr/bin/python3 bench/conv_torch.py [batches=1,32 reps=10
reps_big=3]. Same cases, batches and FLOP counts as bench/conv.lua."""
import json
import os

import torch
import torch.nn.functional as F

import benchlib


def forward_flop(case, batch):
    ho = (case["hw"] + 2 * case["pad"] - case["k"]) // case["stride"] + 1
    return 2 * batch * case["o"] * case["c"] * case["k"] ** 2 * ho * ho


def main():
    p = benchlib.args({"batches": "1,32", "reps": 10, "reps_big": 3})
    with open(os.path.join(benchlib.REPO, "bench", "conv_cases.json")) as f:
        cases = json.load(f)
    for batch in benchlib.int_list(p["batches"]):
        reps = p["reps"] if batch == 1 else p["reps_big"]
        for case in cases:
            x = torch.randn(batch, case["c"], case["hw"], case["hw"])
            w = torch.randn(case["o"], case["c"], case["k"], case["k"]) * 0.05

            def conv(x, w):
                return F.conv2d(x, w, None, stride=case["stride"], padding=case["pad"])

            def fwd():
                with torch.no_grad():
                    conv(x, w)

            xg, wg = x.clone().requires_grad_(True), w.clone().requires_grad_(True)
            with torch.no_grad():
                g = torch.randn_like(conv(x, w))  # the upstream gradient

            def fwdbwd():
                torch.autograd.grad(conv(xg, wg), (xg, wg), g)

            flop = forward_flop(case, batch)
            benchlib.emit("conv", case["name"], batch, "fwd", benchlib.measure(fwd, reps), flop)
            benchlib.emit("conv", case["name"], batch, "fwd+bwd", benchlib.measure(fwdbwd, reps), 3 * flop)


if __name__ == "__main__":
    main()
