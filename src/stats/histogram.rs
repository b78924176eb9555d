//! Histograms of the finite values, bin-for-bin identical to `numpy.histogram(x, bins=N,
//! range=(min, max))` on float64 data, plus the fine "sketch" histogram used for quantiles of
//! large tensors.
//!
//! numpy's rules, replicated exactly ([`numpy_edges`], [`BinPlan::index`]):
//! - range: `(min, max)`; when `min == max` numpy widens it to `(min − 0.5, max + 0.5)`;
//! - edges: `np.linspace(first, last, N+1)` in f64, i.e. `edge[i] = i·step + first` with
//!   `step = (last − first)/N` (or `i/N·delta + first` if that step underflows to 0), and
//!   `edge[N] = last` exactly;
//! - bin of x: `floor((x − first)/(last − first)·N)` (clamped to N−1), then numpy's corrections
//!   `if x < edge[i]: i −= 1` and `if x ≥ edge[i+1] and i ≠ N−1: i += 1`. The corrections make the
//!   result depend on the edges alone, so a reciprocal multiply (≤ 1 ulp off) gives the same bins;
//!   we use it when the range is well conditioned and numpy's exact division otherwise.
//!   `x == last` falls in the last bin.
//!
//! Count accumulation uses interleaved u32 sub-histograms (no store-forwarding stalls when
//! neighbouring values share a bin), flushed to u64 totals.

use super::moments::Val;
use serde::{Deserialize, Serialize};

/// Default number of bins.
pub const DEFAULT_BINS: usize = 64;
/// Largest number of bins accepted.
pub const MAX_BINS: usize = 1024;

/// A histogram: `edges.len() == counts.len() + 1`; both empty when there are no finite values.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Histogram {
    pub edges: Vec<f64>,
    pub counts: Vec<u64>,
}

impl Histogram {
    /// The largest bin count (0 when empty).
    pub fn max_count(&self) -> u64 {
        self.counts.iter().copied().max().unwrap_or(0)
    }
    /// `log10(1 + count)` per bin: the heights of a log-count view (empty bins stay at 0,
    /// a single value is visible as log10 2).
    pub fn log_counts(&self) -> Vec<f64> {
        self.counts
            .iter()
            .map(|&c| (1.0 + c as f64).log10())
            .collect()
    }
    /// Total of all bins (the number of finite values).
    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }
}

/// numpy's outer edges for `range=(min, max)`.
pub fn numpy_range(min: f64, max: f64) -> (f64, f64) {
    if min == max {
        (min - 0.5, max + 0.5)
    } else {
        (min, max)
    }
}

/// `np.linspace(first, last, n + 1)` exactly as numpy computes it in float64.
pub fn numpy_edges(first: f64, last: f64, n: usize) -> Vec<f64> {
    let num = n + 1;
    let div = n as f64;
    let delta = last - first;
    let step = delta / div;
    let mut e: Vec<f64> = (0..num)
        .map(|i| {
            let y = i as f64;
            if step == 0.0 {
                (y / div) * delta + first
            } else {
                y * step + first
            }
        })
        .collect();
    if num > 1 {
        e[num - 1] = last;
    }
    e
}

/// Everything needed to bin a value the way numpy does.
#[derive(Debug, Clone)]
pub struct BinPlan {
    pub first: f64,
    pub last: f64,
    pub n: usize,
    pub edges: Vec<f64>,
    denom: f64,
    norm: f64,
    /// `norm` is usable (finite, normal range): multiply instead of divide.
    fast: bool,
}

impl BinPlan {
    /// A plan for `n` bins over the finite values' `[min, max]`.
    pub fn new(min: f64, max: f64, n: usize) -> BinPlan {
        let n = n.clamp(1, MAX_BINS);
        let (first, last) = numpy_range(min, max);
        let edges = numpy_edges(first, last, n);
        let denom = last - first;
        let norm = n as f64 / denom;
        let fast = denom.is_normal() && norm.is_normal();
        BinPlan {
            first,
            last,
            n,
            edges,
            denom,
            norm,
            fast,
        }
    }

    /// numpy's bin index of a finite `x` in `[first, last]`.
    #[inline(always)]
    pub fn index(&self, x: f64) -> usize {
        let f = if self.fast {
            (x - self.first) * self.norm
        } else {
            ((x - self.first) / self.denom) * self.n as f64
        };
        let mut i = f as usize; // saturating; NaN → 0
        if i >= self.n {
            i = self.n - 1;
        }
        // SAFETY of indexing: i < n and edges has n + 1 entries.
        if x < self.edges[i] {
            i = i.saturating_sub(1);
        } else if i != self.n - 1 && x >= self.edges[i + 1] {
            i += 1;
        }
        i
    }
}

