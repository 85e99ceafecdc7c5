"""Make the model files the importer tests read (tests/fixtures/broken_models/).

Run from the repository root with Debian's PyTorch and onnx:

    /usr/bin/python3 tools/make_broken_models.py [--out tests/fixtures/broken_models]

Everything is seeded or computed by formula, so a rerun writes the same bytes.

seeds/ holds valid models with reference outputs (the corrupted files are made from them):
  tiny.tflite            a small uint8/int8-quantized TFLite model written by hand (the flatbuffer writer
                         below): CONV_2D (per-channel int8 weights, int32 bias without its own scale,
                         SAME stride 2, asymmetric), DEPTHWISE_CONV_2D (multiplier 2, dilation 2), ADD of
                         a constant with RELU, AVERAGE_POOL_2D (SAME, padding excluded), RESHAPE across an
                         NHWC image, SOFTMAX beta 0.5. Weights follow formulas that tests/c/test_tflite.c
                         repeats. tiny_input.npy (NCHW float, what lumen takes) and tiny_output.npy come
                         from a NumPy run of the same graph in NHWC, written independently of lumen.
  ops_opset{9,11,13,17}.onnx  one PyTorch module exercising the ONNX operators lumen maps (dynamic batch,
                         no constant folding, so the Shape/Gather/Unsqueeze/Concat chain of x.view(n, -1)
                         stays); ops_input.npy is a batch of 2, ops_output.npy PyTorch's result.
  forms_opset{11,13}.onnx  hand-built graphs (onnx.helper) with one output per operator form that PyTorch
                         does not emit (Softmax before opset 13 over a middle axis, Gather with negative and
                         2-D indices, Shape start/end, Squeeze without axes, Flatten axis 2, Reshape with
                         0 and -1, Transpose without perm, Gemm with transA/alpha/beta, MatMul of two
                         computed tensors, Div of a constant by a tensor, Constant forms, Identity output,
                         ReduceMax keepdims 0, Pad by attribute and by input, Conv auto_pad SAME_UPPER /
                         SAME_LOWER, global pools of 3-D values, Dropout, Cast); forms_input.npy and
                         forms_opset<N>_<output>.npy from NumPy.
The other files are broken on purpose; expected.txt lists, per file, a piece of the error message the
importer must give (tab-separated). Among them the hostile ones (issue 11): files of a few hundred bytes
to a few KB that made lumen allocate gigabytes or run for hours before it checked the limits of
src/limits.c (a 30000x30000 input probe, ConstantOfShape / Pad to 14 GB, a 1024x1024 pool on 2048x2048,
300,000 inputs looked up quadratically, 12 million empty opset entries for protobuf-c, 150,000 TFLite
tensors, a checkpoint declaring Linear(60000, 60000)). Two hostile files load (their fix is bounded
memory, not an error): pools_400.onnx.gz (400 pools whose probe outputs were all kept, 100 MB) and
shared_buffer.tflite.gz (2,000 tensors dequantizing one 4 MB buffer, 32 GB of copies before).
"""
import argparse
import gzip
import io
import json
import os
import struct
import warnings

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
import torch
import torch.nn.functional as F

SEED = 4321

# ---------------------------------------------------------------- a minimal flatbuffer writer
#
# Tables are written front to back: a vtable, then the table (its soffset points back to the vtable),
# then the objects its offset fields refer to, always after the field (flatbuffer offsets are
# unsigned). Scalars are little-endian and aligned to their size, vectors to their element size.


class Table:
    def __init__(self, fields):
        # fields: slot -> (kind, value); kind is a struct code ('b', 'B', 'i', 'I', 'f', 'q')
        # or 'obj' for a Table / Vec / Str.
        self.fields = fields


class Vec:
    def __init__(self, kind, items, align=4):
        self.kind, self.items, self.align = kind, items, align


class Str:
    def __init__(self, s):
        self.s = s.encode()


def field(slot, kind, value):
    return (slot, (kind, value))


def table(*fields):
    return Table(dict(fields))


class Writer:
    def __init__(self):
        self.b = bytearray()

    def pad(self, n):
        self.b += b"\0" * ((-len(self.b)) % n)

    def obj(self, o):
        if isinstance(o, Table):
            return self.table(o)
        if isinstance(o, Vec):
            return self.vec(o)
        return self.string(o)

    def table(self, t):
        slots = t.fields
        nslots = max(slots) + 1 if slots else 0
        layout, end = {}, 4
        for slot, (kind, _) in sorted(slots.items(), key=lambda kv: -(4 if kv[1][0] == "obj" else struct.calcsize(kv[1][0]))):
            size = 4 if kind == "obj" else struct.calcsize(kind)
            end += (-end) % size
            layout[slot] = end
            end += size
        obj_len = end + (-end) % 4
        self.pad(2)
        vt = len(self.b)
        self.b += struct.pack("<HH", 4 + 2 * nslots, obj_len)
        for s in range(nslots):
            self.b += struct.pack("<H", layout.get(s, 0))
        self.pad(8)
        pos = len(self.b)
        self.b += struct.pack("<i", pos - vt) + b"\0" * (obj_len - 4)
        for slot, (kind, value) in slots.items():
            if kind != "obj":
                struct.pack_into("<" + kind, self.b, pos + layout[slot], value)
        for slot, (kind, value) in slots.items():
            if kind == "obj":
                at = pos + layout[slot]
                struct.pack_into("<I", self.b, at, self.obj(value) - at)
        return pos

    def vec(self, v):
        esize = 4 if v.kind == "obj" else struct.calcsize(v.kind)
        align = max(v.align, esize)
        self.b += b"\0" * ((-(len(self.b) + 4)) % align)
        pos = len(self.b)
        self.b += struct.pack("<I", len(v.items))
        if v.kind != "obj":
            self.b += struct.pack("<%d%s" % (len(v.items), v.kind), *v.items)
            return pos
        slots = []
        for _ in v.items:
            slots.append(len(self.b))
            self.b += b"\0\0\0\0"
        for at, item in zip(slots, v.items):
            struct.pack_into("<I", self.b, at, self.obj(item) - at)
        return pos

    def string(self, s):
        self.pad(4)
        pos = len(self.b)
        self.b += struct.pack("<I", len(s.s)) + s.s + b"\0"
        return pos

    def finish(self, root, ident=b"TFL3"):
        self.b += struct.pack("<I", 0) + ident
        struct.pack_into("<I", self.b, 0, self.table(root))
        return bytes(self.b)


