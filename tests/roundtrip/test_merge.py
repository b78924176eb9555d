"""`weightscope merge` and `--shard-size` against torch's own computation of the formulas.

Run (from the repository root, after `cargo build`):

    ~/.cache/weightscope/venv/bin/python -m pytest -q tests/roundtrip/test_merge.py

The inputs are made here with torch: three versions of a small torch module's state dict
(Linear → BatchNorm1d → Linear, 2.6 M parameters; one weight bfloat16, one bias float16, the
rest float32, `num_batches_tracked` int64), saved as `.pth` (torch.save, one in reversed key
order) and `.safetensors` (safetensors.torch.save_file), so every merge mixes formats and key
orders. The largest weight (2.52 M values) is larger than the TIES selector's in-memory
candidate set (2 Mi values) and than the writers' 4 MiB chunks, so the streamed paths are used.

Expected values: each method is written out below in torch, in float64, on the tensors
`torch.load` / `safe_open` read back, then `.to(FIRST's dtype)`. This file never reads what the
CLI computed to make an expectation.

Contract under test (docs: README "Merging"; src/export/merge.rs):
- linear / add-difference / ties equal torch bit for bit; slerp within one unit in the last
  place (its angle comes from streamed float64 sums, torch's from pairwise sums).
- non-floating tensors, and tensors not matching `--keys`, are FIRST's, bit for bit.
- different key sets or shapes: exit 2, the message names the key, nothing is written.
- `--shard-size`: Hugging Face shard names, an index whose `metadata.total_size` is the sum of
  the tensors' bytes and whose `weight_map` names every tensor's shard; shards load with
  safetensors / torch.load and equal the unsharded output; transformers'
  `load_sharded_checkpoint` (transformers.trainer_utils) loads the directory into the module.
"""
import json
import math
import os
import subprocess

import pytest
import torch
from safetensors.torch import load_file, save_file

pytestmark = pytest.mark.filterwarnings("ignore")

from wsenv import BIN

FLOATS = (torch.float64, torch.float32, torch.float16, torch.bfloat16)


def run(args):
    return subprocess.run([BIN, *map(str, args)], capture_output=True, text=True, timeout=300)


def merge(args):
    return run(["merge", *args])


def module():
    return torch.nn.Sequential(
        torch.nn.Linear(64, 1200), torch.nn.BatchNorm1d(1200), torch.nn.Linear(1200, 2100))


