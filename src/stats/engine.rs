//! One tensor's statistics from a replayable byte stream ([`tensor_stats`]).
//!
//! Contract: `replay(sink)` streams the tensor's bytes (row-major, little-endian, any chunking)
//! into `sink`; the engine calls it once or twice:
//! - **pass 1** decodes block by block (at most [`BLOCK`] elements, so every block is L1/L2
//!   resident) into moments ([`super::moments`]); when the tensor has at most
//!   `quantile_exact_limit` values, it also keeps the finite values (as f32 for dtypes that f32
//!   holds exactly, else f64) — then the histogram and exact quantiles come from memory and the
//!   bytes are read **once**;
//! - **pass 2** (only for larger tensors with at least one finite value) replays the bytes to
//!   count the numpy histogram over the now-known `[min, max]` and the quantile sketch grid.
//!   So a tensor is read at most twice, and memory stays bounded by the exact-quantile budget
//!   (16 Mi values by default: 64 MiB as f32, 128 MiB as f64) plus one block.
//!
//! Complex tensors: every statistic, the histogram and the quantiles are of the magnitude |z|
//! (`hypot`, as numpy's `abs`); `complex` adds count / min / max / mean / std / zeros / NaN / inf
//! of the real and imaginary parts separately.

use super::decode::{magnitude, Decoder, Lane};
use super::histogram::{count_block, BinPlan, Counter, FineGrid, Histogram, DEFAULT_BINS};
use super::moments::{block_moments, Moments, Val};
use super::quantile::{self, Quantiles};
use crate::format::{DType, FormatError, Result};
use serde::{Deserialize, Serialize};

/// Elements decoded and reduced at a time.
pub const BLOCK: usize = 4096;

/// Default `quantile_exact_limit`: 16 Mi values.
pub const DEFAULT_EXACT_LIMIT: u64 = 16 << 20;

/// Default number of bins of the quantile sketch grid.
pub const DEFAULT_SKETCH_BINS: usize = 4096;

/// What to compute.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatsOptions {
    /// Histogram bins (1..=1024; default 64).
    pub bins: usize,
    /// Tensors with at most this many values get exact quantiles from one read; larger ones are
    /// read twice and get sketched quantiles.
    pub quantile_exact_limit: u64,
    /// Bins of the quantile sketch grid (error bound = (max − min) / sketch_bins).
    pub sketch_bins: usize,
    /// Bytes per read when streaming from a checkpoint.
    pub chunk: usize,
}

impl Default for StatsOptions {
    fn default() -> Self {
        StatsOptions {
            bins: DEFAULT_BINS,
            quantile_exact_limit: DEFAULT_EXACT_LIMIT,
            sketch_bins: DEFAULT_SKETCH_BINS,
            chunk: crate::format::data::DEFAULT_CHUNK,
        }
    }
}

/// Summary of one real component (the real or imaginary parts of a complex tensor).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PartStats {
    pub count: u64,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub mean: Option<f64>,
    pub std: Option<f64>,
    pub zeros: u64,
    pub nan: u64,
    pub posinf: u64,
    pub neginf: u64,
}

impl PartStats {
    fn from(m: &Moments) -> PartStats {
        PartStats {
            count: m.count,
            min: m.min(),
            max: m.max(),
            mean: m.mean(),
            std: m.std(),
            zeros: m.zeros,
            nan: m.nan,
            posinf: m.posinf,
            neginf: m.neginf,
        }
    }
}

/// Real and imaginary summaries of a complex tensor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ComplexParts {
    pub real: PartStats,
    pub imag: PartStats,
}

/// Statistics of one tensor. min/max/mean/std/l2/absmax, the histogram and the quantiles are of
/// the finite values (None / empty when there are none); `count` is every value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TensorStats {
    pub count: u64,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub mean: Option<f64>,
    /// Population standard deviation (ddof = 0).
    pub std: Option<f64>,
    /// sqrt(Σ x²).
    pub l2: Option<f64>,
    pub absmax: Option<f64>,
    pub zeros: u64,
    pub nan: u64,
    pub posinf: u64,
    pub neginf: u64,
    pub histogram: Histogram,
    pub quantiles: Option<Quantiles>,
    /// Quantiles are numpy's exactly (else sketched).
    pub quantiles_exact: bool,
    /// Largest possible |reported − numpy| of any quantile (0 when exact).
    pub quantile_error_bound: f64,
    /// Real / imaginary summaries for complex dtypes.
    pub complex: Option<ComplexParts>,
    /// How many times the bytes were streamed (1 or 2).
    pub passes: u32,
}

