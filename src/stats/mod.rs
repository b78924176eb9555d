//! Streaming statistics and histograms of tensors. Pure Rust, no browser APIs, no threads
//! required: the same code runs natively and in the wasm worker on Blob chunks.
//!
//! # API
//! - [`tensor_stats`]`(StatsInput, &StatsOptions, replay, on_bytes)` → [`TensorStats`]: one tensor,
//!   whose bytes (row-major little-endian, any chunking) `replay` streams into a sink; `replay`
//!   may be called twice; `on_bytes` is told each chunk's size and can cancel.
//! - [`checkpoint_stats`]`(ckpt, sources, opts, select, progress, cache)`: every selected tensor of
//!   an opened checkpoint, lazily, reporting `(bytes done, bytes total)`, cancellable, results kept
//!   in a [`StatsCache`] keyed by (tensor index, bins) so nothing is computed twice.
//! - [`trend`]: statistics of every tensor across the checkpoints of a training run, with flags.
//! - [`TensorStats`] serialises with serde (`Option` → `null`).
//!
//! # What is computed
//! `count` (all values), then over the finite values: min, max, mean, population std, L2 norm,
//! abs-max, the number of zeros (±0), and separately the NaN, +inf and −inf counts; a histogram
//! of `bins` bins (default 64, at most 1024) identical to `numpy.histogram(x, bins, range=(min,
//! max))` on float64 ([`histogram`]; a log-count view uses [`Histogram::log_counts`] /
//! [`Histogram::max_count`]); quantiles p1, p5, p25, p50, p75, p95, p99 ([`quantile`]):
//! - exact (numpy `linear`, bit for bit) for 8/16-bit dtypes at any size and for other tensors of
//!   at most `quantile_exact_limit` values (default 16 Mi);
//! - beyond that, from a sketch grid of ≥ 4096 bins over [min, max]: `quantiles_exact = false`
//!   and `quantile_error_bound` = one grid bin, (max − min)/grid bins (+ a few ulps).
//!
//! # Numerics
//! f64 accumulation everywhere. Streaming dtypes: per block of 4096 values a two-pass mean/M2
//! (sum, then Σ(x − mean_block)²), blocks combined with Chan, Golub & LeVeque's pairwise update;
//! the mean itself is the Neumaier-compensated sum of block sums / n ([`moments`]). 8/16-bit
//! dtypes: compensated sums over the ≤ 65536 distinct values weighted by their counts
//! ([`patterns`]). Both are far inside 1e-6 relative of torch's float64 results (checked on 10⁸
//! float16 values by `bench/stats_bench.py`).
//!
//! # Passes and memory
//! min/max must be known before histogramming: 8/16-bit dtypes need one pass (pattern counts);
//! others keep their finite values when within the exact budget (one pass), else are read twice
//! ([`engine`]). [`checkpoint_stats`] reports progress in bytes of those passes.
//!
//! # dtypes
//! Every dtype the readers produce ([`crate::format::element`]): float64/32/16, bfloat16, the float8 family
//! (e4m3fn, e5m2, e4m3fnuz, e5m2fnuz, e8m0fnu, with their NaN/inf conventions), float4_e2m1fn_x2
//! (both nibbles), complex (magnitude + real/imaginary summaries), signed and unsigned ints, bool
//! (0/1), quantized (integer codes; dequantized `(q − zp)·scale` with [`StatsInput::dequant`] /
//! per-tensor parameters in [`checkpoint_stats`]), bits* (unsigned codes).

pub mod diff;
pub mod engine;
pub mod expanded;
pub mod fused;
pub mod heatmap;
pub mod histogram;
pub mod moments;
pub mod patterns;
pub mod quantile;
pub mod report;
pub mod run;
#[cfg(target_arch = "wasm32")]
mod simd;
pub mod trend;

pub use engine::{
    no_progress, tensor_stats, ComplexParts, Dequant, Replay, StatsInput, StatsOptions,
    TensorStats, ValueSummary, BLOCK, DEFAULT_EXACT_LIMIT, DEFAULT_SKETCH_BINS,
};
pub use histogram::{Histogram, DEFAULT_BINS, MAX_BINS};
pub use quantile::Quantiles;
pub use run::{checkpoint_stats, planned_passes, Completion, StatsCache};
