//! The safe pickler: an edited tree → a protocol-2 `data.pkl` that `torch.load(weights_only=True)`
//! accepts (docs/formats.md §5.2), plus the list of storages it references.
//!
//! Contract: only weights_only opcodes and allow-listed globals are written. Tensors keep their
//! storage sharing (one storage per original storage; tied weights stay tied), offsets and
//! strides; a cast tensor gets a fresh contiguous storage. Values torch would refuse (inert
//! objects, non-allow-listed globals, elided values, keys that are not str/int, per-channel
//! quantizers) are dropped and listed in [`Pickled::dropped`] — never written as globals.

use crate::edit::tree::{from_node, ENode, ETree, TensorRef};
use crate::format::checkpoint::{Checkpoint, DictKind, Key, Node, TensorInfo, TensorKind};
use crate::format::dtype::DType;
use crate::format::fastmap::KeyMap;
use crate::format::pickle::safety;
use crate::format::pickle::value::Value;

/// Where a written storage's bytes come from.
#[derive(Debug, Clone, PartialEq)]
pub enum StorageContent {
    /// An original storage, unchanged (input, storage index).
    Copy { input: usize, storage: usize },
    /// An original big-endian storage, byte-swapped per `unit` bytes.
    Swapped {
        input: usize,
        storage: usize,
        unit: usize,
    },
    /// A whole original storage cast element by element (every tensor on it is cast alike, so
    /// views and ties survive the cast).
    CastStorage {
        input: usize,
        storage: usize,
        from: DType,
        to: DType,
    },
    /// A tensor's contiguous elements, optionally cast.
    Tensor {
        input: usize,
        index: usize,
        cast: Option<DType>,
    },
}

/// A storage record to write (`data/<key>`).
#[derive(Debug, Clone, PartialEq)]
pub struct NewStorage {
    pub key: String,
    pub nbytes: u64,
    pub content: StorageContent,
}

/// The pickle and what it references.
#[derive(Debug, Clone, Default)]
pub struct Pickled {
    pub bytes: Vec<u8>,
    pub storages: Vec<NewStorage>,
    /// Paths (joined by `/`) and reasons of values that were not written.
    pub dropped: Vec<String>,
}

struct W<'a> {
    inputs: &'a [&'a Checkpoint],
    out: Vec<u8>,
    /// Memo slot of each global written, by `module\nname` (looked up through `key`, a
    /// reused buffer: no allocation for a global already written — every tensor names a few).
    memo: KeyMap<String, u32>,
    key: String,
    next_memo: u32,
    storages: Vec<NewStorage>,
    /// (input, storage) → (written storage index, typed class dtype or None for untyped)
    by_storage: KeyMap<(usize, usize), (usize, Option<DType>)>,
    /// Storages cast whole: (input, storage) → (from, to, written index or usize::MAX).
    cast_whole: KeyMap<(usize, usize), (DType, DType, usize)>,
    dropped: Vec<String>,
}

/// Pickle `tree`; `inputs[t.input]` resolves each tensor reference.
pub fn pickle_tree(tree: &ETree, inputs: &[&Checkpoint]) -> Pickled {
    let mut w = W {
        inputs,
        out: vec![0x80, 2],
        memo: KeyMap::default(),
        key: String::new(),
        next_memo: 0,
        storages: vec![],
        by_storage: KeyMap::default(),
        cast_whole: KeyMap::default(),
        dropped: vec![],
    };
    w.plan_storages(tree);
    let mut path = vec![];
    if !w.enode(&tree.root, &mut path) {
        w.out.push(b'N');
    }
    w.out.push(b'.');
    Pickled {
        bytes: w.out,
        storages: w.storages,
        dropped: w.dropped,
    }
}

fn path_text(p: &[String]) -> String {
    if p.is_empty() {
        "(root)".into()
    } else {
        p.join("/")
    }
}

