//! Expanded (zero-stride) views: statistics in O(storage), not O(view).
//!
//! Contract: a dimension of size `n > 1` with stride 0 repeats the same elements `n` times
//! (`torch.zeros(3).expand(2**40, 3)`). [`reduce`] drops those dimensions and returns the view of
//! the distinct elements plus the multiplicity `m` (the product of the dropped sizes) — every
//! distinct element occurs exactly `m` times in the logical tensor. [`scale`] turns the
//! statistics of the reduced view into those of the logical tensor: counts (values, zeros, NaN,
//! ±inf, histogram bins) × m, L2 × √m; min, max, mean, std and abs-max are unchanged (a multiset
//! repeated m times has the same mean and population variance). Quantiles: [`repeated_quantiles`]
//! gives numpy's exact linear quantiles of the logical tensor from the distinct elements (the
//! order statistic of rank r of the logical tensor is the one of rank ⌊r / m⌋ of the distinct
//! ones); where that is not computed (complex, dequantized or sign-flipped tensors, or more
//! distinct values than the exact-quantile budget) [`scale`] marks the quantiles of the reduced
//! view as not exact, with the whole range as their error bound. O(dimensions) plus one read of
//! the distinct elements.

use super::engine::TensorStats;
use super::quantile::{lerp, linear_ranks, Quantiles, LEVELS};
use crate::format::data::read_tensor;
use crate::format::element::{Decoder, Lane};
use crate::format::{Checkpoint, Result, Source, TensorInfo};

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

/// Tensor `i` of `ckpt` as a one-tensor checkpoint of its distinct elements (see [`reduce`]),
/// with their multiplicity; None when no dimension repeats or the tensor has no data.
pub fn reduced_checkpoint(ckpt: &Checkpoint, i: usize) -> Option<(Checkpoint, u64)> {
    let (rt, m) = reduce(&ckpt.tensors[i])?;
    let s = rt.storage?;
    let one = Checkpoint {
        format: ckpt.format,
        root: crate::format::Node::None,
        tensors: vec![TensorInfo {
            storage: Some(0),
            ..rt
        }],
        storages: vec![ckpt.storages.get(s)?.clone()],
        safety: Default::default(),
        metadata: vec![],
        files: ckpt.files.clone(),
        notes: vec![],
    };
    Some((one, m))
}

/// Statistics of the logical tensor from those of its reduced view (see the module doc).
pub fn scale(s: &mut TensorStats, m: u64) {
    s.summary.scale_counts(m);
    s.histogram
        .counts
        .iter_mut()
        .for_each(|c| *c = c.saturating_mul(m));
    s.l2 *= (m as f64).sqrt();
    if let Some(c) = s.complex.as_mut() {
        c.real.scale_counts(m);
        c.imag.scale_counts(m);
    }
    if s.quantiles.is_some() && m > 1 {
        s.quantiles_exact = false;
        if let (Some(lo), Some(hi)) = (s.summary.min, s.summary.max) {
            s.quantile_error_bound = s.quantile_error_bound.max(hi - lo);
        }
    }
}

/// numpy's linear quantiles of a multiset in which every one of `finite` occurs `m` times.
pub fn repeated_quantiles(mut finite: Vec<f64>, m: u64) -> Option<Quantiles> {
    if finite.is_empty() || m == 0 {
        return None;
    }
    crate::order::sort_floats(&mut finite);
    let n = (finite.len() as u64).checked_mul(m)?;
    let at = |r: u64| finite[(r / m) as usize];
    Some(Quantiles::from_array(LEVELS.map(|q| {
        let (lo, hi, g) = linear_ranks(n, q);
        lerp(at(lo), at(hi), g)
    })))
}

/// The finite values of tensor `i` of `ck` (real dtypes only; None for complex).
pub fn finite_values(
    ck: &Checkpoint,
    sources: &[&dyn Source],
    i: usize,
    chunk: usize,
) -> Result<Option<Vec<f64>>> {
    let dec = Decoder::new(ck.tensors[i].dtype);
    let mut out = Vec::new();
    let mut f32s = Vec::new();
    match dec.lane() {
        Lane::Complex => return Ok(None),
        Lane::F32 => read_tensor(ck, sources, i, chunk, &mut |b| {
            f32s.clear();
            dec.decode_f32(b, &mut f32s);
            out.extend(f32s.iter().filter(|x| x.is_finite()).map(|&x| x as f64));
            Ok(())
        })?,
        Lane::F64 => read_tensor(ck, sources, i, chunk, &mut |b| {
            let start = out.len();
            dec.decode_f64(b, &mut out);
            let mut k = start;
            for j in start..out.len() {
                if out[j].is_finite() {
                    out[k] = out[j];
                    k += 1;
                }
            }
            out.truncate(k);
            Ok(())
        })?,
    }
    Ok(Some(out))
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

    #[test]
    fn quantiles_of_repeated_values_follow_the_ranks() {
        // expected values printed by numpy 2 (the venv's):
        // np.quantile(np.repeat(v, m), [.01, .05, .25, .5, .75, .95, .99])
        let q = repeated_quantiles(vec![3.0, 1.0, 2.0], 4).unwrap();
        assert_eq!(
            [q.p1, q.p5, q.p25, q.p50, q.p75, q.p95, q.p99],
            [1.0, 1.0, 1.0, 2.0, 3.0, 3.0, 3.0]
        );
        let q = repeated_quantiles(vec![3.0, 1.0, 2.0, 7.5], 3).unwrap();
        assert_eq!(
            [q.p1, q.p5, q.p25, q.p50, q.p75, q.p95, q.p99],
            [1.0, 1.0, 1.75, 2.5, 4.125, 7.5, 7.5]
        );
    }
}