# ---------------------------------------------------------------- the tiny TFLite model

FLOAT32, INT32, UINT8, INT8 = 0, 2, 3, 9
ADD, AVERAGE_POOL_2D, CONV_2D, DEPTHWISE_CONV_2D, RESHAPE, SOFTMAX = 0, 1, 3, 4, 22, 25
SAME, VALID = 0, 1
RELU, RELU6 = 1, 3

# The formulas tests/c/test_tflite.c repeats (flat index i in the file's layout).
def conv_w(i): return (i * 37) % 17 - 8          # int8 (3, 3, 3, 2) OHWI, per-channel scales
def conv_b(i): return (i + 1) * 1000 - 1500       # int32 (3), no scale: input_scale * weight_scale
def dw_w(i): return (i * 53) % 256               # uint8 (1, 2, 2, 6), scale 0.01, zero point 100
def dw_b(i): return i * 300 - 700                # int32 (6), scale 0.001
def add_c(i): return 0.1 * (i - 2.5)             # float32 (1, 1, 1, 6)

IN_SCALE, IN_ZP = 1 / 128, 128
CONV_SCALES = [0.02, 0.03, 0.05]
DW_SCALE, DW_ZP, DWB_SCALE = 0.01, 100, 0.001


def tiny_tflite(code_of=None, bad=None):
    """The tiny model as bytes. code_of maps an op name to another builtin code; `bad` names one
    deliberate inconsistency (see broken_tflite)."""
    code_of = code_of or {}
    bad = bad or ""
    buffers = [b""]

    def buf(data):
        buffers.append(data)
        return len(buffers) - 1

    def quant(scales, zps, dim=0):
        return table(field(2, "obj", Vec("f", scales)), field(3, "obj", Vec("q", zps)), field(6, "i", dim))

    def tensor(name, shape, ttype, buffer=0, q=None):
        f = [field(0, "obj", Vec("i", shape)), field(1, "b", ttype), field(2, "I", buffer), field(3, "obj", Str(name))]
        if q is not None:
            f.append(field(4, "obj", q))
        return table(*f)

    cw = [conv_w(i) for i in range(3 * 3 * 3 * 2)]
    scales = CONV_SCALES + ([0.07] if bad == "scales" else [])
    tensors = [
        tensor("image", [1, 5, 4, 2], UINT8, q=quant([IN_SCALE], [IN_ZP])),                                  # 0
        tensor("conv/weights", [3, 3, 3, 2], INT8, buf(struct.pack("<54b", *cw)), quant(scales, [0] * len(scales))),  # 1
        tensor("conv/bias", [3], INT32, buf(struct.pack("<3i", *[conv_b(i) for i in range(3)]))),         # 2
        tensor("conv/Relu6;conv/BiasAdd", [1, 3, 2, 3], UINT8, q=quant([6 / 255], [0])),                   # 3
        tensor("dw/weights", [1, 2, 2, 6], UINT8, buf(bytes(dw_w(i) for i in range(24))), quant([DW_SCALE], [DW_ZP])),  # 4
        tensor("dw/bias", [6], INT32, buf(struct.pack("<6i", *[dw_b(i) for i in range(6)])), quant([DWB_SCALE], [0])),  # 5
        tensor("dw/BiasAdd", [1, 3, 2, 6], FLOAT32),                                                        # 6
        tensor("offsets", [1, 1, 1, 6], FLOAT32, buf(struct.pack("<6f", *[add_c(i) for i in range(6)]))),  # 7
        tensor("add/Relu", [1, 3, 2, 6], FLOAT32),                                                          # 8
        tensor("pool/AvgPool", [1, 2, 1, 6], FLOAT32),                                                      # 9
        tensor("flat/shape", [2], INT32, buf(struct.pack("<2i", 1, 12))),                                   # 10
        tensor("flat/Reshape", [1, 12], FLOAT32),                                                           # 11
        tensor("prob", [1, 12], FLOAT32),                                                                   # 12
    ]
    if bad == "data_size":
        buffers[1] = buffers[1][:-3]
    if bad == "buffer_index":
        tensors[1].fields[2] = ("I", 99)

    def op(code_index, inputs, outputs, opt_type=0, opt=None):
        f = [field(0, "I", code_index), field(1, "obj", Vec("i", inputs)), field(2, "obj", Vec("i", outputs))]
        if opt is not None:
            f += [field(3, "B", opt_type), field(4, "obj", opt)]
        return table(*f)

    names = ["CONV_2D", "DEPTHWISE_CONV_2D", "ADD", "AVERAGE_POOL_2D", "RESHAPE", "SOFTMAX"]
    codes = [code_of.get(n, c) for n, c in zip(names, [CONV_2D, DEPTHWISE_CONV_2D, ADD, AVERAGE_POOL_2D, RESHAPE, SOFTMAX])]
    # SOFTMAX's code is given only in the extended builtin_code field (deprecated_builtin_code 0).
    opcodes = [table(field(0, "b", c if n != "SOFTMAX" else 0), field(2, "i", 1), field(3, "i", c))
               for n, c in zip(names, codes)]
    ops = [
        op(0, [0, 1, 2], [3], 1, table(field(0, "b", SAME), field(1, "i", 2), field(2, "i", 2), field(3, "b", RELU6))),
        op(1, [3, 4, 5], [6], 2, table(field(0, "b", SAME), field(1, "i", 1), field(2, "i", 1), field(3, "i", 2),
                                       field(4, "b", 0), field(5, "i", 1), field(6, "i", 2))),
        op(2, [6, 7], [8], 11, table(field(0, "b", RELU))),
        op(3, [8], [9], 5, table(field(0, "b", SAME), field(1, "i", 2), field(2, "i", 2), field(3, "i", 2),
                                 field(4, "i", 2), field(5, "b", 0))),
        op(4, [9, 10], [11]),
        op(5, [11], [12], 9, table(field(0, "f", 0.5))),
    ]
    if bad == "tensor_index":
        ops[2].fields[1] = ("obj", Vec("i", [6, 70]))
    if bad == "opcode_index":
        ops[3].fields[0] = ("I", 42)
    subgraph = table(field(0, "obj", Vec("obj", tensors)), field(1, "obj", Vec("i", [0])),
                     field(2, "obj", Vec("i", [12])), field(3, "obj", Vec("obj", ops)), field(4, "obj", Str("main")))
    model = table(field(0, "I", 3), field(1, "obj", Vec("obj", opcodes)), field(2, "obj", Vec("obj", [subgraph])),
                  field(3, "obj", Str("lumen test model")),
                  field(4, "obj", Vec("obj", [table(field(0, "obj", Vec("B", list(b), 16))) for b in buffers])))
    return Writer().finish(model)


