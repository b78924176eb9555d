//! The native command-line interface (`weightscope`), on the same core as the page.
//!
//! Contract (other tools rely on these names and exit codes):
//! - `weightscope detect FILE...` — one line per file: `FILE<TAB>FORMAT<TAB>SIZE<TAB>description`.
//! - `weightscope inspect FILE [--json] [--hash]` — the tree, or the JSON index
//!   `{"format", "entries": [{"path","dtype","shape","sha256"?}], "safety": {"verdict","globals"}}`.
//! - `weightscope trend CKPT... [--json | --csv] [--key REGEX]` — see [`trend`].
//! - Exit status: 0 read; 3 a dangerous global is referenced (the report is still printed);
//!   2 unreadable (one line on stderr naming file and place); 1 usage.

pub mod edit;
pub mod inspect;
pub mod open;
pub mod trend;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use std::path::PathBuf;

/// Exit status: the file references a dangerous global.
pub const EXIT_DANGEROUS: i32 = 3;
/// Exit status: the file could not be read.
pub const EXIT_UNREADABLE: i32 = 2;
/// Exit status: bad usage.
pub const EXIT_USAGE: i32 = 1;

#[derive(Parser, Debug)]
#[command(
    name = "weightscope",
    version,
    about = "Inspect, analyse and edit PyTorch / safetensors checkpoints without executing pickle code",
    long_about = "weightscope reads .pth/.pt/.bin/.ckpt (torch zip and legacy formats) and .safetensors files \
                  with a safe, allow-list pickle reader: nothing in the file is ever executed. Tensor bytes are read \
                  only when needed.\n\nExit status: 0 ok, 1 usage, 2 unreadable file, 3 dangerous pickle globals found."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Print the detected container format of each file (from its bytes, not its name).
    Detect {
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// List a checkpoint's tree, tensors and safety report.
    Inspect {
        file: PathBuf,
        /// Print the JSON index instead of a tree.
        #[arg(long)]
        json: bool,
        /// Add the sha256 of every tensor's contiguous little-endian bytes (reads all tensor data).
        #[arg(long)]
        hash: bool,
    },
    /// Statistics and histograms of every tensor (min, max, mean, std, L2, zeros, NaN/Inf, quantiles).
    Stats {
        file: PathBuf,
        /// Print JSON (`{"tensors": [...]}`) instead of a table.
        #[arg(long)]
        json: bool,
        /// Histogram bins (1 to 1024).
        #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u16).range(1..=1024))]
        bins: u16,
        /// Only tensors whose path (joined by '/') matches this regex.
        #[arg(long, value_name = "REGEX")]
        key: Option<String>,
    },
    /// Compare two checkpoints: keys only in A / only in B, dtype or shape mismatches, and value
    /// differences (max |a−b|, relative L2, cosine) of matching tensors.
    Diff {
        a: PathBuf,
        b: PathBuf,
        /// Print JSON instead of a report.
        #[arg(long)]
        json: bool,
        /// Align keys: A's A_PREFIX… is compared with B's B_PREFIX… (repeatable; first match wins).
        #[arg(long = "map", value_name = "A_PREFIX=B_PREFIX")]
        map: Vec<String>,
    },
    /// Statistics of every tensor across the checkpoints of one training run (ordered by their
    /// step, else by name), with flags: jump, nonfinite, dead.
    Trend {
        /// Checkpoints: files, sharded `*.index.json`, or directories holding one checkpoint.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Print JSON (`{"steps", "tensors", "flags"}`) instead of a summary.
        #[arg(long, conflicts_with = "csv")]
        json: bool,
        /// Print CSV, one row per tensor and step.
        #[arg(long)]
        csv: bool,
        /// Only tensors whose key matches this regex.
        #[arg(long, value_name = "REGEX")]
        key: Option<String>,
    },
    /// Edit and write a checkpoint: operations apply in the order given; with none, it converts.
    #[command(
        after_help = "Patterns are regular expressions searched in each entry's key and in its full path joined by '/'.\n\
        Examples:\n  weightscope edit dp.pth -o plain.pth --strip-prefix module.\n  \
        weightscope edit model.ckpt -o model.safetensors --extract state_dict --strip-prefix model.\n  \
        weightscope edit big.pth -o half.pth --cast float16 --delete 'num_batches_tracked$'"
    )]
    Edit(Box<EditArgs>),
}

