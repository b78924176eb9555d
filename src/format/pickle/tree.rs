//! Arena → tree: turn the unpickled value graph into the checkpoint's [`Node`] tree and its
//! tensor list.
//!
//! Contract: tensors are listed depth-first in insertion order (dict items in order, list and
//! tuple items by index); a tensor reached under two paths is listed under both. Reference cycles
//! and graphs that would expand past a node budget (shared references nested many levels deep)
//! become [`Node::Elided`] instead of exploding. Attributes set by BUILD (an OrderedDict's
//! `_metadata`) are kept in `attrs` and never listed as tensors.
//!
//! Bounds: the walk recurses once per nesting level and stops with an error past
//! [`MAX_DEPTH`] levels (the VM checks depth as values are built, but a container filled after
//! it was nested can be deeper than the VM saw); every node, copied string, byte string, key and
//! tensor path is charged to the unpickler's memory budget, so a large value referenced many
//! times through the memo is an error, not a copy per reference. Work is linear in the nodes
//! produced (dict keys are deduplicated through a hash map).

use super::value::{bigint_to_string, Id, Inert, Value};
use super::vm::{budget_error, Unpickler, MAX_DEPTH};
use crate::format::checkpoint::{Key, Node, SafetyReport, TensorInfo};
use crate::format::dtype::DType;
use crate::format::fastmap::{KeyMap, KeySet};

/// Nodes a tree may have before the rest is elided.
pub const MAX_NODES: usize = 10_000_000;

struct Builder<'a, 'r> {
    u: &'a Unpickler<'r>,
    tensors: &'a mut Vec<TensorInfo>,
    on_path: KeySet<Id>,
    nodes: usize,
    budget: usize,
    /// Current nesting level.
    depth: usize,
    /// Bytes held (continuing the unpickler's count) and the limit.
    held: usize,
    max_held: usize,
    /// The first error met (the walk then unwinds without building more).
    error: Option<String>,
}

/// What a checkpoint's pickle made once loaded: the object tree, its tensors in depth-first
/// file order, and the report of the globals it named.
pub struct Pickled {
    pub root: Node,
    pub tensors: Vec<TensorInfo>,
    pub safety: SafetyReport,
}

/// Build the tree of a loaded checkpoint pickle and take the VM's safety report; the VM's
/// notes are appended to `notes`.
pub fn finish(u: &mut Unpickler, root: Id, notes: &mut Vec<String>) -> Result<Pickled, String> {
    let mut tensors = Vec::new();
    let root = build(u, root, &[], &mut tensors)?;
    notes.append(&mut u.notes);
    let safety = std::mem::take(&mut u.safety);
    Ok(Pickled {
        root,
        tensors,
        safety,
    })
}

/// Build the tree under `root`, appending tensors (with their paths, prefixed by `prefix`).
/// Errors: nesting deeper than [`MAX_DEPTH`], or past the memory budget.
pub fn build(
    u: &Unpickler,
    root: Id,
    prefix: &[String],
    tensors: &mut Vec<TensorInfo>,
) -> Result<Node, String> {
    build_with_budget(u, root, prefix, tensors, MAX_NODES)
}

/// [`build`] with an explicit node budget.
pub fn build_with_budget(
    u: &Unpickler,
    root: Id,
    prefix: &[String],
    tensors: &mut Vec<TensorInfo>,
    budget: usize,
) -> Result<Node, String> {
    let mut b = Builder {
        u,
        tensors,
        on_path: KeySet::default(),
        nodes: 0,
        budget,
        depth: 0,
        held: u.bytes_used(),
        max_held: u.budget(),
        error: None,
    };
    let mut path = prefix.to_vec();
    let n = b.node(root, &mut path, true);
    match b.error {
        Some(e) => Err(e),
        None => Ok(n),
    }
}

/// A dict key as a [`Key`].
pub fn key_of(u: &Unpickler, id: Id) -> Key {
    match u.get(id) {
        Value::Str(s) => Key::Str(s.clone()),
        Value::Int(i) => Key::Int(*i),
        other => Key::Other(short_repr(u, other, 2)),
    }
}

/// A dict key borrowed from the arena while a dict's keys are deduplicated (equal exactly when
/// the [`Key`]s [`key_of`] makes are).
#[derive(Clone, PartialEq, Eq, Hash)]
enum KeyRef<'a> {
    Str(&'a str),
    Int(i64),
    Other(String),
}