impl TensorStats {
    /// Number of finite values.
    pub fn finite(&self) -> u64 {
        self.count - self.nan - self.posinf - self.neginf
    }
}

/// Streams a tensor's bytes into a sink; callable more than once.
pub type Replay<'a> = dyn FnMut(&mut dyn FnMut(&[u8]) -> Result<()>) -> Result<()> + 'a;

/// Statistics of a tensor of `numel` elements of `dtype` whose bytes `replay` streams.
pub fn tensor_stats(
    dtype: DType,
    numel: u64,
    opts: &StatsOptions,
    replay: &mut Replay<'_>,
) -> Result<TensorStats> {
    tensor_stats_with_progress(dtype, numel, opts, replay, &mut |_| true)
        .map(|s| s.expect("never cancelled"))
}

/// As [`tensor_stats`], calling `on_bytes(n)` after every chunk of `n` bytes consumed (in either
/// pass); returning false cancels, and the result is `Ok(None)`.
pub fn tensor_stats_with_progress(
    dtype: DType,
    numel: u64,
    opts: &StatsOptions,
    replay: &mut Replay<'_>,
    on_bytes: &mut dyn FnMut(u64) -> bool,
) -> Result<Option<TensorStats>> {
    let dec = Decoder::new(dtype);
    let values = numel.saturating_mul(dec.per_unit() as u64);
    let collect = values <= opts.quantile_exact_limit;
    let mut d = Driver {
        unit: dec.unit(),
        block_bytes: BLOCK * dec.unit(),
        collect,
        opts,
        on_bytes,
    };
    match dec.lane() {
        Lane::F32 => {
            let out = d.run::<f32>(replay, &mut |b, out, _| dec.decode_f32(b, out))?;
            Ok(out.map(|c| c.finish(None)))
        }
        Lane::F64 => {
            let out = d.run::<f64>(replay, &mut |b, out, _| dec.decode_f64(b, out))?;
            Ok(out.map(|c| c.finish(None)))
        }
        Lane::Complex => {
            let (mut re, mut im) = (Vec::new(), Vec::new());
            let (mut mre, mut mim) = (Moments::default(), Moments::default());
            let mut scratch = Vec::new();
            let out = d.run::<f64>(replay, &mut |b, out, first| {
                re.clear();
                im.clear();
                dec.decode_complex(b, &mut re, &mut im);
                out.extend(re.iter().zip(&im).map(|(&r, &i)| magnitude(r, i)));
                if first {
                    mre.merge(&block_moments(&re, &mut scratch));
                    mim.merge(&block_moments(&im, &mut scratch));
                }
            })?;
            let parts = ComplexParts {
                real: PartStats::from(&mre),
                imag: PartStats::from(&mim),
            };
            Ok(out.map(|c| c.finish(Some(parts))))
        }
    }
}

/// What the passes produce before assembly.
struct Core {
    mom: Moments,
    histogram: Histogram,
    quantiles: Option<Quantiles>,
    exact: bool,
    bound: f64,
    passes: u32,
}

impl Core {
    fn finish(self, complex: Option<ComplexParts>) -> TensorStats {
        let m = &self.mom;
        TensorStats {
            count: m.count,
            min: m.min(),
            max: m.max(),
            mean: m.mean(),
            std: m.std(),
            l2: m.l2(),
            absmax: m.absmax(),
            zeros: m.zeros,
            nan: m.nan,
            posinf: m.posinf,
            neginf: m.neginf,
            histogram: self.histogram,
            quantiles: self.quantiles,
            quantiles_exact: self.exact,
            quantile_error_bound: self.bound,
            complex,
            passes: self.passes,
        }
    }
}

struct Driver<'o, 'p> {
    unit: usize,
    block_bytes: usize,
    collect: bool,
    opts: &'o StatsOptions,
    on_bytes: &'p mut dyn FnMut(u64) -> bool,
}