def same_pads(size, k, stride, dil):
    out = -(-size // stride)
    total = max((out - 1) * stride + (k - 1) * dil + 1 - size, 0)
    return total // 2, total - total // 2


def conv_nhwc(x, w, b, stride, dil, groups):
    """TFLite's convolution on NHWC x with OHWI w (depthwise: w (1, kh, kw, C*M), groups = C)."""
    n, h, wd, c = x.shape
    kh, kw = w.shape[1], w.shape[2]
    pt, pb = same_pads(h, kh, stride[0], dil[0])
    pl, pr = same_pads(wd, kw, stride[1], dil[1])
    xp = np.pad(x, ((0, 0), (pt, pb), (pl, pr), (0, 0)))
    oh, ow = -(-h // stride[0]), -(-wd // stride[1])
    out_c = w.shape[3] if groups > 1 else w.shape[0]
    y = np.zeros((n, oh, ow, out_c))
    for i in range(oh):
        for j in range(ow):
            for o in range(out_c):
                for a in range(kh):
                    for bb in range(kw):
                        px = xp[:, i * stride[0] + a * dil[0], j * stride[1] + bb * dil[1], :]
                        if groups > 1:  # depthwise: output o = c * M + m reads input channel c
                            y[:, i, j, o] += px[:, o // (out_c // c)] * w[0, a, bb, o]
                        else:
                            y[:, i, j, o] += px @ w[o, a, bb, :]
            y[:, i, j, :] += b
    return y


def tiny_reference(q_in):
    """The tiny model run in float, in NHWC, from the uint8 input q_in (1, 5, 4, 2)."""
    x = (q_in.astype(np.float64) - IN_ZP) * IN_SCALE
    cw = np.array([conv_w(i) for i in range(54)], np.float64).reshape(3, 3, 3, 2) * np.array(CONV_SCALES)[:, None, None, None]
    cb = np.array([conv_b(i) for i in range(3)]) * IN_SCALE * np.array(CONV_SCALES)
    y = np.clip(conv_nhwc(x, cw, cb, (2, 2), (1, 1), 1), 0, 6)
    dw = (np.array([dw_w(i) for i in range(24)], np.float64).reshape(1, 2, 2, 6) - DW_ZP) * DW_SCALE
    db = np.array([dw_b(i) for i in range(6)]) * DWB_SCALE
    y = conv_nhwc(y, dw, db, (1, 1), (2, 1), 3)
    y = np.maximum(y + np.array([add_c(i) for i in range(6)]), 0)
    n, h, w, c = y.shape  # average pool 2x2 stride 2, SAME, padded cells not counted
    pt, pb = same_pads(h, 2, 2, 1)
    pl, pr = same_pads(w, 2, 2, 1)
    yp = np.pad(y, ((0, 0), (pt, pb), (pl, pr), (0, 0)))
    ones = np.pad(np.ones_like(y), ((0, 0), (pt, pb), (pl, pr), (0, 0)))
    oh, ow = -(-h // 2), -(-w // 2)
    pooled = np.zeros((n, oh, ow, c))
    for i in range(oh):
        for j in range(ow):
            win = (slice(None), slice(2 * i, 2 * i + 2), slice(2 * j, 2 * j + 2), slice(None))
            pooled[:, i, j, :] = yp[win].sum((1, 2)) / ones[win].sum((1, 2))
    flat = pooled.reshape(1, 12) * 0.5
    e = np.exp(flat - flat.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


# ---------------------------------------------------------------- ONNX operator coverage (PyTorch)


class Ops(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3, stride=2, padding=1)
        self.bn = torch.nn.BatchNorm2d(4)
        self.dw = torch.nn.Conv2d(4, 8, 3, padding=2, dilation=2, groups=4)
        self.up = torch.nn.ConvTranspose2d(8, 3, 3, stride=2, padding=1, output_padding=1)
        self.fc = torch.nn.Linear(3 * 4 * 4, 5)
        self.proj = torch.nn.Linear(4, 6)
        self.bn1 = torch.nn.BatchNorm1d(5)
        self.drop = torch.nn.Dropout(0.3)

    def forward(self, x):
        y = F.relu(self.bn(self.conv(x)))                                  # Conv BatchNormalization Relu
        y = F.pad(y, (1, 0, 0, 1))                                         # Pad
        y = F.max_pool2d(y, 2, stride=1, ceil_mode=True)                   # MaxPool
        y = F.leaky_relu(y, 0.2) + torch.sigmoid(y) * torch.tanh(y) - y / 3.0  # LeakyRelu Sigmoid Tanh Add Mul Sub Div
        y = torch.clamp(F.hardsigmoid(y) + F.hardswish(y), -0.5, 0.7)      # HardSigmoid HardSwish Clip
        y = self.up(F.relu6(self.dw(y)))                                   # grouped dilated Conv, ConvTranspose
        y = F.avg_pool2d(y, 3, stride=2, padding=1, count_include_pad=False)  # AveragePool
        g = torch.cat([y.mean(dim=(2, 3), keepdim=True), y.amax(dim=(2, 3), keepdim=True),
                       F.adaptive_avg_pool2d(y, 1), F.adaptive_max_pool2d(y, 1)], dim=1)  # Reduce*, Global*Pool, Concat
        h = self.drop(self.fc(y.view(y.size(0), -1)))                     # Shape chain, Reshape, Gemm, Dropout
        h = self.bn1(h)
        v = g.squeeze(3).squeeze(2)                                        # Squeeze
        t = self.proj(v.view(-1, 3, 4))                                    # MatMul + Add over 3-D
        t = t.transpose(1, 2)[:, 1]                                        # Transpose, Gather
        out = torch.cat([h, t, torch.flatten(v.unsqueeze(1), 1)], 1)       # Unsqueeze, Flatten
        return F.softmax(out, dim=1)                                       # Softmax


def export_ops(out_dir):
    torch.manual_seed(SEED)
    m = Ops().eval()
    with torch.no_grad():
        for bn in (m.bn, m.bn1):
            bn.running_mean.uniform_(-0.5, 0.5)
            bn.running_var.uniform_(0.5, 2.0)
            bn.weight.uniform_(0.5, 1.5)
            bn.bias.uniform_(-0.2, 0.2)
    x = torch.randn(2, 3, 8, 8)
    with torch.no_grad():
        y = m(x)
    np.save(os.path.join(out_dir, "ops_input.npy"), x.numpy())
    np.save(os.path.join(out_dir, "ops_output.npy"), y.numpy())
    for opset in (9, 11, 13, 17):
        f = io.BytesIO()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(m, x[:1], f, opset_version=opset, input_names=["input"], output_names=["prob"],
                              dynamic_axes={"input": {0: "batch"}, "prob": {0: "batch"}},
                              do_constant_folding=False, training=torch.onnx.TrainingMode.PRESERVE)
        with open(os.path.join(out_dir, "ops_opset%d.onnx" % opset), "wb") as fh:
            fh.write(f.getvalue())
    return m, x


# ---------------------------------------------------------------- ONNX operator forms (onnx.helper + NumPy)


def forms_model(opset):
    """A graph over input x (2, 3, 4) with one output per form; returns (model, {output: numpy value})."""
    rng = np.random.default_rng(SEED)
    x = rng.standard_normal((2, 3, 4)).astype(np.float32)
    w = rng.standard_normal((4, 5)).astype(np.float32)
    c = rng.standard_normal((5,)).astype(np.float32)
    nodes, inits, outs, ref = [], [], [], {}

    def init(name, arr):
        inits.append(numpy_helper.from_array(np.asarray(arr), name))
        return name

    def out(name, value):
        outs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, list(value.shape)))
        ref[name] = np.ascontiguousarray(value, np.float32)

    def axes_input(name, axes):
        return init(name, np.array(axes, np.int64))

    # Softmax over axis 1: opset 11 flattens to 2-D at the axis; opset 13 uses the single axis.
    nodes.append(helper.make_node("Softmax", ["x"], ["softmax"], axis=1))
    if opset < 13:
        flat = x.reshape(2, 12)
        e = np.exp(flat - flat.max(1, keepdims=True))
        out("softmax", (e / e.sum(1, keepdims=True)).reshape(2, 3, 4))
    else:
        e = np.exp(x - x.max(1, keepdims=True))
        out("softmax", e / e.sum(1, keepdims=True))
    # Gather: negative and 2-D constant indices along axis 2.
    idx = np.array([[-1, 0], [2, 1]], np.int64)
    nodes.append(helper.make_node("Gather", ["x", init("idx", idx)], ["gather"], axis=2))
    out("gather", np.take(x, idx, axis=2))
    # Shape (with start/end from opset 15) feeding a Reshape; Flatten axis 2; Reshape with 0 and -1.
    if opset >= 15:
        nodes.append(helper.make_node("Shape", ["x"], ["tail"], start=1))
    else:
        nodes.append(helper.make_node("Shape", ["x"], ["shp"]))
        nodes.append(helper.make_node("Gather", ["shp", init("tail_idx", np.array([1, 2], np.int64))], ["tail"]))
    nodes.append(helper.make_node("Concat", [init("minus1", np.array([-1], np.int64)), "tail"], ["shape3"], axis=0))
    nodes.append(helper.make_node("Reshape", ["x", "shape3"], ["reshaped"]))
    out("reshaped", x.reshape(-1, 3, 4))
    nodes.append(helper.make_node("Flatten", ["x"], ["flat2"], axis=2))
    out("flat2", x.reshape(6, 4))
    nodes.append(helper.make_node("Reshape", ["x", init("zshape", np.array([0, -1, 2], np.int64))], ["zero_reshape"]))
    out("zero_reshape", x.reshape(2, 6, 2))
    # Squeeze without axes, Unsqueeze (attribute before 13, input from 13).
    if opset < 13:
        nodes.append(helper.make_node("Unsqueeze", ["x"], ["unsq"], axes=[0, -1]))
    else:
        nodes.append(helper.make_node("Unsqueeze", ["x", axes_input("unsq_axes", [0, -1])], ["unsq"]))
    nodes.append(helper.make_node("Squeeze", ["unsq"], ["squeezed"]))
    out("squeezed", x)
    # Transpose without perm; Gemm with transA, alpha, beta; MatMul of computed tensors; Div by a tensor.
    nodes.append(helper.make_node("Transpose", ["x"], ["transposed"]))
    out("transposed", x.transpose(2, 1, 0))
    nodes.append(helper.make_node("Flatten", ["x"], ["x2d"], axis=1))                 # (2, 12)
    nodes.append(helper.make_node("Transpose", ["x2d"], ["x2dt"], perm=[1, 0]))      # (12, 2)
    wg = rng.standard_normal((12, 5)).astype(np.float32)
    nodes.append(helper.make_node("Gemm", ["x2dt", init("wg", wg), init("cg", c)], ["gemm"], transA=1, alpha=0.5, beta=2.0))
    out("gemm", 0.5 * x.reshape(2, 12) @ wg + 2.0 * c)
    nodes.append(helper.make_node("Transpose", ["x"], ["xt"], perm=[0, 2, 1]))
    nodes.append(helper.make_node("MatMul", ["x", "xt"], ["matmul"]))
    out("matmul", x @ x.transpose(0, 2, 1))
    nodes.append(helper.make_node("Div", [init("two", np.array(2.0, np.float32)), "matmul"], ["div"]))
    out("div", 2.0 / (x @ x.transpose(0, 2, 1)))
    # Constant forms, Identity as an output, ReduceMax keepdims 0, Pad by attribute / input.
    if opset < 12:  # value_float / value_floats arrived in opset 12
        nodes.append(helper.make_node("Constant", [], ["cf"], value=numpy_helper.from_array(np.array(1.5, np.float32))))
        nodes.append(helper.make_node("Constant", [], ["cfs"],
                                      value=numpy_helper.from_array(np.array([1.0, 2.0, 3.0, 4.0], np.float32))))
    else:
        nodes.append(helper.make_node("Constant", [], ["cf"], value_float=1.5))
        nodes.append(helper.make_node("Constant", [], ["cfs"], value_floats=[1.0, 2.0, 3.0, 4.0]))
    nodes.append(helper.make_node("Mul", ["x", "cfs"], ["scaled"]))
    nodes.append(helper.make_node("Add", ["scaled", "cf"], ["shifted"]))
    nodes.append(helper.make_node("Identity", ["shifted"], ["identity"]))
    out("identity", x * np.array([1.0, 2.0, 3.0, 4.0]) + 1.5)
    nodes.append(helper.make_node("ReduceMax", ["x"], ["rmax"], axes=[0, 2], keepdims=0))
    out("rmax", x.max(axis=(0, 2)))
    nodes.append(helper.make_node("MatMul", ["x", init("w", w)], ["linear3d"]))
    out("linear3d", x @ w)
    # 1-D convolutions with auto_pad SAME (odd total padding: the extra at the end / the start).
    wc = rng.standard_normal((2, 3, 3)).astype(np.float32)
    for auto, (left, right) in (("SAME_UPPER", (0, 1)), ("SAME_LOWER", (1, 0))):
        name = "conv_" + auto.lower()
        nodes.append(helper.make_node("Conv", ["x", init("wc", wc) if auto == "SAME_UPPER" else "wc"], [name],
                                      auto_pad=auto, strides=[2]))
        xp = np.pad(x, ((0, 0), (0, 0), (left, right)))
        out(name, np.stack([np.einsum("nck,ock->no", xp[:, :, 2 * i:2 * i + 3], wc) for i in range(2)], axis=2))
    # Global pools of a 3-D input, Dropout (identity when not training), a Cast to float, and a
    # Reshape whose shape is a Constant node.
    nodes.append(helper.make_node("GlobalAveragePool", ["x"], ["gap"]))
    out("gap", x.mean(2, keepdims=True))
    nodes.append(helper.make_node("GlobalMaxPool", ["x"], ["gmp"]))
    out("gmp", x.max(2, keepdims=True))
    nodes.append(helper.make_node("Dropout", ["x"], ["dropped", "drop_mask"], **({"ratio": 0.3} if opset < 12 else {})))
    nodes.append(helper.make_node("Cast", ["dropped"], ["cast"], to=TensorProto.FLOAT))
    if opset < 12:
        nodes.append(helper.make_node("Constant", [], ["shape2"], value=numpy_helper.from_array(np.array([4, 6], np.int64))))
    else:
        nodes.append(helper.make_node("Constant", [], ["shape2"], value_ints=[4, 6]))
    nodes.append(helper.make_node("Reshape", ["cast", "shape2"], ["reshaped2"]))
    out("reshaped2", x.reshape(4, 6))
    pads = [0, 1, 0, 0, 0, 2]
    if opset < 11:
        nodes.append(helper.make_node("Pad", ["x"], ["padded"], pads=pads, value=0.5))
    else:
        nodes.append(helper.make_node("Pad", ["x", init("pads", np.array(pads, np.int64)),
                                              init("pad_value", np.array(0.5, np.float32))], ["padded"]))
    out("padded", np.pad(x, ((0, 0), (1, 0), (0, 2)), constant_values=0.5))
    graph = helper.make_graph(nodes, "forms", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3, 4])],
                              outs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="lumen")
    onnx.checker.check_model(model)
    return model, x, ref


