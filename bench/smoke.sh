#!/usr/bin/env bash
# smoke.sh — every browser benchmark once on a tiny input (same code path, same checks), so a
# benchmark that breaks fails the test command; the full runs stay manual (see BENCHMARKS.md).
# Needs dist/ (trunk build --release), the torch venv and the debug CLI (cargo test builds it).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
node bench/page_bench.mjs --smoke
node bench/browser_stats_bench.mjs --smoke
node bench/browser_export_bench.mjs --smoke rename
