//! The statistics engine on raw tensors made by real torch (`tests/fixtures/make_stats_raw.py`,
//! output committed in `tests/fixtures/raw/`): every dtype family, NaN/inf conventions of the
//! float8 formats, all float16/bfloat16 bit patterns, ints, bool, complex, quantized codes and
//! dequantized values.
//! Each case runs three ways — one pass with exact quantiles, two passes with the quantile
//! sketch, and with 1-byte-odd chunking — and must match torch/numpy every time.
#![cfg(not(target_arch = "wasm32"))]

mod stats_common;

use serde_json::Value;
use std::path::PathBuf;
use weightscope::format::DType;
use weightscope::stats::{no_progress, tensor_stats, Dequant, StatsInput, StatsOptions};

#[test]
fn raw_tensors_match_torch() {
    // WEIGHTSCOPE_STATS_RAW: another directory of the same layout (for ad-hoc checks).
    let dir = std::env::var_os("WEIGHTSCOPE_STATS_RAW")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/raw"));
    let text = std::fs::read_to_string(dir.join("expected.json"))
        .expect("tests/fixtures/raw/expected.json (run tests/fixtures/make_stats_raw.py)");
    let exp: Value = serde_json::from_str(&text).unwrap();
    let bins = exp["bins"].as_u64().unwrap() as usize;
    let cases = exp["cases"].as_array().unwrap();
    assert!(!cases.is_empty(), "expected.json lists no cases");
    let mut bad = Vec::new();
    for c in cases {
        let name = c["name"].as_str().unwrap();
        let dtype = DType::from_name(c["dtype"].as_str().unwrap())
            .unwrap_or_else(|| panic!("{name}: unknown dtype {}", c["dtype"]));
        let numel = c["numel"].as_u64().unwrap();
        let bytes = std::fs::read(dir.join(c["file"].as_str().unwrap())).unwrap();
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
