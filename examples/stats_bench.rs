//! Native half of the statistics benchmark (issue 5): time the engine on a raw little-endian
//! array file, the way the CLI streams a tensor (4 MiB positioned reads through `FileSource`).
//!
//! `cargo run --release --example stats_bench -- FILE DTYPE [--bins N] [--runs N] [--exact-limit N]`
//! prints one JSON object: `{"dtype", "bytes", "numel", "seconds": [...], "best", "stats": {...}}`.
//! `bench/stats_bench.py` drives it and compares with numpy.

#[cfg(not(target_arch = "wasm32"))]
fn main() {
    use weightscope::format::{DType, FileSource, Source};
    use weightscope::stats::{no_progress, tensor_stats, StatsInput, StatsOptions};

    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 2 {
        eprintln!("usage: stats_bench FILE DTYPE [--bins N] [--runs N] [--exact-limit N]");
        std::process::exit(1);
    }
    let path = std::path::Path::new(&args[0]);
    let dtype = DType::from_name(&args[1]).unwrap_or_else(|| {
        eprintln!("unknown dtype {}", args[1]);
        std::process::exit(1)
    });
    let mut opts = StatsOptions::default();
    let mut runs = 3usize;
    let mut i = 2;
    while i + 1 < args.len() {
        let v: u64 = args[i + 1].parse().expect("a number");
        match args[i].as_str() {
            "--bins" => opts.bins = v as usize,
            "--runs" => runs = v as usize,
            "--exact-limit" => opts.quantile_exact_limit = v,
            other => panic!("unknown option {other}"),
        }
        i += 2;
    }
    let src = FileSource::open(path).expect("open");
    let len = src.len();
    let numel = len / dtype.size() as u64;
    let chunk = opts.chunk as u64;
    let mut seconds = Vec::new();
    let mut last = None;
    for _ in 0..runs.max(1) {
        let t0 = std::time::Instant::now();
        let mut buf = vec![0u8; chunk as usize];
        let mut replay = |sink: &mut dyn FnMut(&[u8]) -> weightscope::format::Result<()>| {
            let mut off = 0u64;
            while off < len {
                let n = (len - off).min(chunk) as usize;
                src.read_at(off, &mut buf[..n])?;
                sink(&buf[..n])?;
                off += n as u64;
            }
            Ok(())
        };
        let s = tensor_stats(
            StatsInput::new(dtype, numel),
            &opts,
            &mut replay,
            &mut no_progress,
        )
        .expect("stats")
        .expect("never cancelled");
        seconds.push(t0.elapsed().as_secs_f64());
        last = Some(s);
    }
    let best = seconds.iter().cloned().fold(f64::INFINITY, f64::min);
    let out = serde_json::json!({
        "dtype": dtype.name(),
        "bytes": len,
        "numel": numel,
        "seconds": seconds,
        "best": best,
        "stats": last,
    });
    println!("{out}");
}

#[cfg(target_arch = "wasm32")]
fn main() {}
