//! Edit operations and how each rewrites an [`ETree`].
//!
//! Contract: [`Op::apply`] returns the new tree or a clear refusal (a key collision, a bad
//! pattern, a path that does not exist, a result with no tensors left); it never half-applies.
//! Patterns (`Delete`, `Keep`, `Cast`) are regular expressions searched in both an entry's own
//! key and its full path joined by `/`. Key operations (prefixes, rename, replace) act on the
//! string keys of every dict that directly holds tensors (state dicts), and prefix operations
//! also rename the matching module entries of an OrderedDict's `_metadata`.

use super::tree::{ENode, ETree, TensorRef};
use crate::format::{DType, Key, Node};
use regex_lite::Regex;

/// One edit.
#[derive(Debug, Clone)]
pub enum Op {
    StripPrefix(String),
    AddPrefix(String),
    /// Rename one key (its own key, or its full `/`-joined path) to a new key.
    Rename {
        from: String,
        to: String,
    },
    /// Regex replace on keys; `$1` / `${name}` (and Python-style `\1`) refer to groups.
    Replace {
        pattern: Regex,
        replacement: String,
    },
    Delete(Regex),
    Keep(Regex),
    /// The container at this path (segments) becomes the new root.
    Extract(Vec<String>),
    /// Cast floating-point tensors (all, or those matching) to a float dtype.
    Cast {
        dtype: DType,
        pattern: Option<Regex>,
    },
    /// Set (Some) or remove (None) a safetensors `__metadata__` entry.
    SetMetadata {
        key: String,
        value: Option<String>,
    },
    /// Copy the tensors of input `input` whose key/path matches into this tree's state dict
    /// (see [`super::transplant`]), with an optional new key prefix.
    Transplant {
        input: usize,
        pattern: Regex,
        prefix: String,
        tensors: Vec<(Vec<String>, TensorRef)>,
    },
}

/// Why an operation was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused(pub String);

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Refused {}

/// Compile a user regex with a clear message.
pub fn parse_regex(p: &str) -> Result<Regex, Refused> {
    Regex::new(p).map_err(|e| {
        let one_line: Vec<String> = e
            .to_string()
            .lines()
            .map(|l| l.trim().to_string())
            .filter(|l| !l.is_empty() && l != "^")
            .collect();
        Refused(format!("bad pattern {p:?}: {}", one_line.join(" ")))
    })
}

/// Turn Python-style `\1` group references into the regex crate's `${1}`.
fn normalize_replacement(r: &str) -> String {
    let mut out = String::new();
    let mut chars = r.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(d) = chars.peek().copied().filter(|d| d.is_ascii_digit()) {
                chars.next();
                out.push_str(&format!("${{{d}}}"));
                continue;
            }
        }
        out.push(c);
    }
    out
}

impl Op {
    /// A one-line description for the journal list.
    pub fn describe(&self) -> String {
        match self {
            Op::StripPrefix(p) => format!("strip prefix {p:?}"),
            Op::AddPrefix(p) => format!("add prefix {p:?}"),
            Op::Rename { from, to } => format!("rename {from:?} → {to:?}"),
            Op::Replace {
                pattern,
                replacement,
            } => format!("replace /{}/ → {replacement:?}", pattern.as_str()),
            Op::Delete(r) => format!("delete /{}/", r.as_str()),
            Op::Keep(r) => format!("keep only /{}/", r.as_str()),
            Op::Extract(p) => format!("extract {:?}", p.join("/")),
            Op::Cast { dtype, pattern } => match pattern {
                Some(r) => format!("cast /{}/ to {dtype}", r.as_str()),
                None => format!("cast floating-point tensors to {dtype}"),
            },
            Op::SetMetadata {
                key,
                value: Some(v),
            } => format!("metadata {key} = {v:?}"),
            Op::SetMetadata { key, value: None } => format!("remove metadata {key}"),
            Op::Transplant { tensors, .. } => {
                // plain words: the names the tensors get in A, never the pattern's `${1}`
                let names: Vec<String> = tensors.iter().map(|(p, _)| p.join(".")).collect();
                let shown = names.iter().take(3).cloned().collect::<Vec<_>>().join(", ");
                let more = match names.len() {
                    0..=3 => String::new(),
                    n => format!(" and {} more", n - 3),
                };
                let n = tensors.len();
                let s = if n == 1 { "" } else { "s" };
                format!("transplant {n} tensor{s} from B as {shown}{more}")
            }
        }
    }

    /// Build a regex replace op from user text.
    pub fn replace(pattern: &str, replacement: &str) -> Result<Op, Refused> {
        Ok(Op::Replace {
            pattern: parse_regex(pattern)?,
            replacement: normalize_replacement(replacement),
        })
    }

