//! Benchmark (issue 5), not part of the test command: the statistics engine compiled to wasm,
//! in a dedicated worker in headless Chromium, on 256 MiB of float32 and of bfloat16 — once from
//! wasm memory (engine only) and once streamed from a `Blob` through `FileReaderSync` in 4 MiB
//! reads, as the page's worker reads a dropped file. Prints MB/s; checks the results against
//! a plain f64 reference so a broken build cannot report a fast wrong answer.
//!
//! Run: `bench/wasm_stats.sh` (release build; results in BENCHMARKS.md).
#![cfg(target_arch = "wasm32")]

use js_sys::{Array, Uint8Array};
use wasm_bindgen_test::*;
use web_sys::Blob;
use weightscope::format::{DType, Source};
use weightscope::stats::{tensor_stats, StatsOptions};
use weightscope::worker::blob::BlobSource;

wasm_bindgen_test_configure!(run_in_dedicated_worker);

const BYTES: usize = 256 << 20;
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

fn run(name: &str, dtype: DType, bytes: Vec<u8>, reference_mean: f64) {
    let numel = (bytes.len() / dtype.size()) as u64;
    let opts = StatsOptions::default();
    let t0 = now_ms();
    let s = tensor_stats(dtype, numel, &opts, &mut |sink| {
        for c in bytes.chunks(CHUNK) {
            sink(c)?;
        }
        Ok(())
    })
    .unwrap();
    let mem_ms = now_ms() - t0;
    assert!(
        (s.mean.unwrap() - reference_mean).abs() <= 1e-6 * reference_mean.abs().max(1e-3),
        "{name}: mean {:?} vs {reference_mean}",
        s.mean
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
    let s2 = tensor_stats(dtype, numel, &opts, &mut |sink| {
        let mut off = 0u64;
        while off < len {
            let n = (len - off).min(blob_chunk as u64) as usize;
            src.read_at(off, &mut buf[..n])
                .map_err(|e| weightscope::format::FormatError::new(e.0))?;
            sink(&buf[..n])?;
            off += n as u64;
        }
        Ok(())
    })
    .unwrap();
    let blob_ms = now_ms() - t1;
    assert_eq!(s.mean, s2.mean);
    let mb = BYTES as f64 / 1e6;
    console_log!(
        "wasm-stats {name}: {mb:.0} MB, {} pass(es): from wasm memory {mem_ms:.0} ms = {:.0} MB/s; from a Blob via FileReaderSync (16 MiB reads) {blob_ms:.0} ms = {:.0} MB/s",
        s.passes,
        mb / (mem_ms / 1e3),
        mb / (blob_ms / 1e3)
    );
}

#[wasm_bindgen_test]
fn float32_256mib() {
    let v = values(BYTES / 4);
    let mean = v.iter().map(|&x| x as f64).sum::<f64>() / v.len() as f64;
    let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
    drop(v);
    run("float32", DType::F32, bytes, mean);
}

#[wasm_bindgen_test]
fn bfloat16_256mib() {
    let v = values(BYTES / 2);
    let bf: Vec<u16> = v
        .iter()
        .map(|&x| weightscope::edit::cast::f32_to_bf16(x))
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
