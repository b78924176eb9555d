//! weightscope core: read PyTorch / safetensors checkpoints without executing pickle code,
//! compute tensor statistics, and plan edits.
//!
//! Data flows one way: a random-access [`format::Source`] → a format reader → a
//! [`format::Checkpoint`] index → (UI signals | CLI output). Tensor bytes are read on demand.
//! Layers, bottom up (a module names only layers below it): `format` < `display` < `stats` <
//! `edit` < `export` < `worker` | `cli` < `ui` (see ARCHITECTURE.md). Nothing below `worker`
//! touches the browser. [`order`] (shared sorts) is below every layer.

pub mod display;
pub mod edit;
pub mod export;
pub mod format;
pub mod order;
pub mod stats;

pub mod worker;

pub mod ui;

#[cfg(not(target_arch = "wasm32"))]
pub mod cli;

/// The allocator of the page's and the worker's wasm: talc instead of Rust's default dlmalloc
/// (an index of 50,000 tensors makes about a million small allocations in the worker's parse and
/// as many again in the page's decode and tree; BENCHMARKS.md has the measurements).
#[cfg(target_arch = "wasm32")]
#[global_allocator]
static ALLOCATOR: talc::wasm::WasmDynamicTalc = talc::wasm::new_wasm_dynamic_allocator();
