"""PyTorch side of the transformer bench, at 1 and 2 threads: torchvision's VisionTransformer as ViT-Ti/16
(224x224, 12 layers of 3 heads, width 192, MLP 768) forward and saliency (d top score / d pixels), batch 1 and
8; the shape of lumen's shipped text transformer (Embedding 8000x100 -> Linear(100, 64) -> class token and
learned positions -> 2 pre-norm nn.TransformerEncoderLayers (4 heads, MLP 128, GELU, batch_first) with the
padding mask -> LayerNorm -> class token -> Linear(64, 20), 96 tokens) forward and saliency at the embedding
output, batch 1 and 32. Random weights, frozen, eval mode (PyTorch's own fast paths apply where it takes
them). Run: /usr/bin/python3 bench/transformer_torch.py [thread_counts=1,2 vit_batches=1,8 text_batches=1,32 reps=5
reps_big=2 cases=vit,text]. Twin: bench/transformer.lua. FLOPs (2 per multiply-add) are counted from the
shapes: patch embedding, projections, attention products, MLPs and heads; saliency counts 2x the forward.
OpenBLAS's threads follow torch.set_num_threads through openblas_set_num_threads on the loaded libblas."""
import ctypes

import torch
from torchvision.models.vision_transformer import VisionTransformer

import benchlib

VIT = "vit-ti/16 224"
TEXT = "text transformer L=96"


def set_threads(t):
    torch.set_num_threads(t)
    for name in ("libblas.so.3", "libopenblas.so.0"):
        try:
            ctypes.CDLL(name).openblas_set_num_threads(t)
        except (OSError, AttributeError):
            pass


def layer_flop(tokens, dim, mlp):
    return 2 * tokens * dim * 3 * dim + 2 * 2 * tokens * tokens * dim + 2 * tokens * dim * dim + 2 * 2 * tokens * dim * mlp


class TextTransformer(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = torch.nn.Embedding(8000, 100)
        self.project = torch.nn.Linear(100, 64)
        self.cls = torch.nn.Parameter(torch.zeros(1, 1, 64))
        self.pos = torch.nn.Parameter(torch.randn(1, 97, 64) * 0.02)
        layer = torch.nn.TransformerEncoderLayer(64, 4, 128, dropout=0.1, activation="gelu", batch_first=True,
                                                 norm_first=True)
        self.encoder = torch.nn.TransformerEncoder(layer, 2)
        self.norm = torch.nn.LayerNorm(64)
        self.head = torch.nn.Linear(64, 20)

    def rest(self, e, ids):
        n, t = ids.shape
        x = torch.cat([self.cls.expand(n, 1, 64), self.project(e)], 1) + self.pos[:, :t + 1]
        mask = torch.cat([torch.zeros(n, 1, dtype=torch.bool), ids == 0], 1)
        return self.head(self.norm(self.encoder(x, src_key_padding_mask=mask))[:, 0])

    def forward(self, ids):
        return self.rest(self.embed(ids), ids)


def text_ids(n):
    """As bench/transformer.lua's, 0-based: row i holds 16 + (37 i mod 80) words, then padding (0)."""
    rows = []
    for i in range(1, n + 1):
        length = 16 + (37 * i) % 80
        rows.append([2 + (i * 131 + j * 17) % 7997 if j <= length else 0 for j in range(1, 97)])
    return torch.tensor(rows)


def top_score(y):
    return y.gather(1, y.argmax(1)[:, None]).sum()


def main():
    p = benchlib.args({"thread_counts": "1,2", "vit_batches": "1,8", "text_batches": "1,32", "reps": 5, "reps_big": 2,
                       "cases": "vit,text"})
    want = set(benchlib.names("cases", p["cases"], ["vit", "text"]))
    vit = benchlib.freeze(VisionTransformer(image_size=224, patch_size=16, num_layers=12, num_heads=3, hidden_dim=192,
                                            mlp_dim=768, num_classes=1000)) if "vit" in want else None
    text = benchlib.freeze(TextTransformer()) if "text" in want else None
    vit_flop = 2 * 196 * 192 * 3 * 256 + 12 * layer_flop(197, 192, 768) + 2 * 192 * 1000
    for t in benchlib.int_list(p["thread_counts"]):
        set_threads(t)
        tag = f" t{t}"
        for n in benchlib.int_list(p["vit_batches"]) if vit else []:
            reps = p["reps"] if n == 1 else p["reps_big"]
            x = torch.randn(n, 3, 224, 224)

            def fwd():
                with torch.no_grad():
                    vit(x)

            def saliency():
                xg = x.clone().requires_grad_(True)
                torch.autograd.grad(top_score(vit(xg)), xg)

            benchlib.emit("xformer", VIT + tag, n, "fwd", benchlib.measure(fwd, reps), n * vit_flop)
            benchlib.emit("xformer", VIT + tag, n, "saliency", benchlib.measure(saliency, reps), 2 * n * vit_flop)
        for n in benchlib.int_list(p["text_batches"]) if text else []:
            reps = p["reps"] if n == 1 else p["reps_big"]
            ids = text_ids(n)
            flop = n * (2 * 96 * 100 * 64 + 2 * layer_flop(97, 64, 128) + 2 * 64 * 20)

            def tfwd():
                with torch.no_grad():
                    text(ids)

            def tsaliency():
                with torch.no_grad():
                    e = text.embed(ids)
                e.requires_grad_(True)
                torch.autograd.grad(top_score(text.rest(e, ids)), e)

            benchlib.emit("xformer", TEXT + tag, n, "fwd", benchlib.measure(tfwd, reps), flop)
            benchlib.emit("xformer", TEXT + tag, n, "saliency", benchlib.measure(tsaliency, reps), 2 * flop)


if __name__ == "__main__":
    main()