def write_forms(out_dir):
    for opset in (11, 13):
        model, x, ref = forms_model(opset)
        onnx.save(model, os.path.join(out_dir, "forms_opset%d.onnx" % opset))
        np.save(os.path.join(out_dir, "forms_input.npy"), x)
        for name, value in ref.items():
            np.save(os.path.join(out_dir, "forms_opset%d_%s.npy" % (opset, name)), value)


# ---------------------------------------------------------------- the broken files


def small_onnx(opset=13, op="Relu", attrs=None, init_tweak=None, input_type=TensorProto.FLOAT, weight_input=False):
    """Conv(2 -> 2, 1x1) then `op`, on x (1, 2, 3, 3), built with onnx.helper."""
    w = numpy_helper.from_array(np.arange(4, dtype=np.float32).reshape(2, 2, 1, 1), "w")
    if init_tweak:
        init_tweak(w)
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], name="conv_1"),
             helper.make_node(op, ["c"], ["y"], name="node_2", **(attrs or {}))]
    inputs = [helper.make_tensor_value_info("x", input_type, [1, 2, 3, 3])]
    if weight_input:
        inputs.append(helper.make_tensor_value_info("w", TensorProto.FLOAT, [2, 2, 1, 1]))
    graph = helper.make_graph(nodes, "small", inputs, [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                              [] if weight_input else [w])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)]).SerializeToString()


