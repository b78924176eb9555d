//! Streaming moments: count, min, max, mean, M2 (→ std, L2), zeros and non-finite counts.
//!
//! Contract / numerics: values arrive in blocks of at most a few thousand (see
//! [`crate::stats::BLOCK`]). Each block is reduced exactly as a small two-pass computation held
//! in L1 cache — first its f64 sum (eight independent lanes), hence its mean, then the f64 sum of
//! squared deviations from that mean — and the block summaries are combined with Chan, Golub &
//! LeVeque's pairwise update (`δ = mean_b − mean_a; mean += δ·n_b/n; M2 += M2_b + δ²·n_a·n_b/n`).
//! No sum of squares about zero is ever subtracted, so there is no cancellation when
//! |mean| ≫ std; error grows like O(ε·(block + number of blocks)), far below the 1e-6 relative
//! target for 10⁸ elements. Only finite values enter min/max/mean/M2; NaN and ±inf are counted.
//!
//! Fast path: a block is first reduced optimistically (min/max by compare-select, which skips
//! NaN, and the f64 sum); a non-finite sum or extreme means the block held NaN or ±inf (or f64
//! values whose sum overflows) and only then is it compacted to its finite values.

/// A float lane the kernels work on (`f32` or `f64`).
pub trait Val: Copy + PartialOrd + Default + Send + Sync + 'static {
    const INF: Self;
    const NEG_INF: Self;
    const ZERO: Self;
    /// A signed integer whose order is the float order for non-NaN values (−0 just below +0):
    /// integer min/max reductions vectorise where float compare-selects do not.
    type Key: Ord + Copy;
    const KEY_MAX: Self::Key;
    const KEY_MIN: Self::Key;
    fn key(self) -> Self::Key;
    fn from_key(k: Self::Key) -> Self;
    fn f64(self) -> f64;
    fn is_finite_val(self) -> bool;
    fn is_nan_val(self) -> bool;
    /// The slice as `f32`s when `Self` is `f32` (the histogram's fine index is then computed in
    /// f32 lanes, four per wasm SIMD operation instead of two).
    fn as_f32s(xs: &[Self]) -> Option<&[f32]>;
    /// A float32 value as `Self` (used where [`Val::as_f32s`] gave `Some`).
    #[cfg(target_arch = "wasm32")]
    fn from_f32(x: f32) -> Self;
}

/// The items of [`Val`] that `f32` and `f64` spell alike; `$key` is the signed integer of the
/// float's width (the key flips the magnitude bits of negatives so integer order is float order).
macro_rules! float_val {
    ($t:ty, $key:ty) => {
        const INF: Self = <$t>::INFINITY;
        const NEG_INF: Self = <$t>::NEG_INFINITY;
        const ZERO: Self = 0.0;
        type Key = $key;
        const KEY_MAX: $key = <$key>::MAX;
        const KEY_MIN: $key = <$key>::MIN;
        #[inline(always)]
        fn key(self) -> $key {
            let b = self.to_bits() as $key;
            b ^ ((b >> (<$key>::BITS - 1)) & <$key>::MAX)
        }
        #[inline(always)]
        fn from_key(k: $key) -> $t {
            <$t>::from_bits((k ^ ((k >> (<$key>::BITS - 1)) & <$key>::MAX)) as _)
        }
        #[inline(always)]
        fn f64(self) -> f64 {
            f64::from(self)
        }
        #[inline(always)]
        fn is_finite_val(self) -> bool {
            self.is_finite()
        }
        #[inline(always)]
        fn is_nan_val(self) -> bool {
            self.is_nan()
        }
    };
}

impl Val for f32 {
    float_val!(f32, i32);
    #[inline(always)]
    fn as_f32s(xs: &[f32]) -> Option<&[f32]> {
        Some(xs)
    }
    #[cfg(target_arch = "wasm32")]
    #[inline(always)]
    fn from_f32(x: f32) -> f32 {
        x
    }
}

impl Val for f64 {
    float_val!(f64, i64);
    #[inline(always)]
    fn as_f32s(_: &[f64]) -> Option<&[f32]> {
        None
    }
    #[cfg(target_arch = "wasm32")]
    #[inline(always)]
    fn from_f32(x: f32) -> f64 {
        f64::from(x)
    }
}

/// Running moments over the values seen so far.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Moments {
    /// All values, finite or not.
    pub count: u64,
    /// Finite values.
    pub n: u64,
    /// Running mean used by Chan's update of `m2`.
    pub mean: f64,
    /// Σ x over finite values, Neumaier-compensated across blocks (`sum + comp`): the reported
    /// mean is `(sum + comp) / n`, exact whenever the block sums are (ints, bool, float8).
    pub sum: f64,
    pub comp: f64,
    /// Sum of squared deviations from the mean (finite values).
    pub m2: f64,
    pub min: f64,
    pub max: f64,
    pub zeros: u64,
    pub nan: u64,
    pub posinf: u64,
    pub neginf: u64,
}

