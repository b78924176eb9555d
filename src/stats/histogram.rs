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

/// Interleaved u32 counters over `n` bins (4 copies), flushed into u64 totals before they could
/// overflow and by [`Counter::finish`].
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
    pub fn new(n: usize) -> Counter {
        Counter {
            n,
            sub: vec![0; 4 * n],
            pending: 0,
            totals: vec![0; n],
        }
    }
    pub fn bins(&self) -> usize {
        self.n
    }
    fn flush(&mut self) {
        let n = self.n;
        for (i, t) in self.totals.iter_mut().enumerate() {
            *t += self.sub[i] as u64
                + self.sub[n + i] as u64
                + self.sub[2 * n + i] as u64
                + self.sub[3 * n + i] as u64;
        }
        self.sub.iter_mut().for_each(|c| *c = 0);
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

/// Count the values of `xs` into `coarse` (numpy rules) and, if given, into `fine` (a uniform
/// sketch grid). With `filter`, non-finite values are skipped; without it, every value must be
/// finite.
pub fn count_block<T: Val>(
    xs: &[T],
    plan: &BinPlan,
    coarse: &mut Counter,
    fine: Option<(&FineGrid, &mut Counter)>,
    filter: bool,
) {
    let mut fine = fine;
    for part in xs.chunks(1 << 30) {
        coarse.reserve(part.len());
        match fine.as_mut() {
            None if filter => {
                for &x in part {
                    let x = x.f64();
                    if x.is_finite() {
                        coarse.sub[plan.index(x)] += 1;
                    }
                }
            }
            None => count_coarse(part, plan, coarse),
            Some((g, fc)) => {
                fc.reserve(part.len());
                count_both(part, plan, coarse, g, fc, filter);
            }
        }
    }
}

#[inline(always)]
fn count_coarse<T: Val>(xs: &[T], plan: &BinPlan, c: &mut Counter) {
    let n = c.n;
    let (s0, rest) = c.sub.split_at_mut(n);
    let (s1, rest) = rest.split_at_mut(n);
    let (s2, s3) = rest.split_at_mut(n);
    let mut it = xs.chunks_exact(4);
    for q in &mut it {
        let i0 = plan.index(q[0].f64());
        let i1 = plan.index(q[1].f64());
        let i2 = plan.index(q[2].f64());
        let i3 = plan.index(q[3].f64());
        s0[i0] += 1;
        s1[i1] += 1;
        s2[i2] += 1;
        s3[i3] += 1;
    }
    for &x in it.remainder() {
        s0[plan.index(x.f64())] += 1;
    }
}

#[inline(always)]
fn count_both<T: Val>(
    xs: &[T],
    plan: &BinPlan,
    c: &mut Counter,
    g: &FineGrid,
    f: &mut Counter,
    filter: bool,
) {
    let n = c.n;
    let m = f.n;
    let (c0, rest) = c.sub.split_at_mut(n);
    let (c1, _) = rest.split_at_mut(n);
    let (f0, rest) = f.sub.split_at_mut(m);
    let (f1, _) = rest.split_at_mut(m);
    if filter {
        for &x in xs {
            let x = x.f64();
            if x.is_finite() {
                c0[plan.index(x)] += 1;
                f0[g.index(x)] += 1;
            }
        }
        return;
    }
    let mut it = xs.chunks_exact(2);
    for q in &mut it {
        let a = q[0].f64();
        let b = q[1].f64();
        c0[plan.index(a)] += 1;
        c1[plan.index(b)] += 1;
        f0[g.index(a)] += 1;
        f1[g.index(b)] += 1;
    }
    for &x in it.remainder() {
        let x = x.f64();
        c0[plan.index(x)] += 1;
        f0[g.index(x)] += 1;
    }
}

/// A uniform grid of `m` bins over `[min, max]` for the quantile sketch. Bin `j` nominally covers
/// `[min + j·w, min + (j+1)·w)` with `w = (max − min)/m`; the computed index may differ from
/// the nominal one by one bin for values within an ulp of a boundary, which the documented
/// error bound absorbs.
#[derive(Debug, Clone)]
pub struct FineGrid {
    pub min: f64,
    pub max: f64,
    pub m: usize,
    pub width: f64,
    norm: f64,
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
        FineGrid {
            min,
            max,
            m,
            width,
            norm: if norm.is_finite() { norm } else { 0.0 },
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn hist(xs: &[f64], n: usize) -> Histogram {
        let mn = xs.iter().cloned().fold(f64::INFINITY, f64::min);
        let mx = xs.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let plan = BinPlan::new(mn, mx, n);
        let mut c = Counter::new(plan.n);
        count_block(xs, &plan, &mut c, None, false);
        Histogram {
            edges: plan.edges.clone(),
            counts: c.finish(),
        }
    }

    /// Reference: binary search on the edges, last bin closed — the definition numpy documents.
    fn by_edges(xs: &[f64], edges: &[f64]) -> Vec<u64> {
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
                for d in [-2i64, -1, 0, 1, 2] {
                    let v = f64::from_bits((e.to_bits() as i64 + d) as u64);
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
        let plan = BinPlan::new(0.0, 1.0, 2);
        let g = FineGrid::new(0.0, 1.0, 8);
        let mut c = Counter::new(2);
        let mut f = Counter::new(8);
        let xs = [0.0f32, f32::NAN, 0.9, 1.0, f32::INFINITY, 0.5];
        count_block(&xs, &plan, &mut c, Some((&g, &mut f)), true);
        assert_eq!(c.finish(), vec![1, 3]);
        assert_eq!(f.finish(), vec![1, 0, 0, 0, 1, 0, 0, 2]);
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