/// Split an arbitrary byte chunk into whole-unit pieces of at most `max` bytes, carrying a
/// partial unit over to the next chunk.
fn split_units(
    carry: &mut Vec<u8>,
    bytes: &[u8],
    unit: usize,
    max: usize,
    f: &mut dyn FnMut(&[u8]),
) {
    let mut b = bytes;
    if !carry.is_empty() {
        let take = (unit - carry.len()).min(b.len());
        carry.extend_from_slice(&b[..take]);
        b = &b[take..];
        if carry.len() < unit {
            return;
        }
        let whole = std::mem::take(carry);
        f(&whole);
        *carry = whole;
        carry.clear();
    }
    let whole = b.len() / unit * unit;
    for c in b[..whole].chunks(max) {
        f(c);
    }
    carry.extend_from_slice(&b[whole..]);
}

impl Driver<'_, '_> {
    /// Stream once through `replay`, decoding each piece with `decode` and handing the values to
    /// `per_block`. Returns false if cancelled.
    fn pass<T: Val>(
        &mut self,
        replay: &mut Replay<'_>,
        decode: &mut dyn FnMut(&[u8], &mut Vec<T>, bool),
        first: bool,
        per_block: &mut dyn FnMut(&[T]),
    ) -> Result<bool> {
        let mut buf: Vec<T> = Vec::with_capacity(BLOCK * 4);
        let mut carry = Vec::new();
        let mut cancelled = false;
        let unit = self.unit;
        let max = self.block_bytes;
        let on_bytes = &mut *self.on_bytes;
        let r = replay(&mut |bytes: &[u8]| {
            split_units(&mut carry, bytes, unit, max, &mut |piece| {
                buf.clear();
                decode(piece, &mut buf, first);
                per_block(&buf);
            });
            if !on_bytes(bytes.len() as u64) {
                cancelled = true;
                return Err(FormatError::new("statistics cancelled"));
            }
            Ok(())
        });
        if cancelled {
            return Ok(false);
        }
        r?;
        if !carry.is_empty() {
            return Err(FormatError::new(format!(
                "tensor bytes end inside an element ({} stray bytes)",
                carry.len()
            )));
        }
        Ok(true)
    }

    fn run<T: Val>(
        &mut self,
        replay: &mut Replay<'_>,
        decode: &mut dyn FnMut(&[u8], &mut Vec<T>, bool),
    ) -> Result<Option<Core>> {
        // Pass 1: moments (+ the finite values when within the exact budget).
        let mut mom = Moments::default();
        let mut scratch: Vec<T> = Vec::new();
        let mut kept: Vec<T> = Vec::new();
        let collect = self.collect;
        let ok = self.pass(replay, decode, true, &mut |xs: &[T]| {
            let m = block_moments(xs, &mut scratch);
            if collect {
                if m.n == m.count {
                    kept.extend_from_slice(xs);
                } else {
                    kept.extend(xs.iter().filter(|x| x.is_finite_val()));
                }
            }
            mom.merge(&m);
        })?;
        if !ok {
            return Ok(None);
        }
        let mut core = Core {
            mom,
            histogram: Histogram::default(),
            quantiles: None,
            exact: true,
            bound: 0.0,
            passes: 1,
        };
        if mom.n == 0 {
            return Ok(Some(core));
        }
        let plan = BinPlan::new(mom.min, mom.max, self.opts.bins);
        let mut coarse = Counter::new(plan.n);
        if collect {
            count_block(&kept, &plan, &mut coarse, None, false);
            core.quantiles = quantile::exact(&mut kept);
        } else {
            // Pass 2: numpy histogram + sketch grid.
            let grid = FineGrid::new(mom.min, mom.max, self.opts.sketch_bins);
            let mut fine = Counter::new(grid.m);
            let filter = mom.n != mom.count;
            let ok = self.pass(replay, decode, false, &mut |xs: &[T]| {
                count_block(xs, &plan, &mut coarse, Some((&grid, &mut fine)), filter);
            })?;
            if !ok {
                return Ok(None);
            }
            core.passes = 2;
            let fine = fine.finish();
            if let Some((q, b)) = quantile::sketch(&grid, &fine) {
                core.quantiles = Some(q);
                core.bound = b;
                core.exact = b == 0.0;
            }
        }
        core.histogram = Histogram {
            edges: plan.edges,
            counts: coarse.finish(),
        };
        Ok(Some(core))
    }
}
