"""`weightscope trend` (statistics across a training run) against torch.

Run (from the repository root, after `cargo build`):

    ~/.cache/weightscope/venv/bin/python -m pytest -q tests/roundtrip/test_trend.py

The binary is found as in the other round-trip tests (wsenv.py). Everything else is made here.

The run: a small MLP (Linear → LayerNorm → Linear → ReLU → Linear) trained with SGD on random
data for STEPS steps, saved after every step in a mix of formats, each carrying its step:
`.pth` (`{"step": n, "model": state_dict}`), a Lightning-like `.ckpt` (`global_step`,
`state_dict`, optimizer states that must be ignored), `.safetensors` (`__metadata__` `step`) and
one sharded safetensors set (a directory with an index and two shards). File names are random,
and the files are passed shuffled: the order must come from the steps.

Planted anomalies (and the flags they must produce — no others):
- at step index SCALE_AT, the first Linear's weight and bias are multiplied by 10 in the model
  (training goes on from there; the LayerNorm after it makes the loss blind to the scale, so no
  other layer reacts): `jump` for `l1.weight` and `l1.bias` at SCALE_AT;
- from step index NAN_AT on, the saved copies hold a NaN in `l3.weight` (the model itself stays
  clean): `nonfinite` for `l3.weight` at NAN_AT;
- `l2.bias` is left out of the checkpoint at step index MISSING_AT: null there (and no relative
  change at MISSING_AT and MISSING_AT + 1).

Expected values: torch in float64 on the saved tensors — std (population, over the finite
values), mean, abs-max and L2 over the finite values, zero fraction, NaN/inf count, and
‖wₜ − wₜ₋₁‖/‖wₜ₋₁‖ (null at the first step, when either side is missing, holds a non-finite value,
or ‖wₜ₋₁‖ = 0). Floats are compared with a relative tolerance of 1e-6.
"""
import csv
import io
import json
import math
import os
import random
import subprocess

import pytest
import torch
from safetensors.torch import save_file

from wsenv import BIN

pytestmark = pytest.mark.filterwarnings("ignore")

STEPS = 8
SCALE_AT = 4
NAN_AT = 6
MISSING_AT = 2
SHARDED_AT = 5
PLANTED = {("l1.weight", SCALE_AT, "jump"), ("l1.bias", SCALE_AT, "jump"),
           ("l3.weight", NAN_AT, "nonfinite")}
METRICS = ("std", "mean", "abs_max", "l2", "zero_fraction", "nonfinite", "rel_change")


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.l1 = torch.nn.Linear(16, 32)
        self.norm = torch.nn.LayerNorm(32)
        self.l2 = torch.nn.Linear(32, 32)
        self.l3 = torch.nn.Linear(32, 4)
        with torch.no_grad():
            self.norm.weight.normal_(1.0, 0.1)
            self.norm.bias.normal_(0.0, 0.1)

    def forward(self, x):
        return self.l3(torch.relu(self.l2(self.norm(self.l1(x)))))


def run(args, **kw):
    return subprocess.run([BIN, *args], capture_output=True, text=True, timeout=300, **kw)


