#!/usr/bin/env bash
# dev.sh — weightscope's two commands.
#
#   scripts/dev.sh serve   bootstrap the tools, build the page in release mode, serve it on
#                          http://127.0.0.1:8080 (PORT=... to change)
#   scripts/dev.sh test    bootstrap the tools (incl. the torch venv), then run every check:
#                          fmt, clippy (native + wasm32), torch fixtures, native tests, wasm tests
#                          in headless Chromium, trunk release build, end-to-end browser tests.
#                          Exits non-zero on the first failure; prints each runner's closing
#                          line and the gzip size of the shipped wasm/JS.
#   scripts/dev.sh dist    build the page into dist/: a static folder with relative links, to
#                          host anywhere (also under a sub-path); see README "Hosting the page"
#   scripts/dev.sh wheel   build the CLI's Python wheel (release) into $CARGO_TARGET_DIR/wheels
#
# Build outputs go to CARGO_TARGET_DIR (default ~/.cache/weightscope/target, shared by every
# clone so a fresh checkout does not recompile the world).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

CACHE="${WEIGHTSCOPE_CACHE:-$HOME/.cache/weightscope}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$CACHE/target}"
export PATH="$ROOT/.tools/node_modules/.bin:$HOME/.cargo/bin:$PATH"   # wasm-opt (npm binaryen) first
export TRUNK_SKIP_VERSION_CHECK=true
export CHROMEDRIVER="${CHROMEDRIVER:-/usr/bin/chromedriver}"
export WASM_BINDGEN_TEST_TIMEOUT="${WASM_BINDGEN_TEST_TIMEOUT:-180}"
PY="$CACHE/venv/bin/python"
LOGS="$ROOT/tests/artifacts/logs"

usage() { echo "usage: scripts/dev.sh serve|test|dist|wheel" >&2; exit 1; }

SUMMARY=()
T0=$SECONDS

# step NAME CMD... — run CMD, tee its output to a log, record time and closing lines.
step() {
  local name=$1; shift
  local log="$LOGS/$(echo "$name" | tr -c 'a-zA-Z0-9\n' '-').log"
  local t=$SECONDS rc=0
  printf '\n\033[1m== %s\033[0m  (%s)\n' "$name" "$*"
  "$@" 2>&1 | tee "$log" || rc=${PIPESTATUS[0]}
  local closing
  closing=$(grep -E '^test result:|^ℹ (tests|pass|fail) |^[0-9]+ passed|^=+ [0-9]+ passed' "$log" | sed 's/^/      /' || true)
  SUMMARY+=("$(printf '%-4s %-44s %4ss' "$([ $rc = 0 ] && echo ok || echo FAIL)" "$name" $((SECONDS - t)))")
  [ -n "$closing" ] && SUMMARY+=("$closing")
  if [ $rc != 0 ]; then
    finish "FAILED: $name (exit $rc; log: ${log#$ROOT/})"
    exit 1
  fi
}

finish() {
  printf '\n\033[1m== summary\033[0m (%ss total)\n' $((SECONDS - T0))
  printf '%s\n' "${SUMMARY[@]}"
  printf '%s\n' "$1"
}

gzip_sizes() {
  local total=0 f n raw
  printf '%-40s %10s %10s\n' "shipped file" "bytes" "gzip -9"
  for f in dist/*.wasm dist/*.js; do
    raw=$(wc -c < "$f"); n=$(gzip -9 -c "$f" | wc -c); total=$((total + n))
    printf '%-40s %10d %10d\n' "${f#dist/}" "$raw" "$n"
  done
  printf '%-40s %10s %10d\n' "total (wasm + js)" "" "$total"
  # the issue's goal, 700 KiB, is the limit (697.4 KiB on 2026-12-02, thirteenth session;
  # 695.8 KiB in the twelfth: the worker
  # built at opt-level "z" with SIMD statistics kernels, wasm-opt --low-memory-unused, the pickle FLOAT parser from
  # lexical-parse-float, the tree's regex search answered by the worker, the JS glue minified by
  # terser; earlier cuts in BENCHMARKS.md)
  local limit=$((${GZIP_LIMIT_KIB:-700} * 1024))
  if [ "$total" -gt "$limit" ]; then
    echo "shipped wasm + js: $total bytes gzip -9, above the limit of $limit" >&2
    return 1
  fi
}

case "${1:-}" in
  serve)
    WEIGHTSCOPE_SKIP_PY=1 "$ROOT/scripts/bootstrap.sh"
    trunk build --release
    exec node "$ROOT/scripts/static-server.mjs" "$ROOT/dist" "${PORT:-8080}"
    ;;
  dist)
    WEIGHTSCOPE_SKIP_PY=1 "$ROOT/scripts/bootstrap.sh"
    trunk build --release
    echo "dist/ is ready: copy it to any static host, at its root or under a sub-path (README: Hosting the page)"
    ;;
  wheel)
    WEIGHTSCOPE_SKIP_TORCH=1 "$ROOT/scripts/bootstrap.sh"
    "$ROOT/scripts/wheel.sh" build
    ;;
  test)
    mkdir -p "$LOGS"
    step "bootstrap" "$ROOT/scripts/bootstrap.sh"
    step "cargo fmt --check" cargo fmt --check
    step "clippy (native, all targets)" cargo clippy --all-targets -- -D warnings
    step "clippy (wasm32)" cargo clippy --target wasm32-unknown-unknown --bins --lib --tests -- -D warnings
    step "torch fixtures" "$PY" tests/fixtures/make_fixtures.py tests/fixtures/gen
    step "malformed corpus" "$PY" tests/corpus/make_malformed.py tests/corpus/gen/malformed
    step "hostile pickles" "$PY" tests/corpus/make_hostile.py tests/corpus/gen/hostile
    step "cargo test (native)" cargo test
    step "round trip (pytest, real torch)" env WEIGHTSCOPE_BIN="$CARGO_TARGET_DIR/debug/weightscope" "$PY" -m pytest -q -p no:cacheprovider tests/roundtrip
    step "merge bench (smoke)" env WEIGHTSCOPE_BIN="$CARGO_TARGET_DIR/debug/weightscope" "$PY" bench/merge_bench.py --smoke
    step "wheel (maturin, fresh venv, installed CLI)" "$ROOT/scripts/wheel.sh" check
    step "trend bench (smoke)" env WEIGHTSCOPE_RELEASE_BIN="$CARGO_TARGET_DIR/debug/weightscope" "$PY" bench/trend_bench.py --smoke
    step "cargo test (wasm32, headless Chromium)" cargo test --target wasm32-unknown-unknown --test web --test stats_raw
    step "trunk build --release" trunk build --release
    step "gzip sizes" gzip_sizes
    step "e2e (node --test, playwright-core)" node --test --test-reporter=spec tests/e2e/
    step "benchmarks (smoke)" bench/smoke.sh
    finish "ALL PASSED"
    ;;
  *) usage ;;
esac
