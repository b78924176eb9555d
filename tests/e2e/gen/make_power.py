#!/usr/bin/env python3
"""Checkpoints and torch-computed expectations for the power-user e2e tests (tensor table, value
viewer, statistics export, heatmap, statistics notes).

Usage: ~/.cache/weightscope/venv/bin/python tests/e2e/gen/make_power.py OUTDIR

Writes OUTDIR/power.pth (a state dict with a 4-D, a 1-D, a complex, a NaN/Inf and two 2-D
tensors), OUTDIR/many.safetensors (100,000 one-element tensors) and OUTDIR/power.expect.json:
every expected number below comes from torch.
"""
import json
import math
import sys

import numpy as np
import torch
from safetensors.torch import save_file

out = sys.argv[1]
torch.manual_seed(7)

nd = torch.randn(3, 4, 5, 6)
flat = torch.linspace(-2.0, 3.0, 200)
cplx = torch.complex(torch.randn(50), torch.randn(50) * 2.0 + 1.0)
bad = torch.randn(40)
bad[3] = float("nan")
bad[7] = float("inf")
bad[11] = float("-inf")
small2d = torch.randn(24, 40)
big2d = torch.randn(600, 1000) * torch.linspace(0.1, 3.0, 1000)
sd = {
    "enc.nd": nd,
    "enc.flat": flat,
    "enc.cplx": cplx,
    "dec.bad": bad,
    "dec.small": small2d,
    "dec.big": big2d,
    "dec.zeros": torch.zeros(10),
    "steps": torch.tensor(12, dtype=torch.int64),
}
torch.save(sd, f"{out}/power.pth")
# B for the A/B view: dec.small moved by noise, the rest unchanged
sd_b = dict(sd)
sd_b["dec.small"] = small2d * 1.5 + 0.1 * torch.randn(24, 40)
torch.save(sd_b, f"{out}/power_b.pth")


def f(x):
    x = float(x)
    return None if math.isnan(x) else x


def vals(t):
    return [float(v) for v in t.reshape(-1).tolist()]


expect = {
    "tensors": {k: {"numel": v.numel(), "shape": list(v.shape), "dtype": str(v.dtype).replace("torch.", "")}
                for k, v in sd.items()},
    # value viewer: planes of the 4-D tensor, in the viewer's row-by-row order
    "plane_default": vals(nd[0, 0, :, :]),             # rows axis 2, columns axis 3 (5 x 6)
    "plane_1_3_at_2_x_3": vals(nd[2, :, 3, :]),         # rows axis 1, columns axis 3, a=2, c=3
    "plane_3_0_at_1_4": vals(nd[:, 1, 4, :].T),         # rows axis 3, columns axis 0 (6 x 3)
    "flat_page2": vals(flat[64:128]),
    "big_rows_16_32": vals(big2d[16:32, 8:16]),        # rows 16..31 and columns 8..15
    "small2d": vals(small2d),
    # statistics notes
    "cplx": {
        "real": {"min": f(cplx.real.min()), "max": f(cplx.real.max()), "mean": f(cplx.real.double().mean()),
                 "std": f(cplx.real.double().std(unbiased=False))},
        "imag": {"min": f(cplx.imag.min()), "max": f(cplx.imag.max()), "mean": f(cplx.imag.double().mean()),
                 "std": f(cplx.imag.double().std(unbiased=False))},
        "abs_mean": f(cplx.abs().double().mean()),
    },
    "bad": {"finite": int(torch.isfinite(bad).sum()), "count": bad.numel(),
            "mean": f(bad[torch.isfinite(bad)].double().mean())},
    # the overview's std on a log axis: tensors whose std is 0 go on the zero line
    "stds": {k: f(v.abs().double().std(unbiased=False) if v.is_complex()
                  else v[torch.isfinite(v)].double().std(unbiased=False)) for k, v in sd.items()},
    # the A/B view of dec.small: numpy's histograms over the common range, and of a − b
    "ab": (lambda a, b: {
        "a": np.histogram(a, bins=64, range=(min(a.min(), b.min()), max(a.max(), b.max())))[0].tolist(),
        "b": np.histogram(b, bins=64, range=(min(a.min(), b.min()), max(a.max(), b.max())))[0].tolist(),
        "lo": float(min(a.min(), b.min())), "hi": float(max(a.max(), b.max())),
        "diff": np.histogram(a - b, bins=64)[0].tolist(),
        "diff_lo": float((a - b).min()), "diff_hi": float((a - b).max()),
    })(small2d.double().numpy(), sd_b["dec.small"].double().numpy()),
    "means": {k: f(v.abs().double().mean() if v.is_complex() else v[torch.isfinite(v)].double().mean())
              for k, v in sd.items()},
}
with open(f"{out}/power.expect.json", "w") as fh:
    json.dump(expect, fh)

# 100,000 one-element tensors for the virtualized table
many = {f"layer.{i:06d}.w": torch.tensor([float(i)]) for i in range(100_000)}
save_file(many, f"{out}/many.safetensors")