def broken_onnx(seed):
    """(name, bytes, expected message piece) for each broken ONNX file."""
    def external(t):
        t.data_location = TensorProto.EXTERNAL
        t.external_data.add(key="location", value="weights.bin")
        t.ClearField("raw_data")

    def short(t):
        t.raw_data = t.raw_data[:-4]

    def many_dims(t):
        t.ClearField("dims")
        t.dims.extend([1] * 9)

    def negative_dim(t):
        t.dims[0] = -2

    def half_typed(t):
        t.data_type = TensorProto.FLOAT16
        t.ClearField("raw_data")
        t.int32_data.extend([0x3c00] * 4)

    def strings(t):
        t.data_type = TensorProto.STRING
        t.ClearField("raw_data")
        t.string_data.extend([b"a"] * 4)

    # A length-delimited field claiming 2^32 - 1 bytes: the graph (ModelProto field 7, tag 0x3a).
    at = seed.index(b"\x3a")
    end = at + 1
    while seed[end] & 0x80:
        end += 1
    huge = seed[:at + 1] + b"\xff\xff\xff\xff\x0f" + seed[end + 1:]
    return [
        ("empty.onnx", b"", "empty file"),
        ("truncated_10.onnx", seed[:10], "truncated or corrupted"),
        ("truncated_half.onnx", seed[:len(seed) // 2], "truncated or corrupted"),
        ("truncated_last_byte.onnx", seed[:-1], "truncated or corrupted"),
        ("huge_length.onnx", huge, "truncated or corrupted"),
        ("not_a_model.onnx", b"\x89PNG\r\n\x1a\n" + bytes(range(64)), "not an ONNX model"),
        ("short_raw_data.onnx", small_onnx(init_tweak=short), "initializer 'w' has 12 bytes of data, but shape (2, 2, 1, 1) of float needs 16"),
        ("external_data.onnx", small_onnx(init_tweak=external), "keeps its data in an external file"),
        ("nine_dims.onnx", small_onnx(init_tweak=many_dims), "9 dimensions (at most 8)"),
        ("negative_dim.onnx", small_onnx(init_tweak=negative_dim), "negative size"),
        ("float16_typed.onnx", small_onnx(init_tweak=half_typed), "float16 (10), which lumen does not read outside raw_data"),
        ("string_tensor.onnx", small_onnx(init_tweak=strings), "data type string (8)"),
        ("unsupported_op.onnx", small_onnx(op="ConvInteger"), "node 'node_2' (ConvInteger): unsupported operator"),
        ("unsupported_pad_mode.onnx", small_onnx(opset=9, op="Pad", attrs={"mode": "reflect", "pads": [0] * 8}),
         "node 'node_2' (Pad): pad mode 'reflect' is not supported"),
        ("old_opset.onnx", small_onnx(opset=8), "opset 8 is not supported"),
        ("int64_into_conv.onnx", small_onnx(input_type=TensorProto.INT64), "int64 input 'x' may only feed an embedding Gather"),
        ("weight_as_input.onnx", small_onnx(weight_input=True), "node 'conv_1' (Conv): weight (input 2) must be a constant"),
    ]


def onnx_model(nodes, inputs, outputs, inits=(), opset=13):
    graph = helper.make_graph(nodes, "hostile", inputs, outputs, list(inits))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)]).SerializeToString()


