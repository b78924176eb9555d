#!/usr/bin/env python3
"""Benchmark: linear merge of two float32 torch checkpoints (4 GiB each by default).

Times, each in its own process under `/usr/bin/time` (wall time and peak RSS), the three taking
turns, each run after a `sync`:
  1. `weightscope merge a.pth b.pth -o out.pth --method linear` (release binary);
  2. the Python way: `torch.load` both, `0.5·a + 0.5·b` per tensor, `torch.save`;
  3. `cp a.pth out.pth` — the physical reference: the least any tool writing a file of that size
     from files in the page cache can do.
and prints the ratios against cp and against the Python way.

Every output is checked with torch: same keys and dtypes as A, and sampled tensors equal
torch's float64 computation rounded to float32 (the CLI's contract; the Python way computes in
float32, so it is checked within one float32 ulp).

Run with the torch venv python, after `cargo build --release`:
    ~/.cache/weightscope/venv/bin/python bench/merge_bench.py [--repeat N] [--gib G]
    ~/.cache/weightscope/venv/bin/python bench/merge_bench.py --smoke   # 8 MiB inputs, one run
Env: WEIGHTSCOPE_BIN (default $CARGO_TARGET_DIR/release/weightscope or target/release/weightscope),
BENCH_DIR (default: a new temporary directory; needs 4 × the input size free).
The inputs are read from the page cache after they are written (the machine has RAM to spare),
so the numbers compare work, not disk. Everything written is deleted at the end.
"""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import torch

from export_bench import BIN, ROWS, TIME, timed  # same binary, layout and timing as the export bench

TORCH_SIDE = r"""
import sys, torch
a_path, b_path, dst = sys.argv[1:4]
a = torch.load(a_path, weights_only=True)
b = torch.load(b_path, weights_only=True)
out = {k: 0.5 * a[k] + 0.5 * b[k] for k in a}
torch.save(out, dst)
"""


def make(path, total, n_tensors, seed):
    per = max(1, total // n_tensors // 4 // ROWS)  # float32 columns per tensor
    g = torch.Generator().manual_seed(seed)
    sd = {}
    for i in range(n_tensors):
        t = torch.full((ROWS, per), float(i) * (seed + 1) / 7)
        t[0] = torch.randn(per, generator=g)
        t[:, 0] = torch.randn(ROWS, generator=g)
        sd[f"layers.{i}.weight"] = t
    torch.save(sd, path)
    return list(sd)


def verify(out, keys, a, b, exact):
    sd = torch.load(out, mmap=True, weights_only=True)
    assert list(sd) == keys, f"{out}: keys differ"
    n = len(keys)
    for i in sorted({0, 1, n // 2, n - 1} | set(range(0, n, 97))):
        k = keys[i]
        want = (0.5 * a[k].double() + 0.5 * b[k].double()).float()
        got = sd[k]
        assert got.dtype == torch.float32 and got.shape == want.shape, k
        if exact:
            assert torch.equal(got.view(torch.int32), want.view(torch.int32)), f"{out}: {k} differs"
        else:
            d = (got.view(torch.int32).long() - want.view(torch.int32).long()).abs().max().item()
            assert d <= 1, f"{out}: {k} off by {d} ulp"
    del sd


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--gib", type=float, default=4.0, help="size of each input")
    ap.add_argument("--smoke", action="store_true", help="8 MiB inputs, one run each (CI)")
    args = ap.parse_args()
    if args.smoke:
        args.repeat, total, n_tensors = 1, 8 << 20, 8
    else:
        total, n_tensors = int(args.gib * (1 << 30)), 1000
    if not os.access(BIN, os.X_OK):
        sys.exit(f"build the CLI first: cargo build --release ({BIN} missing)")
    if not os.access(TIME, os.X_OK):
        sys.exit(f"{TIME} (GNU time) is needed for peak RSS")
    d = os.environ.get("BENCH_DIR") or tempfile.mkdtemp(prefix="ws-merge-bench-")
    os.makedirs(d, exist_ok=True)
    pa, pb, out = (os.path.join(d, n) for n in ("a.pth", "b.pth", "out.pth"))
    try:
        t0 = time.perf_counter()
        keys = make(pa, total, n_tensors, 1)
        make(pb, total, n_tensors, 2)
        size = os.path.getsize(pa)
        print(f"wrote 2 × {size / 2**30:.3f} GiB ({n_tensors} float32 tensors each) "
              f"in {time.perf_counter() - t0:.1f} s")
        a = torch.load(pa, mmap=True, weights_only=True)
        b = torch.load(pb, mmap=True, weights_only=True)
        py = sys.executable
        sides = [("weightscope merge --method linear", [BIN, "merge", pa, pb, "-o", out, "--method", "linear"], True),
                 ("torch.load ×2 + 0.5a+0.5b + torch.save", [py, "-c", TORCH_SIDE, pa, pb, out], False),
                 ("cp a.pth", ["cp", pa, out], None)]
        # The sides take turns, and every timed command starts after `sync`: the write-back of
        # what the previous command (or the making of the inputs) wrote does not land on the
        # next one's clock.
        times = {name: [] for name, _, _ in sides}
        rss = {name: [] for name, _, _ in sides}
        for _ in range(args.repeat):
            for name, cmd, exact in sides:
                if os.path.exists(out):
                    os.remove(out)
                os.sync()
                dt, mib, err = timed(cmd)
                times[name].append(dt)
                rss[name].append(mib)
                if exact is not None:
                    verify(out, keys, a, b, exact)
        if os.path.exists(out):
            os.remove(out)
        rows = [(name, times[name], max(rss[name])) for name, _, _ in sides]
        print(f"\n{'':42s} {'min s':>8s} {'median s':>9s} {'peak RSS MiB':>13s}")
        for name, times, mib in rows:
            print(f"{name:42s} {min(times):8.2f} {statistics.median(times):9.2f} {mib:13.0f}")
        ours, pyth, cp = (statistics.median(r[1]) for r in rows)
        print(f"ours / cp: {ours / cp:.2f}x time; Python way / ours: {pyth / ours:.2f}x time, "
              f"{rows[1][2] / rows[0][2]:.0f}x peak RSS")
        print(f"(median of {args.repeat} runs each; outputs verified against torch in float64)")
    finally:
        for p in (pa, pb, out):
            if os.path.exists(p):
                os.remove(p)
        if not os.environ.get("BENCH_DIR"):
            shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
