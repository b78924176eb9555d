#!/usr/bin/env python3
"""Benchmark: rename-only export of a synthetic 4 GiB, 1,000-tensor torch zip.

Times `weightscope edit big.pth -o out.pth --add-prefix model.` (release binary) against the
Python way, `torch.load` + key rename + `torch.save`, on the same file, each in its own process,
and prints wall times, the ratio and each process's peak RSS (`/usr/bin/time -f %M`).
The torch side is run twice: plain `torch.load` (what most scripts do) and `mmap=True`.

Run with the torch venv python, after `cargo build --release`:
    ~/.cache/weightscope/venv/bin/python bench/export_bench.py [--repeat N]
    ... bench/export_bench.py --smoke   # 8 tensors, 8 MiB, one run: the same code and checks (CI)
Env: WEIGHTSCOPE_BIN (default $CARGO_TARGET_DIR/release/weightscope or target/release/weightscope),
BENCH_DIR (default: a new temporary directory; needs ~12 GiB free).

Every output is verified: it loads with `torch.load(mmap=True, weights_only=True)`, its keys are
`model.` + the input's keys in order, and sampled tensors are byte-identical to the input's.
The file is made like bench/inspect_bench.py's (1,000 float32 [1024, N] tensors) but each tensor
holds a distinct fill value with a random first row, so a copy that loses or mixes data shows.
All big files are deleted at the end (also on failure). Both sides read the input from the page
cache after the first run (the machine has RAM to spare), so the numbers compare work, not disk.
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

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.environ.get("WEIGHTSCOPE_BIN") or os.path.join(
    os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target")), "release", "weightscope")
N_TENSORS = 1000
TOTAL = 4 << 30
ROWS = 1024
TIME = "/usr/bin/time"

TORCH_SIDE = r"""
import sys, torch
src, dst, mmap = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
sd = torch.load(src, weights_only=True, mmap=mmap)
sd = {"model." + k: v for k, v in sd.items()}
torch.save(sd, dst)
"""


def make(path):
    per = TOTAL // N_TENSORS // 4 // ROWS  # float32 columns per tensor
    g = torch.Generator().manual_seed(7)
    sd = {}
    for i in range(N_TENSORS):
        t = torch.full((ROWS, per), float(i))
        t[0] = torch.randn(per, generator=g)
        sd[f"layers.{i}.weight"] = t
    torch.save(sd, path)
    return list(sd)


def timed(cmd):
    """Run cmd under /usr/bin/time; return (seconds, peak RSS in MiB)."""
    fmt = "WS_BENCH_RSS_KB=%M"
    t = time.perf_counter()
    r = subprocess.run([TIME, "-f", fmt, *cmd], capture_output=True, text=True)
    dt = time.perf_counter() - t
    if r.returncode != 0:
        sys.exit(f"failed ({r.returncode}): {' '.join(cmd)}\n{r.stderr}")
    kb = [l for l in r.stderr.splitlines() if l.startswith("WS_BENCH_RSS_KB=")][-1]
    return dt, int(kb.split("=")[1]) / 1024, r.stderr


def verify(out, keys, src_sd):
    sd = torch.load(out, mmap=True, weights_only=True)
    assert list(sd) == ["model." + k for k in keys], f"{out}: keys differ"
    for i in sorted({0, 1, N_TENSORS // 2, N_TENSORS - 1} | set(range(0, N_TENSORS, 97))):
        a, b = sd["model." + keys[i]], src_sd[keys[i]]
        assert a.dtype == b.dtype and a.shape == b.shape, keys[i]
        assert torch.equal(a.view(torch.int32), b.view(torch.int32)), f"{out}: {keys[i]} differs"
    del sd


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--smoke", action="store_true", help="8 tensors, 8 MiB, one run each (CI)")
    args = ap.parse_args()
    global N_TENSORS, TOTAL
    if args.smoke:
        args.repeat, N_TENSORS, TOTAL = 1, 8, 8 << 20
    if not os.access(BIN, os.X_OK):
        sys.exit(f"build the CLI first: cargo build --release ({BIN} missing)")
    if not os.access(TIME, os.X_OK):
        sys.exit(f"{TIME} (GNU time) is needed for peak RSS")
    d = os.environ.get("BENCH_DIR") or tempfile.mkdtemp(prefix="ws-export-bench-")
    os.makedirs(d, exist_ok=True)
    src, ours_out, torch_out = (os.path.join(d, n) for n in ("big.pth", "ours.pth", "torch.pth"))
    try:
        t0 = time.perf_counter()
        keys = make(src)
        size = os.path.getsize(src)
        print(f"wrote {src}: {size / 2**30:.2f} GiB, {N_TENSORS} tensors in {time.perf_counter() - t0:.1f} s")
        src_sd = torch.load(src, mmap=True, weights_only=True)

        rows = []
        ours_cmd = [BIN, "edit", src, "-o", ours_out, "--add-prefix", "model."]
        py = sys.executable
        sides = [("weightscope edit --add-prefix (release)", ours_cmd, ours_out),
                 ("torch.load + rename + torch.save", [py, "-c", TORCH_SIDE, src, torch_out, "0"], torch_out),
                 ("torch.load(mmap=True) + rename + torch.save", [py, "-c", TORCH_SIDE, src, torch_out, "1"], torch_out)]
        if args.smoke:
            del sides[1]  # one torch process is enough to check the path (each imports torch)
        for name, cmd, out in sides:
            times, rss = [], []
            for _ in range(args.repeat):
                if os.path.exists(out):
                    os.remove(out)
                dt, mib, err = timed(cmd)
                times.append(dt)
                rss.append(mib)
                verify(out, keys, src_sd)
            rows.append((name, times, max(rss)))
            if out == ours_out:
                print("  ours stderr:", " | ".join(l for l in err.splitlines() if not l.startswith("WS_BENCH")))
            os.remove(out)
        print(f"\n{'':46s} {'min s':>8s} {'median s':>9s} {'peak RSS MiB':>13s}")
        for name, times, mib in rows:
            print(f"{name:46s} {min(times):8.2f} {statistics.median(times):9.2f} {mib:13.0f}")
        ours_med = statistics.median(rows[0][1])
        for name, times, mib in rows[1:]:
            print(f"ratio {name} / ours: time {statistics.median(times) / ours_med:.2f}x, "
                  f"peak RSS {mib / rows[0][2]:.1f}x")
        print(f"(median of {args.repeat} runs each; outputs verified with torch.load(mmap=True, weights_only=True))")
    finally:
        for p in (src, ours_out, torch_out):
            if os.path.exists(p):
                os.remove(p)
        if not os.environ.get("BENCH_DIR"):
            shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
