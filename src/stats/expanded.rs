//! Expanded (zero-stride) views: statistics in O(storage), not O(view).
//!
//! Contract: a dimension of size `n > 1` with stride 0 repeats the same elements `n` times
//! (`torch.zeros(3).expand(2**40, 3)`). [`reduce`] drops those dimensions and returns the view of
//! the distinct elements plus the multiplicity `m` (the product of the dropped sizes) — every
//! distinct element occurs exactly `m` times in the logical tensor. [`scale`] turns the
//! statistics of the reduced view into those of the logical tensor: counts (values, zeros, NaN,
//! ±inf, histogram bins) × m, L2 × √m; min, max, mean, std and abs-max are unchanged (a multiset
//! repeated m times has the same mean and population variance). Quantiles of the reduced view
//! are reported as not exact, with the whole range as their error bound. O(dimensions).

use super::engine::TensorStats;
use crate::format::TensorInfo;

/// The view of the distinct elements and their multiplicity, or None when no dimension repeats.
pub fn reduce(t: &TensorInfo) -> Option<(TensorInfo, u64)> {
    let repeats = |n: u64, s: u64| n > 1 && s == 0;
    if t.shape.contains(&0) || !t.shape.iter().zip(&t.strides).any(|(&n, &s)| repeats(n, s)) {
        return None;
    }
    let mut r = t.clone();
    let mut m = 1u64;
    r.shape.clear();
    r.strides.clear();
    for (&n, &s) in t.shape.iter().zip(&t.strides) {
        if repeats(n, s) {
            m = m.checked_mul(n)?;
        } else {
            r.shape.push(n);
            r.strides.push(s);
        }
    }
    Some((r, m))
}

/// Statistics of the logical tensor from those of its reduced view (see the module doc).
pub fn scale(s: &mut TensorStats, m: u64) {
    let mul = |c: &mut u64| *c = c.saturating_mul(m);
    mul(&mut s.count);
    mul(&mut s.zeros);
    mul(&mut s.nan);
    mul(&mut s.posinf);
    mul(&mut s.neginf);
    s.histogram.counts.iter_mut().for_each(mul);
    s.l2 *= (m as f64).sqrt();
    if let Some(c) = s.complex.as_mut() {
        for p in [&mut c.real, &mut c.imag] {
            mul(&mut p.count);
            mul(&mut p.zeros);
            mul(&mut p.nan);
            mul(&mut p.posinf);
            mul(&mut p.neginf);
        }
    }
    if s.quantiles.is_some() && m > 1 {
        s.quantiles_exact = false;
        if let (Some(lo), Some(hi)) = (s.min, s.max) {
            s.quantile_error_bound = s.quantile_error_bound.max(hi - lo);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::{DType, TensorKind};

    #[test]
    fn drops_repeated_dimensions() {
        let t = TensorInfo {
            path: vec!["e".into()],
            dtype: DType::F32,
            shape: vec![1 << 40, 3, 1, 5],
            strides: vec![0, 1, 0, 0],
            storage_offset: 0,
            storage: Some(0),
            requires_grad: false,
            parameter: false,
            kind: TensorKind::Dense,
        };
        let (r, m) = reduce(&t).unwrap();
        assert_eq!((r.shape, r.strides, m), (vec![3, 1], vec![1, 0], 5 << 40));
        let mut plain = t.clone();
        plain.strides = vec![15, 5, 5, 1];
        assert!(reduce(&plain).is_none());
    }
}
