//! Element conversion for casts, bit-compatible with torch's `.to(dtype)` on CPU.
//!
//! Contract: [`Caster::convert`] turns a chunk of little-endian source elements into
//! little-endian target elements, counting finite values that overflow to ±inf. Conversions:
//! float32→bfloat16 and float32→float16 use round-to-nearest-even exactly as c10 does (NaN becomes
//! torch's canonical NaN: 0x7FC0 for bfloat16, sign|0x7E00 for float16); float64 sources go
//! through float32 first, as torch's CPU copy kernel does; float16 / bfloat16 / float8 sources
//! widen exactly.

use crate::format::DType;

/// Decode one float8 byte to f32.
pub fn f8_to_f32(d: DType, b: u8) -> f32 {
    match d {
        DType::F8E5M2 => half::f16::from_bits((b as u16) << 8).to_f32(),
        DType::F8E4M3FN => {
            if b & 0x7f == 0x7f {
                return f32::NAN;
            }
            minifloat(b, 4, 3, 7)
        }
        DType::F8E4M3FNUZ => {
            if b == 0x80 {
                return f32::NAN;
            }
            minifloat(b, 4, 3, 8)
        }
        DType::F8E5M2FNUZ => {
            if b == 0x80 {
                return f32::NAN;
            }
            minifloat(b, 5, 2, 16)
        }
        DType::F8E8M0FNU => {
            if b == 0xff {
                return f32::NAN;
            }
            2f32.powi(b as i32 - 127)
        }
        _ => f32::NAN,
    }
}

/// A sign / exponent / mantissa minifloat without infinities.
fn minifloat(b: u8, ebits: u32, mbits: u32, bias: i32) -> f32 {
    let sign = if b & 0x80 != 0 { -1.0 } else { 1.0 };
    let e = ((b >> mbits) & ((1 << ebits) - 1) as u8) as i32;
    let m = (b & ((1 << mbits) - 1) as u8) as f32;
    let scale = (1u32 << mbits) as f32;
    if e == 0 {
        sign * (m / scale) * 2f32.powi(1 - bias)
    } else {
        sign * (1.0 + m / scale) * 2f32.powi(e - bias)
    }
}

/// f32 → bfloat16 bits (c10::BFloat16 round_to_nearest_even).
pub fn f32_to_bf16(f: f32) -> u16 {
    if f.is_nan() {
        return 0x7fc0;
    }
    let u = f.to_bits();
    let bias = ((u >> 16) & 1) + 0x7fff;
    (u.wrapping_add(bias) >> 16) as u16
}

/// f32 → float16 bits (the IEEE conversion c10 uses: round to nearest even, canonical NaN).
pub fn f32_to_f16(f: f32) -> u16 {
    let scale_to_inf = f32::from_bits(0x7780_0000); // 2^112
    let scale_to_zero = f32::from_bits(0x0880_0000); // 2^-110
    let mut base = (f.abs() * scale_to_inf) * scale_to_zero;
    let w = f.to_bits();
    let shl1_w = w.wrapping_add(w);
    let sign = w & 0x8000_0000;
    let mut bias = shl1_w & 0xff00_0000;
    if bias < 0x7100_0000 {
        bias = 0x7100_0000;
    }
    base += f32::from_bits((bias >> 1) + 0x0780_0000);
    let bits = base.to_bits();
    let exp_bits = (bits >> 13) & 0x0000_7c00;
    let mantissa_bits = bits & 0x0000_0fff;
    let nonsign = exp_bits + mantissa_bits;
    ((sign >> 16)
        | if shl1_w > 0xff00_0000 {
            0x7e00
        } else {
            nonsign
        }) as u16
}

/// Converts chunks of one dtype into another.
#[derive(Debug, Clone)]
pub struct Caster {
    pub from: DType,
    pub to: DType,
    /// Finite values that became ±inf.
    pub overflow: u64,
}

impl Caster {
    /// A caster, if `from` → `to` is a float cast torch supports.
    pub fn new(from: DType, to: DType) -> Option<Caster> {
        if !from.is_float()
            || from == DType::F4E2M1FNX2
            || !matches!(to, DType::F64 | DType::F32 | DType::F16 | DType::BF16)
        {
            return None;
        }
        Some(Caster {
            from,
            to,
            overflow: 0,
        })
    }

    /// Output bytes for `n` input bytes.
    pub fn out_len(&self, n: u64) -> u64 {
        n / self.from.size() as u64 * self.to.size() as u64
    }