impl<'a> KeyRef<'a> {
    fn of(u: &'a Unpickler, id: Id) -> KeyRef<'a> {
        match u.get(id) {
            Value::Str(s) => KeyRef::Str(s),
            Value::Int(i) => KeyRef::Int(*i),
            other => KeyRef::Other(short_repr(u, other, 2)),
        }
    }

    /// The path segment (as [`Key::segment`]).
    fn segment(&self) -> String {
        match self {
            KeyRef::Str(s) => s.to_string(),
            KeyRef::Int(i) => i.to_string(),
            KeyRef::Other(s) => s.clone(),
        }
    }

    /// The key, given its segment.
    fn into_key(self, segment: String) -> Key {
        match self {
            KeyRef::Str(_) => Key::Str(segment),
            KeyRef::Int(i) => Key::Int(i),
            KeyRef::Other(s) => Key::Other(s),
        }
    }
}

fn short_repr(u: &Unpickler, v: &Value, depth: usize) -> String {
    match v {
        Value::None => "None".into(),
        Value::Bool(b) => if *b { "True" } else { "False" }.into(),
        Value::Int(i) => i.to_string(),
        Value::BigInt(b) => bigint_to_string(b),
        Value::Float(f) => format!("{f}"),
        Value::Str(s) => format!("{s:?}"),
        Value::Tuple(items) if depth > 0 => {
            let parts: Vec<String> = items
                .iter()
                .take(8)
                .map(|&i| short_repr(u, u.get(i), depth - 1))
                .collect();
            format!("({})", parts.join(", "))
        }
        Value::Global { module, name } => format!("{module}.{name}"),
        other => format!("<{}>", other.kind_name()),
    }
}

/// The first segments of a path, for messages.
fn short_path(path: &[String]) -> String {
    let mut s: String = path
        .iter()
        .take(8)
        .map(|p| p.chars().take(40).collect::<String>())
        .collect::<Vec<_>>()
        .join("/");
    if path.len() > 8 {
        s.push_str("/…");
    }
    if s.is_empty() {
        s.push_str("the root");
    }
    s
}

impl Builder<'_, '_> {
    /// Charge `n` bytes; false (with the error recorded) past the budget.
    fn charge(&mut self, n: usize) -> bool {
        self.held = self.held.saturating_add(n);
        if self.held > self.max_held && self.error.is_none() {
            self.error = Some(budget_error(self.max_held));
        }
        self.error.is_none()
    }

    fn node(&mut self, id: Id, path: &mut Vec<String>, list_tensors: bool) -> Node {
        if self.error.is_some() || !self.charge(std::mem::size_of::<Node>()) {
            return Node::None;
        }
        if self.depth >= MAX_DEPTH {
            self.error = Some(format!(
                "nesting deeper than {MAX_DEPTH} (at {})",
                short_path(path)
            ));
            return Node::None;
        }
        self.depth += 1;
        let n = self.node_inner(id, path, list_tensors);
        self.depth -= 1;
        n
    }

    fn node_inner(&mut self, id: Id, path: &mut Vec<String>, list_tensors: bool) -> Node {
        self.nodes += 1;
        if self.nodes > self.budget {
            return Node::Elided {
                reason: format!(
                    "more than {} values (shared references expand too far)",
                    self.budget
                ),
            };
        }
        let v = self.u.get(id);
        let is_container = v.is_container();
        if is_container && !self.on_path.insert(id) {
            return Node::Elided {
                reason: "reference cycle".into(),
            };
        }
        let n = self.convert(v, path, list_tensors);
        if is_container {
            self.on_path.remove(&id);
        }
        n
    }

    fn children(&mut self, ids: &[Id], path: &mut Vec<String>, list_tensors: bool) -> Vec<Node> {
        ids.iter()
            .enumerate()
            .map(|(i, &c)| {
                path.push(i.to_string());
                let n = self.node(c, path, list_tensors);
                path.pop();
                n
            })
            .collect()
    }

    fn pairs(
        &mut self,
        items: &[(Id, Id)],
        path: &mut Vec<String>,
        list_tensors: bool,
    ) -> Vec<(Key, Node)> {
        // Python dict semantics: a key set twice keeps its first position and its last value.
        // Keys are compared borrowed from the arena; each is copied once, as its path segment,
        // which then becomes the node's key.
        let u = self.u;
        let mut slot: KeyMap<KeyRef, usize> = KeyMap::with_capacity(items.len());
        let mut last: Vec<(KeyRef, Id)> = Vec::with_capacity(items.len());
        for &(k, v) in items {
            let key = KeyRef::of(u, k);
            let kb = match &key {
                KeyRef::Str(s) => s.len(),
                KeyRef::Other(s) => s.len(),
                KeyRef::Int(_) => 0,
            };
            // the key is held twice (slot map and pairs) and once more in the node
            if !self.charge(3 * kb + 3 * std::mem::size_of::<Key>()) {
                return vec![];
            }
            match slot.get(&key) {
                Some(&i) => last[i].1 = v,
                None => {
                    slot.insert(key.clone(), last.len());
                    last.push((key, v));
                }
            }
        }
        drop(slot);
        last.into_iter()
            .map(|(key, v)| {
                path.push(key.segment());
                let n = self.node(v, path, list_tensors);
                let segment = path.pop().unwrap_or_default();
                (key.into_key(segment), n)
            })
            .collect()
    }

