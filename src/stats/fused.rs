//! One pass over two steps of a tensor: the current step's moments and the change sums
//! Σ(b − a)², Σa² against the previous step's same values, computed in one loop per block.
//!
//! Contract: [`ChangeMoments`] takes float32 (or float64) values of the current step `b` and the
//! same elements of the previous step `a`, in chunks of any length (the two sides always of equal
//! length), and cuts them into blocks of exactly [`BLOCK`] values counted from the tensor's first
//! value — the blocks of the statistics engine ([`super::engine`]) and of [`Lanes`]. Per block one
//! loop computes what [`super::moments::block_moments`] and [`Lanes`] compute separately, with the
//! same operations in the same order (min / max on order keys, the sum, the zero count and the
//! two change sums in eight f64 lanes by index), so the results are bit-identical to the
//! separate passes (the unit tests compare them); then the block's squared deviations from its
//! mean are summed over the block while it is in the first-level cache. A block holding NaN or
//! ±inf takes the engine's own path for its moments. Once the previous values are missing (not
//! comparable), only the moments go on. The hot loop is compiled for AVX2 too and chosen at run
//! time (identical results).

use super::engine::{as_values, TensorStats, BLOCK};
use super::moments::{block_moments, finite_moments, Moments, Val};
use super::patterns::Sum;

/// Σ(b − a)² and Σa² in eight f64 lanes chosen by the value's index (lane = index mod 8),
/// folded into compensated totals at the end of every [`BLOCK`] values (counted from the
/// tensor's start): the result does not depend on how the bytes were chunked, so the CLI and the
/// worker (different read sizes) agree to the bit.
#[derive(Default)]
pub struct Lanes {
    d: [f64; 8],
    p: [f64; 8],
    pos: u64,
    d2: Sum,
    p2: Sum,
}

impl Lanes {
    pub(crate) fn add<T: Copy + Into<f64>>(&mut self, prev: &[T], cur: &[T]) {
        let mut i = 0;
        while i < prev.len() {
            let in_block = (self.pos % BLOCK as u64) as usize;
            let take = (BLOCK - in_block).min(prev.len() - i);
            self.run(&prev[i..i + take], &cur[i..i + take]);
            i += take;
            if self.pos.is_multiple_of(BLOCK as u64) {
                self.fold();
            }
        }
    }

    #[inline(always)]
    fn one(&mut self, a: f64, b: f64) {
        let k = (self.pos % 8) as usize;
        self.d[k] += (b - a) * (b - a);
        self.p[k] += a * a;
        self.pos += 1;
    }

    /// Values within one block.
    fn run<T: Copy + Into<f64>>(&mut self, prev: &[T], cur: &[T]) {
        let mut j = 0;
        while j < prev.len() && !self.pos.is_multiple_of(8) {
            self.one(prev[j].into(), cur[j].into());
            j += 1;
        }
        let (pc, cc) = (prev[j..].chunks_exact(8), cur[j..].chunks_exact(8));
        let tail = j + pc.len() * 8;
        for (x, y) in pc.zip(cc) {
            for k in 0..8 {
                let (a, b): (f64, f64) = (x[k].into(), y[k].into());
                self.d[k] += (b - a) * (b - a);
                self.p[k] += a * a;
            }
        }
        self.pos += (tail - j) as u64;
        for k in tail..prev.len() {
            self.one(prev[k].into(), cur[k].into());
        }
    }

    fn fold(&mut self) {
        self.d2.add(self.d.iter().sum());
        self.p2.add(self.p.iter().sum());
        self.d = [0.0; 8];
        self.p = [0.0; 8];
    }

    /// (Σ(b − a)², Σa²).
    pub(crate) fn finish(&mut self) -> (f64, f64) {
        self.fold();
        (self.d2.get(), self.p2.get())
    }
}

/// What one fused loop gives for a block: min and max keys, the eight sum lanes, zeros, and
/// the eight lanes of each change sum.
struct BlockSums<T: Val> {
    min: T::Key,
    max: T::Key,
    s: [f64; 8],
    zeros: u64,
    d: [f64; 8],
    p: [f64; 8],
}

