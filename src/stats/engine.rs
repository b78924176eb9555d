//! One tensor's statistics from a replayable byte stream ([`tensor_stats`]).
//!
//! Contract: `replay(sink)` streams the tensor's bytes (row-major, little-endian, any chunking,
//! elements may straddle chunks) into `sink`; the engine calls it once or twice:
//! - **8- and 16-bit dtypes** (every 1-byte dtype; float16/bfloat16/int16/uint16 from 16 Ki
//!   elements): one pass counting bit patterns; everything, exact quantiles included, follows
//!   from the counts ([`super::patterns`]). Read **once**, at any size.
//! - **other dtypes, pass 1** decodes blocks of exactly [`BLOCK`] elements (block boundaries do
//!   not depend on the chunking, so results are bit-identical however the bytes arrive; float32
//!   and float64 blocks are used in place, without a copy) into moments ([`super::moments`]).
//!   When the tensor has at most `quantile_exact_limit` values it also keeps the finite values (as
//!   f32 for dtypes f32 holds exactly, else f64): the histogram and the exact quantiles then come
//!   from memory and the bytes are read **once**.
//! - **pass 2** (only for larger tensors with a finite value) replays the bytes to count the
//!   numpy histogram over the now-known `[min, max]` together with the quantile sketch grid
//!   ([`super::histogram::Binner`]). So a tensor is read at most twice, and memory stays bounded
//!   by the exact-quantile budget (16 Mi values by default: 64 MiB as f32, 128 MiB as f64) plus a
//!   block — this is the "two passes" choice: no tensor is ever buffered whole beyond the budget.
//!
//! Complex tensors: every statistic, the histogram and the quantiles are of the magnitude |z|
//! (`hypot` in f64, as numpy's `abs`); `complex` adds count / min / max / mean / std / zeros /
//! NaN / inf of the real and imaginary parts separately.
//!
//! With `moments_only` ([`StatsOptions`]) pass 1 keeps nothing and pass 2 never runs: one read,
//! no histogram, no quantiles (the training-run trend needs only the moments).
//!
//! No threads: the same code runs in the wasm worker. Natively the hot loops are also compiled
//! for AVX2 and chosen at run time (identical results).

use super::histogram::{Binner, Histogram, DEFAULT_BINS};
use super::moments::{block_moments, Moments, Val};
use super::patterns::{stats_from_patterns, PatternCounter};
use super::quantile::{self, Quantiles};
use crate::format::element::{magnitude, Decoder, Lane};
use crate::format::{DType, FormatError, Result};
use serde::{Deserialize, Serialize};

/// StatsInput decoded and reduced at a time.
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
    /// read twice and get sketched quantiles. (8/16-bit dtypes are always exact, in one read.)
    pub quantile_exact_limit: u64,
    /// Bins of the quantile sketch grid (error bound = (max − min) / sketch_bins).
    pub sketch_bins: usize,
    /// Bytes per read when streaming from a checkpoint.
    pub chunk: usize,
    /// Moments only (count, min, max, mean, std, L2, abs-max, zeros, NaN/±inf): every tensor is
    /// read once, nothing is buffered, and the histogram is empty and the quantiles absent except
    /// for 8/16-bit dtypes (whose pattern counts give them for free).
    #[serde(default)]
    pub moments_only: bool,
}

impl Default for StatsOptions {
    fn default() -> Self {
        StatsOptions {
            bins: DEFAULT_BINS,
            quantile_exact_limit: DEFAULT_EXACT_LIMIT,
            sketch_bins: DEFAULT_SKETCH_BINS,
            chunk: crate::format::data::DEFAULT_CHUNK,
            moments_only: false,
        }
    }
}

/// The summary every statistics row shares — a tensor's, a complex tensor's real or imaginary
/// part's, a row of the page's table: `count` is every value; min/max/mean/std are of the finite
/// values (None when there are none); `zeros`, `nan`, `posinf`, `neginf` count values.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct ValueSummary {
    pub count: u64,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub mean: Option<f64>,
    /// Population standard deviation (ddof = 0).
    pub std: Option<f64>,
    pub zeros: u64,
    pub nan: u64,
    pub posinf: u64,
    pub neginf: u64,
}

