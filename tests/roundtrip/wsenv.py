"""Where the round-trip tests find the CLI and the torch-made fixtures (shared by every test file).

- BIN: $WEIGHTSCOPE_BIN, else $CARGO_TARGET_DIR (or ./target)/debug/weightscope.
- FIX: $WEIGHTSCOPE_FIXTURES, else tests/fixtures/gen (made by tests/fixtures/make_fixtures.py).
A missing binary or fixture set is an error with the command that makes it, never a skip.
"""
import json
import os

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FIX = os.environ.get("WEIGHTSCOPE_FIXTURES") or os.path.join(ROOT, "tests", "fixtures", "gen")
BIN = os.environ.get("WEIGHTSCOPE_BIN") or os.path.join(
    os.environ.get("CARGO_TARGET_DIR") or os.path.join(ROOT, "target"), "debug", "weightscope")

if not os.access(BIN, os.X_OK):
    raise RuntimeError(f"weightscope binary missing: {BIN}. Run `cargo build` (or set WEIGHTSCOPE_BIN)")


def manifest():
    """The fixtures' manifest.json (fixtures and diff pairs), or an error naming how to make it."""
    path = os.path.join(FIX, "manifest.json")
    if not os.path.isfile(path):
        raise RuntimeError(
            f"fixtures missing: {path}. Run: ~/.cache/weightscope/venv/bin/python "
            f"tests/fixtures/make_fixtures.py {FIX}  (or set WEIGHTSCOPE_FIXTURES)")
    with open(path, encoding="utf-8") as f:
        return json.load(f)