impl W<'_> {
    fn info(&self, t: &TensorRef) -> &TensorInfo {
        &self.inputs[t.input].tensors[t.index]
    }

    /// Decide, per original storage, whether it is written typed (all its uncast tensors share
    /// one dtype that has a legacy storage class) or untyped (v3).
    fn plan_storages(&mut self, tree: &ETree) {
        let mut dtypes: KeyMap<(usize, usize), Vec<DType>> = KeyMap::default();
        // per storage: (stored dtype, cast, dense) of every tensor on it
        type Use = (DType, Option<DType>, bool);
        let mut users: KeyMap<(usize, usize), Vec<Use>> = KeyMap::default();
        for (_, t) in tree.tensors() {
            let info = self.info(&t);
            if let Some(s) = info.storage {
                users.entry((t.input, s)).or_default().push((
                    info.dtype,
                    t.cast,
                    info.kind == TensorKind::Dense,
                ));
            }
            if let (None, Some(s)) = (t.cast, info.storage) {
                dtypes.entry((t.input, s)).or_default().push(info.dtype);
            }
        }
        for (k, us) in &users {
            let (d0, c0, _) = us[0];
            if let Some(to) = c0 {
                if us.iter().all(|&(d, c, dense)| d == d0 && c == c0 && dense) && d0 != to {
                    self.cast_whole.insert(*k, (d0, to, usize::MAX));
                }
            }
        }
        let mut keys: Vec<_> = dtypes.keys().copied().collect();
        crate::order::sort(&mut keys);
        for k in keys {
            let ds = &dtypes[&k];
            let typed = ds.iter().all(|d| *d == ds[0]) && ds[0].storage_class().is_some();
            self.by_storage
                .insert(k, (usize::MAX, if typed { Some(ds[0]) } else { None }));
        }
    }

    fn global(&mut self, module: &str, name: &str) {
        self.key.clear();
        self.key.push_str(module);
        self.key.push('\n');
        self.key.push_str(name);
        if let Some(&i) = self.memo.get(self.key.as_str()) {
            self.get(i);
            return;
        }
        self.out.push(b'c');
        self.out.extend_from_slice(module.as_bytes());
        self.out.push(b'\n');
        self.out.extend_from_slice(name.as_bytes());
        self.out.push(b'\n');
        let i = self.next_memo;
        self.next_memo += 1;
        if i < 256 {
            self.out.extend([b'q', i as u8]);
        } else {
            self.out.push(b'r');
            self.out.extend(i.to_le_bytes());
        }
        self.memo.insert(self.key.clone(), i);
    }

    fn get(&mut self, i: u32) {
        if i < 256 {
            self.out.extend([b'h', i as u8]);
        } else {
            self.out.push(b'j');
            self.out.extend(i.to_le_bytes());
        }
    }

    fn str(&mut self, s: &str) {
        self.out.push(b'X');
        self.out.extend((s.len() as u32).to_le_bytes());
        self.out.extend_from_slice(s.as_bytes());
    }

    fn int(&mut self, v: i64) {
        if (0..256).contains(&v) {
            self.out.extend([b'K', v as u8]);
        } else if (256..65536).contains(&v) {
            self.out.push(b'M');
            self.out.extend((v as u16).to_le_bytes());
        } else if i32::try_from(v).is_ok() {
            self.out.push(b'J');
            self.out.extend((v as i32).to_le_bytes());
        } else {
            let mut b = v.to_le_bytes().to_vec();
            while b.len() > 1 {
                let top = b[b.len() - 1];
                let next_neg = b[b.len() - 2] & 0x80 != 0;
                if (top == 0 && !next_neg) || (top == 0xff && next_neg) {
                    b.pop();
                } else {
                    break;
                }
            }
            self.long1(&b);
        }
    }

    fn long1(&mut self, le: &[u8]) {
        if le.len() < 256 {
            self.out.extend([0x8a, le.len() as u8]);
        } else {
            self.out.push(0x8b);
            self.out.extend((le.len() as i32).to_le_bytes());
        }
        self.out.extend_from_slice(le);
    }

    fn tuple(&mut self, n: usize) {
        match n {
            0 => self.out.push(b')'),
            1 => self.out.push(0x85),
            2 => self.out.push(0x86),
            3 => self.out.push(0x87),
            _ => self.out.push(b't'),
        }
    }

    fn dims(&mut self, d: &[u64]) {
        if d.len() > 3 {
            self.out.push(b'(');
        }
        for &x in d {
            self.int(x as i64);
        }
        self.tuple(d.len());
    }

    fn empty_ordered_dict(&mut self) {
        self.global("collections", "OrderedDict");
        self.out.extend([b')', b'R']);
    }

    /// The storage a tensor is written on: (key, typed class dtype, numel in the pid, whether
    /// the tensor keeps its original offset and strides).
    fn storage_for(
        &mut self,
        t: &TensorRef,
        info: &TensorInfo,
    ) -> (String, Option<DType>, u64, bool) {
        let s = info.storage.expect("caller checked");
        if let Some(&(from, to, idx)) = self.cast_whole.get(&(t.input, s)) {
            let idx = if idx == usize::MAX {
                let src = &self.inputs[t.input].storages[s];
                let key = self.storages.len().to_string();
                self.storages.push(NewStorage {
                    key,
                    nbytes: src.nbytes / from.size() as u64 * to.size() as u64,
                    content: StorageContent::CastStorage {
                        input: t.input,
                        storage: s,
                        from,
                        to,
                    },
                });
                let i = self.storages.len() - 1;
                self.cast_whole.insert((t.input, s), (from, to, i));
                i
            } else {
                idx
            };
            let ns = &self.storages[idx];
            let typed = to.storage_class().map(|_| to);
            let numel = if typed.is_some() {
                ns.nbytes / to.size() as u64
            } else {
                ns.nbytes
            };
            return (ns.key.clone(), typed, numel, true);
        }
        if let Some(to) = t.cast {
            let numel = info.numel();
            let key = self.storages.len().to_string();
            self.storages.push(NewStorage {
                key: key.clone(),
                nbytes: numel * to.size() as u64,
                content: StorageContent::Tensor {
                    input: t.input,
                    index: t.index,
                    cast: Some(to),
                },
            });
            let typed = to.storage_class().map(|_| to);
            let numel = if typed.is_some() {
                numel
            } else {
                numel * to.size() as u64
            };
            return (key, typed, numel, false);
        }
        let src = &self.inputs[t.input].storages[s];
        let planned = info.dtype.storage_class().map(|_| info.dtype);
        let (idx, typed) = self
            .by_storage
            .get(&(t.input, s))
            .copied()
            .unwrap_or((usize::MAX, planned));
        let idx = if idx == usize::MAX {
            let key = self.storages.len().to_string();
            let content = if src.big_endian && info.dtype.swap_unit() > 1 {
                StorageContent::Swapped {
                    input: t.input,
                    storage: s,
                    unit: info.dtype.swap_unit(),
                }
            } else {
                StorageContent::Copy {
                    input: t.input,
                    storage: s,
                }
            };
            self.storages.push(NewStorage {
                key,
                nbytes: src.nbytes,
                content,
            });
            let i = self.storages.len() - 1;
            self.by_storage.insert((t.input, s), (i, typed));
            i
        } else {
            idx
        };
        let ns = &self.storages[idx];
        let numel = match typed {
            Some(d) => ns.nbytes / d.size() as u64,
            None => ns.nbytes,
        };
        (ns.key.clone(), typed, numel, true)
    }

    /// Write a tensor; false if it cannot be written (and was reported).
    fn tensor(&mut self, t: &TensorRef, path: &[String]) -> bool {
        let info = self.info(t).clone();
        self.tensor_info(t, info, path)
    }

    /// Write the tensor `info` (of input `t.input`, cast as `t.cast`): a `_rebuild_tensor_v2`
    /// (typed storage), `_rebuild_tensor_v3` (untyped) or `_rebuild_qtensor` call, wrapped in
    /// `_rebuild_parameter` for a parameter; a meta tensor as `_rebuild_meta_tensor_no_storage`.
    fn tensor_info(&mut self, t: &TensorRef, info: TensorInfo, path: &[String]) -> bool {
        if !self.rewritable(t, &info, path) {
            return false;
        }
        if info.storage.is_none() {
            self.meta_tensor(&info);
            return true;
        }
        if info.parameter {
            self.global("torch._utils", "_rebuild_parameter");
        }
        let (key, typed, numel, keep_layout) = self.storage_for(t, &info);
        let dtype = t.cast.unwrap_or(info.dtype);
        let (offset, strides) = if keep_layout {
            (info.storage_offset, info.strides.clone())
        } else {
            (0, contiguous_strides(&info.shape))
        };
        let shape = &info.shape;
        let quant = matches!(info.kind, TensorKind::Quantized { .. });
        if quant {
            self.global("torch._utils", "_rebuild_qtensor");
        } else if typed.is_some() {
            self.global("torch._utils", "_rebuild_tensor_v2");
        } else {
            self.global("torch._utils", "_rebuild_tensor_v3");
        }
        self.out.push(b'(');
        // persistent id
        self.out.push(b'(');
        self.str("storage");
        match typed {
            Some(d) => self.global("torch", d.storage_class().expect("typed")),
            None => self.global("torch.storage", "UntypedStorage"),
        }
        self.str(&key);
        self.str("cpu");
        self.int(numel as i64);
        self.out.extend([b't', b'Q']);
        self.int(offset as i64);
        self.dims(shape);
        self.dims(&strides);
        if quant && !self.quantizer(t, &info, path) {
            return false;
        }
        let inner_rg = info.requires_grad && !info.parameter;
        self.out.push(if inner_rg { 0x88 } else { 0x89 });
        self.empty_ordered_dict();
        if typed.is_none() && !quant {
            self.global("torch", dtype.name());
        }
        if let TensorKind::ConjNeg { conj, neg } = info.kind {
            if t.cast.is_none() {
                self.conj_neg_flags(conj, neg);
            }
        }
        self.out.extend([b't', b'R']);
        if info.parameter {
            self.out.push(if info.requires_grad { 0x88 } else { 0x89 });
            self.empty_ordered_dict();
            self.out.extend([0x87, b'R']);
        }
        true
    }

    /// False (and the tensor reported as dropped) for a quantized tensor this writer cannot
    /// rebuild: a scheme other than per-tensor / per-channel affine, or a cast one.
    fn rewritable(&mut self, t: &TensorRef, info: &TensorInfo, path: &[String]) -> bool {
        if let TensorKind::Quantized {
            scheme,
            scale,
            zero_point,
            per_channel,
        } = &info.kind
        {
            let per_tensor_ok =
                scheme == "per_tensor_affine" && scale.is_some() && zero_point.is_some();
            if !(per_tensor_ok || per_channel.is_some()) || t.cast.is_some() {
                self.dropped.push(format!(
                    "{}: quantized tensor ({scheme}) cannot be rewritten",
                    path_text(path)
                ));
                return false;
            }
        }
        true
    }

    /// A meta tensor: shape and dtype only.
    fn meta_tensor(&mut self, info: &TensorInfo) {
        self.global("torch._utils", "_rebuild_meta_tensor_no_storage");
        self.out.push(b'(');
        self.global("torch", info.dtype.name());
        self.dims(&info.shape);
        self.dims(&info.strides);
        self.out.push(if info.requires_grad { 0x88 } else { 0x89 });
        self.out.extend([b't', b'R']);
    }

    /// The quantizer argument of `_rebuild_qtensor`: `(per_channel_affine, scales,
    /// zero_points, axis)` or `(per_tensor_affine, scale, zero_point)`; false when a nested
    /// tensor cannot be written.
    fn quantizer(&mut self, t: &TensorRef, info: &TensorInfo, path: &[String]) -> bool {
        let TensorKind::Quantized {
            scale,
            zero_point,
            per_channel,
            ..
        } = &info.kind
        else {
            return true;
        };
        match (per_channel, scale, zero_point) {
            (Some(pc), _, _) => {
                let nested = TensorRef {
                    input: t.input,
                    index: usize::MAX,
                    cast: None,
                    dtype: pc.scales.dtype,
                };
                self.out.push(b'(');
                self.global("torch", "per_channel_affine");
                let ok = self.tensor_info(&nested, pc.scales.clone(), path)
                    && self.tensor_info(&nested, pc.zero_points.clone(), path);
                if !ok {
                    return false;
                }
                self.int(pc.axis);
                self.out.push(b't');
            }
            (None, Some(s), Some(z)) => {
                self.global("torch", "per_tensor_affine");
                self.out.push(b'G');
                self.out.extend(s.to_be_bytes());
                self.int(*z);
                self.tuple(3);
            }
            _ => unreachable!("checked by rewritable"),
        }
        true
    }

    /// The `{'conj': True, 'neg': True}` tensor flags (those set).
    fn conj_neg_flags(&mut self, conj: bool, neg: bool) {
        self.out.push(b'}');
        self.out.push(b'(');
        if conj {
            self.str("conj");
            self.out.push(0x88);
        }
        if neg {
            self.str("neg");
            self.out.push(0x88);
        }
        self.out.push(b'u');
    }

    /// Write the items of a list or tuple in order; a dropped item is written as `None` so
    /// the positions of the others stay.
    fn sequence(&mut self, items: &[ENode], path: &mut Vec<String>) {
        for (i, v) in items.iter().enumerate() {
            path.push(i.to_string());
            if !self.enode(v, path) {
                self.out.push(b'N');
            }
            path.pop();
        }
    }

    /// Write a node; false if nothing was written (dropped and reported).
    fn enode(&mut self, n: &ENode, path: &mut Vec<String>) -> bool {
        match n {
            ENode::Tensor(t) => self.tensor(t, path),
            ENode::Leaf(node) => self.leaf(node, path),
            ENode::List(items) => {
                self.out.push(b']');
                if !items.is_empty() {
                    self.out.push(b'(');
                    self.sequence(items, path);
                    self.out.push(b'e');
                }
                true
            }
            ENode::Tuple(items) => {
                if items.len() > 3 {
                    self.out.push(b'(');
                }
                self.sequence(items, path);
                self.tuple(items.len());
                true
            }
            ENode::Dict { kind, items, attrs } => {
                match kind {
                    DictKind::Dict => self.out.push(b'}'),
                    DictKind::OrderedDict => self.empty_ordered_dict(),
                    DictKind::Counter => {
                        self.global("collections", "Counter");
                        self.out.extend([b')', b'R']);
                    }
                }
                self.items(items, path);
                if let Some((_, Node::Global { module, name })) = attrs
                    .iter()
                    .find(|(k, _)| k.segment() == crate::edit::tree::OBJECT_MARK)
                {
                    self.dropped.push(format!(
                        "{}: inert object {module}.{name} written as a plain dict of its attributes",
                        path_text(path)
                    ));
                } else if !attrs.is_empty() {
                    let enodes: Vec<(Key, ENode)> = attrs
                        .iter()
                        .map(|(k, v)| (k.clone(), from_node(v, 0, &[])))
                        .collect();
                    self.out.push(b'}');
                    self.items(&enodes, path);
                    self.out.push(b'b');
                }
                true
            }
        }
    }

    fn items(&mut self, items: &[(Key, ENode)], path: &mut Vec<String>) {
        let mut open = 0usize;
        let mut marked = false;
        for (k, v) in items {
            path.push(k.segment());
            if let Key::Other(repr) = k {
                self.dropped.push(format!(
                    "{}: dict key {repr} is not a str or int",
                    path_text(path)
                ));
                path.pop();
                continue;
            }
            if !marked {
                self.out.push(b'(');
                marked = true;
            }
            let pos = self.out.len();
            match k {
                Key::Str(s) => self.str(s),
                Key::Int(i) => self.int(*i),
                Key::Other(_) => unreachable!("skipped above"),
            }
            if self.enode(v, path) {
                open += 1;
            } else {
                self.out.truncate(pos);
            }
            path.pop();
            if open == 1000 {
                self.out.push(b'u');
                open = 0;
                marked = false;
            }
        }
        if marked {
            if open > 0 {
                self.out.push(b'u');
            } else {
                // everything after the MARK was dropped
                self.out.pop();
            }
        }
    }

    fn leaf(&mut self, n: &Node, path: &[String]) -> bool {
        match n {
            Node::None => self.out.push(b'N'),
            Node::Bool { value } => self.out.push(if *value { 0x88 } else { 0x89 }),
            Node::Int { value } => self.int(*value),
            Node::BigInt { value } => match crate::format::pickle::vm::parse_decimal(value) {
                Some(Value::BigInt(le)) => self.long1(&le),
                Some(Value::Int(i)) => self.int(i),
                _ => {
                    self.dropped
                        .push(format!("{}: unreadable integer {value}", path_text(path)));
                    return false;
                }
            },
            Node::Float { value } => {
                self.out.push(b'G');
                self.out.extend(value.to_be_bytes());
            }
            Node::Complex { re, im } => {
                self.global("builtins", "complex");
                for v in [re, im] {
                    self.out.push(b'G');
                    self.out.extend(v.to_be_bytes());
                }
                self.out.extend([0x86, b'R']);
            }
            Node::Str { value } => self.str(value),
            Node::Bytes { data } => {
                self.global("_codecs", "encode");
                let text: String = data.iter().map(|&b| b as char).collect();
                self.str(&text);
                self.str("latin1");
                self.out.extend([0x86, b'R']);
            }
            Node::Set { items, frozen } => {
                if *frozen {
                    self.dropped.push(format!(
                        "{}: frozenset written as a set (weights_only refuses frozenset)",
                        path_text(path)
                    ));
                }
                self.global("builtins", "set");
                self.out.push(b']');
                if !items.is_empty() {
                    self.out.push(b'(');
                    let mut p = path.to_vec();
                    for v in items {
                        if !self.enode(&from_node(v, 0, &[]), &mut p) {
                            self.out.push(b'N');
                        }
                    }
                    self.out.push(b'e');
                }
                self.out.extend([0x85, b'R']);
            }
            Node::Dtype { name } => self.global("torch", name),
            Node::Device { value } => {
                self.global("torch", "device");
                match value.split_once(':') {
                    Some((ty, ix)) if ix.parse::<i64>().is_ok() => {
                        self.str(ty);
                        self.int(ix.parse().expect("checked"));
                        self.out.push(0x86);
                    }
                    _ => {
                        self.str(value);
                        self.out.push(0x85);
                    }
                }
                self.out.push(b'R');
            }
            Node::Size { dims } => {
                self.global("torch", "Size");
                let d: Vec<u64> = dims.iter().map(|&x| x.max(0) as u64).collect();
                self.dims(&d);
                self.out.extend([0x85, b'R']);
            }
            Node::Global { module, name } => {
                if !safety::is_allowed(module, name) {
                    self.dropped.push(format!(
                        "{}: global {module}.{name} is not on torch's allow-list",
                        path_text(path)
                    ));
                    return false;
                }
                self.global(module, name);
            }
            Node::Object { module, name, .. } => {
                self.dropped
                    .push(format!("{}: inert object {module}.{name}", path_text(path)));
                return false;
            }
            Node::Elided { reason } => {
                self.dropped
                    .push(format!("{}: elided value ({reason})", path_text(path)));
                return false;
            }
            Node::Tensor { .. } | Node::Dict { .. } | Node::List { .. } | Node::Tuple { .. } => {
                let e = from_node(n, 0, &[]);
                let mut p = path.to_vec();
                return self.enode(&e, &mut p);
            }
        }
        true
    }
}

/// Row-major strides (in elements) of a contiguous tensor of `shape` (a 0 dimension counts as 1,
/// as torch's `contiguous()` strides do).
fn contiguous_strides(shape: &[u64]) -> Vec<u64> {
    let mut st = vec![0u64; shape.len()];
    let mut acc = 1u64;
    for i in (0..shape.len()).rev() {
        st[i] = acc;
        acc *= shape[i].max(1);
    }
    st
}
