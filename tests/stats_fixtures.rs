//! Statistics of every fixture checkpoint against torch/numpy (`OUTDIR/<file>.stats.json`, made
//! by `tests/fixtures/make_fixtures.py OUTDIR`). OUTDIR is `$WEIGHTSCOPE_FIXTURES`, default
//! `tests/fixtures/gen`. A missing manifest is a failure, not a skip.
//!
//! Opens each fixture that has a `stats` file through `weightscope::format::open` and
//! `FileSource` (other files of a sharded checkpoint from the same directory), computes every
//! tensor with `checkpoint_stats`, and compares per tensor path (rules in `stats_common`), plus
//! dtype and shape.
#![cfg(not(target_arch = "wasm32"))]

mod stats_common;

use serde_json::Value;
use std::path::PathBuf;
use weightscope::format::{self, FileSource, Source};
use weightscope::stats::{checkpoint_stats, Completion, StatsCache, StatsOptions};

fn fixtures_dir() -> PathBuf {
    match std::env::var_os("WEIGHTSCOPE_FIXTURES") {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/gen"),
    }
}

#[test]
fn fixture_stats_match_torch() {
    let dir = fixtures_dir();
    let manifest = dir.join("manifest.json");
    let text = std::fs::read_to_string(&manifest).unwrap_or_else(|e| {
        panic!(
            "fixture manifest {} is missing ({e}); generate it with \
             `~/.cache/weightscope/venv/bin/python tests/fixtures/make_fixtures.py {}`",
            manifest.display(),
            dir.display()
        )
    });
    let m: Value = serde_json::from_str(&text).expect("manifest.json is JSON");
    let fixtures = m["fixtures"]
        .as_array()
        .expect("manifest has a fixtures list");
    let mut bad: Vec<String> = Vec::new();
    let mut tensors_checked = 0usize;
    for f in fixtures {
        let Some(stats_file) = f["stats"].as_str() else {
            continue;
        };
        let file = f["file"].as_str().expect("fixture has a file name");
        let exp: Value = match std::fs::read_to_string(dir.join(stats_file)) {
            Ok(t) => serde_json::from_str(&t).expect("stats JSON"),
            Err(e) => {
                bad.push(format!("{file}: cannot read {stats_file}: {e}"));
                continue;
            }
        };
        let src = match FileSource::open(&dir.join(file)) {
            Ok(s) => s,
            Err(e) => {
                bad.push(format!("{file}: {e}"));
                continue;
            }
        };
        let ckpt = match format::open(&src, file) {
            Ok(c) => c,
            Err(e) => {
                bad.push(format!("{file}: open failed: {e}"));
                continue;
            }
        };
        // Extra files (shards) live beside the first one.
        let mut extra = Vec::new();
        for name in ckpt.files.iter().skip(1) {
            match FileSource::open(&dir.join(name)) {
                Ok(s) => extra.push(s),
                Err(e) => bad.push(format!("{file}: shard {name}: {e}")),
            }
        }
        let mut sources: Vec<&dyn Source> = vec![&src];
        sources.extend(extra.iter().map(|s| s as &dyn Source));
        let bins = exp["bins"].as_u64().unwrap_or(64) as usize;
        let opts = StatsOptions {
            bins,
            ..StatsOptions::default()
        };
        let mut cache = StatsCache::new();
        match checkpoint_stats(
            &ckpt,
            &sources,
            &opts,
            &|_| true,
            &mut |_, _| true,
            &mut cache,
        ) {
            Ok(Completion::Done) => {}
            Ok(Completion::Cancelled) => unreachable!("never cancelled"),
            Err(e) => {
                bad.push(format!("{file}: statistics failed: {e}"));
                continue;
            }
        }
        let expected = exp["tensors"].as_array().cloned().unwrap_or_default();
        if expected.is_empty() {
            bad.push(format!("{file}: {stats_file} lists no tensors"));
        }
        for e in &expected {
            let path: Vec<String> = e["path"]
                .as_array()
                .map(|p| {
                    p.iter()
                        .map(|s| match s {
                            Value::String(s) => s.clone(),
                            other => other.to_string(),
                        })
                        .collect()
                })
                .unwrap_or_default();
            let what = format!("{file}: {}", path.join("/"));
            let Some(i) = ckpt.tensors.iter().position(|t| t.path == path) else {
                bad.push(format!("{what}: no such tensor"));
                continue;
            };
            let t = &ckpt.tensors[i];
            if e["dtype"].as_str() != Some(t.dtype.name()) {
                bad.push(format!(
                    "{what}: dtype {} vs expected {}",
                    t.dtype, e["dtype"]
                ));
            }
            let shape: Vec<u64> = e["shape"]
                .as_array()
                .map(|a| a.iter().filter_map(Value::as_u64).collect())
                .unwrap_or_default();
            if shape != t.shape {
                bad.push(format!("{what}: shape {:?} vs expected {shape:?}", t.shape));
            }
            match cache.get(i, bins) {
                Some(s) => bad.extend(stats_common::compare(&what, s, e)),
                None => bad.push(format!("{what}: no statistics computed")),
            }
            tensors_checked += 1;
        }
    }
    assert!(
        bad.is_empty(),
        "{} mismatches ({tensors_checked} tensors checked):\n{}",
        bad.len(),
        bad.join("\n")
    );
    assert!(
        tensors_checked > 0,
        "no fixture in {} has statistics",
        manifest.display()
    );
}
