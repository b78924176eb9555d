#!/usr/bin/env bash
# wheel.sh — the Python wheel of the `weightscope` CLI (maturin, `bindings = "bin"`, pyproject.toml).
#
#   scripts/wheel.sh build   a release wheel into $CARGO_TARGET_DIR/wheels (what you publish or
#                            `pip install`); prints its path
#   scripts/wheel.sh check   build a dev-profile wheel (it reuses `cargo test`'s build, so it takes
#                            seconds), `pip install` it offline into a fresh venv, then check that
#                            the command pip put on PATH is the wheel's, carries Cargo.toml's
#                            version, and passes the CLI fixture checks (inspect --json --hash of
#                            every torch fixture, detect, exit codes) and the stats / edit round
#                            trips run against it with real torch.
#
# maturin comes from $CACHE/build-venv (scripts/bootstrap.sh installs the pinned version).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
CACHE="${WEIGHTSCOPE_CACHE:-$HOME/.cache/weightscope}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$CACHE/target}"
MATURIN="$CACHE/build-venv/bin/maturin"
PY="$CACHE/venv/bin/python"
VERSION=$(sed -n 's/^version *= *"\(.*\)"/\1/p' Cargo.toml | head -n1)
[ -x "$MATURIN" ] || { echo "wheel: $MATURIN missing — run scripts/bootstrap.sh" >&2; exit 1; }

case "${1:-}" in
  build)
    out="$CARGO_TARGET_DIR/wheels"
    "$MATURIN" build --release --locked -o "$out" >&2
    ls -1 "$out"/weightscope-"$VERSION"-*.whl
    ;;
  check)
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    "$MATURIN" build --locked -o "$tmp/wheels"
    whl=$(ls "$tmp"/wheels/weightscope-"$VERSION"-*.whl)
    python3 -m venv "$tmp/venv"
    "$tmp/venv/bin/pip" install -q --no-index --no-deps "$whl"
    installed=$(PATH="$tmp/venv/bin:$PATH" command -v weightscope)
    [ "$installed" = "$tmp/venv/bin/weightscope" ] || {
      echo "wheel: weightscope on PATH is $installed, not the venv's" >&2; exit 1; }
    meta=$(cat "$tmp"/venv/lib/python3*/site-packages/weightscope-"$VERSION".dist-info/METADATA)
    got=$(sed -n 's/^Version: //p' <<<"$meta")
    [ "$got" = "$VERSION" ] || { echo "wheel: version $got, Cargo.toml says $VERSION" >&2; exit 1; }
    for field in '^Summary: .*PyTorch' '^License-Expression: MIT' '^Classifier: Topic :: Security'; do
      grep -q "$field" <<<"$meta" || { echo "wheel: metadata lacks $field" >&2; exit 1; }
    done
    echo "installed $whl → $installed (version $got)"
    export WEIGHTSCOPE_BIN="$installed"
    cargo test --test cli_fixtures
    "$PY" -m pytest -q -p no:cacheprovider tests/roundtrip/test_roundtrip.py \
      -k "strip_prefix or rename_keeps_tie or cast_with_pattern or keep or delete_by_pattern or cli_stats" \
      tests/roundtrip/test_cli_stats.py
    ;;
  *) echo "usage: scripts/wheel.sh build|check" >&2; exit 1 ;;
esac
