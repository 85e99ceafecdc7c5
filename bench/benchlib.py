"""What the PyTorch bench scripts share: key=value arguments (as `lumen.args`, plus threads=2), timing,
peak RSS per workload, and the JSON lines that bench/report.py reads: {"bench", "side": "torch", "case",
"batch", "pass", "ms": [...], "flop", "threads", "rss_mib"}. Mirrors bench/benchlib.lua on the lumen side.
Also: the networks of bench/models.json as torch modules holding the weights of the same ONNX files lumen
and onnxruntime load (torchvision architectures, or a plain chain rebuilt from the graph), and FLOP counting."""
import gzip
import json
import os
import sys
import time

import onnx
import torch
import torchvision
from onnx import helper, numpy_helper

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def args(defaults):
    """Typed key=value command-line parameters (plus threads=2); unknown keys are an error."""
    defaults = dict(defaults, threads=defaults.get("threads", 2))
    p = dict(defaults)
    for a in sys.argv[1:]:
        k, sep, v = a.partition("=")
        if not sep or k not in defaults:
            sys.exit(f"{sys.argv[0]}: unknown argument '{a}' (known: {' '.join(sorted(defaults))})")
        d = defaults[k]
        p[k] = type(d)(v) if not isinstance(d, bool) else v in ("1", "true", "yes")
    torch.set_num_threads(p["threads"])
    torch.manual_seed(0)
    return p


def rss_reset():
    """Resets the kernel's high-water mark of resident memory (Linux), before a workload."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def rss_peak():
    """Peak resident memory since rss_reset(), in MiB (None where /proc is missing)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return round(int(line.split()[1]) / 1024)
    except OSError:
        pass
    return None


def names(key, s, known):
    """The comma list s (argument key) as a list of names, each one of known ("all": every known name). A name
    that matches none is an error naming it and the known ones, before any work: a typo must not run an empty
    bench that reports nothing."""
    if s == "all":
        return list(known)
    for v in s.split(","):
        if v and v not in known:
            sys.exit(f"{sys.argv[0]}: {key}={s}: no '{v}' (known: {','.join(known)})")
    return [v for v in s.split(",") if v]


def int_list(s):
    return [int(v) for v in s.split(",") if v]


LAST_CPU = []


def measure(fn, reps, warmup=1):
    """Wall-clock milliseconds of fn() for each of reps runs, after warmup runs; LAST_CPU gets the process
    CPU milliseconds of the same runs (all threads)."""
    for _ in range(warmup):
        fn()
    out, cpu = [], []
    for _ in range(reps):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        out.append((time.perf_counter() - t0) * 1e3)
        cpu.append((time.process_time() - c0) * 1e3)
    LAST_CPU[:] = cpu
    return out


def emit(bench, case, batch, pass_, ms, flop=None, rss=None):
    rec = {"bench": bench, "side": "torch", "case": case, "batch": batch, "pass": pass_,
           "ms": [round(v, 4) for v in ms], "threads": torch.get_num_threads()}
    if flop is not None:
        rec["flop"] = flop
    if rss is not None:
        rec["rss_mib"] = rss
    if LAST_CPU:
        rec["cpu_ms"] = [round(v, 4) for v in LAST_CPU]
        LAST_CPU.clear()
    print(json.dumps(rec), flush=True)


def load_onnx(path):
    """An ONNX ModelProto from path (.onnx or .onnx.gz), relative to the repository root."""
    with open(os.path.join(REPO, path), "rb") as f:
        data = f.read()
    return onnx.load_from_string(gzip.decompress(data) if path.endswith(".gz") else data)


def torchvision_from_onnx(name, path):
    """torchvision's `name` in eval mode, frozen, holding the initializers of the ONNX file (exported with
    BatchNormalization kept, so the initializer names are the state_dict names)."""
    model = getattr(torchvision.models, name)(weights=None)
    state = {i.name: torch.from_numpy(numpy_helper.to_array(i).copy()) for i in load_onnx(path).graph.initializer}
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.endswith("num_batches_tracked")]
    if missing or unexpected:
        sys.exit(f"{path}: not a {name} export (missing {missing[:3]}, unexpected {unexpected[:3]})")
    return freeze(model)


def resnet18_from_onnx(path):
    return torchvision_from_onnx("resnet18", path)


def chain_from_onnx(path):
    """A torch Sequential for an ONNX graph that is a plain chain of Pad, Conv, Clip, GlobalAveragePool,
    Flatten (a trailing Softmax is dropped: methods explain the scores before it)."""
    graph = load_onnx(path).graph
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
    return freeze(torch.nn.Sequential(*layers))


def read_models():
    """bench/models.json: the networks, each {name, onnx (path from the repository root), torchvision or
    chain, size, batches}."""
    with open(os.path.join(REPO, "bench", "models.json")) as f:
        return json.load(f)


def model_of(spec):
    """The torch module for a models.json entry, or None (reported) when its ONNX file is missing."""
    if not os.path.exists(os.path.join(REPO, spec["onnx"])):
        print(f"bench: skipping {spec['name']}: {spec['onnx']} not found (bench/export_models.py makes it)",
              file=sys.stderr)
        return None
    if spec.get("chain"):
        return chain_from_onnx(spec["onnx"])
    return torchvision_from_onnx(spec["torchvision"], spec["onnx"])


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