def float_input(name, shape):
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)


def float_output(name):
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, None)


def ints_init(name, values):
    return numpy_helper.from_array(np.array(values, np.int64), name)


def varint(n):
    out = b""
    while True:
        b = n & 0x7F
        n >>= 7
        out += bytes([b | (0x80 if n else 0)])
        if not n:
            return out


def hostile_onnx():
    """(name, bytes, expected message piece) for the ONNX files of issue 11, and the valid 400-pool model."""
    relu = helper.make_node("Relu", ["x"], ["y"], name="relu")
    out = []
    out.append(("big_input.onnx", onnx_model([relu], [float_input("x", [1, 3, 30000, 30000])], [float_output("y")]),
                "the probe of input 'x' of shape (1, 3, 30000, 30000) (10800000000 bytes) exceeds the probe_bytes limit"))
    out.append(("constant_of_shape.onnx", onnx_model(
        [helper.make_node("ConstantOfShape", ["shape"], ["c"], name="cos"),
         helper.make_node("Add", ["x", "c"], ["y"], name="add")],
        [float_input("x", [1, 1])], [float_output("y")], [ints_init("shape", [60000, 60000])]),
        "node 'cos' (ConstantOfShape): the constant of shape (60000, 60000) (14400000000 bytes) exceeds the tensor_bytes limit"))
    w = numpy_helper.from_array(np.ones((2, 2), np.float32), "w")
    out.append(("pad_constant.onnx", onnx_model(
        [helper.make_node("Pad", ["w", "pads"], ["p"], name="pad"), helper.make_node("Add", ["x", "p"], ["y"], name="add")],
        [float_input("x", [1, 1])], [float_output("y")], [w, ints_init("pads", [0, 0, 60000, 60000])]),
        "node 'pad' (Pad): the padded constant of shape (60002, 60002) (14400960016 bytes) exceeds the tensor_bytes limit"))
    out.append(("pad_probe.onnx", onnx_model(
        [helper.make_node("Pad", ["x", "pads"], ["y"], name="pad")],
        [float_input("x", [1, 1, 4, 4])], [float_output("y")], [ints_init("pads", [0, 0, 30000, 30000, 0, 0, 30000, 30000])]),
        "node 'pad' (Pad): a tensor of shape (1, 1, 60004, 60004) (14401920064 bytes) exceeds the probe_bytes limit"))
    out.append(("reshape_2e40.onnx", onnx_model(
        [helper.make_node("Reshape", ["x", "shape"], ["y"], name="reshape")],
        [float_input("x", [1, 4])], [float_output("y")], [ints_init("shape", [2**40, 2**40])]),
        "node 'reshape' (Reshape): cannot reshape (1, 4) to (1099511627776, 1099511627776)"))
    for op in ("MaxPool", "AveragePool"):
        out.append((f"{op.lower()}_1024_on_2048.onnx", onnx_model(
            [helper.make_node(op, ["x"], ["y"], name="pool", kernel_shape=[1024, 1024])],
            [float_input("x", [1, 1, 2048, 2048])], [float_output("y")]),
            "node 'pool' (%s): the work of the shape probe (1101660160000 operations, with 'y') exceeds the probe_ops limit" % op))
    zero = TensorProto()
    zero.name, zero.data_type, zero.raw_data = "w", TensorProto.FLOAT, b""
    zero.dims.extend([0, 2**62, 2**62])
    out.append(("zero_huge_initializer.onnx", onnx_model([relu], [float_input("x", [1, 2])], [float_output("y")], [zero]),
                "initializer 'w': tensor too large"))
    out.append(("conv_rank1.onnx", onnx_model(
        [helper.make_node("Conv", ["x", "w1"], ["y"], name="conv")], [float_input("x", [1, 2, 3, 3])], [float_output("y")],
        [numpy_helper.from_array(np.ones(4, np.float32), "w1")]),
        "node 'conv' (Conv): weight of shape (4,): a convolution weight has rank 3 or more"))
    out.append(("flatten_axis_1000.onnx", onnx_model(
        [helper.make_node("Flatten", ["x"], ["y"], name="flatten", axis=1000)], [float_input("x", [1, 2, 3, 3])],
        [float_output("y")]), "node 'flatten' (Flatten): axis 1000 is out of range for an input of rank 4"))
    # 300,000 inputs named y, none of them among the 300,000 initializers named x: each input was
    # looked up in every initializer (9e10 string comparisons).
    seed = onnx_model([relu], [float_input("x", [1, 2])], [float_output("y")])
    graph_inputs = (b"\x5a\x03\x0a\x01y") * 300000
    init = TensorProto()
    init.name, init.data_type, init.raw_data = "x", TensorProto.FLOAT, b"\0\0\0\0"
    init.dims.extend([1])
    ib = init.SerializeToString()
    graph_inits = (b"\x2a" + varint(len(ib)) + ib) * 300000
    model = onnx.load_from_string(seed)
    g = model.graph.SerializeToString() + graph_inputs + graph_inits
    model.ClearField("graph")
    body = model.SerializeToString() + b"\x3a" + varint(len(g)) + g
    out.append(("inputs_300k.onnx.gz", gzip.compress(body, 9, mtime=0),
                "the number of initializers, inputs and outputs (600002) exceeds the model_tensors limit"))
    # 12 million empty opset_import entries (field 8, 2 bytes each): about 100 bytes each inside protobuf-c.
    out.append(("opset_bomb.onnx.gz", gzip.compress(seed + b"\x42\x00" * 12000000, 9, mtime=0),
                "exceeds the model_bytes limit"))
    # Valid: 400 pools in a chain; every probe output was kept (256 KB each, 100 MB in all; the same
    # with a (1, 64, 256, 256) input took 6.4 GB).
    nodes = [helper.make_node("MaxPool", ["x" if k == 0 else "p%d" % (k - 1)], ["p%d" % k if k < 399 else "y"],
                              name="pool%d" % k, kernel_shape=[1, 1]) for k in range(400)]
    pools = onnx_model(nodes, [float_input("x", [1, 4, 128, 128])], [float_output("y")])
    return out, pools


