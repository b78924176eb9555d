//! Text for people: byte sizes, counts, numbers and element values, the same in the CLI and
//! the page.
//!
//! Contract: pure functions of their arguments, no locale. Sizes are binary (`KiB`), counts
//! decimal (`K`, `M`, `B`), both with three significant digits; digit groups are separated by
//! `,`. Floats are written two ways: [`short_float`] (at most six significant digits, like C's
//! `%g` — statistics, tensor elements, chart labels) and [`python_float`] (as Python's `repr`
//! shows a float — values stored in the pickle). Keys print as their path segment
//! ([`crate::format::Key::segment`]).

use crate::format::element::{decode_real, Decoder};
use crate::format::DType;

/// `1234567` → `1,234,567`.
pub fn group_digits(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Bytes in binary units: `512 B`, `1.5 KiB`, `3.20 GiB` (three significant digits).
pub fn human_bytes(n: u64) -> String {
    if n < 1024 {
        return format!("{n} B");
    }
    scaled(n, 1024, 1024.0, &["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"])
}

/// A count in decimal units: `950`, `12.3 K`, `7.24 B` (three significant digits).
pub fn human_count(n: u64) -> String {
    if n < 1000 {
        return n.to_string();
    }
    scaled(n, 1000, 999.5, &["K", "M", "B", "T", "P", "E"])
}

/// `n / step^k` with the unit `units[k - 1]`, moving up while the value reaches `carry`.
fn scaled(n: u64, step: u64, carry: f64, units: &[&str]) -> String {
    let mut v = n as f64 / step as f64;
    let mut unit = 0;
    while v >= carry && unit + 1 < units.len() {
        v /= step as f64;
        unit += 1;
    }
    format!("{} {}", three_digits(v), units[unit])
}

fn three_digits(v: f64) -> String {
    if v >= 99.95 {
        format!("{v:.0}")
    } else if v >= 9.995 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// Python-like float text (`0.001`, `1e-08`, `nan`, `inf`).
pub fn python_float(v: f64) -> String {
    if v.is_nan() {
        "nan".into()
    } else if v.is_infinite() {
        (if v > 0.0 { "inf" } else { "-inf" }).into()
    } else if v == v.trunc() && v.abs() < 1e16 {
        format!("{v:.1}")
    } else {
        format!("{v}")
    }
}

/// Display texts of little-endian elements of `dtype`.
pub fn value_texts(dtype: DType, bytes: &[u8]) -> Vec<String> {
    use crate::format::DKind as Kind;
    let dec = Decoder::new(dtype);
    let mut out = vec![];
    match dtype.kind() {
        Kind::Complex => {
            let (mut re, mut im) = (vec![], vec![]);
            dec.decode_complex(bytes, &mut re, &mut im);
            for (r, i) in re.iter().zip(&im) {
                out.push(format!("{}{}j", short_float(*r), signed(short_float(*i))));
            }
        }
        Kind::Bool => {
            let mut v = vec![];
            decode_real(&dec, bytes, &mut v, &mut vec![]);
            out.extend(
                v.iter()
                    .map(|&x| if x != 0.0 { "True" } else { "False" }.to_string()),
            );
        }
        Kind::Float => {
            let mut v = vec![];
            decode_real(&dec, bytes, &mut v, &mut vec![]);
            out.extend(v.iter().map(|&x| short_float(x)));
        }
        _ => {
            let mut v = vec![];
            decode_real(&dec, bytes, &mut v, &mut vec![]);
            out.extend(v.iter().map(|&x| format!("{x}")));
        }
    }
    out
}

fn signed(s: String) -> String {
    if s.starts_with('-') {
        s
    } else {
        format!("+{s}")
    }
}

/// A float in at most 6 significant digits (`0.123457`, `1.5e-07`, `nan`).
pub fn short_float(x: f64) -> String {
    if x.is_nan() {
        return "nan".into();
    }
    if x.is_infinite() {
        return (if x > 0.0 { "inf" } else { "-inf" }).into();
    }
    if x == 0.0 {
        return (if x.is_sign_negative() { "-0" } else { "0" }).into();
    }
    let e = x.abs().log10().floor() as i32;
    if !(-4..6).contains(&e) {
        let s = format!("{x:.5e}");
        let (m, ex) = s.split_once('e').unwrap_or((&s, "0"));
        let m = m.trim_end_matches('0').trim_end_matches('.');
        return format!("{m}e{ex}");
    }
    let digits = (5 - e).max(0) as usize;
    let s = format!("{x:.digits$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn number_formatting() {
        assert_eq!(group_digits(0), "0");
        assert_eq!(group_digits(999), "999");
        assert_eq!(group_digits(1000), "1,000");
        assert_eq!(group_digits(1234567), "1,234,567");
        assert_eq!(group_digits(u64::MAX), "18,446,744,073,709,551,615");
        assert_eq!(human_bytes(0), "0 B");
        assert_eq!(human_bytes(1023), "1023 B");
        assert_eq!(human_bytes(1024), "1.00 KiB");
        assert_eq!(human_bytes(1536), "1.50 KiB");
        assert_eq!(human_bytes(10 * 1024 * 1024 + 1), "10.0 MiB");
        assert_eq!(human_bytes(3_435_973_837), "3.20 GiB");
        assert_eq!(human_count(950), "950");
        assert_eq!(human_count(12_345), "12.3 K");
        assert_eq!(human_count(999_999), "1.00 M");
        assert_eq!(human_count(7_241_732_096), "7.24 B");
    }

    #[test]
    fn floats() {
        assert_eq!(short_float(0.1234567), "0.123457");
        assert_eq!(short_float(1.5e-7), "1.5e-7");
        assert_eq!(short_float(-0.0), "-0");
        assert_eq!(short_float(123456.0), "123456");
        assert_eq!(short_float(1234567.0), "1.23457e6");
        assert_eq!(short_float(-3.0), "-3");
        assert_eq!(short_float(f64::NEG_INFINITY), "-inf");
        assert_eq!(python_float(1.0), "1.0");
        assert_eq!(python_float(1e-8), "0.00000001");
        assert_eq!(python_float(f64::NAN), "nan");
    }

    #[test]
    fn element_texts() {
        let c64: Vec<u8> = [1.0f32, -2.0]
            .iter()
            .flat_map(|x| x.to_le_bytes())
            .collect();
        assert_eq!(value_texts(DType::C64, &c64), ["1-2j"]);
        assert_eq!(value_texts(DType::Bool, &[0, 3]), ["False", "True"]);
        assert_eq!(value_texts(DType::I8, &[0xff]), ["-1"]);
        assert_eq!(value_texts(DType::BF16, &[0x80, 0x3f]), ["1"]);
    }
}
