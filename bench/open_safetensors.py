#!/usr/bin/env python3
"""Benchmark: open a 4 GiB safetensors file and list its keys, weightscope vs the official library.

Run with the torch venv python (it has `safetensors`):
    ~/.cache/weightscope/venv/bin/python bench/open_safetensors.py [--tensors 8192] [--repeat 7] [--dir /tmp]
    ... bench/open_safetensors.py --smoke   # 64 tensors, 64 MiB, one run, debug build (CI)

Writes a synthetic 4 GiB file (F16 tensors of equal size; the header is real, the data is a sparse
hole of zeros, which is valid data) in a few milliseconds with truncate, then times in-process:
  - ours: `examples/open_bench.rs` (release build): `format::open` over a `FileSource` + listing names;
  - theirs: `safetensors.safe_open(path, "pt")` + `.keys()`.
Prints both (min and median of --repeat runs), the ratio, and the bytes our open read.
The file is deleted at the end.
"""
import argparse, json, os, struct, subprocess, sys, time, statistics

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def write_file(path, n_tensors, total):
    per = total // n_tensors  # bytes per tensor
    elems = per // 2          # F16
    rows = 512
    cols = elems // rows
    assert rows * cols * 2 == per, "pick --tensors so that each tensor is a whole 512-row F16 matrix"
    header = {"__metadata__": {"format": "pt"}}
    off = 0
    for i in range(n_tensors):
        layer, j = divmod(i, 8)
        name = f"model.layers.{layer}.block.{j}.weight"
        header[name] = {"dtype": "F16", "shape": [rows, cols], "data_offsets": [off, off + per]}
        off += per
    hb = json.dumps(header, separators=(",", ":")).encode()
    hb += b" " * (-len(hb) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hb)))
        f.write(hb)
        f.truncate(8 + len(hb) + off)
    return len(hb), n_tensors


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tensors", type=int, default=8192)
    ap.add_argument("--size-gib", type=int, default=4)
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--dir", default="/tmp")
    ap.add_argument("--smoke", action="store_true", help="64 tensors, 64 MiB, one run, debug build (CI)")
    a = ap.parse_args()
    total = a.size_gib << 30
    profile = ["--release"]
    if a.smoke:
        a.tensors, a.repeat, total, profile = 64, 1, 64 << 20, []

    subprocess.run(["cargo", "build", *profile, "--example", "open_bench"], cwd=ROOT, check=True)
    target = os.environ.get("CARGO_TARGET_DIR") or os.path.join(ROOT, "target")
    exe = os.path.join(target, "release" if profile else "debug", "examples", "open_bench")

    path = os.path.join(a.dir, f"weightscope-bench-{os.getpid()}.safetensors")
    try:
        n, count = write_file(path, a.tensors, total)
        size = os.path.getsize(path)
        print(f"file: {path}  {size} bytes ({size / 2**30:.2f} GiB), {count} tensors, header {n} bytes")

        # ours (a warm-up process first so both read the header from the page cache)
        subprocess.run([exe, path, "1"], check=True, capture_output=True)
        out = subprocess.run([exe, path, str(a.repeat), "--keys"], check=True, capture_output=True, text=True).stdout
        lines = out.strip().split("\n")
        ours = json.loads(lines[-1])
        our_keys = lines[:-1]

        # theirs
        from safetensors import safe_open
        import safetensors
        times = []
        for _ in range(a.repeat + 1):
            t0 = time.perf_counter()
            with safe_open(path, "pt") as f:
                keys = list(f.keys())
            times.append(time.perf_counter() - t0)
        times = sorted(times[1:])  # drop the warm-up
        theirs_min, theirs_med = times[0], statistics.median(times)

        assert sorted(our_keys) == sorted(keys), "key sets differ"
        assert ours["tensors"] == count
        print(f"weightscope format::open + names : min {ours['min_s']*1e3:8.2f} ms  median {ours['median_s']*1e3:8.2f} ms"
              f"  ({ours['bytes_read']} bytes read in {ours['reads']} reads; 8 + N = {8 + n})")
        print(f"safetensors {safetensors.__version__} safe_open().keys(): min {theirs_min*1e3:8.2f} ms  median {theirs_med*1e3:8.2f} ms")
        print(f"ratio ours/theirs (median): {ours['median_s'] / theirs_med:.2f}")
    finally:
        if os.path.exists(path):
            os.remove(path)
            print(f"deleted {path}")


if __name__ == "__main__":
    main()
