//! The native command-line interface (`weightscope`), on the same core as the page.
//!
//! Contract (other tools rely on these names and exit codes):
//! - `weightscope detect FILE...` — one line per file: `FILE<TAB>FORMAT<TAB>SIZE<TAB>description`.
//! - `weightscope inspect FILE [--json] [--hash]` — the tree, or the JSON index
//!   `{"format", "entries": [{"path","dtype","shape","sha256"?}], "safety": {"verdict","globals"}}`.
//! - `weightscope scan PATH... [--json]` — one line (or JSON record) per file with its verdict
//!   ([`scan`]); exit 3 if any is dangerous, else 2 if any is unreadable, else 0.
//! - `weightscope trend CKPT... [--json | --csv] [--key REGEX]` — see [`trend`].
//! - Exit status: 0 read; 3 a dangerous global is referenced, or the file is a pickle stream
//!   that torch.load would run dangerous calls from (the report is still printed);
//!   2 unreadable (one line on stderr naming file and place); 1 usage.

pub mod diff;
pub mod edit;
pub mod inspect;
pub mod merge;
pub mod open;
pub mod scan;
pub mod stats_cmd;
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
    long_about = "weightscope reads .pth/.pt/.bin/.ckpt (torch zip, stored or deflated; legacy pickle stream; 0.1.x tar) and .safetensors files \
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
    /// Safety verdict of every checkpoint under the given files and directories (for CI and
    /// pre-commit): one line per file; exit 3 if any is dangerous, else 2 if any is unreadable.
    Scan {
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Print JSON (`{"files": [...], "summary": {...}}`) instead of lines.
        #[arg(long)]
        json: bool,
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
    Edit(Box<edit::EditArgs>),
    /// Merge checkpoints tensor by tensor: linear, add-difference, slerp or ties (streamed).
    #[command(
        after_help = "Tensors are matched by name; different key sets or shapes are refused (exit 2, nothing written).\n\
        Examples:\n  weightscope merge a.safetensors b.pth -o avg.safetensors --method linear --weights 0.7,0.3\n  \
        weightscope merge base.pth tuned.pth base.pth -o out.pth --method add-difference --alpha 0.5\n  \
        weightscope merge base.safetensors ft1.safetensors ft2.safetensors -o out --method ties --density 0.2 --shard-size 5GB"
    )]
    Merge(Box<merge::MergeArgs>),
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
        Command::Scan { paths, json } => scan::run(&paths, json, &mut out),
        Command::Stats {
            file,
            json,
            bins,
            key,
        } => stats_cmd::main(&file, json, bins as usize, key.as_deref(), &mut out),
        Command::Diff { a, b, json, map } => diff::run(&a, &b, json, &map, &mut out),
        Command::Edit(args) => edit::run(
            &args,
            matches.subcommand_matches("edit").expect("edit matches"),
        ),
        Command::Merge(a) => merge::run(&a),
        Command::Trend {
            files,
            json,
            csv,
            key,
        } => trend::run(&files, json, csv, key.as_deref(), &mut out),
    };
    if std::env::var_os("WEIGHTSCOPE_IO_STATS").is_some() {
        let (reads, bytes) = crate::format::source::file_io_totals();
        eprintln!("io: {reads} reads, {bytes} bytes");
    }
    code
}

/// A name or text from the file for the terminal: as is when printable, else Python's repr
/// (control characters cannot move the cursor or fake a line).
pub fn esc(s: &str) -> String {
    crate::format::pickle::pyrepr::display_name(s).into_owned()
}

/// The `--key REGEX` option compiled, or (after a one-line message) the usage exit status.
pub fn key_regex(key: Option<&str>) -> Result<Option<regex_lite::Regex>, i32> {
    key.map(regex_lite::Regex::new).transpose().map_err(|e| {
        eprintln!(
            "--key: bad pattern: {}",
            e.to_string().lines().last().unwrap_or("")
        );
        EXIT_USAGE
    })
}
