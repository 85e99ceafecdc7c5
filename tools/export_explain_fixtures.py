"""Export the PyTorch references of lumen's explanation specs (tests/fixtures/explain/).

Run from the repository root with Debian's PyTorch, after tools/export_fixtures.py:

    /usr/bin/python3 tools/export_explain_fixtures.py [--out tests/fixtures/explain]

tests/fixtures/torch/ holds Integrated Gradients of ResNet-18 at 224x224, 33 forward and backward
passes that take lumen longer than a spec may run on two loaded cores. This script rebuilds the same
ResNet-18 (tools/export_fixtures.py, checked against the initializers of resnet18.onnx.gz) and stores
IG for a seeded 64x64 input, which the fully convolutional network accepts: same model, same rule
(zeros baseline, 32 steps, trapezoid), a tenth of the work. Everything is seeded.
"""
import argparse
import gzip
import json
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import export_fixtures as ef  # noqa: E402  (the shared model builders and reference methods)

SMALL_SHAPE = (1, 3, 64, 64)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=os.path.join("tests", "fixtures", "explain"))
    ap.add_argument("--onnx", default=os.path.join("tests", "fixtures", "torch", "resnet18.onnx.gz"))
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    torch.set_num_threads(2)
    model = ef.build_resnet18()
    with gzip.open(args.onnx, "rb") as f:
        ef.check_initializers(f.read(), model)
    x = torch.randn(SMALL_SHAPE, generator=torch.Generator().manual_seed(ef.SEED + 10))
    with torch.no_grad():
        logits = model(x)
        target = int(logits.argmax(1))
        gap = float(logits[0, target] - model(torch.zeros_like(x))[0, target])
    ig = ef.integrated_gradients(model, x, target)
    ef.save_npy(args.out, "resnet18_small_input.npy", x)
    ef.save_npy(args.out, "resnet18_small_logits.npy", logits)
    ef.save_npy(args.out, "resnet18_small_ig.npy", ig)
    meta = {"model": "tests/fixtures/torch/resnet18.onnx.gz", "target": target + 1, "ig_steps": ef.IG_STEPS,
            "ig_baseline": "zeros", "ig_rule": "trapezoid, as tests/fixtures/torch/resnet18.json",
            "ig_sum": float(ig.double().sum()), "score_minus_baseline_score": gap}
    with open(os.path.join(args.out, "resnet18_small.json"), "w") as f:
        json.dump(meta, f, indent=2)
        f.write("\n")
    print(f"target {target + 1}, IG sum {meta['ig_sum']:.4f} vs score gap {gap:.4f}")
    assert np.isfinite(ig.numpy()).all()


if __name__ == "__main__":
    main()
