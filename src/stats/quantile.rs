//! Quantiles p1, p5, p25, p50, p75, p95, p99 of the finite values.
//!
//! Two modes, and the bound each guarantees (reported as `quantile_error_bound`):
//! - **exact** ([`exact`]): all finite values are held in memory (only when the tensor has at most
//!   `quantile_exact_limit` values); numpy's default `method="linear"` is replicated — virtual
//!   index `(n−1)·q`, neighbours by selection (`select_nth_unstable`, O(n)), and numpy's `_lerp`
//!   (`a + (b−a)·t`, or `b − (b−a)·(1−t)` when `t ≥ 0.5`). Bound 0: equal to
//!   `numpy.quantile(finite_float64_values, q)` bit for bit.
//! - **sketch** ([`sketch`]): a second pass counts the values on a uniform grid of `m` bins over
//!   `[min, max]` (default 4096, [`super::StatsOptions::sketch_bins`]). The order statistics
//!   `x(k)`, `x(k+1)` around the virtual index are located in their bins and estimated by linear
//!   interpolation of rank within the bin; both estimates lie in the same bin as the true value,
//!   and the interpolated result inherits that. **Bound: one bin width `(max − min)/m`** (plus a
//!   few ulps of max(|min|, |max|) for values within an ulp of a bin boundary). The end ranks
//!   0 and n−1 are exact (they are min and max).

use super::histogram::FineGrid;
use super::moments::Val;
use serde::{Deserialize, Serialize};

/// The quantile levels reported, in order.
pub const LEVELS: [f64; 7] = [0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99];

/// Quantiles of the finite values.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Quantiles {
    pub p1: f64,
    pub p5: f64,
    pub p25: f64,
    pub p50: f64,
    pub p75: f64,
    pub p95: f64,
    pub p99: f64,
}

impl Quantiles {
    /// Quantiles from their values at the seven [`LEVELS`], in order.
    pub(crate) fn from_array(v: [f64; 7]) -> Quantiles {
        Quantiles {
            p1: v[0],
            p5: v[1],
            p25: v[2],
            p50: v[3],
            p75: v[4],
            p95: v[5],
            p99: v[6],
        }
    }
    /// (level, value) pairs in order.
    pub fn pairs(&self) -> [(f64, f64); 7] {
        [
            (0.01, self.p1),
            (0.05, self.p5),
            (0.25, self.p25),
            (0.5, self.p50),
            (0.75, self.p75),
            (0.95, self.p95),
            (0.99, self.p99),
        ]
    }
}

/// numpy's `_lerp(a, b, t)`.
#[inline]
pub fn lerp(a: f64, b: f64, t: f64) -> f64 {
    let d = b - a;
    if t >= 0.5 {
        b - d * (1.0 - t)
    } else {
        a + d * t
    }
}

/// The (lower rank, upper rank, gamma) numpy's linear method uses for level `q` of `n` values.
pub fn linear_ranks(n: u64, q: f64) -> (u64, u64, f64) {
    let vi = (n - 1) as f64 * q;
    let lo = vi.floor();
    let gamma = vi - lo;
    let lo = (lo as u64).min(n - 1);
    let hi = (lo + 1).min(n - 1);
    (lo, hi, gamma)
}

/// Put the order statistics at `ranks` (sorted, deduplicated) into place.
fn select_ranks<T: Val>(v: &mut [T], base: usize, ranks: &[usize]) {
    if ranks.is_empty() || v.is_empty() {
        return;
    }
    let mid = ranks.len() / 2;
    let k = ranks[mid] - base;
    v.select_nth_unstable_by(k, |a, b| {
        a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal)
    });
    let (left, rest) = v.split_at_mut(k);
    select_ranks(left, base, &ranks[..mid]);
    select_ranks(&mut rest[1..], base + k + 1, &ranks[mid + 1..]);
}

/// Exact quantiles of `values` (all finite; reordered in place). None when empty.
pub fn exact<T: Val>(values: &mut [T]) -> Option<Quantiles> {
    let n = values.len() as u64;
    if n == 0 {
        return None;
    }
    let mut ranks: Vec<usize> = LEVELS
        .iter()
        .flat_map(|&q| {
            let (lo, hi, _) = linear_ranks(n, q);
            [lo as usize, hi as usize]
        })
        .collect();
    crate::order::sort(&mut ranks);
    ranks.dedup();
    select_ranks(values, 0, &ranks);
    let mut out = [0f64; 7];
    for (o, &q) in out.iter_mut().zip(&LEVELS) {
        let (lo, hi, g) = linear_ranks(n, q);
        *o = lerp(values[lo as usize].f64(), values[hi as usize].f64(), g);
    }
    Some(Quantiles::from_array(out))
}

