"""Export PyTorch reference fixtures for lumen's tests (tests/fixtures/torch/).

Run from the repository root with Debian's PyTorch:

    /usr/bin/python3 tools/export_fixtures.py [--out tests/fixtures/torch]

Everything is seeded, so a rerun writes the same numbers. It builds torchvision ResNet-18 and
MobileNet v2 with random weights quantised to a few distinct values per tensor (so the ONNX
files gzip well), exports them to ONNX (opset 13, BatchNormalization kept as its own node), and
stores, for ResNet-18 on one fixed input: logits, saliency, raw Grad-CAM at layer4 and
Integrated Gradients. It also exports a tiny 1-D text CNN with its logits.
tests/fixtures/torch/README.md describes each file.
"""
import argparse
import io
import json
import math
import os
import sys
import warnings

import numpy as np
import onnx
from onnx import numpy_helper
import torch
import torchvision

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fixturelib import save_npy, write_gz  # noqa: E402

SEED = 1234
IG_STEPS = 32
INPUT_SHAPE = (1, 3, 224, 224)
TEXT_TOKENS = 12


def quantised(shape, gen, scale, offset=0.0):
    """offset + k * scale / 8 with k = round(N(0, 2)) clipped to [-8, 8]: 17 values at most."""
    k = torch.clamp(torch.round(torch.randn(shape, generator=gen) * 2.0), -8, 8)
    return offset + k * (scale / 8.0)


def quantise_model_(model, seed, conv_gain):
    """Overwrite every parameter and BN buffer with quantised random values (in place).
    Conv weights get a std of about sqrt(conv_gain / fan_in), Linear sqrt(1 / fan_in); the gains
    keep each network's activations O(1) with its random BN statistics."""
    gen = torch.Generator().manual_seed(seed)
    k_std = math.sqrt(4.25) / 8.0  # about the std of k / 8: var(round(N(0, 2))) = 4 + 1/12
    with torch.no_grad():
        for mod in model.modules():
            if isinstance(mod, (torch.nn.Conv2d, torch.nn.Linear)):
                fan_in = mod.weight[0].numel()
                gain = conv_gain if isinstance(mod, torch.nn.Conv2d) else 1.0
                mod.weight.copy_(quantised(mod.weight.shape, gen, math.sqrt(gain / fan_in) / k_std))
                if mod.bias is not None:
                    mod.bias.copy_(quantised(mod.bias.shape, gen, 0.1))
            elif isinstance(mod, torch.nn.BatchNorm2d):
                n = mod.num_features
                mod.weight.copy_(quantised(n, gen, 0.25, offset=1.0))
                mod.bias.copy_(quantised(n, gen, 0.2))
                mod.running_mean.copy_(quantised(n, gen, 0.2))
                mod.running_var.copy_(quantised(n, gen, 0.5, offset=1.0))
    return model.eval()


def build_resnet18(seed=SEED):
    torch.manual_seed(seed)
    return quantise_model_(torchvision.models.resnet18(weights=None), seed, conv_gain=1.0)


def build_mobilenet_v2(seed=SEED):
    torch.manual_seed(seed)
    return quantise_model_(torchvision.models.mobilenet_v2(weights=None), seed + 1, conv_gain=2.0)


def fixed_input(seed=SEED):
    gen = torch.Generator().manual_seed(seed + 2)
    return torch.randn(INPUT_SHAPE, generator=gen)


def export_onnx(model, example, input_names=("input",), output_names=("logits",)):
    """ONNX bytes, opset 13, constant folding on; PRESERVE keeps BatchNormalization unfused."""
    buf = io.BytesIO()
    # torch warns about PRESERVE + constant folding for models in training mode; ours are in eval.
    warnings.filterwarnings("ignore", message="It is recommended that constant folding be turned off")
    torch.onnx.export(model, example, buf, opset_version=13, input_names=list(input_names),
                      output_names=list(output_names), do_constant_folding=True,
                      training=torch.onnx.TrainingMode.PRESERVE)
    return buf.getvalue()


def check_initializers(onnx_bytes, model):
    """Every ONNX initializer named like a state_dict entry must hold the same values."""
    state = model.state_dict()
    proto = onnx.load_from_string(onnx_bytes)
    for init in proto.graph.initializer:
        if init.name in state:
            got = numpy_helper.to_array(init)
            assert np.array_equal(got, state[init.name].numpy()), init.name
    return proto


def gap_input_name(proto):
    """Name of the tensor feeding the GlobalAveragePool node (ResNet-18's layer4 output)."""
    pools = [n for n in proto.graph.node if n.op_type == "GlobalAveragePool"]
    assert len(pools) == 1, "expected exactly one GlobalAveragePool"
    return pools[0].input[0]


def input_gradient(model, x, target):
    """d logits[0, target] / d x, for a batch of inputs x (N, 3, H, W) -> (N, 3, H, W)."""
    x = x.clone().requires_grad_(True)
    model(x)[:, target].sum().backward()
    return x.grad


def gradcam_raw(model, x, target):
    """ReLU(sum_k mean_ij(dS/dA^k) A^k) at the output of layer4 -> (1, 1, 7, 7)."""
    store = {}
    handle = model.layer4.register_forward_hook(lambda m, i, out: store.update(A=out))
    try:
        score = model(x)[0, target]
    finally:
        handle.remove()
    A = store["A"]  # (1, 512, 7, 7)
    dA, = torch.autograd.grad(score, A)
    weights = dA.mean(dim=(2, 3), keepdim=True)
    return torch.relu((weights * A).sum(dim=1, keepdim=True)).detach()


