"""Reference values for lumen's attention rollout and transformer attribution (lua/lumen/explain/attention.lua).

Run from the repository root with Debian's PyTorch:

    /usr/bin/python3 tools/ref_transformer_methods.py [--out tests/fixtures/torch]

It rebuilds the ViT and the text transformer of tools/export_transformers.py (same seeds, so the same weights
as vit_opset13.onnx.gz and text_transformer.onnx.gz; it checks that their logits are the fixtures' within
1e-5), runs them on the fixtures' inputs with every nn.MultiheadAttention computed by hand so that the
attention weights A (N, heads, T, T) are kept with their gradients, and writes the matrices R (N, T, T):

  * attention rollout (Abnar & Zuidema 2020) as jacobgil/vit-explain computes it (vit_rollout.py: heads
    fused by mean / max / min, the lowest discard_ratio of the entries dropped, sparing the class token's
    attention to itself, a = (A + I) / 2, R = a @ R), with two differences lumen makes on purpose: rows are
    renormalised with keepdim=True (vit-explain's a / a.sum(dim=-1) divides columns by row sums, its issue
    16), and the discard is applied per sample (vit-explain drops sample 0's entries only);
  * transformer attribution (Chefer, Gur & Wolf 2021) as the authors' ViT notebook
    (Transformer_MM_explainability_ViT.ipynb: avg_heads, apply_self_attention_rules, generate_relevance):
    R = I; R += mean_heads(clamp(dA * A, min=0)) @ R per layer, dA the gradient of each row's top logit.

Files (float32, C order): {vit,text_transformer}_rollout_{mean,max_discard,min_discard}.npy and
{vit,text_transformer}_attribution.npy, each (2, T, T); the options used are in transformer_methods.json.
The text transformer pools every token (mean), so no entry is spared from the discard there.
"""
import argparse
import json
import math
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import export_transformers as ex  # noqa: E402

CASES = {"mean": ("mean", 0.0), "max_discard": ("max", 0.5), "min_discard": ("min", 0.3)}


def hand_attention(mha, store):
    """Replaces mha.forward (batch_first self-attention, no masks) by the same computation written out, keeping
    the softmax output A (N, heads, T, T) with its gradient."""
    assert mha.batch_first

    def forward(query, key, value, need_weights=False, attn_mask=None, key_padding_mask=None, **kw):
        assert attn_mask is None and key_padding_mask is None and query is key and key is value
        n, t, e = query.shape
        h = mha.num_heads
        d = e // h
        q, k, v = F.linear(query, mha.in_proj_weight, mha.in_proj_bias).chunk(3, -1)

        def split(z):
            return z.reshape(n, t, h, d).transpose(1, 2)

        a = torch.softmax(split(q) @ split(k).transpose(-1, -2) / math.sqrt(d), -1)
        a.retain_grad()
        store.append(a)
        o = (a @ split(v)).transpose(1, 2).reshape(n, t, e)
        return F.linear(o, mha.out_proj.weight, mha.out_proj.bias), None

    mha.forward = forward


def run(model, x):
    """Logits, the attention weights of every layer (in order, with .grad of each row's top logit)."""
    store = []
    for m in model.modules():
        if isinstance(m, torch.nn.MultiheadAttention):
            hand_attention(m, store)
    y = model(x)
    y.gather(1, y.argmax(1)[:, None]).sum().backward()
    return y.detach(), store


def rollout(attentions, head_fusion, discard_ratio, spare_first):
    n, _, t, _ = attentions[0].shape
    eye = torch.eye(t)
    result = eye.expand(n, t, t)
    with torch.no_grad():
        for attention in attentions:
            fused = {"mean": lambda a: a.mean(1), "max": lambda a: a.max(1)[0],
                     "min": lambda a: a.min(1)[0]}[head_fusion](attention).clone()
            flat = fused.view(n, -1)
            k = int(flat.size(-1) * discard_ratio)
            if k > 0:
                _, indices = flat.topk(k, -1, False)
                for i in range(n):  # per sample
                    idx = indices[i]
                    if spare_first:
                        idx = idx[idx != 0]
                    flat[i, idx] = 0
            a = (fused + eye) / 2
            a = a / a.sum(dim=-1, keepdim=True)
            result = torch.matmul(a, result)
    return result


def attribution(attentions):
    n, _, t, _ = attentions[0].shape
    r = torch.eye(t).expand(n, t, t).clone()
    with torch.no_grad():
        for a in attentions:
            cam = (a.grad * a).clamp(min=0).mean(dim=1)
            r = r + torch.matmul(cam, r)
    return r


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=os.path.join("tests", "fixtures", "torch"))
    out = ap.parse_args().out
    torch.set_num_threads(2)
    vit = ex.build_vit()
    torch.manual_seed(ex.SEED + 11)
    text = ex.quantise_(ex.TextTransformer(), ex.SEED + 12)
    tokens = torch.from_numpy(np.load(os.path.join(out, "text_tokens.npy")))
    x = torch.from_numpy(np.load(os.path.join(out, "vision_input.npy")))
    info = {"cases": {k: {"head_fusion": v[0], "discard_ratio": v[1]} for k, v in CASES.items()}}
    for name, model, inp, spare in (("vit", vit, x, True), ("text_transformer", text, tokens, False)):
        logits, att = run(model, inp)
        ref = np.load(os.path.join(out, f"{name}_logits.npy"))
        err = float(np.abs(logits.numpy() - ref).max())
        assert err < 1e-5, f"{name}: rebuilt model differs from the fixture by {err}"
        for case, (fusion, ratio) in CASES.items():
            ex.save_npy(out, f"{name}_rollout_{case}.npy", rollout(att, fusion, ratio, spare))
        ex.save_npy(out, f"{name}_attribution.npy", attribution(att))
        info[name] = {"tokens": int(att[0].shape[-1]), "layers": len(att), "heads": int(att[0].shape[1]),
                      "class_token": spare, "top_1based": (logits.argmax(1) + 1).tolist(), "logit_error": err}
        print(f"{name}: {len(att)} layers, attention {tuple(att[0].shape)}, logits within {err:.2g} of the fixture")
    with open(os.path.join(out, "transformer_methods.json"), "w") as f:
        json.dump(info, f, indent=2, sort_keys=True)
        f.write("\n")


if __name__ == "__main__":
    main()
