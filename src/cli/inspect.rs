//! `weightscope inspect`: the readable tree, or the JSON index with optional tensor hashes.

use super::esc;
use super::open::{open_path, Opened};
use crate::display::{group_digits, human_bytes};
use crate::format::pickle::pyrepr;
use crate::format::{data, Checkpoint, Node, Source};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::io::Write;
use std::path::Path;

/// Logical sizes up to this are always hashed (see [`tensor_sha256`]).
const HASH_MIN_REFUSED: u64 = 1 << 30;

/// sha256 of a tensor's contiguous little-endian bytes (None for tensors without data). An
/// expanded view larger than 1 GiB and 16 × its storage is an error (it says so) instead.
pub fn tensor_sha256(
    ckpt: &Checkpoint,
    sources: &[&dyn Source],
    i: usize,
) -> Result<Option<String>, crate::format::FormatError> {
    let t = &ckpt.tensors[i];
    let Some(s) = t.storage else {
        return Ok(None);
    };
    // An expanded view can be logically huge over a tiny storage: refuse rather than hash for
    // hours when the logical bytes pass both 1 GiB and 16 × the storage's bytes.
    let logical = t.nbytes();
    let stored = ckpt.storages[s].nbytes;
    if logical > HASH_MIN_REFUSED && logical / 16 > stored {
        return Err(crate::format::FormatError::at(
            format!("tensor '{}'", t.path.join(".")),
            format!("not hashed: its logical size of {logical} bytes repeats a {stored}-byte storage (an expanded view); --hash reads at most 1 GiB or 16 × the storage"),
        ));
    }
    let mut h = Sha256::new();
    data::read_tensor(ckpt, sources, i, data::DEFAULT_CHUNK, &mut |b| {
        h.update(b);
        Ok(())
    })?;
    Ok(Some(hex(&h.finalize())))
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The JSON index of an opened checkpoint: borrowed views of the index, serialised straight to
/// the output (no intermediate JSON tree; a 1,000-tensor index prints in well under a
/// millisecond). Keys appear in this order; absent parts are left out.
#[derive(Serialize)]
pub struct IndexJson<'a> {
    format: &'static str,
    entries: Vec<EntryJson<'a>>,
    safety: SafetyJson<'a>,
    #[serde(skip_serializing_if = "MetadataJson::is_empty")]
    metadata: MetadataJson<'a>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    notes: &'a [String],
}

#[derive(Serialize)]
struct EntryJson<'a> {
    path: &'a [String],
    dtype: &'static str,
    shape: &'a [u64],
    /// Present (possibly null, for a tensor without data) only when hashes were asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    sha256: Option<Option<String>>,
}

#[derive(Serialize)]
struct SafetyJson<'a> {
    verdict: crate::format::Verdict,
    globals: Vec<GlobalJson<'a>>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    findings: &'a [String],
    /// What loading would call, in Python syntax (arguments in Python's repr).
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    calls: &'a [String],
}

#[derive(Serialize)]
struct GlobalJson<'a> {
    module: &'a str,
    name: &'a str,
    tier: crate::format::Tier,
}

/// safetensors `__metadata__` as a JSON object in file order.
struct MetadataJson<'a>(&'a [(String, String)]);

impl MetadataJson<'_> {
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl Serialize for MetadataJson<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.0.iter().map(|(k, v)| (k, v)))
    }
}

/// The JSON index of an opened checkpoint, with tensor hashes when `hash` is set.
pub fn index_json(o: &Opened, hash: bool) -> Result<IndexJson<'_>, crate::format::FormatError> {
    let ckpt = &o.ckpt;
    let srcs = o.source_refs();
    let mut entries = Vec::with_capacity(ckpt.tensors.len());
    for (i, t) in ckpt.tensors.iter().enumerate() {
        let sha256 = if hash {
            Some(tensor_sha256(ckpt, &srcs, i).map_err(|e| {
                e.in_file(
                    &ckpt.files[ckpt.tensors[i]
                        .storage
                        .map(|s| ckpt.storages[s].file)
                        .unwrap_or(0)],
                )
            })?)
        } else {
            None
        };
        entries.push(EntryJson {
            path: &t.path,
            dtype: t.dtype.name(),
            shape: &t.shape,
            sha256,
        });
    }
    let globals = ckpt
        .safety
        .globals
        .iter()
        .map(|g| GlobalJson {
            module: &g.module,
            name: &g.name,
            tier: g.tier,
        })
        .collect();
    Ok(IndexJson {
        format: ckpt.format.name(),
        entries,
        safety: SafetyJson {
            verdict: ckpt.safety.verdict(),
            globals,
            findings: &ckpt.safety.findings,
            calls: &ckpt.safety.calls,
        },
        metadata: MetadataJson(&ckpt.metadata),
        notes: &ckpt.notes,
    })
}

