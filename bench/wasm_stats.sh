#!/usr/bin/env bash
# Benchmark: the statistics engine as wasm in a dedicated worker in headless Chromium,
# on 256 MiB of float32 and bfloat16, from wasm memory and streamed from a Blob. Built as the
# shipped worker is (profile release-worker).
#   bench/wasm_stats.sh           the full run (results in BENCHMARKS.md)
#   bench/wasm_stats.sh --smoke   1 MiB inputs, debug build: the same code and checks, for CI
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/weightscope/target}"
export PATH="$HOME/.cargo/bin:$PATH"
export CHROMEDRIVER="${CHROMEDRIVER:-/usr/bin/chromedriver}"
export WASM_BINDGEN_TEST_TIMEOUT=900
# the worker's own profile (Cargo.toml: opt-level "z", kernels in wasm SIMD): what the page runs
PROFILE=(--profile release-worker)
if [ "${1:-}" = "--smoke" ]; then
  export WS_BENCH_SMOKE=1
  PROFILE=()
fi
out=$(cargo test "${PROFILE[@]}" --target wasm32-unknown-unknown --test wasm_stats_bench -- --nocapture 2>&1) || {
  echo "$out" | tail -40
  exit 1
}
echo "$out" | grep -E "wasm-stats|test result|panicked|error"
# every benchmark printed its line (a bench that stops printing fails too)
[ "$(echo "$out" | grep -c 'wasm-stats ')" -ge 4 ] || { echo "wasm_stats: missing result lines" >&2; exit 1; }
