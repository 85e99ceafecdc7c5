"""PyTorch side of the model bench: each network of bench/models.json as a torch module holding the weights of
the same ONNX file lumen loads (benchlib.model_of), forward, and forward + backward to the input (parameters
frozen, as explanation methods need), at each of its batch sizes, with the peak resident memory of each
workload. Run: /usr/bin/python3 bench/model_torch.py [models=all reps=5 reps_big=2 warmup=3 batches=<from
models.json> threads=2] (warmup: passes before the timed ones at batch 1, one at larger batches). Twins:
bench/model.lua, bench/ort.js. FLOPs: the forward's conv + linear multiply-adds x 2; forward+backward-to-input
counts 2x that (nominal: d/dx of each layer costs its forward)."""
import gc

import torch

import benchlib


def main():
    p = benchlib.args({"models": "all", "batches": "", "reps": 5, "reps_big": 2, "warmup": 3})
    specs = benchlib.read_models()
    wanted = benchlib.names("models", p["models"], [s["name"] for s in specs])
    for spec in specs:
        if spec["name"] not in wanted:
            continue
        model = benchlib.model_of(spec)
        if model is None:
            continue
        batches = benchlib.int_list(p["batches"]) if p["batches"] else spec["batches"]
        case = f"{spec['name']} {spec['size']}"
        for batch in batches:
            reps = p["reps"] if batch == 1 else p["reps_big"]
            warmup = p["warmup"] if batch == 1 else 1
            x = torch.randn(batch, 3, spec["size"], spec["size"])
            flop = benchlib.forward_flop(model, x.shape)

            def fwd():
                with torch.no_grad():
                    model(x)

            xg = x.clone().requires_grad_(True)
            with torch.no_grad():
                g = torch.randn_like(model(x))

            def fwdbwd():
                torch.autograd.grad(model(xg), xg, g)

            gc.collect()
            benchlib.rss_reset()
            ms = benchlib.measure(fwd, reps, warmup)
            benchlib.emit("model", case, batch, "fwd", ms, flop, benchlib.rss_peak())
            gc.collect()
            benchlib.rss_reset()
            ms = benchlib.measure(fwdbwd, reps, warmup)
            benchlib.emit("model", case, batch, "fwd+bwd(x)", ms, 2 * flop, benchlib.rss_peak())
        del model
        gc.collect()


if __name__ == "__main__":
    main()
