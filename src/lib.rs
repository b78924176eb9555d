//! weightscope core: read PyTorch / safetensors checkpoints without executing pickle code,
//! compute tensor statistics, and plan edits.
//!
//! Data flows one way: a random-access [`format::Source`] → a format reader → a
//! [`format::Checkpoint`] index → (UI signals | CLI output). Tensor bytes are read on demand.
//! Nothing in `format`, `stats` or `edit` touches the browser; `worker` and `ui` do.

pub mod display;
pub mod edit;
pub mod export;
pub mod format;
pub mod stats;

pub mod worker;

pub mod ui;

#[cfg(not(target_arch = "wasm32"))]
pub mod cli;