/// The fused loop over one block (`prev.len() == cur.len() <= BLOCK`). Every quantity has
/// eight lanes (min / max keys and zeros too, so the loop vectorises), reduced at the end.
#[inline(always)]
fn block_sums<T: Val>(prev: &[T], cur: &[T]) -> BlockSums<T> {
    let mut mn = [T::KEY_MAX; 8];
    let mut mx = [T::KEY_MIN; 8];
    let mut z = [0u32; 8];
    let (mut s, mut d, mut p) = ([0f64; 8], [0f64; 8], [0f64; 8]);
    let mut lane = |k: usize, x: T, y: T| {
        let key = y.key();
        mn[k] = mn[k].min(key);
        mx[k] = mx[k].max(key);
        z[k] += (y == T::ZERO) as u32;
        let (a, b) = (x.f64(), y.f64());
        s[k] += b;
        d[k] += (b - a) * (b - a);
        p[k] += a * a;
    };
    let (pc, cc) = (prev.chunks_exact(8), cur.chunks_exact(8));
    let (pt, ct) = (pc.remainder(), cc.remainder());
    for (x, y) in pc.zip(cc) {
        let x: &[T; 8] = x.try_into().expect("chunks of 8");
        let y: &[T; 8] = y.try_into().expect("chunks of 8");
        for k in 0..8 {
            lane(k, x[k], y[k]);
        }
    }
    for (k, (&x, &y)) in pt.iter().zip(ct).enumerate() {
        lane(k, x, y);
    }
    BlockSums {
        min: mn.into_iter().min().expect("8 lanes"),
        max: mx.into_iter().max().expect("8 lanes"),
        s,
        zeros: z.iter().map(|&c| c as u64).sum(),
        d,
        p,
    }
}

/// [`block_sums`] compiled for AVX2 when the CPU has it (same operations, same order).
#[inline]
fn block_sums_fast<T: Val>(prev: &[T], cur: &[T]) -> BlockSums<T> {
    #[cfg(all(target_arch = "x86_64", not(target_feature = "avx2")))]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2 (checked above).
        return unsafe { block_sums_avx2(prev, cur) };
    }
    block_sums(prev, cur)
}

#[cfg(all(target_arch = "x86_64", not(target_feature = "avx2")))]
#[target_feature(enable = "avx2")]
unsafe fn block_sums_avx2<T: Val>(prev: &[T], cur: &[T]) -> BlockSums<T> {
    block_sums(prev, cur)
}

/// The current step's moments and the change sums of one tensor, streamed (module doc).
pub struct ChangeMoments<T: Val> {
    mom: Moments,
    /// The change sums; None once the previous values are missing.
    lanes: Option<Lanes>,
    carry_prev: Vec<T>,
    carry_cur: Vec<T>,
    /// Copies of chunks whose bytes are not aligned for `T`.
    tmp_prev: Vec<T>,
    tmp_cur: Vec<T>,
    scratch: Vec<T>,
}

/// `bytes` as values: in place when aligned, else copied into `tmp`.
fn values<'b, T: Val>(bytes: &'b [u8], tmp: &'b mut Vec<T>) -> &'b [T] {
    if let Some(v) = as_values::<T>(bytes) {
        return v;
    }
    let size = std::mem::size_of::<T>();
    tmp.clear();
    tmp.resize(bytes.len() / size, T::ZERO);
    // SAFETY: `tmp` holds exactly bytes.len() / size values of T (f32 or f64: plain old data,
    // every bit pattern valid); on little-endian targets (the only ones `fused_ok` admits) the
    // stored bytes are the values' own.
    unsafe {
        std::ptr::copy_nonoverlapping(
            bytes.as_ptr(),
            tmp.as_mut_ptr() as *mut u8,
            tmp.len() * size,
        );
    }
    tmp
}

/// The fused pass applies to this target (little-endian: stored bytes are the values).
pub(crate) fn fused_ok() -> bool {
    cfg!(target_endian = "little")
}

impl<T: Val> ChangeMoments<T> {
    pub(crate) fn new() -> ChangeMoments<T> {
        ChangeMoments {
            mom: Moments::default(),
            lanes: Some(Lanes::default()),
            carry_prev: Vec::with_capacity(BLOCK),
            carry_cur: Vec::with_capacity(BLOCK),
            tmp_prev: Vec::new(),
            tmp_cur: Vec::new(),
            scratch: Vec::new(),
        }
    }

    /// The next values of the current step (`cur`, little-endian bytes of `T`) and the previous
    /// step's same elements (`prev`, as many bytes), or None when they are not comparable.
    pub(crate) fn add(&mut self, prev: Option<&[u8]>, cur: &[u8]) {
        let mut tmp_cur = std::mem::take(&mut self.tmp_cur);
        let mut tmp_prev = std::mem::take(&mut self.tmp_prev);
        let c = values::<T>(cur, &mut tmp_cur);
        let p = match prev.filter(|p| p.len() == cur.len()) {
            Some(p) if self.lanes.is_some() => Some(values::<T>(p, &mut tmp_prev)),
            _ => None,
        };
        self.add_values(p, c);
        self.tmp_cur = tmp_cur;
        self.tmp_prev = tmp_prev;
    }

