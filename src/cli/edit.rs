//! `weightscope edit IN... -o OUT [ops...]`: apply operations in the order given and write a
//! torch zip or safetensors file (by OUT's extension or `--format`). Refusals (a collision, a bad
//! pattern, nothing left) exit 2 and write nothing.
//!
//! Every operation flag parses into an [`OpSpec`] (clap's value parsers below) and becomes an
//! [`Op`] through the same validator as the page's requests, [`Op::from_spec`].

use super::open::{open_path, Opened};
use crate::edit::{ENode, ETree, Journal, Op, OpSpec, SpecContext};
use crate::export::plan::{write_file, OutFormat};
use crate::export::Report;
use crate::format::{Checkpoint, DType, Source};
use clap::ArgMatches;
use std::path::PathBuf;

/// Arguments of `weightscope edit`.
#[derive(clap::Args, Debug)]
pub struct EditArgs {
    /// Input checkpoint(s); several inputs are merged (their top-level dicts concatenated).
    #[arg(required = true)]
    pub inputs: Vec<PathBuf>,
    /// Output file; its extension chooses the format (.pth .pt .bin .ckpt → torch zip, .safetensors).
    #[arg(short = 'o', long = "output", required = true)]
    pub output: PathBuf,
    /// Output format, overriding the extension: torch or safetensors.
    #[arg(long, value_parser = parse_format)]
    pub format: Option<OutFormat>,
    /// Remove a key prefix (e.g. `module.` from DataParallel, `_orig_mod.` from torch.compile).
    #[arg(long = "strip-prefix", id = "strip_prefix", value_name = "P", value_parser = |v: &str| Ok::<_, String>(OpSpec::StripPrefix { prefix: v.into() }))]
    pub strip_prefix: Vec<OpSpec>,
    /// Add a key prefix.
    #[arg(long = "add-prefix", id = "add_prefix", value_name = "P", value_parser = |v: &str| Ok::<_, String>(OpSpec::AddPrefix { prefix: v.into() }))]
    pub add_prefix: Vec<OpSpec>,
    /// Rename one key (or full path) OLD to NEW.
    #[arg(long, value_name = "OLD=NEW", value_parser = parse_rename)]
    pub rename: Vec<OpSpec>,
    /// Regex replace on keys; $1 or \\1 refer to capture groups.
    #[arg(long, value_name = "REGEX=REPLACEMENT", value_parser = parse_replace)]
    pub replace: Vec<OpSpec>,
    /// Delete entries (tensors or subtrees) whose key or path matches.
    #[arg(long, value_name = "REGEX", value_parser = |v: &str| Ok::<_, String>(OpSpec::Delete { pattern: v.into() }))]
    pub delete: Vec<OpSpec>,
    /// Keep only the tensors whose key or path matches.
    #[arg(long, value_name = "REGEX", value_parser = |v: &str| Ok::<_, String>(OpSpec::Keep { pattern: v.into() }))]
    pub keep: Vec<OpSpec>,
    /// Make the container at PATH (keys joined by '/') the new root, e.g. state_dict.
    #[arg(long, value_name = "PATH", value_parser = |v: &str| Ok::<_, String>(OpSpec::Extract { path: v.into() }))]
    pub extract: Vec<OpSpec>,
    /// Cast floating-point tensors (all, or those matching REGEX) to float16, bfloat16 or float32.
    #[arg(long, value_name = "DTYPE[:REGEX]", value_parser = parse_cast)]
    pub cast: Vec<OpSpec>,
    /// Set a safetensors __metadata__ entry.
    #[arg(long = "set-metadata", id = "set_metadata", value_name = "KEY=VALUE", value_parser = parse_set_metadata)]
    pub set_metadata: Vec<OpSpec>,
    /// Copy tensors whose key matches REGEX from B_FILE (renaming the match to NEW_PREFIX).
    #[arg(long, value_name = "B_FILE:REGEX[=NEW_PREFIX]", value_parser = parse_transplant)]
    pub transplant: Vec<Transplant>,
    /// Write shards of at most SIZE (e.g. 5GB, 500MB) plus the index into directory OUT.
    #[arg(long = "shard-size", value_name = "SIZE")]
    pub shard_size: Option<String>,
}

