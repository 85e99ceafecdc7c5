"""Export the transformer and recurrent-net fixtures for lumen's tests (tests/fixtures/torch/).

Run from the repository root with Debian's PyTorch:

    /usr/bin/python3 tools/export_transformers.py [--out tests/fixtures/torch]

Everything is seeded, so a rerun writes the same numbers. It writes:
  * small models exported to ONNX with a dynamic batch, and PyTorch's logits and input saliency for a
    batch of 2: a 2-layer ViT at 64x64 (opsets 13 and 17), a small ConvNeXt, a small Swin, a
    TransformerEncoder text classifier, an LSTM and a bidirectional GRU text classifier;
  * ops_opset{12,13,17}.onnx: one torch module whose outputs exercise each new operator, with its
    outputs for a batch of 2 and the input gradient of a fixed random projection of them;
  * forms_opset{11,17}.onnx: ONNX graphs written node by node for the operator forms PyTorch does not
    export (LSTM / GRU directions, layouts, initial states and linear_before_reset = 0, ReduceL2,
    variadic Min / Max, Einsum forms, ...), with NumPy references written from the ONNX operator specs;
  * unsupported_*.onnx: tiny graphs with operator forms lumen refuses (a clear error each);
  * layers.safetensors: torch.nn LayerNorm, MultiheadAttention, TransformerEncoderLayer, LSTM and GRU
    weights, inputs, outputs and input gradients, for lumen.nn's layers on the same weights.
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
from onnx import TensorProto, helper, numpy_helper
import torch
import torch.nn.functional as F
from torchvision.models.convnext import CNBlockConfig, ConvNeXt
from torchvision.models.swin_transformer import SwinTransformer
from torchvision.models.vision_transformer import VisionTransformer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fixturelib import save_npy, write_gz, write_safetensors  # noqa: E402

SEED = 4321
warnings.filterwarnings("ignore")


# ---------------------------------------------------------------------------- helpers

def quantise_(model, seed):
    """Fan-in scaled random weights (N(0, 1 / fan_in)) for every weight matrix and kernel, then every
    parameter rounded to a grid of a quarter of its std (a power of two), so the ONNX files gzip well;
    norm weights become 1 + small noise and biases small noise."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "layer_scale" in name:  # ConvNeXt's 1e-6 would silence every block
                p.copy_(0.5 + 0.25 * torch.randn(p.shape, generator=gen))
            if p.dim() >= 2 and name.endswith("weight") and "embed" not in name:
                # fan-in scaled weights (the zoo's inits are tiny or zero for some heads, which would leave
                # the logits all but independent of the input)
                p.copy_(torch.randn(p.shape, generator=gen) / math.sqrt(p[0].numel()))
            if p.numel() > 1 and float(p.std()) > 0:
                step = 2.0 ** math.floor(math.log2(float(p.std()) / 4))
                p.copy_(torch.round(p / step) * step)
            elif p.dim() == 1 and "weight" in name:  # norm weights: 1 + small spread
                p.copy_(1 + torch.round(0.2 * torch.randn(p.shape, generator=gen) * 8) / 8)
            elif p.dim() == 1 and "bias" in name:
                p.copy_(torch.round(0.1 * torch.randn(p.shape, generator=gen) * 16) / 16)
    return model.eval()


def export_onnx(model, example, opset, input_name, extra_dynamic=None):
    buf = io.BytesIO()
    dyn = {input_name: {0: "batch"}, "logits": {0: "batch"}}
    torch.onnx.export(model, example, buf, opset_version=opset, input_names=[input_name], output_names=["logits"],
                      dynamic_axes=dyn, do_constant_folding=True)
    return buf.getvalue()


def node_outputs(raw, op_type):
    return [n.output[0] for n in onnx.load_from_string(raw).graph.node if n.op_type == op_type]


# ---------------------------------------------------------------------------- image models

def vision_input():
    gen = torch.Generator().manual_seed(SEED + 1)
    return torch.randn(2, 3, 64, 64, generator=gen)


def build_vit():
    torch.manual_seed(SEED + 2)
    m = VisionTransformer(image_size=64, patch_size=16, num_layers=2, num_heads=3, hidden_dim=48, mlp_dim=96,
                          num_classes=10)
    with torch.no_grad():  # a class token and positions that are not ~0
        m.class_token.normal_(0, 0.5)
        m.encoder.pos_embedding.normal_(0, 0.5)
    return quantise_(m, SEED + 2)


def build_convnext():
    torch.manual_seed(SEED + 3)
    m = ConvNeXt([CNBlockConfig(16, 32, 2), CNBlockConfig(32, None, 1)], stochastic_depth_prob=0.0, num_classes=10)
    return quantise_(m, SEED + 3)


