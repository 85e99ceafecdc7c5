"""References for lumen's CAM family (tests/fixtures/explain/cam_family.*), from the papers' formulas in PyTorch.

Run from the repository root with Debian's PyTorch, after tools/export_fixtures.py:

    /usr/bin/python3 tools/ref_cam_family.py [--out tests/fixtures/explain]

pytorch-grad-cam is not packaged for Debian, so each method is written here from its paper, following
pytorch-grad-cam's conventions where the paper leaves a choice (noted at each function): HiResCAM,
LayerCAM, XGrad-CAM, EigenCAM, Score-CAM, Ablation-CAM and FullGrad. Two models:

- the shipped Fashion-MNIST CNN (data/models/fashion_cnn.lumen, read here from its safetensors file) on
  the first two test images of Debian's dataset-fashion-mnist (a batch of 2), at relu3 (32 x 14 x 14,
  where the gradient varies over positions) and relu5 (96 x 7 x 7, before global average pooling);
- the seeded ResNet-18 of tests/fixtures/torch (rebuilt and checked against the ONNX initializers, as
  tools/export_explain_fixtures.py does) on a seeded 96 x 96 input, at the outputs of layer3 (256 x 6 x 6)
  and layer4 (512 x 3 x 3);
- the small ViT, Swin and ConvNeXt of tests/fixtures/torch (tools/export_transformers.py, rebuilt and
  checked against their stored logits) on its batch of two 64 x 64 inputs: the ViT at its last block's
  ln_1 (tokens (N, 17, 48), read as a 4 x 4 grid after the class token as pytorch-grad-cam's
  vit_reshape_transform does), the Swin after its final norm (at `permute`, (N, 32, 8, 8)), the ConvNeXt
  at its last stage's output (N, 32, 8, 8). Ablation-CAM zeroes a channel in every token, as
  pytorch-grad-cam's AblationLayerVit (with 0, the paper's value: pytorch-grad-cam uses min - 1e7 for a
  layer whose minimum is not 0, as a LayerNorm's).

Everything goes into one safetensors file, cam_family.safetensors (float32): the inputs and the raw maps
(at the layer's resolution after ReLU; FullGrad's at the input's size before the final normalisation),
weights and scores; cam_family.json lists every tensor with its model and layer, the targets (1-based),
EigenCAM's explained variance and what FullGrad's decomposition leaves of the score.
"""
import argparse
import gzip
import json
import os
import struct
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import export_fixtures as ef  # noqa: E402  (the seeded ResNet-18 and its checks)
import export_transformers as et  # noqa: E402  (the seeded ViT, Swin and ConvNeXt)
from fixturelib import read_safetensors, write_safetensors  # noqa: E402

FASHION = os.path.join("data", "models", "fashion_cnn.lumen")
FASHION_IMAGES = "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz"
RESNET_SHAPE = (1, 3, 96, 96)


# ---------------------------------------------------------------- models

def build_fashion():
    """The shipped CNN: 5 x (conv 3x3 pad 1 -> BN -> ReLU), max pools after blocks 1 and 3, GAP, fc."""
    w = read_safetensors(FASHION)
    chans = [1, 16, 32, 32, 64, 96]
    layers = []
    for i in range(1, 6):
        conv = torch.nn.Conv2d(chans[i - 1], chans[i], 3, padding=1)
        bn = torch.nn.BatchNorm2d(chans[i])
        conv.weight.data, conv.bias.data = w[f"conv{i}.weight"], w[f"conv{i}.bias"]
        for k in ("weight", "bias", "running_mean", "running_var"):
            getattr(bn, k).data = w[f"bn{i}.{k}"]
        layers += [conv, bn, torch.nn.ReLU()]
        if i in (1, 3):
            layers.append(torch.nn.MaxPool2d(2))
    fc = torch.nn.Linear(96, 10)
    fc.weight.data, fc.bias.data = w["fc.weight"], w["fc.bias"]
    layers += [torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), fc]
    model = torch.nn.Sequential(*layers).eval()
    # relu3 and relu5 in lumen's names: the ReLUs of blocks 3 and 5
    relus = [m for m in model if isinstance(m, torch.nn.ReLU)]
    return model, {"relu3": relus[2], "relu5": relus[4]}


