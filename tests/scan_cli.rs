//! `weightscope scan`: exit codes and the JSON shape, on the torch fixtures (whose expected
//! verdicts come from the fixture generator) and on the hostile pickles of
//! `tests/corpus/make_hostile.py`.
#![cfg(not(target_arch = "wasm32"))]

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

fn fixtures_dir() -> PathBuf {
    std::env::var_os("WEIGHTSCOPE_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/gen"))
}

fn hostile_dir() -> PathBuf {
    std::env::var_os("WEIGHTSCOPE_HOSTILE")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus/gen/hostile"))
}

fn scan(args: &[&Path], json: bool) -> (i32, String) {
    let mut c = Command::new(env!("CARGO_BIN_EXE_weightscope"));
    c.arg("scan");
    if json {
        c.arg("--json");
    }
    let out = c.args(args).output().expect("run weightscope");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

fn manifest(dir: &Path, key: &str) -> Vec<Value> {
    let text = std::fs::read_to_string(dir.join("manifest.json"))
        .unwrap_or_else(|e| panic!("{}: {e} (run the generators first)", dir.display()));
    let v: Value = serde_json::from_str(&text).unwrap();
    v[key].as_array().expect("list").clone()
}

/// Check the JSON shape and return `path → record`.
fn records(out: &str) -> std::collections::HashMap<String, Value> {
    let j: Value = serde_json::from_str(out).expect("scan --json prints JSON");
    let files = j["files"].as_array().expect("files array");
    let s = &j["summary"];
    let mut counted = 0;
    for k in ["safe", "unknown", "dangerous", "unreadable", "skipped"] {
        let n = s[k].as_u64().unwrap_or_else(|| panic!("summary.{k}")) as usize;
        assert_eq!(
            n,
            files.iter().filter(|f| f["status"] == k).count(),
            "summary.{k}"
        );
        counted += n;
    }
    assert_eq!(s["files"].as_u64().unwrap() as usize, files.len());
    assert_eq!(counted, files.len());
    for f in files {
        assert!(f["path"].is_string() && f["format"].is_string(), "{f}");
        for k in ["dangerous", "unknown", "findings", "calls"] {
            assert!(f[k].is_array(), "{k} of {f}");
        }
    }
    files
        .iter()
        .map(|f| (f["path"].as_str().unwrap().to_string(), f.clone()))
        .collect()
}

#[test]
fn fixtures_get_the_generators_verdicts() {
    let dir = fixtures_dir();
    let list = manifest(&dir, "fixtures");
    let (code, out) = scan(&[&dir], true);
    let recs = records(&out);
    assert_eq!(code, 3, "the fixtures include hostile files: exit 3");
    let (mut checked, mut unreadable) = (0, 0);
    for f in &list {
        let file = f["file"].as_str().unwrap();
        let path = dir.join(file).display().to_string();
        let Some(r) = recs.get(&path) else {
            continue; // shards and sidecar files are listed under their own names
        };
        // the verdict torch's expectations give (`*.inspect.json`), as `inspect` is checked
        let verdict = f["inspect"]
            .as_str()
            .and_then(|j| std::fs::read_to_string(dir.join(j)).ok())
            .and_then(|t| serde_json::from_str::<Value>(&t).ok())
            .and_then(|j| j["safety"]["verdict"].as_str().map(String::from));
        let want: Vec<&str> = match f["expect"].as_str().unwrap_or("ok") {
            "dangerous" => vec!["dangerous"],
            // scan reads no tensor bytes: a file broken only there (a bad CRC) scans as safe
            "error" => vec!["unreadable", "skipped", "safe"],
            _ => match verdict.as_deref() {
                Some("unknown") => vec!["unknown"],
                Some("safe") | None => vec!["safe"],
                Some(_) => vec!["dangerous"],
            },
        };
        assert!(
            want.contains(&r["status"].as_str().unwrap()),
            "{file}: status {} not in {want:?}: {r}",
            r["status"]
        );
        checked += 1;
        unreadable += usize::from(r["status"] == "unreadable");
    }
    assert!(checked >= 20, "only {checked} fixtures checked");
    assert!(
        unreadable >= 3,
        "only {unreadable} broken fixtures unreadable"
    );
    // one safe file alone: exit 0; a missing path: exit 2; missing + hostile: exit 3
    let safe = dir.join("parameter.pt");
    assert_eq!(recs[&safe.display().to_string()]["status"], "safe");
    assert_eq!(scan(&[&safe], false).0, 0);
    let missing = dir.join("no-such-file.pth");
    assert_eq!(scan(&[&safe, &missing], false).0, 2);
    let hostile = dir.join("hostile_eval.pth");
    assert_eq!(scan(&[&missing, &hostile], false).0, 3);
}

#[test]
fn hostile_pickles_are_all_dangerous() {
    let dir = hostile_dir();
    let list = manifest(&dir, "hostile");
    let (code, out) = scan(&[&dir], true);
    assert_eq!(code, 3);
    let recs = records(&out);
    for e in &list {
        let file = e["file"].as_str().unwrap();
        let r = &recs[&dir.join(file).display().to_string()];
        assert_eq!(r["status"], "dangerous", "{file}: {r}");
        for g in e["globals"].as_array().unwrap() {
            let name = format!("{}.{}", g[0].as_str().unwrap(), g[1].as_str().unwrap());
            assert!(
                r["dangerous"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|d| d == &name),
                "{file}: {name} not among the dangerous globals: {r}"
            );
        }
    }
    // the manifest itself is JSON text, not a checkpoint
    assert_eq!(
        recs[&dir.join("manifest.json").display().to_string()]["status"],
        "skipped"
    );
    // the readable form: one line per file plus the summary line
    let (code, text) = scan(&[&dir], false);
    assert_eq!(code, 3);
    assert_eq!(text.lines().count(), recs.len() + 1);
    assert!(text.lines().all(|l| !l.contains('\x1b')));
}