def build_swin():
    torch.manual_seed(SEED + 4)
    m = SwinTransformer(patch_size=[4, 4], embed_dim=16, depths=[2, 2], num_heads=[2, 4], window_size=[4, 4],
                        stochastic_depth_prob=0.0, num_classes=10)
    with torch.no_grad():
        for mod in m.modules():
            if hasattr(mod, "relative_position_bias_table"):
                mod.relative_position_bias_table.normal_(0, 0.5)
    return quantise_(m, SEED + 4)


def saliency(model, x):
    """d top score / d x, each row for its own top class (the rows do not interact)."""
    x = x.clone().requires_grad_(True)
    y = model(x)
    top = y.argmax(1)
    y.gather(1, top[:, None]).sum().backward()
    return x.grad


def export_image_model(out, name, model, x, opsets=(13,)):
    with torch.no_grad():
        logits = model(x)
    save_npy(out, f"{name}_logits.npy", logits)
    save_npy(out, f"{name}_saliency.npy", saliency(model, x))
    info = {"input": "input", "output": "logits", "top_1based": (logits.argmax(1) + 1).tolist()}
    sizes = {}
    for opset in opsets:
        raw = export_onnx(model, x[:1], opset, "input")
        fname = f"{name}_opset{opset}.onnx.gz" if len(opsets) > 1 else f"{name}.onnx.gz"
        sizes[fname] = write_gz(os.path.join(out, fname), raw)
        info.setdefault("softmax_nodes", {})[fname] = node_outputs(raw, "Softmax")
    return info, sizes


# ---------------------------------------------------------------------------- text models

VOCAB, TOKENS = 50, 12


class TextTransformer(torch.nn.Module):
    """Embedding 50x16 + learned positions -> 2 TransformerEncoderLayers (2 heads, ff 32, batch_first)
    -> mean over tokens -> Linear(16, 4)."""

    def __init__(self):
        super().__init__()
        self.embed = torch.nn.Embedding(VOCAB, 16)
        self.pos = torch.nn.Parameter(torch.randn(1, TOKENS, 16) * 0.5)
        layer = torch.nn.TransformerEncoderLayer(16, 2, 32, dropout=0.1, batch_first=True)
        self.encoder = torch.nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
        self.fc = torch.nn.Linear(16, 4)

    def forward(self, tokens):
        return self.fc(self.encoder(self.embed(tokens) + self.pos).mean(1))


class TextLSTM(torch.nn.Module):
    """Embedding 50x8 -> LSTM(8, 12, 2 layers, batch_first) -> Linear(24, 4) on [h_n of the last layer,
    c_n of the last layer] (so the ONNX LSTM's Y_h and Y_c outputs are used)."""

    def __init__(self):
        super().__init__()
        self.embed = torch.nn.Embedding(VOCAB, 8)
        self.rnn = torch.nn.LSTM(8, 12, num_layers=2, batch_first=True)
        self.fc = torch.nn.Linear(24, 4)

    def forward(self, tokens):
        _, (h, c) = self.rnn(self.embed(tokens))
        return self.fc(torch.cat([h[-1], c[-1]], 1))


class TextGRU(torch.nn.Module):
    """Embedding 50x8 -> bidirectional GRU(8, 12, batch_first) -> Linear(24 + 24, 4) on [the output at the
    last step, h_n forward, h_n backward]."""

    def __init__(self):
        super().__init__()
        self.embed = torch.nn.Embedding(VOCAB, 8)
        self.rnn = torch.nn.GRU(8, 12, batch_first=True, bidirectional=True)
        self.fc = torch.nn.Linear(48, 4)

    def forward(self, tokens):
        out, h = self.rnn(self.embed(tokens))
        return self.fc(torch.cat([out[:, -1], h[0], h[1]], 1))


def text_tokens():
    gen = torch.Generator().manual_seed(SEED + 5)
    return torch.randint(0, VOCAB, (2, TOKENS), generator=gen)


def embedding_saliency(model, tokens):
    """d top score / d embedding output (N, T, E), each row for its own top class."""
    store = {}

    def hook(mod, inp, out):
        out.retain_grad()
        store["e"] = out

    h = model.embed.register_forward_hook(hook)
    try:
        y = model(tokens)
    finally:
        h.remove()
    y.gather(1, y.argmax(1)[:, None]).sum().backward()
    return store["e"].grad


def export_text_model(out, name, model, tokens):
    with torch.no_grad():
        logits = model(tokens)
    save_npy(out, f"{name}_logits.npy", logits)
    save_npy(out, f"{name}_saliency.npy", embedding_saliency(model, tokens))
    raw = export_onnx(model, tokens[:1], 13, "tokens")
    size = write_gz(os.path.join(out, f"{name}.onnx.gz"), raw)
    gathers = node_outputs(raw, "Gather")
    info = {"input": "tokens", "output": "logits", "top_1based": (logits.argmax(1) + 1).tolist(),
            "embedding_layer": gathers[0], "softmax_nodes": node_outputs(raw, "Softmax")}
    return info, {f"{name}.onnx.gz": size}


