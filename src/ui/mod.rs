//! Leptos components that render signals.
//!
//! - [`model`]: the page state and how worker answers change it (tested natively).
//! - [`tree`]: the layer tree's model: folders, counts, natural order, search (tested natively).
//! - [`edited`]: the shown index: the checkpoint as it will be downloaded (or as read), its marks
//!   and header numbers (tested natively).
//! - `worker_client` (wasm32): spawns the reader worker, queues until its handshake, restarts it
//!   after a crash.
//! - `context` (wasm32): **the opened checkpoint shared with every panel**: `App` provides a
//!   `context::PageCheckpoint` (`use_context::<PageCheckpoint>()`): `send`, `new_id`, `listen` for
//!   answers (all through `hub`), `opened` (the index: entries, values, tree) and
//!   `selected` (the selected tensor's index). Panels for other tabs (Edit, Compare) use it.
//! - `app` (wasm32): the page: header with "Try a sample" and the file picker, summary header,
//!   tree | tabs (Inspector, Edit, Compare), overview, progress bar, error panels. Stable
//!   `data-testid` hooks for the end-to-end tests.
//! - `tree_view`, `inspector`, `overview`, `charts` (wasm32): the panels and canvas drawing.
//! - `hub` (wasm32): the one message hub: every request id and every answer's listeners.
//! - `key_search` (wasm32): the search the tree and the overview share (a regex search is the
//!   worker's, with the edit operations' engine).
//! - [`run_model`] / `run_view` (wasm32): the Run tab: a training run's checkpoints, a layer ×
//!   step heatmap, line charts, flags, CSV / JSON export.
//! - `edit_panel`, `compare_panel` (wasm32): the Edit and Compare tabs.
//! - [`table_model`] / `table_view` (wasm32): the tensor table beside the tree (Tree / Table).
//! - `value_viewer`, `heatmap_view`, `stats_notes`, `stats_export` (wasm32): the Inspector's
//!   value pages and 2-D planes, its heatmap with a colour scale, what its statistics cover, and
//!   the whole file's statistics as CSV / JSON.
//! - [`scale`] / `colour_scale` (wasm32): colour ramp, legend and axis labels of every chart.
//! - `action_bar` (wasm32): Undo / Redo / "N changes" / Download and the status line, always
//!   in view.
//! - `merge_panel` (wasm32): the Merge tab (its own worker; Cancel terminates it).
//! - `stats_pool` (wasm32): whole-file statistics on a pool of workers, cancelled by
//!   terminating them.
//! - `lazy` (wasm32): a part of the page built the first time it is shown (the tabs).

pub mod compare_model;
pub mod edited;
pub mod model;
pub mod run_model;
pub mod scale;
pub mod table_model;
pub mod tree;

#[cfg(target_arch = "wasm32")]
pub mod ab_view;
#[cfg(target_arch = "wasm32")]
pub mod action_bar;
#[cfg(target_arch = "wasm32")]
pub mod app;
#[cfg(target_arch = "wasm32")]
pub mod charts;
#[cfg(target_arch = "wasm32")]
pub mod colour_scale;
#[cfg(target_arch = "wasm32")]
pub mod compare_panel;
#[cfg(target_arch = "wasm32")]
pub mod context;
#[cfg(target_arch = "wasm32")]
pub mod disk_save;
#[cfg(target_arch = "wasm32")]
pub mod edit_panel;
#[cfg(target_arch = "wasm32")]
pub mod heatmap_view;
#[cfg(target_arch = "wasm32")]
pub mod hub;
#[cfg(target_arch = "wasm32")]
pub mod inspector;
#[cfg(target_arch = "wasm32")]
pub mod key_search;
#[cfg(target_arch = "wasm32")]
pub mod lazy;
#[cfg(target_arch = "wasm32")]
pub mod merge_panel;
#[cfg(target_arch = "wasm32")]
pub mod overview;
#[cfg(target_arch = "wasm32")]
pub mod run_view;
#[cfg(target_arch = "wasm32")]
pub mod stats_export;
#[cfg(target_arch = "wasm32")]
pub mod stats_notes;
#[cfg(target_arch = "wasm32")]
pub mod stats_pool;
#[cfg(target_arch = "wasm32")]
pub mod table_view;
#[cfg(target_arch = "wasm32")]
pub mod tree_view;
#[cfg(target_arch = "wasm32")]
pub mod value_viewer;
#[cfg(target_arch = "wasm32")]
pub mod widgets;
#[cfg(target_arch = "wasm32")]
pub mod worker_client;

#[cfg(target_arch = "wasm32")]
pub use app::start;