impl Default for Moments {
    fn default() -> Self {
        Moments {
            count: 0,
            n: 0,
            mean: 0.0,
            sum: 0.0,
            comp: 0.0,
            m2: 0.0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
            zeros: 0,
            nan: 0,
            posinf: 0,
            neginf: 0,
        }
    }
}

impl Moments {
    /// Combine another summary into this one (Chan et al.).
    pub fn merge(&mut self, b: &Moments) {
        self.count += b.count;
        self.zeros += b.zeros;
        self.nan += b.nan;
        self.posinf += b.posinf;
        self.neginf += b.neginf;
        if b.n == 0 {
            return;
        }
        // Neumaier: add b.sum, keep the rounding error.
        let t = self.sum + b.sum;
        self.comp += if self.sum.abs() >= b.sum.abs() {
            (self.sum - t) + b.sum
        } else {
            (b.sum - t) + self.sum
        } + b.comp;
        self.sum = t;
        if self.n == 0 {
            self.n = b.n;
            self.mean = b.mean;
            self.m2 = b.m2;
            self.min = b.min;
            self.max = b.max;
            return;
        }
        let na = self.n as f64;
        let nb = b.n as f64;
        let n = self.n + b.n;
        let nf = n as f64;
        let delta = b.mean - self.mean;
        self.mean += delta * (nb / nf);
        self.m2 += b.m2 + delta * delta * (na * (nb / nf));
        self.n = n;
        if b.min < self.min {
            self.min = b.min;
        }
        if b.max > self.max {
            self.max = b.max;
        }
    }

    /// Add one block of values.
    pub fn add_block<T: Val>(&mut self, xs: &[T], scratch: &mut Vec<T>) {
        let b = block_moments(xs, scratch);
        self.merge(&b);
    }

    /// Population variance of the finite values.
    pub fn variance(&self) -> Option<f64> {
        (self.n > 0).then(|| (self.m2 / self.n as f64).max(0.0))
    }
    /// Population standard deviation.
    pub fn std(&self) -> Option<f64> {
        self.variance().map(f64::sqrt)
    }
    /// sqrt(Σx²) over finite values, as `sqrt(M2 + n·mean²)` (both terms non-negative); 0 when
    /// there are none.
    pub fn l2(&self) -> f64 {
        match self.mean() {
            Some(mean) => (self.m2 + self.n as f64 * mean * mean).sqrt(),
            None => 0.0,
        }
    }
    pub fn min(&self) -> Option<f64> {
        (self.n > 0).then_some(self.min)
    }
    pub fn max(&self) -> Option<f64> {
        (self.n > 0).then_some(self.max)
    }
    pub fn mean(&self) -> Option<f64> {
        (self.n > 0).then(|| (self.sum + self.comp) / self.n as f64)
    }
    pub fn absmax(&self) -> Option<f64> {
        (self.n > 0).then(|| self.max.abs().max(self.min.abs()))
    }
}

const L: usize = 8;

/// Min, max, f64 sum and zero count of a slice (at most 2^32 values); NaN are skipped by min/max
/// but poison the sum.
#[inline(always)]
fn reduce<T: Val>(xs: &[T]) -> (T, T, f64, u64) {
    // Simple loops over the (cache-resident) block: each vectorises on its own. min/max on
    // order-preserving integer keys; a NaN may then win min or max, but it also makes the sum
    // NaN, which sends the block to the slow path (see `block_moments`).
    let mut mn = T::KEY_MAX;
    let mut mx = T::KEY_MIN;
    for &x in xs {
        let k = x.key();
        mn = mn.min(k);
        mx = mx.max(k);
    }
    let mut s = [0f64; L];
    let mut it = xs.chunks_exact(L);
    for c in &mut it {
        let c: &[T; L] = c.try_into().unwrap();
        for i in 0..L {
            s[i] += c[i].f64();
        }
    }
    for (i, &x) in it.remainder().iter().enumerate() {
        s[i] += x.f64();
    }
    let zeros = xs.iter().filter(|&&x| x == T::ZERO).count() as u64;
    let sum = ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
    if xs.is_empty() {
        return (T::INF, T::NEG_INF, 0.0, 0);
    }
    (T::from_key(mn), T::from_key(mx), sum, zeros)
}