    /// Apply to `t`, returning the edited tree.
    pub fn apply(&self, t: &ETree) -> Result<ETree, Refused> {
        let mut out = t.clone();
        match self {
            Op::StripPrefix(p) => {
                if p.is_empty() {
                    return Err(Refused("strip prefix: the prefix is empty".into()));
                }
                rename_keys(
                    &mut out.root,
                    &mut |k| k.strip_prefix(p.as_str()).map(str::to_string),
                    Some((p, false)),
                )?;
            }
            Op::AddPrefix(p) => {
                if p.is_empty() {
                    return Err(Refused("add prefix: the prefix is empty".into()));
                }
                rename_keys(
                    &mut out.root,
                    &mut |k| Some(format!("{p}{k}")),
                    Some((p, true)),
                )?;
            }
            Op::Rename { from, to } => {
                if to.is_empty() {
                    return Err(Refused("rename: the new key is empty".into()));
                }
                if !rename_one(&mut out.root, &mut Vec::new(), from, to)? {
                    return Err(Refused(format!("rename: no key or path {from:?}")));
                }
            }
            Op::Replace {
                pattern,
                replacement,
            } => {
                rename_keys(
                    &mut out.root,
                    &mut |k| {
                        if pattern.is_match(k) {
                            Some(pattern.replace_all(k, replacement.as_str()).into_owned())
                        } else {
                            None
                        }
                    },
                    None,
                )?;
            }
            Op::Delete(r) => {
                prune(&mut out.root, &mut Vec::new(), &mut |key, path, _| {
                    r.is_match(key) || r.is_match(path)
                });
            }
            Op::Keep(r) => {
                prune(&mut out.root, &mut Vec::new(), &mut |key, path, n| {
                    matches!(n, ENode::Tensor(_)) && !(r.is_match(key) || r.is_match(path))
                });
            }
            Op::Extract(path) => {
                let mut cur = &out.root;
                for (i, seg) in path.iter().enumerate() {
                    cur = child(cur, seg).ok_or_else(|| {
                        Refused(format!(
                            "extract: no entry {:?} (at {:?})",
                            path.join("/"),
                            path[..=i].join("/")
                        ))
                    })?;
                }
                if !matches!(cur, ENode::Dict { .. } | ENode::List(_) | ENode::Tuple(_)) {
                    return Err(Refused(format!(
                        "extract: {:?} is not a container",
                        path.join("/")
                    )));
                }
                out.root = cur.clone();
            }
            Op::Cast { dtype, pattern } => {
                super::spec::check_cast_target(*dtype)?;
                cast(
                    &mut out.root,
                    &mut Vec::new(),
                    *dtype,
                    pattern.as_ref(),
                    &mut |t| t.dtype.is_float(),
                );
            }
            Op::SetMetadata { key, value } => {
                out.metadata.retain(|(k, _)| k != key);
                if let Some(v) = value {
                    out.metadata.push((key.clone(), v.clone()));
                }
            }
            Op::Transplant { tensors, .. } => {
                super::transplant::insert(&mut out, tensors)?;
            }
        }
        if out.tensors().is_empty() && !t.tensors().is_empty() {
            return Err(Refused(format!(
                "{}: this would leave no tensors",
                self.describe()
            )));
        }
        Ok(out)
    }
}

fn child<'a>(n: &'a ENode, seg: &str) -> Option<&'a ENode> {
    match n {
        ENode::Dict { items, .. } => items
            .iter()
            .find(|(k, _)| k.segment() == seg)
            .map(|(_, v)| v),
        ENode::List(items) | ENode::Tuple(items) => {
            seg.parse::<usize>().ok().and_then(|i| items.get(i))
        }
        _ => None,
    }
}

fn holds_tensors(items: &[(Key, ENode)]) -> bool {
    items.iter().any(|(_, v)| matches!(v, ENode::Tensor(_)))
}

