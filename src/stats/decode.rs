//! Element decoding: little-endian tensor bytes → `f32` or `f64` values.
//!
//! Contract: [`Decoder::new`] picks, for every dtype the readers produce, a *lane* — the
//! narrowest float type that holds every value of that dtype exactly — and a *unit*, the number
//! of bytes decoded at a time:
//!
//! | dtype | lane | values per unit |
//! |---|---|---|
//! | float32, float16, bfloat16, float8_*, int8/uint8/int16/uint16, bool, qint8, quint8, bits8, bits16, bits1x8/2x4/4x2 | `f32` | 1 |
//! | float4_e2m1fn_x2 | `f32` | 2 per byte (both nibbles) |
//! | quint4x2 / quint2x4 | `f32` | 2 / 4 integer codes per byte |
//! | float64, int32/uint32/int64/uint64, qint32 | `f64` | 1 (64-bit ints above 2^53 round) |
//! | complex32/64/128 | `f64` magnitude + real/imaginary parts | 1 |
//!
//! Conventions checked against torch: float16 and bfloat16 decode exactly as `half` does
//! (bfloat16 by a 16-bit shift, float16 by Giesen's branch-free rebias); the float8 formats use a
//! 256-entry table built from their OCP / MLIR definitions:
//! - `e4m3fn`: bias 7, no infinities, `S.1111.111` is NaN (0x7e = 448 is the largest);
//! - `e5m2`: bias 15, IEEE-like (`0x7c` = +inf, `0xfc` = −inf, mantissa ≠ 0 with exponent 31 is NaN);
//! - `e4m3fnuz` / `e5m2fnuz`: bias 8 / 16, no infinities, no negative zero, only `0x80` is NaN;
//! - `e8m0fnu`: an unsigned power of two `2^(b−127)`, `0xff` is NaN, no zero;
//! - `float4_e2m1fn_x2`: bias 1, values ±{0, 0.5, 1, 1.5, 2, 3, 4, 6}, no NaN or infinity.
//!
//! bool decodes as 0/1 (any non-zero byte is 1). Quantized tensors decode their integer codes
//! (no scale or zero point applied). The opaque `bits*` dtypes decode as unsigned bytes / u16.

use crate::format::DType;

/// Which float type the values of a dtype are decoded into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lane {
    F32,
    F64,
    Complex,
}

/// Decodes a dtype's bytes. Cheap to build (a 256-entry table at most).
#[derive(Clone)]
pub struct Decoder {
    dtype: DType,
    lane: Lane,
    unit: usize,
    per_unit: usize,
    table: Option<Box<[f32; 256]>>,
}

impl std::fmt::Debug for Decoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Decoder")
            .field("dtype", &self.dtype)
            .field("lane", &self.lane)
            .finish()
    }
}

/// float16 bits → f32, exactly (NaN payloads kept). Branch-free so loops vectorise.
#[inline(always)]
pub fn f16_to_f32(h: u16) -> f32 {
    const SHIFTED_EXP: u32 = 0x7c00 << 13;
    let sign = ((h & 0x8000) as u32) << 16;
    let o = ((h & 0x7fff) as u32) << 13;
    let exp = o & SHIFTED_EXP;
    let normal = o + ((127 - 15) << 23);
    // Inf/NaN: exponent all ones → f32 exponent all ones.
    let infnan = normal + ((128 - 16) << 23);
    // Subnormal (and zero): rebias then subtract the implicit one (exact, no denormal arithmetic).
    let sub = (f32::from_bits(normal + (1 << 23)) - f32::from_bits(113 << 23)).to_bits();
    let bits = if exp == SHIFTED_EXP {
        infnan
    } else if exp == 0 {
        sub
    } else {
        normal
    };
    f32::from_bits(bits | sign)
}

/// bfloat16 bits → f32 (exact: bfloat16 is the top half of an f32).
#[inline(always)]
pub fn bf16_to_f32(b: u16) -> f32 {
    f32::from_bits((b as u32) << 16)
}

/// How a minifloat encodes its special values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Special {
    /// IEEE: max exponent = inf (mantissa 0) or NaN.
    Ieee,
    /// "fn": no infinities, only the all-ones exponent *and* mantissa pattern is NaN.
    Fn,
    /// "fnuz": no infinities, no negative zero, 0x80 is the only NaN.
    Fnuz,
    /// Finite only (float4_e2m1fn).
    None,
}

