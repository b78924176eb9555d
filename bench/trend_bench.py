#!/usr/bin/env python3
"""Training-run trend benchmark: `weightscope trend` natively vs a Python loop with torch.load.

Run from the repository root with the torch venv's python, after `cargo build --release`:

    nice -n 19 ~/.cache/weightscope/venv/bin/python bench/trend_bench.py            # 20 × 500 MB
    ~/.cache/weightscope/venv/bin/python bench/trend_bench.py --smoke                # 3 × 2 MB, checks only

The run: COUNT checkpoints of SIZE MB of float32 each (12 weight matrices plus biases), each
the previous one plus a little noise — alternately `.pth` (torch zip, `{"global_step", "model"}`)
and `.safetensors` (`__metadata__` step) — written to a temporary directory on the same disk
(needs COUNT × SIZE MB free; the script checks and refuses otherwise).

What is timed (best of RUNS, default 1; each side a child process under GNU time, with its CPU
time and peak RSS), all reading the files from the disk (page cache included — nothing is evicted;
see the note printed at the end):
- with `--compare-bin BIN`: another build (e.g. before a change), timed the same way, its table
  compared with weightscope's;
- anchor `cat`: reading every byte once (`cat FILES > /dev/null`), the disk's speed here;
- weightscope: `weightscope trend --json FILES` (release build; `$WEIGHTSCOPE_RELEASE_BIN` or
  `$CARGO_TARGET_DIR/release/weightscope`), which streams every tensor once beside the previous
  checkpoint's same tensor;
- torch: the loop a user would write — `torch.load(weights_only=True)` (`safetensors.torch.load_file`
  for .safetensors) of each checkpoint, then per tensor std (population), mean, abs-max, L2, zero
  fraction, NaN/inf count and ‖wₜ − wₜ₋₁‖/‖wₜ₋₁‖ in float32 torch ops (all cores), the previous
  checkpoint kept in memory.

Checks (not timed; fail the script): weightscope's numbers agree with torch's float64 values of
the same metrics to 1e-6 relative (`--smoke` computes those for every tensor; the full run for the
first two checkpoints' tensors), the steps come back in order, and there are no flags.
"""

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time

import torch
from safetensors.torch import load_file, save_file

MB = 1_000_000
LAYERS = 12


def weightscope_bin():
    b = os.environ.get("WEIGHTSCOPE_RELEASE_BIN")
    if not b:
        tgt = os.environ.get("CARGO_TARGET_DIR") or os.path.join(os.path.dirname(__file__), "..", "target")
        b = os.path.join(tgt, "release", "weightscope")
    if not os.access(b, os.X_OK):
        sys.exit(f"missing {b}: run `cargo build --release` (or set WEIGHTSCOPE_RELEASE_BIN)")
    return b


