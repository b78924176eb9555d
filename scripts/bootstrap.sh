#!/usr/bin/env bash
# bootstrap.sh — install exactly what weightscope's build and tests need, and only what is missing.
#
# Idempotent: every step checks the installed version first. Safe to run on every build/test.
#   - Rust target wasm32-unknown-unknown
#   - wasm-bindgen-cli at exactly the version pinned in Cargo.toml
#   - trunk 0.21.14
#   - npm binaryen@132 (wasm-opt), playwright-core and terser (scripts/post_build.mjs minifies the
#     app's JS glue with it) into .tools/ (git-ignored)
#   - Debian chromium + chromium-driver
#   - a Python venv with torch, torchvision, transformers, safetensors, numpy, pytest in
#     $WEIGHTSCOPE_CACHE (default ~/.cache/weightscope), outside the checkout
#   - maturin (builds the CLI's Python wheel) in its own small venv, $WEIGHTSCOPE_CACHE/build-venv
# Set WEIGHTSCOPE_SKIP_PY=1 to skip both Python venvs (serve command does not need them), or
# WEIGHTSCOPE_SKIP_TORCH=1 to skip only the torch venv (the wheel command needs just maturin).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TOOLS="$ROOT/.tools"
CACHE="${WEIGHTSCOPE_CACHE:-$HOME/.cache/weightscope}"
export PATH="$HOME/.cargo/bin:$PATH"

TRUNK_VERSION=0.21.14
BINARYEN_VERSION=132.0.0
PLAYWRIGHT_VERSION=1.65.1
TERSER_VERSION=5.51.4
TORCH_VERSION=2.15.0
MATURIN_VERSION=1.16.0
WB_VERSION=$(sed -n 's/^wasm-bindgen *= *"=\([0-9.]*\)".*/\1/p' "$ROOT/Cargo.toml" | head -n1)
[ -n "$WB_VERSION" ] || { echo "bootstrap: no exact wasm-bindgen pin in Cargo.toml" >&2; exit 1; }

log() { printf '[bootstrap] %s\n' "$*" >&2; }

# --- Rust target -------------------------------------------------------------------------
if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  log "adding rust target wasm32-unknown-unknown"
  rustup target add wasm32-unknown-unknown
fi

# --- wasm-bindgen-cli --------------------------------------------------------------------
if [ "$(wasm-bindgen --version 2>/dev/null | awk '{print $2}')" != "$WB_VERSION" ]; then
  log "installing wasm-bindgen-cli $WB_VERSION (takes ~8 min)"
  # no --locked: one locked dependency is missing from the registry
  cargo install wasm-bindgen-cli --version "$WB_VERSION" --force
fi

# --- trunk -------------------------------------------------------------------------------
if [ "$(trunk --version 2>/dev/null | awk '{print $2}')" != "$TRUNK_VERSION" ]; then
  log "installing trunk $TRUNK_VERSION (takes ~10 min)"
  cargo install trunk --version "$TRUNK_VERSION" --locked --force
fi

# --- npm tools into .tools/ ------------------------------------------------------------
npm_version() { node -p "require('$TOOLS/node_modules/$1/package.json').version" 2>/dev/null || true; }
if [ "$(npm_version binaryen)" != "$BINARYEN_VERSION" ] || [ "$(npm_version playwright-core)" != "$PLAYWRIGHT_VERSION" ] \
  || [ "$(npm_version terser)" != "$TERSER_VERSION" ]; then
  log "installing npm binaryen@$BINARYEN_VERSION playwright-core@$PLAYWRIGHT_VERSION terser@$TERSER_VERSION into .tools/"
  mkdir -p "$TOOLS"
  [ -f "$TOOLS/package.json" ] || echo '{"name":"weightscope-tools","private":true}' > "$TOOLS/package.json"
  npm install --prefix "$TOOLS" --no-audit --no-fund --save-exact \
    "binaryen@$BINARYEN_VERSION" "playwright-core@$PLAYWRIGHT_VERSION" "terser@$TERSER_VERSION" >&2
fi

# --- chromium ----------------------------------------------------------------------------
if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then
  log "installing Debian chromium + chromium-driver"
  export DEBIAN_FRONTEND=noninteractive
  SUDO=""
  [ "$(id -u)" = 0 ] || SUDO="sudo -E"
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq chromium chromium-driver >&2
fi

# --- Python venv with real torch --------------------------------------------------------
if [ "${WEIGHTSCOPE_SKIP_PY:-0}" != "1" ] && [ "${WEIGHTSCOPE_SKIP_TORCH:-0}" != "1" ]; then
  PY="$CACHE/venv/bin/python"
  want="$TORCH_VERSION"
  have=$("$PY" -c 'import torch, torchvision, transformers, safetensors, numpy, pytest; print(torch.__version__.split("+")[0])' 2>/dev/null || true)
  if [ "$have" != "$want" ]; then
    log "creating venv with torch $want in $CACHE/venv (≈5 GB download)"
    mkdir -p "$CACHE"
    [ -x "$PY" ] || python3 -m venv "$CACHE/venv"
    "$PY" -m pip install -q --upgrade pip >&2
    "$PY" -m pip install -q "torch==$want" torchvision transformers safetensors numpy pytest >&2
  fi
fi
# --- maturin (the CLI's Python wheel) in its own venv --------------------------------------
if [ "${WEIGHTSCOPE_SKIP_PY:-0}" != "1" ]; then
  BV="$CACHE/build-venv"
  if [ "$("$BV/bin/maturin" --version 2>/dev/null | awk '{print $2}')" != "$MATURIN_VERSION" ]; then
    log "installing maturin $MATURIN_VERSION into $BV"
    mkdir -p "$CACHE"
    [ -x "$BV/bin/python" ] || python3 -m venv "$BV"
    "$BV/bin/python" -m pip install -q "maturin==$MATURIN_VERSION" >&2
  fi
fi
log "ok"
