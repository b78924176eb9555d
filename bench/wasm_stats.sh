#!/usr/bin/env bash
# Benchmark: the statistics engine as wasm in a dedicated worker in headless Chromium,
# on 256 MiB of float32 and bfloat16, from wasm memory and streamed from a Blob. Release build.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/weightscope/target}"
export PATH="$HOME/.cargo/bin:$PATH"
export CHROMEDRIVER="${CHROMEDRIVER:-/usr/bin/chromedriver}"
export WASM_BINDGEN_TEST_TIMEOUT=900
cargo test --release --target wasm32-unknown-unknown --test wasm_stats_bench -- --nocapture 2>&1 | grep -E "wasm-stats|test result|panicked|error"
