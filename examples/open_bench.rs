//! Benchmark helper: open a checkpoint with `format::open` over a native `FileSource` and list its
//! tensor names, `repeat` times (default 5). Prints one JSON line: tensor count, min/median seconds
//! of open + list, and the bytes / read calls of the last open. Used by
//! `bench/open_safetensors.py`.
//!
//! Usage: `cargo run --release --example open_bench -- FILE [REPEAT] [--keys]`
//! (`--keys` also prints the names, one per line, before the JSON line).

use std::time::Instant;
use weightscope::format::{self, FileSource};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(path) = args.first() else {
        eprintln!("usage: open_bench FILE [REPEAT] [--keys]");
        std::process::exit(1);
    };
    let repeat: usize = args.get(1).and_then(|r| r.parse().ok()).unwrap_or(5).max(1);
    let print_keys = args.iter().any(|a| a == "--keys");
    let mut times = Vec::with_capacity(repeat);
    let mut last = None;
    for _ in 0..repeat {
        let t0 = Instant::now();
        let src = FileSource::open(std::path::Path::new(path)).unwrap_or_else(|e| {
            eprintln!("{e}");
            std::process::exit(2)
        });
        let ck = format::open(&src, path).unwrap_or_else(|e| {
            eprintln!("{e}");
            std::process::exit(2)
        });
        let keys: Vec<String> = ck.tensors.iter().map(|t| t.path_string()).collect();
        times.push(t0.elapsed().as_secs_f64());
        last = Some((keys, src.io_counters()));
    }
    let (keys, (reads, bytes)) = last.expect("repeat >= 1");
    if print_keys {
        for k in &keys {
            println!("{k}");
        }
    }
    times.sort_by(f64::total_cmp);
    println!(
        "{{\"tensors\": {}, \"min_s\": {:.6}, \"median_s\": {:.6}, \"bytes_read\": {bytes}, \"reads\": {reads}}}",
        keys.len(),
        times[0],
        times[times.len() / 2]
    );
}
