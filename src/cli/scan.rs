//! `weightscope scan PATH... [--json]`: the safety verdict of many files at once, for CI and
//! pre-commit hooks.
//!
//! Contract: every path is a file or a directory walked recursively (entries in name order;
//! symbolic links to directories are not followed). Each file is one line (or one JSON record)
//! with its status — `safe`, `unknown` or `dangerous` (the checkpoint's verdict, with the
//! dangerous globals and the calls loading would make), `unreadable` (a checkpoint format that
//! could not be read, with the error), or `skipped` (not a checkpoint: no format signature).
//! A pickle stream that is not a checkpoint is `dangerous` when what torch.load would call is
//! dangerous, else `skipped`; a checkpoint that cannot be read is `dangerous` when the pickle
//! it holds calls something dangerous before the place where it breaks. Exit status: 3 if any
//! file is dangerous (even when others are unreadable), else 2 if any is unreadable, else 0.
//! Files are opened one at a time; tensor bytes are never read.

use super::esc;
use super::open::{display_name, open_path};
use crate::format::checkpoint::{SafetyReport, Tier};
use crate::format::pickle::scan;
use crate::format::{self, FileSource, Format};
use serde::Serialize;
use std::io::Write;
use std::path::{Path, PathBuf};

/// What the scan says about one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Safe,
    Unknown,
    Dangerous,
    Unreadable,
    Skipped,
}

impl Status {
    fn name(self) -> &'static str {
        match self {
            Status::Safe => "safe",
            Status::Unknown => "unknown",
            Status::Dangerous => "dangerous",
            Status::Unreadable => "unreadable",
            Status::Skipped => "skipped",
        }
    }
}

/// One file's result (a record of the JSON output).
#[derive(Debug, Clone, Serialize)]
pub struct FileResult {
    pub path: String,
    pub status: Status,
    /// The detected format (`torch-zip`, `pickle`, `unknown`, ...).
    pub format: &'static str,
    /// Dangerous globals as `module.name`.
    pub dangerous: Vec<String>,
    /// Globals outside the allow-list that are not dangerous.
    pub unknown: Vec<String>,
    /// Dangerous constructs that are not a named global (computed imports, calls of results).
    pub findings: Vec<String>,
    /// What loading would call, in Python syntax.
    pub calls: Vec<String>,
    /// Why the file is unreadable or skipped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[derive(Serialize, Default)]
struct Summary {
    files: usize,
    safe: usize,
    unknown: usize,
    dangerous: usize,
    unreadable: usize,
    skipped: usize,
}

#[derive(Serialize)]
struct Output<'a> {
    files: &'a [FileResult],
    summary: Summary,
}

fn names(r: &SafetyReport, t: Tier) -> Vec<String> {
    r.globals
        .iter()
        .filter(|g| g.tier == t)
        .map(|g| format!("{}.{}", g.module, g.name))
        .collect()
}

fn result(
    path: &Path,
    format: Format,
    status: Status,
    r: Option<SafetyReport>,
    reason: Option<String>,
) -> FileResult {
    let r = r.unwrap_or_default();
    FileResult {
        path: display_name(path),
        status,
        format: format.name(),
        dangerous: names(&r, Tier::Dangerous),
        unknown: names(&r, Tier::Unknown),
        findings: r.findings,
        calls: r.calls,
        reason,
    }
}

fn status_of(r: &SafetyReport) -> Status {
    match r.verdict() {
        crate::format::Verdict::Dangerous => Status::Dangerous,
        crate::format::Verdict::Unknown => Status::Unknown,
        crate::format::Verdict::Safe => Status::Safe,
    }
}

/// Scan one file.
pub fn scan_file(path: &Path) -> FileResult {
    let src = match FileSource::open(path) {
        Ok(s) => s,
        Err(e) => {
            return result(path, Format::Unknown, Status::Unreadable, None, Some(e.0));
        }
    };
    let fmt = match format::detect_source(&src) {
        Ok(f) => f,
        Err(e) => return result(path, Format::Unknown, Status::Unreadable, None, Some(e.0)),
    };
    match fmt {
        Format::Unknown => result(
            path,
            fmt,
            Status::Skipped,
            None,
            Some("not a checkpoint (no format signature, not a pickle)".into()),
        ),
        Format::Pickle => match scan::scan_source(&src) {
            Some(s) if s.verdict() == "dangerous" => {
                let why = scan::not_a_checkpoint(&s);
                result(path, fmt, Status::Dangerous, Some(s.safety), Some(why))
            }
            Some(s) => {
                let why = scan::not_a_checkpoint(&s);
                result(path, fmt, Status::Skipped, Some(s.safety), Some(why))
            }
            None => result(
                path,
                fmt,
                Status::Skipped,
                None,
                Some("a pickle stream".into()),
            ),
        },
        _ => {
            drop(src);
            match open_path(path) {
                Ok(o) => {
                    let status = status_of(&o.ckpt.safety);
                    let r = o.ckpt.safety;
                    result(path, o.ckpt.format, status, Some(r), None)
                }
                Err(e) => {
                    let scanned = FileSource::open(path)
                        .ok()
                        .and_then(|s| scan::scan_source(&s));
                    match scanned {
                        Some(s) if s.verdict() == "dangerous" => result(
                            path,
                            fmt,
                            Status::Dangerous,
                            Some(s.safety),
                            Some(e.to_string()),
                        ),
                        _ => result(path, fmt, Status::Unreadable, None, Some(e.to_string())),
                    }
                }
            }
        }
    }
}