def fashion_images(n=2):
    with gzip.open(FASHION_IMAGES, "rb") as f:
        data = f.read()
    count, rows, cols = struct.unpack(">III", data[4:16])
    assert count >= n
    px = np.frombuffer(data[16:16 + n * rows * cols], dtype=np.uint8).reshape(n, 1, rows, cols)
    return torch.from_numpy(px.astype(np.float32) / 255.0)


def build_resnet18():
    model = ef.build_resnet18()
    for m in model.modules():  # in-place ReLUs would overwrite the BN outputs FullGrad differentiates
        if isinstance(m, torch.nn.ReLU):
            m.inplace = False
    with gzip.open(os.path.join("tests", "fixtures", "torch", "resnet18.onnx.gz"), "rb") as f:
        ef.check_initializers(f.read(), model)
    names = {"layer3": "/layer3/layer3.1/relu_1/Relu_output_0", "layer4": "/layer4/layer4.1/relu_1/Relu_output_0"}
    return model, {"layer3": model.layer3, "layer4": model.layer4}, names


# ---------------------------------------------------------------- activations and gradients

def activations(model, module, x, target=None):
    """A at module's output, the logits, and (with target) g = d sum_n logits[n, target[n]] / dA."""
    store = {}
    handle = module.register_forward_hook(lambda m, i, out: store.update(A=out))
    try:
        logits = model(x)
    finally:
        handle.remove()
    A = store["A"]
    if target is None:
        return A.detach(), logits.detach(), None
    score = logits[torch.arange(x.shape[0]), target].sum()
    g, = torch.autograd.grad(score, A)
    return A.detach(), logits.detach(), g


def top(model, x):
    with torch.no_grad():
        return model(x).argmax(1)


# ---------------------------------------------------------------- the methods (raw maps)

def hirescam(A, g):
    """Draelos & Carin: ReLU(sum_k g^k * A^k)."""
    return torch.relu((g * A).sum(1, keepdim=True))


def layercam(A, g):
    """Jiang et al.: ReLU(sum_k ReLU(g^k) * A^k)."""
    return torch.relu((torch.relu(g) * A).sum(1, keepdim=True))


def xgradcam(A, g):
    """Fu et al.: w_k = sum(A^k g^k) / sum(A^k) (pytorch-grad-cam: + 1e-7), ReLU(sum_k w_k A^k)."""
    w = (g * A).sum((2, 3), keepdim=True) / (A.sum((2, 3), keepdim=True) + 1e-7)
    return torch.relu((w * A).sum(1, keepdim=True)), w.flatten(1)


def eigencam(A, center=True):
    """Muhammad & Yeasin: X (positions x channels), centred as pytorch-grad-cam does; X @ VT[0] from
    numpy's SVD, with VT[0]'s sign chosen so its sum is >= 0 (lumen's rule; the SVD leaves it open)."""
    maps, explained = [], []
    for a in A.double().numpy():
        X = a.reshape(a.shape[0], -1).T
        if center:
            X = X - X.mean(axis=0)
        _, S, VT = np.linalg.svd(X, full_matrices=False)
        v = VT[0] if VT[0].sum() >= 0 else -VT[0]
        maps.append((X @ v).reshape(a.shape[1:]))
        explained.append(float(S[0] ** 2 / (S ** 2).sum()))
    return torch.relu(torch.from_numpy(np.stack(maps)[:, None]).float()), explained


def scorecam(model, x, A, target, batch=64):
    """Wang et al., Algorithm 1 / pytorch-grad-cam: masks = min-max normalised (+1e-8) bilinear upsampling
    (align_corners=True, UpsamplingBilinear2d) of each channel; S_k = logit of the masked input;
    alpha = softmax_k(S); ReLU(sum_k alpha_k A^k)."""
    up = F.interpolate(A, size=x.shape[-2:], mode="bilinear", align_corners=True)
    flat = up.flatten(2)
    lo, hi = flat.min(-1)[0][:, :, None, None], flat.max(-1)[0][:, :, None, None]
    masks = (up - lo) / (hi - lo + 1e-8)
    scores = torch.zeros(A.shape[:2])
    with torch.no_grad():
        for n in range(x.shape[0]):
            inputs = x[n:n + 1] * masks[n][:, None]  # (K, C, H, W)
            for k in range(0, inputs.shape[0], batch):
                scores[n, k:k + batch] = model(inputs[k:k + batch])[:, target[n]]
    alpha = torch.softmax(scores, 1)
    return torch.relu((alpha[:, :, None, None] * A).sum(1, keepdim=True)), alpha, scores