impl ValueSummary {
    /// The summary of the values `m` has seen.
    pub fn of(m: &Moments) -> ValueSummary {
        ValueSummary {
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

    /// Number of ±inf values.
    pub fn inf(&self) -> u64 {
        self.posinf + self.neginf
    }

    /// Number of NaN and ±inf values.
    pub fn nonfinite(&self) -> u64 {
        self.nan + self.inf()
    }

    /// Number of finite values.
    pub fn finite(&self) -> u64 {
        self.count - self.nonfinite()
    }

    /// Every count times `m` (saturating): the summary of `m` copies of the values.
    pub fn scale_counts(&mut self, m: u64) {
        for c in [
            &mut self.count,
            &mut self.zeros,
            &mut self.nan,
            &mut self.posinf,
            &mut self.neginf,
        ] {
            *c = c.saturating_mul(m);
        }
    }
}

/// Real and imaginary summaries of a complex tensor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ComplexParts {
    pub real: ValueSummary,
    pub imag: ValueSummary,
}

/// Statistics of one tensor. min/max/mean/std/l2/absmax, the histogram and the quantiles are of
/// the finite values (None / empty when there are none); `count` is every value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TensorStats {
    pub summary: ValueSummary,
    /// sqrt(Σ x²) over the finite values (0 when there are none).
    pub l2: f64,
    pub absmax: Option<f64>,
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
    /// Quantized tensor summarised by its dequantized values (else: integer codes).
    #[serde(default)]
    pub dequantized: bool,
}

/// Streams a tensor's bytes into a sink; callable more than once.
pub type Replay<'a> = dyn FnMut(&mut dyn FnMut(&[u8]) -> Result<()>) -> Result<()> + 'a;

/// Whether (and at what width) a dtype is summarised by counting its bit patterns
/// ([`super::patterns`]): every 1-byte dtype, and 2-byte ones once the tensor is big enough for
/// the 65536-entry table to pay off.
fn pattern_width(dec: &Decoder, numel: u64) -> Option<usize> {
    match (dec.lane(), dec.unit()) {
        (Lane::F32, 1) => Some(1),
        (Lane::F32, 2) if numel >= 16384 => Some(2),
        _ => None,
    }
}

/// What one statistics pass reads: `numel` elements of `dtype`. With `dequant`, a quantized
/// dtype's statistics are of the dequantized values `(code − zero_point) · scale` computed in
/// f64 (as numpy would on `int_repr()`), otherwise of the integer codes; `dequant` is ignored
/// for other dtypes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StatsInput {
    pub dtype: DType,
    pub numel: u64,
    pub dequant: Option<Dequant>,
}

impl StatsInput {
    /// `numel` elements of `dtype`, read as they are.
    pub fn new(dtype: DType, numel: u64) -> StatsInput {
        StatsInput {
            dtype,
            numel,
            dequant: None,
        }
    }

    /// How many times [`tensor_stats`] streams these elements (at most; a tensor without
    /// finite values skips the second pass).
    pub fn planned_passes(&self, opts: &StatsOptions) -> u64 {
        let dec = Decoder::new(self.dtype);
        if opts.moments_only
            || pattern_width(&dec, self.numel).is_some()
            || self.numel.saturating_mul(dec.per_unit() as u64) <= opts.quantile_exact_limit
        {
            1
        } else {
            2
        }
    }
}

/// A progress callback for [`tensor_stats`] that never cancels.
pub fn no_progress(_bytes: u64) -> bool {
    true
}

/// Per-tensor affine quantization parameters: value = (code − zero_point) · scale.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Dequant {
    pub scale: f64,
    pub zero_point: i64,
}

impl Dequant {
    #[inline]
    fn apply(&self, code: f64) -> f64 {
        (code - self.zero_point as f64) * self.scale
    }
}

