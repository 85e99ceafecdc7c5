"""What the PyTorch bench scripts share: key=value arguments (as `lumen.args`), 2 threads, timing, and
the JSON lines that bench/report.py reads: {"bench", "side": "torch", "case", "batch", "pass", "ms": [...],
"flop"}. Mirrors bench/benchlib.lua on the lumen side. Also: torchvision ResNet-18 with the weights of
an ONNX file exported by tools/export_fixtures.py, and FLOP counting."""
import gzip
import json
import os
import sys
import time

import onnx
import torch
import torchvision
from onnx import numpy_helper

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def args(defaults):
    """Typed key=value command-line parameters; unknown keys are an error."""
    p = dict(defaults)
    for a in sys.argv[1:]:
        k, sep, v = a.partition("=")
        if not sep or k not in defaults:
            sys.exit(f"{sys.argv[0]}: unknown argument '{a}' (known: {' '.join(sorted(defaults))})")
        d = defaults[k]
        p[k] = type(d)(v) if not isinstance(d, bool) else v in ("1", "true", "yes")
    torch.set_num_threads(2)
    torch.manual_seed(0)
    return p


def int_list(s):
    return [int(v) for v in s.split(",") if v]


def measure(fn, reps, warmup=1):
    """Wall-clock milliseconds of fn() for each of reps runs, after warmup runs."""
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1e3)
    return out


def emit(bench, case, batch, pass_, ms, flop=None):
    rec = {"bench": bench, "side": "torch", "case": case, "batch": batch, "pass": pass_,
           "ms": [round(v, 4) for v in ms], "threads": torch.get_num_threads()}
    if flop is not None:
        rec["flop"] = flop
    print(json.dumps(rec), flush=True)


def load_onnx(path):
    """An ONNX ModelProto from path (.onnx or .onnx.gz), relative to the repository root."""
    with open(os.path.join(REPO, path), "rb") as f:
        data = f.read()
    return onnx.load_from_string(gzip.decompress(data) if path.endswith(".gz") else data)


def resnet18_from_onnx(path):
    """torchvision resnet18 in eval mode, frozen, holding the initializers of the ONNX file (exported
    with BatchNormalization kept, so the initializer names are the state_dict names)."""
    model = torchvision.models.resnet18(weights=None)
    state = {i.name: torch.from_numpy(numpy_helper.to_array(i).copy()) for i in load_onnx(path).graph.initializer}
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.endswith("num_batches_tracked")]
    if missing or unexpected:
        sys.exit(f"{path}: not a resnet18 export (missing {missing[:3]}, unexpected {unexpected[:3]})")
    return freeze(model)


def freeze(model):
    """Eval mode, parameters not requiring grad: backward computes input gradients only, as the
    explanation methods need."""
    for prm in model.parameters():
        prm.requires_grad_(False)
    return model.eval()


def forward_flop(model, shape):
    """2 * multiply-adds of the Conv2d and Linear layers for one forward pass of an input of shape."""
    total = 0

    def hook(mod, inp, out):
        nonlocal total
        total += 2 * out.numel() * mod.weight[0].numel()

    handles = [m.register_forward_hook(hook) for m in model.modules()
               if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    with torch.no_grad():
        model(torch.zeros(shape))
    for h in handles:
        h.remove()
    return total