    fn convert(&mut self, v: &Value, path: &mut Vec<String>, list_tensors: bool) -> Node {
        match v {
            Value::None | Value::Invalid => Node::None,
            Value::Bool(b) => Node::Bool { value: *b },
            Value::Int(i) => Node::Int { value: *i },
            Value::BigInt(b) => {
                self.charge(3 * b.len());
                Node::BigInt {
                    value: bigint_to_string(b),
                }
            }
            Value::Float(f) => Node::Float { value: *f },
            Value::Complex(re, im) => Node::Complex { re: *re, im: *im },
            Value::Str(s) => {
                if !self.charge(s.len()) {
                    return Node::None;
                }
                Node::Str { value: s.clone() }
            }
            Value::Bytes(b) => {
                if !self.charge(b.len()) {
                    return Node::None;
                }
                Node::Bytes { data: b.clone() }
            }
            Value::List(items) => Node::List {
                items: self.children(items, path, list_tensors),
            },
            Value::Tuple(items) => Node::Tuple {
                items: self.children(items, path, list_tensors),
            },
            Value::Set { items, frozen } => Node::Set {
                items: self.children(items, path, list_tensors),
                frozen: *frozen,
            },
            Value::Dict { kind, items, attrs } => {
                let items = self.pairs(items, path, list_tensors);
                let attrs = self.pairs(attrs, path, false);
                let state_dict = !items.is_empty()
                    && items
                        .iter()
                        .all(|(k, n)| matches!(k, Key::Str(_)) && matches!(n, Node::Tensor { .. }));
                Node::Dict {
                    kind: *kind,
                    items,
                    attrs,
                    state_dict,
                }
            }
            Value::Global { module, name } => {
                self.charge(module.len() + name.len());
                if module == "torch" {
                    if let Some(d) = DType::from_name(name).filter(|d| d.name() == name) {
                        return Node::Dtype {
                            name: d.name().into(),
                        };
                    }
                }
                Node::Global {
                    module: module.clone(),
                    name: name.clone(),
                }
            }
            Value::Object(o) => {
                let Inert {
                    module,
                    name,
                    args,
                    state,
                    items,
                    list,
                } = &**o;
                self.charge(module.len() + name.len());
                path.push("__args__".into());
                let args = self.children(args, path, list_tensors);
                path.pop();
                let state = state.map(|s| match self.u.get(s) {
                    // a dict state: its keys are the object's attributes, walked in place
                    Value::Dict { .. } => Box::new(self.node(s, path, list_tensors)),
                    _ => {
                        path.push("__state__".into());
                        let n = self.node(s, path, list_tensors);
                        path.pop();
                        Box::new(n)
                    }
                });
                let mut pairs = self.pairs(items, path, list_tensors);
                for (i, n) in self
                    .children(list, path, list_tensors)
                    .into_iter()
                    .enumerate()
                {
                    pairs.push((Key::Int(i as i64), n));
                }
                Node::Object {
                    module: module.clone(),
                    name: name.clone(),
                    args,
                    state,
                    items: pairs,
                }
            }
            Value::Storage { .. } => Node::Object {
                module: "torch.storage".into(),
                name: "UntypedStorage".into(),
                args: vec![],
                state: None,
                items: vec![],
            },
            Value::Tensor(raw) => {
                if !list_tensors {
                    return Node::Elided {
                        reason: "tensor inside an attribute".into(),
                    };
                }
                let path_bytes: usize = path
                    .iter()
                    .map(|p| p.len() + std::mem::size_of::<String>())
                    .sum();
                if !self
                    .charge(path_bytes + std::mem::size_of::<TensorInfo>() + 16 * raw.shape.len())
                {
                    return Node::None;
                }
                self.tensors.push(TensorInfo {
                    path: path.clone(),
                    dtype: raw.dtype,
                    shape: raw.shape.clone(),
                    strides: raw.strides.clone(),
                    storage_offset: raw.offset,
                    storage: raw.storage,
                    requires_grad: raw.requires_grad,
                    parameter: raw.parameter,
                    kind: raw.kind.clone(),
                });
                Node::Tensor {
                    index: self.tensors.len() - 1,
                }
            }
            Value::Dtype(d) => Node::Dtype {
                name: d.name().into(),
            },
            Value::Device(d) => Node::Device { value: d.clone() },
            Value::Size(d) => Node::Size { dims: d.clone() },
        }
    }
}

#[cfg(test)]
mod depth_tests {
    use super::super::calls::{StoragePid, StorageResolver};
    use super::super::vm::{Limits, Unpickler};
    use super::*;