/// Decode one minifloat of `1 + e_bits + m_bits` bits (sign bit at position e_bits+m_bits).
fn minifloat(bits: u32, e_bits: u32, m_bits: u32, bias: i32, special: Special) -> f32 {
    let total = 1 + e_bits + m_bits;
    let sign = (bits >> (total - 1)) & 1 == 1;
    let e = (bits >> m_bits) & ((1 << e_bits) - 1);
    let m = bits & ((1 << m_bits) - 1);
    let emax = (1 << e_bits) - 1;
    match special {
        Special::Ieee if e == emax => {
            let v = if m == 0 { f32::INFINITY } else { f32::NAN };
            return if sign { -v } else { v };
        }
        Special::Fn if e == emax && m == (1 << m_bits) - 1 => {
            return if sign { -f32::NAN } else { f32::NAN };
        }
        Special::Fnuz if sign && e == 0 && m == 0 => return f32::NAN,
        _ => {}
    }
    let v = if e == 0 {
        m as f64 * 2f64.powi(1 - bias - m_bits as i32)
    } else {
        (1.0 + m as f64 / (1u32 << m_bits) as f64) * 2f64.powi(e as i32 - bias)
    };
    let v = v as f32;
    if sign {
        -v
    } else {
        v
    }
}

/// The 256-entry decode table of a float8 dtype (or of one float4 nibble, entries 0..16).
pub fn f8_table(dtype: DType) -> Option<[f32; 256]> {
    let mut t = [0f32; 256];
    for (b, slot) in t.iter_mut().enumerate() {
        let b = b as u32;
        *slot = match dtype {
            DType::F8E4M3FN => minifloat(b, 4, 3, 7, Special::Fn),
            DType::F8E5M2 => minifloat(b, 5, 2, 15, Special::Ieee),
            DType::F8E4M3FNUZ => minifloat(b, 4, 3, 8, Special::Fnuz),
            DType::F8E5M2FNUZ => minifloat(b, 5, 2, 16, Special::Fnuz),
            DType::F8E8M0FNU => {
                if b == 0xff {
                    f32::NAN
                } else {
                    2f64.powi(b as i32 - 127) as f32
                }
            }
            DType::F4E2M1FNX2 => minifloat(b & 0xf, 2, 1, 1, Special::None),
            _ => return None,
        };
    }
    Some(t)
}

impl Decoder {
    /// The decoder for `dtype`.
    pub fn new(dtype: DType) -> Decoder {
        use DType::*;
        let (lane, unit, per_unit) = match dtype {
            F32 | F16 | BF16 | I8 | U8 | I16 | U16 | Bool | QInt8 | QUInt8 | Bits8 | Bits16
            | Bits1x8 | Bits2x4 | Bits4x2 => (Lane::F32, dtype.size(), 1),
            F8E4M3FN | F8E5M2 | F8E4M3FNUZ | F8E5M2FNUZ | F8E8M0FNU => (Lane::F32, 1, 1),
            F4E2M1FNX2 | QUInt4x2 => (Lane::F32, 1, 2),
            QUInt2x4 => (Lane::F32, 1, 4),
            F64 | I32 | U32 | I64 | U64 | QInt32 => (Lane::F64, dtype.size(), 1),
            C32 | C64 | C128 => (Lane::Complex, dtype.size(), 1),
        };
        Decoder {
            dtype,
            lane,
            unit,
            per_unit,
            table: f8_table(dtype).map(Box::new),
        }
    }
    pub fn dtype(&self) -> DType {
        self.dtype
    }
    pub fn lane(&self) -> Lane {
        self.lane
    }
    /// Bytes decoded at a time (one element; one packed byte for sub-byte types).
    pub fn unit(&self) -> usize {
        self.unit
    }
    /// Values produced per unit (2 for float4_e2m1fn_x2 and quint4x2, 4 for quint2x4).
    pub fn per_unit(&self) -> usize {
        self.per_unit
    }