/// Interleaved u32 counters over `n` bins (`copies` copies), flushed into u64 totals before they
/// could overflow and by [`Counter::finish`].
#[derive(Debug, Clone)]
pub struct Counter {
    n: usize,
    sub: Vec<u32>,
    pending: u64,
    totals: Vec<u64>,
}

/// Values counted between flushes at most (each u32 sub-counter stays below 2^32).
const FLUSH_EVERY: u64 = 1 << 31;

impl Counter {
    pub fn new(n: usize, copies: usize) -> Counter {
        Counter {
            n,
            sub: vec![0; copies.max(1) * n],
            pending: 0,
            totals: vec![0; n],
        }
    }
    pub fn bins(&self) -> usize {
        self.n
    }
    fn flush(&mut self) {
        for c in self.sub.chunks_exact_mut(self.n) {
            for (t, v) in self.totals.iter_mut().zip(c.iter_mut()) {
                *t += *v as u64;
                *v = 0;
            }
        }
        self.pending = 0;
    }
    /// Make room for `len` more values.
    #[inline]
    fn reserve(&mut self, len: usize) {
        if self.pending + len as u64 > FLUSH_EVERY {
            self.flush();
        }
        self.pending += len as u64;
    }
    /// The u64 counts.
    pub fn finish(mut self) -> Vec<u64> {
        self.flush();
        self.totals
    }
}

/// Counts values into the numpy histogram and the quantile sketch grid at once.
///
/// Speed trick (exact): the sketch grid has `k` fine bins per histogram bin (`k` a power of two,
/// `bins·k ≥ sketch_bins`), over the same `[min, max]`. A value whose fine bin is not the first or
/// last of its group lies at least one fine width (minus a few ulps) away from every numpy edge,
/// so its histogram bin is `fine / k` — no per-value edge comparisons. Values in a group's first or
/// last fine bin (≈ 2/k of them) take numpy's full rule ([`BinPlan::index`]). The shortcut is used
/// only when a fine bin is wider than 10⁻¹⁰ of max(|min|, |max|) (always, except for data whose
/// spread is near the float resolution); otherwise every value takes the full rule.
#[derive(Debug, Clone)]
pub struct Binner {
    pub plan: BinPlan,
    pub grid: FineGrid,
    mask: usize,
    shift: u32,
    shortcut: bool,
    fine: Counter,
    exact: Counter,
}

impl Binner {
    /// For finite data in `[min, max]`: `bins` numpy bins, a sketch grid of at least
    /// `sketch_bins` bins.
    pub fn new(min: f64, max: f64, bins: usize, sketch_bins: usize) -> Binner {
        let plan = BinPlan::new(min, max, bins);
        let k = sketch_bins.div_ceil(plan.n).max(4).next_power_of_two();
        let grid = FineGrid::new(min, max, plan.n * k);
        let scale = min.abs().max(max.abs());
        let shortcut = max > min && grid.norm > 0.0 && grid.width > 1e-10 * scale;
        let fine = Counter::new(grid.m, 2);
        let exact = Counter::new(plan.n, 2);
        Binner {
            plan,
            grid,
            mask: k - 1,
            shift: k.trailing_zeros(),
            shortcut,
            fine,
            exact,
        }
    }

    /// Count `xs`. With `filter`, non-finite values are skipped; without it, all must be finite.
    pub fn add<T: Val>(&mut self, xs: &[T], filter: bool) {
        for part in xs.chunks(1 << 30) {
            self.fine.reserve(part.len());
            self.exact.reserve(part.len());
            match (self.shortcut, filter) {
                (true, false) => self.add_fast(part),
                _ => self.add_slow(part, filter),
            }
        }
    }

    #[inline(always)]
    fn one<T: Val>(&mut self, x: T, copy: usize) {
        let j = self.grid.index_of(x);
        self.fine.sub[copy * self.fine.n + j] += 1;
        let r = j & self.mask;
        if r.wrapping_sub(1) >= self.mask - 1 {
            let i = self.plan.index(x.f64());
            self.exact.sub[copy * self.exact.n + i] += 1;
        }
    }

