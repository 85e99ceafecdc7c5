"""PyTorch side of the explain bench: the same model work as bench/explain.lua, done in plain PyTorch.
  smoothgrad: 50 noisy copies, input gradients in batches of 10 (ResNet-18, 224x224);
  ig:         Integrated Gradients, 50 steps = 51 trapezoid points, input gradients in batches of 10;
  kernel_shap, lime: 1000 forward evaluations of masked inputs in batches of 50 on MobileNet v1 0.5 160
              (the ONNX in ../shared/data, rebuilt as a torch chain with its weights; scores before softmax).
Run: /usr/bin/python3 bench/explain_torch.py [reps=3 methods=smoothgrad,ig,kernel_shap,lime model=...
mobilenet=...]. The torch side does only the model work (no regression fit): the ratio shows what lumen's
method code adds on top of the forwards and backwards."""
import os
import sys

import torch
from onnx import helper, numpy_helper

import benchlib

GRID = 20  # superpixels: a grid of GRID x GRID squares (64 features on 160 x 160)


def chain_from_onnx(path):
    """A torch Sequential for an ONNX graph that is a plain chain of Pad, Conv, Clip, GlobalAveragePool,
    Flatten (a trailing Softmax is dropped: methods explain the scores before it)."""
    graph = benchlib.load_onnx(path).graph
    inits = {i.name: torch.from_numpy(numpy_helper.to_array(i).copy()) for i in graph.initializer}
    layers, prev = [], graph.input[0].name
    for node in graph.node:
        if node.input[0] != prev:
            sys.exit(f"{path}: node {node.name} breaks the chain")
        prev = node.output[0]
        a = {x.name: helper.get_attribute_value(x) for x in node.attribute}
        if node.op_type == "Pad":
            p = a["pads"]  # (n, c, h, w) begins then ends
            layers.append(torch.nn.ZeroPad2d((p[3], p[7], p[2], p[6])))
        elif node.op_type == "Conv":
            w = inits[node.input[1]]  # (O, C/g, kh, kw)
            pads = a.get("pads", [0, 0, 0, 0])
            conv = torch.nn.Conv2d(w.shape[1] * a["group"], w.shape[0], tuple(w.shape[2:]), stride=tuple(a["strides"]),
                                   padding=tuple(pads[:2]), groups=a["group"], bias=len(node.input) > 2)
            conv.weight.data.copy_(w)
            if conv.bias is not None:
                conv.bias.data.copy_(inits[node.input[2]])
            layers.append(conv)
        elif node.op_type == "Clip":
            layers.append(torch.nn.Hardtanh(a["min"], a["max"]))
        elif node.op_type == "GlobalAveragePool":
            layers.append(torch.nn.AdaptiveAvgPool2d(1))
        elif node.op_type == "Flatten":
            layers.append(torch.nn.Flatten())
        elif node.op_type == "Softmax" and node is graph.node[-1]:
            break
        else:
            sys.exit(f"{path}: unsupported op {node.op_type}")
    return benchlib.freeze(torch.nn.Sequential(*layers))


def input_gradient(model, xs, target):
    xs = xs.clone().requires_grad_(True)
    return torch.autograd.grad(model(xs)[:, target].sum(), xs)[0]


def smoothgrad(model, x, target, n=50, noise=0.15, batch_size=10):
    sigma = noise * float(x.max() - x.min())
    total = torch.zeros_like(x)
    for first in range(0, n, batch_size):
        count = min(batch_size, n - first)
        xs = x.expand(count, *x.shape[1:]) + torch.randn(count, *x.shape[1:]) * sigma
        total += input_gradient(model, xs, target).sum(0, keepdim=True)
    return total / n


def integrated_gradients(model, x, target, steps=50, batch_size=10):
    alphas = torch.arange(steps + 1, dtype=torch.float32) / steps
    weights = torch.full((steps + 1,), 1.0 / steps)
    weights[0] = weights[-1] = 0.5 / steps
    total = torch.zeros_like(x)
    for first in range(0, steps + 1, batch_size):
        a = alphas[first:first + batch_size].view(-1, 1, 1, 1)
        g = input_gradient(model, a * x, target)
        total += (weights[first:first + batch_size].view(-1, 1, 1, 1) * g).sum(0, keepdim=True)
    return x * total


def masked_evaluations(model, x, target, evals=1000, batch_size=50):
    """The model work of KernelSHAP / LIME: random superpixel coalitions, masked inputs, target scores."""
    h, w = x.shape[2:]
    ids = (torch.arange(h).view(-1, 1) // GRID) * ((w + GRID - 1) // GRID) + torch.arange(w).view(1, -1) // GRID
    m = int(ids.max()) + 1
    scores = []
    with torch.no_grad():
        for first in range(0, evals, batch_size):
            z = torch.bernoulli(torch.full((min(batch_size, evals - first), m), 0.5))
            masks = z[:, ids.flatten()].view(-1, 1, h, w)  # (B, 1, H, W)
            scores.append(model(masks * x)[:, target])
    return torch.cat(scores)


def main():
    p = benchlib.args({"reps": 3, "methods": "smoothgrad,ig,kernel_shap,lime",
                       "model": "tests/fixtures/torch/resnet18.onnx.gz",
                       "mobilenet": "../shared/data/models/mobilenet_v1_0.5_160_float.onnx"})
    methods = p["methods"].split(",")
    resnet = benchlib.resnet18_from_onnx(p["model"])
    x = torch.randn(1, 3, 224, 224)
    flop = benchlib.forward_flop(resnet, (1, 3, 224, 224))
    target = 154  # 0-based; lumen's target = 155
    if "smoothgrad" in methods:
        ms = benchlib.measure(lambda: smoothgrad(resnet, x, target), p["reps"], warmup=0)
        benchlib.emit("explain", "smoothgrad n=50 bs=10 resnet18", 1, "explain", ms, 50 * 2 * flop)
    if "ig" in methods:
        ms = benchlib.measure(lambda: integrated_gradients(resnet, x, target), p["reps"], warmup=0)
        benchlib.emit("explain", "ig steps=50 bs=10 resnet18", 1, "explain", ms, 51 * 2 * flop)
    sampling = [k for k in ("kernel_shap", "lime") if k in methods]
    if sampling and not os.path.exists(os.path.join(benchlib.REPO, p["mobilenet"])):
        print(f"explain_torch: skipping {', '.join(sampling)}: {p['mobilenet']} not found", file=sys.stderr)
        sampling = []
    if sampling:
        mobilenet = chain_from_onnx(p["mobilenet"])
        xm = torch.rand(1, 3, 160, 160) * 2 - 1
        mflop = benchlib.forward_flop(mobilenet, (1, 3, 160, 160))
        for name in sampling:
            ms = benchlib.measure(lambda: masked_evaluations(mobilenet, xm, 0), p["reps"], warmup=0)
            benchlib.emit("explain", f"{name} 1000 evals bs=50 mobilenet_v1", 1, "explain", ms, 1000 * mflop)


if __name__ == "__main__":
    main()
