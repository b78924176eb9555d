//! The Web Worker side: the only code that touches Blob / FileReaderSync.
//!
//! - [`protocol`]: the page ↔ worker messages (pure serde, tested natively).
//! - [`session`]: request handling over any [`crate::format::Source`] (tested natively).
//! - [`trend`]: the training-run view's requests (open a run, compute one step; tested natively).
//! - [`ab`]: the A/B view of one tensor (histograms of A, B and a − b; tested natively).
//! - [`window`]: the value viewer's windows of a tensor (pure index math, tested natively).
//! - [`merge`]: the Merge tab's requests (open the inputs, preview, export; tested natively).
//! - `blob` (wasm32): [`crate::format::Source`] over a browser `Blob` via `FileReaderSync`.
//! - `perf` (wasm32): user-timing marks for the page benchmark.
//! - `service` (wasm32): the worker's entry point: message loop and ready handshake.

pub mod ab;
pub mod edit;
pub mod merge;
pub mod protocol;
pub mod session;
pub mod trend;
pub mod values;
pub mod window;
pub mod wire;

#[cfg(target_arch = "wasm32")]
pub mod blob;
#[cfg(target_arch = "wasm32")]
pub mod disk;
#[cfg(target_arch = "wasm32")]
pub mod export;
#[cfg(target_arch = "wasm32")]
pub mod perf;
#[cfg(target_arch = "wasm32")]
pub mod service;

#[cfg(target_arch = "wasm32")]
pub use service::start;