def ablationcam(model, module, x, A, logits, target, batch=64):
    """Desai & Ramaswamy: channel k of the layer's output set to 0 (the paper; pytorch-grad-cam too
    after a ReLU), w_k = (y - y_k) / y with y the target logit, ReLU(sum_k w_k A^k). The whole model runs
    on copies of each input, a forward hook zeroing channel k of copy k."""
    N, K = A.shape[:2]
    ablated = torch.zeros(N, K)
    state = {}

    def hook(m, i, out):
        out = out.clone()
        for j, k in enumerate(state["channels"]):
            out[j, k] = 0
        return out

    handle = module.register_forward_hook(hook)
    try:
        with torch.no_grad():
            for n in range(N):
                for k0 in range(0, K, batch):
                    state["channels"] = list(range(k0, min(K, k0 + batch)))
                    copies = x[n:n + 1].expand(len(state["channels"]), *x.shape[1:])
                    ablated[n, k0:k0 + batch] = model(copies)[:, target[n]]
    finally:
        handle.remove()
    y = logits[torch.arange(N), target][:, None]
    w = (y - ablated) / y
    return torch.relu((w[:, :, None, None] * A).sum(1, keepdim=True)), w, ablated


def fullgrad(model, x, target, eps=0.0):
    """Srinivas & Fleuret with pytorch-grad-cam's choices: the biases of Conv2d and BatchNorm2d (BN's
    bias - weight * mean / sqrt(var + eps)); psi = |.| min-max normalised per sample and channel, resized
    like cv2.resize (bilinear, align_corners=False), summed over channels; plus the same for the input
    gradient times the input. The normalisation is the paper's exact one, (t - min) / (max - min) (0 for a
    constant channel); eps = 1e-7 gives pytorch-grad-cam's (t - min) / (max - min + 1e-7), which shrinks
    channels whose bias-gradients are tiny. Also returns what the decomposition
    score = sum(g x) + sum_l sum(g_l b_l) (every bias, the fc's too) leaves over."""
    layers, outs = [], []
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            b = m.bias - m.weight * m.running_mean / torch.sqrt(m.running_var + m.eps)
        elif isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)) and m.bias is not None:
            b = m.bias
        else:
            continue
        layers.append((m, b.detach()))
    handles = [m.register_forward_hook(lambda m, i, out: outs.append(out)) for m, _ in layers]
    xg = x.clone().requires_grad_(True)
    try:
        logits = model(xg)
    finally:
        for h in handles:
            h.remove()
    N = x.shape[0]
    score = logits[torch.arange(N), target]
    grads = torch.autograd.grad(score.sum(), [xg] + outs)
    H, W = x.shape[-2:]

    def psi(t):
        t = t.abs()
        flat = t.flatten(2)
        lo, hi = flat.min(-1)[0][:, :, None, None], flat.max(-1)[0][:, :, None, None]
        t = torch.where(hi > lo, (t - lo) / (hi - lo + eps), torch.zeros_like(t))
        if t.shape[-2:] != (H, W):
            t = F.interpolate(t, size=(H, W), mode="bilinear", align_corners=False)
        return t.sum(1, keepdim=True)

    gx = grads[0] * x
    cam = psi(gx)
    parts = gx.flatten(1).sum(1)
    for (m, b), g in zip(layers, grads[1:]):
        if isinstance(m, torch.nn.Linear):
            parts = parts + (g * b).sum(1)
            continue
        gb = g * b[None, :, None, None]
        parts = parts + gb.flatten(1).sum(1)
        cam = cam + psi(gb)
    residual = (score - parts).detach()
    return cam.detach(), residual


# ---------------------------------------------------------------- fixtures

def rel_l2(a, b):
    return float((a - b).double().norm() / b.double().norm())