def tflite_tensor(shape, ttype, buffer=0, q=None, name=""):
    f = [field(0, "obj", Vec("i", shape)), field(1, "b", ttype), field(2, "I", buffer), field(3, "obj", Str(name))]
    if q is not None:
        f.append(field(4, "obj", q))
    return table(*f)


def tflite_model(tensors, ops, opcodes, inputs, outputs, buffers, tensor_vec=None):
    subgraph = table(field(0, "obj", tensor_vec or Vec("obj", tensors)), field(1, "obj", Vec("i", inputs)),
                     field(2, "obj", Vec("i", outputs)), field(3, "obj", Vec("obj", ops)), field(4, "obj", Str("main")))
    model = table(field(0, "I", 3), field(1, "obj", Vec("obj", opcodes)), field(2, "obj", Vec("obj", [subgraph])),
                  field(3, "obj", Str("hostile")),
                  field(4, "obj", Vec("obj", [table(field(0, "obj", Vec("B", list(b), 16))) for b in buffers])))
    return Writer().finish(model)


def softmax_op(inp, out):
    return table(field(0, "I", 0), field(1, "obj", Vec("i", [inp])), field(2, "obj", Vec("i", [out])),
                 field(3, "B", 9), field(4, "obj", table(field(0, "f", 1.0))))


def hostile_tflite():
    """(name, bytes, expected piece) for the TFLite files of issue 11, and the valid shared_buffer.tflite.gz."""
    softmax_code = [table(field(0, "b", SOFTMAX), field(2, "i", 1), field(3, "i", SOFTMAX))]
    out = []
    out.append(("big_input.tflite", tflite_model(
        [tflite_tensor([1, 30000, 30000, 3], FLOAT32, name="image"), tflite_tensor([1, 30000, 30000, 3], FLOAT32, name="prob")],
        [softmax_op(0, 1)], softmax_code, [0], [1], [b""]),
        "the probe of input 'image' of shape (1, 3, 30000, 30000) (10800000000 bytes) exceeds the probe_bytes limit"))
    # 150,000 tensor slots: refused from the count, before any slot is read.
    many = tflite_model([], [softmax_op(0, 1)], softmax_code, [0], [1], [b""], tensor_vec=Vec("I", [0] * 150000))
    out.append(("tensors_150k.tflite.gz", gzip.compress(many, 9, mtime=0),
                "the number of tensors (150000) exceeds the model_tensors limit"))
    # 1,000 1x1 convolutions in a chain, all reading one 1024x1024 int8 weight (1 MB, 4 MB as float):
    # each layer made its own float copy (4 GB).
    q = table(field(2, "obj", Vec("f", [0.01])), field(3, "obj", Vec("q", [0])), field(6, "i", 0))
    n = 1000
    tensors = [tflite_tensor([1, 1, 1, 1024], FLOAT32) for _ in range(n + 1)]
    tensors.append(tflite_tensor([1024, 1, 1, 1024], INT8, 1, q, name="shared/weights"))
    conv_code = [table(field(0, "b", CONV_2D), field(2, "i", 1), field(3, "i", CONV_2D))]
    conv_opt = lambda: table(field(0, "b", VALID), field(1, "i", 1), field(2, "i", 1), field(3, "b", 0))
    ops = [table(field(0, "I", 0), field(1, "obj", Vec("i", [k, n + 1, -1])), field(2, "obj", Vec("i", [k + 1])),
                 field(3, "B", 1), field(4, "obj", conv_opt())) for k in range(n)]
    chain = tflite_model(tensors, ops, conv_code, [0], [n], [b"", bytes(1024 * 1024)])
    out.append(("shared_weight_1000_ops.tflite.gz", gzip.compress(chain, 9, mtime=0), "exceeds the model_bytes limit"))
    # Valid: 2,000 tensors dequantizing one 4 MB uint8 buffer (16 MB as float each, 32 GB in all).
    qu = table(field(2, "obj", Vec("f", [0.5])), field(3, "obj", Vec("q", [3])), field(6, "i", 0))
    shared = [tflite_tensor([1, 1, 1, 4], FLOAT32, name="image"), tflite_tensor([1, 1, 1, 4], FLOAT32, name="prob")]
    shared += [tflite_tensor([1, 4 * 1024 * 1024], UINT8, 1, qu) for _ in range(2000)]
    shared_model = tflite_model(shared, [softmax_op(0, 1)], softmax_code, [0], [1], [b"", bytes(4 * 1024 * 1024)])
    return out, gzip.compress(shared_model, 9, mtime=0)


