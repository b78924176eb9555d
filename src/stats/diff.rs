//! Comparing two checkpoints: which keys are only in A, only in B, or in both with a
//! different dtype or shape (the three lists `load_state_dict(strict=True)` reports), and for
//! matching tensors how much the values differ.
//!
//! Contract:
//! - A key is a tensor's path joined by `/` (a plain state dict's own keys). A prefix mapping
//!   `(a_prefix, b_prefix)` — first matching rule wins — compares A's `a_prefix…` with B's
//!   `b_prefix…`; reported keys are A's (B's for `only_b`).
//! - Matching pairs with identical element bytes count as `identical`; the others are `changed`
//!   with, over the values as float64 (bool as 0/1, complex as real/imaginary pairs like
//!   `torch.view_as_real`, quantized as their integer codes): `max_abs = max|a−b|`,
//!   `rel_l2 = ‖a−b‖₂/‖a‖₂` (None when ‖a‖ = 0), `cosine = a·b/(‖a‖‖b‖)` (None when a norm is 0);
//!   all three None when either tensor holds a NaN. Sums are Neumaier-compensated.
//! - Tensors are streamed in lockstep chunk by chunk; neither is held whole unless it is a
//!   non-contiguous view of at most [`WHOLE_VIEW_LIMIT`] bytes.

use super::patterns::Sum;
use crate::format::data::{read_tensor_vec, TensorRanges};
use crate::format::element::{Decoder, Lane};
use crate::format::fastmap::KeyMap;
use crate::format::{Checkpoint, FormatError, Result, Source};
use serde::Serialize;

/// Non-contiguous views up to this size are read whole rather than element by element.
pub const WHOLE_VIEW_LIMIT: u64 = 512 << 20;
const CHUNK_ELEMS: u64 = 1 << 20;

/// dtype and shape of one side of a mismatch.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Side {
    pub dtype: String,
    pub shape: Vec<u64>,
}

/// A key present on both sides with a different dtype or shape.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Mismatch {
    pub key: String,
    pub a: Side,
    pub b: Side,
}

/// A matching pair whose values differ.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Changed {
    pub key: String,
    pub max_abs: Option<f64>,
    pub rel_l2: Option<f64>,
    pub cosine: Option<f64>,
    /// Index of the tensor in A and in B (not part of the CLI's JSON).
    #[serde(skip)]
    pub a_index: usize,
    #[serde(skip)]
    pub b_index: usize,
}

/// The comparison of two checkpoints.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct DiffReport {
    pub only_a: Vec<String>,
    pub only_b: Vec<String>,
    pub mismatched: Vec<Mismatch>,
    pub changed: Vec<Changed>,
    pub identical: u64,
}

/// Map an A key to its B key through the first matching rule (identity when none matches).
pub fn map_key(key: &str, maps: &[(String, String)]) -> String {
    for (a, b) in maps {
        if let Some(rest) = key.strip_prefix(a.as_str()) {
            return format!("{b}{rest}");
        }
    }
    key.to_string()
}

/// Append `bytes`' values as f64 (complex as real/imaginary pairs), via `f32buf` for f32 lanes.
pub(crate) fn decode(dec: &Decoder, bytes: &[u8], out: &mut Vec<f64>, f32buf: &mut Vec<f32>) {
    match dec.lane() {
        Lane::F64 => dec.decode_f64(bytes, out),
        Lane::F32 => {
            f32buf.clear();
            dec.decode_f32(bytes, f32buf);
            out.extend(f32buf.iter().map(|&x| x as f64));
        }
        Lane::Complex => {
            let (mut re, mut im) = (Vec::new(), Vec::new());
            dec.decode_complex(bytes, &mut re, &mut im);
            for (r, i) in re.into_iter().zip(im) {
                out.push(r);
                out.push(i);
            }
        }
    }
}

/// Reads elements of one tensor by ranges (whole-view fallback for strided views).
pub(crate) struct Elements<'a> {
    ckpt: &'a Checkpoint,
    index: usize,
    ranges: TensorRanges<'a>,
    whole: Option<Vec<u8>>,
}

impl<'a> Elements<'a> {
    pub(crate) fn new(
        ckpt: &'a Checkpoint,
        src: &'a [&'a dyn Source],
        index: usize,
    ) -> Result<Self> {
        let t = &ckpt.tensors[index];
        let whole = if !t.is_contiguous() && t.nbytes() <= WHOLE_VIEW_LIMIT {
            Some(read_tensor_vec(ckpt, src, index)?)
        } else {
            None
        };
        Ok(Elements {
            ckpt,
            index,
            ranges: TensorRanges::new(ckpt, src, index)?,
            whole,
        })
    }
    pub(crate) fn range(&self, first: u64, count: u64) -> Result<Vec<u8>> {
        let es = self.ckpt.tensors[self.index].dtype.size() as u64;
        match &self.whole {
            Some(w) => Ok(w[(first * es) as usize..((first + count) * es) as usize].to_vec()),
            None => self.ranges.read(first, count),
        }
    }
}

/// (max_abs, rel_l2, cosine) of a changed pair.
type Metrics = (Option<f64>, Option<f64>, Option<f64>);