    struct NoStorages;
    impl StorageResolver for NoStorages {
        fn storage(&mut self, _: &StoragePid) -> Result<usize, String> {
            Err("no storages here".into())
        }
    }

    fn tree_of(p: &[u8]) -> Result<Node, String> {
        let mut r = NoStorages;
        let mut u = Unpickler::new(&mut r, Limits::default());
        let (root, _) = u
            .load(p, 0)
            .map_err(|e| format!("byte {}: {}", e.pos, e.msg))?;
        build(&u, root, &[], &mut vec![])
    }

    fn pickle(body: &[u8]) -> Vec<u8> {
        [&[0x80, 2][..], body, b"."].concat()
    }

    #[test]
    fn a_million_tuple1_stop_at_the_depth_limit_with_the_offset() {
        let mut body = vec![b'N'];
        body.extend(std::iter::repeat_n(0x85u8, 1_000_000));
        // N is depth 1; the 256th TUPLE1 (at byte 3 + 255) would make depth 257
        assert_eq!(
            tree_of(&pickle(&body)).unwrap_err(),
            "byte 258: nesting deeper than 256"
        );
        // 255 levels are fine, and the tree (and its drop) is bounded by them
        let ok = tree_of(&pickle(&body[..256])).unwrap();
        let mut depth = 0;
        let mut n = &ok;
        while let Node::Tuple { items } = n {
            depth += 1;
            n = &items[0];
        }
        assert_eq!(depth, 255);
        drop(ok);
    }

    #[test]
    fn depth_built_by_mutation_after_memoization_is_caught_by_the_tree() {
        // 5000 empty lists memoized, then list i+1 appended into list i: the VM sees depth 2
        // each time; the tree walk finds the 5000-deep chain
        let n = 5000u32;
        let mut body = vec![];
        for i in 0..n {
            body.push(b']');
            body.push(b'r');
            body.extend(i.to_le_bytes());
            body.push(b'0');
        }
        for i in 0..n - 1 {
            for j in [i, i + 1] {
                body.push(b'j');
                body.extend(j.to_le_bytes());
            }
            body.extend(b"a0");
        }
        body.push(b'j');
        body.extend(0u32.to_le_bytes());
        let e = tree_of(&pickle(&body)).unwrap_err();
        assert!(
            e.starts_with("nesting deeper than 256 (at 0/0/0/0/0/0/0/0/…)"),
            "{e}"
        );
    }

    #[test]
    fn rebuild_called_with_an_argument_list_that_contains_itself() {
        // _rebuild_tensor_v2(*L) where L = [L]: refused or inert, never a recursion
        let mut body = b"ctorch._utils\n_rebuild_tensor_v2\n]q\x00h\x00ah\x00\x85R".to_vec();
        body.splice(0..0, *b"}X\x01\x00\x00\x00w");
        body.push(b's');
        let _ = tree_of(&pickle(&body)); // must return
                                         // a list containing itself is a cycle: elided, not followed
        let t = tree_of(&pickle(b"]q\x00h\x00a")).unwrap();
        assert!(matches!(&t, Node::List { items } if matches!(items[0], Node::Elided { .. })));
    }

    #[test]
    fn one_large_bytes_value_referenced_many_times_hits_the_memory_budget() {
        let mib = vec![0u8; 1 << 20];
        let mut body = b"B".to_vec();
        body.extend((mib.len() as u32).to_le_bytes());
        body.extend(&mib);
        body.extend(b"q\x00(");
        for _ in 0..50_000 {
            body.extend(b"h\x00");
        }
        body.push(b'l');
        let e = tree_of(&pickle(&body)).unwrap_err();
        assert!(e.contains("memory budget"), "{e}");
    }
}

#[cfg(test)]
mod drop_tests {
    use crate::format::Node;

    #[test]
    fn dropping_a_million_deep_tree_does_not_recurse() {
        // built by hand (readers refuse this depth): Drop must not use the stack per level
        let mut n = Node::None;
        for _ in 0..1_000_000 {
            n = Node::List { items: vec![n] };
        }
        drop(n);
        let mut o = Node::None;
        for i in 0..300_000 {
            o = if i % 2 == 0 {
                Node::Object {
                    module: "m".into(),
                    name: "n".into(),
                    args: vec![],
                    state: Some(Box::new(o)),
                    items: vec![],
                }
            } else {
                Node::Dict {
                    kind: crate::format::DictKind::Dict,
                    items: vec![(crate::format::Key::Int(0), o)],
                    attrs: vec![],
                    state_dict: false,
                }
            };
        }
        drop(o);
    }
}
