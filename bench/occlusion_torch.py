"""PyTorch side of the occlusion bench: occlusion sensitivity with 16x16 patches of zeros, stride 8, on
ResNet-18 (tests/fixtures/torch/resnet18.onnx.gz's weights in torchvision's resnet18) at 224x224 with the
fixture's input and target, every occluded copy a full forward, in batches of 32 — as Captum's
Occlusion does it. The map (score drop spread over each patch, averaged where patches overlap) is the
same computation as lumen's explain.occlusion.
Run: /usr/bin/python3 bench/occlusion_torch.py [reps=1 threads=2 size=224 map=PREFIX modes=...].
The timing is emitted under both lumen case names ("lumen incremental" and "lumen full"), so the table
shows each lumen mode against the same PyTorch run. With map=PREFIX the map is written to PREFIX.torch.npy
and compared with PREFIX.lumen.npy when the lumen side wrote one (difference on stderr)."""
import json
import os
import sys

import numpy as np
import torch

import benchlib


def starts(n, p, s):
    res = list(range(0, n - p + 1, s))
    if res[-1] != n - p:
        res.append(n - p)
    return res


def occlusion(model, x, target, patch=16, stride=8, batch_size=32):
    _, _, h, w = x.shape
    pos = [(r, c) for r in starts(h, patch, stride) for c in starts(w, patch, stride)]
    total, count = torch.zeros(h, w), torch.zeros(h, w)
    with torch.no_grad():
        base = float(model(x)[0, target])
        for first in range(0, len(pos), batch_size):
            chunk = pos[first:first + batch_size]
            xs = x.repeat(len(chunk), 1, 1, 1)
            for j, (r, c) in enumerate(chunk):
                xs[j, :, r:r + patch, c:c + patch] = 0
            scores = model(xs)[:, target]
            for j, (r, c) in enumerate(chunk):
                total[r:r + patch, c:c + patch] += base - float(scores[j])
                count[r:r + patch, c:c + patch] += 1
    return total / count.clamp(min=1)


def main():
    p = benchlib.args({"reps": 1, "threads": 2, "modes": "incremental,full", "size": 224, "map": "",
                       "model": "tests/fixtures/torch/resnet18.onnx.gz"})
    modes = benchlib.names("modes", p["modes"], ["incremental", "full"])
    torch.set_num_threads(p["threads"])
    model = benchlib.resnet18_from_onnx(p["model"])
    fixtures = os.path.join(benchlib.REPO, "tests/fixtures/torch")
    with open(os.path.join(fixtures, "resnet18.json")) as f:
        target = json.load(f)["target"] - 1  # 0-based
    x = torch.from_numpy(np.load(os.path.join(fixtures, "input.npy")))
    size = p["size"]
    if size != 224:
        x = torch.nn.functional.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
    out = {}
    ms = benchlib.measure(lambda: out.update(map=occlusion(model, x, target)), p["reps"], warmup=0)
    n = len(starts(size, 16, 8)) ** 2
    flop = (n + 1) * benchlib.forward_flop(model, (1, 3, size, size))
    if p["map"]:
        m = out["map"].numpy().reshape(1, 1, size, size)
        np.save(p["map"] + ".torch.npy", m)
        if os.path.exists(p["map"] + ".lumen.npy"):
            theirs = np.load(p["map"] + ".lumen.npy")
            print(f"occlusion: max |lumen incremental - torch| = {np.abs(theirs - m).max():g} "
                  f"(map max {np.abs(m).max():g})", file=sys.stderr)
    for mode in modes:
        benchlib.emit("occlusion", f"occlusion 16/8 resnet18 {size} (lumen {mode})", 32, "explain", ms, flop)


if __name__ == "__main__":
    main()
