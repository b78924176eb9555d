//! Fixture tests for the safetensors and sharded readers against files and expectations written
//! by real torch / safetensors (`tests/fixtures/make_fixtures.py OUTDIR`).
//!
//! The fixture directory is `$WEIGHTSCOPE_FIXTURES`, default `tests/fixtures/gen`. A missing
//! manifest FAILS the tests (generate it with the torch venv:
//! `~/.cache/weightscope/venv/bin/python tests/fixtures/make_fixtures.py tests/fixtures/gen`).
//!
//! For each selected fixture: `expect: "ok"` (or `"dangerous"`) → open it with
//! `format::open_path` and compare `format`, `entries` (path, dtype, shape, sha256 of the bytes
//! `format::data::read_tensor` streams) and `safety` exactly with `<file>.inspect.json`;
//! `expect: "error"` → opening, or reading some tensor, must fail with a message containing
//! `error_contains` (case-insensitively, as tests/fixtures/README.md specifies).
#![cfg(not(target_arch = "wasm32"))]

use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use weightscope::format::{self, data, Checkpoint, Source};

fn fixture_dir() -> PathBuf {
    match std::env::var_os("WEIGHTSCOPE_FIXTURES") {
        Some(d) => PathBuf::from(d),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/gen"),
    }
}

fn manifest(dir: &Path) -> Vec<Value> {
    let path = dir.join("manifest.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}. Generate the fixtures first: ~/.cache/weightscope/venv/bin/python tests/fixtures/make_fixtures.py {}",
            path.display(),
            dir.display()
        )
    });
    let v: Value = serde_json::from_str(&text).expect("manifest.json is JSON");
    v["fixtures"]
        .as_array()
        .expect("manifest.json has a fixtures array")
        .clone()
}

fn field<'a>(f: &'a Value, k: &str) -> &'a str {
    f[k].as_str().unwrap_or("")
}

/// Build the `inspect --json --hash` view of an opened checkpoint.
fn inspect(ck: &Checkpoint, sources: &[Box<dyn Source>]) -> format::Result<Value> {
    let refs: Vec<&dyn Source> = sources.iter().map(|s| s.as_ref()).collect();
    let mut entries = Vec::new();
    for (i, t) in ck.tensors.iter().enumerate() {
        let mut h = Sha256::new();
        data::read_tensor(ck, &refs, i, data::DEFAULT_CHUNK, &mut |b| {
            h.update(b);
            Ok(())
        })?;
        let hex: String = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
        entries.push(
            json!({"path": t.path, "dtype": t.dtype.name(), "shape": t.shape, "sha256": hex}),
        );
    }
    let globals: Vec<Value> = ck
        .safety
        .globals
        .iter()
        .map(|g| json!({"module": g.module, "name": g.name, "tier": g.tier}))
        .collect();
    Ok(json!({
        "format": ck.format.name(),
        "entries": entries,
        "safety": {"verdict": ck.safety.verdict(), "globals": globals},
    }))
}

/// Check one fixture; returns a description of the mismatch, if any.
fn check(dir: &Path, f: &Value) -> Result<(), String> {
    let file = field(f, "file");
    let expect = field(f, "expect");
    let opened = format::open_path(&dir.join(file));
    match expect {
        "error" => {
            let want = field(f, "error_contains");
            let err = match opened {
                Err(e) => e,
                Ok((ck, srcs)) => match inspect(&ck, &srcs) {
                    Err(e) => e,
                    Ok(_) => return Err(format!("{file}: opened and read without error")),
                },
            };
            // Match the place and message only: the file name alone (st_bad_header_size) must
            // not satisfy the needle.
            let mut msg = err.place.join(": ");
            msg.push_str(": ");
            msg.push_str(&err.message);
            // the manifest's rule: match error_contains case-insensitively
            if !msg.to_lowercase().contains(&want.to_lowercase()) {
                return Err(format!("{file}: error {err} does not contain {want:?}"));
            }
            Ok(())
        }
        "ok" | "dangerous" => {
            let (ck, srcs) = opened.map_err(|e| format!("{file}: {e}"))?;
            let got = inspect(&ck, &srcs).map_err(|e| format!("{file}: {e}"))?;
            let exp_name = f["inspect"]
                .as_str()
                .map(str::to_owned)
                .unwrap_or_else(|| format!("{file}.inspect.json"));
            let text = std::fs::read_to_string(dir.join(&exp_name))
                .map_err(|e| format!("{exp_name}: {e}"))?;
            let want: Value =
                serde_json::from_str(&text).map_err(|e| format!("{exp_name}: {e}"))?;
            for k in ["format", "entries", "safety"] {
                if got[k] != want[k] {
                    return Err(format!(
                        "{file}: {k} differs\n  ours:     {}\n  expected: {}",
                        got[k], want[k]
                    ));
                }
            }
            Ok(())
        }
        other => Err(format!("{file}: unknown expect {other:?}")),
    }
}

fn run(select: impl Fn(&Value) -> bool, what: &str) {
    let dir = fixture_dir();
    let fixtures: Vec<Value> = manifest(&dir).into_iter().filter(|f| select(f)).collect();
    assert!(
        !fixtures.is_empty(),
        "the manifest in {} has no {what} fixtures",
        dir.display()
    );
    let failures: Vec<String> = fixtures
        .iter()
        .filter_map(|f| check(&dir, f).err())
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} {what} fixtures failed:\n{}",
        failures.len(),
        fixtures.len(),
        failures.join("\n")
    );
    eprintln!("{} {what} fixtures passed", fixtures.len());
}

fn is_sharded_st(f: &Value) -> bool {
    field(f, "format") == "safetensors-sharded"
        || field(f, "file").ends_with(".safetensors.index.json")
}

fn is_single_st(f: &Value) -> bool {
    !is_sharded_st(f)
        && (field(f, "format") == "safetensors" || field(f, "file").ends_with(".safetensors"))
}

#[test]
fn safetensors_fixtures() {
    run(is_single_st, "safetensors");
}

#[test]
fn safetensors_sharded_fixtures() {
    run(is_sharded_st, "safetensors-sharded");
}

/// `.bin` shards are read by the torch reader: this test passes once it is merged.
#[test]
fn torch_sharded_fixtures() {
    run(
        |f| field(f, "format") == "torch-sharded" || field(f, "file").ends_with(".bin.index.json"),
        "torch-sharded",
    );
}
