"""`weightscope diff` and `weightscope edit --transplant` against torch-made expectations.

Run (from the repository root, after `cargo build` and make_fixtures.py):

    ~/.cache/weightscope/venv/bin/python -m pytest -q tests/roundtrip/test_diff.py

Inputs are found as in test_roundtrip.py: `$WEIGHTSCOPE_FIXTURES` (default `tests/fixtures/gen`)
and `$WEIGHTSCOPE_BIN` (default `$CARGO_TARGET_DIR/debug/weightscope`, else
`target/debug/weightscope`). Either one missing is a collection error, never a skip.

Where the expected values come from
- diff: every pair in the manifest's `"diffs"` list has an expected JSON object that
  make_fixtures.py computed with torch in float64 (see tests/fixtures/README.md, "diff pairs").
  This file only runs the CLI and compares. It computes nothing.
- transplant: the expected state dict is built here with torch from `torch.load` of the two
  inputs (A's dict with the selected entries replaced by, or extended with, B's tensors).

Contract under test
- `weightscope diff A B --json [--map A_PREFIX=B_PREFIX]...` exits 0 and prints
  `{"only_a", "only_b", "mismatched", "changed", "identical"}` and nothing else. The lists must
  match exactly, in order. `changed` floats are compared with a relative tolerance of 1e-9 and an
  absolute one of 1e-12. A null must be null.
- `weightscope edit A -o OUT --transplant B:REGEX[=NEW_PREFIX]` copies B's tensors whose key
  matches REGEX into A's state dict. With NEW_PREFIX, the regex match in the key is replaced by
  it. A shape mismatch is refused with exit 2.

Decisions this file makes where the transplant contract is silent (each one is pinned by a test):
1. A replaced key keeps its place in A's order. New keys (NEW_PREFIX) are appended after A's
   keys, in B's order.
2. The output is A's own object, so the OrderedDict `_metadata` stays A's. Every tensor not
   transplanted is A's, bit for bit.
3. A refusal writes no output file, and its stderr names the offending key.
"""
import json
import math
import os
import subprocess

import pytest
import torch

pytestmark = pytest.mark.filterwarnings("ignore")

from wsenv import BIN, FIX, manifest

MANIFEST = manifest()
if not MANIFEST.get("diffs"):
    raise RuntimeError(f"{FIX}/manifest.json has no \"diffs\": regenerate the fixtures")
DIFFS = MANIFEST["diffs"]
TOP_KEYS = {"only_a", "only_b", "mismatched", "changed", "identical"}
FLOAT_KEYS = ("max_abs", "rel_l2", "cosine")


def fx(rel):
    return os.path.join(FIX, rel)


def run(args):
    return subprocess.run([BIN, *args], capture_output=True, text=True, timeout=120)


# --------------------------------------------------------------------------------------------
# diff
# --------------------------------------------------------------------------------------------

def test_manifest_diffs_are_separate_from_fixtures():
    names = {os.path.splitext(d["expect"])[0] for d in DIFFS}
    assert len(names) == len(DIFFS) >= 9
    files = {f["file"] for f in MANIFEST["fixtures"]}
    for d in DIFFS:
        assert set(d) >= {"a", "b", "map", "expect"}, d
        for k in ("a", "b", "expect"):
            assert os.path.isfile(fx(d[k])), d[k]
            assert d[k] not in files, f"{d[k]} must not be listed under fixtures"
    # the expectations cover every list and each value rule at least once
    exps = [json.load(open(fx(d["expect"]), encoding="utf-8")) for d in DIFFS]
    for k in ("only_a", "only_b", "mismatched", "changed"):
        assert any(e[k] for e in exps), k
    changed = [c for e in exps for c in e["changed"]]
    assert any(c["rel_l2"] is None and c["max_abs"] is not None for c in changed)
    assert any(c["cosine"] is None and c["rel_l2"] is not None for c in changed)
    assert any(c["max_abs"] is None for c in changed)
    assert any(c["max_abs"] == 0.0 for c in changed)
    assert any(e["identical"] for e in exps)
    assert any(d["map"] for d in DIFFS) and any(len(d["map"]) > 1 for d in DIFFS)


def _num_eq(got, want):
    if want is None:
        return got is None
    if isinstance(got, bool) or not isinstance(got, (int, float)):
        return False
    return math.isclose(float(got), want, rel_tol=1e-9, abs_tol=1e-12)


def compare_diff(got, want):
    """A list of human-readable differences (empty when `got` matches `want`)."""
    errs = []
    if not isinstance(got, dict):
        return [f"output is not a JSON object: {got!r:.200}"]
    if set(got) != TOP_KEYS:
        errs.append(f"top-level keys {sorted(got)}, expected {sorted(TOP_KEYS)}")
    for k in ("only_a", "only_b", "mismatched"):
        if got.get(k) != want[k]:
            errs.append(f"{k}:\n  got      {got.get(k)}\n  expected {want[k]}")
    if got.get("identical") != want["identical"] or isinstance(got.get("identical"), bool):
        errs.append(f"identical: got {got.get('identical')}, expected {want['identical']}")
    gc = got.get("changed")
    if not isinstance(gc, list):
        return errs + [f"changed is not a list: {gc!r:.200}"]
    gkeys = [c.get("key") if isinstance(c, dict) else c for c in gc]
    wkeys = [c["key"] for c in want["changed"]]
    if gkeys != wkeys:
        errs.append(f"changed keys:\n  got      {gkeys}\n  expected {wkeys}")
        return errs
    for g, w in zip(gc, want["changed"]):
        if set(g) != {"key", *FLOAT_KEYS}:
            errs.append(f"changed {w['key']}: fields {sorted(g)}")
        for f in FLOAT_KEYS:
            if not _num_eq(g.get(f), w[f]):
                errs.append(f"changed {w['key']}: {f} = {g.get(f)!r}, expected {w[f]!r}")
    return errs