/// Statistics of `el`, whose bytes (row-major, little-endian, any chunking) `replay` streams
/// into a sink; `replay` may be called twice ([`StatsInput::planned_passes`]). `on_bytes(n)` is
/// called after every chunk of `n` bytes consumed (in either pass); returning false cancels,
/// and the result is `Ok(None)` ([`no_progress`] never cancels).
pub fn tensor_stats(
    el: StatsInput,
    opts: &StatsOptions,
    replay: &mut Replay<'_>,
    on_bytes: &mut dyn FnMut(u64) -> bool,
) -> Result<Option<TensorStats>> {
    let StatsInput {
        dtype,
        numel,
        dequant,
    } = el;
    let dequant = dequant.filter(|_| dtype.kind() == crate::format::DKind::Quantized);
    let dec = Decoder::new(dtype);
    let values = numel.saturating_mul(dec.per_unit() as u64);
    let collect = !opts.moments_only && values <= opts.quantile_exact_limit;
    let mut d = Driver {
        unit: dec.unit(),
        native: matches!(
            (dtype, dec.lane()),
            (DType::F32, Lane::F32) | (DType::F64, Lane::F64)
        ),
        collect,
        values,
        opts,
        on_bytes,
    };
    if let Some(width) = pattern_width(&dec, numel) {
        let mut counter = PatternCounter::new(width);
        if !d.stream(replay, &mut |piece| counter.add(piece))? {
            return Ok(None);
        }
        let map = dequant.map(|q| move |v: f64| q.apply(v));
        let mut s = stats_from_patterns(
            &dec,
            &counter.finish(),
            opts.bins,
            map.as_ref().map(|f| f as &dyn Fn(f64) -> f64),
        );
        s.dequantized = dequant.is_some();
        return Ok(Some(s));
    }
    match dec.lane() {
        Lane::F32 => {
            let out = d.run::<f32>(replay, &mut |b, out, _| dec.decode_f32(b, out))?;
            Ok(out.map(|c| c.finish(None)))
        }
        Lane::F64 => {
            let out = d.run::<f64>(replay, &mut |b, out, _| {
                let start = out.len();
                dec.decode_f64(b, out);
                if let Some(q) = dequant {
                    out[start..].iter_mut().for_each(|v| *v = q.apply(*v));
                }
            })?;
            Ok(out.map(|c| {
                let mut s = c.finish(None);
                s.dequantized = dequant.is_some();
                s
            }))
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
                real: ValueSummary::of(&mre),
                imag: ValueSummary::of(&mim),
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
        TensorStats {
            histogram: self.histogram,
            quantiles: self.quantiles,
            quantiles_exact: self.exact,
            quantile_error_bound: self.bound,
            complex,
            passes: self.passes,
            ..TensorStats::of_moments(&self.mom)
        }
    }
}

impl TensorStats {
    /// The statistics the moments give (one pass; no histogram, no quantiles).
    pub fn of_moments(m: &Moments) -> TensorStats {
        TensorStats {
            summary: ValueSummary::of(m),
            l2: m.l2(),
            absmax: m.absmax(),
            histogram: Histogram::default(),
            quantiles: None,
            quantiles_exact: true,
            quantile_error_bound: 0.0,
            complex: None,
            passes: 1,
            dequantized: false,
        }
    }
}

/// Appends a piece's values to the buffer; the flag is true in pass 1.
type DecodeFn<'a, T> = dyn FnMut(&[u8], &mut Vec<T>, bool) + 'a;

struct Driver<'o, 'p> {
    unit: usize,
    /// The stored bytes are already the lane's values (float32 → f32, float64 → f64).
    native: bool,
    collect: bool,
    /// Expected number of values (elements × values per element).
    values: u64,
    opts: &'o StatsOptions,
    on_bytes: &'p mut dyn FnMut(u64) -> bool,
}

/// `bytes` as a slice of `T` (f32 or f64) when suitably aligned, on little-endian targets.
pub(crate) fn as_values<T: Val>(bytes: &[u8]) -> Option<&[T]> {
    if cfg!(target_endian = "big") || !bytes.len().is_multiple_of(std::mem::size_of::<T>()) {
        return None;
    }
    // SAFETY: T is f32 or f64 (the only `Val` impls): plain old data, every bit pattern valid;
    // align_to only yields the properly aligned middle part.
    let (head, vals, tail) = unsafe { bytes.align_to::<T>() };
    (head.is_empty() && tail.is_empty()).then_some(vals)
}

/// Split an arbitrary byte chunk into whole-unit pieces, carrying a partial unit over to the
/// next chunk.
fn split_units(carry: &mut Vec<u8>, bytes: &[u8], unit: usize, f: &mut dyn FnMut(&[u8])) {
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
    if whole > 0 {
        f(&b[..whole]);
    }
    carry.extend_from_slice(&b[whole..]);
}

impl Driver<'_, '_> {
    /// Stream once through `replay`, handing whole-unit pieces to `per_piece` and reporting
    /// progress. Returns false if cancelled.
    fn stream(
        &mut self,
        replay: &mut Replay<'_>,
        per_piece: &mut dyn FnMut(&[u8]),
    ) -> Result<bool> {
        let mut carry = Vec::new();
        let mut cancelled = false;
        let unit = self.unit;
        let on_bytes = &mut *self.on_bytes;
        let r = replay(&mut |bytes: &[u8]| {
            split_units(&mut carry, bytes, unit, per_piece);
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

    /// Stream once, decoding into blocks of exactly [`BLOCK`] units (the last one shorter) —
    /// whatever the chunking, so results are bit-identical between runs that chunk differently
    /// (CLI, worker, one or two passes) — and hand each block's values to `per_block`.
    fn pass<T: Val>(
        &mut self,
        replay: &mut Replay<'_>,
        decode: &mut DecodeFn<'_, T>,
        first: bool,
        per_block: &mut dyn FnMut(&[T]),
    ) -> Result<bool> {
        // room for a block's values (up to 4 per unit), no more than the tensor has: a fresh
        // 128 KiB buffer per pass dominated 50,000 tiny tensors
        let mut buf: Vec<T> = Vec::with_capacity(self.values.clamp(1, BLOCK as u64 * 4) as usize);
        let mut filled = 0usize;
        let unit = self.unit;
        let native = self.native;
        let ok = self.stream(replay, &mut |mut piece| {
            while !piece.is_empty() {
                // Whole blocks of float32/float64 are reduced in place, without a copy.
                if native && filled == 0 && piece.len() >= BLOCK * unit {
                    if let Some(vals) = as_values::<T>(&piece[..BLOCK * unit]) {
                        per_block(vals);
                        piece = &piece[BLOCK * unit..];
                        continue;
                    }
                }
                let take = (piece.len() / unit).min(BLOCK - filled);
                decode(&piece[..take * unit], &mut buf, first);
                piece = &piece[take * unit..];
                filled += take;
                if filled == BLOCK {
                    per_block(&buf);
                    buf.clear();
                    filled = 0;
                }
            }
        })?;
        if ok && filled > 0 {
            per_block(&buf);
        }
        Ok(ok)
    }

    fn run<T: Val>(
        &mut self,
        replay: &mut Replay<'_>,
        decode: &mut DecodeFn<'_, T>,
    ) -> Result<Option<Core>> {
        // Pass 1: moments (+ the finite values when within the exact budget).
        let mut mom = Moments::default();
        let mut scratch: Vec<T> = Vec::new();
        let mut kept: Vec<T> = Vec::new();
        if self.collect {
            kept.reserve_exact(self.values.min(self.opts.quantile_exact_limit) as usize);
        }
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
        if mom.n == 0 || self.opts.moments_only {
            return Ok(Some(core));
        }
        // With the values in hand the grid only narrows the exact quantiles' selection (and the
        // histogram's shortcut, exact at any grid size): fewer values than sketch bins get the
        // smallest grid — a full one costs more to clear and sum than a small tensor does to
        // count (50,000 tiny tensors spent most of their time there).
        let sketch = if collect && kept.len() < self.opts.sketch_bins {
            0
        } else {
            self.opts.sketch_bins
        };
        let mut binner = Binner::new(mom.min, mom.max, self.opts.bins, sketch);
        if collect {
            binner.add(&kept, false);
            let (h, grid, fine) = binner.finish();
            core.histogram = h;
            core.quantiles = quantile::exact_from_grid(&kept, &grid, &fine)
                .or_else(|| quantile::exact(&mut kept));
        } else {
            // Pass 2: numpy histogram + sketch grid.
            let filter = mom.n != mom.count;
            let ok = self.pass(replay, decode, false, &mut |xs: &[T]| {
                binner.add(xs, filter)
            })?;
            if !ok {
                return Ok(None);
            }
            core.passes = 2;
            let (h, grid, fine) = binner.finish();
            core.histogram = h;
            if let Some((q, b)) = quantile::sketch(&grid, &fine) {
                core.quantiles = Some(q);
                core.bound = b;
                core.exact = b == 0.0;
            }
        }
        Ok(Some(core))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Rng(u64);
    impl Rng {
        fn unif(&mut self) -> f64 {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (self.0 >> 11) as f64 / (1u64 << 53) as f64
        }
        fn normal(&mut self) -> f64 {
            let u = self.unif().max(1e-300);
            let v = self.unif();
            (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
        }
    }

    /// Stats of `bytes` streamed in chunks of `chunk` bytes.
    fn run(
        dtype: DType,
        numel: u64,
        bytes: &[u8],
        chunk: usize,
        opts: &StatsOptions,
    ) -> TensorStats {
        let mut replay = |sink: &mut dyn FnMut(&[u8]) -> Result<()>| {
            for c in bytes.chunks(chunk.max(1)) {
                sink(c)?;
            }
            Ok(())
        };
        tensor_stats(
            StatsInput::new(dtype, numel),
            opts,
            &mut replay,
            &mut no_progress,
        )
        .unwrap()
        .unwrap()
    }

    /// Reference statistics from first principles over f64 values (sort-based).
    struct Reference {
        finite: Vec<f64>,
        nan: u64,
        posinf: u64,
        neginf: u64,
    }

    impl Reference {
        fn new(vals: &[f64]) -> Reference {
            let mut finite: Vec<f64> = vals.iter().copied().filter(|x| x.is_finite()).collect();
            finite.sort_by(|a, b| a.partial_cmp(b).unwrap());
            Reference {
                finite,
                nan: vals.iter().filter(|x| x.is_nan()).count() as u64,
                posinf: vals.iter().filter(|&&x| x == f64::INFINITY).count() as u64,
                neginf: vals.iter().filter(|&&x| x == f64::NEG_INFINITY).count() as u64,
            }
        }
        fn check(&self, s: &TensorStats, exact_quantiles: bool) {
            let f = &self.finite;
            let n = f.len() as f64;
            assert_eq!(
                (s.summary.nan, s.summary.posinf, s.summary.neginf),
                (self.nan, self.posinf, self.neginf)
            );
            assert_eq!(s.summary.finite(), f.len() as u64);
            assert_eq!(
                s.summary.zeros,
                f.iter().filter(|&&x| x == 0.0).count() as u64
            );
            if f.is_empty() {
                assert_eq!(
                    (s.summary.min, s.summary.max, s.summary.mean, s.summary.std),
                    (None, None, None, None)
                );
                assert!(s.histogram.counts.is_empty() && s.quantiles.is_none());
                return;
            }
            assert_eq!(s.summary.min, Some(f[0]));
            assert_eq!(s.summary.max, Some(f[f.len() - 1]));
            let mean = f.iter().sum::<f64>() / n;
            let std = (f.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / n).sqrt();
            let l2 = f.iter().map(|x| x * x).sum::<f64>().sqrt();
            let close = |a: f64, b: f64| (a - b).abs() <= 1e-9 * b.abs().max(1e-12);
            assert!(
                close(s.summary.mean.unwrap(), mean),
                "{:?} {mean}",
                s.summary.mean
            );
            assert!(
                close(s.summary.std.unwrap(), std),
                "{:?} {std}",
                s.summary.std
            );
            assert!(close(s.l2, l2));
            assert_eq!(s.absmax, Some(f[0].abs().max(f[f.len() - 1].abs())));
            // Histogram: by the numpy edges' definition.
            let want = crate::stats::histogram::by_edges(f, &s.histogram.edges);
            assert_eq!(s.histogram.counts, want);
            let q = s.quantiles.unwrap();
            for (l, got) in q.pairs() {
                let (lo, hi, g) = quantile::linear_ranks(f.len() as u64, l);
                let w = quantile::lerp(f[lo as usize], f[hi as usize], g);
                if exact_quantiles {
                    assert_eq!(got, w, "q{l}");
                } else {
                    assert!(
                        (got - w).abs() <= s.quantile_error_bound,
                        "q{l}: {got} vs {w}"
                    );
                }
            }
            assert_eq!(s.quantiles_exact, exact_quantiles);
        }
    }

    fn f32_data(n: usize, seed: u64, specials: bool) -> Vec<f32> {
        let mut r = Rng(seed);
        (0..n)
            .map(|i| {
                if specials && i % 997 == 3 {
                    [f32::NAN, f32::INFINITY, f32::NEG_INFINITY, 0.0][i % 4]
                } else {
                    (r.normal() * 0.02 + 0.001) as f32
                }
            })
            .collect()
    }

    #[test]
    fn f32_one_pass_and_two_pass_agree_with_reference() {
        let v = f32_data(50_000, 7, true);
        let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
        let reference = Reference::new(&v.iter().map(|&x| x as f64).collect::<Vec<_>>());
        let opts = StatsOptions::default();
        let one = run(DType::F32, v.len() as u64, &bytes, 1 << 16, &opts);
        assert_eq!(one.passes, 1);
        assert_eq!(one.summary.count, 50_000);
        reference.check(&one, true);
        let two_opts = StatsOptions {
            quantile_exact_limit: 0,
            ..StatsOptions::default()
        };
        // Odd chunking: elements split across chunks.
        let two = run(DType::F32, v.len() as u64, &bytes, 4093, &two_opts);
        assert_eq!(two.passes, 2);
        reference.check(&two, false);
        assert_eq!(one.histogram, two.histogram);
        assert_eq!(
            (one.summary.min, one.summary.max, one.summary.zeros),
            (two.summary.min, two.summary.max, two.summary.zeros)
        );
        assert_eq!(one.summary.mean, two.summary.mean); // same blocks → same bits
    }

    #[test]
    fn bins_option_and_single_value() {
        let v = [2.5f64];
        let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
        let opts = StatsOptions {
            bins: 10,
            ..StatsOptions::default()
        };
        let s = run(DType::F64, 1, &bytes, 3, &opts);
        assert_eq!(s.histogram.counts.len(), 10);
        assert_eq!(s.histogram.edges[0], 2.0);
        assert_eq!(s.histogram.edges[10], 3.0);
        assert_eq!(s.histogram.counts[5], 1);
        assert_eq!(s.summary.std, Some(0.0));
        assert_eq!(s.quantiles.unwrap().p50, 2.5);
    }

    #[test]
    fn half_types_decode_then_match_reference() {
        let v = f32_data(20_000, 11, true);
        for (dt, enc) in [
            (
                DType::F16,
                (|x: f32| half::f16::from_f32(x).to_bits()) as fn(f32) -> u16,
            ),
            (DType::BF16, |x: f32| half::bf16::from_f32(x).to_bits()),
        ] {
            let bits: Vec<u16> = v.iter().map(|&x| enc(x)).collect();
            let bytes: Vec<u8> = bits.iter().flat_map(|b| b.to_le_bytes()).collect();
            let vals: Vec<f64> = bits
                .iter()
                .map(|&b| match dt {
                    DType::F16 => half::f16::from_bits(b).to_f64(),
                    _ => half::bf16::from_bits(b).to_f64(),
                })
                .collect();
            let s = run(
                dt,
                bits.len() as u64,
                &bytes,
                1001,
                &StatsOptions::default(),
            );
            Reference::new(&vals).check(&s, true);
        }
    }

    #[test]
    fn float8_with_nan_and_inf_conventions() {
        let bytes: Vec<u8> = (0..=255u8).collect();
        for dt in [
            DType::F8E4M3FN,
            DType::F8E5M2,
            DType::F8E4M3FNUZ,
            DType::F8E5M2FNUZ,
            DType::F8E8M0FNU,
        ] {
            let t = crate::format::element::f8_table(dt).unwrap();
            let vals: Vec<f64> = t.iter().map(|&x| x as f64).collect();
            let s = run(dt, 256, &bytes, 17, &StatsOptions::default());
            assert_eq!(s.summary.count, 256);
            Reference::new(&vals).check(&s, true);
        }
        let s = run(DType::F8E5M2, 256, &bytes, 256, &StatsOptions::default());
        assert_eq!(
            (s.summary.nan, s.summary.posinf, s.summary.neginf),
            (6, 1, 1)
        );
        assert_eq!(s.summary.max, Some(57344.0));
        let s = run(DType::F8E4M3FN, 256, &bytes, 256, &StatsOptions::default());
        assert_eq!(
            (s.summary.nan, s.summary.posinf, s.summary.max),
            (2, 0, Some(448.0))
        );
    }

    #[test]
    fn ints_bool_and_packed() {
        let v: Vec<i64> = vec![-5, 0, 7, i64::MAX, 3, 0];
        let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
        let s = run(DType::I64, 6, &bytes, 8, &StatsOptions::default());
        Reference::new(&v.iter().map(|&x| x as f64).collect::<Vec<_>>()).check(&s, true);
        let s = run(
            DType::Bool,
            5,
            &[1, 0, 1, 1, 0],
            2,
            &StatsOptions::default(),
        );
        assert_eq!(
            (
                s.summary.count,
                s.summary.zeros,
                s.summary.mean,
                s.summary.max
            ),
            (5, 2, Some(0.6), Some(1.0))
        );
        let s = run(
            DType::F4E2M1FNX2,
            2,
            &[0x71, 0x0f],
            1,
            &StatsOptions::default(),
        );
        assert_eq!(s.summary.count, 4);
        assert_eq!((s.summary.min, s.summary.max), (Some(-6.0), Some(6.0)));
        assert_eq!(s.summary.mean, Some(0.125)); // (0.5 + 6 − 6 + 0) / 4
        let s = run(
            DType::QUInt2x4,
            1,
            &[0b11_10_01_00],
            1,
            &StatsOptions::default(),
        );
        assert_eq!((s.summary.count, s.summary.mean), (4, Some(1.5)));
    }

    #[test]
    fn complex_magnitude_and_parts() {
        let z: [(f32, f32); 4] = [(3.0, 4.0), (0.0, 0.0), (-1.0, 0.0), (f32::NAN, 1.0)];
        let bytes: Vec<u8> = z
            .iter()
            .flat_map(|(r, i)| r.to_le_bytes().into_iter().chain(i.to_le_bytes()))
            .collect();
        let s = run(DType::C64, 4, &bytes, 5, &StatsOptions::default());
        Reference::new(&[5.0, 0.0, 1.0, f64::NAN]).check(&s, true);
        let c = s.complex.unwrap();
        assert_eq!(c.real.count, 4);
        assert_eq!(c.real.nan, 1);
        assert_eq!((c.real.min, c.real.max), (Some(-1.0), Some(3.0)));
        assert_eq!(c.imag.mean, Some(1.25));
        assert_eq!(c.imag.zeros, 2);
    }

    #[test]
    fn empty_all_nan_and_constant() {
        let s = run(DType::F32, 0, &[], 4, &StatsOptions::default());
        assert_eq!(s.summary.count, 0);
        assert_eq!(s.summary.min, None);
        assert!(s.histogram.edges.is_empty());
        let nan: Vec<u8> = [f32::NAN, f32::INFINITY]
            .iter()
            .flat_map(|x| x.to_le_bytes())
            .collect();
        let opts = StatsOptions {
            quantile_exact_limit: 0,
            ..StatsOptions::default()
        };
        let s = run(DType::F32, 2, &nan, 4, &opts);
        assert_eq!(
            (s.summary.count, s.summary.nan, s.summary.posinf, s.passes),
            (2, 1, 1, 1)
        );
        assert_eq!(s.summary.mean, None);
        let c: Vec<u8> = [1.5f32; 10].iter().flat_map(|x| x.to_le_bytes()).collect();
        let s = run(DType::F32, 10, &c, 4, &opts);
        assert_eq!(s.histogram.counts[32], 10);
        assert_eq!(s.histogram.edges[0], 1.0);
        assert!(s.quantiles_exact);
        assert_eq!(s.quantiles.unwrap().p1, 1.5);
    }

    #[test]
    fn progress_counts_bytes_and_cancels() {
        let v = f32_data(10_000, 3, false);
        let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
        let opts = StatsOptions {
            quantile_exact_limit: 0,
            ..StatsOptions::default()
        };
        let mut replay = |sink: &mut dyn FnMut(&[u8]) -> Result<()>| {
            for c in bytes.chunks(1000) {
                sink(c)?;
            }
            Ok(())
        };
        let mut seen = 0u64;
        let s = tensor_stats(
            StatsInput::new(DType::F32, 10_000),
            &opts,
            &mut replay,
            &mut |n| {
                seen += n;
                true
            },
        )
        .unwrap();
        assert!(s.is_some());
        assert_eq!(seen, 2 * bytes.len() as u64);
        let mut calls = 0;
        let s = tensor_stats(
            StatsInput::new(DType::F32, 10_000),
            &opts,
            &mut replay,
            &mut |_| {
                calls += 1;
                calls < 3
            },
        )
        .unwrap();
        assert!(s.is_none());
        assert_eq!(calls, 3);
    }

    #[test]
    fn replay_errors_propagate_and_stray_bytes_are_reported() {
        let mut failing = |_sink: &mut dyn FnMut(&[u8]) -> Result<()>| -> Result<()> {
            Err(FormatError::at("archive/data/0", "read failed"))
        };
        let error_of = |numel: u64, replay: &mut Replay<'_>| {
            let el = StatsInput::new(DType::F32, numel);
            tensor_stats(el, &StatsOptions::default(), replay, &mut no_progress).unwrap_err()
        };
        let e = error_of(4, &mut failing);
        assert_eq!(e.to_string(), "archive/data/0: read failed");
        let mut stray = |sink: &mut dyn FnMut(&[u8]) -> Result<()>| sink(&[0, 0, 0, 0, 1]);
        let e = error_of(1, &mut stray);
        assert!(e.message.contains("stray"), "{e}");
    }

    #[test]
    fn serialises_to_json_with_nulls() {
        let s = run(DType::F32, 0, &[], 4, &StatsOptions::default());
        let j = serde_json::to_value(&s).unwrap();
        assert!(j["summary"]["min"].is_null());
        assert_eq!(j["summary"]["count"], 0);
        let back: TensorStats = serde_json::from_value(j).unwrap();
        assert_eq!(back, s);
    }

    #[test]
    fn moments_only_reads_once_and_matches_the_full_moments() {
        let vals: Vec<f32> = (0..20_000)
            .map(|i| ((i * 37) % 101) as f32 - 50.0)
            .collect();
        let bytes: Vec<u8> = vals.iter().flat_map(|v| v.to_le_bytes()).collect();
        let full = StatsOptions {
            quantile_exact_limit: 0,
            ..StatsOptions::default()
        };
        let lean = StatsOptions {
            moments_only: true,
            ..full.clone()
        };
        assert_eq!(StatsInput::new(DType::F32, 20_000).planned_passes(&lean), 1);
        let a = run(DType::F32, 20_000, &bytes, 4096, &full);
        let b = run(DType::F32, 20_000, &bytes, 4096, &lean);
        assert_eq!((a.passes, b.passes), (2, 1));
        assert_eq!(
            (
                a.summary.count,
                a.summary.mean,
                a.summary.std,
                a.l2,
                a.absmax,
                a.summary.zeros,
                a.summary.min,
                a.summary.max
            ),
            (
                b.summary.count,
                b.summary.mean,
                b.summary.std,
                b.l2,
                b.absmax,
                b.summary.zeros,
                b.summary.min,
                b.summary.max
            )
        );
        assert!(b.histogram.counts.is_empty() && b.quantiles.is_none());
    }
}