# ---------------------------------------------------------------------------- operators, as torch exports them

OPS_OUTPUTS = ["unary", "gelu", "logic", "expand", "range", "mod", "scatter", "split", "reduce", "minmax",
               "layernorm", "einsum", "matmul", "softmax", "slice", "reshape", "norm"]


class Ops(torch.nn.Module):
    def __init__(self):
        super().__init__()
        g = torch.Generator().manual_seed(SEED + 6)
        self.w = torch.nn.Parameter(torch.randn(3, 5, 2, generator=g))
        self.lnw = torch.nn.Parameter(1 + 0.3 * torch.randn(4, 5, generator=g))
        self.lnb = torch.nn.Parameter(0.3 * torch.randn(4, 5, generator=g))

    def forward(self, x):  # (N, 3, 4, 5)
        n = x.shape[0]
        o = {}
        o["unary"] = (torch.sqrt(x.abs() + 1) + torch.reciprocal(x + 5) + torch.exp(x * 0.3) + torch.log(x.abs() + 1)
                      - torch.erf(x) + (-x) + x.abs() ** 1.5 + (x.abs() + 0.5) ** (x * 0.3))
        o["gelu"] = F.gelu(x)
        o["logic"] = torch.where((torch.eq(torch.round(x * 2), 1) | (x < -1)) & ~(x > 1.5), x, x * 0.1)
        o["expand"] = x[:, :1].expand(-1, 3, -1, -1) + x.repeat(1, 2, 1, 1)[:, 3:]
        o["range"] = torch.arange(x.shape[3]) * x
        o["mod"] = torch.remainder(x, 0.7) + torch.fmod(x, 0.7)
        y = x.clone()
        y[:, 1, 2] = x[:, 0, 0] * 2
        o["scatter"] = y
        a, b = torch.split(x, [2, 3], dim=3)
        o["split"] = a.sum(-1) + b.mean(-1)
        o["reduce"] = x.sum(dim=(1, 3), keepdim=True) + torch.linalg.vector_norm(x, dim=2, keepdim=True)
        o["minmax"] = torch.minimum(x, x.flip(3)) + torch.maximum(x, x * 0.5)
        o["layernorm"] = F.layer_norm(x, (4, 5), self.lnw, self.lnb)
        o["einsum"] = torch.einsum("ncij,ncjk->ncik", x, x.transpose(2, 3)) + torch.einsum("ncij->ncji", x[..., :4])
        o["matmul"] = x @ self.w
        o["softmax"] = torch.softmax(x, 1)
        o["slice"] = torch.cat([x[:, :, 2:2], x[:, :, :1], x[:, :, ::2], x.flip(2)[:, :, 1::2]], 2)
        o["reshape"] = x.reshape(n * 3, -1).view(n, 3, 4, 5)
        o["norm"] = x.norm(p=2, dim=1)
        return tuple(o[k] for k in OPS_OUTPUTS)


def export_ops(out):
    model = Ops().eval()
    gen = torch.Generator().manual_seed(SEED + 7)
    x = torch.randn(2, 3, 4, 5, generator=gen)
    xr = x.clone().requires_grad_(True)
    outs = model(xr)
    proj = [torch.randn(o.shape, generator=gen) for o in outs]
    sum(((o * r).sum() for o, r in zip(outs, proj)), torch.zeros(())).backward()
    save_npy(out, "ops_input.npy", x)
    save_npy(out, "ops_grad.npy", xr.grad)
    tensors = {f"out.{k}": o for k, o in zip(OPS_OUTPUTS, outs)}
    tensors.update({f"proj.{k}": r for k, r in zip(OPS_OUTPUTS, proj)})
    sizes = {"ops.safetensors": write_safetensors(os.path.join(out, "ops.safetensors"), tensors)}
    for opset in (12, 13, 17):
        buf = io.BytesIO()
        torch.onnx.export(model, x[:1], buf, opset_version=opset, input_names=["x"], output_names=OPS_OUTPUTS,
                          dynamic_axes={"x": {0: "batch"}, **{k: {0: "batch"} for k in OPS_OUTPUTS}})
        fname = f"ops_opset{opset}.onnx"
        with open(os.path.join(out, fname), "wb") as f:
            f.write(buf.getvalue())
        sizes[fname] = len(buf.getvalue())
    return sizes


# ---------------------------------------------------------------------------- forms, node by node, NumPy references

def sigmoid(v):
    return 1 / (1 + np.exp(-v))