/// Exact quantiles of `values` (all finite) using their sketch-grid counts `fine` (from the same
/// `grid`, e.g. by [`super::histogram::Binner`]): only the grid bins holding the needed order
/// statistics are gathered and sorted, so the cost is one more linear pass plus a small sort
/// instead of a selection over everything. The grid index is monotone in the value, so the
/// gathered bins, sorted, are the corresponding stretch of the sorted data. Returns None when
/// those bins hold more than a quarter of the values (then use [`exact`]).
pub fn exact_from_grid<T: Val>(values: &[T], grid: &FineGrid, fine: &[u64]) -> Option<Quantiles> {
    let n = values.len() as u64;
    if n == 0 || fine.iter().sum::<u64>() != n {
        return None;
    }
    // before[j] = values in bins < j.
    let mut before = Vec::with_capacity(fine.len() + 1);
    let mut acc = 0u64;
    for &c in fine {
        before.push(acc);
        acc += c;
    }
    before.push(acc);
    let bin_of = |k: u64| before.partition_point(|&b| b <= k) - 1;
    let mut want = vec![false; fine.len()];
    let mut gathered_len = 0u64;
    for &q in &LEVELS {
        let (lo, hi, _) = linear_ranks(n, q);
        for k in [lo, hi] {
            let j = bin_of(k);
            if !want[j] {
                want[j] = true;
                gathered_len += fine[j];
            }
        }
    }
    if gathered_len > n / 4 {
        return None;
    }
    let mut g: Vec<T> = Vec::with_capacity(gathered_len as usize);
    let mut idx = [0u32; 1024];
    for c in values.chunks(1024) {
        let idx = &mut idx[..c.len()];
        grid.indices(c, idx);
        for (&x, &j) in c.iter().zip(idx.iter()) {
            if want[j as usize] {
                g.push(x);
            }
        }
    }
    if g.len() as u64 != gathered_len {
        return None; // not the same binning: never expected, but stay exact
    }
    g.sort_unstable_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    // offset[j] = position in g of bin j's first value.
    let mut offset = vec![0u64; fine.len()];
    let mut pos = 0u64;
    for (j, o) in offset.iter_mut().enumerate() {
        *o = pos;
        if want[j] {
            pos += fine[j];
        }
    }
    let at = |k: u64| {
        let j = bin_of(k);
        g[(offset[j] + (k - before[j])) as usize].f64()
    };
    let mut out = [0f64; 7];
    for (o, &q) in out.iter_mut().zip(&LEVELS) {
        let (lo, hi, gm) = linear_ranks(n, q);
        *o = lerp(at(lo), at(hi), gm);
    }
    Some(Quantiles::from_array(out))
}

/// Estimated quantiles from fine-grid counts (`counts.len() == grid.m`, summing to `n`, the
/// number of finite values). Returns the quantiles and the error bound.
pub fn sketch(grid: &FineGrid, counts: &[u64]) -> Option<(Quantiles, f64)> {
    let n: u64 = counts.iter().sum();
    if n == 0 {
        return None;
    }
    if grid.max <= grid.min {
        return Some((Quantiles::from_array([grid.min; 7]), 0.0));
    }
    // Cumulative counts: cum[j] = values in bins < j.
    let mut cum = Vec::with_capacity(counts.len() + 1);
    let mut acc = 0u64;
    cum.push(0);
    for &c in counts {
        acc += c;
        cum.push(acc);
    }
    let estimate = |k: u64| -> f64 {
        if k == 0 {
            return grid.min;
        }
        if k == n - 1 {
            return grid.max;
        }
        // Bin j with cum[j] <= k < cum[j+1].
        let j = cum.partition_point(|&c| c <= k) - 1;
        let within = (k - cum[j]) as f64 + 0.5;
        let lo = grid.min + j as f64 * grid.width;
        let v = lo + grid.width * (within / counts[j] as f64);
        v.clamp(grid.min, grid.max)
    };
    let mut out = [0f64; 7];
    for (o, &q) in out.iter_mut().zip(&LEVELS) {
        let (lo, hi, g) = linear_ranks(n, q);
        *o = lerp(estimate(lo), estimate(hi), g);
    }
    let scale = grid.min.abs().max(grid.max.abs());
    let bound = grid.width + 4.0 * f64::EPSILON * scale;
    Some((Quantiles::from_array(out), bound))
}