def integrated_gradients(model, x, target, steps=IG_STEPS):
    """IG with a zeros baseline, trapezoid rule on alpha = k/steps, k = 0..steps."""
    alphas = torch.arange(steps + 1, dtype=torch.float64) / steps
    w = torch.full((steps + 1,), 1.0 / steps, dtype=torch.float64)
    w[0] = w[-1] = 0.5 / steps
    total = torch.zeros_like(x, dtype=torch.float64)
    for a, wk in zip(alphas, w):
        total += wk * input_gradient(model, (a * x.double()).float(), target).double()
    return (x.double() * total).float()


class TextCNN(torch.nn.Module):
    """Embedding 50x8 -> Conv1d(8,6,3) -> ReLU -> MaxPool1d(2) -> Conv1d(6,6,3) -> ReLU
    -> AdaptiveMaxPool1d(1) -> Linear(6,4)."""

    def __init__(self):
        super().__init__()
        self.embed = torch.nn.Embedding(50, 8)
        self.conv1 = torch.nn.Conv1d(8, 6, 3)
        self.pool1 = torch.nn.MaxPool1d(2)
        self.conv2 = torch.nn.Conv1d(6, 6, 3)
        self.pool2 = torch.nn.AdaptiveMaxPool1d(1)
        self.fc = torch.nn.Linear(6, 4)

    def forward(self, tokens):  # (N, T) int64
        h = self.embed(tokens).transpose(1, 2)  # (N, 8, T)
        h = self.pool1(torch.relu(self.conv1(h)))
        h = self.pool2(torch.relu(self.conv2(h)))  # (N, 6, 1)
        return self.fc(h.flatten(1))  # (N, 4)


def export_resnet18(out, x):
    model = build_resnet18()
    raw = export_onnx(model, x)
    proto = check_initializers(raw, model)
    size = write_gz(os.path.join(out, "resnet18.onnx.gz"), raw)
    with torch.no_grad():
        logits = model(x)
    target = int(logits.argmax(1))
    save_npy(out, "resnet18_logits.npy", logits)
    save_npy(out, "resnet18_saliency.npy", input_gradient(model, x, target))
    cam = gradcam_raw(model, x, target)
    save_npy(out, "resnet18_gradcam.npy", cam)
    ig = integrated_gradients(model, x, target)
    save_npy(out, "resnet18_ig.npy", ig)
    with torch.no_grad():
        gap = float(logits[0, target] - model(torch.zeros_like(x))[0, target])
    meta = {
        "target": target + 1,
        "target_note": "1-based class id (argmax + 1) of resnet18_logits.npy",
        "gradcam_layer": gap_input_name(proto),
        "gradcam_note": "raw Grad-CAM: ReLU(sum_k mean_ij(dS/dA^k) A^k) at this tensor (layer4 output)",
        "ig_steps": IG_STEPS,
        "ig_baseline": "zeros",
        "ig_rule": ("trapezoid on steps+1 points alpha_k = k/steps, k = 0..steps: "
                    "IG = (x - b) * sum_k w_k dS/dx(b + alpha_k (x - b)), w_0 = w_steps = 1/(2 steps), "
                    "w_k = 1/steps otherwise"),
        "ig_sum": float(ig.double().sum()),
        "score_minus_baseline_score": gap,
        "shapes": {"input": list(x.shape), "logits": list(logits.shape), "saliency": list(x.shape),
                   "gradcam": list(cam.shape), "ig": list(ig.shape)},
    }
    with open(os.path.join(out, "resnet18.json"), "w") as f:
        json.dump(meta, f, indent=2)
        f.write("\n")
    return size, meta


def export_mobilenet_v2(out, x):
    model = build_mobilenet_v2()
    raw = export_onnx(model, x)
    check_initializers(raw, model)
    size = write_gz(os.path.join(out, "mobilenet_v2.onnx.gz"), raw)
    with torch.no_grad():
        save_npy(out, "mobilenet_v2_logits.npy", model(x))
    return size


def export_textcnn(out):
    torch.manual_seed(SEED + 3)
    model = TextCNN().eval()
    gen = torch.Generator().manual_seed(SEED + 4)
    tokens = torch.randint(0, 50, (1, TEXT_TOKENS), generator=gen)
    raw = export_onnx(model, tokens, input_names=("tokens",))
    with open(os.path.join(out, "textcnn.onnx"), "wb") as f:
        f.write(raw)
    with torch.no_grad():
        save_npy(out, "textcnn_logits.npy", model(tokens))
    save_npy(out, "textcnn_tokens.npy", tokens)
    with open(os.path.join(out, "textcnn.json"), "w") as f:
        json.dump({"tokens_0based": tokens[0].tolist(), "tokens_1based": (tokens[0] + 1).tolist(),
                   "input": "tokens", "output": "logits"}, f)
        f.write("\n")
    return len(raw)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=os.path.join("tests", "fixtures", "torch"))
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    torch.set_num_threads(2)
    x = fixed_input()
    save_npy(args.out, "input.npy", x)
    size, meta = export_resnet18(args.out, x)
    print(f"resnet18.onnx.gz {size} bytes, target {meta['target']}, gradcam layer {meta['gradcam_layer']}, "
          f"IG sum {meta['ig_sum']:.4f} vs score gap {meta['score_minus_baseline_score']:.4f}")
    print(f"mobilenet_v2.onnx.gz {export_mobilenet_v2(args.out, x)} bytes")
    print(f"textcnn.onnx {export_textcnn(args.out)} bytes")


if __name__ == "__main__":
    main()