def np_lstm(X, W, R, B, h0, c0, direction, layout):
    """ONNX LSTM (default activations, no peepholes): gates i, o, f, c; returns Y, Y_h, Y_c."""
    if layout:
        X = X.transpose(1, 0, 2)
    T, N, _ = X.shape
    D, H4, _ = W.shape
    H = H4 // 4
    Y = np.zeros((T, D, N, H), np.float64)
    Yh, Yc = np.zeros((D, N, H)), np.zeros((D, N, H))
    for d in range(D):
        rev = direction == "reverse" or (direction == "bidirectional" and d == 1)
        h = h0[d].astype(np.float64) if h0 is not None else np.zeros((N, H))
        c = c0[d].astype(np.float64) if c0 is not None else np.zeros((N, H))
        for t in (range(T - 1, -1, -1) if rev else range(T)):
            g = X[t] @ W[d].T + h @ R[d].T + (B[d, :4 * H] + B[d, 4 * H:] if B is not None else 0)
            i, o, f, cc = sigmoid(g[:, :H]), sigmoid(g[:, H:2 * H]), sigmoid(g[:, 2 * H:3 * H]), np.tanh(g[:, 3 * H:])
            c = f * c + i * cc
            h = o * np.tanh(c)
            Y[t, d] = h
        Yh[d], Yc[d] = h, c
    if layout:
        return Y.transpose(2, 0, 1, 3), Yh.transpose(1, 0, 2), Yc.transpose(1, 0, 2)
    return Y, Yh, Yc


def np_gru(X, W, R, B, h0, direction, lbr):
    """ONNX GRU (default activations): gates z, r, h; returns Y, Y_h."""
    T, N, _ = X.shape
    D, H3, _ = W.shape
    H = H3 // 3
    Y = np.zeros((T, D, N, H))
    Yh = np.zeros((D, N, H))
    for d in range(D):
        rev = direction == "reverse" or (direction == "bidirectional" and d == 1)
        Wb, Rb = (B[d, :3 * H], B[d, 3 * H:]) if B is not None else (np.zeros(3 * H), np.zeros(3 * H))
        h = h0[d].astype(np.float64) if h0 is not None else np.zeros((N, H))
        Wz, Wr, Wh = W[d, :H], W[d, H:2 * H], W[d, 2 * H:]
        Rz, Rr, Rh = R[d, :H], R[d, H:2 * H], R[d, 2 * H:]
        for t in (range(T - 1, -1, -1) if rev else range(T)):
            x = X[t]
            z = sigmoid(x @ Wz.T + h @ Rz.T + Wb[:H] + Rb[:H])
            r = sigmoid(x @ Wr.T + h @ Rr.T + Wb[H:2 * H] + Rb[H:2 * H])
            if lbr:
                hh = np.tanh(x @ Wh.T + r * (h @ Rh.T + Rb[2 * H:]) + Wb[2 * H:])
            else:
                hh = np.tanh(x @ Wh.T + (r * h) @ Rh.T + Rb[2 * H:] + Wb[2 * H:])
            h = (1 - z) * hh + z * h
            Y[t, d] = h
        Yh[d] = h
    return Y, Yh


class Forms:
    """Collects nodes, initializers and outputs of one graph, and the reference value of each output."""

    def __init__(self, x):
        self.x, self.nodes, self.inits, self.outputs, self.refs, self.k = x, [], [], [], {}, 0

    def const(self, a, dtype=np.float32):
        self.k += 1
        name = f"c{self.k}"
        self.inits.append(numpy_helper.from_array(np.asarray(a, dtype), name))
        return name

    def node(self, op, inputs, n_out=1, **attrs):
        self.k += 1
        outs = [f"{op.lower()}{self.k}_{i}" for i in range(n_out)]
        self.nodes.append(helper.make_node(op, inputs, outs, name=f"{op}_{self.k}", **attrs))
        return outs if n_out > 1 else outs[0]

    def output(self, name, tensor_name, ref):
        self.nodes.append(helper.make_node("Identity", [tensor_name], [name], name=f"out_{name}"))
        self.outputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, list(np.shape(ref))))
        self.refs[name] = np.asarray(ref, np.float32)

    def model(self, opset):
        g = helper.make_graph(self.nodes, "forms", [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                              list(self.x.shape))], self.outputs, self.inits)
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)], producer_name="export_transformers")
        m.ir_version = 8
        onnx.checker.check_model(m)
        return m.SerializeToString()