    fn add_values(&mut self, prev: Option<&[T]>, cur: &[T]) {
        if prev.is_none() {
            self.lanes = None;
        }
        let mut i = 0;
        if !self.carry_cur.is_empty() {
            let take = (BLOCK - self.carry_cur.len()).min(cur.len());
            self.carry_cur.extend_from_slice(&cur[..take]);
            if let Some(p) = prev {
                self.carry_prev.extend_from_slice(&p[..take]);
            }
            i = take;
            if self.carry_cur.len() < BLOCK {
                return;
            }
            let (cp, cc) = (
                std::mem::take(&mut self.carry_prev),
                std::mem::take(&mut self.carry_cur),
            );
            self.block(&cp, &cc);
            self.carry_prev = cp;
            self.carry_cur = cc;
            self.carry_prev.clear();
            self.carry_cur.clear();
        }
        while cur.len() - i >= BLOCK {
            let p = prev.map_or(&[][..], |p| &p[i..i + BLOCK]);
            self.block(p, &cur[i..i + BLOCK]);
            i += BLOCK;
        }
        self.carry_cur.extend_from_slice(&cur[i..]);
        if let Some(p) = prev {
            self.carry_prev.extend_from_slice(&p[i..]);
        }
    }

    /// One block (the tensor's next [`BLOCK`] values, or its last ones); `prev` is ignored once
    /// the change is not comparable.
    fn block(&mut self, prev: &[T], cur: &[T]) {
        let Some(lanes) = self.lanes.as_mut() else {
            self.mom.merge(&block_moments(cur, &mut self.scratch));
            return;
        };
        let r = block_sums_fast(prev, cur);
        for k in 0..8 {
            lanes.d[k] += r.d[k];
            lanes.p[k] += r.p[k];
        }
        lanes.pos += cur.len() as u64;
        if lanes.pos.is_multiple_of(BLOCK as u64) {
            lanes.fold();
        }
        let sum = ((r.s[0] + r.s[1]) + (r.s[2] + r.s[3])) + ((r.s[4] + r.s[5]) + (r.s[6] + r.s[7]));
        let (mn, mx) = (T::from_key(r.min), T::from_key(r.max));
        let m = if cur.is_empty() {
            block_moments(cur, &mut self.scratch)
        } else if sum.is_finite() && mn.is_finite_val() && mx.is_finite_val() {
            finite_moments(cur, cur.len() as u64, (mn, mx, sum, r.zeros))
        } else {
            block_moments(cur, &mut self.scratch)
        };
        self.mom.merge(&m);
    }

