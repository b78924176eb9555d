//! `weightscope merge FIRST OTHER... -o OUT --method linear|add-difference|slerp|ties`: fuse
//! checkpoints tensor by tensor (see `export::merge` for the formulas) into one file or, with
//! `--shard-size`, a directory of Hugging Face-style shards. Refusals (different key sets or
//! shapes, bad parameters) exit 2 and write nothing.

use super::open::{open_path, Opened};
use crate::export::merge::{key_filter, plan, MergeSource, Method};
use crate::export::plan::{write_file, OutFormat};
use crate::export::shards::{parse_size, write_sharded};
use crate::format::{Checkpoint, Source};
use std::path::PathBuf;

/// Arguments of `weightscope merge`.
#[derive(clap::Args, Debug)]
pub struct MergeArgs {
    /// FIRST (the base: its tree, dtypes and non-floating tensors are kept), then the others.
    #[arg(required = true, num_args = 2..)]
    pub inputs: Vec<PathBuf>,
    /// Output file (its extension chooses the format), or the directory of shards with --shard-size.
    #[arg(short = 'o', long = "output", required = true)]
    pub output: PathBuf,
    /// linear (Σ wᵢ·Mᵢ), add-difference (A + α·(B − C)), slerp (two inputs) or ties.
    #[arg(long, value_parser = ["linear", "add-difference", "slerp", "ties"])]
    pub method: String,
    /// linear: one weight per input, comma-separated (normalised to sum 1; default equal).
    #[arg(long, value_delimiter = ',', allow_hyphen_values = true)]
    pub weights: Vec<f64>,
    /// add-difference and ties: the scale α of the difference (default 1).
    #[arg(long, allow_hyphen_values = true)]
    pub alpha: Option<f64>,
    /// slerp: the interpolation parameter in [0, 1] (0 = FIRST).
    #[arg(long)]
    pub t: Option<f64>,
    /// ties: the fraction of each task vector kept, by magnitude (default 1).
    #[arg(long)]
    pub density: Option<f64>,
    /// Merge only tensors whose name (path joined by '.') or path (joined by '/') matches; the
    /// others are FIRST's.
    #[arg(long, value_name = "REGEX")]
    pub keys: Option<String>,
    /// Output format, overriding the extension: torch or safetensors (shards: default safetensors).
    #[arg(long)]
    pub format: Option<String>,
    /// Write shards of at most SIZE (e.g. 5GB, 500MB, 2GiB) plus the index into directory OUT.
    #[arg(long, value_name = "SIZE")]
    pub shard_size: Option<String>,
}

/// Run `merge`; returns the exit status.
pub fn run(a: &MergeArgs) -> i32 {
    match run_inner(a) {
        Ok(()) => 0,
        Err((code, msg)) => {
            eprintln!("{msg}");
            code
        }
    }
}

fn method(a: &MergeArgs) -> Result<Method, String> {
    let unused = |flag: &str, set: bool| {
        if set {
            Err(format!("--{flag} does not apply to --method {}", a.method))
        } else {
            Ok(())
        }
    };
    let m = match a.method.as_str() {
        "linear" => {
            unused("alpha", a.alpha.is_some())?;
            unused("t", a.t.is_some())?;
            unused("density", a.density.is_some())?;
            Method::Linear {
                weights: if a.weights.is_empty() {
                    vec![1.0; a.inputs.len()]
                } else {
                    a.weights.clone()
                },
            }
        }
        "add-difference" => {
            unused("weights", !a.weights.is_empty())?;
            unused("t", a.t.is_some())?;
            unused("density", a.density.is_some())?;
            Method::AddDifference {
                alpha: a.alpha.unwrap_or(1.0),
            }
        }
        "slerp" => {
            unused("weights", !a.weights.is_empty())?;
            unused("alpha", a.alpha.is_some())?;
            unused("density", a.density.is_some())?;
            Method::Slerp {
                t: a.t.ok_or("slerp needs --t in [0, 1]")?,
            }
        }
        _ => {
            unused("weights", !a.weights.is_empty())?;
            unused("t", a.t.is_some())?;
            Method::Ties {
                density: a.density.unwrap_or(1.0),
                alpha: a.alpha.unwrap_or(1.0),
            }
        }
    };
    m.check(a.inputs.len())?;
    Ok(m)
}