def forms17(x, gen):
    """x (2, 6, 4): the recurrent forms (as (T, N, I) = (2, 6, 4) or batch-first), Einsum, ReduceL2, ..."""
    f = Forms(x)
    rnd = lambda *s: (gen.standard_normal(s) * 0.5).astype(np.float32)
    X = x.astype(np.float64)
    I, H = 4, 3
    # LSTM: forward with biases and initial states; reverse without; bidirectional, batch-first (layout 1)
    W, R, B = rnd(1, 4 * H, I), rnd(1, 4 * H, H), rnd(1, 8 * H)
    h0, c0 = rnd(1, 6, H), rnd(1, 6, H)
    y, yh, yc = f.node("LSTM", ["x", f.const(W), f.const(R), f.const(B), "", f.const(h0), f.const(c0)], 3,
                       hidden_size=H)
    Y, Yh, Yc = np_lstm(X, W, R, B, h0, c0, "forward", 0)
    f.output("lstm_y", y, Y)
    f.output("lstm_yh", yh, Yh)
    f.output("lstm_yc", yc, Yc)
    W2, R2 = rnd(1, 4 * H, I), rnd(1, 4 * H, H)
    y = f.node("LSTM", ["x", f.const(W2), f.const(R2)], 1, hidden_size=H, direction="reverse")
    f.output("lstm_reverse", y, np_lstm(X, W2, R2, None, None, None, "reverse", 0)[0])
    W3, R3, B3 = rnd(2, 4 * H, I), rnd(2, 4 * H, H), rnd(2, 8 * H)
    h03 = rnd(2, 2, H).transpose(1, 0, 2).copy()  # layout 1: (N, D, H) with N = 2
    y, yh = f.node("LSTM", ["x", f.const(W3), f.const(R3), f.const(B3), "", f.const(h03)], 2, hidden_size=H,
                   direction="bidirectional", layout=1)
    Y, Yh, _ = np_lstm(X, W3, R3, B3, h03.transpose(1, 0, 2), None, "bidirectional", 1)
    f.output("lstm_bidir_batch_first", y, Y)
    f.output("lstm_bidir_yh", yh, Yh)
    # GRU: linear_before_reset 0 forward with h0; 0 reverse; 1 bidirectional
    Wg, Rg, Bg, hg = rnd(1, 3 * H, I), rnd(1, 3 * H, H), rnd(1, 6 * H), rnd(1, 6, H)
    y = f.node("GRU", ["x", f.const(Wg), f.const(Rg), f.const(Bg), "", f.const(hg)], 1, hidden_size=H)
    f.output("gru", y, np_gru(X, Wg, Rg, Bg, hg, "forward", 0)[0])
    y, yh = f.node("GRU", ["x", f.const(Wg), f.const(Rg), f.const(Bg)], 2, hidden_size=H, direction="reverse")
    Y, Yh = np_gru(X, Wg, Rg, Bg, None, "reverse", 0)
    f.output("gru_reverse", y, Y)
    f.output("gru_reverse_yh", yh, Yh)
    W4, R4, B4 = rnd(2, 3 * H, I), rnd(2, 3 * H, H), rnd(2, 6 * H)
    y = f.node("GRU", ["x", f.const(W4), f.const(R4), f.const(B4)], 1, hidden_size=H, direction="bidirectional",
               linear_before_reset=1)
    f.output("gru_bidir_lbr", y, np_gru(X, W4, R4, B4, None, "bidirectional", 1)[0])
    # Einsum forms
    m = rnd(4, 5)
    f.output("einsum_mm", f.node("Einsum", ["x", f.const(m)], equation="tni,ij->tnj"), np.einsum("tni,ij->tnj", X, m))
    f.output("einsum_outer", f.node("Einsum", ["x", "x"], equation="tni,tnj->tij"), np.einsum("tni,tnj->tij", X, X))
    f.output("einsum_trace", f.node("Einsum", ["x", "x"], equation="...i,...i->..."), np.einsum("...i,...i->...", X, X))
    f.output("einsum_perm", f.node("Einsum", ["x"], equation="abc->cab"), np.einsum("abc->cab", X))
    # reductions (axes attributes until opset 18), variadic Min / Max, Expand (bidirectional broadcast)
    f.output("reduce_l2", f.node("ReduceL2", ["x"], axes=[2], keepdims=0), np.sqrt((X ** 2).sum(2)))
    f.output("reduce_l2_all", f.node("ReduceL2", ["x"], keepdims=1), np.sqrt((X ** 2).sum(keepdims=True)))
    f.output("reduce_sum_noop", f.node("ReduceSum", ["x"], noop_with_empty_axes=1), X)
    f.output("reduce_sum", f.node("ReduceSum", ["x", f.const([0, -1], np.int64)], keepdims=0), X.sum((0, 2)))
    a1, a2 = rnd(4), rnd(6, 1)
    f.output("min3", f.node("Min", ["x", f.const(a1), f.const(a2)]), np.minimum(np.minimum(X, a1), a2))
    f.output("max3", f.node("Max", ["x", f.const(a1), f.const(a2)]), np.maximum(np.maximum(X, a1), a2))
    first = f.node("Slice", ["x", f.const([0], np.int64), f.const([1], np.int64), f.const([1], np.int64)])
    f.output("expand", f.node("Expand", [first, f.const([6, 1], np.int64)]), np.broadcast_to(X[:, :1], (2, 6, 4)))
    # LayerNormalization over the last two axes, without bias
    s = rnd(6, 4)
    mu = X.mean((1, 2), keepdims=True)
    var = ((X - mu) ** 2).mean((1, 2), keepdims=True)
    f.output("layernorm_axis1", f.node("LayerNormalization", ["x", f.const(s)], axis=1, epsilon=1e-3),
             (X - mu) / np.sqrt(var + 1e-3) * s)
    # Mod: int64 with the divisor's sign (fmod 0), float with the dividend's (fmod 1); Range of floats; Tile
    ia, ib = np.array([-7, 7, -7, 7], np.int64), np.array([3, 3, -3, -3], np.int64)
    mod = f.node("Cast", [f.node("Mod", [f.const(ia, np.int64), f.const(ib, np.int64)])], to=TensorProto.FLOAT)
    f.output("mod_int", f.node("Add", ["x", mod]), X + np.array([2, 1, -1, -2]))
    f.output("fmod", f.node("Mod", ["x", f.const(0.7)], fmod=1), np.fmod(X, np.float32(0.7)))
    rng = f.node("Range", [f.const(0.5), f.const(2.4), f.const(0.5)])
    f.output("range", f.node("Add", ["x", rng]), X + np.arange(0.5, 2.4, 0.5, dtype=np.float32))
    f.output("tile", f.node("Tile", ["x", f.const([1, 2, 3], np.int64)]), np.tile(X, (1, 2, 3)))
    # ScatterND with 2-D index rows (one negative), GatherND-free
    upd = rnd(2, 4)
    sc = f.node("ScatterND", ["x", f.const([[0, 1], [1, -1]], np.int64), f.const(upd)])
    ref = X.copy()
    ref[0, 1], ref[1, 5] = upd[0], upd[1]
    f.output("scatternd", sc, ref)
    # Where with broadcasting, Not / And / Or / Equal / Less / Greater
    gt, lt = f.node("Greater", ["x", f.const(0.2)]), f.node("Less", ["x", f.const(-0.3)])
    eq = f.node("Equal", [f.node("Floor", ["x"]), f.const(0.0)])
    cond = f.node("Or", [f.node("And", [gt, f.node("Not", [eq])]), lt])
    f.output("where", f.node("Where", [cond, "x", f.const(a1)]),
             np.where(((X > 0.2) & ~(np.floor(X) == 0)) | (X < -0.3), X, a1))
    # Slice: negative steps (with ends past the start), an empty result joined to a non-empty one
    sl = f.node("Slice", ["x", f.const([-1, 3], np.int64), f.const([-100, 0], np.int64), f.const([1, 2], np.int64),
                          f.const([-2, -1], np.int64)])
    f.output("slice_negative", sl, X[:, ::-2][..., 3:0:-1])
    empty = f.node("Slice", ["x", f.const([2], np.int64), f.const([2], np.int64), f.const([2], np.int64)])
    f.output("slice_empty", f.node("Concat", [empty, "x"], axis=2), X)
    # the GELU pattern with the 0.5 first (HF BERT's form), fused on import
    half = f.node("Mul", ["x", f.const(0.5)])
    erf = f.node("Erf", [f.node("Mul", ["x", f.const(1 / math.sqrt(2))])])
    gelu = f.node("Mul", [half, f.node("Add", [f.const(1.0), erf])])
    f.output("gelu_half_first", gelu, 0.5 * X * (1 + np.vectorize(math.erf)(X / math.sqrt(2))))
    # Softmax over a middle axis
    e = np.exp(X - X.max(1, keepdims=True))
    f.output("softmax_axis1", f.node("Softmax", ["x"], axis=1), e / e.sum(1, keepdims=True))
    return f


