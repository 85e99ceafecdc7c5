"""PyTorch side of the explain bench: the same model work as bench/explain.lua, done in plain PyTorch.
  smoothgrad: 50 noisy copies, input gradients in batches of 10 (ResNet-18, 224x224);
  ig:         Integrated Gradients, 50 steps = 51 trapezoid points, input gradients in batches of 10;
  saliency:   one input gradient;
  kernel_shap, lime: 1000 forward evaluations of masked inputs in batches of 50 on each network of `samplers`
              (bench/models.json, as torch modules holding the ONNX files' weights; scores before softmax).
The peak resident memory of each. Run: /usr/bin/python3 bench/explain_torch.py [reps=3
methods=saliency,smoothgrad,ig,kernel_shap,lime model=... samplers=... threads=2]. The torch side does only the model work (no regression fit): the ratio shows what lumen's
method code adds on top of the forwards and backwards."""
import gc

import torch

import benchlib

GRID = 20  # superpixels: a grid of GRID x GRID squares (64 features on 160 x 160, 144 on 224 x 224)


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


def timed(name, fn, reps, flop, fast=False):
    """warmup 0 (each run is seconds long, the median drops a cold first one); fast: a method of a fraction of a
    second gets 2 warm-up calls and 3x the reps, as bench/explain.lua does."""
    gc.collect()
    benchlib.rss_reset()
    ms = benchlib.measure(fn, 3 * reps if fast else reps, warmup=2 if fast else 0)
    benchlib.emit("explain", name, 1, "explain", ms, flop, benchlib.rss_peak())


def main():
    p = benchlib.args({"reps": 3, "methods": "saliency,smoothgrad,ig,kernel_shap,lime",
                       "model": "tests/fixtures/torch/resnet18.onnx.gz",
                       "samplers": "mobilenet_v1_0.5,mobilenet_v2,mobilenet_v3_large,efficientnet_b0"})
    methods = benchlib.names("methods", p["methods"], ["saliency", "smoothgrad", "ig", "kernel_shap", "lime"])
    models = benchlib.read_models()
    samplers = benchlib.names("samplers", p["samplers"], [s["name"] for s in models])
    if {"saliency", "smoothgrad", "ig"} & set(methods):
        resnet = benchlib.resnet18_from_onnx(p["model"])
        x = torch.randn(1, 3, 224, 224)
        flop = benchlib.forward_flop(resnet, (1, 3, 224, 224))
        target = 154  # 0-based; lumen's target = 155
        if "saliency" in methods:
            timed("saliency resnet18", lambda: input_gradient(resnet, x, target), p["reps"], 2 * flop, fast=True)
        if "smoothgrad" in methods:
            timed("smoothgrad n=50 bs=10 resnet18", lambda: smoothgrad(resnet, x, target), p["reps"], 50 * 2 * flop)
        if "ig" in methods:
            timed("ig steps=50 bs=10 resnet18", lambda: integrated_gradients(resnet, x, target), p["reps"],
                  51 * 2 * flop)
        del resnet
    specs = {s["name"]: s for s in models}
    sampling = [k for k in ("kernel_shap", "lime") if k in methods]
    for name in samplers if sampling else []:
        model = benchlib.model_of(specs[name])
        if model is None:
            continue
        size = specs[name]["size"]
        xm = torch.rand(1, 3, size, size) * 2 - 1
        mflop = benchlib.forward_flop(model, (1, 3, size, size))
        for method in sampling:
            timed(f"{method} 1000 evals bs=50 {name}", lambda: masked_evaluations(model, xm, 0), p["reps"],
                  1000 * mflop)
        del model


if __name__ == "__main__":
    main()