#[cfg(test)]
mod tests {
    use super::super::histogram::Binner;
    use super::*;

    fn numpy_reference(sorted: &[f64], q: f64) -> f64 {
        let (lo, hi, g) = linear_ranks(sorted.len() as u64, q);
        lerp(sorted[lo as usize], sorted[hi as usize], g)
    }

    #[test]
    fn exact_matches_sorting() {
        let mut r = 0x9e3779b97f4a7c15u64;
        for n in [1usize, 2, 3, 7, 100, 1001, 54321] {
            let mut v: Vec<f64> = (0..n)
                .map(|_| {
                    r ^= r << 13;
                    r ^= r >> 7;
                    r ^= r << 17;
                    (r % 100_000) as f64 / 7.0 - 3000.0
                })
                .collect();
            let mut s = v.clone();
            s.sort_by(|a, b| a.partial_cmp(b).unwrap());
            let q = exact(&mut v).unwrap();
            for (l, got) in q.pairs() {
                assert_eq!(got, numpy_reference(&s, l), "n={n} q={l}");
            }
        }
    }

    #[test]
    fn known_numpy_values() {
        // np.quantile([1,2,3,4], [.01,.05,.25,.5,.75,.95,.99])
        // = [1.03, 1.15, 1.75, 2.5, 3.25, 3.85, 3.97]
        let q = exact(&mut [4.0f32, 2.0, 1.0, 3.0]).unwrap();
        let numpy = [
            1.03,
            1.15,
            1.75,
            2.5,
            3.25,
            3.8499999999999996,
            3.9699999999999998,
        ];
        assert_eq!(q, Quantiles::from_array(numpy));
        assert_eq!(exact::<f64>(&mut []), None);
        let one = exact(&mut [5.0f64]).unwrap();
        assert_eq!((one.p1, one.p99), (5.0, 5.0));
    }

    #[test]
    fn sketch_within_bound() {
        let mut r = 12345u64;
        let v: Vec<f64> = (0..200_000)
            .map(|_| {
                r = r
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let u = (r >> 11) as f64 / (1u64 << 53) as f64;
                (u * 6.0 - 3.0).powi(3) // heavy-ish tails
            })
            .collect();
        let mn = v.iter().cloned().fold(f64::INFINITY, f64::min);
        let mx = v.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let mut b = Binner::new(mn, mx, 64, 4096);
        b.add(&v, false);
        let (_, g, fine) = b.finish();
        assert_eq!(g.m, 4096);
        let (q, bound) = sketch(&g, &fine).unwrap();
        assert!(bound > 0.0 && bound < (mx - mn) / 4000.0);
        let mut s = v.clone();
        s.sort_by(|a, b| a.partial_cmp(b).unwrap());
        for (l, got) in q.pairs() {
            let want = numpy_reference(&s, l);
            assert!(
                (got - want).abs() <= bound,
                "q={l}: {got} vs {want} (bound {bound})"
            );
        }
    }

    #[test]
    fn exact_from_grid_equals_selection() {
        let mut r = 777u64;
        for n in [1usize, 2, 5, 100, 10_000, 100_001] {
            let v: Vec<f32> = (0..n)
                .map(|i| {
                    r = r
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    let u = (r >> 40) as f32 / (1u64 << 24) as f32;
                    if i % 3 == 0 {
                        (u * 8.0).round() // many ties
                    } else {
                        (u - 0.5).powi(3)
                    }
                })
                .collect();
            let mn = v.iter().cloned().fold(f32::INFINITY, f32::min) as f64;
            let mx = v.iter().cloned().fold(f32::NEG_INFINITY, f32::max) as f64;
            let mut b = Binner::new(mn, mx, 64, 4096);
            b.add(&v, false);
            let (_, g, fine) = b.finish();
            let fast = exact_from_grid(&v, &g, &fine);
            let slow = exact(&mut v.clone()).unwrap();
            if n >= 10_000 {
                assert_eq!(fast, Some(slow), "n={n}");
            } else if let Some(f) = fast {
                assert_eq!(f, slow);
            }
        }
    }

    #[test]
    fn sketch_of_constant_data_is_exact() {
        let g = FineGrid::new(2.0, 2.0, 16);
        let mut counts = vec![0u64; 16];
        counts[0] = 10;
        let (q, b) = sketch(&g, &counts).unwrap();
        assert_eq!((q.p1, q.p99, b), (2.0, 2.0, 0.0));
    }
}