def forms11(x, gen):
    """x (2, 6, 4) at opset 11: Split with an attribute, ReduceSum with axes attribute, Softmax's flattening."""
    f = Forms(x)
    X = x.astype(np.float64)
    a, b, c = f.node("Split", ["x"], 3, axis=1, split=[1, 2, 3])
    f.output("split_a", a, X[:, :1])
    f.output("split_c", c, X[:, 3:])
    p, q = f.node("Split", ["x"], 2, axis=-1)
    f.output("split_equal", f.node("Sub", [p, q]), X[..., :2] - X[..., 2:])
    f.output("reduce_sum", f.node("ReduceSum", ["x"], axes=[1], keepdims=1), X.sum(1, keepdims=True))
    flat = X.reshape(2, -1)
    e = np.exp(flat - flat.max(1, keepdims=True))
    f.output("softmax_flatten", f.node("Softmax", ["x"], axis=1), (e / e.sum(1, keepdims=True)).reshape(X.shape))
    f.output("pow_tensor", f.node("Pow", [f.node("Abs", ["x"]), f.const([0.5, 1.0, 2.0, 3.0])]),
             np.abs(X) ** np.array([0.5, 1.0, 2.0, 3.0]))
    return f


def export_forms(out):
    gen = np.random.default_rng(SEED + 8)
    x = gen.standard_normal((2, 6, 4)).astype(np.float32)
    np.save(os.path.join(out, "forms_input.npy"), x)
    sizes, tensors = {}, {}
    for opset, build in ((11, forms11), (17, forms17)):
        f = build(x, gen)
        raw = f.model(opset)
        fname = f"forms_opset{opset}.onnx"
        with open(os.path.join(out, fname), "wb") as fh:
            fh.write(raw)
        sizes[fname] = len(raw)
        tensors.update({f"opset{opset}.{k}": v for k, v in f.refs.items()})
    sizes["forms.safetensors"] = write_safetensors(os.path.join(out, "forms.safetensors"), tensors)
    return sizes


