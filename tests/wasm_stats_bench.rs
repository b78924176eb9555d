//! Benchmark, not part of the test command: the statistics engine compiled to wasm,
//! in a dedicated worker in headless Chromium, on 256 MiB of float32 and of bfloat16 — once from
//! wasm memory (engine only: the first, cold run, then best and median of 5) and once streamed
//! from a `Blob` through `FileReaderSync` in 16 MiB reads, as the page's worker reads a dropped
//! file; and float32's two phases (moments; histogram + sketch) alone. Prints MB/s; checks the
//! results against a plain f64 reference so a broken build cannot report a fast wrong answer.
//!
//! Run: `bench/wasm_stats.sh` (release build; results in BENCHMARKS.md). `bench/wasm_stats.sh
//! --smoke` builds it with `WS_BENCH_SMOKE` set: 1 MiB instead of 256 MiB, same code and checks.
#![cfg(target_arch = "wasm32")]

use js_sys::{Array, Uint8Array};
use wasm_bindgen_test::*;
use web_sys::Blob;
use weightscope::format::{DType, Source};
use weightscope::stats::{no_progress, tensor_stats, StatsInput, StatsOptions};
use weightscope::worker::blob::BlobSource;

wasm_bindgen_test_configure!(run_in_dedicated_worker);

const BYTES: usize = if option_env!("WS_BENCH_SMOKE").is_some() {
    1 << 20
} else {
    256 << 20
};
const CHUNK: usize = 4 << 20;

fn now_ms() -> f64 {
    js_sys::Date::now()
}

/// Roughly normal values (sum of four uniforms), deterministic.
fn values(n: usize) -> Vec<f32> {
    let mut s = 0x2545_f491_4f6c_dd1du64;
    (0..n)
        .map(|_| {
            let mut acc = 0.0f32;
            for _ in 0..4 {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                acc += (s >> 40) as f32 / (1u64 << 24) as f32;
            }
            (acc - 2.0) * 0.02
        })
        .collect()
}

/// First (cold), best and median of `runs` timings of `f` (ms) after that first call: the first
/// calls of a wasm function run in V8's baseline tier (Liftoff) until it is re-compiled by the
/// optimising tier, which a page that has already summarised a tensor has long done.
fn timed(runs: usize, f: &mut dyn FnMut()) -> (f64, f64, f64) {
    let t = now_ms();
    f();
    let cold = now_ms() - t;
    let mut ts: Vec<f64> = (0..runs)
        .map(|_| {
            let t = now_ms();
            f();
            now_ms() - t
        })
        .collect();
    ts.sort_by(f64::total_cmp);
    (cold, ts[0], ts[ts.len() / 2])
}

fn run(name: &str, dtype: DType, bytes: Vec<u8>, reference_mean: f64) {
    let numel = (bytes.len() / dtype.size()) as u64;
    let opts = StatsOptions::default();
    let mut s = None;
    let (mem_cold, mem_ms, mem_median) = timed(5, &mut || {
        s = Some(
            tensor_stats(
                StatsInput::new(dtype, numel),
                &opts,
                &mut |sink| {
                    for c in bytes.chunks(CHUNK) {
                        sink(c)?;
                    }
                    Ok(())
                },
                &mut no_progress,
            )
            .unwrap()
            .unwrap(),
        );
    });
    let s = s.unwrap();
    assert!(
        (s.summary.mean.unwrap() - reference_mean).abs() <= 1e-6 * reference_mean.abs().max(1e-3),
        "{name}: mean {:?} vs {reference_mean}",
        s.summary.mean
    );

    let parts = Array::new();
    for c in bytes.chunks(64 << 20) {
        parts.push(&Uint8Array::from(c));
    }
    let blob = Blob::new_with_u8_array_sequence(&parts).unwrap();
    drop(bytes);
    let src = BlobSource::new(blob).unwrap();
    let len = src.len();
    let blob_chunk = 16 << 20;
    let mut buf = vec![0u8; blob_chunk];
    let t1 = now_ms();
    let mut replay = |sink: &mut dyn FnMut(&[u8]) -> weightscope::format::Result<()>| {
        let mut off = 0u64;
        while off < len {
            let n = (len - off).min(blob_chunk as u64) as usize;
            src.read_at(off, &mut buf[..n])
                .map_err(|e| weightscope::format::FormatError::new(e.0))?;
            sink(&buf[..n])?;
            off += n as u64;
        }
        Ok(())
    };
    let s2 = tensor_stats(
        StatsInput::new(dtype, numel),
        &opts,
        &mut replay,
        &mut no_progress,
    )
    .unwrap()
    .unwrap();
    let blob_ms = now_ms() - t1;
    assert_eq!(s.summary.mean, s2.summary.mean);
    let mb = numel as f64 * dtype.size() as f64 / 1e6;
    console_log!(
        "wasm-stats {name}: {mb:.0} MB, {} pass(es), {} quantiles: from wasm memory best {mem_ms:.0} ms = {:.0} MB/s (median of 5 {mem_median:.0} ms = {:.0} MB/s; first, cold run {mem_cold:.0} ms = {:.0} MB/s); from a Blob via FileReaderSync (16 MiB reads) {blob_ms:.0} ms = {:.0} MB/s",
        s.passes,
        if s.quantiles_exact { "exact" } else { "sketched" },
        mb / (mem_ms / 1e3),
        mb / (mem_median / 1e3),
        mb / (mem_cold / 1e3),
        mb / (blob_ms / 1e3)
    );
}

