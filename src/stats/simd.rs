//! The float32 statistics kernels written in wasm SIMD (128-bit) for the worker.
//!
//! Contract: each function returns exactly — bit for bit — what its portable counterpart in
//! [`super::moments`] / [`super::histogram`] returns: the same f64 lanes summed in the same
//! order, the same integer keys for min/max, the same clamps and saturating truncation. They exist
//! because the worker is built for size (opt-level "z", see `Cargo.toml`), where LLVM neither
//! vectorises nor unrolls loops; written with explicit SIMD operations the loops run as fast as
//! the optimising build's (BENCHMARKS.md). Native builds keep the portable loops (vectorised by
//! the compiler, AVX2 when the CPU has it).

use super::moments::Val;
use std::arch::wasm32::*;

/// Widen the float32 lanes 0–1 and 2–3 of `v` to two `f64x2`.
macro_rules! widen {
    ($v:expr) => {{
        let v = $v;
        (
            f64x2_promote_low_f32x4(v),
            f64x2_promote_low_f32x4(i32x4_shuffle::<2, 3, 2, 3>(v, v)),
        )
    }};
}

/// The eight lanes (four `f64x2`) joined as the portable code joins its `[f64; 8]`, after the
/// scalar remainder `tail` (at most 7 values, lane `i` takes `tail[i]` through `add`).
#[inline(always)]
fn join(acc: [v128; 4], tail: &[f32], add: impl Fn(f64, f32) -> f64) -> f64 {
    let mut s = [
        f64x2_extract_lane::<0>(acc[0]),
        f64x2_extract_lane::<1>(acc[0]),
        f64x2_extract_lane::<0>(acc[1]),
        f64x2_extract_lane::<1>(acc[1]),
        f64x2_extract_lane::<0>(acc[2]),
        f64x2_extract_lane::<1>(acc[2]),
        f64x2_extract_lane::<0>(acc[3]),
        f64x2_extract_lane::<1>(acc[3]),
    ];
    for (i, &x) in tail.iter().enumerate() {
        s[i] = add(s[i], x);
    }
    ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]))
}

/// The four float32 values at `p`.
///
/// # Safety
/// `p` must point to 4 readable `f32` (16 bytes); no alignment is required.
#[inline(always)]
unsafe fn load(p: *const f32) -> v128 {
    // SAFETY: the caller's contract.
    unsafe { v128_load(p as *const v128) }
}

/// The order-preserving integer key of each float32 lane ([`Val::key`] in four lanes).
#[inline(always)]
fn key(v: v128) -> v128 {
    v128_xor(v, v128_and(i32x4_shr(v, 31), i32x4_splat(i32::MAX)))
}

/// `moments::reduce` for float32: min and max (by order-preserving integer keys, so a NaN may
/// win one of them — it also makes the sum NaN), the f64 sum in 8 lanes and the number of ±0.
/// At most 2^32 values.
pub fn reduce_f32(xs: &[f32]) -> (f32, f32, f64, u64) {
    if xs.is_empty() {
        return (f32::INFINITY, f32::NEG_INFINITY, 0.0, 0);
    }
    let (mut mn, mut mx) = (i32x4_splat(i32::MAX), i32x4_splat(i32::MIN));
    let (mut za, mut zb) = (i32x4_splat(0), i32x4_splat(0));
    let zero = f32x4_splat(0.0);
    let (mut s0, mut s1, mut s2, mut s3) = (zero, zero, zero, zero);
    let whole = xs.len() / 8 * 8;
    let p = xs.as_ptr();
    let mut i = 0;
    while i < whole {
        // SAFETY: i + 8 <= xs.len().
        let (a, b) = unsafe { (load(p.add(i)), load(p.add(i + 4))) };
        let (ka, kb) = (key(a), key(b));
        mn = i32x4_min(mn, i32x4_min(ka, kb));
        mx = i32x4_max(mx, i32x4_max(ka, kb));
        // a lane equal to ±0 is all ones (−1): subtracting counts it
        za = i32x4_sub(za, f32x4_eq(a, zero));
        zb = i32x4_sub(zb, f32x4_eq(b, zero));
        let (a0, a1) = widen!(a);
        let (b0, b1) = widen!(b);
        s0 = f64x2_add(s0, a0);
        s1 = f64x2_add(s1, a1);
        s2 = f64x2_add(s2, b0);
        s3 = f64x2_add(s3, b1);
        i += 8;
    }
    let lanes = |v: v128| {
        [
            i32x4_extract_lane::<0>(v),
            i32x4_extract_lane::<1>(v),
            i32x4_extract_lane::<2>(v),
            i32x4_extract_lane::<3>(v),
        ]
    };
    let mut kmin = lanes(mn).into_iter().min().unwrap_or(i32::MAX);
    let mut kmax = lanes(mx).into_iter().max().unwrap_or(i32::MIN);
    let mut nz: u64 = lanes(za)
        .into_iter()
        .chain(lanes(zb))
        .map(|z| u64::from(z as u32))
        .sum();
    let tail = &xs[whole..];
    for &x in tail {
        kmin = kmin.min(x.key());
        kmax = kmax.max(x.key());
        nz += u64::from(x == 0.0);
    }
    let sum = join([s0, s1, s2, s3], tail, |s, x| s + f64::from(x));
    (f32::from_key(kmin), f32::from_key(kmax), sum, nz)
}

