//! A 2-D tensor folded into at most `rows`×`cols` blocks of mean |x| (the page's heatmap).
//!
//! Contract: [`HeatmapFold::push`] takes the tensor's little-endian bytes row-major in chunks of
//! whole elements (any chunking); element (r, c) of an `nr`×`nc` tensor falls into block
//! (r·rows/nr, c·cols/nc). Non-finite values are left out; a block with no finite value is NaN.
//! Complex elements count by magnitude.
//!
//! [`heatmap_of`] folds a tensor of a checkpoint. An expanded view (a dimension with stride 0,
//! `torch.zeros(1, 5).expand(2**40, 5)`) costs O(its distinct elements), not O(the view): every
//! repeated row (or column) is the same, so the blocks of one row (column) are computed and
//! copied to the others — exactly the means the whole view would give.

use crate::format::data::read_tensor;
use crate::format::element::{decode_real, Decoder};
use crate::format::{Checkpoint, DType, Result, Source};

/// Folds a 2-D tensor's elements into blocks as they stream past.
pub struct HeatmapFold {
    dec: Decoder,
    shape: (u64, u64),
    rows: u64,
    cols: u64,
    at: u64,
    sum: Vec<f64>,
    cnt: Vec<u64>,
    vals: Vec<f64>,
    scratch: Vec<f64>,
}

impl HeatmapFold {
    /// A fold of an `nr`×`nc` tensor of `dtype` into at most `h`×`w` blocks (at least 1×1).
    pub fn new(dtype: DType, (nr, nc): (u64, u64), (h, w): (u64, u64)) -> HeatmapFold {
        let rows = h.max(1).min(nr);
        let cols = w.max(1).min(nc);
        let n = (rows * cols) as usize;
        HeatmapFold {
            dec: Decoder::new(dtype),
            shape: (nr, nc),
            rows,
            cols,
            at: 0,
            sum: vec![0.0; n],
            cnt: vec![0; n],
            vals: vec![],
            scratch: vec![],
        }
    }

    /// Add the next elements.
    pub fn push(&mut self, bytes: &[u8]) {
        let (nr, nc) = self.shape;
        self.vals.clear();
        decode_real(&self.dec, bytes, &mut self.vals, &mut self.scratch);
        for &v in &self.vals {
            let (r, c) = (self.at / nc, self.at % nc);
            self.at += 1;
            if v.is_finite() {
                let cell = ((r * self.rows / nr) * self.cols + c * self.cols / nc) as usize;
                self.sum[cell] += v.abs();
                self.cnt[cell] += 1;
            }
        }
    }

    /// `(rows, cols, cells)`: the block grid and each block's mean |x|, row-major.
    pub fn finish(self) -> (u32, u32, Vec<f32>) {
        let cells = self
            .sum
            .iter()
            .zip(&self.cnt)
            .map(|(&s, &n)| {
                if n == 0 {
                    f32::NAN
                } else {
                    (s / n as f64) as f32
                }
            })
            .collect();
        (self.rows as u32, self.cols as u32, cells)
    }
}

/// The heatmap of 2-D tensor `i` of `ckpt` (non-empty, checked by the caller) in at most
/// `h`×`w` blocks: `(rows, cols, cells)` as [`HeatmapFold::finish`]. Read in `chunk`-byte pieces.
pub fn heatmap_of(
    ckpt: &Checkpoint,
    sources: &[&dyn Source],
    i: usize,
    (h, w): (u64, u64),
    chunk: usize,
) -> Result<(u32, u32, Vec<f32>)> {
    let t = &ckpt.tensors[i];
    let (nr, nc) = (t.shape[0], t.shape[1]);
    let (rows, cols) = (h.max(1).min(nr), w.max(1).min(nc));
    let fold_of = |ck: &Checkpoint, j: usize, shape: (u64, u64)| -> Result<_> {
        let mut fold = HeatmapFold::new(t.dtype, shape, (rows, cols));
        read_tensor(ck, sources, j, chunk, &mut |b| {
            fold.push(b);
            Ok(())
        })?;
        Ok(fold.finish())
    };
    let Some((one, _)) = super::expanded::reduced_checkpoint(ckpt, i) else {
        return fold_of(ckpt, i, (nr, nc));
    };
    // Which dimensions repeat decides the shape of the distinct elements.
    let rep = |d: usize| t.shape[d] > 1 && t.strides[d] == 0;
    let shape = (if rep(0) { 1 } else { nr }, if rep(1) { 1 } else { nc });
    let (r1, c1, cells) = fold_of(&one, 0, shape)?;
    let (r1, c1) = (r1 as u64, c1 as u64);
    let out = (0..rows)
        .flat_map(|r| {
            let src_r = if r1 == 1 { 0 } else { r };
            let cells = &cells;
            (0..cols).map(move |c| {
                let src_c = if c1 == 1 { 0 } else { c };
                cells[(src_r * c1 + src_c) as usize]
            })
        })
        .collect();
    Ok((rows as u32, cols as u32, out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::data::read_tensor_vec;

    /// Storage 0 of the sample holds the f32 values 1, -2, 3, 0, 5, 6.
    fn expanded(shape: [u64; 2], strides: [u64; 2]) -> (Checkpoint, crate::format::MemSource) {
        let (mut ck, src) = crate::stats::run::tests::sample();
        ck.tensors[0].shape = shape.to_vec();
        ck.tensors[0].strides = strides.to_vec();
        (ck, src)
    }

    fn fold_whole(ck: &Checkpoint, src: &dyn Source, hw: (u64, u64)) -> (u32, u32, Vec<f32>) {
        let t = &ck.tensors[0];
        let mut f = HeatmapFold::new(t.dtype, (t.shape[0], t.shape[1]), hw);
        f.push(&read_tensor_vec(ck, &[src], 0).unwrap());
        f.finish()
    }

    #[test]
    fn expanded_views_equal_the_whole_view() {
        for (shape, strides) in [([5, 3], [0, 1]), ([3, 7], [1, 0]), ([4, 6], [0, 0])] {
            let (ck, src) = expanded(shape, strides);
            for hw in [(1, 1), (2, 2), (3, 4), (64, 64)] {
                let got = heatmap_of(&ck, &[&src], 0, hw, 8).unwrap();
                assert_eq!(
                    got,
                    fold_whole(&ck, &src, hw),
                    "{shape:?} {strides:?} {hw:?}"
                );
            }
        }
    }

    #[test]
    fn huge_expanded_views_cost_their_distinct_elements() {
        // rows repeat 2^40 times: every row of blocks is |1|, |-2|, |3|
        let (ck, src) = expanded([1 << 40, 3], [0, 1]);
        let (r, c, cells) = heatmap_of(&ck, &[&src], 0, (2, 3), 8).unwrap();
        assert_eq!((r, c), (2, 3));
        assert_eq!(cells, [1.0, 2.0, 3.0, 1.0, 2.0, 3.0]);
        // columns repeat: rows 0..3 of |1|, |-2|, |3| spread over four column blocks
        let (ck, src) = expanded([3, 1 << 40], [1, 0]);
        let (r, c, cells) = heatmap_of(&ck, &[&src], 0, (3, 4), 8).unwrap();
        assert_eq!((r, c), (3, 4));
        assert_eq!(
            cells,
            [1.0, 1.0, 1.0, 1.0, 2.0, 2.0, 2.0, 2.0, 3.0, 3.0, 3.0, 3.0]
        );
    }
}
