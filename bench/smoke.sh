#!/usr/bin/env bash
# smoke.sh — every benchmark once on a tiny input (same code path, same checks), so a benchmark
# that breaks fails the test command; the full runs stay manual (see BENCHMARKS.md).
# Needs dist/ (trunk build --release), the torch venv and the debug CLI (cargo test builds it).
# merge_bench.py and trend_bench.py have their own smoke steps in scripts/dev.sh.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/weightscope/target}"
PY="${PY:-${WEIGHTSCOPE_CACHE:-$HOME/.cache/weightscope}/venv/bin/python}"
export WEIGHTSCOPE_BIN="${WEIGHTSCOPE_BIN:-$CARGO_TARGET_DIR/debug/weightscope}"

run() {
  local t=$SECONDS
  echo "-- $*"
  "$@"
  echo "-- ok ($((SECONDS - t)) s): $*"
}
run node bench/page_bench.mjs --smoke
run node bench/page_profile.mjs dist open tests/artifacts/page-bench-smoke/small.pth 5
run node bench/browser_stats_bench.mjs --smoke
run node bench/browser_export_bench.mjs --smoke rename
run node bench/browser_merge_bench.mjs --smoke
run "$PY" bench/inspect_bench.py --smoke
run "$PY" bench/export_bench.py --smoke
run "$PY" bench/open_safetensors.py --smoke
run env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE "$PY" bench/stats_bench.py --smoke
run bench/wasm_stats.sh --smoke
