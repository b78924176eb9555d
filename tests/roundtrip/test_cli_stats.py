"""`weightscope stats --json` (the command itself, `$WEIGHTSCOPE_BIN`) against the statistics torch and
numpy computed for every fixture that has a `.stats.json` (tests/fixtures/README.md, "Statistics").

The library-level comparison lives in tests/stats_fixtures.rs; this file checks what a user of the
command sees — in particular the pip-installed command of the wheel check (scripts/wheel.sh).
Rules: count, nan, posinf, neginf, zeros, min, max, absmax and the histogram counts exact; mean,
std, l2 and the edges to a relative 1e-6.
"""
import json
import os
import subprocess

import pytest

from wsenv import BIN, FIX, manifest

WITH_STATS = [f for f in manifest()["fixtures"] if f.get("stats")]


def close(a, b):
    if a is None or b is None:
        return a is None and b is None
    return abs(a - b) <= 1e-6 * abs(b) or abs(a - b) <= 1e-12


def test_fixtures_have_stats():
    assert len(WITH_STATS) >= 4, [f["file"] for f in WITH_STATS]


@pytest.mark.parametrize("fx", WITH_STATS, ids=[f["file"] for f in WITH_STATS])
def test_cli_stats_match_torch(fx):
    want = json.load(open(os.path.join(FIX, fx["stats"]), encoding="utf-8"))
    p = subprocess.run([BIN, "stats", "--json", "--bins", str(want["bins"]),
                        os.path.join(FIX, fx["file"])], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    got = {tuple(t["path"]): t for t in json.loads(p.stdout)["tensors"]}
    assert len(got) == len(want["tensors"])
    bad = []
    for w in want["tensors"]:
        g = got[tuple(w["path"])]
        name = "/".join(w["path"])
        for k in ("count", "nan", "posinf", "neginf", "zeros", "min", "max", "absmax"):
            if g[k] != w[k]:
                bad.append(f"{name}: {k} {g[k]} != {w[k]}")
        for k in ("mean", "std", "l2"):
            if not close(g[k], w[k]):
                bad.append(f"{name}: {k} {g[k]} != {w[k]}")
        h = g["histogram"]
        if h["counts"] != w["counts"]:
            bad.append(f"{name}: histogram counts differ")
        if len(h["edges"]) != len(w["edges"]) or not all(map(close, h["edges"], w["edges"])):
            bad.append(f"{name}: histogram edges differ")
        assert g["dtype"] == w["dtype"] and g["shape"] == w["shape"], name
    assert not bad, "\n".join(bad[:20])
