"""Reference values for lumen's ROAD (lua/lumen/explain/road.lua): tests/fixtures/road/.

Run from the repository root with Debian's python3 (numpy only):

    /usr/bin/python3 tools/ref_road.py [--out tests/fixtures/road]

The noisy linear imputation and the MoRF / LeRF evaluation are transcribed from the authors' code
(github.com/tleemann/road_evaluation: road/imputations.py NoisyLinearImputer.setup_sparse_system,
road/imputed_dataset.py ImputedDataset.__getitem__, road/retraining.py road_eval), with the sparse
system built densely and solved by numpy.linalg.solve in float64 instead of scipy's spsolve (no
scipy on Debian's PyTorch image; the system is the same). Noise 0, so lumen must agree to solver
precision; the map's values are a permutation spaced far wider than the reference's 1e-4 tie-break
noise, so both rank the pixels the same way. Seeded: a rerun writes the same files.
"""
import argparse
import json
import os

import numpy as np

NEIGHBORS = [((1, 1), 1 / 12), ((0, 1), 1 / 6), ((-1, 1), 1 / 12), ((1, -1), 1 / 12), ((0, -1), 1 / 6),
             ((-1, -1), 1 / 12), ((1, 0), 1 / 6), ((-1, 0), 1 / 6)]


def add_offset_to_indices(indices, offset, mask_shape):
    cord1 = indices % mask_shape[1]
    cord0 = indices // mask_shape[1]
    cord0 = cord0 + offset[0]
    cord1 = cord1 + offset[1]
    invalid = (cord0 < 0) | (cord1 < 0) | (cord0 >= mask_shape[0]) | (cord1 >= mask_shape[1])
    return ~invalid, indices + offset[0] * mask_shape[1] + offset[1]


def setup_system(mask, img):
    """mask (H, W) 1 = kept; img (C, H, W). Returns A (N, N), b (N, C) as the reference does."""
    maskflt = mask.flatten()
    imgflat = img.reshape((img.shape[0], -1))
    indices = np.argwhere(maskflt == 0).flatten()
    coords_to_vidx = np.zeros(len(maskflt), dtype=int)
    coords_to_vidx[indices] = np.arange(len(indices))
    n = len(indices)
    A = np.zeros((n, n))
    b = np.zeros((n, img.shape[0]))
    sum_neighbors = np.ones(n)
    for offset, weight in NEIGHBORS:
        valid, new_coords = add_offset_to_indices(indices, offset, mask.shape)
        valid_coords = new_coords[valid]
        valid_ids = np.argwhere(valid == 1).flatten()
        has_values_coords = valid_coords[maskflt[valid_coords] > 0.5]
        has_values_ids = valid_ids[maskflt[valid_coords] > 0.5]
        b[has_values_ids, :] -= weight * imgflat[:, has_values_coords].T
        has_no_values = valid_coords[maskflt[valid_coords] < 0.5]
        variable_ids = coords_to_vidx[has_no_values]
        has_no_values_ids = valid_ids[maskflt[valid_coords] < 0.5]
        A[has_no_values_ids, variable_ids] = weight
        sum_neighbors[np.argwhere(valid == 0).flatten()] -= weight
    A[np.arange(n), np.arange(n)] = -sum_neighbors
    return A, b


def impute(img, mask):
    flat = img.reshape(img.shape[0], -1).astype(np.float64).copy()
    missing = np.argwhere(mask.reshape(-1) == 0).flatten()
    A, b = setup_system(mask, img.astype(np.float64))
    flat[:, missing] = np.linalg.solve(A, b).T
    return flat.reshape(img.shape)


def bitmask(expl, th_p, remove, rng):
    """ImputedDataset.__getitem__: rank by the min-max normalised map plus 1e-4 N(0, 1)."""
    h, w = expl.shape
    e = (expl - expl.min()) / (expl.max() - expl.min() + 1e-5) + 1e-4 * rng.standard_normal((h, w))
    order = np.argsort(-e.reshape(-1), kind="stable")  # highest values first
    m = np.ones(h * w, dtype=np.uint8)
    if remove:
        m[order[:int(h * w * th_p)]] = 0
    else:
        m[order[int(h * w * th_p):]] = 0
    return m.reshape(h, w)


def softmax(z):
    z = z - z.max()
    e = np.exp(z)
    return e / e.sum()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=os.path.join("tests", "fixtures", "road"))
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    rng = np.random.default_rng(2022)
    C, H, W, K = 3, 12, 10, 4
    x = rng.random((1, C, H, W)).astype(np.float32)
    keep = (rng.random((H, W)) > 0.45).astype(np.float32)
    keep[3:8, 2:6] = 0  # a hole wider than one pixel
    keep[0, :] = 0  # and a removed border
    imputed = impute(x[0], keep)[None].astype(np.float32)
    weight = (rng.standard_normal((K, C * H * W)) * 0.2).astype(np.float32)
    bias = (rng.standard_normal(K) * 0.1).astype(np.float32)
    expl = (rng.permutation(H * W).reshape(H, W) / (H * W - 1)).astype(np.float32)

    def probs(img):
        return softmax(weight.astype(np.float64) @ img.reshape(-1).astype(np.float64) + bias)

    target = int(np.argmax(probs(x[0])))
    fractions = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]
    morf, lerf = [], []
    for p in fractions:
        morf.append(float(probs(impute(x[0], bitmask(expl, p, True, rng)))[target]))
        lerf.append(float(probs(impute(x[0], bitmask(expl, 1 - p, False, rng)))[target]))  # LeRF at 1 - p
    for name, arr in [("x", x), ("keep", keep), ("imputed", imputed), ("weight", weight), ("bias", bias), ("map", expl)]:
        np.save(os.path.join(args.out, name + ".npy"), arr)
    with open(os.path.join(args.out, "road.json"), "w") as f:
        json.dump({"target": target + 1, "fractions": fractions, "morf": morf, "lerf": lerf}, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
