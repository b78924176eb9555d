//! `weightscope trend CKPT... [--json | --csv] [--key REGEX]`: every tensor's statistics across
//! the checkpoints of one training run, with flags ([`crate::stats::trend`] has the rules).
//!
//! Contract: each argument is one checkpoint — a file, a sharded set's `*.index.json`, or a
//! directory holding exactly one `*.index.json` (else exactly one checkpoint file: `.pth`, `.pt`,
//! `.bin`, `.ckpt`, `.safetensors`). Checkpoints are ordered by their step (else by name, see
//! [`crate::stats::trend::order`]), each checkpoint read once (a tensor's previous values are kept from the previous step's read, [`crate::stats::trend::run_points`]); the keys are split between up to four threads (one per core).
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

/// Most threads walking the run at once.
const MAX_THREADS: usize = 4;

/// The run's points for the keys `mine` accepts, each checkpoint of `ckpts` (in step order)
/// read once ([`trend::run_points`]).
fn walk(ckpts: &[Opened], select: &dyn Fn(&str) -> bool) -> Result<Vec<StepPoints>, FormatError> {
    let refs: Vec<Vec<&dyn crate::format::Source>> =
        ckpts.iter().map(Opened::source_refs).collect();
    let steps: Vec<trend::CheckpointRef> = ckpts
        .iter()
        .zip(&refs)
        .map(|(o, r)| trend::CheckpointRef {
            ckpt: &o.ckpt,
            sources: r,
        })
        .collect();
    Ok(trend::run_points(
        &steps,
        select,
        crate::format::data::DEFAULT_CHUNK,
        &mut |_, _| true,
    )?
    .expect("never cancelled"))
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
    let mut slots: Vec<Option<Opened>> = opened.into_iter().map(|(_, o)| Some(o)).collect();
    let ckpts: Vec<Opened> = ord
        .iter()
        .map(|&i| slots[i].take().expect("each index once"))
        .collect();
    // The keys are split between up to `threads` threads, balanced by bytes; each walks the
    // whole run for its keys (every checkpoint read once in all), the extra threads on their
    // own opened files (sources are not shared between threads), this thread on `ckpts`.
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, MAX_THREADS);
    let owner = &split_keys(&ckpts, select, threads);
    let threads = owner.values().max().map_or(1, |&t| t + 1);
    let owned = move |t: usize| move |k: &str| select(k) && owner.get(k) == Some(&t);
    let files = &files;
    let (mine, others) = std::thread::scope(|sc| {
        let handles: Vec<_> = (1..threads)
            .map(|t| {
                sc.spawn(move || -> Result<Vec<StepPoints>, FormatError> {
                    let ck = files
                        .iter()
                        .map(|f| open_path(f))
                        .collect::<Result<Vec<_>, _>>()?;
                    walk(&ck, &owned(t))
                })
            })
            .collect();
        let mine = walk(&ckpts, &owned(0));
        let others: Vec<Result<Vec<StepPoints>, FormatError>> = handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(FormatError::new("a trend thread panicked")))
            })
            .collect();
        (mine, others)
    });
    let mut parts = vec![mine?];
    for p in others {
        parts.push(p?);
    }
    let points = join_parts(&ckpts, select, parts);
    let steps: Vec<StepInfo> = ord
        .iter()
        .map(|&i| StepInfo {
            file: items[i].0.clone(),
            step: items[i].1,
        })
        .collect();
    Ok(trend::assemble(steps, &points))
}

/// Which thread reads each selected key: greedily the least loaded, largest keys first.
fn split_keys(
    ckpts: &[Opened],
    select: &dyn Fn(&str) -> bool,
    threads: usize,
) -> std::collections::HashMap<String, usize> {
    let mut bytes: std::collections::HashMap<String, u64> = Default::default();
    for o in ckpts {
        for (k, i) in trend::model_tensors(&o.ckpt) {
            if select(&k) {
                *bytes.entry(k).or_default() += o.ckpt.tensors[i].nbytes();
            }
        }
    }
    let mut keys: Vec<(String, u64)> = bytes.into_iter().collect();
    keys.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let mut load = vec![0u64; threads];
    keys.into_iter()
        .map(|(k, b)| {
            let t = (0..threads).min_by_key(|&t| load[t]).expect("threads > 0");
            load[t] = load[t].saturating_add(b);
            (k, t)
        })
        .collect()
}

/// The threads' points joined per step, in each checkpoint's own tensor order.
fn join_parts(
    ckpts: &[Opened],
    select: &dyn Fn(&str) -> bool,
    parts: Vec<Vec<StepPoints>>,
) -> Vec<StepPoints> {
    (0..ckpts.len())
        .map(|k| {
            let mut by_key: std::collections::HashMap<String, trend::Point> = parts
                .iter()
                .flat_map(|p| p[k].keys.iter().cloned().zip(p[k].points.iter().cloned()))
                .collect();
            let mut sp = StepPoints::default();
            for (key, _) in trend::model_tensors(&ckpts[k].ckpt) {
                if select(&key) {
                    if let Some(p) = by_key.remove(&key) {
                        sp.keys.push(key);
                        sp.points.push(p);
                    }
                }
            }
            sp
        })
        .collect()
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