/// Arguments of `weightscope edit`.
#[derive(clap::Args, Debug)]
pub struct EditArgs {
    /// Input checkpoint(s); several inputs are merged (their top-level dicts concatenated).
    #[arg(required = true, id = "inputs")]
    pub inputs: Vec<PathBuf>,
    /// Output file; its extension chooses the format (.pth .pt .bin .ckpt → torch zip, .safetensors).
    #[arg(short = 'o', long = "output", id = "output", required = true)]
    pub output: PathBuf,
    /// Output format, overriding the extension: torch or safetensors.
    #[arg(long, id = "format")]
    pub format: Option<String>,
    /// Remove a key prefix (e.g. `module.` from DataParallel, `_orig_mod.` from torch.compile).
    #[arg(long = "strip-prefix", id = "strip_prefix", value_name = "P")]
    pub strip_prefix: Vec<String>,
    /// Add a key prefix.
    #[arg(long = "add-prefix", id = "add_prefix", value_name = "P")]
    pub add_prefix: Vec<String>,
    /// Rename one key (or full path) OLD to NEW.
    #[arg(long, id = "rename", value_name = "OLD=NEW")]
    pub rename: Vec<String>,
    /// Regex replace on keys; $1 or \\1 refer to capture groups.
    #[arg(long, id = "replace", value_name = "REGEX=REPLACEMENT")]
    pub replace: Vec<String>,
    /// Delete entries (tensors or subtrees) whose key or path matches.
    #[arg(long, id = "delete", value_name = "REGEX")]
    pub delete: Vec<String>,
    /// Keep only the tensors whose key or path matches.
    #[arg(long, id = "keep", value_name = "REGEX")]
    pub keep: Vec<String>,
    /// Make the container at PATH (keys joined by '/') the new root, e.g. state_dict.
    #[arg(long, id = "extract", value_name = "PATH")]
    pub extract: Vec<String>,
    /// Cast floating-point tensors (all, or those matching REGEX) to float32, float16 or bfloat16.
    #[arg(long, id = "cast", value_name = "DTYPE[:REGEX]")]
    pub cast: Vec<String>,
    /// Set a safetensors __metadata__ entry.
    #[arg(long = "set-metadata", id = "set_metadata", value_name = "KEY=VALUE")]
    pub set_metadata: Vec<String>,
    /// Copy tensors whose key matches REGEX from B_FILE (renaming the match to NEW_PREFIX).
    #[arg(long, id = "transplant", value_name = "B_FILE:REGEX[=NEW_PREFIX]")]
    pub transplant: Vec<String>,
}

/// Run the CLI with the process arguments; returns the exit status.
pub fn main() -> i32 {
    let parsed = Cli::command()
        .try_get_matches()
        .and_then(|m| Cli::from_arg_matches(&m).map(|c| (m, c)));
    let (matches, cli) = match parsed {
        Ok(x) => x,
        Err(e) => {
            let code = if e.use_stderr() { EXIT_USAGE } else { 0 };
            let _ = e.print();
            return code;
        }
    };
    let mut out = std::io::stdout().lock();
    let code = match cli.command {
        Command::Detect { files } => open::detect_files(&files, &mut out),
        Command::Inspect { file, json, hash } => inspect::run(&file, json, hash, &mut out),
        Command::Stats {
            file,
            json,
            bins,
            key,
        } => stats(&file, json, bins as usize, key.as_deref(), &mut out),
        Command::Diff { a, b, json, map } => diff(&a, &b, json, &map, &mut out),
        Command::Trend {
            files,
            json,
            csv,
            key,
        } => trend::run(&files, json, csv, key.as_deref(), &mut out),
        Command::Edit(_) => edit::run(matches.subcommand_matches("edit").expect("edit matches")),
    };
    if std::env::var_os("WEIGHTSCOPE_IO_STATS").is_some() {
        let (reads, bytes) = crate::format::source::file_io_totals();
        eprintln!("io: {reads} reads, {bytes} bytes");
    }
    code
}
pub mod stats_cmd;

