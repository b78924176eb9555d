//! The CLI contract against torch-made expectations: every fixture in the manifest written by
//! `tests/fixtures/make_fixtures.py` (run with real torch) is inspected with
//! `weightscope inspect --json --hash`, and the output must equal torch's expected JSON
//! (format, every entry's path / dtype / shape / sha256, safety verdict and globals), with the
//! expected exit status; broken files must fail with exit 2 and a message naming the problem.
//!
//! The fixture directory is `WEIGHTSCOPE_FIXTURES` or `tests/fixtures/gen`; a missing manifest is a
//! failure, not a skip (the test command generates it first). `WEIGHTSCOPE_BIN` replaces the
//! cargo-built command (the wheel check runs these tests against the pip-installed one).
#![cfg(not(target_arch = "wasm32"))]

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

fn fixtures_dir() -> PathBuf {
    std::env::var_os("WEIGHTSCOPE_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/gen"))
}

/// The CLI under test: `WEIGHTSCOPE_BIN` (e.g. the command a `pip install`ed wheel put on
/// PATH), else the one cargo just built.
fn bin() -> PathBuf {
    std::env::var_os("WEIGHTSCOPE_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_weightscope")))
}

fn manifest() -> (PathBuf, Vec<Value>) {
    let dir = fixtures_dir();
    let m = dir.join("manifest.json");
    let text = std::fs::read_to_string(&m).unwrap_or_else(|e| {
        panic!(
            "{}: {e} — run tests/fixtures/make_fixtures.py {} with the torch venv first",
            m.display(),
            dir.display()
        )
    });
    let v: Value = serde_json::from_str(&text).expect("manifest.json is JSON");
    let list = v["fixtures"]
        .as_array()
        .expect("manifest has fixtures")
        .clone();
    assert!(
        list.len() >= 20,
        "manifest lists only {} fixtures",
        list.len()
    );
    (dir, list)
}

fn inspect(path: &Path) -> (i32, String, String) {
    let out = Command::new(bin())
        .args(["inspect", "--json", "--hash"])
        .arg(path)
        .output()
        .expect("run weightscope");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn compare(file: &str, got: &Value, want: &Value) -> Vec<String> {
    let mut diffs = vec![];
    if got["format"] != want["format"] {
        diffs.push(format!(
            "{file}: format {} != expected {}",
            got["format"], want["format"]
        ));
    }
    let (g, w) = (got["entries"].as_array(), want["entries"].as_array());
    match (g, w) {
        (Some(g), Some(w)) => {
            if g.len() != w.len() {
                diffs.push(format!("{file}: {} entries, expected {}", g.len(), w.len()));
            }
            for (i, (ge, we)) in g.iter().zip(w).enumerate() {
                for k in ["path", "dtype", "shape", "sha256"] {
                    if we.get(k).is_some() && ge[k] != we[k] {
                        diffs.push(format!(
                            "{file}: entry {i} {}: {k} {} != expected {}",
                            we["path"], ge[k], we[k]
                        ));
                    }
                }
            }
        }
        _ => diffs.push(format!("{file}: entries missing")),
    }
    if let Some(ws) = want.get("safety") {
        if got["safety"]["verdict"] != ws["verdict"] {
            diffs.push(format!(
                "{file}: verdict {} != expected {}",
                got["safety"]["verdict"], ws["verdict"]
            ));
        }
        if let Some(wg) = ws.get("globals") {
            let strip = |v: &Value| -> Vec<(String, String, String)> {
                v.as_array()
                    .into_iter()
                    .flatten()
                    .map(|g| {
                        (
                            g["module"].as_str().unwrap_or("").to_string(),
                            g["name"].as_str().unwrap_or("").to_string(),
                            g["tier"].as_str().unwrap_or("").to_string(),
                        )
                    })
                    .collect()
            };
            let (gg, ww) = (strip(&got["safety"]["globals"]), strip(wg));
            if gg != ww {
                diffs.push(format!("{file}: globals {gg:?} != expected {ww:?}"));
            }
        }
    }
    diffs
}

#[test]
fn every_fixture_matches_torch() {
    let (dir, list) = manifest();
    let mut failures = vec![];
    let mut checked = 0;
    for f in &list {
        let file = f["file"].as_str().expect("file");
        let path = dir.join(file);
        let expect = f["expect"].as_str().unwrap_or("ok");
        let want_exit = f["exit"].as_i64().unwrap_or(0) as i32;
        let (code, stdout, stderr) = inspect(&path);
        if code != want_exit {
            failures.push(format!(
                "{file}: exit {code}, expected {want_exit}; stderr: {}",
                stderr.trim()
            ));
            continue;
        }
        checked += 1;
        if expect == "error" {
            let needle = f["error_contains"].as_str().unwrap_or("");
            // matched case-insensitively (tests/fixtures/README.md)
            if needle.is_empty() || !stderr.to_lowercase().contains(&needle.to_lowercase()) {
                failures.push(format!(
                    "{file}: error message {:?} does not contain {needle:?}",
                    stderr.trim()
                ));
            }
            if stderr.trim().lines().count() != 1 {
                failures.push(format!("{file}: error is not one line: {stderr:?}"));
            }
            continue;
        }
        let Some(inspect_file) = f["inspect"].as_str() else {
            failures.push(format!("{file}: manifest has no inspect expectation"));
            continue;
        };
        let want: Value = serde_json::from_str(
            &std::fs::read_to_string(dir.join(inspect_file)).expect("expected json"),
        )
        .expect("expected json parses");
        let got: Value = match serde_json::from_str(&stdout) {
            Ok(v) => v,
            Err(e) => {
                failures.push(format!("{file}: output is not JSON ({e}): {stdout}"));
                continue;
            }
        };
        failures.extend(compare(file, &got, &want));
        if expect == "dangerous" {
            for pair in f["dangerous_globals"].as_array().into_iter().flatten() {
                let (m, n) = (
                    pair[0].as_str().unwrap_or(""),
                    pair[1].as_str().unwrap_or(""),
                );
                let found = got["safety"]["globals"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|g| g["module"] == m && g["name"] == n && g["tier"] == "dangerous");
                if !found {
                    failures.push(format!("{file}: dangerous global {m}.{n} not reported"));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} fixtures differ from torch:\n{}",
        failures.len(),
        list.len(),
        failures.join("\n")
    );
    assert_eq!(checked, list.len());
}

#[test]
fn detect_names_formats_from_bytes() {
    let (dir, list) = manifest();
    for f in &list {
        let file = f["file"].as_str().unwrap();
        let Some(fmt) = f["format"].as_str() else {
            continue;
        };
        if f["expect"] == "error" || fmt.ends_with("-sharded") || fmt == "torchscript" {
            continue;
        }
        let out = Command::new(bin())
            .arg("detect")
            .arg(dir.join(file))
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        let col: Vec<&str> = text.trim().split('\t').collect();
        assert_eq!(col.get(1).copied(), Some(fmt), "{file}: {text}");
        assert_eq!(out.status.code(), Some(0));
    }
}

#[test]
fn usage_errors_exit_1() {
    let out = Command::new(bin()).args(["inspect"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let out = Command::new(bin()).args(["frobnicate"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let out = Command::new(bin()).args(["--help"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("inspect"));
}
