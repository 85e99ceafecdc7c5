"""PyTorch side of the model bench: ResNet-18 (torchvision, weights from the same ONNX file lumen loads)
forward, and forward + backward to the input (parameters frozen, as explanation methods need), at each
batch size. Run: /usr/bin/python3 bench/model_torch.py [batches=1,32 reps=5 reps_big=2
model=tests/fixtures/torch/resnet18.onnx.gz]. Twin: bench/model.lua. FLOPs: the forward's conv + linear
multiply-adds x 2; forward+backward-to-input counts 2x that (nominal: d/dx of each layer costs its forward)."""
import torch

import benchlib


def main():
    p = benchlib.args({"batches": "1,32", "reps": 5, "reps_big": 2, "model": "tests/fixtures/torch/resnet18.onnx.gz"})
    model = benchlib.resnet18_from_onnx(p["model"])
    for batch in benchlib.int_list(p["batches"]):
        reps = p["reps"] if batch == 1 else p["reps_big"]
        x = torch.randn(batch, 3, 224, 224)
        flop = benchlib.forward_flop(model, x.shape)

        def fwd():
            with torch.no_grad():
                model(x)

        xg = x.clone().requires_grad_(True)
        g = torch.randn(batch, 1000)

        def fwdbwd():
            torch.autograd.grad(model(xg), xg, g)

        benchlib.emit("model", "resnet18 224", batch, "fwd", benchlib.measure(fwd, reps), flop)
        benchlib.emit("model", "resnet18 224", batch, "fwd+bwd(x)", benchlib.measure(fwdbwd, reps), 2 * flop)


if __name__ == "__main__":
    main()
