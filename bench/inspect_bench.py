#!/usr/bin/env python3
"""Benchmark: open a synthetic 4 GiB, 1,000-tensor torch zip checkpoint.

Times `weightscope inspect --json` (bytes read counted by the CLI itself) against
`torch.load(path, mmap=True, weights_only=True)` on the same file, side by side.
Run with the torch venv python:  ~/.cache/weightscope/venv/bin/python bench/inspect_bench.py
Targets: the CLI reads under 1 MB of the file and is at least 10x faster.
`--smoke`: 8 tensors, 8 MiB, one timing of each: the same code path, for CI.
"""
import argparse, json, os, subprocess, sys, time, statistics, tempfile

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.environ.get("WEIGHTSCOPE_BIN") or os.path.join(
    os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target")), "release", "weightscope")
N_TENSORS = 1000
TOTAL = 4 << 30


def make(path):
    per = TOTAL // N_TENSORS // 4  # float32 elements per tensor
    rows = 1024
    sd = {f"layers.{i}.weight": torch.empty(rows, per // rows) for i in range(N_TENSORS)}
    torch.save(sd, path)


RUNS = None  # --smoke: one timing of everything


def timeit(fn, n=5):
    ts = []
    for _ in range(RUNS or n):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return statistics.median(ts)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--smoke", action="store_true", help="8 tensors, 8 MiB, one run each (CI)")
    args = ap.parse_args()
    global N_TENSORS, TOTAL, RUNS
    if args.smoke:
        N_TENSORS, TOTAL, RUNS = 8, 8 << 20, 1
    if not os.path.exists(BIN):
        sys.exit(f"build the CLI first: cargo build --release --bin weightscope --example open_bench ({BIN} missing)")
    d = os.environ.get("BENCH_DIR") or tempfile.mkdtemp(prefix="ws-bench-")
    path = os.path.join(d, "big.pth")
    t0 = time.perf_counter()
    make(path)
    size = os.path.getsize(path)
    print(f"wrote {path}: {size/2**30:.2f} GiB, {N_TENSORS} tensors in {time.perf_counter()-t0:.1f} s")
    # let the kernel write the 4 GiB back before timing: writeback competes for the CPU (2 cores)
    os.sync()
    time.sleep(2)

    def ours():
        r = subprocess.run([BIN, "inspect", "--json", path], capture_output=True,
                           env={**os.environ, "WEIGHTSCOPE_IO_STATS": "1"})
        assert r.returncode == 0, r.stderr
        return r
    r = ours()
    io = [l for l in r.stderr.decode().splitlines() if l.startswith("io:")][0]
    t_ours = timeit(ours, n=9)

    def ours_tree():
        r = subprocess.run([BIN, "inspect", path], capture_output=True)
        assert r.returncode == 0, r.stderr
    ours_tree()
    t_tree = timeit(ours_tree, n=9)

    def theirs():
        sd = torch.load(path, mmap=True, weights_only=True)
        assert len(sd) == N_TENSORS
    theirs()  # warm-up: torch's first call imports and initialises more than later ones
    t_torch = timeit(theirs)

    def theirs_process():
        subprocess.run([sys.executable, "-c",
                        f"import torch; sd = torch.load({path!r}, mmap=True, weights_only=True); assert len(sd) == {N_TENSORS}"],
                       check=True, capture_output=True)
    t_torch_proc = timeit(theirs_process, n=3)
    # in-process open (no process start, no JSON printing): examples/open_bench.rs
    ex = os.path.join(os.path.dirname(BIN), "examples", "open_bench")
    inproc = None
    if os.path.exists(ex):
        r = subprocess.run([ex, path, str(RUNS or 9)], capture_output=True, text=True, check=True)
        inproc = json.loads(r.stdout.strip().splitlines()[-1])
    print(f"weightscope inspect --json (whole process): {t_ours*1000:8.1f} ms   ({io})")
    print(f"weightscope inspect, readable tree (whole process): {t_tree*1000:8.1f} ms")
    if inproc:
        print(f"weightscope format::open in-process (median of 9): {inproc['median_s']*1000:8.2f} ms")
    print(f"torch.load(mmap=True, weights_only=True) in-process: {t_torch*1000:8.1f} ms")
    print(f"python -c 'import torch; torch.load(...)' (whole process): {t_torch_proc*1000:8.1f} ms")
    print(f"speed-up, process vs process: {t_torch_proc/t_ours:.1f}x")
    print(f"speed-up, our process vs torch.load in a running interpreter (strictest): {t_torch/t_ours:.1f}x"
          f" (readable tree: {t_torch/t_tree:.1f}x)")
    if inproc:
        print(f"speed-up, in-process vs in-process: {t_torch/inproc['median_s']:.1f}x")
    os.remove(path)


if __name__ == "__main__":
    main()
