//! A 2-D tensor folded into at most `rows`×`cols` blocks of mean |x| (the page's heatmap).
//!
//! Contract: [`HeatmapFold::push`] takes the tensor's little-endian bytes row-major in chunks of
//! whole elements (any chunking); element (r, c) of an `nr`×`nc` tensor falls into block
//! (r·rows/nr, c·cols/nc). Non-finite values are left out; a block with no finite value is NaN.
//! Complex elements count by magnitude.

use crate::format::element::{decode_real, Decoder};
use crate::format::DType;

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