/// Every file under `path` (itself if a file), in name order; unreadable directories and
/// paths that do not exist are reported as errors.
fn walk(path: &Path, out: &mut Vec<Result<PathBuf, (PathBuf, String)>>) {
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) => {
            out.push(Err((path.to_path_buf(), e.to_string())));
            return;
        }
    };
    if !meta.is_dir() {
        out.push(Ok(path.to_path_buf()));
        return;
    }
    // an explicit stack: depth is bounded by the file system, not by recursion
    let mut stack = vec![path.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let mut entries: Vec<PathBuf> = match std::fs::read_dir(&dir) {
            Ok(rd) => rd.filter_map(|e| e.ok().map(|e| e.path())).collect(),
            Err(e) => {
                out.push(Err((dir, e.to_string())));
                continue;
            }
        };
        entries.sort();
        let mut subdirs = vec![];
        for p in entries {
            let Ok(lm) = std::fs::symlink_metadata(&p) else {
                continue;
            };
            if lm.is_dir() {
                subdirs.push(p);
            } else if lm.file_type().is_symlink() {
                if std::fs::metadata(&p).is_ok_and(|m| m.is_file()) {
                    out.push(Ok(p));
                }
            } else if lm.is_file() {
                out.push(Ok(p));
            }
        }
        // visit subdirectories in name order after this directory's files
        stack.extend(subdirs.into_iter().rev());
    }
}

/// `weightscope scan PATH... [--json]`; returns the exit status.
pub fn run(paths: &[PathBuf], json: bool, out: &mut dyn Write) -> i32 {
    let mut files = vec![];
    for p in paths {
        walk(p, &mut files);
    }
    let mut results = Vec::with_capacity(files.len());
    for f in files {
        let r = match f {
            Ok(p) => scan_file(&p),
            Err((p, e)) => result(&p, Format::Unknown, Status::Unreadable, None, Some(e)),
        };
        if !json {
            let _ = writeln!(out, "{}", line(&r));
        }
        results.push(r);
    }
    let mut s = Summary {
        files: results.len(),
        ..Summary::default()
    };
    for r in &results {
        *match r.status {
            Status::Safe => &mut s.safe,
            Status::Unknown => &mut s.unknown,
            Status::Dangerous => &mut s.dangerous,
            Status::Unreadable => &mut s.unreadable,
            Status::Skipped => &mut s.skipped,
        } += 1;
    }
    let code = if s.dangerous > 0 {
        super::EXIT_DANGEROUS
    } else if s.unreadable > 0 {
        super::EXIT_UNREADABLE
    } else {
        0
    };
    if json {
        let o = Output {
            files: &results,
            summary: s,
        };
        let _ = writeln!(out, "{}", serde_json::to_string_pretty(&o).expect("json"));
    } else {
        let _ = writeln!(
            out,
            "{} files: {} safe, {} unknown, {} dangerous, {} unreadable, {} skipped",
            s.files, s.safe, s.unknown, s.dangerous, s.unreadable, s.skipped
        );
    }
    code
}

/// The readable line of one file: status, path, then what matters for that status.
fn line(r: &FileResult) -> String {
    let detail = match r.status {
        Status::Dangerous => {
            let mut parts: Vec<String> = r.dangerous.iter().map(|g| esc(g)).collect();
            parts.extend(r.findings.iter().map(|f| esc(f)));
            let mut d = parts.join(", ");
            if !r.calls.is_empty() {
                d.push_str(&format!(" — would call {}", esc(&r.calls.join(", "))));
            }
            if r.format == "pickle" {
                d.push_str(" (a pickle stream, not a checkpoint)");
            }
            d
        }
        Status::Unknown => format!("not on the allow-list: {}", esc(&r.unknown.join(", "))),
        Status::Safe => String::new(),
        Status::Unreadable | Status::Skipped => esc(r.reason.as_deref().unwrap_or("")),
    };
    let p = esc(&r.path);
    if detail.is_empty() {
        format!("{:<10} {p}", r.status.name())
    } else {
        format!("{:<10} {p}  {detail}", r.status.name())
    }
}
