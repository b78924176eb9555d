#!/usr/bin/env python3
"""Build the seed corpora of the fuzz targets from the torch fixtures (stdlib only).

    python3 fuzz/make_seeds.py [FIXTURES_DIR] [OUT_DIR]

FIXTURES_DIR defaults to tests/fixtures/gen (made by tests/fixtures/make_fixtures.py with real
torch), OUT_DIR to fuzz/corpus. For the targets `open` and `roundtrip` every fixture file of at
most MAX_SEED bytes becomes one seed, and every sharded checkpoint becomes one seed made of its
index and its shards joined by the separator that fuzz/src/lib.rs splits inputs at. The bundled
assets/sample.pth is added when small enough. `pickle_vm` takes structure-aware inputs and
starts from an empty corpus.
"""
import hashlib
import json
import os
import sys

SEP = b"\n#weightscope-fuzz-shard#\n"  # fuzz/src/lib.rs: SEP
MAX_SEED = 1 << 20

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
fix = sys.argv[1] if len(sys.argv) > 1 else os.path.join(root, "tests/fixtures/gen")
out = sys.argv[2] if len(sys.argv) > 2 else os.path.join(root, "fuzz/corpus")


def put(data):
    if len(data) > MAX_SEED:
        return 0
    name = hashlib.sha1(data).hexdigest()
    for target in ("open", "roundtrip"):
        d = os.path.join(out, target)
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, name), "wb") as f:
            f.write(data)
    return 1


def read(p):
    with open(p, "rb") as f:
        return f.read()


n = 0
manifest = json.load(open(os.path.join(fix, "manifest.json")))
for fx in manifest["fixtures"]:
    path = os.path.join(fix, fx["file"])
    if not os.path.isfile(path):
        continue
    if fx.get("shards"):
        # the reader asks for shards in order of first appearance in weight_map
        order = list(dict.fromkeys(json.loads(read(path))["weight_map"].values()))
        base = os.path.dirname(path)
        n += put(SEP.join([read(path)] + [read(os.path.join(base, s)) for s in order]))
    else:
        n += put(read(path))
sample = os.path.join(root, "assets/sample.pth")
if os.path.isfile(sample):
    n += put(read(sample))
print(f"{n} seeds per target in {out}/open and {out}/roundtrip")
