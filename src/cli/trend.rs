//! `weightscope trend CKPT... [--json | --csv] [--key REGEX]`: every tensor's statistics across
//! the checkpoints of one training run, with flags ([`crate::stats::trend`] has the rules).
//!
//! Contract: each argument is one checkpoint — a file, a sharded set's `*.index.json`, or a
//! directory holding exactly one `*.index.json` (else exactly one checkpoint file: `.pth`, `.pt`,
//! `.bin`, `.ckpt`, `.safetensors`). Checkpoints are ordered by their step (else by name, see
//! [`crate::stats::trend::order`]), each tensor streamed once beside the previous checkpoint's; contiguous ranges of steps run on up to four threads (one per core).
//! `--json` prints
//! `{"steps": [{"file", "step"}], "tensors": [{"key", "std", "mean", "abs_max", "l2",
//! "zero_fraction", "nonfinite", "rel_change"}], "flags": [{"key", "step_index", "kind"}]}`;
//! `--csv` the same table one row per tensor and step ([`crate::stats::trend::to_csv`]); otherwise
//! a summary. `--key` keeps the tensors whose key matches. Exit 2 when a checkpoint cannot be
//! read (one line naming file and place), 1 on bad usage.

use super::open::{open_path, Opened};
use crate::format::FormatError;
use crate::stats::trend::{self, StepInfo, StepPoints, TrendReport};
use std::io::Write;
use std::path::{Path, PathBuf};

const CKPT_EXTS: [&str; 5] = ["pth", "pt", "bin", "ckpt", "safetensors"];

/// The file to open for an argument: itself, or the checkpoint a directory holds.
fn resolve(path: &Path) -> Result<PathBuf, FormatError> {
    if !path.is_dir() {
        return Ok(path.to_path_buf());
    }
    let name = path.display().to_string();
    let mut names: Vec<PathBuf> = std::fs::read_dir(path)
        .map_err(|e| FormatError::new(e.to_string()).in_file(&name))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    names.sort();
    let pick = |keep: &dyn Fn(&str) -> bool| -> Vec<PathBuf> {
        names
            .iter()
            .filter(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(keep))
            .cloned()
            .collect()
    };
    let index = pick(&|n| n.ends_with(".index.json"));
    let found = if index.is_empty() {
        pick(&|n| {
            n.rsplit_once('.')
                .is_some_and(|(_, ext)| CKPT_EXTS.contains(&ext))
        })
    } else {
        index
    };
    match found.as_slice() {
        [one] => Ok(one.clone()),
        [] => Err(
            FormatError::new("directory holds no *.index.json and no checkpoint file")
                .in_file(name),
        ),
        many => Err(FormatError::new(format!(
            "directory holds {} candidates ({}): name the one to use",
            many.len(),
            many.iter()
                .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
                .collect::<Vec<_>>()
                .join(", ")
        ))
        .in_file(name)),
    }
}

/// Most threads computing steps at once.
const MAX_THREADS: usize = 4;

/// Steps `a..b` of the ordered `files` (step `k` after step `k − 1`), each file opened once.
fn steps_range(
    files: &[PathBuf],
    a: usize,
    b: usize,
    select: &dyn Fn(&str) -> bool,
) -> Result<Vec<StepPoints>, FormatError> {
    let mut prev: Option<Opened> = match a.checked_sub(1) {
        Some(k) => Some(open_path(&files[k])?),
        None => None,
    };
    let mut out = Vec::with_capacity(b - a);
    for f in &files[a..b] {
        let cur = open_path(f)?;
        let cs = cur.source_refs();
        let ps = prev.as_ref().map(|p| p.source_refs()).unwrap_or_default();
        let p = trend::step_points(
            trend::CheckpointRef {
                ckpt: &cur.ckpt,
                sources: &cs,
            },
            prev.as_ref().map(|p| trend::CheckpointRef {
                ckpt: &p.ckpt,
                sources: &ps,
            }),
            select,
            crate::format::data::DEFAULT_CHUNK,
            &mut |_, _| true,
        )?
        .expect("never cancelled");
        out.push(p);
        drop(cs);
        drop(ps);
        prev = Some(cur);
    }
    Ok(out)
}