/// Compare tensor `ai` of A with tensor `bi` of B (same dtype and shape). Returns None when the
/// bytes are identical.
fn compare(
    a: &Checkpoint,
    a_src: &[&dyn Source],
    ai: usize,
    b: &Checkpoint,
    b_src: &[&dyn Source],
    bi: usize,
    progress: &mut dyn FnMut(u64) -> bool,
) -> Result<Option<Metrics>> {
    let t = &a.tensors[ai];
    let numel = t.numel();
    let ea = Elements::new(a, a_src, ai)?;
    let eb = Elements::new(b, b_src, bi)?;
    let dec = Decoder::new(t.dtype);
    let (mut va, mut vb, mut scratch) = (Vec::new(), Vec::new(), Vec::new());
    let mut identical = true;
    let mut nan = false;
    let mut max_abs = 0f64;
    let (mut d2, mut a2, mut b2, mut ab) = (
        Sum::default(),
        Sum::default(),
        Sum::default(),
        Sum::default(),
    );
    let mut first = 0u64;
    while first < numel {
        let n = (numel - first).min(CHUNK_ELEMS);
        let (ba, bb) = (ea.range(first, n)?, eb.range(first, n)?);
        if ba != bb {
            identical = false;
        }
        va.clear();
        vb.clear();
        decode(&dec, &ba, &mut va, &mut scratch);
        decode(&dec, &bb, &mut vb, &mut scratch);
        for (&x, &y) in va.iter().zip(&vb) {
            if x.is_nan() || y.is_nan() {
                nan = true;
                continue;
            }
            let d = x - y;
            max_abs = max_abs.max(d.abs());
            d2.add(d * d);
            a2.add(x * x);
            b2.add(y * y);
            ab.add(x * y);
        }
        first += n;
        if !progress(n * t.dtype.size() as u64 * 2) {
            return Err(FormatError::new("cancelled"));
        }
    }
    if identical {
        return Ok(None);
    }
    if nan {
        return Ok(Some((None, None, None)));
    }
    let (na, nb) = (a2.get().sqrt(), b2.get().sqrt());
    let rel = if na > 0.0 {
        Some(d2.get().sqrt() / na)
    } else {
        None
    };
    let cos = if na > 0.0 && nb > 0.0 {
        Some(ab.get() / (na * nb))
    } else {
        None
    };
    Ok(Some((Some(max_abs), rel, cos)))
}

/// Compare checkpoints A and B. `progress(done, total)` gets bytes read; returning false cancels
/// (the result is then an error "cancelled").
pub fn diff(
    a: &Checkpoint,
    a_src: &[&dyn Source],
    b: &Checkpoint,
    b_src: &[&dyn Source],
    maps: &[(String, String)],
    progress: &mut dyn FnMut(u64, u64) -> bool,
) -> Result<DiffReport> {
    let mut b_keys: KeyMap<String, usize> = KeyMap::new();
    for (i, t) in b.tensors.iter().enumerate() {
        b_keys.entry(t.path.join("/")).or_insert(i);
    }
    let mut hit = vec![false; b.tensors.len()];
    let mut report = DiffReport::default();
    let mut pairs = vec![];
    for (ai, t) in a.tensors.iter().enumerate() {
        let key = t.path.join("/");
        match b_keys.get(&map_key(&key, maps)) {
            None => report.only_a.push(key),
            Some(&bi) => {
                hit[bi] = true;
                let u = &b.tensors[bi];
                if t.dtype != u.dtype || t.shape != u.shape {
                    report.mismatched.push(Mismatch {
                        key,
                        a: Side {
                            dtype: t.dtype.name().into(),
                            shape: t.shape.clone(),
                        },
                        b: Side {
                            dtype: u.dtype.name().into(),
                            shape: u.shape.clone(),
                        },
                    });
                } else {
                    pairs.push((key, ai, bi));
                }
            }
        }
    }
    for (bi, t) in b.tensors.iter().enumerate() {
        // a B tensor listed twice (a shared tensor under two paths) counts once
        if !hit[bi] && b_keys.get(&t.path.join("/")) == Some(&bi) {
            report.only_b.push(t.path.join("/"));
        }
    }
    let total: u64 = pairs
        .iter()
        .map(|(_, ai, _)| a.tensors[*ai].nbytes() * 2)
        .sum();
    let mut done = 0u64;
    for (key, ai, bi) in pairs {
        let has_data = a.tensors[ai].storage.is_some() && b.tensors[bi].storage.is_some();
        if !has_data {
            report.identical += 1; // meta tensors: nothing to compare beyond dtype and shape
            continue;
        }
        let r = compare(a, a_src, ai, b, b_src, bi, &mut |n| {
            done += n;
            progress(done, total)
        })
        .map_err(|e| e.within(key.clone()))?;
        match r {
            None => report.identical += 1,
            Some((max_abs, rel_l2, cosine)) => report.changed.push(Changed {
                key,
                max_abs,
                rel_l2,
                cosine,
                a_index: ai,
                b_index: bi,
            }),
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_maps_first_rule_wins() {
        let maps = vec![
            ("module.".to_string(), String::new()),
            ("m".to_string(), "x".to_string()),
        ];
        assert_eq!(map_key("module.fc.w", &maps), "fc.w");
        assert_eq!(map_key("mlp.w", &maps), "xlp.w");
        assert_eq!(map_key("fc.w", &maps), "fc.w");
        assert_eq!(
            map_key("fc.w", &[(String::new(), "backbone.".into())]),
            "backbone.fc.w"
        );
    }
}