@pytest.mark.parametrize("pair", DIFFS, ids=[os.path.basename(d["expect"]).removesuffix(".diff.json")
                                              for d in DIFFS])
def test_diff_matches_torch(pair):
    args = ["diff", fx(pair["a"]), fx(pair["b"]), "--json"]
    for rule in pair["map"]:
        args += ["--map", rule]
    r = run(args)
    assert r.returncode == 0, f"exit {r.returncode}: {r.stderr.strip()[:500]}"
    try:
        got = json.loads(r.stdout)
    except json.JSONDecodeError as e:
        raise AssertionError(f"stdout is not one JSON object ({e}): {r.stdout[:300]!r}") from None
    want = json.load(open(fx(pair["expect"]), encoding="utf-8"))
    errs = compare_diff(got, want)
    assert not errs, f"{pair['a']} vs {pair['b']} map {pair['map']}:\n" + "\n".join(errs)


def test_compare_diff_is_strict():
    """The comparison itself rejects a wrong value, a missing null, a reordered list and extra keys."""
    want = json.load(open(fx(next(d for d in DIFFS if d["expect"].endswith("partial.diff.json"))["expect"]),
                          encoding="utf-8"))
    assert compare_diff(json.loads(json.dumps(want)), want) == []
    bad = json.loads(json.dumps(want))
    c = next(c for c in bad["changed"] if c["rel_l2"] is not None)
    c["rel_l2"] *= 1 + 1e-7
    assert compare_diff(bad, want)
    bad = json.loads(json.dumps(want))
    c = next(c for c in bad["changed"] if c["cosine"] is None)
    c["cosine"] = 0.0
    assert compare_diff(bad, want)
    bad = json.loads(json.dumps(want))
    bad["only_a"].reverse()
    assert compare_diff(bad, want)
    bad = json.loads(json.dumps(want))
    bad["identical"] += 1
    assert compare_diff(bad, want)
    bad = json.loads(json.dumps(want))
    bad["extra"] = 1
    assert compare_diff(bad, want)


# --------------------------------------------------------------------------------------------
# edit --transplant
# --------------------------------------------------------------------------------------------

def _bytes(t):
    t = t.detach()
    if t.is_quantized:
        t = t.int_repr()
    c = t.contiguous().reshape(-1)
    if c.is_complex():
        c = torch.view_as_real(c).reshape(-1)
    return c.view(torch.uint8).numpy().tobytes()


def assert_same_state_dict(got, want, where):
    assert list(got.keys()) == list(want.keys()), f"{where}: key order\n  got      {list(got)}\n  expected {list(want)}"
    for k, w in want.items():
        g = got[k]
        assert isinstance(g, torch.Tensor), f"{where}: {k} is {type(g).__name__}"
        assert g.dtype == w.dtype and g.shape == w.shape, f"{where}: {k}: {g.dtype}{list(g.shape)} vs {w.dtype}{list(w.shape)}"
        assert _bytes(g) == _bytes(w), f"{where}: {k}: bytes differ"


def load(p):
    return torch.load(p, weights_only=True, map_location="cpu")


def test_transplant_replaces_matching_tensors(tmp_path):
    a, b = fx("diff/train_a.pth"), fx("diff/train_b.pth")
    out = tmp_path / "out.pth"
    r = run(["edit", a, "-o", str(out), "--transplant", f"{b}:^fc\\."])
    assert r.returncode == 0, r.stderr
    sa, sb, got = load(a), load(b), load(out)  # weights_only=True: the output is plain
    moved = [k for k in sa if k.startswith("fc.")]
    assert moved == ["fc.weight", "fc.bias"]
    assert any(_bytes(sa[k]) != _bytes(sb[k]) for k in moved), "fixture: fc must differ between A and B"
    want = type(sa)((k, sb[k] if k in moved else v) for k, v in sa.items())
    assert_same_state_dict(got, want, "transplant ^fc\\.")
    assert getattr(got, "_metadata", None) == getattr(sa, "_metadata", None)


def test_transplant_with_new_prefix_appends(tmp_path):
    a, b = fx("diff/train_a.pth"), fx("diff/train_b.pth")
    out = tmp_path / "out.pth"
    r = run(["edit", a, "-o", str(out), "--transplant", f"{b}:^fc\\.=head."])
    assert r.returncode == 0, r.stderr
    sa, sb, got = load(a), load(b), load(out)
    want = type(sa)(sa.items())
    for k in sb:
        if k.startswith("fc."):
            want["head." + k.removeprefix("fc.")] = sb[k]
    assert list(want)[-2:] == ["head.weight", "head.bias"]
    assert_same_state_dict(got, want, "transplant ^fc\\.=head.")


def test_transplant_refuses_shape_mismatch(tmp_path):
    a, b = fx("diff/partial_a.pth"), fx("diff/partial_b.pth")
    sa, sb = load(a), load(b)
    assert sa["head.weight"].shape != sb["head.weight"].shape  # fixture sanity
    out = tmp_path / "out.pth"
    r = run(["edit", a, "-o", str(out), "--transplant", f"{b}:^head\\."])
    assert r.returncode == 2, f"exit {r.returncode}: {r.stderr}"
    assert "head.weight" in r.stderr, r.stderr
    assert not out.exists()
    assert os.listdir(tmp_path) == []