/// `weightscope inspect FILE [--json] [--hash]`
pub fn run(path: &Path, json_out: bool, hash: bool, out: &mut dyn Write) -> i32 {
    let o = match open_path(path) {
        Ok(o) => o,
        Err(e) => return super::open::report_unreadable(path, &e),
    };
    let res = if json_out {
        index_json(&o, hash).map(|j| {
            let mut w = std::io::BufWriter::with_capacity(1 << 16, &mut *out);
            // a closed pipe (`| head`) is not an error worth reporting
            if serde_json::to_writer_pretty(&mut w, &j).is_ok() {
                let _ = writeln!(w);
            }
            let _ = w.flush();
        })
    } else {
        // one write for the whole tree, not one per line (stdout is line-buffered)
        let mut w = std::io::BufWriter::with_capacity(1 << 16, &mut *out);
        let r = print_tree(&o, hash, &mut w);
        let _ = w.flush();
        r
    };
    if let Err(e) = res {
        eprintln!("{e}");
        return super::EXIT_UNREADABLE;
    }
    if let Some(line) = super::open::dangerous_line(&o.ckpt) {
        eprintln!("{line}");
        return super::EXIT_DANGEROUS;
    }
    // The process ends right after this command: leave the index (tens of thousands of small
    // allocations for a large checkpoint) to the OS instead of freeing it piece by piece.
    std::mem::forget(o);
    0
}

#[derive(Default, Clone, Copy)]
struct Totals {
    tensors: u64,
    params: u64,
    bytes: u64,
}

fn totals(c: &Checkpoint, n: &Node) -> Totals {
    let mut t = Totals::default();
    walk(n, &mut |node| {
        if let Node::Tensor { index } = node {
            let ti = &c.tensors[*index];
            t.tensors += 1;
            t.params = t.params.saturating_add(ti.numel());
            t.bytes = t.bytes.saturating_add(ti.nbytes());
        }
    });
    t
}

fn walk(n: &Node, f: &mut dyn FnMut(&Node)) {
    f(n);
    match n {
        Node::Dict { items, .. } => items.iter().for_each(|(_, c)| walk(c, f)),
        Node::List { items } | Node::Tuple { items } | Node::Set { items, .. } => {
            items.iter().for_each(|c| walk(c, f))
        }
        Node::Object {
            args, state, items, ..
        } => {
            args.iter().for_each(|c| walk(c, f));
            if let Some(s) = state {
                walk(s, f);
            }
            items.iter().for_each(|(_, c)| walk(c, f));
        }
        _ => {}
    }
}

/// How many tensors use each storage (index = storage index).
fn storage_users(c: &Checkpoint) -> Vec<u32> {
    let mut users = vec![0u32; c.storages.len()];
    for si in c.tensors.iter().filter_map(|t| t.storage) {
        users[si] += 1;
    }
    users
}

/// A one-line rendering of a leaf value; `users` from [`storage_users`].
fn leaf_text(c: &Checkpoint, n: &Node, users: &[u32]) -> Option<String> {
    Some(match n {
        Node::None => "None".into(),
        Node::Bool { value } => if *value { "True" } else { "False" }.into(),
        Node::Int { value } => value.to_string(),
        Node::BigInt { value } => value.clone(),
        Node::Complex { re, im } => format!("({re}{im:+}j)"),
        Node::Str { value } => {
            let s: String = value.chars().take(80).collect();
            if value.chars().count() > 80 {
                format!("{}…", pyrepr::str_repr(&s))
            } else {
                pyrepr::str_repr(&s)
            }
        }
        Node::Float { value } => pyrepr::float_repr(*value),
        Node::Bytes { data } => format!("bytes[{}]", data.len()),
        Node::Dtype { name } => format!("torch.{name}"),
        Node::Device { value } => format!("device({})", esc(value)),
        Node::Size { dims } => format!("torch.Size({dims:?})"),
        Node::Global { module, name } => format!("<{}.{}>", esc(module), esc(name)),
        Node::Elided { reason } => format!("<elided: {}>", esc(reason)),
        Node::Tensor { index } => {
            let t = &c.tensors[*index];
            let mut s = format!("{} {:?}  {}", t.dtype, t.shape, human_bytes(t.nbytes()));
            if t.parameter {
                s.push_str("  Parameter");
            }
            if !t.is_contiguous() {
                s.push_str(&format!("  strides {:?}", t.strides));
            }
            if t.storage_offset != 0 {
                s.push_str(&format!("  offset {}", t.storage_offset));
            }
            if let Some(si) = t.storage {
                if users[si] > 1 {
                    s.push_str(&format!("  shares storage {}", esc(&c.storages[si].key)));
                }
            }
            s
        }
        _ => return None,
    })
}

