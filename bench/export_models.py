"""Exports the torchvision networks the model bench runs beyond ResNet-18 (whose ONNX is a test fixture):
MobileNet v2, MobileNet v3 (large), EfficientNet-B0 and VGG-16, with torchvision's default random
initialisation (seed 0), random biases and random BatchNorm statistics and affine parameters (so that no two initializers are
equal: the exporter would merge them under one name, and the BNs are not identities), in eval mode with BatchNormalization kept (so the ONNX initializers are the
state_dict names and the torch side loads them back: benchlib.torchvision_from_onnx). Writes
bench/models/<name>.onnx (git-ignored; VGG-16 is 528 MB). Skips files that exist.
Run: /usr/bin/python3 bench/export_models.py [names=mobilenet_v2,mobilenet_v3_large,efficientnet_b0,vgg16]"""
import os
import sys

import torch
import torchvision

import benchlib

NAMES = "mobilenet_v2,mobilenet_v3_large,efficientnet_b0,vgg16"


def main():
    p = benchlib.args({"names": NAMES})
    out_dir = os.path.join(benchlib.REPO, "bench", "models")
    os.makedirs(out_dir, exist_ok=True)
    for name in benchlib.names("names", p["names"], NAMES.split(",")):
        path = os.path.join(out_dir, name + ".onnx")
        if os.path.exists(path):
            continue
        torch.manual_seed(0)
        model = getattr(torchvision.models, name)(weights=None).eval()
        with torch.no_grad():
            for m in model.modules():
                if isinstance(m, torch.nn.BatchNorm2d):
                    m.weight.uniform_(0.5, 1.5)
                    m.bias.normal_(0, 0.1)
                    m.running_mean.normal_(0, 0.1)
                    m.running_var.uniform_(0.5, 1.5)
            for pname, prm in model.named_parameters():
                if pname.endswith("bias"):  # zero biases would be merged into one initializer too
                    prm.normal_(0, 0.05)
        torch.onnx.export(model, torch.zeros(1, 3, 224, 224), path + ".part", opset_version=13,
                          input_names=["input"], output_names=["logits"],
                          dynamic_axes={"input": {0: "N"}, "logits": {0: "N"}}, do_constant_folding=True,
                          training=torch.onnx.TrainingMode.PRESERVE)
        os.replace(path + ".part", path)
        print(f"wrote {os.path.relpath(path, benchlib.REPO)}", file=sys.stderr)


if __name__ == "__main__":
    main()
