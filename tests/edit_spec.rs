//! The CLI's operation flags go through the same validator as the page's requests
//! (`edit::spec`): the same cast targets, the same empty-pattern refusals, the same
//! "no tensor of B matches" refusal for a transplant. Each refusal exits 2, names the reason on
//! one line and writes nothing. Input: the bundled sample checkpoint (`assets/sample.pth`).
#![cfg(not(target_arch = "wasm32"))]

use std::path::PathBuf;
use std::process::Command;

fn sample() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("assets/sample.pth")
}

/// Run `weightscope edit sample.pth -o OUT ARGS`; returns (exit code, stderr, whether OUT exists).
fn edit(name: &str, args: &[&str]) -> (Option<i32>, String, bool) {
    let dir = std::env::temp_dir().join(format!("ws-edit-spec-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let out = dir.join("out.pth");
    let r = Command::new(env!("CARGO_BIN_EXE_weightscope"))
        .arg("edit")
        .arg(sample())
        .arg("-o")
        .arg(&out)
        .args(args)
        .output()
        .unwrap();
    let wrote = out.exists();
    let _ = std::fs::remove_dir_all(&dir);
    (
        r.status.code(),
        String::from_utf8_lossy(&r.stderr).into_owned(),
        wrote,
    )
}

fn assert_refused(name: &str, args: &[&str], reason: &str) {
    let (code, err, wrote) = edit(name, args);
    assert_eq!(code, Some(2), "{args:?}: {err}");
    assert!(!wrote, "{args:?} wrote a file");
    assert!(
        err.contains(reason),
        "{args:?}: {err:?} does not say {reason:?}"
    );
    assert_eq!(err.trim().lines().count(), 1, "{args:?}: {err}");
}

/// The page offers float16, bfloat16 and float32; the CLI's help says the same. float64 is
/// refused by both (the CLI once passed it through).
#[test]
fn cast_targets_are_the_pages() {
    assert_refused("f64", &["--cast", "float64"], "not a cast target");
    assert_refused("i8", &["--cast", "int8:weight"], "not a cast target");
    let (code, err, _) = edit("f16", &["--cast", "float16:weight$"]);
    assert_eq!(code, Some(0), "{err}");
}

/// An empty delete / keep pattern would match everything: refused, as in the page.
#[test]
fn empty_patterns_are_refused() {
    assert_refused("keep", &["--keep", ""], "keep: the pattern is empty");
    assert_refused("delete", &["--delete", ""], "delete: the pattern is empty");
    assert_refused("extract", &["--extract", "/"], "extract: the path is empty");
}

/// A transplant whose pattern matches nothing in B is refused (it once wrote an unchanged file).
#[test]
fn transplant_matching_nothing_is_refused() {
    let b = format!("{}:^no_such_key$", sample().display());
    assert_refused(
        "transplant",
        &["--transplant", &b],
        "transplant: no tensor of B matches /^no_such_key$/",
    );
}