class Writer:
    def __init__(self, out):
        self.out, self.tensors, self.meta = out, {}, {"tensors": {}}

    def save(self, name, t, **info):
        arr = np.ascontiguousarray((t.detach().numpy() if torch.is_tensor(t) else np.asarray(t)).astype(np.float32))
        self.tensors[name] = arr
        self.meta["tensors"][name] = dict(info, shape=list(arr.shape))

    def close(self):
        write_safetensors(os.path.join(self.out, "cam_family.safetensors"), self.tensors)
        with open(os.path.join(self.out, "cam_family.json"), "w") as f:
            json.dump(self.meta, f, indent=1, sort_keys=True)
            f.write("\n")


def fashion_refs(w):
    model, mods = build_fashion()
    x = fashion_images(2)
    target = top(model, x)
    w.save("fashion_input", x, what="Fashion-MNIST test images 1 and 2, in [0, 1]")
    w.meta["fashion"] = {"target": (target + 1).tolist(), "input": "fashion_input"}
    for layer in ("relu3", "relu5"):
        A, logits, g = activations(model, mods[layer], x, target)
        w.save(f"fashion_{layer}_hirescam", hirescam(A, g), model="fashion", layer=layer)
        w.save(f"fashion_{layer}_layercam", layercam(A, g), model="fashion", layer=layer)
        cam, weights = xgradcam(A, g)
        w.save(f"fashion_{layer}_xgradcam", cam, model="fashion", layer=layer)
        w.save(f"fashion_{layer}_xgradcam_weights", weights, model="fashion", layer=layer)
        for center in (True, False):
            cam, explained = eigencam(A, center)
            tag = "" if center else "_uncentred"
            w.save(f"fashion_{layer}_eigencam{tag}", cam, model="fashion", layer=layer, center=center,
                   explained=explained)
        cam, wts, ablated = ablationcam(model, mods[layer], x, A, logits, target)
        w.save(f"fashion_{layer}_ablationcam", cam, model="fashion", layer=layer)
        w.save(f"fashion_{layer}_ablationcam_weights", wts, model="fashion", layer=layer)
        cam, alpha, scores = scorecam(model, x, A, target)
        w.save(f"fashion_{layer}_scorecam", cam, model="fashion", layer=layer)
        w.save(f"fashion_{layer}_scorecam_weights", alpha, model="fashion", layer=layer)
        w.save(f"fashion_{layer}_scorecam_scores", scores, model="fashion", layer=layer)
    cam, residual = fullgrad(model, x, target)
    w.save("fashion_fullgrad", cam, model="fashion", residual=residual.tolist(),
           pytorch_grad_cam_eps_rel_l2=rel_l2(fullgrad(model, x, target, 1e-7)[0], cam))


def resnet_refs(w):
    model, mods, names = build_resnet18()
    x = torch.randn(RESNET_SHAPE, generator=torch.Generator().manual_seed(ef.SEED + 20))
    target = top(model, x)
    w.save("resnet18_input", x, what="seeded N(0, 1) input (1, 3, 96, 96)")
    w.meta["resnet18"] = {"target": (target + 1).tolist(), "input": "resnet18_input",
                          "model": "tests/fixtures/torch/resnet18.onnx.gz", "layers": names}
    for layer in ("layer3", "layer4"):
        A, logits, g = activations(model, mods[layer], x, target)
        w.save(f"resnet18_{layer}_hirescam", hirescam(A, g), model="resnet18", layer=layer)
        w.save(f"resnet18_{layer}_layercam", layercam(A, g), model="resnet18", layer=layer)
        w.save(f"resnet18_{layer}_xgradcam", xgradcam(A, g)[0], model="resnet18", layer=layer)
        cam, explained = eigencam(A)
        w.save(f"resnet18_{layer}_eigencam", cam, model="resnet18", layer=layer, explained=explained)
    A, logits, _ = activations(model, mods["layer4"], x)
    cam, wts, _ = ablationcam(model, mods["layer4"], x, A, logits, target)
    w.save("resnet18_layer4_ablationcam", cam, model="resnet18", layer="layer4")
    w.save("resnet18_layer4_ablationcam_weights", wts, model="resnet18", layer="layer4")
    cam, residual = fullgrad(model, x, target)
    w.save("resnet18_fullgrad", cam, model="resnet18", residual=residual.tolist(),
           pytorch_grad_cam_eps_rel_l2=rel_l2(fullgrad(model, x, target, 1e-7)[0], cam))