def state(seed, base=None):
    """A state dict; with `base`, base + a perturbation (some entries equal, some tied in size)."""
    g = torch.Generator().manual_seed(seed)
    m = module()
    sd = {k: v.clone() for k, v in m.state_dict().items()}
    for k, v in sd.items():
        if v.is_floating_point():
            r = torch.randn(v.shape, generator=g, dtype=torch.float32)
            if base is None:
                sd[k] = r * 0.05 + (1.0 if k.endswith("running_var") else 0.0)
            else:
                b = base[k].float()
                d = r * 0.01
                d.view(-1)[: d.numel() // 5] = 0  # unchanged entries: τ = 0
                if k == "1.weight":  # few distinct |τ|: ties at the TIES threshold
                    d = torch.round(r * 2) / 64
                sd[k] = b + d
    sd["1.num_batches_tracked"] = torch.tensor(seed * 7, dtype=torch.int64)
    sd["0.weight"] = sd["0.weight"].to(torch.bfloat16)
    sd["2.bias"] = sd["2.bias"].to(torch.float16)
    return sd


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    d = tmp_path_factory.mktemp("merge")
    a = state(1)
    b = state(2, a)
    c = state(3, a)
    # B also stores one tensor in another float dtype than FIRST: the output keeps FIRST's
    b["2.weight"] = b["2.weight"].to(torch.float16)
    paths = {"a": d / "a.pth", "b": d / "b.safetensors", "c": d / "c.pth"}
    torch.save(a, paths["a"])
    save_file({k: v.contiguous() for k, v in b.items()}, paths["b"])
    torch.save(dict(reversed(list(c.items()))), paths["c"])
    loaded = {
        "a": torch.load(paths["a"], weights_only=True),
        "b": load_file(paths["b"]),
        "c": torch.load(paths["c"], weights_only=True),
    }
    return d, paths, loaded


def load(path):
    p = str(path)
    return load_file(p) if p.endswith(".safetensors") else torch.load(p, weights_only=True)


def bits(t):
    """Order-preserving integers of a float tensor (for ulp distances)."""
    it = {torch.float64: torch.int64, torch.float32: torch.int32,
          torch.float16: torch.int16, torch.bfloat16: torch.int16}[t.dtype]
    i = t.contiguous().view(it).to(torch.int64)
    top = 1 << (torch.finfo(t.dtype).bits - 1)
    return torch.where(i < 0, -(i + top), i)


def check(out, expected, first, merged_keys, ulps=0):
    assert set(out) == set(first)
    for k, f in first.items():
        o = out[k]
        assert o.dtype == f.dtype and o.shape == f.shape, k
        if k in merged_keys:
            e = expected[k].to(f.dtype)
            if ulps == 0:
                # bit for bit (NaN-safe: compares the bit patterns)
                assert torch.equal(bits(o), bits(e)), f"{k}: {(o.double() - e.double()).abs().max()}"
            else:
                assert (bits(o) - bits(e)).abs().max().item() <= ulps, k
        else:
            assert torch.equal(o, f), f"{k} is not FIRST's"


def floating(sd):
    return [k for k, v in sd.items() if v.dtype in FLOATS]


# --- torch's computation of each formula, in float64 -------------------------------------------

def linear(ms, w):
    s = sum(w)
    acc = (w[0] / s) * ms[0].double()
    for wi, m in zip(w[1:], ms[1:]):
        acc = acc + (wi / s) * m.double()
    return acc


def add_difference(a, b, c, alpha):
    return a.double() + alpha * (b.double() - c.double())


def slerp(t, a, b, eps=1e-8):
    """mergekit's slerp, in float64."""
    a, b = a.double(), b.double()
    na, nb = a.norm(), b.norm()
    an = a / na if na > eps else a
    bn = b / nb if nb > eps else b
    dot = (an * bn).sum().item()
    if abs(dot) > 0.9995:
        return (1 - t) * a + t * b
    th = math.acos(dot)
    s = math.sin(th)
    return math.sin(th - th * t) / s * a + math.sin(th * t) / s * b


def ties(base, others, density, alpha):
    base = base.double()
    kept = []
    for m in others:
        tau = m.double() - base
        k = int(density * tau.numel())
        if k == 0:
            kept.append(torch.zeros_like(tau))
            continue
        thr = torch.topk(tau.abs().flatten(), k).values[-1]
        kept.append(torch.where(tau.abs() >= thr, tau, torch.zeros_like(tau)))
    total = kept[0]
    for t in kept[1:]:
        total = total + t
    positive = total >= 0
    acc = torch.zeros_like(base)
    count = torch.zeros_like(base)
    for t in kept:
        agree = torch.where(positive, t > 0, t < 0)
        acc = acc + torch.where(agree, t, torch.zeros_like(t))
        count = count + agree.double()
    return base + alpha * (acc / torch.clamp(count, min=1))


# --- the methods -------------------------------------------------------------------------------

@pytest.mark.parametrize("out_name", ["lin.safetensors", "lin.pth"])
def test_linear_weighted(inputs, out_name):
    d, p, L = inputs
    out = d / out_name
    r = merge([p["a"], p["b"], p["c"], "-o", out, "--method", "linear", "--weights", "0.5,0.3,0.2"])
    assert r.returncode == 0, r.stderr
    ks = floating(L["a"])
    exp = {k: linear([L["a"][k], L["b"][k], L["c"][k]], [0.5, 0.3, 0.2]) for k in ks}
    check(load(out), exp, L["a"], ks)


def test_linear_default_weights_are_equal(inputs):
    d, p, L = inputs
    out = d / "eq.safetensors"
    r = merge([p["b"], p["a"], "-o", out, "--method", "linear"])
    assert r.returncode == 0, r.stderr
    ks = floating(L["b"])
    exp = {k: linear([L["b"][k], L["a"][k]], [1, 1]) for k in ks}
    check(load(out), exp, L["b"], ks)


def test_add_difference(inputs):
    d, p, L = inputs
    out = d / "ad.pth"
    r = merge([p["a"], p["b"], p["c"], "-o", out, "--method", "add-difference", "--alpha", "0.7"])
    assert r.returncode == 0, r.stderr
    ks = floating(L["a"])
    exp = {k: add_difference(L["a"][k], L["b"][k], L["c"][k], 0.7) for k in ks}
    check(load(out), exp, L["a"], ks)


@pytest.mark.parametrize("t", [0.0, 0.3, 1.0])
def test_slerp(inputs, t):
    d, p, L = inputs
    out = d / f"slerp{t}.safetensors"
    r = merge([p["a"], p["c"], "-o", out, "--method", "slerp", "--t", t])
    assert r.returncode == 0, r.stderr
    ks = floating(L["a"])
    exp = {k: slerp(t, L["a"][k], L["c"][k]) for k in ks}
    check(load(out), exp, L["a"], ks, ulps=1)


def test_slerp_of_nearly_parallel_tensors_falls_back_to_lerp(inputs):
    d, p, L = inputs
    # A and A·1.001 (+ tiny noise) are colinear: the lerp branch
    near = {k: (v.double() * 1.001).to(v.dtype) if v.dtype in FLOATS else v for k, v in L["a"].items()}
    pn = d / "near.safetensors"
    save_file(near, pn)
    out = d / "slerp_near.pth"
    r = merge([p["a"], pn, "-o", out, "--method", "slerp", "--t", "0.25"])
    assert r.returncode == 0, r.stderr
    ks = floating(L["a"])
    exp = {k: 0.75 * L["a"][k].double() + 0.25 * near[k].double() for k in ks}
    check(load(out), exp, L["a"], ks, ulps=1)


@pytest.mark.parametrize("density,alpha", [(0.2, 1.0), (0.5, 0.8), (1.0, 1.0)])
def test_ties(inputs, density, alpha):
    d, p, L = inputs
    out = d / f"ties{density}.safetensors"
    args = [p["a"], p["b"], p["c"], "-o", out, "--method", "ties", "--density", density]
    if alpha != 1.0:
        args += ["--alpha", alpha]
    r = merge(args)
    assert r.returncode == 0, r.stderr
    ks = floating(L["a"])
    exp = {k: ties(L["a"][k], [L["b"][k], L["c"][k]], density, alpha) for k in ks}
    check(load(out), exp, L["a"], ks)


def test_keys_merges_only_matching_tensors(inputs):
    d, p, L = inputs
    out = d / "keys.pth"
    r = merge([p["a"], p["b"], "-o", out, "--method", "linear", "--keys", r"^2\."])
    assert r.returncode == 0, r.stderr
    ks = [k for k in floating(L["a"]) if k.startswith("2.")]
    exp = {k: linear([L["a"][k], L["b"][k]], [1, 1]) for k in ks}
    check(load(out), exp, L["a"], ks)


# --- refusals ----------------------------------------------------------------------------------

def test_different_key_sets_are_refused_and_nothing_is_written(inputs):
    d, p, L = inputs
    extra = dict(L["b"])
    extra["3.extra"] = torch.zeros(3)
    pe = d / "extra.safetensors"
    save_file(extra, pe)
    for out in (d / "refused.pth", d / "refused_dir"):
        args = [p["a"], pe, "-o", out, "--method", "linear"]
        if out.suffix == "":
            args += ["--shard-size", "1MB"]
        r = merge(args)
        assert r.returncode == 2, r.stderr
        assert "3.extra" in r.stderr
        assert not out.exists()
    missing = {k: v for k, v in L["b"].items() if k != "0.bias"}
    pm = d / "missing.safetensors"
    save_file(missing, pm)
    r = merge([p["a"], pm, "-o", d / "refused2.safetensors", "--method", "linear"])
    assert r.returncode == 2 and "0.bias" in r.stderr
    assert not (d / "refused2.safetensors").exists()


def test_different_shapes_are_refused(inputs):
    d, p, L = inputs
    bad = dict(L["c"])
    bad["2.bias"] = torch.zeros(7, dtype=torch.float16)
    pb = d / "shape.pth"
    torch.save(bad, pb)
    out = d / "refused3.safetensors"
    r = merge([p["a"], pb, "-o", out, "--method", "slerp", "--t", "0.5"])
    assert r.returncode == 2 and "2.bias" in r.stderr, r.stderr
    assert not out.exists()


def test_bad_parameters_are_usage_errors(inputs):
    d, p, _ = inputs
    out = d / "x.pth"
    for args in (["--method", "add-difference"], ["--method", "slerp", "--t", "1.5"],
                 ["--method", "ties", "--density", "0"], ["--method", "linear", "--weights", "1"]):
        r = merge([p["a"], p["b"], "-o", out, *args])
        assert r.returncode == 1, (args, r.stderr)
        assert not out.exists()


# --- shards ------------------------------------------------------------------------------------

def tensor_bytes(sd):
    return sum(v.numel() * v.element_size() for v in sd.values())


@pytest.mark.parametrize("fmt", ["safetensors", "torch"])
def test_sharded_merge_loads_and_indexes_like_transformers(inputs, fmt):
    d, p, L = inputs
    single = d / ("single.safetensors" if fmt == "safetensors" else "single.bin")
    r = merge([p["a"], p["b"], "-o", single, "--method", "linear"])
    assert r.returncode == 0, r.stderr
    whole = load(single)
    out = d / f"shards_{fmt}"
    r = merge([p["a"], p["b"], "-o", out, "--method", "linear", "--format", fmt, "--shard-size", "100KB"])
    assert r.returncode == 0, r.stderr
    stem, ext = ("model", "safetensors") if fmt == "safetensors" else ("pytorch_model", "bin")
    index = json.loads((out / f"{stem}.{ext}.index.json").read_text())
    files = sorted(set(index["weight_map"].values()))
    n = len(files)
    assert n >= 3
    assert files == [f"{stem}-{i:05d}-of-{n:05d}.{ext}" for i in range(1, n + 1)]
    assert sorted(os.listdir(out)) == sorted(files + [f"{stem}.{ext}.index.json"])
    assert index["metadata"]["total_size"] == tensor_bytes(whole)
    assert set(index["weight_map"]) == set(whole)
    got = {}
    for f in files:
        part = load(out / f)
        assert all(index["weight_map"][k] == f for k in part)
        got.update(part)
    assert set(got) == set(whole)
    for k in whole:
        assert torch.equal(got[k], whole[k]), k
    # no shard over 100 kB unless it holds a single larger tensor
    for f in files:
        part = load(out / f)
        assert tensor_bytes(part) <= 100_000 or len(part) == 1
    # transformers loads the directory into the module
    from transformers.trainer_utils import load_sharded_checkpoint
    m = module()
    load_sharded_checkpoint(m, str(out), strict=True)
    for k, v in m.state_dict().items():
        assert torch.equal(v, whole[k].to(v.dtype)), k


def test_edit_writes_shards_too(inputs):
    d, p, L = inputs
    out = d / "edit_shards"
    r = run(["edit", p["a"], "-o", out, "--shard-size", "2MiB", "--cast", "float16"])
    assert r.returncode == 0, r.stderr
    index = json.loads((out / "model.safetensors.index.json").read_text())
    got = {}
    for f in sorted(set(index["weight_map"].values())):
        got.update(load(out / f))
    assert set(got) == set(L["a"])
    for k, v in L["a"].items():
        assert torch.equal(got[k], v.to(torch.float16) if v.dtype in FLOATS else v), k
    assert index["metadata"]["total_size"] == tensor_bytes(got)