fn run_inner(a: &MergeArgs) -> Result<(), (i32, String)> {
    let usage = |m: String| (super::EXIT_USAGE, m);
    let refuse = |m: String| (super::EXIT_UNREADABLE, m);
    let method = method(a).map_err(usage)?;
    let selected = key_filter(a.keys.as_deref()).map_err(usage)?;
    let shard = a
        .shard_size
        .as_deref()
        .map(parse_size)
        .transpose()
        .map_err(usage)?;
    let out_name = a.output.display().to_string();
    let format = match (&a.format, shard) {
        (Some(f), _) => OutFormat::parse(f)
            .ok_or_else(|| usage(format!("--format {f:?}: use torch or safetensors")))?,
        (None, Some(_)) => OutFormat::Safetensors,
        (None, None) => OutFormat::from_name(&out_name).ok_or_else(|| {
            usage(format!("{out_name}: cannot tell the output format from the extension (use .pth/.pt/.bin/.ckpt, .safetensors or --format)"))
        })?,
    };
    let opened: Vec<Opened> = a
        .inputs
        .iter()
        .map(|p| open_path(p).map_err(|e| refuse(e.to_string())))
        .collect::<Result<_, _>>()?;
    let ckpts: Vec<&Checkpoint> = opened.iter().map(|o| &o.ckpt).collect();
    let files: Vec<String> = a.inputs.iter().map(|p| p.display().to_string()).collect();
    let p = plan(&ckpts, &files, &method, &selected).map_err(refuse)?;
    let sources: Vec<Vec<&dyn Source>> = opened.iter().map(|o| o.source_refs()).collect();
    let msrc = MergeSource::new(&p, method, ckpts, sources);
    let total = msrc.total();
    let mut last = 0u64;
    let verbose = std::io::IsTerminal::is_terminal(&std::io::stderr());
    msrc.on_progress(Box::new(move |done| {
        if verbose && (done - last >= 256 << 20 || done == total) {
            last = done;
            eprint!(
                "\rmerging: {:.0}%",
                done as f64 * 100.0 / total.max(1) as f64
            );
            if done == total {
                eprintln!();
            }
        }
    }));
    let inputs = msrc.inputs();
    match shard {
        Some(max) => {
            let r = write_sharded(&p.tree, &inputs, format, &a.output, max)
                .map_err(|e| refuse(e.to_string()))?;
            for d in &r.plan.dropped {
                eprintln!("dropped: {d}");
            }
            for (alias, kept) in &r.plan.aliases {
                eprintln!("alias: {alias} is the same tensor as {kept}; written once");
            }
            report_overflow(r.reports.iter().flat_map(|r| &r.overflow));
            eprintln!(
                "wrote {} into {out_name}: {} tensors merged, {} copied from {}",
                r.files.join(", "),
                p.merged.len(),
                p.copied,
                files[0]
            );
        }
        None => {
            let r = write_file(&p.tree, &inputs, format, &a.output)
                .map_err(|e| refuse(e.to_string()))?;
            for d in &r.dropped {
                eprintln!("dropped: {d}");
            }
            report_overflow(r.overflow.iter());
            eprintln!(
                "wrote {out_name}: {} tensors merged, {} copied from {}",
                p.merged.len(),
                p.copied,
                files[0]
            );
        }
    }
    Ok(())
}

fn report_overflow<'a>(o: impl Iterator<Item = &'a (String, u64)>) {
    for (p, n) in o {
        eprintln!("overflow: {p}: {n} finite values became ±inf in the output dtype");
    }
}