def make_run(d, count, size_mb):
    """Write the checkpoints; returns their paths in step order."""
    per = size_mb * MB // 4 // LAYERS  # float32 values per layer
    cols = 1024
    rows = max(1, per // cols)
    g = torch.Generator().manual_seed(0)
    sd = {}
    for i in range(LAYERS):
        sd[f"layers.{i}.weight"] = torch.randn(rows, cols, generator=g) * 0.02
        sd[f"layers.{i}.bias"] = torch.randn(cols, generator=g) * 0.01
    paths = []
    for s in range(count):
        if s:
            for v in sd.values():
                v.add_(torch.randn(v.shape, generator=g), alpha=1e-4)
        step = 1000 * (s + 1)
        if s % 2 == 0:
            p = os.path.join(d, f"run-{s}.pth")
            torch.save({"global_step": step, "model": sd}, p)
        else:
            p = os.path.join(d, f"run-{s}.safetensors")
            save_file(sd, p, metadata={"step": str(step)})
        paths.append(p)
    return paths


def load(p):
    if p.endswith(".safetensors"):
        return load_file(p)
    return torch.load(p, weights_only=True)["model"]


def torch_loop(paths):
    """The same table computed by a Python loop over torch.load, in float32 torch ops."""
    out = {}
    prev = None
    for t, p in enumerate(paths):
        sd = load(p)
        for k, x in sd.items():
            row = out.setdefault(k, {m: [] for m in
                                     ("std", "mean", "abs_max", "l2", "zero_fraction", "nonfinite", "rel_change")})
            fin = torch.isfinite(x)
            nonfinite = x.numel() - int(fin.sum())
            xf = x if nonfinite == 0 else x[fin]
            std, mean = torch.std_mean(xf, correction=0)
            row["std"].append(std.item())
            row["mean"].append(mean.item())
            row["abs_max"].append(xf.abs().max().item())
            row["l2"].append(torch.linalg.vector_norm(xf).item())
            row["zero_fraction"].append(int((x == 0).sum()) / x.numel())
            row["nonfinite"].append(nonfinite)
            if prev is None or k not in prev:
                row["rel_change"].append(None)
            else:
                a = prev[k]
                row["rel_change"].append((torch.linalg.vector_norm(x - a) / torch.linalg.vector_norm(a)).item())
        prev = sd
    return out


def torch64(paths, limit):
    """torch float64 reference for the first `limit` checkpoints: {key: {metric: [...]}}."""
    out = {}
    prev = None
    for p in paths[:limit]:
        sd = load(p)
        for k, x in sd.items():
            x = x.double()
            row = out.setdefault(k, {m: [] for m in ("std", "mean", "abs_max", "l2", "rel_change")})
            row["std"].append(x.std(correction=0).item())
            row["mean"].append(x.mean().item())
            row["abs_max"].append(x.abs().max().item())
            row["l2"].append(torch.linalg.vector_norm(x).item())
            row["rel_change"].append(None if prev is None else
                                     (torch.linalg.vector_norm(x - prev[k]) / torch.linalg.vector_norm(prev[k])).item())
        prev = {k: v.double() for k, v in sd.items()}
    return out


def check(got, paths, limit):
    steps = [s["step"] for s in got["steps"]]
    assert steps == [1000 * (i + 1) for i in range(len(paths))], steps
    assert [s["file"] for s in got["steps"]] == paths
    assert got["flags"] == [], got["flags"]
    ref = torch64(paths, limit)
    by_key = {t["key"]: t for t in got["tensors"]}
    assert set(by_key) == set(ref), (sorted(by_key), sorted(ref))
    worst = 0.0
    for k, row in ref.items():
        for m, vals in row.items():
            for i, w in enumerate(vals):
                g = by_key[k][m][i]
                if w is None:
                    assert g is None, (k, m, i, g)
                    continue
                err = abs(g - w) / max(abs(w), 1e-300)
                worst = max(worst, err)
                assert err <= 1e-6, f"{k} {m} [{i}]: weightscope {g}, torch {w}"
    return worst


def timed(fn):
    t0 = time.perf_counter()
    r = fn()
    return time.perf_counter() - t0, r


def child(args, capture=False):
    """Run a child under GNU time: (wall s, user + sys CPU s, peak RSS MiB, stdout). (The
    rusage of a child forked from this big process would count this process's pages.)"""
    t0 = time.perf_counter()
    r = subprocess.run(["/usr/bin/time", "-f", "WS_TIME %U %S %M", *args], text=True,
                       stdout=subprocess.PIPE if capture else subprocess.DEVNULL, stderr=subprocess.PIPE)
    wall = time.perf_counter() - t0
    if r.returncode != 0:
        sys.exit(f"{args[0]} failed: {r.stderr}")
    u, s_, kb = [l for l in r.stderr.splitlines() if l.startswith("WS_TIME ")][-1].split()[1:]
    return wall, float(u) + float(s_), int(kb) / 1024, r.stdout if capture else ""


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--count", type=int, default=20)
    ap.add_argument("--size-mb", type=int, default=500)
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--dir", default=None, help="where to write the checkpoints (default: a temp dir)")
    ap.add_argument("--smoke", action="store_true", help="3 × 2 MB, every tensor checked against torch float64")
    ap.add_argument("--keep", action="store_true",
                    help="keep the checkpoints in --dir (and reuse them when they are already there)")
    ap.add_argument("--compare-bin", default=None,
                    help="another weightscope binary (e.g. a build before a change) timed the same way")
    ap.add_argument("--torch-loop", nargs="+", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.torch_loop:
        torch_loop(a.torch_loop)
        return
    if a.smoke:
        a.count, a.size_mb = 3, 2
    binary = weightscope_bin()
    base = a.dir or tempfile.gettempdir()
    need = a.count * a.size_mb * MB * 1.05
    free = shutil.disk_usage(base).free
    cached = a.keep and os.path.exists(os.path.join(base, f"trend-bench-{a.count}x{a.size_mb}", "complete"))
    if free < need + 2e9 and not cached:
        sys.exit(f"{base}: {free / 1e9:.1f} GB free, the run needs {need / 1e9:.1f} GB (+2 GB margin)")
    reuse = os.path.join(base, f"trend-bench-{a.count}x{a.size_mb}") if a.keep else None
    d = reuse or tempfile.mkdtemp(prefix="trend-bench-", dir=base)
    try:
        done = os.path.join(d, "complete")
        if reuse and os.path.exists(done):
            t_make = 0.0
            paths = [os.path.join(d, f"run-{s}.{'pth' if s % 2 == 0 else 'safetensors'}") for s in range(a.count)]
        else:
            os.makedirs(d, exist_ok=True)
            t_make, paths = timed(lambda: make_run(d, a.count, a.size_mb))
            open(done, "w").close()
        total = sum(os.path.getsize(p) for p in paths)
        print(f"{a.count} checkpoints, {total / 1e9:.2f} GB written in {t_make:.1f} s ({d})", flush=True)
        best = {k: (float("inf"), 0.0, 0.0) for k in ("cat", "weightscope", "compare", "torch")}
        got = None
        for _ in range(a.runs):
            r = child(["cat", *paths])
            best["cat"] = min(best["cat"], r[:3])
            r = child([binary, "trend", "--json", *reversed(paths)], capture=True)
            best["weightscope"] = min(best["weightscope"], r[:3])
            got = json.loads(r[3])
            if a.compare_bin:
                r = child([a.compare_bin, "trend", "--json", *reversed(paths)], capture=True)
                best["compare"] = min(best["compare"], r[:3])
                same = json.loads(r[3]) == got
            if not a.smoke:
                r = child([sys.executable, __file__, "--torch-loop", *paths])
                best["torch"] = min(best["torch"], r[:3])
        worst = check(got, paths, a.count if a.smoke else 2)
        print(f"checked against torch float64: worst relative error {worst:.2e} (limit 1e-6)")
        if a.smoke:
            t, loop = timed(lambda: torch_loop(paths))
            assert set(loop) == {x["key"] for x in got["tensors"]}
            print(f"smoke ok: weightscope {best['weightscope'][0]:.2f} s, torch loop {t:.2f} s")
            return
        gb = total / 1e9
        print(f"\n{'':<28}{'wall (s)':>10}{'GB/s':>8}{'× cat':>8}{'CPU (s)':>10}{'peak RSS MiB':>14}")
        rows = [("cat", "cat FILES > /dev/null"), ("weightscope", "weightscope trend --json")]
        if a.compare_bin:
            rows.append(("compare", "--compare-bin trend --json"))
        for name, label in rows + [("torch", "torch.load loop (float32)")]:
            w, c, m = best[name]
            print(f"{label:<28}{w:>10.2f}{gb / w:>8.2f}{w / best['cat'][0]:>8.2f}{c:>10.2f}{m:>14.0f}")
        if a.compare_bin:
            print(f"--compare-bin's table is {'identical' if same else 'DIFFERENT'}; weightscope takes "
                  f"{best['weightscope'][1] / best['compare'][1]:.2f}× its CPU time")
        print(f"\nweightscope is {best['torch'][0] / best['weightscope'][0]:.2f}× the torch loop's speed (wall)")
        print(f"machine: {platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__} "
              f"({torch.get_num_threads()} threads); files may be partly in the page cache")
    finally:
        if not reuse:
            shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
