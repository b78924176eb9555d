//! No-op exports, checked against torch's expectations: every readable fixture is written back
//! with `weightscope edit IN -o OUT` as a torch zip and as safetensors, re-inspected, and every
//! tensor in the output must carry exactly the dtype, shape and sha256 torch computed for the
//! input (tests/fixtures/gen/*.inspect.json). A tensor missing from the output must be named on
//! a `dropped:` or `alias:` line of the command's stderr — nothing disappears silently.
//! (tests/roundtrip/ additionally loads every output with real torch.)
#![cfg(not(target_arch = "wasm32"))]

use serde_json::Value;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

fn dir() -> PathBuf {
    std::env::var_os("WEIGHTSCOPE_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/gen"))
}

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_weightscope"))
}

fn entries(v: &Value, join: &str) -> HashMap<String, (Value, Value, Value)> {
    v["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| {
            let path: Vec<String> = e["path"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s.as_str().unwrap().to_string())
                .collect();
            (
                path.join(join),
                (e["dtype"].clone(), e["shape"].clone(), e["sha256"].clone()),
            )
        })
        .collect()
}

#[test]
fn no_op_exports_keep_every_tensor_bit_for_bit() {
    let d = dir();
    let m: Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("manifest.json")).expect("manifest"))
            .unwrap();
    let tmp = std::env::temp_dir().join(format!("ws-edit-rt-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    let mut failures = vec![];
    let mut checked = 0;
    for f in m["fixtures"].as_array().unwrap() {
        if f["expect"] != "ok" {
            continue;
        }
        let file = f["file"].as_str().unwrap();
        let want: Value = serde_json::from_str(
            &std::fs::read_to_string(d.join(f["inspect"].as_str().unwrap())).unwrap(),
        )
        .unwrap();
        for (ext, join) in [("pth", "/"), ("safetensors", ".")] {
            let out = tmp.join(format!("{}.{ext}", file.replace('/', "_")));
            let r = bin()
                .arg("edit")
                .arg(d.join(file))
                .arg("-o")
                .arg(&out)
                .output()
                .unwrap();
            let stderr = String::from_utf8_lossy(&r.stderr).to_string();
            if !r.status.success() {
                // a file none of whose tensors safetensors can hold is refused, not written empty
                let refused_empty = ext == "safetensors"
                    && r.status.code() == Some(2)
                    && stderr.contains("nothing to write");
                let storable = |d: &str| {
                    d.starts_with("float8")
                        || matches!(
                            d,
                            "float64"
                                | "float32"
                                | "float16"
                                | "bfloat16"
                                | "int64"
                                | "int32"
                                | "int16"
                                | "int8"
                                | "uint8"
                                | "uint16"
                                | "uint32"
                                | "uint64"
                                | "bool"
                                | "complex64"
                        )
                };
                let none_storable = entries(&want, join)
                    .values()
                    .all(|(d, _, _)| !storable(d.as_str().unwrap_or("")));
                if !(refused_empty && none_storable) {
                    failures.push(format!(
                        "{file} → .{ext}: exit {:?}: {stderr}",
                        r.status.code()
                    ));
                }
                continue;
            }
            let ins = bin()
                .args(["inspect", "--json", "--hash"])
                .arg(&out)
                .output()
                .unwrap();
            if !ins.status.success() {
                failures.push(format!(
                    "{file} → .{ext}: output does not inspect: {}",
                    String::from_utf8_lossy(&ins.stderr)
                ));
                continue;
            }
            let got: Value = serde_json::from_slice(&ins.stdout).unwrap();
            if got["safety"]["verdict"] != "safe" {
                failures.push(format!(
                    "{file} → .{ext}: output verdict {}",
                    got["safety"]["verdict"]
                ));
            }
            let (w, g) = (entries(&want, join), entries(&got, join));
            for (k, v) in &g {
                match w.get(k) {
                    Some(x) if x == v => {}
                    Some(x) => failures.push(format!("{file} → .{ext}: {k}: {v:?} != torch {x:?}")),
                    None => failures.push(format!("{file} → .{ext}: unexpected tensor {k}")),
                }
            }
            for k in w.keys().filter(|k| !g.contains_key(*k)) {
                let named = stderr.lines().any(|l| {
                    (l.starts_with("dropped:") || l.starts_with("alias:"))
                        && (l.contains(k.as_str()) || l.contains(&k.replace('/', ".")))
                        || l.starts_with("dropped:")
                            && k.split(['/', '.'])
                                .any(|seg| !seg.is_empty() && l.contains(&format!("{seg}:")))
                });
                if !named {
                    failures.push(format!(
                        "{file} → .{ext}: tensor {k} vanished without a dropped/alias line"
                    ));
                }
            }
            checked += 1;
        }
    }
    let _ = std::fs::remove_dir_all(&tmp);
    assert!(checked >= 40, "only {checked} exports checked");
    assert!(
        failures.is_empty(),
        "{} problems:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn refused_edits_exit_2_and_write_nothing() {
    let d = dir();
    let tmp = std::env::temp_dir().join(format!("ws-edit-refuse-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    let out = tmp.join("out.pth");
    let cases: &[&[&str]] = &[
        &["--delete", "."],             // nothing left
        &["--replace", "^.*$=same"],    // every key collides
        &["--keep", "("],               // bad regex
        &["--rename", "no.such.key=x"], // no such key
        &["--extract", "nope"],         // no such path
        &["--cast", "int8"],            // not a float target
    ];
    for args in cases {
        let r = bin()
            .arg("edit")
            .arg(d.join("dataparallel.pth"))
            .arg("-o")
            .arg(&out)
            .args(*args)
            .output()
            .unwrap();
        assert_eq!(
            r.status.code(),
            Some(2),
            "{args:?}: {}",
            String::from_utf8_lossy(&r.stderr)
        );
        assert!(!out.exists(), "{args:?} wrote {}", out.display());
        let msg = String::from_utf8_lossy(&r.stderr);
        assert_eq!(msg.trim().lines().count(), 1, "{args:?}: {msg}");
    }
    let _ = std::fs::remove_dir_all(&tmp);
}

#[test]
fn operations_apply_in_command_line_order() {
    let d = dir();
    let tmp = std::env::temp_dir().join(format!("ws-edit-order-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    let out = tmp.join("o.pth");
    let keys = |args: &[&str]| -> Vec<String> {
        let r = bin()
            .arg("edit")
            .arg(d.join("dataparallel.pth"))
            .arg("-o")
            .arg(&out)
            .args(args)
            .output()
            .unwrap();
        assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
        let ins = bin()
            .args(["inspect", "--json"])
            .arg(&out)
            .output()
            .unwrap();
        let v: Value = serde_json::from_slice(&ins.stdout).unwrap();
        v["entries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["path"][0].as_str().unwrap().to_string())
            .collect()
    };
    let a = keys(&["--strip-prefix", "module.", "--add-prefix", "net."]);
    assert!(
        a.iter()
            .all(|k| k.starts_with("net.") && !k.contains("module.")),
        "{a:?}"
    );
    let b = keys(&["--add-prefix", "net.", "--strip-prefix", "module."]);
    assert!(b.iter().all(|k| k.starts_with("net.module.")), "{b:?}");
    let _ = std::fs::remove_dir_all(&tmp);
}