fn print_tree(
    o: &Opened,
    hash: bool,
    out: &mut dyn Write,
) -> Result<(), crate::format::FormatError> {
    let c = &o.ckpt;
    let t = totals(c, &c.root);
    let file = &c.files[0];
    let file = esc(file);
    let _ = writeln!(
        out,
        "{file}: {} — {} tensors, {} parameters, {}",
        c.format.describe(),
        group_digits(t.tensors),
        group_digits(t.params),
        human_bytes(t.bytes)
    );
    let by_dtype: Vec<String> = c
        .params_by_dtype()
        .iter()
        .map(|(d, n)| format!("{d} {}", group_digits(*n)))
        .collect();
    if !by_dtype.is_empty() {
        let _ = writeln!(out, "parameters by dtype: {}", by_dtype.join(", "));
    }
    let _ = writeln!(out, "safety: {}", c.safety.verdict());
    for g in &c.safety.globals {
        if g.tier != crate::format::Tier::Allowed {
            let _ = writeln!(
                out,
                "  {:?} {}.{} — {}",
                g.tier,
                esc(&g.module),
                esc(&g.name),
                esc(&g.why)
            );
        }
    }
    for f in &c.safety.findings {
        let _ = writeln!(out, "  Dangerous: {}", esc(f));
    }
    for call in &c.safety.calls {
        let _ = writeln!(out, "  would call {}", esc(call));
    }
    for (k, v) in &c.metadata {
        let _ = writeln!(out, "metadata {} = {}", esc(k), esc(v));
    }
    let srcs = o.source_refs();
    let mut hashes = vec![None; c.tensors.len()];
    if hash {
        for (i, h) in hashes.iter_mut().enumerate() {
            *h = tensor_sha256(c, &srcs, i)?;
        }
    }
    let users = storage_users(c);
    print_node(c, &c.root, "", ".", (&hashes, &users), out);
    for n in &c.notes {
        let _ = writeln!(out, "note: {n}");
    }
    Ok(())
}

fn container_children(n: &Node) -> Option<Vec<(String, &Node)>> {
    Some(match n {
        Node::Dict { items, .. } => items.iter().map(|(k, v)| (esc(&k.segment()), v)).collect(),
        Node::List { items } | Node::Tuple { items } | Node::Set { items, .. } => items
            .iter()
            .enumerate()
            .map(|(i, v)| (i.to_string(), v))
            .collect(),
        Node::Object {
            args, state, items, ..
        } => {
            let mut v: Vec<(String, &Node)> = args
                .iter()
                .enumerate()
                .map(|(i, a)| (format!("arg {i}"), a))
                .collect();
            if let Some(s) = state {
                match s.as_ref() {
                    Node::Dict { items, .. } => {
                        v.extend(items.iter().map(|(k, x)| (esc(&k.segment()), x)))
                    }
                    other => v.push(("state".into(), other)),
                }
            }
            v.extend(items.iter().map(|(k, x)| (esc(&k.segment()), x)));
            v
        }
        _ => return None,
    })
}

fn kind_text(n: &Node) -> String {
    match n {
        Node::Dict {
            kind,
            state_dict,
            items,
            ..
        } => {
            let k = match kind {
                crate::format::DictKind::Dict => "dict",
                crate::format::DictKind::OrderedDict => "OrderedDict",
                crate::format::DictKind::Counter => "Counter",
            };
            format!(
                "{k}[{}]{}",
                items.len(),
                if *state_dict { " state dict" } else { "" }
            )
        }
        Node::List { items } => format!("list[{}]", items.len()),
        Node::Tuple { items } => format!("tuple[{}]", items.len()),
        Node::Set { items, frozen } => format!(
            "{}[{}]",
            if *frozen { "frozenset" } else { "set" },
            items.len()
        ),
        Node::Object { module, name, .. } => {
            format!("object {}.{} (inert)", esc(module), esc(name))
        }
        _ => String::new(),
    }
}

fn print_node(
    c: &Checkpoint,
    n: &Node,
    indent: &str,
    label: &str,
    (hashes, users): (&[Option<String>], &[u32]),
    out: &mut dyn Write,
) {
    if let Some(children) = container_children(n) {
        let t = totals(c, n);
        let sum = if t.tensors > 0 {
            format!(
                "  — {} tensors, {} params, {}",
                group_digits(t.tensors),
                group_digits(t.params),
                human_bytes(t.bytes)
            )
        } else {
            String::new()
        };
        let _ = writeln!(out, "{indent}{label}  {}{sum}", kind_text(n));
        let child_indent = format!("{indent}  ");
        for (k, v) in children {
            print_node(c, v, &child_indent, &k, (hashes, users), out);
        }
    } else {
        let text = leaf_text(c, n, users).unwrap_or_default();
        let h = match n {
            Node::Tensor { index } => hashes[*index]
                .as_ref()
                .map(|h| format!("  sha256 {h}"))
                .unwrap_or_default(),
            _ => String::new(),
        };
        let _ = writeln!(out, "{indent}{label}  {text}{h}");
    }
}
