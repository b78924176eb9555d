//! The statistics engine on raw tensors made by real torch (`tests/fixtures/make_stats_raw.py`,
//! output committed in `tests/fixtures/raw/`): every dtype family, NaN/inf conventions of the
//! float8 formats, all float16/bfloat16 bit patterns, ints, bool, complex, quantized codes and
//! dequantized values.
//! Each case runs three ways — one pass with exact quantiles, two passes with the quantile
//! sketch, and with 1-byte-odd chunking — and must match torch/numpy every time.
//!
//! The same test runs in wasm (`cargo test --target wasm32-unknown-unknown --test stats_raw`,
//! headless Chromium, a dedicated worker as in the page): there the float32 kernels are the wasm
//! SIMD ones (`src/stats/simd.rs`), and the files are compiled into the test ([`raw_file`]).

mod stats_common;

use serde_json::Value;
use weightscope::format::DType;
use weightscope::stats::{no_progress, tensor_stats, Dequant, StatsInput, StatsOptions};

#[cfg(target_arch = "wasm32")]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_dedicated_worker);

/// A file of `tests/fixtures/raw`. WEIGHTSCOPE_STATS_RAW: another directory of the same layout
/// (for ad-hoc checks).
#[cfg(not(target_arch = "wasm32"))]
fn raw_file(name: &str) -> Option<Vec<u8>> {
    let dir = std::env::var_os("WEIGHTSCOPE_STATS_RAW")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/raw")
        });
    std::fs::read(dir.join(name)).ok()
}

/// A file of `tests/fixtures/raw`, compiled into the wasm test (every file `expected.json`
/// names must be listed here, or the test fails naming it).
#[cfg(target_arch = "wasm32")]
fn raw_file(name: &str) -> Option<Vec<u8>> {
    macro_rules! files {
        ($($f:literal),* $(,)?) => {
            match name {
                $($f => Some(include_bytes!(concat!("fixtures/raw/", $f)).to_vec()),)*
                _ => None,
            }
        };
    }
    files!(
        "expected.json",
        "bf16_all_patterns.bin",
        "bf16_normal.bin",
        "bool.bin",
        "complex128.bin",
        "complex64.bin",
        "f16_all_patterns.bin",
        "f16_normal.bin",
        "f32_constant.bin",
        "f32_empty.bin",
        "f32_mixed.bin",
        "f32_nonfinite.bin",
        "f64_offset.bin",
        "f8_e4m3fn.bin",
        "f8_e4m3fnuz.bin",
        "f8_e5m2.bin",
        "f8_e5m2fnuz.bin",
        "f8_e8m0fnu.bin",
        "int_int16.bin",
        "int_int32.bin",
        "int_int64.bin",
        "int_int8.bin",
        "int_uint16.bin",
        "int_uint32.bin",
        "int_uint8.bin",
        "qint32.bin",
        "qint32_dequant.bin",
        "qint8.bin",
        "qint8_dequant.bin",
        "quint8.bin",
        "quint8_dequant.bin",
    )
}

#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
fn raw_tensors_match_torch() {
    let text = raw_file("expected.json")
        .expect("tests/fixtures/raw/expected.json (run tests/fixtures/make_stats_raw.py)");
    let exp: Value = serde_json::from_slice(&text).unwrap();
    let bins = exp["bins"].as_u64().unwrap() as usize;
    let cases = exp["cases"].as_array().unwrap();
    assert!(!cases.is_empty(), "expected.json lists no cases");
    let mut bad = Vec::new();
    for c in cases {
        let name = c["name"].as_str().unwrap();
        let dtype = DType::from_name(c["dtype"].as_str().unwrap())
            .unwrap_or_else(|| panic!("{name}: unknown dtype {}", c["dtype"]));
        let numel = c["numel"].as_u64().unwrap();
        let file = c["file"].as_str().unwrap();
        let bytes = raw_file(file).unwrap_or_else(|| panic!("{name}: no file {file}"));
        for (mode, limit, chunk) in [
            ("exact", u64::MAX, 1 << 20),
            ("sketch", 0, 4096 * 3 + 5),
            ("odd chunks", u64::MAX, 7),
        ] {
            let opts = StatsOptions {
                bins,
                quantile_exact_limit: limit,
                ..StatsOptions::default()
            };
            let mut replay = |sink: &mut dyn FnMut(&[u8]) -> weightscope::format::Result<()>| {
                bytes.chunks(chunk).try_for_each(&mut *sink)
            };
            let dequant = c.get("dequant").map(|d| Dequant {
                scale: d["scale"].as_f64().unwrap(),
                zero_point: d["zero_point"].as_i64().unwrap(),
            });
            let el = StatsInput {
                dtype,
                numel,
                dequant,
            };
            let s = tensor_stats(el, &opts, &mut replay, &mut no_progress)
                .unwrap()
                .unwrap();
            if s.dequantized != dequant.is_some() {
                bad.push(format!(
                    "{name} ({mode}): dequantized flag {}",
                    s.dequantized
                ));
            }
            if limit == u64::MAX && !s.quantiles_exact {
                bad.push(format!("{name} ({mode}): quantiles not exact"));
            }
            bad.extend(stats_common::compare(&format!("{name} ({mode})"), &s, c));
        }
    }
    assert!(
        bad.is_empty(),
        "{} mismatches:\n{}",
        bad.len(),
        bad.join("\n")
    );
}
