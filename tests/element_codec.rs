//! The element codec (`format::element`) against torch, bit for bit: every float8 byte, float16 /
//! bfloat16 patterns, float32 and float64 values, decoded (`Decoder`) and cast (`Caster`) exactly
//! as `tensor.to(dtype)` does on CPU. NaNs: a NaN must stay a NaN, with torch's sign wherever the
//! conversion widens (float8 / float16 / bfloat16 → wider); NaN payloads, and the sign of a NaN
//! narrowed from float32 / float64 (torch's vectorised kernels give `0xffff` for some positive
//! NaNs), are kernel artefacts and not compared. The expectations are written by
//! `tests/fixtures/make_element_codec.py` (real torch) into `tests/fixtures/raw/element_codec.json`.
#![cfg(not(target_arch = "wasm32"))]

use serde_json::Value;
use weightscope::format::element::{Caster, Decoder, Lane};
use weightscope::format::DType;

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

struct Case {
    from: DType,
    to: DType,
    input: Vec<u8>,
    output: Vec<u8>,
}

fn cases() -> Vec<Case> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/raw/element_codec.json"
    );
    let text = std::fs::read_to_string(path)
        .expect("tests/fixtures/raw/element_codec.json (run tests/fixtures/make_element_codec.py)");
    let v: Value = serde_json::from_str(&text).unwrap();
    let cases: Vec<Case> = v["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let dt = |k: &str| {
                DType::from_name(c[k].as_str().unwrap())
                    .unwrap_or_else(|| panic!("unknown dtype {}", c[k]))
            };
            Case {
                from: dt("from"),
                to: dt("to"),
                input: unhex(c["input"].as_str().unwrap()),
                output: unhex(c["output"].as_str().unwrap()),
            }
        })
        .collect();
    assert!(cases.len() > 30, "element_codec.json lists too few cases");
    cases
}

/// Is the little-endian element `b` of float dtype `d` a NaN?
fn is_nan(d: DType, b: &[u8]) -> bool {
    let mut x = [0u8; 8];
    x[..b.len()].copy_from_slice(b);
    let v = u64::from_le_bytes(x);
    let (exp, man): (u64, u64) = match d {
        DType::F64 => (0x7ff0_0000_0000_0000, 0x000f_ffff_ffff_ffff),
        DType::F32 => (0x7f80_0000, 0x007f_ffff),
        DType::F16 => (0x7c00, 0x03ff),
        DType::BF16 => (0x7f80, 0x007f),
        other => panic!("no NaN test for {other}"),
    };
    v & exp == exp && v & man != 0
}

/// Does `got` stand for torch's `want` (see the module comment for NaNs)?
fn same(c: &Case, got: &[u8], want: &[u8]) -> bool {
    if got == want {
        return true;
    }
    let sign = |b: &[u8]| b[b.len() - 1] & 0x80;
    let widening = c.to.size() > c.from.size();
    is_nan(c.to, got) && is_nan(c.to, want) && (!widening || sign(got) == sign(want))
}

/// The first elements where `got` and `want` differ, as hex, for the failure message.
fn mismatches(c: &Case, got: &[u8]) -> Vec<String> {
    let (ei, eo) = (c.from.size(), c.to.size());
    assert_eq!(got.len(), c.output.len(), "{} → {}: length", c.from, c.to);
    let hex = |b: &[u8]| {
        b.iter()
            .rev()
            .map(|x| format!("{x:02x}"))
            .collect::<String>()
    };
    (0..c.output.len() / eo)
        .filter(|&i| {
            !same(
                c,
                &got[i * eo..(i + 1) * eo],
                &c.output[i * eo..(i + 1) * eo],
            )
        })
        .take(5)
        .map(|i| {
            format!(
                "{} → {}: 0x{} gives 0x{}, torch 0x{}",
                c.from,
                c.to,
                hex(&c.input[i * ei..(i + 1) * ei]),
                hex(&got[i * eo..(i + 1) * eo]),
                hex(&c.output[i * eo..(i + 1) * eo])
            )
        })
        .collect()
}

#[test]
fn casts_match_torch_bit_for_bit() {
    let mut bad = vec![];
    let mut checked = 0;
    for c in cases() {
        let mut caster = Caster::new(c.from, c.to)
            .unwrap_or_else(|| panic!("no caster for {} → {}", c.from, c.to));
        let mut got = vec![];
        caster.convert(&c.input, &mut got);
        bad.extend(mismatches(&c, &got));
        checked += 1;
    }
    assert!(checked > 30);
    assert!(
        bad.is_empty(),
        "casts differ from torch:\n{}",
        bad.join("\n")
    );
}

/// Decoding to the f32 / f64 lane is torch's `.float()` / `.double()`.
#[test]
fn decoding_matches_torch_bit_for_bit() {
    let mut bad = vec![];
    let mut checked = 0;
    for c in cases() {
        let dec = Decoder::new(c.from);
        let got: Vec<u8> = match (dec.lane(), c.to) {
            (Lane::F32, DType::F32) => {
                let mut v = vec![];
                dec.decode_f32(&c.input, &mut v);
                v.iter().flat_map(|x| x.to_le_bytes()).collect()
            }
            (Lane::F64, DType::F64) => {
                let mut v = vec![];
                dec.decode_f64(&c.input, &mut v);
                v.iter().flat_map(|x| x.to_le_bytes()).collect()
            }
            _ => continue,
        };
        bad.extend(mismatches(&c, &got));
        checked += 1;
    }
    assert!(checked >= 7, "too few decode cases ({checked})");
    assert!(
        bad.is_empty(),
        "decoding differs from torch:\n{}",
        bad.join("\n")
    );
}

/// The float8 e4m3fn NaN (`S.1111.111`) keeps its sign through every path: torch decodes 0xff as
/// −NaN and casts it to a negative float16 NaN. (The cast path once dropped the sign.)
#[test]
fn e4m3fn_negative_nan_keeps_its_sign() {
    let c = cases()
        .into_iter()
        .find(|c| c.from == DType::F8E4M3FN && c.to == DType::F16)
        .expect("float8_e4m3fn → float16 case");
    let torch_bits = u16::from_le_bytes([c.output[0xff * 2], c.output[0xff * 2 + 1]]);
    assert_eq!(torch_bits & 0xfc00, 0xfc00, "torch: 0xff is a negative NaN");
    let mut caster = Caster::new(DType::F8E4M3FN, DType::F16).unwrap();
    let mut got = vec![];
    caster.convert(&[0xff], &mut got);
    let bits = u16::from_le_bytes([got[0], got[1]]);
    assert!(
        bits & 0x7c00 == 0x7c00 && bits & 0x3ff != 0,
        "{bits:#06x} is not a NaN"
    );
    assert_eq!(bits & 0x8000, torch_bits & 0x8000, "NaN sign");
    let mut v = vec![];
    Decoder::new(DType::F8E4M3FN).decode_f32(&[0xff], &mut v);
    assert_eq!(v[0].is_sign_negative(), torch_bits & 0x8000 != 0);
}