/// Rename string keys of tensor-holding dicts with `f` (None = unchanged). Refuses collisions.
/// `meta` = (prefix, add?) also renames `_metadata` module entries.
fn rename_keys(
    n: &mut ENode,
    f: &mut dyn FnMut(&str) -> Option<String>,
    meta: Option<(&str, bool)>,
) -> Result<(), Refused> {
    match n {
        ENode::Dict { items, attrs, .. } => {
            if holds_tensors(items) {
                let new: Vec<Key> = items
                    .iter()
                    .map(|(k, _)| match k {
                        Key::Str(s) => Key::Str(f(s).unwrap_or_else(|| s.clone())),
                        other => other.clone(),
                    })
                    .collect();
                let mut seen = crate::format::fastmap::KeyMap::new();
                let mut clashes = vec![];
                for (i, k) in new.iter().enumerate() {
                    if let Some(j) = seen.insert(k.clone(), i) {
                        clashes.push(format!(
                            "{:?} and {:?} both become {:?}",
                            items[j].0.segment(),
                            items[i].0.segment(),
                            k.segment()
                        ));
                    }
                }
                if !clashes.is_empty() {
                    let more = if clashes.len() > 5 {
                        format!(" (and {} more)", clashes.len() - 5)
                    } else {
                        String::new()
                    };
                    clashes.truncate(5);
                    return Err(Refused(format!(
                        "key collision: {}{more}",
                        clashes.join("; ")
                    )));
                }
                for ((k, _), nk) in items.iter_mut().zip(new) {
                    *k = nk;
                }
                if let Some((p, add)) = meta {
                    rename_metadata(attrs, p, add);
                }
            }
            for (_, v) in items.iter_mut() {
                rename_keys(v, f, meta)?;
            }
            Ok(())
        }
        ENode::List(items) | ENode::Tuple(items) => {
            for v in items.iter_mut() {
                rename_keys(v, f, meta)?;
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// `_metadata` keys are module names without the trailing dot (`""`, `"layer1"`).
fn rename_metadata(attrs: &mut [(Key, Node)], prefix: &str, add: bool) {
    let module = prefix.strip_suffix('.').unwrap_or(prefix);
    for (k, v) in attrs.iter_mut() {
        if k.segment() != "_metadata" {
            continue;
        }
        if let Node::Dict { items, .. } = v {
            for (mk, _) in items.iter_mut() {
                if let Key::Str(s) = mk {
                    let new = if add {
                        Some(if s.is_empty() {
                            module.to_string()
                        } else {
                            format!("{prefix}{s}")
                        })
                    } else if s == module {
                        Some(String::new())
                    } else {
                        s.strip_prefix(prefix).map(str::to_string)
                    };
                    if let Some(n) = new {
                        *s = n;
                    }
                }
            }
            // prefix removal can produce duplicates ("" twice); keep the first of each
            let mut seen = crate::format::fastmap::KeySet::new();
            items.retain(|(k, _)| seen.insert(k.segment()));
        }
    }
}

fn rename_one(
    n: &mut ENode,
    path: &mut Vec<String>,
    from: &str,
    to: &str,
) -> Result<bool, Refused> {
    if let ENode::Dict { items, .. } = n {
        let hit = items.iter().position(|(k, _)| {
            let seg = k.segment();
            let mut full = path.clone();
            full.push(seg.clone());
            seg == from || full.join("/") == from
        });
        if let Some(i) = hit {
            if items
                .iter()
                .enumerate()
                .any(|(j, (k, _))| j != i && k.segment() == to)
            {
                return Err(Refused(format!("rename: {to:?} already exists")));
            }
            items[i].0 = Key::Str(to.to_string());
            return Ok(true);
        }
        // a folder: a dotted prefix of keys here (`encoder` of `encoder.layers.0.w`, or its
        // full path) renames every key under it
        let here = if path.is_empty() {
            String::new()
        } else {
            format!("{}/", path.join("/"))
        };
        let rel = from.strip_prefix(here.as_str()).unwrap_or(from);
        let folder = format!("{rel}.");
        let renamed: Vec<Option<String>> = items
            .iter()
            .map(|(k, _)| match k {
                Key::Str(s) => s
                    .strip_prefix(folder.as_str())
                    .map(|rest| format!("{to}.{rest}")),
                _ => None,
            })
            .collect();
        if !rel.is_empty() && renamed.iter().any(Option::is_some) {
            let kept: crate::format::fastmap::KeySet<String> = items
                .iter()
                .zip(&renamed)
                .filter(|(_, r)| r.is_none())
                .map(|((k, _), _)| k.segment())
                .collect();
            if let Some(clash) = renamed.iter().flatten().find(|n| kept.contains(*n)) {
                return Err(Refused(format!("rename: {clash:?} already exists")));
            }
            for ((k, _), r) in items.iter_mut().zip(renamed) {
                if let Some(n) = r {
                    *k = Key::Str(n);
                }
            }
            return Ok(true);
        }
    }
    for (seg, v) in n.children_mut() {
        path.push(seg);
        let done = rename_one(v, path, from, to)?;
        path.pop();
        if done {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Remove dict items for which `drop(key, path, node)` holds (lists keep their shape).
fn prune(n: &mut ENode, path: &mut Vec<String>, drop: &mut dyn FnMut(&str, &str, &ENode) -> bool) {
    if let ENode::Dict { items, .. } = n {
        items.retain(|(k, v)| {
            let seg = k.segment();
            path.push(seg.clone());
            let full = path.join("/");
            path.pop();
            !drop(&seg, &full, v)
        });
    }
    for (seg, v) in n.children_mut() {
        path.push(seg);
        prune(v, path, drop);
        path.pop();
    }
}

fn cast(
    n: &mut ENode,
    path: &mut Vec<String>,
    to: DType,
    pat: Option<&Regex>,
    ok: &mut dyn FnMut(&TensorRef) -> bool,
) {
    if let ENode::Tensor(t) = n {
        let key = path.last().cloned().unwrap_or_default();
        let full = path.join("/");
        if pat.is_none_or(|r| r.is_match(&key) || r.is_match(&full)) && ok(t) {
            t.cast = Some(to);
        }
    }
    for (seg, v) in n.children_mut() {
        path.push(seg);
        cast(v, path, to, pat, ok);
        path.pop();
    }
}