    /// Two phases per 1024 values: fine indices (a branch-free, vectorisable loop), then the
    /// increments, with numpy's full rule only for values in a group's edge fine bins.
    fn add_fast<T: Val>(&mut self, xs: &[T]) {
        let m = self.grid.m;
        let mask = self.mask;
        let (f0, f1) = self.fine.sub.split_at_mut(m);
        let f1 = &mut f1[..m];
        let en = self.exact.n;
        let ex = &mut self.exact.sub[..en];
        let plan = &self.plan;
        let mut idx = [0u32; 1024];
        for c in xs.chunks(1024) {
            let idx = &mut idx[..c.len()];
            fine_indices_fast(c, &self.grid, idx);
            let half = c.len() / 2;
            for p in 0..half {
                let (a, b) = (idx[2 * p] as usize, idx[2 * p + 1] as usize);
                debug_assert!(a < m && b < m);
                // SAFETY: fine indices are clamped to m − 1 by `fine_indices`; f0, f1 have m slots.
                unsafe {
                    *f0.get_unchecked_mut(a) += 1;
                    *f1.get_unchecked_mut(b) += 1;
                }
                if (a & mask).wrapping_sub(1) >= mask - 1 {
                    ex[plan.index(c[2 * p].f64())] += 1;
                }
                if (b & mask).wrapping_sub(1) >= mask - 1 {
                    ex[plan.index(c[2 * p + 1].f64())] += 1;
                }
            }
            if c.len() % 2 == 1 {
                let a = idx[c.len() - 1] as usize;
                f0[a.min(m - 1)] += 1;
                if (a & mask).wrapping_sub(1) >= mask - 1 {
                    ex[plan.index(c[c.len() - 1].f64())] += 1;
                }
            }
        }
    }

    fn add_slow<T: Val>(&mut self, xs: &[T], filter: bool) {
        let n = self.exact.n;
        for &x in xs {
            if filter && !x.is_finite_val() {
                continue;
            }
            if self.shortcut {
                self.one(x, 0);
            } else {
                self.fine.sub[self.grid.index_of(x)] += 1;
                let i = self.plan.index(x.f64());
                self.exact.sub[i.min(n - 1)] += 1;
            }
        }
    }

    /// The numpy histogram, and the sketch grid with its counts.
    pub fn finish(self) -> (Histogram, FineGrid, Vec<u64>) {
        let fine = self.fine.finish();
        let mut counts = self.exact.finish();
        if self.shortcut {
            let k = self.mask + 1;
            for (i, c) in counts.iter_mut().enumerate() {
                *c += fine[i * k + 1..(i + 1) * k - 1].iter().sum::<u64>();
            }
        }
        debug_assert_eq!(self.shift, (self.mask + 1).trailing_zeros());
        (
            Histogram {
                edges: self.plan.edges,
                counts,
            },
            self.grid,
            fine,
        )
    }
}

/// [`fine_indices`] compiled for AVX2 when the CPU has it, in wasm SIMD for float32 lanes on
/// wasm32 (identical results).
#[inline]
fn fine_indices_fast<T: Val>(xs: &[T], g: &FineGrid, out: &mut [u32]) {
    #[cfg(target_arch = "wasm32")]
    if let (Some(l), Some(xs)) = (g.lane32, T::as_f32s(xs)) {
        return super::simd::fine_indices_f32(xs, l.min, l.norm, l.top, out);
    }
    #[cfg(all(target_arch = "x86_64", not(target_feature = "avx2")))]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2 (checked above).
        return unsafe { fine_indices_avx2(xs, g, out) };
    }
    fine_indices(xs, g, out)
}

#[cfg(all(target_arch = "x86_64", not(target_feature = "avx2")))]
#[target_feature(enable = "avx2")]
unsafe fn fine_indices_avx2<T: Val>(xs: &[T], g: &FineGrid, out: &mut [u32]) {
    fine_indices(xs, g, out)
}

/// `out[k] = g.index_of(xs[k])` for finite `xs[k]` (values below `min` give 0): one vectorisable
/// loop, in f32 lanes for float32 data on a grid that allows it ([`FineGrid`]), else in f64.
#[inline(always)]
fn fine_indices<T: Val>(xs: &[T], g: &FineGrid, out: &mut [u32]) {
    if let (Some(l), Some(xs)) = (g.lane32, T::as_f32s(xs)) {
        for (o, &x) in out.iter_mut().zip(xs) {
            *o = l.index(x);
        }
        return;
    }
    let (min, norm, top) = (g.min, g.norm, (g.m - 1) as f64);
    for (o, &x) in out.iter_mut().zip(xs) {
        let t = (x.f64() - min) * norm;
        let t = if t > 0.0 { t } else { 0.0 }; // NaN → 0
        let t = if t < top { t } else { top };
        *o = t.trunc_index();
    }
}