    /// Append the values of `bytes` (a whole number of units) to `out`. Lane must be F32.
    pub fn decode_f32(&self, bytes: &[u8], out: &mut Vec<f32>) {
        debug_assert_eq!(self.lane, Lane::F32);
        debug_assert_eq!(bytes.len() % self.unit, 0);
        use DType::*;
        let n = bytes.len() / self.unit * self.per_unit;
        let start = out.len();
        out.resize(start + n, 0.0);
        let o = &mut out[start..];
        match self.dtype {
            F32 => {
                for (d, c) in o.iter_mut().zip(bytes.chunks_exact(4)) {
                    *d = f32::from_le_bytes(c.try_into().unwrap());
                }
            }
            F16 => {
                for (d, c) in o.iter_mut().zip(bytes.chunks_exact(2)) {
                    *d = f16_to_f32(u16::from_le_bytes([c[0], c[1]]));
                }
            }
            BF16 => {
                for (d, c) in o.iter_mut().zip(bytes.chunks_exact(2)) {
                    *d = bf16_to_f32(u16::from_le_bytes([c[0], c[1]]));
                }
            }
            I16 => {
                for (d, c) in o.iter_mut().zip(bytes.chunks_exact(2)) {
                    *d = i16::from_le_bytes([c[0], c[1]]) as f32;
                }
            }
            U16 | Bits16 => {
                for (d, c) in o.iter_mut().zip(bytes.chunks_exact(2)) {
                    *d = u16::from_le_bytes([c[0], c[1]]) as f32;
                }
            }
            I8 | QInt8 => {
                for (d, &b) in o.iter_mut().zip(bytes) {
                    *d = b as i8 as f32;
                }
            }
            U8 | QUInt8 | Bits8 | Bits1x8 | Bits2x4 | Bits4x2 => {
                for (d, &b) in o.iter_mut().zip(bytes) {
                    *d = b as f32;
                }
            }
            Bool => {
                for (d, &b) in o.iter_mut().zip(bytes) {
                    *d = (b != 0) as u8 as f32;
                }
            }
            F8E4M3FN | F8E5M2 | F8E4M3FNUZ | F8E5M2FNUZ | F8E8M0FNU => {
                let t = self.table.as_deref().expect("float8 table");
                for (d, &b) in o.iter_mut().zip(bytes) {
                    *d = t[b as usize];
                }
            }
            F4E2M1FNX2 => {
                let t = self.table.as_deref().expect("float4 table");
                for (d, &b) in o.chunks_exact_mut(2).zip(bytes) {
                    d[0] = t[(b & 0xf) as usize];
                    d[1] = t[(b >> 4) as usize];
                }
            }
            QUInt4x2 => {
                for (d, &b) in o.chunks_exact_mut(2).zip(bytes) {
                    d[0] = (b & 0xf) as f32;
                    d[1] = (b >> 4) as f32;
                }
            }
            QUInt2x4 => {
                for (d, &b) in o.chunks_exact_mut(4).zip(bytes) {
                    for (k, v) in d.iter_mut().enumerate() {
                        *v = ((b >> (2 * k)) & 3) as f32;
                    }
                }
            }
            other => unreachable!("{other} is not an f32-lane dtype"),
        }
    }

    /// Append the values of `bytes` to `out`. Lane must be F64.
    pub fn decode_f64(&self, bytes: &[u8], out: &mut Vec<f64>) {
        debug_assert_eq!(self.lane, Lane::F64);
        use DType::*;
        let n = bytes.len() / self.unit;
        let start = out.len();
        out.resize(start + n, 0.0);
        let o = &mut out[start..];
        match self.dtype {
            F64 => {
                for (d, c) in o.iter_mut().zip(bytes.chunks_exact(8)) {
                    *d = f64::from_le_bytes(c.try_into().unwrap());
                }
            }
            I64 => {
                for (d, c) in o.iter_mut().zip(bytes.chunks_exact(8)) {
                    *d = i64::from_le_bytes(c.try_into().unwrap()) as f64;
                }
            }
            U64 => {
                for (d, c) in o.iter_mut().zip(bytes.chunks_exact(8)) {
                    *d = u64::from_le_bytes(c.try_into().unwrap()) as f64;
                }
            }
            I32 | QInt32 => {
                for (d, c) in o.iter_mut().zip(bytes.chunks_exact(4)) {
                    *d = i32::from_le_bytes(c.try_into().unwrap()) as f64;
                }
            }
            U32 => {
                for (d, c) in o.iter_mut().zip(bytes.chunks_exact(4)) {
                    *d = u32::from_le_bytes(c.try_into().unwrap()) as f64;
                }
            }
            other => unreachable!("{other} is not an f64-lane dtype"),
        }
    }

    /// Append the real and imaginary parts of complex `bytes`. Lane must be Complex.
    pub fn decode_complex(&self, bytes: &[u8], re: &mut Vec<f64>, im: &mut Vec<f64>) {
        debug_assert_eq!(self.lane, Lane::Complex);
        let half = self.unit / 2;
        for c in bytes.chunks_exact(self.unit) {
            let (a, b) = c.split_at(half);
            let (r, i) = match self.dtype {
                DType::C32 => (
                    f16_to_f32(u16::from_le_bytes([a[0], a[1]])) as f64,
                    f16_to_f32(u16::from_le_bytes([b[0], b[1]])) as f64,
                ),
                DType::C64 => (
                    f32::from_le_bytes(a.try_into().unwrap()) as f64,
                    f32::from_le_bytes(b.try_into().unwrap()) as f64,
                ),
                DType::C128 => (
                    f64::from_le_bytes(a.try_into().unwrap()),
                    f64::from_le_bytes(b.try_into().unwrap()),
                ),
                other => unreachable!("{other} is not complex"),
            };
            re.push(r);
            im.push(i);
        }
    }
}