/// A `--transplant` flag: the B file and the operation on it.
#[derive(Debug, Clone)]
pub struct Transplant {
    pub file: PathBuf,
    pub spec: OpSpec,
}

/// The ids of the operation flags (clap's ids, used only to put them in command-line order).
const OP_FLAGS: &[&str] = &[
    "strip_prefix",
    "add_prefix",
    "rename",
    "replace",
    "delete",
    "keep",
    "extract",
    "cast",
    "set_metadata",
];

fn split_eq(v: &str, flag: &str, form: &str) -> Result<(String, String), String> {
    v.split_once('=')
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .ok_or_else(|| format!("--{flag} takes {form}, got {v:?}"))
}

fn parse_format(v: &str) -> Result<OutFormat, String> {
    OutFormat::parse(v).ok_or_else(|| format!("{v:?}: use torch or safetensors"))
}

fn parse_rename(v: &str) -> Result<OpSpec, String> {
    let (from, to) = split_eq(v, "rename", "OLD=NEW")?;
    Ok(OpSpec::Rename { from, to })
}

fn parse_replace(v: &str) -> Result<OpSpec, String> {
    let (pattern, replacement) = split_eq(v, "replace", "REGEX=REPLACEMENT")?;
    Ok(OpSpec::Replace {
        pattern,
        replacement,
    })
}

fn parse_cast(v: &str) -> Result<OpSpec, String> {
    let (d, pattern) = match v.split_once(':') {
        Some((d, p)) => (d, Some(p.to_string())),
        None => (v, None),
    };
    let dtype = DType::from_name(d).ok_or_else(|| format!("unknown dtype {d:?}"))?;
    Ok(OpSpec::Cast { dtype, pattern })
}

fn parse_set_metadata(v: &str) -> Result<OpSpec, String> {
    let (key, value) = split_eq(v, "set-metadata", "KEY=VALUE")?;
    Ok(OpSpec::SetMetadata {
        key,
        value: Some(value),
    })
}

fn parse_transplant(v: &str) -> Result<Transplant, String> {
    let (file, rest) = v
        .rsplit_once(':')
        .filter(|(f, _)| !f.is_empty())
        .ok_or_else(|| format!("--transplant takes B_FILE:REGEX[=NEW_PREFIX], got {v:?}"))?;
    let (pattern, replacement) = match rest.split_once('=') {
        Some((p, r)) => (p.to_string(), Some(r.to_string())),
        None => (rest.to_string(), None),
    };
    Ok(Transplant {
        file: file.into(),
        spec: OpSpec::Transplant {
            pattern,
            replacement,
            maps: vec![],
        },
    })
}

/// One operation of the command line: its spec and, for a transplant, its B file.
enum Step {
    Spec(OpSpec),
    Transplant(Transplant),
}

/// The operations of `args` in command-line order (`m` only gives each value's position).
fn steps_in_order(args: &EditArgs, m: &ArgMatches) -> Vec<Step> {
    let mut v: Vec<(usize, Step)> = vec![];
    let lists: [&Vec<OpSpec>; 9] = [
        &args.strip_prefix,
        &args.add_prefix,
        &args.rename,
        &args.replace,
        &args.delete,
        &args.keep,
        &args.extract,
        &args.cast,
        &args.set_metadata,
    ];
    for (id, list) in OP_FLAGS.iter().zip(lists) {
        let at = m.indices_of(id).into_iter().flatten();
        v.extend(at.zip(list).map(|(i, s)| (i, Step::Spec(s.clone()))));
    }
    let at = m.indices_of("transplant").into_iter().flatten();
    v.extend(
        at.zip(&args.transplant)
            .map(|(i, t)| (i, Step::Transplant(t.clone()))),
    );
    v.sort_by_key(|(i, _)| *i);
    v.into_iter().map(|(_, s)| s).collect()
}

/// Merge several inputs: the top-level dicts are concatenated (a key in two inputs is an error).
fn merged_tree(opened: &[Opened]) -> Result<ETree, String> {
    let mut t = ETree::from_checkpoint(&opened[0].ckpt, 0);
    for (i, o) in opened.iter().enumerate().skip(1) {
        let other = ETree::from_checkpoint(&o.ckpt, i);
        match (&mut t.root, other.root) {
            (ENode::Dict { items, .. }, ENode::Dict { items: more, .. }) => {
                for (k, v) in more {
                    if items.iter().any(|(kk, _)| *kk == k) {
                        return Err(format!("key {:?} is in more than one input", k.segment()));
                    }
                    items.push((k, v));
                }
            }
            _ => return Err("several inputs can only be merged when each is a dict".into()),
        }
        t.metadata.extend(other.metadata);
    }
    Ok(t)
}

