//! The malformed corpus through the CLI: every file made by `tests/corpus/make_malformed.py`
//! (truncations, bit flips, bad CRCs, ambiguous zips, zip bombs, absurd numbers, deep nesting,
//! memory-budget and superlinear-work attacks, safetensors and sharded-index attacks) and every
//! crash input kept under `tests/corpus/regressions/` goes through `inspect --json` and
//! `stats --json`, each run under an address-space limit (`prlimit --as`) and a wall-clock
//! deadline. A signal (panic = abort in release, stack overflow, allocation failure), a timeout
//! or a broken promise of the manifest fails the test; the failures are listed together.
//!
//! The corpus is generated (git-ignored) by `scripts/dev.sh test` before `cargo test`; set
//! `WEIGHTSCOPE_MALFORMED` to use another directory.
#![cfg(not(target_arch = "wasm32"))]

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Address space for one CLI run. Generous against the reader's own budget (documented in the
/// README's "Limits"), small enough that an unbounded copy or an arena blow-up hits it.
const ADDRESS_SPACE: u64 = 3 << 30;
/// Wall-clock deadline for one CLI run: a hang detector, not a speed test (a debug build on a
/// busy 2-core machine; the slowest file, a 2^40-path doubling chain stopped by the memory
/// budget, took 37 s there).
const DEADLINE: Duration = Duration::from_secs(180);

fn corpus_dir() -> PathBuf {
    std::env::var_os("WEIGHTSCOPE_MALFORMED")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus/gen/malformed"))
}

#[derive(Clone, Debug)]
struct Case {
    file: PathBuf,
    class: String,
    expect: String,
    contains: Option<String>,
}

struct Run {
    code: Option<i32>,
    stderr: String,
    timed_out: bool,
    secs: f64,
}

fn run_cli(args: &[&str], file: &Path) -> Run {
    let start = Instant::now();
    let mut child = Command::new("prlimit")
        .arg(format!("--as={ADDRESS_SPACE}"))
        .arg("--")
        .arg(env!("CARGO_BIN_EXE_weightscope"))
        .args(args)
        .arg(file)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run prlimit (util-linux) and the weightscope binary");
    let mut err_pipe = child.stderr.take().expect("piped");
    let reader = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = err_pipe.read_to_end(&mut s);
        s
    });
    let mut timed_out = false;
    let status = loop {
        if let Some(st) = child.try_wait().expect("wait") {
            break st;
        }
        if start.elapsed() > DEADLINE {
            let _ = child.kill();
            timed_out = true;
            break child.wait().expect("wait after kill");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let stderr = String::from_utf8_lossy(&reader.join().unwrap_or_default()).into_owned();
    Run {
        code: status.code(),
        stderr,
        timed_out,
        secs: start.elapsed().as_secs_f64(),
    }
}

fn cases() -> Vec<Case> {
    let dir = corpus_dir();
    let m = std::fs::read_to_string(dir.join("manifest.json")).unwrap_or_else(|e| {
        panic!(
            "{}: {e} — generate the corpus first: python3 tests/corpus/make_malformed.py {}",
            dir.join("manifest.json").display(),
            dir.display()
        )
    });
    let v: serde_json::Value = serde_json::from_str(&m).expect("manifest JSON");
    let mut out: Vec<Case> = v["files"]
        .as_array()
        .expect("files")
        .iter()
        .map(|e| Case {
            file: dir.join(e["file"].as_str().expect("file")),
            class: e["class"].as_str().unwrap_or("").to_string(),
            expect: e["expect"].as_str().expect("expect").to_string(),
            contains: e["contains"].as_str().map(str::to_string),
        })
        .collect();
    // crash inputs found by fuzzing: never a crash, hang or blow-up; any clean answer
    let reg = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus/regressions");
    if let Ok(rd) = std::fs::read_dir(&reg) {
        let mut files: Vec<PathBuf> = rd
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_file() && p.extension().is_none_or(|x| x != "md"))
            .collect();
        files.sort();
        out.extend(files.into_iter().map(|file| Case {
            file,
            class: "fuzz regression".into(),
            expect: "any".into(),
            contains: None,
        }));
    }
    out
}

/// What is wrong with one command's run of `case`, if anything.
fn judge(case: &Case, cmd: &str, r: &Run) -> Option<String> {
    let what = format!("{} [{}] {cmd}", case.file.display(), case.class);
    if r.timed_out {
        return Some(format!("{what}: no answer within {DEADLINE:?}"));
    }
    let Some(code) = r.code else {
        return Some(format!(
            "{what}: killed by a signal (crash, abort or memory limit): {}",
            r.stderr.lines().last().unwrap_or("")
        ));
    };
    let ok_codes: &[i32] = match case.expect.as_str() {
        "error" => &[2],
        // refused, and the pickle it holds would run a dangerous call under torch.load
        "dangerous" => &[3],
        "ok" => &[0, 3],
        _ => &[0, 2, 3],
    };
    if !ok_codes.contains(&code) {
        return Some(format!(
            "{what}: exit {code}, expected {ok_codes:?}; stderr: {}",
            r.stderr.trim()
        ));
    }
    if case.expect == "dangerous" {
        let reason = case.contains.as_deref().unwrap_or("");
        if !r.stderr.contains(reason) || !r.stderr.contains("os.system") {
            return Some(format!(
                "{what}: expected the refusal ({reason:?}) and os.system named; stderr: {}",
                r.stderr.trim()
            ));
        }
    }
    if code == 2 {
        let line = r.stderr.trim_end_matches('\n');
        if line.is_empty() || line.contains('\n') {
            return Some(format!("{what}: the error is not one line: {line:?}"));
        }
        let name = case.file.file_name().unwrap().to_string_lossy();
        if !line.contains(&*name) {
            return Some(format!("{what}: the error does not name the file: {line}"));
        }
        if line.len() > 2000 {
            return Some(format!("{what}: a {}-byte error line", line.len()));
        }
        if let Some(c) = &case.contains {
            if !line.contains(c.as_str()) {
                return Some(format!("{what}: the error does not say {c:?}: {line}"));
            }
        }
        if line.contains("panicked") {
            return Some(format!("{what}: a panic: {line}"));
        }
    }
    None
}

#[test]
fn malformed_corpus_is_refused_or_read_cleanly() {
    let all = cases();
    let generated = all.iter().filter(|c| c.class != "fuzz regression").count();
    assert!(
        generated >= 500,
        "only {generated} generated files (the corpus promises at least 500)"
    );
    let failures = Mutex::new(Vec::new());
    let slowest = Mutex::new((0.0f64, String::new()));
    let next = AtomicUsize::new(0);
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
        .min(4);
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(case) = all.get(i) else { break };
                for (cmd, args) in [
                    ("inspect --json", &["inspect", "--json"][..]),
                    ("stats --json", &["stats", "--json"][..]),
                ] {
                    let r = run_cli(args, &case.file);
                    {
                        let mut sl = slowest.lock().unwrap();
                        if r.secs > sl.0 {
                            *sl = (r.secs, format!("{} {cmd}", case.file.display()));
                        }
                    }
                    if let Some(f) = judge(case, cmd, &r) {
                        failures.lock().unwrap().push(f);
                    }
                }
            });
        }
    });
    let failures = failures.into_inner().unwrap();
    let (secs, which) = slowest.into_inner().unwrap();
    eprintln!(
        "malformed corpus: {} files × 2 commands, slowest {secs:.2} s ({which})",
        all.len()
    );
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