/// |re + i·im| as numpy's `abs` computes it: `hypot`, so an infinite part gives +inf even when
/// the other is NaN.
#[inline]
pub fn magnitude(re: f64, im: f64) -> f64 {
    re.hypot(im)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn same(a: f32, b: f32) -> bool {
        (a.is_nan() && b.is_nan()) || a.to_bits() == b.to_bits()
    }

    #[test]
    fn f16_matches_half_for_every_pattern() {
        for h in 0..=u16::MAX {
            let want = half::f16::from_bits(h).to_f32();
            let got = f16_to_f32(h);
            assert!(same(got, want), "{h:#06x}: {got} vs {want}");
        }
    }

    #[test]
    fn bf16_matches_half_for_every_pattern() {
        for h in 0..=u16::MAX {
            let want = half::bf16::from_bits(h).to_f32();
            let got = bf16_to_f32(h);
            assert!(same(got, want), "{h:#06x}: {got} vs {want}");
        }
    }

    #[test]
    fn f16_decoder_matches_half() {
        let bytes: Vec<u8> = (0..=u16::MAX).flat_map(|h| h.to_le_bytes()).collect();
        let mut out = Vec::new();
        Decoder::new(DType::F16).decode_f32(&bytes, &mut out);
        assert_eq!(out.len(), 65536);
        for (h, v) in out.iter().enumerate() {
            assert!(same(*v, half::f16::from_bits(h as u16).to_f32()));
        }
    }

    #[test]
    fn e4m3fn_known_values() {
        let t = f8_table(DType::F8E4M3FN).unwrap();
        assert_eq!(t[0x7e], 448.0);
        assert_eq!(t[0xfe], -448.0);
        assert!(t[0x7f].is_nan());
        assert!(t[0xff].is_nan());
        assert_eq!(t[0x38], 1.0);
        assert_eq!(t[0x01], 2f32.powi(-9)); // smallest subnormal
        assert_eq!(t[0x08], 2f32.powi(-6)); // smallest normal
        assert_eq!(t[0x78], 256.0); // exponent 15 is finite here
        assert_eq!(t[0x80].to_bits(), (-0.0f32).to_bits());
        assert_eq!(t.iter().filter(|v| v.is_nan()).count(), 2);
        assert!(t.iter().all(|v| !v.is_infinite()));
    }

    #[test]
    fn e5m2_known_values() {
        let t = f8_table(DType::F8E5M2).unwrap();
        assert_eq!(t[0x7c], f32::INFINITY);
        assert_eq!(t[0xfc], f32::NEG_INFINITY);
        assert!(t[0x7d].is_nan() && t[0x7e].is_nan() && t[0x7f].is_nan());
        assert!(t[0xfd].is_nan());
        assert_eq!(t[0x7b], 57344.0);
        assert_eq!(t[0x3c], 1.0);
        assert_eq!(t[0x01], 2f32.powi(-16));
        assert_eq!(t[0x04], 2f32.powi(-14));
        // e5m2 is the top byte of a float16.
        for b in 0..=255u8 {
            let h = f16_to_f32((b as u16) << 8);
            assert!(same(t[b as usize], h), "{b:#04x}");
        }
    }

    #[test]
    fn fnuz_known_values() {
        let t = f8_table(DType::F8E4M3FNUZ).unwrap();
        assert!(t[0x80].is_nan());
        assert_eq!(t.iter().filter(|v| v.is_nan()).count(), 1);
        assert_eq!(t[0x7f], 240.0);
        assert_eq!(t[0xff], -240.0);
        assert_eq!(t[0x40], 1.0);
        assert_eq!(t[0x01], 2f32.powi(-10));
        assert_eq!(t[0x00], 0.0);
        let t = f8_table(DType::F8E5M2FNUZ).unwrap();
        assert!(t[0x80].is_nan());
        assert_eq!(t.iter().filter(|v| v.is_nan()).count(), 1);
        assert_eq!(t[0x7f], 57344.0);
        assert_eq!(t[0x7c], 32768.0); // no infinity in fnuz
        assert_eq!(t[0x40], 1.0);
        assert_eq!(t[0x01], 2f32.powi(-17));
    }

    #[test]
    fn e8m0_known_values() {
        let t = f8_table(DType::F8E8M0FNU).unwrap();
        assert_eq!(t[127], 1.0);
        assert_eq!(t[128], 2.0);
        assert_eq!(t[0], 2f32.powi(-127));
        assert_eq!(t[254], 2f32.powi(127));
        assert!(t[255].is_nan());
        assert_eq!(t.iter().filter(|v| v.is_nan()).count(), 1);
    }

    #[test]
    fn f4_values_both_nibbles() {
        let d = Decoder::new(DType::F4E2M1FNX2);
        let want = [0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0];
        let mut out = Vec::new();
        let bytes: Vec<u8> = (0..16u8).map(|n| n | (((n + 1) & 0xf) << 4)).collect();
        d.decode_f32(&bytes, &mut out);
        assert_eq!(out.len(), 32);
        for n in 0..16usize {
            let w = |k: usize| {
                if k < 8 {
                    want[k]
                } else {
                    -want[k - 8]
                }
            };
            assert_eq!(out[2 * n], w(n));
            assert_eq!(out[2 * n + 1], w((n + 1) & 0xf));
        }
    }

    #[test]
    fn ints_bool_and_codes() {
        let mut out = Vec::new();
        Decoder::new(DType::I8).decode_f32(&[0x80, 0x7f, 0xff], &mut out);
        assert_eq!(out, [-128.0, 127.0, -1.0]);
        out.clear();
        Decoder::new(DType::U8).decode_f32(&[0x80, 0xff], &mut out);
        assert_eq!(out, [128.0, 255.0]);
        out.clear();
        Decoder::new(DType::I16).decode_f32(&[0x00, 0x80, 0xff, 0x7f], &mut out);
        assert_eq!(out, [-32768.0, 32767.0]);
        out.clear();
        Decoder::new(DType::U16).decode_f32(&[0xff, 0xff], &mut out);
        assert_eq!(out, [65535.0]);
        out.clear();
        Decoder::new(DType::Bool).decode_f32(&[0, 1, 0, 1, 1], &mut out);
        assert_eq!(out, [0.0, 1.0, 0.0, 1.0, 1.0]);
        out.clear();
        Decoder::new(DType::QUInt4x2).decode_f32(&[0x3a], &mut out);
        assert_eq!(out, [10.0, 3.0]);
        out.clear();
        Decoder::new(DType::QUInt2x4).decode_f32(&[0b11_10_01_00], &mut out);
        assert_eq!(out, [0.0, 1.0, 2.0, 3.0]);
        let mut o = Vec::new();
        let mut b = Vec::new();
        b.extend_from_slice(&i64::MIN.to_le_bytes());
        b.extend_from_slice(&(-5i64).to_le_bytes());
        Decoder::new(DType::I64).decode_f64(&b, &mut o);
        assert_eq!(o, [i64::MIN as f64, -5.0]);
        o.clear();
        Decoder::new(DType::U32).decode_f64(&u32::MAX.to_le_bytes(), &mut o);
        assert_eq!(o, [4294967295.0]);
        o.clear();
        Decoder::new(DType::I32).decode_f64(&i32::MIN.to_le_bytes(), &mut o);
        assert_eq!(o, [-2147483648.0]);
        o.clear();
        Decoder::new(DType::U64).decode_f64(&u64::MAX.to_le_bytes(), &mut o);
        assert_eq!(o, [18446744073709551615.0]);
        o.clear();
        Decoder::new(DType::F64).decode_f64(&(-2.5f64).to_le_bytes(), &mut o);
        assert_eq!(o, [-2.5]);
    }

    #[test]
    fn complex_parts_and_magnitude() {
        let mut bytes = Vec::new();
        bytes.extend_from_slice(&3.0f32.to_le_bytes());
        bytes.extend_from_slice(&(-4.0f32).to_le_bytes());
        let (mut re, mut im) = (Vec::new(), Vec::new());
        Decoder::new(DType::C64).decode_complex(&bytes, &mut re, &mut im);
        assert_eq!((re[0], im[0]), (3.0, -4.0));
        assert_eq!(magnitude(re[0], im[0]), 5.0);
        assert_eq!(magnitude(f64::INFINITY, f64::NAN), f64::INFINITY);
        assert!(magnitude(1.0, f64::NAN).is_nan());
        let c32 = [0x00, 0x3c, 0x00, 0xc0]; // 1.0 - 2.0i in float16
        let (mut re, mut im) = (Vec::new(), Vec::new());
        Decoder::new(DType::C32).decode_complex(&c32, &mut re, &mut im);
        assert_eq!((re[0], im[0]), (1.0, -2.0));
    }
}