def transformer_refs(w):
    x = et.vision_input()
    specs = {
        "vit": (et.build_vit, lambda m: m.encoder.layers[-1].ln_1,
                lambda t: t[:, 1:, :].reshape(t.shape[0], 4, 4, t.shape[2]).permute(0, 3, 1, 2),
                "/encoder/layers/encoder_layer_1/ln_1/LayerNormalization_output_0"),
        "swin": (et.build_swin, lambda m: m.permute, None, "/permute/Transpose_output_0"),
        "convnext": (et.build_convnext, lambda m: m.features[-1], None,
                     "/features/features.3/features.3.0/Add_output_0"),
    }
    w.save("vision_input", x, what="tests/fixtures/torch/vision_input.npy")
    w.meta["transformers"] = {}
    for name, (build, module_of, reshape, layer) in specs.items():
        model = build()
        with torch.no_grad():
            logits = model(x)
        stored = np.load(os.path.join("tests", "fixtures", "torch", f"{name}_logits.npy"))
        assert np.abs(logits.numpy() - stored).max() < 1e-5, name  # the model of the ONNX fixture
        module = module_of(model)
        target = logits.argmax(1)
        store = {}

        def hook(m, i, out):
            store["raw"] = out
            return out

        handle = module.register_forward_hook(hook)
        try:
            score = model(x)[torch.arange(2), target].sum()
        finally:
            handle.remove()
        raw = store["raw"]
        graw, = torch.autograd.grad(score, raw)
        as_maps = reshape or (lambda t: t)
        A, g = as_maps(raw.detach()), as_maps(graw)
        gradcam = torch.relu((g.mean((2, 3), keepdim=True) * A).sum(1, keepdim=True))
        w.save(f"{name}_gradcam", gradcam, model=name, layer=layer)
        w.save(f"{name}_hirescam", hirescam(A, g), model=name, layer=layer)
        w.save(f"{name}_layercam", layercam(A, g), model=name, layer=layer)
        w.save(f"{name}_xgradcam", xgradcam(A, g)[0], model=name, layer=layer)
        w.save(f"{name}_eigencam", eigencam(A)[0], model=name, layer=layer)
        cam, alpha, _ = scorecam(model, x, A, target)
        w.save(f"{name}_scorecam", cam, model=name, layer=layer)
        w.save(f"{name}_scorecam_weights", alpha, model=name, layer=layer)
        # Ablation-CAM: channel k zeroed in the layer's own output (every token of a token layer)
        K = A.shape[1]
        ablated = torch.zeros(2, K)
        state = {}

        def ablate(m, i, out):
            out = out.clone()
            if reshape:  # tokens (N, T, C): the channel in every token, the class token too
                out[..., state["k"]] = 0
            else:
                out[:, state["k"]] = 0
            return out

        handle = module.register_forward_hook(ablate)
        try:
            with torch.no_grad():
                for k in range(K):
                    state["k"] = k
                    ablated[:, k] = model(x)[torch.arange(2), target]
        finally:
            handle.remove()
        y = logits[torch.arange(2), target][:, None]
        wts = (y - ablated) / y
        w.save(f"{name}_ablationcam", torch.relu((wts[:, :, None, None] * A).sum(1, keepdim=True)), model=name,
               layer=layer)
        w.save(f"{name}_ablationcam_weights", wts, model=name, layer=layer)
        w.meta["transformers"][name] = {"layer": layer, "target": (target + 1).tolist(),
                                        "reshape": [4, 4] if reshape else None}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=os.path.join("tests", "fixtures", "explain"))
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    torch.set_num_threads(2)
    torch.manual_seed(0)
    w = Writer(args.out)
    fashion_refs(w)
    resnet_refs(w)
    transformer_refs(w)
    w.meta["torch"] = torch.__version__
    w.close()
    print(f"{len(w.tensors)} tensors; fashion targets {w.meta['fashion']['target']}, "
          f"resnet18 target {w.meta['resnet18']['target']}")


if __name__ == "__main__":
    main()
