"""Helpers the fixture writers in tools/ share (export_fixtures.py, export_transformers.py,
ref_cam_family.py, export_pad_conv.py, export_silu.py): arrays to .npy, reproducible gzip, safetensors
written and read without the safetensors package, and an ONNX model with its PyTorch reference. A script imports it from its own folder:

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from fixturelib import save_npy, write_gz, write_safetensors
"""
import gzip
import io
import json
import os
import struct

import numpy as np
import torch


def to_numpy(t):
    """A contiguous NumPy array of a tensor (detached) or of anything np.asarray takes."""
    return np.ascontiguousarray(t.detach().numpy() if torch.is_tensor(t) else t)


def save_npy(out, name, t):
    np.save(os.path.join(out, name), to_numpy(t))


def write_gz(path, data):
    """data gzipped into path with mtime 0 and no file name: identical bytes on every run. Returns the size."""
    with open(path, "wb") as f:
        with gzip.GzipFile(fileobj=f, mode="wb", compresslevel=9, mtime=0, filename="") as gz:
            gz.write(data)
    return os.path.getsize(path)


def write_safetensors(path, tensors):
    """{name: tensor or array} (float32 or int64) as one safetensors file, names sorted, header padded to a
    multiple of 8 (what lumen.read_safetensors reads). Returns the size."""
    header, blobs, offset = {}, [], 0
    for name in sorted(tensors):
        a = to_numpy(tensors[name])
        dtype = {np.dtype("float32"): "F32", np.dtype("int64"): "I64"}[a.dtype]
        b = a.tobytes()
        header[name] = {"dtype": dtype, "shape": list(a.shape), "data_offsets": [offset, offset + len(b)]}
        blobs.append(b)
        offset += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)
    return os.path.getsize(path)


def write_onnx_fixture(out, name, net, x, opsets):
    """net exported at each opset to out/<name>_opset<N>.onnx from the first sample of x, with a symbolic
    batch ("input" -> "y"), and out/<name>.safetensors holding x, net(x) and d sum(net(x)) / dx: what
    tests/lua/support.lua's assert_agrees_with_fixture checks a loaded model against."""
    x = x.detach().requires_grad_()
    y = net(x)
    (g,) = torch.autograd.grad(y.sum(), x)
    for opset in opsets:
        buf = io.BytesIO()
        torch.onnx.export(net, x.detach()[:1], buf, opset_version=opset, input_names=["input"], output_names=["y"],
                          dynamic_axes={"input": {0: "batch"}, "y": {0: "batch"}})
        with open(os.path.join(out, f"{name}_opset{opset}.onnx"), "wb") as f:
            f.write(buf.getvalue())
    write_safetensors(os.path.join(out, f"{name}.safetensors"), {"input": x, "y": y, "grad": g})


def read_safetensors(path):
    """The F32 tensors of a safetensors file (a lumen checkpoint, say) as {name: torch tensor}."""
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        assert info["dtype"] == "F32", name
        a, b = info["data_offsets"]
        out[name] = torch.from_numpy(np.frombuffer(data[a:b], dtype="<f4").reshape(info["shape"]).copy())
    return out
