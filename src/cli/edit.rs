//! `weightscope edit IN... -o OUT [ops...]`: apply operations in the order given and write a
//! torch zip or safetensors file (by OUT's extension or `--format`). Refusals (a collision, a bad
//! pattern, nothing left) exit 2 and write nothing.

use super::open::{open_path, Opened};
use crate::edit::{ops::parse_regex, transplant, ENode, ETree, Journal, Op};
use crate::export::plan::{write_file, OutFormat};
use crate::format::{Checkpoint, DType, Source};
use clap::ArgMatches;
use std::path::PathBuf;

/// The operation flags, in the order clap should index them.
pub const OP_FLAGS: &[&str] = &[
    "strip_prefix",
    "add_prefix",
    "rename",
    "replace",
    "delete",
    "keep",
    "extract",
    "cast",
    "set_metadata",
    "transplant",
];

fn split_eq(v: &str, flag: &str) -> Result<(String, String), String> {
    v.split_once('=')
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .ok_or_else(|| format!("--{flag} takes A=B, got {v:?}"))
}

/// The ops from the matches, in command-line order. Transplant sources are opened into `extra`.
fn ops_in_order(m: &ArgMatches) -> Result<Vec<(usize, &'static str, String)>, String> {
    let mut v = vec![];
    for &id in OP_FLAGS {
        if let (Some(vals), Some(idx)) = (m.get_many::<String>(id), m.indices_of(id)) {
            for (val, i) in vals.zip(idx) {
                v.push((i, id, val.clone()));
            }
        }
    }
    v.sort_by_key(|(i, _, _)| *i);
    Ok(v)
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

/// Run `edit` from its sub-matches.
pub fn run(m: &ArgMatches) -> i32 {
    match run_inner(m) {
        Ok(code) => code,
        Err(msg) => {
            eprintln!("{msg}");
            super::EXIT_UNREADABLE
        }
    }
}

fn run_inner(m: &ArgMatches) -> Result<i32, String> {
    let inputs: Vec<PathBuf> = m
        .get_many::<PathBuf>("inputs")
        .map(|v| v.cloned().collect())
        .unwrap_or_default();
    let out: PathBuf = m
        .get_one::<PathBuf>("output")
        .cloned()
        .ok_or("-o OUT is required")?;
    let out_name = out.display().to_string();
    let format = match m.get_one::<String>("format") {
        Some(f) => OutFormat::parse(f).ok_or_else(|| format!("--format {f:?}: use torch or safetensors"))?,
        None => OutFormat::from_name(&out_name)
            .or(m.get_one::<String>("shard_size").map(|_| OutFormat::Safetensors))
            .ok_or_else(|| {
            format!("{out_name}: cannot tell the output format from the extension (use .pth/.pt/.bin/.ckpt, .safetensors or --format)")
        })?,
    };
    let mut opened = vec![];
    for p in &inputs {
        opened.push(open_path(p).map_err(|e| e.to_string())?);
    }
    let ops = ops_in_order(m)?;
    // transplant sources become extra inputs
    let mut sources_of_ops = vec![];
    for (_, id, val) in &ops {
        if *id == "transplant" {
            let (file, rest) = val
                .rsplit_once(':')
                .filter(|(f, _)| !f.is_empty())
                .ok_or_else(|| {
                    format!("--transplant takes B_FILE:REGEX[=NEW_PREFIX], got {val:?}")
                })?;
            opened.push(open_path(std::path::Path::new(file)).map_err(|e| e.to_string())?);
            sources_of_ops.push((opened.len() - 1, rest.to_string()));
        }
    }
    let ckpts: Vec<&Checkpoint> = opened.iter().map(|o| &o.ckpt).collect();
    let base_inputs = inputs.len();
    let mut journal = Journal::new(merged_tree(&opened[..base_inputs])?);
    let mut transplant_iter = sources_of_ops.into_iter();
    for (_, id, val) in ops {
        let op = match id {
            "strip_prefix" => Op::StripPrefix(val),
            "add_prefix" => Op::AddPrefix(val),
            "rename" => {
                let (a, b) = split_eq(&val, "rename")?;
                Op::Rename { from: a, to: b }
            }
            "replace" => {
                let (a, b) = split_eq(&val, "replace")?;
                Op::replace(&a, &b).map_err(|e| e.to_string())?
            }
            "delete" => Op::Delete(parse_regex(&val).map_err(|e| e.to_string())?),
            "keep" => Op::Keep(parse_regex(&val).map_err(|e| e.to_string())?),
            "extract" => Op::Extract(
                val.split('/')
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect(),
            ),
            "cast" => {
                let (d, pat) = match val.split_once(':') {
                    Some((d, p)) => (d, Some(parse_regex(p).map_err(|e| e.to_string())?)),
                    None => (val.as_str(), None),
                };
                let dtype =
                    DType::from_name(d).ok_or_else(|| format!("--cast: unknown dtype {d:?}"))?;
                Op::Cast {
                    dtype,
                    pattern: pat,
                }
            }
            "set_metadata" => {
                let (k, v) = split_eq(&val, "set-metadata")?;
                Op::SetMetadata {
                    key: k,
                    value: Some(v),
                }
            }
            "transplant" => {
                let (input, spec) = transplant_iter.next().expect("one source per transplant");
                let (pat, repl) = match spec.split_once('=') {
                    Some((p, r)) => (p.to_string(), Some(r.to_string())),
                    None => (spec.clone(), None),
                };
                let re = parse_regex(&pat).map_err(|e| e.to_string())?;
                let tensors = transplant::select(&opened[input].ckpt, input, &re, repl.as_deref());
                transplant::check_shapes(journal.current(), &ckpts, &tensors)
                    .map_err(|e| e.to_string())?;
                Op::Transplant {
                    input,
                    pattern: re,
                    prefix: repl.unwrap_or_default(),
                    tensors,
                }
            }
            other => unreachable!("unknown op flag {other}"),
        };
        let desc = op.describe();
        journal
            .apply(op)
            .map_err(|e| format!("{out_name}: {desc}: refused: {e}"))?;
    }
    let sources: Vec<Vec<&dyn Source>> = opened.iter().map(|o| o.source_refs()).collect();
    let inputs_ref = crate::export::writer::Inputs {
        ckpts: ckpts.clone(),
        sources,
    };
    let tree = journal.current();
    if let Some(size) = m.get_one::<String>("shard_size") {
        let max = crate::export::shards::parse_size(size)?;
        let r = crate::export::shards::write_sharded(tree, &inputs_ref, format, &out, max)
            .map_err(|e| e.to_string())?;
        for d in &r.plan.dropped {
            eprintln!("dropped: {d}");
        }
        eprintln!("wrote {} into {out_name}", r.files.join(", "));
        return Ok(0);
    }
    let report = write_file(tree, &inputs_ref, format, &out).map_err(|e| e.to_string())?;
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
    Ok(0)
}
