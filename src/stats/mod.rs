//! Streaming statistics and histograms of tensors. Pure Rust, no browser APIs, no threads
//! required: the same code runs natively and in the wasm worker on Blob chunks.
//!
//! # API
//! - [`tensor_stats`]`(dtype, numel, &StatsOptions, replay)` → [`TensorStats`]: one tensor, whose
//!   bytes (row-major little-endian, any chunking) `replay` streams into a sink; `replay` may be
//!   called twice. [`tensor_stats_with_progress`] adds a per-chunk byte callback that can cancel.
//! - [`checkpoint_stats`]`(ckpt, sources, opts, select, progress, cache)`: every selected tensor of
//!   an opened checkpoint, lazily, reporting `(bytes done, bytes total)`, cancellable, results kept
//!   in a [`StatsCache`] keyed by (tensor index, bins) so nothing is computed twice.
//! - [`TensorStats`] serialises with serde (`Option` → `null`).
//!
//! # What is computed
//! `count` (all values), then over the finite values: min, max, mean, population std, L2 norm,
//! abs-max, the number of zeros (±0), and separately the NaN, +inf and −inf counts; a histogram
//! of `bins` bins (default 64, at most 1024) identical to `numpy.histogram(x, bins, range=(min,
//! max))` ([`histogram`]; the UI's log-count view uses [`Histogram::log_counts`]); quantiles p1 …
//! p99, exact (numpy `linear`) for tensors of at most `quantile_exact_limit` values (default
//! 16 Mi), else from a 4096-bin sketch with error bound one sketch bin ([`quantile`]).
//!
//! # Numerics and passes
//! f64 accumulation; per block of ≤ 4096 values a two-pass mean/M2, combined across blocks with
//! Chan et al.'s update ([`moments`]). min/max must be known before histogramming: small tensors
//! keep their finite values (within the exact budget) and are read once; larger ones are read
//! twice (moments, then histogram + sketch) ([`engine`]).
//!
//! # dtypes
//! Every dtype the readers produce ([`decode`]): float64/32/16, bfloat16, the float8 family,
//! float4_e2m1fn_x2 (both nibbles), complex (magnitude + real/imag summaries), signed and
//! unsigned ints, bool (0/1), quantized (integer codes), bits* (unsigned codes).

pub mod decode;
pub mod engine;
pub mod histogram;
pub mod moments;
pub mod patterns;
pub mod quantile;
pub mod run;

pub use engine::{
    tensor_stats, tensor_stats_with_progress, ComplexParts, PartStats, Replay, StatsOptions,
    TensorStats, BLOCK, DEFAULT_EXACT_LIMIT, DEFAULT_SKETCH_BINS,
};
pub use histogram::{Histogram, DEFAULT_BINS, MAX_BINS};
pub use quantile::Quantiles;
pub use run::{checkpoint_stats, passes_needed, Completion, StatsCache};