/// `t as u32` for a finite `t` in `[0, 2^31)`, as the target vectorises best: wasm's SIMD has a
/// saturating truncation (an unchecked one is scalarised lane by lane, which cost a third of the
/// histogram pass), x86 an unchecked one (the saturating form adds fix-ups).
trait Trunc {
    fn trunc_index(self) -> u32;
}

macro_rules! impl_trunc {
    ($($t:ty),*) => {$(
        impl Trunc for $t {
            #[inline(always)]
            fn trunc_index(self) -> u32 {
                #[cfg(target_arch = "wasm32")]
                return self as i32 as u32;
                // SAFETY: callers clamp to [0, top] with top < 2^31.
                #[cfg(not(target_arch = "wasm32"))]
                return unsafe { self.to_int_unchecked::<i32>() } as u32;
            }
        }
    )*};
}

impl_trunc!(f32, f64);

/// The fine index computed in f32: `min(floor((x − min)·norm), top)` with every operand an f32.
#[derive(Debug, Clone, Copy)]
struct Lane32 {
    min: f32,
    norm: f32,
    top: f32,
}

impl Lane32 {
    #[inline(always)]
    fn index(&self, x: f32) -> u32 {
        let t = (x - self.min) * self.norm;
        let t = if t > 0.0 { t } else { 0.0 }; // NaN → 0
        let t = if t < self.top { t } else { self.top };
        t.trunc_index()
    }
}

/// A uniform grid of `m` bins over `[min, max]` for the quantile sketch. Bin `j` nominally covers
/// `[min + j·w, min + (j+1)·w)` with `w = (max − min)/m`; the computed index may differ from
/// the nominal one by one bin for values close to a boundary, which the documented error bound
/// absorbs (and [`Binner`] sends values of a group's edge bins through numpy's exact rule).
///
/// Float32 data on a grid whose `min`, `max`, `max − min` and `m/(max − min)` are ordinary f32
/// numbers and with `m ≤ 2^16` is indexed in f32 arithmetic: three roundings of 2^-24 relative
/// put the computed position within `3·2^-24·m < 0.02` of a bin of the exact one, so it is
/// still "the nominal bin or a neighbour" — the same contract — at twice the SIMD width. Every
/// user of a grid indexes through [`FineGrid::index_of`] / [`FineGrid::indices`], so counts and
/// later look-ups (exact quantiles) always agree.
#[derive(Debug, Clone)]
pub struct FineGrid {
    pub min: f64,
    pub max: f64,
    pub m: usize,
    pub width: f64,
    norm: f64,
    lane32: Option<Lane32>,
}

impl FineGrid {
    pub fn new(min: f64, max: f64, m: usize) -> FineGrid {
        let m = m.max(1);
        let width = (max - min) / m as f64;
        let norm = if max > min {
            m as f64 / (max - min)
        } else {
            0.0
        };
        let norm = if norm.is_finite() { norm } else { 0.0 };
        let (min32, max32) = (min as f32, max as f32);
        let norm32 = (m as f64 / (max32 as f64 - min32 as f64)) as f32;
        let lane32 = (norm > 0.0
            && m <= 1 << 16
            && min32 as f64 == min
            && max32 as f64 == max
            && (max32 - min32).is_normal()
            && norm32.is_normal())
        .then_some(Lane32 {
            min: min32,
            norm: norm32,
            top: (m - 1) as f32,
        });
        FineGrid {
            min,
            max,
            m,
            width,
            norm,
            lane32,
        }
    }
    /// `out[k] = self.index_of(xs[k])` for finite values in `[min, max]`, vectorised.
    pub fn indices<T: Val>(&self, xs: &[T], out: &mut [u32]) {
        fine_indices_fast(xs, self, out);
    }
    /// The bin of one finite value (the same arithmetic as [`FineGrid::indices`]).
    #[inline(always)]
    pub fn index_of<T: Val>(&self, x: T) -> usize {
        if let (Some(l), Some(x)) = (self.lane32, T::as_f32s(std::slice::from_ref(&x))) {
            return l.index(x[0]) as usize;
        }
        self.index(x.f64())
    }
    /// The bin of one finite value in f64 arithmetic (grids over f64 data).
    #[inline(always)]
    pub fn index(&self, x: f64) -> usize {
        let j = ((x - self.min) * self.norm) as usize;
        if j >= self.m {
            self.m - 1
        } else {
            j
        }
    }
}

