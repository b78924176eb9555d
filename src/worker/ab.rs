//! The A/B view of one tensor: A's and B's histograms over one common range (numpy's bins of
//! `range=(min(a, b), max(a, b))`), and the histogram of the element-wise difference a − b
//! (computed in float64) when the shapes agree.
//!
//! Contract: [`ab_view`] finds A's tensor by its key (path joined by `.`) and B's through the
//! prefix maps (as `diff --map`), streams both in lockstep chunks of [`CHUNK`] elements twice
//! (ranges, then counts; nothing held whole), leaves non-finite values out (they are counted
//! apart) and bins exactly as `numpy.histogram` does ([`BinPlan`]). Complex tensors count by
//! magnitude.

use super::protocol::{AbReply, RequestId};
use crate::format::data::read_tensor_range;
use crate::format::element::{decode_real, Decoder};
use crate::format::{Checkpoint, Source};
use crate::stats::histogram::BinPlan;
use crate::stats::Histogram;

/// Elements per read.
pub const CHUNK: u64 = 1 << 20;

/// One side: its checkpoint and sources.
pub type Side<'a> = (&'a Checkpoint, &'a [&'a dyn Source]);

fn find(c: &Checkpoint, key: &str) -> Option<usize> {
    c.tensors
        .iter()
        .position(|t| t.path.join(".") == key || t.path.join("/") == key)
}

/// Stream tensor `i` of `side` in chunks, calling `f` with each chunk's values.
fn stream(side: Side, i: usize, f: &mut dyn FnMut(u64, &[f64])) -> Result<(), String> {
    let t = &side.0.tensors[i];
    let dec = Decoder::new(t.dtype);
    let n = t.numel();
    let (mut at, mut vals, mut scratch) = (0u64, vec![], vec![]);
    while at < n {
        let count = CHUNK.min(n - at);
        let bytes = read_tensor_range(side.0, side.1, i, at, count).map_err(|e| e.to_string())?;
        vals.clear();
        decode_real(&dec, &bytes, &mut vals, &mut scratch);
        f(at, &vals);
        at += count;
    }
    Ok(())
}

/// Finite (min, max) of `vals` folded into `mm`.
fn fold(mm: &mut Option<(f64, f64)>, vals: impl Iterator<Item = f64>) {
    for v in vals.filter(|v| v.is_finite()) {
        *mm = Some(match *mm {
            Some((a, b)) => (a.min(v), b.max(v)),
            None => (v, v),
        });
    }
}

fn histogram(plan: &Option<BinPlan>, counts: Vec<u64>) -> Histogram {
    match plan {
        Some(p) => Histogram {
            edges: p.edges.clone(),
            counts,
        },
        None => Histogram::default(),
    }
}