/// `n` float32 values through [`run`].
fn float32(name: &str, n: usize) {
    let v = values(n);
    let mean = v.iter().map(|&x| x as f64).sum::<f64>() / v.len() as f64;
    let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
    drop(v);
    run(name, DType::F32, bytes, mean);
}

#[wasm_bindgen_test]
fn float32_256mib() {
    float32("float32", BYTES / 4);
}

/// 64 MiB of float32 = 16 Mi values, the exact-quantile budget: one read, the values kept,
/// exact quantiles (the path most float32 tensors of real checkpoints take).
#[wasm_bindgen_test]
fn float32_64mib_exact() {
    float32("float32 (16 Mi values, exact)", BYTES / 16);
}

#[wasm_bindgen_test]
fn bfloat16_256mib() {
    let v = values(BYTES / 2);
    let bf: Vec<u16> = v
        .iter()
        .map(|&x| weightscope::format::element::f32_to_bf16(x))
        .collect();
    drop(v);
    let mean = bf
        .iter()
        .map(|&b| f32::from_bits((b as u32) << 16) as f64)
        .sum::<f64>()
        / bf.len() as f64;
    let bytes: Vec<u8> = bf.iter().flat_map(|x| x.to_le_bytes()).collect();
    run("bfloat16", DType::BF16, bytes, mean);
}

/// Where float32's time goes: pass 1 (block moments) and pass 2 (numpy histogram + sketch grid)
/// timed alone over the same 64 Mi values in wasm memory, in the engine's block size.
#[wasm_bindgen_test]
fn float32_phases() {
    use weightscope::stats::histogram::Binner;
    use weightscope::stats::moments::{block_moments, Moments};
    use weightscope::stats::{BLOCK, DEFAULT_BINS, DEFAULT_SKETCH_BINS};
    let v = values(BYTES / 4);
    let mb = BYTES as f64 / 1e6;
    let mut mom = Moments::default();
    let (_, m_ms, _) = timed(3, &mut || {
        mom = Moments::default();
        let mut scratch = Vec::new();
        for b in v.chunks(BLOCK) {
            mom.merge(&block_moments(b, &mut scratch));
        }
    });
    let mut total = 0;
    let (_, h_ms, _) = timed(3, &mut || {
        let mut binner = Binner::new(mom.min, mom.max, DEFAULT_BINS, DEFAULT_SKETCH_BINS);
        for b in v.chunks(BLOCK) {
            binner.add(b, false);
        }
        total = binner.finish().0.counts.iter().sum::<u64>();
    });
    assert_eq!(total, v.len() as u64);
    console_log!(
        "wasm-stats float32 phases (best of 3): moments {m_ms:.0} ms = {:.0} MB/s; histogram+sketch {h_ms:.0} ms = {:.0} MB/s",
        mb / (m_ms / 1e3),
        mb / (h_ms / 1e3)
    );
}