/// Σ (x − mean)² in f64 lanes.
#[inline(always)]
fn sq_dev<T: Val>(xs: &[T], mean: f64) -> f64 {
    let mut s = [0f64; L];
    let mut it = xs.chunks_exact(L);
    for c in &mut it {
        for i in 0..L {
            let d = c[i].f64() - mean;
            s[i] += d * d;
        }
    }
    for (i, &x) in it.remainder().iter().enumerate() {
        let d = x.f64() - mean;
        s[i] += d * d;
    }
    ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]))
}

/// [`reduce`] compiled for AVX2 when the CPU has it, float32 in wasm SIMD on wasm32 (same
/// operations, same order: identical results); the portable build elsewhere.
#[inline]
fn reduce_fast<T: Val>(xs: &[T]) -> (T, T, f64, u64) {
    #[cfg(target_arch = "wasm32")]
    if let Some(f) = T::as_f32s(xs) {
        let (mn, mx, sum, zeros) = super::simd::reduce_f32(f);
        return (T::from_f32(mn), T::from_f32(mx), sum, zeros);
    }
    #[cfg(all(target_arch = "x86_64", not(target_feature = "avx2")))]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2 (checked above).
        return unsafe { reduce_avx2(xs) };
    }
    reduce(xs)
}

#[cfg(all(target_arch = "x86_64", not(target_feature = "avx2")))]
#[target_feature(enable = "avx2")]
unsafe fn reduce_avx2<T: Val>(xs: &[T]) -> (T, T, f64, u64) {
    reduce(xs)
}

/// [`sq_dev`], dispatched like [`reduce_fast`].
#[inline]
fn sq_dev_fast<T: Val>(xs: &[T], mean: f64) -> f64 {
    #[cfg(target_arch = "wasm32")]
    if let Some(f) = T::as_f32s(xs) {
        return super::simd::sq_dev_f32(f, mean);
    }
    #[cfg(all(target_arch = "x86_64", not(target_feature = "avx2")))]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2 (checked above).
        return unsafe { sq_dev_avx2(xs, mean) };
    }
    sq_dev(xs, mean)
}

#[cfg(all(target_arch = "x86_64", not(target_feature = "avx2")))]
#[target_feature(enable = "avx2")]
unsafe fn sq_dev_avx2<T: Val>(xs: &[T], mean: f64) -> f64 {
    sq_dev(xs, mean)
}

pub(crate) fn finite_moments<T: Val>(
    xs: &[T],
    count: u64,
    sum_min_max: (T, T, f64, u64),
) -> Moments {
    let (mn, mx, sum, zeros) = sum_min_max;
    let n = xs.len() as u64;
    let mut m = Moments {
        count,
        n,
        zeros,
        ..Moments::default()
    };
    if n > 0 {
        let mean = sum / n as f64;
        m.mean = mean;
        m.sum = sum;
        m.m2 = sq_dev_fast(xs, mean);
        m.min = mn.f64();
        m.max = mx.f64();
    }
    m
}