    /// The moments-only statistics of the current step and, when comparable, the change sums
    /// (Σ(b − a)², Σa²).
    pub(crate) fn finish(mut self) -> (TensorStats, Option<(f64, f64)>) {
        let (cp, cc) = (
            std::mem::take(&mut self.carry_prev),
            std::mem::take(&mut self.carry_cur),
        );
        if !cc.is_empty() {
            self.block(&cp, &cc);
        }
        let stats = TensorStats::of_moments(&self.mom);
        (stats, self.lanes.as_mut().map(Lanes::finish))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::DType;
    use crate::stats::engine::{no_progress, tensor_stats, StatsInput, StatsOptions};

    #[test]
    fn change_sums_do_not_depend_on_chunking() {
        let a: Vec<f64> = (0..10_000)
            .map(|i| ((i * 7919) % 1000) as f64 * 1e-3 + 1.0)
            .collect();
        let b: Vec<f64> = a
            .iter()
            .enumerate()
            .map(|(i, x)| x + (i % 13) as f64 * 1e-7)
            .collect();
        let sums = |chunk: usize| {
            let mut l = Lanes::default();
            for (x, y) in a.chunks(chunk).zip(b.chunks(chunk)) {
                l.add(x, y);
            }
            l.finish()
        };
        let one = sums(10_000);
        assert_eq!(sums(3), one);
        assert_eq!(sums(4096), one);
        assert_eq!(sums(777), one);
        let want: f64 = a.iter().zip(&b).map(|(x, y)| (y - x) * (y - x)).sum();
        assert!((one.0 - want).abs() <= 1e-12 * want);
    }

    fn bytes<T: Copy>(v: &[T]) -> Vec<u8> {
        let n = std::mem::size_of_val(v);
        // SAFETY: reading the values' own bytes (f32 / f64 test data).
        unsafe { std::slice::from_raw_parts(v.as_ptr() as *const u8, n) }.to_vec()
    }

    /// The engine's moments and [`Lanes`]' sums, separately, as before the fusion.
    fn separate(dtype: DType, prev: &[u8], cur: &[u8], n: u64) -> (TensorStats, (f64, f64)) {
        let opts = StatsOptions {
            moments_only: true,
            ..StatsOptions::default()
        };
        let mut replay = |sink: &mut dyn FnMut(&[u8]) -> crate::format::Result<()>| sink(cur);
        let s = tensor_stats(
            StatsInput::new(dtype, n),
            &opts,
            &mut replay,
            &mut no_progress,
        )
        .unwrap()
        .unwrap();
        let mut l = Lanes::default();
        match dtype {
            DType::F32 => {
                let f = |b: &[u8]| -> Vec<f32> {
                    b.chunks(4)
                        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
                        .collect()
                };
                l.add(&f(prev), &f(cur));
            }
            _ => {
                let f = |b: &[u8]| -> Vec<f64> {
                    b.chunks(8)
                        .map(|c| f64::from_le_bytes(c.try_into().unwrap()))
                        .collect()
                };
                l.add(&f(prev), &f(cur));
            }
        }
        (s, l.finish())
    }

    fn fused<T: Val>(prev: &[u8], cur: &[u8], chunk: usize) -> (TensorStats, Option<(f64, f64)>) {
        let mut f = ChangeMoments::<T>::new();
        // odd chunk sizes, and one misaligned copy of every chunk
        let size = std::mem::size_of::<T>();
        let step = chunk * size;
        for (p, c) in prev.chunks(step).zip(cur.chunks(step)) {
            let mut shifted = vec![0u8; c.len() + 1];
            shifted[1..].copy_from_slice(c);
            f.add(Some(p), &shifted[1..]);
        }
        f.finish()
    }

    #[test]
    fn fused_pass_equals_the_separate_passes_bit_for_bit() {
        let n = 3 * BLOCK + 1234;
        let prev: Vec<f32> = (0..n)
            .map(|i| ((i * 7919) % 1013) as f32 * 1e-3 - 0.4)
            .collect();
        let mut cur: Vec<f32> = prev
            .iter()
            .enumerate()
            .map(|(i, x)| x + (i % 17) as f32 * 1e-5)
            .collect();
        cur[5] = 0.0;
        cur[BLOCK + 9] = 0.0;
        let (pb, cb) = (bytes(&prev), bytes(&cur));
        let (s, sums) = separate(DType::F32, &pb, &cb, n as u64);
        for chunk in [n, BLOCK, 1000, 4097, 3] {
            let (f, fs) = fused::<f32>(&pb, &cb, chunk);
            assert_eq!(f, s, "chunk {chunk}");
            assert_eq!(fs, Some(sums), "chunk {chunk}");
        }
        assert_eq!(s.summary.zeros, 2);
        // NaN and inf in one block: the engine's path for that block; the sums are not finite
        cur[BLOCK + 3] = f32::NAN;
        cur[2 * BLOCK + 3] = f32::NEG_INFINITY;
        let cb = bytes(&cur);
        let (s, sums) = separate(DType::F32, &pb, &cb, n as u64);
        let (f, fs) = fused::<f32>(&pb, &cb, 1000);
        assert_eq!(f, s);
        assert_eq!((s.summary.nan, s.summary.neginf), (1, 1));
        assert!(fs.unwrap().0.is_nan() && sums.0.is_nan());
        // float64
        let p64: Vec<f64> = prev.iter().map(|&x| x as f64 * 3.0).collect();
        let c64: Vec<f64> = p64.iter().map(|x| x + 1e-9).collect();
        let (pb, cb) = (bytes(&p64), bytes(&c64));
        let (s, sums) = separate(DType::F64, &pb, &cb, n as u64);
        let (f, fs) = fused::<f64>(&pb, &cb, 777);
        assert_eq!((f, fs), (s, Some(sums)));
    }

    #[test]
    fn missing_previous_values_keep_the_moments() {
        let cur: Vec<f32> = (0..BLOCK + 10).map(|i| i as f32).collect();
        let cb = bytes(&cur);
        let (s, _) = separate(DType::F32, &cb, &cb, cur.len() as u64);
        let mut f = ChangeMoments::<f32>::new();
        f.add(Some(&cb[..400]), &cb[..400]);
        f.add(None, &cb[400..]);
        let (got, sums) = f.finish();
        assert_eq!((got, sums), (s, None));
    }
}