def save(sd, step, path_base, kind, opt):
    """Save `sd` at `step` as `kind`; returns the path to pass to the CLI."""
    if kind == "pth":
        path = path_base + ".pth"
        torch.save({"step": step, "model": sd}, path)
    elif kind == "ckpt":
        path = path_base + ".ckpt"
        torch.save({"epoch": 0, "global_step": step, "pytorch-lightning_version": "2.4.0",
                    "state_dict": sd, "optimizer_states": [opt.state_dict()],
                    "lr_schedulers": [], "callbacks": {}}, path)
    elif kind == "safetensors":
        path = path_base + ".safetensors"
        save_file({k: v.contiguous() for k, v in sd.items()}, path, metadata={"step": str(step)})
    else:  # sharded: a directory with an index and two shards
        path = path_base
        os.makedirs(path)
        keys = list(sd)
        shards = {"model-00001-of-00002.safetensors": keys[: len(keys) // 2],
                  "model-00002-of-00002.safetensors": keys[len(keys) // 2:]}
        weight_map = {}
        for name, ks in shards.items():
            save_file({k: sd[k].contiguous() for k in ks}, os.path.join(path, name),
                      metadata={"step": str(step)})
            weight_map.update({k: name for k in ks})
        with open(os.path.join(path, "model.safetensors.index.json"), "w") as f:
            json.dump({"metadata": {}, "weight_map": weight_map}, f)
    return path


@pytest.fixture(scope="module")
def training_run(tmp_path_factory):
    """Train, save every step; returns (paths in step order, saved state dicts, steps)."""
    d = str(tmp_path_factory.mktemp("run"))
    torch.manual_seed(0)
    net = Net()
    opt = torch.optim.SGD(net.parameters(), lr=0.02, momentum=0.5)
    rng = random.Random(7)
    paths, saved, steps = [], [], []
    kinds = ["pth", "ckpt", "safetensors"]
    for i in range(STEPS):
        x, y = torch.randn(64, 16), torch.randn(64, 4)
        opt.zero_grad()
        torch.nn.functional.mse_loss(net(x), y).backward()
        opt.step()
        if i == SCALE_AT:
            with torch.no_grad():
                net.l1.weight.mul_(10.0)
                net.l1.bias.mul_(10.0)
        sd = {k: v.detach().clone() for k, v in net.state_dict().items()}
        if i >= NAN_AT:
            sd["l3.weight"][1, 2] = float("nan")
        if i == MISSING_AT:
            del sd["l2.bias"]
        step = 100 * (i + 1)
        kind = "sharded" if i == SHARDED_AT else kinds[i % 3]
        base = os.path.join(d, "ckpt-%08x" % rng.getrandbits(32))
        paths.append(save(sd, step, base, kind, opt))
        saved.append(sd)
        steps.append(step)
    return paths, saved, steps


def torch_point(t):
    x = t.double()
    fin = x[torch.isfinite(x)]
    some = fin.numel() > 0
    return {
        "std": fin.std(correction=0).item() if some else None,
        "mean": fin.mean().item() if some else None,
        "abs_max": fin.abs().max().item() if some else None,
        "l2": torch.linalg.vector_norm(fin).item() if some else None,
        "zero_fraction": (x == 0).sum().item() / x.numel() if x.numel() else None,
        "nonfinite": int((~torch.isfinite(x)).sum().item()),
    }


def torch_rel_change(prev, cur):
    if prev is None or cur is None or prev.shape != cur.shape:
        return None
    a, b = prev.double(), cur.double()
    if not (torch.isfinite(a).all() and torch.isfinite(b).all()):
        return None
    n = torch.linalg.vector_norm(a).item()
    return None if n == 0 else torch.linalg.vector_norm(b - a).item() / n


def close(got, want):
    if want is None or got is None:
        return got is None and want is None
    return math.isclose(got, want, rel_tol=1e-6, abs_tol=1e-300)


def expected(saved):
    keys = []
    for sd in saved:
        keys += [k for k in sd if k not in keys]
    table = {}
    for k in keys:
        row = {m: [] for m in METRICS}
        for t, sd in enumerate(saved):
            cur = sd.get(k)
            p = torch_point(cur) if cur is not None else dict.fromkeys(METRICS[:-1])
            for m in METRICS[:-1]:
                row[m].append(p[m])
            prev = saved[t - 1].get(k) if t > 0 else None
            row["rel_change"].append(torch_rel_change(prev, cur) if t > 0 else None)
        table[k] = row
    return keys, table


def test_trend_json_equals_torch_and_flags_the_planted_anomalies(training_run):
    paths, saved, steps = training_run
    shuffled = paths[:]
    random.Random(3).shuffle(shuffled)
    assert shuffled != paths
    r = run(["trend", "--json", *shuffled])
    assert r.returncode == 0, r.stderr
    got = json.loads(r.stdout)
    assert set(got) == {"steps", "tensors", "flags"}
    assert got["steps"] == [{"file": p, "step": s} for p, s in zip(paths, steps)]
    keys, table = expected(saved)
    assert [t["key"] for t in got["tensors"]] == keys
    for t in got["tensors"]:
        assert set(t) == {"key", *METRICS}, t.keys()
        want = table[t["key"]]
        for m in METRICS:
            assert len(t[m]) == STEPS, (t["key"], m)
            for i, (g, w) in enumerate(zip(t[m], want[m])):
                assert close(g, w), f"{t['key']} {m} step {i}: got {g}, torch {w}"
    # the planted NaN and missing key show up as such
    l3 = next(t for t in got["tensors"] if t["key"] == "l3.weight")
    assert l3["nonfinite"][NAN_AT:] == [1] * (STEPS - NAN_AT) and l3["nonfinite"][0] == 0
    l2b = next(t for t in got["tensors"] if t["key"] == "l2.bias")
    assert l2b["std"][MISSING_AT] is None and l2b["rel_change"][MISSING_AT + 1] is None
    assert l2b["rel_change"][MISSING_AT + 2] is not None
    # optimizer states of the Lightning checkpoints are not model tensors
    assert not any("optimizer" in k or "momentum" in k for k in keys)
    flags = {(f["key"], f["step_index"], f["kind"]) for f in got["flags"]}
    assert flags == PLANTED
    assert len(got["flags"]) == len(PLANTED)
    assert [f["step_index"] for f in got["flags"]] == sorted(f["step_index"] for f in got["flags"])


def test_csv_is_the_same_table(training_run):
    paths, _, _ = training_run
    j = json.loads(run(["trend", "--json", *paths]).stdout)
    r = run(["trend", "--csv", *paths])
    assert r.returncode == 0, r.stderr
    rows = list(csv.DictReader(io.StringIO(r.stdout)))
    assert len(rows) == len(j["tensors"]) * STEPS
    flagged = {(f["key"], f["step_index"]): f["kind"] for f in j["flags"]}
    it = iter(rows)
    for t in j["tensors"]:
        for i in range(STEPS):
            row = next(it)
            assert row["key"] == t["key"] and int(row["step_index"]) == i
            assert row["file"] == j["steps"][i]["file"]
            assert row["step"] == str(j["steps"][i]["step"])
            for m in METRICS:
                want = t[m]
                assert (row[m] == "") == (want[i] is None)
                if want[i] is not None:
                    assert float(row[m]) == want[i]
            assert row["flags"] == flagged.get((t["key"], i), "")


def test_key_filter_and_text_summary(training_run):
    paths, _, _ = training_run
    j = json.loads(run(["trend", "--json", "--key", r"^l1\.", *paths]).stdout)
    assert [t["key"] for t in j["tensors"]] == ["l1.weight", "l1.bias"]
    assert {(f["key"], f["kind"]) for f in j["flags"]} == {("l1.weight", "jump"),
                                                           ("l1.bias", "jump")}
    r = run(["trend", *paths])
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith(f"{STEPS} checkpoints, 8 tensors, 3 flags\n")
    assert f"flag jump      [{SCALE_AT}] l1.weight" in r.stdout


def test_name_order_without_steps_and_sharded_index(tmp_path):
    torch.manual_seed(1)
    sds = [{"w": torch.randn(5, 3) * (i + 1)} for i in range(3)]
    names = ["epoch2.pth", "epoch10.pth", "epoch1.safetensors"]
    for sd, n in zip(sds, names):
        if n.endswith(".pth"):
            torch.save(sd, tmp_path / n)
        else:
            save_file(sd, str(tmp_path / n))
    # natural order: epoch1, epoch2, epoch10 (no step anywhere)
    r = run(["trend", "--json", *(str(tmp_path / n) for n in names)])
    assert r.returncode == 0, r.stderr
    j = json.loads(r.stdout)
    assert [s["file"] for s in j["steps"]] == [str(tmp_path / n) for n in
                                               ["epoch1.safetensors", "epoch2.pth", "epoch10.pth"]]
    assert [s["step"] for s in j["steps"]] == [None] * 3
    w = [sds[2]["w"], sds[0]["w"], sds[1]["w"]]
    assert close(j["tensors"][0]["rel_change"][2], torch_rel_change(w[1], w[2]))
    # a sharded set given by its index file counts as one checkpoint
    d = tmp_path / "sharded"
    save(sds[0] | {"b": torch.ones(2)}, 5, str(d), "sharded", None)
    r = run(["trend", "--json", str(d / "model.safetensors.index.json"), str(tmp_path / names[1])])
    assert r.returncode == 0, r.stderr
    j = json.loads(r.stdout)
    # the shards' metadata carry step 5, the .pth none: natural name order (epoch10 < sharded/)
    assert j["steps"] == [{"file": str(tmp_path / names[1]), "step": None},
                          {"file": str(d / "model.safetensors.index.json"), "step": 5}]
    assert [t["key"] for t in j["tensors"]] == ["w", "b"]
    assert j["tensors"][1]["l2"] == [None, math.sqrt(2)]
    # a directory holding the set is the same checkpoint
    r2 = run(["trend", "--json", str(d), str(tmp_path / names[1])])
    assert json.loads(r2.stdout)["tensors"] == j["tensors"]


def test_unreadable_checkpoint_is_one_line_naming_the_file(tmp_path, training_run):
    paths, _, _ = training_run
    bad = tmp_path / "broken.pth"
    bad.write_bytes(b"PK\x03\x04 not really a zip")
    r = run(["trend", "--json", paths[0], str(bad)])
    assert r.returncode == 2 and r.stdout == ""
    assert len(r.stderr.strip().splitlines()) == 1 and "broken.pth" in r.stderr
    r = run(["trend", "--key", "(", paths[0]])
    assert r.returncode == 1


def test_expanded_views_cost_their_distinct_elements(tmp_path):
    """Zero-stride views (`expand`) are saved as views of a small storage: their statistics and
    relative change come from the distinct elements, so a 2**40-element view is answered at once.
    Expected values: torch on the materialized tensor for a 4096-fold expansion (also with the
    repeated dimension changing between steps), and for 2**40 the same values with the L2 norm
    scaled by sqrt(2**40 / 4096) (torch cannot materialize it)."""
    torch.manual_seed(3)
    bases = [torch.randn(3), torch.randn(3)]
    # steps 0 and 1 repeat rows; step 2 repeats columns (4096 distinct values, each 3 times)
    small = [bases[0].expand(4096, 3), bases[1].expand(4096, 3),
             torch.randn(4096)[:, None].expand(4096, 3)]
    for i, t in enumerate(small):
        torch.save({"w": t}, tmp_path / f"small-{i}.pth")
    r = run(["trend", "--json", *(str(tmp_path / f"small-{i}.pth") for i in range(3))])
    assert r.returncode == 0, r.stderr
    got = json.loads(r.stdout)["tensors"][0]
    for i, t in enumerate(small):
        want = torch_point(t.contiguous())
        for m in METRICS[:-1]:
            assert close(got[m][i], want[m]), (m, i, got[m][i], want[m])
        want_rel = torch_rel_change(small[i - 1].contiguous(), t.contiguous()) if i else None
        assert close(got["rel_change"][i], want_rel), (i, got["rel_change"][i], want_rel)

    big = 2**40
    for i in range(2):
        torch.save({"w": bases[i].expand(big, 3)}, tmp_path / f"big-{i}.pth")
    r = subprocess.run([BIN, "trend", "--json", str(tmp_path / "big-0.pth"), str(tmp_path / "big-1.pth")],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    got = json.loads(r.stdout)["tensors"][0]
    for i in range(2):
        want = torch_point(small[i].contiguous())
        want["l2"] *= math.sqrt(big / 4096)
        for m in ("std", "mean", "abs_max", "l2", "zero_fraction", "nonfinite"):
            assert close(got[m][i], want[m]), (m, i, got[m][i], want[m])
    assert close(got["rel_change"][1], torch_rel_change(small[0].contiguous(), small[1].contiguous()))