/// Moments of one block. `scratch` is reused for compaction when the block holds non-finite values.
pub fn block_moments<T: Val>(xs: &[T], scratch: &mut Vec<T>) -> Moments {
    let r = reduce_fast(xs);
    if r.2.is_finite() && r.0.is_finite_val() && r.1.is_finite_val() || xs.is_empty() {
        return finite_moments(xs, xs.len() as u64, r);
    }
    // Slow path: count NaN / ±inf, keep the finite values.
    scratch.clear();
    let (mut nan, mut pinf, mut ninf) = (0u64, 0u64, 0u64);
    for &x in xs {
        if x.is_finite_val() {
            scratch.push(x);
        } else if x.is_nan_val() {
            nan += 1;
        } else if x > T::ZERO {
            pinf += 1;
        } else {
            ninf += 1;
        }
    }
    let r = reduce(scratch);
    let mut m = finite_moments(scratch, xs.len() as u64, r);
    m.nan = nan;
    m.posinf = pinf;
    m.neginf = ninf;
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    /// xorshift64* — deterministic test data without a dependency.
    pub(crate) struct Rng(pub u64);
    impl Rng {
        pub fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545F4914F6CDD1D)
        }
        pub fn unif(&mut self) -> f64 {
            (self.next() >> 11) as f64 / (1u64 << 53) as f64
        }
    }

    /// Neumaier-compensated sum: a reference more accurate than the code under test.
    fn csum(it: impl Iterator<Item = f64>) -> f64 {
        let (mut s, mut c) = (0f64, 0f64);
        for x in it {
            let t = s + x;
            c += if s.abs() >= x.abs() {
                (s - t) + x
            } else {
                (x - t) + s
            };
            s = t;
        }
        s + c
    }

    fn naive(xs: &[f64]) -> (f64, f64, f64, f64) {
        // Reference: two passes over the whole data with compensated sums.
        let n = xs.len() as f64;
        let mean = csum(xs.iter().copied()) / n;
        let var = csum(xs.iter().map(|x| (x - mean) * (x - mean))) / n;
        let mn = xs.iter().cloned().fold(f64::INFINITY, f64::min);
        let mx = xs.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        (mean, var.sqrt(), mn, mx)
    }

    fn rel(a: f64, b: f64) -> f64 {
        (a - b).abs() / b.abs().max(1e-300)
    }

    #[test]
    fn chan_merge_matches_two_pass_on_random_blocks() {
        let mut r = Rng(0x1234_5678_9abc_def1);
        let xs: Vec<f64> = (0..100_003).map(|_| 1000.0 + r.unif() * 0.01).collect();
        let mut m = Moments::default();
        let mut scratch = Vec::new();
        // Uneven block sizes to exercise the merge.
        let mut i = 0;
        let mut k = 1;
        while i < xs.len() {
            let j = (i + k).min(xs.len());
            m.add_block(&xs[i..j], &mut scratch);
            i = j;
            k = (k * 7 + 3) % 5000 + 1;
        }
        let (mean, std, mn, mx) = naive(&xs);
        assert_eq!(m.count, xs.len() as u64);
        assert_eq!(m.n, xs.len() as u64);
        assert!(
            rel(m.mean().unwrap(), mean) < 1e-15,
            "{:?} {}",
            m.mean(),
            mean
        );
        assert!(
            rel(m.std().unwrap(), std) < 1e-10,
            "{} {}",
            m.std().unwrap(),
            std
        );
        assert_eq!(m.min, mn);
        assert_eq!(m.max, mx);
        let l2 = xs.iter().map(|x| x * x).sum::<f64>().sqrt();
        assert!(rel(m.l2(), l2) < 1e-12);
    }

    #[test]
    fn merge_order_does_not_matter() {
        let mut r = Rng(99);
        let xs: Vec<f32> = (0..10_000).map(|_| (r.unif() * 2.0 - 1.0) as f32).collect();
        let mut scratch = Vec::new();
        let a = block_moments(&xs[..3000], &mut scratch);
        let b = block_moments(&xs[3000..], &mut scratch);
        let mut ab = a;
        ab.merge(&b);
        let mut ba = b;
        ba.merge(&a);
        let whole = block_moments(&xs, &mut scratch);
        assert!(rel(ab.mean, whole.mean) < 1e-12);
        assert!(rel(ba.m2, whole.m2) < 1e-12);
        assert_eq!((ab.min, ab.max), (whole.min, whole.max));
    }

    #[test]
    fn nonfinite_values_are_counted_not_averaged() {
        let xs = [
            1.0f32,
            f32::NAN,
            3.0,
            f32::INFINITY,
            f32::NEG_INFINITY,
            0.0,
            -0.0,
            f32::NAN,
        ];
        let mut s = Vec::new();
        let m = block_moments(&xs, &mut s);
        assert_eq!(m.count, 8);
        assert_eq!(m.n, 4);
        assert_eq!((m.nan, m.posinf, m.neginf, m.zeros), (2, 1, 1, 2));
        assert_eq!((m.min, m.max), (-0.0, 3.0));
        assert_eq!(m.mean(), Some(1.0));
        assert_eq!(m.std().unwrap(), (6.0f64 / 4.0).sqrt());
        assert_eq!(m.absmax(), Some(3.0));
    }

    #[test]
    fn all_nonfinite_or_empty() {
        let mut s = Vec::new();
        let m = block_moments(&[f64::NAN, f64::INFINITY], &mut s);
        assert_eq!((m.count, m.n), (2, 0));
        assert_eq!(m.min(), None);
        assert_eq!(m.std(), None);
        let e = block_moments::<f32>(&[], &mut Vec::new());
        assert_eq!(e.count, 0);
        assert_eq!(e.mean(), None);
    }

    #[test]
    fn large_mean_small_spread_is_stable() {
        // f16-like data: 1e4 + k·2^-? — the naive Σx² − n·mean² loses everything here.
        let xs: Vec<f32> = (0..1_000_000).map(|i| 4096.0 + (i % 4) as f32).collect();
        let mut m = Moments::default();
        let mut s = Vec::new();
        for c in xs.chunks(4096) {
            m.add_block(c, &mut s);
        }
        assert_eq!(m.mean(), Some(4097.5));
        assert!(rel(m.std().unwrap(), 1.25f64.sqrt()) < 1e-12);
    }
}