def export_unsupported(out):
    """Tiny graphs lumen must refuse with a clear error (the test lists the message each must give)."""
    gen = np.random.default_rng(SEED + 13)
    x = gen.standard_normal((3, 2, 4)).astype(np.float32)
    H = 3
    cases = {
        "lstm_activations": lambda f: f.node("LSTM", ["x", f.const(gen.standard_normal((1, 4 * H, 4))),
                                                      f.const(gen.standard_normal((1, 4 * H, H)))],
                                             hidden_size=H, activations=["Sigmoid", "Tanh", "Tanh"]),
        "lstm_peepholes": lambda f: f.node("LSTM", ["x", f.const(gen.standard_normal((1, 4 * H, 4))),
                                                    f.const(gen.standard_normal((1, 4 * H, H))), "", "", "", "",
                                                    f.const(np.ones((1, 3 * H)))], hidden_size=H),
        "lstm_sequence_lens": lambda f: f.node("LSTM", ["x", f.const(gen.standard_normal((1, 4 * H, 4))),
                                                        f.const(gen.standard_normal((1, 4 * H, H))), "",
                                                        f.const([3, 2], np.int32)], hidden_size=H),
        "gru_clip": lambda f: f.node("GRU", ["x", f.const(gen.standard_normal((1, 3 * H, 4))),
                                             f.const(gen.standard_normal((1, 3 * H, H)))], hidden_size=H, clip=1.0),
        "einsum_three": lambda f: f.node("Einsum", ["x", "x", "x"], equation="abc,abc,abc->abc"),
        "scatternd_add": lambda f: f.node("ScatterND", ["x", f.const([[0]], np.int64), f.const(np.ones((1, 2, 4)))],
                                          reduction="add"),
        "nonzero": lambda f: f.node("NonZero", ["x"]),
    }
    sizes = {}
    for name, make in cases.items():
        f = Forms(x)
        y = make(f)
        f.nodes.append(helper.make_node("Identity", [y if isinstance(y, str) else y[0]], ["y"], name="out"))
        f.outputs.append(helper.make_tensor_value_info("y", TensorProto.FLOAT, None))
        g = helper.make_graph(f.nodes, name, [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(x.shape))],
                              f.outputs, f.inits)
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 16)], producer_name="export_transformers")
        m.ir_version = 8
        raw = m.SerializeToString()
        fname = f"unsupported_{name}.onnx"
        with open(os.path.join(out, fname), "wb") as fh:
            fh.write(raw)
        sizes[fname] = len(raw)
    return sizes


# ---------------------------------------------------------------------------- torch.nn layers, for lumen.nn