/// Run `edit`: `m` are its sub-matches (for the order of the operation flags).
pub fn run(args: &EditArgs, m: &ArgMatches) -> i32 {
    match edit(args, m) {
        Ok(code) => code,
        Err(msg) => {
            eprintln!("{msg}");
            super::EXIT_UNREADABLE
        }
    }
}

/// The output format: `--format`, else from the output name's extension (a sharded output
/// without either is safetensors).
fn output_format(args: &EditArgs, out_name: &str) -> Result<OutFormat, String> {
    match args.format {
        Some(f) => Ok(f),
        None => OutFormat::from_name(out_name)
            .or(args.shard_size.as_ref().map(|_| OutFormat::Safetensors))
            .ok_or_else(|| {
            format!("{out_name}: cannot tell the output format from the extension (use .pth/.pt/.bin/.ckpt, .safetensors or --format)")
        }),
    }
}

fn edit(args: &EditArgs, m: &ArgMatches) -> Result<i32, String> {
    let out_name = args.output.display().to_string();
    let format = output_format(args, &out_name)?;
    let mut opened = vec![];
    for p in &args.inputs {
        opened.push(open_path(p).map_err(|e| e.to_string())?);
    }
    let steps = steps_in_order(args, m);
    // each transplant's B file becomes one more input
    let mut b_inputs = vec![];
    for s in &steps {
        if let Step::Transplant(t) = s {
            opened.push(open_path(&t.file).map_err(|e| e.to_string())?);
            b_inputs.push(opened.len() - 1);
        }
    }
    let ckpts: Vec<&Checkpoint> = opened.iter().map(|o| &o.ckpt).collect();
    let mut journal = Journal::new(merged_tree(&opened[..args.inputs.len()])?);
    let mut b_inputs = b_inputs.into_iter();
    for s in steps {
        let (spec, b) = match s {
            Step::Spec(spec) => (spec, None),
            Step::Transplant(t) => (t.spec, b_inputs.next()),
        };
        let cx = SpecContext {
            ckpts: &ckpts,
            current: journal.current(),
            b,
        };
        let op = Op::from_spec(&spec, &cx).map_err(|e| format!("{out_name}: {e}"))?;
        let desc = op.describe();
        journal
            .apply(op)
            .map_err(|e| format!("{out_name}: {desc}: refused: {e}"))?;
    }
    let sources: Vec<Vec<&dyn Source>> = opened.iter().map(|o| o.source_refs()).collect();
    let inputs = crate::export::Inputs {
        ckpts,
        sources,
        deferred: None,
    };
    let tree = journal.current();
    if let Some(size) = &args.shard_size {
        let max = crate::export::shards::parse_size(size)?;
        let r = crate::export::shards::write_sharded(tree, &inputs, format, &args.output, max)
            .map_err(|e| e.to_string())?;
        for d in &r.plan.dropped {
            eprintln!("dropped: {d}");
        }
        eprintln!("wrote {} into {out_name}", r.files.join(", "));
        return Ok(0);
    }
    let report = write_file(tree, &inputs, format, &args.output).map_err(|e| e.to_string())?;
    print_report(&out_name, &report);
    Ok(0)
}

/// What the export did, on stderr: drops, aliases, overflows, then one summary line.
fn print_report(out_name: &str, report: &Report) {
    for d in &report.dropped {
        eprintln!("dropped: {d}");
    }
    for (removed, kept) in &report.aliases {
        eprintln!("alias: {removed} is the same tensor as {kept}; written once (recorded in __metadata__)");
    }
    for (p, n) in &report.overflow {
        eprintln!("overflow: {p}: {n} finite values became ±inf in the cast");
    }
    eprintln!(
        "wrote {out_name}: {} tensors, {} bytes copied from the input, {} new bytes",
        report.tensors, report.copied_bytes, report.new_bytes
    );
}