def hostile_checkpoint():
    """A 192-byte lumen checkpoint whose architecture declares Linear(60000, 60000) and holds no tensor."""
    meta = {"lumen.format": "lumen-checkpoint-1",
            "lumen.arch": json.dumps({"type": "Linear", "name": "dense",
                                      "config": {"in_features": 60000, "out_features": 60000}}, separators=(",", ":"))}
    h = json.dumps({"__metadata__": meta}, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    return [("linear_60000.lumen", struct.pack("<Q", len(h)) + h,
             "is larger than the largest tensor in the checkpoint (0 bytes)")]


def broken_tflite():
    ok = tiny_tflite()
    bad_ident = ok[:4] + b"XXXX" + ok[8:]
    huge_vec = bytearray(ok)  # the subgraph's tensors vector: claim 2^31 - 1 entries
    # Find the tensor count (13) just before a vector of 13 offsets: patch the first u32 equal to 13
    # that is followed by plausible offsets.
    at = next(i for i in range(8, len(ok) - 4, 4) if struct.unpack_from("<I", ok, i)[0] == 13)
    struct.pack_into("<I", huge_vec, at, 0x7FFFFFFF)
    bad_vtable = bytearray(ok)
    root = struct.unpack_from("<I", ok, 0)[0]
    struct.pack_into("<i", bad_vtable, root, -0x7FFFFFF0)
    return [
        ("short.tflite", ok[:6], "too short for a TFLite model"),
        ("bad_identifier.tflite", bad_ident, "not a TFLite model"),
        ("truncated_half.tflite", ok[:len(ok) // 2], "truncated or corrupted TFLite file"),
        ("truncated_last_byte.tflite", ok[:-1], "truncated or corrupted TFLite file"),
        ("huge_vector.tflite", bytes(huge_vec), "truncated or corrupted TFLite file"),
        ("bad_vtable.tflite", bytes(bad_vtable), "truncated or corrupted TFLite file (model at byte"),
        ("weights_too_short.tflite", tiny_tflite(bad="data_size"), "tensor 1 'conv/weights': 51 bytes of data, but 54 int8 values need 54"),
        ("buffer_index.tflite", tiny_tflite(bad="buffer_index"), "buffer 99 does not exist"),
        ("tensor_index.tflite", tiny_tflite(bad="tensor_index"), "refers to tensor 70, but the model has 13 tensors"),
        ("opcode_index.tflite", tiny_tflite(bad="opcode_index"), "operator 3 uses operator code 42"),
        ("scale_count.tflite", tiny_tflite(bad="scales"), "4 quantization scales along dimension 0"),
        ("unsupported_op.tflite", tiny_tflite(code_of={"ADD": 9}), "operator 3 'add/Relu' (FULLY_CONNECTED): unsupported operator"),
    ]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="tests/fixtures/broken_models")
    out = ap.parse_args().out
    seeds = os.path.join(out, "seeds")
    os.makedirs(seeds, exist_ok=True)
    tiny = tiny_tflite()
    with open(os.path.join(seeds, "tiny.tflite"), "wb") as fh:
        fh.write(tiny)
    q_in = ((np.arange(40) * 29 + 7) % 256).astype(np.uint8).reshape(1, 5, 4, 2)
    np.save(os.path.join(seeds, "tiny_input.npy"), ((q_in.astype(np.float32) - IN_ZP) * IN_SCALE).transpose(0, 3, 1, 2))
    np.save(os.path.join(seeds, "tiny_output.npy"), tiny_reference(q_in).astype(np.float32))
    export_ops(seeds)
    write_forms(seeds)
    seed_onnx = small_onnx()
    lines = []
    hostile, pools = hostile_onnx()
    hostile_t, shared = hostile_tflite()
    for name, data, expect in broken_onnx(seed_onnx) + broken_tflite() + hostile + hostile_t + hostile_checkpoint():
        with open(os.path.join(out, name), "wb") as fh:
            fh.write(data)
        lines.append("%s\t%s\n" % (name, expect))
    for name, data in (("pools_400.onnx.gz", gzip.compress(pools, 9, mtime=0)), ("shared_buffer.tflite.gz", shared)):
        with open(os.path.join(out, name), "wb") as fh:
            fh.write(data)
    with open(os.path.join(out, "expected.txt"), "w") as fh:
        fh.write("# file<TAB>a piece of the error message lumen must give for it (made by tools/make_broken_models.py)\n")
        fh.writelines(lines)


if __name__ == "__main__":
    main()