/// Open, order and read every checkpoint; the report.
pub fn compute(
    paths: &[PathBuf],
    select: &(dyn Fn(&str) -> bool + Sync),
) -> Result<TrendReport, FormatError> {
    let mut opened: Vec<(String, Opened)> = Vec::new();
    for p in paths {
        let o = open_path(&resolve(p)?)?;
        opened.push((p.display().to_string(), o));
    }
    let items: Vec<(String, Option<i64>)> = opened
        .iter()
        .map(|(n, o)| (n.clone(), trend::step_of(&o.ckpt)))
        .collect();
    let ord = trend::order(&items);
    let files: Vec<PathBuf> = ord
        .iter()
        .map(|&i| resolve(&paths[i]))
        .collect::<Result<_, _>>()?;
    drop(opened);
    // Steps are independent given (cur, prev): contiguous ranges of steps on up to `threads`
    // threads, each opening its own files (sources are not shared between threads), so one
    // thread's reads overlap another's computation.
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, MAX_THREADS)
        .min(files.len().max(1));
    let per = files.len().div_ceil(threads);
    let ranges: Vec<(usize, usize)> = (0..threads)
        .map(|t| (t * per, ((t + 1) * per).min(files.len())))
        .filter(|(a, b)| a < b)
        .collect();
    let files = &files;
    let parts: Vec<Result<Vec<StepPoints>, FormatError>> = std::thread::scope(|sc| {
        let handles: Vec<_> = ranges
            .iter()
            .map(|&(a, b)| sc.spawn(move || steps_range(files, a, b, select)))
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(FormatError::new("a trend thread panicked")))
            })
            .collect()
    });
    let mut points = Vec::new();
    for p in parts {
        points.extend(p?);
    }
    let steps: Vec<StepInfo> = ord
        .iter()
        .map(|&i| StepInfo {
            file: items[i].0.clone(),
            step: items[i].1,
        })
        .collect();
    Ok(trend::assemble(steps, &points))
}

fn fmt(x: Option<f64>) -> String {
    x.map(|v| format!("{v:.4e}")).unwrap_or_else(|| "-".into())
}

/// The human-readable summary.
fn print_text(r: &TrendReport, out: &mut dyn Write) -> std::io::Result<()> {
    writeln!(
        out,
        "{} checkpoints, {} tensors, {} flags",
        r.steps.len(),
        r.tensors.len(),
        r.flags.len()
    )?;
    for (i, s) in r.steps.iter().enumerate() {
        let step = s.step.map(|v| v.to_string()).unwrap_or_else(|| "-".into());
        writeln!(out, "  [{i}] step {step}  {}", s.file)?;
    }
    for f in &r.flags {
        writeln!(
            out,
            "flag {:<9} [{}] {}",
            f.kind.name(),
            f.step_index,
            f.key
        )?;
    }
    writeln!(
        out,
        "{:<12} {:<12} {:<12} {:<18} key",
        "std first", "std last", "|w| max", "max rel change"
    )?;
    for s in &r.tensors {
        let first = s.std.iter().flatten().next().copied();
        let last = s.std.iter().rev().flatten().next().copied();
        let absmax = s.abs_max.iter().flatten().copied().reduce(f64::max);
        let rel = s
            .rel_change
            .iter()
            .enumerate()
            .filter_map(|(t, r)| r.map(|r| (t, r)))
            .max_by(|a, b| a.1.total_cmp(&b.1));
        let rel = rel
            .map(|(t, r)| format!("{r:.3e} [{t}]"))
            .unwrap_or_else(|| "-".into());
        writeln!(
            out,
            "{:<12} {:<12} {:<12} {:<18} {}",
            fmt(first),
            fmt(last),
            fmt(absmax),
            rel,
            s.key
        )?;
    }
    Ok(())
}

/// Run the command; the exit status.
pub fn run(
    files: &[PathBuf],
    json: bool,
    csv: bool,
    key: Option<&str>,
    out: &mut dyn Write,
) -> i32 {
    let re = match super::key_regex(key) {
        Ok(r) => r,
        Err(code) => return code,
    };
    let select = |k: &str| re.as_ref().is_none_or(|r| r.is_match(k));
    let r = match compute(files, &select) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("{e}");
            return super::EXIT_UNREADABLE;
        }
    };
    let written = if json {
        writeln!(out, "{}", serde_json::to_string(&r).expect("json"))
    } else if csv {
        out.write_all(trend::to_csv(&r).as_bytes())
    } else {
        print_text(&r, out)
    };
    match written {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("writing output: {e}");
            super::EXIT_UNREADABLE
        }
    }
}
