//! Transplanting tensors from another checkpoint into the edited one.
//!
//! Contract: [`select`] picks the tensors of a source tree whose key or `/`-joined path matches
//! a pattern and maps their keys (the last path segment) through an optional new prefix;
//! [`insert`] puts them into the target's state dict (the first dict that directly holds
//! tensors, else the root dict), replacing same-named entries only when their shapes match,
//! refusing otherwise.

use super::ops::Refused;
use super::tree::{ENode, ETree, TensorRef};
use crate::format::{Checkpoint, DictKind, Key};
use regex_lite::Regex;

/// Tensors of `src` (input number `input`) whose key or `/`-joined path matches `pattern`,
/// each with its new key: the key itself, or with the pattern's match replaced by `replacement`
/// (a prefix mapping such as `^backbone\.` → `encoder.`).
pub fn select(
    src: &Checkpoint,
    input: usize,
    pattern: &Regex,
    replacement: Option<&str>,
) -> Vec<(Vec<String>, TensorRef)> {
    let tree = ETree::from_checkpoint(src, input);
    tree.tensors()
        .into_iter()
        .filter(|(p, _)| {
            let key = p.last().cloned().unwrap_or_default();
            pattern.is_match(&key) || pattern.is_match(&p.join("/"))
        })
        .map(|(p, t)| {
            let key = p.last().cloned().unwrap_or_default();
            let key = match replacement {
                Some(r) => pattern.replace(&key, r).into_owned(),
                None => key,
            };
            (vec![key], t)
        })
        .collect()
}

/// A's name of B key `key` through `(A_PREFIX, B_PREFIX)` rules: the first rule whose non-empty
/// B prefix starts the key, else the first rule with an empty B prefix, the B prefix replaced
/// by the A prefix; the key itself when no rule applies.
pub fn map_back(key: &str, maps: &[(String, String)]) -> String {
    let rule = maps
        .iter()
        .find(|(_, b)| !b.is_empty() && key.starts_with(b.as_str()))
        .or_else(|| maps.iter().find(|(_, b)| b.is_empty()));
    match rule {
        Some((a, b)) => format!("{a}{}", &key[b.len()..]),
        None => key.to_string(),
    }
}

/// Refuse a transplant that would replace a tensor of a different shape or dtype.
pub fn check_shapes(
    target: &ETree,
    ckpts: &[&Checkpoint],
    tensors: &[(Vec<String>, TensorRef)],
) -> Result<(), Refused> {
    let existing: crate::format::fastmap::KeyMap<String, TensorRef> = target
        .tensors()
        .into_iter()
        .map(|(p, t)| (p.last().cloned().unwrap_or_default(), t))
        .collect();
    let mut bad = vec![];
    for (p, t) in tensors {
        let key = p.join(".");
        if let Some(old) = existing.get(&key) {
            let (a, b) = (
                &ckpts[old.input].tensors[old.index],
                &ckpts[t.input].tensors[t.index],
            );
            if a.shape != b.shape {
                bad.push(format!(
                    "{key}: {:?} here, {:?} in the source",
                    a.shape, b.shape
                ));
            }
        }
    }
    if bad.is_empty() {
        Ok(())
    } else {
        Err(Refused(format!(
            "transplant: shape mismatch: {}",
            bad.join("; ")
        )))
    }
}

/// The route (child indices) to the first dict that directly holds tensors.
fn state_dict_route(n: &ENode) -> Option<Vec<usize>> {
    match n {
        ENode::Dict { items, .. } if items.iter().any(|(_, v)| matches!(v, ENode::Tensor(_))) => {
            Some(vec![])
        }
        ENode::Dict { items, .. } => items.iter().enumerate().find_map(|(i, (_, v))| {
            state_dict_route(v).map(|mut r| {
                r.insert(0, i);
                r
            })
        }),
        ENode::List(items) | ENode::Tuple(items) => items.iter().enumerate().find_map(|(i, v)| {
            state_dict_route(v).map(|mut r| {
                r.insert(0, i);
                r
            })
        }),
        ENode::Leaf(_) | ENode::Tensor(_) => None,
    }
}

fn follow<'a>(n: &'a mut ENode, route: &[usize]) -> &'a mut ENode {
    match route.split_first() {
        None => n,
        Some((&i, rest)) => match n {
            ENode::Dict { items, .. } => follow(&mut items[i].1, rest),
            ENode::List(items) | ENode::Tuple(items) => follow(&mut items[i], rest),
            _ => unreachable!("route built from this tree"),
        },
    }
}

/// Insert `tensors` (keys as one-segment paths) into the target tree's state dict.
pub fn insert(t: &mut ETree, tensors: &[(Vec<String>, TensorRef)]) -> Result<(), Refused> {
    if tensors.is_empty() {
        return Err(Refused("transplant: no tensors match".into()));
    }
    let route = match state_dict_route(&t.root) {
        Some(r) => r,
        None => {
            if !matches!(t.root, ENode::Dict { .. }) {
                t.root = ENode::Dict {
                    kind: DictKind::OrderedDict,
                    items: vec![],
                    attrs: vec![],
                };
            }
            vec![]
        }
    };
    let ENode::Dict { items, .. } = follow(&mut t.root, &route) else {
        unreachable!("the route leads to a dict")
    };
    for (path, tr) in tensors {
        let key = Key::Str(path.join("."));
        match items.iter_mut().find(|(k, _)| *k == key) {
            Some((_, slot)) => *slot = ENode::Tensor(*tr),
            None => items.push((key, ENode::Tensor(*tr))),
        }
    }
    Ok(())
}
