#!/usr/bin/env python3
"""Statistics engine benchmark: weightscope's native engine vs numpy.

Run from the repository root with the torch venv's python, OpenBLAS overrides removed for this
command only (they slow a current numpy on some CPUs):

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE ~/.cache/weightscope/venv/bin/python bench/stats_bench.py

What is timed, on 256 MiB of float32 (64 Mi values) and 256 MiB of bfloat16 (128 Mi values),
both N(0.001, 0.02²) "weights" written to a temporary directory:
- numpy: min, max, mean, std and histogram(bins=64, range=(min, max)) on the array already in
  memory (loading is NOT timed). Two variants: float64 accumulation (`mean(dtype=float64)`,
  `std(dtype=float64)`, histogram of `a.astype(float64)` — the engine's exact semantics) and
  numpy's default float32
  accumulation (and float32 histogram edges, so its bins can differ from float64's). bfloat16
  has no numpy dtype (ml_dtypes is not installed): the uint16 → float32
  conversion (a shift) is counted in numpy's time.
- weightscope: `cargo run --release --example stats_bench`, which streams the file from disk (page
  cache) in 4 MiB reads and computes everything the UI shows: count, min, max, mean, std, L2,
  abs-max, zeros, NaN/±inf, the 64-bin numpy-identical histogram and quantiles. float32 beyond the
  16 Mi exact-quantile budget is read twice (moments, then histogram + quantile sketch);
  bfloat16 is read once (bit-pattern counts give everything exactly, quantiles included).
A third row: 100 M float16 values N(100, 0.5²), timed the same way (numpy computes on its
float16 array; histogram of a float64 copy) and checked against torch's float64 mean and std to
1e-6 relative. Each side: best of 3 runs. The script also checks (untimed) that the engine's answers agree with
numpy's — min/max/histogram equal, mean/std within 1e-6 relative, quantiles within the engine's
reported bound of numpy.quantile (bound 0 when exact) — and fails if not.
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time

import numpy as np

MIB = 1 << 20


def best_of(fn, runs):
    best = float("inf")
    out = None
    for _ in range(runs):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def numpy_stats(a, accumulate64):
    """min, max, mean, std, histogram(64 bins over [min, max]).

    accumulate64: the engine's semantics (float64 accumulation; histogram of the values as
    float64, which is what numpy.histogram computes on a float64 array). Otherwise numpy's
    defaults on float32: float32 accumulation, and (NEP 50) float32 bin edges.
    """
    mn = a.min()
    mx = a.max()
    if accumulate64:
        mean = a.mean(dtype=np.float64)
        std = a.std(dtype=np.float64)
        counts, edges = np.histogram(a.astype(np.float64), bins=64, range=(float(mn), float(mx)))
    else:
        mean = a.mean()
        std = a.std()
        counts, edges = np.histogram(a, bins=64, range=(float(mn), float(mx)))
    return float(mn), float(mx), float(mean), float(std), counts, edges


def bf16_to_f32(u16):
    return (u16.astype(np.uint32) << 16).view(np.float32)


def cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mib", type=int, default=256, help="size of each array in MiB (default 256)")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--dir", help="where to write the arrays (default: a temporary directory)")
    ap.add_argument("--json", help="also write the results to this JSON file")
    ap.add_argument("--f16-numel", type=int, default=100_000_000, help="float16 values for the precision row (0: skip)")
    ap.add_argument("--smoke", action="store_true",
                    help="1 MiB arrays, 100,000 float16 values, one run, debug build: the same code and checks (CI)")
    args = ap.parse_args()
    profile = ["--release"]
    if args.smoke:
        args.mib, args.runs, args.f16_numel, profile = 1, 1, 100_000, []

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    subprocess.run(["cargo", "build", *profile, "--example", "stats_bench"], cwd=root, check=True)
    target = os.environ.get("CARGO_TARGET_DIR") or os.path.join(root, "target")
    exe = os.path.join(target, "release" if profile else "debug", "examples", "stats_bench")

    try:
        from threadpoolctl import threadpool_info

        blas = [(i.get("internal_api"), i.get("architecture"), i.get("num_threads")) for i in threadpool_info()]
    except ImportError:
        blas = "threadpoolctl not installed"
    print(f"machine: {cpu_name()}, {os.cpu_count()} cores; numpy {np.__version__}; BLAS {blas}")
    print(f"OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE')} OPENBLAS_L2_SIZE={os.environ.get('OPENBLAS_L2_SIZE')}")

    tmp = None
    if args.dir:
        d = args.dir
        os.makedirs(d, exist_ok=True)
    else:
        tmp = tempfile.TemporaryDirectory()
        d = tmp.name
    rng = np.random.default_rng(20261)
    n32 = args.mib * MIB // 4
    f32 = (rng.standard_normal(n32, dtype=np.float32) * np.float32(0.02) + np.float32(0.001)).astype(np.float32)
    p32 = os.path.join(d, "f32.bin")
    f32.tofile(p32)
    # bf16: round-to-nearest-even of more float32 normals.
    n16 = args.mib * MIB // 2
    src = np.concatenate([f32, (rng.standard_normal(n16 - n32, dtype=np.float32) * np.float32(0.02))])
    bits = src.view(np.uint32)
    u16 = ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16).astype(np.uint16)
    del src, bits
    p16 = os.path.join(d, "bf16.bin")
    u16.tofile(p16)
    del u16
    # float16: 100 M values with a large mean relative to the spread (stresses the accumulation),
    # checked against torch's float64 mean and std.
    ph = os.path.join(d, "f16.bin")
    if args.f16_numel:
        h = (rng.standard_normal(args.f16_numel, dtype=np.float32) * np.float32(0.5) + np.float32(100.0)).astype(np.float16)
        h.tofile(ph)
        del h

    results = []
    ok = True
    for name, path, load, convert in [
        ("float32", p32, lambda: np.fromfile(p32, dtype=np.float32), None),
        ("bfloat16", p16, lambda: np.fromfile(p16, dtype=np.uint16), bf16_to_f32),
    ] + ([("float16", ph, lambda: np.fromfile(ph, dtype=np.float16), None)] if args.f16_numel else []):
        raw = load()
        nbytes = raw.nbytes

        def run(acc64):
            a = convert(raw) if convert else raw
            return numpy_stats(a, acc64)

        t64, ref = best_of(lambda: run(True), args.runs)
        t32, _ = best_of(lambda: run(False), args.runs)
        proc = subprocess.run([exe, path, name, "--runs", str(args.runs)], capture_output=True, text=True, check=True)
        eng = json.loads(proc.stdout)
        te = eng["best"]
        # the engine's value summary (count, min, max, mean, std, …) is nested under "summary"
        s = {**eng["stats"], **eng["stats"].get("summary", {})}
        mn, mx, mean, std, counts, edges = ref
        # Quantiles (not timed): numpy's exact ones vs the engine's, within its reported bound.
        a64 = (convert(raw) if convert else raw).astype(np.float64)
        qs = np.quantile(a64, [0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99])
        del a64
        bound = s["quantile_error_bound"]
        q_ok = all(abs(s["quantiles"][k] - float(v)) <= bound for k, v in zip(["p1", "p5", "p25", "p50", "p75", "p95", "p99"], qs))
        checks = {
            "min": s["min"] == mn,
            "max": s["max"] == mx,
            "mean": abs(s["mean"] - mean) <= 1e-6 * abs(mean),
            "std": abs(s["std"] - std) <= 1e-6 * abs(std),
            "histogram": s["histogram"]["counts"] == counts.tolist() and s["histogram"]["edges"] == edges.tolist(),
            "count": s["count"] == raw.size,
            "quantiles": q_ok,
        }
        if name == "float16":
            import torch

            t = torch.from_numpy(raw).double()
            tm, ts = float(t.mean()), float(t.std(correction=0))
            del t
            checks["torch_mean_1e-6"] = abs(s["mean"] - tm) <= 1e-6 * abs(tm)
            checks["torch_std_1e-6"] = abs(s["std"] - ts) <= 1e-6 * abs(ts)
            print(f"float16 vs torch float64: mean {s['mean']!r} vs {tm!r}, std {s['std']!r} vs {ts!r}")
        if not all(checks.values()):
            ok = False
        r = {
            "dtype": name,
            "mib": nbytes / MIB,
            "numpy_f64_s": t64,
            "numpy_default_s": t32,
            "engine_s": te,
            "engine_passes": s["passes"],
            "quantiles_exact": s["quantiles_exact"],
            "quantile_error_bound": bound,
            "ratio_vs_numpy_f64": t64 / te,
            "ratio_vs_numpy_default": t32 / te,
            "agree": checks,
        }
        results.append(r)
        mbps = lambda t: nbytes / MIB / t
        print(
            f"{name:9s} {nbytes / MIB:.0f} MiB | numpy(f64 acc) {t64:.3f}s {mbps(t64):7.0f} MiB/s"
            f" | numpy(default) {t32:.3f}s {mbps(t32):7.0f} MiB/s"
            f" | weightscope {te:.3f}s {mbps(te):7.0f} MiB/s ({s['passes']} pass(es), quantiles "
            f"{'exact' if s['quantiles_exact'] else f'within {bound:.2g}'})"
            f" | speed-up {t64 / te:.2f}x ({t32 / te:.2f}x vs numpy default)"
            f" | agree: {'yes' if all(checks.values()) else checks}"
        )
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"cpu": cpu_name(), "numpy": np.__version__, "results": results}, f, indent=1)
    if tmp:
        tmp.cleanup()
    if not ok:
        print("MISMATCH between engine and numpy", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
