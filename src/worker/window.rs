//! The value viewer's reads: a window of a tensor's values, either a run of elements in
//! row-major order or a rectangle of any 2-D plane of an N-D tensor.
//!
//! Contract: [`offsets`] turns a [`Window`] into the row-major element indices it covers
//! (rectangle cells row by row), checking every axis and index against the shape and the
//! window's size against [`MAX_CELLS`]; [`read`] reads exactly those elements with
//! [`crate::format::data::read_tensor_range`], merging nearby indices into one read (a gap of at
//! most [`MAX_GAP`] elements) so a column of a wide matrix is not one read per cell, and
//! answers their display texts and numbers (complex values: the texts are `a+bj`, the numbers
//! their real parts); with a cast, of the values as the export casts them.

use super::protocol::{Window, WindowReply};
use crate::display::value_texts;
use crate::format::element::{decode_real, Caster, Decoder};
use crate::format::{Checkpoint, DKind, DType, FormatError, Source};

/// Most cells one window may hold.
pub const MAX_CELLS: u64 = 4096;
/// Elements skipped inside one read rather than starting a new one.
pub const MAX_GAP: u64 = 4096;

/// Row-major element indices of `w` in a tensor of `shape`, in the window's order.
pub fn offsets(shape: &[u64], w: &Window) -> Result<Vec<u64>, String> {
    let numel = shape
        .iter()
        .try_fold(1u64, |a, &d| a.checked_mul(d))
        .ok_or("element count overflows")?;
    match w {
        Window::Flat { first, count } => {
            let count = (*count as u64).min(MAX_CELLS);
            if *first > numel {
                return Err(format!("element {first} is past the {numel} elements"));
            }
            Ok((*first..(*first + count).min(numel)).collect())
        }
        Window::Plane {
            row_axis,
            col_axis,
            index,
            row0,
            rows,
            col0,
            cols,
        } => {
            let nd = shape.len();
            let (ra, ca) = (*row_axis as usize, *col_axis as usize);
            if ra >= nd || ca >= nd || ra == ca {
                return Err(format!(
                    "axes {ra} and {ca} are not two different axes of a {nd}-D tensor"
                ));
            }
            if index.len() != nd {
                return Err(format!("{} indices given for a {nd}-D tensor", index.len()));
            }
            for (d, (&i, &n)) in index.iter().zip(shape).enumerate() {
                if d != ra && d != ca && i >= n {
                    return Err(format!("index {i} of axis {d} is outside its size {n}"));
                }
            }
            if *rows as u64 * *cols as u64 > MAX_CELLS {
                return Err(format!("a window holds at most {MAX_CELLS} values"));
            }
            // row-major strides of the logical tensor
            let mut stride = vec![1u64; nd];
            for d in (0..nd.saturating_sub(1)).rev() {
                stride[d] = stride[d + 1] * shape[d + 1];
            }
            let base: u64 = (0..nd)
                .filter(|&d| d != ra && d != ca)
                .map(|d| index[d] * stride[d])
                .sum();
            let r_end = (row0.saturating_add(*rows as u64)).min(shape[ra]);
            let c_end = (col0.saturating_add(*cols as u64)).min(shape[ca]);
            let mut out = Vec::new();
            for r in (*row0).min(r_end)..r_end {
                for c in (*col0).min(c_end)..c_end {
                    out.push(base + r * stride[ra] + c * stride[ca]);
                }
            }
            Ok(out)
        }
    }
}

/// Runs `(first, count)` covering sorted `idx`, merging gaps of at most [`MAX_GAP`].
fn runs(sorted: &[u64]) -> Vec<(u64, u64)> {
    let mut out: Vec<(u64, u64)> = vec![];
    for &i in sorted {
        match out.last_mut() {
            Some((f, n)) if i < *f + *n => {}
            Some((f, n)) if i - (*f + *n) <= MAX_GAP => *n = i - *f + 1,
            _ => out.push((i, 1)),
        }
    }
    out
}

