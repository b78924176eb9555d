//! Real hostile pickles through the CLI: every file written by `tests/corpus/make_hostile.py`
//! (one or more per dangerous family, each as a plain pickle, a torch zip and a legacy stream;
//! the generator checked with Python's own `find_class` and with `torch.load` — through
//! recording stubs, nothing run — which globals loading reaches) must give exit 3 from
//! `inspect` and `stats`, with every expected global named dangerous; weightscope's Python 2
//! name tables must equal the venv's `_compat_pickle`.
//!
//! The directory is `WEIGHTSCOPE_HOSTILE` or `tests/corpus/gen/hostile`; a missing manifest is
//! a failure, not a skip (the test command generates it first).
#![cfg(not(target_arch = "wasm32"))]

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

pub fn hostile_dir() -> PathBuf {
    std::env::var_os("WEIGHTSCOPE_HOSTILE")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus/gen/hostile"))
}

fn manifest() -> Value {
    let m = hostile_dir().join("manifest.json");
    let text = std::fs::read_to_string(&m).unwrap_or_else(|e| {
        panic!(
            "{}: {e} — run tests/corpus/make_hostile.py {} with the torch venv first",
            m.display(),
            hostile_dir().display()
        )
    });
    serde_json::from_str(&text).expect("manifest is JSON")
}

fn run(args: &[&str], file: &Path) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_weightscope"))
        .args(args)
        .arg(file)
        .output()
        .expect("run weightscope");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn every_hostile_file_is_dangerous_with_its_globals_named() {
    let m = manifest();
    let list = m["hostile"].as_array().expect("hostile list");
    assert!(list.len() >= 150, "only {} hostile files", list.len());
    let families: std::collections::BTreeSet<&str> =
        list.iter().filter_map(|e| e["family"].as_str()).collect();
    for f in ["process", "files", "network", "code", "nested", "callers"] {
        assert!(families.contains(f), "no hostile file of family {f}");
    }
    let dir = hostile_dir();
    let mut bad = vec![];
    for e in list {
        let file = e["file"].as_str().unwrap();
        let path = dir.join(file);
        let (code, out, err) = run(&["inspect", "--json"], &path);
        if code != 3 {
            bad.push(format!(
                "{file}: inspect exit {code}, expected 3; stderr {err}"
            ));
            continue;
        }
        let globals: Vec<(String, String, String)> = serde_json::from_str::<Value>(&out)
            .ok()
            .and_then(|j| j["safety"]["globals"].as_array().cloned())
            .unwrap_or_default()
            .iter()
            .map(|g| {
                (
                    g["module"].as_str().unwrap_or("").to_string(),
                    g["name"].as_str().unwrap_or("").to_string(),
                    g["tier"].as_str().unwrap_or("").to_string(),
                )
            })
            .collect();
        for g in e["globals"].as_array().unwrap() {
            let (gm, gn) = (g[0].as_str().unwrap(), g[1].as_str().unwrap());
            let named = if globals.is_empty() {
                // not a checkpoint (no JSON index): the global is named on stderr
                err.contains(&format!("{gm}.{gn}"))
            } else {
                globals
                    .iter()
                    .any(|(m, n, t)| m == gm && n == gn && t == "dangerous")
            };
            if !named {
                bad.push(format!(
                    "{file}: {gm}.{gn} not reported dangerous; globals {globals:?}; stderr {err}"
                ));
            }
        }
        if let Some(f) = e["finding"].as_str() {
            if !err.contains(f) {
                bad.push(format!("{file}: finding {f:?} not reported; stderr {err}"));
            }
        }
        let (scode, _, _) = run(&["stats", "--json"], &path);
        if scode != 3 {
            bad.push(format!("{file}: stats exit {scode}, expected 3"));
        }
    }
    assert!(
        bad.is_empty(),
        "{} problems:\n{}",
        bad.len(),
        bad.join("\n")
    );
}

/// Text from the file cannot drive the terminal or pass for code: the readable output escapes
/// control characters (a key shows as Python's repr) and calls show their arguments in Python's
/// repr (the expected texts are Python's own `repr`, from the generator).
#[test]
fn text_from_the_file_cannot_spoof_the_output() {
    let m = manifest();
    let e = m["hostile"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["file"] == "spoof_text.pth")
        .expect("spoof_text.pth in the manifest");
    let path = hostile_dir().join("spoof_text.pth");
    let (code, out, err) = run(&["inspect"], &path);
    assert_eq!(code, 3);
    for text in [&out, &err] {
        assert!(!text.contains('\x1b'), "raw escape character in {text}");
    }
    assert!(out.contains(e["key_repr"].as_str().unwrap()), "{out}");
    assert!(out.contains("'line1\\nsafe: yes'"), "{out}");
    let want = e["call_repr"].as_str().unwrap();
    assert!(
        out.contains(&format!("would call {want}")),
        "{want} not in {out}"
    );
    let (_, json, _) = run(&["inspect", "--json"], &path);
    let j: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(j["safety"]["calls"][0], *want);
}

#[test]
fn python2_name_tables_match_cpython() {
    use weightscope::format::pickle::compat_names::{name_mapping, IMPORT_MAPPING};
    let m = manifest();
    let cp = &m["compat_pickle"];
    let names: Vec<((String, String), (String, String))> = cp["name_mapping"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let s = |v: &Value, i: usize| v[i].as_str().unwrap().to_string();
            ((s(&p[0], 0), s(&p[0], 1)), (s(&p[1], 0), s(&p[1], 1)))
        })
        .collect();
    let ours: Vec<((String, String), (String, String))> = name_mapping()
        .into_iter()
        .map(|((a, b), (c, d))| ((a.into(), b.into()), (c.into(), d.into())))
        .collect();
    assert_eq!(
        ours, names,
        "NAME_MAPPING differs from CPython {}",
        cp["python"]
    );
    let imports: Vec<(String, String)> = cp["import_mapping"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p[0].as_str().unwrap().into(), p[1].as_str().unwrap().into()))
        .collect();
    let ours: Vec<(String, String)> = IMPORT_MAPPING
        .iter()
        .map(|&(a, b)| (a.into(), b.into()))
        .collect();
    assert_eq!(
        ours, imports,
        "IMPORT_MAPPING differs from CPython {}",
        cp["python"]
    );
}