/// Reference counts for tests: binary search on the edges, last bin closed — the definition
/// numpy documents.
#[cfg(test)]
pub(crate) fn by_edges(xs: &[f64], edges: &[f64]) -> Vec<u64> {
    let n = edges.len() - 1;
    let mut c = vec![0u64; n];
    for &x in xs {
        let i = if x == edges[n] {
            n - 1
        } else {
            edges.partition_point(|&e| e <= x) - 1
        };
        c[i] += 1;
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hist(xs: &[f64], n: usize) -> Histogram {
        let mn = xs.iter().cloned().fold(f64::INFINITY, f64::min);
        let mx = xs.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let mut b = Binner::new(mn, mx, n, 4096);
        b.add(xs, false);
        let slow = {
            let plan = BinPlan::new(mn, mx, n);
            let mut c = vec![0u64; plan.n];
            for &x in xs {
                c[plan.index(x)] += 1;
            }
            c
        };
        let h = b.finish().0;
        assert_eq!(h.counts, slow, "shortcut and full rule disagree");
        h
    }

    /// float32 data takes the f32 fine index (`FineGrid::lane32`): values on and beside every
    /// numpy edge and every fine-grid boundary still land in numpy's bins, and the exact
    /// quantiles found through the grid equal those of a full sort.
    #[test]
    fn float32_lane_agrees_with_numpy_edges_and_exact_quantiles() {
        for (lo, hi, n) in [
            (-0.0731f32, 0.0917f32, 64),
            (0.1, 0.7, 7),
            (-3.3e-5, 1.7e-3, 1000),
            (-1000.5, 3.25, 64),
            (1.0, 1.0 + 4096.0 * f32::EPSILON, 64), // spread of a few thousand ulps
        ] {
            let mut b = Binner::new(lo as f64, hi as f64, n, 4096);
            assert!(b.grid.lane32.is_some(), "{lo} {hi}: f32 lane expected");
            let edges = numpy_edges(lo as f64, hi as f64, b.plan.n);
            let w = (hi as f64 - lo as f64) / b.grid.m as f64;
            let mut xs = vec![lo, hi];
            let nominal = (0..=b.grid.m).map(|j| lo as f64 + j as f64 * w);
            for e in edges.iter().copied().chain(nominal) {
                let c = e as f32;
                for v in [c.next_down().next_down(), c.next_down(), c, c.next_up()] {
                    if v >= lo && v <= hi {
                        xs.push(v);
                    }
                }
            }
            b.add(&xs, false);
            let (h, grid, fine) = b.finish();
            let x64: Vec<f64> = xs.iter().map(|&x| x as f64).collect();
            assert_eq!(h.counts, by_edges(&x64, &edges), "{lo} {hi} {n}");
            let q = crate::stats::quantile::exact_from_grid(&xs, &grid, &fine)
                .expect("grid and look-up agree");
            let mut sorted = xs.clone();
            assert_eq!(Some(q), crate::stats::quantile::exact(&mut sorted));
        }
        // a range f32 cannot subtract (max − min overflows) falls back to f64
        let b = Binner::new(-3e38, 3e38, 64, 4096);
        assert!(b.grid.lane32.is_none());
    }

    #[test]
    fn edges_are_numpy_linspace() {
        // np.linspace(0.0, 1.0, 11) and np.linspace(-1, 2, 4).
        let e = numpy_edges(0.0, 1.0, 10);
        assert_eq!(e[3], 3.0 * 0.1); // 0.30000000000000004, not 0.3
        assert_eq!(e[3], 0.30000000000000004);
        assert_eq!(e[10], 1.0);
        assert_eq!(numpy_edges(-1.0, 2.0, 3), vec![-1.0, 0.0, 1.0, 2.0]);
    }

    #[test]
    fn max_falls_in_last_bin_and_min_in_first() {
        let h = hist(&[0.0, 1.0, 0.5, 0.25, 1.0], 4);
        assert_eq!(h.counts, vec![1, 1, 1, 2]);
        assert_eq!(h.edges, vec![0.0, 0.25, 0.5, 0.75, 1.0]);
    }

    #[test]
    fn all_equal_data_uses_half_unit_range() {
        let h = hist(&[3.0; 5], 64);
        assert_eq!(h.edges[0], 2.5);
        assert_eq!(h.edges[64], 3.5);
        assert_eq!(h.counts[32], 5);
        assert_eq!(h.total(), 5);
        let h = hist(&[7.0], 3);
        assert_eq!(
            h.edges,
            vec![6.5, 6.5 + 1.0 / 3.0, 6.5 + 2.0 * (1.0 / 3.0), 7.5]
        );
        assert_eq!(h.counts, vec![0, 1, 0]);
    }

    #[test]
    fn values_on_inexact_edges_follow_the_edges() {
        // 0.3 < edge[3] = 0.30000000000000004: numpy puts 0.3 in bin 2.
        let xs = [0.0, 0.3, 0.30000000000000004, 0.7, 0.6, 1.0];
        let h = hist(&xs, 10);
        assert_eq!(h.counts, by_edges(&xs, &h.edges));
        assert_eq!(h.counts[2], 1);
        assert_eq!(h.counts[3], 1);
    }

    #[test]
    fn every_edge_value_and_neighbours_match_the_edge_definition() {
        for (lo, hi, n) in [
            (-1.0, 3.0, 64),
            (0.1, 0.7, 7),
            (-3.3e-5, 1.7e-3, 1000),
            (1e10, 1e10 + 12345.678, 64),
            (-0.9, 0.1, 1024),
        ] {
            let edges = numpy_edges(lo, hi, n);
            let mut xs = vec![lo, hi];
            for &e in &edges {
                for v in [
                    e.next_down().next_down(),
                    e.next_down(),
                    e,
                    e.next_up(),
                    e.next_up().next_up(),
                ] {
                    if v >= lo && v <= hi {
                        xs.push(v);
                    }
                }
            }
            let h = hist(&xs, n);
            assert_eq!(h.edges, edges);
            assert_eq!(h.counts, by_edges(&xs, &edges), "{lo} {hi} {n}");
        }
    }

    #[test]
    fn ill_conditioned_range_uses_division() {
        let lo = 0.0;
        let hi = f64::from_bits(5); // subnormal range: n/denom overflows
        let xs = [lo, f64::from_bits(1), f64::from_bits(3), hi];
        let h = hist(&xs, 4);
        assert_eq!(h.counts, by_edges(&xs, &h.edges));
        assert_eq!(h.total(), 4);
    }

    #[test]
    fn filter_skips_nonfinite_and_fine_grid_counts() {
        let mut b = Binner::new(0.0, 1.0, 2, 8);
        let xs = [0.0f32, f32::NAN, 0.9, 1.0, f32::INFINITY, 0.5];
        b.add(&xs, true);
        let (h, g, f) = b.finish();
        assert_eq!(h.counts, vec![1, 3]);
        assert_eq!(g.m, 8);
        assert_eq!(f, vec![1, 0, 0, 0, 1, 0, 0, 2]);
    }

    #[test]
    fn shortcut_matches_full_rule_on_dense_random_data() {
        let mut r = 0x2545F4914F6CDD1Du64;
        for (lo, hi, bins) in [
            (-0.1, 0.13, 64),
            (3.0, 3.0001, 64),
            (-7.0, 1e-3, 100),
            (0.0, 1.0, 1024),
        ] {
            let xs: Vec<f64> = (0..100_000)
                .map(|i| {
                    r ^= r << 13;
                    r ^= r >> 7;
                    r ^= r << 17;
                    let u = (r >> 11) as f64 / (1u64 << 53) as f64;
                    if i % 10 == 0 {
                        // exactly on an edge, or one ulp either side
                        let e = numpy_edges(lo, hi, bins)[(r % (bins as u64 + 1)) as usize];
                        let v = match (r >> 60) % 3 {
                            0 => e.next_down(),
                            1 => e,
                            _ => e.next_up(),
                        };
                        v.clamp(lo, hi)
                    } else {
                        lo + (hi - lo) * u
                    }
                })
                .chain([lo, hi])
                .collect();
            let h = hist(&xs, bins);
            assert_eq!(h.counts, by_edges(&xs, &h.edges), "{lo} {hi} {bins}");
        }
    }

    #[test]
    fn log_counts() {
        let h = Histogram {
            edges: vec![0.0, 1.0, 2.0, 3.0],
            counts: vec![0, 9, 99],
        };
        assert_eq!(h.max_count(), 99);
        assert_eq!(h.log_counts(), vec![0.0, 1.0, 2.0]);
    }
}