def export_layers(out):
    torch.manual_seed(SEED + 9)
    gen = torch.Generator().manual_seed(SEED + 10)
    t = {}

    def grads(name, mod, *inputs, state=None):
        """Runs mod (or a function of its inputs using `state`), stores the output, the module's tensors
        and d <output, r> / d input for a fixed random r."""
        ins = [i.clone().requires_grad_(True) for i in inputs]
        y = mod(*ins)
        y0 = y[0] if isinstance(y, tuple) else y
        r = torch.randn(y0.shape, generator=gen)
        (y0 * r).sum().backward()
        t[f"{name}.y"], t[f"{name}.r"] = y0.detach(), r
        for k, i in enumerate(ins):
            t[f"{name}.x{k + 1}"], t[f"{name}.gx{k + 1}"] = inputs[k], i.grad
        for k, v in (state or mod).state_dict().items():
            t[f"{name}.{k}"] = v
        return y

    def randn(*s):
        return torch.randn(*s, generator=gen)

    ln = torch.nn.LayerNorm([4, 6]).eval()
    with torch.no_grad():
        ln.weight.copy_(1 + 0.3 * randn(4, 6))
        ln.bias.copy_(0.3 * randn(4, 6))
    grads("ln", ln, randn(3, 4, 6))

    mha = torch.nn.MultiheadAttention(8, 2, batch_first=True).eval()
    with torch.no_grad():
        mha.in_proj_bias.copy_(0.2 * randn(24))
        mha.out_proj.bias.copy_(0.2 * randn(8))
    q, kv = randn(2, 5, 8), randn(2, 7, 8)
    pad = torch.tensor([[0, 0, 0, 0, 0, 1, 1], [0, 0, 0, 0, 0, 0, 0]], dtype=torch.bool)
    y, attn = grads("mha", lambda a, b: mha(a, b, b, key_padding_mask=pad, average_attn_weights=False), q, kv, state=mha)
    t["mha.attention"], t["mha.key_padding_mask"] = attn.detach(), pad.long()
    mha_self = torch.nn.MultiheadAttention(8, 2, batch_first=True).eval()
    mha_self.load_state_dict(mha.state_dict())
    _, attn_self = grads("mha_self", lambda a: mha_self(a, a, a, average_attn_weights=False), q, state=mha_self)
    t["mha_self.attention"] = attn_self.detach()

    for name, kw in (("tel_post", dict(activation="relu")), ("tel_pre", dict(activation="gelu", norm_first=True))):
        tel = torch.nn.TransformerEncoderLayer(8, 2, 16, batch_first=True, **kw).eval()
        with torch.no_grad():
            for p in tel.parameters():
                if p.dim() == 1:
                    p.add_(0.2 * randn(p.shape))
        grads(name, tel, randn(2, 5, 8))
    tel = torch.nn.TransformerEncoderLayer(8, 2, 16, batch_first=True).eval()
    pad5 = torch.tensor([[0, 0, 0, 1, 1], [0, 0, 0, 0, 0]], dtype=torch.bool)
    grads("tel_mask", lambda a: tel(a, src_key_padding_mask=pad5), randn(2, 5, 8), state=tel)
    t["tel_mask.key_padding_mask"] = pad5.long()

    lstm = torch.nn.LSTM(4, 3, num_layers=2, bidirectional=True, batch_first=True).eval()
    h0, c0 = randn(4, 2, 3), randn(4, 2, 3)
    grads("lstm", lambda a, b, c: lstm(a, (b, c))[0], randn(2, 5, 4), h0, c0, state=lstm)
    gru = torch.nn.GRU(4, 3, num_layers=2, bidirectional=True, batch_first=True).eval()
    grads("gru", lambda a, b: gru(a, b)[0], randn(2, 5, 4), randn(4, 2, 3), state=gru)
    gru1 = torch.nn.GRU(4, 3).eval()  # one layer, time first
    grads("gru_time_first", lambda a: gru1(a)[0], randn(5, 2, 4), state=gru1)
    return {"layers.safetensors": write_safetensors(os.path.join(out, "layers.safetensors"), t)}


# ---------------------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=os.path.join("tests", "fixtures", "torch"))
    args = ap.parse_args()
    out = args.out
    os.makedirs(out, exist_ok=True)
    torch.set_num_threads(2)
    sizes, info = {}, {}
    x = vision_input()
    save_npy(out, "vision_input.npy", x)
    for name, build, opsets in (("vit", build_vit, (13, 17)), ("convnext", build_convnext, (13,)),
                                ("swin", build_swin, (13,))):
        info[name], s = export_image_model(out, name, build(), x, opsets)
        sizes.update(s)
    tokens = text_tokens()
    save_npy(out, "text_tokens.npy", tokens)
    for name, cls in (("text_transformer", TextTransformer), ("text_lstm", TextLSTM), ("text_gru", TextGRU)):
        torch.manual_seed(SEED + 11)
        info[name], s = export_text_model(out, name, quantise_(cls(), SEED + 12), tokens)
        sizes.update(s)
    sizes.update(export_ops(out))
    sizes.update(export_forms(out))
    sizes.update(export_unsupported(out))
    sizes.update(export_layers(out))
    with open(os.path.join(out, "transformers.json"), "w") as f:
        json.dump(info, f, indent=2, sort_keys=True)
        f.write("\n")
    total = 0
    for k in sorted(sizes):
        print(f"{k:32s} {sizes[k]:9d} bytes")
        total += sizes[k]
    print(f"total (without the small .npy files) {total} bytes")


if __name__ == "__main__":
    main()
