//! Leptos components that render signals.
//!
//! - [`model`]: the page state and how worker answers change it (tested natively).
//! - `worker_client` (wasm32): spawns the reader worker, queues until its handshake, restarts it
//!   after a crash.
//! - `app` (wasm32): the components: drop zone covering the window, file picker, progress,
//!   error panel, summary card. Stable `data-testid` hooks for the end-to-end tests.

pub mod model;
pub mod tree;

#[cfg(target_arch = "wasm32")]
pub mod app;
#[cfg(target_arch = "wasm32")]
pub mod worker_client;

#[cfg(target_arch = "wasm32")]
pub use app::start;