/// `moments::sq_dev` for float32: Σ (x − mean)² in the same 8 f64 lanes.
pub fn sq_dev_f32(xs: &[f32], mean: f64) -> f64 {
    let m = f64x2_splat(mean);
    let zero = f64x2_splat(0.0);
    let (mut s0, mut s1, mut s2, mut s3) = (zero, zero, zero, zero);
    let whole = xs.len() / 8 * 8;
    let p = xs.as_ptr();
    let mut i = 0;
    while i < whole {
        // SAFETY: i + 8 <= xs.len().
        let (a, b) = unsafe { (load(p.add(i)), load(p.add(i + 4))) };
        let (a0, a1) = widen!(a);
        let (b0, b1) = widen!(b);
        let (d0, d1, d2, d3) = (
            f64x2_sub(a0, m),
            f64x2_sub(a1, m),
            f64x2_sub(b0, m),
            f64x2_sub(b1, m),
        );
        s0 = f64x2_add(s0, f64x2_mul(d0, d0));
        s1 = f64x2_add(s1, f64x2_mul(d1, d1));
        s2 = f64x2_add(s2, f64x2_mul(d2, d2));
        s3 = f64x2_add(s3, f64x2_mul(d3, d3));
        i += 8;
    }
    join([s0, s1, s2, s3], &xs[whole..], |s, x| {
        let d = f64::from(x) - mean;
        s + d * d
    })
}

/// `histogram::Lane32::index` over a slice: `out[k] = min(max((xs[k] − min)·norm, 0), top)`
/// truncated (saturating), in float32 lanes; NaN gives 0.
pub fn fine_indices_f32(xs: &[f32], min: f32, norm: f32, top: f32, out: &mut [u32]) {
    let n = xs.len().min(out.len());
    let (vmin, vnorm, vtop, zero) = (
        f32x4_splat(min),
        f32x4_splat(norm),
        f32x4_splat(top),
        f32x4_splat(0.0),
    );
    let whole = n / 8 * 8;
    let (p, q) = (xs.as_ptr(), out.as_mut_ptr());
    let mut i = 0;
    while i < whole {
        // SAFETY: i + 8 <= n, so 8 values are readable at p + i and 8 slots writable at q + i.
        unsafe {
            let (a, b) = (load(p.add(i)), load(p.add(i + 4)));
            let ta = f32x4_mul(f32x4_sub(a, vmin), vnorm);
            let tb = f32x4_mul(f32x4_sub(b, vmin), vnorm);
            // pmax(0, t) = (0 < t ? t : 0): NaN → 0; pmin(top, t) = (t < top ? t : top)
            let ta = f32x4_pmin(vtop, f32x4_pmax(zero, ta));
            let tb = f32x4_pmin(vtop, f32x4_pmax(zero, tb));
            v128_store(q.add(i) as *mut v128, i32x4_trunc_sat_f32x4(ta));
            v128_store(q.add(i + 4) as *mut v128, i32x4_trunc_sat_f32x4(tb));
        }
        i += 8;
    }
    for (o, &x) in out[whole..n].iter_mut().zip(&xs[whole..n]) {
        let t = (x - min) * norm;
        let t = if t > 0.0 { t } else { 0.0 };
        let t = if t < top { t } else { top };
        *o = t as i32 as u32;
    }
}