/// Read window `w` of tensor `index`; with `cast`, of its values cast to that dtype the way
/// the export writes them ([`Caster`]; ignored when it is not a float cast of the stored dtype).
pub fn read(
    ckpt: &Checkpoint,
    sources: &[&dyn Source],
    index: usize,
    w: &Window,
    cast: Option<DType>,
) -> Result<(Vec<String>, Vec<f64>), FormatError> {
    let t = &ckpt.tensors[index];
    let idx = offsets(&t.shape, w).map_err(|e| FormatError::at(t.path_string(), e))?;
    let mut sorted = idx.clone();
    crate::order::sort(&mut sorted);
    sorted.dedup();
    let mut caster = cast
        .filter(|&to| to != t.dtype)
        .and_then(|to| Caster::new(t.dtype, to));
    let dtype = caster.as_ref().map_or(t.dtype, |c| c.to);
    let esz = dtype.size();
    let dec = Decoder::new(dtype);
    let complex = dtype.kind() == DKind::Complex;
    // (element, texts, numbers) of every run
    let mut got: Vec<(u64, Vec<String>, Vec<f64>)> = vec![];
    let mut cast_bytes = vec![];
    for (first, count) in runs(&sorted) {
        let mut bytes = crate::format::data::read_tensor_range(ckpt, sources, index, first, count)?;
        if let Some(c) = caster.as_mut() {
            cast_bytes.clear();
            c.convert(&bytes, &mut cast_bytes);
            std::mem::swap(&mut bytes, &mut cast_bytes);
        }
        let texts = value_texts(dtype, &bytes[..(count as usize * esz).min(bytes.len())]);
        let mut nums = vec![];
        if complex {
            let mut im = vec![];
            dec.decode_complex(&bytes, &mut nums, &mut im);
        } else {
            decode_real(&dec, &bytes, &mut nums, &mut vec![]);
        }
        got.push((first, texts, nums));
    }
    let mut texts = Vec::with_capacity(idx.len());
    let mut nums = Vec::with_capacity(idx.len());
    for i in idx {
        let k = got.partition_point(|(f, _, _)| *f <= i) - 1;
        let (f, t, n) = &got[k];
        let j = (i - f) as usize;
        texts.push(t.get(j).cloned().unwrap_or_default());
        nums.push(n.get(j).copied().unwrap_or(f64::NAN));
    }
    Ok((texts, nums))
}

/// The answer to a `window` request.
pub fn reply(id: u32, tensor: u32, r: (Vec<String>, Vec<f64>)) -> WindowReply {
    WindowReply {
        id,
        tensor,
        values: r.0,
        numbers: r.1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plane(ra: u32, ca: u32, index: Vec<u64>, r: (u64, u32), c: (u64, u32)) -> Window {
        Window::Plane {
            row_axis: ra,
            col_axis: ca,
            index,
            row0: r.0,
            rows: r.1,
            col0: c.0,
            cols: c.1,
        }
    }

    #[test]
    fn plane_offsets_follow_row_major_order() {
        // shape [2, 3, 4]: element (a, b, c) is at 12a + 4b + c
        let s = [2, 3, 4];
        // axes (1, 2) at a = 1: rows b, columns c
        let o = offsets(&s, &plane(1, 2, vec![1, 0, 0], (0, 3), (0, 4))).unwrap();
        assert_eq!(o, (12..24).collect::<Vec<_>>());
        // axes (2, 0) at b = 2, a window: rows c = 1..3, columns a = 0..2
        let o = offsets(&s, &plane(2, 0, vec![0, 2, 0], (1, 2), (0, 5))).unwrap();
        assert_eq!(o, vec![9, 21, 10, 22]);
        // the window is clipped at the edges
        let o = offsets(&s, &plane(0, 1, vec![0, 0, 3], (1, 9), (2, 9))).unwrap();
        assert_eq!(o, vec![12 + 8 + 3]);
        assert!(offsets(&s, &plane(0, 0, vec![0, 0, 0], (0, 1), (0, 1))).is_err());
        assert!(offsets(&s, &plane(0, 1, vec![0, 0, 4], (0, 1), (0, 1))).is_err());
        assert!(offsets(&s, &plane(0, 3, vec![0, 0, 0], (0, 1), (0, 1))).is_err());
        assert!(offsets(&s, &plane(0, 1, vec![0, 0], (0, 1), (0, 1))).is_err());
        assert!(offsets(&s, &plane(0, 1, vec![0, 0, 0], (0, 4097), (0, 1))).is_err());
        let f = Window::Flat {
            first: 20,
            count: 10,
        };
        assert_eq!(offsets(&s, &f).unwrap(), (20..24).collect::<Vec<_>>());
    }

    #[test]
    fn nearby_indices_share_a_read() {
        assert_eq!(runs(&[1, 2, 3, 10]), vec![(1, 10)]);
        assert_eq!(runs(&[0, 5000]), vec![(0, 1), (5000, 1)]);
        assert_eq!(runs(&[]), vec![]);
    }

    #[test]
    fn reads_the_values_of_a_plane() {
        use crate::stats::run::tests::sample;
        let (ckpt, src) = sample();
        // tensor 0 of the sample is a/w, float32 [2, 3]
        let i = ckpt.tensors.iter().position(|t| t.shape == [2, 3]).unwrap();
        let all = read(
            &ckpt,
            &[&src],
            i,
            &Window::Flat { first: 0, count: 6 },
            None,
        )
        .unwrap();
        // its transpose: rows are columns
        let (texts, nums) = read(
            &ckpt,
            &[&src],
            i,
            &plane(1, 0, vec![0, 0], (0, 3), (0, 2)),
            None,
        )
        .unwrap();
        let want: Vec<f64> = [0, 3, 1, 4, 2, 5].iter().map(|&k| all.1[k]).collect();
        assert_eq!(nums, want);
        assert_eq!(texts.len(), 6);
    }
}