/// The A/B view of A's tensor `key` and B's tensor mapped through `maps`.
pub fn ab_view(
    id: RequestId,
    a: Side,
    b: Side,
    key: &str,
    maps: &[(String, String)],
    bins: u32,
) -> AbReply {
    let b_key = crate::stats::diff::map_key(key, maps);
    let mut r = AbReply {
        id,
        key: key.to_string(),
        b_key: b_key.clone(),
        ..AbReply::default()
    };
    let (Some(ia), Some(ib)) = (find(a.0, key), find(b.0, &b_key)) else {
        r.error = Some(format!("{key}: not in both files (B's name {b_key})"));
        return r;
    };
    let bins = (bins as usize).clamp(1, crate::stats::MAX_BINS);
    let same = a.0.tensors[ia].shape == b.0.tensors[ib].shape;
    r.same_shape = same;
    let run = || -> Result<AbReply, String> {
        let mut out = r.clone();
        // pass 1: ranges
        let (mut ma, mut mb, mut md) = (None, None, None);
        stream(a, ia, &mut |_, v| fold(&mut ma, v.iter().copied()))?;
        stream(b, ib, &mut |_, v| fold(&mut mb, v.iter().copied()))?;
        if same {
            differences(a, ia, b, ib, &mut |d| fold(&mut md, d.iter().copied()))?;
        }
        let both = match (ma, mb) {
            (Some((a0, a1)), Some((b0, b1))) => Some((a0.min(b0), a1.max(b1))),
            (x, None) | (None, x) => x,
        };
        let plan = both.map(|(lo, hi)| BinPlan::new(lo, hi, bins));
        let dplan = md.map(|(lo, hi)| BinPlan::new(lo, hi, bins));
        // pass 2: counts
        let count_into =
            |plan: &Option<BinPlan>, counts: &mut Vec<u64>, bad: &mut u64, v: &[f64]| {
                for &x in v {
                    match plan {
                        Some(p) if x.is_finite() => counts[p.index(x)] += 1,
                        _ => *bad += 1,
                    }
                }
            };
        let (mut ca, mut cb, mut cd) = (vec![0u64; bins], vec![0u64; bins], vec![0u64; bins]);
        stream(a, ia, &mut |_, v| {
            count_into(&plan, &mut ca, &mut out.nonfinite_a, v)
        })?;
        stream(b, ib, &mut |_, v| {
            count_into(&plan, &mut cb, &mut out.nonfinite_b, v)
        })?;
        if same {
            let bad = &mut out.nonfinite_diff;
            differences(a, ia, b, ib, &mut |d| count_into(&dplan, &mut cd, bad, d))?;
        }
        out.a = histogram(&plan, ca);
        out.b = histogram(&plan, cb);
        out.diff = if same {
            Some(histogram(&dplan, cd))
        } else {
            None
        };
        Ok(out)
    };
    match run() {
        Ok(x) => x,
        Err(e) => {
            r.error = Some(e);
            r
        }
    }
}

/// a − b of two tensors of the same shape, in lockstep chunks of [`CHUNK`] elements.
fn differences(
    a: Side,
    ia: usize,
    b: Side,
    ib: usize,
    f: &mut dyn FnMut(&[f64]),
) -> Result<(), String> {
    let n = a.0.tensors[ia].numel();
    let (mut at, mut av, mut bv, mut d) = (0, vec![], vec![], vec![]);
    while at < n {
        let count = CHUNK.min(n - at);
        av.clear();
        bv.clear();
        chunk(a, ia, at, count, &mut av)?;
        chunk(b, ib, at, count, &mut bv)?;
        d.clear();
        d.extend(av.iter().zip(&bv).map(|(x, y)| x - y));
        f(&d);
        at += count;
    }
    Ok(())
}

/// Elements `at..at + count` of tensor `i` as f64.
fn chunk(side: Side, i: usize, at: u64, count: u64, out: &mut Vec<f64>) -> Result<(), String> {
    let t = &side.0.tensors[i];
    let bytes = read_tensor_range(side.0, side.1, i, at, count).map_err(|e| e.to_string())?;
    decode_real(&Decoder::new(t.dtype), &bytes, out, &mut vec![]);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::run::tests::sample;

    #[test]
    fn a_tensor_against_itself() {
        let (ckpt, src) = sample();
        let s: &[&dyn Source] = &[&src];
        let key = ckpt.tensors[0].path.join(".");
        let r = ab_view(1, (&ckpt, s), (&ckpt, s), &key, &[], 4);
        assert_eq!(r.error, None);
        assert!(r.same_shape);
        assert_eq!(r.a, r.b);
        assert_eq!(r.a.counts.len(), 4);
        // a − a is 0 everywhere: numpy's range (−0.5, 0.5), all in the middle bins
        let d = r.diff.unwrap();
        assert_eq!(d.edges.first(), Some(&-0.5));
        assert_eq!(d.total(), r.a.total());
        let r = ab_view(1, (&ckpt, s), (&ckpt, s), "nope", &[], 4);
        assert!(r.error.unwrap().contains("not in both"));
    }
}