/// The `--key REGEX` option compiled, or (after a one-line message) the usage exit status.
fn key_regex(key: Option<&str>) -> Result<Option<regex::Regex>, i32> {
    key.map(regex::Regex::new).transpose().map_err(|e| {
        eprintln!(
            "--key: bad pattern: {}",
            e.to_string().lines().last().unwrap_or("")
        );
        EXIT_USAGE
    })
}

/// `weightscope stats FILE [--json] [--bins N] [--key REGEX]`
fn stats(
    file: &std::path::Path,
    json: bool,
    bins: usize,
    key: Option<&str>,
    out: &mut dyn std::io::Write,
) -> i32 {
    let re = match key_regex(key) {
        Ok(r) => r,
        Err(code) => return code,
    };
    let o = match open::open_path(file) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("{e}");
            return EXIT_UNREADABLE;
        }
    };
    match stats_cmd::run(&o.ckpt, &o.source_refs(), json, bins, re.as_ref(), out) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!(
                "{}",
                e.in_file(o.ckpt.files.first().cloned().unwrap_or_default())
            );
            EXIT_UNREADABLE
        }
    }
}

/// `weightscope diff A B [--json] [--map A_PREFIX=B_PREFIX]`
fn diff(
    a: &std::path::Path,
    b: &std::path::Path,
    json: bool,
    map: &[String],
    out: &mut dyn std::io::Write,
) -> i32 {
    let mut maps = vec![];
    for m in map {
        match m.split_once('=') {
            Some((x, y)) => maps.push((x.to_string(), y.to_string())),
            None => {
                eprintln!("--map takes A_PREFIX=B_PREFIX, got {m:?}");
                return EXIT_USAGE;
            }
        }
    }
    let (oa, ob) = match (open::open_path(a), open::open_path(b)) {
        (Ok(x), Ok(y)) => (x, y),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("{e}");
            return EXIT_UNREADABLE;
        }
    };
    let (sa, sb) = (oa.source_refs(), ob.source_refs());
    let r = match crate::stats::diff::diff(&oa.ckpt, &sa, &ob.ckpt, &sb, &maps, &mut |_, _| true) {
        Ok(r) => r,
        Err(e) => {
            eprintln!(
                "{}",
                e.in_file(format!("{} vs {}", a.display(), b.display()))
            );
            return EXIT_UNREADABLE;
        }
    };
    if json {
        let _ = writeln!(out, "{}", serde_json::to_string_pretty(&r).expect("json"));
        return 0;
    }
    let f = |x: Option<f64>| x.map(|v| format!("{v:.6e}")).unwrap_or_else(|| "-".into());
    let _ = writeln!(
        out,
        "{} only in A, {} only in B, {} mismatched, {} changed, {} identical",
        r.only_a.len(),
        r.only_b.len(),
        r.mismatched.len(),
        r.changed.len(),
        r.identical
    );
    for k in &r.only_a {
        let _ = writeln!(out, "only in A   {k}");
    }
    for k in &r.only_b {
        let _ = writeln!(out, "only in B   {k}");
    }
    for m in &r.mismatched {
        let _ = writeln!(
            out,
            "mismatch    {}  A {} {:?}  B {} {:?}",
            m.key, m.a.dtype, m.a.shape, m.b.dtype, m.b.shape
        );
    }
    for c in &r.changed {
        let _ = writeln!(
            out,
            "changed     {}  max|a-b| {}  rel L2 {}  cosine {}",
            c.key,
            f(c.max_abs),
            f(c.rel_l2),
            f(c.cosine)
        );
    }
    0
}