    fn load(&self, c: &[u8]) -> (f64, f32) {
        match self.from {
            DType::F64 => {
                let d = f64::from_le_bytes(c.try_into().expect("8"));
                (d, d as f32)
            }
            DType::F32 => {
                let f = f32::from_le_bytes(c.try_into().expect("4"));
                (f as f64, f)
            }
            DType::F16 => {
                let f = half::f16::from_bits(u16::from_le_bytes([c[0], c[1]])).to_f32();
                (f as f64, f)
            }
            DType::BF16 => {
                let f = f32::from_bits((u16::from_le_bytes([c[0], c[1]]) as u32) << 16);
                (f as f64, f)
            }
            d => {
                let f = f8_to_f32(d, c[0]);
                (f as f64, f)
            }
        }
    }

    /// Convert a whole number of source elements, appending to `out`.
    pub fn convert(&mut self, input: &[u8], out: &mut Vec<u8>) {
        let es = self.from.size();
        out.reserve(input.len() / es * self.to.size());
        for c in input.chunks_exact(es) {
            let (d, f) = self.load(c);
            match self.to {
                DType::F64 => out.extend_from_slice(&d.to_le_bytes()),
                DType::F32 => {
                    if d.is_finite() && f.is_infinite() {
                        self.overflow += 1;
                    }
                    out.extend_from_slice(&f.to_le_bytes())
                }
                DType::F16 => {
                    // float8_e5m2 is the top byte of a float16: widen exactly (NaN payloads too)
                    let h = if self.from == DType::F8E5M2 {
                        (c[0] as u16) << 8
                    } else {
                        f32_to_f16(f)
                    };
                    if d.is_finite() && h & 0x7fff == 0x7c00 {
                        self.overflow += 1;
                    }
                    out.extend_from_slice(&h.to_le_bytes())
                }
                DType::BF16 => {
                    let h = f32_to_bf16(f);
                    if d.is_finite() && h & 0x7fff == 0x7f80 {
                        self.overflow += 1;
                    }
                    out.extend_from_slice(&h.to_le_bytes())
                }
                _ => unreachable!("checked in new"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn half_conversions_round_to_nearest_even() {
        assert_eq!(f32_to_f16(1.0), 0x3c00);
        assert_eq!(f32_to_f16(65504.0), 0x7bff);
        assert_eq!(f32_to_f16(65520.0), 0x7c00); // rounds up to inf
        assert_eq!(f32_to_f16(-0.0), 0x8000);
        assert_eq!(f32_to_f16(f32::NAN), 0x7e00);
        assert_eq!(f32_to_f16(1e-8), 0x0000);
        assert_eq!(f32_to_f16(6e-8), 0x0001); // smallest subnormal
        for x in [0.1f32, -3.75, 1234.5678, 1e-5, 3.0e4] {
            assert_eq!(f32_to_f16(x), half::f16::from_f32(x).to_bits(), "{x}");
            assert_eq!(f32_to_bf16(x), half::bf16::from_f32(x).to_bits(), "{x}");
        }
        assert_eq!(f32_to_bf16(f32::NAN), 0x7fc0);
        assert_eq!(f32_to_bf16(f32::MAX), 0x7f80); // overflows to inf
    }

    #[test]
    fn float8_decoding() {
        assert_eq!(f8_to_f32(DType::F8E4M3FN, 0x7e), 448.0);
        assert!(f8_to_f32(DType::F8E4M3FN, 0x7f).is_nan());
        assert_eq!(f8_to_f32(DType::F8E4M3FN, 0x38), 1.0);
        assert_eq!(f8_to_f32(DType::F8E4M3FN, 0x01), 2f32.powi(-9));
        assert_eq!(f8_to_f32(DType::F8E5M2, 0x7c), f32::INFINITY);
        assert_eq!(f8_to_f32(DType::F8E5M2, 0x3c), 1.0);
        assert_eq!(f8_to_f32(DType::F8E8M0FNU, 127), 1.0);
        assert!(f8_to_f32(DType::F8E4M3FNUZ, 0x80).is_nan());
        assert_eq!(f8_to_f32(DType::F8E4M3FNUZ, 0x40), 1.0);
    }

    #[test]
    fn caster_counts_overflow() {
        let mut c = Caster::new(DType::F32, DType::F16).unwrap();
        let input: Vec<u8> = [1.0f32, 70000.0, f32::INFINITY, -1e6]
            .iter()
            .flat_map(|f| f.to_le_bytes())
            .collect();
        let mut out = vec![];
        c.convert(&input, &mut out);
        assert_eq!(out.len(), 8);
        assert_eq!(c.overflow, 2); // 70000 and -1e6; inf was already inf
        assert!(Caster::new(DType::I32, DType::F16).is_none());
    }
}
